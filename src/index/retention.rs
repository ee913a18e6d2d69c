//! Retention's SQL: deletion candidates, the two-step marking and removal of
//! doomed segments, per-root usage, holds and restrictions (the protection
//! check), and the deletion journal.
//!
//! Invariants:
//! - A candidate is always `complete` (state 1): a segment being written is
//!   never one, and a doomed one is already on its way out.
//! - A candidate never overlaps an active hold or restriction of its camera:
//!   the check is in the candidate queries themselves (`UNPROTECTED`), so no
//!   caller can forget it. The evidence issue fills the tables; the check
//!   stays here.
//! - Marking (state 1 -> 2) and the journal row are one transaction; rows
//!   are removed only once their files are destroyed (see `crate::retention`).
//!   Marking checks protection again, so a hold or restriction added after
//!   a segment was chosen still keeps it.

use rusqlite::{OptionalExtension, named_params};

use super::{CameraId, Index, SEGMENT_COLUMNS, SegmentId, SegmentRow, segment_row};
use crate::clock::KnownTimes;
use crate::error::{Error, Result};

/// Why footage was deleted, as stored in the journal.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum DeletionReason {
    /// Older than its zone's ceiling (001 §17-18; 004 §9).
    Retention,
    /// The oldest footage of a full storage root (001 §16; 004 §10).
    DiskPressure,
    /// A data subject's erasure request (004 §29).
    Erasure,
    /// The case that held it closed (001 §18, §31).
    CaseClosed,
}

impl DeletionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeletionReason::Retention => "retention",
            DeletionReason::DiskPressure => "disk_pressure",
            DeletionReason::Erasure => "erasure",
            DeletionReason::CaseClosed => "case_closed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "retention" => DeletionReason::Retention,
            "disk_pressure" => DeletionReason::DiskPressure,
            "erasure" => DeletionReason::Erasure,
            "case_closed" => DeletionReason::CaseClosed,
            _ => {
                return Err(Error::internal(format!(
                    "index: unknown deletion reason {s:?}"
                )));
            }
        })
    }
}

/// A complete, unprotected segment that retention may delete.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Candidate {
    pub id: i64,
    #[serde(skip)]
    pub camera_id: i64,
    pub camera: String,
    pub zone: String,
    pub root: String,
    pub path: String,
    pub start_us: i64,
    pub end_us: i64,
    pub bytes: u64,
}

/// Where a candidate scan resumes: after `(start_us, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub start_us: i64,
    pub id: i64,
}

impl Cursor {
    pub const START: Cursor = Cursor {
        start_us: i64::MIN,
        id: i64::MIN,
    };

    pub fn after(c: &Candidate) -> Cursor {
        Cursor {
            start_us: c.start_us,
            id: c.id,
        }
    }
}

/// Bytes and segments of one camera in one zone on one root (every state).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UsageRow {
    pub root: String,
    pub zone: String,
    pub camera: String,
    #[serde(skip)]
    pub camera_id: i64,
    pub segments: u64,
    pub bytes: u64,
}

/// What keeps footage from being deleted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Protection {
    Hold {
        id: i64,
        case_id: String,
        from_us: i64,
        to_us: i64,
    },
    Restriction {
        id: i64,
        reason: String,
        from_us: i64,
        to_us: i64,
    },
}

/// Unprotected footage older than its ceiling (it should not exist).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Overdue {
    pub segments: u64,
    pub bytes: u64,
    pub oldest_start_us: i64,
}

/// One deletion journal entry. Says what was deleted, never what it showed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeletionRow {
    pub id: i64,
    pub at_us: i64,
    pub pass_us: i64,
    pub camera: String,
    pub zone: String,
    pub root: String,
    pub from_us: i64,
    pub to_us: i64,
    pub segments: u64,
    pub bytes: u64,
    pub reason: DeletionReason,
    pub actor: String,
    /// The data-subject request an erasure was made for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// What was done, where the root alone does not say it (the vault:
    /// deleted, or left locked until a date).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A journal entry about to be written.
