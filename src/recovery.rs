//! Start-up recovery: brings the index and the files back into agreement
//! after a crash, touching only rows that are not complete (so it is fast
//! however many segments are indexed).
//!
//! For a segment cut off while recording: the file is read back, trimmed to
//! its last complete fragment, fsynced, hashed, and indexed with the end
//! time of its last whole frame. A row whose file never came to exist, or
//! holds no frame, is removed (with the file). A doomed segment (a deletion
//! a crash interrupted) is finished: its file destroyed, its row removed
//! (`retention::finish_doomed`).

use std::fs::{self, OpenOptions};
use std::path::Path;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::index::{SegmentId, SegmentRow, SegmentState, SegmentSummary};
use crate::ingest::SharedIndex;
use crate::{mp4, storage};

/// What the recovery pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub recovered: usize,
    pub trimmed: usize,
    pub removed: usize,
    pub outages_closed: usize,
    /// Doomed segments whose interrupted deletion was finished.
    pub destroyed: usize,
}

/// Recovers every unfinished segment and closes outages a crash left open.
pub fn run(index: &SharedIndex, config: &Config, now_us: i64) -> Result<Report> {
    let mut report = Report::default();
    let rows = index.lock().unfinished_segments()?;
    for row in rows {
        if row.state != SegmentState::Recording {
            // Doomed rows are finished below.
            continue;
        }
        let Some(root) = config.storage.iter().find(|r| r.id == row.root) else {
            tracing::warn!(root = %row.root, path = %row.path,
                "a cut-off segment is on a storage root no longer configured; left as is");
            continue;
        };
        let path = storage::absolute(&root.path, &row.path);
        match recover_row(index, &row, &path)? {
            Recovered::Indexed { trimmed } => {
                report.recovered += 1;
                report.trimmed += trimmed as usize;
            }
            Recovered::Removed => report.removed += 1,
        }
    }
    report.destroyed = crate::retention::finish_doomed(index, config, now_us)?;
    report.outages_closed = index.lock().end_open_outages(now_us)?;
    if report != Report::default() {
        tracing::info!(?report, "recovery pass");
    }
    Ok(report)
}

/// Recovers one segment by id (used when writing it failed at run time).
pub fn recover_segment(index: &SharedIndex, id: SegmentId, path: &Path) -> Result<()> {
    let row = index
        .lock()
        .segment(id)?
        .ok_or_else(|| Error::not_found(format!("segment {} is not in the index", id.0)))?;
    recover_row(index, &row, path).map(|_| ())
}

enum Recovered {
    Indexed { trimmed: bool },
    Removed,
}

fn recover_row(index: &SharedIndex, row: &SegmentRow, path: &Path) -> Result<Recovered> {
    let id = SegmentId(row.id);
    if !path.exists() {
        tracing::warn!(path = %path.display(), "a segment's file was never created; removing its row");
        index.lock().remove_segment(id)?;
        return Ok(Recovered::Removed);
    }
    let info = mp4::read::scan_file(path).ok();
    let video = info.as_ref().and_then(|i| {
        i.tracks
            .iter()
            .find(|t| matches!(t.codec, mp4::Codec::H264 { .. } | mp4::Codec::H265 { .. }))
    });
    let (Some(info), Some(video)) = (info.as_ref(), video) else {
        return remove(index, id, path, "holds no readable frame");
    };
    let samples: Vec<_> = info
        .samples
        .iter()
        .filter(|s| s.track == video.id)
        .collect();
    let Some(last) = samples.last() else {
        return remove(index, id, path, "holds no complete frame");
    };
    let end_ticks = last.decode_time + last.duration as u64;
    let end_us = row.start_us + (end_ticks as u128 * 1_000_000 / video.timescale as u128) as i64;

    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("cannot open cut-off segment", path, e))?;
    let trimmed = info.truncated;
    if trimmed {
        file.set_len(info.complete_len)
            .map_err(|e| Error::io("cannot trim cut-off segment", path, e))?;
    }
    storage::fsync_file(&file, path);
    drop(file);
    let (bytes, sha256) = storage::hash_file(path)?;
    let audio_codec = info.tracks.iter().find_map(|t| match t.codec {
        mp4::Codec::Aac { .. } => Some("aac"),
        mp4::Codec::Pcma => Some("pcma"),
        mp4::Codec::Pcmu => Some("pcmu"),
        _ => None,
    });
    let summary = SegmentSummary {
        end_us,
        bytes,
        frames: samples.len() as u64,
        key_frames: samples.iter().filter(|s| s.keyframe).count() as u64,
        video_codec: match video.codec {
            mp4::Codec::H265 { .. } => "h265".into(),
            _ => "h264".into(),
        },
        audio_codec: audio_codec.map(str::to_owned),
        sha256,
        recovered: true,
    };
    if let Some(dir) = path.parent() {
        storage::fsync_dir(dir);
    }
    index.lock().complete_segment(id, &summary)?;
    tracing::info!(path = %path.display(), frames = summary.frames, trimmed,
        "recovered a cut-off segment");
    Ok(Recovered::Indexed { trimmed })
}

fn remove(index: &SharedIndex, id: SegmentId, path: &Path, why: &str) -> Result<Recovered> {
    tracing::warn!(path = %path.display(), "a cut-off segment {why}; removing it");
    fs::remove_file(path).map_err(|e| Error::io("cannot remove empty segment", path, e))?;
    if let Some(dir) = path.parent() {
        storage::fsync_dir(dir);
    }
    index.lock().remove_segment(id)?;
    Ok(Recovered::Removed)
}
