//! The GStreamer side of a camera: rtspsrc -> depayloader -> parser ->
//! appsink, with no decoding. Frames leave through a callback as soon as the
//! parser has a whole access unit, so nothing waits in a muxer's queue.
//!
//! Shape, per stream the camera offers:
//!   video H.264: rtph264depay ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! appsink
//!   video H.265: rtph265depay ! h265parse ! video/x-h265,stream-format=hvc1,alignment=au ! appsink
//!   audio AAC:   rtpmp4gdepay ! aacparse ! audio/mpeg,stream-format=raw ! appsink
//!   audio G.711: rtppcmadepay / rtppcmudepay ! appsink
//! Streams not recorded are not set up at all (rtspsrc `select-stream`).

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::clock::Clocks;
use crate::config::{Camera, Transport};
use crate::error::{Error, Result};
use crate::mp4;

use super::rtptime::RtpTimestamper;
use super::segmenter::{Frame, Kind, Payload, Segmenter};
use super::tracks::{Choice, TrackChooser};

/// rtspsrc jitter-buffer latency: bounds reordering on UDP. Over TCP there
/// is no jitter buffer (see `rtptime`).
const LATENCY_MS: u32 = 200;

/// Builds the pipeline for `camera`; frames go to `segmenter`.
pub fn build(
    camera: &Camera,
    segmenter: Arc<Mutex<Segmenter>>,
    clocks: Arc<dyn Clocks>,
    on_frame: Arc<dyn Fn() + Send + Sync>,
) -> Result<gst::Pipeline> {
    let pipeline = gst::Pipeline::with_name(&format!("camera-{}", camera.id));
    let src = make("rtspsrc")?;
    src.set_property("location", camera.url.as_str());
    src.set_property("latency", LATENCY_MS);
    src.set_property_from_str("buffer-mode", "none");
    src.set_property_from_str(
        "protocols",
        match camera.transport {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        },
    );
    if let Some(c) = &camera.credentials {
        src.set_property("user-id", c.username());
        src.set_property("user-pw", c.password());
    }
    // RTCP sender reports give the camera's NTP time of each frame, as a
    // reference-timestamp meta, only when the RTP manager is asked for it.
    let tcp = camera.transport == Transport::Tcp;
    src.connect("new-manager", false, move |args| {
        let Ok(manager) = args[1].get::<gst::Element>() else {
            return None;
        };
        if manager.has_property("add-reference-timestamp-meta") {
            manager.set_property("add-reference-timestamp-meta", true);
        }
        // Over TCP nothing is reordered or lost: stamp packets on the
        // reading thread instead of handing each to a jitter buffer's.
        if tcp {
            manager.connect("request-jitterbuffer", false, |_| {
                Some(RtpTimestamper::new().upcast::<gst::Element>().to_value())
            });
        }
        None
    });
    pipeline
        .add(&src)
        .map_err(|e| Error::internal(format!("pipeline: {e}")))?;

    // Choose streams from the SDP (`tracks`).
    let chooser = Mutex::new(TrackChooser::new(&camera.id, camera.audio));
    let seg = segmenter.clone();
    src.connect("select-stream", false, move |args| {
        let index = args[1].get::<u32>().ok()? as usize;
        let caps = args[2].get::<gst::Caps>().ok()?;
        let s = caps.structure(0)?;
        let media = s.get::<&str>("media").unwrap_or("");
        let encoding = s.get::<&str>("encoding-name").unwrap_or("");
        let take = match chooser
            .lock()
            .unwrap()
            .offer(index, media, encoding, || audio_track_spec(s))
        {
            Choice::Video => true,
            Choice::Audio(spec) => {
                seg.lock().unwrap().expect_audio(spec);
                true
            }
            Choice::Skip | Choice::Refused(_) => false,
        };
        Some(take.to_value())
    });

    let weak = pipeline.downgrade();
    src.connect_pad_added(move |_src, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        if let Err(e) = link_stream(&pipeline, pad, &segmenter, &clocks, &on_frame) {
            tracing::error!(error = %e, "linking a camera stream");
        }
    });
    Ok(pipeline)
}

