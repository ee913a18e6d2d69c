//! The fragmented writer used while recording.
//!
//! Layout: `ftyp` `moov` (empty sample tables, `mvex`), then one `moof` + `mdat`
//! per [`FragmentedWriter::write_fragment`]. Invariants:
//! - Each fragment's boxes (`moof` and the `mdat` header) are assembled in one
//!   reused buffer and handed to the output with the samples' own bytes in
//!   one vectored write (looped only if the output takes part of it), so a
//!   crash tears at most the last fragment; every byte before it is a
//!   complete, playable file without any finalisation. The samples are not
//!   copied into the buffer: it stays a few hundred bytes per camera.
//! - Fragments are self-contained: `tfhd` uses default-base-is-moof and `tfdt`
//!   states each track's absolute decode time, so no fragment depends on
//!   another having been read.
//! - After a failed write the output holds a partial fragment that no reader
//!   will look past, so the writer refuses further fragments; start a new file.

use std::io::{IoSlice, Write};

use super::boxes::{self, BoxWriter};
use super::{MP4_EPOCH_OFFSET, Sample, TrackSpec, io_error};
use crate::{Error, ErrorKind, Result};

/// Writes a fragmented MP4 to `W` (a segment file, usually).
pub struct FragmentedWriter<W: Write> {
    out: W,
    tracks: Vec<TrackState>,
    /// `mfhd` sequence number of the next fragment; starts at 1.
    next_sequence: u32,
    /// Bytes handed to `out` so far, header included.
    bytes_written: u64,
    /// The fragment's boxes being assembled (`moof` and the `mdat` header);
    /// kept between calls so steady-state recording does not allocate.
    buf: Vec<u8>,
    /// Per `traf` of the fragment being assembled: where its `trun`
    /// data_offset is, and how many payload bytes precede its samples.
    data_offsets: Vec<(usize, u64)>,
    /// Set once a write to `out` failed.
    failed: bool,
}

struct TrackState {
    /// Decode time just after this track's last written sample; the next
    /// fragment must not start before it.
    next_decode_time: u64,
    /// Scratch for `write_fragment`: this track already had its run.
    seen: bool,
}

impl<W: Write> FragmentedWriter<W> {
    /// Writes `ftyp` and `moov` for `tracks` (track ids are their positions
    /// plus one). `creation_time_unix_secs` goes into `mvhd`/`tkhd`/`mdhd`.
    pub fn new(mut out: W, tracks: Vec<TrackSpec>, creation_time_unix_secs: u64) -> Result<Self> {
        if tracks.is_empty() {
            return Err(Error::invalid("an MP4 file needs at least one track"));
        }
        let ids = 1..=tracks.len() as u32;
        for (spec, id) in tracks.iter().zip(ids.clone()) {
            spec.validate(id)?;
        }
        let creation = creation_time_unix_secs + MP4_EPOCH_OFFSET;

        let mut buf = Vec::with_capacity(4096);
        let mut w = BoxWriter::new(&mut buf);
        boxes::ftyp(&mut w, b"isom", &boxes::compatible_brands(&tracks, true));
        let moov = w.begin(b"moov");
        // Durations are unknown up front and left 0: fragments carry the times.
        boxes::mvhd(&mut w, creation, 1000, 0, tracks.len() as u32 + 1);
        let empty = boxes::SampleTables::default();
        for (spec, id) in tracks.iter().zip(ids.clone()) {
            let (width, height) = spec.display_size();
            let trak = boxes::Trak {
                id,
                spec,
                width,
                height,
                creation,
                duration: 0,
                media_duration: 0,
                edit: None,
                tables: &empty,
            };
            boxes::trak(&mut w, &trak);
        }
        boxes::mvex(&mut w, ids);
        w.end(moov);
        w.finish()?;

        out.write_all(&buf)
            .map_err(|e| io_error("writing MP4 header", e))?;
        let bytes_written = buf.len() as u64;
        let tracks = tracks
            .iter()
            .map(|_| TrackState {
                next_decode_time: 0,
                seen: false,
            })
            .collect();
        buf.clear();
        Ok(FragmentedWriter {
            out,
            tracks,
            next_sequence: 1,
            bytes_written,
            buf,
            data_offsets: Vec::new(),
            failed: false,
        })
    }

