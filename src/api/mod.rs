//! The admin API: HTTP/1.1 with JSON on a Unix socket (docs/api.md).
//!
//! Job and invariants (docs/design/api.md, docs/design/security.md):
//! - The caller is whoever the kernel says is on the other end of the
//!   socket (SO_PEERCRED); roles come from `[access]` in the current config.
//! - Every request that reaches the router is written to the audit log
//!   before its reply is sent; no reply leaves without its entry.
//! - Nothing from a request touches the index or the disk before it is
//!   checked (ids, times, sizes). Bodies are capped at
//!   `api.max_body_bytes`; headers must arrive within
//!   [`Limits::header_timeout`]; at most [`Limits::max_connections`]
//!   connections are served at once, at most [`MAX_CONNECTIONS_PER_UID`]
//!   of one uid; further ones are closed at once. Long requests take turns
//!   ([`LONG_WORK_SLOTS`]) so short ones always find a thread.
//! - The server is [`serve`], a library function on a tokio runtime; the
//!   daemon runs it in a thread of its own through [`ApiServer`], so the API
//!   can never stall recording, and recording goes on if the API fails.
//!
//! Rooms: this module holds the shared state and the socket; `server` the
//! accept loop, connections and the runtime; `stream` streamed replies;
//! `routes` the endpoints.

pub mod auth;
mod breaches;
pub mod client;
pub mod errors;
mod evidence;
mod inbox;
pub mod params;
mod recordings;
mod redactions;
mod requests;
mod review;
pub mod routes;
mod server;
mod status;
mod stream;
mod vault;
mod view;

pub use server::{ApiServer, serve};
pub use stream::ReplyBody;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::audit::AuditLog;
use crate::clock::{ClockGuard, Clocks};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::index::SharedIndex;
use crate::retention::{Leases, StorageAlarms};

pub use crate::ingest::control::CameraStatuses;

/// How the API asks the daemon to reload its configuration.
pub type ReloadFn = Arc<dyn Fn() -> Result<()> + Send + Sync>;

/// Default time a client has to send a request's headers.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time a client has to send a request's body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on connections served at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 32;
/// Connections one uid may hold at once: a flood from one account (a
/// hostile client, a runaway script) cannot take every slot, so other
/// callers are still answered.
pub const MAX_CONNECTIONS_PER_UID: usize = 4;
/// Long requests (exports, audit and copy verification, holds) served at
/// once; the rest of the blocking pool always answers short requests.
pub const LONG_WORK_SLOTS: usize = 2;
/// Threads of the API's blocking pool.
const BLOCKING_THREADS: usize = 6;
/// Longest a connection may stay open, unless it is streaming an export
/// that keeps moving.
pub const MAX_CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// A streamed reply whose reader takes nothing for this long is cut off (its
/// export then fails and is not registered as a disclosure).
pub const STREAM_STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes buffered between a streaming thread and the connection.
const STREAM_CHUNK: usize = 256 * 1024;
const STREAM_CHUNKS_IN_FLIGHT: usize = 8;
/// How often old audit entries are purged.
pub const AUDIT_PURGE_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// How often the whole audit chain is verified in the background (and once
/// at start).
pub const AUDIT_VERIFY_INTERVAL: Duration = Duration::from_secs(3600);

/// Segments the hourly integrity sweep looks at, and the bytes it hashes.
pub const SWEEP_FILES: usize = 20_000;
pub const SWEEP_BYTES: u64 = 512 * 1024 * 1024;

/// How often alerts are looked for and sent.
pub const ALERT_TICK: Duration = Duration::from_secs(2);

