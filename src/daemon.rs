//! The daemon: opens the index, runs the recovery pass, starts one camera
//! per enabled camera, and answers signals. SIGTERM/SIGINT finalise every
//! open segment and exit within `shutdown_timeout` (a second one exits at
//! once; recovery makes the next start consistent). SIGHUP reloads the
//! config: only added, removed and changed cameras are touched; a bad new
//! config is logged and the old one stays in force.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

use crate::clock::{ClockGuard, Clocks, SystemClocks};
use crate::config::{Camera, Config};
use crate::error::{Error, Result};
use crate::index::Index;
use crate::index::SharedIndex;
use crate::ingest::control::{CameraOp, CameraStatuses, ControlRequest};
use crate::ingest::finisher::{Finisher, FinisherThread};
use crate::ingest::segmenter::Target;
use crate::ingest::{CameraHandle, CameraSettings, CameraState, CameraStatus};
use crate::retention::{Leases, Reaper, StorageAlarms};

/// The signals the daemon handles; blocked in every thread and taken with
/// `sigtimedwait` by the main thread.
fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    set
}

/// Blocks the handled signals in the calling thread and every thread it
/// starts afterwards. Call first thing in `main`, before any thread exists.
pub fn block_signals() -> Result<()> {
    handled_signals()
        .thread_block()
        .map_err(|e| Error::internal(format!("cannot block signals: {e}")))
}

/// How often the main thread looks for camera operations from the API.
const CONTROL_POLL: Duration = Duration::from_millis(100);

/// Why a camera starting with the daemon has a gap since its last footage.
const GAP_NOT_RUNNING: &str = "custosd was not recording (stopped or restarting)";

/// A running recorder: the index, the finisher, and the cameras.
pub struct Recorder {
    config: Config,
    index: SharedIndex,
    clocks: Arc<dyn Clocks>,
    finisher: Option<Finisher>,
    finisher_thread: Option<FinisherThread>,
    cameras: BTreeMap<String, CameraHandle>,
    /// Live status of each running camera, shared with the admin API.
    statuses: CameraStatuses,
    leases: Arc<Leases>,
    alarms: Arc<StorageAlarms>,
    /// Whether the wall clock may be trusted to destroy: shared by the
    /// reaper and the admin API's audit purge.
    clock_guard: Arc<ClockGuard>,
    reaper: Option<Reaper>,
    /// What the start-up recovery pass did.
    recovery: crate::recovery::Report,
    /// Cameras an operator disabled at run time, with why (outage reason
    /// when they are enabled again).
    disabled: BTreeMap<String, String>,
}

impl Recorder {
    /// Opens the index, recovers what a crash left, and starts the cameras.
    pub fn start(config: Config, clocks: Arc<dyn Clocks>) -> Result<Recorder> {
        gstreamer::init().map_err(|e| {
            Error::unavailable(format!("GStreamer could not start: {e}; run scripts/setup"))
        })?;
        prepare_dirs(&config)?;
        let db = index_path(&config);
        let index = SharedIndex::new(Index::open(&db)?);
        let recovery = crate::recovery::run(&index, &config, clocks.realtime())?;
        // The node key signs export manifests; made at first start (0600).
        crate::export::NodeKey::load_or_create(&config.daemon.state_dir)?;
        let leases = Leases::new();
        let alarms = StorageAlarms::new();
        let clock_guard = ClockGuard::new();
        let reaper = Reaper::start(
            index.clone(),
            config.clone(),
            leases.clone(),
            alarms.clone(),
            clocks.clone(),
            clock_guard.clone(),
        );
        let waker = reaper.waker();
        let (finisher, finisher_thread) =
            Finisher::start_with_hook(index.clone(), Arc::new(move |_| waker.segment_finished()));
        let mut recorder = Recorder {
            config,
            index,
            clocks,
            finisher: Some(finisher),
            finisher_thread: Some(finisher_thread),
            cameras: BTreeMap::new(),
            statuses: Default::default(),
            leases,
            alarms,
            clock_guard,
            reaper: Some(reaper),
            recovery,
            disabled: BTreeMap::new(),
        };
        let cameras: Vec<Camera> = recorder
            .config
            .cameras
            .iter()
            .filter(|c| c.enabled)
            .cloned()
            .collect();
        for camera in cameras {
            recorder.start_camera(camera)?;
        }
        tracing::info!(
            cameras = recorder.cameras.len(),
            index = %db.display(),
            "recording"
        );
        Ok(recorder)
    }

