//! Checked reading inside a box payload: big-endian fields and tables that
//! never run past the bytes present, and the walk over a container's children.

use crate::{Error, Result};

/// Checked big-endian reads from a box payload.
pub(super) struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(data: &'a [u8], what: &'static str) -> Self {
        Cursor { data, pos: 0, what }
    }

    pub(super) fn short(&self) -> Error {
        Error::invalid(format!("MP4 {} box is cut short", self.what))
    }

    pub(super) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| self.short())?;
        let b = &self.data[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.bytes(N)?.try_into().unwrap())
    }

    pub(super) fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(drop)
    }

    pub(super) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    pub(super) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub(super) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub(super) fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    pub(super) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub(super) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// Version and flags of a full box.
    pub(super) fn full_header(&mut self) -> Result<(u8, u32)> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }

    /// A u32 or u64 depending on the box version.
    pub(super) fn u32_or_u64(&mut self, version: u8) -> Result<u64> {
        if version == 1 {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    pub(super) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// A table of `count` entries of `entry_len` bytes, checked to be present
    /// before anything is allocated for it.
    pub(super) fn table(&mut self, count: u32, entry_len: usize) -> Result<Cursor<'a>> {
        let len = (count as usize)
            .checked_mul(entry_len)
            .ok_or_else(|| self.short())?;
        Ok(Cursor::new(self.bytes(len)?, self.what))
    }

    pub(super) fn rest(&mut self) -> &'a [u8] {
        let rest = &self.data[self.pos..];
        self.pos = self.data.len();
        rest
    }
}

/// The child boxes of a container payload, as (type, payload).
pub(super) fn children(data: &[u8]) -> impl Iterator<Item = Result<([u8; 4], &[u8])>> {
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
pub(super) fn find_child<'a>(data: &'a [u8], fourcc: &[u8; 4]) -> Result<Option<&'a [u8]>> {
    for child in children(data) {
        let (t, payload) = child?;
        if &t == fourcc {
            return Ok(Some(payload));
        }
    }
    Ok(None)
}

pub(super) fn require_child<'a>(
    data: &'a [u8],
    fourcc: &[u8; 4],
    parent: &str,
) -> Result<&'a [u8]> {
    find_child(data, fourcc)?.ok_or_else(|| {
        Error::invalid(format!(
            "MP4 {parent} has no {} box",
            String::from_utf8_lossy(fourcc)
        ))
    })
}
