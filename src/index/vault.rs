//! The vault's SQL (schema 14): one `vault_object` row per evidence copy
//! sent to the S3 bucket, the durable queue of what the vault worker still
//! has to do, and the journal rows of what it deleted. See
//! docs/design/vault.md.
//!
//! Invariants:
//! - A row is queued only for a live copy of an open case, once per copy
//!   (`copy_id` is unique), with its key fixed then: `PREFIX/CASE/FILE`.
//! - `stored` is set only from what a HEAD of the version reported; a row
//!   is never `stored` on the strength of a PUT's answer alone.
//! - `retain_until_us` only grows.
//! - A deleted row is journaled once: its deletion row and its `journaled`
//!   mark are written in one transaction.

use rusqlite::named_params;

use super::Index;
use crate::error::Result;

/// Where a vault object is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VaultState {
    /// Queued; not (yet) confirmed by the store.
    Pending,
    /// Confirmed: checksum, legal hold and retention as asked.
    Stored,
    /// Its case closed and its legal hold is lifted; it stays locked until
    /// its retain-until date and is deleted then.
    Expiring,
    Deleted,
    /// Its case closed before it was stored: nothing of it is in the vault.
    Skipped,
}

impl VaultState {
    pub const ALL: [VaultState; 5] = [
        VaultState::Pending,
        VaultState::Stored,
        VaultState::Expiring,
        VaultState::Deleted,
        VaultState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VaultState::Pending => "pending",
            VaultState::Stored => "stored",
            VaultState::Expiring => "expiring",
            VaultState::Deleted => "deleted",
            VaultState::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> VaultState {
        match s {
            "stored" => VaultState::Stored,
            "expiring" => VaultState::Expiring,
            "deleted" => VaultState::Deleted,
            "skipped" => VaultState::Skipped,
            _ => VaultState::Pending,
        }
    }
}

/// A vault object as recorded, with what the worker needs of its copy and
/// case.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VaultObjectRow {
    pub id: i64,
    pub copy_id: i64,
    pub case_id: String,
    pub key: String,
    #[serde(serialize_with = "super::hex32")]
    pub sha256: [u8; 32],
    pub bytes: u64,
    pub state: VaultState,
    pub mode: String,
    pub version_id: Option<String>,
    pub retain_until_us: i64,
    pub locked_until_us: Option<i64>,
    pub legal_hold: bool,
    pub attempts: u32,
    pub next_try_us: i64,
    pub last_error: Option<String>,
    pub queued_us: i64,
    pub stored_us: Option<i64>,
    pub done_us: Option<i64>,
    /// The copy, relative to the evidence root.
    pub copy_path: String,
    /// The case is still open.
    pub case_open: bool,
    pub case_review_us: i64,
}

/// Counts of one state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VaultCount {
    pub state: VaultState,
    pub objects: u64,
    pub bytes: u64,
}

/// Deleted objects of one case and camera not yet in the deletion journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultDeletion {
    pub ids: Vec<i64>,
    pub case_id: String,
    pub camera: String,
    pub from_us: i64,
    pub to_us: i64,
    pub bytes: u64,
    /// The latest retain-until any of them had, if it outlived the close.
    pub locked_until_us: Option<i64>,
    pub done_us: i64,
    pub mode: String,
}

const COLUMNS: &str = "v.id, v.copy_id, v.case_id, v.key, v.sha256, v.bytes, v.state, v.mode, \
     v.version_id, v.retain_until_us, v.locked_until_us, v.legal_hold, v.attempts, \
     v.next_try_us, v.last_error, v.queued_us, v.stored_us, v.done_us, e.copy_path, \
     c.status = 'open', c.review_us";
const FROM: &str = "FROM vault_object v JOIN evidence_copy e ON e.id = v.copy_id \
     JOIN evidence_case c ON c.id = v.case_id";

fn row(r: &rusqlite::Row) -> rusqlite::Result<VaultObjectRow> {
    let sha: Vec<u8> = r.get(4)?;
    let mut sha256 = [0u8; 32];
    if sha.len() == 32 {
        sha256.copy_from_slice(&sha);
    }
    Ok(VaultObjectRow {
        id: r.get(0)?,
        copy_id: r.get(1)?,
        case_id: r.get(2)?,
        key: r.get(3)?,
        sha256,
        bytes: r.get::<_, i64>(5)? as u64,
        state: VaultState::parse(&r.get::<_, String>(6)?),
        mode: r.get(7)?,
        version_id: r.get(8)?,
        retain_until_us: r.get(9)?,
        locked_until_us: r.get(10)?,
        legal_hold: r.get::<_, i64>(11)? != 0,
        attempts: r.get::<_, i64>(12)? as u32,
        next_try_us: r.get(13)?,
        last_error: r.get(14)?,
        queued_us: r.get(15)?,
        stored_us: r.get(16)?,
        done_us: r.get(17)?,
        copy_path: r.get(18)?,
        case_open: r.get(19)?,
        case_review_us: r.get(20)?,
    })
}

