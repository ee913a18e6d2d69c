//! The audit log: who did what through the admin API, when, why, and with
//! what outcome (001 §24-27; 004 §12: every access must be traceable).
//!
//! Invariants (see docs/design/security.md):
//! - Entries are only appended, by one [`AuditLog`] (the API's), each in its
//!   own transaction in `index.db`; nothing in Custos edits or deletes one,
//!   except [`AuditLog::purge`] for the audit log's own retention.
//! - Each entry stores the hash of the previous one (`prev_hash`) and its own
//!   hash over a canonical encoding ([`entry_hash`]), so a changed, deleted,
//!   inserted or reordered entry breaks the chain at that entry.
//! - Truncating the end of the table leaves a valid shorter chain; that is
//!   caught by comparing with the checkpoints (latest seq and hash) that the
//!   writer logs every [`CHECKPOINT_EVERY`] entries or [`CHECKPOINT_INTERVAL`],
//!   and with the head the running daemon remembers.
//! - Purging old entries keeps the last purged entry's seq and hash as the
//!   anchor, so the rest of the chain stays verifiable.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::clock::UnixMicros;
use crate::error::{Error, Result};
use crate::index::Index;

/// A checkpoint is logged after this many entries...
pub const CHECKPOINT_EVERY: u64 = 100;
/// ...or this long after the previous one, whichever comes first.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Domain separation for the hash, and the version of the encoding.
const HASH_DOMAIN: &[u8] = b"custos-audit-v1\0";

/// The hash before the first entry ever written.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// What is recorded about one API call, before it is chained.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
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
pub struct Entry {
    pub seq: i64,
    #[serde(flatten)]
    pub record: Record,
    #[serde(with = "hex_bytes")]
    pub prev_hash: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
}

/// Where the stored chain starts: seq and hash of the last purged entry
/// (0 and [`GENESIS_HASH`] if nothing was ever purged).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Anchor {
    pub seq: i64,
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
}

impl Default for Anchor {
    fn default() -> Self {
        Anchor {
            seq: 0,
            hash: GENESIS_HASH.to_vec(),
        }
    }
}

/// The latest entry known from outside the table (a logged checkpoint, or
/// the running daemon's memory): the table must reach it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    /// Entries checked.
    pub checked: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// The first entry where the chain breaks, and why; None if intact.
    pub broken: Option<Break>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.broken.is_none()
    }
}

/// Where and why the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Break {
    /// The first entry (seq) that does not follow from what precedes it.
    pub seq: i64,
    pub problem: String,
}

/// The canonical encoding that is hashed, so an auditor can recompute it:
/// `"custos-audit-v1\0"`, then `seq`, `at_us` and `pid` as 8-byte big-endian
/// two's complement, `uid` as 4-byte big-endian, then `user`, `role`,
/// `action`, `target`, `reason`, `outcome`, each as a 4-byte big-endian byte
/// length followed by its UTF-8 bytes, then the 32-byte `prev_hash`.
pub fn encode(seq: i64, r: &Record, prev_hash: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(128);
    b.extend_from_slice(HASH_DOMAIN);
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&r.at_us.to_be_bytes());
    b.extend_from_slice(&i64::from(r.pid).to_be_bytes());
    b.extend_from_slice(&r.uid.to_be_bytes());
    for s in [
        &r.user, &r.role, &r.action, &r.target, &r.reason, &r.outcome,
    ] {
        b.extend_from_slice(&(s.len() as u32).to_be_bytes());
        b.extend_from_slice(s.as_bytes());
    }
    b.extend_from_slice(prev_hash);
    b
}

/// SHA-256 of [`encode`].
pub fn entry_hash(seq: i64, r: &Record, prev_hash: &[u8]) -> [u8; 32] {
    Sha256::digest(encode(seq, r, prev_hash)).into()
}

