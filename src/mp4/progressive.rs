//! Non-fragmented ("progressive") MP4 for exports: `ftyp`, `moov`, `mdat`,
//! with the `moov` first so players can start before the download ends.
//!
//! Invariants:
//! - The whole `moov` is laid out before any media byte is written: sample
//!   metadata is held in memory (tens of bytes per sample), sample bytes never
//!   are; each is fetched through the caller's `read_sample` as it is written.
//! - Chunks hold about half a second of one track, ordered by decode time, so
//!   audio and video stay interleaved for streaming readers.
//! - `co64` replaces `stco` only when some chunk lies past 4 GiB; the `mdat`
//!   takes a 64-bit size only when it needs one.
//! - A track starting after the movie does gets an empty edit of that length,
//!   so relative timing between tracks survives. Presentation times are
//!   decode time plus composition offset, unshifted: the edit list spans the
//!   last presented frame rather than moving the first one to zero.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::boxes::{self, BoxWriter, Edit, SampleTables};
use super::{MP4_EPOCH_OFFSET, SampleInfo, TrackSpec, io_error};
use crate::{Error, Result};

/// Target length of a chunk, as a fraction of a second (1/2 s).
const CHUNKS_PER_SECOND: u32 = 2;

/// A sample to export: its timing, and where the caller will find its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRef<S> {
    /// 1-based index into the `tracks` given to [`write`].
    pub track: u32,
    /// In the track's timescale. A track's first sample may start late; each
    /// later one must start where the one before it ends.
    pub decode_time: u64,
    pub duration: u32,
    pub composition_offset: i32,
    pub keyframe: bool,
    pub size: u32,
    /// Whatever `read_sample` needs to fetch the bytes, e.g. `(path, offset)`.
    pub source: S,
}

impl<S> SampleRef<S> {
    /// A sample parsed from a recording, re-numbered to `track`.
    pub fn from_info(info: &SampleInfo, track: u32, source: S) -> Self {
        SampleRef {
            track,
            decode_time: info.decode_time,
            duration: info.duration,
            composition_offset: info.composition_offset,
            keyframe: info.keyframe,
            size: info.size,
            source,
        }
    }
}

/// Writes a progressive MP4 of `tracks` and `samples` to `out` and returns
/// its length. `read_sample` fills a buffer of exactly `size` bytes with the
/// sample's data (see [`SourceFiles`] for reading them from recordings).
/// Samples may come in any interleaving; each track's must be in decode order.
pub fn write<W: Write, S>(
    out: W,
    tracks: &[TrackSpec],
    samples: impl IntoIterator<Item = SampleRef<S>>,
    creation_time_unix_secs: u64,
    read_sample: impl FnMut(&SampleRef<S>, &mut [u8]) -> Result<()>,
) -> Result<u64> {
    Layout::plan(tracks, samples, creation_time_unix_secs)?.write(out, read_sample)
}

/// A progressive MP4 laid out and not yet written: its length is known
/// before the first byte goes out (an export announces it for progress).
pub struct Layout<S> {
    /// `ftyp`, `moov` and the `mdat` header.
    head: Vec<u8>,
    per_track: Vec<Vec<SampleRef<S>>>,
    chunks: Vec<Chunk>,
    len: u64,
}

