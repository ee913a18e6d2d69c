//! Byte-level box writing: one function per box, no policy.
//!
//! Layouts follow ISO/IEC 14496-12 (ISO BMFF), 14496-15 (AVC/HEVC sample
//! entries) and 14496-1 (the `esds` descriptors); G.711 uses QuickTime's
//! version-0 sound sample description, which ffmpeg and qtdemux both read.
//! Callers decide *what* to write (`write.rs`, `progressive.rs`); these
//! functions only lay out the bytes. Every box size is patched when the box is
//! closed, so no function here needs to know its own length in advance.

use super::{Codec, Sample, TrackSpec};
use crate::{Error, Result};

/// `tfhd` flag: offsets in `trun` count from the start of the enclosing `moof`.
pub(crate) const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;

pub(crate) const TRUN_DATA_OFFSET: u32 = 0x0001;
pub(crate) const TRUN_SAMPLE_DURATION: u32 = 0x0100;
pub(crate) const TRUN_SAMPLE_SIZE: u32 = 0x0200;
pub(crate) const TRUN_SAMPLE_FLAGS: u32 = 0x0400;
pub(crate) const TRUN_SAMPLE_CTO: u32 = 0x0800;

/// Sample flags (14496-12 8.8.3.1) of a sync sample: depends on no other
/// sample (`sample_depends_on` = 2), `sample_is_non_sync_sample` clear.
pub(crate) const SAMPLE_FLAGS_SYNC: u32 = 0x0200_0000;
/// A sample that depends on others (`sample_depends_on` = 1) and is non-sync.
pub(crate) const SAMPLE_FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// The identity transformation matrix of `mvhd` and `tkhd`.
const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Appends boxes to a caller-owned buffer (so its capacity is reused across
/// fragments), reserving each size field at [`begin`](Self::begin) and
/// patching it at [`end`](Self::end).
pub(crate) struct BoxWriter<'a> {
    buf: &'a mut Vec<u8>,
    /// Set when a closed box did not fit a 32-bit size; reported by `finish`.
    too_big: bool,
}

/// A box whose size field still needs patching; hand it back to `end`.
#[must_use = "an open box must be closed with BoxWriter::end"]
pub(crate) struct Open(usize);

impl<'a> BoxWriter<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        BoxWriter {
            buf,
            too_big: false,
        }
    }

    pub fn begin(&mut self, fourcc: &[u8; 4]) -> Open {
        let start = self.buf.len();
        self.u32(0);
        self.bytes(fourcc);
        Open(start)
    }

    /// Opens a "full box": a box with a version byte and 24 bits of flags.
    pub fn begin_full(&mut self, fourcc: &[u8; 4], version: u8, flags: u32) -> Open {
        let open = self.begin(fourcc);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        open
    }

    pub fn end(&mut self, open: Open) {
        let len = self.buf.len() - open.0;
        let len = u32::try_from(len).unwrap_or_else(|_| {
            self.too_big = true;
            0
        });
        self.patch_u32(open.0, len);
    }

    /// Fails if any box outgrew its 32-bit size field (only a `moov` of
    /// hundreds of millions of samples could).
    pub fn finish(self) -> Result<()> {
        if self.too_big {
            return Err(Error::invalid(
                "MP4 box larger than 4 GiB; split the recording",
            ));
        }
        Ok(())
    }

    pub fn pos(&self) -> usize {
        self.buf.len()
    }

    pub fn patch_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }
    pub fn i16(&mut self, v: i16) {
        self.bytes(&v.to_be_bytes());
    }
    pub fn u24(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes()[1..]);
    }
    pub fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.bytes(&v.to_be_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_be_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.bytes(&v.to_be_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }
}

pub(crate) fn ftyp(w: &mut BoxWriter, major: &[u8; 4], compatible: &[&[u8; 4]]) {
    let b = w.begin(b"ftyp");
    w.bytes(major);
    w.u32(0); // minor_version
    for brand in compatible {
        w.bytes(*brand);
    }
    w.end(b);
}

