//! The endpoints: from a parsed request and a peer to a JSON reply. Plain
//! synchronous code (it runs on tokio's blocking pool), so it can be driven
//! directly by tests.
//!
//! Every request that reaches the router is audited, allowed or not, before
//! its reply is sent; if the audit entry cannot be written, the reply is a
//! 503 and nothing is returned (an unaudited access must not happen).
//!
//! A state-changing request (a POST) is audited twice: an entry with outcome
//! [`INTENT`] once it is authorised and checked, just before it acts, and
//! its outcome entry after. The act runs only once its intent is committed,
//! so an act is never missing from the log; if the intent cannot be
//! written, the reply is a 503 and nothing is done. (An export's request
//! entry is its intent, written before the first byte; `export.finished`
//! is its outcome.)

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::{Action, Caller, Peer};
use super::errors::ApiError;
use super::params::{Query, check_id};
use crate::audit::SignedCheckpoint;
use crate::config::{Config, Role};
use crate::error::{Error, ErrorKind, Result};
use crate::index::{AuditFilter, AuditRecord};

/// The outcome of the entry a state-changing request writes before it acts.
pub const INTENT: &str = "intent";
/// Longest accepted purpose of access, in bytes.
pub const MAX_REASON_LEN: usize = 500;
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
    /// Further reply headers (a view's length and delivered range).
    pub headers: Vec<(&'static str, String)>,
    pub run: StreamFn,
    /// The closing entry's action, role, target and reason.
    pub audit: StreamAudit,
    /// Set if the body can be sent in parts (HTTP range requests): its
    /// length and what writes one part.
    pub ranged: Option<Ranged>,
}

/// Writes bytes `range` of a streamed body of `length` bytes.
pub struct Ranged {
    pub length: u64,
    pub run: RangedFn,
}

/// Writes one part of a body; like [`StreamFn`].
pub type RangedFn =
    Box<dyn FnOnce(std::ops::Range<u64>, &mut dyn std::io::Write) -> Result<String> + Send>;

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

/// What the audit entries will say; filled in as the request is understood.
pub(super) struct Draft<'a> {
    state: &'a ApiState,
    peer: &'a Peer,
    action: String,
    role: String,
    target: String,
    reason: String,
    /// The seq of the intent entry, once written.
    intent: Option<i64>,
}

impl Draft<'_> {
    pub(super) fn set_target(&mut self, target: String) {
        self.target = target;
    }

    pub(super) fn set_reason(&mut self, reason: &str) {
        self.reason = printable(reason, MAX_REASON_LEN);
    }

    /// The stated purpose of access that reaching footage needs (004 §13),
    /// recorded in the audit entry; refused when missing or too long.
    /// `doing` names the act for the message ("viewing footage").
    pub(super) fn stated_reason<'q>(&mut self, query: &'q Query, doing: &str) -> Result<&'q str> {
        let reason = query.get("reason").unwrap_or("").trim();
        self.set_reason(reason);
        if reason.is_empty() {
            return Err(Error::invalid(format!(
                "{doing} needs a stated purpose of access (004 §13): add reason=... \
                 (custosctl --reason TEXT), e.g. \"incident report 2026-14\""
            )));
        }
        if reason.len() > MAX_REASON_LEN {
            return Err(Error::invalid(format!(
                "the reason is longer than {MAX_REASON_LEN} bytes; give a short purpose and a \
                 reference to the full record"
            )));
        }
        Ok(reason)
    }

    fn record(&self, outcome: &str) -> AuditRecord {
        AuditRecord {
            at_us: self.state.clocks.realtime(),
            uid: self.peer.uid,
            user: self.peer.user_name(),
            pid: self.peer.pid,
            role: self.role.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            reason: self.reason.clone(),
            outcome: outcome.to_owned(),
        }
    }

    /// Writes the intent entry of a state-changing request. Called once the
    /// request is checked, right before it acts; on an error the caller
    /// must do nothing.
    pub(super) fn intend(&mut self) -> Result<()> {
        match self.state.audit.append(self.record(INTENT)) {
            Ok(entry) => {
                self.intent = Some(entry.seq);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, action = %self.action,
                    "cannot write the audit log; refusing to act");
                Err(Error::unavailable(format!(
                    "the audit log cannot be written ({e}); nothing was done, and no request \
                     is served until it can"
                )))
            }
        }
    }
}

