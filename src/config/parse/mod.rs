//! From TOML text to a checked [`Config`]: the file's shape (`Raw*`, read
//! with serde, one table at a time), then the checks across values, then the
//! secrets file and the directories on disk. Problems are collected, never
//! returned early, except a TOML syntax error (then nothing can be placed).
//!
//! One file per section: its `Raw*` shape and the `Builder` method that reads
//! and checks it (`service`: the top-level keys, `[daemon]`, `[retention]`,
//! `[api]`, `[audit]`; `requests`; `controller`; `storage` with `[evidence]`; `zones`;
//! `cameras`; `grants` for `[access]`; `devices`; `inboxes`; `vault`), then `credentials` (the secrets pass).
//! This file holds the entry points, the key-reading helpers they share and
//! the disk check. A new section: its file, its key in `TOP_KEYS`, its field
//! in `Builder`, its call in `Builder::read`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::de::DeValue;

use super::access::Access;
use super::diag::{ConfigError, ConfigErrors, KeyPath, Source};
use super::secrets::{SecretsSource, parse_secrets};
use super::units::{fmt_duration, parse_duration};
use super::*;

mod alerts;
mod cameras;
mod controller;
mod credentials;
mod devices;
mod grants;
mod inboxes;
mod requests;
mod service;
mod storage;
mod vault;
mod zones;

/// Top-level keys, in the order they are documented.
const TOP_KEYS: &[&str] = &[
    "timezone",
    "secrets",
    "daemon",
    "controller",
    "storage",
    "evidence",
    "retention",
    "api",
    "audit",
    "requests",
    "alerts",
    "vault",
    "zone",
    "camera",
    "access",
    "device",
    "inbox",
];

/// Parse, validate, and (per `options`) load secrets and check the disk.
pub(crate) fn build(
    text: &str,
    path: &Path,
    options: &LoadOptions,
) -> Result<Config, ConfigErrors> {
    let src = Source::parse(text, path).map_err(ConfigErrors)?;
    let mut b = Builder::new(&src);
    b.read();
    if options.secrets {
        b.load_secrets(options.credentials_directory.as_deref());
    }
    if options.filesystem {
        b.check_filesystem();
    }
    b.finish()
}

/// Parse and validate, with the secrets file given as text.
pub(crate) fn build_with_secrets(
    text: &str,
    path: &Path,
    secrets_text: &str,
    secrets_path: &Path,
) -> Result<Config, ConfigErrors> {
    let src = Source::parse(text, path).map_err(ConfigErrors)?;
    let mut b = Builder::new(&src);
    b.read();
    let secrets = parse_secrets(secrets_text, secrets_path, &mut b.errors, &mut b.warnings);
    b.apply_secrets(&secrets);
    b.finish()
}

/// A camera as read, with what the secrets pass needs.
struct CameraEntry {
    index: usize,
    camera: Camera,
    /// The `credentials` key as written, if any.
    credentials_key: Option<String>,
}

struct Builder<'s, 'a> {
    src: &'s Source<'a>,
    /// Directory relative paths are resolved against.
    base: PathBuf,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
    timezone: Option<(jiff::tz::TimeZone, String)>,
    secrets: Option<SecretsSource>,
    daemon: DaemonConfig,
    controller: Option<Controller>,
    storage: Vec<(usize, StorageRoot)>,
    evidence: Option<EvidenceConfig>,
    retention: RetentionConfig,
    api: ApiConfig,
    audit: AuditConfig,
    requests: RequestsConfig,
    alerts: AlertsConfig,
    vault: Option<VaultConfig>,
    zones: Vec<(usize, Zone)>,
    cameras: Vec<CameraEntry>,
    access: Access,
    devices: Vec<Device>,
    inboxes: Vec<Inbox>,
}

fn root() -> KeyPath {
    KeyPath::root()
}

fn list(items: &[String]) -> String {
    items.join(", ")
}

