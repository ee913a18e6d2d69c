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
//!   connections are served at once, further ones are closed at once.
//! - The server is [`serve`], a library function on a tokio runtime; the
//!   daemon runs it in a thread of its own through [`ApiServer`], so the API
//!   can never stall recording, and recording goes on if the API fails.

pub mod auth;
pub mod client;
pub mod errors;
mod evidence;
pub mod params;
pub mod routes;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

use crate::audit::AuditLog;
use crate::clock::{ClockGuard, Clocks};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::ingest::CameraStatus;
use crate::retention::{Leases, StorageAlarms};

use auth::Peer;
use errors::ApiError;

/// Live status of each running camera, by camera id; the recorder keeps it
/// up to date as cameras start and stop.
pub type CameraStatuses = Arc<RwLock<BTreeMap<String, Arc<CameraStatus>>>>;

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
    config: RwLock<Arc<Config>>,
    pub cameras: CameraStatuses,
    pub audit: AuditLog,
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
    control: std::sync::Mutex<Option<crate::daemon::ControlSender>>,
    /// Requests answered, by outcome, for `/v1/metrics`.
    pub requests: crate::metrics::RequestCounter,
    /// Turns for long requests ([`routes::is_long`]).
    long_work: Arc<Semaphore>,
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
        let key = crate::export::NodeKey::load_or_create(&config.daemon.state_dir)?;
        let audit = AuditLog::open(Index::open(&index_path)?, key)?;
        Ok(ApiState {
            limits: Limits::from_config(&config),
            started_us: clocks.realtime(),
            config: RwLock::new(Arc::new(config)),
            cameras,
            audit,
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
        })
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the config (after a successful reload): grants change at once.
    pub fn set_config(&self, config: Config) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }

    /// Connects camera operations to the daemon's main thread.
    pub fn set_control(&self, sender: crate::daemon::ControlSender) {
        *self.control.lock().unwrap_or_else(|p| p.into_inner()) = Some(sender);
    }

    /// Asks the daemon to enable, disable or restart a camera and waits for
    /// its answer.
    pub(crate) fn control_camera(
        &self,
        camera: &str,
        op: crate::daemon::CameraOp,
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
        let request = crate::daemon::ControlRequest {
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

    pub(crate) fn read_index(&self) -> Result<Index> {
        Index::open_read_only(&self.index_path)
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

/// Serves the API on `listener` until `shutdown` completes. Must run on a
/// tokio runtime with I/O and time enabled.
pub async fn serve(
    listener: UnixListener,
    state: Arc<ApiState>,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(state.limits.max_connections));
    let per_uid = Arc::new(std::sync::Mutex::new(BTreeMap::<u32, usize>::new()));
    let mut last_warned: Option<tokio::time::Instant> = None;
    let mut purge = tokio::time::interval(AUDIT_PURGE_INTERVAL);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = purge.tick() => {
                let state = state.clone();
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = state.purge_audit() {
                        tracing::error!(error = %e, "purging old audit entries");
                    }
                });
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Some(turn) = UidTurn::take(&per_uid, &stream) else {
                        // Closed at once, before any work for it; warned
                        // about at most once a minute, as a flood would
                        // otherwise fill the log too.
                        let now = tokio::time::Instant::now();
                        if last_warned.is_none_or(|t| now - t >= Duration::from_secs(60)) {
                            last_warned = Some(now);
                            tracing::warn!(
                                uid = stream.peer_cred().map(|c| c.uid()).ok(),
                                "admin API: a uid holds {MAX_CONNECTIONS_PER_UID} connections \
                                 already; closing its new ones"
                            );
                        }
                        continue;
                    };
                    match slots.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let state = state.clone();
                            tokio::spawn(async move {
                                connection(stream, state).await;
                                drop((permit, turn));
                            });
                        }
                        Err(_) => tracing::warn!("admin API: too many connections; closing a new one"),
                    }
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "admin API: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// One of a uid's [`MAX_CONNECTIONS_PER_UID`] connections, given back when
/// dropped.
struct UidTurn {
    uid: u32,
    counts: Arc<std::sync::Mutex<BTreeMap<u32, usize>>>,
}

