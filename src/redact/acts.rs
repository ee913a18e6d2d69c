//! What people do to a redaction: start it for a request, choose what
//! stays visible, cancel, resume, approve. Each act checks the request is
//! open and writes its `request_event` in the transaction that does it;
//! the API audits it before (`api::redactions`). Release is `release`.

use std::path::Path;

use super::choice::Choice;
use super::job;
use crate::clock::UnixMicros;
use crate::error::{Error, ErrorKind, Result};
use crate::index::{Index, NewRedaction, RedactionRow, RedactionState, SharedIndex};
use crate::requests::Kind;

/// Detector input widths a job may ask for.
pub const DETECT_WIDTHS: [u32; 4] = [640, 960, 1280, 1920];
/// The default: fast (about 0.4x real time at 25 fps on two cores), faces
/// from about 20 pixels of a 1080p picture's width × 3.
pub const DEFAULT_DETECT_WIDTH: u32 = 640;

/// A person acting: their name and uid.
#[derive(Debug, Clone, Copy)]
pub struct By<'a> {
    pub user: &'a str,
    pub uid: u32,
}

/// What a job is to redact.
#[derive(Debug, Clone)]
pub struct Start<'a> {
    pub request: &'a str,
    pub camera: &'a str,
    pub from_us: UnixMicros,
    pub to_us: UnixMicros,
    pub detect_width: u32,
}

/// Starts a redaction of `s` for its request: a copy request, open, of
/// that camera, within its window.
pub fn start(index: &SharedIndex, s: &Start, by: By, now_us: i64) -> Result<RedactionRow> {
    if !DETECT_WIDTHS.contains(&s.detect_width) {
        return Err(Error::invalid(format!(
            "the detector's width is one of 640, 960, 1280 or 1920 pixels, not {} \
             (wider finds smaller faces, and takes longer)",
            s.detect_width
        )));
    }
    if s.to_us <= s.from_us {
        return Err(Error::invalid("the range's end is not after its start"));
    }
    index.lock().transaction(|ix| {
        let r = ix.open_request(s.request)?;
        if r.kind != Kind::Copy.as_str() {
            return Err(Error::conflict(format!(
                "request {} is a{} {} request; a redacted copy answers a copy request (004 §27)",
                r.id,
                if r.kind.starts_with(['a', 'e', 'o']) {
                    "n"
                } else {
                    ""
                },
                r.kind
            )));
        }
        if !r.cameras.iter().any(|c| c == s.camera) {
            return Err(Error::invalid(format!(
                "camera {} is not one of request {}'s cameras ({})",
                s.camera,
                r.id,
                r.cameras.join(", ")
            )));
        }
        if s.from_us < r.from_us || s.to_us > r.to_us {
            return Err(Error::invalid(format!(
                "the range lies outside request {}'s window; a copy covers the event the \
                 request names (custosctl request show {})",
                r.id, r.id
            )));
        }
        let id = ix.insert_redaction(&NewRedaction {
            request_id: s.request,
            camera: s.camera,
            from_us: s.from_us,
            to_us: s.to_us,
            detect_width: s.detect_width,
            by_user: by.user,
            by_uid: by.uid,
            now_us,
        })?;
        let detail = serde_json::json!({"redaction": id, "camera": s.camera,
                                        "from_us": s.from_us, "to_us": s.to_us});
        ix.add_request_event(s.request, now_us, by.user, "redaction_started", &detail)?;
        ix.existing_redaction(id)
    })
}

/// The reviewer's choice for job `id`: it renders (again).
pub fn choose(
    index: &SharedIndex,
    state_dir: &Path,
    id: i64,
    choice: &Choice,
    by: By,
    now_us: i64,
) -> Result<RedactionRow> {
    let row = index.lock().existing_redaction(id)?;
    if !matches!(row.state, RedactionState::Choosing | RedactionState::Review) {
        return Err(Error::conflict(format!(
            "redaction {id} is {}; the choice is made once its faces are found and before \
             the copy is approved",
            row.state.as_str()
        )));
    }
    let found = job::read_tracks(state_dir, id)?;
    choice.check(&found.tracks, found.width, found.height)?;
    if choice.keep_audio {
        match found.audio.as_deref() {
            None => {
                return Err(Error::invalid(
                    "the footage has no sound to keep; choose without --keep-audio",
                ));
            }
            Some("aac") => {}
            Some(_) => {
                return Err(Error::invalid(
                    "only AAC sound can be kept in a redacted copy; this footage's sound is \
                     G.711: choose without --keep-audio",
                ));
            }
        }
    }
    let json =
        serde_json::to_string(choice).map_err(|e| Error::internal(format!("the choice: {e}")))?;
    let detail = serde_json::json!({"keep": choice.keep, "manual_masks": choice.masks.len(),
                                    "keep_only": choice.keep_only,
                                    "keep_audio": choice.keep_audio});
    act(index, id, by, now_us, "redaction_chosen", |ix, _| {
        if !ix.choose_redaction(id, &json, by.user, by.uid, now_us)? {
            return Err(changed(id));
        }
        Ok(detail)
    })
}

