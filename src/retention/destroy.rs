//! Destroying segment files (004 §11: deleted footage must not be
//! recoverable, in whole or in part), and tidying the directories they leave.
//!
//! `unlink` removes the directory entry; the blocks go back to the
//! filesystem and stay readable from the raw device until reused.
//! `overwrite` first writes zeros over the file's whole length through the
//! same inode, fsyncs, and only then unlinks. What that does and does not
//! guarantee (see docs/design/retention.md):
//! - ext4 (data=ordered) and xfs on a spinning disk overwrite in place: the
//!   old bytes are gone from the platter once the fsync returns.
//! - On SSDs the flash translation layer writes the zeros to fresh cells; the
//!   old cells keep the data until garbage collection erases them. No
//!   file-level operation can reach them; only full-disk encryption (with the
//!   key destroyed) or the drive's own secure erase can.
//! - Copy-on-write filesystems (btrfs, zfs) and snapshots write the zeros to
//!   new blocks and keep the old ones as long as any snapshot refers to them.
//! - Either way the file's contents as seen through the filesystem (including
//!   through descriptors still open on it) are zeros before the name goes.
//!
//! Destroying is idempotent: a file already gone counts as destroyed, so a
//! pass interrupted by a crash can be finished by the start-up pass.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::config::Destruction;
use crate::error::{Error, Result};
use crate::storage;

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// Destroys the file at `path` by `mode`. Returns false if it did not exist.
/// The directory entry's removal is not yet durable: fsync the parent
/// directory ([`sync_dirs`]) before forgetting the file's row.
pub fn destroy_file(path: &Path, mode: Destruction) -> Result<bool> {
    if mode == Destruction::Overwrite {
        match overwrite(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("cannot overwrite segment file", path, e)),
        }
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("cannot remove segment file", path, e)),
    }
}

/// Writes zeros over the whole file, in place, and makes them durable.
fn overwrite(path: &Path) -> io::Result<()> {
    // No truncate: truncating would free the old blocks with their bytes
    // still in them instead of overwriting them.
    let mut file = OpenOptions::new().write(true).open(path)?;
    let mut left = file.metadata()?.len();
    while left > 0 {
        let n = left.min(ZEROS.len() as u64) as usize;
        file.write_all(&ZEROS[..n])?;
        left -= n as u64;
    }
    // Durable before the unlink, or the zeros could stay in the page cache
    // and be dropped with the inode, never reaching the disk.
    storage::fsync_file(&file, path);
    Ok(())
}

/// Fsyncs each directory once, making the unlinks in it durable.
pub fn sync_dirs<'a>(dirs: impl IntoIterator<Item = &'a Path>) {
    let dirs: BTreeSet<&Path> = dirs.into_iter().collect();
    for dir in dirs {
        storage::fsync_dir(dir);
    }
}

/// Removes day directories (`<root>/<zone>/<camera>/<YYYY-MM-DD>`) left
/// empty, except those dated `keep_from_day` (UTC `YYYY-MM-DD`) or later:
/// ingest may be about to create a file in them, and removing a directory
/// under it would fail its write. A camera directory left empty goes too
/// when `camera_gone(zone, camera)` says no enabled camera records there.
/// Failures are ignored: a directory that is not empty is simply kept.
pub fn remove_empty_dirs<'a>(
    day_dirs: impl IntoIterator<Item = &'a Path>,
    keep_from_day: &str,
    camera_gone: impl Fn(&str, &str) -> bool,
) -> usize {
    let days: BTreeSet<PathBuf> = day_dirs.into_iter().map(Path::to_owned).collect();
    let mut removed = 0;
    let mut cameras = BTreeSet::new();
    for day in &days {
        let Some(name) = day.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.len() != 10 || name >= keep_from_day {
            continue;
        }
        if fs::remove_dir(day).is_ok() {
            removed += 1;
            if let Some(camera) = day.parent() {
                storage::fsync_dir(camera);
                cameras.insert(camera.to_owned());
            }
        }
    }
    for camera in cameras {
        let (Some(cam), Some(zone)) = (
            camera.file_name().and_then(|n| n.to_str()),
            camera
                .parent()
                .and_then(|z| z.file_name())
                .and_then(|n| n.to_str()),
        ) else {
            continue;
        };
        if camera_gone(zone, cam) && fs::remove_dir(&camera).is_ok() {
            removed += 1;
            if let Some(zone_dir) = camera.parent() {
                storage::fsync_dir(zone_dir);
            }
        }
    }
    removed
}
