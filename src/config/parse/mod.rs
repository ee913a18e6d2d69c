//! From TOML text to a checked [`Config`]: the file's shape (`Raw*`, read
//! with serde, one table at a time), then the checks across values, then the
//! secrets file and the directories on disk. Problems are collected, never
//! returned early, except a TOML syntax error (then nothing can be placed).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::de::DeValue;

use super::access::{Access, Grant, Principal, RawGrant, RawUser, Role, check_unix_name};
use super::diag::{ConfigError, ConfigErrors, KeyPath, Source};
use super::secrets::{
    CREDENTIAL_PREFIX, Secrets, SecretsSource, check_mode, parse_secrets, read_secrets,
};
use super::units::{
    check_camera_id, check_camera_url, check_slug, fmt_duration, parse_duration, parse_size,
};
use super::*;

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
    "zone",
    "camera",
    "access",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    state_dir: Option<PathBuf>,
    socket: Option<PathBuf>,
    socket_group: Option<String>,
    stall_timeout: Option<String>,
    retry_max: Option<String>,
    shutdown_timeout: Option<String>,
    max_retention_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawController {
    name: String,
    registration_code: String,
    address: String,
    phone: Option<String>,
    email: String,
    website: Option<String>,
    dpo: RawDpo,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDpo {
    name: Option<String>,
    email: String,
    phone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    id: String,
    path: PathBuf,
    create: Option<bool>,
    min_free: Option<String>,
    budget: Option<String>,
    destruction: Option<Destruction>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    interval: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    max_body_bytes: Option<u64>,
    metrics_listen: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    retention_years: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvidence {
    path: PathBuf,
    create: Option<bool>,
    review_days_default: Option<u32>,
    review_days_max: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    id: String,
    name: String,
    storage: Option<String>,
    retention_days: u32,
    purposes: Vec<String>,
    legal_basis: String,
    processor: String,
    audio: Option<AudioPolicy>,
    controller: Option<RawController>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCamera {
    id: String,
    name: String,
    zone: String,
    url: String,
    credentials: Option<String>,
    transport: Option<Transport>,
    rtsp_client: Option<RtspClient>,
    audio: Option<bool>,
    segment: Option<String>,
    area: String,
    enabled: Option<bool>,
}

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
    zones: Vec<(usize, Zone)>,
    cameras: Vec<CameraEntry>,
    access: Access,
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
            zones: Vec::new(),
            cameras: Vec::new(),
            access: Access::default(),
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
        self.read_zones();
        self.read_cameras();
        self.read_access();
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

    fn read_timezone(&mut self) {
        let at = root().key("timezone");
        let Some(name) = self.top_string("timezone") else {
            let tz = jiff::tz::TimeZone::system();
            let name = tz.iana_name().unwrap_or("system").to_owned();
            self.timezone = Some((tz, name));
            return;
        };
        match jiff::tz::TimeZone::get(&name) {
            Ok(tz) => self.timezone = Some((tz, name)),
            Err(_) => self.err(
                &at,
                format!(
                    "unknown time zone \"{name}\"; use an IANA name such as \"Europe/Vilnius\" or \
                     \"Europe/Riga\", or remove the key to use the system's time zone"
                ),
            ),
        }
    }

    fn read_secrets_key(&mut self) {
        let at = root().key("secrets");
        let Some(value) = self.top_string("secrets") else {
            return;
        };
        if let Some(name) = value.strip_prefix(CREDENTIAL_PREFIX) {
            if name.is_empty() || name.contains('/') {
                self.err(
                    &at,
                    format!(
                        "\"{value}\": a systemd credential name must be non-empty and contain no '/', \
                         e.g. \"credential:custos-secrets\""
                    ),
                );
                return;
            }
            self.secrets = Some(SecretsSource::Credential(name.to_owned()));
        } else if value.is_empty() {
            self.err(&at, "is empty; give the secrets file's path, or remove the key if no camera needs credentials");
        } else {
            self.secrets = Some(SecretsSource::File(self.resolve(Path::new(&value))));
        }
    }

    fn read_daemon(&mut self) {
        let Some(raw) = self.section::<RawDaemon>("daemon") else {
            return;
        };
        let at = root().key("daemon");
        if let Some(p) = &raw.state_dir {
            self.daemon.state_dir = self.path_value(&at.key("state_dir"), p);
        }
        if let Some(p) = &raw.socket {
            self.daemon.socket = self.path_value(&at.key("socket"), p);
        }
        if let Some(g) = &raw.socket_group {
            let ok = !g.is_empty()
                && g.len() <= 32
                && g.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if ok {
                self.daemon.socket_group = g.clone();
            } else {
                self.err(
                    &at.key("socket_group"),
                    "is not a group name: give the name of the group whose members may use \
                     custosctl (e.g. \"custos-users\"), or a numeric gid",
                );
            }
        }
        self.daemon.stall_timeout = self.duration(
            &at.key("stall_timeout"),
            raw.stall_timeout.as_deref(),
            DEFAULT_STALL_TIMEOUT,
            DAEMON_TIMEOUT_RANGE,
        );
        self.daemon.retry_max = self.duration(
            &at.key("retry_max"),
            raw.retry_max.as_deref(),
            DEFAULT_RETRY_MAX,
            DAEMON_TIMEOUT_RANGE,
        );
        self.daemon.shutdown_timeout = self.duration(
            &at.key("shutdown_timeout"),
            raw.shutdown_timeout.as_deref(),
            DEFAULT_SHUTDOWN_TIMEOUT,
            DAEMON_TIMEOUT_RANGE,
        );
        if let Some(max) = raw.max_retention_days {
            let (lo, hi) = MAX_RETENTION_DAYS_RANGE;
            if (lo..=hi).contains(&max) {
                self.daemon.max_retention_days = max;
            } else {
                self.err(
                    &at.key("max_retention_days"),
                    format!(
                        "{max} is out of range; give {lo} to {hi} (days; default \
                         {DEFAULT_MAX_RETENTION_DAYS}, the longest period in the rules is one month, 003 §24.2)"
                    ),
                );
            }
        }
    }

    fn read_retention(&mut self) {
        let Some(raw) = self.section::<RawRetention>("retention") else {
            return;
        };
        self.retention.interval = self.duration(
            &root().key("retention").key("interval"),
            raw.interval.as_deref(),
            DEFAULT_RETENTION_INTERVAL,
            RETENTION_INTERVAL_RANGE,
        );
    }

    fn read_api_audit(&mut self) {
        let raw_api = self.section::<RawApi>("api");
        if let Some(addr) = raw_api.as_ref().and_then(|r| r.metrics_listen.as_deref()) {
            let key = root().key("api").key("metrics_listen");
            match addr.parse::<std::net::SocketAddr>() {
                Ok(a) if a.ip().is_loopback() => self.api.metrics_listen = Some(a),
                Ok(a) => self.err(
                    &key,
                    format!(
                        "{a} is not a loopback address; the metrics port has no \
                         authentication, so give e.g. \"127.0.0.1:9464\" and let a local agent or \
                         an SSH tunnel carry the scrape"
                    ),
                ),
                Err(_) => self.err(
                    &key,
                    format!("{addr:?} is not an address and port; write e.g. \"127.0.0.1:9464\""),
                ),
            }
        }
        if let Some(raw) = raw_api
            && let Some(n) = raw.max_body_bytes
        {
            let (lo, hi) = API_MAX_BODY_BYTES_RANGE;
            if (lo..=hi).contains(&n) {
                self.api.max_body_bytes = n;
            } else {
                self.err(
                    &root().key("api").key("max_body_bytes"),
                    format!("{n} is out of range; give {lo} to {hi} (bytes)"),
                );
            }
        }
        if let Some(raw) = self.section::<RawAudit>("audit")
            && let Some(n) = raw.retention_years
        {
            let (lo, hi) = AUDIT_RETENTION_YEARS_RANGE;
            if (lo..=hi).contains(&n) {
                self.audit.retention_years = n;
            } else {
                self.err(
                    &root().key("audit").key("retention_years"),
                    format!("{n} is out of range; give {lo} to {hi} (years)"),
                );
            }
        }
    }

    fn controller(&mut self, raw: RawController, at: &KeyPath) -> Controller {
        self.non_empty(
            &at.key("name"),
            &raw.name,
            "give the controller's legal name",
        );
        self.non_empty(
            &at.key("registration_code"),
            &raw.registration_code,
            "give the registry code",
        );
        self.non_empty(&at.key("address"), &raw.address, "give the postal address");
        self.email(&at.key("email"), &raw.email);
        self.email(&at.key("dpo").key("email"), &raw.dpo.email);
        if let Some(w) = &raw.website
            && !(w.starts_with("https://") || w.starts_with("http://"))
        {
            self.err(
                &at.key("website"),
                format!("\"{w}\" must start with https:// (or http://)"),
            );
        }
        Controller {
            name: raw.name,
            registration_code: raw.registration_code,
            address: raw.address,
            phone: raw.phone,
            email: raw.email,
            website: raw.website,
            dpo: Dpo {
                name: raw.dpo.name,
                email: raw.dpo.email,
                phone: raw.dpo.phone,
            },
        }
    }

    fn email(&mut self, at: &KeyPath, email: &str) {
        let ok = email
            .split_once('@')
            .is_some_and(|(u, d)| !u.is_empty() && d.contains('.'))
            && !email.contains(char::is_whitespace);
        if !ok {
            self.err(
                at,
                format!("\"{email}\" is not an email address; e.g. \"dap@example.lt\""),
            );
        }
    }

    fn read_controller(&mut self) {
        let at = root().key("controller");
        if self.src.get(&at).is_none() {
            self.err(
                &at,
                "missing [controller] section: the data controller's name, registration_code, address, \
                 email and dpo contact are printed on public notices and export manifests (001 §21; 004 §23)",
            );
            return;
        }
        if let Some(raw) = self.section::<RawController>("controller") {
            self.controller = Some(self.controller(raw, &at));
        }
    }

    fn read_storage(&mut self) {
        let paths = self.elements(&root(), "storage");
        if paths.is_empty() && self.src.get(&root().key("storage")).is_none() {
            self.err(
                &root().key("storage"),
                "no [[storage]] root defined; add one, e.g. [[storage]] id = \"main\" path = \"/var/lib/custos/recordings\"",
            );
        }
        let mut seen: HashMap<String, KeyPath> = HashMap::new();
        for at in paths {
            let Some(raw) = self.src.de::<RawStorage>(&at, &mut self.errors) else {
                continue;
            };
            let index = index_of(&at);
            if let Err(m) = check_slug(&raw.id, "storage") {
                self.err(&at.key("id"), m);
            } else if let Some(first) = seen.get(&raw.id) {
                let first_line = self.line(&first.key("id"));
                self.err(
                    &at.key("id"),
                    format!("duplicate storage id \"{}\"; first defined at line {first_line} ({first}); ids must be unique", raw.id),
                );
            } else {
                seen.insert(raw.id.clone(), at.clone());
            }
            let path = self.path_value(&at.key("path"), &raw.path);
            let min_free = self.size(&at.key("min_free"), raw.min_free.as_deref());
            let budget = self.size(&at.key("budget"), raw.budget.as_deref());
            if budget == Some(0) {
                self.err(
                    &at.key("budget"),
                    "is 0, which leaves no room to record; remove it for no budget",
                );
            }
            let storage_root = StorageRoot {
                id: raw.id,
                path,
                create: raw.create.unwrap_or(DEFAULT_CREATE),
                min_free,
                budget,
                destruction: raw.destruction.unwrap_or(DEFAULT_DESTRUCTION),
            };
            for (other_index, other) in &self.storage {
                if overlaps(&storage_root.path, &other.path) {
                    let other_at = root().key("storage").index(*other_index);
                    let e = self.src.error(
                        &at.key("path"),
                        format!(
                            "{} overlaps storage root \"{}\" ({}, line {}); each root must be its own directory",
                            storage_root.path.display(),
                            other.id,
                            other.path.display(),
                            self.line(&other_at.key("path"))
                        ),
                    );
                    self.errors.push(e);
                }
            }
            self.storage.push((index, storage_root));
        }
    }

    /// A size key, 0 to [`MAX_SIZE`] bytes.
    fn size(&mut self, at: &KeyPath, raw: Option<&str>) -> Option<u64> {
        let raw = raw?;
        match parse_size(raw) {
            Ok(n) if n <= MAX_SIZE => Some(n),
            Ok(n) => {
                self.err(
                    at,
                    format!("\"{raw}\" ({n} bytes) is out of range; give at most 1 EiB ({MAX_SIZE} bytes)"),
                );
                None
            }
            Err(m) => {
                self.err(at, m);
                None
            }
        }
    }

    fn read_evidence(&mut self) {
        let at = root().key("evidence");
        if self.src.get(&at).is_none() {
            self.err(
                &at,
                "missing [evidence] section: give the directory for evidence copies, e.g. \
                 [evidence] path = \"/var/lib/custos/evidence\" (001 §18; 004 §9)",
            );
            return;
        }
        let Some(raw) = self.section::<RawEvidence>("evidence") else {
            return;
        };
        let path = self.path_value(&at.key("path"), &raw.path);
        let max = raw.review_days_max.unwrap_or(DEFAULT_REVIEW_DAYS_MAX);
        let default = raw.review_days_default.unwrap_or(DEFAULT_REVIEW_DAYS);
        let (lo, hi) = REVIEW_DAYS_MAX_RANGE;
        if !(lo..=hi).contains(&max) {
            self.err(
                &at.key("review_days_max"),
                format!("{max} is out of range; give {lo} to {hi} (days; default {DEFAULT_REVIEW_DAYS_MAX})"),
            );
        } else if default == 0 || default > max {
            self.err(
                &at.key("review_days_default"),
                format!("{default} must be from 1 to review_days_max ({max}) days"),
            );
        }
        for (i, r) in &self.storage {
            if overlaps(&path, &r.path) {
                let root_line = self.line(&root().key("storage").index(*i).key("path"));
                let e = self.src.error(
                    &at.key("path"),
                    format!(
                        "{} overlaps storage root \"{}\" ({}, line {root_line}); evidence must live apart \
                         from recordings so retention can never delete it",
                        path.display(),
                        r.id,
                        r.path.display()
                    ),
                );
                self.errors.push(e);
            }
        }
        self.evidence = Some(EvidenceConfig {
            path,
            create: raw.create.unwrap_or(DEFAULT_CREATE),
            review_days_default: default,
            review_days_max: max,
        });
    }

    fn read_zones(&mut self) {
        let storage_ids = self.peek_ids("storage");
        let max = self.daemon.max_retention_days;
        let max_where = match self
            .src
            .line_of_path(&root().key("daemon").key("max_retention_days"))
        {
            Some(l)
                if self
                    .src
                    .get(&root().key("daemon").key("max_retention_days"))
                    .is_some() =>
            {
                format!("daemon.max_retention_days at line {l}")
            }
            _ => format!("the default of daemon.max_retention_days ({DEFAULT_MAX_RETENTION_DAYS})"),
        };
        let mut seen: HashMap<String, KeyPath> = HashMap::new();
        for at in self.elements(&root(), "zone") {
            let Some(raw) = self.src.de::<RawZone>(&at, &mut self.errors) else {
                continue;
            };
            if let Err(m) = check_slug(&raw.id, "zone") {
                self.err(&at.key("id"), m);
            } else if let Some(first) = seen.get(&raw.id) {
                let first_line = self.line(&first.key("id"));
                self.err(
                    &at.key("id"),
                    format!("duplicate zone id \"{}\"; first defined at line {first_line} ({first}); zone ids must be unique", raw.id),
                );
            } else {
                seen.insert(raw.id.clone(), at.clone());
            }
            self.non_empty(
                &at.key("name"),
                &raw.name,
                "give the zone's name as printed on notices",
            );
            let storage = match raw.storage {
                Some(s) => {
                    if !storage_ids.contains(&s) {
                        let defined = if storage_ids.is_empty() {
                            "no [[storage]] roots are defined".to_owned()
                        } else {
                            format!("defined storage roots are: {}", list(&storage_ids))
                        };
                        self.err(
                            &at.key("storage"),
                            format!("unknown storage root \"{s}\"; {defined}"),
                        );
                    }
                    s
                }
                None if storage_ids.len() == 1 => storage_ids[0].clone(),
                None => {
                    if storage_ids.len() > 1 {
                        self.err(
                            &at.key("storage"),
                            format!(
                                "is required when there is more than one storage root; set storage = one of: {}",
                                list(&storage_ids)
                            ),
                        );
                    }
                    String::new()
                }
            };
            if raw.retention_days == 0 {
                self.err(
                    &at.key("retention_days"),
                    format!(
                        "must be at least 1 (days), not 0; give 1 to {max} days: it is the longest \
                         footage is kept in this zone (004 §9), e.g. 10 for school premises, 14 for \
                         public spaces (001 §17)"
                    ),
                );
            } else if raw.retention_days > max {
                self.err(
                    &at.key("retention_days"),
                    format!(
                        "{} days exceeds the maximum of {max} days set by {max_where}; lower it, or raise \
                         daemon.max_retention_days if your rules allow a longer period (003 §24.2 allows one month)",
                        raw.retention_days
                    ),
                );
            }
            if raw.purposes.is_empty() {
                self.err(
                    &at.key("purposes"),
                    "is empty; list why this zone is recorded, e.g. [\"safety of pupils and staff\"] (004 §13)",
                );
            }
            for (i, p) in raw.purposes.iter().enumerate() {
                self.non_empty(
                    &at.key("purposes").index(i),
                    p,
                    "describe the purpose or remove the entry",
                );
            }
            self.non_empty(
                &at.key("legal_basis"),
                &raw.legal_basis,
                "give the legal basis, e.g. \"GDPR Art. 6(1)(e)\"",
            );
            self.non_empty(
                &at.key("processor"),
                &raw.processor,
                "name who operates this zone's cameras",
            );
            let controller = raw
                .controller
                .map(|c| self.controller(c, &at.key("controller")));
            let zone = Zone {
                id: raw.id,
                name: raw.name,
                storage,
                retention_days: raw.retention_days,
                purposes: raw.purposes,
                legal_basis: raw.legal_basis,
                processor: raw.processor,
                audio: raw.audio.unwrap_or(DEFAULT_AUDIO_POLICY),
                controller,
            };
            self.zones.push((index_of(&at), zone));
        }
    }

    fn zones_message(&self, zone_ids: &[String]) -> String {
        if zone_ids.is_empty() {
            "no [[zone]] is defined".to_owned()
        } else {
            format!("defined zones are: {}", list(zone_ids))
        }
    }

    fn read_cameras(&mut self) {
        let zone_ids = self.peek_ids("zone");
        // Lowercased id -> where it was first defined: ids that differ only in
        // case would collide on a case-insensitive filesystem and confuse people.
        let mut seen: HashMap<String, (String, KeyPath)> = HashMap::new();
        let mut urls: HashMap<String, KeyPath> = HashMap::new();
        for at in self.elements(&root(), "camera") {
            let Some(raw) = self.src.de::<RawCamera>(&at, &mut self.errors) else {
                continue;
            };
            match check_camera_id(&raw.id) {
                Err(m) => self.err(&at.key("id"), m),
                Ok(()) => {
                    let folded = raw.id.to_ascii_lowercase();
                    if let Some((first_id, first)) = seen.get(&folded) {
                        let first_line = self.line(&first.key("id"));
                        let how = if *first_id == raw.id {
                            String::new()
                        } else {
                            format!(" as \"{first_id}\", which differs only in letter case")
                        };
                        self.err(
                            &at.key("id"),
                            format!(
                                "duplicate camera id \"{}\"; first defined at line {first_line} ({first}){how}; \
                                 camera ids must be unique",
                                raw.id
                            ),
                        );
                    } else {
                        seen.insert(folded, (raw.id.clone(), at.clone()));
                    }
                }
            }
            self.non_empty(
                &at.key("name"),
                &raw.name,
                "give the camera's display name, e.g. \"1A-Fojė-Pietinė\"",
            );
            if !zone_ids.contains(&raw.zone) {
                let m = format!(
                    "unknown zone \"{}\"; {}",
                    raw.zone,
                    self.zones_message(&zone_ids)
                );
                self.err(&at.key("zone"), m);
            }
            let credentials_key = raw.credentials.clone();
            if let Some(k) = &credentials_key
                && k.is_empty()
            {
                self.err(
                    &at.key("credentials"),
                    "is empty; name a [camera.KEY] entry of the secrets file, or remove it",
                );
            }
            let key_for_advice = credentials_key.as_deref().unwrap_or(&raw.id).to_owned();
            if let Err(m) = check_camera_url(&raw.url, &key_for_advice) {
                self.err(&at.key("url"), m);
            } else if let Some(first) = urls.get(&raw.url) {
                let first_line = self.line(first);
                self.warn(&at.key("url"), format!("same URL as {first} (line {first_line}); the stream would be recorded twice"));
            } else {
                urls.insert(raw.url.clone(), at.key("url"));
            }
            let transport = raw.transport.unwrap_or(DEFAULT_TRANSPORT);
            let rtsps = raw.url.to_ascii_lowercase().starts_with("rtsps:");
            let rtsp_client = match raw.rtsp_client {
                Some(RtspClient::Retina) if transport == Transport::Udp => {
                    self.err(
                        &at.key("rtsp_client"),
                        "rtsp_client = \"retina\" reads RTP over TCP only; set transport = \"tcp\", or \
                         rtsp_client = \"gstreamer\" for UDP",
                    );
                    RtspClient::Gstreamer
                }
                Some(RtspClient::Retina) if rtsps => {
                    self.err(
                        &at.key("rtsp_client"),
                        "rtsp_client = \"retina\" cannot read rtsps:// (TLS); set rtsp_client = \"gstreamer\"",
                    );
                    RtspClient::Gstreamer
                }
                client => client.unwrap_or(DEFAULT_RTSP_CLIENT),
            };
            let segment = self.duration(
                &at.key("segment"),
                raw.segment.as_deref(),
                DEFAULT_SEGMENT,
                (MIN_SEGMENT, MAX_SEGMENT),
            );
            let audio = raw.audio.unwrap_or(DEFAULT_CAMERA_AUDIO);
            if audio
                && let Some((zi, zone)) = self.zones.iter().find(|(_, z)| z.id == raw.zone)
                && zone.audio == AudioPolicy::Forbidden
            {
                let zone_at = root().key("zone").index(*zi);
                let m = format!(
                    "audio = true, but zone \"{}\" ({zone_at}, line {}) forbids sound; set audio = false, or set \
                     audio = \"allowed\" in that zone if its rules permit recording sound (001 §19)",
                    zone.id,
                    self.line(&zone_at)
                );
                self.err(&at.key("audio"), m);
            }
            self.non_empty(
                &at.key("area"),
                &raw.area,
                "describe what the camera watches, e.g. \"first-floor foyer, south entrance\"; it is published in \
                 the camera register (001 §8-9; 004 §6)",
            );
            let camera = Camera {
                id: raw.id,
                name: raw.name,
                zone: raw.zone,
                url: raw.url,
                credentials: None,
                transport,
                rtsp_client,
                audio,
                segment,
                area: raw.area,
                enabled: raw.enabled.unwrap_or(DEFAULT_CAMERA_ENABLED),
            };
            self.cameras.push(CameraEntry {
                index: index_of(&at),
                camera,
                credentials_key,
            });
        }
    }

    fn read_access(&mut self) {
        let at = root().key("access");
        let Some(value) = self.src.get(&at) else {
            return;
        };
        let DeValue::Table(t) = value.get_ref() else {
            self.err(&at, "expected a table of [[access.grant]] entries");
            return;
        };
        let unknown: Vec<String> = t
            .iter()
            .map(|(k, _)| k.get_ref().to_string())
            .filter(|k| k != "grant")
            .collect();
        for k in unknown {
            self.err(
                &at.key(&k),
                format!("unknown key `{k}`; expected `grant` ([[access.grant]])"),
            );
        }
        let zone_ids = self.peek_ids("zone");
        for g in self.elements(&at, "grant") {
            let Some(raw) = self.src.de::<RawGrant>(&g, &mut self.errors) else {
                continue;
            };
            let principal = match (raw.user, raw.group) {
                (Some(_), Some(_)) => {
                    self.err(
                        &g.key("group"),
                        "a grant names either user or group, not both; split it into two grants",
                    );
                    continue;
                }
                (None, None) => {
                    // A `user` that failed to parse was reported already.
                    if self.src.get(&g.key("user")).is_none() {
                        self.err(&g, "names nobody; add user = \"NAME\" (or a numeric uid) or group = \"NAME\"");
                    }
                    continue;
                }
                (Some(RawUser::Uid(u)), None) => Principal::Uid(u),
                (Some(RawUser::Name(n)), None) => {
                    if let Err(m) = check_unix_name(&n) {
                        self.err(&g.key("user"), m);
                    }
                    Principal::User(n)
                }
                (None, Some(n)) => {
                    if let Err(m) = check_unix_name(&n) {
                        self.err(&g.key("group"), m);
                    }
                    Principal::Group(n)
                }
            };
            let roles: BTreeSet<Role> = raw.roles.iter().copied().collect();
            if roles.is_empty() {
                let all = Role::ALL.map(|r| r.as_str()).join(", ");
                self.err(
                    &g.key("roles"),
                    format!("is empty; grant at least one of: {all}"),
                );
            }
            let zones: BTreeSet<String> =
                raw.zones.clone().unwrap_or_default().into_iter().collect();
            if roles.contains(&Role::Viewer) {
                if zones.is_empty() {
                    let m = format!(
                        "a grant with the viewer role must list the zones it may view, e.g. zones = [\"{}\"] (004 §12); {}",
                        zone_ids.first().map_or("school-indoor", String::as_str),
                        self.zones_message(&zone_ids)
                    );
                    self.err(&g.key("zones"), m);
                }
            } else if raw.zones.is_some() {
                self.err(
                    &g.key("zones"),
                    "zones limit only the viewer role; remove zones, or add \"viewer\" to roles",
                );
            }
            for (i, z) in raw.zones.iter().flatten().enumerate() {
                if !zone_ids.contains(z) {
                    let m = format!("unknown zone \"{z}\"; {}", self.zones_message(&zone_ids));
                    self.err(&g.key("zones").index(i), m);
                }
            }
            self.access.grants.push(Grant {
                principal,
                roles,
                zones,
            });
        }
    }

    /// Reads the secrets file the configuration names.
    fn load_secrets(&mut self, credentials_directory: Option<&Path>) {
        let at = root().key("secrets");
        let path = match &self.secrets {
            None => {
                self.apply_secrets(&Secrets::default());
                return;
            }
            Some(SecretsSource::File(p)) => p.clone(),
            Some(SecretsSource::Credential(name)) => match credentials_directory {
                Some(dir) => dir.join(name),
                None => {
                    self.err(
                        &at,
                        format!(
                            "refers to the systemd credential \"{name}\", but $CREDENTIALS_DIRECTORY is not set; \
                             run under systemd with LoadCredential={name}:/etc/custos/secrets.toml, \
                             or give the secrets file's path"
                        ),
                    );
                    return;
                }
            },
        };
        match read_secrets(&path) {
            Ok(text) => {
                check_mode(&path, &mut self.warnings);
                let secrets = parse_secrets(&text, &path, &mut self.errors, &mut self.warnings);
                self.apply_secrets(&secrets);
            }
            Err(e) => self.err(
                &at,
                format!(
                    "cannot read secrets file {}: {e}; create it (chmod 0600) with [camera.KEY] \
                     username/password tables, or remove secrets = if no camera needs credentials",
                    path.display()
                ),
            ),
        }
    }

    /// Attaches credentials to cameras; reports keys that name no entry.
    fn apply_secrets(&mut self, secrets: &Secrets) {
        let configured = self.secrets.is_some() || !secrets.path.as_os_str().is_empty();
        let mut used: BTreeSet<String> = BTreeSet::new();
        let mut problems = Vec::new();
        for entry in &mut self.cameras {
            let at = root().key("camera").index(entry.index).key("credentials");
            match &entry.credentials_key {
                Some(k) if k.is_empty() => {}
                Some(k) => match secrets.entries.get(k) {
                    Some(c) => {
                        entry.camera.credentials = Some(c.clone());
                        used.insert(k.clone());
                    }
                    None if !configured => problems.push((
                        at,
                        format!(
                            "names credentials \"{k}\", but no secrets file is configured; add \
                             secrets = \"/etc/custos/secrets.toml\" at the top of {}",
                            self.src.file.display()
                        ),
                    )),
                    None if secrets.lines.contains_key(k) => {} // its entry is broken: reported there
                    None => problems.push((
                        at,
                        format!(
                            "no [camera.{k}] entry in secrets file {}; add one with username and password, \
                             or correct the key",
                            secrets.path.display()
                        ),
                    )),
                },
                None => {
                    if let Some(c) = secrets.entries.get(&entry.camera.id) {
                        entry.camera.credentials = Some(c.clone());
                        used.insert(entry.camera.id.clone());
                    }
                }
            }
        }
        for (at, m) in problems {
            self.err(&at, m);
        }
        for (key, line) in &secrets.lines {
            if !used.contains(key) && secrets.entries.contains_key(key) {
                self.warnings.push(ConfigError::new(
                    &secrets.path,
                    *line,
                    format!("camera.{key}"),
                    "is used by no camera (no camera has this id or credentials key); remove it",
                ));
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
            zones: self.zones.into_iter().map(|(_, z)| z).collect(),
            cameras: self.cameras.into_iter().map(|c| c.camera).collect(),
            access: self.access,
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
