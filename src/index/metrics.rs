//! Aggregates for the Prometheus metrics (`crate::metrics`): one query per
//! family, each a `GROUP BY` over an indexed or small table, so a scrape
//! costs the same whatever the footage's size or the journal's length.
//!
//! Protected footage is found from the active holds and restrictions
//! (few rows) through `segment_camera_start`, with the same overlap test as
//! the reaper's `UNPROTECTED` clause (`retention.rs`): a segment is protected
//! if `[start_us, end_us)` meets an active hold or restriction.

use rusqlite::named_params;

use super::Index;
use crate::error::Result;

/// Deletions of one reason, over the whole journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionTotal {
    /// `retention`, `disk_pressure`, `erasure` or `case_closed`.
    pub reason: String,
    pub segments: u64,
    pub bytes: u64,
    /// Start of the newest pass that deleted for this reason.
    pub last_pass_us: i64,
}

/// Outage time of one camera, open outages counted up to `now_us`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutageTotal {
    pub camera: String,
    pub outages: u64,
    pub micros: i64,
}

const DELETION_TOTALS: &str = "SELECT reason, coalesce(sum(segments), 0), \
     coalesce(sum(bytes), 0), max(pass_us) FROM deletion GROUP BY reason ORDER BY reason";
const OUTAGE_TOTALS: &str = "SELECT c.name, count(*), \
     coalesce(sum(max(0, coalesce(o.to_us, :now) - o.from_us)), 0) \
     FROM outage o JOIN camera c ON c.id = o.camera_id GROUP BY c.name ORDER BY c.name";

const PROTECTED_BYTES: &str = "SELECT s.root, coalesce(sum(s.bytes), 0) FROM segment s \
     WHERE s.id IN (\
       SELECT p.id FROM hold h JOIN segment p ON p.camera_id = h.camera_id \
         AND p.start_us < h.to_us AND p.end_us > h.from_us \
         WHERE h.released_us IS NULL AND p.state = 1 \
       UNION SELECT p.id FROM restriction r JOIN segment p ON p.camera_id = r.camera_id \
         AND p.start_us < r.to_us AND p.end_us > r.from_us \
         WHERE r.lifted_us IS NULL AND p.state = 1) \
     GROUP BY s.root ORDER BY s.root";

impl Index {
    /// Segments and bytes deleted so far, by reason.
    pub fn deletion_totals(&self) -> Result<Vec<DeletionTotal>> {
        let mut stmt = self.conn.prepare_cached(DELETION_TOTALS)?;
        let rows = stmt.query_map([], |r| {
            Ok(DeletionTotal {
                reason: r.get(0)?,
                segments: r.get::<_, i64>(1)? as u64,
                bytes: r.get::<_, i64>(2)? as u64,
                last_pass_us: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Number and total length of outages per camera.
    pub fn outage_totals(&self, now_us: i64) -> Result<Vec<OutageTotal>> {
        let mut stmt = self.conn.prepare_cached(OUTAGE_TOTALS)?;
        let rows = stmt.query_map(named_params! {":now": now_us}, |r| {
            Ok(OutageTotal {
                camera: r.get(0)?,
                outages: r.get::<_, i64>(1)? as u64,
                micros: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Bytes of complete footage under an active hold or restriction, per
    /// storage root (roots without any are left out).
    pub fn protected_bytes(&self) -> Result<Vec<(String, u64)>> {
        let mut stmt = self.conn.prepare_cached(PROTECTED_BYTES)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
