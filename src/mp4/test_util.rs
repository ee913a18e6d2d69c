//! Test fixtures: decoder configurations and synthetic recordings.

use super::read::Mp4Info;
use super::write::FragmentedWriter;
use super::{Codec, Sample, TrackSpec};

/// An AVCDecoderConfigurationRecord written by hand around a minimal
/// Baseline SPS for 320x240 and its PPS.
pub(crate) fn avcc_320x240() -> Vec<u8> {
    #[rustfmt::skip]
    let avcc = vec![
        1, 66, 0xc0, 13,    // version 1, Baseline, constraint_set0/1, level 1.3
        0xff,               // 4-byte NAL lengths
        0xe1, 0, 8,         // one SPS, 8 bytes:
        0x67, 66, 0xc0, 13, // NAL header, profile, constraints, level, then
        // ue sps_id 0, ue log2_max_frame_num-4 0, ue poc_type 2, ue refs 1,
        // gaps 0, ue width_mbs-1 19, ue height_map_units-1 14, frame_mbs_only 1,
        // direct_8x8 1, no cropping, no VUI, stop bit.
        0xda, 0x05, 0x07, 0xe4,
        1, 0, 4,            // one PPS, 4 bytes
        0x68, 0xce, 0x3c, 0x80,
    ];
    avcc
}

/// The HEVCDecoderConfigurationRecord x265 produced for 1920x1080 (caps
/// `codec_data`), which needs the conformance window (1088 coded lines).
pub(crate) fn hvcc_1920x1080() -> Vec<u8> {
    hex::decode(concat!(
        "01016000000090000000000078f000fcfdf8f800000f03200001001840010c01ffff01600000030090000003",
        "00000300789594092100010032420101016000000300900000030000030078a003c0801107cb965654a4c2ff",
        "f000100016a020202080000003008000000f0422000100064401c073c189",
    ))
    .unwrap()
}

/// AAC-LC, 48 kHz, mono.
pub(crate) const ASC_48K_MONO: [u8; 2] = [0x11, 0x88];

pub(crate) fn h264_aac_tracks() -> Vec<TrackSpec> {
    vec![
        TrackSpec::video(
            Codec::H264 {
                avcc: avcc_320x240(),
            },
            320,
            240,
        ),
        TrackSpec::audio(
            Codec::Aac {
                asc: ASC_48K_MONO.to_vec(),
            },
            48_000,
            1,
        ),
    ]
}

/// An owned [`Sample`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TestSample {
    pub track: u32,
    pub decode_time: u64,
    pub duration: u32,
    pub composition_offset: i32,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

impl TestSample {
    pub fn as_sample(&self) -> Sample<'_> {
        Sample {
            track: self.track,
            decode_time: self.decode_time,
            duration: self.duration,
            composition_offset: self.composition_offset,
            keyframe: self.keyframe,
            data: &self.data,
        }
    }
}

/// `seconds` of 25 fps H.264-like video (track 1, a keyframe each second,
/// B-frame-like composition offsets) and AAC-like frames (track 2, 1024
/// samples at 48 kHz, starting at `audio_start`), interleaved by time.
/// Payloads are small and distinct so byte comparisons mean something.
pub(crate) fn synthetic_recording(seconds: u32, audio_start: u64) -> Vec<TestSample> {
    let mut video = Vec::new();
    for i in 0..seconds * 25 {
        let keyframe = i % 25 == 0;
        let len = if keyframe {
            300
        } else {
            40 + (i * 37 % 90) as usize
        };
        let mut data = Vec::with_capacity(len + 5);
        data.extend_from_slice(&(len as u32 + 1).to_be_bytes());
        data.push(if keyframe { 0x65 } else { 0x41 });
        data.extend((0..len).map(|j| (i as usize * 7 + j) as u8));
        video.push(TestSample {
            track: 1,
            decode_time: u64::from(i) * 3600,
            duration: 3600,
            composition_offset: if keyframe {
                7200
            } else {
                [3600, 10_800, 0][i as usize % 3]
            },
            keyframe,
            data,
        });
    }
    let mut audio = Vec::new();
    let mut t = audio_start;
    let mut i = 0usize;
    while t + 1024 <= u64::from(seconds) * 48_000 {
        let len = 20 + i % 13;
        audio.push(TestSample {
            track: 2,
            decode_time: t,
            duration: 1024,
            composition_offset: 0,
            keyframe: true,
            data: (0..len).map(|j| (i * 3 + j + 128) as u8).collect(),
        });
        t += 1024;
        i += 1;
    }
    let mut all: Vec<TestSample> = video.into_iter().chain(audio).collect();
    // By time in seconds; stable, so each track keeps its order.
    let ts = |s: &TestSample| if s.track == 1 { 90_000 } else { 48_000 };
    all.sort_by(|a, b| (a.decode_time * ts(b)).cmp(&(b.decode_time * ts(a))));
    all
}

