//! The per-second activity summary of each segment (schema 11): bytes of
//! non-key video frames, counted by the recorder so that `custosctl
//! activity` reads the index, not the files (docs/design/review.md).

use rusqlite::named_params;

use super::{Index, MAX_DEVICE_FILE_US};
use crate::error::Result;

const SELECT_ACTIVITY: &str = "SELECT s.id, s.zone, s.start_us, s.end_us, s.activity \
     FROM segment s JOIN camera c ON c.id = s.camera_id \
     WHERE c.name = :camera AND s.state = 1 AND s.start_us >= :from - c.longest_us \
       AND s.start_us < :to AND s.end_us > :from ORDER BY s.start_us";

/// Counts `bytes` of a non-key video frame `offset_us` after its segment's
/// start into the per-second activity summary.
pub fn add_activity(activity: &mut Vec<u32>, offset_us: i64, bytes: u64) {
    let Ok(second) = usize::try_from(offset_us.div_euclid(1_000_000)) else {
        return;
    };
    // A segment lasts at most MAX_DEVICE_FILE_US; a frame stamped beyond
    // that is not worth growing the summary for.
    if second as i64 > MAX_DEVICE_FILE_US / 1_000_000 {
        return;
    }
    if activity.len() <= second {
        activity.resize(second + 1, 0);
    }
    activity[second] = activity[second].saturating_add(u32::try_from(bytes).unwrap_or(u32::MAX));
}

/// A complete segment's activity summary, for `review::activity`.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentActivity {
    pub id: i64,
    pub zone: String,
    pub start_us: i64,
    pub end_us: i64,
    /// Bytes of non-key video frames per second from `start_us`; `None`
    /// for a segment recorded before the recorder counted them.
    pub per_second: Option<Vec<u32>>,
}

impl Index {
    /// The complete segments of `camera` overlapping `[from_us, to_us)`, by
    /// start, with their activity summaries.
    pub fn segment_activity(
        &self,
        camera: &str,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<SegmentActivity>> {
        let mut stmt = self.conn.prepare_cached(SELECT_ACTIVITY)?;
        let rows = stmt.query_map(
            named_params! {
                ":camera": camera,
                ":from": from_us,
                ":to": to_us,
            },
            |r| {
                Ok(SegmentActivity {
                    id: r.get(0)?,
                    zone: r.get(1)?,
                    start_us: r.get(2)?,
                    end_us: r.get(3)?,
                    per_second: r
                        .get::<_, Option<Vec<u8>>>(4)?
                        .map(|b| activity_of_blob(&b)),
                })
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

pub(super) fn activity_blob(per_second: &[u32]) -> Vec<u8> {
    per_second.iter().flat_map(|n| n.to_le_bytes()).collect()
}

fn activity_of_blob(blob: &[u8]) -> Vec<u32> {
    blob.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
