//! Serving the API: accepting connections (at most
//! [`super::MAX_CONNECTIONS_PER_UID`] per uid and
//! [`super::Limits::max_connections`] in all), reading each request within
//! its limits, handing it to [`super::routes::handle`] on the blocking pool
//! (long requests take turns), and the thread and runtime it all runs on.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

use super::auth::Peer;
use super::errors::ApiError;
use super::stream::{ReplyBody, start_stream};
use super::{
    ALERT_TICK, AUDIT_PURGE_INTERVAL, AUDIT_VERIFY_INTERVAL, ApiState, BLOCKING_THREADS,
    CameraStatuses, MAX_CONNECTION_LIFETIME, MAX_CONNECTIONS_PER_UID, ReloadFn,
    STREAM_STALL_TIMEOUT, bind, routes,
};
use crate::clock::{ClockGuard, Clocks};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::retention::{Leases, StorageAlarms};

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
    let mut verify = tokio::time::interval(AUDIT_VERIFY_INTERVAL);
    let mut alerts = tokio::time::interval(ALERT_TICK);
    alerts.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = alerts.tick() => {
                let state = state.clone();
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = state.alert_tick() {
                        tracing::error!(error = %e, "looking for or sending alerts");
                    }
                });
            }
            _ = verify.tick() => {
                let state = state.clone();
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = state.verify_audit() {
                        tracing::error!(error = %e, "verifying the audit chain");
                    }
                    if let Err(e) = state.sweep_integrity() {
                        tracing::error!(error = %e, "checking recorded footage against the index");
                    }
                });
            }
            _ = purge.tick() => {
                let state = state.clone();
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = state.purge_audit() {
                        tracing::error!(error = %e, "purging old audit entries");
                    }
                    if let Err(e) = state.purge_register() {
                        tracing::error!(error = %e, "purging personal data from the request register");
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
pub(super) struct Activity {
    /// Requests being handled.
    pub(super) handling: AtomicUsize,
    /// Streams running.
    pub(super) streams: AtomicUsize,
    /// Bytes handed to the connection by streams.
    pub(super) bytes: AtomicU64,
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
    let range = parts
        .headers
        .get(http::header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
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
    if let Some(mut stream) = reply.stream.take() {
        let content_type = stream.content_type;
        let status = super::stream::apply_range(&mut stream, range.as_deref(), reply.status);
        let headers = std::mem::take(&mut stream.headers);
        return match start_stream(state, peer, activity, stream) {
            Ok(rx) => {
                let mut b = hyper::Response::builder()
                    .status(status)
                    .header(http::header::CONTENT_TYPE, content_type);
                for (k, v) in headers {
                    b = b.header(k, v);
                }
                b.body(ReplyBody::Streamed(rx)).unwrap_or_else(|_| {
                    json_response(
                        ApiError::from(Error::internal(
                            "a streamed reply's header is not valid HTTP",
                        ))
                        .into(),
                    )
                })
            }
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
                                tokio::spawn(serve_metrics_tcp(l, st.clone()));
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

/// Serves `GET /metrics` on a loopback TCP listener (`api.metrics_listen`),
/// for scrapers that cannot reach the Unix socket. It shows only what
/// `/v1/metrics` shows (counts and health, no footage, no personal data),
/// takes no input, and is not audited per scrape; config validation keeps
/// it on loopback.
async fn serve_metrics_tcp(listener: tokio::net::TcpListener, state: Arc<ApiState>) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioIo, TokioTimer};

    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics port: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let state = state.clone();
                async move {
                    let (status, kind, body) =
                        if req.method() == hyper::Method::GET && req.uri().path() == "/metrics" {
                            let rendered =
                                tokio::task::spawn_blocking(move || state.render_metrics()).await;
                            match rendered {
                                Ok(Ok(text)) => (200, crate::metrics::CONTENT_TYPE, text),
                                Ok(Err(e)) => (503, "text/plain", format!("{e}\n")),
                                Err(_) => (500, "text/plain", "internal error\n".to_owned()),
                            }
                        } else {
                            (
                                404,
                                "text/plain",
                                "only GET /metrics is served here\n".to_owned(),
                            )
                        };
                    let reply = hyper::Response::builder()
                        .status(status)
                        .header("content-type", kind)
                        .body(Full::new(Bytes::from(body)))
                        .expect("a valid response");
                    Ok::<_, std::convert::Infallible>(reply)
                }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(5));
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
