//! Camera footage as custosd writes it, for benchmarks: 1920x1080 H.264 at
//! 30 fps with a key frame every 2 s at 4 Mbit/s, plus 64 kbit/s AAC, in
//! 500 ms fragments of a fragmented MP4. Sample payloads are pseudo-random
//! bytes of realistic sizes (key frames ten times a P-frame). Included with
//! `#[path = "common/footage.rs"] mod footage;`.

use std::io::Write;

use custos::mp4::{Codec, FragmentedWriter, Sample, TrackSpec};

pub const FPS: u64 = 30;
pub const GOP_FRAMES: u64 = 60;
pub const VIDEO_BITS_PER_S: u64 = 4_000_000;
pub const AUDIO_BITS_PER_S: u64 = 64_000;
/// As custosd's segmenter: a fragment per 500 ms of video.
const FRAGMENT_FRAMES: u64 = FPS / 2;
const VIDEO_TICKS_PER_FRAME: u64 = 90_000 / FPS;
const AUDIO_RATE: u64 = 48_000;
const AAC_FRAME: u64 = 1024;

/// The SPS x264 wrote for 1920x1080 constrained baseline (from the SPS
/// tests in src/mp4/sps.rs) and a minimal PPS.
const SPS_1080P: &str = "6742c028da01e0089f97016a02020280000003008000001e478c1950";
const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];
/// AAC-LC, 48 kHz, mono.
const ASC_48K_MONO: [u8; 2] = [0x11, 0x88];

/// xorshift64*: payload bytes that do not compress, fast to make.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[lo, hi)`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// One real GOP of 1920x1080 H.264 (`GOP_FRAMES` frames, the first an
/// IDR), encoded by ffmpeg's libx264 at the bench's bit rate from its
/// `testsrc2` pattern: repeated, it makes footage a decoder can show.
pub struct Gop {
    sps: Vec<u8>,
    pps: Vec<u8>,
    /// Each frame as one AVC length-prefixed slice.
    frames: Vec<Vec<u8>>,
}

impl Gop {
    pub fn encode(work: &std::path::Path) -> anyhow::Result<Gop> {
        let out = work.join("gop.h264");
        let status = std::process::Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size=1920x1080:rate={FPS}"))
            .args(["-frames:v", &GOP_FRAMES.to_string(), "-c:v", "libx264"])
            .args([
                "-preset",
                "veryfast",
                "-profile:v",
                "baseline",
                "-pix_fmt",
                "yuv420p",
            ])
            .args(["-b:v", "4M", "-maxrate", "4M", "-bufsize", "4M"])
            .args([
                "-g",
                &GOP_FRAMES.to_string(),
                "-sc_threshold",
                "0",
                "-threads",
                "1",
            ])
            .args(["-f", "h264"])
            .arg(&out)
            .status()
            .map_err(|e| anyhow::anyhow!("ffmpeg (scripts/setup installs it): {e}"))?;
        anyhow::ensure!(status.success(), "ffmpeg could not encode the GOP");
        let stream = std::fs::read(&out)?;
        let mut gop = Gop {
            sps: Vec::new(),
            pps: Vec::new(),
            frames: Vec::new(),
        };
        for nal in annex_b_units(&stream) {
            match nal[0] & 0x1f {
                7 => gop.sps = nal.to_vec(),
                8 => gop.pps = nal.to_vec(),
                1 | 5 => {
                    let mut f = (nal.len() as u32).to_be_bytes().to_vec();
                    f.extend_from_slice(nal);
                    gop.frames.push(f);
                }
                _ => {} // SEI, AUD: not needed to decode
            }
        }
        anyhow::ensure!(
            !gop.sps.is_empty() && !gop.pps.is_empty() && gop.frames.len() == GOP_FRAMES as usize,
            "the GOP has {} frames (one slice each expected) and {} SPS",
            gop.frames.len(),
            usize::from(!gop.sps.is_empty())
        );
        Ok(gop)
    }

    /// Its frames' bytes, all told.
    pub fn bytes(&self) -> u64 {
        self.frames.iter().map(|f| f.len() as u64).sum()
    }
}

/// The NAL units of an Annex B stream, without their start codes.
fn annex_b_units(b: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= b.len() {
        if b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let mut end = starts.get(k + 1).map_or(b.len(), |&n| n - 3);
            while end > s && b[end - 1] == 0 {
                end -= 1; // the zero of a 4-byte start code, or trailing zeros
            }
            &b[s..end]
        })
        .filter(|n| !n.is_empty())
        .collect()
}

pub fn tracks() -> Vec<TrackSpec> {
    tracks_for(None)
}

