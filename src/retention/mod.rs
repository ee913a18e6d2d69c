//! Retention: footage is kept no longer than its zone's ceiling (001 §17-18;
//! 004 §9), the oldest goes first when a storage root fills (001 §16;
//! 004 §10), and what is deleted is destroyed (004 §11).
//!
//! A pass ([`pass`]) deletes, in batches of [`Context::batch`] segments:
//! 1. every complete segment whose end is more than its zone's
//!    `retention_days` × 86 400 s before now (24-hour periods counted from
//!    the segment's end, not UTC calendar days: a ceiling is never
//!    overstepped because of where midnight falls);
//! 2. on a root below its `min_free` or above its `budget`, the oldest
//!    complete segments of all its cameras until both hold again.
//!
//! Invariants:
//! - Never deleted: a segment overlapping an active hold or restriction (the
//!   check is inside the index's candidate queries), one under a read lease
//!   ([`Leases`]; checked under the lease lock while marking, so a lease
//!   taken after the check sees a doomed row), one being written (state 0 is
//!   never a candidate). When only such footage is left and a root is still
//!   short of space, a [`StorageAlarm`] is raised; protected footage is never
//!   the fallback.
//! - Crash safety, per batch: (a) one transaction marks the rows doomed
//!   (state 1 -> 2) and writes the journal; (b) files are destroyed
//!   ([`destroy`]); (c) their directories are fsynced; (d) a second
//!   transaction removes the rows. A crash after (a) leaves doomed rows whose
//!   files may or may not exist; [`finish_doomed`] (run by the start-up pass
//!   and at the start of every pass) destroys what is left and removes the
//!   rows. Files and rows therefore never disagree once it has run.
//! - The journal records camera, time range, count, bytes, reason and actor,
//!   never content.
//! - Premises first: a pass reads the wall clock through the
//!   [`ClockGuard`] and, if the clock is implausible (stepped forward, or
//!   earlier than footage already recorded), deletes nothing and reports the
//!   alarm. Every cut-off is computed with checked arithmetic before the
//!   first deletion; one that cannot be represented fails the pass.
//! - Marking re-checks everything that protects a segment: leases under the
//!   lease lock, holds and restrictions in the marking statement itself, so
//!   protection added after a segment was chosen is respected.
//!
//! Failpoint for crash tests: with `CUSTOS_FAILPOINT=after-mark` in its
//! environment, the process aborts right after the first marking commit.

pub mod destroy;
pub mod reaper;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::clock::{ClockAlarm, ClockGuard, Clocks, UnixMicros, format_utc};
use crate::config::{Config, Destruction, MAX_RETENTION_DAYS_RANGE, StorageRoot};
use crate::error::{Error, Result};
use crate::index::SharedIndex;
use crate::index::{
    CameraId, Candidate, Cursor, DeletionReason, Index, NewDeletion, Overdue, Protection,
    SegmentId, SegmentState,
};
use crate::storage;

pub use reaper::{Reaper, ReaperWaker};

/// Microseconds in one retention day.
pub const DAY_US: i64 = 86_400 * 1_000_000;

/// Segments marked and destroyed per transaction pair: bounds how long
/// ingest waits for the index lock (see benches/reaper.rs).
pub const DEFAULT_BATCH: usize = 2_000;

/// Who the journal names for the reaper's deletions.
pub const REAPER_ACTOR: &str = "reaper";

/// The end before which a zone's footage is over its ceiling at `now_us`:
/// a segment goes iff `now_us - end_us > days × 86 400 s`. An error if that
/// instant cannot be represented (a ceiling no valid config has): it is
/// never allowed to wrap into the future.
pub fn cutoff(now_us: UnixMicros, retention_days: u32) -> Result<UnixMicros> {
    days_us(retention_days)
        .and_then(|d| now_us.checked_sub(d))
        .ok_or_else(|| out_of_range("before", now_us, retention_days))
}

