//! Offline verification of an export package: no daemon, no index, only the
//! files and (optionally) the public key the recipient was given.
//!
//! Every problem is reported against the file it concerns, and checking goes
//! on after the first one, so a recipient learns everything that is wrong.

use std::fs;
use std::path::Path;

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use super::key;
use super::manifest::{self, MANIFEST_FILE, Manifest, SIGNATURE_FILE};
use crate::{Error, Result};

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
    let manifest_bytes = read(dir, MANIFEST_FILE, &mut problem);
    let sig_bytes = read(dir, SIGNATURE_FILE, &mut problem);
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
            let path = dir.join(&f.name);
            let (bytes, sha) = match known.iter().find(|k| k.name == f.name) {
                Some(k) => (k.bytes, k.sha256),
                None => match crate::storage::hash_file(&path) {
                    Ok(found) => found,
                    Err(e) => {
                        problem(&f.name, format!("cannot be read: {}", e.message));
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

fn read(dir: &Path, name: &str, problem: &mut impl FnMut(&str, String)) -> Option<Vec<u8>> {
    fs::read(dir.join(name))
        .map_err(|e| problem(name, format!("cannot be read: {e}")))
        .ok()
}
