//! The sources of an export or a view and the clips cut from them: each
//! segment opened (for an export re-hashed against the index first) and
//! parsed, then runs of contiguous segments cut to the range at their key
//! frames, a clip per run.

use std::path::PathBuf;

use crate::config::Config;
use crate::index::SegmentRow;
use crate::mp4::progressive::SampleRef;
use crate::mp4::{Mp4Info, TrackSpec};
use crate::{Error, Result};

use super::GAP_US;

/// A source segment, parsed (and, for an export, vouched for).
pub(crate) struct Source {
    pub(crate) row: SegmentRow,
    pub(crate) path: PathBuf,
    info: Mp4Info,
    /// Track ids in `info` of the video and (if any) the audio track.
    video: u32,
    audio: Option<u32>,
    specs: Vec<TrackSpec>,
}

impl Source {
    /// The video track's header: codec configuration and picture size.
    pub(crate) fn video_track(&self) -> Option<&crate::mp4::TrackInfo> {
        self.info.track(self.video)
    }

    /// The video track's samples, in decode order, and its timescale (for a
    /// review that reads frames itself: activity, contact sheet).
    pub(crate) fn video_samples(&self) -> (Vec<&crate::mp4::SampleInfo>, u32) {
        let timescale = self.info.track(self.video).map_or(90_000, |t| t.timescale);
        let samples = self
            .info
            .samples
            .iter()
            .filter(|s| s.track == self.video)
            .collect();
        (samples, timescale)
    }
}

/// One clip: contiguous sources, cut to the range. Samples' sources are
/// (index into the sources, byte offset).
pub(crate) struct Clip {
    pub(crate) from_us: i64,
    pub(crate) to_us: i64,
    pub(crate) specs: Vec<TrackSpec>,
    pub(crate) samples: Vec<SampleRef<(usize, u64)>>,
    /// Wall-clock time of each video frame (track 1, in order), from its
    /// own segment's indexed start.
    pub(crate) video_wall_us: Vec<i64>,
    pub(crate) video_frames: u64,
    pub(crate) audio_frames: u64,
}

/// Opens, re-hashes and parses the sources on a few threads (hashing is
/// the bulk of an export's CPU), keeping their order.
pub(super) fn open_sources(config: &Config, rows: Vec<SegmentRow>) -> Result<Vec<Source>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let per_thread = rows.len().div_ceil(threads).max(1);
    let mut rows = rows.into_iter();
    let batches: Vec<Vec<SegmentRow>> = std::iter::from_fn(|| {
        let batch: Vec<SegmentRow> = rows.by_ref().take(per_thread).collect();
        (!batch.is_empty()).then_some(batch)
    })
    .collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = batches
            .into_iter()
            .map(|batch| {
                scope.spawn(move || {
                    batch
                        .into_iter()
                        .map(|row| open_source(config, row))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut sources = Vec::new();
        for w in workers {
            let part = w
                .join()
                .map_err(|_| Error::internal("a thread checking export sources failed"))??;
            sources.extend(part);
        }
        Ok(sources)
    })
}

/// Opens a segment, checks it against its index hash and parses it.
fn open_source(config: &Config, row: SegmentRow) -> Result<Source> {
    let path = source_path(config, &row)?;
    let (_, sha) = crate::storage::hash_file(&path)?;
    if Some(sha) != row.sha256 {
        return Err(Error::internal(format!(
            "{} does not match the hash recorded when it was written; it has been altered \
             or damaged and is not exported",
            path.display()
        )));
    }
    parse_source(row, path)
}

fn source_path(config: &Config, row: &SegmentRow) -> Result<PathBuf> {
    let root = config.storage_root(&row.root).ok_or_else(|| {
        Error::internal(format!(
            "segment {} is on storage {:?}, which is not configured",
            row.path, row.root
        ))
    })?;
    Ok(crate::storage::absolute(&root.path, &row.path))
}

/// Opens and parses a segment without re-hashing it: for a view, which
/// shows footage and hands nothing over (an export vouches for its bytes).
pub(crate) fn open_unverified(config: &Config, row: SegmentRow) -> Result<Source> {
    let path = source_path(config, &row)?;
    parse_source(row, path)
}

fn parse_source(row: SegmentRow, path: PathBuf) -> Result<Source> {
    let info = crate::mp4::scan_file(&path)?;
    let video = info
        .tracks
        .iter()
        .find(|t| t.codec.is_video())
        .ok_or_else(|| Error::internal(format!("{} has no video track", path.display())))?
        .id;
    let audio = info
        .tracks
        .iter()
        .find(|t| !t.codec.is_video())
        .map(|t| t.id);
    let mut specs = vec![
        info.track(video)
            .map(|t| t.to_spec())
            .unwrap_or_else(|| unreachable!()),
    ];
    if let Some(a) = audio.and_then(|a| info.track(a)) {
        specs.push(a.to_spec());
    }
    Ok(Source {
        row,
        path,
        info,
        video,
        audio,
        specs,
    })
}

/// Splits the sources into clips at gaps and cuts them to the range.
pub(crate) fn plan_clips(sources: &[Source], from_us: i64, to_us: i64) -> Result<Vec<Clip>> {
    // Runs of contiguous sources with the same tracks.
    let mut runs: Vec<Vec<usize>> = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let joins = i > 0 && {
            let p = &sources[i - 1];
            let end = p.row.end_us.unwrap_or(p.row.start_us);
            (s.row.start_us - end).abs() <= GAP_US && p.specs == s.specs
        };
        match runs.last_mut() {
            Some(run) if joins => run.push(i),
            _ => runs.push(vec![i]),
        }
    }
    let mut clips = Vec::new();
    for run in runs {
        if let Some(c) = cut_run(sources, &run, from_us, to_us)? {
            clips.push(c);
        }
    }
    Ok(clips)
}

