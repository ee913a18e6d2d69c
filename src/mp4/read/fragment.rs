//! A `moof` and its `traf`s (`tfhd`, `tfdt`, `trun`): the samples of one
//! fragment, with the data-offset rules of 14496-12 8.8.7 and 8.8.8.

use super::cursor::{Cursor, children, find_child, require_child};
use super::movie::Movie;
use super::{Budget, SampleInfo};
use crate::{Error, Result};

/// A parsed `moof`, committed once its data is known to be present.
pub(super) struct Fragment {
    pub(super) samples: Vec<SampleInfo>,
    /// One past the last byte any of its samples uses.
    pub(super) data_end: u64,
    /// (index into `Movie::tracks`, media decode time after this fragment).
    pub(super) track_ends: Vec<(usize, u64)>,
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
pub(super) fn parse_moof(
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
