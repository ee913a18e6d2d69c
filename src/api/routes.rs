//! The endpoints: from a parsed request and a peer to a JSON reply. Plain
//! synchronous code (it runs on tokio's blocking pool), so it can be driven
//! directly by tests.
//!
//! Every request that reaches the router is audited, allowed or not, before
//! its reply is sent; if the audit entry cannot be written, the reply is a
//! 503 and nothing is returned or done (an unaudited access must not happen).

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::{Action, Caller, Peer};
use super::errors::ApiError;
use super::params::{Query, check_id, show_time};
use crate::audit::{Filter, Record, SignedCheckpoint};
use crate::config::{Config, Role};
use crate::error::{Error, ErrorKind, Result};
use crate::index::{SCHEMA_VERSION, SegmentRow};

/// Longest accepted purpose of access, in bytes.
pub const MAX_REASON_LEN: usize = 500;
/// Default window of a recordings listing when `from` is not given.
const DEFAULT_WINDOW_US: i64 = 24 * 3600 * 1_000_000;
/// Most audit entries one request returns.
const MAX_AUDIT_LIMIT: u32 = 10_000;

/// A request as the router sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a Method,
    /// The raw path, e.g. `/v1/cameras/cam1/recordings`.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    pub body: &'a [u8],
}

/// The reply: status and JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    /// A non-JSON reply, as (content type, text); `body` is then unused.
    pub text: Option<(&'static str, String)>,
    /// A streamed reply (an export); `body` and `text` are then unused.
    pub stream: Option<Stream>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// Writes a streamed body; returns a note for the closing audit entry, or
/// the error that cut the stream short.
pub type StreamFn = Box<dyn FnOnce(&mut dyn std::io::Write) -> Result<String> + Send>;

/// A reply body produced after the request's audit entry is written, on a
/// thread of its own, and the audit entry that records how it ended.
pub struct Stream {
    pub content_type: &'static str,
    pub run: StreamFn,
    /// The closing entry's action, role, target and reason.
    pub audit: StreamAudit,
}

/// What the closing audit entry of a stream names.
#[derive(Debug, Clone)]
pub struct StreamAudit {
    pub action: String,
    pub role: String,
    pub target: String,
    pub reason: String,
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        Reply {
            status: e.status,
            body: e.body(),
            text: None,
            stream: None,
        }
    }
}

/// What the audit entry will say; filled in as the request is understood.
struct Draft {
    action: String,
    role: String,
    target: String,
    reason: String,
}

/// What a successful handler returns: the reply, and something to do once
/// the audit entry is written (e.g. send the reload signal).
struct Done {
    status: StatusCode,
    body: Value,
    text: Option<(&'static str, String)>,
    stream: Option<Stream>,
    after: Option<Box<dyn FnOnce() -> Result<()> + Send>>,
}

impl Done {
    fn ok(body: Value) -> Result<Done, ApiError> {
        Ok(Done {
            status: StatusCode::OK,
            body,
            text: None,
            stream: None,
            after: None,
        })
    }
}

/// The body of a POST that only carries an optional reason: empty, `{}` or
/// `{"reason": "..."}`.
fn optional_reason(body: &[u8]) -> Result<Option<String>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        reason: Option<String>,
    }
    if body.is_empty() {
        return Ok(None);
    }
    let body: Body = serde_json::from_slice(body).map_err(|e| {
        Error::invalid(format!(
            "the body is not the expected JSON ({e}); send {{}} or {{\"reason\": \"...\"}}"
        ))
    })?;
    Ok(body.reason)
}

