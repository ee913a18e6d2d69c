//! Ingest: one supervised RTSP connection per enabled camera (retina's
//! client or a GStreamer pipeline, `config::RtspClient`), writing
//! segments through `segmenter` and making them durable in `finisher`.

mod camera;
pub mod control;
pub mod finisher;
pub mod pipeline;
mod retina_source;
mod rtptime;
mod runtime;
pub mod segmenter;
mod tracks;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::clock::UnixMicros;

pub use camera::{CameraHandle, CameraSettings};
pub use runtime::WORKERS;

/// What a camera is doing, for the status API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraState {
    Connecting,
    Recording,
    Retrying,
    /// Connected, but segments cannot be written (see `last_error`).
    Error,
    Disabled,
    Stopped,
}

/// A camera's live status, updated from its streaming threads.
#[derive(Debug)]
pub struct CameraStatus {
    base: Instant,
    inner: Mutex<StatusInner>,
    /// Monotonic ms since `base` of the last data from the camera.
    last_data_ms: AtomicU64,
    last_frame_us: AtomicI64,
    bytes_written: AtomicU64,
    /// Durable segments (fsynced and indexed).
    segments_written: AtomicU64,
    /// Segments handed to the finisher and not yet durable, and monotonic
    /// ms since `base` since when the oldest has waited (about: from the
    /// last completion while more were waiting).
    finishing: AtomicU64,
    finishing_since_ms: AtomicU64,
}

#[derive(Debug, Clone)]
struct StatusInner {
    state: CameraState,
    last_error: Option<String>,
    reconnects: u64,
}

/// A copy of a camera's status at one moment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusSnapshot {
    pub state: CameraState,
    pub last_error: Option<String>,
    pub last_frame_us: Option<UnixMicros>,
    pub bytes_written: u64,
    pub segments_written: u64,
    pub reconnects: u64,
}

impl CameraStatus {
    pub fn new(state: CameraState) -> Self {
        CameraStatus {
            base: Instant::now(),
            inner: Mutex::new(StatusInner {
                state,
                last_error: None,
                reconnects: 0,
            }),
            last_data_ms: AtomicU64::new(0),
            last_frame_us: AtomicI64::new(i64::MIN),
            bytes_written: AtomicU64::new(0),
            segments_written: AtomicU64::new(0),
            finishing: AtomicU64::new(0),
            finishing_since_ms: AtomicU64::new(0),
        }
    }

    fn inner(&self) -> MutexGuard<'_, StatusInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Data arrived from the camera (any stream, recorded or not).
    pub fn alive(&self) {
        self.last_data_ms
            .store(self.base.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Monotonic time of the last data, if any arrived since `since`.
    pub fn last_data(&self) -> Instant {
        self.base + std::time::Duration::from_millis(self.last_data_ms.load(Ordering::Relaxed))
    }

    /// A frame was recorded.
    pub fn frame(&self, at: UnixMicros, _bytes: u64) {
        self.last_frame_us.store(at, Ordering::Relaxed);
    }

    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// A segment was handed to the finisher.
    pub fn finishing_started(&self) {
        if self.finishing.fetch_add(1, Ordering::AcqRel) == 0 {
            self.finishing_since_ms
                .store(self.now_ms(), Ordering::Release);
        }
    }

    /// The finisher is done with a segment (durable or not).
    pub fn finishing_ended(&self) {
        if self.finishing.fetch_sub(1, Ordering::AcqRel) > 1 {
            self.finishing_since_ms
                .store(self.now_ms(), Ordering::Release);
        }
    }

    /// A segment the finisher refused (its queue was full) is not waiting.
    pub fn finishing_refused(&self) {
        self.finishing.fetch_sub(1, Ordering::AcqRel);
    }

    /// Since when a segment has waited to become durable, if one does.
    pub fn finishing_since(&self) -> Option<Instant> {
        (self.finishing.load(Ordering::Acquire) > 0).then(|| {
            self.base
                + std::time::Duration::from_millis(self.finishing_since_ms.load(Ordering::Acquire))
        })
    }

    /// A segment became durable.
    pub fn segment_written(&self, bytes: u64) {
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
        self.segments_written.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_state(&self, state: CameraState) {
        let mut inner = self.inner();
        inner.state = state;
        if state == CameraState::Recording {
            inner.last_error = None;
        }
    }

    pub fn set_error(&self, error: &str) {
        self.inner().last_error = Some(error.to_owned());
    }

    /// Frames arrive but cannot be recorded, for the reason `error`.
    pub fn failing(&self, error: &str) {
        let mut inner = self.inner();
        inner.state = CameraState::Error;
        inner.last_error = Some(error.to_owned());
    }

    pub fn reconnecting(&self, error: &str) {
        let mut inner = self.inner();
        inner.state = CameraState::Retrying;
        inner.last_error = Some(error.to_owned());
        inner.reconnects += 1;
    }

    pub fn snapshot(&self) -> StatusSnapshot {
        let inner = self.inner().clone();
        let last = self.last_frame_us.load(Ordering::Relaxed);
        StatusSnapshot {
            state: inner.state,
            last_error: inner.last_error,
            last_frame_us: (last != i64::MIN).then_some(last),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            segments_written: self.segments_written.load(Ordering::Relaxed),
            reconnects: inner.reconnects,
        }
    }
}