    pub fn index(&self) -> &SharedIndex {
        &self.index
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Read leases: take one while reading footage so retention spares it.
    pub fn leases(&self) -> &Arc<Leases> {
        &self.leases
    }

    /// Storage roots full of protected footage, for the status API.
    pub fn storage_alarms(&self) -> &Arc<StorageAlarms> {
        &self.alarms
    }

    /// The clock guard of destruction, for the status API and the audit purge.
    pub fn clock_guard(&self) -> &Arc<ClockGuard> {
        &self.clock_guard
    }

    /// What the start-up recovery pass did.
    pub fn recovery_report(&self) -> &crate::recovery::Report {
        &self.recovery
    }

    /// Live camera statuses, kept current as cameras start and stop.
    pub fn camera_statuses(&self) -> CameraStatuses {
        self.statuses.clone()
    }

    pub fn cameras(&self) -> impl Iterator<Item = &CameraHandle> {
        self.cameras.values()
    }

    fn settings(&self) -> CameraSettings {
        CameraSettings {
            stall_timeout: self.config.daemon.stall_timeout,
            retry_max: self.config.daemon.retry_max,
        }
    }

    fn target(&self, camera: &Camera) -> Result<Target> {
        let root = self.config.camera_root(camera);
        Ok(Target {
            camera: self.index.lock().camera_id(&camera.id)?,
            camera_name: camera.id.clone(),
            zone: camera.zone.clone(),
            root_id: root.id.clone(),
            root_path: root.path.clone(),
            segment_us: camera.segment.as_micros() as i64,
        })
    }

    fn start_camera(&mut self, camera: Camera) -> Result<()> {
        self.start_camera_after(camera, GAP_NOT_RUNNING.to_owned())
    }

    /// Starts `camera`; `gap_reason` explains the gap since its last footage.
    fn start_camera_after(&mut self, camera: Camera, gap_reason: String) -> Result<()> {
        let target = self.target(&camera)?;
        let finisher = self.finisher.clone().expect("finisher runs until shutdown");
        let handle = CameraHandle::spawn(
            camera.clone(),
            target,
            self.settings(),
            self.index.clone(),
            finisher,
            self.clocks.clone(),
            gap_reason,
        );
        self.statuses
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(camera.id.clone(), handle.status.clone());
        self.cameras.insert(camera.id, handle);
        Ok(())
    }

    /// Replaces the config: starts added cameras, stops removed ones and
    /// restarts changed ones. Untouched cameras keep recording.
    pub fn apply(&mut self, new: Config) -> Result<()> {
        if let Some(reaper) = &self.reaper {
            reaper.set_config(new.clone());
        }
        let old = std::mem::replace(&mut self.config, new);
        let mut stopping = Vec::new();
        let ids: Vec<String> = self.cameras.keys().cloned().collect();
        for id in ids {
            let keep = self.config.camera(&id).is_some_and(|c| {
                c.enabled && Some(c) == old.camera(&id) && self.target_unchanged(&old, c)
            });
            if !keep {
                let handle = self.cameras.remove(&id).expect("listed above");
                self.statuses
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                handle.request_stop();
                stopping.push(handle);
            }
        }
        // Stop in parallel, then start: a changed camera's old segment is
        // final before its new one begins.
        for handle in stopping {
            tracing::info!(camera = %handle.camera.id, "stopping (config changed)");
            handle.join();
        }
        self.flush_finished();
        let to_start: Vec<Camera> = self
            .config
            .cameras
            .iter()
            .filter(|c| {
                c.enabled && !self.cameras.contains_key(&c.id) && !self.disabled.contains_key(&c.id)
            })
            .cloned()
            .collect();
        for camera in to_start {
            tracing::info!(camera = %camera.id, "starting (config changed)");
            self.start_camera(camera)?;
        }
        Ok(())
    }

    /// Enables, disables or restarts a camera at run time. Returns a
    /// sentence saying what was done.
    pub fn control(&mut self, camera: &str, op: CameraOp, by: &str) -> Result<String> {
        let Some(config) = self.config.camera(camera).cloned() else {
            return Err(Error::not_found(format!(
                "there is no camera {camera:?} in the configuration"
            )));
        };
        if !config.enabled {
            return Err(Error::conflict(format!(
                "camera {camera} is disabled in the configuration (enabled = false); set \
                 enabled = true in {} and reload",
                self.config.path.display()
            )));
        }
        match op {
            CameraOp::Disable => {
                if let Some(handle) = self.cameras.remove(camera) {
                    handle.stop();
                    self.flush_finished();
                }
                let reason = format!("disabled by {by}");
                self.disabled.insert(camera.to_owned(), reason);
                self.statuses
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(
                        camera.to_owned(),
                        Arc::new(CameraStatus::new(CameraState::Disabled)),
                    );
                tracing::warn!(camera, by, "camera disabled: not recording until enabled");
                Ok(format!(
                    "camera {camera} is disabled; its open segment was finalised"
                ))
            }
            CameraOp::Enable => {
                let Some(reason) = self.disabled.remove(camera) else {
                    return Ok(format!("camera {camera} is already enabled"));
                };
                self.start_camera_after(config, reason)?;
                tracing::info!(camera, by, "camera enabled");
                Ok(format!("camera {camera} is enabled and connecting"))
            }
            CameraOp::Restart => {
                if self.disabled.contains_key(camera) {
                    return Err(Error::conflict(format!(
                        "camera {camera} was disabled by an operator; enable it instead"
                    )));
                }
                if let Some(handle) = self.cameras.remove(camera) {
                    handle.stop();
                    self.flush_finished();
                }
                self.start_camera_after(config, format!("restarted by {by}"))?;
                tracing::info!(camera, by, "camera restarted");
                Ok(format!("camera {camera} was restarted and is connecting"))
            }
        }
    }

    /// Waits for the finisher, so segments of stopped cameras are complete.
    fn flush_finished(&self) {
        if let Some(f) = &self.finisher {
            f.flush();
        }
    }

    fn target_unchanged(&self, old: &Config, camera: &Camera) -> bool {
        let (a, b) = (old.camera_root(camera), self.config.camera_root(camera));
        a.id == b.id && a.path == b.path
    }

    /// Stops every camera, finalising open segments, and waits until every
    /// finished segment is durable and indexed.
    pub fn shutdown(mut self) {
        if let Some(reaper) = self.reaper.take() {
            reaper.stop();
        }
        for handle in self.cameras.values() {
            handle.request_stop();
        }
        for (_, handle) in std::mem::take(&mut self.cameras) {
            handle.join();
        }
        self.finisher = None;
        if let Some(t) = self.finisher_thread.take() {
            t.join();
        }
        tracing::info!("all segments finalised");
    }
}

/// Creates the state directory and the storage roots marked `create`, and
/// makes every root of the daemon's data (state, storage, evidence) its
/// alone: a root left open to a group by an older install is closed, so no
/// group membership reaches footage, the index or the node key.
fn prepare_dirs(config: &Config) -> Result<()> {
    let mut dirs: Vec<&Path> = vec![&config.daemon.state_dir];
    dirs.extend(
        config
            .storage
            .iter()
            .filter(|r| r.create)
            .map(|r| r.path.as_path()),
    );
    for dir in dirs {
        crate::storage::create_private_dir_all(dir)?;
    }
    let roots = std::iter::once(config.daemon.state_dir.as_path())
        .chain(config.storage.iter().map(|r| r.path.as_path()))
        .chain(std::iter::once(config.evidence.path.as_path()))
        .filter(|d| d.is_dir());
    for dir in roots {
        match crate::storage::make_private_dir(dir) {
            Ok(None) => {}
            Ok(Some(was)) => tracing::warn!(
                dir = %dir.display(),
                "{} was mode {was:04o}: group and others could reach footage or the index \
                 around the API; it is now owner-only",
                dir.display()
            ),
            Err(e) => tracing::error!(
                error = %e,
                "{} is open to other users and cannot be closed: they may read footage or \
                 the index without a role or an audit entry; chmod 0700 it as its owner",
                dir.display()
            ),
        }
    }
    for root in &config.storage {
        if !root.path.is_dir() {
            return Err(Error::unavailable(format!(
                "storage root {} ({}) is missing; if it is a separate disk, check that it is \
                 mounted",
                root.id,
                root.path.display()
            )));
        }
    }
    Ok(())
}

/// Where the index database lives.
/// The redaction worker, on a connection of its own (its footage plans
/// read many segment rows; the recorder's connection stays free).
fn start_redactor(recorder: &Recorder) -> Option<crate::redact::Worker> {
    let index = match Index::open(&index_path(recorder.config())) {
        Ok(ix) => SharedIndex::new(ix),
        Err(e) => {
            tracing::error!(error = %e, "the redaction worker cannot open the index; redactions wait");
            return None;
        }
    };
    Some(crate::redact::Worker::start(crate::redact::job::Context {
        index,
        config: Arc::new(std::sync::Mutex::new(Arc::new(recorder.config().clone()))),
        leases: recorder.leases().clone(),
        clocks: Arc::new(SystemClocks),
        model_dir: crate::redact::model_dir(),
    }))
}

pub fn index_path(config: &Config) -> PathBuf {
    config.daemon.state_dir.join("index.db")
}

/// Runs the daemon until SIGTERM or SIGINT. `block_signals` must have been
/// called before any thread was started.
pub fn run(config_path: &Path, config: Config) -> Result<()> {
    let shutdown_timeout = config.daemon.shutdown_timeout;
    let clocks: Arc<dyn Clocks> = Arc::new(SystemClocks);
    let mut recorder = Recorder::start(config, clocks.clone())?;
    // Recording matters more than administration: if the API cannot start,
    // say so loudly and keep recording.
    let api = match crate::api::ApiServer::start_daemon(
        recorder.config(),
        recorder.camera_statuses(),
        clocks,
        index_path(recorder.config()),
        recorder.leases().clone(),
        recorder.storage_alarms().clone(),
        recorder.clock_guard().clone(),
    ) {
        Ok(api) => Some(api),
        Err(e) => {
            tracing::error!(error = %e, "the admin API did not start; recording continues");
            None
        }
    };
    let signals = handled_signals();
    let (control_tx, control_rx) = mpsc::channel::<ControlRequest>();
    if let Some(api) = &api {
        api.state.set_control(control_tx);
        api.state.unreadable_at_start.store(
            recorder.recovery_report().kept,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    let inbox_status = Arc::new(crate::inbox::InboxStatus::default());
    if let Some(api) = &api {
        let _ = api.state.inbox.set(inbox_status.clone());
    }
    let mut inboxes = start_inboxes(&recorder, api.as_ref(), &inbox_status);
    let vault_status = Arc::new(crate::vault::VaultStatus::default());
    if let Some(api) = &api {
        let _ = api.state.vault.set(vault_status.clone());
    }
    let start_vault = |recorder: &Recorder| {
        crate::vault::Vault::start(
            recorder.config(),
            recorder.index().clone(),
            Arc::new(SystemClocks),
            vault_status.clone(),
        )
    };
    let mut vault = start_vault(&recorder);
    let redactor = start_redactor(&recorder);
    // The index is open, the pipelines are started and the socket is bound
    // (or the API failed, which must not hold up recording).
    crate::notify::ready(&ready_status(&recorder, api.is_some()));
    let mut watchdog = crate::notify::Watchdog::from_env(Instant::now());
    loop {
        if let Some(w) = &mut watchdog {
            let stall = recorder.config().daemon.stall_timeout;
            w.tick(Instant::now(), || observe(&recorder), stall);
        }
        // Camera operations from the API are served here, by the thread that
        // owns the recorder, between signal checks.
        while let Ok(req) = control_rx.try_recv() {
            let result = recorder.control(&req.camera, req.op, &req.by);
            let _ = req.reply.send(result);
        }
        match wait_signal(&signals, Some(CONTROL_POLL)) {
            Some(Signal::SIGHUP) => {
                crate::notify::reloading();
                reload(&mut recorder, config_path);
                if let Some(w) = inboxes.take() {
                    w.stop();
                }
                inboxes = start_inboxes(&recorder, api.as_ref(), &inbox_status);
                // A worker is replaced only for a new [vault]: one that is
                // stopped waits for its request in flight, so two never
                // upload the same copy.
                if vault.as_ref().map(crate::vault::Vault::config)
                    != recorder.config().vault.as_ref()
                {
                    if let Some(v) = vault.take() {
                        v.stop(true);
                    }
                    vault = start_vault(&recorder);
                }
                if let Some(r) = &redactor {
                    r.set_config(Arc::new(recorder.config().clone()));
                }
                if let Some(api) = &api {
                    api.state.set_config(recorder.config().clone());
                }
                crate::notify::ready(&ready_status(&recorder, api.is_some()));
            }
            Some(sig) => {
                crate::notify::stopping();
                tracing::info!(signal = %sig, "stopping: finalising open segments");
                break;
            }
            None => {}
        }
    }
    if let Some(w) = inboxes.take() {
        w.stop();
    }
    // An upload in flight is cut off with the process; the next start
    // finds what reached the store (`crate::vault`).
    if let Some(v) = vault.take() {
        v.stop(false);
    }
    // A job stops at its next batch and resumes at the next start.
    if let Some(r) = redactor {
        r.stop();
    }
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        if crate::failpoint::is("slow-shutdown") {
            std::thread::sleep(Duration::from_secs(5));
        }
        if let Some(api) = api {
            api.stop();
        }
        recorder.shutdown();
        let _ = done_tx.send(());
    });
    let deadline = Instant::now() + shutdown_timeout;
    loop {
        if done_rx.try_recv().is_ok() {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::unavailable(format!(
                "open segments were not finalised within {}; the next start recovers them",
                humantime::format_duration(shutdown_timeout)
            )));
        }
        if let Some(sig) = wait_signal(&signals, Some(left.min(Duration::from_millis(50))))
            && sig != Signal::SIGHUP
        {
            tracing::warn!(signal = %sig, "second stop signal: exiting at once");
            std::process::exit(1);
        }
    }
}