/// `days` × 86 400 s after `t`, or an error if that cannot be represented.
pub fn days_after(t: UnixMicros, days: u32) -> Result<UnixMicros> {
    days_us(days)
        .and_then(|d| t.checked_add(d))
        .ok_or_else(|| out_of_range("after", t, days))
}

fn days_us(days: u32) -> Option<i64> {
    i64::from(days).checked_mul(DAY_US)
}

fn out_of_range(dir: &str, t: UnixMicros, days: u32) -> Error {
    Error::invalid(format!(
        "{days} days {dir} {} is not a representable time, so nothing is deleted on it; \
         a config within its ranges never asks for one (retention days are 1 to {})",
        format_utc(t),
        MAX_RETENTION_DAYS_RANGE.1
    ))
}

// ---------------------------------------------------------------------------
// Read leases

/// Segments being read right now (export, playback). In memory: a lease
/// lives only as long as the reader's process, and the reaper skips leased
/// segments, retrying them next pass. A reader takes the lease *then* reads
/// the rows; a row already doomed is gone for it.
#[derive(Debug, Default)]
pub struct Leases {
    held: Mutex<HashMap<i64, u32>>,
}

/// Holds a lease on some segments until dropped.
#[derive(Debug)]
pub struct LeaseGuard {
    leases: Arc<Leases>,
    ids: Vec<i64>,
}

