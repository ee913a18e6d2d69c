//! The configuration file (`/etc/custos/custos.toml`): what is recorded, where,
//! for how long, for whom, and who may look at it.
//!
//! Loading happens in three passes, and every pass reports *all* it finds
//! rather than stopping at the first problem, so one `custosd check-config`
//! run shows everything an administrator has to fix:
//!
//! 1. the TOML is parsed into a tree that keeps source spans; each section and
//!    each `[[camera]]`, `[[zone]]`, ... element is deserialized on its own,
//!    and a key that fails is set aside so the rest of its table is still read;
//! 2. the values are checked against each other and against the rules the
//!    users serve (see `RULES.md`; clause numbers are cited where a check exists
//!    because of one);
//! 3. [`Config::load`] also reads the secrets file and checks the storage and
//!    evidence directories on disk. [`Config::parse_str`] skips this pass.
//!
//! Invariants of a [`Config`] that loaded without errors: ids are unique and
//! safe as directory names; every camera's zone exists and every zone's storage
//! root exists; no retention exceeds [`DaemonConfig::max_retention_days`]; no
//! camera URL carries credentials (they live only in the secrets file and in
//! [`Credentials`], which never prints them).
//!
//! Errors are [`ConfigError`]s: `FILE:LINE: KEY: MESSAGE`, where KEY is a
//! path such as `camera[3].zone` (array indices count from 0, in file order).
//!
//! Relative paths anywhere in the file (`secrets`, `daemon.state_dir`,
//! `storage[].path`, ...) are resolved against the directory that holds the
//! configuration file, not against the working directory.

mod access;
mod checks;
mod diag;
mod limits;
mod parse;
#[cfg(test)]
mod proptests;
mod secrets;
mod units;
mod vault;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use access::{Access, Grant, Principal, Role};
pub use diag::{ConfigError, ConfigErrors};
pub use limits::*;
pub use secrets::{Credentials, Secret, SecretsSource, redact_url};
pub use vault::{VaultConfig, VaultLockMode, VaultOnClose};

/// A checked configuration. Build it with [`Config::load`] (or
/// [`Config::parse_str`] in tests); the fields are plain data.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The file this was loaded from, as given.
    pub path: PathBuf,
    /// Time zone for display (UI, notices, export manifests). Storage and the
    /// index always use UTC.
    pub timezone: jiff::tz::TimeZone,
    /// The IANA name of [`Config::timezone`], or `"system"` if the system's
    /// zone has no known name.
    pub timezone_name: String,
    /// Where camera credentials come from, if anywhere.
    pub secrets: Option<SecretsSource>,
    pub daemon: DaemonConfig,
    /// The data controller named on public notices and export manifests.
    pub controller: Controller,
    /// Storage roots, in file order; never empty.
    pub storage: Vec<StorageRoot>,
    pub evidence: EvidenceConfig,
    pub retention: RetentionConfig,
    pub api: ApiConfig,
    pub audit: AuditConfig,
    pub requests: RequestsConfig,
    pub alerts: AlertsConfig,
    /// The evidence vault (S3 Object Lock), if configured.
    pub vault: Option<VaultConfig>,
    /// Zones, in file order.
    pub zones: Vec<Zone>,
    /// Cameras, in file order.
    pub cameras: Vec<Camera>,
    pub access: Access,
    /// Mobile cameras whose footage arrives as files, in file order.
    pub devices: Vec<Device>,
    /// Directories their files arrive in, in file order.
    pub inboxes: Vec<Inbox>,
    /// Things that are allowed but probably wrong (e.g. a secrets file that
    /// other users can read). The caller decides how to report them.
    pub warnings: Vec<ConfigError>,
}

