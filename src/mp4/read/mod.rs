//! Reading MP4 files back: our fragmented segments (whole or cut off at any
//! byte) and plain progressive files such as GStreamer's `mp4mux` writes.
//!
//! Invariants:
//! - No length is trusted. Every box, table and sample range is checked
//!   against the bytes present before use, and all arithmetic on values from
//!   the file is checked, so damaged input yields an error or a shorter
//!   result, never a panic or an out-of-bounds read.
//! - A fragment counts only once its `moof` parsed and every byte its samples
//!   point at lies within complete boxes. `complete_len` is the end of the last
//!   top-level box before the first thing that is not whole (a cut-off box, a
//!   `moof` whose data never came, trailing garbage such as the zeros a power
//!   loss can leave); recovery may truncate the file there.
//! - At most [`MAX_SAMPLES`] samples are walked per file, whatever the
//!   tables claim: a few bytes of table (a run of zero-size samples, a
//!   uniform `stsz`) cannot make the reader allocate or loop without bound.
//! - Only `moov` and `moof` payloads are read; `mdat` is skipped by seeking, so
//!   [`scan_file`] reads a few kilobytes per fragment, not the media.
//!
//! Not interpreted: edit lists other than a leading empty edit (which delays
//! the track and is added to its decode times), `sidx`/`mfra` indexes,
//! multiple sample descriptions, and tracks of codecs other than those in
//! [`Codec`] (their samples are left out; `tracks` does not list them).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::{Codec, TrackSpec, io_error};
use crate::{Error, Result};

/// What an MP4 file holds, as far as it is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mp4Info {
    /// Tracks of supported codecs, in `moov` order.
    pub tracks: Vec<TrackInfo>,
    /// Every sample of those tracks whose bytes are present: progressive
    /// samples in file order, then fragment by fragment, track by track.
    pub samples: Vec<SampleInfo>,
    /// Length of the usable prefix: up to the last complete fragment (or the
    /// whole file when it is complete). 0 when no complete `moov` was found.
    pub complete_len: u64,
    /// Bytes follow `complete_len`: the file was cut off, or has a tail that
    /// is not a whole fragment.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    pub id: u32,
    /// The codec with the decoder configuration from the sample entry.
    pub codec: Codec,
    pub timescale: u32,
    /// Video only: picture size from the sample entry.
    pub width: u16,
    pub height: u16,
    /// Audio only.
    pub sample_rate: u32,
    pub channels: u16,
}

impl TrackInfo {
    /// The spec to write this track again (export, repair).
    pub fn to_spec(&self) -> TrackSpec {
        TrackSpec {
            codec: self.codec.clone(),
            timescale: self.timescale,
            width: self.width,
            height: self.height,
            sample_rate: self.sample_rate,
            channels: self.channels,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleInfo {
    pub track: u32,
    /// In the track's timescale, from the start of the movie timeline.
    pub decode_time: u64,
    pub duration: u32,
    pub composition_offset: i32,
    pub keyframe: bool,
    /// Absolute position of the sample's bytes in the file.
    pub offset: u64,
    pub size: u32,
}

impl SampleInfo {
    /// One past the sample's last byte.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.size)
    }
}

impl Mp4Info {
    pub fn track(&self, id: u32) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.id == id)
    }

    fn track_samples(&self, track: u32) -> impl Iterator<Item = &SampleInfo> {
        self.samples.iter().filter(move |s| s.track == track)
    }

    pub fn frame_count(&self, track: u32) -> usize {
        self.track_samples(track).count()
    }

    pub fn keyframe_count(&self, track: u32) -> usize {
        self.track_samples(track).filter(|s| s.keyframe).count()
    }

    /// The earliest decode time of `track`, in its timescale.
    pub fn first_decode_time(&self, track: u32) -> Option<u64> {
        self.track_samples(track).map(|s| s.decode_time).min()
    }

    /// Sum of the sample durations of `track`, in its timescale.
    pub fn total_duration(&self, track: u32) -> u64 {
        self.track_samples(track)
            .map(|s| u64::from(s.duration))
            .sum()
    }

    /// The bytes of `sample` within `file` (the bytes this info was parsed
    /// from), or `None` if they are not all there.
    pub fn sample_data<'a>(&self, file: &'a [u8], sample: &SampleInfo) -> Option<&'a [u8]> {
        let start = usize::try_from(sample.offset).ok()?;
        file.get(start..start.checked_add(sample.size as usize)?)
    }
}

/// Parses an MP4 file held in memory.
pub fn parse(bytes: &[u8]) -> Result<Mp4Info> {
    scan_source(&mut SliceSource(bytes))
}

/// Parses the MP4 file at `path`, reading only box headers, `moov` and `moof`.
pub fn scan_file(path: &Path) -> Result<Mp4Info> {
    let file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io("reading metadata of", path, e))?
        .len();
    scan_source(&mut SeekSource {
        inner: file,
        len,
        path: Some(path),
    })
}

/// Parses an MP4 file from any seekable reader, from its start to its end.
pub fn scan<R: Read + Seek>(mut reader: R) -> Result<Mp4Info> {
    let len = reader
        .seek(SeekFrom::End(0))
        .map_err(|e| io_error("reading MP4", e))?;
    scan_source(&mut SeekSource {
        inner: reader,
        len,
        path: None,
    })
}

