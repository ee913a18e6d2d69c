//! The redaction jobs' SQL (schema 15): one `redaction` row per redacted
//! copy a data-subject request asks for. See docs/design/redaction.md.
//!
//! Invariants:
//! - A row only moves forward: detecting → choosing → rendering → review
//!   → approved → released; choosing again sends a row in review back to
//!   rendering (its earlier copy is discarded); cancelled and failed rows
//!   go back to the phase they left when resumed. Every move is a
//!   conditional UPDATE on the state it leaves, so two callers never both
//!   move one row.
//! - The approver is neither the one who started the job nor the one who
//!   chose what to mask (four eyes); the UPDATE itself checks it.

use rusqlite::{OptionalExtension, named_params};

use super::Index;
use crate::error::{Error, Result};

/// Where a redaction job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedactionState {
    /// Decoding the range and finding faces.
    Detecting,
    /// Tracks and their sheet are ready; waits for the reviewer's choice.
    Choosing,
    /// Burning the masks in and encoding the copy.
    Rendering,
    /// The copy and its review sheet are ready; waits for a second DPO.
    Review,
    Approved,
    Released,
    Cancelled,
    Failed,
    /// Its request closed: its files are destroyed, the row stays as the
    /// record of what was done.
    Purged,
}

impl RedactionState {
    pub const ALL: [RedactionState; 9] = [
        RedactionState::Detecting,
        RedactionState::Choosing,
        RedactionState::Rendering,
        RedactionState::Review,
        RedactionState::Approved,
        RedactionState::Released,
        RedactionState::Cancelled,
        RedactionState::Failed,
        RedactionState::Purged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RedactionState::Detecting => "detecting",
            RedactionState::Choosing => "choosing",
            RedactionState::Rendering => "rendering",
            RedactionState::Review => "review",
            RedactionState::Approved => "approved",
            RedactionState::Released => "released",
            RedactionState::Cancelled => "cancelled",
            RedactionState::Failed => "failed",
            RedactionState::Purged => "purged",
        }
    }

    fn parse(s: &str) -> RedactionState {
        match s {
            "choosing" => RedactionState::Choosing,
            "rendering" => RedactionState::Rendering,
            "review" => RedactionState::Review,
            "approved" => RedactionState::Approved,
            "released" => RedactionState::Released,
            "cancelled" => RedactionState::Cancelled,
            "failed" => RedactionState::Failed,
            "purged" => RedactionState::Purged,
            _ => RedactionState::Detecting,
        }
    }

    /// A job the worker runs.
    pub fn is_work(self) -> bool {
        matches!(self, RedactionState::Detecting | RedactionState::Rendering)
    }
}

/// A redaction job as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RedactionRow {
    pub id: i64,
    pub request_id: String,
    pub camera: String,
    pub from_us: i64,
    pub to_us: i64,
    pub detect_width: u32,
    pub state: RedactionState,
    pub frames_done: u64,
    pub frames: u64,
    pub tracks: Option<u64>,
    pub error: Option<String>,
    pub created_us: i64,
    pub created_by: String,
    pub created_uid: u32,
    /// The reviewer's choice, as JSON text (`redact::Choice`).
    pub choice: Option<String>,
    pub chosen_us: Option<i64>,
    pub chosen_by: Option<String>,
    pub chosen_uid: Option<u32>,
    /// The redaction record of the rendered copy, as JSON text.
    pub record: Option<String>,
    pub approved_us: Option<i64>,
    pub approved_by: Option<String>,
    pub approved_uid: Option<u32>,
    pub released_us: Option<i64>,
    pub updated_us: i64,
}

/// A job to start.
#[derive(Debug, Clone)]
pub struct NewRedaction<'a> {
    pub request_id: &'a str,
    pub camera: &'a str,
    pub from_us: i64,
    pub to_us: i64,
    pub detect_width: u32,
    pub by_user: &'a str,
    pub by_uid: u32,
    pub now_us: i64,
}

