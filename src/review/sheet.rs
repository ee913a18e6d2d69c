//! Contact sheet: one PNG of a camera's range, a tile per interval from the
//! key frame nearest the interval's start, labelled with that picture's
//! local time. Only key frames are decoded (GStreamer's `avdec_h264` /
//! `avdec_h265`, from gstreamer1.0-libav); labels are drawn by
//! `textoverlay` and the sheet is encoded by `pngenc`, so no image crate.
//!
//! Invariants:
//! - A tile shows the key frame nearest the start of its interval among
//!   those from half an interval before it to its end; an interval with
//!   none is a dark tile labelled "no footage", never another interval's
//!   picture. A range without any key frame is not found (no sheet).
//! - Only footage recorded under a zone `may_see` allows is shown; the
//!   segments are leased while their frames are read.
//! - [`Sheet::tiles`] names each tile's picture time (or none), in order:
//!   what the labels say, for a client that wants them as data.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::pipeline::{Stop, by_name, decoder_caps, flow, packed_rgb, padded_rgb, rgb_caps};
use crate::config::Config;
use crate::index::{Index, SegmentId};
use crate::mp4::Codec;
use crate::retention::Leases;
use crate::{Error, ErrorKind, Result};

/// Most tiles one sheet may have (an hour at 10 s).
pub const MAX_TILES: i64 = 360;
/// Shortest interval.
pub const MIN_EVERY_US: i64 = 1_000_000;
/// A tile's picture width in pixels (its height follows the camera's
/// aspect), and the label band under it.
const TILE_WIDTH: u32 = 320;
pub(crate) const LABEL_HEIGHT: u32 = 24;
/// Tiles per row.
const COLUMNS: u32 = 6;
/// How long one key frame may take to decode.
const DECODE_WAIT: gst::ClockTime = gst::ClockTime::from_seconds(10);

/// A finished sheet.
pub struct Sheet {
    pub png: Vec<u8>,
    /// Per tile, the wall-clock time of the key frame shown (µs), if any.
    pub tiles: Vec<Option<i64>>,
    pub width: u32,
    pub height: u32,
    /// Bytes of footage read (the key frames decoded).
    pub bytes_read: u64,
}

/// A key frame that can be shown: where its bytes are and when it was taken.
struct Key {
    wall_us: i64,
    source: usize,
    offset: u64,
    size: u32,
}