/// Random access to the file being parsed.
trait Source {
    fn len(&self) -> u64;
    /// Fills `buf` from `offset`; the caller has checked the range is in the file.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()>;
}

struct SliceSource<'a>(&'a [u8]);

impl Source for SliceSource<'_> {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let start = offset as usize;
        buf.copy_from_slice(&self.0[start..start + buf.len()]);
        Ok(())
    }
}

struct SeekSource<'p, R> {
    inner: R,
    len: u64,
    path: Option<&'p Path>,
}

impl<R: Read + Seek> Source for SeekSource<'_, R> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let result = self
            .inner
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.inner.read_exact(buf));
        result.map_err(|e| match self.path {
            Some(path) => Error::io("reading", path, e),
            None => io_error("reading MP4", e),
        })
    }
}

/// Largest `moov`/`moof` we load into memory. A four-hour progressive export
/// has a `moov` of a few megabytes; anything near this is damage.
const MAX_METADATA_BOX: u64 = 256 << 20;

/// Most samples walked in one file (tables and fragments, all tracks). A
/// day of 30 fps video with 50 frames/s of audio is 6.9 million; the
/// bookkeeping for this many is about 320 MiB.
pub const MAX_SAMPLES: u64 = 1 << 23;

/// What is left of [`MAX_SAMPLES`] while a file is walked.
struct Budget(u64);

impl Budget {
    /// Takes `n` samples from the budget, before they are walked.
    fn take(&mut self, n: u32) -> Result<()> {
        self.0 = self.0.checked_sub(u64::from(n)).ok_or_else(|| {
            Error::invalid(format!(
                "MP4 file describes more than {MAX_SAMPLES} samples, more than a day of \
                 footage: damaged, or not a file Custos reads"
            ))
        })?;
        Ok(())
    }
}

/// The walk over top-level boxes; see the module invariants.
fn scan_source(src: &mut impl Source) -> Result<Mp4Info> {
    let len = src.len();
    let mut budget = Budget(MAX_SAMPLES);
    let mut movie: Option<Movie> = None;
    let mut fragment_samples = Vec::new();
    let mut pending: Option<Fragment> = None;
    let mut complete_len = 0;
    let mut payload = Vec::new();
    let mut pos = 0;
    while pos < len {
        let Some(header) = read_box_header(src, pos)? else {
            break;
        };
        let Some(end) = pos.checked_add(header.size).filter(|&end| end <= len) else {
            break;
        };
        match &header.fourcc {
            b"moov" => {
                if movie.is_some() || header.size > MAX_METADATA_BOX {
                    break;
                }
                read_payload(src, pos, &header, &mut payload)?;
                movie = Some(parse_moov(&payload, len, &mut budget)?);
            }
            b"moof" => {
                // A moof before the moov, or a second one before the first's
                // data arrived, is not something we wrote: stop there.
                let Some(movie) = &movie else { break };
                if pending.is_some() || header.size > MAX_METADATA_BOX {
                    break;
                }
                read_payload(src, pos, &header, &mut payload)?;
                match parse_moof(&payload, pos, movie, len, &mut budget) {
                    Ok(fragment) => pending = Some(fragment),
                    Err(_) => break,
                }
            }
            _ => {}
        }
        pos = end;
        if let Some(fragment) = pending.take_if(|f| f.data_end <= pos) {
            let movie = movie
                .as_mut()
                .expect("a fragment is only parsed after the moov");
            for &(index, next) in &fragment.track_ends {
                movie.tracks[index].next_decode_time = next;
            }
            fragment_samples.extend(fragment.samples);
        }
        if pending.is_none() && movie.is_some() {
            complete_len = pos;
        }
    }

    let Some(movie) = movie else {
        return Ok(Mp4Info {
            tracks: Vec::new(),
            samples: Vec::new(),
            complete_len: 0,
            truncated: len > 0,
        });
    };
    let mut samples = movie.table_samples;
    // Only what lies in complete boxes counts, as for fragments: a progressive
    // file cut inside its mdat has no complete samples past the moov.
    samples.retain(|s| s.end() <= complete_len);
    samples.sort_by_key(|s| s.offset);
    samples.extend(fragment_samples);
    let tracks = movie.tracks.into_iter().filter_map(|t| t.info).collect();
    Ok(Mp4Info {
        tracks,
        samples,
        complete_len,
        truncated: complete_len < len,
    })
}

struct BoxHeader {
    fourcc: [u8; 4],
    header_len: u64,
    /// Whole box, header included.
    size: u64,
}

/// The header of the top-level box at `pos`, or `None` if there is no
/// plausible whole header there (end of data, or garbage).
fn read_box_header(src: &mut impl Source, pos: u64) -> Result<Option<BoxHeader>> {
    let avail = src.len() - pos;
    if avail < 8 {
        return Ok(None);
    }
    let mut raw = [0u8; 16];
    let n = avail.min(16) as usize;
    src.read_at(pos, &mut raw[..n])?;
    let size32 = u32::from_be_bytes(raw[0..4].try_into().unwrap());
    let fourcc: [u8; 4] = raw[4..8].try_into().unwrap();
    // Real box types are printable ASCII; zeros or noise mean the data ended.
    if !fourcc.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Ok(None);
    }
    let (header_len, size) = match size32 {
        0 if &fourcc == b"mdat" => (8, avail),
        0 => return Ok(None),
        1 if n < 16 => return Ok(None),
        1 => (16, u64::from_be_bytes(raw[8..16].try_into().unwrap())),
        s => (8, u64::from(s)),
    };
    if size < header_len {
        return Ok(None);
    }
    Ok(Some(BoxHeader {
        fourcc,
        header_len,
        size,
    }))
}

