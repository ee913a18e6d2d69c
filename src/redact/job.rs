//! The redaction worker: one thread of the daemon that runs the jobs of
//! the `redaction` table one at a time, oldest first, at a lower priority
//! than recording (nice 10) where the system call filter allows it.
//!
//! A job's files are in `STATE_DIR/redactions/ID/` (owner-only):
//! `detections.jsonl` (one line of boxes per frame, appended and fsynced a
//! batch at a time), `tracks.json` and `tracks.png` once detection is done,
//! then `copy.mp4`, `copy.png` (the copy's review sheet) and the record in
//! the row.
//!
//! Invariants:
//! - Detection resumes where it stopped: after a restart or a cancel and
//!   resume, the frames already in `detections.jsonl` are decoded but not
//!   looked at again; a torn last line is dropped and redone.
//! - Rendering starts over when resumed (it is several times faster than
//!   detection); a copy exists only complete (`render`).
//! - Between batches the worker reads the job's row: a job no longer in
//!   its phase (cancelled) stops there, and a stopping daemon stops it
//!   too, leaving it in its phase to resume at the next start.
//! - Once a job's request is closed, its files are destroyed and the row
//!   marked purged: the copy was for that request only.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::choice::Choice;
use super::detect::{DEFAULT_THRESHOLD, Detector, FaceBox, MODEL_FILE};
use super::footage::{Footage, Next};
use super::record::{self, Record};
use super::track::{self, Linking, Track};
use super::{render, sheets};
use crate::clock::Clocks;
use crate::config::Config;
use crate::index::{RedactionRow, RedactionState, SharedIndex};
use crate::retention::Leases;
use crate::{Error, Result};

/// Frames between fsyncs of the detections and checks of the job's row.
const BATCH: u64 = 10;
/// How often the worker looks for work.
const POLL: Duration = Duration::from_millis(500);
/// How often it looks for closed requests' files to destroy.
const PURGE_EVERY_US: i64 = 5_000_000;

/// The directory of job `id`'s files.
pub fn work_dir(state_dir: &Path, id: i64) -> PathBuf {
    state_dir.join("redactions").join(id.to_string())
}

pub const TRACKS_FILE: &str = "tracks.json";
pub const TRACKS_SHEET: &str = "tracks.png";
pub const COPY_FILE: &str = "copy.mp4";
pub const COPY_SHEET: &str = "copy.png";
const DETECTIONS_FILE: &str = "detections.jsonl";

/// The detector's input for a `w`×`h` picture at `width` wide: multiples
/// of 32, the height following the picture's shape.
pub fn detector_size(width: u32, w: u32, h: u32) -> (u32, u32) {
    let dw = (width.min(w.div_ceil(32) * 32) / 32).max(1) * 32;
    let dh = ((u64::from(h) * u64::from(dw) / u64::from(w.max(1))) as u32 + 16) / 32 * 32;
    (dw, dh.max(32))
}

/// What the worker needs of the daemon.
pub struct Context {
    pub index: SharedIndex,
    pub config: Arc<Mutex<Arc<Config>>>,
    pub leases: Arc<Leases>,
    pub clocks: Arc<dyn Clocks>,
    pub model_dir: PathBuf,
}

/// The worker thread.
pub struct Worker {
    stop: Arc<AtomicBool>,
    config: Arc<Mutex<Arc<Config>>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn start(ctx: Context) -> Worker {
        let stop = Arc::new(AtomicBool::new(false));
        let config = ctx.config.clone();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("redaction".into())
            .spawn(move || run(&ctx, &flag))
            .ok();
        Worker {
            stop,
            config,
            thread,
        }
    }

    /// The configuration after a reload.
    pub fn set_config(&self, config: Arc<Config>) {
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = config;
    }