/// Starts taking device files from the inboxes. Each ingest is audited
/// before it acts, so without the API's audit log no inbox runs.
fn start_inboxes(
    recorder: &Recorder,
    api: Option<&crate::api::ApiServer>,
    status: &Arc<crate::inbox::InboxStatus>,
) -> Option<crate::inbox::Watcher> {
    if recorder.config().inboxes.is_empty() {
        return None;
    }
    let Some(api) = api else {
        tracing::error!(
            "the admin API (and its audit log) did not start: inbox files are not taken"
        );
        return None;
    };
    let state = api.state.clone();
    let audit: crate::inbox::AuditSink = Arc::new(move |r| state.audit.append(r).map(|_| ()));
    let waker = recorder.reaper.as_ref().map(|r| r.waker());
    let stored: crate::inbox::StoredHook = Arc::new(move |expired| {
        if let Some(waker) = &waker {
            if expired {
                waker.wake();
            } else {
                waker.segment_finished();
            }
        }
    });
    Some(crate::inbox::Watcher::start(
        recorder.config().clone(),
        recorder.index().clone(),
        Arc::new(SystemClocks),
        audit,
        status.clone(),
        stored,
    ))
}

/// The one-line status systemd shows (`systemctl status custosd`).
fn ready_status(recorder: &Recorder, api: bool) -> String {
    let n = recorder.cameras().count();
    if api {
        format!("recording {n} camera(s); admin API up")
    } else {
        format!("recording {n} camera(s); the admin API failed to start (see the log)")
    }
}

