//! The footage a redaction works on: a camera's range planned as a view's
//! clip is (from the key frame at or before its start, every frame that
//! starts before its end), leased while it is read, and decoded frame by
//! frame by GStreamer (`avdec_h264` / `avdec_h265`) into packed RGB of any
//! size.
//!
//! Invariants:
//! - Frames come out in presentation order, numbered from 0; their count
//!   is the clip's video frame count, or decoding fails.
//! - A range with a gap in recording is refused, naming the gap: a copy is
//!   one continuous stretch, never bridged.
//! - The source files are read, never written.

use std::sync::Arc;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::config::Config;
use crate::export::manifest::SourceSegment;
use crate::export::{self, Clip, Source};
use crate::index::{Index, SegmentId};
use crate::mp4::TrackSpec;
use crate::mp4::progressive::SourceFiles;
use crate::retention::{LeaseGuard, Leases};
use crate::review::pipeline::{Stop, by_name, decoder_caps, flow, packed_rgb};
use crate::{Error, Result};

/// A decoded frame.
pub struct Frame {
    /// Presentation order, from 0.
    pub index: u64,
    /// Presentation time from the clip's start, and duration.
    pub pts: gst::ClockTime,
    pub duration: gst::ClockTime,
    pub rgb: Vec<u8>,
}

/// What a frame's consumer wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    More,
    Stop,
}

/// A range planned and leased.
pub struct Footage {
    sources: Vec<Source>,
    clip: Clip,
    /// Presentation times of the video frames (timescale units from the
    /// first frame shown), in presentation order.
    pts: Vec<u64>,
    pub width: u32,
    pub height: u32,
    _lease: LeaseGuard,
}

impl Footage {
    /// Plans `camera` over `[from_us, to_us)`.
    pub fn plan(
        index: &Index,
        config: &Config,
        leases: &Arc<Leases>,
        camera: &str,
        from_us: i64,
        to_us: i64,
    ) -> Result<Footage> {
        let ids: Vec<SegmentId> = index
            .segments(camera, from_us, to_us)?
            .iter()
            .map(|s| SegmentId(s.id))
            .collect();
        let lease = leases.acquire(&ids);
        let rows = index.complete_segments(&ids)?;
        if rows.is_empty() {
            return Err(Error::not_found(format!(
                "no complete footage of camera {camera} in the range: it was never recorded, \
                 is still being recorded, or has been deleted under the retention period"
            )));
        }
        let sources = rows
            .into_iter()
            .map(|row| export::open_unverified(config, row))
            .collect::<Result<Vec<_>>>()?;
        let mut clips = export::plan_clips(&sources, from_us, to_us)?.into_iter();
        let clip = clips.next().ok_or_else(|| {
            Error::not_found(format!("no complete frame of camera {camera} in the range"))
        })?;
        if let Some(next) = clips.next() {
            let tz = &config.timezone;
            return Err(Error::invalid(format!(
                "recording of camera {camera} has a gap in this range, from {} to {}; a \
                 redacted copy is one continuous stretch: redact each side of the gap \
                 separately",
                crate::review::caption_text(clip.to_us, tz),
                crate::review::caption_text(next.from_us, tz)
            )));
        }
        let video = &clip.specs[0];
        if decoder_caps(&video.codec).is_none() {
            return Err(Error::invalid("a redaction needs H.264 or H.265 video"));
        }
        let (width, height) = sources
            .iter()
            .find_map(|s| {
                s.video_track()
                    .map(|t| (u32::from(t.width), u32::from(t.height)))
            })
            .unwrap_or((u32::from(video.width), u32::from(video.height)));
        // Presentation times from the first frame shown, which is the
        // clip's start on the wall clock.
        let mut pts: Vec<i64> = clip
            .samples
            .iter()
            .filter(|s| s.track == 1)
            .map(|s| s.decode_time as i64 + i64::from(s.composition_offset))
            .collect();
        pts.sort_unstable();
        let first = pts.first().copied().unwrap_or(0);
        let pts: Vec<u64> = pts.into_iter().map(|p| (p - first) as u64).collect();
        Ok(Footage {
            sources,
            clip,
            pts,
            width: width.max(2),
            height: height.max(2),
            _lease: lease,
        })
    }