impl Leases {
    pub fn new() -> Arc<Leases> {
        Arc::new(Leases::default())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i64, u32>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leases `ids` until the guard is dropped. Leases nest.
    pub fn acquire(self: &Arc<Self>, ids: &[SegmentId]) -> LeaseGuard {
        let mut held = self.lock();
        for id in ids {
            *held.entry(id.0).or_insert(0) += 1;
        }
        LeaseGuard {
            leases: self.clone(),
            ids: ids.iter().map(|i| i.0).collect(),
        }
    }

    pub fn is_leased(&self, id: SegmentId) -> bool {
        self.lock().contains_key(&id.0)
    }

    /// How many segments are leased.
    pub fn count(&self) -> usize {
        self.lock().len()
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let mut held = self.leases.lock();
        for id in &self.ids {
            if let Some(n) = held.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    held.remove(id);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Storage alarms

/// A storage root short of space with nothing left that may be deleted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StorageAlarm {
    pub root: String,
    pub state: String,
    pub since_us: UnixMicros,
    /// Bytes still to free to meet `min_free` and `budget`.
    pub short_bytes: u64,
}

/// The alarms of every root, shared with the status API; `raised` counts
/// how often an alarm was raised, for metrics.
#[derive(Debug, Default)]
pub struct StorageAlarms {
    active: Mutex<BTreeMap<String, StorageAlarm>>,
    raised: AtomicU64,
}

impl StorageAlarms {
    pub fn new() -> Arc<StorageAlarms> {
        Arc::new(StorageAlarms::default())
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, StorageAlarm>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn raise(&self, root: &str, now_us: UnixMicros, short_bytes: u64, leased: u64) {
        let state = if leased > 0 {
            format!("full: only protected or leased footage left ({leased} leased segments)")
        } else {
            "full: only protected footage left".to_owned()
        };
        let mut active = self.lock();
        let new = !active.contains_key(root);
        let alarm = active
            .entry(root.to_owned())
            .or_insert_with(|| StorageAlarm {
                root: root.to_owned(),
                state: state.clone(),
                since_us: now_us,
                short_bytes,
            });
        alarm.state = state;
        alarm.short_bytes = short_bytes;
        if new {
            self.raised.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                root,
                short_bytes,
                "storage root is full and only protected footage is left; recording continues \
                 while space lasts. Release holds that are no longer needed, or add storage"
            );
        }
    }

    fn clear(&self, root: &str) {
        if self.lock().remove(root).is_some() {
            tracing::info!(root, "storage root has room again; alarm cleared");
        }
    }

    /// The active alarms.
    pub fn snapshot(&self) -> Vec<StorageAlarm> {
        self.lock().values().cloned().collect()
    }

    /// The alarm of `root`, if any.
    pub fn get(&self, root: &str) -> Option<StorageAlarm> {
        self.lock().get(root).cloned()
    }

    /// How many times an alarm was raised since start.
    pub fn raised_total(&self) -> u64 {
        self.raised.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------
// Free space

/// Free bytes of a root's filesystem, for unprivileged writers, by statvfs;
/// `None` if it cannot be read.
pub fn statvfs_free(root: &StorageRoot) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(&root.path).ok()?;
    Some(s.blocks_available() as u64 * s.fragment_size() as u64)
}

/// Bytes `root` must free to have `min_free` available and stay within its
/// `budget`: 0 if neither is exceeded (or unknown).
fn shortfall(index: &Index, root: &StorageRoot, free: Option<u64>) -> Result<u64> {
    let by_free = match (root.min_free, free) {
        (Some(min), Some(free)) => min.saturating_sub(free),
        _ => 0,
    };
    let by_budget = match root.budget {
        Some(budget) => index.root_bytes(&root.id)?.saturating_sub(budget),
        None => 0,
    };
    Ok(by_free.max(by_budget))
}

/// True if any root is short of space now (cheap: statvfs and a few rows).
pub fn under_pressure(
    index: &SharedIndex,
    config: &Config,
    free_bytes: &dyn Fn(&StorageRoot) -> Option<u64>,
) -> Result<bool> {
    for root in &config.storage {
        if root.min_free.is_none() && root.budget.is_none() {
            continue;
        }
        let free = root.min_free.and_then(|_| free_bytes(root));
        if shortfall(&index.lock(), root, free)? > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

// ---------------------------------------------------------------------------
// The pass

/// What a pass needs. `free_bytes` is the storage view (statvfs in the
/// daemon, anything in tests); `cancel` stops a long pass between batches;
/// `guard` decides whether the clocks may be believed.
pub struct Context<'a> {
    pub index: &'a SharedIndex,
    pub config: &'a Config,
    pub leases: &'a Leases,
    pub alarms: &'a StorageAlarms,
    pub clocks: &'a dyn Clocks,
    pub guard: &'a ClockGuard,
    pub free_bytes: &'a dyn Fn(&StorageRoot) -> Option<u64>,
    pub batch: usize,
    pub cancel: Option<&'a AtomicBool>,
}

/// Segments and bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub segments: u64,
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, bytes: u64) {
        self.segments += 1;
        self.bytes += bytes;
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PassReport {
    pub retention: Tally,
    pub disk_pressure: Tally,
    /// Doomed rows left by an earlier pass and finished by this one.
    pub finished_doomed: u64,
    /// Candidates skipped because they were leased.
    pub leased: u64,
    /// Roots short of space with nothing left to delete.
    pub alarms: Vec<String>,
    /// Set if the wall clock was implausible: the pass deleted nothing.
    pub clock_alarm: Option<ClockAlarm>,
}

/// Runs one retention pass at the clocks' current time, if the guard finds
/// it plausible; otherwise deletes nothing and returns the alarm.
pub fn pass(ctx: &Context) -> Result<PassReport> {
    let known = ctx.index.lock().known_times()?;
    let now = match ctx.guard.check(ctx.clocks, &known) {
        Ok(now) => now,
        Err(alarm) => {
            return Ok(PassReport {
                clock_alarm: Some(alarm),
                ..PassReport::default()
            });
        }
    };
    let zone_cuts = ctx
        .config
        .zones
        .iter()
        .map(|z| Ok((z, cutoff(now, z.retention_days)?)))
        .collect::<Result<Vec<_>>>()?;
    let root_cut = cutoff(now, ctx.config.daemon.max_retention_days)?;
    let mut report = PassReport {
        finished_doomed: finish_doomed(ctx.index, ctx.config, now)? as u64,
        ..PassReport::default()
    };

    // 1. Age, zone by zone.
    for (zone, cut) in zone_cuts {
        let o = delete_while(ctx, now, DeletionReason::Retention, None, |ix, after| {
            ix.age_candidates(&zone.id, cut, after, ctx.batch)
        })?;
        report.retention.segments += o.deleted.segments;
        report.retention.bytes += o.deleted.bytes;
        report.leased += o.leased;
    }
    // Footage of zones no longer configured: nothing may outlive the
    // longest ceiling the config allows.
    for root in &ctx.config.storage {
        let o = delete_while(ctx, now, DeletionReason::Retention, None, |ix, after| {
            ix.root_age_candidates(&root.id, root_cut, after, ctx.batch)
        })?;
        report.retention.segments += o.deleted.segments;
        report.retention.bytes += o.deleted.bytes;
        report.leased += o.leased;
    }

    // 2. Disk pressure, root by root, oldest first across its cameras.
    for root in &ctx.config.storage {
        if root.min_free.is_none() && root.budget.is_none() {
            continue;
        }
        let need = shortfall(&ctx.index.lock(), root, (ctx.free_bytes)(root))?;
        if need == 0 {
            ctx.alarms.clear(&root.id);
            continue;
        }
        let o = delete_while(
            ctx,
            now,
            DeletionReason::DiskPressure,
            Some(need),
            |ix, after| ix.pressure_candidates(&root.id, after, ctx.batch),
        )?;
        report.disk_pressure.segments += o.deleted.segments;
        report.disk_pressure.bytes += o.deleted.bytes;
        report.leased += o.leased;
        // Measure again: the space freed is what the filesystem says.
        let short = shortfall(&ctx.index.lock(), root, (ctx.free_bytes)(root))?;
        if short > 0 && o.exhausted {
            ctx.alarms.raise(&root.id, now, short, o.leased);
            report.alarms.push(root.id.clone());
        } else if short == 0 {
            ctx.alarms.clear(&root.id);
        }
    }
    if report.retention.segments + report.disk_pressure.segments + report.finished_doomed > 0 {
        tracing::info!(?report, "retention pass");
    }
    Ok(report)
}

struct Outcome {
    deleted: Tally,
    leased: u64,
    /// No candidate was left.
    exhausted: bool,
}

fn cancelled(ctx: &Context) -> bool {
    ctx.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
}

/// Deletes candidates from `fetch`, batch by batch, until none is left or
/// (with `limit`) at least `limit` bytes are deleted.
fn delete_while(
    ctx: &Context,
    pass_us: UnixMicros,
    reason: DeletionReason,
    limit: Option<u64>,
    fetch: impl Fn(&Index, Cursor) -> Result<Vec<Candidate>>,
) -> Result<Outcome> {
    let mut out = Outcome {
        deleted: Tally::default(),
        leased: 0,
        exhausted: false,
    };
    let mut after = Cursor::START;
    loop {
        if limit.is_some_and(|l| out.deleted.bytes >= l) || cancelled(ctx) {
            return Ok(out);
        }
        let batch = fetch(&ctx.index.lock(), after)?;
        let Some(last) = batch.last() else {
            out.exhausted = true;
            return Ok(out);
        };
        after = Cursor::after(last);
        let mut chosen = Vec::with_capacity(batch.len());
        let mut bytes = out.deleted.bytes;
        for c in batch {
            if limit.is_some_and(|l| bytes >= l) {
                break;
            }
            if ctx.config.storage_root(&c.root).is_none() {
                // Its files cannot be reached; status shows it.
                continue;
            }
            bytes += c.bytes;
            chosen.push(c);
        }
        let (deleted, leased) = delete_candidates(ctx, pass_us, reason, chosen)?;
        out.deleted.segments += deleted.segments;
        out.deleted.bytes += deleted.bytes;
        out.leased += leased;
    }
}

/// Marks, destroys and removes one batch of candidates chosen earlier in
/// the pass. A candidate leased, held or restricted since it was chosen, or
/// no longer complete, is skipped. Returns what was deleted and how many
/// candidates were skipped as leased. Public so that tests can change
/// protections between choosing and marking.
pub fn delete_candidates(
    ctx: &Context,
    pass_us: UnixMicros,
    reason: DeletionReason,
    chosen: Vec<Candidate>,
) -> Result<(Tally, u64)> {
    // (a) Mark, under the lease lock so no lease slips in between.
    let (marked, leased) = {
        let held = ctx.leases.lock();
        let (free, leased): (Vec<Candidate>, Vec<Candidate>) =
            chosen.into_iter().partition(|c| !held.contains_key(&c.id));
        if free.is_empty() {
            return Ok((Tally::default(), leased.len() as u64));
        }
        let at = ctx.clocks.realtime();
        let marked = ctx.index.lock().transaction(|ix| {
            let ids: Vec<SegmentId> = free.iter().map(|c| SegmentId(c.id)).collect();
            let marked: HashSet<SegmentId> = ix.mark_doomed(&ids)?.into_iter().collect();
            let marked: Vec<Candidate> = free
                .into_iter()
                .filter(|c| marked.contains(&SegmentId(c.id)))
                .collect();
            journal(ix, &marked, at, pass_us, reason, REAPER_ACTOR)?;
            Ok(marked)
        })?;
        (marked, leased.len() as u64)
    };
    crate::failpoint::abort_at("after-mark");

    let doomed = marked.iter().map(|c| Doomed {
        id: SegmentId(c.id),
        root: &c.root,
        path: &c.path,
        bytes: c.bytes,
    });
    let tally = destroy_doomed(ctx.index, ctx.config, doomed, pass_us)?;
    Ok((tally, leased))
}

/// A segment marked doomed, to be destroyed.
struct Doomed<'a> {
    id: SegmentId,
    root: &'a str,
    path: &'a str,
    bytes: u64,
}

/// The steps after marking: (b) destroy each file, (c) fsync their
/// directories, (d) remove the rows of those destroyed, then tidy the
/// directories left empty. A file that cannot be destroyed, or is on a root
/// no longer configured, keeps its doomed row for the next pass or start.
fn destroy_doomed<'a>(
    index: &SharedIndex,
    config: &Config,
    doomed: impl IntoIterator<Item = Doomed<'a>>,
    now_us: UnixMicros,
) -> Result<Tally> {
    let mut tally = Tally::default();
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut done = Vec::new();
    for d in doomed {
        let Some(root) = config.storage_root(d.root) else {
            tracing::warn!(root = %d.root, path = %d.path,
                "a doomed segment is on a storage root no longer configured; left as is");
            continue;
        };
        let path = storage::absolute(&root.path, d.path);
        match destroy::destroy_file(&path, root.destruction) {
            Ok(_) => {
                tally.add(d.bytes);
                done.push(d.id);
                if let Some(dir) = path.parent() {
                    dirs.push(dir.to_owned());
                }
            }
            Err(e) => tracing::error!(error = %e, "destroying a doomed segment"),
        }
    }
    if done.is_empty() {
        return Ok(tally);
    }
    destroy::sync_dirs(dirs.iter().map(PathBuf::as_path));
    index.lock().transaction(|ix| ix.remove_doomed(&done))?;
    tidy_dirs(config, &dirs, now_us);
    Ok(tally)
}

/// Writes one journal row per camera (and zone, root) of `marked`.
fn journal(
    ix: &Index,
    marked: &[Candidate],
    at_us: UnixMicros,
    pass_us: UnixMicros,
    reason: DeletionReason,
    actor: &str,
) -> Result<()> {
    let mut groups: BTreeMap<(i64, &str, &str), (i64, i64, Tally)> = BTreeMap::new();
    for c in marked {
        let g = groups.entry((c.camera_id, &c.zone, &c.root)).or_insert((
            i64::MAX,
            i64::MIN,
            Tally::default(),
        ));
        g.0 = g.0.min(c.start_us);
        g.1 = g.1.max(c.end_us);
        g.2.add(c.bytes);
    }
    for ((camera, zone, root), (from_us, to_us, t)) in groups {
        ix.record_deletion(&NewDeletion {
            at_us,
            pass_us,
            camera: CameraId(camera),
            zone,
            root,
            from_us,
            to_us,
            segments: t.segments,
            bytes: t.bytes,
            reason,
            actor,
        })?;
    }
    Ok(())
}

/// Removes day directories emptied before yesterday (UTC), and camera
/// directories of cameras that no longer record there.
fn tidy_dirs(config: &Config, dirs: &[PathBuf], now_us: UnixMicros) {
    let keep_from = jiff::Timestamp::from_microsecond(now_us.saturating_sub(DAY_US))
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_default();
    destroy::remove_empty_dirs(
        dirs.iter().map(PathBuf::as_path),
        &keep_from,
        |zone, cam| {
            !config
                .cameras
                .iter()
                .any(|c| c.enabled && c.id == cam && c.zone == zone)
        },
    );
}

/// Finishes deletions a crash interrupted: destroys what is left of every
/// doomed segment's file and removes its row. Returns how many it finished.
/// Rows on a root no longer configured are left, with a warning.
pub fn finish_doomed(index: &SharedIndex, config: &Config, now_us: UnixMicros) -> Result<usize> {
    let rows = index.lock().doomed_segments()?;
    let doomed = rows
        .iter()
        .filter(|r| r.state == SegmentState::Doomed)
        .map(|r| Doomed {
            id: SegmentId(r.id),
            root: &r.root,
            path: &r.path,
            bytes: r.bytes.unwrap_or(0),
        });
    let n = destroy_doomed(index, config, doomed, now_us)?.segments as usize;
    if n > 0 {
        tracing::info!(segments = n, "finished interrupted deletions");
    }
    Ok(n)
}

// ---------------------------------------------------------------------------
// Plan and status (for `custosctl retention` and the API)

/// What the next pass would delete from one camera for one reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlanItem {
    pub camera: String,
    pub zone: String,
    pub root: String,
    pub reason: DeletionReason,
    pub segments: u64,
    pub bytes: u64,
    pub from_us: UnixMicros,
    pub to_us: UnixMicros,
}

/// A root's space as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RootPlan {
    pub root: String,
    pub used_bytes: u64,
    pub budget: Option<u64>,
    pub free_bytes: Option<u64>,
    pub min_free: Option<u64>,
    /// Bytes to free after the age deletions.
    pub short_bytes: u64,
    /// Bytes still short after the pressure deletions: an alarm would fire.
    pub unmet_bytes: u64,
}

/// What the next pass would delete, without deleting anything.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RetentionPlan {
    pub now_us: UnixMicros,
    pub items: Vec<PlanItem>,
    pub roots: Vec<RootPlan>,
    /// Candidates the pass would skip because they are being read.
    pub leased: u64,
    pub total: Tally,
}

