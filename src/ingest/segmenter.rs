//! Turns a camera's frames into segment files: cuts at key frames once a
//! segment is long enough, writes a fragment every `FRAGMENT_US` so a crash
//! loses at most that much, and hands finished files to the `Finisher`.
//!
//! Invariants:
//! - A segment's index row is committed before its file is created.
//! - Segment N+1 starts at the decode time where segment N's last frame ends,
//!   so consecutive segments of one connection are contiguous to the tick.
//! - No segment starts before the camera's previous segment ended: a change
//!   of clock (the camera's RTCP time arriving late, drift) that would move a
//!   start back over recorded footage is not taken (`time.md`).
//! - Nothing here blocks on fsync: finished files go to the finisher thread.
//! - Audio that arrives after a cut but belongs before it goes to the segment
//!   it belongs to (kept open as `draining` for at most `DRAIN_US`).

use std::path::PathBuf;
use std::sync::Arc;

use gstreamer as gst;

use crate::clock::UnixMicros;
use crate::error::{Error, Result};
use crate::index::{NewSegment, SegmentId, SegmentSummary, TimeSource};
use crate::mp4::{self, FragmentedWriter};

use super::CameraStatus;
use super::finisher::{FinishJob, Finisher, Retime};
use crate::index::SharedIndex;
use crate::storage::HashingFile;

mod track;
use track::{Pending, TrackBuf, video_end, write_fragment};

/// How much media is held in memory before it is written: the most a kill -9
/// loses, beyond the one frame that waits for its duration.
pub const FRAGMENT_US: i64 = 500_000;

/// How long a finished segment waits for late audio.
const DRAIN_US: i64 = 1_000_000;

/// A cut is made at the first key frame at least this close to the segment
/// length, so jitter of a few ms does not push a cut a whole GOP later.
const CUT_TOLERANCE_US: i64 = 100_000;

/// A forward jump in timestamps larger than this is a gap, not a slow frame.
const MAX_FRAME_GAP_US: i64 = 5_000_000;

/// Drift between the camera's timestamps and the local clock beyond which a
/// new segment re-anchors its wall-clock time.
const MAX_DRIFT_US: i64 = 250_000;

/// A camera clock further than this from ours is not trusted for wall time.
const MAX_CAMERA_CLOCK_OFFSET_US: i64 = 2_000_000;

/// After a segment could not be started, the next try waits this long,
/// doubling with each failure up to `OPEN_RETRY_MAX_US`.
const OPEN_RETRY_BASE_US: i64 = 1_000_000;
const OPEN_RETRY_MAX_US: i64 = 60_000_000;

const VIDEO_TIMESCALE: u32 = 90_000;

/// Which track a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Video,
    Audio,
}

/// The bytes of one access unit: GStreamer's buffer, mapped, or what the
/// retina client assembled. Either way it is written without a copy.
pub enum Payload {
    Gst(gst::MappedBuffer<gst::buffer::Readable>),
    Bytes(bytes::Bytes),
}

impl std::ops::Deref for Payload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Payload::Gst(b) => b.as_slice(),
            Payload::Bytes(b) => b,
        }
    }
}

/// One access unit, from either RTSP client.
pub struct Frame {
    pub kind: Kind,
    /// Decode timestamp in pipeline nanoseconds (PTS when the stream has no DTS).
    pub dts_ns: u64,
    pub pts_ns: u64,
    pub duration_ns: Option<u64>,
    pub keyframe: bool,
    pub data: Payload,
    /// Local wall-clock time when the frame reached the recorder.
    pub arrival_us: UnixMicros,
    /// The camera's NTP time for this frame, from RTCP sender reports.
    pub ntp_us: Option<UnixMicros>,
}

/// Where this camera's segments go.
#[derive(Debug, Clone)]
pub struct Target {
    pub camera: crate::index::CameraId,
    pub camera_name: String,
    pub zone: String,
    pub root_id: String,
    pub root_path: PathBuf,
    pub segment_us: i64,
}

/// Wall-clock mapping of one connection's timestamps.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    dts_ns: u64,
    wall_us: UnixMicros,
    source: TimeSource,
    offset_us: Option<i64>,
}