const COLUMNS: &str = "id, request_id, camera, from_us, to_us, detect_width, state, frames_done, \
     frames, tracks, error, created_us, created_by, created_uid, choice, chosen_us, chosen_by, \
     chosen_uid, record, approved_us, approved_by, approved_uid, released_us, updated_us";

fn row(r: &rusqlite::Row) -> rusqlite::Result<RedactionRow> {
    Ok(RedactionRow {
        id: r.get(0)?,
        request_id: r.get(1)?,
        camera: r.get(2)?,
        from_us: r.get(3)?,
        to_us: r.get(4)?,
        detect_width: r.get(5)?,
        state: RedactionState::parse(&r.get::<_, String>(6)?),
        frames_done: r.get::<_, i64>(7)? as u64,
        frames: r.get::<_, i64>(8)? as u64,
        tracks: r.get::<_, Option<i64>>(9)?.map(|n| n as u64),
        error: r.get(10)?,
        created_us: r.get(11)?,
        created_by: r.get(12)?,
        created_uid: r.get(13)?,
        choice: r.get(14)?,
        chosen_us: r.get(15)?,
        chosen_by: r.get(16)?,
        chosen_uid: r.get(17)?,
        record: r.get(18)?,
        approved_us: r.get(19)?,
        approved_by: r.get(20)?,
        approved_uid: r.get(21)?,
        released_us: r.get(22)?,
        updated_us: r.get(23)?,
    })
}

impl Index {
    /// Runs a conditional UPDATE of one job; whether it changed it.
    fn moved(&self, sql: &str, params: impl rusqlite::Params) -> Result<bool> {
        Ok(self.conn.prepare_cached(sql)?.execute(params)? == 1)
    }

