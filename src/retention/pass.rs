//! The reaper's pass: age and disk-pressure deletion of what the selection
//! (`select.rs`, shared with the plan) offers, marking, destruction and the
//! deletion journal; the start-up finish of interrupted deletions.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use super::select::{self, Cutoffs, Source, Step, Taker};
use super::{DAY_US, Leases, REAPER_ACTOR, StorageAlarms, destroy};
use crate::clock::{ClockAlarm, ClockGuard, Clocks, UnixMicros};
use crate::config::{Config, StorageRoot};
use crate::error::Result;
use crate::index::SharedIndex;
use crate::index::{
    CameraId, Candidate, Cursor, DeletionReason, Index, NewDeletion, SegmentId, SegmentState,
};
use crate::storage;

// ---------------------------------------------------------------------------
// Free space

/// Free bytes of a root's filesystem, for unprivileged writers, by statvfs;
/// `None` if it cannot be read.
pub fn statvfs_free(root: &StorageRoot) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(&root.path).ok()?;
    Some(s.blocks_available() as u64 * s.fragment_size() as u64)
}

/// Bytes `root` must free now, by what the index holds on it and what its
/// filesystem reports free (`free`).
fn shortfall(index: &Index, root: &StorageRoot, free: Option<u64>) -> Result<u64> {
    let used = match root.budget {
        Some(_) => index.root_bytes(&root.id)?,
        None => 0,
    };
    Ok(select::shortfall(root, used, free))
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

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.segments += other.segments;
        self.bytes += other.bytes;
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
    let cuts = Cutoffs::at(ctx.config, now)?;
    let mut report = PassReport {
        finished_doomed: finish_doomed(ctx.index, ctx.config, now)? as u64,
        ..PassReport::default()
    };
    select::walk(
        ctx.config,
        &cuts,
        &mut Deleter {
            ctx,
            now,
            report: &mut report,
        },
    )?;
    if report.retention.segments + report.disk_pressure.segments + report.finished_doomed > 0 {
        tracing::info!(?report, "retention pass");
    }
    Ok(report)
}

/// The pass's side of the selection: deletes each batch, re-reading the
/// index for the next, and raises or clears each root's alarm.
struct Deleter<'a, 'c> {
    ctx: &'a Context<'c>,
    now: UnixMicros,
    report: &'a mut PassReport,
}

impl Taker for Deleter<'_, '_> {
    fn fetch(&mut self, source: Source, after: Cursor) -> Result<Vec<Candidate>> {
        source.fetch(&self.ctx.index.lock(), after, self.ctx.batch)
    }

    fn take(&mut self, reason: DeletionReason, chosen: Vec<Candidate>) -> Result<(u64, u64)> {
        let (deleted, leased) = delete_candidates(self.ctx, self.now, reason, chosen)?;
        match reason {
            DeletionReason::DiskPressure => self.report.disk_pressure += deleted,
            _ => self.report.retention += deleted,
        }
        self.report.leased += leased;
        Ok((deleted.bytes, leased))
    }

    fn shortfall(&mut self, root: &StorageRoot) -> Result<u64> {
        shortfall(&self.ctx.index.lock(), root, (self.ctx.free_bytes)(root))
    }

    fn pressure_done(
        &mut self,
        root: &StorageRoot,
        need: Option<u64>,
        step: Option<Step>,
    ) -> Result<()> {
        match (need, step) {
            (Some(0), _) => self.ctx.alarms.clear(&root.id),
            (Some(_), Some(step)) => {
                // Measure again: the space freed is what the filesystem says.
                let short = self.shortfall(root)?;
                if short > 0 && step.exhausted {
                    self.ctx
                        .alarms
                        .raise(&root.id, self.now, short, step.leased);
                    self.report.alarms.push(root.id.clone());
                } else if short == 0 {
                    self.ctx.alarms.clear(&root.id);
                }
            }
            // A root without `min_free` or `budget`.
            _ => {}
        }
        Ok(())
    }

    fn cancelled(&self) -> bool {
        self.ctx.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
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
    let by = DeletedBy {
        reason,
        actor: REAPER_ACTOR,
        request: None,
    };
    let at = ctx.clocks.realtime();
    let (tally, leased) = mark_and_destroy(
        ctx.index,
        ctx.config,
        ctx.leases,
        (pass_us, at),
        &by,
        chosen,
    )?;
    Ok((tally, leased.len() as u64))
}

/// Why and for whom segments are deleted, as the journal records it.
pub struct DeletedBy<'a> {
    pub reason: DeletionReason,
    /// `reaper`, or the user who asked.
    pub actor: &'a str,
    /// The data-subject request of an erasure.
    pub request: Option<&'a str>,
}

/// Deletes the segments of a data-subject request's erasure (chosen by
/// `crate::requests`), with the reaper's steps and checks: what is leased,
/// held, restricted or no longer complete when marking is left. Returns what
/// was deleted and the candidates left because they are being read.
pub fn erase_segments(
    index: &SharedIndex,
    config: &Config,
    leases: &Leases,
    at_us: UnixMicros,
    by: &DeletedBy,
    chosen: Vec<Candidate>,
) -> Result<(Tally, Vec<Candidate>)> {
    mark_and_destroy(index, config, leases, (at_us, at_us), by, chosen)
}

/// (a) to (d) for one batch: see the module's invariants. `times` is the
/// start of the pass and the time of marking, for the journal.
fn mark_and_destroy(
    index: &SharedIndex,
    config: &Config,
    leases: &Leases,
    (pass_us, at): (UnixMicros, UnixMicros),
    by: &DeletedBy,
    chosen: Vec<Candidate>,
) -> Result<(Tally, Vec<Candidate>)> {
    // (a) Mark, under the lease lock so no lease slips in between.
    let (marked, leased) = {
        let held = leases.lock();
        let (free, leased): (Vec<Candidate>, Vec<Candidate>) =
            chosen.into_iter().partition(|c| !held.contains_key(&c.id));
        if free.is_empty() {
            return Ok((Tally::default(), leased));
        }
        let marked = index.lock().transaction(|ix| {
            let ids: Vec<SegmentId> = free.iter().map(|c| SegmentId(c.id)).collect();
            let marked: HashSet<SegmentId> = ix.mark_doomed(&ids)?.into_iter().collect();
            let marked: Vec<Candidate> = free
                .into_iter()
                .filter(|c| marked.contains(&SegmentId(c.id)))
                .collect();
            journal(ix, &marked, at, pass_us, by)?;
            Ok(marked)
        })?;
        (marked, leased)
    };
    crate::failpoint::abort_at("after-mark");

    let doomed = marked.iter().map(|c| Doomed {
        id: SegmentId(c.id),
        root: &c.root,
        path: &c.path,
        bytes: c.bytes,
    });
    let tally = destroy_doomed(index, config, doomed, pass_us)?;
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
    by: &DeletedBy,
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
            reason: by.reason,
            actor: by.actor,
            request: by.request,
            note: None,
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