pub(crate) struct Written {
    pub bytes: Vec<u8>,
    pub fragments: Vec<FragmentSpan>,
    /// The samples in the order the file holds them (fragment, then track).
    pub in_file_order: Vec<TestSample>,
}

pub(crate) struct FragmentSpan {
    pub start: u64,
    pub end: u64,
    /// Samples in this and all earlier fragments.
    pub samples_through: usize,
}

/// `samples` as the progressive writer takes them; each one's source is its
/// index in `samples`.
pub(crate) fn sample_refs(samples: &[TestSample]) -> Vec<super::progressive::SampleRef<usize>> {
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| super::progressive::SampleRef {
            track: s.track,
            decode_time: s.decode_time,
            duration: s.duration,
            composition_offset: s.composition_offset,
            keyframe: s.keyframe,
            size: s.data.len() as u32,
            source: i,
        })
        .collect()
}

/// Writes `samples` of `tracks` as a progressive file (an export's form) to
/// `out`; returns its length.
pub(crate) fn write_progressive(
    out: impl std::io::Write,
    tracks: &[TrackSpec],
    samples: &[TestSample],
) -> u64 {
    let refs = sample_refs(samples);
    super::progressive::write(out, tracks, refs, 1_700_000_000, |r, buf| {
        buf.copy_from_slice(&samples[r.source].data);
        Ok(())
    })
    .unwrap()
}

/// Writes `samples` (of [`h264_aac_tracks`]) as a fragmented file with one
/// fragment per `fragment_ms` of time, as the recorder would.
pub(crate) fn write_fragmented(samples: &[TestSample], fragment_ms: u64) -> Written {
    write_fragmented_tracks(h264_aac_tracks(), samples, fragment_ms)
}

/// [`write_fragmented`] for any tracks; each track's samples in decode order.
pub(crate) fn write_fragmented_tracks(
    tracks: Vec<TrackSpec>,
    samples: &[TestSample],
    fragment_ms: u64,
) -> Written {
    let timescales: Vec<u64> = tracks.iter().map(|t| u64::from(t.timescale)).collect();
    let ms = |s: &TestSample| s.decode_time * 1000 / timescales[s.track as usize - 1];
    let mut w = FragmentedWriter::new(Vec::new(), tracks, 1_700_000_000).unwrap();
    let mut fragments = Vec::new();
    let mut in_file_order = Vec::new();
    let last_ms = samples.iter().map(ms).max().unwrap_or(0);
    for k in 0..=last_ms / fragment_ms {
        let in_window = |s: &&TestSample| ms(s) / fragment_ms == k;
        let mut group: Vec<&TestSample> = samples.iter().filter(in_window).collect();
        group.sort_by_key(|s| s.track); // stable: decode order within a track
        let start = w.bytes_written();
        let batch: Vec<Sample> = group.iter().map(|s| s.as_sample()).collect();
        let len = w.write_fragment(&batch).unwrap();
        if len > 0 {
            in_file_order.extend(group.into_iter().cloned());
            fragments.push(FragmentSpan {
                start,
                end: start + len,
                samples_through: in_file_order.len(),
            });
        }
    }
    Written {
        bytes: w.into_inner(),
        fragments,
        in_file_order,
    }
}

/// Asserts `info` lists exactly `expected`, in order, with their bytes.
pub(crate) fn assert_same_samples(info: &Mp4Info, file: &[u8], expected: &[TestSample]) {
    assert_eq!(info.samples.len(), expected.len(), "sample count");
    for (i, (got, want)) in info.samples.iter().zip(expected).enumerate() {
        let got_owned = TestSample {
            track: got.track,
            decode_time: got.decode_time,
            duration: got.duration,
            composition_offset: got.composition_offset,
            keyframe: got.keyframe,
            data: info
                .sample_data(file, got)
                .expect("sample bytes in file")
                .to_vec(),
        };
        assert_eq!(&got_owned, want, "sample {i}");
    }
}

/// The samples `info` lists, with their bytes from `file`, each track in
/// decode order (tracks in `info` order).
pub(crate) fn samples_of(info: &Mp4Info, file: &[u8]) -> Vec<TestSample> {
    let mut out = Vec::new();
    for t in &info.tracks {
        let mut samples: Vec<_> = info.samples.iter().filter(|s| s.track == t.id).collect();
        samples.sort_by_key(|s| s.decode_time);
        out.extend(samples.into_iter().map(|s| {
            TestSample {
                track: s.track,
                decode_time: s.decode_time,
                duration: s.duration,
                composition_offset: s.composition_offset,
                keyframe: s.keyframe,
                data: info
                    .sample_data(file, s)
                    .expect("sample bytes in file")
                    .to_vec(),
            }
        }));
    }
    out
}
