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
//!
//! Here: the public results, the walk over top-level boxes and the sample
//! budget. `cursor` reads inside a payload, `movie` the `moov`, `tables` a
//! progressive file's sample tables, `fragment` a `moof`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::{Codec, TrackSpec, io_error};
use crate::{Error, Result};

mod cursor;
mod fragment;
mod movie;
mod tables;

use fragment::{Fragment, parse_moof};
use movie::{Movie, parse_moov};

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
    /// The `mvhd` creation time, in seconds since 1904-01-01 as the file
    /// states it (0 when unset; which zone it means is the writer's
    /// business). `None` when no `moov` was found.
    pub created: Option<u64>,
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
            created: None,
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
        created: Some(movie.created),
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
}
