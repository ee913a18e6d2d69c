//! Review: looking at recorded footage (001 §24-26; 004 §12-13). A view is
//! one progressive MP4 of a camera's range, streamed to the person looking;
//! nothing is handed over, so it is not a disclosure (the API audits it).
//!
//! Invariants:
//! - Stream copy: the samples are the recorded ones, cut and joined as an
//!   export's clips are (`export::plan_clips`): from the key frame at or
//!   before `from`, through every frame that starts before `to`, across
//!   segment boundaries without losing or doubling a frame.
//! - A gap (segments not contiguous, a codec change, or footage outside the
//!   caller's zones) is never bridged: the view ends at the first one, and
//!   says where it is and where footage resumes ([`View::gap`]).
//! - A viewer sees only footage recorded under its zones: the zone stored
//!   with each segment decides, not the camera's zone today.
//! - The source segments are leased from planning until the view is
//!   dropped (the stream's end), so the reaper cannot delete them mid-read;
//!   the rows are read after the lease is taken.
//! - A caption track (`tx3g`) states the wall-clock time of the pictures in
//!   the configured zone with its offset: a sample starts at the first frame
//!   of each wall-clock second, that frame's time taken from its own
//!   segment's indexed start.

pub mod activity;
pub mod live;
pub(crate) mod pipeline;
pub mod sheet;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::export::{self, Clip};
use crate::index::{Index, SegmentId};
use crate::mp4::progressive::{Layout, SampleRef, SourceFiles};
use crate::mp4::{TrackSpec, tx3g_sample};
use crate::retention::{LeaseGuard, Leases};
use crate::{Error, ErrorKind, Result};

/// Longest range one view may cover (as an export).
pub const MAX_RANGE_US: i64 = export::MAX_RANGE_US;

/// What to show.
#[derive(Debug, Clone)]
pub struct Request {
    pub camera: String,
    pub from_us: i64,
    pub to_us: i64,
}

/// Where a sample's bytes come from: a source segment (index, offset) or a
/// caption held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Media(usize, u64),
    Caption(usize),
}

/// A view planned and leased: its length and range are known before the
/// first byte.
pub struct View {
    paths: Vec<PathBuf>,
    layout: Layout<Piece>,
    captions: Vec<Vec<u8>>,
    /// Wall-clock time of the first and after the last frame delivered.
    pub from_us: i64,
    pub to_us: i64,
    /// The first gap after the delivered range, as (where the view ends,
    /// where footage resumes), if footage resumes within the request.
    pub gap: Option<(i64, i64)>,
    pub video_frames: u64,
    timescale: u32,
    _lease: LeaseGuard,
}

/// Plans the view of `req`: leases the segments, reads their rows, keeps
/// those recorded under a zone `may_see` allows, and lays out the file.
pub fn plan(
    index: &Index,
    config: &Config,
    leases: &Arc<Leases>,
    req: &Request,
    may_see: &dyn Fn(&str) -> bool,
) -> Result<View> {
    if req.to_us <= req.from_us {
        return Err(Error::invalid("the view's range ends before it starts"));
    }
    if req.to_us - req.from_us > MAX_RANGE_US {
        return Err(Error::invalid(
            "a view may cover at most 24 hours; ask for a shorter range",
        ));
    }
    let ids: Vec<SegmentId> = index
        .segments(&req.camera, req.from_us, req.to_us)?
        .iter()
        .map(|s| SegmentId(s.id))
        .collect();
    let lease = leases.acquire(&ids);
    let mut rows = index.complete_segments(&ids)?;
    let zones: Vec<String> = rows.iter().map(|r| r.zone.clone()).collect();
    rows.retain(|r| may_see(&r.zone));
    if rows.is_empty() {
        if !zones.is_empty() {
            let mut zones = zones;
            zones.dedup();
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "the footage of camera {} in this range was recorded under zone {}, which \
                     your grant does not cover",
                    req.camera,
                    zones.join(", ")
                ),
            ));
        }
        return Err(Error::not_found(format!(
            "no complete footage of camera {} in the requested range: it was never recorded, \
             is still being recorded (try --live), or has been deleted under the retention \
             period",
            req.camera
        )));
    }
    let sources = rows
        .into_iter()
        .map(|row| export::open_unverified(config, row))
        .collect::<Result<Vec<_>>>()?;
    let mut clips = export::plan_clips(&sources, req.from_us, req.to_us)?.into_iter();
    let Some(clip) = clips.next() else {
        return Err(Error::not_found(format!(
            "no complete frame of camera {} in the requested range",
            req.camera
        )));
    };
    let gap = clips.next().map(|next| (clip.to_us, next.from_us));
    let timescale = clip.specs[0].timescale;
    let (mut specs, mut samples) = (clip.specs.clone(), media_samples(&clip));
    let (caption_refs, captions) = captions(&clip, specs.len() as u32 + 1, &config.timezone);
    specs.push(TrackSpec::text(timescale));
    samples.extend(caption_refs);
    let layout = Layout::plan(&specs, samples, (clip.from_us.max(0) / 1_000_000) as u64)?;
    Ok(View {
        paths: sources.into_iter().map(|s| s.path).collect(),
        layout,
        captions,
        from_us: clip.from_us,
        to_us: clip.to_us,
        gap,
        video_frames: clip.video_frames,
        timescale,
        _lease: lease,
    })
}