/// Brands for a file holding `tracks`: `isom` plus what its codecs need.
pub(crate) fn compatible_brands(tracks: &[TrackSpec], fragmented: bool) -> Vec<&'static [u8; 4]> {
    let mut brands: Vec<&'static [u8; 4]> = vec![b"isom"];
    brands.push(if fragmented { b"iso6" } else { b"iso2" });
    brands.push(b"mp41");
    if tracks.iter().any(|t| matches!(t.codec, Codec::H264 { .. })) {
        brands.push(b"avc1");
    }
    if tracks.iter().any(|t| matches!(t.codec, Codec::H265 { .. })) {
        brands.push(b"hvc1");
    }
    brands
}

/// Movie header, version 1 (64-bit times, valid past 2040).
pub(crate) fn mvhd(
    w: &mut BoxWriter,
    creation: u64,
    timescale: u32,
    duration: u64,
    next_track_id: u32,
) {
    let b = w.begin_full(b"mvhd", 1, 0);
    w.u64(creation);
    w.u64(creation); // modification_time
    w.u32(timescale);
    w.u64(duration);
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(2 + 8); // reserved
    matrix(w);
    w.zeros(24); // pre_defined
    w.u32(next_track_id);
    w.end(b);
}

fn matrix(w: &mut BoxWriter) {
    for v in UNITY_MATRIX {
        w.u32(v);
    }
}

/// An edit list: the track starts `delay` after the movie does (an empty
/// edit, if non-zero), then plays its media from the start for `duration`.
/// Both in the movie timescale.
pub(crate) struct Edit {
    pub delay: u64,
    pub duration: u64,
}

/// Sample tables of a progressive file; all empty for a fragmented one.
#[derive(Debug, Default)]
pub(crate) struct SampleTables {
    /// `stts` runs: (sample_count, sample_delta).
    pub stts: Vec<(u32, u32)>,
    /// `ctts` runs: (sample_count, offset); empty means no `ctts` box.
    pub ctts: Vec<(u32, i32)>,
    /// 1-based numbers of the sync samples; `None` means every sample is sync.
    pub sync: Option<Vec<u32>>,
    /// `stsc` runs: (first_chunk, samples_per_chunk), chunks numbered from 1.
    pub stsc: Vec<(u32, u32)>,
    pub sizes: Vec<u32>,
    pub chunk_offsets: Vec<u64>,
    /// Write `co64` instead of `stco` (some offset is past 4 GiB).
    pub co64: bool,
}

pub(crate) struct Trak<'a> {
    pub id: u32,
    pub spec: &'a TrackSpec,
    /// Picture size to state in `tkhd` and the sample entry.
    pub width: u16,
    pub height: u16,
    /// MP4-epoch seconds.
    pub creation: u64,
    /// In the movie timescale (0 for fragmented files).
    pub duration: u64,
    /// In the track timescale.
    pub media_duration: u64,
    pub edit: Option<Edit>,
    pub tables: &'a SampleTables,
}

pub(crate) fn trak(w: &mut BoxWriter, t: &Trak) {
    let b = w.begin(b"trak");
    tkhd(w, t);
    if let Some(edit) = &t.edit {
        edts(w, edit);
    }
    mdia(w, t);
    w.end(b);
}

fn tkhd(w: &mut BoxWriter, t: &Trak) {
    // Flags: track_enabled | track_in_movie.
    let b = w.begin_full(b"tkhd", 1, 0x3);
    w.u64(t.creation);
    w.u64(t.creation);
    w.u32(t.id);
    w.u32(0); // reserved
    w.u64(t.duration);
    w.zeros(8); // reserved
    w.i16(0); // layer
    w.i16(0); // alternate_group
    let audio = !t.spec.codec.is_video() && !t.spec.codec.is_text();
    w.u16(if audio { 0x0100 } else { 0 }); // volume
    w.u16(0); // reserved
    matrix(w);
    w.u32(u32::from(t.width) << 16);
    w.u32(u32::from(t.height) << 16);
    w.end(b);
}

fn edts(w: &mut BoxWriter, edit: &Edit) {
    let b = w.begin(b"edts");
    let l = w.begin_full(b"elst", 1, 0);
    let empty = edit.delay > 0;
    w.u32(1 + u32::from(empty));
    if empty {
        w.u64(edit.delay);
        w.i64(-1); // media_time -1: nothing plays
        w.u32(0x0001_0000); // media_rate 1.0
    }
    w.u64(edit.duration);
    w.i64(0);
    w.u32(0x0001_0000);
    w.end(l);
    w.end(b);
}

