//! The breach register: suspected personal-data breaches, each documented
//! from detection to closing (GDPR Art. 33(5)), with the two clocks the
//! rules set: the DPO informed within 4 hours (004 §22; 001 §36) and the
//! supervisory authority within 72 hours, or the reason it was not (Art.
//! 33(1)).
//!
//! Invariants:
//! - The daemon opens a record by itself when it detects what suggests a
//!   breach ([`Detected`]); a detection that repeats while the record is
//!   open adds nothing (one open record per kind and subject).
//! - The DPO clock is met by the DPO's first note; the authority clock by a
//!   notification date or a reason for not notifying. An open record past
//!   either clock is a violation in status and metrics.
//! - A record closes only once the authority question is answered, and a
//!   closed record never changes.

use crate::clock::UnixMicros;
use crate::error::{Error, Result};
use crate::index::{BreachNote, BreachRow, BreachUpdate, Index, SharedIndex};

/// Hours until the DPO must have taken a breach up (004 §22; 001 §36).
pub const DPO_HOURS: i64 = 4;
/// Hours until the authority must be notified (GDPR Art. 33(1)).
pub const AUTHORITY_HOURS: i64 = 72;
const HOUR_US: i64 = 3_600_000_000;
/// Refused API calls by one uid within [`REFUSAL_WINDOW_US`] that open a
/// record.
pub const REFUSALS_BEFORE_BREACH: usize = 10;
pub const REFUSAL_WINDOW_US: i64 = 10 * 60 * 1_000_000;
/// Longest free text, in characters.
pub const MAX_TEXT: usize = 2000;

/// What the daemon detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detected {
    /// The audit log's hash chain does not verify at entry `seq`.
    AuditChain { seq: i64, problem: String },
    /// Evidence copies of a case no longer match their recorded hashes.
    EvidenceChanged { case: String, files: Vec<String> },
    /// One uid was refused this many times within the window.
    RefusedAccess {
        uid: u32,
        user: String,
        count: usize,
    },
    /// Files of complete segments of a camera are gone.
    FootageMissing { camera: String, paths: Vec<String> },
    /// Files of complete segments of a camera no longer match their hash.
    FootageChanged { camera: String, paths: Vec<String> },
}

impl Detected {
    fn parts(&self) -> (&'static str, String, String) {
        match self {
            Detected::AuditChain { seq, problem } => (
                "audit_chain",
                "audit".into(),
                format!(
                    "the audit log's hash chain does not verify at entry {seq}: {problem}; \
                     entries were changed or removed outside the API"
                ),
            ),
            Detected::EvidenceChanged { case, files } => (
                "evidence_changed",
                format!("case {case}"),
                format!(
                    "{} evidence cop{} of case {case} no longer match their recorded hashes: {}",
                    files.len(),
                    if files.len() == 1 { "y" } else { "ies" },
                    files.join(", ")
                ),
            ),
            Detected::FootageMissing { camera, paths } => (
                "footage_missing",
                format!("camera {camera}"),
                format!(
                    "{} recorded segment(s) of camera {camera} that the index holds are gone \
                     from disk, removed outside Custos: {}",
                    paths.len(),
                    paths.join(", ")
                ),
            ),
            Detected::FootageChanged { camera, paths } => (
                "footage_changed",
                format!("camera {camera}"),
                format!(
                    "{} recorded segment(s) of camera {camera} no longer match the hash recorded \
                     when they were written: {}",
                    paths.len(),
                    paths.join(", ")
                ),
            ),
            Detected::RefusedAccess { uid, user, count } => (
                "refused_access",
                format!("uid {uid}"),
                format!(
                    "{user} (uid {uid}) was refused {count} times within {} minutes: an \
                     attempt to reach footage or records without a role?",
                    REFUSAL_WINDOW_US / 60_000_000
                ),
            ),
        }
    }
}

/// A record with its clocks.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BreachStatus {
    #[serde(flatten)]
    pub breach: BreachRow,
    /// When the DPO must have taken it up.
    pub dpo_due_us: i64,
    /// When the authority must have been notified (or the reason given).
    pub authority_due_us: i64,
    /// Open, not taken up by the DPO, and past its 4 hours.
    pub dpo_overdue: bool,
    /// Open, no notification or reason, and past its 72 hours.
    pub authority_overdue: bool,
    pub notes: Vec<BreachNote>,
}

