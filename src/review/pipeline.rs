//! What every short GStreamer pipeline here needs: its elements by name,
//! a refused push as an error, a stop however the function returns, and
//! RGB frames without GStreamer's row padding and back.

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::mp4::Codec;
use crate::{Error, Result};

/// The element `name` of `pipeline`, as a `T`.
pub(crate) fn by_name<T: IsA<gst::Element>>(pipeline: &gst::Pipeline, name: &str) -> Result<T> {
    pipeline
        .by_name(name)
        .and_then(|e| e.downcast::<T>().ok())
        .ok_or_else(|| Error::internal(format!("the pipeline has no {name}")))
}

/// A push the pipeline refused, as an error.
pub(crate) fn flow(e: gst::FlowError) -> Error {
    Error::internal(format!("the pipeline refused a frame: {e:?}"))
}

/// Stops a pipeline however its function returns.
pub(crate) struct Stop(pub(crate) gst::Pipeline);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

/// A sample's `w`×`h` RGB frame as packed rows (GStreamer pads each row
/// to 4 bytes).
pub(crate) fn packed_rgb(sample: &gst::Sample, w: u32, h: u32) -> Result<Vec<u8>> {
    let buffer = sample
        .buffer()
        .ok_or_else(|| Error::internal("decoded frame without a buffer"))?;
    let map = buffer
        .map_readable()
        .map_err(|_| Error::internal("decoded frame cannot be read"))?;
    let row = (w * 3) as usize;
    let stride = (row + 3) & !3;
    if map.len() < stride * h as usize {
        return Err(Error::internal("decoded frame is smaller than asked"));
    }
    let mut rgb = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        rgb.extend_from_slice(&map[y * stride..y * stride + row]);
    }
    Ok(rgb)
}

/// Packed `w`×`h` RGB rows padded to 4 bytes each, as GStreamer takes them.
pub(crate) fn padded_rgb(rgb: &[u8], w: u32, h: u32) -> Vec<u8> {
    let row = (w * 3) as usize;
    let stride = (row + 3) & !3;
    if stride == row {
        return rgb.to_vec();
    }
    let mut padded = vec![0u8; stride * h as usize];
    for y in 0..h as usize {
        padded[y * stride..y * stride + row].copy_from_slice(&rgb[y * row..(y + 1) * row]);
    }
    padded
}

/// Caps of a single `w`×`h` RGB picture.
pub(crate) fn rgb_caps(w: u32, h: u32) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", "RGB")
        .field("width", w as i32)
        .field("height", h as i32)
        .field("framerate", gst::Fraction::new(0, 1))
        .build()
}

/// The decoder element for recorded video and the caps of its samples
/// (as an appsrc gives them); None for a codec that is not video.
pub(crate) fn decoder_caps(codec: &Codec) -> Option<(&'static str, gst::Caps)> {
    let (decoder, media, format, config) = match codec {
        Codec::H264 { avcc } => ("avdec_h264", "video/x-h264", "avc", avcc),
        Codec::H265 { hvcc } => ("avdec_h265", "video/x-h265", "hvc1", hvcc),
        _ => return None,
    };
    let caps = gst::Caps::builder(media)
        .field("stream-format", format)
        .field("alignment", "au")
        .field("codec_data", gst::Buffer::from_slice(config.clone()))
        .build();
    Some((decoder, caps))
}