    /// Stops the worker at its next batch; the job stays in its phase.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The worker's nice value: recording comes first. Linux keeps nice per
/// thread, and the GStreamer threads a job starts inherit it. The packaged
/// unit's system call filter denies @resources (setpriority with it): there
/// the worker runs at normal priority, on its one detector thread.
const NICE: libc::c_int = 10;

fn run(ctx: &Context, stop: &AtomicBool) {
    // SAFETY: setpriority only reads its arguments; 0 is the calling thread.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE) } != 0 {
        tracing::info!(error = %std::io::Error::last_os_error(),
            "the redaction worker runs at normal priority (setpriority refused)");
    }
    let mut last_purge = None;
    while !stop.load(Ordering::SeqCst) {
        let config = ctx.config.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let now = ctx.clocks.realtime();
        if last_purge.is_none_or(|t| now - t > PURGE_EVERY_US) {
            last_purge = Some(now);
            if let Err(e) = purge(ctx, &config) {
                tracing::warn!(error = %e, "cannot destroy the files of closed requests' redactions");
            }
        }
        let job = match ctx.index.lock().next_redaction_work() {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the redaction jobs");
                None
            }
        };
        let Some(job) = job else {
            std::thread::sleep(POLL);
            continue;
        };
        tracing::info!(redaction = job.id, request = %job.request_id, phase = job.state.as_str(),
            "redaction job runs");
        let result = match job.state {
            RedactionState::Detecting => detect_phase(ctx, &config, &job, stop),
            _ => render_phase(ctx, &config, &job, stop),
        };
        if let Err(e) = result {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let still =
                matches!(ctx.index.lock().redaction(job.id), Ok(Some(r)) if r.state == job.state);
            if still {
                tracing::error!(redaction = job.id, error = %e, "redaction job failed");
                let _ = ctx.index.lock().move_redaction(
                    job.id,
                    job.state,
                    RedactionState::Failed,
                    Some(&e.to_string()),
                    ctx.clocks.realtime(),
                );
            }
        }
    }
}

/// Whether job `id` is still in `phase` and the daemon not stopping.
fn go_on(ctx: &Context, id: i64, phase: RedactionState, stop: &AtomicBool) -> Result<Next> {
    if stop.load(Ordering::SeqCst) {
        return Err(Error::unavailable("the daemon is stopping"));
    }
    Ok(match ctx.index.lock().redaction(id)? {
        Some(r) if r.state == phase => Next::More,
        _ => Next::Stop,
    })
}

fn private_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(crate::storage::FILE_MODE)
        .open(path)
        .map_err(|e| Error::io("cannot create", path, e))
}

/// Writes `bytes` to `dir/name` durably (temporary name, fsync, rename).
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = private_file(&tmp)?;
    f.write_all(bytes)
        .map_err(|e| Error::io("cannot write", &tmp, e))?;
    crate::storage::fsync_file(&f, &tmp);
    let path = dir.join(name);
    fs::rename(&tmp, &path).map_err(|e| Error::io("cannot rename", &tmp, e))?;
    crate::storage::fsync_dir(dir);
    Ok(())
}

/// The detections already made: one entry per frame, in order. A line
/// that does not parse (torn by a crash) and everything after it is
/// dropped from the file.
fn read_detections(path: &Path) -> Result<Vec<Vec<FaceBox>>> {
    let Ok(f) = File::open(path) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut good = 0u64;
    for line in std::io::BufReader::new(f).split(b'\n') {
        let line = line.map_err(|e| Error::io("cannot read", path, e))?;
        match serde_json::from_slice::<Vec<FaceBox>>(&line) {
            Ok(boxes) => {
                out.push(boxes);
                good += line.len() as u64 + 1;
            }
            Err(_) => break,
        }
    }
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io("cannot open", path, e))?;
    f.set_len(good)
        .map_err(|e| Error::io("cannot truncate", path, e))?;
    Ok(out)
}

/// Job `job`'s range, planned and leased.
fn footage(ctx: &Context, config: &Config, job: &RedactionRow) -> Result<Footage> {
    Footage::plan(
        &ctx.index.lock(),
        config,
        &ctx.leases,
        &job.camera,
        job.from_us,
        job.to_us,
    )
}

