//! Pictures for the detector, decoded and scaled by GStreamer to its input
//! size as packed RGB.

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::review::pipeline::{Stop, by_name, packed_rgb};
use crate::{Error, Result};

/// How long one picture may take to decode.
const DECODE_WAIT: gst::ClockTime = gst::ClockTime::from_seconds(20);

/// A still picture (PNG, JPEG: what `decodebin` reads) as packed RGB,
/// scaled to `w`×`h` (stretched: the detector takes the frame whole).
pub fn still_rgb(path: &Path, w: u32, h: u32) -> Result<Vec<u8>> {
    gst::init().map_err(|e| Error::internal(format!("GStreamer does not start: {e}")))?;
    let desc = format!(
        "filesrc name=src ! decodebin ! videoconvert ! videoscale ! \
         video/x-raw,format=RGB,width={w},height={h},pixel-aspect-ratio=1/1 ! \
         appsink name=sink sync=false"
    );
    let pipeline = gst::parse::launch(&desc)
        .map_err(|e| Error::unavailable(format!("cannot build the picture decoder ({e})")))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| Error::internal("the picture decoder is not a pipeline"))?;
    let stop = Stop(pipeline.clone());
    by_name::<gst::Element>(&pipeline, "src")?.set_property("location", path);
    let sink = by_name::<gst_app::AppSink>(&pipeline, "sink")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| Error::internal(format!("the picture decoder does not start: {e}")))?;
    let sample = sink.try_pull_sample(DECODE_WAIT).ok_or_else(|| {
        Error::invalid(format!(
            "{} could not be decoded as a picture",
            path.display()
        ))
    })?;
    drop(stop);
    packed_rgb(&sample, w, h)
}
