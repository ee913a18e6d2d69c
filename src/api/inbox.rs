//! Inbox endpoints (roles operator, admin): what waits, what was set aside
//! and why, what was taken lately (`GET /v1/inbox`), taking a fixed
//! quarantined file back (`POST /v1/inbox/retry`), and the inbox metrics.
//! Routing, authorisation and auditing are `routes.rs`'s.

use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::Action;
use super::params::Query;
use super::routes::Draft;
use crate::config::Config;
use crate::error::{Error, Result};

/// Recent ingests listed by the status.
const RECENT: u32 = 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    file: String,
}

pub(super) fn handle(
    state: &ApiState,
    config: &Config,
    action: Action,
    query: &Query,
    body: &[u8],
    draft: &mut Draft,
) -> Result<Value> {
    query.only(&[])?;
    match action {
        Action::InboxRetry => {
            let b: RetryBody = serde_json::from_slice(body).map_err(|e| {
                Error::invalid(format!(
                    "the body is not the expected JSON ({e}); send e.g. {{\"file\": \"bwc-07/A0003.MP4\"}}"
                ))
            })?;
            draft.set_target(format!("inbox file {}", b.file.escape_debug()));
            draft.intend()?;
            let back = crate::inbox::retry(config, &b.file)?;
            Ok(
                json!({ "file": b.file, "note": format!("moved back to {}; it is examined again", back.display()) }),
            )
        }
        _ => {
            let pending = state.inbox.get().map(|s| s.pending()).unwrap_or_default();
            let recent = state.read_index()?.recent_device_files(RECENT)?;
            Ok(json!({
                "timezone": config.timezone_name,
                "running": state.inbox.get().is_some(),
                "inboxes": config.inboxes.iter().map(|i| i.path.display().to_string()).collect::<Vec<_>>(),
                "pending": pending,
                "quarantined": crate::inbox::quarantined(config),
                "recent": recent,
            }))
        }
    }
}

/// The inbox families of `/v1/metrics`.
pub(super) fn metrics(state: &ApiState, config: &Config) -> Result<String> {
    if config.inboxes.is_empty() {
        return Ok(String::new());
    }
    let (files, bytes) = state.read_index()?.device_file_totals()?;
    let now = state.clocks.realtime();
    let pending = state.inbox.get().map(|s| s.pending()).unwrap_or_default();
    let oldest = pending
        .iter()
        .map(|p| now.saturating_sub(p.seen_us))
        .max()
        .unwrap_or(0);
    let quarantined = crate::inbox::quarantined(config).len();
    let duplicates = state.inbox.get().map_or(0, |s| {
        s.duplicates.load(std::sync::atomic::Ordering::Relaxed)
    });
    Ok(format!(
        "# HELP custos_inbox_ingested_files_total Device files stored from inboxes.\n\
         # TYPE custos_inbox_ingested_files_total counter\n\
         custos_inbox_ingested_files_total {files}\n\
         # HELP custos_inbox_ingested_bytes_total Bytes of device files stored from inboxes.\n\
         # TYPE custos_inbox_ingested_bytes_total counter\n\
         custos_inbox_ingested_bytes_total {bytes}\n\
         # HELP custos_inbox_duplicates_total Inbox files recognised as already stored, since start.\n\
         # TYPE custos_inbox_duplicates_total counter\n\
         custos_inbox_duplicates_total {duplicates}\n\
         # HELP custos_inbox_quarantined_files Files in the inboxes' quarantine directories.\n\
         # TYPE custos_inbox_quarantined_files gauge\n\
         custos_inbox_quarantined_files {quarantined}\n\
         # HELP custos_inbox_pending_files Files waiting in inboxes (not yet settled or taken).\n\
         # TYPE custos_inbox_pending_files gauge\n\
         custos_inbox_pending_files {}\n\
         # HELP custos_inbox_oldest_pending_seconds Age of the oldest file waiting in an inbox.\n\
         # TYPE custos_inbox_oldest_pending_seconds gauge\n\
         custos_inbox_oldest_pending_seconds {}\n",
        pending.len(),
        oldest / 1_000_000
    ))
}