impl<'s, 'a> Builder<'s, 'a> {
    fn new(src: &'s Source<'a>) -> Self {
        let dir = src
            .file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let base = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        Builder {
            src,
            base,
            errors: Vec::new(),
            warnings: Vec::new(),
            timezone: None,
            secrets: None,
            daemon: DaemonConfig {
                state_dir: PathBuf::from(DEFAULT_STATE_DIR),
                socket: PathBuf::from(DEFAULT_SOCKET),
                socket_group: DEFAULT_SOCKET_GROUP.to_owned(),
                stall_timeout: DEFAULT_STALL_TIMEOUT,
                retry_max: DEFAULT_RETRY_MAX,
                shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
                max_retention_days: DEFAULT_MAX_RETENTION_DAYS,
            },
            controller: None,
            storage: Vec::new(),
            evidence: None,
            retention: RetentionConfig::default(),
            api: ApiConfig::default(),
            audit: AuditConfig::default(),
            requests: RequestsConfig::default(),
            alerts: AlertsConfig::default(),
            vault: None,
            zones: Vec::new(),
            cameras: Vec::new(),
            access: Access::default(),
            devices: Vec::new(),
            inboxes: Vec::new(),
        }
    }

    fn err(&mut self, path: &KeyPath, message: impl Into<String>) {
        let e = self.src.error(path, message);
        self.errors.push(e);
    }

    fn warn(&mut self, path: &KeyPath, message: impl Into<String>) {
        let e = self.src.error(path, message);
        self.warnings.push(e);
    }