#[derive(Debug, Clone)]
pub struct NewDeletion<'a> {
    pub at_us: i64,
    pub pass_us: i64,
    pub camera: CameraId,
    pub zone: &'a str,
    pub root: &'a str,
    pub from_us: i64,
    pub to_us: i64,
    pub segments: u64,
    pub bytes: u64,
    pub reason: DeletionReason,
    pub actor: &'a str,
    /// The data-subject request an erasure is for.
    pub request: Option<&'a str>,
    pub note: Option<&'a str>,
}

const DELETION_COLUMNS: &str = "d.id, d.at_us, d.pass_us, c.name, d.zone, d.root, d.from_us, \
     d.to_us, d.segments, d.bytes, d.reason, d.actor, d.request_id, d.note";

fn deletion_row(r: &rusqlite::Row) -> rusqlite::Result<DeletionRow> {
    let reason: String = r.get(10)?;
    Ok(DeletionRow {
        id: r.get(0)?,
        at_us: r.get(1)?,
        pass_us: r.get(2)?,
        camera: r.get(3)?,
        zone: r.get(4)?,
        root: r.get(5)?,
        from_us: r.get(6)?,
        to_us: r.get(7)?,
        segments: r.get::<_, i64>(8)? as u64,
        bytes: r.get::<_, i64>(9)? as u64,
        reason: DeletionReason::parse(&reason).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(10, rusqlite::types::Type::Text, Box::new(e))
        })?,
        actor: r.get(11)?,
        request_id: r.get(12)?,
        note: r.get(13)?,
    })
}

/// True when segment `s` overlaps no active hold or restriction of its camera.
const UNPROTECTED: &str = "NOT EXISTS (SELECT 1 FROM hold h WHERE h.camera_id = s.camera_id \
       AND h.released_us IS NULL AND h.from_us < s.end_us AND h.to_us > s.start_us) \
     AND NOT EXISTS (SELECT 1 FROM restriction r WHERE r.camera_id = s.camera_id \
       AND r.lifted_us IS NULL AND r.from_us < s.end_us AND r.to_us > s.start_us)";

const CANDIDATE_COLUMNS: &str =
    "s.id, s.camera_id, c.name, s.zone, s.root, s.path, s.start_us, s.end_us, s.bytes";

const CURSOR: &str =
    "s.start_us >= :after_start AND (s.start_us > :after_start OR s.id > :after_id)";

/// Marks one segment doomed if it is still complete and still unprotected:
/// a hold or restriction added since it was chosen keeps it.
fn mark_doomed_sql() -> String {
    format!("UPDATE segment AS s SET state = 2 WHERE s.id = :id AND s.state = 1 AND {UNPROTECTED}")
}
const REMOVE_DOOMED: &str = "DELETE FROM segment WHERE id = :id AND state = 2";
const INSERT_DELETION: &str = "INSERT INTO deletion \
     (at_us, pass_us, camera_id, zone, root, from_us, to_us, segments, bytes, reason, actor, \
     request_id, note) VALUES (:at, :pass, :camera, :zone, :root, :from, :to, :segments, \
     :bytes, :reason, :actor, :request, :note)";

fn candidate(r: &rusqlite::Row) -> rusqlite::Result<Candidate> {
    Ok(Candidate {
        id: r.get(0)?,
        camera_id: r.get(1)?,
        camera: r.get(2)?,
        zone: r.get(3)?,
        root: r.get(4)?,
        path: r.get(5)?,
        start_us: r.get(6)?,
        end_us: r.get(7)?,
        bytes: r.get::<_, Option<i64>>(8)?.unwrap_or(0) as u64,
    })
}

impl Index {
    /// Complete, unprotected segments of `zone` that ended before `cutoff_us`,
    /// oldest first, after `after`, at most `limit`.
    pub fn age_candidates(
        &self,
        zone: &str,
        cutoff_us: i64,
        after: Cursor,
        limit: usize,
    ) -> Result<Vec<Candidate>> {
        self.candidates("s.zone = :key", zone, Some(cutoff_us), after, limit)
    }

