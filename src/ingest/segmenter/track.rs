//! A track's samples between the camera and the file: each waits until the
//! next one gives its duration, then for the next fragment, which takes both
//! tracks' ready samples at once.

use crate::error::Result;
use crate::mp4::{self, FragmentedWriter};
use crate::storage::HashingFile;

use super::Payload;

/// A sample waiting to be written: its duration is known once the next
/// sample of its track arrives.
pub(super) struct Pending {
    pub(super) decode: u64,
    pub(super) cto: i32,
    pub(super) duration: u32,
    pub(super) key: bool,
    pub(super) data: Payload,
}

pub(super) struct TrackBuf {
    id: u32,
    pub(super) timescale: u32,
    /// Samples with a known duration, ready for the next fragment.
    ready: Vec<Pending>,
    /// The newest sample, whose duration is not known yet.
    last: Option<Pending>,
    last_delta: u32,
}

impl TrackBuf {
    pub(super) fn new(id: u32, timescale: u32, nominal: u32) -> Self {
        TrackBuf {
            id,
            timescale,
            ready: Vec::new(),
            last: None,
            last_delta: nominal,
        }
    }

    pub(super) fn ticks(&self, ns: i64) -> i64 {
        (ns as i128 * self.timescale as i128 / 1_000_000_000) as i64
    }

    /// Queues a sample at `decode` ticks, closing the previous one. Samples
    /// of a track must be contiguous and strictly increasing in the file, so
    /// a sample stamped at or before its predecessor is moved just after it.
    pub(super) fn push(&mut self, mut p: Pending) {
        if let Some(mut prev) = self.last.take() {
            p.decode = p.decode.max(prev.decode + 1);
            let delta = p.decode - prev.decode;
            prev.duration = delta.min(u32::MAX as u64) as u32;
            self.last_delta = prev.duration;
            self.ready.push(prev);
        }
        self.last = Some(p);
    }

    /// Closes the newest sample so it ends at `end` ticks, or after its
    /// nominal duration when the end is unknown.
    pub(super) fn close(&mut self, end: Option<u64>) {
        if let Some(mut prev) = self.last.take() {
            prev.duration = match end {
                Some(end) if end > prev.decode => (end - prev.decode).min(u32::MAX as u64) as u32,
                _ => self.last_delta,
            };
            self.ready.push(prev);
        }
    }

    pub(super) fn ready_span(&self) -> u64 {
        match (self.ready.first(), self.ready.last()) {
            (Some(a), Some(b)) => b.decode + b.duration as u64 - a.decode,
            _ => 0,
        }
    }
}

/// Where the track's newest sample ends, in ticks.
pub(super) fn video_end(track: &TrackBuf) -> Option<u64> {
    let last = track.last.as_ref().or(track.ready.last())?;
    Some(last.decode + last.duration as u64)
}

/// Writes the ready samples of both tracks as one fragment.
pub(super) fn write_fragment(
    writer: &mut FragmentedWriter<HashingFile>,
    video: &mut TrackBuf,
    audio: Option<&mut TrackBuf>,
) -> Result<()> {
    let mut samples = Vec::with_capacity(video.ready.len() + 16);
    for t in std::iter::once(&*video).chain(audio.as_deref()) {
        for p in &t.ready {
            samples.push(mp4::Sample {
                track: t.id,
                decode_time: p.decode,
                duration: p.duration,
                composition_offset: p.cto,
                keyframe: p.key,
                data: &p.data,
            });
        }
    }
    if samples.is_empty() {
        return Ok(());
    }
    writer.write_fragment(&samples)?;
    drop(samples);
    video.ready.clear();
    if let Some(a) = audio {
        a.ready.clear();
    }
    Ok(())
}
