//! The node key: an Ed25519 key pair that signs export manifests.
//!
//! Invariants:
//! - The private key lives in `<state_dir>/node.key`, 32 raw bytes, mode
//!   0600, created once with `O_EXCL` and fsynced (file, then directory)
//!   before first use, so a crash never leaves two keys having signed.
//! - The public key is also written to `<state_dir>/node.pub` (hex, mode
//!   0644), so `custosctl key show` and recipients need no access to the
//!   private key.
//! - A key file of the wrong size or with group/other permissions is refused,
//!   never silently replaced: replacing it would orphan every signature made.
//! - It is opened without following symlinks and trusted only if it is a
//!   regular file owned by the user the process runs as: anyone else who
//!   could place or own it could have read or chosen the secret.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::{Error, ErrorKind, Result};

pub const KEY_FILE: &str = "node.key";
pub const PUBLIC_FILE: &str = "node.pub";

/// The node's signing key. Loaded once at start and held (cloned into the
/// audit writer and each export), never read from disk per request.
#[derive(Clone)]
pub struct NodeKey {
    signing: SigningKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(f, "NodeKey({})", fingerprint(&self.public()))
    }
}

impl NodeKey {
    /// Loads `<state_dir>/node.key`, generating it on first use.
    pub fn load_or_create(state_dir: &Path) -> Result<NodeKey> {
        let path = state_dir.join(KEY_FILE);
        // O_NOFOLLOW: a symlink planted in the state dir must not make the
        // daemon sign with (or reveal the size of) a file it points to.
        // O_NONBLOCK: a FIFO in its place must not hang the start.
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path);
        match opened {
            Ok(f) => Self::load(&f, &path, state_dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(state_dir, &path),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "{}: the node key is a symbolic link; it must be a regular file \
                     (restore node.key itself from backup in its place)",
                    path.display()
                ),
            )),
            Err(e) => Err(Error::io("cannot read node key", &path, e)),
        }
    }

    /// Checks the opened key file's premises (a regular file, owned by the
    /// user the daemon runs as, mode 0600 or stricter, 32 bytes) before
    /// trusting a byte of it.
    fn load(f: &fs::File, path: &Path, state_dir: &Path) -> Result<NodeKey> {
        let meta = f
            .metadata()
            .map_err(|e| Error::io("cannot stat", path, e))?;
        let refuse = |why: String| {
            Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("{}: {why}", path.display()),
            ))
        };
        if !meta.file_type().is_file() {
            return refuse("the node key is not a regular file".into());
        }
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me {
            return refuse(format!(
                "the node key is owned by uid {}, not by uid {me} that custos runs as; \
                 chown it to that user (and consider it compromised if you do not know why)",
                meta.uid()
            ));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return refuse(format!(
                "the node key is readable by others (mode {mode:o}); \
                 chmod 600 it and consider it compromised"
            ));
        }
        // One byte more than a key, so a longer file is told apart without
        // reading all of it.
        let mut bytes = Vec::with_capacity(33);
        f.take(33)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("cannot read node key", path, e))?;
        let secret: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            Error::internal(format!(
                "{}: {} bytes, an Ed25519 key has 32; restore it from backup",
                path.display(),
                meta.len()
            ))
        })?;
        let key = NodeKey {
            signing: SigningKey::from_bytes(&secret),
        };
        key.write_public(state_dir)?;
        Ok(key)
    }

    fn create(state_dir: &Path, path: &Path) -> Result<NodeKey> {
        let secret: [u8; 32] = rand::random();
        let mut f = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(f) => f,
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::thread::sleep(std::time::Duration::from_millis(50));
                return Self::load_or_create(state_dir);
            }
            Err(e) => return Err(Error::io("cannot create node key", path, e)),
        };
        f.write_all(&secret)
            .map_err(|e| Error::io("cannot write node key", path, e))?;
        crate::storage::fsync_file(&f, path);
        crate::storage::fsync_dir(state_dir);
        let key = NodeKey {
            signing: SigningKey::from_bytes(&secret),
        };
        key.write_public(state_dir)?;
        Ok(key)
    }

    fn write_public(&self, state_dir: &Path) -> Result<()> {
        let path = public_path(state_dir);
        let text = format!("{}\n", hex::encode(self.public().as_bytes()));
        if read_public_text(&path).ok().as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        // Unique, so two processes starting at once cannot trip on each other.
        let tmp = path.with_extension(format!("pub.{:016x}.tmp", rand::random::<u64>()));
        fs::write(&tmp, &text).map_err(|e| Error::io("cannot write", &tmp, e))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io("cannot chmod", &tmp, e))?;
        let f = fs::File::open(&tmp).map_err(|e| Error::io("cannot open", &tmp, e))?;
        crate::storage::fsync_file(&f, &tmp);
        fs::rename(&tmp, &path).map_err(|e| Error::io("cannot rename to", &path, e))?;
        crate::storage::fsync_dir(state_dir);
        Ok(())
    }

    pub fn public(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        self.signing.sign(message)
    }
}

