//! Audit log SQL: append with the hash chain, read with filters, purge with
//! an anchor. Only `crate::audit` calls these; the API never deletes.

use rusqlite::{OptionalExtension, named_params};

use super::Index;
use crate::audit::{Anchor, Entry, Filter, Record, check_hash_len, entry_hash};
use crate::clock::UnixMicros;
use crate::error::Result;

const AUDIT_COLUMNS: &str =
    "seq, at_us, uid, user, pid, role, action, target, reason, outcome, prev_hash, hash";
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
    pub fn audit_anchor(&self) -> Result<Anchor> {
        let row = self
            .conn
            .prepare_cached(AUDIT_ANCHOR)?
            .query_row([], |r| {
                Ok(Anchor {
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

    /// Appends `record` after the last entry, in one transaction.
    pub fn append_audit(&mut self, record: &Record) -> Result<Entry> {
        self.transaction(|ix| {
            let (last, prev_hash) = ix.audit_head()?;
            check_hash_len(last, &prev_hash)?;
            let seq = last + 1;
            let hash = entry_hash(seq, record, &prev_hash);
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
            Ok(Entry {
                seq,
                record: record.clone(),
                prev_hash,
                hash: hash.to_vec(),
            })
        })
    }

    /// Every stored entry, oldest first (for verification).
    pub fn audit_all(&self) -> Result<Vec<Entry>> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], audit_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The anchor and every entry, oldest first, read in one transaction so
    /// that they agree even while entries are appended or purged.
    pub fn audit_snapshot(&self) -> Result<(Anchor, Vec<Entry>)> {
        self.conn.execute_batch("BEGIN")?;
        let read = self
            .audit_anchor()
            .and_then(|anchor| Ok((anchor, self.audit_all()?)));
        // Ends the read transaction; it changed nothing.
        self.conn.execute_batch("COMMIT")?;
        read
    }

    /// Entries matching `f`, newest first, at most `f.limit` (default 100).
    pub fn audit_entries(&self, f: &Filter) -> Result<Vec<Entry>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit \
             WHERE at_us >= :from AND at_us < :to \
               AND (:uid IS NULL OR uid = :uid) \
               AND (:action IS NULL OR action = :action) \
             ORDER BY seq DESC LIMIT :limit"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            named_params! {
                ":from": f.from_us.unwrap_or(i64::MIN),
                ":to": f.to_us.unwrap_or(i64::MAX),
                ":uid": f.uid,
                ":action": f.action,
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
        sign: impl FnOnce(&Anchor) -> Vec<u8>,
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
            let mut anchor = Anchor {
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

fn audit_row(r: &rusqlite::Row) -> rusqlite::Result<Entry> {
    Ok(Entry {
        seq: r.get(0)?,
        record: Record {
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
