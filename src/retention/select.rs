//! What a pass deletes, and in what order: the one selection that both the
//! pass ([`super::pass`], which deletes) and the plan ([`super::plan`], which
//! only counts) walk, so that the plan always says what the pass would do.
//!
//! The order: each zone's footage past its ceiling; then, per root, footage
//! past `daemon.max_retention_days` whatever its zone (zones no longer
//! configured); then, per root with a `min_free` or `budget`, the oldest
//! footage until the shortfall is made up.
//!
//! Invariants:
//! - Candidates are offered in batches, oldest first; a batch for disk
//!   pressure holds no more than the shortfall still open (counting every
//!   candidate chosen, even one the taker then skips as leased), and the next
//!   batch resumes right after the last candidate considered, so none older
//!   is passed over while a newer one goes.
//! - Candidates on a root no longer configured are never offered.

use super::cutoff;
use crate::clock::UnixMicros;
use crate::config::{Config, StorageRoot, Zone};
use crate::error::Result;
use crate::index::{Candidate, Cursor, DeletionReason, Index};

/// Every cut-off of a pass at one instant, computed (with checked
/// arithmetic) before anything is deleted.
pub(super) struct Cutoffs<'a> {
    zones: Vec<(&'a Zone, UnixMicros)>,
    /// For footage of any zone: `daemon.max_retention_days`.
    root: UnixMicros,
}