fn read_payload(
    src: &mut impl Source,
    pos: u64,
    header: &BoxHeader,
    buf: &mut Vec<u8>,
) -> Result<()> {
    buf.clear();
    buf.resize((header.size - header.header_len) as usize, 0);
    src.read_at(pos + header.header_len, buf)
}

/// Everything the `moov` says.
struct Movie {
    /// Every `trak`, including ones whose codec we do not read (their
    /// fragments still have to be walked to find the others' data).
    tracks: Vec<TrackState>,
    /// Samples described by the sample tables (progressive files).
    table_samples: Vec<SampleInfo>,
}

struct TrackState {
    id: u32,
    /// `None` for an unsupported codec.
    info: Option<TrackInfo>,
    trex: Trex,
    /// Added to media decode times: a leading empty edit's length.
    delay: u64,
    /// Media decode time after the last committed fragment, for a `traf`
    /// without `tfdt`. Starts after the sample tables' samples.
    next_decode_time: u64,
}

/// Per-track sample defaults for fragments (`trex`).
#[derive(Debug, Clone, Copy, Default)]
struct Trex {
    duration: u32,
    size: u32,
    flags: u32,
}

/// Checked big-endian reads from a box payload.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(data: &'a [u8], what: &'static str) -> Self {
        Cursor { data, pos: 0, what }
    }

    fn short(&self) -> Error {
        Error::invalid(format!("MP4 {} box is cut short", self.what))
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| self.short())?;
        let b = &self.data[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.bytes(N)?.try_into().unwrap())
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(drop)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// Version and flags of a full box.
    fn full_header(&mut self) -> Result<(u8, u32)> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }

    /// A u32 or u64 depending on the box version.
    fn u32_or_u64(&mut self, version: u8) -> Result<u64> {
        if version == 1 {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// A table of `count` entries of `entry_len` bytes, checked to be present
    /// before anything is allocated for it.
    fn table(&mut self, count: u32, entry_len: usize) -> Result<Cursor<'a>> {
        let len = (count as usize)
            .checked_mul(entry_len)
            .ok_or_else(|| self.short())?;
        Ok(Cursor::new(self.bytes(len)?, self.what))
    }

    fn rest(&mut self) -> &'a [u8] {
        let rest = &self.data[self.pos..];
        self.pos = self.data.len();
        rest
    }
}

/// The child boxes of a container payload, as (type, payload).
fn children(data: &[u8]) -> impl Iterator<Item = Result<([u8; 4], &[u8])>> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        if pos >= data.len() {
            return None;
        }
        let item = child_at(data, pos);
        match &item {
            Ok((_, _, end)) => pos = *end,
            Err(_) => pos = data.len(),
        }
        Some(item.map(|(fourcc, payload, _)| (fourcc, payload)))
    })
}

fn child_at(data: &[u8], pos: usize) -> Result<([u8; 4], &[u8], usize)> {
    let mut c = Cursor::new(&data[pos..], "child");
    let size32 = c.u32()?;
    let fourcc = c.array::<4>()?;
    let (header_len, size) = match size32 {
        0 => (8, c.data.len() as u64),
        1 => (16, c.u64()?),
        s => (8, u64::from(s)),
    };
    let end = usize::try_from(size)
        .ok()
        .filter(|&s| s >= header_len)
        .and_then(|s| pos.checked_add(s))
        .filter(|&end| end <= data.len())
        .ok_or_else(|| {
            Error::invalid(format!(
                "MP4 box {} overruns its parent",
                String::from_utf8_lossy(&fourcc)
            ))
        })?;
    Ok((fourcc, &data[pos + header_len..end], end))
}

/// The payload of the first child of type `fourcc`, if any.
fn find_child<'a>(data: &'a [u8], fourcc: &[u8; 4]) -> Result<Option<&'a [u8]>> {
    for child in children(data) {
        let (t, payload) = child?;
        if &t == fourcc {
            return Ok(Some(payload));
        }
    }
    Ok(None)
}

fn require_child<'a>(data: &'a [u8], fourcc: &[u8; 4], parent: &str) -> Result<&'a [u8]> {
    find_child(data, fourcc)?.ok_or_else(|| {
        Error::invalid(format!(
            "MP4 {parent} has no {} box",
            String::from_utf8_lossy(fourcc)
        ))
    })
}