fn detect_phase(
    ctx: &Context,
    config: &Config,
    job: &RedactionRow,
    stop: &AtomicBool,
) -> Result<()> {
    let dir = work_dir(&config.daemon.state_dir, job.id);
    crate::storage::make_private_dir(&dir)?;
    let footage = footage(ctx, config, job)?;
    let total = footage.frames();
    let (dw, dh) = detector_size(job.detect_width, footage.width, footage.height);
    let detector = Detector::load(&ctx.model_dir.join(MODEL_FILE), dw, dh)?;
    let path = dir.join(DETECTIONS_FILE);
    let mut found = read_detections(&path)?;
    let resumed = found.len() as u64;
    if resumed > 0 {
        tracing::info!(redaction = job.id, frames = resumed, "detection resumes");
    }
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(crate::storage::FILE_MODE)
        .open(&path)
        .map_err(|e| Error::io("cannot open", &path, e))?;
    let mut pending = Vec::new();
    let mut flush = |pending: &mut Vec<u8>, done: u64| -> Result<()> {
        file.write_all(pending)
            .map_err(|e| Error::io("cannot write", &path, e))?;
        crate::storage::fsync_file(&file, &path);
        pending.clear();
        ctx.index
            .lock()
            .redaction_progress(job.id, done, total, ctx.clocks.realtime())
    };
    ctx.index
        .lock()
        .redaction_progress(job.id, resumed, total, ctx.clocks.realtime())?;
    let mut next = Next::More;
    footage.decode(dw, dh, &mut |frame| {
        if frame.index < resumed {
            return Ok(Next::More);
        }
        let boxes = detector.detect(&frame.rgb, DEFAULT_THRESHOLD)?;
        if crate::failpoint::is("slow-redaction") {
            std::thread::sleep(Duration::from_millis(200));
        }
        serde_json::to_writer(&mut pending, &boxes)
            .map_err(|e| Error::internal(format!("writing detections: {e}")))?;
        pending.push(b'\n');
        found.push(boxes);
        let done = frame.index + 1;
        // A cancel is seen at the next frame; what was found is kept.
        next = go_on(ctx, job.id, RedactionState::Detecting, stop)?;
        if done % BATCH == 0 || done == total || next == Next::Stop {
            flush(&mut pending, done)?;
        }
        Ok(next)
    })?;
    if next == Next::Stop {
        tracing::info!(
            redaction = job.id,
            frames = found.len(),
            "detection stopped"
        );
        return Ok(()); // cancelled
    }
    if (found.len() as u64) < total {
        return Err(Error::internal(format!(
            "detection stopped at frame {} of {total}",
            found.len()
        )));
    }
    let tracks = track::link(&found, Linking::default());
    let audio = footage.audio().map(|a| match a.codec {
        crate::mp4::Codec::Aac { .. } => "aac".to_owned(),
        _ => "g711".to_owned(),
    });
    let file = TracksFile {
        width: footage.width,
        height: footage.height,
        audio,
        tracks,
    };
    let tracks = &file.tracks;
    let json =
        serde_json::to_vec(&file).map_err(|e| Error::internal(format!("writing tracks: {e}")))?;
    write_file(&dir, TRACKS_FILE, &json)?;
    let png = sheets::tracks_sheet(&footage, tracks, &config.timezone)?;
    write_file(&dir, TRACKS_SHEET, &png)?;
    if !ctx
        .index
        .lock()
        .redaction_detected(job.id, tracks.len() as u64, ctx.clocks.realtime())?
    {
        return Ok(()); // cancelled as it finished: resuming links again
    }
    tracing::info!(
        redaction = job.id,
        tracks = tracks.len(),
        "faces found; waiting for a choice"
    );
    Ok(())
}

/// What detection found, as `tracks.json` holds it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TracksFile {
    /// The picture's size in pixels (manual masks are given in them).
    pub width: u32,
    pub height: u32,
    /// The recorded sound's codec ("aac", "g711"), if any.
    pub audio: Option<String>,
    pub tracks: Vec<Track>,
}