/// Handles one request from `peer`.
pub fn handle(state: &ApiState, peer: &Peer, req: Request) -> Reply {
    let config = state.config();
    let caller = Caller::new(peer.clone(), &config, state.daemon_uid);
    let mut draft = Draft {
        action: format!("{} {}", req.method, printable(req.path, 200)),
        role: "none".into(),
        target: "-".into(),
        reason: String::new(),
    };
    let result = dispatch(state, &config, &caller, req, &mut draft);
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.kind.as_str(),
    };
    let role = draft.role.clone();
    let record = Record {
        at_us: state.clocks.realtime(),
        uid: peer.uid,
        user: peer.user_name(),
        pid: peer.pid,
        role: draft.role,
        action: draft.action,
        target: draft.target,
        reason: draft.reason,
        outcome: outcome.to_owned(),
    };
    let appended = state.audit.append(record);
    state.requests.count(match appended {
        Ok(_) => outcome,
        Err(_) => ErrorKind::Unavailable.as_str(),
    });
    if let Err(e) = appended {
        tracing::error!(error = %e, "cannot write the audit log; refusing the request");
        return ApiError::from(Error::unavailable(format!(
            "the audit log cannot be written ({e}); no request is served until it can"
        )))
        .into();
    }
    match result {
        Ok(done) => {
            if let Some(after) = done.after
                && let Err(e) = after()
            {
                return ApiError::from(e).into();
            }
            Reply {
                status: done.status,
                body: done.body,
                text: done.text,
                stream: done.stream.map(|mut st| {
                    st.audit.role = role.clone();
                    st
                }),
            }
        }
        Err(e) => {
            if e.kind == ErrorKind::PermissionDenied {
                tracing::warn!(uid = peer.uid, pid = peer.pid, "{}", e.message);
            }
            e.into()
        }
    }
}

/// At most `max` characters of `s`, with control characters escaped.
fn printable(s: &str, max: usize) -> String {
    s.chars().take(max).flat_map(char::escape_debug).collect()
}

