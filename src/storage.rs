//! Recording files on disk: where a segment lives, and the fsync discipline
//! that keeps files and index rows in agreement after a crash.
//!
//! Layout: `<root>/<zone>/<camera>/<YYYY-MM-DD>/<YYYYMMDDTHHMMSS.mmmZ>.mp4`,
//! dates and times in UTC. See docs/design/storage.md for the write order.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::clock::UnixMicros;
use crate::error::{Error, Result};

/// The path of a segment relative to its storage root.
pub fn segment_path(zone: &str, camera: &str, start: UnixMicros) -> Result<String> {
    let ts = jiff::Timestamp::from_microsecond(start)
        .map_err(|e| Error::invalid(format!("segment start {start} µs is out of range: {e}")))?;
    let day = ts.strftime("%Y-%m-%d");
    let stamp = ts.strftime("%Y%m%dT%H%M%S");
    let ms = start.rem_euclid(1_000_000) / 1000;
    Ok(format!("{zone}/{camera}/{day}/{stamp}.{ms:03}Z.mp4"))
}

/// Creates a new segment file, and its directories, under `root`. Fails if
/// the file exists: a segment file is never written twice.
pub fn create_segment_file(root: &Path, rel: &str) -> Result<File> {
    let path = root.join(rel);
    if let Some(dir) = path.parent() {
        create_dirs_durably(root, dir)?;
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io("cannot create segment file", &path, e))
}

/// Creates `dir` and any missing parents below `root`, fsyncing the parent
/// of each new directory so the new entries survive a power cut.
fn create_dirs_durably(root: &Path, dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut d = dir;
    while !d.is_dir() && d != root {
        missing.push(d);
        match d.parent() {
            Some(p) => d = p,
            None => break,
        }
    }
    fs::create_dir_all(dir).map_err(|e| Error::io("cannot create directory", dir, e))?;
    for new in missing.iter().rev() {
        if let Some(parent) = new.parent() {
            fsync_dir(parent);
        }
    }
    Ok(())
}

/// Makes a file's contents durable. A failed fsync leaves the page cache in
/// an unknown state (PostgreSQL's "fsyncgate"): the caller must not carry on
/// as if the data were safe, so this aborts the process.
pub fn fsync_file(file: &File, path: &Path) {
    if let Err(e) = file.sync_all() {
        fsync_failed(path, e);
    }
}

/// Makes a directory's entries (file creations, renames, unlinks) durable.
pub fn fsync_dir(dir: &Path) {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => fsync_failed(dir, e),
    }
}

fn fsync_failed(path: &Path, e: io::Error) -> ! {
    tracing::error!(path = %path.display(), error = %e,
        "fsync failed; data may be lost. Stopping so recovery can check the disk at restart");
    eprintln!("custos: fsync of {} failed: {e}; aborting", path.display());
    std::process::abort();
}

/// SHA-256 and length of a file.
pub fn hash_file(path: &Path) -> Result<(u64, [u8; 32])> {
    let mut f = File::open(path).map_err(|e| Error::io("cannot read", path, e))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io("cannot read", path, e))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hash.finalize().into()))
}

/// Absolute path of a segment.
pub fn absolute(root: &Path, rel: &str) -> PathBuf {
    root.join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_by_zone_camera_and_utc_day() {
        // 2026-11-22T10:15:00.123Z
        let t = 1_795_342_500_123_000;
        assert_eq!(
            segment_path("yard", "gate-1", t).unwrap(),
            "yard/gate-1/2026-11-22/20261122T101500.123Z.mp4"
        );
    }
}
