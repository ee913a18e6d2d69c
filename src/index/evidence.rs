//! Evidence SQL: cases, review extensions, case-linked copies and the
//! disclosure register. Holds themselves are rows of `hold`, written by
//! [`Index::add_hold`] (retention's SQL checks them).
//!
//! Invariants:
//! - Case ids are validated by `crate::evidence` before they reach here; the
//!   index stores them as given.
//! - A closed case is never reopened: `close_case` only moves `open` ->
//!   `closed`, and `extend_review` only touches an open case.
//! - Holds and copies are added, and a case closed, in transactions that
//!   check the case is open ([`Index::open_case`]), so no hold or copy row
//!   of a closed case is ever live.

use rusqlite::{OptionalExtension, named_params};

use super::Index;
use crate::error::{Error, Result};

/// A case to create.
#[derive(Debug, Clone)]
pub struct NewCase<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub authority: &'a str,
    pub authority_ref: &'a str,
    pub legal_basis: &'a str,
    pub created_by: &'a str,
    pub created_us: i64,
    pub review_us: i64,
}

/// A case as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CaseRow {
    pub id: String,
    pub title: String,
    pub authority: String,
    pub authority_ref: String,
    pub legal_basis: String,
    pub created_by: String,
    pub created_us: i64,
    pub review_us: i64,
    /// "open" or "closed".
    pub status: String,
    pub closed_us: Option<i64>,
    pub close_reason: Option<String>,
}

/// A hold of a case.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HoldRow {
    pub id: i64,
    pub case_id: String,
    pub camera: String,
    pub from_us: i64,
    pub to_us: i64,
    pub created_us: i64,
    pub released_us: Option<i64>,
}

/// A case-linked copy about to be recorded.
#[derive(Debug, Clone)]
pub struct NewCopy<'a> {
    pub case_id: &'a str,
    pub hold_id: i64,
    pub source_path: &'a str,
    pub source_sha256: &'a [u8; 32],
    pub start_us: i64,
    pub end_us: i64,
    /// Relative to the evidence root: `<case>/<file>`.
    pub copy_path: &'a str,
    pub sha256: &'a [u8; 32],
    pub bytes: u64,
    pub created_us: i64,
}

/// A case-linked copy as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CopyRow {
    pub id: i64,
    pub case_id: String,
    pub hold_id: i64,
    pub source_path: String,
    #[serde(serialize_with = "super::hex32")]
    pub source_sha256: [u8; 32],
    pub start_us: i64,
    pub end_us: i64,
    pub copy_path: String,
    #[serde(serialize_with = "super::hex32")]
    pub sha256: [u8; 32],
    pub bytes: u64,
    pub created_us: i64,
    pub destroyed_us: Option<i64>,
}

/// An export to record in the disclosure register.
#[derive(Debug, Clone)]
pub struct NewDisclosure<'a> {
    pub at_us: i64,
    pub case_id: Option<&'a str>,
    pub camera: &'a str,
    pub from_us: i64,
    pub to_us: i64,
    pub recipient: &'a str,
    pub legal_basis: &'a str,
    pub reason: &'a str,
    pub by_user: &'a str,
    pub by_uid: u32,
    /// JSON: the files sent with their SHA-256.
    pub files: &'a str,
    pub manifest_sha256: &'a [u8; 32],
}

/// A row of the disclosure register.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DisclosureRow {
    pub id: i64,
    pub at_us: i64,
    pub case_id: Option<String>,
    pub camera: String,
    pub from_us: i64,
    pub to_us: i64,
    pub recipient: String,
    pub legal_basis: String,
    pub reason: String,
    pub by_user: String,
    pub by_uid: u32,
    /// The files handed over, as stored: a JSON array of name, sha256 and
    /// bytes; serialised as that array, not as a string holding it.
    #[serde(serialize_with = "json_text")]
    pub files: String,
    #[serde(serialize_with = "super::hex32")]
    pub manifest_sha256: [u8; 32],
}

fn json_text<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    use serde::Serialize;
    match serde_json::from_str::<serde_json::Value>(v) {
        Ok(value) => value.serialize(s),
        Err(_) => s.serialize_str(v),
    }
}

fn blob32(r: &rusqlite::Row, i: usize) -> rusqlite::Result<[u8; 32]> {
    let v: Vec<u8> = r.get(i)?;
    v.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Blob,
            "hash is not 32 bytes".into(),
        )
    })
}

const CASE_COLUMNS: &str = "id, title, authority, authority_ref, legal_basis, created_by, \
     created_us, review_us, status, closed_us, close_reason";