/// `[daemon]`: process-wide settings. Every key is optional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonConfig {
    /// Directory for `index.db` and the node key. Default [`DEFAULT_STATE_DIR`].
    pub state_dir: PathBuf,
    /// Unix socket of the admin API. Default [`DEFAULT_SOCKET`].
    pub socket: PathBuf,
    /// Group (name, or a numeric gid) given the socket, mode 0660: who may
    /// connect at all; roles decide what they may do. Default
    /// [`DEFAULT_SOCKET_GROUP`]; if the group does not exist the socket keeps
    /// the daemon's group (logged).
    pub socket_group: String,
    /// A camera with no data for this long counts as failed and is reconnected.
    /// Default [`DEFAULT_STALL_TIMEOUT`].
    pub stall_timeout: Duration,
    /// Cap of the reconnect backoff. Default [`DEFAULT_RETRY_MAX`].
    pub retry_max: Duration,
    /// How long shutdown waits for cameras to finish their segment.
    /// Default [`DEFAULT_SHUTDOWN_TIMEOUT`].
    pub shutdown_timeout: Duration,
    /// Upper bound, in days, for any zone's `retention_days`: a guard against
    /// typos such as 100 for 10. Default [`DEFAULT_MAX_RETENTION_DAYS`],
    /// range [`MAX_RETENTION_DAYS_RANGE`].
    pub max_retention_days: u32,
}

/// `[controller]` (or a zone's `[zone.controller]`): who is responsible for
/// the footage, as printed on signs and in export manifests (001 §21, §34;
/// 004 §23, §37).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Controller {
    /// Legal name. Required.
    pub name: String,
    /// Company/registry code. Required.
    pub registration_code: String,
    /// Postal address. Required.
    pub address: String,
    /// Phone number. Optional.
    pub phone: Option<String>,
    /// Contact email. Required.
    pub email: String,
    /// Where the rules and the camera list are published (001 §40; 004 §37.2). Optional.
    pub website: Option<String>,
    /// The data protection officer, to whom breaches are reported (004 §22).
    pub dpo: Dpo,
}

/// Contact of a data protection officer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dpo {
    /// Name; optional (some controllers publish only a role address).
    pub name: Option<String>,
    /// Email. Required.
    pub email: String,
    /// Phone. Optional.
    pub phone: Option<String>,
}

/// `[[storage]]`: a directory that holds recordings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageRoot {
    /// `[a-z0-9][a-z0-9-]*`, unique.
    pub id: String,
    /// Absolute path (relative paths in the file are resolved against its directory).
    pub path: PathBuf,
    /// Create the directory at start if it is missing. `false` (the default)
    /// suits a dedicated disk: a failed mount then stops recording instead of
    /// silently filling the system disk.
    pub create: bool,
    /// Keep at least this many bytes free; below it the oldest footage goes
    /// first (001 §16; 004 §10). `None`: no reserve. At most [`MAX_SIZE`],
    /// and (checked on disk) less than the filesystem's size.
    pub min_free: Option<u64>,
    /// Never use more than this many bytes, 1 to [`MAX_SIZE`]. `None`: no budget.
    pub budget: Option<u64>,
    /// How expired footage is destroyed (004 §11). Default [`DEFAULT_DESTRUCTION`].
    pub destruction: Destruction,
}

/// How a deleted recording is destroyed (004 §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Destruction {
    /// Unlink the file. Right for SSDs and copy-on-write filesystems, where
    /// overwriting does not reach the old blocks; pair it with disk encryption.
    Unlink,
    /// Overwrite the file's contents with zeros, fsync, then unlink. For
    /// spinning disks with an in-place filesystem (ext4, xfs).
    Overwrite,
}

/// `[evidence]`: where case-linked evidence copies are kept (001 §18, §31; 004 §9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceConfig {
    /// Absolute path; must not lie inside a storage root (retention must never
    /// reach evidence) nor contain one.
    pub path: PathBuf,
    /// Create the directory at start if missing. Default [`DEFAULT_CREATE`].
    pub create: bool,
    /// Days until an evidence copy must be reviewed (kept only while its
    /// purpose lasts). Default [`DEFAULT_REVIEW_DAYS`].
    pub review_days_default: u32,
    /// Longest review period, in days, one may set. Default
    /// [`DEFAULT_REVIEW_DAYS_MAX`], range [`REVIEW_DAYS_MAX_RANGE`].
    pub review_days_max: u32,
}

/// `[retention]`: how the reaper runs (see `crate::retention`). Optional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Time between two passes of the reaper; it also runs at once when a
    /// storage root comes under pressure. Default [`DEFAULT_RETENTION_INTERVAL`],
    /// range [`RETENTION_INTERVAL_RANGE`].
    pub interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            interval: DEFAULT_RETENTION_INTERVAL,
        }
    }
}