fn mdia(w: &mut BoxWriter, t: &Trak) {
    let b = w.begin(b"mdia");
    mdhd(w, t.creation, t.spec.timescale, t.media_duration);
    // `sbtl` for tx3g, as ffmpeg's mp4 muxer writes it; qtdemux, ffmpeg
    // and VLC read it as a subtitle track.
    let (handler, name) = match &t.spec.codec {
        c if c.is_video() => (b"vide", "VideoHandler"),
        c if c.is_text() => (b"sbtl", "SubtitleHandler"),
        _ => (b"soun", "SoundHandler"),
    };
    hdlr(w, handler, name);
    minf(w, t);
    w.end(b);
}

fn mdhd(w: &mut BoxWriter, creation: u64, timescale: u32, duration: u64) {
    let b = w.begin_full(b"mdhd", 1, 0);
    w.u64(creation);
    w.u64(creation);
    w.u32(timescale);
    w.u64(duration);
    w.u16(0x55c4); // language "und", packed ISO-639-2/T
    w.u16(0); // pre_defined
    w.end(b);
}

fn hdlr(w: &mut BoxWriter, handler: &[u8; 4], name: &str) {
    let b = w.begin_full(b"hdlr", 0, 0);
    w.u32(0); // pre_defined
    w.bytes(handler);
    w.zeros(12); // reserved
    w.bytes(name.as_bytes());
    w.u8(0);
    w.end(b);
}

fn minf(w: &mut BoxWriter, t: &Trak) {
    let b = w.begin(b"minf");
    if t.spec.codec.is_video() {
        let v = w.begin_full(b"vmhd", 0, 1);
        w.u16(0); // graphicsmode: copy
        w.zeros(6); // opcolor
        w.end(v);
    } else if t.spec.codec.is_text() {
        let n = w.begin_full(b"nmhd", 0, 0);
        w.end(n);
    } else {
        let s = w.begin_full(b"smhd", 0, 0);
        w.i16(0); // balance
        w.u16(0); // reserved
        w.end(s);
    }
    dinf(w);
    stbl(w, t);
    w.end(b);
}

/// A data reference saying "the media is in this file".
fn dinf(w: &mut BoxWriter) {
    let b = w.begin(b"dinf");
    let d = w.begin_full(b"dref", 0, 0);
    w.u32(1);
    let u = w.begin_full(b"url ", 0, 1); // flag 1: self-contained
    w.end(u);
    w.end(d);
    w.end(b);
}

fn stbl(w: &mut BoxWriter, t: &Trak) {
    let b = w.begin(b"stbl");
    stsd(w, t);
    let tables = t.tables;
    stts(w, &tables.stts);
    if !tables.ctts.is_empty() {
        ctts(w, &tables.ctts);
    }
    if let Some(sync) = &tables.sync {
        stss(w, sync);
    }
    stsc(w, &tables.stsc);
    stsz(w, &tables.sizes);
    chunk_offsets(w, &tables.chunk_offsets, tables.co64);
    w.end(b);
}

fn stsd(w: &mut BoxWriter, t: &Trak) {
    let b = w.begin_full(b"stsd", 0, 0);
    w.u32(1); // entry_count
    match &t.spec.codec {
        Codec::H264 { avcc } => visual_sample_entry(w, b"avc1", b"avcC", avcc, t.width, t.height),
        Codec::H265 { hvcc } => visual_sample_entry(w, b"hvc1", b"hvcC", hvcc, t.width, t.height),
        Codec::Aac { asc } => {
            let e = audio_sample_entry(w, b"mp4a", t.spec);
            esds(w, t.id, asc);
            w.end(e);
        }
        Codec::Pcma => {
            let e = audio_sample_entry(w, b"alaw", t.spec);
            w.end(e);
        }
        Codec::Pcmu => {
            let e = audio_sample_entry(w, b"ulaw", t.spec);
            w.end(e);
        }
        Codec::Tx3g => text_sample_entry(w),
    }
    w.end(b);
}

