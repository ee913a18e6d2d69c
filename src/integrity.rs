//! The integrity sweep: a slow walk over every complete segment that checks
//! its file is still there and, within a byte budget, still has the hash
//! recorded when it was finished. Footage the index says exists but is gone,
//! or has changed, suggests a breach (destruction or tampering outside
//! Custos) and opens a breach record (`crate::breach`).
//!
//! Invariants: it reads only; a finding is confirmed against the row again
//! after the file was looked at, so a segment the reaper doomed or removed
//! meanwhile is never reported; the walk resumes where it stopped, wrapping
//! round, so every segment is reached in turn whatever the budget.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::error::Result;
use crate::index::{Index, SegmentId, SegmentRow, SegmentState};

/// What one step of the sweep found.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Where the next step starts (0 after the last segment).
    pub next_after_id: i64,
    pub checked: usize,
    pub hashed_bytes: u64,
    /// Paths by camera.
    pub missing: BTreeMap<String, Vec<String>>,
    pub changed: BTreeMap<String, Vec<String>>,
}

/// Still complete, as when it was read: a finding about it stands.
fn still_complete(ix: &Index, row: &SegmentRow) -> Result<bool> {
    Ok(ix
        .segment(SegmentId(row.id))?
        .is_some_and(|r| r.state == SegmentState::Complete && r.sha256 == row.sha256))
}

/// Checks up to `max_files` segments after `after_id`, hashing at most
/// `max_bytes` of them.
pub fn sweep(
    ix: &Index,
    config: &Config,
    after_id: i64,
    max_files: usize,
    max_bytes: u64,
) -> Result<Sweep> {
    let rows = ix.complete_segments_after(after_id, max_files)?;
    let mut out = Sweep {
        next_after_id: if rows.len() < max_files {
            0
        } else {
            rows.last().map_or(0, |r| r.id)
        },
        ..Sweep::default()
    };
    for row in rows {
        let Some(root) = config.storage_root(&row.root) else {
            continue;
        };
        let path = crate::storage::absolute(&root.path, &row.path);
        out.checked += 1;
        let size = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if still_complete(ix, &row)? {
                    out.missing
                        .entry(row.camera.clone())
                        .or_default()
                        .push(row.path);
                }
                continue;
            }
            Err(_) => continue,
        };
        if out.hashed_bytes + size > max_bytes {
            continue;
        }
        out.hashed_bytes += size;
        let Ok((_, sha)) = crate::storage::hash_file(&path) else {
            continue;
        };
        if Some(sha) != row.sha256 && still_complete(ix, &row)? {
            out.changed
                .entry(row.camera.clone())
                .or_default()
                .push(row.path);
        }
    }
    Ok(out)
}