impl Anchor {
    fn wall(&self, dts_ns: u64) -> UnixMicros {
        self.wall_us + (dts_ns as i64 - self.dts_ns as i64) / 1000
    }
}

/// A segment file being written.
struct Open {
    id: SegmentId,
    rel: String,
    writer: FragmentedWriter<HashingFile>,
    origin_ns: u64,
    start_us: UnixMicros,
    video: TrackBuf,
    audio: Option<TrackBuf>,
    frames: u64,
    key_frames: u64,
    /// Video end in ticks, once the segment is cut.
    video_end: Option<u64>,
    time_source: TimeSource,
    clock_offset_us: Option<i64>,
    /// Set when the camera's clock replaced the local one after the row was
    /// written: the finisher then stores the corrected times.
    retimed: bool,
    /// The anchor was made for this segment (no earlier segment of this
    /// connection shares it), so moving its start breaks no contiguity.
    anchored_here: bool,
    has_audio: bool,
    /// Bytes of non-key video frames per second (`index::add_activity`).
    activity: Vec<u32>,
}

/// The writer side of one camera connection.
pub struct Segmenter {
    target: Target,
    index: SharedIndex,
    finisher: Finisher,
    status: Arc<CameraStatus>,
    video_spec: Option<mp4::TrackSpec>,
    /// The GStreamer caps `video_spec` came from, so unchanged caps are
    /// recognised without converting them for every frame.
    video_caps: Option<gst::Caps>,
    audio_spec: Option<mp4::TrackSpec>,
    anchor: Option<Anchor>,
    current: Option<Open>,
    draining: Option<Open>,
    last_video_dts: Option<u64>,
    dropped_before_key: u64,
    clock_warned: bool,
    /// Wall-clock end of the camera's last recorded segment whose end is
    /// fixed (finished, draining or abandoned, in this connection or an
    /// earlier one): no later segment may start before it.
    last_end_us: Option<UnixMicros>,
    /// The camera's clock arrived when the open segment could no longer be
    /// retimed; it is taken at the next boundary (see `anchor_for`).
    clock_switch_deferred: bool,
    /// A step back was refused in this connection (logged once).
    step_back_refused: bool,
    /// Segments that could not be started in a row, and the arrival time
    /// before which no new one is tried. Kept across connections: a
    /// reconnect does not free a disk or mend a camera's SDP.
    open_failures: u32,
    open_retry_at_us: UnixMicros,
    /// Why the last segment could not be started, until one is.
    open_error: Option<String>,
    /// Why the last finished segment could not be handed to the finisher
    /// (its root's queue is full), until one can.
    finish_error: Option<String>,
    /// The first frame after a gap (start-up, reconnect, write error) opens
    /// the segment that ends the outage.
    pub on_resume: Option<Box<dyn FnMut(UnixMicros) + Send>>,
}

impl Segmenter {
    pub fn new(
        target: Target,
        index: SharedIndex,
        finisher: Finisher,
        status: Arc<CameraStatus>,
    ) -> Self {
        finisher.attach(&target.root_id);
        Segmenter {
            target,
            index,
            finisher,
            status,
            video_spec: None,
            video_caps: None,
            audio_spec: None,
            anchor: None,
            current: None,
            draining: None,
            last_video_dts: None,
            dropped_before_key: 0,
            clock_warned: false,
            last_end_us: None,
            clock_switch_deferred: false,
            step_back_refused: false,
            open_failures: 0,
            open_retry_at_us: UnixMicros::MIN,
            open_error: None,
            finish_error: None,
            on_resume: None,
        }
    }

    /// Declares where the camera's recorded footage ends (its newest
    /// complete segment in the index), so the first segment does not start
    /// before it.
    pub fn follows(&mut self, end_us: Option<UnixMicros>) {
        self.last_end_us = self.last_end_us.max(end_us);
    }

    /// Declares the audio track the camera will send (known from its SDP
    /// before any frame arrives, so the first segment already has it).
    pub fn expect_audio(&mut self, spec: mp4::TrackSpec) {
        self.audio_spec = Some(spec);
    }