fn parse_moov(moov: &[u8], file_len: u64, budget: &mut Budget) -> Result<Movie> {
    let mvhd = require_child(moov, b"mvhd", "moov")?;
    let mut c = Cursor::new(mvhd, "mvhd");
    let (version, _) = c.full_header()?;
    c.skip(if version == 1 { 16 } else { 8 })?;
    let movie_timescale = c.u32()?;

    let mut movie = Movie {
        tracks: Vec::new(),
        table_samples: Vec::new(),
    };
    let mut trex = Vec::new();
    for child in children(moov) {
        match child? {
            (t, payload) if &t == b"trak" => {
                let (state, samples) = parse_trak(payload, movie_timescale, file_len, budget)?;
                if movie.tracks.iter().any(|t| t.id == state.id) {
                    return Err(Error::invalid(format!(
                        "MP4 moov has two tracks with id {}",
                        state.id
                    )));
                }
                movie.tracks.push(state);
                movie.table_samples.extend(samples);
            }
            (t, payload) if &t == b"mvex" => {
                for child in children(payload) {
                    let (t, payload) = child?;
                    if &t == b"trex" {
                        let mut c = Cursor::new(payload, "trex");
                        c.full_header()?;
                        let id = c.u32()?;
                        c.skip(4)?; // default_sample_description_index
                        trex.push((
                            id,
                            Trex {
                                duration: c.u32()?,
                                size: c.u32()?,
                                flags: c.u32()?,
                            },
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    for (id, defaults) in trex {
        if let Some(t) = movie.tracks.iter_mut().find(|t| t.id == id) {
            t.trex = defaults;
        }
    }
    Ok(movie)
}

/// One `trak`: its state for fragments and the samples of its tables.
fn parse_trak(
    trak: &[u8],
    movie_timescale: u32,
    file_len: u64,
    budget: &mut Budget,
) -> Result<(TrackState, Vec<SampleInfo>)> {
    let tkhd = require_child(trak, b"tkhd", "trak")?;
    let mut c = Cursor::new(tkhd, "tkhd");
    let (version, _) = c.full_header()?;
    c.skip(if version == 1 { 16 } else { 8 })?;
    let id = c.u32()?;

    let mdia = require_child(trak, b"mdia", "trak")?;
    let mut c = Cursor::new(require_child(mdia, b"mdhd", "mdia")?, "mdhd");
    let (version, _) = c.full_header()?;
    c.skip(if version == 1 { 16 } else { 8 })?;
    let timescale = c.u32()?;
    if timescale == 0 {
        return Err(Error::invalid(format!("MP4 track {id} has timescale 0")));
    }
    let stbl = require_child(require_child(mdia, b"minf", "mdia")?, b"stbl", "minf")?;

    let delay = match find_child(trak, b"edts")? {
        Some(edts) => empty_edit_delay(edts, movie_timescale, timescale)?,
        None => 0,
    };
    let info = parse_stsd(require_child(stbl, b"stsd", "stbl")?, id, timescale)?;
    // G.711 tables that list single audio samples (one byte per channel,
    // as ffmpeg's mov muxer writes them) are read a chunk at a time.
    let pcm_bytes_per_sample = match &info {
        Some(i) if matches!(i.codec, Codec::Pcma | Codec::Pcmu) => u32::from(i.channels.max(1)),
        _ => 0,
    };
    let mut samples = sample_tables(stbl, id, file_len, pcm_bytes_per_sample, budget)?;
    let mut next_decode_time = 0;
    for s in &mut samples {
        next_decode_time = s.decode_time + u64::from(s.duration);
        s.decode_time += delay;
    }
    if info.is_none() {
        samples.clear();
    }
    let state = TrackState {
        id,
        info,
        trex: Trex::default(),
        delay,
        next_decode_time,
    };
    Ok((state, samples))
}

/// Length of the leading empty edits, converted to the track's timescale.
fn empty_edit_delay(edts: &[u8], movie_timescale: u32, timescale: u32) -> Result<u64> {
    let Some(elst) = find_child(edts, b"elst")? else {
        return Ok(0);
    };
    let mut c = Cursor::new(elst, "elst");
    let (version, _) = c.full_header()?;
    let count = c.u32()?;
    let mut entries = c.table(count, if version == 1 { 20 } else { 12 })?;
    let mut delay = 0u64;
    for _ in 0..count {
        let duration = entries.u32_or_u64(version)?;
        let media_time = if version == 1 {
            entries.i64()?
        } else {
            i64::from(entries.i32()?)
        };
        entries.skip(4)?; // media rate
        if media_time != -1 {
            break;
        }
        delay = delay.saturating_add(duration);
    }
    if movie_timescale == 0 {
        return Ok(0);
    }
    let scaled = u128::from(delay) * u128::from(timescale) / u128::from(movie_timescale);
    Ok(u64::try_from(scaled).unwrap_or(u64::MAX))
}

/// The codec of the first sample description; `None` if we do not read it.
fn parse_stsd(stsd: &[u8], id: u32, timescale: u32) -> Result<Option<TrackInfo>> {
    let mut c = Cursor::new(stsd, "stsd");
    c.full_header()?;
    c.u32()?; // entry_count
    let Some(entry) = children(c.rest()).next() else {
        return Err(Error::invalid(format!(
            "MP4 track {id} has no sample description"
        )));
    };
    let (fourcc, entry) = entry?;
    let mut info = TrackInfo {
        id,
        codec: Codec::Pcma,
        timescale,
        width: 0,
        height: 0,
        sample_rate: 0,
        channels: 0,
    };
    match &fourcc {
        b"avc1" | b"avc3" | b"hvc1" | b"hev1" => {
            let mut c = Cursor::new(entry, "visual sample entry");
            c.skip(24)?;
            info.width = c.u16()?;
            info.height = c.u16()?;
            c.skip(50)?;
            let h264 = fourcc.starts_with(b"avc");
            let config = find_child(c.rest(), if h264 { b"avcC" } else { b"hvcC" })?;
            let Some(config) = config else {
                return Ok(None);
            };
            info.codec = if h264 {
                Codec::H264 {
                    avcc: config.to_vec(),
                }
            } else {
                Codec::H265 {
                    hvcc: config.to_vec(),
                }
            };
        }
        b"mp4a" | b"alaw" | b"ulaw" => {
            let mut c = Cursor::new(entry, "audio sample entry");
            c.skip(8)?;
            let version = c.u16()?;
            c.skip(6)?;
            info.channels = c.u16()?;
            c.skip(6)?;
            info.sample_rate = c.u32()? >> 16;
            match version {
                0 => {}
                1 => c.skip(16)?,
                2 => {
                    // QuickTime v2: the rate is a float64 and channels a u32.
                    c.skip(4)?;
                    let rate = f64::from_bits(c.u64()?);
                    info.sample_rate = if rate.is_finite() && rate >= 0.0 {
                        rate as u32
                    } else {
                        0
                    };
                    info.channels = u16::try_from(c.u32()?).unwrap_or(0);
                    c.skip(20)?;
                }
                _ => return Ok(None),
            }
            if info.sample_rate == 0 {
                info.sample_rate = timescale;
            }
            info.codec = match &fourcc {
                b"alaw" => Codec::Pcma,
                b"ulaw" => Codec::Pcmu,
                _ => {
                    let rest = c.rest();
                    // QuickTime files may wrap the esds in a `wave` box.
                    let esds = match find_child(rest, b"esds")? {
                        Some(esds) => Some(esds),
                        None => match find_child(rest, b"wave")? {
                            Some(wave) => find_child(wave, b"esds")?,
                            None => None,
                        },
                    };
                    match esds.map(aac_config).transpose()?.flatten() {
                        Some(asc) => Codec::Aac { asc },
                        None => return Ok(None),
                    }
                }
            };
        }
        _ => return Ok(None),
    }
    Ok(Some(info))
}

/// The AudioSpecificConfig in an `esds`, if it describes AAC.
fn aac_config(esds: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut c = Cursor::new(esds, "esds");
    c.full_header()?;
    let Some(mut es) = descriptor(&mut c, 0x03)? else {
        return Ok(None);
    };
    es.skip(2)?; // ES_ID
    let flags = es.u8()?;
    if flags & 0x80 != 0 {
        es.skip(2)?; // dependsOn_ES_ID
    }
    if flags & 0x40 != 0 {
        let url_len = es.u8()?;
        es.skip(url_len.into())?;
    }
    if flags & 0x20 != 0 {
        es.skip(2)?; // OCR_ES_Id
    }
    let Some(mut config) = descriptor(&mut es, 0x04)? else {
        return Ok(None);
    };
    let object_type = config.u8()?;
    // 0x40: MPEG-4 audio; 0x66-0x68: MPEG-2 AAC profiles.
    if !matches!(object_type, 0x40 | 0x66..=0x68) {
        return Ok(None);
    }
    config.skip(12)?;
    Ok(descriptor(&mut config, 0x05)?.map(|mut dsi| dsi.rest().to_vec()))
}

/// Skips descriptors until one with `tag`, returning a cursor over its payload.
fn descriptor<'a>(c: &mut Cursor<'a>, tag: u8) -> Result<Option<Cursor<'a>>> {
    while c.remaining() > 0 {
        let t = c.u8()?;
        let mut len = 0usize;
        for _ in 0..4 {
            let b = c.u8()?;
            len = (len << 7) | usize::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
        let payload = c.bytes(len)?;
        if t == tag {
            return Ok(Some(Cursor::new(payload, "esds descriptor")));
        }
    }
    Ok(None)
}

/// Expands `stts`, `ctts`, `stss`, `stsc`, `stsz` and `stco`/`co64` into one
/// entry per sample, in decode order. When every sample is `pcm_sample_size`
/// bytes (non-zero only for PCM tracks), each chunk becomes one sample rather
/// than costing an entry per audio sample.
fn sample_tables(
    stbl: &[u8],
    track: u32,
    file_len: u64,
    pcm_sample_size: u32,
    budget: &mut Budget,
) -> Result<Vec<SampleInfo>> {
    let bad = |what: &str| Error::invalid(format!("MP4 track {track}: {what}"));

    let Some(stsz) = find_child(stbl, b"stsz")? else {
        return Ok(Vec::new());
    };
    let mut c = Cursor::new(stsz, "stsz");
    c.full_header()?;
    let uniform = c.u32()?;
    let count = c.u32()?;
    if count == 0 {
        return Ok(Vec::new());
    }
    if uniform != 0 && u64::from(count) * u64::from(uniform) > file_len {
        return Err(bad("stsz describes more bytes than the file holds"));
    }
    let mut sizes = if uniform == 0 {
        Some(c.table(count, 4)?)
    } else {
        None
    };
    let per_chunk = uniform != 0 && uniform == pcm_sample_size;

    let (offsets, offset_len) = match (find_child(stbl, b"stco")?, find_child(stbl, b"co64")?) {
        (Some(stco), _) => (stco, 4),
        (None, Some(co64)) => (co64, 8),
        (None, None) => return Err(bad("no stco or co64")),
    };
    let mut c = Cursor::new(offsets, "stco");
    c.full_header()?;
    let chunk_count = c.u32()?;
    let mut offsets = c.table(chunk_count, offset_len)?;
    budget.take(if per_chunk { chunk_count } else { count })?;

    let mut c = Cursor::new(require_child(stbl, b"stsc", "stbl")?, "stsc");
    c.full_header()?;
    let n = c.u32()?;
    let mut table = c.table(n, 12)?;
    let mut stsc = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let first_chunk = table.u32()?;
        let samples_per_chunk = table.u32()?;
        table.skip(4)?; // sample_description_index
        stsc.push((first_chunk, samples_per_chunk));
    }

    let mut stts = Runs::open(require_child(stbl, b"stts", "stbl")?, "stts")?;
    let mut ctts = find_child(stbl, b"ctts")?
        .map(|data| Runs::open(data, "ctts"))
        .transpose()?;
    let mut sync = find_child(stbl, b"stss")?
        .map(SyncTable::open)
        .transpose()?;

    let mut samples = Vec::with_capacity(count.min(1 << 20) as usize);
    let mut decode_time = 0u64;
    let mut number = 0u32; // of samples expanded so far
    let mut run = 0;
    for chunk in 1..=chunk_count {
        while run + 1 < stsc.len() && stsc[run + 1].0 <= chunk {
            run += 1;
        }
        let in_chunk = match stsc.get(run) {
            Some(&(first, n)) if first <= chunk => n.min(count - number),
            _ => return Err(bad("stsc does not cover every chunk")),
        };
        let mut offset = if offset_len == 8 {
            offsets.u64()?
        } else {
            u64::from(offsets.u32()?)
        };
        if per_chunk && in_chunk > 0 {
            let mut duration = 0u32;
            for _ in 0..in_chunk {
                let d = stts
                    .next()?
                    .ok_or_else(|| bad("stts has fewer samples than stsz"))?;
                duration = duration
                    .checked_add(d)
                    .ok_or_else(|| bad("chunk lasts too long"))?;
            }
            let size = in_chunk
                .checked_mul(uniform)
                .ok_or_else(|| bad("chunk too large"))?;
            samples.push(SampleInfo {
                track,
                decode_time,
                duration,
                composition_offset: 0,
                keyframe: true,
                offset,
                size,
            });
            number += in_chunk;
            decode_time = decode_time
                .checked_add(u64::from(duration))
                .ok_or_else(|| bad("time overflows"))?;
            continue;
        }
        for _ in 0..in_chunk {
            number += 1;
            let size = match &mut sizes {
                Some(table) => table.u32()?,
                None => uniform,
            };
            let duration = stts
                .next()?
                .ok_or_else(|| bad("stts has fewer samples than stsz"))?;
            let composition_offset = match &mut ctts {
                // Read signed whatever the version, as writers meant it.
                Some(runs) => runs.next()?.unwrap_or(0) as i32,
                None => 0,
            };
            let keyframe = sync.as_mut().map_or(Ok(true), |s| s.contains(number))?;
            samples.push(SampleInfo {
                track,
                decode_time,
                duration,
                composition_offset,
                keyframe,
                offset,
                size,
            });
            offset = offset
                .checked_add(u64::from(size))
                .ok_or_else(|| bad("chunk offset overflows"))?;
            decode_time = decode_time
                .checked_add(u64::from(duration))
                .ok_or_else(|| bad("time overflows"))?;
        }
        if number == count {
            break;
        }
    }
    if number != count {
        return Err(bad("stsc and stco lay out fewer samples than stsz has"));
    }
    Ok(samples)
}

/// Walks a run-length table (`stts`, `ctts`) one sample at a time.
struct Runs<'a> {
    table: Cursor<'a>,
    runs_left: u32,
    left_in_run: u32,
    value: u32,
}

impl<'a> Runs<'a> {
    fn open(data: &'a [u8], what: &'static str) -> Result<Self> {
        let mut c = Cursor::new(data, what);
        c.full_header()?;
        let runs = c.u32()?;
        Ok(Runs {
            table: c.table(runs, 8)?,
            runs_left: runs,
            left_in_run: 0,
            value: 0,
        })
    }

    /// The next sample's value, or `None` when the table is exhausted.
    fn next(&mut self) -> Result<Option<u32>> {
        while self.left_in_run == 0 {
            if self.runs_left == 0 {
                return Ok(None);
            }
            self.runs_left -= 1;
            self.left_in_run = self.table.u32()?;
            self.value = self.table.u32()?;
        }
        self.left_in_run -= 1;
        Ok(Some(self.value))
    }
}

/// `stss`, asked in increasing sample order.
struct SyncTable<'a> {
    table: Cursor<'a>,
    /// The smallest listed sample number not yet passed.
    next: Option<u32>,
}

impl<'a> SyncTable<'a> {
    fn open(data: &'a [u8]) -> Result<Self> {
        let mut c = Cursor::new(data, "stss");
        c.full_header()?;
        let n = c.u32()?;
        let mut table = c.table(n, 4)?;
        let next = if n > 0 { Some(table.u32()?) } else { None };
        Ok(SyncTable { table, next })
    }

    fn contains(&mut self, number: u32) -> Result<bool> {
        while let Some(v) = self.next {
            if v >= number {
                return Ok(v == number);
            }
            self.next = if self.table.remaining() >= 4 {
                Some(self.table.u32()?)
            } else {
                None
            };
        }
        Ok(false)
    }
}

/// A parsed `moof`, committed once its data is known to be present.
struct Fragment {
    samples: Vec<SampleInfo>,
    /// One past the last byte any of its samples uses.
    data_end: u64,
    /// (index into `Movie::tracks`, media decode time after this fragment).
    track_ends: Vec<(usize, u64)>,
}

const TFHD_BASE_DATA_OFFSET: u32 = 0x01;
const TFHD_SAMPLE_DESCRIPTION_INDEX: u32 = 0x02;
const TFHD_DEFAULT_DURATION: u32 = 0x08;
const TFHD_DEFAULT_SIZE: u32 = 0x10;
const TFHD_DEFAULT_FLAGS: u32 = 0x20;
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
const TRUN_DATA_OFFSET: u32 = 0x001;
const TRUN_FIRST_SAMPLE_FLAGS: u32 = 0x004;
const TRUN_DURATION: u32 = 0x100;
const TRUN_SIZE: u32 = 0x200;
const TRUN_FLAGS: u32 = 0x400;
const TRUN_CTO: u32 = 0x800;
/// `sample_is_non_sync_sample` in sample flags.
const SAMPLE_IS_NON_SYNC: u32 = 0x1_0000;

/// Parses the `moof` payload of the box at `moof_start`, with the data-offset
/// rules of 14496-12 8.8.7 and 8.8.8.
fn parse_moof(
    moof: &[u8],
    moof_start: u64,
    movie: &Movie,
    file_len: u64,
    budget: &mut Budget,
) -> Result<Fragment> {
    let bad = |what: &str| Error::invalid(format!("MP4 moof at {moof_start}: {what}"));
    let mut fragment = Fragment {
        samples: Vec::new(),
        data_end: 0,
        track_ends: Vec::new(),
    };
    // Without an explicit base, a traf's data follows the previous traf's.
    let mut previous_traf_end = moof_start;
    for child in children(moof) {
        let (t, traf) = child?;
        if &t != b"traf" {
            continue;
        }
        let mut c = Cursor::new(require_child(traf, b"tfhd", "traf")?, "tfhd");
        let (_, flags) = c.full_header()?;
        let id = c.u32()?;
        let index = movie
            .tracks
            .iter()
            .position(|t| t.id == id)
            .ok_or_else(|| bad("unknown track"))?;
        let track = &movie.tracks[index];
        let base = if flags & TFHD_BASE_DATA_OFFSET != 0 {
            c.u64()?
        } else if flags & TFHD_DEFAULT_BASE_IS_MOOF != 0 {
            moof_start
        } else {
            previous_traf_end
        };
        if flags & TFHD_SAMPLE_DESCRIPTION_INDEX != 0 {
            c.skip(4)?;
        }
        let mut defaults = track.trex;
        if flags & TFHD_DEFAULT_DURATION != 0 {
            defaults.duration = c.u32()?;
        }
        if flags & TFHD_DEFAULT_SIZE != 0 {
            defaults.size = c.u32()?;
        }
        if flags & TFHD_DEFAULT_FLAGS != 0 {
            defaults.flags = c.u32()?;
        }

        let mut decode_time = match find_child(traf, b"tfdt")? {
            Some(tfdt) => {
                let mut c = Cursor::new(tfdt, "tfdt");
                let (version, _) = c.full_header()?;
                c.u32_or_u64(version)?
            }
            // Continue from this track's previous traf (in this moof or the last).
            None => fragment
                .track_ends
                .iter()
                .rev()
                .find(|(i, _)| *i == index)
                .map_or(track.next_decode_time, |&(_, next)| next),
        };

        let mut data = base;
        for child in children(traf) {
            let (t, trun) = child?;
            if &t != b"trun" {
                continue;
            }
            let mut c = Cursor::new(trun, "trun");
            let (_, flags) = c.full_header()?;
            let count = c.u32()?;
            if flags & TRUN_DATA_OFFSET != 0 {
                data = base
                    .checked_add_signed(i64::from(c.i32()?))
                    .ok_or_else(|| bad("data offset before 0"))?;
            }
            let first_flags = if flags & TRUN_FIRST_SAMPLE_FLAGS != 0 {
                Some(c.u32()?)
            } else {
                None
            };
            let entry_len =
                4 * (flags & (TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS | TRUN_CTO)).count_ones();
            // Entries must be present; entry-less runs still need their bytes.
            let mut entries = c.table(count, entry_len as usize)?;
            if entry_len == 0 && u64::from(count) > file_len {
                return Err(bad("trun claims more samples than the file has bytes"));
            }
            budget.take(count)?;
            for i in 0..count {
                let duration = if flags & TRUN_DURATION != 0 {
                    entries.u32()?
                } else {
                    defaults.duration
                };
                let size = if flags & TRUN_SIZE != 0 {
                    entries.u32()?
                } else {
                    defaults.size
                };
                let mut sample_flags = if flags & TRUN_FLAGS != 0 {
                    entries.u32()?
                } else {
                    defaults.flags
                };
                if i == 0 {
                    sample_flags = first_flags.unwrap_or(sample_flags);
                }
                // Version 0 offsets are nominally unsigned, but writers that
                // meant a negative one wrote it anyway: read them signed.
                let composition_offset = if flags & TRUN_CTO != 0 {
                    entries.i32()?
                } else {
                    0
                };
                let end = data.checked_add(u64::from(size)).filter(|&e| e <= file_len);
                let end = end.ok_or_else(|| bad("sample data past the end of the file"))?;
                if track.info.is_some() {
                    fragment.samples.push(SampleInfo {
                        track: id,
                        decode_time: decode_time
                            .checked_add(track.delay)
                            .ok_or_else(|| bad("time overflows"))?,
                        duration,
                        composition_offset,
                        keyframe: sample_flags & SAMPLE_IS_NON_SYNC == 0,
                        offset: data,
                        size,
                    });
                }
                data = end;
                fragment.data_end = fragment.data_end.max(end);
                decode_time = decode_time
                    .checked_add(u64::from(duration))
                    .ok_or_else(|| bad("time overflows"))?;
            }
        }
        previous_traf_end = data;
        fragment.track_ends.push((index, decode_time));
    }
    Ok(fragment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::test_util;

    #[test]
    fn garbage_never_panics() {
        let samples = test_util::synthetic_recording(1, 0);
        let written = test_util::write_fragmented(&samples, 250);
        let mut bytes = written.bytes.clone();
        // Flip bytes one at a time across the header and first fragments.
        let end = written.fragments[1].end as usize;
        for i in 0..end {
            let saved = bytes[i];
            for v in [0x00, 0xff, saved ^ 0x80] {
                bytes[i] = v;
                let _ = parse(&bytes);
            }
            bytes[i] = saved;
        }
        assert_eq!(
            parse(&bytes).unwrap().samples.len(),
            written.in_file_order.len()
        );
    }

    #[test]
    fn zeros_after_a_power_loss_are_a_truncated_tail() {
        let samples = test_util::synthetic_recording(1, 0);
        let written = test_util::write_fragmented(&samples, 250);
        let mut bytes = written.bytes.clone();
        bytes.extend_from_slice(&[0; 4096]);
        let info = parse(&bytes).unwrap();
        assert_eq!(info.complete_len, written.bytes.len() as u64);
        assert!(info.truncated);
        assert_eq!(info.samples.len(), written.in_file_order.len());
    }

    #[test]
    fn scan_file_matches_parse() {
        let samples = test_util::synthetic_recording(2, 900);
        let written = test_util::write_fragmented(&samples, 500);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg.mp4");
        let cut = written.bytes.len() - 10;
        std::fs::write(&path, &written.bytes[..cut]).unwrap();
        let from_file = scan_file(&path).unwrap();
        assert_eq!(from_file, parse(&written.bytes[..cut]).unwrap());
        assert!(from_file.truncated);
        let missing = scan_file(&dir.path().join("nope.mp4")).unwrap_err();
        assert_eq!(missing.kind, crate::ErrorKind::NotFound);
    }

    #[test]
    fn not_an_mp4_is_empty_and_truncated() {
        let info = parse(b"this is a text file, not a movie").unwrap();
        assert!(info.tracks.is_empty() && info.samples.is_empty());
        assert_eq!((info.complete_len, info.truncated), (0, true));
        let empty = parse(&[]).unwrap();
        assert_eq!((empty.complete_len, empty.truncated), (0, false));
    }

    /// A full box (version 0, no flags) of `fourcc` with `fields`.
    fn full_box(fourcc: &[u8; 4], fields: &[u32]) -> Vec<u8> {
        let mut b = (12 + 4 * fields.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(fourcc);
        b.extend_from_slice(&[0; 4]);
        for f in fields {
            b.extend_from_slice(&f.to_be_bytes());
        }
        b
    }

    #[test]
    fn sample_tables_claiming_more_samples_than_the_budget_are_refused() {
        // Forty bytes of tables for 2^23 + 1 one-byte samples in one chunk.
        let n = MAX_SAMPLES as u32 + 1;
        let stbl = [
            full_box(b"stsz", &[1, n]),
            full_box(b"stco", &[1, 0]),
            full_box(b"stsc", &[1, 1, n, 1]),
            full_box(b"stts", &[1, n, 1]),
        ]
        .concat();
        let mut budget = Budget(MAX_SAMPLES);
        let err = match sample_tables(&stbl, 1, u64::MAX, 0, &mut budget) {
            Ok(samples) => panic!("{} samples read", samples.len()),
            Err(e) => e,
        };
        assert!(err.message.contains("more than 8388608 samples"), "{err}");
        // Within the budget, the same tables are read.
        let mut budget = Budget(MAX_SAMPLES);
        let stbl = [
            full_box(b"stsz", &[1, 3]),
            full_box(b"stco", &[1, 0]),
            full_box(b"stsc", &[1, 1, 3, 1]),
            full_box(b"stts", &[1, 3, 1]),
        ]
        .concat();
        assert_eq!(sample_tables(&stbl, 1, 3, 0, &mut budget).unwrap().len(), 3);
        assert_eq!(budget.0, MAX_SAMPLES - 3);
    }
}