    /// Complete, unprotected segments on `root` that ended before
    /// `cutoff_us`, whatever their zone (footage of zones no longer in the
    /// config), oldest first.
    pub fn root_age_candidates(
        &self,
        root: &str,
        cutoff_us: i64,
        after: Cursor,
        limit: usize,
    ) -> Result<Vec<Candidate>> {
        self.candidates("s.root = :key", root, Some(cutoff_us), after, limit)
    }

    /// The oldest complete, unprotected segments of `root` across all its
    /// cameras, after `after`, at most `limit`.
    pub fn pressure_candidates(
        &self,
        root: &str,
        after: Cursor,
        limit: usize,
    ) -> Result<Vec<Candidate>> {
        self.candidates("s.root = :key", root, None, after, limit)
    }

    /// Complete, unprotected segments matching `scope` (a term on `:key`),
    /// ended before the cutoff if there is one, oldest first from `after`.
    /// The `start_us < :cutoff` term keeps the scan on the (zone|root,
    /// start_us) index: a segment cannot end before it starts.
    fn candidates(
        &self,
        scope: &str,
        key: &str,
        cutoff_us: Option<i64>,
        after: Cursor,
        limit: usize,
    ) -> Result<Vec<Candidate>> {
        let aged = if cutoff_us.is_some() {
            "AND s.start_us < :cutoff AND s.end_us < :cutoff"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {CANDIDATE_COLUMNS} FROM segment s JOIN camera c ON c.id = s.camera_id \
             WHERE {scope} {aged} AND {CURSOR} AND s.state = 1 AND {UNPROTECTED} \
             ORDER BY s.start_us, s.id LIMIT :limit"
        );
        let limit = limit as i64;
        let mut params: Vec<(&str, &dyn rusqlite::ToSql)> = vec![
            (":key", &key),
            (":after_start", &after.start_us),
            (":after_id", &after.id),
            (":limit", &limit),
        ];
        if let Some(cutoff) = &cutoff_us {
            params.push((":cutoff", cutoff));
        }
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params.as_slice(), candidate)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Marks complete segments doomed (state 1 -> 2). Returns those marked;
    /// a segment no longer complete, or now overlapping an active hold or
    /// restriction, is skipped. Call inside [`Index::transaction`] together
    /// with [`Index::record_deletion`].
    pub fn mark_doomed(&self, ids: &[SegmentId]) -> Result<Vec<SegmentId>> {
        let mut stmt = self.conn.prepare_cached(&mark_doomed_sql())?;
        let mut marked = Vec::with_capacity(ids.len());
        for &id in ids {
            if stmt.execute(named_params! {":id": id.0})? == 1 {
                marked.push(id);
            }
        }
        Ok(marked)
    }

    /// What the index knows to have happened, for the clock guard: the end
    /// of the newest complete segment (the newest of each camera's, each
    /// found on `segment_camera_start`) and the newest audit entry.
    pub fn known_times(&self) -> Result<KnownTimes> {
        let newest_footage_us = self
            .conn
            .prepare_cached(
                "SELECT max((SELECT s.end_us FROM segment s \
                   WHERE s.camera_id = c.id AND s.state = 1 \
                   ORDER BY s.start_us DESC LIMIT 1)) FROM camera c",
            )?
            .query_row([], |r| r.get(0))?;
        Ok(KnownTimes {
            newest_footage_us,
            newest_audit_us: self.newest_audit_at()?,
        })
    }

    /// Doomed segments (deletions not yet finished), by id. On the
    /// `segment_unfinished` partial index: the `state <> 1` term is what lets
    /// SQLite use it, so this stays cheap with millions of rows.
    pub fn doomed_segments(&self) -> Result<Vec<SegmentRow>> {
        let sql = format!(
            "SELECT {SEGMENT_COLUMNS} FROM segment s JOIN camera c ON c.id = s.camera_id \
             WHERE s.state <> 1 AND s.state = 2"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], segment_row)?;
        let mut rows: Vec<SegmentRow> = rows.collect::<rusqlite::Result<_>>()?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// Removes doomed rows whose files are destroyed.
    pub fn remove_doomed(&self, ids: &[SegmentId]) -> Result<usize> {
        let mut stmt = self.conn.prepare_cached(REMOVE_DOOMED)?;
        let mut n = 0;
        for id in ids {
            n += stmt.execute(named_params! {":id": id.0})?;
        }
        Ok(n)
    }