fn case_row(r: &rusqlite::Row) -> rusqlite::Result<CaseRow> {
    Ok(CaseRow {
        id: r.get(0)?,
        title: r.get(1)?,
        authority: r.get(2)?,
        authority_ref: r.get(3)?,
        legal_basis: r.get(4)?,
        created_by: r.get(5)?,
        created_us: r.get(6)?,
        review_us: r.get(7)?,
        status: r.get(8)?,
        closed_us: r.get(9)?,
        close_reason: r.get(10)?,
    })
}

const COPY_COLUMNS: &str = "id, case_id, hold_id, source_path, source_sha256, start_us, end_us, \
     copy_path, sha256, bytes, created_us, destroyed_us";

fn copy_row(r: &rusqlite::Row) -> rusqlite::Result<CopyRow> {
    Ok(CopyRow {
        id: r.get(0)?,
        case_id: r.get(1)?,
        hold_id: r.get(2)?,
        source_path: r.get(3)?,
        source_sha256: blob32(r, 4)?,
        start_us: r.get(5)?,
        end_us: r.get(6)?,
        copy_path: r.get(7)?,
        sha256: blob32(r, 8)?,
        bytes: r.get::<_, i64>(9)? as u64,
        created_us: r.get(10)?,
        destroyed_us: r.get(11)?,
    })
}