    /// Sets the video format from GStreamer caps (see `video_format`).
    pub fn video_caps(&mut self, caps: &gst::CapsRef) -> Result<()> {
        if self.video_caps.as_ref().is_some_and(|c| c.as_ref() == caps) {
            return Ok(());
        }
        self.video_format(super::pipeline::video_track_spec(caps)?);
        self.video_caps = Some(caps.to_owned());
        Ok(())
    }

    /// Sets the video format; a change of format starts a new segment.
    pub fn video_format(&mut self, spec: mp4::TrackSpec) {
        if self.video_spec.as_ref() == Some(&spec) {
            return;
        }
        if self.current.is_some() {
            tracing::info!(camera = %self.target.camera_name, "video format changed; new segment");
            self.cut(None);
        }
        self.video_spec = Some(spec);
    }

    /// The end of recorded media so far, in wall-clock time.
    pub fn recorded_until(&self) -> Option<UnixMicros> {
        let open = self.current.as_ref()?;
        Some(open.start_us + ticks_to_us(video_end(&open.video)?, VIDEO_TIMESCALE))
    }

    pub fn push(&mut self, frame: Frame) {
        match frame.kind {
            Kind::Video => self.push_video(frame),
            Kind::Audio => self.push_audio(frame),
        }
    }

    fn push_video(&mut self, f: Frame) {
        // A jump back, or forward by more than a frame could explain, is a
        // discontinuity: the segment ends at its last frame.
        if let Some(last) = self.last_video_dts {
            let delta_us = (f.dts_ns as i64 - last as i64) / 1000;
            if delta_us <= 0 || delta_us > MAX_FRAME_GAP_US {
                tracing::warn!(camera = %self.target.camera_name, delta_us,
                    "timestamp discontinuity; ending the segment");
                self.cut(None);
                self.anchor = None;
            }
        }
        self.last_video_dts = Some(f.dts_ns);
        self.expire_draining(f.dts_ns);

        if let Some(open) = &self.current {
            let elapsed_us = (f.dts_ns as i64 - open.origin_ns as i64) / 1000;
            if f.keyframe && elapsed_us >= self.target.segment_us - CUT_TOLERANCE_US {
                let end = open.video.ticks(f.dts_ns as i64 - open.origin_ns as i64) as u64;
                self.cut(Some(end));
            }
        }
        if self.current.is_none() {
            if !f.keyframe || f.arrival_us < self.open_retry_at_us {
                self.dropped_before_key += 1;
                return;
            }
            if let Err(e) = self.open(&f) {
                self.open_failed(&f, e);
                return;
            }
            self.open_failures = 0;
            self.open_error = None;
        }
        self.adopt_camera_clock(&f);
        let open = self.current.as_mut().expect("opened above");
        let decode = open
            .video
            .ticks(f.dts_ns as i64 - open.origin_ns as i64)
            .max(0) as u64;
        let cto = open.video.ticks(f.pts_ns as i64 - f.dts_ns as i64) as i32;
        open.frames += 1;
        open.key_frames += f.keyframe as u64;
        if !f.keyframe {
            // Motion costs bits: what the picture changed, counted now so
            // an activity query reads the index, not the files.
            let at = ticks_to_us(decode, VIDEO_TIMESCALE);
            crate::index::add_activity(&mut open.activity, at, f.data.len() as u64);
        }
        self.status.frame(f.arrival_us, f.data.len() as u64);
        open.video.push(Pending {
            decode,
            cto,
            duration: 0,
            key: f.keyframe,
            data: f.data,
        });
        if open.video.ready_span() >= us_to_ticks(FRAGMENT_US, VIDEO_TIMESCALE)
            && let Err(e) = write_fragment(&mut open.writer, &mut open.video, open.audio.as_mut())
        {
            self.write_failed(e);
        }
    }

    fn push_audio(&mut self, f: Frame) {
        let target = match (&mut self.current, &mut self.draining) {
            (Some(cur), _) if f.pts_ns >= cur.origin_ns => cur,
            (_, Some(old)) if f.pts_ns >= old.origin_ns => old,
            // Audio from before the first key frame has no segment to go to.
            _ => return,
        };
        let Some(track) = target.audio.as_mut() else {
            return;
        };
        let decode = track
            .ticks(f.pts_ns as i64 - target.origin_ns as i64)
            .max(0) as u64;
        track.push(Pending {
            decode,
            cto: 0,
            duration: 0,
            key: true,
            data: f.data,
        });
        let done = self
            .current
            .as_ref()
            .is_some_and(|c| f.pts_ns >= c.origin_ns);
        if done && self.draining.is_some() {
            self.finish_draining();
        }
    }

