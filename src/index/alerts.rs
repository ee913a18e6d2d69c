//! Alert queue SQL.
//!
//! Invariants: a row is `pending` until its channel accepted it (`sent`) or
//! it was given up (`failed`, after the last attempt); a `sent` row is never
//! picked again.

use rusqlite::named_params;

use super::Index;
use crate::error::Result;

/// An alert for one channel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub created_us: i64,
    pub key: String,
    pub event: String,
    pub subject: String,
    pub body: String,
    pub channel: String,
    pub recipient: String,
    pub state: String,
    pub attempts: u32,
    pub next_try_us: i64,
    pub sent_us: Option<i64>,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "id, created_us, key, event, subject, body, channel, recipient, state, \
     attempts, next_try_us, sent_us, last_error";

fn row(r: &rusqlite::Row) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        id: r.get(0)?,
        created_us: r.get(1)?,
        key: r.get(2)?,
        event: r.get(3)?,
        subject: r.get(4)?,
        body: r.get(5)?,
        channel: r.get(6)?,
        recipient: r.get(7)?,
        state: r.get(8)?,
        attempts: r.get(9)?,
        next_try_us: r.get(10)?,
        sent_us: r.get(11)?,
        last_error: r.get(12)?,
    })
}

impl Index {
    /// Queues an alert for one channel; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn queue_alert(
        &self,
        key: &str,
        event: &str,
        subject: &str,
        body: &str,
        channel: &str,
        recipient: &str,
        now_us: i64,
    ) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO alert (created_us, key, event, subject, body, channel, recipient, \
                 state, next_try_us) VALUES (:now, :key, :event, :subject, :body, :channel, \
                 :recipient, 'pending', :now)",
            )?
            .execute(named_params! {
                ":now": now_us, ":key": key, ":event": event, ":subject": subject,
                ":body": body, ":channel": channel, ":recipient": recipient,
            })?;
        Ok(self.conn.last_insert_rowid())
    }

    /// When an alert with `key` was last queued, if ever.
    pub fn last_alert(&self, key: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached("SELECT max(created_us) FROM alert WHERE key = :key")?
            .query_row(named_params! {":key": key}, |r| r.get(0))?)
    }

    /// Pending alerts due at `now_us`, oldest first.
    pub fn due_alerts(&self, now_us: i64, limit: usize) -> Result<Vec<AlertRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM alert WHERE state = 'pending' AND next_try_us <= :now \
             ORDER BY next_try_us, id LIMIT :limit"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(named_params! {":now": now_us, ":limit": limit as i64}, row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn alert_sent(&self, id: i64, now_us: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE alert SET state = 'sent', sent_us = :now, attempts = attempts + 1 \
                 WHERE id = :id AND state = 'pending'",
            )?
            .execute(named_params! {":id": id, ":now": now_us})?;
        Ok(())
    }

    /// Records a failed attempt: tried again at `next_try_us`, or given up.
    pub fn alert_failed(&self, id: i64, error: &str, next_try_us: Option<i64>) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE alert SET attempts = attempts + 1, last_error = :error, \
                 state = CASE WHEN :next IS NULL THEN 'failed' ELSE 'pending' END, \
                 next_try_us = coalesce(:next, next_try_us) WHERE id = :id AND state = 'pending'",
            )?
            .execute(named_params! {":id": id, ":error": error, ":next": next_try_us})?;
        Ok(())
    }

    /// Makes every pending alert due at `now_us` (at start: a restart is a
    /// good moment to try again). Returns how many.
    pub fn retry_pending_alerts(&self, now_us: i64) -> Result<usize> {
        Ok(self
            .conn
            .prepare_cached(
                "UPDATE alert SET next_try_us = :now WHERE state = 'pending' AND next_try_us > :now",
            )?
            .execute(named_params! {":now": now_us})?)
    }

    /// The newest alerts, any state.
    pub fn recent_alerts(&self, limit: usize) -> Result<Vec<AlertRow>> {
        let sql = format!("SELECT {COLUMNS} FROM alert ORDER BY id DESC LIMIT :limit");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(named_params! {":limit": limit as i64}, row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