/// `[api]`: the admin API on `daemon.socket` (see `crate::api`). Optional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    /// Largest request body, in bytes; larger ones get 413.
    /// Default [`DEFAULT_API_MAX_BODY_BYTES`], range [`API_MAX_BODY_BYTES_RANGE`].
    pub max_body_bytes: u64,
    /// `api.metrics_listen`: a loopback address and port where the
    /// Prometheus metrics are also served over TCP (`GET /metrics`), for a
    /// scraper that cannot use the Unix socket. Unauthenticated, so only
    /// loopback addresses are accepted. Default: none (socket only).
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: DEFAULT_API_MAX_BODY_BYTES,
            metrics_listen: None,
        }
    }
}

/// `[audit]`: the audit log of the admin API (see `crate::audit`). Optional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditConfig {
    /// Entries older than this many years are deleted (the chain stays
    /// verifiable). Default [`DEFAULT_AUDIT_RETENTION_YEARS`], range
    /// [`AUDIT_RETENTION_YEARS_RANGE`].
    pub retention_years: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention_years: DEFAULT_AUDIT_RETENTION_YEARS,
        }
    }
}

/// What an alert can be about; `[alerts] email_events` and
/// `webhook_events` choose among them (default: all).
pub const ALERT_EVENTS: &[&str] = &[
    "camera_down",
    "storage",
    "clock",
    "breach",
    "request",
    "review",
    "vault",
    "test",
];

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: only to a relay on this machine (loopback).
    None,
}

/// Alert e-mail through an SMTP server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailAlerts {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Login name; its password is `[alerts] smtp_password` of the secrets
    /// file.
    pub user: Option<String>,
    pub password: Option<secrets::Secret>,
    pub from: String,
    /// Default: the DPO's address from `[controller]`.
    pub to: Vec<String>,
    /// A PEM file of a root certificate to trust besides the usual ones
    /// (a municipality's own CA).
    pub ca_file: Option<PathBuf>,
    pub events: Vec<String>,
}

/// Alerts posted as JSON to a URL, signed with HMAC-SHA256 under
/// `[alerts] webhook_secret` of the secrets file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookAlerts {
    pub url: url::Url,
    pub secret: Option<secrets::Secret>,
    pub events: Vec<String>,
}

/// `[alerts]`: direct notification for sites without Prometheus (see
/// `crate::alerts`). Optional; without it nothing is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertsConfig {
    pub email: Option<EmailAlerts>,
    pub webhook: Option<WebhookAlerts>,
    /// A camera not recording this long is alerted. Default 5 minutes.
    pub camera_down_after: Duration,
    /// The same alert (same thing, same state) at most this often. Default 1 h.
    pub repeat_after: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            email: None,
            webhook: None,
            camera_down_after: Duration::from_secs(300),
            repeat_after: Duration::from_secs(3600),
        }
    }
}

/// `[requests]`: the register of data-subject requests (see
/// `crate::requests`). Optional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestsConfig {
    /// Widest time window a request may name: finding the event must not
    /// take disproportionate effort (000 §29). Default
    /// [`DEFAULT_REQUEST_MAX_WINDOW`], range [`REQUEST_MAX_WINDOW_RANGE`].
    pub max_window: Duration,
    /// Days after a request is closed until the requester's name, contact
    /// and description are removed from the register; what was asked and
    /// answered stays. Default [`DEFAULT_REQUEST_PERSONAL_DATA_DAYS`], range
    /// [`REQUEST_PERSONAL_DATA_DAYS_RANGE`].
    pub personal_data_days: u32,
}

impl Default for RequestsConfig {
    fn default() -> Self {
        RequestsConfig {
            max_window: DEFAULT_REQUEST_MAX_WINDOW,
            personal_data_days: DEFAULT_REQUEST_PERSONAL_DATA_DAYS,
        }
    }
}

/// Whether a zone's cameras may record sound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioPolicy {
    Forbidden,
    Allowed,
}