    /// Opens a segment starting at key frame `f`.
    fn open(&mut self, f: &Frame) -> Result<()> {
        let video = self
            .video_spec
            .clone()
            .ok_or_else(|| Error::internal("a video frame arrived before its format"))?;
        let (anchor, anchored_here) = self.anchor_for(f);
        let start_us = anchor.wall(f.dts_ns);
        let rel =
            crate::storage::segment_path(&self.target.zone, &self.target.camera_name, start_us)?;
        let id = self.index.lock().begin_segment(&NewSegment {
            camera: self.target.camera,
            zone: &self.target.zone,
            root: &self.target.root_id,
            path: &rel,
            start_us,
            time_source: anchor.source,
            clock_offset_us: anchor.offset_us,
        })?;
        let file = match crate::storage::create_segment_file(&self.target.root_path, &rel) {
            Ok(file) => file,
            Err(e) => {
                // No file was made: the row must not claim one.
                let _ = self.index.lock().remove_segment(id);
                return Err(e);
            }
        };
        let mut tracks = vec![video];
        let audio = self.audio_spec.clone();
        let has_audio = audio.is_some();
        if let Some(a) = audio {
            tracks.push(a);
        }
        let audio_buf = self.audio_spec.as_ref().map(|a| {
            let nominal = match a.codec {
                mp4::Codec::Aac { .. } => 1024,
                _ => a.timescale / 50,
            };
            TrackBuf::new(2, a.timescale, nominal)
        });
        let writer = match FragmentedWriter::new(
            HashingFile::new(file),
            tracks,
            (start_us.max(0) / 1_000_000) as u64,
        ) {
            Ok(w) => w,
            Err(e) => {
                self.discard(id, &rel);
                return Err(e);
            }
        };
        if let Some(resume) = self.on_resume.as_mut() {
            resume(start_us);
        }
        if let Some(e) = &self.finish_error {
            self.status.failing(e);
        }
        tracing::debug!(camera = %self.target.camera_name, path = %rel, "segment started");
        self.current = Some(Open {
            id,
            rel,
            writer,
            origin_ns: f.dts_ns,
            start_us,
            video: TrackBuf::new(1, VIDEO_TIMESCALE, VIDEO_TIMESCALE / 25),
            audio: audio_buf,
            frames: 0,
            key_frames: 0,
            video_end: None,
            has_audio,
            activity: Vec::new(),
            time_source: anchor.source,
            clock_offset_us: anchor.offset_us,
            retimed: false,
            anchored_here,
        });
        Ok(())
    }

