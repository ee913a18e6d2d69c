//! Supervision of one camera: connect, watch for errors, end of stream and
//! stalls, reconnect with capped exponential backoff and jitter, and record
//! every gap as an outage row. Each camera has its own RTSP connection
//! (retina's client or a GStreamer pipeline), so one bad camera cannot
//! disturb another; its supervisor is a task on the ingest runtime, asleep
//! until an event or its stall deadline.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use rand::Rng;
use tokio::sync::mpsc;

use crate::clock::{Clocks, UnixMicros};
use crate::config::{Camera, RtspClient, redact_url};
use crate::index::OutageId;

use super::finisher::Finisher;
use super::retina_source::RetinaSource;
use super::runtime::{blocking, runtime};
use super::segmenter::{Segmenter, Target};
use super::{CameraState, CameraStatus, pipeline};
use crate::index::SharedIndex;

/// The first retry waits this long; each failure doubles it up to `retry_max`.
const RETRY_BASE: Duration = Duration::from_secs(1);

/// Recording this long without a failure resets the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);

/// Timing settings shared by all cameras.
#[derive(Debug, Clone)]
pub struct CameraSettings {
    pub stall_timeout: Duration,
    pub retry_max: Duration,
}

enum Event {
    Bus(gst::Message),
    /// The connection numbered `connection` (retina's) ended, and why.
    Failed {
        connection: u64,
        reason: String,
    },
    Stop,
}

/// A running camera. Dropping it does not stop the camera: call `stop`.
pub struct CameraHandle {
    pub camera: Camera,
    pub target: Target,
    pub status: Arc<CameraStatus>,
    tx: mpsc::UnboundedSender<Event>,
    /// Closed when the supervisor's task has ended.
    ended: Option<std::sync::mpsc::Receiver<()>>,
}

impl CameraHandle {
    pub fn spawn(
        camera: Camera,
        target: Target,
        settings: CameraSettings,
        index: SharedIndex,
        finisher: Finisher,
        clocks: Arc<dyn Clocks>,
        gap_reason: String,
    ) -> CameraHandle {
        let status = Arc::new(CameraStatus::new(CameraState::Connecting));
        let (tx, rx) = mpsc::unbounded_channel();
        let sup = Supervisor {
            camera: camera.clone(),
            target: target.clone(),
            settings,
            index,
            finisher,
            clocks,
            gap_reason,
            status: status.clone(),
            tx: tx.clone(),
            rx,
        };
        // Nothing is sent on `done`: the task drops it as it ends.
        let (done, ended) = std::sync::mpsc::channel::<()>();
        match runtime() {
            Ok(rt) => {
                rt.spawn(async move {
                    sup.run().await;
                    drop(done);
                });
            }
            Err(e) => status.failing(&e),
        }
        CameraHandle {
            camera,
            target,
            status,
            tx,
            ended: Some(ended),
        }
    }

    /// Asks the camera to stop; its open segment is finalised.
    pub fn request_stop(&self) {
        let _ = self.tx.send(Event::Stop);
    }

    /// Waits for the camera's supervisor to end (not from a task of the
    /// ingest runtime).
    pub fn join(mut self) {
        if let Some(ended) = self.ended.take() {
            let _ = ended.recv();
        }
    }

    pub fn stop(self) {
        self.request_stop();
        self.join();
    }
}

/// The open gap in a camera's recording, shared with the streaming thread
/// that closes it when frames flow again.
#[derive(Default)]
struct Gap {
    outage: Option<OutageId>,
}