/// `[[zone]]`: a group of cameras with one retention period, purpose, legal
/// basis and processor (004 §6, §9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    /// `[a-z0-9][a-z0-9-]*`, unique; a directory name under the storage root.
    pub id: String,
    /// Display name for notices.
    pub name: String,
    /// Id of the storage root holding this zone's footage.
    pub storage: String,
    /// Footage older than this many calendar days is deleted: a ceiling, not a
    /// minimum (004 §9; 001 §17-18).
    pub retention_days: u32,
    /// Purposes of the processing; never empty (004 §13).
    pub purposes: Vec<String>,
    /// Legal basis, e.g. "GDPR Art. 6(1)(e)".
    pub legal_basis: String,
    /// Who operates the cameras of this zone (the controller itself or a contractor).
    pub processor: String,
    /// Whether cameras may record sound here. Default [`DEFAULT_AUDIO_POLICY`].
    pub audio: AudioPolicy,
    /// The controller for this zone when it differs from the top-level one
    /// (a server shared by a municipality and its school). `None`: the
    /// top-level `[controller]`; see [`Config::zone_controller`].
    pub controller: Option<Controller>,
}

/// RTSP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Udp,
}

/// The RTSP client that reads a camera (`camera[].rtsp_client`), default
/// [`default_rtsp_client`](limits::default_rtsp_client): retina for
/// `rtsp://` over TCP, GStreamer for the rest.
///
/// `retina` costs about a third of `gstreamer`'s CPU per camera
/// (BENCHMARKS.md) but reads only `rtsp://` over TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RtspClient {
    /// The retina crate's client (`vendor/retina`, patched to play a live
    /// camera without a Range): interleaved RTP over TCP, read with large
    /// reads and depacketised in Rust, a task on the ingest runtime.
    Retina,
    /// GStreamer's rtspsrc with rtpbin and the depayloaders.
    Gstreamer,
}

/// `[[camera]]`: one live source.
///
/// Equality is *recording* equality: two cameras compare equal iff recording
/// them is the same job. `name` and `area` are display and register fields and
/// are ignored, so renaming a camera does not restart it (and cause a gap,
/// 001 §20). A change of zone, URL, credentials, transport, RTSP client, audio, segment
/// length or `enabled` makes them differ. A change to the camera's storage
/// root is not visible here; [`Config::camera_changes`] covers it.
#[derive(Clone, Debug)]
pub struct Camera {
    /// Letters, digits, `-`, `_` (ASCII), unique regardless of case; a
    /// directory name under the zone.
    pub id: String,
    /// Display name, any UTF-8 (e.g. `1A-Fojė-Pietinė`).
    pub name: String,
    /// Id of the zone.
    pub zone: String,
    /// `rtsp://` or `rtsps://` URL without credentials.
    pub url: String,
    /// From the secrets file; `None` for a camera without authentication or
    /// when loaded with [`Config::parse_str`].
    pub credentials: Option<Credentials>,
    /// Default [`DEFAULT_TRANSPORT`].
    pub transport: Transport,
    /// Default [`default_rtsp_client`](limits::default_rtsp_client).
    pub rtsp_client: RtspClient,
    /// Record sound. Default [`DEFAULT_CAMERA_AUDIO`]; only in a zone that allows it.
    pub audio: bool,
    /// Length of one segment file, [`MIN_SEGMENT`]..=[`MAX_SEGMENT`].
    /// Default [`DEFAULT_SEGMENT`].
    pub segment: Duration,
    /// What the camera watches, for the public camera register (001 §8-9;
    /// 004 §6, §7.1). Never empty.
    pub area: String,
    /// Default [`DEFAULT_CAMERA_ENABLED`]. A disabled camera stays in the
    /// register but is not recorded.
    pub enabled: bool,
}

impl PartialEq for Camera {
    fn eq(&self, other: &Self) -> bool {
        // `name` and `area` are deliberately left out: see the type's doc.
        self.id == other.id
            && self.zone == other.zone
            && self.url == other.url
            && self.credentials == other.credentials
            && self.transport == other.transport
            && self.rtsp_client == other.rtsp_client
            && self.audio == other.audio
            && self.segment == other.segment
            && self.enabled == other.enabled
    }
}

impl Eq for Camera {}

/// What kind of mobile camera a device is (000 §19; 001 §5.3, §20.3-20.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// Worn by a person (municipal police, 000 §19).
    Body,
    /// In a service vehicle (001 §20.3-20.4).
    Dash,
    /// Held in the hand (001 §5.3).
    Handheld,
}

