//! The evidence vault: every evidence copy also kept on an S3 bucket with
//! Object Lock, beyond the reach of any one recording server (issue 20,
//! docs/design/vault.md).
//!
//! Invariants:
//! - The vault never blocks recording or a hold: the evidence module makes
//!   its copies as before, and this worker, on its own thread, queues each
//!   live copy of an open case in the index (`vault_object`) and works the
//!   queue. Nothing here is on the path of a hold or a close.
//! - A copy counts as vaulted (`stored`) only once a HEAD of its version
//!   showed the checksum, the legal hold and the retention asked for.
//! - An upload is restart-safe: before every PUT the worker HEADs the key,
//!   and a version already there with the copy's SHA-256 is adopted, not
//!   uploaded again.
//! - Retention only grows: it follows the case's review date out, never in.
//! - A closed case's objects lose their legal hold, then are deleted with
//!   the governance bypass (`on_close = "delete"`, governance objects) or
//!   left locked until their retain-until date and deleted then. Each
//!   deletion is journaled once, per case and camera, as root `vault`.
//! - Failures are retried with backoff ([`backoff`]), forever; the last
//!   error stays on the row and shows in `custosctl vault status`.

mod case;
pub mod s3;

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::clock::{Clocks, format_utc};
use crate::config::{Config, VaultConfig, VaultLockMode, VaultOnClose};
use crate::error::{Error, Result};
use crate::index::{DeletionReason, NewDeletion, SharedIndex, VaultObjectRow, VaultState};

pub use case::{ListedObject, VaultCheck, list_case, verify_case};
pub use s3::{ObjectInfo, Store, VersionEntry};

/// How often the worker looks for work.
const TICK: Duration = Duration::from_secs(1);
/// How often a failed Object Lock check is tried again.
const RECHECK_FAILED_US: i64 = 60_000_000;
/// How often a passed one is confirmed.
const RECHECK_OK_US: i64 = 3_600_000_000;
/// Objects taken per round (the stop flag is checked between them).
const BATCH: u32 = 16;
/// Shortest retention given to an upload: a case whose review date has
/// passed (it is overdue, still open) is still kept this long ahead.
const MIN_RETENTION_US: i64 = 86_400_000_000;

/// The wait before attempt `attempts + 1`: 5 s doubling to 15 minutes.
pub fn backoff(attempts: u32) -> Duration {
    let s = 5u64.saturating_mul(1 << attempts.min(10));
    Duration::from_secs(s.min(900))
}

/// The last check of the bucket's Object Lock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LockCheck {
    pub at_us: i64,
    /// None: Object Lock is on and the credentials work.
    pub error: Option<String>,
}

/// What the worker knows that the index does not.
#[derive(Debug, Default)]
pub struct VaultStatus {
    check: Mutex<Option<LockCheck>>,
}

impl VaultStatus {
    pub fn lock_check(&self) -> Option<LockCheck> {
        self.check.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, c: LockCheck) {
        *self.check.lock().unwrap_or_else(|p| p.into_inner()) = Some(c);
    }
}

type Stop = Arc<(Mutex<bool>, Condvar)>;

/// The vault thread.
pub struct Vault {
    config: VaultConfig,
    stop: Stop,
    thread: Option<JoinHandle<()>>,
}

impl Vault {
    /// Starts the worker if the configuration has a `[vault]`.
    pub fn start(
        config: &Config,
        index: SharedIndex,
        clocks: Arc<dyn Clocks>,
        status: Arc<VaultStatus>,
    ) -> Option<Vault> {
        let vault = config.vault.clone()?;
        let kept = vault.clone();
        let config = config.clone();
        let stop: Stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vault".into())
            .spawn(move || {
                let store = match Store::new(&vault) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "the evidence vault cannot start");
                        status.set(LockCheck {
                            at_us: clocks.realtime(),
                            error: Some(e.to_string()),
                        });
                        return;
                    }
                };
                let mut w = Worker {
                    config,
                    vault,
                    store,
                    index,
                    clocks,
                    status,
                };
                w.run(&stop2);
            })
            .expect("cannot start the vault thread");
        Some(Vault {
            config: kept,
            stop,
            thread: Some(thread),
        })
    }

    /// The `[vault]` it runs with.
    pub fn config(&self) -> &VaultConfig {
        &self.config
    }

    /// Stops the worker after the request in flight; `wait` waits for it.
    pub fn stop(mut self, wait: bool) {
        {
            let (flag, cv) = &*self.stop;
            *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cv.notify_all();
        }
        if let Some(t) = self.thread.take()
            && wait
        {
            let _ = t.join();
        }
    }
}

struct Worker {
    config: Config,
    vault: VaultConfig,
    store: Store,
    index: SharedIndex,
    clocks: Arc<dyn Clocks>,
    status: Arc<VaultStatus>,
}

fn stopped(stop: &Stop) -> bool {
    *stop.0.lock().unwrap_or_else(|p| p.into_inner())
}