impl<S> Layout<S> {
    /// Lays out the file; the same checks and arguments as [`write`].
    pub fn plan(
        tracks: &[TrackSpec],
        samples: impl IntoIterator<Item = SampleRef<S>>,
        creation_time_unix_secs: u64,
    ) -> Result<Layout<S>> {
        if tracks.is_empty() {
            return Err(Error::invalid("an MP4 file needs at least one track"));
        }
        for (spec, id) in tracks.iter().zip(1..) {
            spec.validate(id)?;
        }
        let per_track = group_by_track(tracks, samples)?;
        let chunks = plan_chunks(tracks, &per_track);
        let creation = creation_time_unix_secs + MP4_EPOCH_OFFSET;

        let mut head = Vec::new();
        let mut w = BoxWriter::new(&mut head);
        boxes::ftyp(&mut w, b"isom", &boxes::compatible_brands(tracks, false));
        w.finish()?;

        let payload: u64 = chunks.iter().map(|c| c.bytes).sum();
        let mdat_header_len = boxes::mdat_header_len(payload);
        let mut tables = sample_tables(tracks, &per_track, &chunks);
        // The moov's size does not depend on the offsets' values, only on stco
        // vs co64: lay it out once to learn its size, then for real.
        let mut moov = build_moov(tracks, &per_track, &mut tables, &chunks, creation, 0)?;
        let mut mdat_start = head.len() as u64 + moov.len() as u64 + mdat_header_len;
        if mdat_start + payload > u64::from(u32::MAX) {
            for t in &mut tables {
                t.co64 = true;
            }
            moov = build_moov(tracks, &per_track, &mut tables, &chunks, creation, 0)?;
            mdat_start = head.len() as u64 + moov.len() as u64 + mdat_header_len;
        }
        let sized = moov.len();
        moov = build_moov(
            tracks,
            &per_track,
            &mut tables,
            &chunks,
            creation,
            mdat_start,
        )?;
        debug_assert_eq!(sized, moov.len());
        head.extend_from_slice(&moov);
        boxes::mdat_header(&mut BoxWriter::new(&mut head), payload);
        debug_assert_eq!(head.len() as u64, mdat_start);
        Ok(Layout {
            head,
            per_track,
            chunks,
            len: mdat_start + payload,
        })
    }

    /// The length of the file in bytes (never 0: `ftyp` and `moov` at least).
    pub fn bytes(&self) -> u64 {
        self.len
    }

    /// Writes the file to `out`, fetching each sample through `read_sample`;
    /// returns its length.
    pub fn write<W: Write>(
        &self,
        out: W,
        read_sample: impl FnMut(&SampleRef<S>, &mut [u8]) -> Result<()>,
    ) -> Result<u64> {
        self.write_range(out, 0..self.len, read_sample)
    }

    /// Writes bytes `range` of the file (an HTTP range request), fetching
    /// only the samples that overlap it; returns how many were written.
    pub fn write_range<W: Write>(
        &self,
        out: W,
        range: std::ops::Range<u64>,
        mut read_sample: impl FnMut(&SampleRef<S>, &mut [u8]) -> Result<()>,
    ) -> Result<u64> {
        let range = range.start.min(self.len)..range.end.min(self.len);
        let mut out = BufWriter::with_capacity(1 << 20, out);
        let io = |e| io_error("writing MP4 export", e);
        let head = self.head.len() as u64;
        if range.start < head {
            let part = &self.head[range.start as usize..range.end.min(head) as usize];
            out.write_all(part).map_err(io)?;
        }
        let mut buf = Vec::new();
        'chunks: for chunk in &self.chunks {
            let mut pos = head + chunk.offset;
            if pos + chunk.bytes <= range.start {
                continue;
            }
            for sample in &self.per_track[chunk.track][chunk.samples.clone()] {
                if pos >= range.end {
                    break 'chunks;
                }
                let end = pos + u64::from(sample.size);
                if end > range.start {
                    buf.resize(sample.size as usize, 0);
                    read_sample(sample, &mut buf)?;
                    let from = range.start.saturating_sub(pos) as usize;
                    let to = (range.end.min(end) - pos) as usize;
                    out.write_all(&buf[from..to]).map_err(io)?;
                }
                pos = end;
            }
        }
        out.flush().map_err(io)?;
        Ok(range.end - range.start)
    }
}