    /// Writes one `moof` + `mdat` holding `samples` and returns its length.
    ///
    /// Samples must be grouped by track (each track's samples contiguous, in
    /// decode order), and within a track each sample must start where the
    /// previous one ends (`decode_time + duration`), because a `trun` stores
    /// only durations. A track's first sample may not precede the end of
    /// what earlier fragments held for it. An empty slice writes nothing.
    pub fn write_fragment(&mut self, samples: &[Sample]) -> Result<u64> {
        if self.failed {
            return Err(Error::new(
                ErrorKind::Internal,
                "MP4 writer: an earlier write failed, so this file ends in a partial fragment; start a new file",
            ));
        }
        if samples.is_empty() {
            return Ok(0);
        }
        self.check_runs(samples)?;
        let payload: u64 = samples.iter().map(|s| s.data.len() as u64).sum();

        self.buf.clear();
        self.data_offsets.clear();
        let mut w = BoxWriter::new(&mut self.buf);
        let moof = w.begin(b"moof");
        boxes::mfhd(&mut w, self.next_sequence);
        let mut before = 0u64;
        for run in samples.chunk_by(|a, b| a.track == b.track) {
            let traf = w.begin(b"traf");
            boxes::tfhd(&mut w, run[0].track);
            boxes::tfdt(&mut w, run[0].decode_time);
            let with_cto = run.iter().any(|s| s.composition_offset != 0);
            let at = boxes::trun(&mut w, run, with_cto);
            w.end(traf);
            self.data_offsets.push((at, before));
            before += run.iter().map(|s| s.data.len() as u64).sum::<u64>();
        }
        w.end(moof);
        let moof_len = w.pos() as u64;
        boxes::mdat_header(&mut w, payload);
        let data_start = moof_len + boxes::mdat_header_len(payload);
        for &(at, before) in &self.data_offsets {
            // data_offset is a signed 32-bit count from the start of the moof.
            let offset = u32::try_from(data_start + before)
                .ok()
                .filter(|&o| o <= i32::MAX as u32)
                .ok_or_else(|| {
                    Error::invalid("MP4 fragment larger than 2 GiB; write smaller fragments")
                })?;
            w.patch_u32(at, offset);
        }
        w.finish()?;

        let mut slices = Vec::with_capacity(samples.len() + 1);
        slices.push(IoSlice::new(&self.buf));
        slices.extend(samples.iter().map(|s| IoSlice::new(s.data)));
        if let Err(e) = write_all_vectored(&mut self.out, &mut slices) {
            self.failed = true;
            return Err(io_error("writing MP4 fragment", e));
        }
        let len = self.buf.len() as u64 + payload;
        self.bytes_written += len;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        for run in samples.chunk_by(|a, b| a.track == b.track) {
            let last = run[run.len() - 1];
            self.tracks[run[0].track as usize - 1].next_decode_time =
                last.decode_time.saturating_add(u64::from(last.duration));
        }
        Ok(len)
    }

    /// Enforces what a `trun` can express; see `write_fragment`.
    fn check_runs(&mut self, samples: &[Sample]) -> Result<()> {
        for t in &mut self.tracks {
            t.seen = false;
        }
        for run in samples.chunk_by(|a, b| a.track == b.track) {
            let id = run[0].track;
            let track = id
                .checked_sub(1)
                .and_then(|i| self.tracks.get_mut(i as usize))
                .ok_or_else(|| Error::invalid(format!("MP4 fragment: no track {id}")))?;
            if track.seen {
                return Err(Error::invalid(format!(
                    "MP4 fragment: samples of track {id} are not contiguous; group them by track"
                )));
            }
            track.seen = true;
            if run[0].decode_time < track.next_decode_time {
                return Err(Error::invalid(format!(
                    "MP4 fragment: track {id} starts at {} but the previous fragment ends at {}",
                    run[0].decode_time, track.next_decode_time
                )));
            }
            for pair in run.windows(2) {
                let end = pair[0].decode_time.checked_add(u64::from(pair[0].duration));
                if end != Some(pair[1].decode_time) {
                    return Err(Error::invalid(format!(
                        "MP4 fragment: track {id} sample at {} lasts {} but the next starts at {}; \
                         set each duration to the gap to the next sample",
                        pair[0].decode_time, pair[0].duration, pair[1].decode_time
                    )));
                }
            }
            if let Some(s) = run.iter().find(|s| u32::try_from(s.data.len()).is_err()) {
                return Err(Error::invalid(format!(
                    "MP4 fragment: track {id} sample at {} is larger than 4 GiB",
                    s.decode_time
                )));
            }
        }
        Ok(())
    }

    /// Bytes written so far: header and all complete fragments.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// The output, e.g. to fsync a file between fragments.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Gives the output back. Nothing needs finalising: the file is complete
    /// after every fragment.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// `Write::write_all` for several buffers (std's is unstable): writes them
/// all, in order, in as few calls as the output allows.
fn write_all_vectored(out: &mut impl Write, mut bufs: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match out.write_vectored(bufs) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::test_util;
    use crate::mp4::{Codec, read};

    fn writer() -> FragmentedWriter<Vec<u8>> {
        FragmentedWriter::new(Vec::new(), test_util::h264_aac_tracks(), 1_700_000_000).unwrap()
    }

    fn video(decode_time: u64, data: &[u8]) -> Sample<'_> {
        Sample {
            track: 1,
            decode_time,
            duration: 3600,
            composition_offset: 0,
            keyframe: true,
            data,
        }
    }

