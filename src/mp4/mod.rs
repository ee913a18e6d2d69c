//! ISO BMFF (MP4) files for recorded camera streams, written without transcoding.
//!
//! - [`write::FragmentedWriter`] records a segment as `ftyp` + `moov` followed by
//!   self-contained `moof` + `mdat` pairs, each emitted with a single `write_all`.
//!   The file is valid after every fragment: a crash (kill -9, power loss) leaves
//!   at most one partial fragment at the tail, and [`read`] reports where the last
//!   complete one ends (`complete_len`) so recovery can cut the tail off.
//! - [`read`] parses our fragmented files, files cut off at any byte, and plain
//!   progressive files (GStreamer's `mp4mux`). It trusts no length field: every
//!   size is checked against the bytes present, so it never panics or reads out
//!   of bounds on damaged input.
//! - [`progressive::write`] produces a non-fragmented, faststart file (`moov`
//!   before `mdat`) for exports and views, streaming sample bytes from their
//!   sources (a view adds a `tx3g` caption track, [`Codec::Tx3g`]).
//!
//! Byte layouts live in `boxes.rs` (ISO/IEC 14496-12, 14496-15, 14496-1); the
//! writers only decide what to write. Durability (fsync) is the caller's job:
//! this module only writes to a `Write`.

mod boxes;
pub mod progressive;
pub mod read;
mod sps;
pub mod write;

#[cfg(test)]
mod gst_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_util;

pub use read::{Mp4Info, SampleInfo, TrackInfo, parse, scan_file};
pub use write::FragmentedWriter;

/// Timescale of video tracks (the RTP/MPEG clock).
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// A track's coding format and the decoder configuration the caps carried.
/// Samples are stored exactly as the parsers emit them; nothing is transcoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    /// AVCDecoderConfigurationRecord (`codec_data` of `stream-format=avc`);
    /// samples are NAL units with 4-byte (or as the record says) length prefixes.
    H264 { avcc: Vec<u8> },
    /// HEVCDecoderConfigurationRecord (`codec_data` of `stream-format=hvc1`).
    H265 { hvcc: Vec<u8> },
    /// AudioSpecificConfig (`codec_data` from aacparse); samples are raw frames.
    Aac { asc: Vec<u8> },
    /// G.711 A-law, one byte per sample per channel.
    Pcma,
    /// G.711 mu-law, one byte per sample per channel.
    Pcmu,
    /// Timed text (3GPP TS 26.245 `tx3g`): each sample a 16-bit length and
    /// UTF-8 text. Never recorded: a view's wall-clock caption track.
    Tx3g,
}

impl Codec {
    pub fn is_video(&self) -> bool {
        matches!(self, Codec::H264 { .. } | Codec::H265 { .. })
    }

    pub fn is_text(&self) -> bool {
        matches!(self, Codec::Tx3g)
    }

    /// Short lower-case name, as stored in the index ("h264", "aac", ...).
    pub fn name(&self) -> &'static str {
        match self {
            Codec::H264 { .. } => "h264",
            Codec::H265 { .. } => "h265",
            Codec::Aac { .. } => "aac",
            Codec::Pcma => "pcma",
            Codec::Pcmu => "pcmu",
            Codec::Tx3g => "tx3g",
        }
    }
}

/// What a track holds and how its times are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    pub codec: Codec,
    /// Units per second of sample times: [`VIDEO_TIMESCALE`] for video, the
    /// sample rate for audio.
    pub timescale: u32,
    /// Picture size in pixels (video only; the writers prefer the size the SPS
    /// states when they can parse it).
    pub width: u16,
    pub height: u16,
    /// Audio only: samples per second and channel count.
    pub sample_rate: u32,
    pub channels: u16,
}

impl TrackSpec {
    /// A video track at [`VIDEO_TIMESCALE`].
    pub fn video(codec: Codec, width: u16, height: u16) -> Self {
        TrackSpec {
            codec,
            timescale: VIDEO_TIMESCALE,
            width,
            height,
            sample_rate: 0,
            channels: 0,
        }
    }