/// Splits `samples` by track, checking ids and decode-time continuity.
fn group_by_track<S>(
    tracks: &[TrackSpec],
    samples: impl IntoIterator<Item = SampleRef<S>>,
) -> Result<Vec<Vec<SampleRef<S>>>> {
    let mut per_track: Vec<Vec<SampleRef<S>>> = tracks.iter().map(|_| Vec::new()).collect();
    for s in samples {
        let list = s
            .track
            .checked_sub(1)
            .and_then(|i| per_track.get_mut(i as usize))
            .ok_or_else(|| Error::invalid(format!("MP4 export: no track {}", s.track)))?;
        if let Some(prev) = list.last() {
            let end = prev.decode_time.checked_add(u64::from(prev.duration));
            if end != Some(s.decode_time) {
                return Err(Error::invalid(format!(
                    "MP4 export: track {} sample at {} lasts {} but the next starts at {}; \
                     set each duration to the gap to the next sample",
                    s.track, prev.decode_time, prev.duration, s.decode_time
                )));
            }
        }
        list.push(s);
    }
    Ok(per_track)
}

/// A run of consecutive samples of one track, stored together.
struct Chunk {
    /// Index into the track list.
    track: usize,
    samples: std::ops::Range<usize>,
    /// Decode time of the first sample, in the track's timescale.
    start: u64,
    bytes: u64,
    /// Position within the mdat payload.
    offset: u64,
}

/// Cuts each track into half-second chunks and orders them by start time.
fn plan_chunks<S>(tracks: &[TrackSpec], per_track: &[Vec<SampleRef<S>>]) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    for (track, samples) in per_track.iter().enumerate() {
        let span = u64::from((tracks[track].timescale / CHUNKS_PER_SECOND).max(1));
        let mut first = 0;
        for i in 1..=samples.len() {
            let ends =
                i == samples.len() || samples[i].decode_time - samples[first].decode_time >= span;
            if ends {
                let bytes = samples[first..i].iter().map(|s| u64::from(s.size)).sum();
                let start = samples[first].decode_time;
                chunks.push(Chunk {
                    track,
                    samples: first..i,
                    start,
                    bytes,
                    offset: 0,
                });
                first = i;
            }
        }
    }
    // Compare start times in seconds exactly: a/ta vs b/tb as a*tb vs b*ta.
    // The sort is stable and a track's chunks are already in order.
    chunks.sort_by(|a, b| {
        let (ta, tb) = (
            u128::from(tracks[a.track].timescale),
            u128::from(tracks[b.track].timescale),
        );
        (u128::from(a.start) * tb)
            .cmp(&(u128::from(b.start) * ta))
            .then(a.track.cmp(&b.track))
    });
    let mut offset = 0;
    for c in &mut chunks {
        c.offset = offset;
        offset += c.bytes;
    }
    chunks
}

/// Timing, sync and size tables per track; chunk offsets are filled in by
/// `build_moov` once the `mdat` position is known.
fn sample_tables<S>(
    tracks: &[TrackSpec],
    per_track: &[Vec<SampleRef<S>>],
    chunks: &[Chunk],
) -> Vec<SampleTables> {
    let mut all: Vec<SampleTables> = tracks.iter().map(|_| SampleTables::default()).collect();
    for (samples, t) in per_track.iter().zip(&mut all) {
        for s in samples {
            push_run(&mut t.stts, s.duration);
            push_run(&mut t.ctts, s.composition_offset);
            t.sizes.push(s.size);
        }
        if t.ctts.iter().all(|&(_, offset)| offset == 0) {
            t.ctts.clear();
        }
        if samples.iter().any(|s| !s.keyframe) {
            t.sync = Some(
                (1..)
                    .zip(samples)
                    .filter(|(_, s)| s.keyframe)
                    .map(|(n, _)| n)
                    .collect(),
            );
        }
    }
    for c in chunks {
        let t = &mut all[c.track];
        let number = t.chunk_offsets.len() as u32 + 1;
        let n = c.samples.len() as u32;
        if t.stsc.last().is_none_or(|&(_, last)| last != n) {
            t.stsc.push((number, n));
        }
        t.chunk_offsets.push(c.offset);
    }
    all
}

