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
//! One selection (`select.rs`) offers candidates in this order; the pass
//! deletes them and [`plan`] only counts them, so the plan says what the
//! next pass does.
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

mod alarms;
pub mod destroy;
mod leases;
mod pass;
pub mod reaper;
mod report;
mod select;

use crate::clock::{UnixMicros, format_utc};
use crate::config::MAX_RETENTION_DAYS_RANGE;
use crate::error::{Error, Result};

pub use alarms::{StorageAlarm, StorageAlarms};
pub use leases::{LeaseGuard, Leases};
pub use pass::*;
pub use reaper::{Reaper, ReaperWaker};
pub use report::*;

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