fn with_clocks(b: BreachRow, notes: Vec<BreachNote>, now_us: UnixMicros) -> BreachStatus {
    let dpo_due_us = b.detected_us.saturating_add(DPO_HOURS * HOUR_US);
    let authority_due_us = b.detected_us.saturating_add(AUTHORITY_HOURS * HOUR_US);
    let open = b.status == "open";
    let answered = b.authority_notified_us.is_some() || b.not_notified_reason.is_some();
    BreachStatus {
        dpo_overdue: open && b.dpo_informed_us.is_none() && now_us >= dpo_due_us,
        authority_overdue: open && !answered && now_us >= authority_due_us,
        dpo_due_us,
        authority_due_us,
        breach: b,
        notes,
    }
}

/// Opens a record for what was detected, unless one is open for it; logs
/// a new one as an error so the journal carries it too. Returns the new
/// record's id.
pub fn detected(ix: &Index, d: &Detected, now_us: UnixMicros) -> Result<Option<i64>> {
    let (kind, subject, what) = d.parts();
    let id = ix.open_breach(kind, &subject, &what, now_us)?;
    if let Some(id) = id {
        tracing::error!(breach = id, kind, subject = %subject,
            "suspected breach recorded: {what}; the data protection officer must take it up \
             within {DPO_HOURS} hours (custosctl breach show {id})");
    }
    Ok(id)
}

fn text(what: &str, v: &str) -> Result<()> {
    if v.trim().is_empty() {
        return Err(Error::invalid(format!("{what} is empty")));
    }
    if v.chars().count() > MAX_TEXT {
        return Err(Error::invalid(format!(
            "{what} is longer than {MAX_TEXT} characters"
        )));
    }
    Ok(())
}

/// Records a breach reported to the DPO by a person (kind `reported`).
pub fn report(index: &SharedIndex, what: &str, by_user: &str, now_us: UnixMicros) -> Result<i64> {
    text("what", what)?;
    let subject = format!("report by {by_user} at {now_us}");
    index
        .lock()
        .open_breach("reported", &subject, what, now_us)?
        .ok_or_else(|| Error::conflict("this report was just recorded"))
}

pub fn status(index: &SharedIndex, id: i64, now_us: UnixMicros) -> Result<BreachStatus> {
    let ix = index.lock();
    let b = ix
        .breach(id)?
        .ok_or_else(|| Error::not_found(format!("no breach {id}; `custosctl breach list`")))?;
    let notes = ix.breach_notes(id)?;
    Ok(with_clocks(b, notes, now_us))
}

pub fn list(ix: &Index, now_us: UnixMicros) -> Result<Vec<BreachStatus>> {
    Ok(ix
        .breaches()?
        .into_iter()
        .map(|b| with_clocks(b, Vec::new(), now_us))
        .collect())
}

/// The DPO's note: its text, and the assessment, actions and the authority
/// question when given. The first note meets the 4-hour clock.
pub fn note(
    index: &SharedIndex,
    id: i64,
    by_user: &str,
    note: &str,
    update: &BreachUpdate,
    now_us: UnixMicros,
) -> Result<BreachStatus> {
    text("note", note)?;
    for (what, v) in [
        ("assessment", update.assessment),
        ("actions", update.actions),
        ("not_notified_reason", update.not_notified_reason),
    ] {
        if let Some(v) = v {
            text(what, v)?;
        }
    }
    if update.authority_notified_us.is_some() && update.not_notified_reason.is_some() {
        return Err(Error::invalid(
            "give either the date the authority was notified or the reason it was not, not both",
        ));
    }
    if update.authority_notified_us.is_some_and(|t| t > now_us) {
        return Err(Error::invalid(
            "the authority's notification date is in the future",
        ));
    }
    index
        .lock()
        .transaction(|ix| ix.note_breach(id, by_user, note, update, now_us))?;
    status(index, id, now_us)
}

