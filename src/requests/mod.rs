//! Data-subject requests: the DPO's register of requests from the people
//! recorded, their deadlines, and what the software does for them (RULES.md
//! "Rights of the people recorded"; 001 §32-35; 004 §17, §24-32; 002 §22,
//! §25; 003 §27; 000 §29).
//!
//! Invariants:
//! - A request names the cameras and a time window of at most
//!   `requests.max_window` (000 §29): finding the event must not take
//!   disproportionate effort. Every camera is one of the configuration's.
//! - Its last day is one calendar month after receipt, in the site's zone
//!   ([`deadline`]); one extension of one or two months needs a reason and
//!   the date the requester was told, which lies within the first month.
//! - Identity is recorded as how it was checked and by whom, in at most
//!   [`MAX_TEXT`] characters: never a copy of the document.
//! - Requester, contact and description are removed `personal_data_days`
//!   after the request closes; the rest stays as the record of the answer.
//! - Everything done for a request is a `request_event` row written in the
//!   transaction that does it and checks the request is still open; the API
//!   audits each act before it happens.
//! - Erasure ([`erase`]) destroys footage through retention's destruction
//!   path (marked, journalled as `erasure` with the request, destroyed,
//!   fsynced, removed); footage under a case's hold or a restriction is not
//!   erased, and the refusal names the case (004 §29).

pub mod access;
pub mod deadline;
mod erase;
pub mod letter;

use crate::clock::UnixMicros;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::index::{CorrectionRow, NewRequest, RequestEvent, RequestRow, RestrictionRow};
use crate::index::{Index, SharedIndex};

pub use deadline::Standing;
pub use erase::{ErasureReport, erase};

/// Longest free text in the register (names, contacts, how identity was
/// checked, reasons), in characters.
pub const MAX_TEXT: usize = 500;

/// What the requester asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// To know whether and what footage of them exists (004 §25).
    Access,
    /// A copy of it, third parties made unidentifiable (004 §27).
    Copy,
    /// A wrong date or time corrected (004 §28).
    Rectification,
    /// Its erasure (004 §29).
    Erasure,
    /// Its restriction: kept untouched, not used (004 §30).
    Restriction,
    /// Objection to the processing (004 §31).
    Objection,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Access,
        Kind::Copy,
        Kind::Rectification,
        Kind::Erasure,
        Kind::Restriction,
        Kind::Objection,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Access => "access",
            Kind::Copy => "copy",
            Kind::Rectification => "rectification",
            Kind::Erasure => "erasure",
            Kind::Restriction => "restriction",
            Kind::Objection => "objection",
        }
    }

    pub fn parse(s: &str) -> Result<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown request kind {s:?}: use access, copy, rectification, erasure, \
                     restriction or objection"
                ))
            })
    }
}

/// How a request ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Answered,
    Refused,
    Withdrawn,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Refused => "refused",
            Outcome::Withdrawn => "withdrawn",
        }
    }
}

/// A request to register, its times already read.
#[derive(Debug, Clone)]
pub struct Registration {
    pub kind: Kind,
    pub reference: Option<String>,
    pub received_us: UnixMicros,
    pub requester: String,
    pub contact: String,
    pub description: Option<String>,
    pub identity_check: String,
    pub verified_by: String,
    pub cameras: Vec<String>,
    pub from_us: UnixMicros,
    pub to_us: UnixMicros,
}

/// A request with where it stands and what was done for it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RequestStatus {
    #[serde(flatten)]
    pub request: RequestRow,
    /// The last day to answer (extended if it was).
    pub last_day: String,
    /// Only for an open request.
    pub standing: Option<Standing>,
    pub events: Vec<RequestEvent>,
    pub restrictions: Vec<RestrictionRow>,
    pub corrections: Vec<CorrectionRow>,
}

