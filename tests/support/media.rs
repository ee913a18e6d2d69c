//! Reading recordings back with GStreamer's own demuxer (qtdemux): an
//! independent check of the files Custos's MP4 writer produced.

use std::path::Path;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// A stream's frames as qtdemux sees them.
#[derive(Debug, Default, Clone)]
pub struct Track {
    pub caps: String,
    /// (pts ns, duration ns, key frame)
    pub frames: Vec<(u64, u64, bool)>,
}

impl Track {
    pub fn duration_ns(&self) -> u64 {
        self.frames.iter().map(|f| f.1).sum()
    }
    pub fn start_ns(&self) -> u64 {
        self.frames.iter().map(|f| f.0).min().unwrap_or(0)
    }
}

#[derive(Debug, Default, Clone)]
pub struct Demuxed {
    pub video: Track,
    pub audio: Option<Track>,
    /// A subtitle stream (a view's caption track): its timing, and its
    /// buffers' text.
    pub text: Option<Track>,
    pub texts: Vec<String>,
}

/// Demuxes `path` to the end and returns every frame's timing.
pub fn demux(path: &Path) -> Demuxed {
    gst::init().unwrap();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_str().unwrap())
        .build()
        .unwrap();
    demux_from(src, &path.display().to_string())
}

/// Demuxes what arrives on file descriptor `fd` (a pipe) to its end.
pub fn demux_fd(fd: i32) -> Demuxed {
    gst::init().unwrap();
    let src = gst::ElementFactory::make("fdsrc")
        .property("fd", fd)
        .build()
        .unwrap();
    demux_from(src, &format!("fd {fd}"))
}

fn demux_from(src: gst::Element, what: &str) -> Demuxed {
    let pipeline = gst::Pipeline::new();
    let demux = gst::ElementFactory::make("qtdemux").build().unwrap();
    pipeline.add_many([&src, &demux]).unwrap();
    src.link(&demux).unwrap();
    let out = Arc::new(Mutex::new(Demuxed::default()));
    let weak = pipeline.downgrade();
    let out2 = out.clone();
    demux.connect_pad_added(move |_, pad| {
        let pipeline = weak.upgrade().unwrap();
        let is_video = pad.name().starts_with("video");
        let is_text = pad.name().starts_with("subtitle");
        let sink = gst_app::AppSink::builder().sync(false).build();
        // Not waiting for every sink to preroll: qtdemux pushing a pipe
        // feeds all pads from one thread, which a prerolled sink would
        // block before the others ever got a buffer.
        sink.set_property("async", false);
        let out = out2.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let b = sample.buffer().unwrap();
                    let frame = (
                        b.pts().map(|t| t.nseconds()).unwrap_or(0),
                        b.duration().map(|t| t.nseconds()).unwrap_or(0),
                        !b.flags().contains(gst::BufferFlags::DELTA_UNIT),
                    );
                    let caps = sample.caps().map(|c| c.to_string()).unwrap_or_default();
                    let mut out = out.lock().unwrap();
                    if is_text {
                        let map = b.map_readable().unwrap();
                        let text = String::from_utf8_lossy(&map).into_owned();
                        out.texts.push(text);
                    }
                    let track = if is_video {
                        &mut out.video
                    } else if is_text {
                        out.text.get_or_insert_with(Track::default)
                    } else {
                        out.audio.get_or_insert_with(Track::default)
                    };
                    track.caps = caps;
                    track.frames.push(frame);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        pipeline.add(&sink).unwrap();
        sink.sync_state_with_parent().unwrap();
        pad.link(&sink.static_pad("sink").unwrap()).unwrap();
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(30)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                panic!(
                    "qtdemux could not read {}: {} ({:?})",
                    what,
                    e.error(),
                    e.debug()
                )
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    out.lock().unwrap().clone()
}