    fn line(&self, path: &KeyPath) -> String {
        self.src
            .line_of_path(path)
            .map_or_else(|| "?".to_owned(), |l| l.to_string())
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base.join(p)
        }
    }

    /// A path key: non-empty, resolved against the config's directory.
    fn path_value(&mut self, at: &KeyPath, p: &Path) -> PathBuf {
        if p.as_os_str().is_empty() {
            self.err(at, "is empty; give a directory path");
        }
        self.resolve(p)
    }

    fn non_empty(&mut self, at: &KeyPath, value: &str, what: &str) {
        if value.trim().is_empty() {
            self.err(at, format!("is empty; {what}"));
        }
    }

    fn duration(
        &mut self,
        at: &KeyPath,
        raw: Option<&str>,
        default: Duration,
        range: (Duration, Duration),
    ) -> Duration {
        let Some(raw) = raw else { return default };
        match parse_duration(raw) {
            Ok(d) if d >= range.0 && d <= range.1 => d,
            Ok(_) => {
                self.err(
                    at,
                    format!(
                        "\"{raw}\" is out of range; allowed {} to {} (default {})",
                        fmt_duration(range.0),
                        fmt_duration(range.1),
                        fmt_duration(default)
                    ),
                );
                default
            }
            Err(m) => {
                self.err(at, m);
                default
            }
        }
    }

    /// A table section: `None` if absent or broken.
    fn section<T: DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        let at = root().key(key);
        let value = self.src.get(&at)?;
        if !matches!(value.get_ref(), DeValue::Table(_)) {
            self.err(
                &at,
                format!("expected a table: write it as a [{key}] section"),
            );
            return None;
        }
        self.src.de(&at, &mut self.errors)
    }

    /// Paths of the elements of an array of tables (`[[key]]` under `parent`).
    fn elements(&mut self, parent: &KeyPath, key: &str) -> Vec<KeyPath> {
        let at = parent.key(key);
        let Some(value) = self.src.get(&at) else {
            return Vec::new();
        };
        let DeValue::Array(items) = value.get_ref() else {
            self.err(&at, format!("expected one or more [[{at}]] tables"));
            return Vec::new();
        };
        let mut paths = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if matches!(item.get_ref(), DeValue::Table(_)) {
                paths.push(at.index(i));
            } else {
                self.err(
                    &at.index(i),
                    format!("expected a table; write each entry as a [[{at}]] section"),
                );
            }
        }
        paths
    }

    /// The `id` strings of an array of tables, read straight from the source
    /// so that references to an element that failed to parse are not reported
    /// as unknown as well.
    fn peek_ids(&self, key: &str) -> Vec<String> {
        let Some(DeValue::Array(items)) = self.src.get(&root().key(key)).map(|v| v.get_ref())
        else {
            return Vec::new();
        };
        let mut ids: Vec<String> = Vec::new();
        for item in items.iter() {
            if let DeValue::Table(t) = item.get_ref()
                && let Some(DeValue::String(s)) = t.get("id").map(|v| v.get_ref())
                && !ids.iter().any(|i| i == s.as_ref())
            {
                ids.push(s.to_string());
            }
        }
        ids
    }

    fn read(&mut self) {
        // Unknown top-level keys.
        if let DeValue::Table(top) = self.src.root.get_ref() {
            let unknown: Vec<String> = top
                .iter()
                .map(|(k, _)| k.get_ref().to_string())
                .filter(|k| !TOP_KEYS.contains(&k.as_str()))
                .collect();
            for k in unknown {
                let expected = TOP_KEYS
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                self.err(
                    &root().key(&k),
                    format!("unknown key `{k}`; expected one of {expected}"),
                );
            }
        }
        self.read_timezone();
        self.read_secrets_key();
        self.read_daemon();
        self.read_controller();
        self.read_storage();
        self.read_evidence();
        self.read_retention();
        self.read_api_audit();
        self.read_requests();
        self.read_alerts();
        self.read_vault();
        self.read_zones();
        self.read_cameras();
        self.read_access();
        self.read_devices();
        self.read_inboxes();
    }

    fn top_string(&mut self, key: &str) -> Option<String> {
        let at = root().key(key);
        let value = self.src.get(&at)?;
        match value.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                let found = other.type_str();
                self.err(
                    &at,
                    format!("invalid type: {found}, expected a string in quotes"),
                );
                None
            }
        }
    }

    fn check_filesystem(&mut self) {
        let mut checks: Vec<(KeyPath, PathBuf, bool)> = Vec::new();
        for (i, r) in &self.storage {
            checks.push((
                root().key("storage").index(*i).key("path"),
                r.path.clone(),
                r.create,
            ));
        }
        if let Some(e) = &self.evidence {
            checks.push((root().key("evidence").key("path"), e.path.clone(), e.create));
        }
        checks.push((
            root().key("daemon").key("state_dir"),
            self.daemon.state_dir.clone(),
            true,
        ));
        if let Some(parent) = self.daemon.socket.parent() {
            checks.push((root().key("daemon").key("socket"), parent.to_owned(), true));
        }
        for (at, path, create) in checks {
            match checks::check_dir(&path, create) {
                Ok(None) => {}
                Ok(Some(w)) => self.warn(&at, w),
                Err(m) => self.err(&at, m),
            }
        }
        let reserves: Vec<(KeyPath, PathBuf, u64)> = self
            .storage
            .iter()
            .filter_map(|(i, r)| {
                let at = root().key("storage").index(*i).key("min_free");
                r.min_free.map(|m| (at, r.path.clone(), m))
            })
            .collect();
        for (at, path, min_free) in reserves {
            if let Err(m) = checks::check_reserve(&path, min_free) {
                self.err(&at, m);
            }
        }
    }

    fn finish(mut self) -> Result<Config, ConfigErrors> {
        let main = self.src.file.clone();
        let sort_key = |e: &ConfigError| (e.file != main, e.file.clone(), e.line.unwrap_or(0));
        self.errors.sort_by_key(sort_key);
        self.warnings.sort_by_key(sort_key);
        let (Some(controller), Some(evidence), Some((timezone, timezone_name)), true) = (
            self.controller,
            self.evidence,
            self.timezone,
            self.errors.is_empty(),
        ) else {
            if self.errors.is_empty() {
                // Unreachable in practice: every missing piece reports an error.
                self.errors.push(ConfigError::new(
                    &main,
                    None,
                    "",
                    "incomplete configuration",
                ));
            }
            return Err(ConfigErrors(self.errors));
        };
        Ok(Config {
            path: main,
            timezone,
            timezone_name,
            secrets: self.secrets,
            daemon: self.daemon,
            controller,
            storage: self.storage.into_iter().map(|(_, s)| s).collect(),
            evidence,
            retention: self.retention,
            api: self.api,
            audit: self.audit,
            requests: self.requests,
            alerts: self.alerts,
            vault: self.vault,
            zones: self.zones.into_iter().map(|(_, z)| z).collect(),
            cameras: self.cameras.into_iter().map(|c| c.camera).collect(),
            access: self.access,
            devices: self.devices,
            inboxes: self.inboxes,
            warnings: self.warnings,
        })
    }
}

/// The element index of a path ending in `[i]`.
fn index_of(path: &KeyPath) -> usize {
    match path.0.last() {
        Some(super::diag::Seg::Index(i)) => *i,
        _ => 0,
    }
}

/// Whether one path is inside the other (or they are equal), by components.
fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}