/// What the next pass would delete at `now_us` (same selection as [`pass`]).
/// Reads only; holds `index` for the whole computation.
pub fn plan(
    index: &Index,
    config: &Config,
    leases: &Leases,
    now_us: UnixMicros,
    free_bytes: &dyn Fn(&StorageRoot) -> Option<u64>,
) -> Result<RetentionPlan> {
    const PAGE: usize = 10_000;
    let mut st = PlanState {
        config,
        leases,
        items: BTreeMap::new(),
        taken: HashSet::new(),
        freed: HashMap::new(),
        leased: 0,
    };
    for zone in &config.zones {
        let cut = cutoff(now_us, zone.retention_days)?;
        scan(
            &|after| index.age_candidates(&zone.id, cut, after, PAGE),
            &mut |c| {
                st.take(c, DeletionReason::Retention);
                true
            },
        )?;
    }
    let cut = cutoff(now_us, config.daemon.max_retention_days)?;
    for root in &config.storage {
        scan(
            &|after| index.root_age_candidates(&root.id, cut, after, PAGE),
            &mut |c| {
                st.take(c, DeletionReason::Retention);
                true
            },
        )?;
    }
    let mut roots = Vec::new();
    for root in &config.storage {
        let used = index.root_bytes(&root.id)?;
        let free = free_bytes(root);
        let aged = st.freed.get(&root.id).copied().unwrap_or(0);
        // After the age deletions, used and free move by what they freed.
        let by_free = match (root.min_free, free) {
            (Some(min), Some(f)) => min.saturating_sub(f + aged),
            _ => 0,
        };
        let by_budget = root
            .budget
            .map_or(0, |b| used.saturating_sub(aged).saturating_sub(b));
        let short = by_free.max(by_budget);
        let mut got = 0u64;
        if short > 0 {
            scan(
                &|after| index.pressure_candidates(&root.id, after, PAGE),
                &mut |c| {
                    if let Some(b) = st.take(c, DeletionReason::DiskPressure) {
                        got += b;
                    }
                    got < short
                },
            )?;
        }
        roots.push(RootPlan {
            root: root.id.clone(),
            used_bytes: used,
            budget: root.budget,
            free_bytes: free,
            min_free: root.min_free,
            short_bytes: short,
            unmet_bytes: short.saturating_sub(got),
        });
    }
    let (items, leased) = (st.items, st.leased);
    let items: Vec<PlanItem> = items.into_values().collect();
    let total = items.iter().fold(Tally::default(), |mut t, i| {
        t.segments += i.segments;
        t.bytes += i.bytes;
        t
    });
    Ok(RetentionPlan {
        now_us,
        items,
        roots,
        leased,
        total,
    })
}