impl UidTurn {
    /// A turn for the peer of `stream`, or None if its uid has all of its
    /// turns (or the kernel names no peer).
    fn take(
        counts: &Arc<std::sync::Mutex<BTreeMap<u32, usize>>>,
        stream: &UnixStream,
    ) -> Option<UidTurn> {
        let uid = stream.peer_cred().ok()?.uid();
        let mut map = counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(uid).or_default();
        if *n >= MAX_CONNECTIONS_PER_UID {
            return None;
        }
        *n += 1;
        Some(UidTurn {
            uid,
            counts: counts.clone(),
        })
    }
}

impl Drop for UidTurn {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.uid);
            }
        }
    }
}

async fn connection(stream: UnixStream, state: Arc<ApiState>) {
    let cred = match stream.peer_cred() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "admin API: no peer credentials; closing");
            return;
        }
    };
    let (uid, gid, pid) = (cred.uid(), cred.gid(), cred.pid().unwrap_or(0));
    let Ok(peer) = tokio::task::spawn_blocking(move || Peer::resolve(uid, gid, pid)).await else {
        return;
    };
    let peer = Arc::new(peer);
    let limits = state.limits.clone();
    let activity = Arc::new(Activity::default());
    let act = activity.clone();
    let service = service_fn(move |req| {
        let (state, peer, act) = (state.clone(), peer.clone(), act.clone());
        async move { Ok::<_, Infallible>(respond(state, peer, act, req).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let opened = tokio::time::Instant::now();
    let mut seen = 0;
    loop {
        tokio::select! {
            r = &mut conn => {
                if let Err(e) = r {
                    tracing::debug!(uid, pid, error = %e, "admin API connection ended");
                }
                return;
            }
            _ = tokio::time::sleep(STREAM_STALL_TIMEOUT.min(MAX_CONNECTION_LIFETIME)) => {
                let sent = activity.bytes.load(Ordering::Relaxed);
                if activity.handling.load(Ordering::Relaxed) > 0 {
                    // A handler at work (an export re-hashing a day of
                    // footage takes minutes): not idle, not stalled.
                } else if activity.streams.load(Ordering::Relaxed) > 0 {
                    if sent == seen {
                        tracing::warn!(uid, pid, "admin API: the reader of a streamed reply \
                            took nothing for {}; closing", humantime::format_duration(STREAM_STALL_TIMEOUT));
                        return;
                    }
                } else if opened.elapsed() >= MAX_CONNECTION_LIFETIME {
                    tracing::debug!(uid, pid, "admin API connection closed after its lifetime");
                    return;
                }
                seen = sent;
            }
        }
    }
}

/// What a connection's streamed replies are doing, for its watchdog.
#[derive(Debug, Default)]
struct Activity {
    /// Requests being handled.
    handling: AtomicUsize,
    /// Streams running.
    streams: AtomicUsize,
    /// Bytes handed to the connection by streams.
    bytes: AtomicU64,
}

/// A reply body: whole, or chunks from a streaming thread.
pub enum ReplyBody {
    Whole(Option<Bytes>),
    Streamed(tokio::sync::mpsc::Receiver<Bytes>),
}

impl ReplyBody {
    fn whole(bytes: impl Into<Bytes>) -> Self {
        ReplyBody::Whole(Some(bytes.into()))
    }
}

impl hyper::body::Body for ReplyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ReplyBody::Whole(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ReplyBody::Streamed(rx) => rx.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ReplyBody::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReplyBody::Whole(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ReplyBody::Streamed(_) => SizeHint::default(),
        }
    }
}

/// The streaming thread's end of a [`ReplyBody::Streamed`]: buffers writes
/// into chunks and blocks while the connection is behind. A write fails once
/// the connection is gone.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    activity: Arc<Activity>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(STREAM_CHUNK),
        ));
        let n = chunk.len() as u64;
        self.tx.blocking_send(chunk).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client closed the connection",
            )
        })?;
        self.activity.bytes.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(STREAM_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= STREAM_CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Runs a streamed reply on a thread of its own (an export may take
/// minutes; the blocking pool stays free) and writes its closing audit entry.
fn start_stream(
    state: Arc<ApiState>,
    peer: Arc<Peer>,
    activity: Arc<Activity>,
    stream: routes::Stream,
) -> Result<tokio::sync::mpsc::Receiver<Bytes>> {
    let (tx, rx) = tokio::sync::mpsc::channel(STREAM_CHUNKS_IN_FLIGHT);
    activity.streams.fetch_add(1, Ordering::Relaxed);
    let counted = activity.clone();
    let spawned = std::thread::Builder::new()
        .name("custos-stream".into())
        .spawn(move || {
            let mut w = ChannelWriter {
                tx,
                buf: Vec::with_capacity(STREAM_CHUNK),
                activity: activity.clone(),
            };
            let run = stream.run;
            let result = run(&mut w).and_then(|note| {
                std::io::Write::flush(&mut w)
                    .map(|()| note)
                    .map_err(|e| Error::unavailable(format!("the client went away: {e}")))
            });
            let (outcome, note) = match &result {
                Ok(note) => ("ok", note.clone()),
                Err(e) => (e.kind.as_str(), e.message.clone()),
            };
            if let Err(e) = &result {
                tracing::warn!(uid = peer.uid, error = %e, "a streamed reply ended early");
            }
            let a = stream.audit;
            let record = crate::audit::Record {
                at_us: state.clocks.realtime(),
                uid: peer.uid,
                user: peer.user_name(),
                pid: peer.pid,
                role: a.role,
                action: a.action,
                target: format!("{}: {note}", a.target),
                reason: a.reason,
                outcome: outcome.to_owned(),
            };
            if let Err(e) = state.audit.append(record) {
                tracing::error!(error = %e, "cannot write the audit entry ending a stream");
            }
            activity.streams.fetch_sub(1, Ordering::Relaxed);
        });
    if let Err(e) = spawned {
        counted.streams.fetch_sub(1, Ordering::Relaxed);
        return Err(Error::internal(format!(
            "cannot start a streaming thread: {e}"
        )));
    }
    Ok(rx)
}

async fn respond(
    state: Arc<ApiState>,
    peer: Arc<Peer>,
    activity: Arc<Activity>,
    req: hyper::Request<Incoming>,
) -> hyper::Response<ReplyBody> {
    let (parts, body) = req.into_parts();
    let limit = state.limits.max_body_bytes;
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return json_response(ApiError::too_large(limit).into());
    }
    let body = match tokio::time::timeout(
        state.limits.body_timeout,
        Limited::new(body, limit as usize).collect(),
    )
    .await
    {
        Err(_) => {
            return json_response(
                ApiError::timeout(format!(
                    "the request body did not arrive within {}",
                    humantime::format_duration(state.limits.body_timeout)
                ))
                .into(),
            );
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return json_response(ApiError::too_large(limit).into());
        }
        Ok(Err(e)) => {
            return json_response(
                ApiError::from(Error::invalid(format!("cannot read the request body: {e}"))).into(),
            );
        }
        Ok(Ok(c)) => c.to_bytes(),
    };
    let (st, pr) = (state.clone(), peer.clone());
    activity.handling.fetch_add(1, Ordering::Relaxed);
    // A long request waits for its turn here, holding no thread.
    let _turn = if routes::is_long(&parts.method, parts.uri.path()) {
        state.long_work.clone().acquire_owned().await.ok()
    } else {
        None
    };
    let mut reply = tokio::task::spawn_blocking(move || {
        routes::handle(
            &st,
            &pr,
            routes::Request {
                method: &parts.method,
                path: parts.uri.path(),
                query: parts.uri.query(),
                body: &body,
            },
        )
    })
    .await
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "admin API handler failed");
        ApiError::from(Error::internal(
            "the request failed inside custosd; see its log",
        ))
        .into()
    });
    activity.handling.fetch_sub(1, Ordering::Relaxed);
    if let Some(stream) = reply.stream.take() {
        let content_type = stream.content_type;
        return match start_stream(state, peer, activity, stream) {
            Ok(rx) => hyper::Response::builder()
                .status(reply.status)
                .header(http::header::CONTENT_TYPE, content_type)
                .body(ReplyBody::Streamed(rx))
                .expect("static response parts are valid"),
            Err(e) => json_response(ApiError::from(e).into()),
        };
    }
    json_response(reply)
}

