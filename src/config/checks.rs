//! Checks of directories on disk: storage roots, the evidence directory and
//! the state directory. They only look (stat, statvfs and access(2));
//! nothing is created here, so `check-config` never changes the machine.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::unistd::{AccessFlags, access, geteuid};

/// What is wrong with a directory, if anything; `Ok(Some(warning))` for a
/// directory that works but is probably not what was meant.
pub(crate) fn check_dir(path: &Path, create: bool) -> Result<Option<String>, String> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            writable(path)?;
            if !create && on_root_filesystem(&meta) {
                return Ok(Some(format!(
                    "{} is on the root filesystem although create = false; if a dedicated disk \
                     should be mounted here, it is not mounted (check: findmnt {})",
                    path.display(),
                    path.display()
                )));
            }
            Ok(None)
        }
        Ok(_) => Err(format!(
            "{} is not a directory; point path at a directory",
            path.display()
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !create {
                return Err(format!(
                    "{} does not exist; if it is the mount point of a dedicated disk, the disk may \
                     not be mounted (check: findmnt {}); if it should simply be created, set create = true",
                    path.display(),
                    path.display()
                ));
            }
            let ancestor = path
                .ancestors()
                .skip(1)
                .find(|a| a.exists())
                .unwrap_or(Path::new("/"));
            match std::fs::metadata(ancestor) {
                Ok(m) if m.is_dir() => writable(ancestor).map_err(|e| {
                    format!(
                        "{} does not exist and cannot be created: {e}",
                        path.display()
                    )
                })?,
                Ok(_) => {
                    return Err(format!(
                        "{} cannot be created: {} is not a directory",
                        path.display(),
                        ancestor.display()
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "{} cannot be created: {}: {e}",
                        path.display(),
                        ancestor.display()
                    ));
                }
            }
            Ok(None)
        }
        Err(e) => Err(format!("{} cannot be checked: {e}", path.display())),
    }
}

/// Whether the effective user may create files in `dir`.
fn writable(dir: &Path) -> Result<(), String> {
    access(dir, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|e| {
        let uid = geteuid();
        let who = nix::unistd::User::from_uid(uid).ok().flatten().map_or_else(
            || format!("uid {uid}"),
            |u| format!("user {} (uid {uid})", u.name),
        );
        format!(
            "{} is not writable by {who}: {}; give that user write access (e.g. chown it to the \
             account custosd runs as)",
            dir.display(),
            io::Error::from(e)
        )
    })
}

fn on_root_filesystem(meta: &std::fs::Metadata) -> bool {
    std::fs::metadata("/").is_ok_and(|root| root.dev() == meta.dev())
}

/// A `min_free` reserve the filesystem holding `path` can meet: one as large
/// as the filesystem would have the reaper delete every unprotected
/// recording to reach it. A directory that cannot be read is reported by
/// [`check_dir`], so it passes here.
pub(crate) fn check_reserve(path: &Path, min_free: u64) -> Result<(), String> {
    let Ok(fs) = nix::sys::statvfs::statvfs(path) else {
        return Ok(());
    };
    let total = fs.blocks().saturating_mul(fs.fragment_size());
    if min_free >= total {
        return Err(format!(
            "{min_free} bytes is not less than the whole filesystem holding {} ({total} bytes); \
             the reaper would delete every unprotected recording to reach it: give less than \
             {total} bytes (a few percent of the disk is usual)",
            path.display()
        ));
    }
    Ok(())
}