fn tracks_for(gop: Option<&Gop>) -> Vec<TrackSpec> {
    let (sps, pps) = match gop {
        Some(g) => (g.sps.clone(), g.pps.clone()),
        None => (hex::decode(SPS_1080P).expect("constant hex"), PPS.to_vec()),
    };
    let mut avcc = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
    avcc.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    avcc.extend_from_slice(&sps);
    avcc.push(1);
    avcc.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    avcc.extend_from_slice(&pps);
    vec![
        TrackSpec::video(Codec::H264 { avcc }, 1920, 1080),
        TrackSpec::audio(
            Codec::Aac {
                asc: ASC_48K_MONO.to_vec(),
            },
            AUDIO_RATE as u32,
            1,
        ),
    ]
}

/// A sample's bytes: an AVC length-prefixed NAL unit (video) or a raw frame
/// (audio) of `len` bytes in all.
pub fn payload(rng: &mut XorShift, len: usize, nal: Option<u8>, out: &mut Vec<u8>) {
    out.resize(len, 0);
    rng.fill(out);
    if let Some(header) = nal {
        out[..4].copy_from_slice(&(len as u32 - 4).to_be_bytes());
        out[4] = header;
    }
}

/// `seconds` of footage starting at `start_us` (the movie's creation time),
/// written into `out` one fragment at a time (one `write_all` each, as the
/// segmenter does); returns `out`.
pub fn write<W: Write>(
    out: W,
    start_us: i64,
    seconds: u64,
    rng: &mut XorShift,
    scratch: &mut Vec<u8>,
) -> custos::Result<W> {
    write_video(out, start_us, seconds, None, (rng, scratch))
}

/// [`write`], with `gop`'s frames as the video when given (the audio stays
/// pseudo-random: nothing decodes it).
pub fn write_video<W: Write>(
    out: W,
    start_us: i64,
    seconds: u64,
    gop: Option<&Gop>,
    (rng, scratch): (&mut XorShift, &mut Vec<u8>),
) -> custos::Result<W> {
    let mut w = FragmentedWriter::new(out, tracks_for(gop), (start_us / 1_000_000) as u64)?;
    // Mean sizes for the bit rates: a GOP is one key frame worth ten
    // P-frames and GOP-1 P-frames.
    let gop_bytes = VIDEO_BITS_PER_S / 8 * GOP_FRAMES / FPS;
    let p_mean = gop_bytes / (GOP_FRAMES - 1 + 10);
    let audio_mean = AUDIO_BITS_PER_S / 8 * AAC_FRAME / AUDIO_RATE;
    let frames = seconds * FPS;
    let audio_end = seconds * AUDIO_RATE;
    let mut data: Vec<Vec<u8>> = Vec::new();
    let mut meta: Vec<(u32, u64, u32, bool)> = Vec::new();
    for k in 0..frames / FRAGMENT_FRAMES {
        data.clear();
        meta.clear();
        for f in k * FRAGMENT_FRAMES..(k + 1) * FRAGMENT_FRAMES {
            let key = f % GOP_FRAMES == 0;
            if let Some(g) = gop {
                data.push(g.frames[(f % GOP_FRAMES) as usize].clone());
            } else {
                let len = if key {
                    rng.between(p_mean * 9, p_mean * 11)
                } else {
                    rng.between(p_mean * 4 / 5, p_mean * 6 / 5)
                };
                payload(
                    rng,
                    len as usize,
                    Some(if key { 0x65 } else { 0x41 }),
                    scratch,
                );
                data.push(scratch.clone());
            }
            meta.push((
                1,
                f * VIDEO_TICKS_PER_FRAME,
                VIDEO_TICKS_PER_FRAME as u32,
                key,
            ));
        }
        // The AAC frames starting in this fragment's half second; the last
        // one is cut where the video ends, as the segmenter does.
        let (lo, hi) = (k * AUDIO_RATE / 2, (k + 1) * AUDIO_RATE / 2);
        let mut t = lo.div_ceil(AAC_FRAME) * AAC_FRAME;
        while t < hi {
            let dur = AAC_FRAME.min(audio_end - t);
            let len = rng.between(audio_mean * 4 / 5, audio_mean * 6 / 5);
            payload(rng, len as usize, None, scratch);
            data.push(scratch.clone());
            meta.push((2, t, dur as u32, true));
            t += AAC_FRAME;
        }
        let samples: Vec<Sample> = meta
            .iter()
            .zip(&data)
            .map(|(&(track, decode_time, duration, keyframe), d)| Sample {
                track,
                decode_time,
                duration,
                composition_offset: 0,
                keyframe,
                data: d,
            })
            .collect();
        w.write_fragment(&samples)?;
    }
    Ok(w.into_inner())
}