/// What a successful handler returns.
struct Done {
    status: StatusCode,
    body: Value,
    text: Option<(&'static str, String)>,
    stream: Option<Stream>,
}

impl Done {
    pub(super) fn ok(body: Value) -> Result<Done, ApiError> {
        Ok(Done {
            status: StatusCode::OK,
            body,
            text: None,
            stream: None,
        })
    }

    /// A package streamed as an export's, audited at its end as `action`
    /// with the request's target and reason.
    fn package(run: StreamFn, action: &str, draft: &Draft) -> Result<Done, ApiError> {
        Ok(Done {
            status: StatusCode::OK,
            body: Value::Null,
            text: None,
            stream: Some(Stream {
                content_type: crate::export::stream::CONTENT_TYPE,
                headers: Vec::new(),
                ranged: None,
                run,
                audit: StreamAudit {
                    action: action.into(),
                    role: String::new(),
                    target: draft.target.clone(),
                    reason: draft.reason.clone(),
                },
            }),
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
        state,
        peer,
        action: format!("{} {}", req.method, printable(req.path, 200)),
        role: "none".into(),
        target: "-".into(),
        reason: String::new(),
        intent: None,
    };
    let result = dispatch(state, &config, &caller, req, &mut draft);
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.kind.as_str(),
    };
    let appended = state.audit.append(draft.record(outcome));
    state.requests.count(match appended {
        Ok(_) => outcome,
        Err(_) => ErrorKind::Unavailable.as_str(),
    });
    if let Err(e) = appended {
        tracing::error!(error = %e, "cannot write the audit log; refusing the request");
        // Acts happen only after their intent entry, so without one nothing
        // was done.
        let message = match (draft.intent, &result) {
            (None, _) => format!(
                "the audit log cannot be written ({e}); nothing was done, and no request is \
                 served until it can"
            ),
            (Some(seq), Ok(_)) => format!(
                "{} was done (audit entry {seq} records the intent), but its outcome cannot \
                 be written to the audit log ({e}); no further request is served until it can",
                draft.action
            ),
            (Some(seq), Err(failed)) => format!(
                "{} failed ({}; audit entry {seq} records the intent), and its outcome cannot \
                 be written to the audit log ({e}); no further request is served until it can",
                draft.action, failed.message
            ),
        };
        return ApiError::from(Error::unavailable(message)).into();
    }
    match result {
        Ok(done) => Reply {
            status: done.status,
            body: done.body,
            text: done.text,
            stream: done.stream.map(|mut st| {
                st.audit.role = draft.role.clone();
                st
            }),
        },
        Err(e) => {
            if e.kind == ErrorKind::PermissionDenied {
                tracing::warn!(uid = peer.uid, pid = peer.pid, "{}", e.message);
                let now = state.clocks.realtime();
                if let Some(count) = state.refusals.refused(peer.uid, now) {
                    state.record_breach(&crate::breach::Detected::RefusedAccess {
                        uid: peer.uid,
                        user: peer.describe(),
                        count,
                    });
                }
            }
            e.into()
        }
    }
}

/// At most `max` characters of `s`, with control characters escaped.
fn printable(s: &str, max: usize) -> String {
    s.chars().take(max).flat_map(char::escape_debug).collect()
}

/// The action a path (split after `/v1/`) asks for, and the camera id in it.
fn route<'a>(rest: &[&'a str], method: &Method) -> Option<(Action, Option<&'a str>)> {
    Some(match rest {
        ["status"] => (Action::Status, None),
        ["cameras"] => (Action::Cameras, None),
        ["cameras", id] => (Action::Cameras, Some(*id)),
        ["cameras", id, "recordings"] => (Action::Recordings, Some(*id)),
        ["cameras", id, "enable" | "disable" | "restart"] => (Action::CameraControl, Some(*id)),
        ["cameras", id, "view"] => (Action::View, Some(*id)),
        ["cameras", id, "live"] => (Action::LiveView, Some(*id)),
        ["cameras", id, "activity"] => (Action::Activity, Some(*id)),
        ["cameras", id, "sheet"] => (Action::Sheet, Some(*id)),
        ["retention", "status"] => (Action::RetentionStatus, None),
        ["retention", "plan"] => (Action::RetentionPlan, None),
        ["deletions"] => (Action::Deletions, None),
        ["audit"] => (Action::AuditRead, None),
        ["audit", "verify"] => (Action::AuditVerify, None),
        ["config", "reload"] => (Action::Reload, None),
        ["metrics"] => (Action::Metrics, None),
        ["cases"] if method == Method::POST => (Action::CaseWrite, None),
        ["cases"] | ["cases", _] => (Action::CaseRead, None),
        ["cases", _, "verify"] => (Action::CaseRead, None),
        ["cases", _, "holds" | "review"] => (Action::CaseWrite, None),
        ["cases", _, "close"] => (Action::CaseClose, None),
        ["disclosures"] => (Action::Disclosures, None),
        ["key"] => (Action::KeyShow, None),
        ["exports"] => (Action::Export, None),
        ["compliance"] => (Action::Compliance, None),
        ["alerts"] => (Action::AlertsRead, None),
        ["alerts", "test"] => (Action::AlertsTest, None),
        ["breaches"] if method == Method::POST => (Action::BreachWrite, None),
        ["breaches"] | ["breaches", _] => (Action::BreachRead, None),
        ["breaches", _, "note" | "close"] => (Action::BreachWrite, None),
        ["requests"] if method == Method::POST => (Action::RequestWrite, None),
        ["requests"] | ["requests", _] | ["requests", _, "answer"] => (Action::RequestRead, None),
        ["requests", _, "erase"] => (Action::RequestErase, None),
        [
            "requests",
            _,
            "extend" | "close" | "restrict" | "objection" | "rectify",
        ]
        | ["requests", _, "restrictions", _, "lift"] => (Action::RequestWrite, None),
        ["inbox"] => (Action::InboxStatus, None),
        ["inbox", "retry"] => (Action::InboxRetry, None),
        ["requests", _, "redactions"] => (Action::RedactionWrite, None),
        ["redactions"] | ["redactions", _] | ["redactions", _, "tracks.png" | "copy.png"] => {
            (Action::RedactionRead, None)
        }
        ["redactions", _, "choose" | "cancel" | "resume"] => (Action::RedactionWrite, None),
        ["redactions", _, "approve"] => (Action::RedactionApprove, None),
        ["redactions", _, "release"] => (Action::RedactionRelease, None),
        ["vault"] => (Action::VaultStatus, None),
        ["vault", "cases", _] => (Action::VaultList, None),
        _ => return None,
    })
}

