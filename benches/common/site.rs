//! An hour of one camera's recording, built once into a directory and
//! reused by the export and review benchmarks: 60 s segments written as
//! custosd writes them (see `footage.rs`), each indexed complete with its
//! real SHA-256, frames and size, and a site config granting the running
//! uid role evidence. Included with `#[path = "common/site.rs"] mod site;`
//! beside `common` and `footage`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use custos::index::{Index, NewSegment, SegmentSummary, TimeSource};

use crate::common;
use crate::footage::{self, FPS, GOP_FRAMES, Gop, XorShift};

pub const CAMERA: &str = "gate";
pub const ZONE: &str = "entrance";
/// 2026-11-02T08:00:00Z: the start of the recorded hour.
pub const T0_US: i64 = 1_793_606_400_000_000;

pub const SEGMENT_S: u64 = 60;
/// Bumped whenever the site's content changes, so a stale cache is rebuilt.
const SITE_FORMAT: u32 = 2;

/// The benchmark's site: config, index, recordings, admin socket.
pub struct Site {
    pub dir: PathBuf,
    minutes: u64,
    /// The real GOP repeated as the video, or pseudo-random payloads.
    gop: Option<Gop>,
}

impl Site {
    /// A site of random-payload footage (enough for copying and parsing).
    pub fn new(dir: PathBuf, minutes: u64) -> Site {
        Site {
            dir,
            minutes,
            gop: None,
        }
    }

    /// A site whose video decodes: `gop` repeated (for what decodes it).
    pub fn decodable(dir: PathBuf, minutes: u64, gop: Gop) -> Site {
        Site {
            dir,
            minutes,
            gop: Some(gop),
        }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("custos.toml")
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join("admin.sock")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }
    pub fn index(&self) -> PathBuf {
        self.state().join("index.db")
    }
    pub fn pristine(&self) -> PathBuf {
        self.dir.join("pristine.db")
    }
    pub fn recordings(&self) -> PathBuf {
        self.dir.join("recordings")
    }
    fn marker(&self) -> PathBuf {
        self.dir.join("built")
    }

    fn marker_text(&self) -> String {
        let video = match &self.gop {
            Some(g) => format!("a real GOP of {} bytes", g.bytes()),
            None => "random payloads".into(),
        };
        format!("format {SITE_FORMAT}, {} minutes, {video}\n", self.minutes)
    }

    /// Builds the site unless a complete one of the same format is there.
    pub fn ensure_built(&self) -> anyhow::Result<()> {
        if fs::read_to_string(self.marker()).ok() == Some(self.marker_text()) {
            return Ok(());
        }
        let _ = fs::remove_dir_all(&self.dir);
        fs::create_dir_all(self.state())?;
        fs::create_dir_all(self.recordings())?;
        let t = Instant::now();
        eprintln!(
            "building {} minutes of recording in {} (once)",
            self.minutes,
            self.dir.display()
        );
        {
            let mut index = Index::open(&self.index())?;
            let cam = index.camera_id(CAMERA)?;
            let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
            let mut frame = Vec::new();
            for seg in 0..self.minutes * 60 / SEGMENT_S {
                let start_us = T0_US + (seg * SEGMENT_S * 1_000_000) as i64;
                index.transaction(|ix| {
                    write_segment(
                        ix,
                        &self.recordings(),
                        cam,
                        start_us,
                        self.gop.as_ref(),
                        (&mut rng, &mut frame),
                    )
                })?;
            }
        }
        nix::unistd::sync();
        fs::copy(self.index(), self.pristine())?;
        fs::write(self.marker(), self.marker_text())?;
        eprintln!("built in {:.1?}", t.elapsed());
        Ok(())
    }

    /// The index as built, without rows earlier runs added.
    pub fn reset_index(&self) -> anyhow::Result<()> {
        for ext in ["", "-wal", "-shm"] {
            let _ = fs::remove_file(format!("{}{ext}", self.index().display()));
        }
        fs::copy(self.pristine(), self.index())?;
        Ok(())
    }

    pub fn write_config(&self) -> anyhow::Result<()> {
        let uid = nix::unistd::getuid().as_raw();
        let text = common::config_head(&self.dir)
            + &format!(
                r#"
[[zone]]
id = "{ZONE}"
name = "Entrance"
retention_days = 366
purposes = ["safety"]
legal_basis = "GDPR Art. 6(1)(e)"
processor = "The school"
audio = "allowed"

# Disabled: the footage is already there, nothing is recorded.
[[camera]]
id = "{CAMERA}"
name = "Gate"
zone = "{ZONE}"
url = "rtsp://127.0.0.1:9/{CAMERA}"
audio = true
segment = "{SEGMENT_S}s"
area = "The school gate"
enabled = false

[[access.grant]]
user = {uid}
roles = ["evidence"]
"#
            );
        fs::write(self.config(), text)?;
        Ok(())
    }
}

/// One 60 s segment as custosd writes it: a row begun, the file made with
/// [`FragmentedWriter`] one 500 ms fragment at a time (video then audio,
/// one `write_all` each), fsynced, then the row completed with the file's
/// size and SHA-256.
fn write_segment(
    ix: &Index,
    root: &Path,
    cam: custos::index::CameraId,
    start_us: i64,
    gop: Option<&Gop>,
    (rng, scratch): (&mut XorShift, &mut Vec<u8>),
) -> custos::Result<()> {
    let rel = custos::storage::segment_path(ZONE, CAMERA, start_us)?;
    let id = ix.begin_segment(&NewSegment {
        camera: cam,
        zone: ZONE,
        root: "main",
        path: &rel,
        start_us,
        time_source: TimeSource::Rtcp,
        clock_offset_us: Some(1_500),
    })?;
    let file = custos::storage::create_segment_file(root, &rel)?;
    let w = footage::write_video(
        custos::storage::HashingFile::new(file),
        start_us,
        SEGMENT_S,
        gop,
        (rng, scratch),
    )?;
    let frames = SEGMENT_S * FPS;
    let (file, bytes, sha256) = w.finish();
    let path = root.join(&rel);
    custos::storage::fsync_file(&file, &path);
    ix.complete_segment(
        id,
        &SegmentSummary {
            end_us: start_us + (SEGMENT_S * 1_000_000) as i64,
            bytes,
            frames,
            key_frames: frames / GOP_FRAMES,
            video_codec: "h264".into(),
            audio_codec: Some("aac".into()),
            sha256,
            recovered: false,
            activity: Vec::new(),
        },
    )
}