/// What the watchdog's progress check looks at.
fn observe(recorder: &Recorder) -> Vec<crate::notify::CameraObservation> {
    recorder
        .cameras()
        .map(|h| {
            let snap = h.status.snapshot();
            crate::notify::CameraObservation {
                id: h.camera.id.clone(),
                state: snap.state,
                last_data: h.status.last_data(),
                segments_written: snap.segments_written,
                finishing_since: h.status.finishing_since(),
                segment: h.camera.segment,
            }
        })
        .collect()
}

fn reload(recorder: &mut Recorder, path: &Path) {
    tracing::info!(config = %path.display(), "reloading the configuration");
    match Config::load(path) {
        Ok(new) => {
            if let Err(e) = recorder.apply(new) {
                tracing::error!(error = %e, "applying the new configuration");
            }
        }
        Err(errors) => {
            for e in errors.iter() {
                tracing::error!("{e}");
            }
            tracing::error!("the new configuration has errors; the old one stays in force");
        }
    }
}

/// Waits for one of `set`, up to `timeout` (forever if None).
fn wait_signal(set: &SigSet, timeout: Option<Duration>) -> Option<Signal> {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs() as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `set` is a valid sigset_t and `ptr` is null or points to a live timespec.
    let n = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), ptr) };
    if n < 0 {
        None
    } else {
        Signal::try_from(n).ok()
    }
}