/// `avc1`/`hvc1` with the caps' decoder configuration record as its child.
fn visual_sample_entry(
    w: &mut BoxWriter,
    fourcc: &[u8; 4],
    config_fourcc: &[u8; 4],
    config: &[u8],
    width: u16,
    height: u16,
) {
    let b = w.begin(fourcc);
    w.zeros(6); // reserved
    w.u16(1); // data_reference_index
    w.zeros(2 + 2 + 12); // pre_defined, reserved, pre_defined
    w.u16(width);
    w.u16(height);
    w.u32(0x0048_0000); // horizresolution 72 dpi
    w.u32(0x0048_0000); // vertresolution
    w.u32(0); // reserved
    w.u16(1); // frame_count
    w.zeros(32); // compressorname: empty Pascal string
    w.u16(0x0018); // depth
    w.i16(-1); // pre_defined
    let c = w.begin(config_fourcc);
    w.bytes(config);
    w.end(c);
    w.end(b);
}

/// `tx3g` (3GPP TS 26.245 5.16): white 18 px sans text, left and top,
/// on a transparent background; players place it themselves.
fn text_sample_entry(w: &mut BoxWriter) {
    let b = w.begin(b"tx3g");
    w.zeros(6); // reserved
    w.u16(1); // data_reference_index
    w.u32(0); // displayFlags
    w.u8(0); // horizontal-justification: left
    w.u8(0); // vertical-justification: top
    w.u32(0); // background-color-rgba: transparent
    w.zeros(8); // default-text-box: top, left, bottom, right
    w.u16(0); // StyleRecord startChar
    w.u16(0); // endChar
    w.u16(1); // font-ID
    w.u8(0); // face-style-flags: plain
    w.u8(18); // font-size
    w.u32(0xffff_ffff); // text-color-rgba: opaque white
    let f = w.begin(b"ftab");
    w.u16(1); // entry-count
    w.u16(1); // font-ID
    w.u8(4);
    w.bytes(b"Sans");
    w.end(f);
    w.end(b);
}

/// The fields shared by ISO's AudioSampleEntry and QuickTime's version-0
/// sound description; the caller adds children and closes the box.
fn audio_sample_entry(w: &mut BoxWriter, fourcc: &[u8; 4], spec: &TrackSpec) -> Open {
    let b = w.begin(fourcc);
    w.zeros(6); // reserved
    w.u16(1); // data_reference_index
    w.zeros(8); // version, revision, vendor (QuickTime) / reserved (ISO)
    w.u16(spec.channels);
    w.u16(16); // samplesize
    w.u16(0); // pre_defined / compression_id
    w.u16(0); // reserved / packet_size
    // 16.16 fixed point; rates above 65535 Hz do not fit and are left for the
    // decoder configuration (and the media timescale) to state.
    let rate = u16::try_from(spec.sample_rate).unwrap_or(0);
    w.u32(u32::from(rate) << 16);
    b
}

/// Elementary stream descriptor (14496-1 7.2.6.5) carrying the
/// AudioSpecificConfig.
fn esds(w: &mut BoxWriter, es_id: u32, asc: &[u8]) {
    const ES_DESCR_TAG: u8 = 0x03;
    const DECODER_CONFIG_DESCR_TAG: u8 = 0x04;
    const DECODER_SPECIFIC_INFO_TAG: u8 = 0x05;
    const SL_CONFIG_DESCR_TAG: u8 = 0x06;
    const OBJECT_TYPE_AAC: u8 = 0x40; // Audio ISO/IEC 14496-3
    const STREAM_TYPE_AUDIO: u8 = 0x05;

    let decoder_config_payload = 13 + descriptor_len(asc.len());
    let es_payload = 3 + descriptor_len(decoder_config_payload) + descriptor_len(1);

    let b = w.begin_full(b"esds", 0, 0);
    descriptor_header(w, ES_DESCR_TAG, es_payload);
    w.u16(u16::try_from(es_id).unwrap_or(0));
    w.u8(0); // no stream dependence, URL or OCR stream
    descriptor_header(w, DECODER_CONFIG_DESCR_TAG, decoder_config_payload);
    w.u8(OBJECT_TYPE_AAC);
    w.u8((STREAM_TYPE_AUDIO << 2) | 0x01); // upStream 0, reserved 1
    w.u24(0); // bufferSizeDB: unknown
    w.u32(0); // maxBitrate: unknown
    w.u32(0); // avgBitrate: 0 means variable
    descriptor_header(w, DECODER_SPECIFIC_INFO_TAG, asc.len());
    w.bytes(asc);
    descriptor_header(w, SL_CONFIG_DESCR_TAG, 1);
    w.u8(0x02); // predefined: reserved for use in MP4 files
    w.end(b);
}

