//! Audit log SQL: append with the hash chain, read with filters, purge with
//! an anchor. Only the audit log (the `audit` module) calls these; the API
//! never deletes.
//!
//! The index owns the rows (record, entry, anchor, filter) but not the
//! chain's rules: the audit log hashes each entry (the hash is passed in to
//! [`Index::append_audit`], computed inside its transaction from the head it
//! read) and signs each anchor, and verifies both.

use rusqlite::{OptionalExtension, named_params};

use super::Index;
use crate::clock::UnixMicros;
use crate::error::{Error, Result};

/// The hash before the first entry ever written.
pub const AUDIT_GENESIS_HASH: [u8; 32] = [0; 32];

/// What is recorded about one API call, before it is chained.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    pub at_us: UnixMicros,
    /// The caller's uid (SO_PEERCRED).
    pub uid: u32,
    /// The caller's user name, or `uid N` without a passwd entry.
    pub user: String,
    /// The caller's process id (SO_PEERCRED).
    pub pid: i32,
    /// The role that allowed the action, or `none` if refused.
    pub role: String,
    /// What was asked, e.g. `recordings.list`.
    pub action: String,
    /// What it was asked of: camera and time range, case, `-` if nothing.
    pub target: String,
    /// The stated purpose of access; empty if none was needed or given.
    pub reason: String,
    /// `ok`, or the error kind (`permission_denied`, `invalid_input`, ...).
    pub outcome: String,
}

/// A stored entry: a record, its place in the chain and its hashes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(flatten)]
    pub record: AuditRecord,
    #[serde(with = "hex_bytes")]
    pub prev_hash: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
}

/// Where the stored chain starts: seq and hash of the last purged entry
/// (0 and [`AUDIT_GENESIS_HASH`] if nothing was ever purged).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditAnchor {
    pub seq: i64,
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
    /// Entries recorded before this were purged; None if none ever were.
    pub purged_us: Option<UnixMicros>,
    /// The node key's signature of `audit::anchor_message`; None if nothing
    /// was purged, or the anchor was written before anchors were signed.
    #[serde(with = "hex_opt")]
    pub signature: Option<Vec<u8>>,
}

impl Default for AuditAnchor {
    fn default() -> Self {
        AuditAnchor {
            seq: 0,
            hash: AUDIT_GENESIS_HASH.to_vec(),
            purged_us: None,
            signature: None,
        }
    }
}

/// Filters for reading the log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub from_us: Option<UnixMicros>,
    pub to_us: Option<UnixMicros>,
    pub uid: Option<u32>,
    pub action: Option<String>,
    /// Only entries whose target names this camera: `camera X` (a view, an
    /// export, a hold...) or X in a list after `cameras` (a data-subject
    /// request's).
    pub camera: Option<String>,
    /// Most entries returned (newest first). Default 100.
    pub limit: Option<u32>,
}

const AUDIT_COLUMNS: &str =
    "seq, at_us, uid, user, pid, role, action, target, reason, outcome, prev_hash, hash";
/// An entry's target as space-separated words with a space at each end
/// (`camera gate: enable` -> ` camera gate enable `), so a camera id is
/// matched as a whole word (ids hold no spaces, commas or colons).
const WORDS: &str = "(' ' || replace(replace(target, ',', ' '), ':', ' ') || ' ')";
const LAST_AUDIT: &str = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
const AUDIT_ANCHOR: &str = "SELECT seq, hash, purged_us, signature FROM audit_anchor WHERE id = 1";
const INSERT_AUDIT: &str = "INSERT INTO audit \
     (seq, at_us, uid, user, pid, role, action, target, reason, outcome, prev_hash, hash) \
     VALUES (:seq, :at, :uid, :user, :pid, :role, :action, :target, :reason, :outcome, :prev, :hash)";
/// The last entry of the prefix of entries all recorded before `:before`:
/// an entry stamped long ago after newer ones (a clock that was wrong) ends
/// the prefix instead of taking every newer entry with it.
const LAST_BEFORE: &str = "SELECT seq, hash FROM audit \
     WHERE seq < coalesce((SELECT min(seq) FROM audit WHERE at_us >= :before), 9223372036854775807) \
     ORDER BY seq DESC LIMIT 1";
const NEWEST_AT: &str = "SELECT max(at_us) FROM audit";
const SET_ANCHOR: &str = "INSERT INTO audit_anchor (id, seq, hash, purged_us, signature) \
     VALUES (1, :seq, :hash, :before, :signature) \
     ON CONFLICT (id) DO UPDATE \
     SET seq = :seq, hash = :hash, purged_us = :before, signature = :signature";
const DELETE_UP_TO: &str = "DELETE FROM audit WHERE seq <= :seq";

impl Index {
    /// The anchor the stored chain starts from.
    pub fn audit_anchor(&self) -> Result<AuditAnchor> {
        let row = self
            .conn
            .prepare_cached(AUDIT_ANCHOR)?
            .query_row([], |r| {
                Ok(AuditAnchor {
                    seq: r.get(0)?,
                    hash: r.get(1)?,
                    purged_us: Some(r.get(2)?),
                    signature: r.get(3)?,
                })
            })
            .optional()?;
        Ok(row.unwrap_or_default())
    }

    /// Seq and hash of the last entry, or of the anchor if the table is empty.
    pub fn audit_head(&self) -> Result<(i64, Vec<u8>)> {
        let last: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached(LAST_AUDIT)?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match last {
            Some(v) => Ok(v),
            None => {
                let a = self.audit_anchor()?;
                Ok((a.seq, a.hash))
            }
        }
    }