    pub fn insert_redaction(&self, n: &NewRedaction) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO redaction (request_id, camera, from_us, to_us, detect_width, state, \
                 created_us, created_by, created_uid, updated_us) \
                 VALUES (:req, :camera, :from, :to, :width, 'detecting', :now, :by, :uid, :now)",
            )?
            .execute(named_params! {
                ":req": n.request_id, ":camera": n.camera, ":from": n.from_us, ":to": n.to_us,
                ":width": n.detect_width, ":now": n.now_us, ":by": n.by_user, ":uid": n.by_uid,
            })?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn redaction(&self, id: i64) -> Result<Option<RedactionRow>> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM redaction WHERE id = ?1"))?
            .query_row([id], row)
            .optional()?)
    }

    /// The job `id`, or a not-found error that says where to look.
    pub fn existing_redaction(&self, id: i64) -> Result<RedactionRow> {
        self.redaction(id)?.ok_or_else(|| {
            Error::not_found(format!(
                "no redaction {id}; `custosctl redaction list` shows them"
            ))
        })
    }

    /// Every job (of one request), newest first.
    pub fn redactions(&self, request: Option<&str>) -> Result<Vec<RedactionRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM redaction WHERE ?1 IS NULL OR request_id = ?1 ORDER BY id DESC"
        ))?;
        let rows = stmt.query_map([request], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The oldest job the worker has to run, if any.
    pub fn next_redaction_work(&self) -> Result<Option<RedactionRow>> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM redaction WHERE state IN ('detecting', 'rendering') \
                 ORDER BY id LIMIT 1"
            ))?
            .query_row([], row)
            .optional()?)
    }

    /// Moves job `id` from `from` to `to`; false if it was not in `from`.
    pub fn move_redaction(
        &self,
        id: i64,
        from: RedactionState,
        to: RedactionState,
        error: Option<&str>,
        now_us: i64,
    ) -> Result<bool> {
        self.moved(
            "UPDATE redaction SET state = :to, error = :error, updated_us = :now \
             WHERE id = :id AND state = :from",
            named_params! {
                ":id": id, ":from": from.as_str(), ":to": to.as_str(), ":error": error,
                ":now": now_us,
            },
        )
    }

    /// How far the running phase got.
    pub fn redaction_progress(&self, id: i64, done: u64, total: u64, now_us: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE redaction SET frames_done = ?2, frames = ?3, updated_us = ?4 WHERE id = ?1",
            )?
            .execute(rusqlite::params![id, done as i64, total as i64, now_us])?;
        Ok(())
    }

    /// Detection is done: `tracks` were found; the job waits for a choice.
    pub fn redaction_detected(&self, id: i64, tracks: u64, now_us: i64) -> Result<bool> {
        self.moved(
            "UPDATE redaction SET state = 'choosing', tracks = ?2, updated_us = ?3 \
             WHERE id = ?1 AND state = 'detecting'",
            rusqlite::params![id, tracks as i64, now_us],
        )
    }

    /// The reviewer's choice: the job (choosing, or in review before
    /// approval) renders again.
    pub fn choose_redaction(
        &self,
        id: i64,
        choice: &str,
        by_user: &str,
        by_uid: u32,
        now_us: i64,
    ) -> Result<bool> {
        self.moved(
            "UPDATE redaction SET state = 'rendering', choice = :choice, chosen_us = :now, \
             chosen_by = :by, chosen_uid = :uid, record = NULL, frames_done = 0, \
             updated_us = :now WHERE id = :id AND state IN ('choosing', 'review')",
            named_params! {
                ":id": id, ":choice": choice, ":now": now_us, ":by": by_user, ":uid": by_uid,
            },
        )
    }

    /// The copy is rendered; `record` says what it is. It waits for review.
    pub fn redaction_rendered(&self, id: i64, record: &str, now_us: i64) -> Result<bool> {
        self.moved(
            "UPDATE redaction SET state = 'review', record = ?2, updated_us = ?3 \
             WHERE id = ?1 AND state = 'rendering'",
            rusqlite::params![id, record, now_us],
        )
    }

    /// A second person approves the copy; false if the job is not in
    /// review or `by_uid` started it or chose its masks.
    pub fn approve_redaction(
        &self,
        id: i64,
        by_user: &str,
        by_uid: u32,
        now_us: i64,
    ) -> Result<bool> {
        self.moved(
            "UPDATE redaction SET state = 'approved', approved_us = :now, approved_by = :by, \
             approved_uid = :uid, updated_us = :now WHERE id = :id AND state = 'review' \
             AND created_uid <> :uid AND chosen_uid <> :uid",
            named_params! {":id": id, ":now": now_us, ":by": by_user, ":uid": by_uid},
        )
    }

    /// The approved copy was handed over (again).
    pub fn redaction_released(&self, id: i64, now_us: i64) -> Result<bool> {
        self.moved(
            "UPDATE redaction SET state = 'released', released_us = ?2, updated_us = ?2 \
             WHERE id = ?1 AND state IN ('approved', 'released')",
            rusqlite::params![id, now_us],
        )
    }

    /// Jobs per state, for the status and the metrics.
    pub fn redaction_counts(&self) -> Result<Vec<(RedactionState, u64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT state, count(*) FROM redaction GROUP BY state ORDER BY state",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                RedactionState::parse(&r.get::<_, String>(0)?),
                r.get::<_, i64>(1)? as u64,
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Jobs of requests closed before `before_us` whose files remain.
    pub fn redactions_to_purge(&self, before_us: i64) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.id FROM redaction r JOIN subject_request q ON q.id = r.request_id \
             WHERE q.status <> 'open' AND q.closed_us < ?1 AND r.state <> 'purged' ORDER BY r.id",
        )?;
        let rows = stmt.query_map([before_us], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Job `id`'s files are destroyed.
    pub fn redaction_purged(&self, id: i64, now_us: i64) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE redaction SET state = 'purged', updated_us = ?2 WHERE id = ?1")?
            .execute(rusqlite::params![id, now_us])?;
        Ok(())
    }
}