/// Total length of a descriptor with `payload` bytes, header included.
fn descriptor_len(payload: usize) -> usize {
    descriptor_size_bytes(payload) + 1 + payload
}

/// Bytes of the expandable size field (7 bits per byte) for `payload`.
fn descriptor_size_bytes(payload: usize) -> usize {
    match payload {
        0..0x80 => 1,
        0x80..0x4000 => 2,
        0x4000..0x20_0000 => 3,
        _ => 4,
    }
}

fn descriptor_header(w: &mut BoxWriter, tag: u8, payload: usize) {
    w.u8(tag);
    let n = descriptor_size_bytes(payload);
    for i in (0..n).rev() {
        let more = if i > 0 { 0x80 } else { 0 };
        w.u8(more | ((payload >> (7 * i)) & 0x7f) as u8);
    }
}

fn stts(w: &mut BoxWriter, runs: &[(u32, u32)]) {
    let b = w.begin_full(b"stts", 0, 0);
    w.u32(runs.len() as u32);
    for &(count, delta) in runs {
        w.u32(count);
        w.u32(delta);
    }
    w.end(b);
}

/// Version 0 when every offset is non-negative (what older readers expect),
/// version 1 (signed) otherwise.
fn ctts(w: &mut BoxWriter, runs: &[(u32, i32)]) {
    let version = u8::from(runs.iter().any(|&(_, o)| o < 0));
    let b = w.begin_full(b"ctts", version, 0);
    w.u32(runs.len() as u32);
    for &(count, offset) in runs {
        w.u32(count);
        w.i32(offset);
    }
    w.end(b);
}

fn stss(w: &mut BoxWriter, sync: &[u32]) {
    let b = w.begin_full(b"stss", 0, 0);
    w.u32(sync.len() as u32);
    for &n in sync {
        w.u32(n);
    }
    w.end(b);
}

fn stsc(w: &mut BoxWriter, runs: &[(u32, u32)]) {
    let b = w.begin_full(b"stsc", 0, 0);
    w.u32(runs.len() as u32);
    for &(first_chunk, samples_per_chunk) in runs {
        w.u32(first_chunk);
        w.u32(samples_per_chunk);
        w.u32(1); // sample_description_index
    }
    w.end(b);
}

/// Always the full table, even when sizes agree: qtdemux reads a constant
/// `sample_size` on a PCM track as bytes per audio sample, not per packet.
fn stsz(w: &mut BoxWriter, sizes: &[u32]) {
    let b = w.begin_full(b"stsz", 0, 0);
    w.u32(0); // sample_size: see the table
    w.u32(sizes.len() as u32);
    for &s in sizes {
        w.u32(s);
    }
    w.end(b);
}

fn chunk_offsets(w: &mut BoxWriter, offsets: &[u64], co64: bool) {
    let b = w.begin_full(if co64 { b"co64" } else { b"stco" }, 0, 0);
    w.u32(offsets.len() as u32);
    for &o in offsets {
        if co64 {
            w.u64(o);
        } else {
            w.u32(o as u32);
        }
    }
    w.end(b);
}

/// Declares the file fragmented, with no defaults: every `trun` states its
/// samples' durations, sizes and flags.
pub(crate) fn mvex(w: &mut BoxWriter, track_ids: impl Iterator<Item = u32>) {
    let b = w.begin(b"mvex");
    for id in track_ids {
        let t = w.begin_full(b"trex", 0, 0);
        w.u32(id);
        w.u32(1); // default_sample_description_index
        w.u32(0); // default_sample_duration
        w.u32(0); // default_sample_size
        w.u32(0); // default_sample_flags
        w.end(t);
    }
    w.end(b);
}