impl<'a> Cutoffs<'a> {
    pub(super) fn at(config: &'a Config, now: UnixMicros) -> Result<Cutoffs<'a>> {
        Ok(Cutoffs {
            zones: config
                .zones
                .iter()
                .map(|z| Ok((z, cutoff(now, z.retention_days)?)))
                .collect::<Result<_>>()?,
            root: cutoff(now, config.daemon.max_retention_days)?,
        })
    }
}

/// Where one step of the selection takes its candidates from.
#[derive(Debug, Clone, Copy)]
pub(super) enum Source<'a> {
    /// Complete segments of the zone that ended before the cut-off.
    Zone { zone: &'a str, cut: UnixMicros },
    /// Complete segments on the root that ended before the cut-off.
    Root { root: &'a str, cut: UnixMicros },
    /// The oldest complete segments on the root.
    Pressure { root: &'a str },
}

impl Source<'_> {
    pub(super) fn reason(self) -> DeletionReason {
        match self {
            Source::Zone { .. } | Source::Root { .. } => DeletionReason::Retention,
            Source::Pressure { .. } => DeletionReason::DiskPressure,
        }
    }

    /// At most `limit` candidates after `after`, oldest first.
    pub(super) fn fetch(self, ix: &Index, after: Cursor, limit: usize) -> Result<Vec<Candidate>> {
        match self {
            Source::Zone { zone, cut } => ix.age_candidates(zone, cut, after, limit),
            Source::Root { root, cut } => ix.root_age_candidates(root, cut, after, limit),
            Source::Pressure { root } => ix.pressure_candidates(root, after, limit),
        }
    }
}

/// What the selection hands its candidates to: the pass deletes them, the
/// plan counts them.
pub(super) trait Taker {
    /// The next batch from `source` after `after`. The pass re-reads the
    /// index after each batch it deleted.
    fn fetch(&mut self, source: Source, after: Cursor) -> Result<Vec<Candidate>>;
    /// Whether `c` was already taken by an earlier step (the plan, which
    /// deletes nothing, sees it again; the pass never does).
    fn taken(&self, _c: &Candidate) -> bool {
        false
    }
    /// Deletes (or counts) `chosen`, skipping what is leased. Returns what
    /// was taken and how many were skipped as leased.
    fn take(&mut self, reason: DeletionReason, chosen: Vec<Candidate>) -> Result<(u64, u64)>;
    /// Bytes `root` must still free (see [`shortfall`]), before its
    /// pressure step.
    fn shortfall(&mut self, root: &StorageRoot) -> Result<u64>;
    /// After `root`'s pressure step: `need` is None for a root without
    /// `min_free` or `budget`, else what it was short before the step, and
    /// `step` what the step did (None if nothing was short).
    fn pressure_done(
        &mut self,
        root: &StorageRoot,
        need: Option<u64>,
        step: Option<Step>,
    ) -> Result<()>;
    /// Whether to stop before the next batch.
    fn cancelled(&self) -> bool {
        false
    }
}

/// What one step of the selection took.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Step {
    pub bytes: u64,
    pub leased: u64,
    /// No candidate was left.
    pub exhausted: bool,
}

/// Bytes a root must free to have `min_free` available and stay within its
/// `budget`, given the bytes it `used` and those `free` on its filesystem
/// (unknown: no shortfall by `min_free`): 0 if neither is exceeded.
pub(super) fn shortfall(root: &StorageRoot, used: u64, free: Option<u64>) -> u64 {
    let by_free = match (root.min_free, free) {
        (Some(min), Some(free)) => min.saturating_sub(free),
        _ => 0,
    };
    let by_budget = root.budget.map_or(0, |b| used.saturating_sub(b));
    by_free.max(by_budget)
}

/// Walks the selection at `cuts` in the order a pass deletes, handing each
/// batch to `taker`.
pub(super) fn walk(config: &Config, cuts: &Cutoffs, taker: &mut dyn Taker) -> Result<()> {
    for &(zone, cut) in &cuts.zones {
        let source = Source::Zone {
            zone: &zone.id,
            cut,
        };
        take_while(config, source, None, taker)?;
    }
    // Footage of zones no longer configured: nothing may outlive the
    // longest ceiling the config allows.
    for root in &config.storage {
        let source = Source::Root {
            root: &root.id,
            cut: cuts.root,
        };
        take_while(config, source, None, taker)?;
    }
    for root in &config.storage {
        if root.min_free.is_none() && root.budget.is_none() {
            taker.pressure_done(root, None, None)?;
            continue;
        }
        let need = taker.shortfall(root)?;
        let step = if need > 0 {
            let source = Source::Pressure { root: &root.id };
            Some(take_while(config, source, Some(need), taker)?)
        } else {
            None
        };
        taker.pressure_done(root, Some(need), step)?;
    }
    Ok(())
}

/// Hands candidates from `source` to `taker`, batch by batch, until none is
/// left, the taker is cancelled, or (with `limit`) at least `limit` bytes
/// are taken.
fn take_while(
    config: &Config,
    source: Source,
    limit: Option<u64>,
    taker: &mut dyn Taker,
) -> Result<Step> {
    let mut step = Step::default();
    let mut after = Cursor::START;
    loop {
        if limit.is_some_and(|l| step.bytes >= l) || taker.cancelled() {
            return Ok(step);
        }
        let page = taker.fetch(source, after)?;
        if page.is_empty() {
            step.exhausted = true;
            return Ok(step);
        }
        let mut chosen = Vec::with_capacity(page.len());
        let mut bytes = step.bytes;
        for c in page {
            if limit.is_some_and(|l| bytes >= l) {
                break;
            }
            after = Cursor::after(&c);
            if config.storage_root(&c.root).is_none() || taker.taken(&c) {
                // Its files cannot be reached (status shows it), or it is
                // already counted.
                continue;
            }
            bytes += c.bytes;
            chosen.push(c);
        }
        let (taken, leased) = taker.take(source.reason(), chosen)?;
        step.bytes += taken;
        step.leased += leased;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Destruction;

    fn root(min_free: Option<u64>, budget: Option<u64>) -> StorageRoot {
        StorageRoot {
            id: "main".into(),
            path: "/nonexistent".into(),
            create: false,
            budget,
            min_free,
            destruction: Destruction::Unlink,
        }
    }

    #[test]
    fn the_shortfall_is_the_larger_of_free_space_and_budget() {
        assert_eq!(shortfall(&root(None, None), 10, Some(0)), 0);
        assert_eq!(shortfall(&root(Some(100), None), 1_000, Some(30)), 70);
        assert_eq!(shortfall(&root(Some(100), None), 1_000, None), 0);
        assert_eq!(shortfall(&root(None, Some(400)), 1_000, None), 600);
        assert_eq!(shortfall(&root(Some(100), Some(400)), 450, Some(0)), 100);
        assert_eq!(shortfall(&root(Some(100), Some(400)), 300, Some(500)), 0);
    }
}