impl Worker {
    fn run(&mut self, stop: &Stop) {
        tracing::info!(
            endpoint = %self.vault.endpoint,
            bucket = %self.vault.bucket,
            prefix = %self.vault.prefix,
            mode = self.vault.lock_mode.as_str(),
            "evidence vault started"
        );
        loop {
            if stopped(stop) {
                return;
            }
            if let Err(e) = self.round(stop) {
                tracing::error!(error = %e, "evidence vault: the index failed; trying again");
            }
            let (flag, cv) = &**stop;
            let guard = flag.lock().unwrap_or_else(|p| p.into_inner());
            if *guard {
                return;
            }
            let _ = cv.wait_timeout(guard, TICK);
        }
    }

    /// One round: queue new copies, check the bucket, work what is due,
    /// journal what was deleted.
    fn round(&mut self, stop: &Stop) -> Result<()> {
        let now = self.clocks.realtime();
        let queued = self.index.lock().queue_vault_copies(
            &self.vault.prefix,
            self.vault.lock_mode.as_str(),
            now,
            now + MIN_RETENTION_US,
        )?;
        if queued > 0 {
            tracing::info!(objects = queued, "evidence vault: copies queued");
        }
        if !self.bucket_ready(now) {
            return Ok(());
        }
        let work = self.index.lock().vault_work(now, BATCH)?;
        for row in work {
            if stopped(stop) {
                break;
            }
            if let Err(e) = self.handle(&row) {
                let wait = backoff(row.attempts);
                if row.attempts == 0 {
                    tracing::warn!(key = %row.key, error = %e, "evidence vault: will try again");
                }
                let next = self.clocks.realtime() + wait.as_micros() as i64;
                self.index
                    .lock()
                    .vault_failed(row.id, &e.to_string(), next)?;
            }
        }
        self.journal()
    }

    /// Checks Object Lock when due; true if the bucket can take uploads.
    fn bucket_ready(&mut self, now: i64) -> bool {
        let due = match self.status.lock_check() {
            None => true,
            Some(c) if c.error.is_some() => now - c.at_us >= RECHECK_FAILED_US,
            Some(c) => now - c.at_us >= RECHECK_OK_US,
        };
        if due {
            let error = match self.store.check_object_lock() {
                Ok(()) => None,
                Err(e) => {
                    tracing::error!(error = %e, "evidence vault: the bucket is not usable");
                    Some(e.to_string())
                }
            };
            self.status.set(LockCheck { at_us: now, error });
        }
        self.status.lock_check().is_some_and(|c| c.error.is_none())
    }

    fn handle(&mut self, row: &VaultObjectRow) -> Result<()> {
        match row.state {
            VaultState::Pending => self.upload(row),
            VaultState::Stored if !row.case_open => self.release(row),
            VaultState::Stored => self.extend(row),
            VaultState::Expiring => self.expire(row),
            VaultState::Deleted | VaultState::Skipped => Ok(()),
        }
    }

    fn mode(row: &VaultObjectRow) -> VaultLockMode {
        if row.mode == "compliance" {
            VaultLockMode::Compliance
        } else {
            VaultLockMode::Governance
        }
    }

    /// Uploads a pending copy, or adopts the version an earlier attempt
    /// left; confirms it with a HEAD.
    fn upload(&mut self, row: &VaultObjectRow) -> Result<()> {
        let sha = hex::encode(row.sha256);
        let existing = self
            .store
            .head(&row.key, None)?
            .filter(|o| o.sha256.as_deref() == Some(sha.as_str()));
        let version = match existing {
            Some(o) => o.version_id,
            None if !row.case_open => {
                // Closed before it reached the vault: nothing to keep there.
                let now = self.clocks.realtime();
                return self
                    .index
                    .lock()
                    .vault_done(row.id, VaultState::Skipped, now);
            }
            None => {
                let path = self.config.evidence.path.join(&row.copy_path);
                let v = self.store.put_locked(
                    &row.key,
                    &path,
                    row.bytes,
                    &row.sha256,
                    Self::mode(row),
                    row.retain_until_us,
                    true,
                )?;
                crate::failpoint::abort_at("vault-after-put");
                v
            }
        };
        let Some(version) = version else {
            return Err(Error::unavailable(format!(
                "the vault gave {} no version id: the bucket is not versioned, so Object Lock \
                 cannot hold it",
                row.key
            )));
        };
        let info = self.store.head(&row.key, Some(&version))?.ok_or_else(|| {
            Error::unavailable(format!(
                "{} vanished from the vault right after upload",
                row.key
            ))
        })?;
        self.confirm(row, &info, row.case_open)?;
        let until = info.retain_until_us.unwrap_or(0);
        let now = self.clocks.realtime();
        self.index
            .lock()
            .vault_stored(row.id, Some(&version), until, info.legal_hold, now)?;
        tracing::info!(key = %row.key, version = %version, "evidence vault: stored");
        Ok(())
    }