/// Whether a request may take long (it hashes or copies footage, or walks
/// the whole audit chain): such requests take turns, so they never hold
/// every thread that answers the others.
pub fn is_long(method: &Method, path: &str) -> bool {
    let segs: Vec<&str> = path.split('/').collect();
    let Some(rest) = segs.strip_prefix(&["", "v1"]) else {
        return false;
    };
    match route(rest, method) {
        Some((
            Action::Export
            | Action::AuditVerify
            | Action::RequestErase
            | Action::Compliance
            | Action::View
            | Action::LiveView
            | Action::Activity
            | Action::Sheet
            | Action::VaultList
            | Action::RedactionRelease,
            _,
        )) => true,
        Some((Action::CaseRead | Action::CaseWrite, _)) => {
            matches!(rest.last(), Some(&"verify" | &"holds"))
        }
        _ => false,
    }
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
    let Some((action, camera)) = route(rest, req.method) else {
        return Err(Error::not_found(format!(
            "no endpoint {}; see docs/api.md for the list",
            printable(req.path, 200)
        ))
        .into());
    };
    draft.action = action.as_str().to_owned();
    let want = if matches!(
        action,
        Action::Reload
            | Action::CameraControl
            | Action::CaseWrite
            | Action::CaseClose
            | Action::Export
            | Action::RequestWrite
            | Action::RequestErase
            | Action::BreachWrite
            | Action::AlertsTest
            | Action::InboxRetry
            | Action::RedactionWrite
            | Action::RedactionApprove
            | Action::RedactionRelease
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
    // One reading of the clock for the whole request (relative times).
    let now = state.clocks.realtime();
    match action {
        Action::Status => {
            query.only(&[])?;
            Done::ok(super::status::status(state, config, caller))
        }
        Action::Cameras => {
            query.only(&[])?;
            let list = super::status::cameras(state, config, caller);
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
            Done::ok(super::recordings::list(
                state, config, caller, &id, &query, draft, now,
            )?)
        }
        Action::CameraControl => {
            let id = camera.expect("route has an id");
            let op = match rest.last() {
                Some(&"enable") => crate::ingest::control::CameraOp::Enable,
                Some(&"disable") => crate::ingest::control::CameraOp::Disable,
                _ => crate::ingest::control::CameraOp::Restart,
            };
            query.only(&[])?;
            draft.target = format!("camera {id}: {}", rest.last().unwrap_or(&""));
            if let Some(r) = optional_reason(req.body)? {
                draft.reason = printable(&r, MAX_REASON_LEN);
            }
            if config.camera(&id).is_none() {
                return Err(no_camera(config, &id).into());
            }
            draft.intend()?;
            let note = state.control_camera(&id, op, caller.peer.describe())?;
            Done::ok(json!({ "camera": id, "note": note }))
        }
        Action::RetentionStatus | Action::RetentionPlan => {
            query.only(&[])?;
            super::retention(state, config, action == Action::RetentionPlan)
                .map_err(ApiError::from)
                .and_then(Done::ok)
        }
        Action::Deletions => {
            query.only(&["from", "to"])?;
            let to = query.time("to", tz, now)?.unwrap_or(i64::MAX);
            let from = query.time("from", tz, now)?.unwrap_or(i64::MIN);
            draft.target = range_target(query.get("from"), query.get("to"));
            let rows = state.read_index()?.deletion_journal(from, to)?;
            Done::ok(json!({ "timezone": config.timezone_name, "deletions": rows }))
        }
        Action::AuditRead => {
            query.only(&["from", "to", "uid", "action", "camera", "limit"])?;
            let limit = query.u32("limit")?.unwrap_or(100);
            if limit == 0 || limit > MAX_AUDIT_LIMIT {
                return Err(Error::invalid(format!(
                    "limit must be 1 to {MAX_AUDIT_LIMIT}; narrow the time range for more"
                ))
                .into());
            }
            let filter = AuditFilter {
                from_us: query.time("from", tz, now)?,
                to_us: query.time("to", tz, now)?,
                uid: query.u32("uid")?,
                action: query.get("action").map(str::to_owned),
                camera: query.get("camera").map(str::to_owned),
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
            if crate::failpoint::is("slow-audit-verify") {
                std::thread::sleep(std::time::Duration::from_secs(3));
            }
            let v = state.audit.verify(external.as_ref())?;
            if let Some(b) = &v.broken {
                state.record_breach(&crate::breach::Detected::AuditChain {
                    seq: b.seq,
                    problem: b.problem.clone(),
                });
            }
            let head = state.audit.head();
            let checkpoint = state.audit.signed_head().to_string();
            Done::ok(json!({ "verification": v, "head": head, "checkpoint": checkpoint }))
        }
        Action::Metrics => {
            query.only(&[])?;
            Ok(Done {
                status: StatusCode::OK,
                body: Value::Null,
                text: Some((crate::metrics::CONTENT_TYPE, state.render_metrics()?)),
                stream: None,
            })
        }
        Action::CaseRead
        | Action::CaseWrite
        | Action::CaseClose
        | Action::Disclosures
        | Action::KeyShow => {
            let r = super::evidence::handle(state, caller, action, rest, &query, req.body, draft);
            Done::ok(r?)
        }
        Action::AlertsRead => {
            query.only(&[])?;
            let rows = state.read_index()?.recent_alerts(100)?;
            Done::ok(json!({ "timezone": config.timezone_name, "alerts": rows }))
        }
        Action::AlertsTest => {
            query.only(&[])?;
            if config.alerts.email.is_none() && config.alerts.webhook.is_none() {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "no [alerts] channel is configured: give smtp_host (and from, to) or \
                     webhook_url in the configuration, then reload",
                )
                .into());
            }
            draft.intend()?;
            let alert = crate::alerts::Alert {
                key: format!("test:{now}"),
                event: "test",
                subject: "Test alert".into(),
                body: format!(
                    "A test alert asked for by {}. If you read this, custosd can reach you.",
                    caller.peer.describe()
                ),
            };
            let ids = crate::alerts::raise(
                &crate::index::Index::open(&state.index_path)?,
                config,
                &alert,
                now,
            )?;
            Done::ok(json!({
                "queued": ids,
                "note": "queued; custosd sends it within seconds: custosctl alerts list shows whether it went",
            }))
        }
        Action::BreachRead | Action::BreachWrite => {
            let r = super::breaches::handle(state, action, rest, &query, req.body, caller, draft);
            Done::ok(r?)
        }
        Action::Compliance => {
            query.only(&[])?;
            Done::ok(super::requests::compliance(state, config, now)?)
        }
        Action::InboxStatus | Action::InboxRetry => {
            let r = super::inbox::handle(state, config, action, &query, req.body, draft);
            Done::ok(r?)
        }
        Action::VaultStatus | Action::VaultList => Done::ok(super::vault::handle(
            state, config, action, rest, &query, draft,
        )?),
        Action::RequestRead | Action::RequestWrite | Action::RequestErase => {
            let r = super::requests::handle(state, caller, action, rest, &query, req.body, draft);
            Done::ok(r?)
        }
        Action::RedactionWrite if rest[0] == "requests" => {
            query.only(&[])?;
            let id = super::params::decode_path(rest[1])?;
            draft.target = format!("request {}", printable(&id, 40));
            super::requests::check_request_id(&id)?;
            Done::ok(super::redactions::start(
                state, caller, &id, req.body, draft,
            )?)
        }
        Action::RedactionRead if rest.len() == 3 => {
            let mut png = super::redactions::sheet(state, caller, rest, &query, draft)?;
            png.audit.target = draft.target.clone();
            Ok(Done {
                status: StatusCode::OK,
                body: Value::Null,
                text: None,
                stream: Some(png),
            })
        }
        Action::RedactionRead | Action::RedactionWrite | Action::RedactionApprove => {
            let r = super::redactions::handle(state, caller, action, rest, &query, req.body, draft);
            Done::ok(r?)
        }
        Action::RedactionRelease => {
            query.only(&[])?;
            let run = super::redactions::release(state, caller, rest, draft)?;
            Done::package(run, "redactions.released", draft)
        }
        Action::Export => {
            query.only(&[])?;
            let run = super::evidence::export(state, caller, req.body, draft)?;
            Done::package(run, "export.finished", draft)
        }
        Action::View | Action::LiveView => {
            let id = camera.expect("route has an id");
            let mut stream = if action == Action::View {
                super::view::view(state, config, caller, &id, &query, draft, now)?
            } else {
                super::view::live(state, config, caller, &id, &query, draft, now)?
            };
            stream.audit.target = draft.target.clone();
            stream.audit.reason = draft.reason.clone();
            Ok(Done {
                status: StatusCode::OK,
                body: Value::Null,
                text: None,
                stream: Some(stream),
            })
        }
        Action::Activity => {
            let id = camera.expect("route has an id");
            Done::ok(super::review::activity(
                state, config, caller, &id, &query, draft, now,
            )?)
        }
        Action::Sheet => {
            let id = camera.expect("route has an id");
            let mut png = super::review::sheet(state, config, caller, &id, &query, draft, now)?;
            png.audit.target = draft.target.clone();
            png.audit.reason = draft.reason.clone();
            Ok(Done {
                status: StatusCode::OK,
                body: Value::Null,
                text: None,
                stream: Some(png),
            })
        }
        Action::Reload => {
            query.only(&[])?;
            if let Some(r) = optional_reason(req.body)? {
                draft.reason = printable(&r, MAX_REASON_LEN);
            }
            draft.intend()?;
            (state.reload)()?;
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

/// A viewer asking for footage of a camera outside its zones.
pub(super) fn not_your_zone(caller: &Caller, id: &str, zone: Option<&str>) -> Error {
    let zones: Vec<&str> = caller.zones.iter().map(String::as_str).collect();
    let has = if caller.roles.contains(&Role::Viewer) {
        format!(
            "has role viewer for zone{} {}",
            if zones.len() == 1 { "" } else { "s" },
            zones.join(", ")
        )
    } else {
        "has no footage role".to_owned()
    };
    let camera = match zone {
        Some(z) => format!("camera {id} is in zone {z}"),
        None => format!("camera {id} is not in the configuration"),
    };
    Error::new(
        ErrorKind::PermissionDenied,
        format!("{} {has}; {camera}", caller.peer.describe()),
    )
}

pub(super) fn no_camera(config: &Config, id: &str) -> Error {
    Error::not_found(format!(
        "no camera {id:?} in {} and no footage of it in the index; `custosctl cameras` lists them",
        config.path.display()
    ))
}