/// Checks `entries` (in the order stored, by seq) against the chain starting
/// at `anchor`, and, if given, that the chain reaches `head`. Reports the
/// first entry that breaks it.
pub fn verify(anchor: &Anchor, entries: &[Entry], head: Option<&Checkpoint>) -> Verification {
    let mut v = Verification {
        checked: 0,
        first_seq: entries.first().map(|e| e.seq),
        last_seq: entries.last().map(|e| e.seq),
        broken: None,
    };
    let mut prev_seq = anchor.seq;
    let mut prev_hash = anchor.hash.clone();
    for e in entries {
        let problem = if e.seq != prev_seq + 1 {
            Some(if e.seq > prev_seq + 1 {
                format!(
                    "entries {} to {} are missing (deleted?)",
                    prev_seq + 1,
                    e.seq - 1
                )
            } else {
                format!("seq {} follows {prev_seq} (reordered or duplicated)", e.seq)
            })
        } else if e.prev_hash != prev_hash {
            Some(format!(
                "its prev_hash {} is not the hash of the entry before it ({}): an entry \
                 before it was changed, removed or reordered",
                hex::encode(&e.prev_hash),
                hex::encode(&prev_hash)
            ))
        } else if entry_hash(e.seq, &e.record, &e.prev_hash)[..] != e.hash[..] {
            Some("its contents do not match its hash: it was changed".to_owned())
        } else {
            None
        };
        if let Some(problem) = problem {
            // A gap is reported at its first missing entry.
            let seq = if e.seq > prev_seq + 1 {
                prev_seq + 1
            } else {
                e.seq
            };
            v.broken = Some(Break { seq, problem });
            return v;
        }
        v.checked += 1;
        prev_seq = e.seq;
        prev_hash = e.hash.clone();
    }
    if let Some(h) = head {
        if h.seq > prev_seq {
            v.broken = Some(Break {
                seq: prev_seq + 1,
                problem: format!(
                    "the log ends at entry {prev_seq}, but entry {} (hash {}) was written: \
                     entries from {} on were removed",
                    h.seq,
                    hex::encode(&h.hash),
                    prev_seq + 1
                ),
            });
        } else if h.seq > anchor.seq
            && let Some(e) = entries.iter().find(|e| e.seq == h.seq)
            && e.hash != h.hash
        {
            v.broken = Some(Break {
                seq: h.seq,
                problem: format!(
                    "entry {} has hash {}, but the checkpoint says {}: the log was rewritten",
                    h.seq,
                    hex::encode(&e.hash),
                    hex::encode(&h.hash)
                ),
            });
        }
    }
    v
}

/// The one writer of the audit log, shared by the API's request handlers.
pub struct AuditLog {
    /// The index file, opened read-only by [`AuditLog::verify`].
    path: PathBuf,
    inner: Mutex<Writer>,
}

struct Writer {
    index: Index,
    head: Checkpoint,
    since_checkpoint: u64,
    last_checkpoint: Instant,
}

