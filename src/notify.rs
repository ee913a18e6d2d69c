//! Telling systemd how the daemon is doing (`Type=notify`, `WatchdogSec=`).
//!
//! - `READY=1` is sent once the index is open, the admin socket is bound and
//!   every camera pipeline has been started (`crate::daemon::run`), so units
//!   ordered after custosd start against a daemon that records and answers.
//! - `RELOADING=1` ... `READY=1` brackets a SIGHUP reload, `STOPPING=1`
//!   starts a shutdown, `STATUS=` says in one line what the daemon does.
//! - The watchdog is not a blind timer: [`Watchdog::tick`] pings only when
//!   [`Progress::check`] finds every recording camera making progress (data
//!   arriving, segments completing). A camera whose supervisor hangs (e.g. a
//!   GStreamer state change that never returns) keeps its `recording` state
//!   and stops progressing; withholding the ping makes systemd restart the
//!   daemon, and the start-up recovery pass closes the gap's segments. The
//!   ping comes from the main thread's loop, so a stuck main thread (signals,
//!   reloads) also stops it.
//!
//! Without `NOTIFY_SOCKET` (not under systemd) every call is a no-op. Times
//! are injected (`now: Instant`) so the progress rules are tested at their
//! exact boundaries.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::ingest::CameraState;

/// Sends states to systemd; failures are logged, never fatal (recording
/// matters more than telling systemd about it).
fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// `READY=1` with a status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// `RELOADING=1` (with the monotonic time systemd ≥ 253 asks for).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// `STOPPING=1`.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// `STATUS=...`.
pub fn status(text: &str) {
    send(&[NotifyState::Status(text)]);
}

/// What the watchdog needs to know about one camera at one moment.
#[derive(Debug, Clone)]
pub struct CameraObservation {
    pub id: String,
    pub state: CameraState,
    /// Monotonic time of the last data from the camera.
    pub last_data: Instant,
    /// Durable segments.
    pub segments_written: u64,
    /// Since when a segment of the camera has waited to become durable.
    pub finishing_since: Option<Instant>,
    /// The camera's segment length.
    pub segment: Duration,
}

/// Extra time, beyond what the settings allow, before a lack of progress
/// counts as a hang: scheduling, slow disks, keyframe waits.
pub const PROGRESS_SLACK: Duration = Duration::from_secs(10);

/// Per-camera memory of the last progress seen.
#[derive(Debug, Default)]
pub struct Progress {
    seen: BTreeMap<String, (u64, Instant)>,
}

impl Progress {
    pub fn new() -> Self {
        Self::default()
    }

    /// `Ok` if every camera in the `recording` state makes progress, else a
    /// sentence naming the first that does not. `stall_timeout` is the
    /// daemon's: a camera supervisor reconnects a camera silent for that
    /// long, so silence for 3× as long (plus slack) means the supervisor
    /// itself is stuck. A recording camera completes a segment every
    /// `segment`; none in 2 segments + 3 stall timeouts (plus slack) means
    /// the write path (segmenter, finisher, index, disk) is stuck.
    /// Cameras in other states are retrying or stopped by design.
    pub fn check(
        &mut self,
        now: Instant,
        cameras: &[CameraObservation],
        stall_timeout: Duration,
    ) -> Result<(), String> {
        let mut verdict = Ok(());
        let mut seen = BTreeMap::new();
        for c in cameras {
            // In any state: a segment that never becomes durable means the
            // write path (a root's fsync) is stuck.
            let waited = c
                .finishing_since
                .map(|t| now.saturating_duration_since(t))
                .unwrap_or_default();
            if verdict.is_ok() && waited > c.segment * 2 + stall_timeout * 3 + PROGRESS_SLACK {
                verdict = Err(format!(
                    "camera {}'s segment has waited {}s to become durable: the write path \
                     (its storage root's fsync) is stuck",
                    c.id,
                    waited.as_secs()
                ));
            }
            if c.state != CameraState::Recording {
                continue;
            }
            let since = match self.seen.get(&c.id) {
                Some(&(n, at)) if n == c.segments_written => at,
                _ => now,
            };
            seen.insert(c.id.clone(), (c.segments_written, since));
            if verdict.is_err() {
                continue;
            }
            let silent = now.saturating_duration_since(c.last_data);
            let silent_max = stall_timeout * 3 + PROGRESS_SLACK;
            let idle = now.saturating_duration_since(since);
            let idle_max = c.segment * 2 + stall_timeout * 3 + PROGRESS_SLACK;
            if silent > silent_max {
                verdict = Err(format!(
                    "camera {} is recording but has sent no data for {}s and was not \
                     reconnected: its supervisor is stuck",
                    c.id,
                    silent.as_secs()
                ));
            } else if idle > idle_max {
                verdict = Err(format!(
                    "camera {} is recording but completed no segment for {}s: the write \
                     path is stuck",
                    c.id,
                    idle.as_secs()
                ));
            }
        }
        self.seen = seen;
        verdict
    }
}

/// The systemd watchdog, fed from the daemon's main loop.
#[derive(Debug)]
pub struct Watchdog {
    /// How often to ping: a quarter of `WatchdogSec=`, so one late loop
    /// iteration does not miss the deadline.
    every: Duration,
    next: Instant,
    progress: Progress,
    /// The failure being reported, so a lasting one is logged once.
    failing: Option<String>,
}

impl Watchdog {
    /// The watchdog systemd asked for (`WATCHDOG_USEC`), if any.
    pub fn from_env(now: Instant) -> Option<Watchdog> {
        sd_notify::watchdog_enabled().map(|d| Watchdog::new(d, now))
    }

    /// A watchdog whose deadline is `timeout`.
    pub fn new(timeout: Duration, now: Instant) -> Watchdog {
        Watchdog {
            every: (timeout / 4).max(Duration::from_millis(100)),
            next: now,
            progress: Progress::new(),
            failing: None,
        }
    }

    /// Pings if a ping is due and the daemon makes progress. `cameras` is
    /// only called when a ping is due. Returns whether it pinged.
    pub fn tick(
        &mut self,
        now: Instant,
        cameras: impl FnOnce() -> Vec<CameraObservation>,
        stall_timeout: Duration,
    ) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + self.every;
        match self.progress.check(now, &cameras(), stall_timeout) {
            Ok(()) => {
                if self.failing.take().is_some() {
                    tracing::info!("progress resumed; feeding the watchdog again");
                    status("recording");
                }
                send(&[NotifyState::Watchdog]);
                true
            }
            Err(why) => {
                if self.failing.is_none() {
                    tracing::error!(
                        "{why}; not feeding the watchdog, systemd will restart custosd"
                    );
                    status(&why);
                    self.failing = Some(why);
                }
                false
            }
        }
    }
}