/// Stops a running job where it is; it can be resumed.
pub fn cancel(index: &SharedIndex, id: i64, by: By, now_us: i64) -> Result<RedactionRow> {
    act(index, id, by, now_us, "redaction_cancelled", |ix, row| {
        if !row.state.is_work()
            || !ix.move_redaction(id, row.state, RedactionState::Cancelled, None, now_us)?
        {
            return Err(Error::conflict(format!(
                "redaction {id} is {}; only a job that is detecting or rendering can be \
                 cancelled",
                row.state.as_str()
            )));
        }
        Ok(serde_json::json!({"phase": row.state.as_str(), "frames_done": row.frames_done}))
    })
}

/// Resumes a cancelled or failed job in the phase it left.
pub fn resume(index: &SharedIndex, id: i64, by: By, now_us: i64) -> Result<RedactionRow> {
    act(index, id, by, now_us, "redaction_resumed", |ix, row| {
        let to = if row.choice.is_some() {
            RedactionState::Rendering
        } else {
            RedactionState::Detecting
        };
        let moved = matches!(
            row.state,
            RedactionState::Cancelled | RedactionState::Failed
        ) && ix.move_redaction(id, row.state, to, None, now_us)?;
        if !moved {
            return Err(Error::conflict(format!(
                "redaction {id} is {}; only a cancelled or failed job is resumed",
                row.state.as_str()
            )));
        }
        Ok(serde_json::json!({"phase": to.as_str()}))
    })
}

/// A second DPO approves the rendered copy: not the one who started the
/// job, nor the one who chose its masks (four eyes).
pub fn approve(index: &SharedIndex, id: i64, by: By, now_us: i64) -> Result<RedactionRow> {
    act(index, id, by, now_us, "redaction_approved", |ix, row| {
        if row.state != RedactionState::Review {
            return Err(Error::conflict(format!(
                "redaction {id} is {}; a copy is approved once it is rendered and reviewed",
                row.state.as_str()
            )));
        }
        for (what, uid, user) in [
            ("started", Some(row.created_uid), Some(&row.created_by)),
            ("chose the masks of", row.chosen_uid, row.chosen_by.as_ref()),
        ] {
            if uid == Some(by.uid) {
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    format!(
                        "{} (uid {}) {what} redaction {id}; a second DPO, not the one who \
                         prepared it, must approve it (four eyes)",
                        user.map_or("", |u| u.as_str()),
                        by.uid
                    ),
                ));
            }
        }
        if !ix.approve_redaction(id, by.user, by.uid, now_us)? {
            return Err(changed(id));
        }
        Ok(serde_json::json!({}))
    })
}

/// Does `f` to job `id` in one transaction with its request's event `kind`
/// (`f`'s detail, with the job's number): the request must be open.
/// Returns the job as it is after.
fn act(
    index: &SharedIndex,
    id: i64,
    by: By,
    now_us: i64,
    kind: &str,
    f: impl FnOnce(&Index, &RedactionRow) -> Result<serde_json::Value>,
) -> Result<RedactionRow> {
    index.lock().transaction(|ix| {
        let row = ix.existing_redaction(id)?;
        ix.open_request(&row.request_id)?;
        let mut detail = f(ix, &row)?;
        detail["redaction"] = id.into();
        ix.add_request_event(&row.request_id, now_us, by.user, kind, &detail)?;
        ix.existing_redaction(id)
    })
}

fn changed(id: i64) -> Error {
    Error::conflict(format!("redaction {id} changed meanwhile; look again"))
}