impl AuditLog {
    /// Takes over the audit log in `index` (a read-write connection of its
    /// own), continuing the chain from its last entry, and logs a checkpoint.
    pub fn open(index: Index) -> Result<AuditLog> {
        let path = index.path().ok_or_else(|| {
            Error::internal("the audit log needs an index in a file, read back by verify")
        })?;
        let (seq, hash) = index.audit_head()?;
        let head = Checkpoint { seq, hash };
        tracing::info!(
            audit_seq = head.seq,
            audit_hash = %hex::encode(&head.hash),
            "audit checkpoint (start)"
        );
        Ok(AuditLog {
            path,
            inner: Mutex::new(Writer {
                index,
                head,
                since_checkpoint: 0,
                last_checkpoint: Instant::now(),
            }),
        })
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `record` to the chain. Returns the stored entry once committed.
    pub fn append(&self, record: Record) -> Result<Entry> {
        let mut w = self.writer();
        let entry = w.index.append_audit(&record)?;
        w.head = Checkpoint {
            seq: entry.seq,
            hash: entry.hash.clone(),
        };
        w.since_checkpoint += 1;
        if w.since_checkpoint >= CHECKPOINT_EVERY
            || w.last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL
        {
            w.checkpoint("audit checkpoint");
        }
        Ok(entry)
    }

    /// The latest entry written (seq 0 if none).
    pub fn head(&self) -> Checkpoint {
        self.writer().head.clone()
    }

    /// Logs a checkpoint now (e.g. at shutdown).
    pub fn checkpoint(&self) {
        self.writer().checkpoint("audit checkpoint");
    }

    /// Verifies the stored chain, and that it reaches both the head this
    /// writer remembers and `external` (a checkpoint from the journal), if given.
    ///
    /// Only the head is taken under the writer's lock; the chain is read
    /// through a connection of its own in one read transaction (a snapshot
    /// that includes the head, whatever is appended or purged meanwhile), so
    /// appends go on while a long chain is checked.
    pub fn verify(&self, external: Option<&Checkpoint>) -> Result<Verification> {
        let head = self.head();
        let (anchor, entries) = Index::open_read_only(&self.path)?.audit_snapshot()?;
        let mut v = verify(&anchor, &entries, Some(&head));
        if v.ok()
            && let Some(c) = external
        {
            v = verify(&anchor, &entries, Some(c));
        }
        Ok(v)
    }

    /// Deletes entries older than `before_us` (the audit log's own retention),
    /// keeping the last deleted entry's seq and hash as the chain's anchor.
    /// Returns how many were deleted.
    pub fn purge(&self, before_us: UnixMicros) -> Result<u64> {
        let mut w = self.writer();
        let n = w.index.purge_audit(before_us)?;
        if n > 0 {
            let anchor = w.index.audit_anchor()?;
            tracing::info!(
                purged = n,
                audit_anchor_seq = anchor.seq,
                audit_anchor_hash = %hex::encode(&anchor.hash),
                "audit entries past their retention deleted"
            );
        }
        Ok(n)
    }

    /// Reads entries through the writer's connection (see
    /// [`Index::audit_entries`]).
    pub fn with_index<T>(&self, f: impl FnOnce(&Index) -> Result<T>) -> Result<T> {
        f(&self.writer().index)
    }
}

impl Writer {
    fn checkpoint(&mut self, msg: &'static str) {
        tracing::info!(
            audit_seq = self.head.seq,
            audit_hash = %hex::encode(&self.head.hash),
            "{msg}"
        );
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.writer().checkpoint("audit checkpoint (stop)");
    }
}

/// Filters for reading the log.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub from_us: Option<UnixMicros>,
    pub to_us: Option<UnixMicros>,
    pub uid: Option<u32>,
    pub action: Option<String>,
    /// Most entries returned (newest first). Default 100.
    pub limit: Option<u32>,
}

/// Parses a 64-hex-digit hash.
pub fn parse_hash(s: &str) -> Result<Vec<u8>> {
    let v = hex::decode(s)
        .map_err(|_| Error::invalid(format!("{s:?} is not a hash: expected 64 hex digits")))?;
    if v.len() != 32 {
        return Err(Error::invalid(format!(
            "{s:?} is not a hash: expected 64 hex digits, got {}",
            s.len()
        )));
    }
    Ok(v)
}

/// Checks that a stored hash column is 32 bytes.
pub(crate) fn check_hash_len(seq: i64, h: &[u8]) -> Result<()> {
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
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: i64) -> Record {
        Record {
            at_us: 1_700_000_000_000_000 + i,
            uid: 1000 + i as u32,
            user: format!("user{i}"),
            pid: 42,
            role: "viewer".into(),
            action: "status".into(),
            target: "-".into(),
            reason: String::new(),
            outcome: "ok".into(),
        }
    }

    fn chain(n: i64) -> Vec<Entry> {
        let mut prev = GENESIS_HASH.to_vec();
        (1..=n)
            .map(|seq| {
                let record = rec(seq);
                let hash = entry_hash(seq, &record, &prev).to_vec();
                let e = Entry {
                    seq,
                    record,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut a = rec(1);
        let mut b = rec(1);
        a.user = "ab".into();
        a.role = "c".into();
        b.user = "a".into();
        b.role = "bc".into();
        assert_ne!(
            entry_hash(1, &a, &GENESIS_HASH),
            entry_hash(1, &b, &GENESIS_HASH)
        );
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        let head = Checkpoint {
            seq: 5,
            hash: c[4].hash.clone(),
        };
        let v = verify(&Anchor::default(), &c, Some(&head));
        assert!(v.ok(), "{v:?}");
        assert_eq!(v.checked, 5);
    }
}