    /// Takes back a segment that never held a frame: its file first, then
    /// its row, so a file never lacks a row. If the file cannot be removed
    /// both stay, and the start-up pass removes them (no complete fragment).
    fn discard(&self, id: SegmentId, rel: &str) {
        let path = self.target.root_path.join(rel);
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::error!(camera = %self.target.camera_name, path = %rel, error = %e,
                "cannot remove a segment file that could not be started");
            return;
        }
        if let Some(dir) = path.parent() {
            crate::storage::fsync_dir(dir);
        }
        if let Err(e) = self.index.lock().remove_segment(id) {
            tracing::error!(camera = %self.target.camera_name, path = %rel, error = %e,
                "cannot remove the row of a segment that could not be started");
        }
    }

    /// A segment could not be started: the camera shows the error and the
    /// next try waits, doubling, so a full disk or a bad track description
    /// costs one attempt a minute, not a row and a file every key frame.
    fn open_failed(&mut self, f: &Frame, e: Error) {
        self.open_failures = self.open_failures.saturating_add(1);
        let wait_us = OPEN_RETRY_BASE_US
            .saturating_mul(1 << (self.open_failures - 1).min(16))
            .min(OPEN_RETRY_MAX_US);
        self.open_retry_at_us = f.arrival_us.saturating_add(wait_us);
        let hint = if e.kind == crate::error::ErrorKind::InvalidInput && self.audio_spec.is_some() {
            " (check the camera's audio encoder settings, or set audio = false for it)"
        } else {
            ""
        };
        let reason = format!(
            "cannot start a segment: {e}{hint}; retrying in {} s",
            wait_us / 1_000_000
        );
        tracing::error!(camera = %self.target.camera_name, failures = self.open_failures,
            "{reason}");
        self.status.failing(&reason);
        self.open_error = Some(reason);
    }

    /// Why segments cannot be started or made durable, while they cannot.
    pub fn error(&self) -> Option<String> {
        self.open_error
            .clone()
            .or_else(|| self.finish_error.clone())
    }

    /// The wall-clock anchor for a segment starting at `f`, and whether it
    /// is new. The camera's NTP time is used when it has one within
    /// `MAX_CAMERA_CLOCK_OFFSET_US` of ours, the local arrival time
    /// otherwise. The current anchor is kept (so segments stay contiguous)
    /// unless the source changes or it drifted, and also when the new one
    /// would start this segment before the previous one ended: that step
    /// back cannot be taken inside a connection without an overlap.
    fn anchor_for(&mut self, f: &Frame) -> (Anchor, bool) {
        let offset_us = f.ntp_us.map(|ntp| ntp - f.arrival_us);
        let (source, wall) = match (f.ntp_us, offset_us) {
            (Some(ntp), Some(off)) if off.abs() <= MAX_CAMERA_CLOCK_OFFSET_US => {
                (TimeSource::Rtcp, ntp)
            }
            (_, Some(off)) => {
                if !self.clock_warned {
                    tracing::warn!(camera = %self.target.camera_name, offset_us = off,
                        "the camera's clock is far from ours; using the local clock. \
                         Set the camera's NTP server");
                    self.clock_warned = true;
                }
                (TimeSource::Local, f.arrival_us)
            }
            _ => (TimeSource::Local, f.arrival_us),
        };
        let overlap_us = self.overlap_us(wall);
        if let Some(a) = self.anchor {
            let drift = a.wall(f.dts_ns) - wall;
            let kept = Anchor {
                offset_us: offset_us.or(a.offset_us),
                ..a
            };
            if a.source == source && drift.abs() <= MAX_DRIFT_US {
                return (kept, false);
            }
            if overlap_us > 0 {
                if !self.step_back_refused {
                    tracing::info!(camera = %self.target.camera_name, step_us = -drift,
                        from = ?a.source, to = ?source,
                        "the new time would overlap the previous segment; keeping the \
                         connection's time until it reconnects");
                    self.step_back_refused = true;
                }
                return (kept, false);
            }
            tracing::info!(camera = %self.target.camera_name, step_us = -drift,
                from = ?a.source, to = ?source, "re-anchoring the camera's time");
        }
        let mut anchor = Anchor {
            dts_ns: f.dts_ns,
            wall_us: wall,
            source,
            offset_us,
        };
        if overlap_us > 0 {
            // A new connection sooner after the last than its clock's
            // error: start where the last one ended.
            tracing::info!(camera = %self.target.camera_name, overlap_us,
                "starting the segment where the camera's previous one ended");
            anchor.wall_us += overlap_us;
        }
        self.anchor = Some(anchor);
        self.clock_switch_deferred = false;
        self.step_back_refused = false;
        (anchor, true)
    }

    /// How far a segment starting at `start_us` would overlap the camera's
    /// previous segment. A step back larger than any camera clock is trusted
    /// with means the server's clock was set back: that is not hidden
    /// (0 returned, with a warning), since moving footage later by it would
    /// misfile it.
    fn overlap_us(&self, start_us: UnixMicros) -> i64 {
        let Some(end) = self.last_end_us else {
            return 0;
        };
        let overlap = end - start_us;
        if overlap > MAX_CAMERA_CLOCK_OFFSET_US {
            tracing::warn!(camera = %self.target.camera_name, overlap_us = overlap,
                "the clock went back; this segment overlaps earlier footage");
            return 0;
        }
        overlap.max(0)
    }

    /// Switches a connection from the local clock to the camera's NTP time
    /// as soon as the first RTCP sender report arrives (about 2.4 s in), and
    /// retimes the open segment with it, so its first segment is not left
    /// on arrival times. Only a segment whose anchor began with it is
    /// retimed, and only if it then still starts after the previous segment
    /// ended; otherwise the switch waits for the next boundary, where
    /// `anchor_for` takes it if it does not overlap.
    fn adopt_camera_clock(&mut self, f: &Frame) {
        let (Some(ntp), Some(a)) = (f.ntp_us, self.anchor) else {
            return;
        };
        let offset = ntp - f.arrival_us;
        if a.source != TimeSource::Local
            || self.clock_switch_deferred
            || offset.abs() > MAX_CAMERA_CLOCK_OFFSET_US
        {
            return;
        }
        let anchor = Anchor {
            dts_ns: f.dts_ns,
            wall_us: ntp,
            source: TimeSource::Rtcp,
            offset_us: Some(offset),
        };
        // Frames reach here only with a segment open.
        let Some(open) = self.current.as_ref() else {
            return;
        };
        let start_us = anchor.wall(open.origin_ns);
        if !open.anchored_here || self.overlap_us(start_us) > 0 {
            tracing::debug!(camera = %self.target.camera_name, offset_us = offset,
                "the camera's NTP time arrived after the segment it would retime; \
                 using it from the next segment");
            self.clock_switch_deferred = true;
            return;
        }
        tracing::debug!(camera = %self.target.camera_name, offset_us = offset,
            shift_us = start_us - open.start_us, "using the camera's NTP time");
        self.anchor = Some(anchor);
        let open = self.current.as_mut().expect("checked above");
        open.start_us = start_us;
        open.time_source = TimeSource::Rtcp;
        open.clock_offset_us = Some(offset);
        open.retimed = true;
    }

    /// Ends the current segment with its video ending at `end` ticks (the
    /// next segment's first frame) or after its last frame's duration.
    fn cut(&mut self, end: Option<u64>) {
        let Some(mut open) = self.current.take() else {
            return;
        };
        open.video.close(end);
        let video_end = video_end(&open.video).unwrap_or(0);
        open.video_end = Some(video_end);
        self.ended_at(open.start_us + ticks_to_us(video_end, VIDEO_TIMESCALE));
        if open.has_audio && end.is_some() {
            // Late audio may still arrive for this segment.
            if self.draining.is_some() {
                self.finish_draining();
            }
            if let Err(e) = write_fragment(&mut open.writer, &mut open.video, open.audio.as_mut()) {
                self.status.set_error(&e.to_string());
                self.abandon(open, e);
                return;
            }
            self.draining = Some(open);
        } else {
            if let Some(a) = open.audio.as_mut() {
                a.close(None);
            }
            self.finish(open);
        }
    }

    fn expire_draining(&mut self, video_dts_ns: u64) {
        let Some(cur) = &self.current else { return };
        if self.draining.is_some() && (video_dts_ns as i64 - cur.origin_ns as i64) / 1000 > DRAIN_US
        {
            self.finish_draining();
        }
    }

    fn finish_draining(&mut self) {
        if let Some(mut old) = self.draining.take() {
            let end = old.video_end.unwrap_or(0);
            if let Some(a) = old.audio.as_mut() {
                let end_ticks =
                    (end as u128 * a.timescale as u128 / VIDEO_TIMESCALE as u128) as u64;
                a.close(Some(end_ticks));
            }
            self.finish(old);
        }
    }

    /// Writes what is buffered and hands the file to the finisher.
    fn finish(&mut self, mut open: Open) {
        if let Err(e) = write_fragment(&mut open.writer, &mut open.video, open.audio.as_mut()) {
            self.abandon(open, e);
            return;
        }
        let video_end = open
            .video_end
            .or_else(|| video_end(&open.video))
            .unwrap_or(0);
        let end_us = open.start_us + ticks_to_us(video_end, VIDEO_TIMESCALE);
        let hashing = open.writer.into_inner();
        let (file, bytes, sha256) = hashing.finish();
        let retime = open.retimed.then_some(Retime {
            start_us: open.start_us,
            time_source: open.time_source,
            clock_offset_us: open.clock_offset_us,
        });
        let job = FinishJob {
            id: open.id,
            retime,
            path: self.target.root_path.join(&open.rel),
            file,
            summary: SegmentSummary {
                end_us,
                bytes,
                frames: open.frames,
                key_frames: open.key_frames,
                video_codec: self.video_codec_name(),
                audio_codec: open.has_audio.then(|| self.audio_codec_name()).flatten(),
                sha256,
                recovered: false,
                activity: std::mem::take(&mut open.activity),
            },
            status: self.status.clone(),
        };
        match self.finisher.submit(&self.target.root_id, job) {
            Ok(()) => self.finish_error = None,
            Err(job) => {
                // Its written data stays in the page cache and the file;
                // closing it keeps descriptors bounded. The row stays
                // `recording`: the start-up pass makes it durable.
                drop(job);
                let reason = format!(
                    "storage root {} is not making segments durable (this camera's last {} \
                     wait for fsync); {} is left for the start-up pass. Check the disk or mount",
                    self.target.root_id,
                    super::finisher::QUEUE_PER_CAMERA,
                    open.rel
                );
                if self.finish_error.is_none() {
                    tracing::error!(camera = %self.target.camera_name, "{reason}");
                } else {
                    tracing::debug!(camera = %self.target.camera_name, "{reason}");
                }
                self.status.failing(&reason);
                self.finish_error = Some(reason);
            }
        }
    }

    /// A write failed (disk full, I/O error): the file is left for the
    /// recovery logic, which keeps its complete fragments.
    fn abandon(&mut self, open: Open, e: Error) {
        if let Some(end) = video_end(&open.video) {
            self.ended_at(open.start_us + ticks_to_us(end, VIDEO_TIMESCALE));
        }
        tracing::error!(camera = %self.target.camera_name, path = %open.rel, error = %e,
            "writing the segment failed; keeping what was written");
        self.status.set_error(&format!("writing {}: {e}", open.rel));
        let hashing = open.writer.into_inner();
        let (file, _, _) = hashing.finish();
        self.finisher.recover(
            &self.target.root_id,
            open.id,
            self.target.root_path.join(&open.rel),
            file,
        );
    }

    /// The segment recorded last ends at `end_us` (not the latest end ever:
    /// after the server's clock was set back, the new footage is the floor).
    fn ended_at(&mut self, end_us: UnixMicros) {
        self.last_end_us = Some(end_us);
    }

    fn write_failed(&mut self, e: Error) {
        if let Some(open) = self.current.take() {
            self.abandon(open, e);
        }
        self.anchor = None;
    }

    fn video_codec_name(&self) -> String {
        match self.video_spec.as_ref().map(|s| &s.codec) {
            Some(mp4::Codec::H265 { .. }) => "h265".into(),
            _ => "h264".into(),
        }
    }

    fn audio_codec_name(&self) -> Option<String> {
        self.audio_spec.as_ref().map(|a| match a.codec {
            mp4::Codec::Aac { .. } => "aac".into(),
            mp4::Codec::Pcma => "pcma".into(),
            mp4::Codec::Pcmu => "pcmu".into(),
            _ => "unknown".into(),
        })
    }

    /// Ends the connection: every open segment is written and handed on.
    pub fn close(&mut self) {
        self.finish_draining();
        self.cut(None);
        self.finish_draining();
        self.anchor = None;
        self.clock_warned = false;
        self.clock_switch_deferred = false;
        self.step_back_refused = false;
        self.last_video_dts = None;
        if self.dropped_before_key > 0 {
            tracing::debug!(camera = %self.target.camera_name, frames = self.dropped_before_key,
                "frames dropped while waiting for a key frame");
            self.dropped_before_key = 0;
        }
    }
}

impl Drop for Segmenter {
    fn drop(&mut self) {
        self.close();
        self.finisher.detach(&self.target.root_id);
    }
}

fn ticks_to_us(ticks: u64, timescale: u32) -> i64 {
    (ticks as u128 * 1_000_000 / timescale as u128) as i64
}

fn us_to_ticks(us: i64, timescale: u32) -> u64 {
    (us as u128 * timescale as u128 / 1_000_000) as u64
}