fn ticks_to_us(ticks: i128, timescale: u32) -> i64 {
    (ticks * 1_000_000 / i128::from(timescale)) as i64
}

fn us_to_ticks(us: i64, timescale: u32) -> i128 {
    (i128::from(us) * i128::from(timescale) + 500_000).div_euclid(1_000_000)
}

/// One clip from a run of contiguous sources, or `None` if none of its
/// frames falls in the range.
///
/// Within a run the segments are laid end to end on the connection's own
/// timeline (the segmenter makes them contiguous to the tick), not placed by
/// their wall-clock starts, which a re-timing (RTCP) may shift by a few
/// milliseconds: so a boundary never loses or doubles a frame. Which frames
/// are in the range is decided on each segment's own wall-clock time.
fn cut_run(sources: &[Source], run: &[usize], from_us: i64, to_us: i64) -> Result<Option<Clip>> {
    let specs = sources[run[0]].specs.clone();
    let vts = specs[0].timescale;
    // Video, on the run's timeline: (source, run ticks, segment wall us, sample).
    let mut video: Vec<(usize, i128, i64, &crate::mp4::SampleInfo)> = Vec::new();
    let mut bases = Vec::with_capacity(run.len());
    let mut base: i128 = 0;
    for &i in run {
        let s = &sources[i];
        bases.push(base);
        let mut end = 0i128;
        for v in s.info.samples.iter().filter(|x| x.track == s.video) {
            let t = i128::from(v.decode_time);
            video.push((i, base + t, s.row.start_us + ticks_to_us(t, vts), v));
            end = end.max(t + i128::from(v.duration));
        }
        base += end;
    }
    // Start: the last key frame at or before `from`, else the first after it.
    let start = video
        .iter()
        .rposition(|(_, _, w, v)| v.keyframe && *w <= from_us)
        .or_else(|| {
            video
                .iter()
                .position(|(_, _, w, v)| v.keyframe && *w > from_us)
        });
    let Some(start) = start else { return Ok(None) };
    // End: every frame that starts before `to`.
    let end = video[start..]
        .iter()
        .position(|(_, _, w, _)| *w >= to_us)
        .map_or(video.len(), |n| start + n);
    if end <= start {
        return Ok(None);
    }
    let origin = video[start].1;
    let mut samples: Vec<SampleRef<(usize, u64)>> = Vec::new();
    push_track(
        &mut samples,
        1,
        video[start..end]
            .iter()
            .map(|(i, t, _, v)| (*i, *t - origin, *v)),
    );
    let video_frames = (end - start) as u64;
    let last = &video[end - 1];
    let end_ticks = last.1 + i128::from(last.3.duration);
    let clip_from_us = video[start].2;
    let clip_to_us = last.2 + ticks_to_us(i128::from(last.3.duration), vts);

    let mut audio_frames = 0;
    if specs.len() > 1 {
        let ats = specs[1].timescale;
        let to_audio = |t: i128| us_to_ticks(ticks_to_us(t, vts), ats);
        let (a_origin, a_end) = (to_audio(origin), to_audio(end_ticks));
        let mut audio = Vec::new();
        for (&i, &vbase) in run.iter().zip(&bases) {
            let s = &sources[i];
            let Some(a) = s.audio else { continue };
            let base = to_audio(vbase);
            for x in s.info.samples.iter().filter(|x| x.track == a) {
                let t = base + i128::from(x.decode_time);
                if t >= a_origin && t < a_end {
                    audio.push((i, t - a_origin, x));
                }
            }
        }
        audio_frames = audio.len() as u64;
        push_track(&mut samples, 2, audio.into_iter());
    }
    Ok(Some(Clip {
        from_us: clip_from_us,
        to_us: clip_to_us,
        specs,
        samples,
        video_wall_us: video[start..end].iter().map(|(_, _, w, _)| *w).collect(),
        video_frames,
        audio_frames,
    }))
}

/// Appends one track's samples, placed at their timeline position; each
/// sample's duration is stretched to the next one's start (a segment's last
/// frame ends where the next segment's first begins) and an overlap is
/// pushed back, so decode times are continuous as the writer requires.
fn push_track<'a>(
    out: &mut Vec<SampleRef<(usize, u64)>>,
    track: u32,
    samples: impl Iterator<Item = (usize, i128, &'a crate::mp4::SampleInfo)>,
) {
    let first = out.len();
    for (src, t, info) in samples {
        let mut t = u64::try_from(t).unwrap_or(0);
        if let Some(prev) = out[first..].last_mut() {
            if t > prev.decode_time {
                prev.duration = u32::try_from(t - prev.decode_time).unwrap_or(u32::MAX);
            } else {
                t = prev.decode_time + u64::from(prev.duration);
            }
        }
        let mut r = SampleRef::from_info(info, track, (src, info.offset));
        r.decode_time = t;
        out.push(r);
    }
}
