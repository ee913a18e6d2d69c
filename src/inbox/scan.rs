//! Finding files in an inbox and telling which device each is from: the
//! inbox's fixed device, the file-name pattern's `{serial}`/`{device}`, or
//! the sub-directory named by a device id. A file whose device cannot be
//! told is not guessed at: it is quarantined with the reason.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::config::{Config, Device, Inbox};

/// A regular file found in an inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    /// Relative to the inbox, with `/` between parts.
    pub rel: String,
    pub size: u64,
    pub mtime_ns: i128,
    pub uid: u32,
    /// A symbolic link (never followed: it is quarantined as it is).
    pub symlink: bool,
}

/// Every regular file and symbolic link of the inbox and its
/// sub-directories (one level), except hidden ones (a copy in progress under a temporary dot-name, as
/// rsync writes them).
pub fn list(inbox: &Inbox) -> std::io::Result<Vec<Found>> {
    let mut out = Vec::new();
    walk(&inbox.path, "", 0, &mut out)?;
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, depth: u32, out: &mut Vec<Found>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            tracing::warn!(dir = %dir.display(), "an inbox entry whose name is not UTF-8 is left alone");
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue; // gone meanwhile
        };
        let rel = format!("{prefix}{name}");
        if meta.is_dir() && depth == 0 {
            walk(&path, &format!("{rel}/"), depth + 1, out)?;
        } else if meta.is_file() || meta.file_type().is_symlink() {
            out.push(Found {
                path,
                rel,
                size: meta.len(),
                mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
                uid: meta.uid(),
                symlink: meta.file_type().is_symlink(),
            });
        }
    }
    Ok(())
}

/// Whether some process has `path` open for writing (a copy still going,
/// paused for longer than the settle time), told by the kernel: a read
/// lease cannot be taken on a file open for writing anywhere (fcntl(2),
/// F_SETLEASE). `None` when the kernel cannot tell: the daemon neither owns
/// the file nor holds CAP_LEASE, or the file system keeps no leases (NFS,
/// FUSE); the settle time then stands alone.
pub fn open_for_writing(path: &Path) -> Option<bool> {
    // <asm-generic/fcntl.h>; the libc crate defines it for musl only.
    const F_SETSIG: libc::c_int = 10;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let fd = file.as_raw_fd();
    // A writer opening the file in the moment the lease is held breaks it
    // with a signal to this process. SIGURG is ignored by default, where
    // the default SIGIO would end the daemon; the lease is let go at once,
    // so the writer waits microseconds, not the lease-break time.
    // SAFETY: fcntl on a descriptor this function owns, with integer args.
    unsafe {
        if libc::fcntl(fd, F_SETSIG, libc::SIGURG) != 0 {
            return None;
        }
        if libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) == 0 {
            libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK);
            return Some(false);
        }
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN) => Some(true),
        _ => None,
    }
}

/// What a file's name and place say about it.
#[derive(Debug, Clone)]
pub struct Placed<'c> {
    pub device: &'c Device,
    /// The time the file name gives, as civil time in the device's zone.
    pub name_time: Option<jiff::civil::DateTime>,
}

