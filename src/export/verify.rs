//! Offline verification of an export package: no daemon, no index, only the
//! files and (optionally) the public key the recipient was given.
//!
//! Every problem is reported against the file it concerns, and checking goes
//! on after the first one, so a recipient learns everything that is wrong.
//!
//! A package may be hostile. So every file is looked at (`lstat`) before it
//! is opened, and only a regular file is opened, with `O_NOFOLLOW` and
//! `O_NONBLOCK`, then checked again (`fstat`, same inode): a symlink is never
//! followed, a FIFO or device never opened for reading (no hang, no endless
//! stream). The manifest and signature are read into memory only up to
//! [`MAX_MANIFEST_BYTES`] and [`MAX_SIGNATURE_BYTES`]; clips are hashed as a
//! stream, and only once their size matches the manifest's.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use super::key;
use super::manifest::{self, MANIFEST_FILE, Manifest, SIGNATURE_FILE};
use crate::{Error, Result};

/// The largest `manifest.json` read: far above the few hundred bytes per
/// source segment of a long export, far below what could exhaust memory.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// The largest `manifest.sig` read; its canonical form is 240 bytes.
pub const MAX_SIGNATURE_BYTES: u64 = 4096;

/// A problem with one file of a package.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub file: String,
    pub message: String,
}

