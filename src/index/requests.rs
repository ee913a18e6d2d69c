//! Data-subject request SQL: the register, its cameras and events, the
//! restrictions and time corrections a request leads to, and what the access
//! answer reads (footage, deletions and disclosures of a camera's window).
//!
//! Invariants:
//! - Ids, kinds, dates and windows are validated by `crate::requests` before
//!   they reach here; the index stores them as given.
//! - A closed request (answered, refused, withdrawn) is never reopened, and
//!   takes no more events: `open_request` is checked inside the transaction
//!   that writes one.
//! - Purging a request's personal data sets requester, contact and
//!   description to NULL and keeps everything else (the record of the answer).

use rusqlite::{OptionalExtension, named_params};

use super::{CameraId, Index};
use crate::error::{Error, Result};

/// A request to register.
#[derive(Debug, Clone)]
pub struct NewRequest<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub reference: Option<&'a str>,
    pub received_us: i64,
    pub due_date: &'a str,
    pub requester: &'a str,
    pub contact: &'a str,
    pub description: Option<&'a str>,
    pub identity_check: &'a str,
    pub verified_by: &'a str,
    pub cameras: &'a [String],
    pub from_us: i64,
    pub to_us: i64,
    pub created_by: &'a str,
    pub created_us: i64,
}

/// A request as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequestRow {
    pub id: String,
    pub kind: String,
    pub reference: Option<String>,
    pub received_us: i64,
    pub due_date: String,
    pub extended_to: Option<String>,
    pub extension_reason: Option<String>,
    pub extension_told: Option<String>,
    /// `None` once purged.
    pub requester: Option<String>,
    pub contact: Option<String>,
    pub description: Option<String>,
    pub identity_check: String,
    pub verified_by: String,
    pub cameras: Vec<String>,
    pub from_us: i64,
    pub to_us: i64,
    /// open, answered, refused or withdrawn.
    pub status: String,
    pub closed_us: Option<i64>,
    pub answer: Option<String>,
    pub created_by: String,
    pub created_us: i64,
    pub purged_us: Option<i64>,
}

impl RequestRow {
    /// The last day to answer: the extended one if extended.
    pub fn last_day(&self) -> &str {
        self.extended_to.as_deref().unwrap_or(&self.due_date)
    }
}

/// One thing done for a request.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RequestEvent {
    pub id: i64,
    pub at_us: i64,
    pub by_user: String,
    pub kind: String,
    pub detail: serde_json::Value,
}

/// A restriction as the register shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RestrictionRow {
    pub id: i64,
    pub camera: String,
    pub from_us: i64,
    pub to_us: i64,
    pub reason: String,
    pub created_us: i64,
    pub request_id: Option<String>,
    pub lifted_us: Option<i64>,
    pub lifted_by: Option<String>,
    pub lift_reason: Option<String>,
}

/// A noted time correction of a camera's footage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CorrectionRow {
    pub id: i64,
    pub request_id: String,
    pub camera: String,
    pub from_us: i64,
    pub to_us: i64,
    pub offset_us: i64,
    pub note: String,
    pub at_us: i64,
    pub by_user: String,
}

/// Complete footage of a camera overlapping a window, per zone it was
/// recorded under.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FootageSpan {
    pub camera: String,
    pub zone: String,
    pub segments: u64,
    pub bytes: u64,
    pub from_us: i64,
    pub to_us: i64,
}

const REQUEST_COLUMNS: &str = "id, kind, reference, received_us, due_date, extended_to, \
     extension_reason, extension_told, requester, contact, description, identity_check, \
     verified_by, from_us, to_us, status, closed_us, answer, created_by, created_us, purged_us";

fn request_row(r: &rusqlite::Row) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        reference: r.get(2)?,
        received_us: r.get(3)?,
        due_date: r.get(4)?,
        extended_to: r.get(5)?,
        extension_reason: r.get(6)?,
        extension_told: r.get(7)?,
        requester: r.get(8)?,
        contact: r.get(9)?,
        description: r.get(10)?,
        identity_check: r.get(11)?,
        verified_by: r.get(12)?,
        cameras: Vec::new(),
        from_us: r.get(13)?,
        to_us: r.get(14)?,
        status: r.get(15)?,
        closed_us: r.get(16)?,
        answer: r.get(17)?,
        created_by: r.get(18)?,
        created_us: r.get(19)?,
        purged_us: r.get(20)?,
    })
}

