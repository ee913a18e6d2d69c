//! The two review sheets of a redaction, as PNG:
//! - the tracks sheet: a numbered thumbnail of each face found, cut from
//!   the full-size frame where it was surest, with when it appears; the
//!   reviewer names the requester's number(s) from it;
//! - the copy's sheet: a frame of the rendered copy for every second,
//!   labelled with its time, and marked (a red frame and a note) where a
//!   masked face was not detected but carried or interpolated, or detected
//!   with a low score: where a second person should look hardest.

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::choice::FrameMasks;
use super::detect::FaceBox;
use super::footage::{Footage, Next};
use super::track::Track;
use crate::review::pipeline::{Stop, by_name, packed_rgb};
use crate::review::sheet::{LABEL_HEIGHT, encode_png, labelled, place};
use crate::{Error, Result};

const THUMB: u32 = 128;
const COLUMNS: u32 = 6;
const FRAME_TILE_WIDTH: u32 = 240;
const MARK: [u8; 3] = [220, 30, 30];

/// `10:40:30`: local time for a label.
fn clock(us: i64, tz: &jiff::tz::TimeZone) -> String {
    jiff::Timestamp::from_microsecond(us)
        .map(|ts| ts.to_zoned(tz.clone()).strftime("%H:%M:%S").to_string())
        .unwrap_or_else(|_| us.to_string())
}

/// The frame where each track was detected with its best score.
fn best(t: &Track) -> (usize, FaceBox) {
    t.boxes
        .iter()
        .filter(|b| b.detected)
        .max_by(|a, b| a.face.score.total_cmp(&b.face.score))
        .map_or((t.first_frame(), t.boxes[0].face), |b| (b.frame, b.face))
}

/// A square crop around `b` (grown by half its size) of a `w`×`h` frame,
/// as packed RGB with its size.
fn crop(rgb: &[u8], w: u32, h: u32, b: &FaceBox) -> (Vec<u8>, u32, u32) {
    let (cx, cy) = (
        (b.x0 + b.x1) / 2.0 * w as f32,
        (b.y0 + b.y1) / 2.0 * h as f32,
    );
    let side = (b.width() * w as f32).max(b.height() * h as f32) * 2.0;
    let side = side.clamp(8.0, w.min(h) as f32);
    let x0 = (cx - side / 2.0).clamp(0.0, w as f32 - side) as u32;
    let y0 = (cy - side / 2.0).clamp(0.0, h as f32 - side) as u32;
    let s = (side as u32) & !1;
    let mut out = Vec::with_capacity((s * s * 3) as usize);
    for y in y0..y0 + s {
        let row = ((y * w + x0) * 3) as usize;
        out.extend_from_slice(&rgb[row..row + (s * 3) as usize]);
    }
    (out, s, s)
}

/// The tracks sheet of `tracks` found in `footage`.
pub fn tracks_sheet(
    footage: &Footage,
    tracks: &[Track],
    tz: &jiff::tz::TimeZone,
) -> Result<Vec<u8>> {
    if tracks.is_empty() {
        let text = "no face was found: mask by hand or use keep-only";
        let tile = labelled(&vec![48u8; 64 * 36 * 3], (64, 36), text, 480, 270)?;
        return encode_png(tile, 480, 270 + LABEL_HEIGHT);
    }
    let (w, h) = (footage.width, footage.height);
    let wanted: Vec<(usize, FaceBox)> = tracks.iter().map(best).collect();
    let last = wanted.iter().map(|(f, _)| *f).max().unwrap_or(0);
    let mut crops: Vec<Option<(Vec<u8>, u32, u32)>> = vec![None; tracks.len()];
    footage.decode(w, h, &mut |frame| {
        for (i, (at, b)) in wanted.iter().enumerate() {
            if *at == frame.index as usize {
                crops[i] = Some(crop(&frame.rgb, w, h, b));
            }
        }
        Ok(if frame.index as usize >= last {
            Next::Stop
        } else {
            Next::More
        })
    })?;
    let columns = COLUMNS.min(tracks.len() as u32);
    let cell_h = THUMB + LABEL_HEIGHT;
    let rows = (tracks.len() as u32).div_ceil(columns);
    let width = THUMB * columns;
    let mut canvas = vec![0u8; (width * cell_h * rows * 3) as usize];
    for (i, t) in tracks.iter().enumerate() {
        let text = format!(
            "#{} {}-{}",
            t.id,
            clock(footage.wall_us(t.first_frame() as u64), tz),
            clock(footage.wall_us(t.last_frame() as u64), tz)
        );
        let (rgb, cw, ch) = crops[i]
            .take()
            .ok_or_else(|| Error::internal(format!("track {} was not seen again", t.id)))?;
        let tile = labelled(&rgb, (cw, ch), &text, THUMB, THUMB)?;
        place(
            &mut canvas,
            width,
            &tile,
            (THUMB, cell_h),
            i as u32,
            columns,
        );
    }
    encode_png(canvas, width, cell_h * rows)
}