/// Extends a run-length table with one sample's value.
fn push_run<T: PartialEq + Copy>(runs: &mut Vec<(u32, T)>, value: T) {
    match runs.last_mut() {
        Some((count, v)) if *v == value => *count += 1,
        _ => runs.push((1, value)),
    }
}

fn build_moov<S>(
    tracks: &[TrackSpec],
    per_track: &[Vec<SampleRef<S>>],
    tables: &mut [SampleTables],
    chunks: &[Chunk],
    creation: u64,
    mdat_start: u64,
) -> Result<Vec<u8>> {
    for t in tables.iter_mut() {
        t.chunk_offsets.clear();
    }
    for c in chunks {
        tables[c.track].chunk_offsets.push(mdat_start + c.offset);
    }
    // The movie counts time in the first track's units (video's 90 kHz,
    // usually), so delays convert exactly for that track.
    let movie_timescale = tracks[0].timescale;
    let to_movie = |t: u64, timescale: u32| {
        let v = u128::from(t) * u128::from(movie_timescale) / u128::from(timescale);
        u64::try_from(v).unwrap_or(u64::MAX)
    };
    let mut traks = Vec::with_capacity(tracks.len());
    for (i, spec) in tracks.iter().enumerate() {
        let samples = &per_track[i];
        let media_duration: u64 = samples.iter().map(|s| u64::from(s.duration)).sum();
        let first = samples.first().map_or(0, |s| s.decode_time);
        // With B-frames the last frame shown is not the last decoded: the
        // edit must reach the end of presentation or players cut frames off.
        let presentation_end = samples
            .iter()
            .map(|s| {
                (s.decode_time - first) as i128
                    + i128::from(s.composition_offset)
                    + i128::from(s.duration)
            })
            .max()
            .map_or(0, |end| u64::try_from(end).unwrap_or(0))
            .max(media_duration);
        let edit = (first > 0 || presentation_end != media_duration).then(|| Edit {
            delay: to_movie(first, spec.timescale),
            duration: to_movie(presentation_end, spec.timescale),
        });
        let duration = to_movie(first, spec.timescale)
            .saturating_add(to_movie(presentation_end, spec.timescale));
        traks.push((duration, media_duration, edit));
    }
    let movie_duration = traks.iter().map(|t| t.0).max().unwrap_or(0);

    let mut buf = Vec::new();
    let mut w = BoxWriter::new(&mut buf);
    let moov = w.begin(b"moov");
    boxes::mvhd(
        &mut w,
        creation,
        movie_timescale,
        movie_duration,
        tracks.len() as u32 + 1,
    );
    for (i, (spec, (duration, media_duration, edit))) in tracks.iter().zip(traks).enumerate() {
        let (width, height) = spec.display_size();
        let trak = boxes::Trak {
            id: i as u32 + 1,
            spec,
            width,
            height,
            creation,
            duration,
            media_duration,
            edit,
            tables: &tables[i],
        };
        boxes::trak(&mut w, &trak);
    }
    w.end(moov);
    w.finish()?;
    Ok(buf)
}

/// Reads sample bytes from recording files by `(path, offset)`, keeping the
/// few most recently used files open (an export walks segments in order).
#[derive(Debug, Default)]
pub struct SourceFiles {
    /// Most recently used first.
    open: Vec<(PathBuf, File)>,
}

impl SourceFiles {
    const KEEP_OPEN: usize = 4;

    pub fn new() -> Self {
        Self::default()
    }