fn json_response(reply: routes::Reply) -> hyper::Response<ReplyBody> {
    // A text reply (the Prometheus metrics) goes out as it is.
    if let Some((content_type, text)) = reply.text {
        return hyper::Response::builder()
            .status(reply.status)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(ReplyBody::whole(text))
            .expect("static response parts are valid");
    }
    let mut body = serde_json::to_vec_pretty(&reply.body).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    hyper::Response::builder()
        .status(reply.status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(ReplyBody::whole(body))
        .expect("static response parts are valid")
}

/// The API running on its own thread and tokio runtime.
pub struct ApiServer {
    pub state: Arc<ApiState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiServer {
    /// Starts serving `listener` (from [`bind`]) in a new thread.
    pub fn start(
        listener: std::os::unix::net::UnixListener,
        state: Arc<ApiState>,
    ) -> Result<ApiServer> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(BLOCKING_THREADS)
            .thread_name("custos-api")
            .build()
            .map_err(|e| Error::internal(format!("cannot start the API runtime: {e}")))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("custos-api".into())
            .spawn(move || {
                runtime.block_on(async move {
                    if let Some(addr) = st.config().api.metrics_listen {
                        match tokio::net::TcpListener::bind(addr).await {
                            Ok(l) => {
                                tracing::info!(%addr, "metrics served over TCP");
                                tokio::spawn(crate::metrics::serve_tcp(l, st.clone()));
                            }
                            Err(e) => tracing::error!(%addr, error = %e,
                                "cannot serve metrics over TCP; they stay on the admin socket"),
                        }
                    }
                    match UnixListener::from_std(listener) {
                        Ok(l) => {
                            serve(l, st, async {
                                let _ = rx.await;
                            })
                            .await
                        }
                        Err(e) => tracing::error!(error = %e, "admin API: bad listener"),
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(2));
            })
            .map_err(|e| Error::internal(format!("cannot start the API thread: {e}")))?;
        Ok(ApiServer {
            state,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// Binds `config.daemon.socket` and starts serving, for the daemon.
    pub fn start_daemon(
        config: &Config,
        cameras: CameraStatuses,
        clocks: Arc<dyn Clocks>,
        index_path: PathBuf,
        leases: Arc<Leases>,
        alarms: Arc<StorageAlarms>,
        clock_guard: Arc<ClockGuard>,
    ) -> Result<ApiServer> {
        let listener = bind(&config.daemon.socket, &config.daemon.socket_group)?;
        let reload: ReloadFn = Arc::new(|| {
            nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGHUP)
                .map_err(|e| Error::internal(format!("cannot signal the reload: {e}")))
        });
        let state = ApiState::new(
            config.clone(),
            cameras,
            clocks,
            index_path,
            reload,
            leases,
            alarms,
            clock_guard,
        )?;
        tracing::info!(socket = %config.daemon.socket.display(), "admin API listening");
        ApiServer::start(listener, Arc::new(state))
    }

    /// Stops accepting, ends the runtime and waits for the thread.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop_inner();
    }
}