fn make(factory: &str) -> Result<gst::Element> {
    gst::ElementFactory::make(factory).build().map_err(|_| {
        Error::unavailable(format!(
            "the GStreamer element {factory} is missing; install the GStreamer plugin \
             packages (scripts/setup lists them)"
        ))
    })
}

fn link_stream(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    segmenter: &Arc<Mutex<Segmenter>>,
    clocks: &Arc<dyn Clocks>,
    on_frame: &Arc<dyn Fn() + Send + Sync>,
) -> Result<()> {
    let caps = pad
        .current_caps()
        .ok_or_else(|| Error::internal("rtspsrc pad without caps"))?;
    let s = caps
        .structure(0)
        .ok_or_else(|| Error::internal("empty caps"))?;
    let media = s.get::<&str>("media").unwrap_or("");
    let encoding = s
        .get::<&str>("encoding-name")
        .unwrap_or("")
        .to_ascii_uppercase();
    let (chain, kind): (Vec<gst::Element>, Kind) = match (media, encoding.as_str()) {
        ("video", "H264") => (
            vec![
                make("rtph264depay")?,
                make("h264parse")?,
                capsfilter("video/x-h264,stream-format=avc,alignment=au")?,
            ],
            Kind::Video,
        ),
        ("video", "H265") => (
            vec![
                make("rtph265depay")?,
                make("h265parse")?,
                capsfilter("video/x-h265,stream-format=hvc1,alignment=au")?,
            ],
            Kind::Video,
        ),
        ("audio", "MPEG4-GENERIC") => (
            vec![
                make("rtpmp4gdepay")?,
                make("aacparse")?,
                capsfilter("audio/mpeg,stream-format=raw")?,
            ],
            Kind::Audio,
        ),
        ("audio", "PCMA") => (vec![make("rtppcmadepay")?], Kind::Audio),
        ("audio", "PCMU") => (vec![make("rtppcmudepay")?], Kind::Audio),
        _ => {
            // Every pad must be linked or rtspsrc stops with not-linked.
            let sink = make("fakesink")?;
            pipeline
                .add(&sink)
                .map_err(|e| Error::internal(e.to_string()))?;
            sink.sync_state_with_parent().ok();
            pad.link(&sink.static_pad("sink").unwrap())
                .map_err(|e| Error::internal(format!("linking fakesink: {e:?}")))?;
            return Ok(());
        }
    };
    let sink = appsink(kind, segmenter.clone(), clocks.clone(), on_frame.clone());
    let mut all = chain;
    all.push(sink.upcast());
    pipeline
        .add_many(&all)
        .map_err(|e| Error::internal(e.to_string()))?;
    gst::Element::link_many(&all).map_err(|e| Error::internal(format!("linking: {e}")))?;
    for e in &all {
        e.sync_state_with_parent().ok();
    }
    pad.link(&all[0].static_pad("sink").unwrap())
        .map_err(|e| Error::internal(format!("linking the depayloader: {e:?}")))?;
    Ok(())
}

fn capsfilter(caps: &str) -> Result<gst::Element> {
    let caps: gst::Caps = caps
        .parse()
        .map_err(|_| Error::internal(format!("bad caps {caps}")))?;
    gst::ElementFactory::make("capsfilter")
        .property("caps", caps)
        .build()
        .map_err(|_| Error::unavailable("the GStreamer element capsfilter is missing"))
}