/// Open requests due soon or overdue, for status, metrics and the
/// retention report.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Deadlines {
    pub open: u64,
    /// (id, last day) of open requests due within a week.
    pub due_soon: Vec<(String, String)>,
    /// (id, last day) of open requests past their last day.
    pub overdue: Vec<(String, String)>,
}

fn text(what: &str, v: &str, example: &str) -> Result<()> {
    if v.trim().is_empty() {
        return Err(Error::invalid(format!(
            "{what} is empty; give e.g. {example}"
        )));
    }
    if v.chars().count() > MAX_TEXT {
        return Err(Error::invalid(format!(
            "{what} is longer than {MAX_TEXT} characters; the register keeps a short \
             description, never a document"
        )));
    }
    if v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::invalid(format!(
            "{what} contains control characters"
        )));
    }
    Ok(())
}

fn parse_day(what: &str, s: &str) -> Result<jiff::civil::Date> {
    s.parse().map_err(|_| {
        Error::invalid(format!(
            "{what} {s:?} is not a date; write it as YYYY-MM-DD (e.g. 2027-02-10)"
        ))
    })
}

/// Checks that a window names a real span no wider than the configured
/// maximum (000 §29).
pub fn check_window(config: &Config, from_us: UnixMicros, to_us: UnixMicros) -> Result<()> {
    if to_us <= from_us {
        return Err(Error::invalid(
            "the window's end is not after its start; give the time the event began and \
             ended (e.g. from \"2027-01-10 10:30\" to \"2027-01-10 11:00\")",
        ));
    }
    let max = config.requests.max_window;
    let width = std::time::Duration::from_micros((to_us - from_us) as u64);
    if width > max {
        return Err(Error::invalid(format!(
            "the window is {} wide, more than the {} a request may name \
             (requests.max_window): a request must identify the event precisely enough that \
             finding it is not disproportionate effort (000 §29); ask the requester for a \
             narrower time",
            humantime::format_duration(width),
            humantime::format_duration(max)
        )));
    }
    Ok(())
}

