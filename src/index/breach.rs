//! Breach register SQL: records of suspected breaches and their notes.
//!
//! Invariants:
//! - At most one open record per (kind, subject) (a partial unique index):
//!   a detection that repeats while its record is open adds nothing.
//! - A closed record is never reopened or changed; notes are appended only.

use rusqlite::{OptionalExtension, named_params};

use super::Index;
use crate::error::{Error, Result};

/// A breach record as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BreachRow {
    pub id: i64,
    pub detected_us: i64,
    pub kind: String,
    pub subject: String,
    pub what: String,
    /// open or closed.
    pub status: String,
    pub dpo_informed_us: Option<i64>,
    pub assessment: Option<String>,
    pub actions: Option<String>,
    pub authority_notified_us: Option<i64>,
    pub not_notified_reason: Option<String>,
    pub closed_us: Option<i64>,
    pub closed_by: Option<String>,
    pub close_note: Option<String>,
}

/// A note on a breach.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BreachNote {
    pub id: i64,
    pub at_us: i64,
    pub by_user: String,
    pub text: String,
}

/// What a note sets besides its text (each only if given).
#[derive(Debug, Clone, Default)]
pub struct BreachUpdate<'a> {
    pub assessment: Option<&'a str>,
    pub actions: Option<&'a str>,
    pub authority_notified_us: Option<i64>,
    pub not_notified_reason: Option<&'a str>,
}

const COLUMNS: &str = "id, detected_us, kind, subject, what, status, dpo_informed_us, assessment, \
     actions, authority_notified_us, not_notified_reason, closed_us, closed_by, close_note";

fn row(r: &rusqlite::Row) -> rusqlite::Result<BreachRow> {
    Ok(BreachRow {
        id: r.get(0)?,
        detected_us: r.get(1)?,
        kind: r.get(2)?,
        subject: r.get(3)?,
        what: r.get(4)?,
        status: r.get(5)?,
        dpo_informed_us: r.get(6)?,
        assessment: r.get(7)?,
        actions: r.get(8)?,
        authority_notified_us: r.get(9)?,
        not_notified_reason: r.get(10)?,
        closed_us: r.get(11)?,
        closed_by: r.get(12)?,
        close_note: r.get(13)?,
    })
}

impl Index {
    /// Opens a record unless one is open for (kind, subject). Returns the
    /// new record's id, or `None` if one was open already.
    pub fn open_breach(
        &self,
        kind: &str,
        subject: &str,
        what: &str,
        detected_us: i64,
    ) -> Result<Option<i64>> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO breach (detected_us, kind, subject, what, status) \
                 VALUES (:at, :kind, :subject, :what, 'open')",
            )?
            .execute(named_params! {
                ":at": detected_us, ":kind": kind, ":subject": subject, ":what": what,
            })?;
        Ok((n == 1).then(|| self.conn.last_insert_rowid()))
    }

    pub fn breach(&self, id: i64) -> Result<Option<BreachRow>> {
        let sql = format!("SELECT {COLUMNS} FROM breach WHERE id = :id");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(named_params! {":id": id}, row)
            .optional()?)
    }

    /// Every record, open ones first, newest first.
    pub fn breaches(&self) -> Result<Vec<BreachRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM breach ORDER BY status <> 'open', detected_us DESC, id DESC"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn open_breach_row(&self, id: i64) -> Result<BreachRow> {
        match self.breach(id)? {
            Some(b) if b.status == "open" => Ok(b),
            Some(_) => Err(Error::conflict(format!(
                "breach {id} is closed; a closed record is never changed (open a new one)"
            ))),
            None => Err(Error::not_found(format!(
                "no breach {id}; `custosctl breach list` shows the register"
            ))),
        }
    }

    /// Appends a note to an open record and sets what `update` gives; the
    /// first note marks the DPO as informed.
    pub fn note_breach(
        &self,
        id: i64,
        by_user: &str,
        text: &str,
        update: &BreachUpdate,
        now_us: i64,
    ) -> Result<BreachRow> {
        self.open_breach_row(id)?;
        self.conn
            .prepare_cached(
                "INSERT INTO breach_note (breach_id, at_us, by_user, text) \
                 VALUES (:id, :at, :by, :text)",
            )?
            .execute(named_params! {":id": id, ":at": now_us, ":by": by_user, ":text": text})?;
        self.conn
            .prepare_cached(
                "UPDATE breach SET dpo_informed_us = coalesce(dpo_informed_us, :now), \
                 assessment = coalesce(:assessment, assessment), \
                 actions = coalesce(:actions, actions), \
                 authority_notified_us = coalesce(:notified, authority_notified_us), \
                 not_notified_reason = coalesce(:not_notified, not_notified_reason) \
                 WHERE id = :id",
            )?
            .execute(named_params! {
                ":id": id, ":now": now_us, ":assessment": update.assessment,
                ":actions": update.actions, ":notified": update.authority_notified_us,
                ":not_notified": update.not_notified_reason,
            })?;
        self.open_breach_row(id)
    }

    pub fn breach_notes(&self, id: i64) -> Result<Vec<BreachNote>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at_us, by_user, text FROM breach_note WHERE breach_id = :id ORDER BY id",
        )?;
        let rows = stmt.query_map(named_params! {":id": id}, |r| {
            Ok(BreachNote {
                id: r.get(0)?,
                at_us: r.get(1)?,
                by_user: r.get(2)?,
                text: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Closes an open record.
    pub fn close_breach(&self, id: i64, by_user: &str, note: &str, now_us: i64) -> Result<()> {
        self.open_breach_row(id)?;
        self.conn
            .prepare_cached(
                "UPDATE breach SET status = 'closed', closed_us = :now, closed_by = :by, \
                 close_note = :note WHERE id = :id AND status = 'open'",
            )?
            .execute(named_params! {":id": id, ":now": now_us, ":by": by_user, ":note": note})?;
        Ok(())
    }
}
