//! The `moov`: its tracks (`trak`, `tkhd`, `mdhd`, `edts`), their sample
//! descriptions (`stsd`, with `avcC`/`hvcC`/`esds`), and the fragment defaults
//! (`trex`). The samples of a progressive file's tables come from `tables`.

use super::cursor::{Cursor, children, find_child, require_child};
use super::tables::sample_tables;
use super::{Budget, SampleInfo, TrackInfo};
use crate::mp4::Codec;
use crate::{Error, Result};

/// Everything the `moov` says.
pub(super) struct Movie {
    /// Every `trak`, including ones whose codec we do not read (their
    /// fragments still have to be walked to find the others' data).
    pub(super) tracks: Vec<TrackState>,
    /// Samples described by the sample tables (progressive files).
    pub(super) table_samples: Vec<SampleInfo>,
    /// `mvhd` creation time, seconds since 1904.
    pub(super) created: u64,
}

pub(super) struct TrackState {
    pub(super) id: u32,
    /// `None` for an unsupported codec.
    pub(super) info: Option<TrackInfo>,
    pub(super) trex: Trex,
    /// Added to media decode times: a leading empty edit's length.
    pub(super) delay: u64,
    /// Media decode time after the last committed fragment, for a `traf`
    /// without `tfdt`. Starts after the sample tables' samples.
    pub(super) next_decode_time: u64,
}

/// Per-track sample defaults for fragments (`trex`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Trex {
    pub(super) duration: u32,
    pub(super) size: u32,
    pub(super) flags: u32,
}

pub(super) fn parse_moov(moov: &[u8], file_len: u64, budget: &mut Budget) -> Result<Movie> {
    let mvhd = require_child(moov, b"mvhd", "moov")?;
    let mut c = Cursor::new(mvhd, "mvhd");
    let (version, _) = c.full_header()?;
    let created = if version == 1 {
        let t = c.u64()?;
        c.skip(8)?;
        t
    } else {
        let t = u64::from(c.u32()?);
        c.skip(4)?;
        t
    };
    let movie_timescale = c.u32()?;

    let mut movie = Movie {
        tracks: Vec::new(),
        table_samples: Vec::new(),
        created,
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
        b"tx3g" => info.codec = Codec::Tx3g,
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