fn dispatch(
    state: &ApiState,
    config: &Config,
    caller: &Caller,
    req: Request,
    draft: &mut Draft,
) -> Result<Done, ApiError> {
    let segs: Vec<&str> = req.path.split('/').collect();
    let Some(rest) = segs.strip_prefix(&["", "v1"]) else {
        return Err(Error::not_found(format!(
            "no endpoint {}; the API's paths start with /v1/ (see docs/api.md)",
            printable(req.path, 200)
        ))
        .into());
    };
    let get = req.method == Method::GET;
    let (action, camera) = match rest {
        ["status"] => (Action::Status, None),
        ["cameras"] => (Action::Cameras, None),
        ["cameras", id] => (Action::Cameras, Some(*id)),
        ["cameras", id, "recordings"] => (Action::Recordings, Some(*id)),
        ["cameras", id, "enable" | "disable" | "restart"] => (Action::CameraControl, Some(*id)),
        ["retention", "status"] => (Action::RetentionStatus, None),
        ["retention", "plan"] => (Action::RetentionPlan, None),
        ["deletions"] => (Action::Deletions, None),
        ["audit"] => (Action::AuditRead, None),
        ["audit", "verify"] => (Action::AuditVerify, None),
        ["config", "reload"] => (Action::Reload, None),
        ["metrics"] => (Action::Metrics, None),
        ["cases"] if req.method == Method::POST => (Action::CaseWrite, None),
        ["cases"] | ["cases", _] => (Action::CaseRead, None),
        ["cases", _, "verify"] => (Action::CaseRead, None),
        ["cases", _, "holds" | "review"] => (Action::CaseWrite, None),
        ["cases", _, "close"] => (Action::CaseClose, None),
        ["disclosures"] => (Action::Disclosures, None),
        ["key"] => (Action::KeyShow, None),
        ["exports"] => (Action::Export, None),
        _ => {
            return Err(Error::not_found(format!(
                "no endpoint {}; see docs/api.md for the list",
                printable(req.path, 200)
            ))
            .into());
        }
    };
    draft.action = action.as_str().to_owned();
    let want = if matches!(
        action,
        Action::Reload
            | Action::CameraControl
            | Action::CaseWrite
            | Action::CaseClose
            | Action::Export
    ) {
        Method::POST
    } else {
        Method::GET
    };
    if *req.method != want {
        let msg = if matches!(action, Action::AuditRead | Action::AuditVerify) {
            "the audit log cannot be changed or deleted through the API: it is append-only \
             (docs/design/security.md); use GET to read it"
                .to_owned()
        } else {
            format!("{} takes {want}, not {}", req.path, req.method)
        };
        return Err(ApiError::method_not_allowed(msg));
    }
    let camera = match camera {
        Some(raw) => {
            let id = super::params::decode_path(raw)?;
            draft.target = format!("camera {}", printable(&id, 80));
            check_id("camera", &id)?;
            Some(id)
        }
        None => None,
    };
    let role = caller.authorize(action)?;
    draft.role = role.as_str().to_owned();
    if get && !req.body.is_empty() {
        return Err(
            Error::invalid("a GET request takes no body; put parameters in the query").into(),
        );
    }
    let query = Query::parse(req.query)?;
    let tz = &config.timezone;
    match action {
        Action::Status => {
            query.only(&[])?;
            Done::ok(status(state, config, caller))
        }
        Action::Cameras => {
            query.only(&[])?;
            let list = cameras(state, config, caller);
            match camera {
                None => Done::ok(json!({ "cameras": list })),
                Some(id) => {
                    let one = list.into_iter().find(|c| c["id"] == id.as_str());
                    match one {
                        Some(c) => Done::ok(c),
                        None => Err(no_camera(config, &id).into()),
                    }
                }
            }
        }
        Action::Recordings => {
            let id = camera.expect("route has an id");
            query.only(&["from", "to", "reason"])?;
            let now = state.clocks.realtime();
            let to = query.time("to", tz)?.unwrap_or(now);
            let from = query
                .time("from", tz)?
                .unwrap_or(to.saturating_sub(DEFAULT_WINDOW_US));
            draft.target = format!(
                "camera {id} from {} to {}",
                show_time(from, tz),
                show_time(to, tz)
            );
            let zone = config.camera(&id).map(|c| c.zone.clone());
            let visible = match &zone {
                Some(z) => caller.may_see_zone(z),
                None => caller.all_zones(),
            };
            if !visible || (role == Role::Viewer && zone.is_none()) {
                let zones: Vec<&str> = caller.zones.iter().map(String::as_str).collect();
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    format!(
                        "{} has role viewer for zone{} {}; camera {id} is {}",
                        caller.peer.describe(),
                        if zones.len() == 1 { "" } else { "s" },
                        zones.join(", "),
                        match &zone {
                            Some(z) => format!("in zone {z}"),
                            None => "not in the configuration".into(),
                        }
                    ),
                )
                .into());
            }
            let reason = query.get("reason").unwrap_or("").trim();
            draft.reason = printable(reason, MAX_REASON_LEN);
            if reason.is_empty() {
                return Err(Error::invalid(
                    "listing recordings needs a stated purpose of access (004 §13): add \
                     reason=... (custosctl --reason TEXT), e.g. \"incident report 2026-14\"",
                )
                .into());
            }
            if reason.len() > MAX_REASON_LEN {
                return Err(Error::invalid(format!(
                    "the reason is longer than {MAX_REASON_LEN} bytes; give a short purpose \
                     and a reference to the full record"
                ))
                .into());
            }
            if from >= to {
                return Err(Error::invalid(format!(
                    "`from` ({}) must be before `to` ({})",
                    show_time(from, tz),
                    show_time(to, tz)
                ))
                .into());
            }
            let index = state.read_index()?;
            let segments = index.segments(&id, from, to)?;
            let outages = index.outages(&id, from, to)?;
            if zone.is_none() && segments.is_empty() && outages.is_empty() {
                return Err(no_camera(config, &id).into());
            }
            let gaps = gaps(&segments, from, to.min(now));
            Done::ok(json!({
                "camera": id,
                "zone": zone,
                "timezone": config.timezone_name,
                "from_us": from,
                "to_us": to,
                "segments": segments,
                "outages": outages,
                "gaps": gaps,
            }))
        }
        Action::CameraControl => {
            let id = camera.expect("route has an id");
            let op = match rest.last() {
                Some(&"enable") => crate::daemon::CameraOp::Enable,
                Some(&"disable") => crate::daemon::CameraOp::Disable,
                _ => crate::daemon::CameraOp::Restart,
            };
            query.only(&[])?;
            draft.target = format!("camera {id}: {}", rest.last().unwrap_or(&""));
            if let Some(r) = optional_reason(req.body)? {
                draft.reason = printable(&r, MAX_REASON_LEN);
            }
            if config.camera(&id).is_none() {
                return Err(no_camera(config, &id).into());
            }
            let note = state.control_camera(&id, op, caller.peer.describe())?;
            Done::ok(json!({ "camera": id, "note": note }))
        }
        Action::RetentionStatus | Action::RetentionPlan => {
            query.only(&[])?;
            super::retention(state, config, action == Action::RetentionPlan)
                .map(|body| Done {
                    status: StatusCode::OK,
                    body,
                    text: None,
                    stream: None,
                    after: None,
                })
                .map_err(ApiError::from)
        }
        Action::Deletions => {
            query.only(&["from", "to"])?;
            let to = query.time("to", tz)?.unwrap_or(i64::MAX);
            let from = query.time("from", tz)?.unwrap_or(i64::MIN);
            draft.target = range_target(query.get("from"), query.get("to"));
            let rows = state.read_index()?.deletion_journal(from, to)?;
            Done::ok(json!({ "timezone": config.timezone_name, "deletions": rows }))
        }
        Action::AuditRead => {
            query.only(&["from", "to", "uid", "action", "limit"])?;
            let limit = query.u32("limit")?.unwrap_or(100);
            if limit == 0 || limit > MAX_AUDIT_LIMIT {
                return Err(Error::invalid(format!(
                    "limit must be 1 to {MAX_AUDIT_LIMIT}; narrow the time range for more"
                ))
                .into());
            }
            let filter = Filter {
                from_us: query.time("from", tz)?,
                to_us: query.time("to", tz)?,
                uid: query.u32("uid")?,
                action: query.get("action").map(str::to_owned),
                limit: Some(limit),
            };
            draft.target = range_target(query.get("from"), query.get("to"));
            let entries = state.read_index()?.audit_entries(&filter)?;
            Done::ok(json!({ "timezone": config.timezone_name, "entries": entries }))
        }
        Action::AuditVerify => {
            query.only(&["checkpoint"])?;
            let external = match query.get("checkpoint") {
                None => None,
                Some(c) => Some(SignedCheckpoint::parse(c)?),
            };
            let v = state.audit.verify(external.as_ref())?;
            let head = state.audit.head();
            let checkpoint = state.audit.signed_head().to_string();
            Done::ok(json!({ "verification": v, "head": head, "checkpoint": checkpoint }))
        }
        Action::Metrics => {
            query.only(&[])?;
            Ok(Done {
                status: StatusCode::OK,
                body: Value::Null,
                text: Some((crate::metrics::CONTENT_TYPE, crate::metrics::render(state)?)),
                stream: None,
                after: None,
            })
        }
        Action::CaseRead
        | Action::CaseWrite
        | Action::CaseClose
        | Action::Disclosures
        | Action::KeyShow => {
            let mut audit = super::evidence::Audit {
                target: draft.target.clone(),
                reason: None,
            };
            let r =
                super::evidence::handle(state, caller, action, rest, &query, req.body, &mut audit);
            draft.target = audit.target;
            if let Some(reason) = audit.reason {
                draft.reason = printable(&reason, MAX_REASON_LEN);
            }
            Done::ok(r?)
        }
        Action::Export => {
            query.only(&[])?;
            let mut audit = super::evidence::Audit {
                target: draft.target.clone(),
                reason: None,
            };
            let r = super::evidence::export(state, caller, req.body, &mut audit);
            draft.target = audit.target.clone();
            if let Some(reason) = &audit.reason {
                draft.reason = printable(reason, MAX_REASON_LEN);
            }
            let run = r?;
            Ok(Done {
                status: StatusCode::OK,
                body: Value::Null,
                text: None,
                stream: Some(Stream {
                    content_type: crate::export::stream::CONTENT_TYPE,
                    run,
                    audit: StreamAudit {
                        action: "export.finished".into(),
                        role: String::new(),
                        target: draft.target.clone(),
                        reason: draft.reason.clone(),
                    },
                }),
                after: None,
            })
        }
        Action::Reload => {
            query.only(&[])?;
            if let Some(r) = optional_reason(req.body)? {
                draft.reason = printable(&r, MAX_REASON_LEN);
            }
            let reload = state.reload.clone();
            Ok(Done {
                text: None,
                stream: None,
                status: StatusCode::ACCEPTED,
                body: json!({
                    "accepted": true,
                    "note": "the daemon is reloading its configuration; a configuration with \
                             errors is not applied and the old one stays in force: check the \
                             daemon's log (journalctl -u custosd)",
                }),
                after: Some(Box::new(move || reload())),
            })
        }
    }
}

