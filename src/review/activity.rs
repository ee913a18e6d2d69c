//! Activity: how much happened in each interval of a camera's range,
//! estimated without decoding. Motion costs bits: a still picture's non-key
//! frames are small, a moving one's large. The recorder counts the bytes of
//! non-key video frames per second of each segment (`index::add_activity`),
//! so an hour is read from the index, not from the files.
//!
//! Invariants:
//! - A second of a segment counts in the bucket its start falls in; buckets
//!   are `every` long from `from`, the last one cut at `to`.
//! - A bucket states how many seconds of footage it holds, so a bucket with
//!   no footage is told from a still one, and its rate (bytes per second of
//!   footage) compares buckets that are only partly recorded.
//! - Only footage recorded under a zone `may_see` allows is counted.
//! - A segment recorded before the recorder counted (no summary in the
//!   index) is counted from its file, leased while it is read.

use std::sync::Arc;

use crate::config::Config;
use crate::index::{Index, SegmentId};
use crate::retention::Leases;
use crate::{Error, ErrorKind, Result};

/// Shortest bucket: the summary's resolution.
pub const MIN_EVERY_US: i64 = 1_000_000;
/// Most buckets one query may return.
pub const MAX_BUCKETS: i64 = 10_000;

/// One interval of the range.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Bucket {
    pub from_us: i64,
    pub to_us: i64,
    /// Seconds of footage in the bucket (whole or in part).
    pub recorded_s: u32,
    /// Bytes of non-key video frames in those seconds.
    pub bytes: u64,
}

impl Bucket {
    /// Bytes of non-key frames per second of footage; 0 without footage.
    pub fn rate(&self) -> u64 {
        self.bytes
            .checked_div(u64::from(self.recorded_s))
            .unwrap_or(0)
    }
}

/// The answer to one query.
#[derive(Debug, Clone)]
pub struct Activity {
    pub buckets: Vec<Bucket>,
    /// Segments counted, and of those how many from their files.
    pub segments: usize,
    pub from_files: usize,
}

/// Counts the activity of `camera` over `[from_us, to_us)` in buckets of
/// `every_us`.
pub fn query(
    index: &Index,
    config: &Config,
    leases: &Arc<Leases>,
    camera: &str,
    (from_us, to_us, every_us): (i64, i64, i64),
    may_see: &dyn Fn(&str) -> bool,
) -> Result<Activity> {
    if to_us <= from_us {
        return Err(Error::invalid("the range ends before it starts"));
    }
    if to_us - from_us > super::MAX_RANGE_US {
        return Err(Error::invalid(
            "an activity query may cover at most 24 hours; ask for a shorter range",
        ));
    }
    if every_us < MIN_EVERY_US || every_us % MIN_EVERY_US != 0 {
        return Err(Error::invalid(
            "the interval (every) must be a whole number of seconds, at least 1s, e.g. 10s or 1m",
        ));
    }
    let count = (to_us - from_us + every_us - 1) / every_us;
    if count > MAX_BUCKETS {
        return Err(Error::invalid(format!(
            "{count} intervals is more than {MAX_BUCKETS}; ask for a longer interval (every) \
             or a shorter range"
        )));
    }
    let mut buckets: Vec<Bucket> = (0..count)
        .map(|i| Bucket {
            from_us: from_us + i * every_us,
            to_us: (from_us + (i + 1) * every_us).min(to_us),
            recorded_s: 0,
            bytes: 0,
        })
        .collect();
    let mut rows = index.segment_activity(camera, from_us, to_us)?;
    let seen = rows.len();
    let mut zones: Vec<String> = rows.iter().map(|r| r.zone.clone()).collect();
    rows.retain(|r| may_see(&r.zone));
    if rows.is_empty() && seen > 0 {
        zones.dedup();
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "the footage of camera {camera} in this range was recorded under zone {}, \
                 which your grant does not cover",
                zones.join(", ")
            ),
        ));
    }
    let mut from_files = 0;
    for row in &rows {
        let per_second = match &row.per_second {
            Some(p) => p.clone(),
            None => {
                from_files += 1;
                from_file(index, config, leases, row.id)?
            }
        };
        let seconds = ((row.end_us - row.start_us).max(0) + 999_999) / 1_000_000;
        for s in 0..seconds {
            let at = row.start_us + s * 1_000_000;
            if at < from_us || at >= to_us {
                continue;
            }
            let b = &mut buckets[((at - from_us) / every_us) as usize];
            b.recorded_s += 1;
            b.bytes += u64::from(per_second.get(s as usize).copied().unwrap_or(0));
        }
    }
    Ok(Activity {
        buckets,
        segments: rows.len(),
        from_files,
    })
}

/// The summary of a segment the recorder did not count, from its file.
fn from_file(index: &Index, config: &Config, leases: &Arc<Leases>, id: i64) -> Result<Vec<u32>> {
    let _lease = leases.acquire(&[SegmentId(id)]);
    let Some(row) = index.complete_segments(&[SegmentId(id)])?.pop() else {
        // Deleted since it was listed: nothing to count.
        return Ok(Vec::new());
    };
    let source = crate::export::open_unverified(config, row)?;
    let (samples, timescale) = source.video_samples();
    Ok(crate::recovery::activity(&samples, timescale))
}