/// What [`verify`] found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    /// Fingerprint of the key the signature was checked against.
    pub key_fingerprint: Option<String>,
    /// Whether that key was given by the caller (true) or taken from the
    /// manifest itself (which proves integrity, not origin).
    pub key_given: bool,
    pub files_checked: usize,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the package in `dir`: the signature of the manifest (against
/// `public_key`, or the key the manifest names), then every listed file's
/// size and SHA-256, and that no unlisted file is present.
pub fn verify(dir: &Path, public_key: Option<&VerifyingKey>) -> Result<VerifyReport> {
    check(dir, public_key, &[])
}

/// [`verify`] for a package just received, whose files' sizes and SHA-256
/// were taken as they arrived (`custosctl export`): those files are not
/// read back; everything else is checked as [`verify`] does.
pub fn verify_received(
    dir: &Path,
    public_key: Option<&VerifyingKey>,
    received: &[super::stream::ReceivedFile],
) -> Result<VerifyReport> {
    check(dir, public_key, received)
}

fn check(
    dir: &Path,
    public_key: Option<&VerifyingKey>,
    known: &[super::stream::ReceivedFile],
) -> Result<VerifyReport> {
    if !dir.is_dir() {
        return Err(Error::not_found(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let mut problems = Vec::new();
    let mut problem = |file: &str, message: String| {
        problems.push(Problem {
            file: file.into(),
            message,
        })
    };
    let manifest_bytes = read(dir, MANIFEST_FILE, MAX_MANIFEST_BYTES, &mut problem);
    let sig_bytes = read(dir, SIGNATURE_FILE, MAX_SIGNATURE_BYTES, &mut problem);
    let manifest: Option<Manifest> = manifest_bytes.as_ref().and_then(|b| {
        serde_json::from_slice(b)
            .map_err(|e| problem(MANIFEST_FILE, format!("not a valid manifest: {e}")))
            .ok()
    });
    let embedded = manifest.as_ref().and_then(|m| {
        key::parse_public(&m.public_key)
            .map_err(|e| problem(MANIFEST_FILE, e.message))
            .ok()
    });
    let key_given = public_key.is_some();
    let key = public_key.copied().or(embedded);
    if let (Some(given), Some(embedded)) = (public_key, embedded)
        && *given != embedded
    {
        problem(
            MANIFEST_FILE,
            format!(
                "names key {}, not the key given ({})",
                key::fingerprint(&embedded),
                key::fingerprint(given)
            ),
        );
    }

    if let (Some(mb), Some(sb)) = (&manifest_bytes, &sig_bytes) {
        match manifest::parse_signature(sb) {
            None => problem(
                SIGNATURE_FILE,
                "damaged: not a Custos manifest signature in its exact form".into(),
            ),
            Some(sig) => {
                let hashed: [u8; 32] = Sha256::digest(mb).into();
                let good = key
                    .is_some_and(|k| key::verify(&k, mb, &Signature::from_bytes(&sig.signature)));
                if hashed != sig.manifest_sha256 {
                    if good {
                        problem(
                            SIGNATURE_FILE,
                            "damaged: its manifest hash line was changed".into(),
                        );
                    } else {
                        problem(
                            MANIFEST_FILE,
                            "changed since it was signed: the signature does not match".into(),
                        );
                    }
                } else if !good && key.is_some() {
                    problem(
                        SIGNATURE_FILE,
                        "the signature does not verify with the key (the signature was \
                         changed, or the package was signed by another key)"
                            .into(),
                    );
                }
            }
        }
    }

    let mut files_checked = 0;
    if let Some(m) = &manifest {
        let mut listed = vec![MANIFEST_FILE.to_string(), SIGNATURE_FILE.to_string()];
        for f in &m.files {
            listed.push(f.name.clone());
            if f.name.contains('/') || f.name.starts_with('.') {
                problem(&f.name, "listed with an unsafe name".into());
                continue;
            }
            files_checked += 1;
            let (bytes, sha) = match known.iter().find(|k| k.name == f.name) {
                Some(k) => (k.bytes, k.sha256),
                None => match hash(dir, &f.name, f.bytes) {
                    Ok(found) => found,
                    Err(message) => {
                        problem(&f.name, message);
                        continue;
                    }
                },
            };
            if bytes != f.bytes {
                problem(
                    &f.name,
                    format!("is {bytes} bytes, the manifest says {}", f.bytes),
                );
            } else if hex::encode(sha) != f.sha256 {
                problem(
                    &f.name,
                    "has been changed: its SHA-256 differs from the manifest's".into(),
                );
            }
        }
        if let Ok(entries) = fs::read_dir(dir) {
            let mut extra: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !listed.contains(n))
                .collect();
            extra.sort();
            for name in extra {
                problem(&name, "is not listed in the manifest".into());
            }
        }
    }
    Ok(VerifyReport {
        key_fingerprint: key.as_ref().map(key::fingerprint),
        key_given,
        files_checked,
        problems,
    })
}

/// Reads `name` whole if it is a regular file of at most `limit` bytes.
fn read(
    dir: &Path,
    name: &str,
    limit: u64,
    problem: &mut impl FnMut(&str, String),
) -> Option<Vec<u8>> {
    let result = open_regular(dir, name).and_then(|(f, len)| {
        if len > limit {
            return Err(format!(
                "is {len} bytes, more than the {limit} a Custos package's {name} can be: \
                 not read"
            ));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        // The file may grow after fstat; never read more than the limit.
        f.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot be read: {e}"))?;
        if bytes.len() as u64 > limit {
            return Err(format!("grew past {limit} bytes while it was read"));
        }
        Ok(bytes)
    });
    result.map_err(|m| problem(name, m)).ok()
}

/// Size and SHA-256 of the regular file `name`. A size other than
/// `expected` is returned without hashing (with a zero hash, never
/// compared): the size alone shows it differs, and a huge file is not read.
fn hash(dir: &Path, name: &str, expected: u64) -> std::result::Result<(u64, [u8; 32]), String> {
    let (mut f, len) = open_regular(dir, name)?;
    if len != expected {
        return Ok((len, [0; 32]));
    }
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("cannot be read: {e}"))?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, sha.finalize().into()))
}

/// Opens `dir/name` for reading only if it is a regular file, and returns it
/// with its size. Anything else gets a sentence saying what it is.
fn open_regular(dir: &Path, name: &str) -> std::result::Result<(File, u64), String> {
    let path = dir.join(name);
    let seen = fs::symlink_metadata(&path).map_err(|e| format!("cannot be read: {e}"))?;
    let ft = seen.file_type();
    if !ft.is_file() {
        let what = if ft.is_symlink() {
            "a symbolic link (not followed)"
        } else if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "of an unknown type"
        };
        return Err(format!(
            "is {what}; a package holds only regular files: not read"
        ));
    }
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| format!("cannot be read: {e}"))?;
    let meta = f.metadata().map_err(|e| format!("cannot be read: {e}"))?;
    if !meta.file_type().is_file() || meta.dev() != seen.dev() || meta.ino() != seen.ino() {
        return Err("was replaced while it was checked: not read".into());
    }
    Ok((f, meta.len()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::export::NodeKey;
    use crate::export::manifest::*;

    fn instant(unix_us: i64) -> Instant {
        Instant {
            unix_us,
            utc: String::new(),
            local: String::new(),
        }
    }

    /// A signed package in `dir` of one clip, `clip.mp4`, with `content`.
    fn package(dir: &Path, content: &[u8]) -> NodeKey {
        let key_dir = tempfile::tempdir().unwrap();
        let key = NodeKey::load_or_create(key_dir.path()).unwrap();
        fs::write(dir.join("clip.mp4"), content).unwrap();
        let range = Range {
            from: instant(0),
            to: instant(1),
            duration_us: 1,
        };
        let m = Manifest {
            format: "custos-export-v1".into(),
            software: Software {
                name: "custos".into(),
                version: "0".into(),
            },
            controller: ControllerInfo {
                name: String::new(),
                registration_code: String::new(),
                address: String::new(),
                email: String::new(),
            },
            case: None,
            recipient: "r".into(),
            reason: "r".into(),
            legal_basis: "r".into(),
            recorded_under: Vec::new(),
            exporter: Exporter {
                user: "u".into(),
                uid: 1,
            },
            exported_at: instant(2),
            camera: CameraInfo {
                id: "c".into(),
                name: "c".into(),
                zone: "z".into(),
                zone_name: "z".into(),
                area: "a".into(),
            },
            requested: range.clone(),
            actual: range,
            gaps: vec![],
            time: TimeInfo {
                timezone: "UTC".into(),
                sources: vec![],
                max_clock_offset_us: None,
                corrections: vec![],
            },
            sources: vec![],
            files: vec![OutputFile {
                name: "clip.mp4".into(),
                bytes: content.len() as u64,
                sha256: hex::encode(Sha256::digest(content)),
                from: None,
                to: None,
                video_frames: None,
                audio_frames: None,
            }],
            public_key: hex::encode(key.public().as_bytes()),
            key_fingerprint: key::fingerprint(&key.public()),
            redaction: None,
        };
        let bytes = serde_json::to_vec_pretty(&m).unwrap();
        let sig = key.sign(&bytes).to_bytes();
        fs::write(dir.join(MANIFEST_FILE), &bytes).unwrap();
        fs::write(dir.join(SIGNATURE_FILE), render_signature(&bytes, &sig)).unwrap();
        key
    }

    /// Verifies `dir` on a thread, failing (not hanging) if it takes more
    /// than a few seconds.
    fn verify_soon(dir: &Path) -> VerifyReport {
        let (tx, rx) = mpsc::channel();
        let dir = dir.to_owned();
        std::thread::spawn(move || tx.send(verify(&dir, None).unwrap()));
        rx.recv_timeout(Duration::from_secs(20))
            .expect("verify hung on a hostile package")
    }

    fn problem_of<'a>(r: &'a VerifyReport, file: &str) -> &'a str {
        r.problems
            .iter()
            .find(|p| p.file == file)
            .map(|p| p.message.as_str())
            .unwrap_or_else(|| panic!("no problem reported for {file}: {:?}", r.problems))
    }

    #[test]
    fn a_package_made_here_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let key = package(dir.path(), b"not really an mp4");
        let r = verify(dir.path(), Some(&key.public())).unwrap();
        assert!(r.ok(), "{:?}", r.problems);
        assert_eq!(r.files_checked, 1);
    }

    #[test]
    fn a_huge_manifest_is_refused_without_being_read() {
        for len in [MAX_MANIFEST_BYTES + 1, 10 << 30] {
            let dir = tempfile::tempdir().unwrap();
            package(dir.path(), b"clip");
            // Sparse: costs no disk, and would cost `len` of memory if read.
            File::options()
                .write(true)
                .open(dir.path().join(MANIFEST_FILE))
                .unwrap()
                .set_len(len)
                .unwrap();
            let r = verify_soon(dir.path());
            let m = problem_of(&r, MANIFEST_FILE);
            assert!(m.contains(&format!("is {len} bytes, more than")), "{m}");
        }
    }

    #[test]
    fn a_fifo_or_device_named_as_a_clip_is_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        package(dir.path(), b"clip");
        let clip = dir.path().join("clip.mp4");
        fs::remove_file(&clip).unwrap();
        nix::unistd::mkfifo(&clip, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let r = verify_soon(dir.path());
        assert!(problem_of(&r, "clip.mp4").contains("is a FIFO"), "{r:?}");

        // /dev/zero's numbers: an endless stream if it were read.
        fs::remove_file(&clip).unwrap();
        nix::sys::stat::mknod(
            &clip,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o644),
            nix::sys::stat::makedev(1, 5),
        )
        .unwrap();
        let r = verify_soon(dir.path());
        assert!(problem_of(&r, "clip.mp4").contains("is a device"), "{r:?}");
    }

    #[test]
    fn symlinks_in_a_package_are_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        package(dir.path(), b"clip");
        let clip = dir.path().join("clip.mp4");
        fs::rename(&clip, elsewhere.path().join("clip.mp4")).unwrap();
        // Even a link to the right content is refused: verify reports on the
        // package as received, and a link can be re-pointed after the check.
        symlink(elsewhere.path().join("clip.mp4"), &clip).unwrap();
        let r = verify_soon(dir.path());
        assert!(
            problem_of(&r, "clip.mp4").contains("symbolic link (not followed)"),
            "{r:?}"
        );
        fs::remove_file(&clip).unwrap();
        symlink("/etc/shadow", &clip).unwrap();
        let r = verify_soon(dir.path());
        assert!(
            problem_of(&r, "clip.mp4").contains("symbolic link (not followed)"),
            "{r:?}"
        );

        // The manifest itself.
        let m = dir.path().join(MANIFEST_FILE);
        fs::rename(&m, elsewhere.path().join(MANIFEST_FILE)).unwrap();
        symlink(elsewhere.path().join(MANIFEST_FILE), &m).unwrap();
        let r = verify_soon(dir.path());
        assert!(
            problem_of(&r, MANIFEST_FILE).contains("symbolic link (not followed)"),
            "{r:?}"
        );
    }
}
