//! Direct notification for sites without Prometheus: what needs a person
//! (a camera not recording, a root full of protected footage, a doubted
//! clock, a suspected breach, a data-subject request or an evidence review
//! due) is written to a durable queue in the index and sent by e-mail
//! (SMTP with STARTTLS or TLS) and to a webhook (JSON signed with
//! HMAC-SHA256), as `[alerts]` says (docs/design/alerts.md).
//!
//! Invariants:
//! - An alert is queued (one row per channel) before anything is sent, so a
//!   restart loses none; a row is marked sent once its channel accepted it
//!   and is never picked again, so a restart sends none twice (one that dies
//!   between the server's acceptance and the mark may repeat that one).
//! - The same alert (same key) is queued at most once per `repeat_after`;
//!   a failed send is retried with backoff (30 s doubling to 1 h) for about
//!   a day, then marked failed.
//! - Every send, accepted or not, is written to the audit log as
//!   `alert.sent` by the daemon itself.
//! - Watching reads only the daemon's own state and the index.

mod send;
mod watch;

pub use send::{deliver_due, sign};
pub use watch::{Alarms, Watcher};

use crate::clock::UnixMicros;
use crate::config::Config;
use crate::error::Result;
use crate::index::Index;

/// Something to tell a person.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Alert {
    /// What it is about, for rate limiting: `camera_down:gate`.
    pub key: String,
    /// One of `config::ALERT_EVENTS`.
    pub event: &'static str,
    pub subject: String,
    pub body: String,
}

/// Queues `alert` for every channel that takes its event, unless an alert
/// with the same key was queued within `repeat_after` (a test always goes).
/// Returns the ids queued.
pub fn raise(ix: &Index, config: &Config, alert: &Alert, now_us: UnixMicros) -> Result<Vec<i64>> {
    let a = &config.alerts;
    if alert.event != "test"
        && let Some(last) = ix.last_alert(&alert.key)?
        && now_us.saturating_sub(last) < a.repeat_after.as_micros() as i64
    {
        return Ok(Vec::new());
    }
    let mut ids = Vec::new();
    let body = format!(
        "{}\n\n-- \ncustosd, {} ({})\n",
        alert.body, config.controller.name, config.timezone_name
    );
    if let Some(e) = &a.email
        && e.events.iter().any(|x| x == alert.event)
    {
        ids.push(ix.queue_alert(
            &alert.key,
            alert.event,
            &alert.subject,
            &body,
            "email",
            &e.to.join(", "),
            now_us,
        )?);
    }
    if let Some(w) = &a.webhook
        && w.events.iter().any(|x| x == alert.event)
    {
        ids.push(ix.queue_alert(
            &alert.key,
            alert.event,
            &alert.subject,
            &body,
            "webhook",
            w.url.as_str(),
            now_us,
        )?);
    }
    Ok(ids)
}
