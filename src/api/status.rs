//! `GET /v1/status`: the daemon, its storage, its alarms and what is due,
//! and the cameras the caller may see. Each part a caller's roles do not
//! cover is `null`, never an error: the status is for everyone with a role.

use serde_json::{Value, json};

use super::ApiState;
use super::auth::{Action, Caller};
use crate::config::Config;
use crate::index::SCHEMA_VERSION;

pub(super) fn status(state: &ApiState, config: &Config, caller: &Caller) -> Value {
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
        "clock_alarm": state.clock_guard.alarm(),
        "recovery_alarm": recovery_alarm(state),
        "overdue_reviews": overdue_reviews(state, caller),
        "subject_requests": subject_requests(state, config, caller),
        "breaches": breaches(state, caller),
        "vault": vault(state, config, caller),
        "redactions": super::redactions::status(state, caller),
        "cameras": cameras(state, config, caller),
    })
}

/// The evidence vault's state in brief, for callers who may read it;
/// `null` without `[vault]`, for others, or if the index cannot be read.
fn vault(state: &ApiState, config: &Config, caller: &Caller) -> Value {
    let Some(vault) = &config.vault else {
        return Value::Null;
    };
    if caller.authorize(Action::VaultStatus).is_err() {
        return Value::Null;
    }
    let Ok(ix) = state.read_index() else {
        return Value::Null;
    };
    let counts = ix.vault_counts().unwrap_or_default();
    let objects = |s: crate::index::VaultState| {
        counts
            .iter()
            .find(|c| c.state == s)
            .map_or(0, |c| c.objects)
    };
    let check = state.vault.get().and_then(|s| s.lock_check());
    json!({
        "bucket": vault.bucket,
        "checked": check.is_some(),
        "error": check.and_then(|c| c.error),
        "stored": objects(crate::index::VaultState::Stored),
        "pending": objects(crate::index::VaultState::Pending),
        "oldest_pending_us": ix.vault_oldest_pending().ok().flatten(),
    })
}

/// Footage the start-up recovery could not read back: kept, with its rows,
/// and tried again at the next start; `null` if there was none.
fn recovery_alarm(state: &ApiState) -> Value {
    let kept = state
        .unreadable_at_start
        .load(std::sync::atomic::Ordering::Relaxed);
    if kept == 0 {
        return Value::Null;
    }
    json!({
        "kept_segments": kept,
        "state": format!(
            "{kept} cut-off segment(s) could not be read back at start; their footage and rows \
             are kept and recovery tries again at the next start: check the disk (dmesg, \
             SMART) and the daemon's limits, then restart custosd"
        ),
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

/// Open data-subject requests due within a week or overdue, for callers who
/// may read the register (ids and last days only); `null` for others.
fn subject_requests(state: &ApiState, config: &Config, caller: &Caller) -> Value {
    if caller.authorize(Action::RequestRead).is_err() {
        return Value::Null;
    }
    match state
        .read_index()
        .and_then(|ix| crate::requests::deadlines(&ix, config, state.clocks.realtime()))
    {
        Ok(d) => json!(d),
        Err(e) => {
            tracing::warn!(error = %e, "reading request deadlines for the status");
            Value::Null
        }
    }
}

/// Open breach records and those past a clock, for callers who may read
/// the register; `null` for others.
fn breaches(state: &ApiState, caller: &Caller) -> Value {
    if caller.authorize(Action::BreachRead).is_err() {
        return Value::Null;
    }
    match state
        .read_index()
        .and_then(|ix| crate::breach::clocks(&ix, state.clocks.realtime()))
    {
        Ok(c) => json!(c),
        Err(e) => {
            tracing::warn!(error = %e, "reading the breach register for the status");
            Value::Null
        }
    }
}

/// The configured cameras the caller may see, with their live status. No
/// URL: it may carry credentials.
pub(super) fn cameras(state: &ApiState, config: &Config, caller: &Caller) -> Vec<Value> {
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
