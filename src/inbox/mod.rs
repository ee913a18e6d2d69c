//! Footage of mobile cameras (body, dash, handheld) that arrives as files
//! in inbox directories (`[[inbox]]`), taken into storage like a camera's
//! segments (docs/design/inbox.md).
//!
//! Invariants:
//! - A file is taken only once its size and modification time were the
//!   same over at least the inbox's settle time, and no process has it
//!   open for writing (where the kernel can tell, `scan::open_for_writing`);
//!   hidden (dot) files, which copies in progress use, are never taken.
//! - Which device a file is from is told by the inbox, the file name's
//!   pattern or the sub-directory, never guessed (`scan`).
//! - A file that is not valid footage, or whose device or time cannot be
//!   told or is implausible, is moved to the inbox's quarantine with a
//!   `<name>.reason.txt` beside it; it is never deleted (`validate`).
//! - A kept file's bytes are stored unaltered; the inbox file is removed
//!   only after the stored copy is durable and indexed, so a crash at any
//!   step leaves the inbox file or the stored and indexed one (`store`).
//! - The same bytes (SHA-256) are stored once; a second copy is recognised
//!   and removed from the inbox.
//! - Every ingest, duplicate and quarantine is audited before it acts; if
//!   the entry cannot be written the file stays where it is.
//!
//! One thread scans every inbox in full at its poll interval, when a
//! waiting file's settle time is up, and soon after a change event
//! (`notify`: inotify). Events only make it sooner: a network or removable
//! file system sends none, and events can be lost, so a full scan at start
//! and at every poll is what finds every file.

mod quarantine;
mod scan;
mod store;
mod validate;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::clock::Clocks;
use crate::config::{Config, Inbox};
use crate::error::{Error, Result};
use crate::index::{
    AuditRecord, NewDeviceFile, SegmentId, SegmentRow, SegmentSummary, SharedIndex,
};
use crate::storage;

use quarantine::move_file;
pub use quarantine::{Quarantined, quarantined, retry};
pub use store::STAGING_DIR;

/// Writes an audit entry; an error means the act must not happen.
pub type AuditSink = Arc<dyn Fn(AuditRecord) -> Result<()> + Send + Sync>;

/// Called after each file is stored, with whether its footage is already
/// past its zone's ceiling: the reaper then runs now, not at its interval,
/// and checks its root for pressure (the daemon wires it; it must not block).
pub type StoredHook = Arc<dyn Fn(bool) + Send + Sync>;

/// Suffix of the file that says why a file was quarantined.
pub const REASON_SUFFIX: &str = ".reason.txt";

/// What the inboxes hold and did, for status and metrics.
#[derive(Debug, Default)]
pub struct InboxStatus {
    pub ingested: AtomicU64,
    pub ingested_bytes: AtomicU64,
    pub duplicates: AtomicU64,
    pub quarantined: AtomicU64,
    pending: Mutex<Vec<Pending>>,
}

/// A file seen in an inbox and not yet taken.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pending {
    pub inbox: PathBuf,
    pub file: String,
    pub bytes: u64,
    /// When it was first seen (server clock).
    pub seen_us: i64,
}