/// The rendered copy's sheet: its first frame of every second (by the
/// footage's clock), marked where that second had carried or
/// low-score masks. Returns the PNG and the number of marked tiles.
pub fn copy_sheet(
    copy: &Path,
    footage: &Footage,
    masks: &[FrameMasks],
    tz: &jiff::tz::TimeZone,
) -> Result<(Vec<u8>, usize)> {
    // The first frame of each wall-clock second, and what its second had.
    let mut seconds: Vec<(usize, i64, Vec<u32>, Vec<u32>)> = Vec::new();
    for (i, m) in masks.iter().enumerate() {
        let at = footage.wall_us(i as u64);
        let second = at.div_euclid(1_000_000);
        if seconds
            .last()
            .is_none_or(|s| s.1.div_euclid(1_000_000) != second)
        {
            seconds.push((i, at, Vec::new(), Vec::new()));
        }
        let s = seconds.last_mut().expect("pushed");
        for id in &m.lost {
            if !s.2.contains(id) {
                s.2.push(*id);
            }
        }
        for id in &m.low {
            if !s.3.contains(id) {
                s.3.push(*id);
            }
        }
    }
    let tile_w = FRAME_TILE_WIDTH;
    let tile_h =
        ((u64::from(tile_w) * u64::from(footage.height) / u64::from(footage.width)) as u32 + 1)
            & !1;
    let pictures = decode_file(copy, tile_w, tile_h, &|i| seconds.iter().any(|s| s.0 == i))?;
    let columns = COLUMNS.min(seconds.len().max(1) as u32);
    let cell_h = tile_h + LABEL_HEIGHT;
    let rows = (seconds.len() as u32).div_ceil(columns).max(1);
    let width = tile_w * columns;
    let mut canvas = vec![0u8; (width * cell_h * rows * 3) as usize];
    let mut marked = 0;
    for (n, (frame, at, lost, low)) in seconds.iter().enumerate() {
        let Some(rgb) = pictures.iter().find(|p| p.0 == *frame).map(|p| &p.1) else {
            return Err(Error::internal(format!(
                "frame {frame} of the copy could not be decoded for its sheet"
            )));
        };
        let mut text = clock(*at, tz);
        let ids = |v: &[u32]| {
            v.iter()
                .map(|i| format!("#{i}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        if !lost.is_empty() {
            text.push_str(&format!(" carried {}", ids(lost)));
        }
        if !low.is_empty() {
            text.push_str(&format!(" low {}", ids(low)));
        }
        let mut tile = labelled(rgb, (tile_w, tile_h), &text, tile_w, tile_h)?;
        if !lost.is_empty() || !low.is_empty() {
            border(&mut tile, tile_w, cell_h);
            marked += 1;
        }
        place(
            &mut canvas,
            width,
            &tile,
            (tile_w, cell_h),
            n as u32,
            columns,
        );
    }
    Ok((encode_png(canvas, width, cell_h * rows)?, marked))
}

/// A red frame, 3 pixels wide, around a tile.
fn border(rgb: &mut [u8], w: u32, h: u32) {
    for y in 0..h {
        for x in 0..w {
            if x < 3 || y < 3 || x >= w - 3 || y >= h - 3 {
                let i = ((y * w + x) * 3) as usize;
                rgb[i..i + 3].copy_from_slice(&MARK);
            }
        }
    }
}

/// The frames of an MP4 file whose numbers `want` picks, scaled to
/// `w`×`h` as packed RGB.
fn decode_file(
    path: &Path,
    w: u32,
    h: u32,
    want: &dyn Fn(usize) -> bool,
) -> Result<Vec<(usize, Vec<u8>)>> {
    let desc = format!(
        "filesrc name=src ! qtdemux name=demux demux.video_0 ! queue ! decodebin ! \
         videoconvert ! videoscale ! \
         video/x-raw,format=RGB,width={w},height={h},pixel-aspect-ratio=1/1 ! \
         appsink name=sink sync=false max-buffers=8"
    );
    let pipeline = gst::parse::launch(&desc)
        .map_err(|e| Error::unavailable(format!("cannot build the copy's decoder ({e})")))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| Error::internal("the copy's decoder is not a pipeline"))?;
    let stop = Stop(pipeline.clone());
    by_name::<gst::Element>(&pipeline, "src")?.set_property("location", path);
    let sink = by_name::<gst_app::AppSink>(&pipeline, "sink")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| Error::internal(format!("the copy's decoder does not start: {e}")))?;
    let mut out = Vec::new();
    let mut i = 0usize;
    while let Ok(sample) = sink.pull_sample() {
        if want(i) {
            out.push((i, packed_rgb(&sample, w, h)?));
        }
        i += 1;
    }
    if let Some(m) = pipeline
        .bus()
        .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]))
    {
        return Err(Error::internal(format!("decoding the copy failed: {m:?}")));
    }
    drop(stop);
    Ok(out)
}