/// Makes the sheet of `camera` over `[from_us, to_us)`, one tile per
/// `every_us`.
pub fn make(
    index: &Index,
    config: &Config,
    leases: &Arc<Leases>,
    camera: &str,
    (from_us, to_us, every_us): (i64, i64, i64),
    may_see: &dyn Fn(&str) -> bool,
) -> Result<Sheet> {
    if to_us <= from_us {
        return Err(Error::invalid("the range ends before it starts"));
    }
    if to_us - from_us > super::MAX_RANGE_US {
        return Err(Error::invalid(
            "a contact sheet may cover at most 24 hours; ask for a shorter range",
        ));
    }
    if every_us < MIN_EVERY_US {
        return Err(Error::invalid(
            "the interval (every) must be at least 1s, e.g. 30s or 1m",
        ));
    }
    let count = (to_us - from_us + every_us - 1) / every_us;
    if count > MAX_TILES {
        return Err(Error::invalid(format!(
            "{count} tiles is more than {MAX_TILES}; ask for a longer interval (every) or a \
             shorter range"
        )));
    }
    gst::init().map_err(|e| Error::unavailable(format!("GStreamer cannot start: {e}")))?;
    let ids: Vec<SegmentId> = index
        .segments(camera, from_us - every_us / 2, to_us)?
        .iter()
        .map(|s| SegmentId(s.id))
        .collect();
    let _lease = leases.acquire(&ids);
    let mut rows = index.complete_segments(&ids)?;
    let seen = rows.len();
    let mut zones: Vec<String> = rows.iter().map(|r| r.zone.clone()).collect();
    rows.retain(|r| may_see(&r.zone));
    if rows.is_empty() && seen > 0 {
        zones.dedup();
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "the footage of camera {camera} in this range was recorded under zone {}, \
                 which your grant does not cover",
                zones.join(", ")
            ),
        ));
    }
    let sources = rows
        .into_iter()
        .map(|row| crate::export::open_unverified(config, row))
        .collect::<Result<Vec<_>>>()?;
    let mut keys = Vec::new();
    let mut picture: Option<(Codec, u32, u32)> = None;
    for (i, s) in sources.iter().enumerate() {
        let Some(track) = s.video_track() else {
            continue;
        };
        if picture.is_none() {
            picture = Some((track.codec.clone(), track.width.into(), track.height.into()));
        }
        let (samples, timescale) = s.video_samples();
        for x in samples.into_iter().filter(|x| x.keyframe) {
            let at = i128::from(x.decode_time) * 1_000_000 / i128::from(timescale.max(1));
            keys.push(Key {
                wall_us: s.row.start_us + at as i64,
                source: i,
                offset: x.offset,
                size: x.size,
            });
        }
    }
    keys.sort_by_key(|k| k.wall_us);
    if keys.is_empty() {
        return Err(Error::not_found(format!(
            "no complete footage of camera {camera} in the requested range: it was never \
             recorded, is still being recorded, or has been deleted under the retention period"
        )));
    }
    let (w, h) = picture
        .as_ref()
        .map_or((16, 9), |p| (p.1.max(2), p.2.max(2)));
    let tile_h = ((u64::from(TILE_WIDTH) * u64::from(h) / u64::from(w)) as u32 + 1) & !1;
    let (tile_w, cell_h) = (TILE_WIDTH, tile_h + LABEL_HEIGHT);
    let columns = COLUMNS.min(count as u32);
    let rows_n = (count as u32).div_ceil(columns);
    let (width, height) = (tile_w * columns, cell_h * rows_n);
    let mut canvas = vec![0u8; (width * height * 3) as usize];
    let mut tiles = Vec::with_capacity(count as usize);
    let mut bytes_read = 0u64;
    let tz = &config.timezone;
    for t in 0..count {
        let start = from_us + t * every_us;
        let end = (start + every_us).min(to_us);
        let key = keys
            .iter()
            .filter(|k| k.wall_us >= start - every_us / 2 && k.wall_us < end)
            .min_by_key(|k| (k.wall_us - start).abs());
        let rgb = match (key, &picture) {
            (Some(k), Some((codec, _, _))) => {
                let mut frame = vec![0u8; k.size as usize];
                let path = &sources[k.source].path;
                std::fs::File::open(path)
                    .and_then(|f| f.read_exact_at(&mut frame, k.offset))
                    .map_err(|e| Error::io("cannot read", path, e))?;
                bytes_read += u64::from(k.size);
                tiles.push(Some(k.wall_us));
                decode(codec, frame, &label(k.wall_us, tz), tile_w, tile_h)?
            }
            _ => {
                tiles.push(None);
                let text = format!("{} no footage", label(start, tz));
                blank(&text, tile_w, tile_h)?
            }
        };
        place(
            &mut canvas,
            width,
            &rgb,
            (tile_w, cell_h),
            t as u32,
            columns,
        );
    }
    let png = encode_png(canvas, width, height)?;
    Ok(Sheet {
        png,
        tiles,
        width,
        height,
        bytes_read,
    })
}

/// `10:40:30`: a tile's label, the picture's local time.
fn label(us: i64, tz: &jiff::tz::TimeZone) -> String {
    jiff::Timestamp::from_microsecond(us)
        .map(|ts| ts.to_zoned(tz.clone()).strftime("%H:%M:%S").to_string())
        .unwrap_or_else(|_| us.to_string())
}

/// What every tile pipeline does after its source: scale to the tile, add
/// the label band, write the label, hand over packed RGB.
fn tail(w: u32, h: u32) -> String {
    format!(
        "videoconvert ! videoscale ! video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1 \
         ! videobox bottom=-{LABEL_HEIGHT} fill=black \
         ! textoverlay name=label valignment=bottom halignment=center ypad=3 \
           font-desc=\"Sans Bold 12\" \
           shaded-background=false \
         ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false"
    )
}

/// Decodes one key frame into a labelled tile (packed RGB).
fn decode(codec: &Codec, frame: Vec<u8>, text: &str, w: u32, h: u32) -> Result<Vec<u8>> {
    let (decoder, caps) = decoder_caps(codec)
        .ok_or_else(|| Error::internal("a contact sheet needs H.264 or H.265 video"))?;
    let desc = format!(
        "appsrc name=src format=time ! {decoder} max-threads=1 ! {}",
        tail(w, h)
    );
    run_tile(&desc, text, w, h, |pipeline| {
        push_one(pipeline, &caps, frame)
    })
}

