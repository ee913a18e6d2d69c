//! Clips encoded once and served in a loop: what makes a clip-mode camera
//! cost about 1% of a core instead of a live encoder's 40%.
//!
//! Invariants: a video clip is a whole number of GOPs and starts with a key
//! frame, so looping it keeps the key-frame interval; every buffer carries a
//! PTS relative to the clip's first buffer and a duration, so the clip's
//! `period` (first PTS to last PTS + duration) is the timestamp offset from
//! one loop to the next. Clips are cached for the life of the process, keyed
//! by everything that changes the encoded bytes, because tests start many
//! simulators with the same cameras.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::{SimAudio, SimCamera, SimCodec, launch};
use crate::error::{Error, ErrorKind, Result};

/// Target clip length; the video clip is rounded up to whole GOPs.
const CLIP_TARGET: Duration = Duration::from_secs(4);

/// Encoding a clip longer than this means something is stuck.
const ENCODE_TIMEOUT: Duration = Duration::from_secs(120);

/// Encoded buffers ready to be re-stamped and pushed.
#[derive(Debug)]
pub(super) struct Clip {
    /// Caps for the serving `appsrc` (with `codec_data`).
    pub caps: gst::Caps,
    /// In decode order; PTS relative to the first buffer.
    pub buffers: Vec<gst::Buffer>,
    /// Time from one loop's first buffer to the next loop's.
    pub period: gst::ClockTime,
}

/// The video and (optional) audio clip of one camera.
#[derive(Debug, Clone)]
pub(super) struct ClipSet {
    pub video: Arc<Clip>,
    pub audio: Option<Arc<Clip>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Video {
        codec: SimCodec,
        width: u32,
        height: u32,
        fps: u32,
        kbps: u32,
        gop: u32,
    },
    Audio {
        audio: SimAudio,
        video_period: gst::ClockTime,
    },
}

fn cache() -> &'static Mutex<HashMap<Key, Arc<Clip>>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Arc<Clip>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The clips for `camera`, encoded now unless an identical camera's are
/// cached. The audio clip lasts about as long as the video clip; each loops
/// on its own period, so neither needs to divide the other exactly.
pub(super) fn for_camera(camera: &SimCamera) -> Result<ClipSet> {
    let video_key = Key::Video {
        codec: camera.codec,
        width: camera.width,
        height: camera.height,
        fps: camera.fps,
        kbps: camera.bitrate_kbps,
        gop: camera.keyframe_interval_frames,
    };
    let video = cached(video_key, || {
        let gop = u64::from(camera.keyframe_interval_frames);
        let target_frames = CLIP_TARGET.as_secs() * u64::from(camera.fps);
        let frames = target_frames.div_ceil(gop).max(1) * gop;
        let frames = u32::try_from(frames)
            .map_err(|_| Error::invalid(format!("camera {}: clip too long", camera.name)))?;
        let clip = encode(&launch::clip_video(camera, frames))?;
        check_video(&clip, camera, frames)?;
        Ok(clip)
    })?;
    let audio = match camera.audio {
        SimAudio::None => None,
        audio => Some(cached(
            Key::Audio {
                audio,
                video_period: video.period,
            },
            || {
                let rate = u64::from(launch::audio_rate(audio));
                let spf = u64::from(launch::audio_samples_per_buffer(audio));
                let samples = video.period.nseconds() * rate / 1_000_000_000;
                let buffers = u32::try_from(samples.div_ceil(spf).max(1)).map_err(|_| {
                    Error::invalid(format!("camera {}: clip too long", camera.name))
                })?;
                encode(&launch::clip_audio(audio, buffers))
            },
        )?),
    };
    Ok(ClipSet { video, audio })
}

fn cached(key: Key, make: impl FnOnce() -> Result<Clip>) -> Result<Arc<Clip>> {
    // Held while encoding so two simulators starting at once encode once.
    let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(clip) = cache.get(&key) {
        return Ok(clip.clone());
    }
    let clip = Arc::new(make()?);
    cache.insert(key, clip.clone());
    Ok(clip)
}