pub(crate) fn mfhd(w: &mut BoxWriter, sequence_number: u32) {
    let b = w.begin_full(b"mfhd", 0, 0);
    w.u32(sequence_number);
    w.end(b);
}

pub(crate) fn tfhd(w: &mut BoxWriter, track_id: u32) {
    let b = w.begin_full(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF);
    w.u32(track_id);
    w.end(b);
}

/// Decode time of the fragment's first sample of this track (version 1: 64 bits).
pub(crate) fn tfdt(w: &mut BoxWriter, base_media_decode_time: u64) {
    let b = w.begin_full(b"tfdt", 1, 0);
    w.u64(base_media_decode_time);
    w.end(b);
}

/// `trun` version 1 (signed composition offsets) for `samples`, all of one
/// track. Returns the position of its `data_offset`, written as 0 here and
/// patched once the `moof` length is known.
pub(crate) fn trun(w: &mut BoxWriter, samples: &[Sample], with_cto: bool) -> usize {
    let mut flags = TRUN_DATA_OFFSET | TRUN_SAMPLE_DURATION | TRUN_SAMPLE_SIZE | TRUN_SAMPLE_FLAGS;
    if with_cto {
        flags |= TRUN_SAMPLE_CTO;
    }
    let b = w.begin_full(b"trun", 1, flags);
    w.u32(samples.len() as u32);
    let data_offset_at = w.pos();
    w.i32(0);
    for s in samples {
        w.u32(s.duration);
        w.u32(s.data.len() as u32);
        w.u32(if s.keyframe {
            SAMPLE_FLAGS_SYNC
        } else {
            SAMPLE_FLAGS_NON_SYNC
        });
        if with_cto {
            w.i32(s.composition_offset);
        }
    }
    w.end(b);
    data_offset_at
}

/// Header of an `mdat` with `payload` bytes; the 64-bit form only when needed.
pub(crate) fn mdat_header(w: &mut BoxWriter, payload: u64) {
    match u32::try_from(payload + 8) {
        Ok(size) => {
            w.u32(size);
            w.bytes(b"mdat");
        }
        Err(_) => {
            w.u32(1);
            w.bytes(b"mdat");
            w.u64(payload + 16);
        }
    }
}

pub(crate) fn mdat_header_len(payload: u64) -> u64 {
    if payload + 8 > u64::from(u32::MAX) {
        16
    } else {
        8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_sizes_are_patched_when_closed() {
        let mut buf = Vec::new();
        let mut w = BoxWriter::new(&mut buf);
        let outer = w.begin(b"moof");
        mfhd(&mut w, 7);
        w.end(outer);
        w.finish().unwrap();
        assert_eq!(
            buf,
            [
                &[0, 0, 0, 24][..],
                b"moof",
                &[0, 0, 0, 16],
                b"mfhd",
                &[0, 0, 0, 0],
                &[0, 0, 0, 7],
            ]
            .concat()
        );
    }

    #[test]
    fn esds_matches_14496_1_layout() {
        let mut buf = Vec::new();
        let mut w = BoxWriter::new(&mut buf);
        esds(&mut w, 2, &[0x11, 0x90]);
        w.finish().unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 39, b'e', b's', b'd', b's', 0, 0, 0, 0,
            0x03, 25, 0, 2, 0,                  // ES_Descriptor, ES_ID 2
            0x04, 17, 0x40, 0x15, 0, 0, 0,      // DecoderConfig: AAC, audio stream
            0, 0, 0, 0, 0, 0, 0, 0,             // max/avg bitrate
            0x05, 2, 0x11, 0x90,                // DecoderSpecificInfo: the ASC
            0x06, 1, 0x02,                      // SLConfig: predefined MP4
        ];
        assert_eq!(buf, expected);
    }

    #[test]
    fn long_descriptors_use_expandable_sizes() {
        let mut buf = Vec::new();
        let mut w = BoxWriter::new(&mut buf);
        descriptor_header(&mut w, 5, 300);
        assert_eq!(buf, [5, 0x82, 0x2c]);
    }
}
