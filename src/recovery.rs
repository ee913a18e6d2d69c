//! Start-up recovery: brings the index and the files back into agreement
//! after a crash, touching only rows that are not complete (so it is fast
//! however many segments are indexed).
//!
//! For a segment cut off while recording: the file is read back, trimmed to
//! its last complete fragment, fsynced, hashed, and indexed with the end
//! time of its last whole frame. A row whose file never came to exist
//! (the file system says so: not found) is removed, and so is one whose
//! file was read to its end and holds no complete frame (with the file).
//! Anything else that stops the read-back (EIO, EMFILE, ENOMEM, a damaged
//! header) proves nothing about the footage: row and file are kept as they
//! are, the error is logged as an alarm, and the next start tries again. A
//! doomed segment (a deletion a crash interrupted) is finished: its file
//! destroyed, its row removed (`retention::finish_doomed`).

use std::fs::{self, OpenOptions};
use std::path::Path;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::index::SharedIndex;
use crate::index::{SegmentId, SegmentRow, SegmentState, SegmentSummary};
use crate::{mp4, storage};

/// What the recovery pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub recovered: usize,
    pub trimmed: usize,
    pub removed: usize,
    /// Cut-off segments that could not be read back, left for the next start.
    pub kept: usize,
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
        // A device file cut off while being stored is finished or undone
        // by the inbox's own rule: its bytes are whole or not in place.
        match crate::inbox::recover_row(index, &row, &path) {
            Ok(Some(true)) => {
                report.recovered += 1;
                continue;
            }
            Ok(Some(false)) => {
                report.removed += 1;
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(path = %row.path, error = %e, "a device file being stored could not be checked; left for the next start");
                report.kept += 1;
                continue;
            }
        }
        match recover_row(index, &row, &path)? {
            Recovered::Indexed { trimmed } => {
                report.recovered += 1;
                report.trimmed += trimmed as usize;
            }
            Recovered::Removed => report.removed += 1,
            Recovered::Kept => report.kept += 1,
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
    Indexed {
        trimmed: bool,
    },
    Removed,
    /// Not read back; row and file left for the next start.
    Kept,
}

/// Recovers one row; errors of the index are returned, errors of the file
/// keep it (`Recovered::Kept`).
fn recover_row(index: &SharedIndex, row: &SegmentRow, path: &Path) -> Result<Recovered> {
    match recover_file(index, row, path) {
        Err(Failure::Index(e)) => Err(e),
        Err(Failure::File(e)) => {
            tracing::error!(path = %path.display(), error = %e,
                "ALARM: a cut-off segment cannot be read back; its footage and row are kept \
                 as they are and recovery tries again at the next start. Check the disk \
                 (dmesg, SMART) and the daemon's limits (open files, memory)");
            Ok(Recovered::Kept)
        }
        Ok(r) => Ok(r),
    }
}

enum Failure {
    /// The file could not be read, trimmed or hashed: nothing is known.
    File(Error),
    Index(Error),
}

fn file_err(e: Error) -> Failure {
    Failure::File(e)
}

fn index_err(e: Error) -> Failure {
    Failure::Index(e)
}

/// Reads the cut-off file back (a failpoint can make the read fail, as a
/// dying disk would).
fn scan(path: &Path) -> Result<mp4::Mp4Info> {
    if crate::failpoint::is("recovery-read-eio") {
        let eio = std::io::Error::from_raw_os_error(nix::errno::Errno::EIO as i32);
        return Err(Error::io("reading", path, eio));
    }
    mp4::read::scan_file(path)
}

fn recover_file(
    index: &SharedIndex,
    row: &SegmentRow,
    path: &Path,
) -> std::result::Result<Recovered, Failure> {
    let id = SegmentId(row.id);
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(),
                "a segment's file was never created; removing its row");
            index.lock().remove_segment(id).map_err(index_err)?;
            return Ok(Recovered::Removed);
        }
        Err(e) => return Err(file_err(Error::io("cannot look up", path, e))),
        Ok(_) => {}
    }
    // Read to the end without an error: what it holds is known.
    let info = scan(path).map_err(file_err)?;
    let video = info
        .tracks
        .iter()
        .find(|t| matches!(t.codec, mp4::Codec::H264 { .. } | mp4::Codec::H265 { .. }));
    let Some(video) = video else {
        return remove(index, id, path, "holds no complete video track header");
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
        .map_err(|e| file_err(Error::io("cannot open cut-off segment", path, e)))?;
    let trimmed = info.truncated;
    if trimmed {
        file.set_len(info.complete_len)
            .map_err(|e| file_err(Error::io("cannot trim cut-off segment", path, e)))?;
    }
    storage::fsync_file(&file, path);
    drop(file);
    let (bytes, sha256) = storage::hash_file(path).map_err(file_err)?;
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
        activity: activity(&samples, video.timescale),
    };
    if let Some(dir) = path.parent() {
        storage::fsync_dir(dir);
    }
    index
        .lock()
        .complete_segment(id, &summary)
        .map_err(index_err)?;
    tracing::info!(path = %path.display(), frames = summary.frames, trimmed,
        "recovered a cut-off segment");
    Ok(Recovered::Indexed { trimmed })
}

/// Removes a segment read to its end and found to hold no complete frame.
fn remove(
    index: &SharedIndex,
    id: SegmentId,
    path: &Path,
    why: &str,
) -> std::result::Result<Recovered, Failure> {
    tracing::warn!(path = %path.display(), "a cut-off segment {why}; removing it");
    fs::remove_file(path)
        .map_err(|e| file_err(Error::io("cannot remove empty segment", path, e)))?;
    if let Some(dir) = path.parent() {
        storage::fsync_dir(dir);
    }
    index.lock().remove_segment(id).map_err(index_err)?;
    Ok(Recovered::Removed)
}

/// The activity summary the recorder would have counted (its non-key video
/// frames' bytes per second), from a segment's parsed samples.
pub(crate) fn activity(samples: &[&mp4::SampleInfo], timescale: u32) -> Vec<u32> {
    let mut per_second = Vec::new();
    for s in samples.iter().filter(|s| !s.keyframe) {
        let at = (i128::from(s.decode_time) * 1_000_000 / i128::from(timescale.max(1))) as i64;
        crate::index::add_activity(&mut per_second, at, u64::from(s.size));
    }
    per_second
}