fn media_samples(clip: &Clip) -> Vec<SampleRef<Piece>> {
    clip.samples
        .iter()
        .map(|s| SampleRef {
            track: s.track,
            decode_time: s.decode_time,
            duration: s.duration,
            composition_offset: s.composition_offset,
            keyframe: s.keyframe,
            size: s.size,
            source: Piece::Media(s.source.0, s.source.1),
        })
        .collect()
}

/// The caption track's samples (track `track`, in the video's timescale)
/// and their bytes: one per wall-clock second, from its first frame.
fn captions(
    clip: &Clip,
    track: u32,
    tz: &jiff::tz::TimeZone,
) -> (Vec<SampleRef<Piece>>, Vec<Vec<u8>>) {
    let video: Vec<&SampleRef<(usize, u64)>> =
        clip.samples.iter().filter(|s| s.track == 1).collect();
    let Some(last) = video.last() else {
        return (Vec::new(), Vec::new());
    };
    let end = last.decode_time + u64::from(last.duration);
    let mut starts: Vec<(u64, i64)> = Vec::new();
    for (s, &wall) in video.iter().zip(&clip.video_wall_us) {
        let second = wall.div_euclid(1_000_000);
        if starts.last().is_none_or(|&(_, prev)| prev != second) {
            starts.push((s.decode_time, second));
        }
    }
    let mut refs = Vec::with_capacity(starts.len());
    let mut bytes = Vec::with_capacity(starts.len());
    for (i, &(at, second)) in starts.iter().enumerate() {
        let until = starts.get(i + 1).map_or(end, |n| n.0);
        let data = tx3g_sample(&caption_text(second * 1_000_000, tz));
        refs.push(SampleRef {
            track,
            decode_time: at,
            duration: u32::try_from(until - at).unwrap_or(u32::MAX),
            composition_offset: 0,
            keyframe: true,
            size: data.len() as u32,
            source: Piece::Caption(i),
        });
        bytes.push(data);
    }
    (refs, bytes)
}

/// `2026-03-01 08:00:05 +02:00`: a caption's text for wall-clock `us`.
pub fn caption_text(us: i64, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_microsecond(us) {
        Ok(ts) => ts
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        Err(_) => us.to_string(),
    }
}

impl View {
    /// The file's length in bytes.
    pub fn bytes(&self) -> u64 {
        self.layout.bytes()
    }

    /// Writes the file to `out`; `reached` follows the wall-clock time of
    /// the newest video frame fetched, so a cut view can say how far it got.
    pub fn write(&self, out: &mut dyn Write, reached: &mut i64) -> Result<u64> {
        self.write_range(out, 0..self.bytes(), reached)
    }

    /// Writes bytes `range` of the file (an HTTP range request), reading
    /// only the samples it overlaps.
    pub fn write_range(
        &self,
        out: &mut dyn Write,
        range: std::ops::Range<u64>,
        reached: &mut i64,
    ) -> Result<u64> {
        let mut files = SourceFiles::new();
        let (from, timescale) = (self.from_us, i128::from(self.timescale));
        self.layout
            .write_range(out, range, |s, buf| match &s.source {
                Piece::Media(i, offset) => {
                    if s.track == 1 {
                        let t = i128::from(s.decode_time) * 1_000_000 / timescale;
                        *reached = from + t as i64;
                    }
                    files.read_at(&self.paths[*i], *offset, buf)
                }
                Piece::Caption(i) => {
                    buf.copy_from_slice(&self.captions[*i]);
                    Ok(())
                }
            })
    }
}