    #[test]
    fn header_alone_is_a_valid_empty_file() {
        let w = writer();
        let len = w.bytes_written();
        let bytes = w.into_inner();
        assert_eq!(bytes.len() as u64, len);
        let info = read::parse(&bytes).unwrap();
        assert_eq!(info.tracks.len(), 2);
        assert!(info.samples.is_empty());
        assert_eq!((info.complete_len, info.truncated), (len, false));
        assert_eq!((info.tracks[0].width, info.tracks[0].height), (320, 240));
        assert_eq!(&bytes[4..8], b"ftyp");
        assert_eq!(&bytes[8..12], b"isom");
    }

    #[test]
    fn size_comes_from_the_sps_not_the_caps() {
        let mut tracks = test_util::h264_aac_tracks();
        tracks[0].width = 1;
        tracks[0].height = 2;
        let w = FragmentedWriter::new(Vec::new(), tracks, 0).unwrap();
        let info = read::parse(&w.into_inner()).unwrap();
        assert_eq!((info.tracks[0].width, info.tracks[0].height), (320, 240));
    }

    #[test]
    fn fragments_round_trip_through_the_reader() {
        let samples = test_util::synthetic_recording(3, 0);
        let written = test_util::write_fragmented(&samples, 500);
        assert_eq!(written.fragments.len(), 6);
        let info = read::parse(&written.bytes).unwrap();
        assert_eq!(
            (info.complete_len, info.truncated),
            (written.bytes.len() as u64, false)
        );
        test_util::assert_same_samples(&info, &written.bytes, &written.in_file_order);
        assert_eq!(info.frame_count(1), 75);
        assert_eq!(info.keyframe_count(1), 3);
        assert_eq!(info.first_decode_time(1), Some(0));
        assert_eq!(info.total_duration(1), 75 * 3600);
        assert_eq!(
            info.frame_count(2),
            samples.iter().filter(|s| s.track == 2).count()
        );
        assert_eq!(info.total_duration(2), 1024 * info.frame_count(2) as u64);
    }

    #[test]
    fn cut_at_every_byte_keeps_exactly_the_complete_fragments() {
        let samples = test_util::synthetic_recording(2, 0);
        let written = test_util::write_fragmented(&samples, 250);
        let bytes = &written.bytes;
        let header_len = written.fragments[0].start;
        for cut in 0..=bytes.len() {
            let info = read::parse(&bytes[..cut]).unwrap();
            let cut = cut as u64;
            let (complete_len, n) = match written.fragments.iter().rev().find(|f| f.end <= cut) {
                Some(f) => (f.end, f.samples_through),
                None if cut >= header_len => (header_len, 0),
                None => (0, 0),
            };
            assert_eq!(info.complete_len, complete_len, "cut at {cut}");
            assert_eq!(info.truncated, cut > complete_len, "cut at {cut}");
            assert_eq!(info.samples.len(), n, "cut at {cut}");
            assert_eq!(
                info.tracks.len(),
                if cut >= header_len { 2 } else { 0 },
                "cut at {cut}"
            );
            if cut.is_multiple_of(97) {
                test_util::assert_same_samples(&info, bytes, &written.in_file_order[..n]);
            }
        }
    }

    #[test]
    fn composition_offsets_and_non_sync_flags_survive() {
        let mut w = writer();
        let data = [0u8, 0, 0, 1, 0x65];
        let frames = [
            Sample {
                composition_offset: 7200,
                ..video(0, &data)
            },
            Sample {
                composition_offset: 14_400,
                keyframe: false,
                ..video(3600, &data)
            },
            Sample {
                composition_offset: -3600,
                keyframe: false,
                ..video(7200, &data)
            },
        ];
        w.write_fragment(&frames).unwrap();
        let bytes = w.into_inner();
        let info = read::parse(&bytes).unwrap();
        let got: Vec<(u64, i32, bool)> = info
            .samples
            .iter()
            .map(|s| (s.decode_time, s.composition_offset, s.keyframe))
            .collect();
        assert_eq!(
            got,
            [(0, 7200, true), (3600, 14_400, false), (7200, -3600, false)]
        );
    }