/// Runs `desc` (ending in an appsink) to EOS and keeps what came out.
fn encode(desc: &str) -> Result<Clip> {
    let started = Instant::now();
    let pipeline = gst::parse::launch(desc)
        .map_err(|e| {
            Error::with_source(
                ErrorKind::Unavailable,
                format!("cannot build clip encoder `{desc}`: {e}"),
                e,
            )
        })?
        .downcast::<gst::Pipeline>()
        .map_err(|_| Error::internal("clip encoder description did not give a pipeline"))?;
    let result = run_to_eos(&pipeline, desc);
    let _ = pipeline.set_state(gst::State::Null);
    let clip = result?;
    tracing::debug!(
        buffers = clip.buffers.len(),
        period_ms = clip.period.mseconds(),
        bytes = clip.buffers.iter().map(|b| b.size()).sum::<usize>(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        desc,
        "encoded clip"
    );
    Ok(clip)
}

fn run_to_eos(pipeline: &gst::Pipeline, desc: &str) -> Result<Clip> {
    let failed = |what: &str| Error::internal(format!("clip encoder `{desc}`: {what}"));
    let sink = pipeline
        .by_name(launch::CLIP_APPSINK)
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| failed("no appsink"))?;
    let bus = pipeline.bus().ok_or_else(|| failed("no bus"))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| failed("cannot start"))?;

    let started = Instant::now();
    let mut caps = None;
    let mut buffers: Vec<gst::Buffer> = Vec::new();
    loop {
        if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
            if caps.is_none() {
                caps = sample.caps_owned();
            }
            buffers.extend(sample.buffer_owned());
            continue;
        }
        if sink.is_eos() {
            break;
        }
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error])
            && let gst::MessageView::Error(e) = msg.view()
        {
            return Err(failed(&format!("{} ({:?})", e.error(), e.debug())));
        }
        if started.elapsed() > ENCODE_TIMEOUT {
            return Err(failed("timed out"));
        }
    }

    let caps = caps.ok_or_else(|| failed("produced nothing"))?;
    let first = buffers[0]
        .pts()
        .ok_or_else(|| failed("buffer without PTS"))?;
    let mut end = first;
    for buffer in &mut buffers {
        let b = buffer.make_mut();
        let pts = b.pts().ok_or_else(|| failed("buffer without PTS"))?;
        let duration = b
            .duration()
            .ok_or_else(|| failed("buffer without duration"))?;
        end = end.max(pts + duration);
        // Relative to the clip; the pacer adds each loop's origin. DTS is
        // dropped: with no B-frames it equals PTS, and the payloaders only
        // look at PTS.
        b.set_pts(
            pts.checked_sub(first)
                .ok_or_else(|| failed("PTS before the first buffer's"))?,
        );
        b.set_dts(gst::ClockTime::NONE);
        b.unset_flags(gst::BufferFlags::DISCONT);
    }
    Ok(Clip {
        caps,
        buffers,
        period: end - first,
    })
}

/// A looped clip that does not start with a key frame, or holds extra ones,
/// would change the GOP the recorder sees at every loop.
fn check_video(clip: &Clip, camera: &SimCamera, frames: u32) -> Result<()> {
    let keys: Vec<usize> = clip
        .buffers
        .iter()
        .enumerate()
        .filter(|(_, b)| !b.flags().contains(gst::BufferFlags::DELTA_UNIT))
        .map(|(i, _)| i)
        .collect();
    let gop = camera.keyframe_interval_frames as usize;
    let expected: Vec<usize> = (0..frames as usize).step_by(gop).collect();
    if clip.buffers.len() != frames as usize || keys != expected {
        return Err(Error::internal(format!(
            "camera {}: encoded clip has {} frames with key frames at {keys:?}; \
             expected {frames} frames with key frames every {gop}",
            camera.name,
            clip.buffers.len()
        )));
    }
    Ok(())
}
