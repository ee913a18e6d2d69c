//! Rendering a redacted copy: every frame of the footage decoded at full
//! size, its masks burned into the pixels, encoded again with `x264enc`
//! into a progressive MP4 (`mp4mux faststart`), with the sound only when
//! the reviewer kept it on purpose (AAC, copied as recorded).
//!
//! Invariants:
//! - The copy has exactly the footage's frames, in order, each with the
//!   masks of its own frame number; the file is checked back (its video
//!   frames counted, no audio track unless kept) before it counts.
//! - It is written under a temporary name, fsynced and renamed: a copy
//!   that exists is complete.

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::choice::{self, Choice, FrameMasks};
use super::footage::{Footage, Next};
use super::track::Track;
use crate::mp4::Codec;
use crate::review::pipeline::{Stop, by_name, flow, padded_rgb};
use crate::{Error, Result};

/// The encoder's settings, as the redaction record states them.
pub const ENCODER: &str = "x264enc speed-preset=veryfast tune=zerolatency pass=qual quantizer=20";

/// How the frames of a copy were masked, for its review.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub frames: u64,
    /// Per frame: the masks it got.
    pub masks: Vec<FrameMasks>,
    pub audio_kept: bool,
}

/// Renders `footage` masked as `choice` says into `out`; `progress` hears
/// of every frame encoded and may stop the rendering (an error then).
pub fn render(
    footage: &Footage,
    tracks: &[Track],
    choice: &Choice,
    out: &Path,
    progress: &mut dyn FnMut(u64) -> Result<Next>,
) -> Result<Rendered> {
    let (w, h) = (footage.width, footage.height);
    let audio = match (choice.keep_audio, footage.audio()) {
        (false, _) => None,
        (true, None) => {
            return Err(Error::invalid(
                "the footage has no sound to keep; choose again without keep_audio",
            ));
        }
        (true, Some(spec)) => match &spec.codec {
            Codec::Aac { asc } => Some((asc.clone(), spec.sample_rate, spec.channels)),
            _ => {
                return Err(Error::invalid(
                    "only AAC sound can be kept in a redacted copy; this footage's sound is \
                     G.711: choose again without keep_audio",
                ));
            }
        },
    };
    let rate = footage.framerate();
    let key_int = (rate.numer() / rate.denom().max(1)).max(1) * 2;
    let mut desc = format!(
        "appsrc name=video format=time block=true max-bytes=32000000 ! videoconvert ! \
         video/x-raw,format=I420 ! {ENCODER} key-int-max={key_int} ! \
         video/x-h264,profile=high ! h264parse ! mp4mux name=mux faststart=true ! \
         filesink name=file"
    );
    if audio.is_some() {
        desc.push_str(" appsrc name=audio format=time ! mux.");
    }
    let tmp = out.with_extension("partial");
    let _ = std::fs::remove_file(&tmp);
    let pipeline = gst::parse::launch(&desc)
        .map_err(|e| {
            Error::unavailable(format!(
                "cannot build the redaction's encoder ({e}); is gstreamer1.0-plugins-ugly \
                 (x264enc) installed (scripts/setup)?"
            ))
        })?
        .downcast::<gst::Pipeline>()
        .map_err(|_| Error::internal("the encoder is not a pipeline"))?;
    let stop = Stop(pipeline.clone());
    by_name::<gst::Element>(&pipeline, "file")?.set_property("location", &tmp);
    let video = by_name::<gst_app::AppSrc>(&pipeline, "video")?;
    video.set_caps(Some(
        &gst::Caps::builder("video/x-raw")
            .field("format", "RGB")
            .field("width", w as i32)
            .field("height", h as i32)
            .field("framerate", rate)
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
    ));
    if let Some((asc, sample_rate, channels)) = &audio {
        let src = by_name::<gst_app::AppSrc>(&pipeline, "audio")?;
        src.set_caps(Some(
            &gst::Caps::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .field("stream-format", "raw")
                .field("codec_data", gst::Buffer::from_slice(asc.clone()))
                .field("rate", *sample_rate as i32)
                .field("channels", i32::from(*channels))
                .build(),
        ));
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| Error::internal(format!("the encoder does not start: {e}")))?;
        for (data, at, duration) in footage.audio_samples()? {
            let mut buffer = gst::Buffer::from_mut_slice(data);
            let b = buffer.get_mut().expect("new buffer");
            b.set_pts(at);
            b.set_duration(duration);
            src.push_buffer(buffer).map_err(flow)?;
        }
        src.end_of_stream().map_err(flow)?;
    } else {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| Error::internal(format!("the encoder does not start: {e}")))?;
    }

    let mut rendered = Rendered {
        audio_kept: audio.is_some(),
        ..Rendered::default()
    };
    let mut stopped = false;
    footage.decode(w, h, &mut |mut frame| {
        let masks = choice::frame_masks(
            choice,
            tracks,
            frame.index as usize,
            footage.wall_us(frame.index),
            (w, h),
        );
        choice::apply(&mut frame.rgb, w, h, &masks);
        rendered.masks.push(masks);
        let mut buffer = gst::Buffer::from_mut_slice(padded_rgb(&frame.rgb, w, h));
        let b = buffer.get_mut().expect("new buffer");
        b.set_pts(frame.pts);
        b.set_duration(frame.duration);
        video.push_buffer(buffer).map_err(flow)?;
        rendered.frames += 1;
        let next = progress(rendered.frames)?;
        stopped = next == Next::Stop;
        Ok(next)
    })?;
    if stopped {
        return Err(Error::unavailable("the rendering was stopped"));
    }
    video.end_of_stream().map_err(flow)?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| Error::internal("the encoder has no bus"))?;
    let wait = gst::ClockTime::from_seconds(120 + rendered.frames / 10);
    match bus.timed_pop_filtered(wait, &[gst::MessageType::Eos, gst::MessageType::Error]) {
        Some(m) if m.type_() == gst::MessageType::Eos => {}
        Some(m) => return Err(Error::internal(format!("encoding the copy failed: {m:?}"))),
        None => return Err(Error::internal("the encoder did not finish")),
    }
    drop(stop);
    check_copy(&tmp, rendered.frames, rendered.audio_kept)?;
    let f = std::fs::File::open(&tmp).map_err(|e| Error::io("cannot open", &tmp, e))?;
    crate::storage::fsync_file(&f, &tmp);
    std::fs::rename(&tmp, out).map_err(|e| Error::io("cannot rename", &tmp, e))?;
    if let Some(dir) = out.parent() {
        crate::storage::fsync_dir(dir);
    }
    Ok(rendered)
}

/// Reads the copy back: `frames` video frames, and sound only if kept.
fn check_copy(path: &Path, frames: u64, audio: bool) -> Result<()> {
    let info = crate::mp4::scan_file(path)?;
    let video = info
        .tracks
        .iter()
        .find(|t| t.codec.is_video())
        .ok_or_else(|| Error::internal("the redacted copy has no video track"))?;
    let n = info.samples.iter().filter(|s| s.track == video.id).count() as u64;
    if n != frames {
        return Err(Error::internal(format!(
            "the redacted copy has {n} frames where {frames} were encoded"
        )));
    }
    let has_audio = info.tracks.iter().any(|t| !t.codec.is_video());
    if has_audio != audio {
        return Err(Error::internal(if audio {
            "the redacted copy lost its sound"
        } else {
            "the redacted copy has sound that was to be removed"
        }));
    }
    Ok(())
}