    #[test]
    fn rejects_what_a_trun_cannot_say() {
        let data = [1u8; 4];
        let mut w = writer();
        let gap = [video(0, &data), video(4000, &data)];
        assert_eq!(
            w.write_fragment(&gap).unwrap_err().kind,
            ErrorKind::InvalidInput
        );
        let audio = Sample {
            track: 2,
            decode_time: 0,
            duration: 1024,
            ..video(0, &data)
        };
        let interleaved = [video(0, &data), audio, video(3600, &data)];
        assert_eq!(
            w.write_fragment(&interleaved).unwrap_err().kind,
            ErrorKind::InvalidInput
        );
        let unknown = [Sample {
            track: 3,
            ..video(0, &data)
        }];
        assert_eq!(
            w.write_fragment(&unknown).unwrap_err().kind,
            ErrorKind::InvalidInput
        );
        // Nothing was written by the refused calls; a good fragment still goes.
        let header = w.bytes_written();
        w.write_fragment(&[video(3600, &data)]).unwrap();
        let overlap = [video(0, &data)];
        assert_eq!(
            w.write_fragment(&overlap).unwrap_err().kind,
            ErrorKind::InvalidInput
        );
        assert_eq!(w.write_fragment(&[]).unwrap(), 0);
        let bytes = w.into_inner();
        assert!(bytes.len() as u64 > header);
        assert_eq!(read::parse(&bytes).unwrap().samples.len(), 1);
    }

    #[test]
    fn rejects_bad_track_specs() {
        let bad_avcc = vec![TrackSpec::video(Codec::H264 { avcc: vec![0; 3] }, 320, 240)];
        let err = FragmentedWriter::new(Vec::new(), bad_avcc, 0)
            .err()
            .unwrap();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        let no_rate = vec![TrackSpec::audio(Codec::Pcma, 0, 1)];
        assert!(FragmentedWriter::new(Vec::new(), no_rate, 0).is_err());
        assert!(FragmentedWriter::new(Vec::new(), vec![], 0).is_err());
    }

    /// An output that takes at most 7 bytes per call, across buffers.
    struct Trickle(Vec<u8>);
    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = buf.len().min(7);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
            let mut n = 0;
            for b in bufs {
                let k = b.len().min(7 - n);
                self.0.extend_from_slice(&b[..k]);
                n += k;
                if n == 7 {
                    break;
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_output_that_takes_part_of_each_write_gets_the_same_bytes() {
        let tracks = test_util::h264_aac_tracks;
        let mut whole = FragmentedWriter::new(Vec::new(), tracks(), 5).unwrap();
        let mut trickle = FragmentedWriter::new(Trickle(Vec::new()), tracks(), 5).unwrap();
        let (a, b): (Vec<u8>, Vec<u8>) = ((0..100).collect(), (100..=255).collect());
        for w in [0u64, 7200] {
            let samples = [video(w, &a), video(w + 3600, &b)];
            let n = whole.write_fragment(&samples).unwrap();
            assert_eq!(trickle.write_fragment(&samples).unwrap(), n);
        }
        assert_eq!(trickle.bytes_written(), whole.bytes_written());
        let (whole, trickle) = (whole.into_inner(), trickle.into_inner().0);
        assert_eq!(trickle, whole);
        let info = read::parse(&whole).unwrap();
        assert_eq!(info.samples.len(), 4);
        assert!(!info.truncated);
    }

    #[test]
    fn a_failed_write_poisons_the_writer() {
        struct FailAfter(usize);
        impl Write for FailAfter {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if self.0 < buf.len() {
                    return Err(std::io::Error::other("disk full"));
                }
                self.0 -= buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut w =
            FragmentedWriter::new(FailAfter(2000), test_util::h264_aac_tracks(), 0).unwrap();
        let data = vec![0u8; 4000];
        assert!(w.write_fragment(&[video(0, &data)]).is_err());
        let err = w.write_fragment(&[video(3600, &data[..1])]).unwrap_err();
        assert!(err.message.contains("start a new file"), "{err}");
    }

    #[test]
    fn pcm_tracks_round_trip() {
        let tracks = vec![
            TrackSpec::audio(Codec::Pcma, 8000, 1),
            TrackSpec::audio(Codec::Pcmu, 8000, 1),
        ];
        let mut w = FragmentedWriter::new(Vec::new(), tracks, 0).unwrap();
        let data = [0xd5u8; 160];
        let a = Sample {
            track: 1,
            decode_time: 0,
            duration: 160,
            composition_offset: 0,
            keyframe: true,
            data: &data,
        };
        w.write_fragment(&[a, Sample { track: 2, ..a }]).unwrap();
        let info = read::parse(&w.into_inner()).unwrap();
        assert_eq!(info.tracks[0].codec, Codec::Pcma);
        assert_eq!(info.tracks[1].codec, Codec::Pcmu);
        assert_eq!(
            (info.tracks[0].sample_rate, info.tracks[0].channels),
            (8000, 1)
        );
        assert_eq!(info.samples.len(), 2);
    }
}