fn check_cameras(config: &Config, cameras: &[String]) -> Result<()> {
    if cameras.is_empty() {
        return Err(Error::invalid(
            "a request names at least one camera (the place of the event); \
             `custosctl cameras` lists them",
        ));
    }
    for c in cameras {
        if config.footage_zone(c).is_none() {
            let known: Vec<&str> = config
                .cameras
                .iter()
                .map(|c| c.id.as_str())
                .chain(config.devices.iter().map(|d| d.id.as_str()))
                .collect();
            return Err(Error::not_found(format!(
                "no camera {c:?} in the configuration; cameras are: {}",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// Registers a request; its id is `R-<year received>-<number>`.
pub fn register(
    index: &SharedIndex,
    config: &Config,
    r: &Registration,
    by_user: &str,
    now_us: UnixMicros,
) -> Result<RequestRow> {
    text("requester", &r.requester, "\"Jonas Jonaitis\"")?;
    text(
        "contact",
        &r.contact,
        "\"jonas@example.lt, +370 600 00000\"",
    )?;
    text(
        "identity_check",
        &r.identity_check,
        "\"passport shown at the front desk\" (never a copy of the document)",
    )?;
    text("verified_by", &r.verified_by, "\"R. Petraitė, front desk\"")?;
    for (what, v) in [
        ("description", r.description.as_deref()),
        ("reference", r.reference.as_deref()),
    ] {
        if let Some(v) = v {
            text(what, v, "a short text")?;
        }
    }
    if r.received_us > now_us {
        return Err(Error::invalid(
            "the request's receipt is in the future; give the day it arrived (e.g. \"today\")",
        ));
    }
    check_cameras(config, &r.cameras)?;
    check_window(config, r.from_us, r.to_us)?;
    let tz = &config.timezone;
    let due = deadline::last_day(r.received_us, tz, 0)?.to_string();
    let year = deadline::local_date(r.received_us, tz)?.year();
    let mut cameras = r.cameras.clone();
    cameras.sort();
    cameras.dedup();
    index.lock().transaction(|ix| {
        let id = format!("R-{year:04}-{:04}", ix.next_request_number(year)?);
        ix.insert_request(&NewRequest {
            id: &id,
            kind: r.kind.as_str(),
            reference: r.reference.as_deref(),
            received_us: r.received_us,
            due_date: &due,
            requester: &r.requester,
            contact: &r.contact,
            description: r.description.as_deref(),
            identity_check: &r.identity_check,
            verified_by: &r.verified_by,
            cameras: &cameras,
            from_us: r.from_us,
            to_us: r.to_us,
            created_by: by_user,
            created_us: now_us,
        })?;
        ix.open_request(&id)
    })
}

/// A request with its standing, events, restrictions and corrections.
pub fn status(
    index: &SharedIndex,
    config: &Config,
    id: &str,
    now_us: UnixMicros,
) -> Result<RequestStatus> {
    let ix = index.lock();
    let request = ix
        .request(id)?
        .ok_or_else(|| Error::not_found(format!("no request {id}; `custosctl request list`")))?;
    let mut corrections = Vec::new();
    for c in &request.cameras {
        corrections.extend(
            ix.time_corrections(c, i64::MIN, i64::MAX)?
                .into_iter()
                .filter(|r| r.request_id == request.id),
        );
    }
    let events = ix.request_events(id)?;
    let restrictions = ix.restrictions(Some(id))?;
    drop(ix);
    with_standing(config, request, events, restrictions, corrections, now_us)
}

fn with_standing(
    config: &Config,
    request: RequestRow,
    events: Vec<RequestEvent>,
    restrictions: Vec<RestrictionRow>,
    corrections: Vec<CorrectionRow>,
    now_us: UnixMicros,
) -> Result<RequestStatus> {
    let last_day = request.last_day().to_owned();
    let standing = if request.status == "open" {
        Some(Standing::of(
            parse_day("last day", &last_day)?,
            &config.timezone,
            now_us,
        )?)
    } else {
        None
    };
    Ok(RequestStatus {
        request,
        last_day,
        standing,
        events,
        restrictions,
        corrections,
    })
}

/// The whole register, open requests first by their last day.
pub fn list(
    index: &SharedIndex,
    config: &Config,
    now_us: UnixMicros,
) -> Result<Vec<RequestStatus>> {
    let rows = index.lock().requests()?;
    rows.into_iter()
        .map(|r| with_standing(config, r, Vec::new(), Vec::new(), Vec::new(), now_us))
        .collect()
}

/// Open requests due within a week, and overdue ones.
pub fn deadlines(ix: &Index, config: &Config, now_us: UnixMicros) -> Result<Deadlines> {
    let mut out = Deadlines::default();
    for row in ix.requests()?.into_iter().filter(|r| r.status == "open") {
        let r = with_standing(config, row, Vec::new(), Vec::new(), Vec::new(), now_us)?;
        match r.standing {
            Some(Standing::Overdue { .. }) => out.overdue.push((r.request.id, r.last_day)),
            Some(Standing::DueSoon { .. }) => out.due_soon.push((r.request.id, r.last_day)),
            _ => {}
        }
        if r.standing.is_some() {
            out.open += 1;
        }
    }
    Ok(out)
}

fn event(
    ix: &Index,
    id: &str,
    now_us: UnixMicros,
    by_user: &str,
    kind: &str,
    detail: serde_json::Value,
) -> Result<()> {
    ix.add_request_event(id, now_us, by_user, kind, &detail)
        .map(|_| ())
}

/// Extends the period to answer by `months` (1 or 2), counted from receipt.
/// The requester must have been told, with the reasons, within the first
/// month (004 §32).
#[allow(clippy::too_many_arguments)]
pub fn extend(
    index: &SharedIndex,
    config: &Config,
    id: &str,
    months: i8,
    reason: &str,
    told: &str,
    by_user: &str,
    now_us: UnixMicros,
) -> Result<RequestRow> {
    text("reason", reason, "\"footage of 12 cameras to review\"")?;
    if !(1..=deadline::MAX_EXTENSION_MONTHS).contains(&months) {
        return Err(Error::invalid(format!(
            "an extension adds 1 or 2 months, not {months} (004 §32)"
        )));
    }
    let tz = &config.timezone;
    let told_day = parse_day("told", told)?;
    index.lock().transaction(|ix| {
        let r = ix.open_request(id)?;
        let received = deadline::local_date(r.received_us, tz)?;
        let first = parse_day("due date", &r.due_date)?;
        if told_day < received || told_day > first {
            return Err(Error::invalid(format!(
                "the requester must be told of an extension, with the reasons, within the first \
                 month: between {received} and {first} (004 §32), not on {told_day}"
            )));
        }
        if told_day > deadline::local_date(now_us, tz)? {
            return Err(Error::invalid(format!(
                "the requester was told on {told_day}, which is in the future; extend once \
                 they have been told"
            )));
        }
        let to = deadline::last_day(r.received_us, tz, months)?.to_string();
        ix.extend_request(id, &to, reason, told)?;
        event(
            ix,
            id,
            now_us,
            by_user,
            "extended",
            serde_json::json!({"months": months, "to": to, "reason": reason, "told": told}),
        )?;
        ix.open_request(id)
    })
}

/// Closes a request with its outcome and the answer given (for a refusal,
/// its reasons).
pub fn close(
    index: &SharedIndex,
    id: &str,
    outcome: Outcome,
    answer: &str,
    by_user: &str,
    now_us: UnixMicros,
) -> Result<RequestRow> {
    text(
        "answer",
        answer,
        "\"letter of 2027-02-10 sent by e-mail; no footage remained\"",
    )?;
    index.lock().transaction(|ix| {
        ix.open_request(id)?;
        ix.close_request(id, outcome.as_str(), answer, now_us)?;
        event(
            ix,
            id,
            now_us,
            by_user,
            "closed",
            serde_json::json!({"outcome": outcome.as_str()}),
        )?;
        ix.request(id)?
            .ok_or_else(|| Error::internal(format!("request {id} vanished")))
    })
}

/// Restricts the request's cameras over its window (004 §30): restricted
/// footage is never deleted by age or disk pressure until lifted.
pub fn restrict(
    index: &SharedIndex,
    id: &str,
    reason: &str,
    by_user: &str,
    now_us: UnixMicros,
) -> Result<Vec<RestrictionRow>> {
    text("reason", reason, "\"accuracy contested by the requester\"")?;
    index.lock().transaction(|ix| {
        let r = ix.open_request(id)?;
        let mut ids = Vec::new();
        for camera in &r.cameras {
            let cam = ix.camera_id(camera)?;
            ids.push(ix.restrict_for_request(id, cam, r.from_us, r.to_us, reason, now_us)?);
        }
        event(
            ix,
            id,
            now_us,
            by_user,
            "restricted",
            serde_json::json!({"restrictions": ids, "reason": reason}),
        )?;
        let mut out = Vec::new();
        for rid in ids {
            out.extend(ix.restriction(rid)?);
        }
        Ok(out)
    })
}

/// Lifts restriction `restriction_id` of request `id`, with the reason.
/// The request may be closed: a restriction can outlast its answer.
pub fn lift(
    index: &SharedIndex,
    id: &str,
    restriction_id: i64,
    reason: &str,
    by_user: &str,
    now_us: UnixMicros,
) -> Result<RestrictionRow> {
    text("reason", reason, "\"the date was corrected\"")?;
    index.lock().transaction(|ix| {
        let r = ix
            .restriction(restriction_id)?
            .filter(|r| r.request_id.as_deref() == Some(id));
        if r.is_none() {
            return Err(Error::not_found(format!(
                "request {id} has no restriction {restriction_id}; `custosctl request show {id}` \
                 lists its restrictions"
            )));
        }
        ix.lift_restriction_by(restriction_id, by_user, reason, now_us)?;
        event(
            ix,
            id,
            now_us,
            by_user,
            "restriction_lifted",
            serde_json::json!({"restriction": restriction_id, "reason": reason}),
        )?;
        ix.restriction(restriction_id)?
            .ok_or_else(|| Error::internal("restriction vanished"))
    })
}

/// The controller's decision on an objection (004 §31), with its reasoning.
/// An upheld objection usually leads to an erasure or a restriction, done
/// as separate acts.
pub fn decide_objection(
    index: &SharedIndex,
    id: &str,
    upheld: bool,
    reasoning: &str,
    by_user: &str,
    now_us: UnixMicros,
) -> Result<()> {
    text(
        "reasoning",
        reasoning,
        "\"no compelling legitimate grounds outweigh the requester's interests\"",
    )?;
    index.lock().transaction(|ix| {
        let r = ix.open_request(id)?;
        if r.kind != Kind::Objection.as_str() {
            return Err(Error::conflict(format!(
                "request {id} is a {} request, not an objection",
                r.kind
            )));
        }
        event(
            ix,
            id,
            now_us,
            by_user,
            "objection_decided",
            serde_json::json!({"upheld": upheld, "reasoning": reasoning}),
        )
    })
}

/// A correction of footage's date or time (004 §28): noted against the
/// camera's range, never written into the master files; later exports
/// state it.
#[allow(clippy::too_many_arguments)]
pub fn rectify(
    index: &SharedIndex,
    id: &str,
    camera: &str,
    from_us: UnixMicros,
    to_us: UnixMicros,
    offset_us: i64,
    note: &str,
    by_user: &str,
    now_us: UnixMicros,
) -> Result<CorrectionRow> {
    text(
        "note",
        note,
        "\"camera clock was one hour behind after the DST change\"",
    )?;
    if to_us <= from_us {
        return Err(Error::invalid(
            "the corrected range's end is not after its start",
        ));
    }
    if offset_us == 0 {
        return Err(Error::invalid(
            "an offset of zero corrects nothing; give how far the recorded time is off, e.g. \
             --offset +1h (the true time is the recorded time plus the offset)",
        ));
    }
    index.lock().transaction(|ix| {
        let r = ix.open_request(id)?;
        if r.kind != Kind::Rectification.as_str() {
            return Err(Error::conflict(format!(
                "request {id} is a {} request; a time correction belongs to a rectification \
                 request",
                r.kind
            )));
        }
        if !r.cameras.iter().any(|c| c == camera) {
            return Err(Error::invalid(format!(
                "camera {camera} is not one of request {id}'s cameras ({})",
                r.cameras.join(", ")
            )));
        }
        let mut row = CorrectionRow {
            id: 0,
            request_id: id.to_owned(),
            camera: camera.to_owned(),
            from_us,
            to_us,
            offset_us,
            note: note.to_owned(),
            at_us: now_us,
            by_user: by_user.to_owned(),
        };
        row.id = ix.add_time_correction(&row)?;
        event(
            ix,
            id,
            now_us,
            by_user,
            "rectified",
            serde_json::json!({"correction": row.id, "camera": camera, "offset_us": offset_us}),
        )?;
        Ok(row)
    })
}

/// Removes the requester's personal data from requests closed more than
/// `requests.personal_data_days` ago. Returns their ids.
pub fn purge_personal_data(
    index: &SharedIndex,
    config: &Config,
    now_us: UnixMicros,
) -> Result<Vec<String>> {
    let before = crate::retention::cutoff(now_us, config.requests.personal_data_days)?;
    index
        .lock()
        .transaction(|ix| ix.purge_requesters(before, now_us))
}