struct PlanState<'a> {
    config: &'a Config,
    leases: &'a Leases,
    items: BTreeMap<(String, String, String, DeletionReason), PlanItem>,
    taken: HashSet<i64>,
    freed: HashMap<String, u64>,
    leased: u64,
}

impl PlanState<'_> {
    /// Counts `c` as deleted, unless it is leased or already counted;
    /// returns its bytes if counted.
    fn take(&mut self, c: Candidate, reason: DeletionReason) -> Option<u64> {
        if self.config.storage_root(&c.root).is_none() || self.taken.contains(&c.id) {
            return None;
        }
        if self.leases.is_leased(SegmentId(c.id)) {
            self.leased += 1;
            return None;
        }
        self.taken.insert(c.id);
        *self.freed.entry(c.root.clone()).or_default() += c.bytes;
        let item = self
            .items
            .entry((c.zone.clone(), c.camera.clone(), c.root.clone(), reason))
            .or_insert_with(|| PlanItem {
                camera: c.camera.clone(),
                zone: c.zone.clone(),
                root: c.root.clone(),
                reason,
                segments: 0,
                bytes: 0,
                from_us: c.start_us,
                to_us: c.end_us,
            });
        item.segments += 1;
        item.bytes += c.bytes;
        item.from_us = item.from_us.min(c.start_us);
        item.to_us = item.to_us.max(c.end_us);
        Some(c.bytes)
    }
}