/// Resource limits of the server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, in bytes (`api.max_body_bytes`).
    pub max_body_bytes: u64,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_config(config: &Config) -> Limits {
        Limits {
            max_body_bytes: config.api.max_body_bytes,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// What the handlers share.
pub struct ApiState {
    config: Arc<RwLock<Arc<Config>>>,
    pub cameras: CameraStatuses,
    pub audit: AuditLog,
    /// The node's signing key, loaded once: it signs export manifests.
    pub node_key: crate::export::NodeKey,
    pub clocks: Arc<dyn Clocks>,
    /// The index, opened read-only per request (WAL readers do not block
    /// the recorder).
    pub index_path: PathBuf,
    /// The daemon's effective uid, which is admin like root.
    pub daemon_uid: u32,
    pub started_us: i64,
    pub reload: ReloadFn,
    pub limits: Limits,
    /// Read leases of the recorder, which retention reports take into account.
    pub leases: Arc<Leases>,
    /// Storage roots full of protected footage, shown in the status.
    pub alarms: Arc<StorageAlarms>,
    /// Whether the wall clock may be trusted to destroy (shared with the
    /// reaper); its alarm is shown in the status and the metrics.
    pub clock_guard: Arc<ClockGuard>,
    /// Where camera operations go: the daemon's main thread, which owns the
    /// recorder. None when the API runs without a recorder (tests).
    control: std::sync::Mutex<Option<crate::ingest::control::ControlSender>>,
    /// Requests answered, by outcome, for `/v1/metrics`.
    pub requests: crate::metrics::RequestCounter,
    /// Cut-off segments the start-up recovery could not read back (kept,
    /// with their rows, for the next start): an alarm while non-zero.
    pub unreadable_at_start: std::sync::atomic::AtomicUsize,
    /// Turns for long requests ([`routes::is_long`]).
    long_work: Arc<Semaphore>,
    /// When the whole audit chain was last verified, and whether it held
    /// (see [`ApiState::verify_audit`]); for the metrics.
    pub audit_verified: std::sync::Mutex<Option<(i64, bool)>>,
    /// Refused calls per uid, to notice a burst from one.
    pub refusals: crate::breach::RefusalCounter,
    /// What the alert watcher remembers between ticks.
    alert_watcher: std::sync::Mutex<crate::alerts::Watcher>,
    /// Set while a tick runs, so a slow mail server never stacks ticks.
    alert_busy: std::sync::atomic::AtomicBool,
    /// Set by the first tick, which retries what a previous run left.
    alerts_started: std::sync::atomic::AtomicBool,
    /// Where the integrity sweep goes on (a segment id).
    sweep_after: std::sync::atomic::AtomicI64,
    /// The inboxes' counters and pending files, once the daemon runs them.
    pub inbox: std::sync::OnceLock<Arc<crate::inbox::InboxStatus>>,
    /// The vault worker's Object Lock check, once the daemon runs it.
    pub vault: std::sync::OnceLock<Arc<crate::vault::VaultStatus>>,
}

impl ApiState {
    /// State for a daemon whose index is at `index_path`; opens a read-write
    /// connection of its own for the audit log.
    // Each argument is a handle the recorder shares; bundling them would
    // only hide which is which at the two call sites.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        cameras: CameraStatuses,
        clocks: Arc<dyn Clocks>,
        index_path: PathBuf,
        reload: ReloadFn,
        leases: Arc<Leases>,
        alarms: Arc<StorageAlarms>,
        clock_guard: Arc<ClockGuard>,
    ) -> Result<ApiState> {
        // The audit writer signs its anchor and checkpoints with the node key.
        let node_key = crate::export::NodeKey::load_or_create(&config.daemon.state_dir)?;
        let audit = AuditLog::open(Index::open(&index_path)?, node_key.clone())?;
        Ok(ApiState {
            limits: Limits::from_config(&config),
            started_us: clocks.realtime(),
            config: Arc::new(RwLock::new(Arc::new(config))),
            cameras,
            audit,
            node_key,
            clocks,
            index_path,
            daemon_uid: nix::unistd::geteuid().as_raw(),
            reload,
            leases,
            alarms,
            clock_guard,
            requests: Default::default(),
            control: Default::default(),
            long_work: Arc::new(Semaphore::new(LONG_WORK_SLOTS)),
            inbox: std::sync::OnceLock::new(),
            vault: std::sync::OnceLock::new(),
            unreadable_at_start: Default::default(),
            audit_verified: Default::default(),
            refusals: Default::default(),
            alert_watcher: Default::default(),
            alert_busy: Default::default(),
            alerts_started: Default::default(),
            sweep_after: Default::default(),
        })
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The config in force as it changes, for a stream that outlives the
    /// request it began with (a live view re-checks its grant).
    pub fn config_in_force(&self) -> impl Fn() -> Arc<Config> + Send + Sync + 'static {
        let config = self.config.clone();
        move || config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the config (after a successful reload): grants change at once.
    pub fn set_config(&self, config: Config) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }

    /// Connects camera operations to the daemon's main thread.
    pub fn set_control(&self, sender: crate::ingest::control::ControlSender) {
        *self.control.lock().unwrap_or_else(|p| p.into_inner()) = Some(sender);
    }

    /// Asks the daemon to enable, disable or restart a camera and waits for
    /// its answer.
    pub(crate) fn control_camera(
        &self,
        camera: &str,
        op: crate::ingest::control::CameraOp,
        by: String,
    ) -> Result<String> {
        let sender = self
            .control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let sender = sender.ok_or_else(|| {
            Error::unavailable("camera control is not available: no recorder runs here")
        })?;
        let (reply, answer) = std::sync::mpsc::channel();
        let request = crate::ingest::control::ControlRequest {
            camera: camera.to_owned(),
            op,
            by,
            reply,
        };
        sender
            .send(request)
            .map_err(|_| Error::unavailable("the recorder is shutting down"))?;
        answer
            .recv_timeout(std::time::Duration::from_secs(60))
            .map_err(|_| Error::unavailable("the recorder did not answer within 60 s"))?
    }

    /// The Prometheus text, from this daemon's parts.
    pub fn render_metrics(&self) -> Result<String> {
        let config = self.config();
        let mut text = crate::metrics::render(&crate::metrics::Sources {
            config: &config,
            now_us: self.clocks.realtime(),
            index: self.read_index()?,
            started_us: self.started_us,
            cameras: &self.cameras,
            leases: &self.leases,
            clock_guard: &self.clock_guard,
            requests: &self.requests,
            audit: &self.audit,
            alarms: &self.alarms,
            audit_verified: *self
                .audit_verified
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
            unreadable_at_start: self
                .unreadable_at_start
                .load(std::sync::atomic::Ordering::Relaxed),
        })?;
        text.push_str(&inbox::metrics(self, &config)?);
        text.push_str(&vault::metrics(self, &config)?);
        text.push_str(&redactions::metrics(self)?);
        Ok(text)
    }

    /// A read-write connection of its own, for a request that writes.
    pub(crate) fn write_index(&self) -> Result<SharedIndex> {
        Ok(SharedIndex::new(Index::open(&self.index_path)?))
    }

    pub(crate) fn read_index(&self) -> Result<Index> {
        Index::open_read_only(&self.index_path)
    }

    /// One turn of direct notification: finds what needs a person, queues
    /// it, and sends what is due (see `crate::alerts`). Nothing without
    /// `[alerts]`. Skipped while the previous turn still runs.
    pub fn alert_tick(&self) -> Result<usize> {
        use std::sync::atomic::Ordering;
        let config = self.config();
        if config.alerts.email.is_none() && config.alerts.webhook.is_none() {
            return Ok(0);
        }
        if self.alert_busy.swap(true, Ordering::AcqRel) {
            return Ok(0);
        }
        let result = (|| {
            let now = self.clocks.realtime();
            let ix = Index::open(&self.index_path)?;
            if !self.alerts_started.swap(true, Ordering::AcqRel) {
                ix.retry_pending_alerts(now)?;
            }
            let storage = self.alarms.snapshot();
            let clock = self.clock_guard.alarm();
            let vault = self
                .vault
                .get()
                .and_then(|v| v.lock_check())
                .and_then(|c| c.error);
            let found = self
                .alert_watcher
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .check(
                    &ix,
                    &config,
                    &self.cameras,
                    &crate::alerts::Alarms {
                        storage: &storage,
                        clock: clock.as_ref(),
                        vault: vault.as_deref(),
                    },
                    now,
                )?;
            for a in &found {
                crate::alerts::raise(&ix, &config, a, now)?;
            }
            crate::alerts::deliver_due(&ix, &config, &self.audit, now, 20)
        })();
        self.alert_busy.store(false, Ordering::Release);
        result
    }

    /// Opens a breach record for what was detected (unless one is open for
    /// it). A failure to record is logged, never hidden: the detection is
    /// in the log either way.
    pub fn record_breach(&self, d: &crate::breach::Detected) {
        let result = Index::open(&self.index_path)
            .and_then(|ix| crate::breach::detected(&ix, d, self.clocks.realtime()));
        if let Err(e) = result {
            tracing::error!(error = %e, detected = ?d, "cannot record a suspected breach");
        }
    }

    /// One hourly step of the integrity sweep (`crate::integrity`): files
    /// of recorded segments gone or changed open breach records.
    pub fn sweep_integrity(&self) -> Result<usize> {
        use std::sync::atomic::Ordering;
        let config = self.config();
        let ix = self.read_index()?;
        let after = self.sweep_after.load(Ordering::Relaxed);
        let s = crate::integrity::sweep(&ix, &config, after, SWEEP_FILES, SWEEP_BYTES)?;
        self.sweep_after.store(s.next_after_id, Ordering::Relaxed);
        for (camera, paths) in s.missing {
            self.record_breach(&crate::breach::Detected::FootageMissing { camera, paths });
        }
        for (camera, paths) in s.changed {
            self.record_breach(&crate::breach::Detected::FootageChanged { camera, paths });
        }
        Ok(s.checked)
    }

    /// Verifies the whole audit chain and keeps the verdict for the metrics
    /// (an alert rule fires on a broken chain); a break is logged as an error
    /// naming the entry.
    pub fn verify_audit(&self) -> Result<bool> {
        let v = self.audit.verify(None)?;
        let ok = v.broken.is_none();
        if let Some(b) = &v.broken {
            self.record_breach(&crate::breach::Detected::AuditChain {
                seq: b.seq,
                problem: b.problem.clone(),
            });
            tracing::error!(seq = b.seq, problem = %b.problem,
                "the audit chain does not verify: entries were changed or removed outside the \
                 API; run `custosctl audit verify` and tell the data protection officer");
        }
        *self
            .audit_verified
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((self.clocks.realtime(), ok));
        Ok(ok)
    }

    /// Removes the requester's name, contact and description from requests
    /// closed more than `requests.personal_data_days` ago, unless the clock
    /// guard doubts the wall clock.
    pub fn purge_register(&self) -> Result<usize> {
        let known = self.read_index()?.known_times()?;
        let now = match self.clock_guard.check(self.clocks.as_ref(), &known) {
            Ok(now) => now,
            Err(alarm) => {
                tracing::warn!(alarm = %alarm.state, "request register purge skipped");
                return Ok(0);
            }
        };
        let index = SharedIndex::new(Index::open(&self.index_path)?);
        let ids = crate::requests::purge_personal_data(&index, &self.config(), now)?;
        if !ids.is_empty() {
            tracing::info!(requests = ?ids,
                "removed the requesters' personal data from requests closed long enough ago");
        }
        Ok(ids.len())
    }

    /// Deletes audit entries older than `audit.retention_years`, unless the
    /// clock guard doubts the wall clock (then nothing, and the alarm says
    /// why).
    pub fn purge_audit(&self) -> Result<u64> {
        let years = self.config().audit.retention_years;
        let known = self.read_index()?.known_times()?;
        let now = match self.clock_guard.check(self.clocks.as_ref(), &known) {
            Ok(now) => now,
            Err(alarm) => {
                tracing::warn!(alarm = %alarm.state, "audit purge skipped");
                return Ok(0);
            }
        };
        let now = jiff::Timestamp::from_microsecond(now)
            .map_err(|e| Error::internal(format!("clock out of range: {e}")))?;
        let cutoff = now
            .to_zoned(jiff::tz::TimeZone::UTC)
            .checked_sub(jiff::Span::new().years(i64::from(years)))
            .map_err(|e| Error::internal(format!("audit retention cutoff: {e}")))?;
        self.audit.purge(cutoff.timestamp().as_microsecond())
    }
}

/// Retention status or plan, from `custos::retention`.
fn retention(state: &ApiState, config: &Config, plan: bool) -> Result<Value> {
    let index = state.read_index()?;
    let now = state.clocks.realtime();
    let value = if plan {
        serde_json::to_value(crate::retention::plan(
            &index,
            config,
            &state.leases,
            now,
            &crate::retention::statvfs_free,
        )?)
    } else {
        serde_json::to_value(crate::retention::status(
            &index,
            config,
            &state.leases,
            now,
        )?)
    };
    let mut value = value.map_err(|e| Error::internal(format!("retention report as JSON: {e}")))?;
    value["timezone"] = Value::String(config.timezone_name.clone());
    if !plan {
        // A request unanswered past its last day is kept past its purpose
        // as surely as footage past its ceiling (004 §32).
        let overdue = crate::requests::deadlines(&index, config, now)?.overdue;
        let n = value["violations"].as_u64().unwrap_or(0) + overdue.len() as u64;
        value["violations"] = n.into();
        value["overdue_requests"] = serde_json::to_value(&overdue)
            .map_err(|e| Error::internal(format!("overdue requests as JSON: {e}")))?;
    }
    // The plan is what a pass would do on this clock; while the clock is
    // doubted no pass deletes anything, and the report must say so.
    value["clock_alarm"] = serde_json::to_value(state.clock_guard.alarm())
        .map_err(|e| Error::internal(format!("clock alarm as JSON: {e}")))?;
    Ok(value)
}

/// Creates the socket at `path`: the parent directory if missing, a stale
/// socket file removed (but not a live one, nor anything that is not a
/// socket), mode 0660, group `group` (a name or a numeric gid) if it exists.
/// The socket's group is its own, never the daemon's: its members may
/// connect, the daemon's files stay closed to them.
pub fn bind(path: &Path, group: &str) -> Result<std::os::unix::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create directory", dir, e))?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(Error::conflict(format!(
                "{} exists and is not a socket; remove it or set daemon.socket to another path",
                path.display()
            )));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(Error::conflict(format!(
                "another process is serving on {}; is custosd already running?",
                path.display()
            )));
        }
        std::fs::remove_file(path).map_err(|e| Error::io("cannot remove stale socket", path, e))?;
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| Error::io("cannot create the admin socket", path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| Error::io("cannot set the mode of", path, e))?;
    let gid = match group.parse::<u32>() {
        Ok(n) => Some(nix::unistd::Gid::from_raw(n)),
        Err(_) => nix::unistd::Group::from_name(group)
            .ok()
            .flatten()
            .map(|g| g.gid),
    };
    match gid {
        Some(gid) => {
            nix::unistd::chown(path, None, Some(gid)).map_err(|e| {
                Error::io(
                    &format!("cannot give group {group}"),
                    path,
                    std::io::Error::from(e),
                )
            })?;
        }
        None => tracing::warn!(
            socket = %path.display(),
            "no group {group} (daemon.socket_group): the admin socket keeps the daemon's \
             group, so only the daemon's user and root can use custosctl; create the group \
             (groupadd --system {group}) and add the users who need custosctl to it"
        ),
    }
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("cannot configure", path, e))?;
    Ok(listener)
}
