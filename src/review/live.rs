//! The live view: follows the segment a camera is recording as it grows,
//! and the next one when it starts, as one fragmented MP4 stream. It reads
//! the files the recorder writes, so it adds no load to the camera.
//!
//! Invariants:
//! - The init segment (`ftyp` + `moov`) goes out once, from the first
//!   segment; then whole `moof`+`mdat` fragments only, each once it is
//!   entirely in the file (a fragment is one `write(2)`, every 0.5 s).
//! - Fragments are renumbered (`mfhd`) 1, 2, 3... and their decode times
//!   (`tfdt`) moved so the segments follow each other on one timeline: a
//!   new segment's video starts where the last one's ended, its other
//!   tracks at the same instant. The sample data is not touched.
//! - The view starts at the newest fragment that begins with a key frame,
//!   so a player can decode from the first byte.
//! - A segment is followed until a newer one of the camera has its init;
//!   its complete fragments are read once more, then the view switches.
//!   Audio the recorder appends to the old file after that (a drain of late
//!   packets) is not sent: a live view may lose a few audio frames at a
//!   segment change, never video.
//! - A new segment whose tracks differ (codec, picture size) ends the view:
//!   one init segment cannot describe both.
//! - Each segment is leased while it is read, and shown only if it was
//!   recorded under a zone the caller may see; that is asked again every
//!   [`RECHECK`], so a grant withdrawn by a reload ends the view.
//! - The view ends when the reader goes away, or when nothing new is
//!   recorded for [`STALL`].

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::index::{Index, SegmentId, SegmentRow, SegmentState};
use crate::mp4::{self, TrackSpec};
use crate::retention::{LeaseGuard, Leases};
use crate::{Error, ErrorKind, Result};

/// How often the open file is looked at for new fragments.
const POLL: Duration = Duration::from_millis(100);
/// How often the caller's grant is looked at again while the view runs.
const RECHECK: Duration = Duration::from_secs(1);
/// How long the view waits for anything new before it ends.
pub const STALL: Duration = Duration::from_secs(20);
/// How far back the newest open segment is looked for.
const LOOK_BACK_US: i64 = 3600 * 1_000_000;

/// A live view located: its first segment open at the fragment it starts
/// with.
pub struct Live {
    camera: String,
    config: Arc<Config>,
    index: Index,
    leases: Arc<Leases>,
    segment: Followed,
    init: Vec<u8>,
    specs: Vec<TrackSpec>,
    /// Whether the caller may see footage of a zone (checked again for
    /// each segment: a camera may change zones at a reload).
    may_see: Box<dyn Fn(&str) -> bool + Send>,
    /// Wall-clock time of the first frame sent.
    pub from_us: i64,
}

/// The segment being read.
struct Followed {
    row: SegmentRow,
    file: File,
    path: PathBuf,
    /// Where the next fragment starts.
    pos: u64,
    /// Per track id: added to its decode times; `None` until the segment's
    /// first fragment sent fixes it.
    offsets: Option<Vec<(u32, i128)>>,
    _lease: LeaseGuard,
}

/// What a live view sent, for its closing audit entry.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    pub bytes: u64,
    pub fragments: u32,
    pub segments: u32,
    /// Wall-clock time after the newest frame sent.
    pub to_us: i64,
}

/// Finds the segment `camera` is recording (its newest, still `recording`)
/// and the fragment to start with; refuses footage of a zone `may_see`
/// does not allow.
pub fn open(
    index: Index,
    config: Arc<Config>,
    leases: &Arc<Leases>,
    camera: &str,
    now_us: i64,
    may_see: Box<dyn Fn(&str) -> bool + Send>,
) -> Result<Live> {
    let not_live = || {
        Error::not_found(format!(
            "no live footage of camera {camera}: it is not recording now (`custosctl cameras` \
             shows its state)"
        ))
    };
    let row = index
        .segments(camera, now_us.saturating_sub(LOOK_BACK_US), i64::MAX)?
        .into_iter()
        .next_back()
        .filter(|r| r.state == SegmentState::Recording)
        .ok_or_else(not_live)?;
    if !may_see(&row.zone) {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "camera {camera} is recording under zone {}, which your grant does not cover",
                row.zone
            ),
        ));
    }
    let mut segment = follow(&config, leases, row)?;
    let deadline = Instant::now() + STALL;
    let (init, fragments) = loop {
        if let Some(init) = read_init(&segment)? {
            let fragments = complete_fragments(&segment.file, init.len() as u64)?;
            if !fragments.is_empty() {
                break (init, fragments);
            }
        }
        if Instant::now() > deadline {
            return Err(not_live());
        }
        std::thread::sleep(POLL);
    };
    let specs = track_specs(&init)?;
    // The newest fragment a decoder can start from.
    let mut start = None;
    for &(from, to) in fragments.iter().rev() {
        let frag = read(&segment.file, from, to)?;
        let info = parse_fragment(&init, &frag)?;
        if info.first_video_key {
            start = Some((from, info));
            break;
        }
    }
    let (pos, info) = start.ok_or_else(not_live)?;
    segment.pos = pos;
    let from_us = segment.row.start_us + ticks_to_us(info.first_video, specs[0].timescale);
    Ok(Live {
        camera: camera.to_owned(),
        config,
        index,
        leases: leases.clone(),
        segment,
        init,
        specs,
        may_see,
        from_us,
    })
}