fn range_target(from: Option<&str>, to: Option<&str>) -> String {
    format!(
        "from {} to {}",
        printable(from.unwrap_or("start"), 40),
        printable(to.unwrap_or("end"), 40)
    )
}

fn no_camera(config: &Config, id: &str) -> Error {
    Error::not_found(format!(
        "no camera {id:?} in {} and no footage of it in the index; `custosctl cameras` lists them",
        config.path.display()
    ))
}

/// Stretches of `[from, to)` not covered by any segment.
fn gaps(segments: &[SegmentRow], from: i64, to: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = from;
    for s in segments {
        let end = s.end_us.unwrap_or(to);
        if s.start_us > cursor {
            out.push(json!({"from_us": cursor, "to_us": s.start_us.min(to)}));
        }
        cursor = cursor.max(end);
        if cursor >= to {
            break;
        }
    }
    if cursor < to {
        out.push(json!({"from_us": cursor, "to_us": to}));
    }
    out
}

fn status(state: &ApiState, config: &Config, caller: &Caller) -> Value {
    let storage: Vec<Value> = config
        .storage
        .iter()
        .map(|r| {
            let fs = nix::sys::statvfs::statvfs(&r.path).ok();
            json!({
                "id": r.id,
                "path": r.path,
                "free_bytes": fs.as_ref().map(|s| s.blocks_available() * s.fragment_size()),
                "total_bytes": fs.as_ref().map(|s| s.blocks() * s.fragment_size()),
                "min_free": r.min_free,
                "budget": r.budget,
            })
        })
        .collect();
    json!({
        "daemon": {
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "started_us": state.started_us,
            "now_us": state.clocks.realtime(),
            "timezone": config.timezone_name,
            "config": config.path,
            "schema": SCHEMA_VERSION,
            "audit_seq": state.audit.head().seq,
        },
        "you": {
            "uid": caller.peer.uid,
            "user": caller.peer.user_name(),
            "roles": caller.roles,
            "zones": caller.zones,
        },
        "storage": storage,
        "storage_alarms": state.alarms.snapshot(),
        "overdue_reviews": overdue_reviews(state, caller),
        "cameras": cameras(state, config, caller),
    })
}