impl InboxStatus {
    pub fn pending(&self) -> Vec<Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The start-up half of `store`'s crash safety: for a `recording` segment
/// row that is a device file being stored, completes or drops it. Returns
/// `None` if the row is not a device file's.
pub fn recover_row(index: &SharedIndex, row: &SegmentRow, path: &Path) -> Result<Option<bool>> {
    let Some(file) = index.lock().storing_device_file(SegmentId(row.id))? else {
        return Ok(None);
    };
    store::recover(index, row, path, &file.sha256).map(Some)
}

/// What wakes the inbox thread: a stop, or a change event.
#[derive(Debug, Default)]
struct Wake {
    stop: bool,
    changed: bool,
}

type Signal = Arc<(Mutex<Wake>, Condvar)>;

/// A file whose taking failed (I/O, audit, index) is tried again after
/// this, so a lasting fault logs (and audits) once a minute, not per poll.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(60);

/// Change events only wake the thread early; a burst of them is taken in
/// one scan this long after the first.
const COALESCE: Duration = Duration::from_millis(50);

/// The inbox thread.
pub struct Watcher {
    stop: Signal,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Clears staging leftovers and starts scanning. Inboxes that do not
    /// exist are logged and looked for again at each scan.
    pub fn start(
        config: Config,
        index: SharedIndex,
        clocks: Arc<dyn Clocks>,
        audit: AuditSink,
        status: Arc<InboxStatus>,
        stored: StoredHook,
    ) -> Watcher {
        let stop: Signal = Arc::new((Mutex::new(Wake::default()), Condvar::new()));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("inbox".into())
            .spawn(move || {
                let mut w = Worker {
                    config,
                    index,
                    clocks,
                    audit,
                    status,
                    stored,
                    seen: HashMap::new(),
                    unreadable: Default::default(),
                    no_leases: Default::default(),
                };
                w.run(&stop2);
            })
            .expect("cannot start the inbox thread");
        Watcher {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops after the file being taken (if any) and waits.
    pub fn stop(mut self) {
        self.signal();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn signal(&self) {
        let (lock, cv) = &*self.stop;
        lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        cv.notify_all();
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.signal();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A file as last seen, for the settle rule.
struct Seen {
    size: u64,
    mtime_ns: i128,
    /// Since when it has looked like this.
    since: Instant,
    /// Its inbox's settle time.
    settle: Duration,
    seen_us: i64,
}

struct Worker {
    config: Config,
    index: SharedIndex,
    clocks: Arc<dyn Clocks>,
    audit: AuditSink,
    status: Arc<InboxStatus>,
    stored: StoredHook,
    seen: HashMap<PathBuf, Seen>,
    /// Inboxes that could not be scanned, so that is logged once, not at
    /// every poll.
    unreadable: std::collections::HashSet<PathBuf>,
    /// Inboxes whose files' writers cannot be told (warned about once).
    no_leases: std::collections::HashSet<PathBuf>,
}

/// What became of a file.
enum Taken {
    Stored,
    Duplicate,
    Quarantined,
    /// Not yet: it changed while being read, or an error to retry.
    Later,
}

impl Worker {
    fn run(&mut self, stop: &Signal) {
        let mut roots: Vec<PathBuf> = Vec::new();
        for d in &self.config.devices {
            if let Some(z) = self.config.zone(&d.zone)
                && let Some(r) = self.config.storage_root(&z.storage)
                && !roots.contains(&r.path)
            {
                roots.push(r.path.clone());
            }
        }
        for r in roots {
            if let Err(e) = store::clear_staging(&r) {
                tracing::error!(error = %e, "cannot clear the inbox staging directory");
            }
        }
        for inbox in &self.config.inboxes {
            if let Err(e) = storage::create_private_dir_all(&inbox.quarantine) {
                tracing::error!(error = %e, "cannot create the inbox's quarantine directory");
            }
        }
        let tick = self
            .config
            .inboxes
            .iter()
            .map(|i| i.poll)
            .min()
            .unwrap_or(Duration::from_secs(5));
        let _watch = self.watch(stop);
        let mut next: Vec<Instant> = vec![Instant::now(); self.config.inboxes.len()];
        let mut changed = false;
        loop {
            if changed {
                std::thread::sleep(COALESCE);
            }
            let now = self.clocks.monotonic();
            for (i, due) in next.iter_mut().enumerate() {
                if stopped(stop) {
                    return;
                }
                if changed || now >= *due {
                    let inbox = self.config.inboxes[i].clone();
                    self.scan(&inbox, stop);
                    *due = now + inbox.poll;
                }
            }
            self.publish_pending();
            // Wake for the next poll, or as soon as a waiting file has
            // been unchanged for its settle time.
            let now = self.clocks.monotonic();
            let wake_at = self
                .seen
                .values()
                .map(|s| s.since + s.settle)
                .chain(next.iter().copied())
                .min()
                .unwrap_or(now + tick);
            let wait = wake_at.saturating_duration_since(now).clamp(COALESCE, tick);
            let (lock, cv) = &**stop;
            let mut guard = lock.lock().unwrap_or_else(|p| p.into_inner());
            if !guard.stop && !guard.changed {
                guard = cv
                    .wait_timeout(guard, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if guard.stop {
                return;
            }
            changed = std::mem::take(&mut guard.changed);
        }
    }

    /// Change events of every inbox wake the thread early. Without them
    /// (a file system that sends none, or no inotify watches left) the
    /// polls still see everything.
    fn watch(&self, signal: &Signal) -> Option<notify::RecommendedWatcher> {
        use notify::Watcher as _;
        let signal = signal.clone();
        let mut w = match notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if ev.is_ok() {
                let (lock, cv) = &*signal;
                lock.lock().unwrap_or_else(|p| p.into_inner()).changed = true;
                cv.notify_all();
            }
        }) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "no change events for the inboxes; they are polled only");
                return None;
            }
        };
        for inbox in &self.config.inboxes {
            if let Err(e) = w.watch(&inbox.path, notify::RecursiveMode::Recursive) {
                tracing::warn!(inbox = %inbox.path.display(), error = %e,
                    "no change events for this inbox; it is polled every {:?}", inbox.poll);
            }
        }
        Some(w)
    }

    fn publish_pending(&self) {
        let mut p: Vec<Pending> = Vec::new();
        for (path, s) in &self.seen {
            let Some(inbox) = self
                .config
                .inboxes
                .iter()
                .find(|i| path.starts_with(&i.path))
            else {
                continue;
            };
            p.push(Pending {
                inbox: inbox.path.clone(),
                file: path
                    .strip_prefix(&inbox.path)
                    .map(|r| r.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                bytes: s.size,
                seen_us: s.seen_us,
            });
        }
        p.sort_by(|a, b| a.seen_us.cmp(&b.seen_us).then(a.file.cmp(&b.file)));
        *self
            .status
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = p;
    }

    fn scan(&mut self, inbox: &Inbox, stop: &Signal) {
        let found = match scan::list(inbox) {
            Ok(f) => {
                if self.unreadable.remove(&inbox.path) {
                    tracing::info!(inbox = %inbox.path.display(), "the inbox can be scanned again");
                }
                f
            }
            Err(e) => {
                if self.unreadable.insert(inbox.path.clone()) {
                    tracing::warn!(inbox = %inbox.path.display(), error = %e,
                        "cannot scan the inbox (is it mounted?); it is tried again at every poll");
                }
                return;
            }
        };
        let now = self.clocks.monotonic();
        let now_us = self.clocks.realtime();
        let present: Vec<PathBuf> = found.iter().map(|f| f.path.clone()).collect();
        self.seen
            .retain(|p, _| !p.starts_with(&inbox.path) || present.contains(p));
        for f in found {
            if stopped(stop) {
                return;
            }
            let settled = match self.seen.get_mut(&f.path) {
                Some(s) if s.size == f.size && s.mtime_ns == f.mtime_ns => {
                    now.duration_since(s.since) >= inbox.settle
                }
                Some(s) => {
                    s.size = f.size;
                    s.mtime_ns = f.mtime_ns;
                    s.since = now;
                    false
                }
                None => {
                    self.seen.insert(
                        f.path.clone(),
                        Seen {
                            size: f.size,
                            mtime_ns: f.mtime_ns,
                            since: now,
                            settle: inbox.settle,
                            seen_us: now_us,
                        },
                    );
                    false
                }
            };
            if !settled {
                continue;
            }
            match scan::open_for_writing(&f.path) {
                Some(true) => {
                    tracing::debug!(file = %f.path.display(), "the inbox file is still open for writing");
                    continue;
                }
                Some(false) => {}
                None => {
                    if self.no_leases.insert(inbox.path.clone()) {
                        tracing::warn!(inbox = %inbox.path.display(),
                            "cannot tell whether the inbox's files are still open for writing \
                             (the daemon needs CAP_LEASE, or the file system keeps no leases); \
                             a file is taken once unchanged for the settle time alone");
                    }
                }
            }
            match self.take(inbox, &f) {
                Ok(Taken::Later) => {
                    if let Some(s) = self.seen.get_mut(&f.path) {
                        s.since = self.clocks.monotonic();
                    }
                }
                Ok(_) => {
                    self.seen.remove(&f.path);
                }
                Err(e) => {
                    tracing::error!(file = %f.path.display(), error = %e,
                        "cannot take the inbox file; it stays and is tried again in a minute");
                    if let Some(s) = self.seen.get_mut(&f.path) {
                        s.since = self.clocks.monotonic() + RETRY_AFTER_ERROR;
                    }
                }
            }
        }
    }

    fn record(&self, action: &str, uid: u32, target: String, reason: &str) -> AuditRecord {
        AuditRecord {
            at_us: self.clocks.realtime(),
            uid,
            user: format!("inbox (file owner uid {uid})"),
            pid: std::process::id() as i32,
            role: "system".to_owned(),
            action: action.to_owned(),
            target,
            reason: reason.to_owned(),
            outcome: "ok".to_owned(),
        }
    }

    fn take(&mut self, inbox: &Inbox, f: &scan::Found) -> Result<Taken> {
        if f.symlink {
            return self.quarantine(
                inbox,
                f,
                "a symbolic link, which is never followed; put the file itself into the inbox",
            );
        }
        let config = &self.config;
        let placed = match scan::place(config, inbox, &f.rel) {
            Ok(p) => p,
            Err(reason) => return self.quarantine(inbox, f, &reason),
        };
        let device = placed.device.clone();
        let zone = config
            .zone(&device.zone)
            .ok_or_else(|| Error::internal(format!("device {} has no zone", device.id)))?
            .clone();
        let root = config
            .storage_root(&zone.storage)
            .ok_or_else(|| Error::internal(format!("zone {} has no storage root", zone.id)))?
            .clone();
        let content = match validate::content(&f.path) {
            Ok(c) => c,
            Err(reason) => return self.quarantine(inbox, f, &reason),
        };
        let now_us = self.clocks.realtime();
        let footage = match validate::footage(&content, &device, &zone, placed.name_time, now_us) {
            Ok(v) => v,
            Err(reason) => return self.quarantine(inbox, f, &reason),
        };
        let staging = store::staging_dir(&root.path);
        storage::create_private_dir_all(&staging)?;
        let tmp = staging.join(format!("{}.{}.part", device.id, footage.start_us));
        let _ = fs::remove_file(&tmp);
        let (bytes, sha256) = store::copy_hashed(&f.path, &tmp)?;
        let unchanged = fs::symlink_metadata(&f.path).is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            m.len() == f.size
                && i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()) == f.mtime_ns
        });
        if !unchanged || bytes != f.size {
            let _ = fs::remove_file(&tmp);
            tracing::info!(file = %f.path.display(), "the inbox file changed while it was read; waiting for it to settle");
            return Ok(Taken::Later);
        }
        crate::failpoint::abort_at("inbox-after-copy");
        let hex = hex::encode(sha256);
        let prev = self.index.lock().device_file_by_hash(&sha256)?;
        if let Some(prev) = prev.as_ref().filter(|p| !p.stored) {
            // Being stored, by a run that failed after its rows: recovery
            // at the next start settles it; until then the file waits.
            let _ = fs::remove_file(&tmp);
            tracing::warn!(file = %f.path.display(), segment = prev.segment_id,
                "the same bytes are half-stored (an earlier error); the file waits for the next start");
            return Ok(Taken::Later);
        }
        if let Some(prev) = prev {
            let target = format!(
                "device {}: {} ({bytes} bytes, sha256 {hex}) in {}",
                device.id,
                f.rel,
                inbox.path.display()
            );
            let why = format!(
                "the same bytes were stored on {} from {} ({})",
                fmt_time(prev.ingested_us),
                prev.original_name,
                prev.device
            );
            (self.audit)(self.record("inbox.duplicate", f.uid, target, &why))?;
            let _ = fs::remove_file(&tmp);
            remove_inbox_file(&f.path)?;
            self.status.duplicates.fetch_add(1, Ordering::Relaxed);
            tracing::info!(file = %f.path.display(), "{why}; the inbox copy is removed");
            return Ok(Taken::Duplicate);
        }
        let overlap = self
            .index
            .lock()
            .segments(&device.id, footage.start_us, footage.end_us)?;
        if let Some(o) = overlap.first() {
            let _ = fs::remove_file(&tmp);
            let reason = format!(
                "the recording ({} to {}) overlaps footage of device {} already stored ({} to {}): \
                 two recordings of one device cannot run at once; check the device's clock",
                fmt_time(footage.start_us),
                fmt_time(footage.end_us),
                device.id,
                fmt_time(o.start_us),
                fmt_time(o.end_us.unwrap_or(o.start_us))
            );
            return self.quarantine(inbox, f, &reason);
        }
        let rel = storage::segment_path(&zone.id, &device.id, footage.start_us)?;
        let mtime_us = i64::try_from(f.mtime_ns / 1000).ok();
        let inbox_path = inbox.path.display().to_string();
        let target = format!(
            "device {}: {} ({bytes} bytes, sha256 {hex}, owner uid {}) from {inbox_path} as {}/{rel}",
            device.id, f.rel, f.uid, root.id
        );
        let source = footage.time_source.as_str();
        let record = self.record(
            "inbox.ingest",
            f.uid,
            target,
            &format!("time from {source}"),
        );
        if let Err(e) = (self.audit)(record) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let begun = self.index.lock().begin_device_file(&NewDeviceFile {
            device: &device.id,
            zone: &zone.id,
            root: &root.id,
            path: &rel,
            start_us: footage.start_us,
            sha256,
            original_name: &f.rel,
            original_bytes: bytes,
            inbox: &inbox_path,
            owner_uid: f.uid,
            ingested_us: now_us,
            time_source: footage.time_source,
            mtime_offset_us: mtime_us.map(|m| footage.end_us - m),
        });
        let id = match begun {
            Ok(id) => id,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        crate::failpoint::abort_at("inbox-after-row");
        storage::create_segment_dirs(&root.path, &rel)?;
        let dest = storage::absolute(&root.path, &rel);
        if fs::symlink_metadata(&dest).is_ok() {
            let _ = fs::remove_file(&tmp);
            self.index.lock().drop_storing_device_file(id)?;
            return Err(Error::conflict(format!(
                "{} exists already and has no row; left for an administrator",
                dest.display()
            )));
        }
        if let Err(e) = fs::rename(&tmp, &dest) {
            let _ = fs::remove_file(&tmp);
            self.index.lock().drop_storing_device_file(id)?;
            return Err(Error::io("cannot move into place", &tmp, e));
        }
        if let Some(dir) = dest.parent() {
            storage::fsync_dir(dir);
        }
        storage::fsync_dir(&staging);
        crate::failpoint::abort_at("inbox-after-rename");
        self.index.lock().complete_device_file(
            id,
            &SegmentSummary {
                end_us: footage.end_us,
                bytes,
                frames: footage.frames,
                key_frames: footage.key_frames,
                video_codec: footage.video_codec.clone(),
                audio_codec: footage.audio_codec.clone(),
                sha256,
                recovered: false,
                activity: footage.activity.clone(),
            },
        )?;
        crate::failpoint::abort_at("inbox-after-complete");
        remove_inbox_file(&f.path)?;
        self.status.ingested.fetch_add(1, Ordering::Relaxed);
        self.status
            .ingested_bytes
            .fetch_add(bytes, Ordering::Relaxed);
        tracing::info!(device = %device.id, file = %f.rel, path = %rel, bytes, "device file stored");
        let expired = self.config.zone(&device.zone).is_some_and(|z| {
            let ceiling = i64::from(z.retention_days).saturating_mul(86_400_000_000);
            footage.end_us < self.clocks.realtime().saturating_sub(ceiling)
        });
        (self.stored)(expired);
        Ok(Taken::Stored)
    }

    fn quarantine(&mut self, inbox: &Inbox, f: &scan::Found, reason: &str) -> Result<Taken> {
        let target = format!(
            "{} ({} bytes, owner uid {}) in {}",
            f.rel,
            f.size,
            f.uid,
            inbox.path.display()
        );
        (self.audit)(self.record("inbox.quarantine", f.uid, target, reason))?;
        let mut dest = inbox.quarantine.join(&f.rel);
        let mut n = 1;
        while dest.exists() {
            dest = inbox.quarantine.join(format!("{}.{n}", f.rel));
            n += 1;
        }
        if let Some(dir) = dest.parent() {
            storage::create_private_dir_all(dir)?;
        }
        let reason_path = PathBuf::from(format!("{}{REASON_SUFFIX}", dest.display()));
        let text = format!(
            "{reason}\n\nfile: {}\ninbox: {}\nowner uid: {}\nbytes: {}\nquarantined: {}\n",
            f.rel,
            inbox.path.display(),
            f.uid,
            f.size,
            fmt_time(self.clocks.realtime())
        );
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(storage::FILE_MODE)
                .open(&reason_path)
                .map_err(|e| Error::io("cannot create", &reason_path, e))?;
            file.write_all(text.as_bytes())
                .map_err(|e| Error::io("cannot write", &reason_path, e))?;
            storage::fsync_file(&file, &reason_path);
        }
        move_file(&f.path, &dest)?;
        self.status.quarantined.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(file = %f.path.display(), quarantine = %dest.display(), reason, "inbox file quarantined");
        Ok(Taken::Quarantined)
    }
}

fn stopped(stop: &Signal) -> bool {
    stop.0.lock().unwrap_or_else(|p| p.into_inner()).stop
}

fn remove_inbox_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("cannot remove the inbox file", path, e)),
    }
    if let Some(dir) = path.parent() {
        storage::fsync_dir(dir);
    }
    Ok(())
}

fn fmt_time(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{us} µs"))
}