    pub fn frames(&self) -> u64 {
        self.clip.video_frames
    }

    /// Wall-clock time of the first frame and after the last.
    pub fn span_us(&self) -> (i64, i64) {
        (self.clip.from_us, self.clip.to_us)
    }

    /// Wall-clock time of frame `index` (presentation order).
    pub fn wall_us(&self, index: u64) -> i64 {
        let timescale = i128::from(self.clip.specs[0].timescale.max(1));
        let at = self.pts.get(index as usize).copied().unwrap_or(0);
        self.clip.from_us + (i128::from(at) * 1_000_000 / timescale) as i64
    }

    /// Frames per second, as a fraction, from the mean frame duration.
    pub fn framerate(&self) -> gst::Fraction {
        let timescale = i64::from(self.clip.specs[0].timescale.max(1));
        let (n, total) = self
            .clip
            .samples
            .iter()
            .filter(|s| s.track == 1)
            .fold((0i64, 0i64), |(n, t), s| (n + 1, t + i64::from(s.duration)));
        if n == 0 || total == 0 {
            return gst::Fraction::new(25, 1);
        }
        // frames per second = n * timescale / total, kept to 1/1000.
        let milli = (n * timescale * 1000 / total).max(1);
        let g = gcd(milli, 1000);
        gst::Fraction::new((milli / g) as i32, (1000 / g) as i32)
    }

    /// The source segments, as an export's manifest lists them.
    pub fn source_segments(&self, tz: &jiff::tz::TimeZone) -> Vec<SourceSegment> {
        self.sources
            .iter()
            .map(|s| SourceSegment {
                path: s.row.path.clone(),
                zone: s.row.zone.clone(),
                start: export::instant(s.row.start_us, tz),
                end: export::instant(s.row.end_us.unwrap_or(s.row.start_us), tz),
                bytes: s.row.bytes.unwrap_or(0),
                sha256: s.row.sha256.map(hex::encode).unwrap_or_default(),
                time_source: s.row.time_source.as_str().to_string(),
                clock_offset_us: s.row.clock_offset_us,
            })
            .collect()
    }

    /// The audio track, if the footage has one.
    pub fn audio(&self) -> Option<&TrackSpec> {
        self.clip.specs.get(1)
    }