/// Open cases past their review date (a retention violation: evidence is
/// kept only while its purpose lasts), for callers who may read cases;
/// `null` for others or if the index cannot be read.
fn overdue_reviews(state: &ApiState, caller: &Caller) -> Value {
    if caller.authorize(Action::CaseRead).is_err() {
        return Value::Null;
    }
    match state
        .read_index()
        .and_then(|ix| ix.overdue_cases(state.clocks.realtime()))
    {
        Ok(ids) => json!(ids),
        Err(e) => {
            tracing::warn!(error = %e, "reading overdue case reviews for the status");
            Value::Null
        }
    }
}

/// The configured cameras the caller may see, with their live status. No
/// URL: it may carry credentials.
fn cameras(state: &ApiState, config: &Config, caller: &Caller) -> Vec<Value> {
    let statuses = state.cameras.read().unwrap_or_else(|p| p.into_inner());
    config
        .cameras
        .iter()
        .filter(|c| caller.all_zones() || caller.zones.contains(&c.zone))
        .map(|c| {
            let snap = statuses.get(&c.id).map(|s| s.snapshot());
            let state = match (&snap, c.enabled) {
                (_, false) => json!("disabled"),
                (Some(s), true) => json!(s.state),
                (None, true) => json!("stopped"),
            };
            json!({
                "id": c.id,
                "name": c.name,
                "zone": c.zone,
                "area": c.area,
                "enabled": c.enabled,
                "audio": c.audio,
                "segment_secs": c.segment.as_secs(),
                "state": state,
                "last_error": snap.as_ref().and_then(|s| s.last_error.clone()),
                "last_frame_us": snap.as_ref().and_then(|s| s.last_frame_us),
                "segments_written": snap.as_ref().map(|s| s.segments_written),
                "bytes_written": snap.as_ref().map(|s| s.bytes_written),
                "reconnects": snap.as_ref().map(|s| s.reconnects),
            })
        })
        .collect()
}