impl DeviceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Body => "body",
            DeviceKind::Dash => "dash",
            DeviceKind::Handheld => "handheld",
        }
    }
}

/// Whose footage it is: a camera or a device, by [`Config::footage_source`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FootageSource {
    pub id: String,
    pub name: String,
    pub zone: String,
    /// A camera's `area`; for a device, its kind and serial.
    pub area: String,
}

/// `[[device]]`: a mobile camera whose footage arrives as files in an
/// inbox. Its id shares the camera ids' namespace (its footage is indexed
/// like a camera's), so no camera may have the same id.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    /// As a camera id: letters, digits, `-`, `_`; unique among cameras and devices.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Id of the zone its footage is kept under.
    pub zone: String,
    pub kind: DeviceKind,
    /// The maker's serial number, as file names carry it; unique.
    pub serial: String,
    /// Who or what it is assigned to (an officer's number, a vehicle).
    pub assigned_to: String,
    /// The zone its clock writes in (many dash cameras write local time).
    /// Default [`DEFAULT_DEVICE_TIMEZONE`].
    pub timezone: jiff::tz::TimeZone,
    /// The IANA name of `timezone`.
    pub timezone_name: String,
    /// The day it was put into service (`YYYY-MM-DD`, in `timezone`):
    /// footage dated earlier is implausible. Optional.
    pub registered: Option<jiff::civil::Date>,
}

/// `[[inbox]]`: a directory where device files arrive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbox {
    /// Absolute path; not inside a storage root, the evidence directory or
    /// another inbox.
    pub path: PathBuf,
    /// The device every file here is from. `None`: a sub-directory per
    /// device, named by its id, unless `pattern` names the serial.
    pub device: Option<String>,
    /// File-name pattern, e.g. `{serial}_{YYYYMMDD}_{HHMMSS}.mp4`: which
    /// device (`{serial}` or `{device}`) and when (`{YYYYMMDD}`, `{HHMMSS}`,
    /// in the device's zone). `{any}` matches any text. Optional.
    pub pattern: Option<String>,
    /// Default [`DEFAULT_INBOX_SETTLE`], range [`INBOX_SETTLE_RANGE`].
    pub settle: Duration,
    /// Default [`DEFAULT_INBOX_POLL`], range [`INBOX_POLL_RANGE`].
    pub poll: Duration,
    /// Where files that are not valid footage are moved, with a
    /// `<name>.reason.txt` beside each; never inside the inbox. Required.
    pub quarantine: PathBuf,
}

/// What changed between two configurations, camera by camera (for SIGHUP).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CameraChanges {
    /// Ids only in the new configuration.
    pub added: Vec<String>,
    /// Ids only in the old configuration.
    pub removed: Vec<String>,
    /// Ids in both whose recording changed: the [`Camera`] differs, or its
    /// storage root's id or path does.
    pub changed: Vec<String>,
}

/// How [`Config::load_with`] loads.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Read the secrets file and attach credentials to cameras. Default true.
    pub secrets: bool,
    /// Check storage, evidence and state directories on disk. Default true.
    pub filesystem: bool,
    /// Directory for `secrets = "credential:NAME"`. Default: the
    /// `CREDENTIALS_DIRECTORY` environment variable, set by systemd's
    /// `LoadCredential=`.
    pub credentials_directory: Option<PathBuf>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            secrets: true,
            filesystem: true,
            credentials_directory: std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from),
        }
    }
}

