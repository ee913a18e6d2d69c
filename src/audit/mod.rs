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
//! - The anchor and every logged checkpoint are signed with the node key
//!   ([`anchor_message`], [`checkpoint_message`]): whoever can rewrite the
//!   table (or the journal) but cannot read the key can neither move the
//!   anchor past entries they delete nor offer a checkpoint of their own.
//!
//! The rows ([`AuditRecord`], [`AuditEntry`], [`AuditAnchor`]) are the
//! index's (`crate::index`); this module owns the chain's rules: the hash
//! it hands to [`Index::append_audit`], the signatures, verification.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::clock::UnixMicros;
use crate::error::{Error, Result};
use crate::export::{NodeKey, key};
use crate::index::{AuditAnchor, AuditEntry, AuditRecord, Index};

/// A checkpoint is logged after this many entries...
pub const CHECKPOINT_EVERY: u64 = 100;
/// ...or this long after the previous one, whichever comes first.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Domain separation for the hash, and the version of the encoding.
const HASH_DOMAIN: &[u8] = b"custos-audit-v1\0";

/// Domain separation for the signatures of anchors and checkpoints.
const ANCHOR_DOMAIN: &[u8] = b"custos-audit-anchor-v1\0";
const CHECKPOINT_DOMAIN: &[u8] = b"custos-audit-checkpoint-v1\0";

/// What the node key signs for an anchor: `"custos-audit-anchor-v1\0"`,
/// `seq` and `purged_us` as 8-byte big-endian, then the 32-byte hash.
pub fn anchor_message(seq: i64, hash: &[u8], purged_us: UnixMicros) -> Vec<u8> {
    let mut b = Vec::with_capacity(ANCHOR_DOMAIN.len() + 48);
    b.extend_from_slice(ANCHOR_DOMAIN);
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&purged_us.to_be_bytes());
    b.extend_from_slice(hash);
    b
}

/// What the node key signs for a checkpoint:
/// `"custos-audit-checkpoint-v1\0"`, `seq` as 8-byte big-endian, then the
/// 32-byte hash.
pub fn checkpoint_message(seq: i64, hash: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 40);
    b.extend_from_slice(CHECKPOINT_DOMAIN);
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(hash);
    b
}

/// Whether `anchor` was written by a purge of this node: a stored anchor must
/// carry `key`'s signature. The genesis (no row) needs none, since the chain
/// then starts at seq 1 and any deletion shows as a gap.
pub fn verify_anchor(key: &VerifyingKey, anchor: &AuditAnchor) -> Option<Break> {
    let purged_us = anchor.purged_us?;
    let broken = |problem: String| {
        Some(Break {
            seq: anchor.seq,
            problem,
        })
    };
    let Some(sig) = &anchor.signature else {
        return broken(format!(
            "the anchor (entries up to {} purged) is not signed: it was written before \
             anchors were signed, or its signature was removed; the next purge signs a new one",
            anchor.seq
        ));
    };
    let good = <[u8; 64]>::try_from(sig.as_slice()).is_ok_and(|s| {
        key::verify(
            key,
            &anchor_message(anchor.seq, &anchor.hash, purged_us),
            &Signature::from_bytes(&s),
        )
    });
    if good {
        None
    } else {
        broken(format!(
            "the anchor (entries up to {} purged) does not carry this node's signature \
             (key {}): the purge record was forged or changed",
            anchor.seq,
            key::fingerprint(key)
        ))
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

/// A checkpoint as the writer logs it, `SEQ:HASH:SIGNATURE` (the node key's
/// signature of [`checkpoint_message`], hex), for `audit verify --checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub signature: [u8; 64],
}

impl SignedCheckpoint {
    fn sign(key: &NodeKey, checkpoint: &Checkpoint) -> SignedCheckpoint {
        SignedCheckpoint {
            checkpoint: checkpoint.clone(),
            signature: key
                .sign(&checkpoint_message(checkpoint.seq, &checkpoint.hash))
                .to_bytes(),
        }
    }

    /// Parses `SEQ:HASH:SIGNATURE`, as in an "audit checkpoint" log line.
    pub fn parse(s: &str) -> Result<SignedCheckpoint> {
        const FORM: &str = "a checkpoint is SEQ:HASH:SIGNATURE, the audit_checkpoint field of \
                            the daemon's \"audit checkpoint\" log lines";
        let mut parts = s.split(':');
        let (Some(seq), Some(hash), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::invalid(format!("{s:?}: {FORM}")));
        };
        let seq = seq.parse::<i64>().map_err(|_| {
            Error::invalid(format!("checkpoint seq {seq:?} is not a number; {FORM}"))
        })?;
        let signature: [u8; 64] = hex::decode(sig)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "checkpoint signature {sig:?} is not 128 hex digits; {FORM}"
                ))
            })?;
        Ok(SignedCheckpoint {
            checkpoint: Checkpoint {
                seq,
                hash: parse_hash(hash)?,
            },
            signature,
        })
    }

    /// Whether `key` signed it.
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        key::verify(
            key,
            &checkpoint_message(self.checkpoint.seq, &self.checkpoint.hash),
            &Signature::from_bytes(&self.signature),
        )
    }
}