/// Feeds candidates page by page to `f` until it returns false or none is left.
fn scan(
    fetch: &dyn Fn(Cursor) -> Result<Vec<Candidate>>,
    f: &mut dyn FnMut(Candidate) -> bool,
) -> Result<()> {
    let mut after = Cursor::START;
    loop {
        let page = fetch(after)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = Cursor::after(last);
        for c in page {
            if !f(c) {
                return Ok(());
            }
        }
    }
}

/// Retention of one camera's footage in one zone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CameraRetention {
    pub camera: String,
    pub root: String,
    pub segments: u64,
    pub bytes: u64,
    pub oldest_us: Option<UnixMicros>,
    /// Age of the oldest footage at `now_us`, in µs.
    pub oldest_age_us: Option<i64>,
    /// Holds and restrictions keeping some of this footage.
    pub protected_by: Vec<Protection>,
    /// When the oldest unprotected footage reaches its ceiling (it is deleted
    /// by the first pass after this time).
    pub next_deletion_us: Option<UnixMicros>,
    /// Unprotected footage already older than the ceiling: must not exist.
    pub violation: Option<Overdue>,
}

/// Retention of one zone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ZoneRetention {
    pub zone: String,
    pub name: Option<String>,
    /// False for footage of a zone no longer in the config; its ceiling is
    /// then `daemon.max_retention_days`.
    pub configured: bool,
    pub retention_days: u32,
    pub cameras: Vec<CameraRetention>,
}