impl Index {
    /// Creates an open case; a case with that id (open or closed) is a conflict.
    pub fn insert_case(&self, c: &NewCase) -> Result<()> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO evidence_case (id, title, authority, authority_ref, legal_basis, \
                 created_by, created_us, review_us, status) VALUES (:id, :title, :authority, \
                 :authority_ref, :legal_basis, :created_by, :created, :review, 'open') \
                 ON CONFLICT (id) DO NOTHING",
            )?
            .execute(named_params! {
                ":id": c.id, ":title": c.title, ":authority": c.authority,
                ":authority_ref": c.authority_ref, ":legal_basis": c.legal_basis,
                ":created_by": c.created_by, ":created": c.created_us, ":review": c.review_us,
            })?;
        if n == 0 {
            return Err(Error::conflict(format!(
                "case {} already exists; case ids are never reused",
                c.id
            )));
        }
        Ok(())
    }

    pub fn case(&self, id: &str) -> Result<Option<CaseRow>> {
        let sql = format!("SELECT {CASE_COLUMNS} FROM evidence_case WHERE id = :id");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(named_params! {":id": id}, case_row)
            .optional()?)
    }

    /// The case `id` if it is open; not found if there is none, a conflict
    /// if it is closed. Inside a transaction the answer holds until commit:
    /// what needs an open case checks it there (holds, copies, closing).
    pub fn open_case(&self, id: &str) -> Result<CaseRow> {
        match self.case(id)? {
            Some(c) if c.status == "open" => Ok(c),
            Some(_) => Err(Error::conflict(format!(
                "case {id} is closed; a closed case takes no holds and cannot be closed again"
            ))),
            None => Err(Error::not_found(format!("no case {id}"))),
        }
    }

    /// All cases, open ones first, then by creation.
    pub fn cases(&self) -> Result<Vec<CaseRow>> {
        let sql = format!(
            "SELECT {CASE_COLUMNS} FROM evidence_case ORDER BY status = 'closed', created_us"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], case_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Ids of open cases whose review date is before `now_us`.
    pub fn overdue_cases(&self, now_us: i64) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM evidence_case WHERE status = 'open' AND review_us < :now \
             ORDER BY review_us",
        )?;
        let rows = stmt.query_map(named_params! {":now": now_us}, |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Moves an open case's review date, recording who, when and why.
    pub fn extend_review(
        &self,
        id: &str,
        new_review_us: i64,
        reason: &str,
        by_user: &str,
        now_us: i64,
    ) -> Result<()> {
        let case = self
            .case(id)?
            .filter(|c| c.status == "open")
            .ok_or_else(|| Error::not_found(format!("no open case {id}")))?;
        self.conn
            .prepare_cached(
                "INSERT INTO case_review (case_id, at_us, by_user, old_review_us, \
                 new_review_us, reason) VALUES (:id, :now, :by, :old, :new, :reason)",
            )?
            .execute(named_params! {
                ":id": id, ":now": now_us, ":by": by_user, ":old": case.review_us,
                ":new": new_review_us, ":reason": reason,
            })?;
        self.conn
            .prepare_cached("UPDATE evidence_case SET review_us = :new WHERE id = :id")?
            .execute(named_params! {":id": id, ":new": new_review_us})?;
        Ok(())
    }

    /// Marks an open case closed.
    pub fn close_case(&self, id: &str, reason: &str, now_us: i64) -> Result<()> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE evidence_case SET status = 'closed', closed_us = :now, \
                 close_reason = :reason WHERE id = :id AND status = 'open'",
            )?
            .execute(named_params! {":id": id, ":now": now_us, ":reason": reason})?;
        if n == 0 {
            return Err(Error::not_found(format!("no open case {id}")));
        }
        Ok(())
    }

    /// Holds of a case, active or released, oldest first.
    pub fn case_holds(&self, case_id: &str) -> Result<Vec<HoldRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT h.id, h.case_id, c.name, h.from_us, h.to_us, h.created_us, h.released_us \
             FROM hold h JOIN camera c ON c.id = h.camera_id WHERE h.case_id = :case \
             ORDER BY h.id",
        )?;
        let rows = stmt.query_map(named_params! {":case": case_id}, |r| {
            Ok(HoldRow {
                id: r.get(0)?,
                case_id: r.get(1)?,
                camera: r.get(2)?,
                from_us: r.get(3)?,
                to_us: r.get(4)?,
                created_us: r.get(5)?,
                released_us: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn insert_copy(&self, c: &NewCopy) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO evidence_copy (case_id, hold_id, source_path, source_sha256, \
                 start_us, end_us, copy_path, sha256, bytes, created_us) VALUES (:case, :hold, \
                 :source, :source_sha, :start, :end, :copy, :sha, :bytes, :created)",
            )?
            .execute(named_params! {
                ":case": c.case_id, ":hold": c.hold_id, ":source": c.source_path,
                ":source_sha": &c.source_sha256[..], ":start": c.start_us, ":end": c.end_us,
                ":copy": c.copy_path, ":sha": &c.sha256[..], ":bytes": c.bytes as i64,
                ":created": c.created_us,
            })?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Copies of a case not yet destroyed, oldest first.
    pub fn case_copies(&self, case_id: &str) -> Result<Vec<CopyRow>> {
        let sql = format!(
            "SELECT {COPY_COLUMNS} FROM evidence_copy WHERE case_id = :case \
             AND destroyed_us IS NULL ORDER BY start_us, id"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(named_params! {":case": case_id}, copy_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn mark_copy_destroyed(&self, id: i64, now_us: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE evidence_copy SET destroyed_us = :now WHERE id = :id \
                 AND destroyed_us IS NULL",
            )?
            .execute(named_params! {":id": id, ":now": now_us})?;
        Ok(())
    }

    pub fn record_disclosure(&self, d: &NewDisclosure) -> Result<i64> {
        let camera = self.camera_id(d.camera)?;
        self.conn
            .prepare_cached(
                "INSERT INTO disclosure (at_us, case_id, camera_id, from_us, to_us, recipient, \
                 legal_basis, reason, by_user, by_uid, files, manifest_sha256) VALUES (:at, \
                 :case, :camera, :from, :to, :recipient, :basis, :reason, :user, :uid, :files, \
                 :sha)",
            )?
            .execute(named_params! {
                ":at": d.at_us, ":case": d.case_id, ":camera": camera.0, ":from": d.from_us,
                ":to": d.to_us, ":recipient": d.recipient, ":basis": d.legal_basis,
                ":reason": d.reason, ":user": d.by_user, ":uid": d.by_uid, ":files": d.files,
                ":sha": &d.manifest_sha256[..],
            })?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Exports since `since_us`, of one camera or all, newest first.
    pub fn disclosures(&self, camera: Option<&str>, since_us: i64) -> Result<Vec<DisclosureRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.id, d.at_us, d.case_id, c.name, d.from_us, d.to_us, d.recipient, \
             d.legal_basis, d.reason, d.by_user, d.by_uid, d.files, d.manifest_sha256 \
             FROM disclosure d JOIN camera c ON c.id = d.camera_id \
             WHERE d.at_us >= :since AND (:camera IS NULL OR c.name = :camera) \
             ORDER BY d.at_us DESC, d.id DESC",
        )?;
        let rows = stmt.query_map(named_params! {":since": since_us, ":camera": camera}, |r| {
            Ok(DisclosureRow {
                id: r.get(0)?,
                at_us: r.get(1)?,
                case_id: r.get(2)?,
                camera: r.get(3)?,
                from_us: r.get(4)?,
                to_us: r.get(5)?,
                recipient: r.get(6)?,
                legal_basis: r.get(7)?,
                reason: r.get(8)?,
                by_user: r.get(9)?,
                by_uid: r.get(10)?,
                files: r.get(11)?,
                manifest_sha256: blob32(r, 12)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