/// Pushes `data` as the one buffer of the pipeline's appsrc `src`.
fn push_one(pipeline: &gst::Pipeline, caps: &gst::Caps, data: Vec<u8>) -> Result<()> {
    let src = by_name::<gst_app::AppSrc>(pipeline, "src")?;
    src.set_caps(Some(caps));
    let mut buffer = gst::Buffer::from_mut_slice(data);
    buffer
        .get_mut()
        .expect("new buffer")
        .set_pts(gst::ClockTime::ZERO);
    src.push_buffer(buffer).map_err(flow)?;
    src.end_of_stream().map_err(flow)?;
    Ok(())
}

/// Copies tile number `n` (packed RGB, `cell` = width × height with its
/// label band) into its place on a canvas `width` pixels wide with
/// `columns` tiles per row.
pub(crate) fn place(
    canvas: &mut [u8],
    width: u32,
    tile: &[u8],
    (tile_w, cell_h): (u32, u32),
    n: u32,
    columns: u32,
) {
    let (col, row) = (n % columns, n / columns);
    let line = (tile_w * 3) as usize;
    for y in 0..cell_h {
        let src = (y * tile_w * 3) as usize;
        let dst = (((row * cell_h + y) * width + col * tile_w) * 3) as usize;
        canvas[dst..dst + line].copy_from_slice(&tile[src..src + line]);
    }
}

/// A packed RGB picture of `size` scaled to a `w`×`h` tile, with `text`
/// in a label band under it.
pub(crate) fn labelled(
    rgb: &[u8],
    size: (u32, u32),
    text: &str,
    w: u32,
    h: u32,
) -> Result<Vec<u8>> {
    let desc = format!("appsrc name=src format=time ! {}", tail(w, h));
    run_tile(&desc, text, w, h, |pipeline| {
        push_one(
            pipeline,
            &rgb_caps(size.0, size.1),
            padded_rgb(rgb, size.0, size.1),
        )
    })
}

/// A dark tile with a label, for an interval without footage.
fn blank(text: &str, w: u32, h: u32) -> Result<Vec<u8>> {
    let desc = format!(
        "videotestsrc num-buffers=1 pattern=solid-color foreground-color=0xff303030 ! {}",
        tail(w, h)
    );
    run_tile(&desc, text, w, h, |_| Ok(()))
}

fn run_tile(
    desc: &str,
    text: &str,
    w: u32,
    h: u32,
    feed: impl FnOnce(&gst::Pipeline) -> Result<()>,
) -> Result<Vec<u8>> {
    let pipeline = gst::parse::launch(desc)
        .map_err(|e| {
            Error::unavailable(format!(
                "cannot build the contact sheet's decoder ({e}); is gstreamer1.0-libav \
                 installed (scripts/setup)?"
            ))
        })?
        .downcast::<gst::Pipeline>()
        .map_err(|_| Error::internal("the tile pipeline is not a pipeline"))?;
    let stop = Stop(pipeline.clone());
    by_name::<gst::Element>(&pipeline, "label")?.set_property("text", text);
    let sink = by_name::<gst_app::AppSink>(&pipeline, "sink")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| Error::internal(format!("the tile pipeline does not start: {e}")))?;
    feed(&pipeline)?;
    let sample = sink.try_pull_sample(DECODE_WAIT).ok_or_else(|| {
        let why = pipeline
            .bus()
            .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]))
            .map(|m| format!("{m:?}"))
            .unwrap_or_else(|| "no picture came out".into());
        Error::internal(format!("a key frame could not be decoded: {why}"))
    })?;
    drop(stop);
    packed_rgb(&sample, w, h + LABEL_HEIGHT)
}

/// Encodes packed RGB as PNG.
pub(crate) fn encode_png(canvas: Vec<u8>, width: u32, height: u32) -> Result<Vec<u8>> {
    let desc = "appsrc name=src format=time ! videoconvert ! pngenc ! appsink name=sink sync=false";
    let pipeline = gst::parse::launch(desc)
        .map_err(|e| Error::unavailable(format!("cannot build the PNG encoder ({e})")))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| Error::internal("the PNG pipeline is not a pipeline"))?;
    let stop = Stop(pipeline.clone());
    let sink = by_name::<gst_app::AppSink>(&pipeline, "sink")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| Error::internal(format!("the PNG pipeline does not start: {e}")))?;
    push_one(
        &pipeline,
        &rgb_caps(width, height),
        padded_rgb(&canvas, width, height),
    )?;
    let sample = sink
        .try_pull_sample(DECODE_WAIT)
        .ok_or_else(|| Error::internal("the contact sheet could not be encoded as PNG"))?;
    drop(stop);
    let map = sample
        .buffer()
        .and_then(|b| b.map_readable().ok())
        .ok_or_else(|| Error::internal("the PNG cannot be read"))?;
    Ok(map.to_vec())
}
