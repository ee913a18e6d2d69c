//! Keeping a device file: the bytes copied unaltered into the storage
//! layout, hashed while copying, made durable, indexed, and only then
//! removed from the inbox. The order, and what a crash at each step
//! leaves (docs/design/inbox.md):
//!
//! 1. copy to `<root>/.inbox-staging/`, hashing; fsync. Crash: a staging
//!    file (cleared at start), the inbox file untouched.
//! 2. the same hash already stored: the staging copy and the inbox file go
//!    (the bytes are kept once).
//! 3. audit entry, then the segment row (`recording`) and the device-file
//!    row (storing) in one transaction. Crash: recovery sees the storing
//!    row with no file in place, drops both rows; the inbox file is there.
//! 4. rename into the layout; fsync the directories. Crash: recovery finds
//!    the file in place with the row's hash and completes the rows.
//! 5. complete both rows in one transaction.
//! 6. unlink the inbox file; fsync its directory. Crash before: the next
//!    pass finds the inbox file's hash stored and removes it.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::index::{SegmentId, SegmentRow, SegmentSummary, SharedIndex};
use crate::storage;

/// The staging directory of a storage root: on the root's file system, so
/// the final step is a rename; outside every zone's directory.
pub const STAGING_DIR: &str = ".inbox-staging";

pub fn staging_dir(root: &Path) -> PathBuf {
    root.join(STAGING_DIR)
}

/// Opens an inbox file for reading without following a symbolic link: a
/// link swapped in after the listing must not make the daemon read (and
/// store, or report on) a file its writer could not read.
pub fn open_no_follow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// Copies `from` to a new file `to` (mode 0600), fsynced, returning its
/// length and SHA-256.
pub fn copy_hashed(from: &Path, to: &Path) -> Result<(u64, [u8; 32])> {
    let mut src = open_no_follow(from).map_err(|e| Error::io("cannot read", from, e))?;
    let mut dst = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(storage::FILE_MODE)
        .open(to)
        .map_err(|e| Error::io("cannot create", to, e))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = src
            .read(&mut buf)
            .map_err(|e| Error::io("cannot read", from, e))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        dst.write_all(&buf[..n])
            .map_err(|e| Error::io("cannot write", to, e))?;
        total += n as u64;
    }
    storage::fsync_file(&dst, to);
    Ok((total, hash.finalize().into()))
}

/// Clears what a crash left in a root's staging directory (no row ever
/// names a staging file), creating it if missing.
pub fn clear_staging(root: &Path) -> Result<()> {
    let dir = staging_dir(root);
    storage::create_private_dir_all(&dir)?;
    for entry in fs::read_dir(&dir).map_err(|e| Error::io("cannot list", &dir, e))? {
        let p = entry.map_err(|e| Error::io("cannot list", &dir, e))?.path();
        fs::remove_file(&p).map_err(|e| Error::io("cannot remove", &p, e))?;
        tracing::info!(file = %p.display(), "removed a staging copy a crash left; its inbox file is taken again");
    }
    storage::fsync_dir(&dir);
    Ok(())
}

/// Finishes or undoes a device file a crash cut off (its segment row is
/// `recording`, its device-file row storing): completed if its file is in
/// place with the recorded hash, else both rows are dropped (the inbox
/// file was not yet removed, so it is taken again).
pub fn recover(
    index: &SharedIndex,
    row: &SegmentRow,
    path: &Path,
    sha256: &[u8; 32],
) -> Result<bool> {
    let id = SegmentId(row.id);
    let whole = match storage::hash_file(path) {
        Ok((bytes, sha)) if &sha == sha256 => Some(bytes),
        Ok(_) => {
            return Err(Error::internal(format!(
                "{} is in place but its hash differs from the one recorded while copying; left \
                 as is for an administrator (the inbox still holds the original)",
                path.display()
            )));
        }
        Err(e) if e.message.contains("No such file") || !path.exists() => None,
        Err(e) => return Err(e),
    };
    let Some(bytes) = whole else {
        index.lock().drop_storing_device_file(id)?;
        return Ok(false);
    };
    let c = super::validate::content(path).map_err(Error::internal)?;
    let summary = SegmentSummary {
        end_us: row.start_us + c.duration_us,
        bytes,
        frames: c.frames,
        key_frames: c.key_frames,
        video_codec: c.video_codec,
        audio_codec: c.audio_codec,
        sha256: *sha256,
        recovered: true,
        activity: c.activity,
    };
    index.lock().complete_device_file(id, &summary)?;
    Ok(true)
}
