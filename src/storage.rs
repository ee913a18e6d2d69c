//! Recording files on disk: where a segment lives, and the fsync discipline
//! that keeps files and index rows in agreement after a crash.
//!
//! Layout: `<root>/<zone>/<camera>/<YYYY-MM-DD>/<YYYYMMDDTHHMMSS.mmmZ>.mp4`,
//! dates and times in UTC. See docs/design/storage.md for the write order.
//!
//! Footage is the daemon's alone (docs/design/security.md): every directory
//! is created 0700 and every file 0600, set at creation whatever umask the
//! process inherited, so no group membership reaches a recording around the
//! API's roles and audit.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every directory the daemon creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file the daemon creates (evidence copies end read-only).
pub const FILE_MODE: u32 = 0o600;

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
        .mode(FILE_MODE)
        .open(&path)
        .map_err(|e| Error::io("cannot create segment file", &path, e))
}

/// Creates the directories of segment `rel` under `root` durably, for a
/// file that arrives by rename (device files, `crate::inbox`).
pub fn create_segment_dirs(root: &Path, rel: &str) -> Result<()> {
    match root.join(rel).parent() {
        Some(dir) => create_dirs_durably(root, dir),
        None => Ok(()),
    }
}

/// Creates `dir` and its missing parents with [`DIR_MODE`].
pub fn create_private_dir_all(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|e| Error::io("cannot create directory", dir, e))
}

/// Creates `dir` (and parents) with [`DIR_MODE`], or, if it exists with
/// access for group or others (an older install, or made by hand), takes
/// that access away. Returns the mode it had when it was changed.
pub fn make_private_dir(dir: &Path) -> Result<Option<u32>> {
    if !dir.exists() {
        create_private_dir_all(dir)?;
        return Ok(None);
    }
    close_to_others(dir)
}

/// Takes group and other access from an existing file or directory, keeping
/// the owner's. Returns the mode it had when it was changed.
pub fn close_to_others(path: &Path) -> Result<Option<u32>> {
    let mode = fs::metadata(path)
        .map_err(|e| Error::io("cannot read", path, e))?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o700)).map_err(|e| {
        Error::io(
            &format!("cannot take group and other access (mode {mode:04o}) from"),
            path,
            e,
        )
    })?;
    Ok(Some(mode))
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
    create_private_dir_all(dir)?;
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

/// A file that hashes and counts what is written to it, so a finished
/// segment's SHA-256 needs no second read.
pub struct HashingFile {
    file: File,
    hash: Sha256,
    bytes: u64,
}

impl HashingFile {
    pub fn new(file: File) -> Self {
        HashingFile {
            file,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    pub fn finish(self) -> (File, u64, [u8; 32]) {
        (self.file, self.bytes, self.hash.finalize().into())
    }
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    /// One `writev(2)`; hashes exactly the bytes it wrote.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.file.write_vectored(bufs)?;
        let mut left = n;
        for b in bufs {
            let k = left.min(b.len());
            self.hash.update(&b[..k]);
            left -= k;
            if left == 0 {
                break;
            }
        }
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
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