    /// Checks that the store keeps what was asked of it.
    fn confirm(&self, row: &VaultObjectRow, info: &ObjectInfo, hold: bool) -> Result<()> {
        let sha = hex::encode(row.sha256);
        let mut wrong = Vec::new();
        if info.sha256.as_deref() != Some(sha.as_str()) {
            wrong.push(format!("its SHA-256 is {:?}, not {sha}", info.sha256));
        }
        if info.bytes != row.bytes {
            wrong.push(format!("it has {} bytes, not {}", info.bytes, row.bytes));
        }
        if info.mode.as_deref() != Some(Self::mode(row).s3_name()) {
            wrong.push(format!("its lock mode is {:?}", info.mode));
        }
        // S3 keeps whole seconds.
        if info.retain_until_us.unwrap_or(0) < row.retain_until_us - 1_000_000 {
            wrong.push(format!(
                "it is retained until {}, not {}",
                info.retain_until_us.map_or("never".into(), format_utc),
                format_utc(row.retain_until_us)
            ));
        }
        if hold && !info.legal_hold {
            wrong.push("it has no legal hold".to_owned());
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(Error::unavailable(format!(
                "the vault did not keep {} as asked: {}; check that the store enforces Object Lock",
                row.key,
                wrong.join("; ")
            )))
        }
    }

    fn version(row: &VaultObjectRow) -> Result<&str> {
        row.version_id
            .as_deref()
            .ok_or_else(|| Error::internal(format!("vault object {} has no version", row.key)))
    }

    /// Moves a stored object's retention out to its case's review date.
    fn extend(&mut self, row: &VaultObjectRow) -> Result<()> {
        let version = Self::version(row)?;
        let until = row.case_review_us;
        self.store
            .set_retention(&row.key, version, Self::mode(row), until)?;
        let info = self
            .store
            .head(&row.key, Some(version))?
            .ok_or_else(|| Error::unavailable(format!("{} is missing from the vault", row.key)))?;
        let kept = info.retain_until_us.unwrap_or(0);
        if kept < until - 1_000_000 {
            return Err(Error::unavailable(format!(
                "the vault kept {} until {}, not {}",
                row.key,
                format_utc(kept),
                format_utc(until)
            )));
        }
        self.index.lock().vault_retained(row.id, until)?;
        tracing::info!(key = %row.key, until = %format_utc(until), "evidence vault: retention extended");
        Ok(())
    }

    /// A closed case's object: legal hold off, then deleted or left to
    /// expire.
    fn release(&mut self, row: &VaultObjectRow) -> Result<()> {
        let version = Self::version(row)?;
        self.store.set_legal_hold(&row.key, version, false)?;
        let now = self.clocks.realtime();
        let delete = self.vault.on_close == VaultOnClose::Delete
            && Self::mode(row) == VaultLockMode::Governance;
        if delete {
            self.store.delete_version(&row.key, version, true)?;
            self.index
                .lock()
                .vault_done(row.id, VaultState::Deleted, now)?;
            tracing::info!(key = %row.key, "evidence vault: case closed, deleted");
        } else {
            let until = row.locked_until_us.unwrap_or(row.retain_until_us);
            self.index.lock().vault_expiring(row.id, until, now)?;
            tracing::info!(
                key = %row.key,
                until = %format_utc(until),
                "evidence vault: case closed, locked until its retain-until date"
            );
        }
        Ok(())
    }

    /// An expiring object past its date: deleted.
    fn expire(&mut self, row: &VaultObjectRow) -> Result<()> {
        let version = Self::version(row)?;
        self.store.delete_version(&row.key, version, false)?;
        let now = self.clocks.realtime();
        self.index
            .lock()
            .vault_done(row.id, VaultState::Deleted, now)
    }

    /// Journals the deleted objects of cases the vault is done with.
    fn journal(&mut self) -> Result<()> {
        let groups = self.index.lock().vault_unjournaled()?;
        let now = self.clocks.realtime();
        for g in groups {
            let zone = self
                .config
                .footage_zone(&g.camera)
                .unwrap_or("-")
                .to_owned();
            let early = g.mode == "governance" && g.locked_until_us.is_some_and(|u| g.done_us < u);
            let note = if early {
                format!(
                    "deleted from vault bucket {} when the case closed, before its retain-until \
                     date (governance bypass)",
                    self.vault.bucket
                )
            } else {
                format!(
                    "kept locked in vault bucket {} after the case closed, until {}; deleted then",
                    self.vault.bucket,
                    g.locked_until_us
                        .map_or("its retain-until date".into(), format_utc)
                )
            };
            self.index.lock().transaction(|ix| {
                ix.record_deletion(&NewDeletion {
                    at_us: g.done_us,
                    pass_us: now,
                    camera: ix.camera_id(&g.camera)?,
                    zone: &zone,
                    root: "vault",
                    from_us: g.from_us,
                    to_us: g.to_us,
                    segments: g.ids.len() as u64,
                    bytes: g.bytes,
                    reason: DeletionReason::CaseClosed,
                    actor: "vault",
                    request: None,
                    note: Some(&note),
                })?;
                ix.mark_vault_journaled(&g.ids)
            })?;
            tracing::info!(case = %g.case_id, camera = %g.camera, objects = g.ids.len(), "evidence vault: deletion journaled");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_five_seconds_to_fifteen_minutes() {
        assert_eq!(backoff(0), Duration::from_secs(5));
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(4), Duration::from_secs(80));
        assert_eq!(backoff(8), Duration::from_secs(900));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(900));
    }
}