    /// Fills `buf` from `path` at `offset`.
    pub fn read_at(&mut self, path: &Path, offset: u64, buf: &mut [u8]) -> Result<()> {
        let i = match self.open.iter().position(|(p, _)| p == path) {
            Some(i) => i,
            None => {
                let file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
                self.open.truncate(Self::KEEP_OPEN - 1);
                self.open.push((path.to_owned(), file));
                self.open.len() - 1
            }
        };
        self.open[..=i].rotate_right(1);
        let file = &self.open[0].1;
        file.read_exact_at(buf, offset)
            .map_err(|e| Error::io("reading sample from", path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::mp4::read;
    use crate::mp4::test_util::{self, TestSample};

    fn export(samples: &[TestSample]) -> Vec<u8> {
        let mut out = Vec::new();
        let len = test_util::write_progressive(&mut out, &test_util::h264_aac_tracks(), samples);
        assert_eq!(len, out.len() as u64);
        out
    }

    #[test]
    fn round_trips_through_the_reader() {
        let samples = test_util::synthetic_recording(3, 0);
        let bytes = export(&samples);
        assert_eq!(&bytes[4..8], b"ftyp");
        let ftyp_len = u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
        assert_eq!(
            &bytes[ftyp_len + 4..ftyp_len + 8],
            b"moov",
            "moov must precede mdat"
        );
        let info = read::parse(&bytes).unwrap();
        assert_eq!(
            (info.complete_len, info.truncated),
            (bytes.len() as u64, false)
        );
        assert_eq!(info.tracks.len(), 2);
        assert_eq!(info.tracks[0].to_spec(), test_util::h264_aac_tracks()[0]);
        assert_eq!(info.tracks[1].to_spec(), test_util::h264_aac_tracks()[1]);
        // The reader lists samples in file order; compare per track.
        for track in [1, 2] {
            let expected: Vec<TestSample> = samples
                .iter()
                .filter(|s| s.track == track)
                .cloned()
                .collect();
            let mut got = info.clone();
            got.samples.retain(|s| s.track == track);
            got.samples.sort_by_key(|s| s.decode_time);
            test_util::assert_same_samples(&got, &bytes, &expected);
        }
    }

    #[test]
    fn cut_exports_never_panic_and_keep_nothing_incomplete() {
        let samples = test_util::synthetic_recording(1, 0);
        let bytes = export(&samples);
        for cut in (1..bytes.len()).step_by(7) {
            let info = read::parse(&bytes[..cut]).unwrap();
            assert!(info.truncated, "cut at {cut}");
            assert!(info.samples.iter().all(|s| s.end() <= info.complete_len));
        }
    }

    #[test]
    fn any_byte_range_is_that_part_of_the_whole_file() {
        let samples = test_util::synthetic_recording(1, 0);
        let whole = export(&samples);
        let layout = Layout::plan(
            &test_util::h264_aac_tracks(),
            test_util::sample_refs(&samples),
            1_700_000_000,
        )
        .unwrap();
        let data = |s: &SampleRef<usize>, buf: &mut [u8]| {
            buf.copy_from_slice(&samples[s.source].data);
            Ok(())
        };
        let len = whole.len() as u64;
        for (a, b) in [
            (0, 10),
            (5, len),
            (len - 3, len),
            (700, 701),
            (300, len - 100),
        ] {
            let mut part = Vec::new();
            let n = layout.write_range(&mut part, a..b, data).unwrap();
            assert_eq!(n, b - a);
            assert_eq!(part, &whole[a as usize..b as usize], "{a}..{b}");
        }
    }

    #[test]
    fn chunks_interleave_by_time() {
        let samples = test_util::synthetic_recording(3, 0);
        let info = read::parse(&export(&samples)).unwrap();
        // Walking the file in order, track switches happen about every half
        // second and neither track runs ahead of the other by more than that.
        let mut switches = 0;
        for pair in info.samples.windows(2) {
            if pair[0].track != pair[1].track {
                switches += 1;
            }
            let seconds = |s: &SampleInfo| {
                s.decode_time as f64 / info.track(s.track).unwrap().timescale as f64
            };
            assert!(seconds(&pair[1]) - seconds(&pair[0]) < 0.6, "{pair:?}");
        }
        assert!(
            (10..=13).contains(&switches),
            "{switches} track switches in 3 s"
        );
    }

    #[test]
    fn a_late_track_keeps_its_start_through_an_empty_edit() {
        // Audio starts 0.5 s in (24000 at 48 kHz, 45000 at 90 kHz: exact).
        let samples = test_util::synthetic_recording(2, 24_000);
        let info = read::parse(&export(&samples)).unwrap();
        assert_eq!(info.first_decode_time(1), Some(0));
        assert_eq!(info.first_decode_time(2), Some(24_000));
    }

    #[test]
    fn offsets_past_4_gib_use_co64() {
        let spec = test_util::h264_aac_tracks();
        let mut tables = vec![SampleTables::default()];
        let chunk = Chunk {
            track: 0,
            samples: 0..1,
            start: 0,
            bytes: 10,
            offset: 1 << 32,
        };
        let samples = vec![SampleRef {
            track: 1,
            decode_time: 0,
            duration: 3600,
            composition_offset: 0,
            keyframe: true,
            size: 10,
            source: (),
        }];
        tables[0].sizes.push(10);
        tables[0].stts.push((1, 3600));
        tables[0].stsc.push((1, 1));
        tables[0].co64 = true;
        let moov = build_moov(&spec[..1], &[samples], &mut tables, &[chunk], 0, 100).unwrap();
        let at = moov
            .windows(4)
            .position(|w| w == b"co64")
            .expect("co64 box");
        assert_eq!(&moov[at + 12..at + 20], &((1u64 << 32) + 100).to_be_bytes());
        assert!(!moov.windows(4).any(|w| w == b"stco"));
    }

    #[test]
    fn rejects_gaps_and_unknown_tracks() {
        let tracks = test_util::h264_aac_tracks();
        let mut bad = test_util::sample_refs(&test_util::synthetic_recording(1, 0));
        bad.retain(|s| s.track == 1);
        bad[3].decode_time += 1;
        let err = write(Vec::new(), &tracks, bad, 0, |_, _| Ok(())).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        let mut unknown = test_util::sample_refs(&test_util::synthetic_recording(1, 0));
        unknown[0].track = 9;
        assert!(write(Vec::new(), &tracks, unknown, 0, |_, _| Ok(())).is_err());
    }

    #[test]
    fn source_files_read_from_disk() {
        let samples = test_util::synthetic_recording(2, 0);
        let written = test_util::write_fragmented(&samples, 500);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment.mp4");
        std::fs::write(&path, &written.bytes).unwrap();
        let info = read::scan_file(&path).unwrap();
        let refs = info
            .samples
            .iter()
            .map(|s| SampleRef::from_info(s, s.track, (path.clone(), s.offset)));
        let tracks: Vec<TrackSpec> = info.tracks.iter().map(|t| t.to_spec()).collect();
        let mut files = SourceFiles::new();
        let mut out = Vec::new();
        write(&mut out, &tracks, refs, 0, |r, buf| {
            files.read_at(&r.source.0, r.source.1, buf)
        })
        .unwrap();
        let exported = read::parse(&out).unwrap();
        for track in [1, 2] {
            let a: Vec<&[u8]> = info
                .samples
                .iter()
                .filter(|s| s.track == track)
                .map(|s| info.sample_data(&written.bytes, s).unwrap())
                .collect();
            let mut b: Vec<&SampleInfo> = exported
                .samples
                .iter()
                .filter(|s| s.track == track)
                .collect();
            b.sort_by_key(|s| s.decode_time);
            let b: Vec<&[u8]> = b
                .iter()
                .map(|s| exported.sample_data(&out, s).unwrap())
                .collect();
            assert_eq!(a, b);
        }
        let err = files
            .read_at(&dir.path().join("gone.mp4"), 0, &mut [0; 4])
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
    }
}