    /// A timed-text track counting time in `timescale` units.
    pub fn text(timescale: u32) -> Self {
        TrackSpec {
            codec: Codec::Tx3g,
            timescale,
            width: 0,
            height: 0,
            sample_rate: 0,
            channels: 0,
        }
    }

    /// An audio track whose timescale is its sample rate.
    pub fn audio(codec: Codec, sample_rate: u32, channels: u16) -> Self {
        TrackSpec {
            codec,
            timescale: sample_rate,
            width: 0,
            height: 0,
            sample_rate,
            channels,
        }
    }

    /// The picture size to record: the SPS's if it parses, else the caller's.
    fn display_size(&self) -> (u16, u16) {
        let parsed = match &self.codec {
            Codec::H264 { avcc } => sps::avcc_dimensions(avcc),
            Codec::H265 { hvcc } => sps::hvcc_dimensions(hvcc),
            _ => None,
        };
        parsed.unwrap_or((self.width, self.height))
    }

    /// Rejects specs no reader could make sense of, before anything is written.
    fn validate(&self, track_id: u32) -> crate::Result<()> {
        let bad = |what: &str| {
            Err(crate::Error::invalid(format!(
                "MP4 track {track_id} ({}): {what}",
                self.codec.name()
            )))
        };
        if self.timescale == 0 {
            return bad("timescale is 0; use 90000 for video, the sample rate for audio");
        }
        match &self.codec {
            Codec::H264 { avcc } if avcc.len() < 7 || avcc[0] != 1 => bad(
                "codec_data is not an AVCDecoderConfigurationRecord (version 1, at least 7 bytes)",
            ),
            Codec::H265 { hvcc } if hvcc.len() < 23 || hvcc[0] != 1 => bad(
                "codec_data is not an HEVCDecoderConfigurationRecord (version 1, at least 23 bytes)",
            ),
            Codec::Aac { asc } if asc.len() < 2 => {
                bad("AudioSpecificConfig is shorter than 2 bytes")
            }
            Codec::Aac { .. } | Codec::Pcma | Codec::Pcmu
                if self.sample_rate == 0 || self.channels == 0 =>
            {
                bad("audio needs a sample rate and a channel count")
            }
            _ => Ok(()),
        }
    }
}

/// One access unit to record, borrowed from the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample<'a> {
    /// 1-based track id: the position of the track in the writer's list, plus one.
    pub track: u32,
    /// Decode time in the track's timescale, counted from the segment origin.
    pub decode_time: u64,
    /// Time until the next sample's decode time, in the track's timescale.
    pub duration: u32,
    /// Presentation time minus decode time (non-zero with B-frames).
    pub composition_offset: i32,
    /// A sync sample: IDR/IRAP picture; every audio frame.
    pub keyframe: bool,
    pub data: &'a [u8],
}

/// A `tx3g` sample carrying `text` (at most 65535 bytes; longer is cut at
/// a character boundary).
pub fn tx3g_sample(text: &str) -> Vec<u8> {
    let mut end = text.len().min(usize::from(u16::MAX));
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = Vec::with_capacity(2 + end);
    out.extend_from_slice(&(end as u16).to_be_bytes());
    out.extend_from_slice(&text.as_bytes()[..end]);
    out
}

/// Seconds from the MP4 epoch (1904-01-01) to the Unix epoch.
const MP4_EPOCH_OFFSET: u64 = 2_082_844_800;

/// Maps an `io::Error` to a crate error, keeping its kind-based classification
/// and the error itself as source (so callers can tell a full disk apart).
fn io_error(what: &str, err: std::io::Error) -> crate::Error {
    use crate::ErrorKind;
    let kind = match err.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        _ => ErrorKind::Internal,
    };
    crate::Error::with_source(kind, format!("{what}: {err}"), err)
}
