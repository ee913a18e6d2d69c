//! The inboxes' quarantines: what is in them and why, and putting a file
//! back into its inbox to be examined again (`custosctl inbox retry`).
//! Nothing here deletes a quarantined file: it leaves only by `retry`.

use std::fs;
use std::path::{Path, PathBuf};

use super::{REASON_SUFFIX, store};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::storage;

/// A quarantined file and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Quarantined {
    pub quarantine: PathBuf,
    /// Relative to the quarantine directory.
    pub file: String,
    pub reason: String,
}

/// Every quarantined file of the configured inboxes.
pub fn quarantined(config: &Config) -> Vec<Quarantined> {
    let mut out = Vec::new();
    for inbox in &config.inboxes {
        let mut files = Vec::new();
        list_files(&inbox.quarantine, "", &mut files);
        for rel in files {
            if rel.ends_with(REASON_SUFFIX) {
                continue;
            }
            let reason_path = inbox.quarantine.join(format!("{rel}{REASON_SUFFIX}"));
            let reason = fs::read_to_string(&reason_path)
                .ok()
                .and_then(|t| t.lines().next().map(str::to_owned))
                .unwrap_or_else(|| "(no reason file)".to_owned());
            out.push(Quarantined {
                quarantine: inbox.quarantine.clone(),
                file: rel,
                reason,
            });
        }
    }
    out
}

fn list_files(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = format!("{prefix}{name}");
        match e.file_type() {
            Ok(t) if t.is_dir() => list_files(&e.path(), &format!("{rel}/"), out),
            Ok(t) if t.is_file() => out.push(rel),
            _ => {}
        }
    }
    out.sort();
}

/// Moves a quarantined file back into its inbox (at the place it came
/// from) to be examined again, and removes its reason file. `file` is as
/// [`quarantined`] lists it.
pub fn retry(config: &Config, file: &str) -> Result<PathBuf> {
    if file
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
        || file.ends_with(REASON_SUFFIX)
    {
        return Err(Error::invalid(format!(
            "\"{file}\" is not a quarantined file; give it as `custosctl inbox status` lists it"
        )));
    }
    for inbox in &config.inboxes {
        let from = inbox.quarantine.join(file);
        if !from.is_file() {
            continue;
        }
        let reason = inbox.quarantine.join(format!("{file}{REASON_SUFFIX}"));
        let back = fs::read_to_string(&reason)
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("file: ").map(str::to_owned))
            })
            .unwrap_or_else(|| file.to_owned());
        if back.split('/').any(|p| p.is_empty() || p == "..") {
            return Err(Error::invalid(format!(
                "{} names no file of the inbox",
                reason.display()
            )));
        }
        let to = inbox.path.join(&back);
        if to.exists() {
            return Err(Error::conflict(format!(
                "{} exists already; move it away first",
                to.display()
            )));
        }
        if let Some(dir) = to.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        }
        move_file(&from, &to)?;
        let _ = fs::remove_file(&reason);
        storage::fsync_dir(from.parent().unwrap_or(&inbox.quarantine));
        return Ok(to);
    }
    Err(Error::not_found(format!(
        "no quarantined file \"{file}\"; `custosctl inbox status` lists them"
    )))
}

/// Renames, or copies and unlinks across file systems.
pub(super) fn move_file(from: &Path, to: &Path) -> Result<()> {
    match fs::rename(from, to) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            store::copy_hashed(from, to)?;
            fs::remove_file(from).map_err(|e| Error::io("cannot remove", from, e))?;
        }
        Err(e) => return Err(Error::io("cannot move", from, e)),
    }
    if let Some(dir) = to.parent() {
        storage::fsync_dir(dir);
    }
    if let Some(dir) = from.parent() {
        storage::fsync_dir(dir);
    }
    Ok(())
}