/// A storage root's use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RootRetention {
    pub root: String,
    pub path: Option<PathBuf>,
    pub used_bytes: u64,
    pub budget: Option<u64>,
    pub min_free: Option<u64>,
    pub destruction: Option<Destruction>,
}

/// Retention status: ceilings, oldest footage, protections, violations.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RetentionStatus {
    pub now_us: UnixMicros,
    pub zones: Vec<ZoneRetention>,
    pub roots: Vec<RootRetention>,
    /// Number of cameras with a violation plus evidence cases past their
    /// review date; anything but 0 needs attention.
    pub violations: usize,
    /// Open evidence cases past their review date (kept longer than their
    /// purpose was last confirmed: 001 §18; see `crate::evidence`).
    pub overdue_reviews: Vec<String>,
    pub leased_segments: usize,
}

/// Retention status at `now_us`. Costs a few indexed queries per camera.
pub fn status(
    index: &Index,
    config: &Config,
    leases: &Leases,
    now_us: UnixMicros,
) -> Result<RetentionStatus> {
    let usage = index.usage()?;
    let mut zones: Vec<ZoneRetention> = config
        .zones
        .iter()
        .map(|z| ZoneRetention {
            zone: z.id.clone(),
            name: Some(z.name.clone()),
            configured: true,
            retention_days: z.retention_days,
            cameras: Vec::new(),
        })
        .collect();
    let mut violations = 0;
    let mut roots: BTreeMap<String, u64> = BTreeMap::new();
    for u in usage {
        *roots.entry(u.root.clone()).or_default() += u.bytes;
        let at = match zones.iter().position(|z| z.zone == u.zone) {
            Some(i) => i,
            None => {
                zones.push(ZoneRetention {
                    zone: u.zone.clone(),
                    name: None,
                    configured: false,
                    retention_days: config.daemon.max_retention_days,
                    cameras: Vec::new(),
                });
                zones.len() - 1
            }
        };
        let days = zones[at].retention_days;
        let camera = CameraId(u.camera_id);
        let oldest = index.oldest_footage(camera, &u.zone)?;
        let violation = index.overdue(camera, &u.zone, cutoff(now_us, days)?)?;
        violations += violation.is_some() as usize;
        zones[at].cameras.push(CameraRetention {
            camera: u.camera.clone(),
            root: u.root.clone(),
            segments: u.segments,
            bytes: u.bytes,
            oldest_us: oldest,
            oldest_age_us: oldest.map(|o| now_us - o),
            protected_by: index.active_protections(camera)?,
            next_deletion_us: index
                .oldest_unprotected_end(camera, &u.zone)?
                .map(|end| days_after(end, days))
                .transpose()?,
            violation,
        });
    }
    for r in &config.storage {
        roots.entry(r.id.clone()).or_default();
    }
    let roots = roots
        .into_iter()
        .map(|(id, used)| {
            let r = config.storage_root(&id);
            RootRetention {
                root: id,
                path: r.map(|r| r.path.clone()),
                used_bytes: used,
                budget: r.and_then(|r| r.budget),
                min_free: r.and_then(|r| r.min_free),
                destruction: r.map(|r| r.destruction),
            }
        })
        .collect();
    let overdue_reviews = index.overdue_cases(now_us)?;
    Ok(RetentionStatus {
        now_us,
        zones,
        roots,
        violations: violations + overdue_reviews.len(),
        overdue_reviews,
        leased_segments: leases.count(),
    })
}

/// The path of a candidate's file, for tools and tests.
pub fn candidate_path(config: &Config, c: &Candidate) -> Option<PathBuf> {
    config
        .storage_root(&c.root)
        .map(|r| storage::absolute(&r.path, &c.path))
}
