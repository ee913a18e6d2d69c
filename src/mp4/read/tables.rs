//! A progressive file's sample tables (`stts`, `ctts`, `stss`, `stsc`, `stsz`,
//! `stco`/`co64`) expanded into one entry per sample, within the sample budget.

use super::cursor::{Cursor, find_child, require_child};
use super::{Budget, SampleInfo};
use crate::{Error, Result};

/// Expands `stts`, `ctts`, `stss`, `stsc`, `stsz` and `stco`/`co64` into one
/// entry per sample, in decode order. When every sample is `pcm_sample_size`
/// bytes (non-zero only for PCM tracks), each chunk becomes one sample rather
/// than costing an entry per audio sample.
pub(super) fn sample_tables(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::read::{Budget, MAX_SAMPLES};

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