/// Closes a record; refused until the authority question is answered.
pub fn close(
    index: &SharedIndex,
    id: i64,
    by_user: &str,
    close_note: &str,
    now_us: UnixMicros,
) -> Result<BreachStatus> {
    text("note", close_note)?;
    index.lock().transaction(|ix| {
        let b = ix
            .breach(id)?
            .ok_or_else(|| Error::not_found(format!("no breach {id}")))?;
        if b.authority_notified_us.is_none() && b.not_notified_reason.is_none() {
            return Err(Error::conflict(format!(
                "breach {id} cannot be closed before it says whether the authority was notified: \
                 add a note with --notified-authority DATE or --not-notified REASON (GDPR Art. \
                 33(1), 33(5))"
            )));
        }
        ix.close_breach(id, by_user, close_note, now_us)
    })?;
    status(index, id, now_us)
}

/// Open records and those past a clock, for status and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Clocks {
    pub open: u64,
    /// Ids of open records the DPO has not taken up in 4 hours.
    pub dpo_overdue: Vec<i64>,
    /// Ids of open records with no answer on the authority after 72 hours.
    pub authority_overdue: Vec<i64>,
}

pub fn clocks(ix: &Index, now_us: UnixMicros) -> Result<Clocks> {
    let mut c = Clocks::default();
    for b in list(ix, now_us)?
        .into_iter()
        .filter(|b| b.breach.status == "open")
    {
        c.open += 1;
        if b.dpo_overdue {
            c.dpo_overdue.push(b.breach.id);
        }
        if b.authority_overdue {
            c.authority_overdue.push(b.breach.id);
        }
    }
    Ok(c)
}

/// Refusals per uid within the window, to notice a burst from one uid.
#[derive(Debug, Default)]
pub struct RefusalCounter {
    seen: std::sync::Mutex<std::collections::HashMap<u32, Vec<UnixMicros>>>,
}

impl RefusalCounter {
    /// Counts a refusal of `uid` at `now_us`; returns how many fell within
    /// the window when that reaches [`REFUSALS_BEFORE_BREACH`] (once per
    /// burst: the count then starts again).
    pub fn refused(&self, uid: u32, now_us: UnixMicros) -> Option<usize> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let times = seen.entry(uid).or_default();
        times.retain(|t| now_us - *t < REFUSAL_WINDOW_US);
        times.push(now_us);
        if times.len() >= REFUSALS_BEFORE_BREACH {
            let n = times.len();
            times.clear();
            Some(n)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_refusals_from_one_uid_is_noticed_once_per_burst() {
        let c = RefusalCounter::default();
        let t = 1_000_000_000_000;
        for i in 0..9 {
            assert_eq!(c.refused(7, t + i), None);
            assert_eq!(c.refused(8, t + i), None, "another uid counts apart");
        }
        assert_eq!(c.refused(7, t + 9), Some(10));
        assert_eq!(c.refused(7, t + 10), None, "the next burst starts again");
        // Refusals spread wider than the window never add up.
        let c = RefusalCounter::default();
        for i in 0..30 {
            assert_eq!(c.refused(7, t + i * REFUSAL_WINDOW_US / 5), None);
        }
    }

    #[test]
    fn the_clocks_run_from_detection() {
        let b = BreachRow {
            id: 1,
            detected_us: 0,
            kind: "audit_chain".into(),
            subject: "audit".into(),
            what: "x".into(),
            status: "open".into(),
            dpo_informed_us: None,
            assessment: None,
            actions: None,
            authority_notified_us: None,
            not_notified_reason: None,
            closed_us: None,
            closed_by: None,
            close_note: None,
        };
        let s = with_clocks(b.clone(), vec![], 4 * HOUR_US - 1);
        assert!(!s.dpo_overdue && !s.authority_overdue);
        let s = with_clocks(b.clone(), vec![], 4 * HOUR_US);
        assert!(s.dpo_overdue && !s.authority_overdue);
        let s = with_clocks(b.clone(), vec![], 72 * HOUR_US);
        assert!(s.dpo_overdue && s.authority_overdue);
        let informed = BreachRow {
            dpo_informed_us: Some(HOUR_US),
            not_notified_reason: Some("no risk to anyone".into()),
            ..b
        };
        let s = with_clocks(informed, vec![], 100 * HOUR_US);
        assert!(!s.dpo_overdue && !s.authority_overdue);
    }
}