const RESTRICTION_COLUMNS: &str = "r.id, c.name, r.from_us, r.to_us, r.reason, r.created_us, \
     r.request_id, r.lifted_us, r.lifted_by, r.lift_reason";

fn restriction_row(r: &rusqlite::Row) -> rusqlite::Result<RestrictionRow> {
    Ok(RestrictionRow {
        id: r.get(0)?,
        camera: r.get(1)?,
        from_us: r.get(2)?,
        to_us: r.get(3)?,
        reason: r.get(4)?,
        created_us: r.get(5)?,
        request_id: r.get(6)?,
        lifted_us: r.get(7)?,
        lifted_by: r.get(8)?,
        lift_reason: r.get(9)?,
    })
}

impl Index {
    /// The next free number for requests received in `year`.
    pub fn next_request_number(&self, year: i16) -> Result<u32> {
        let prefix = format!("R-{year:04}-");
        let n: i64 = self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM subject_request WHERE substr(id, 1, length(:p)) = :p",
            )?
            .query_row(named_params! {":p": prefix}, |r| r.get(0))?;
        Ok(n as u32 + 1)
    }

    /// Registers an open request with its cameras.
    pub fn insert_request(&self, q: &NewRequest) -> Result<()> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO subject_request (id, kind, reference, received_us, due_date, \
                 requester, contact, description, identity_check, verified_by, from_us, to_us, \
                 status, created_by, created_us) VALUES (:id, :kind, :reference, :received, \
                 :due, :requester, :contact, :description, :identity, :verified_by, :from, :to, \
                 'open', :by, :created) ON CONFLICT (id) DO NOTHING",
            )?
            .execute(named_params! {
                ":id": q.id, ":kind": q.kind, ":reference": q.reference,
                ":received": q.received_us, ":due": q.due_date, ":requester": q.requester,
                ":contact": q.contact, ":description": q.description,
                ":identity": q.identity_check, ":verified_by": q.verified_by,
                ":from": q.from_us, ":to": q.to_us, ":by": q.created_by,
                ":created": q.created_us,
            })?;
        if n == 0 {
            return Err(Error::conflict(format!(
                "request {} already exists; request ids are never reused",
                q.id
            )));
        }
        let mut stmt = self.conn.prepare_cached(
            "INSERT OR IGNORE INTO request_camera (request_id, camera) VALUES (:id, :camera)",
        )?;
        for c in q.cameras {
            stmt.execute(named_params! {":id": q.id, ":camera": c})?;
        }
        Ok(())
    }

    fn with_cameras(&self, mut row: RequestRow) -> Result<RequestRow> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT camera FROM request_camera WHERE request_id = :id ORDER BY camera",
        )?;
        row.cameras = stmt
            .query_map(named_params! {":id": row.id}, |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(row)
    }

    pub fn request(&self, id: &str) -> Result<Option<RequestRow>> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM subject_request WHERE id = :id");
        let row = self
            .conn
            .prepare_cached(&sql)?
            .query_row(named_params! {":id": id}, request_row)
            .optional()?;
        row.map(|r| self.with_cameras(r)).transpose()
    }

    /// The request `id` if it is open; not found if there is none, a
    /// conflict if it was closed. Inside a transaction the answer holds
    /// until commit.
    pub fn open_request(&self, id: &str) -> Result<RequestRow> {
        match self.request(id)? {
            Some(r) if r.status == "open" => Ok(r),
            Some(r) => Err(Error::conflict(format!(
                "request {id} is {}; a closed request is never reopened (register a new one)",
                r.status
            ))),
            None => Err(Error::not_found(format!(
                "no request {id}; `custosctl request list` shows the register"
            ))),
        }
    }

    /// Every request, open ones first by their last day, then closed ones
    /// newest first.
    pub fn requests(&self) -> Result<Vec<RequestRow>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM subject_request ORDER BY status <> 'open', \
             CASE WHEN status = 'open' THEN coalesce(extended_to, due_date) END, \
             received_us DESC, id"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows: Vec<RequestRow> = stmt
            .query_map([], request_row)?
            .collect::<rusqlite::Result<_>>()?;
        rows.into_iter().map(|r| self.with_cameras(r)).collect()
    }

    /// Sets the extended last day of an open request (once).
    pub fn extend_request(&self, id: &str, to: &str, reason: &str, told: &str) -> Result<()> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE subject_request SET extended_to = :to, extension_reason = :reason, \
                 extension_told = :told WHERE id = :id AND status = 'open' \
                 AND extended_to IS NULL",
            )?
            .execute(named_params! {":id": id, ":to": to, ":reason": reason, ":told": told})?;
        if n == 0 {
            return Err(Error::conflict(format!(
                "request {id} was already extended; the period can be extended once, by at most \
                 two months (004 §32)"
            )));
        }
        Ok(())
    }

    /// Closes an open request with its outcome.
    pub fn close_request(&self, id: &str, status: &str, answer: &str, now_us: i64) -> Result<()> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE subject_request SET status = :status, answer = :answer, closed_us = :now \
                 WHERE id = :id AND status = 'open'",
            )?
            .execute(
                named_params! {":id": id, ":status": status, ":answer": answer, ":now": now_us},
            )?;
        if n == 0 {
            return Err(Error::conflict(format!("request {id} is not open")));
        }
        Ok(())
    }

    /// Removes the personal data of requests closed before `closed_before_us`.
    /// Returns their ids.
    pub fn purge_requesters(&self, closed_before_us: i64, now_us: i64) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "UPDATE subject_request SET requester = NULL, contact = NULL, description = NULL, \
             purged_us = :now WHERE status <> 'open' AND closed_us < :before \
             AND purged_us IS NULL RETURNING id",
        )?;
        let ids = stmt
            .query_map(
                named_params! {":before": closed_before_us, ":now": now_us},
                |r| r.get(0),
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }

    pub fn add_request_event(
        &self,
        id: &str,
        at_us: i64,
        by_user: &str,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO request_event (request_id, at_us, by_user, kind, detail) \
                 VALUES (:id, :at, :by, :kind, :detail)",
            )?
            .execute(named_params! {
                ":id": id, ":at": at_us, ":by": by_user, ":kind": kind,
                ":detail": detail.to_string(),
            })?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn request_events(&self, id: &str) -> Result<Vec<RequestEvent>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at_us, by_user, kind, detail FROM request_event \
             WHERE request_id = :id ORDER BY id",
        )?;
        let rows = stmt.query_map(named_params! {":id": id}, |r| {
            let detail: String = r.get(4)?;
            Ok(RequestEvent {
                id: r.get(0)?,
                at_us: r.get(1)?,
                by_user: r.get(2)?,
                kind: r.get(3)?,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Restricts `[from_us, to_us)` of a camera for a request (004 §30).
    pub fn restrict_for_request(
        &self,
        request_id: &str,
        camera: CameraId,
        from_us: i64,
        to_us: i64,
        reason: &str,
        now_us: i64,
    ) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO restriction (camera_id, from_us, to_us, reason, created_us, \
                 request_id) VALUES (:camera, :from, :to, :reason, :now, :request)",
            )?
            .execute(named_params! {
                ":camera": camera.0, ":from": from_us, ":to": to_us, ":reason": reason,
                ":now": now_us, ":request": request_id,
            })?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Lifts an active restriction, saying who and why.
    pub fn lift_restriction_by(&self, id: i64, by: &str, reason: &str, now_us: i64) -> Result<()> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE restriction SET lifted_us = :now, lifted_by = :by, lift_reason = :reason \
                 WHERE id = :id AND lifted_us IS NULL",
            )?
            .execute(named_params! {":id": id, ":now": now_us, ":by": by, ":reason": reason})?;
        if n == 0 {
            return Err(Error::not_found(format!(
                "no active restriction {id}; `custosctl request show` lists a request's \
                 restrictions"
            )));
        }
        Ok(())
    }

    pub fn restriction(&self, id: i64) -> Result<Option<RestrictionRow>> {
        let sql = format!(
            "SELECT {RESTRICTION_COLUMNS} FROM restriction r JOIN camera c ON c.id = r.camera_id \
             WHERE r.id = :id"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(named_params! {":id": id}, restriction_row)
            .optional()?)
    }

    /// Restrictions of a request (`Some`), or every active one (`None`).
    pub fn restrictions(&self, request_id: Option<&str>) -> Result<Vec<RestrictionRow>> {
        let sql = format!(
            "SELECT {RESTRICTION_COLUMNS} FROM restriction r JOIN camera c ON c.id = r.camera_id \
             WHERE (:request IS NULL AND r.lifted_us IS NULL) OR r.request_id = :request \
             ORDER BY r.id"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(named_params! {":request": request_id}, restriction_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn add_time_correction(&self, c: &CorrectionRow) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO time_correction (request_id, camera, from_us, to_us, offset_us, \
                 note, at_us, by_user) VALUES (:request, :camera, :from, :to, :offset, :note, \
                 :at, :by)",
            )?
            .execute(named_params! {
                ":request": c.request_id, ":camera": c.camera, ":from": c.from_us,
                ":to": c.to_us, ":offset": c.offset_us, ":note": c.note, ":at": c.at_us,
                ":by": c.by_user,
            })?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Time corrections of a camera overlapping `[from_us, to_us)`.
    pub fn time_corrections(
        &self,
        camera: &str,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<CorrectionRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, request_id, camera, from_us, to_us, offset_us, note, at_us, by_user \
             FROM time_correction WHERE camera = :camera AND from_us < :to AND to_us > :from \
             ORDER BY from_us, id",
        )?;
        let rows = stmt.query_map(
            named_params! {":camera": camera, ":from": from_us, ":to": to_us},
            |r| {
                Ok(CorrectionRow {
                    id: r.get(0)?,
                    request_id: r.get(1)?,
                    camera: r.get(2)?,
                    from_us: r.get(3)?,
                    to_us: r.get(4)?,
                    offset_us: r.get(5)?,
                    note: r.get(6)?,
                    at_us: r.get(7)?,
                    by_user: r.get(8)?,
                })
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Complete footage of `camera` overlapping `[from_us, to_us)`, per zone.
    pub fn footage_in(&self, camera: &str, from_us: i64, to_us: i64) -> Result<Vec<FootageSpan>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.zone, count(*), coalesce(sum(s.bytes), 0), min(s.start_us), max(s.end_us) \
             FROM segment s JOIN camera c ON c.id = s.camera_id \
             WHERE c.name = :camera AND s.state = 1 AND s.start_us < :to AND s.end_us > :from \
               AND s.start_us >= :from - c.longest_us \
             GROUP BY s.zone ORDER BY min(s.start_us)",
        )?;
        let rows = stmt.query_map(
            named_params! {":camera": camera, ":from": from_us, ":to": to_us},
            |r| {
                Ok(FootageSpan {
                    camera: camera.to_owned(),
                    zone: r.get(0)?,
                    segments: r.get::<_, i64>(1)? as u64,
                    bytes: r.get::<_, i64>(2)? as u64,
                    from_us: r.get(3)?,
                    to_us: r.get(4)?,
                })
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletion journal rows of `camera` whose footage overlapped
    /// `[from_us, to_us)`, oldest first: what no longer exists, and why.
    pub fn deletions_of(
        &self,
        camera: &str,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<super::DeletionRow>> {
        let ids: Vec<i64> = self
            .conn
            .prepare_cached(
                "SELECT d.id FROM deletion d JOIN camera c ON c.id = d.camera_id \
                 WHERE c.name = :camera AND d.from_us < :to AND d.to_us > :from \
                 ORDER BY d.at_us, d.id",
            )?
            .query_map(
                named_params! {":camera": camera, ":from": from_us, ":to": to_us},
                |r| r.get(0),
            )?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.deletion_by_id(id)?);
        }
        Ok(out)
    }

    /// Exports since `since_us` of `camera` whose range overlapped
    /// `[from_us, to_us)`, newest first (004 §25.2).
    pub fn disclosures_of(
        &self,
        camera: &str,
        from_us: i64,
        to_us: i64,
        since_us: i64,
    ) -> Result<Vec<super::DisclosureRow>> {
        Ok(self
            .disclosures(Some(camera), since_us)?
            .into_iter()
            .filter(|d| d.from_us < to_us && d.to_us > from_us)
            .collect())
    }
}