impl Live {
    /// Streams until the reader goes away (an error from `out`, returned
    /// with what was sent) or nothing new comes for [`STALL`].
    pub fn run(mut self, out: &mut dyn Write) -> (Sent, Result<()>) {
        let mut sent = Sent {
            bytes: 0,
            fragments: 0,
            segments: 1,
            to_us: self.from_us,
        };
        let result = self.stream(out, &mut sent);
        (sent, result)
    }

    /// Why the view ends when the viewer may not see `zone`, the zone of
    /// the segment being sent or of the next one: the camera moved to a
    /// zone the grant does not cover, or (the same zone) a reload withdrew
    /// the grant, whichever check noticed it first.
    fn refused(&self, zone: &str) -> Error {
        let message = if zone == self.segment.row.zone {
            format!(
                "the grant to see zone {zone} was withdrawn (the configuration was reloaded); \
                 the live view of camera {} ends",
                self.camera
            )
        } else {
            format!(
                "camera {} now records under zone {zone}, which your grant does not cover; the \
                 live view ends",
                self.camera
            )
        };
        Error::new(ErrorKind::PermissionDenied, message)
    }

    fn stream(&mut self, out: &mut dyn Write, sent: &mut Sent) -> Result<()> {
        let gone = |e: std::io::Error| Error::unavailable(format!("the viewer went away: {e}"));
        out.write_all(&self.init).map_err(gone)?;
        out.flush().map_err(gone)?;
        sent.bytes += self.init.len() as u64;
        let vts = self.specs[0].timescale;
        // Per track id: the end of what was sent, on the output timeline.
        let mut ends: Vec<(u32, i128)> = Vec::new();
        let mut last_news = Instant::now();
        let mut checked = Instant::now();
        loop {
            if checked.elapsed() >= RECHECK {
                if !(self.may_see)(&self.segment.row.zone) {
                    return Err(self.refused(&self.segment.row.zone));
                }
                checked = Instant::now();
            }
            let mut progressed = false;
            for (from, to) in complete_fragments(&self.segment.file, self.segment.pos)? {
                let mut frag = read(&self.segment.file, from, to)?;
                let info = parse_fragment(&self.init, &frag)?;
                let offsets = self
                    .segment
                    .offsets
                    .get_or_insert_with(|| offsets_after(&info, &ends, &self.specs))
                    .clone();
                rewrite(&mut frag, sent.fragments + 1, &offsets)?;
                out.write_all(&frag).map_err(gone)?;
                out.flush().map_err(gone)?;
                sent.fragments += 1;
                sent.bytes += frag.len() as u64;
                for &(track, end) in &info.ends {
                    let o = offsets.iter().find(|o| o.0 == track).map_or(0, |o| o.1);
                    match ends.iter_mut().find(|e| e.0 == track) {
                        Some(e) => e.1 = e.1.max(i128::from(end) + o),
                        None => ends.push((track, i128::from(end) + o)),
                    }
                }
                if let Some(end) = info.video_end {
                    sent.to_us = self.segment.row.start_us + ticks_to_us(end, vts);
                }
                self.segment.pos = to;
                progressed = true;
            }
            if progressed {
                last_news = Instant::now();
                continue;
            }
            if let Some(next) = self.newer()? {
                // The old file's last fragments first, then the new one.
                if !complete_fragments(&self.segment.file, self.segment.pos)?.is_empty() {
                    continue;
                }
                if !(self.may_see)(&next.zone) {
                    return Err(self.refused(&next.zone));
                }
                let mut segment = follow(&self.config, &self.leases, next)?;
                let Some(init) = read_init(&segment)? else {
                    std::thread::sleep(POLL);
                    continue;
                };
                if track_specs(&init)? != self.specs {
                    return Err(Error::conflict(format!(
                        "camera {}'s stream changed (codec or picture size) at {}; start the \
                         live view again",
                        self.camera, segment.row.path
                    )));
                }
                segment.pos = init.len() as u64;
                self.segment = segment;
                sent.segments += 1;
                last_news = Instant::now();
                continue;
            }
            if last_news.elapsed() > STALL {
                return Err(Error::unavailable(format!(
                    "camera {} has recorded nothing for {} s; the live view ends",
                    self.camera,
                    STALL.as_secs()
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The camera's next segment after the one being read, if it started.
    fn newer(&self) -> Result<Option<SegmentRow>> {
        let row = &self.segment.row;
        Ok(self
            .index
            .segments(&self.camera, row.start_us.saturating_add(1), i64::MAX)?
            .into_iter()
            .find(|r| r.start_us > row.start_us && r.state != SegmentState::Doomed))
    }
}

/// Leases `row` and opens its file.
fn follow(config: &Config, leases: &Arc<Leases>, row: SegmentRow) -> Result<Followed> {
    let lease = leases.acquire(&[SegmentId(row.id)]);
    let root = config.storage_root(&row.root).ok_or_else(|| {
        Error::internal(format!(
            "segment {} is on storage {:?}, which is not configured",
            row.path, row.root
        ))
    })?;
    let path = crate::storage::absolute(&root.path, &row.path);
    let file = File::open(&path).map_err(|e| Error::io("opening", &path, e))?;
    Ok(Followed {
        row,
        file,
        path,
        pos: 0,
        offsets: None,
        _lease: lease,
    })
}

/// The file's `ftyp` and `moov`, once both are written.
fn read_init(s: &Followed) -> Result<Option<Vec<u8>>> {
    let len = file_len(&s.file, &s.path)?;
    let mut pos = 0;
    while let Some((fourcc, size)) = box_at(&s.file, pos, len)? {
        pos += size;
        if &fourcc == b"moov" {
            return read(&s.file, 0, pos).map(Some);
        }
    }
    Ok(None)
}

/// The (start, end) of each whole `moof`+`mdat` from `pos` on.
fn complete_fragments(file: &File, mut pos: u64) -> Result<Vec<(u64, u64)>> {
    let len = file
        .metadata()
        .map_err(|e| Error::internal(format!("reading a segment's length: {e}")))?
        .len();
    let mut out = Vec::new();
    loop {
        let Some((fourcc, size)) = box_at(file, pos, len)? else {
            return Ok(out);
        };
        if &fourcc != b"moof" {
            // Nothing else is written between fragments; skip what is whole.
            pos += size;
            continue;
        }
        let Some((data, data_size)) = box_at(file, pos + size, len)? else {
            return Ok(out);
        };
        if &data != b"mdat" {
            return Err(Error::internal(
                "a segment's moof is not followed by its mdat",
            ));
        }
        out.push((pos, pos + size + data_size));
        pos += size + data_size;
    }
}

/// The type and size of the whole box at `pos`, or `None` if it is not all
/// in the first `len` bytes yet.
fn box_at(file: &File, pos: u64, len: u64) -> Result<Option<([u8; 4], u64)>> {
    if pos + 8 > len {
        return Ok(None);
    }
    let mut head = [0u8; 16];
    let n = (len - pos).min(16) as usize;
    file.read_exact_at(&mut head[..n], pos)
        .map_err(|e| Error::internal(format!("reading a segment being recorded: {e}")))?;
    let size32 = u32::from_be_bytes(head[0..4].try_into().expect("4 bytes"));
    let fourcc: [u8; 4] = head[4..8].try_into().expect("4 bytes");
    let size = match size32 {
        0 => return Ok(None), // an mdat still growing to the end of the file
        1 if n < 16 => return Ok(None),
        1 => u64::from_be_bytes(head[8..16].try_into().expect("8 bytes")),
        s => u64::from(s),
    };
    if size < 8 {
        return Err(Error::internal(
            "a segment has a box shorter than its header",
        ));
    }
    Ok((pos + size <= len).then_some((fourcc, size)))
}

fn file_len(file: &File, path: &std::path::Path) -> Result<u64> {
    Ok(file
        .metadata()
        .map_err(|e| Error::io("reading the length of", path, e))?
        .len())
}

fn read(file: &File, from: u64, to: u64) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; (to - from) as usize];
    file.read_exact_at(&mut buf, from)
        .map_err(|e| Error::internal(format!("reading a segment being recorded: {e}")))?;
    Ok(buf)
}

fn track_specs(init: &[u8]) -> Result<Vec<TrackSpec>> {
    let info = mp4::parse(init)?;
    let specs: Vec<TrackSpec> = info.tracks.iter().map(|t| t.to_spec()).collect();
    if specs.first().is_none_or(|s| !s.codec.is_video()) {
        return Err(Error::internal(
            "a segment's first track is not video; it cannot be followed live",
        ));
    }
    Ok(specs)
}

/// A fragment's timing, per track, in its file's units.
struct FragmentTimes {
    /// (track id, decode time after its last sample)
    ends: Vec<(u32, u64)>,
    first_video: u64,
    first_video_key: bool,
    video_end: Option<u64>,
}

fn parse_fragment(init: &[u8], frag: &[u8]) -> Result<FragmentTimes> {
    let mut whole = Vec::with_capacity(init.len() + frag.len());
    whole.extend_from_slice(init);
    whole.extend_from_slice(frag);
    let info = mp4::parse(&whole)?;
    let video = info.tracks.first().map_or(1, |t| t.id);
    let mut seen: Vec<u32> = Vec::new();
    let mut t = FragmentTimes {
        ends: Vec::new(),
        first_video: 0,
        first_video_key: false,
        video_end: None,
    };
    for s in &info.samples {
        if !seen.contains(&s.track) {
            seen.push(s.track);
            if s.track == video {
                t.first_video = s.decode_time;
                t.first_video_key = s.keyframe;
            }
        }
        let end = s.decode_time + u64::from(s.duration);
        match t.ends.iter_mut().find(|e| e.0 == s.track) {
            Some(e) => e.1 = e.1.max(end),
            None => t.ends.push((s.track, end)),
        }
        if s.track == video {
            t.video_end = Some(t.video_end.unwrap_or(0).max(end));
        }
    }
    Ok(t)
}

/// Offsets for a segment whose first fragment sent is `first`: none for
/// the view's first segment; else its video starts where the video sent so
/// far ends, and every track moves by the same time.
fn offsets_after(
    first: &FragmentTimes,
    ends: &[(u32, i128)],
    specs: &[TrackSpec],
) -> Vec<(u32, i128)> {
    let vts = i128::from(specs[0].timescale);
    let shift_v = match ends.iter().find(|e| e.0 == 1) {
        Some(&(_, end)) => end - i128::from(first.first_video),
        None => 0,
    };
    (1..=specs.len() as u32)
        .map(|track| {
            let ts = i128::from(specs[track as usize - 1].timescale);
            (track, (shift_v * ts + vts / 2).div_euclid(vts))
        })
        .collect()
}

/// Renumbers a fragment and moves its `tfdt`s by each track's offset.
fn rewrite(frag: &mut [u8], sequence: u32, offsets: &[(u32, i128)]) -> Result<()> {
    let bad = |what: &str| Error::internal(format!("a recorded fragment {what}"));
    let moof_len = be32(frag, 0).ok_or_else(|| bad("is cut short"))? as usize;
    let mut pos = 8;
    while pos + 8 <= moof_len {
        let size = be32(frag, pos).ok_or_else(|| bad("is cut short"))? as usize;
        if size < 8 || pos + size > moof_len {
            return Err(bad("has a box that overruns its moof"));
        }
        match &frag[pos + 4..pos + 8] {
            b"mfhd" => frag[pos + 12..pos + 16].copy_from_slice(&sequence.to_be_bytes()),
            b"traf" => rewrite_traf(&mut frag[pos..pos + size], offsets)?,
            _ => {}
        }
        pos += size;
    }
    Ok(())
}

fn rewrite_traf(traf: &mut [u8], offsets: &[(u32, i128)]) -> Result<()> {
    let bad = |what: &str| Error::internal(format!("a recorded traf {what}"));
    let mut track = None;
    let mut pos = 8;
    while pos + 8 <= traf.len() {
        let size = be32(traf, pos).ok_or_else(|| bad("is cut short"))? as usize;
        if size < 8 || pos + size > traf.len() {
            return Err(bad("has a box that overruns it"));
        }
        match &traf[pos + 4..pos + 8] {
            b"tfhd" => track = be32(traf, pos + 12),
            b"tfdt" => {
                let id = track.ok_or_else(|| bad("has its tfdt before its tfhd"))?;
                let offset = offsets.iter().find(|o| o.0 == id).map_or(0, |o| o.1);
                let version = traf[pos + 8];
                let at = pos + 12;
                if version == 1 && size >= 20 {
                    let t = u64::from_be_bytes(traf[at..at + 8].try_into().expect("8 bytes"));
                    let moved = u64::try_from((i128::from(t) + offset).max(0))
                        .map_err(|_| bad("moves past 64 bits"))?;
                    traf[at..at + 8].copy_from_slice(&moved.to_be_bytes());
                } else if size >= 16 {
                    let t = be32(traf, at).ok_or_else(|| bad("is cut short"))?;
                    let moved = u32::try_from((i128::from(t) + offset).max(0))
                        .map_err(|_| bad("moves past a 32-bit tfdt"))?;
                    traf[at..at + 4].copy_from_slice(&moved.to_be_bytes());
                }
            }
            _ => {}
        }
        pos += size;
    }
    Ok(())
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn ticks_to_us(ticks: u64, timescale: u32) -> i64 {
    (i128::from(ticks) * 1_000_000 / i128::from(timescale.max(1))) as i64
}