impl Index {
    /// Queues every live copy of an open case that has no vault row yet,
    /// keyed `prefix/CASE/FILE`, to be kept at least until `min_until_us`
    /// (or its case's review date, if later). Returns how many.
    pub fn queue_vault_copies(
        &self,
        prefix: &str,
        mode: &str,
        now_us: i64,
        min_until_us: i64,
    ) -> Result<usize> {
        Ok(self
            .conn
            .prepare_cached(
                "INSERT INTO vault_object (copy_id, case_id, key, sha256, bytes, state, mode, \
                 retain_until_us, next_try_us, queued_us) \
                 SELECT e.id, e.case_id, :prefix || '/' || e.copy_path, e.sha256, e.bytes, \
                 'pending', :mode, max(c.review_us, :min_until), :now, :now \
                 FROM evidence_copy e JOIN evidence_case c ON c.id = e.case_id \
                 WHERE e.destroyed_us IS NULL AND c.status = 'open' \
                 AND NOT EXISTS (SELECT 1 FROM vault_object v WHERE v.copy_id = e.id) \
                 ORDER BY e.id",
            )?
            .execute(named_params! {
                ":prefix": prefix,
                ":mode": mode,
                ":now": now_us,
                ":min_until": min_until_us,
            })?)
    }

    /// What the worker has to do now, oldest first: pending uploads; stored
    /// objects whose case closed or whose review date moved past their
    /// retention; expiring objects past their date.
    pub fn vault_work(&self, now_us: i64, limit: u32) -> Result<Vec<VaultObjectRow>> {
        let sql = format!(
            "SELECT {COLUMNS} {FROM} WHERE v.next_try_us <= :now AND ( \
             v.state = 'pending' \
             OR (v.state = 'stored' AND (c.status = 'closed' OR c.review_us > v.retain_until_us)) \
             OR (v.state = 'expiring' AND coalesce(v.locked_until_us, 0) <= :now)) \
             ORDER BY v.next_try_us, v.id LIMIT :limit"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(named_params! {":now": now_us, ":limit": limit}, row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The vault objects of one case (every state), in key order.
    pub fn case_vault_objects(&self, case_id: &str) -> Result<Vec<VaultObjectRow>> {
        let sql = format!("SELECT {COLUMNS} {FROM} WHERE v.case_id = :case ORDER BY v.key, v.id");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(named_params! {":case": case_id}, row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The store confirmed the object: this version, locked until
    /// `locked_until_us`, with the legal hold as `legal_hold`.
    pub fn vault_stored(
        &self,
        id: i64,
        version_id: Option<&str>,
        locked_until_us: i64,
        legal_hold: bool,
        now_us: i64,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE vault_object SET state = 'stored', version_id = :version, \
                 locked_until_us = :locked, legal_hold = :hold, stored_us = :now, attempts = 0, \
                 last_error = NULL, next_try_us = :now WHERE id = :id",
            )?
            .execute(named_params! {
                ":id": id,
                ":version": version_id,
                ":locked": locked_until_us,
                ":hold": legal_hold,
                ":now": now_us,
            })?;
        Ok(())
    }

    /// The store confirmed a longer retention.
    pub fn vault_retained(&self, id: i64, until_us: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE vault_object SET retain_until_us = max(retain_until_us, :until), \
                 locked_until_us = max(coalesce(locked_until_us, 0), :until), attempts = 0, \
                 last_error = NULL WHERE id = :id",
            )?
            .execute(named_params! {":id": id, ":until": until_us})?;
        Ok(())
    }

    /// The legal hold is lifted; the object stays locked until
    /// `locked_until_us`.
    pub fn vault_expiring(&self, id: i64, locked_until_us: i64, now_us: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE vault_object SET state = 'expiring', legal_hold = 0, \
                 locked_until_us = :locked, attempts = 0, last_error = NULL, \
                 next_try_us = max(:now, :locked) WHERE id = :id",
            )?
            .execute(named_params! {":id": id, ":locked": locked_until_us, ":now": now_us})?;
        Ok(())
    }

    /// The object is gone from the store (`deleted`), or never got there
    /// (`skipped`).
    pub fn vault_done(&self, id: i64, state: VaultState, now_us: i64) -> Result<()> {
        debug_assert!(matches!(state, VaultState::Deleted | VaultState::Skipped));
        self.conn
            .prepare_cached(
                "UPDATE vault_object SET state = :state, legal_hold = 0, done_us = :now, \
                 attempts = 0, last_error = NULL WHERE id = :id",
            )?
            .execute(named_params! {":id": id, ":state": state.as_str(), ":now": now_us})?;
        Ok(())
    }

    /// An attempt failed: try again at `next_try_us`.
    pub fn vault_failed(&self, id: i64, error: &str, next_try_us: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE vault_object SET attempts = attempts + 1, last_error = :error, \
                 next_try_us = :next WHERE id = :id",
            )?
            .execute(named_params! {":id": id, ":error": error, ":next": next_try_us})?;
        Ok(())
    }

    /// Objects and bytes per state.
    pub fn vault_counts(&self) -> Result<Vec<VaultCount>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT state, count(*), coalesce(sum(bytes), 0) FROM vault_object GROUP BY state",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(VaultCount {
                state: VaultState::parse(&r.get::<_, String>(0)?),
                objects: r.get::<_, i64>(1)? as u64,
                bytes: r.get::<_, i64>(2)? as u64,
            })
        })?;
        let mut counts: Vec<VaultCount> = rows.collect::<rusqlite::Result<_>>()?;
        for s in VaultState::ALL {
            if !counts.iter().any(|c| c.state == s) {
                counts.push(VaultCount {
                    state: s,
                    objects: 0,
                    bytes: 0,
                });
            }
        }
        counts.sort_by_key(|c| c.state);
        Ok(counts)
    }

    /// When the oldest object still waiting for the store was queued.
    pub fn vault_oldest_pending(&self) -> Result<Option<i64>> {
        Ok(self.conn.query_row(
            "SELECT min(queued_us) FROM vault_object WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )?)
    }

    /// The last error of an object still waiting, the latest first.
    pub fn vault_last_error(&self) -> Result<Option<(String, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT key, last_error FROM vault_object WHERE last_error IS NOT NULL \
             AND state IN ('pending', 'stored', 'expiring') ORDER BY next_try_us DESC LIMIT 1",
        )?;
        let mut rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.next().transpose()?)
    }

    /// Deleted objects not yet journaled, one group per case and camera,
    /// for cases none of whose objects are still in the vault's hands.
    pub fn vault_unjournaled(&self) -> Result<Vec<VaultDeletion>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT v.id, v.case_id, cam.name, e.start_us, e.end_us, v.bytes, \
             v.locked_until_us, v.done_us, v.mode \
             FROM vault_object v JOIN evidence_copy e ON e.id = v.copy_id \
             JOIN hold h ON h.id = e.hold_id JOIN camera cam ON cam.id = h.camera_id \
             WHERE v.state = 'deleted' AND v.journaled = 0 \
             AND NOT EXISTS (SELECT 1 FROM vault_object o WHERE o.case_id = v.case_id \
               AND o.state IN ('pending', 'stored', 'expiring')) \
             ORDER BY v.case_id, cam.name, v.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)? as u64,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, Option<i64>>(7)?.unwrap_or(0),
                r.get::<_, String>(8)?,
            ))
        })?;
        let mut groups: Vec<VaultDeletion> = Vec::new();
        for r in rows {
            let (id, case_id, camera, from, to, bytes, locked, done, mode) = r?;
            match groups.last_mut() {
                Some(g) if g.case_id == case_id && g.camera == camera => {
                    g.ids.push(id);
                    g.from_us = g.from_us.min(from);
                    g.to_us = g.to_us.max(to);
                    g.bytes += bytes;
                    g.locked_until_us = g.locked_until_us.max(locked);
                    g.done_us = g.done_us.max(done);
                }
                _ => groups.push(VaultDeletion {
                    ids: vec![id],
                    case_id,
                    camera,
                    from_us: from,
                    to_us: to,
                    bytes,
                    locked_until_us: locked,
                    done_us: done,
                    mode,
                }),
            }
        }
        Ok(groups)
    }

    /// Marks objects as journaled (in the transaction that wrote their row).
    pub fn mark_vault_journaled(&self, ids: &[i64]) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached("UPDATE vault_object SET journaled = 1 WHERE id = :id")?;
        for id in ids {
            stmt.execute(named_params! {":id": id})?;
        }
        Ok(())
    }
}