struct Supervisor {
    camera: Camera,
    target: Target,
    settings: CameraSettings,
    index: SharedIndex,
    finisher: Finisher,
    clocks: Arc<dyn Clocks>,
    /// Why the camera was not recorded between its last segment and this
    /// start (the outage row's reason).
    gap_reason: String,
    status: Arc<CameraStatus>,
    tx: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Supervisor {
    async fn run(mut self) {
        let url = redact_url(&self.camera.url);
        let gap = Arc::new(Mutex::new(Gap::default()));
        let mut segmenter = Segmenter::new(
            self.target.clone(),
            self.index.clone(),
            self.finisher.clone(),
            self.status.clone(),
        );
        {
            let (index, camera, status, gap) = (
                self.index.clone(),
                self.target.camera,
                self.status.clone(),
                gap.clone(),
            );
            segmenter.on_resume = Some(Box::new(move |at: UnixMicros| {
                status.set_state(CameraState::Recording);
                let outage = gap.lock().unwrap().outage.take();
                if let Some(id) = outage
                    && let Err(e) = index.lock().end_outage(id, at)
                {
                    tracing::error!(camera = camera.0, error = %e, "closing an outage");
                }
            }));
        }
        let segmenter = Arc::new(Mutex::new(segmenter));

        // Footage stopped when the daemon last stopped recording this camera.
        let mut last_end = blocking(|| {
            let end = self
                .index
                .lock()
                .last_segment_end(self.target.camera)
                .ok()
                .flatten();
            if let Some(end) = end {
                self.open_outage(&gap, end, &self.gap_reason);
            }
            segmenter.lock().unwrap().follows(end);
            end
        });

        let mut delay = RETRY_BASE;
        for connection in 0.. {
            // A camera whose segments cannot be started stays in the error
            // state, with that reason, until one is.
            if segmenter.lock().unwrap().error().is_none() {
                self.status.set_state(CameraState::Connecting);
            }
            tracing::info!(camera = %self.camera.id, url = %url, "connecting");
            let started = Instant::now();
            let outcome = match self.camera.rtsp_client {
                RtspClient::Retina => self.read_with_retina(&segmenter, connection).await,
                RtspClient::Gstreamer => self.read_with_gstreamer(&segmenter, connection).await,
            };
            let recorded_until = blocking(|| {
                let mut seg = segmenter.lock().unwrap();
                let until = seg.recorded_until();
                seg.close();
                until
            });
            last_end = recorded_until.or(last_end);
            let reason = match outcome {
                Outcome::Stopped => {
                    self.status.set_state(CameraState::Stopped);
                    tracing::info!(camera = %self.camera.id, "stopped");
                    return;
                }
                Outcome::Failed(reason) => reason,
            };
            let now = self.clocks.realtime();
            blocking(|| self.open_outage(&gap, last_end.unwrap_or(now), &reason));
            self.status.reconnecting(&reason);
            if let Some(e) = segmenter.lock().unwrap().error() {
                self.status.failing(&e);
            }
            if started.elapsed() >= HEALTHY_AFTER {
                delay = RETRY_BASE;
            }
            let wait = jitter(delay);
            tracing::warn!(camera = %self.camera.id, url = %url, error = %reason,
                retry_in = %humantime::format_duration(round_ms(wait)), "camera failed");
            delay = (delay * 2).min(self.settings.retry_max);
            if self.wait_or_stop(wait).await {
                self.status.set_state(CameraState::Stopped);
                return;
            }
        }
    }

    /// Starts a gap at `from` unless one is already open (a gap is one row,
    /// whatever number of failed attempts it spans).
    fn open_outage(&self, gap: &Mutex<Gap>, from: UnixMicros, reason: &str) {
        let mut gap = gap.lock().unwrap();
        if gap.outage.is_some() {
            return;
        }
        match self
            .index
            .lock()
            .begin_outage(self.target.camera, from, reason)
        {
            Ok(id) => gap.outage = Some(id),
            Err(e) => tracing::error!(camera = %self.camera.id, error = %e, "recording an outage"),
        }
    }

    /// Waits `d` unless told to stop; true if told to stop.
    async fn wait_or_stop(&mut self, d: Duration) -> bool {
        let until = tokio::time::Instant::now() + d;
        loop {
            match tokio::time::timeout_at(until, self.rx.recv()).await {
                Ok(Some(Event::Stop) | None) => return true,
                // Messages from a connection already torn down.
                Ok(Some(Event::Bus(_) | Event::Failed { .. })) => {}
                Err(_) => return false,
            }
        }
    }

    async fn read_with_gstreamer(
        &mut self,
        segmenter: &Arc<Mutex<Segmenter>>,
        connection: u64,
    ) -> Outcome {
        let status = self.status.clone();
        let on_data: Arc<dyn Fn() + Send + Sync> = Arc::new(move || status.alive());
        let built = blocking(|| {
            pipeline::build(
                &self.camera,
                segmenter.clone(),
                self.clocks.clone(),
                on_data,
            )
        });
        let pipeline = match built {
            Ok(p) => p,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let bus = pipeline.bus().expect("a pipeline has a bus");
        let tx = self.tx.clone();
        bus.set_sync_handler(move |_, msg| {
            use gst::MessageView;
            if matches!(
                msg.view(),
                MessageView::Error(_) | MessageView::Eos(_) | MessageView::Warning(_)
            ) {
                let _ = tx.send(Event::Bus(msg.clone()));
            }
            gst::BusSyncReply::Drop
        });
        let outcome = if blocking(|| pipeline.set_state(gst::State::Playing)).is_err() {
            Outcome::Failed("the pipeline could not start".into())
        } else {
            self.watch(connection).await
        };
        // Joins the pipeline's streaming threads (and may wait for the
        // camera's answer to TEARDOWN).
        let _ = blocking(|| pipeline.set_state(gst::State::Null));
        bus.unset_sync_handler();
        outcome
    }

    async fn read_with_retina(
        &mut self,
        segmenter: &Arc<Mutex<Segmenter>>,
        connection: u64,
    ) -> Outcome {
        let status = self.status.clone();
        let tx = self.tx.clone();
        let source = RetinaSource::start(
            &self.camera,
            segmenter.clone(),
            self.clocks.clone(),
            Arc::new(move || status.alive()),
            Box::new(move |reason| {
                let _ = tx.send(Event::Failed { connection, reason });
            }),
        );
        let outcome = self.watch(connection).await;
        source.stop().await;
        outcome
    }

    /// Watches the running connection numbered `connection` until it fails,
    /// stalls or is told to stop. Between events it sleeps until the stall
    /// deadline: the last data plus `stall_timeout`.
    async fn watch(&mut self, connection: u64) -> Outcome {
        let started = Instant::now();
        loop {
            let last = self.status.last_data().max(started);
            let silent = last.elapsed();
            if silent >= self.settings.stall_timeout {
                return Outcome::Failed(format!(
                    "no data from the camera for {} (stalled)",
                    humantime::format_duration(round_ms(silent))
                ));
            }
            let deadline = (last + self.settings.stall_timeout).into();
            let Ok(event) = tokio::time::timeout_at(deadline, self.rx.recv()).await else {
                continue;
            };
            match event {
                Some(Event::Stop) | None => return Outcome::Stopped,
                Some(Event::Bus(msg)) => match msg.view() {
                    gst::MessageView::Error(e) => {
                        let detail = e.debug().map(|d| d.to_string());
                        return Outcome::Failed(describe_error(
                            &e.error().to_string(),
                            detail.as_deref(),
                        ));
                    }
                    gst::MessageView::Eos(_) => {
                        return Outcome::Failed("the camera ended the stream".into());
                    }
                    gst::MessageView::Warning(w) => {
                        tracing::debug!(camera = %self.camera.id,
                            warning = %redact_url(&w.error().to_string()), "pipeline warning");
                    }
                    _ => {}
                },
                Some(Event::Failed {
                    connection: c,
                    reason,
                }) if c == connection => {
                    return Outcome::Failed(reason);
                }
                Some(Event::Failed { .. }) => {}
            }
        }
    }
}

enum Outcome {
    Stopped,
    Failed(String),
}

/// A GStreamer error as a sentence: its message plus the last line of its
/// debug text, which is where rtspsrc says what actually happened ("Failed
/// to connect.", "Not Found", "Unauthorized"). URLs are redacted.
fn describe_error(message: &str, debug: Option<&str>) -> String {
    let message = message.trim().trim_end_matches('.');
    let detail = debug
        .and_then(|d| d.lines().map(str::trim).rfind(|l| !l.is_empty()))
        .filter(|d| !d.ends_with(':') && !message.contains(d));
    redact_url(&match detail {
        Some(d) => format!("{message}: {d}"),
        None => message.to_owned(),
    })
}

/// `d` plus or minus up to 20%, so cameras that failed together do not all
/// retry in the same instant.
fn jitter(d: Duration) -> Duration {
    let f = rand::rng().random_range(0.8..1.2);
    d.mul_f64(f)
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}