impl Config {
    /// Reads, checks and completes the configuration at `path`: parses it,
    /// validates it, loads the secrets file and checks the directories on disk.
    /// Returns every error found.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Self::load_with(path, &LoadOptions::default())
    }

    /// [`Config::load`] with some passes switched off.
    pub fn load_with(path: &Path, options: &LoadOptions) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::from(ConfigError::new(
                path,
                None,
                "",
                format!("cannot read the configuration file: {e}"),
            ))
        })?;
        parse::build(&text, path, options)
    }

    /// Parses and validates `text` as if read from `path` (used in messages
    /// and to resolve relative paths). Touches no file: secrets are not loaded
    /// (every camera's `credentials` is `None`) and directories are not checked.
    pub fn parse_str(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        let options = LoadOptions {
            secrets: false,
            filesystem: false,
            credentials_directory: None,
        };
        parse::build(text, path, &options)
    }

    /// Like [`Config::parse_str`], with the secrets file's contents given as
    /// text (as if read from `secrets_path`), so credential lookups are checked.
    pub fn parse_with_secrets(
        text: &str,
        path: &Path,
        secrets_text: &str,
        secrets_path: &Path,
    ) -> Result<Config, ConfigErrors> {
        parse::build_with_secrets(text, path, secrets_text, secrets_path)
    }

    /// The zone with this id.
    pub fn zone(&self, id: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.id == id)
    }

    /// The camera or device whose footage `id` names, as export manifests
    /// describe it.
    pub fn footage_source(&self, id: &str) -> Option<FootageSource> {
        if let Some(c) = self.camera(id) {
            return Some(FootageSource {
                id: c.id.clone(),
                name: c.name.clone(),
                zone: c.zone.clone(),
                area: c.area.clone(),
            });
        }
        self.device(id).map(|d| FootageSource {
            id: d.id.clone(),
            name: d.name.clone(),
            zone: d.zone.clone(),
            // Who carries it is not said: these reach recipients and
            // data subjects; the config and the audit log say it.
            area: format!("{} camera, serial {}", d.kind.as_str(), d.serial),
        })
    }

    /// The zone of the footage `id` names: a camera's or a device's.
    pub fn footage_zone(&self, id: &str) -> Option<&str> {
        self.camera(id)
            .map(|c| c.zone.as_str())
            .or_else(|| self.device(id).map(|d| d.zone.as_str()))
    }

    /// The device with this id.
    pub fn device(&self, id: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.id == id)
    }

    /// The camera with this id.
    pub fn camera(&self, id: &str) -> Option<&Camera> {
        self.cameras.iter().find(|c| c.id == id)
    }

    /// The storage root with this id.
    pub fn storage_root(&self, id: &str) -> Option<&StorageRoot> {
        self.storage.iter().find(|s| s.id == id)
    }

    /// The storage root a camera records to (through its zone).
    ///
    /// # Panics
    /// If `camera` is not from this configuration; a loaded configuration
    /// guarantees every camera's zone and every zone's root exist.
    pub fn camera_root(&self, camera: &Camera) -> &StorageRoot {
        let zone = self.zone(&camera.zone).unwrap_or_else(|| {
            panic!(
                "camera {} has zone {} not in this config",
                camera.id, camera.zone
            )
        });
        self.storage_root(&zone.storage).unwrap_or_else(|| {
            panic!(
                "zone {} has storage {} not in this config",
                zone.id, zone.storage
            )
        })
    }

    /// The controller responsible for a zone: its own, or the top-level one.
    pub fn zone_controller<'a>(&'a self, zone: &'a Zone) -> &'a Controller {
        zone.controller.as_ref().unwrap_or(&self.controller)
    }

    /// Cameras that must be started, stopped or restarted to go from `self`
    /// to `new`.
    pub fn camera_changes(&self, new: &Config) -> CameraChanges {
        let mut changes = CameraChanges::default();
        for old_cam in &self.cameras {
            match new.camera(&old_cam.id) {
                None => changes.removed.push(old_cam.id.clone()),
                Some(new_cam) => {
                    let (old_root, new_root) =
                        (self.camera_root(old_cam), new.camera_root(new_cam));
                    let moved = old_root.id != new_root.id || old_root.path != new_root.path;
                    if old_cam != new_cam || moved {
                        changes.changed.push(old_cam.id.clone());
                    }
                }
            }
        }
        for new_cam in &new.cameras {
            if self.camera(&new_cam.id).is_none() {
                changes.added.push(new_cam.id.clone());
            }
        }
        changes
    }

    /// The one-line summary `custosd check-config` prints.
    pub fn summary(&self) -> String {
        let enabled = self.cameras.iter().filter(|c| c.enabled).count();
        format!(
            "{} zones, {} cameras ({} enabled), {} storage roots",
            self.zones.len(),
            self.cameras.len(),
            enabled,
            self.storage.len()
        )
    }
}