fn appsink(
    kind: Kind,
    segmenter: Arc<Mutex<Segmenter>>,
    clocks: Arc<dyn Clocks>,
    on_frame: Arc<dyn Fn() + Send + Sync>,
) -> gst_app::AppSink {
    let sink = gst_app::AppSink::builder().sync(false).build();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let arrival_us = clocks.realtime();
                let Some(buffer) = sample.buffer_owned() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                // A buffer without timestamps cannot be placed in time; drop it
                // rather than let it corrupt the segment (see GSTREAMER-NOTES).
                let Some(pts) = buffer.pts().or(buffer.dts()) else {
                    tracing::debug!("dropping a buffer without timestamps");
                    return Ok(gst::FlowSuccess::Ok);
                };
                let dts = buffer.dts().unwrap_or(pts);
                let keyframe =
                    kind == Kind::Audio || !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                let duration_ns = buffer.duration().map(|d| d.nseconds());
                let ntp_us = ntp_time(&buffer);
                let Ok(data) = buffer.into_mapped_buffer_readable() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let mut seg = segmenter.lock().unwrap();
                if kind == Kind::Video
                    && let Some(caps) = sample.caps()
                    && let Err(e) = seg.video_caps(caps)
                {
                    tracing::error!(error = %e, "unusable video format");
                    return Err(gst::FlowError::NotNegotiated);
                }
                seg.push(Frame {
                    kind,
                    dts_ns: dts.nseconds(),
                    pts_ns: pts.nseconds(),
                    duration_ns,
                    keyframe,
                    data: Payload::Gst(data),
                    arrival_us,
                    ntp_us,
                });
                drop(seg);
                on_frame();
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    sink
}

/// The camera's NTP time of a buffer, when RTCP sender reports gave one.
fn ntp_time(buffer: &gst::BufferRef) -> Option<i64> {
    const NTP_TO_UNIX_US: i64 = 2_208_988_800 * 1_000_000;
    let meta = buffer
        .iter_meta::<gst::ReferenceTimestampMeta>()
        .find(|m| {
            m.reference()
                .structure(0)
                .is_some_and(|s| s.name() == "timestamp/x-ntp")
        })?;
    Some(meta.timestamp().useconds() as i64 - NTP_TO_UNIX_US)
}

/// The MP4 track for the parser's video caps.
pub fn video_track_spec(caps: &gst::CapsRef) -> Result<mp4::TrackSpec> {
    let s = caps
        .structure(0)
        .ok_or_else(|| Error::invalid("empty video caps"))?;
    let codec_data = s
        .get::<gst::Buffer>("codec_data")
        .map_err(|_| Error::invalid("the camera's video has no codec configuration (SPS/PPS)"))?;
    let bytes = codec_data
        .map_readable()
        .map_err(|_| Error::internal("cannot read codec_data"))?
        .to_vec();
    let codec = match s.name().as_str() {
        "video/x-h264" => mp4::Codec::H264 { avcc: bytes },
        "video/x-h265" => mp4::Codec::H265 { hvcc: bytes },
        other => return Err(Error::invalid(format!("unsupported video format {other}"))),
    };
    Ok(mp4::TrackSpec::video(
        codec,
        s.get::<i32>("width").unwrap_or(0) as u16,
        s.get::<i32>("height").unwrap_or(0) as u16,
    ))
}

/// The MP4 track for an audio stream, from its RTP caps in the SDP.
fn audio_track_spec(s: &gst::StructureRef) -> Option<mp4::TrackSpec> {
    let encoding = s.get::<&str>("encoding-name").ok()?.to_ascii_uppercase();
    let rate = s.get::<i32>("clock-rate").ok()? as u32;
    let channels = s
        .get::<&str>("encoding-params")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(1u16);
    let codec = match encoding.as_str() {
        "MPEG4-GENERIC" => {
            let config = s.get::<&str>("config").ok()?;
            mp4::Codec::Aac {
                asc: hex::decode(config).ok()?,
            }
        }
        "PCMA" => mp4::Codec::Pcma,
        "PCMU" => mp4::Codec::Pcmu,
        _ => return None,
    };
    Some(mp4::TrackSpec::audio(codec, rate, channels))
}