    /// Appends a deletion journal entry.
    pub fn record_deletion(&self, d: &NewDeletion) -> Result<i64> {
        self.conn
            .prepare_cached(INSERT_DELETION)?
            .execute(named_params! {
                ":at": d.at_us,
                ":pass": d.pass_us,
                ":camera": d.camera.0,
                ":zone": d.zone,
                ":root": d.root,
                ":from": d.from_us,
                ":to": d.to_us,
                ":segments": d.segments as i64,
                ":bytes": d.bytes as i64,
                ":reason": d.reason.as_str(),
                ":actor": d.actor,
                ":request": d.request,
                ":note": d.note,
            })?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Journal entries marked in `[from_us, to_us)`, oldest first.
    pub fn deletion_journal(&self, from_us: i64, to_us: i64) -> Result<Vec<DeletionRow>> {
        let sql = format!(
            "SELECT {DELETION_COLUMNS} FROM deletion d JOIN camera c ON c.id = d.camera_id \
             WHERE d.at_us >= :from AND d.at_us < :to ORDER BY d.at_us, d.id"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(named_params! {":from": from_us, ":to": to_us}, deletion_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One journal entry.
    pub fn deletion_by_id(&self, id: i64) -> Result<Option<DeletionRow>> {
        let sql = format!(
            "SELECT {DELETION_COLUMNS} FROM deletion d JOIN camera c ON c.id = d.camera_id \
             WHERE d.id = :id"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(named_params! {":id": id}, deletion_row)
            .optional()?)
    }

    /// Bytes of every segment on `root`, in any state (from the usage totals).
    pub fn root_bytes(&self, root: &str) -> Result<u64> {
        let bytes: i64 = self
            .conn
            .prepare_cached("SELECT coalesce(sum(bytes), 0) FROM usage WHERE root = :root")?
            .query_row(named_params! {":root": root}, |r| r.get(0))?;
        Ok(bytes.max(0) as u64)
    }

    /// Usage per root, zone and camera, for cameras with any segment.
    pub fn usage(&self) -> Result<Vec<UsageRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT u.root, u.zone, c.name, u.camera_id, u.segments, u.bytes \
             FROM usage u JOIN camera c ON c.id = u.camera_id \
             WHERE u.segments > 0 ORDER BY u.zone, c.name, u.root",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(UsageRow {
                root: r.get(0)?,
                zone: r.get(1)?,
                camera: r.get(2)?,
                camera_id: r.get(3)?,
                segments: r.get::<_, i64>(4)? as u64,
                bytes: r.get::<_, i64>(5)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The start of the oldest complete segment of a camera in a zone.
    pub fn oldest_footage(&self, camera: CameraId, zone: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT start_us FROM segment WHERE camera_id = :camera AND zone = :zone \
                   AND state = 1 ORDER BY start_us LIMIT 1",
            )?
            .query_row(named_params! {":camera": camera.0, ":zone": zone}, |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// The end of the oldest complete, unprotected segment of a camera in a
    /// zone: the one retention deletes next.
    pub fn oldest_unprotected_end(&self, camera: CameraId, zone: &str) -> Result<Option<i64>> {
        let sql = format!(
            "SELECT s.end_us FROM segment s WHERE s.camera_id = :camera AND s.zone = :zone \
               AND s.state = 1 AND {UNPROTECTED} ORDER BY s.start_us LIMIT 1"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(named_params! {":camera": camera.0, ":zone": zone}, |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Complete, unprotected segments of a camera in a zone that ended
    /// before `cutoff_us`: a ceiling violation if any exist.
    pub fn overdue(&self, camera: CameraId, zone: &str, cutoff_us: i64) -> Result<Option<Overdue>> {
        let sql = format!(
            "SELECT count(*), coalesce(sum(s.bytes), 0), min(s.start_us) FROM segment s \
             WHERE s.camera_id = :camera AND s.start_us < :cutoff AND s.zone = :zone \
               AND s.state = 1 AND s.end_us < :cutoff AND {UNPROTECTED}"
        );
        let (n, bytes, oldest): (i64, i64, Option<i64>) =
            self.conn.prepare_cached(&sql)?.query_row(
                named_params! {":camera": camera.0, ":zone": zone, ":cutoff": cutoff_us},
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
        Ok(oldest.filter(|_| n > 0).map(|oldest_start_us| Overdue {
            segments: n as u64,
            bytes: bytes as u64,
            oldest_start_us,
        }))
    }

    /// Active holds and restrictions of a camera.
    pub fn active_protections(&self, camera: CameraId) -> Result<Vec<Protection>> {
        let mut out = Vec::new();
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, case_id, from_us, to_us FROM hold \
             WHERE camera_id = :camera AND released_us IS NULL ORDER BY from_us",
        )?;
        for p in stmt.query_map(named_params! {":camera": camera.0}, |r| {
            Ok(Protection::Hold {
                id: r.get(0)?,
                case_id: r.get(1)?,
                from_us: r.get(2)?,
                to_us: r.get(3)?,
            })
        })? {
            out.push(p?);
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, reason, from_us, to_us FROM restriction \
             WHERE camera_id = :camera AND lifted_us IS NULL ORDER BY from_us",
        )?;
        for p in stmt.query_map(named_params! {":camera": camera.0}, |r| {
            Ok(Protection::Restriction {
                id: r.get(0)?,
                reason: r.get(1)?,
                from_us: r.get(2)?,
                to_us: r.get(3)?,
            })
        })? {
            out.push(p?);
        }
        Ok(out)
    }

    /// Holds `[from_us, to_us)` of a camera for a case. Minimal: the
    /// evidence issue owns cases and adds the rest.
    pub fn add_hold(
        &self,
        case_id: &str,
        camera: CameraId,
        from_us: i64,
        to_us: i64,
        now_us: i64,
    ) -> Result<i64> {
        check_range(from_us, to_us)?;
        self.conn
            .prepare_cached(
                "INSERT INTO hold (case_id, camera_id, from_us, to_us, created_us) \
                 VALUES (:case, :camera, :from, :to, :now)",
            )?
            .execute(named_params! {
                ":case": case_id, ":camera": camera.0, ":from": from_us, ":to": to_us, ":now": now_us,
            })?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Releases a hold; its footage is deletable again at the next pass.
    pub fn release_hold(&self, id: i64, now_us: i64) -> Result<()> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE hold SET released_us = :now WHERE id = :id AND released_us IS NULL",
            )?
            .execute(named_params! {":id": id, ":now": now_us})?;
        if n == 0 {
            return Err(Error::not_found(format!("no active hold {id}")));
        }
        Ok(())
    }

    /// Restricts `[from_us, to_us)` of a camera (004 §30).
    pub fn add_restriction(
        &self,
        camera: CameraId,
        from_us: i64,
        to_us: i64,
        reason: &str,
        now_us: i64,
    ) -> Result<i64> {
        check_range(from_us, to_us)?;
        self.conn
            .prepare_cached(
                "INSERT INTO restriction (camera_id, from_us, to_us, reason, created_us) \
                 VALUES (:camera, :from, :to, :reason, :now)",
            )?
            .execute(named_params! {
                ":camera": camera.0, ":from": from_us, ":to": to_us, ":reason": reason, ":now": now_us,
            })?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Lifts a restriction.
    pub fn lift_restriction(&self, id: i64, now_us: i64) -> Result<()> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE restriction SET lifted_us = :now WHERE id = :id AND lifted_us IS NULL",
            )?
            .execute(named_params! {":id": id, ":now": now_us})?;
        if n == 0 {
            return Err(Error::not_found(format!("no active restriction {id}")));
        }
        Ok(())
    }
}

fn check_range(from_us: i64, to_us: i64) -> Result<()> {
    if from_us >= to_us {
        return Err(Error::invalid(format!(
            "the range must end after it starts (from {from_us} µs, to {to_us} µs)"
        )));
    }
    Ok(())
}