/// What detection found for job `id`, once it is done.
pub fn read_tracks(state_dir: &Path, id: i64) -> Result<TracksFile> {
    let path = work_dir(state_dir, id).join(TRACKS_FILE);
    let bytes = fs::read(&path).map_err(|e| Error::io("cannot read", &path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::internal(format!("{} is damaged: {e}", path.display())))
}

fn render_phase(
    ctx: &Context,
    config: &Config,
    job: &RedactionRow,
    stop: &AtomicBool,
) -> Result<()> {
    let dir = work_dir(&config.daemon.state_dir, job.id);
    let choice: Choice = serde_json::from_str(job.choice.as_deref().unwrap_or("{}"))
        .map_err(|e| Error::internal(format!("redaction {}'s choice is damaged: {e}", job.id)))?;
    let tracks = read_tracks(&config.daemon.state_dir, job.id)?.tracks;
    let footage = footage(ctx, config, job)?;
    let total = footage.frames();
    for name in [COPY_FILE, COPY_SHEET] {
        let _ = fs::remove_file(dir.join(name));
    }
    let copy = dir.join(COPY_FILE);
    ctx.index
        .lock()
        .redaction_progress(job.id, 0, total, ctx.clocks.realtime())?;
    let rendered = render::render(&footage, &tracks, &choice, &copy, &mut |done| {
        if done % BATCH == 0 || done == total {
            ctx.index
                .lock()
                .redaction_progress(job.id, done, total, ctx.clocks.realtime())?;
            return go_on(ctx, job.id, RedactionState::Rendering, stop);
        }
        Ok(Next::More)
    });
    let rendered = match rendered {
        Ok(r) => r,
        Err(e) if go_on(ctx, job.id, RedactionState::Rendering, stop)? == Next::Stop => {
            tracing::info!(redaction = job.id, error = %e, "rendering stopped");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let (png, marked) = sheets::copy_sheet(&copy, &footage, &rendered.masks, &config.timezone)?;
    write_file(&dir, COPY_SHEET, &png)?;
    let (bytes, sha) = crate::storage::hash_file(&copy)?;
    let rec: Record = record::of(
        config,
        job,
        &footage,
        &tracks,
        &choice,
        &rendered,
        (bytes, hex::encode(sha), marked),
        detector_size(job.detect_width, footage.width, footage.height),
    );
    let json = serde_json::to_string(&rec)
        .map_err(|e| Error::internal(format!("writing the redaction record: {e}")))?;
    ctx.index
        .lock()
        .redaction_rendered(job.id, &json, ctx.clocks.realtime())?;
    tracing::info!(
        redaction = job.id,
        frames = rendered.frames,
        "redacted copy rendered; waiting for approval"
    );
    Ok(())
}

/// Destroys the files of jobs whose request is closed.
fn purge(ctx: &Context, config: &Config) -> Result<()> {
    let now = ctx.clocks.realtime();
    let ids = ctx.index.lock().redactions_to_purge(now)?;
    for id in ids {
        let dir = work_dir(&config.daemon.state_dir, id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("cannot remove", &dir, e)),
        }
        crate::storage::fsync_dir(&config.daemon.state_dir.join("redactions"));
        ctx.index.lock().redaction_purged(id, now)?;
        tracing::info!(
            redaction = id,
            "its request is closed: the redaction's files are destroyed"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detector_input_keeps_the_pictures_shape_in_multiples_of_32() {
        assert_eq!(detector_size(640, 1920, 1080), (640, 352));
        assert_eq!(detector_size(1280, 1920, 1080), (1280, 736));
        assert_eq!(detector_size(640, 320, 240), (320, 256));
        assert_eq!(detector_size(640, 640, 352), (640, 352));
    }

    #[test]
    fn a_torn_detections_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DETECTIONS_FILE);
        fs::write(
            &path,
            b"[]\n[{\"x0\":0.1,\"y0\":0.1,\"x1\":0.2,\"y1\":0.2,\"score\":0.9}]\n[{\"x0\":0.",
        )
        .unwrap();
        let found = read_detections(&path).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].len(), 1);
        let left = fs::read(&path).unwrap();
        assert!(left.ends_with(b"}]\n"), "the torn line is gone");
    }
}