impl std::fmt::Display for SignedCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.checkpoint.seq,
            hex::encode(&self.checkpoint.hash),
            hex::encode(self.signature)
        )
    }
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
pub fn encode(seq: i64, r: &AuditRecord, prev_hash: &[u8]) -> Vec<u8> {
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
pub fn entry_hash(seq: i64, r: &AuditRecord, prev_hash: &[u8]) -> [u8; 32] {
    Sha256::digest(encode(seq, r, prev_hash)).into()
}

/// Checks `entries` (in the order stored, by seq) against the chain starting
/// at `anchor`, and, if given, that the chain reaches `head`. Reports the
/// first entry that breaks it.
pub fn verify(
    anchor: &AuditAnchor,
    entries: &[AuditEntry],
    head: Option<&Checkpoint>,
) -> Verification {
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
    /// Signs checkpoints and anchors.
    key: NodeKey,
    head: Checkpoint,
    since_checkpoint: u64,
    last_checkpoint: Instant,
}

impl AuditLog {
    /// Takes over the audit log in `index` (a read-write connection of its
    /// own), continuing the chain from its last entry, and logs a checkpoint
    /// signed with `key`.
    pub fn open(index: Index, key: NodeKey) -> Result<AuditLog> {
        let path = index.path().ok_or_else(|| {
            Error::internal("the audit log needs an index in a file, read back by verify")
        })?;
        let (seq, hash) = index.audit_head()?;
        let mut w = Writer {
            index,
            key,
            head: Checkpoint { seq, hash },
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
        };
        w.checkpoint("audit checkpoint (start)");
        Ok(AuditLog {
            path,
            inner: Mutex::new(w),
        })
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `record` to the chain. Returns the stored entry once committed.
    pub fn append(&self, record: AuditRecord) -> Result<AuditEntry> {
        let mut w = self.writer();
        let entry = w.index.append_audit(&record, entry_hash)?;
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

    /// The head as a signed checkpoint, in the form `--checkpoint` takes.
    pub fn signed_head(&self) -> SignedCheckpoint {
        let w = self.writer();
        SignedCheckpoint::sign(&w.key, &w.head)
    }

    /// Verifies the anchor's signature and the stored chain, and that it
    /// reaches both the head this writer remembers and `external` (a
    /// checkpoint from the journal), if given. An `external` checkpoint not
    /// signed by the node key is refused: it proves nothing.
    ///
    /// Only the head and the key are taken under the writer's lock; the
    /// chain is read through a connection of its own in one read transaction
    /// (a snapshot that includes the head, whatever is appended or purged
    /// meanwhile), so appends go on while a long chain is checked.
    pub fn verify(&self, external: Option<&SignedCheckpoint>) -> Result<Verification> {
        let (head, public) = {
            let w = self.writer();
            (w.head.clone(), w.key.public())
        };
        if let Some(c) = external
            && !c.verify(&public)
        {
            return Err(Error::invalid(format!(
                "the checkpoint of entry {} is not signed by this node's key ({}): it was \
                 not logged by this daemon, or was copied wrongly",
                c.checkpoint.seq,
                key::fingerprint(&public)
            )));
        }
        let (anchor, entries) = Index::open_read_only(&self.path)?.audit_snapshot()?;
        if let Some(broken) = verify_anchor(&public, &anchor) {
            return Ok(Verification {
                checked: 0,
                first_seq: entries.first().map(|e| e.seq),
                last_seq: entries.last().map(|e| e.seq),
                broken: Some(broken),
            });
        }
        let mut v = verify(&anchor, &entries, Some(&head));
        if v.ok()
            && let Some(c) = external
        {
            v = verify(&anchor, &entries, Some(&c.checkpoint));
        }
        Ok(v)
    }

    /// Deletes entries older than `before_us` (the audit log's own retention),
    /// keeping the last deleted entry's seq and hash as the chain's anchor.
    /// Returns how many were deleted.
    pub fn purge(&self, before_us: UnixMicros) -> Result<u64> {
        let mut w = self.writer();
        let Writer { index, key, .. } = &mut *w;
        let n = index.purge_audit(before_us, |a| {
            let purged_us = a.purged_us.unwrap_or(before_us);
            key.sign(&anchor_message(a.seq, &a.hash, purged_us))
                .to_bytes()
                .to_vec()
        })?;
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
        let signed = SignedCheckpoint::sign(&self.key, &self.head);
        tracing::info!(
            audit_seq = self.head.seq,
            audit_hash = %hex::encode(&self.head.hash),
            audit_checkpoint = %signed,
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
    use crate::index::AUDIT_GENESIS_HASH;

    fn rec(i: i64) -> AuditRecord {
        AuditRecord {
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

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = AUDIT_GENESIS_HASH.to_vec();
        (1..=n)
            .map(|seq| {
                let record = rec(seq);
                let hash = entry_hash(seq, &record, &prev).to_vec();
                let e = AuditEntry {
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
            entry_hash(1, &a, &AUDIT_GENESIS_HASH),
            entry_hash(1, &b, &AUDIT_GENESIS_HASH)
        );
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        let head = Checkpoint {
            seq: 5,
            hash: c[4].hash.clone(),
        };
        let v = verify(&AuditAnchor::default(), &c, Some(&head));
        assert!(v.ok(), "{v:?}");
        assert_eq!(v.checked, 5);
    }

    /// A writer over a real index in a temp dir, with `n` entries, whose
    /// node key is in the same dir.
    fn writer(n: i64) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let key = NodeKey::load_or_create(dir.path()).unwrap();
        let log = AuditLog::open(Index::open(&dir.path().join("index.db")).unwrap(), key).unwrap();
        for i in 1..=n {
            log.append(rec(i)).unwrap();
        }
        (dir, log)
    }

    fn tamper(log: &AuditLog, sql: &str) {
        log.with_index(|ix| ix.tamper_for_tests(sql)).unwrap();
    }

    fn broken(log: &AuditLog) -> Option<Break> {
        log.verify(None).unwrap().broken
    }

    #[test]
    fn a_purge_signs_its_anchor_and_the_rest_verifies() {
        let (_d, log) = writer(5);
        assert_eq!(log.purge(rec(4).at_us).unwrap(), 3);
        let anchor = log.with_index(|ix| ix.audit_anchor()).unwrap();
        assert_eq!(anchor.seq, 3);
        assert_eq!(anchor.signature.as_ref().map(Vec::len), Some(64));
        assert_eq!(broken(&log), None);
    }

    #[test]
    fn an_anchor_forged_by_rewriting_the_table_is_detected() {
        // What a purge would do, done by hand: delete 1..=3 and anchor at 3.
        let (_d, log) = writer(5);
        tamper(
            &log,
            "INSERT INTO audit_anchor (id, seq, hash, purged_us) \
             SELECT 1, seq, hash, at_us + 1 FROM audit WHERE seq = 3; \
             DELETE FROM audit WHERE seq <= 3;",
        );
        let b = broken(&log).expect("forged anchor accepted");
        assert_eq!(b.seq, 3);
        assert!(b.problem.contains("not signed"), "{}", b.problem);

        // A real anchor moved further (hiding entry 4) or re-dated keeps a
        // signature that no longer matches.
        for change in [
            "DELETE FROM audit WHERE seq = 4; \
             UPDATE audit_anchor SET seq = 4, hash = (SELECT prev_hash FROM audit WHERE seq = 5)",
            "UPDATE audit_anchor SET purged_us = purged_us + 1",
            "UPDATE audit_anchor SET signature = randomblob(64)",
            "UPDATE audit_anchor SET signature = x'00'",
        ] {
            let (_d, log) = writer(5);
            log.purge(rec(4).at_us).unwrap();
            tamper(&log, change);
            let b = broken(&log).unwrap_or_else(|| panic!("{change}: not detected"));
            assert!(
                b.problem.contains("does not carry this node's signature"),
                "{change}: {b:?}"
            );
        }

        // Signed by another node's key.
        let (_d, log) = writer(5);
        let other = NodeKey::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        let anchor = log.with_index(|ix| ix.audit_all()).unwrap()[2].clone();
        let sig = other.sign(&anchor_message(3, &anchor.hash, 7)).to_bytes();
        tamper(
            &log,
            &format!(
                "INSERT INTO audit_anchor (id, seq, hash, purged_us, signature) \
                 VALUES (1, 3, x'{}', 7, x'{}'); DELETE FROM audit WHERE seq <= 3;",
                hex::encode(&anchor.hash),
                hex::encode(sig)
            ),
        );
        assert!(broken(&log).is_some());
    }

    /// Runs `f` with the log lines it emits captured.
    fn logged(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn logged_checkpoints_are_signed_and_verify_checks_the_signature() {
        let (_d, log) = writer(3);
        let text = logged(|| log.checkpoint());
        let field = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("audit_checkpoint="))
            .unwrap_or_else(|| panic!("no signed checkpoint in {text:?}"));
        let logged = SignedCheckpoint::parse(field).unwrap();
        assert_eq!(logged.checkpoint, log.head());
        assert_eq!(logged, log.signed_head());
        assert!(log.verify(Some(&logged)).unwrap().ok());

        // After a restart the writer no longer remembers the old head: a
        // truncated tail is then found only through the logged checkpoint.
        let (dir, log) = writer(3);
        let logged = log.signed_head();
        drop(log);
        let path = dir.path().join("index.db");
        Index::open(&path)
            .unwrap()
            .tamper_for_tests("DELETE FROM audit WHERE seq = 3")
            .unwrap();
        let key = NodeKey::load_or_create(dir.path()).unwrap();
        let log = AuditLog::open(Index::open(&path).unwrap(), key).unwrap();
        assert!(log.verify(None).unwrap().ok());
        let b = log.verify(Some(&logged)).unwrap().broken.unwrap();
        assert_eq!(b.seq, 3);

        // ...and a checkpoint whose seq, hash or signature was made up is refused.
        let mut forged = logged.clone();
        forged.checkpoint.seq = 2;
        let mut rehashed = logged.clone();
        rehashed.checkpoint.hash[0] ^= 1;
        let mut resigned = logged.clone();
        resigned.signature[0] ^= 1;
        let other = NodeKey::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        let foreign = SignedCheckpoint::sign(&other, &logged.checkpoint);
        for bad in [forged, rehashed, resigned, foreign] {
            let err = log.verify(Some(&bad)).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::InvalidInput);
            assert!(
                err.message.contains("not signed by this node's key"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_checkpoint_without_its_signature_gets_a_clear_error() {
        for bad in ["3:00", "3", "x:00:00", &format!("3:{}", "ab".repeat(32))] {
            let err = SignedCheckpoint::parse(bad).unwrap_err();
            assert!(err.message.contains("SEQ:HASH:SIGNATURE"), "{bad}: {err}");
        }
        let ok = format!("3:{}:{}", "ab".repeat(32), "cd".repeat(64));
        assert_eq!(SignedCheckpoint::parse(&ok).unwrap().to_string(), ok);
    }
}