/// Where the public half is published.
pub fn public_path(state_dir: &Path) -> PathBuf {
    state_dir.join(PUBLIC_FILE)
}

/// Reads the public key written by [`NodeKey::load_or_create`].
pub fn read_public(state_dir: &Path) -> Result<VerifyingKey> {
    let path = public_path(state_dir);
    let text = read_public_text(&path).map_err(|e| {
        Error::io(
            "cannot read the node's public key (custosd creates it at first start)",
            &path,
            e,
        )
    })?;
    parse_public(text.trim())
}

/// `node.pub`'s text, if it is a regular file of at most 1 KiB: read without
/// following a symlink or blocking on a FIFO, and never read whole if large.
fn read_public_text(path: &Path) -> std::io::Result<String> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.file_type().is_file() || meta.len() > 1024 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file of at most 1 KiB, as node.pub is",
        ));
    }
    let mut text = String::new();
    f.take(1024).read_to_string(&mut text)?;
    Ok(text)
}

/// A public key from its 64 hex digits.
pub fn parse_public(hex_text: &str) -> Result<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(hex_text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            Error::invalid(format!(
                "{hex_text:?} is not an Ed25519 public key: expected 64 hex digits"
            ))
        })?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| Error::invalid(format!("{hex_text:?} is not a valid Ed25519 public key")))
}

/// A short, readable digest of a public key for comparing by eye or phone:
/// the first 16 bytes of its SHA-256, in groups of four hex digits.
pub fn fingerprint(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..16])
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether `signature` is `key`'s signature of `message`.
pub fn verify(key: &VerifyingKey, message: &[u8], signature: &Signature) -> bool {
    key.verify(message, signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = NodeKey::load_or_create(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = NodeKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.public(), b.public());
        assert_eq!(read_public(dir.path()).unwrap(), a.public());
        let sig = a.sign(b"hello");
        assert!(verify(&b.public(), b"hello", &sig));
        assert!(!verify(&b.public(), b"hellp", &sig));
        assert_eq!(fingerprint(&a.public()).len(), 39);
    }

    #[test]
    fn a_key_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        NodeKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = NodeKey::load_or_create(dir.path()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::PermissionDenied);
    }

    #[test]
    fn a_key_that_is_a_symlink_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        NodeKey::load_or_create(elsewhere.path()).unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join(KEY_FILE), dir.path().join(KEY_FILE))
            .unwrap();
        let err = NodeKey::load_or_create(dir.path()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::PermissionDenied, "{err}");
        assert!(err.message.contains("symbolic link"), "{err}");
        // A dangling one is not "not found" either: nothing is created through it.
        let dangling = tempfile::tempdir().unwrap();
        let target = dangling.path().join("planted");
        std::os::unix::fs::symlink(&target, dangling.path().join(KEY_FILE)).unwrap();
        let err = NodeKey::load_or_create(dangling.path()).unwrap_err();
        assert!(err.message.contains("symbolic link"), "{err}");
        assert!(!target.exists());
    }

    #[test]
    fn a_key_owned_by_another_user_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        NodeKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        let other = nix::unistd::geteuid().as_raw() + 1;
        std::os::unix::fs::chown(&path, Some(other), None).unwrap();
        let err = NodeKey::load_or_create(dir.path()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::PermissionDenied, "{err}");
        assert!(
            err.message.contains(&format!("owned by uid {other}")),
            "{err}"
        );
    }

    #[test]
    fn a_fifo_or_directory_in_place_of_the_key_is_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let state_dir = dir.path().to_owned();
        std::thread::spawn(move || tx.send(NodeKey::load_or_create(&state_dir).unwrap_err()));
        let err = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("loading the key hung on a FIFO");
        assert!(err.message.contains("not a regular file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(KEY_FILE)).unwrap();
        let err = NodeKey::load_or_create(dir.path()).unwrap_err();
        assert!(err.message.contains("not a regular file"), "{err}");
    }

    #[test]
    fn a_key_of_the_wrong_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::write(&path, [7u8; 64]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = NodeKey::load_or_create(dir.path()).unwrap_err();
        assert!(err.message.contains("64 bytes"), "{err}");
    }

    #[test]
    fn a_fifo_in_place_of_the_public_key_neither_hangs_nor_survives() {
        let dir = tempfile::tempdir().unwrap();
        let public = public_path(dir.path());
        nix::unistd::mkfifo(&public, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let state_dir = dir.path().to_owned();
        std::thread::spawn(move || {
            let refused = read_public(&state_dir).unwrap_err();
            let key = NodeKey::load_or_create(&state_dir).map(|k| k.public());
            // The receiver is gone only if the test already failed.
            let _ = tx.send((refused, key));
        });
        let (refused, key) = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("reading node.pub hung on a FIFO");
        assert!(refused.message.contains("not a regular file"), "{refused}");
        // Starting replaces it with the real public key.
        assert_eq!(read_public(dir.path()).unwrap(), key.unwrap());
    }
}