    /// Appends `record` after the last entry, in one transaction, hashed by
    /// `hash(seq, record, prev_hash)` from the last entry's hash.
    pub fn append_audit(
        &mut self,
        record: &AuditRecord,
        hash: impl FnOnce(i64, &AuditRecord, &[u8]) -> [u8; 32],
    ) -> Result<AuditEntry> {
        self.transaction(|ix| {
            let (last, prev_hash) = ix.audit_head()?;
            check_hash_len(last, &prev_hash)?;
            let seq = last + 1;
            let hash = hash(seq, record, &prev_hash);
            ix.conn
                .prepare_cached(INSERT_AUDIT)?
                .execute(named_params! {
                    ":seq": seq,
                    ":at": record.at_us,
                    ":uid": record.uid,
                    ":user": record.user,
                    ":pid": record.pid,
                    ":role": record.role,
                    ":action": record.action,
                    ":target": record.target,
                    ":reason": record.reason,
                    ":outcome": record.outcome,
                    ":prev": prev_hash,
                    ":hash": &hash[..],
                })?;
            Ok(AuditEntry {
                seq,
                record: record.clone(),
                prev_hash,
                hash: hash.to_vec(),
            })
        })
    }

    /// Every stored entry, oldest first (for verification).
    pub fn audit_all(&self) -> Result<Vec<AuditEntry>> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], audit_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The anchor and every entry, oldest first, read in one transaction so
    /// that they agree even while entries are appended or purged.
    pub fn audit_snapshot(&self) -> Result<(AuditAnchor, Vec<AuditEntry>)> {
        self.conn.execute_batch("BEGIN")?;
        let read = self
            .audit_anchor()
            .and_then(|anchor| Ok((anchor, self.audit_all()?)));
        // Ends the read transaction; it changed nothing.
        self.conn.execute_batch("COMMIT")?;
        read
    }

    /// Entries matching `f`, newest first, at most `f.limit` (default 100).
    pub fn audit_entries(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit \
             WHERE at_us >= :from AND at_us < :to \
               AND (:uid IS NULL OR uid = :uid) \
               AND (:action IS NULL OR action = :action) \
               AND (:camera IS NULL OR instr({WORDS}, ' camera ' || :camera || ' ') > 0 \
                    OR (instr({WORDS}, ' cameras ') > 0 \
                        AND instr({WORDS}, ' ' || :camera || ' ') > 0)) \
             ORDER BY seq DESC LIMIT :limit"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            named_params! {
                ":from": f.from_us.unwrap_or(i64::MIN),
                ":to": f.to_us.unwrap_or(i64::MAX),
                ":uid": f.uid,
                ":action": f.action,
                ":camera": f.camera,
                ":limit": f.limit.unwrap_or(100),
            },
            audit_row,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Time of the newest entry, if any (on `audit_at`).
    pub fn newest_audit_at(&self) -> Result<Option<UnixMicros>> {
        Ok(self
            .conn
            .prepare_cached(NEWEST_AT)?
            .query_row([], |r| r.get(0))?)
    }

    /// Deletes the oldest entries, as long as each was recorded before
    /// `before_us` (a contiguous prefix of the chain), moving the anchor to
    /// the last of them, signed by `sign`, in the same transaction. Returns
    /// how many went.
    pub fn purge_audit(
        &mut self,
        before_us: UnixMicros,
        sign: impl FnOnce(&AuditAnchor) -> Vec<u8>,
    ) -> Result<u64> {
        self.transaction(|ix| {
            let last: Option<(i64, Vec<u8>)> = ix
                .conn
                .prepare_cached(LAST_BEFORE)?
                .query_row(named_params! {":before": before_us}, |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let Some((seq, hash)) = last else {
                return Ok(0);
            };
            let mut anchor = AuditAnchor {
                seq,
                hash,
                purged_us: Some(before_us),
                signature: None,
            };
            anchor.signature = Some(sign(&anchor));
            ix.conn.prepare_cached(SET_ANCHOR)?.execute(named_params! {
                ":seq": anchor.seq,
                ":hash": anchor.hash,
                ":before": before_us,
                ":signature": anchor.signature,
            })?;
            let n = ix
                .conn
                .prepare_cached(DELETE_UP_TO)?
                .execute(named_params! {":seq": seq})?;
            Ok(n as u64)
        })
    }

    /// Runs raw SQL against the audit table, for tests that tamper with it.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn tamper_for_tests(&self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql)?;
        Ok(())
    }
}

fn audit_row(r: &rusqlite::Row) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.get(0)?,
        record: AuditRecord {
            at_us: r.get(1)?,
            uid: r.get(2)?,
            user: r.get(3)?,
            pid: r.get(4)?,
            role: r.get(5)?,
            action: r.get(6)?,
            target: r.get(7)?,
            reason: r.get(8)?,
            outcome: r.get(9)?,
        },
        prev_hash: r.get(10)?,
        hash: r.get(11)?,
    })
}

/// Checks that a stored hash column is 32 bytes.
fn check_hash_len(seq: i64, h: &[u8]) -> Result<()> {
    if h.len() == 32 {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "audit entry {seq} has a hash of {} bytes",
            h.len()
        )))
    }
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}

mod hex_opt {
    pub fn serialize<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&hex::encode(v)),
            None => s.serialize_none(),
        }
    }
}