    /// Decodes every frame scaled to `w`×`h` and hands each to `each`, in
    /// presentation order, until it says stop. Returns the frames handed.
    pub fn decode(
        &self,
        w: u32,
        h: u32,
        each: &mut dyn FnMut(Frame) -> Result<Next>,
    ) -> Result<u64> {
        gst::init().map_err(|e| Error::unavailable(format!("GStreamer cannot start: {e}")))?;
        let spec = &self.clip.specs[0];
        let (decoder, caps) = decoder_caps(&spec.codec)
            .ok_or_else(|| Error::invalid("a redaction needs H.264 or H.265 video"))?;
        let desc = format!(
            "appsrc name=src format=time block=true max-bytes=8000000 ! {decoder} ! \
             videoconvert ! videoscale ! \
             video/x-raw,format=RGB,width={w},height={h},pixel-aspect-ratio=1/1 ! \
             appsink name=sink sync=false max-buffers=8"
        );
        let pipeline = gst::parse::launch(&desc)
            .map_err(|e| {
                Error::unavailable(format!(
                    "cannot build the redaction's decoder ({e}); is gstreamer1.0-libav \
                     installed (scripts/setup)?"
                ))
            })?
            .downcast::<gst::Pipeline>()
            .map_err(|_| Error::internal("the decoder is not a pipeline"))?;
        let stop = Stop(pipeline.clone());
        let src = by_name::<gst_app::AppSrc>(&pipeline, "src")?;
        src.set_caps(Some(&caps));
        let sink = by_name::<gst_app::AppSink>(&pipeline, "sink")?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| Error::internal(format!("the decoder does not start: {e}")))?;
        let timescale = u64::from(spec.timescale.max(1));
        let start = self.pts_origin();
        let ns =
            |t: u64| gst::ClockTime::from_nseconds(t.saturating_mul(1_000_000_000) / timescale);
        std::thread::scope(|scope| {
            let feeder = scope.spawn(|| -> Result<()> {
                let mut files = SourceFiles::new();
                for s in self.clip.samples.iter().filter(|s| s.track == 1) {
                    let mut data = vec![0u8; s.size as usize];
                    files.read_at(&self.sources[s.source.0].path, s.source.1, &mut data)?;
                    let mut buffer = gst::Buffer::from_mut_slice(data);
                    let b = buffer.get_mut().expect("new buffer");
                    let dts = s.decode_time - start;
                    let pts = (dts as i64 + i64::from(s.composition_offset)).max(0) as u64;
                    b.set_dts(ns(dts));
                    b.set_pts(ns(pts));
                    b.set_duration(ns(u64::from(s.duration)));
                    if !s.keyframe {
                        b.set_flags(gst::BufferFlags::DELTA_UNIT);
                    }
                    if src.push_buffer(buffer).is_err() {
                        return Ok(()); // stopped
                    }
                }
                src.end_of_stream().map_err(flow)?;
                Ok(())
            });
            let mut handed = 0u64;
            let result = (|| -> Result<u64> {
                loop {
                    let Ok(sample) = sink.pull_sample() else {
                        break;
                    };
                    let buffer = sample
                        .buffer()
                        .ok_or_else(|| Error::internal("decoded frame without a buffer"))?;
                    let frame = Frame {
                        index: handed,
                        pts: buffer.pts().unwrap_or(gst::ClockTime::ZERO),
                        duration: buffer.duration().unwrap_or(gst::ClockTime::ZERO),
                        rgb: packed_rgb(&sample, w, h)?,
                    };
                    handed += 1;
                    if each(frame)? == Next::Stop {
                        return Ok(handed);
                    }
                }
                if let Some(m) = pipeline
                    .bus()
                    .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]))
                {
                    return Err(Error::internal(format!(
                        "decoding the footage failed: {m:?}"
                    )));
                }
                if handed != self.frames() {
                    return Err(Error::internal(format!(
                        "the decoder gave {handed} frames of the range's {}",
                        self.frames()
                    )));
                }
                Ok(handed)
            })();
            let _ = pipeline.set_state(gst::State::Null);
            let fed = feeder
                .join()
                .unwrap_or_else(|_| Err(Error::internal("the decoder's feeder panicked")));
            let n = result?;
            fed?;
            drop(stop);
            Ok(n)
        })
    }

    /// The audio samples in decode order: bytes, decode time from the
    /// clip's start and duration.
    pub fn audio_samples(&self) -> Result<Vec<(Vec<u8>, gst::ClockTime, gst::ClockTime)>> {
        let Some(spec) = self.audio() else {
            return Ok(Vec::new());
        };
        let timescale = u64::from(spec.timescale.max(1));
        let ns =
            |t: u64| gst::ClockTime::from_nseconds(t.saturating_mul(1_000_000_000) / timescale);
        let audio: Vec<_> = self.clip.samples.iter().filter(|s| s.track == 2).collect();
        let start = audio.iter().map(|s| s.decode_time).min().unwrap_or(0);
        let mut files = SourceFiles::new();
        let mut out = Vec::with_capacity(audio.len());
        for s in audio {
            let mut data = vec![0u8; s.size as usize];
            files.read_at(&self.sources[s.source.0].path, s.source.1, &mut data)?;
            out.push((data, ns(s.decode_time - start), ns(u64::from(s.duration))));
        }
        Ok(out)
    }

    fn pts_origin(&self) -> u64 {
        self.clip
            .samples
            .iter()
            .filter(|s| s.track == 1)
            .map(|s| s.decode_time)
            .min()
            .unwrap_or(0)
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs().max(1)
    } else {
        gcd(b, a % b)
    }
}
