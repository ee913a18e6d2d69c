//! Plan and status of retention, for `custosctl retention` and the API:
//! what the next pass would delete, and where each zone stands.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use super::select::{self, Cutoffs, Source, Step, Taker};
use super::{Leases, Tally, cutoff, days_after};
use crate::clock::UnixMicros;
use crate::config::{Config, Destruction, StorageRoot};
use crate::error::Result;
use crate::index::{
    CameraId, Candidate, Cursor, DeletionReason, Index, Overdue, Protection, SegmentId,
};
use crate::storage;

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

/// What the next pass would delete at `now_us`: the pass's own selection
/// (`select.rs`), counted instead of deleted. Reads only; holds
/// `index` for the whole computation.
pub fn plan(
    index: &Index,
    config: &Config,
    leases: &Leases,
    now_us: UnixMicros,
    free_bytes: &dyn Fn(&StorageRoot) -> Option<u64>,
) -> Result<RetentionPlan> {
    const PAGE: usize = 10_000;
    let cuts = Cutoffs::at(config, now_us)?;
    let mut counter = Counter {
        index,
        leases,
        free_bytes,
        page: PAGE,
        items: BTreeMap::new(),
        taken: HashSet::new(),
        freed: HashMap::new(),
        leased: 0,
        free: HashMap::new(),
        roots: Vec::new(),
    };
    select::walk(config, &cuts, &mut counter)?;
    let items: Vec<PlanItem> = counter.items.into_values().collect();
    let mut total = Tally::default();
    for i in &items {
        total += Tally {
            segments: i.segments,
            bytes: i.bytes,
        };
    }
    Ok(RetentionPlan {
        now_us,
        items,
        roots: counter.roots,
        leased: counter.leased,
        total,
    })
}

/// The plan's side of the selection: counts what each batch would delete.
/// Nothing is deleted, so a candidate seen again in a later step is
/// skipped, and a root's space is what it is now moved by what was counted.
struct Counter<'a> {
    index: &'a Index,
    leases: &'a Leases,
    free_bytes: &'a dyn Fn(&StorageRoot) -> Option<u64>,
    page: usize,
    items: BTreeMap<(String, String, String, DeletionReason), PlanItem>,
    taken: HashSet<i64>,
    /// Bytes counted per root.
    freed: HashMap<String, u64>,
    leased: u64,
    /// Each root's free bytes, as first read.
    free: HashMap<String, Option<u64>>,
    roots: Vec<RootPlan>,
}

impl Counter<'_> {
    /// Bytes used on `root` and free on its filesystem now (read once per
    /// root, so the plan's figures agree with each other), and bytes
    /// counted on it so far.
    fn space(&mut self, root: &StorageRoot) -> Result<(u64, Option<u64>, u64)> {
        let used = self.index.root_bytes(&root.id)?;
        let free = *self
            .free
            .entry(root.id.clone())
            .or_insert_with(|| (self.free_bytes)(root));
        let freed = self.freed.get(&root.id).copied().unwrap_or(0);
        Ok((used, free, freed))
    }
}

impl Taker for Counter<'_> {
    fn fetch(&mut self, source: Source, after: Cursor) -> Result<Vec<Candidate>> {
        source.fetch(self.index, after, self.page)
    }

    fn taken(&self, c: &Candidate) -> bool {
        self.taken.contains(&c.id)
    }

    fn take(&mut self, reason: DeletionReason, chosen: Vec<Candidate>) -> Result<(u64, u64)> {
        let (mut bytes, mut leased) = (0, 0);
        for c in chosen {
            if self.leases.is_leased(SegmentId(c.id)) {
                leased += 1;
                continue;
            }
            bytes += c.bytes;
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
        }
        self.leased += leased;
        Ok((bytes, leased))
    }

    fn shortfall(&mut self, root: &StorageRoot) -> Result<u64> {
        // After the age deletions, used and free move by what they freed.
        let (used, free, freed) = self.space(root)?;
        Ok(select::shortfall(
            root,
            used.saturating_sub(freed),
            free.map(|f| f.saturating_add(freed)),
        ))
    }

    fn pressure_done(
        &mut self,
        root: &StorageRoot,
        need: Option<u64>,
        step: Option<Step>,
    ) -> Result<()> {
        let (used, free, _) = self.space(root)?;
        let short = need.unwrap_or(0);
        self.roots.push(RootPlan {
            root: root.id.clone(),
            used_bytes: used,
            budget: root.budget,
            free_bytes: free,
            min_free: root.min_free,
            short_bytes: short,
            unmet_bytes: short.saturating_sub(step.map_or(0, |s| s.bytes)),
        });
        Ok(())
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