/// Which device a file is from, and the time its name gives; `Err` says why
/// it cannot be told.
pub fn place<'c>(config: &'c Config, inbox: &Inbox, rel: &str) -> Result<Placed<'c>, String> {
    let (dir, name) = match rel.rsplit_once('/') {
        Some((d, n)) => (Some(d), n),
        None => (None, rel),
    };
    let fields = match &inbox.pattern {
        Some(p) => Some(match_pattern(p, name).ok_or_else(|| {
            format!("the file name \"{name}\" does not match the inbox's pattern \"{p}\"")
        })?),
        None => None,
    };
    let fields = fields.unwrap_or_default();
    let by_name = if let Some(serial) = &fields.serial {
        Some(
            config
                .devices
                .iter()
                .find(|d| &d.serial == serial)
                .ok_or_else(|| {
                    format!("no [[device]] has serial \"{serial}\" (from the file name)")
                })?,
        )
    } else if let Some(id) = &fields.device {
        Some(
            config
                .device(id)
                .ok_or_else(|| format!("no [[device]] has id \"{id}\" (from the file name)"))?,
        )
    } else {
        None
    };
    let device = match (&inbox.device, by_name, dir) {
        (Some(id), named, _) => {
            let d = config
                .device(id)
                .ok_or_else(|| format!("the inbox's device \"{id}\" is not configured"))?;
            if let Some(n) = named
                && n.id != d.id
            {
                return Err(format!(
                    "the file name names device \"{}\", but every file of this inbox is from \"{}\"",
                    n.id, d.id
                ));
            }
            d
        }
        (None, Some(d), _) => d,
        (None, None, Some(dir)) => config.device(dir).ok_or_else(|| {
            format!("no [[device]] has id \"{dir}\" (the sub-directory the file is in)")
        })?,
        (None, None, None) => {
            return Err(
                "the file lies at the top of an inbox with no device and no pattern naming one; \
                 put it in the sub-directory named by its device's id"
                    .to_owned(),
            );
        }
    };
    let name_time = match (fields.date, fields.time) {
        (Some(d), Some(t)) => Some(d.to_datetime(t)),
        (Some(d), None) => Some(d.to_datetime(jiff::civil::Time::midnight())),
        _ => None,
    };
    Ok(Placed { device, name_time })
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Fields {
    serial: Option<String>,
    device: Option<String>,
    date: Option<jiff::civil::Date>,
    time: Option<jiff::civil::Time>,
}

/// Matches a file name against a pattern (checked by the config), trying
/// the shortest text for each free placeholder first.
fn match_pattern(pattern: &str, name: &str) -> Option<Fields> {
    let mut fields = Fields::default();
    if go(pattern, name, &mut fields) {
        Some(fields)
    } else {
        None
    }
}

fn go(p: &str, s: &str, f: &mut Fields) -> bool {
    if p.is_empty() {
        return s.is_empty();
    }
    if let Some(rest) = p.strip_prefix("{YYYYMMDD}") {
        let Some(digits) = s.get(..8).filter(|d| d.bytes().all(|b| b.is_ascii_digit())) else {
            return false;
        };
        let Ok(date) = jiff::civil::Date::strptime("%Y%m%d", digits) else {
            return false;
        };
        f.date = Some(date);
        return go(rest, &s[8..], f);
    }
    if let Some(rest) = p.strip_prefix("{HHMMSS}") {
        let Some(digits) = s.get(..6).filter(|d| d.bytes().all(|b| b.is_ascii_digit())) else {
            return false;
        };
        let Ok(time) = jiff::civil::Time::strptime("%H%M%S", digits) else {
            return false;
        };
        f.time = Some(time);
        return go(rest, &s[6..], f);
    }
    for (field, slot) in [("{serial}", 0), ("{device}", 1), ("{any}", 2)] {
        if let Some(rest) = p.strip_prefix(field) {
            for (i, _) in s.char_indices().skip(1).chain([(s.len(), ' ')]) {
                let mut g = f.clone();
                match slot {
                    0 => g.serial = Some(s[..i].to_owned()),
                    1 => g.device = Some(s[..i].to_owned()),
                    _ => {}
                }
                if go(rest, &s[i..], &mut g) {
                    *f = g;
                    return true;
                }
            }
            return false;
        }
    }
    let c = p.chars().next().unwrap_or_default();
    match s.strip_prefix(c) {
        Some(s_rest) => go(&p[c.len_utf8()..], s_rest, f),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_give_serial_and_civil_time() {
        let f = match_pattern(
            "{serial}_{YYYYMMDD}_{HHMMSS}.mp4",
            "DC_0512_20261122_101500.mp4",
        )
        .unwrap();
        assert_eq!(f.serial.as_deref(), Some("DC_0512"));
        assert_eq!(f.date, Some(jiff::civil::date(2026, 11, 22)));
        assert_eq!(f.time, Some(jiff::civil::time(10, 15, 0, 0)));
        assert!(
            match_pattern("{serial}_{YYYYMMDD}_{HHMMSS}.mp4", "DC_20261399_101500.mp4").is_none()
        );
        assert!(match_pattern("{any}.MOV", "x.mp4").is_none());
        assert_eq!(
            match_pattern("{device}-{any}.mp4", "bwc-07-a.mp4")
                .unwrap()
                .device
                .as_deref(),
            Some("bwc")
        );
    }
}
