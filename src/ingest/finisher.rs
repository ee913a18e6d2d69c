//! Makes finished segments durable off the streaming threads: fsync the
//! file, fsync its directory, then mark the index row complete. A row is
//! complete only once its file would survive a power cut. After each
//! finished segment it calls an optional hook (the daemon wakes the reaper
//! with it, which checks storage pressure off this thread).
//!
//! Invariants:
//! - One thread and one bounded queue per storage root, so a root whose
//!   fsync hangs holds up only its own cameras, and at most
//!   `QUEUE_PER_CAMERA` files per camera stay open waiting for it. A
//!   camera's room goes only after the jobs queued before it stopped are
//!   done, so cameras stopping together (shutdown) never crowd out each
//!   other's last segments.
//! - A hand-off never blocks a streaming thread: when a root's queue is
//!   full, the job is handed back, and the segmenter closes the file and
//!   leaves its row `recording` for the start-up pass.
//! - A camera's `segments_written` counts durable segments (what the
//!   watchdog's progress check needs), and its status tells since when a
//!   segment has been waiting to become durable.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::index::{SegmentId, SegmentSummary, TimeSource};
use crate::storage;

use super::CameraStatus;
use crate::index::SharedIndex;

/// Segments per camera a root's queue holds, the one being finished
/// included. Cameras cut at about the same moment, so a root's queue must
/// hold a burst of one segment per camera; four per camera only fill when
/// the root is stuck, not busy (finishing takes milliseconds).
pub const QUEUE_PER_CAMERA: usize = 4;

/// How long `flush` waits for each root.
const FLUSH_WAIT: Duration = Duration::from_secs(10);

pub struct FinishJob {
    pub id: SegmentId,
    /// Times corrected after the row was written (see `Segmenter`).
    pub retime: Option<Retime>,
    pub path: PathBuf,
    pub file: File,
    pub summary: SegmentSummary,
    /// The camera's status, told once the segment is durable.
    pub status: Arc<CameraStatus>,
}

/// A segment's start and time source, when they changed while it was written.
#[derive(Debug, Clone, Copy)]
pub struct Retime {
    pub start_us: i64,
    pub time_source: TimeSource,
    pub clock_offset_us: Option<i64>,
}

enum Job {
    Finish(Box<FinishJob>),
    /// A segment whose writing failed: read back what is on disk.
    Recover(SegmentId, PathBuf, File),
    /// Answered once every job sent before it is done.
    Barrier(mpsc::Sender<()>),
    /// A camera stopped: the lane's limit shrinks once every job sent
    /// before this one is done, so the last segments of cameras stopping
    /// together (at shutdown) are never refused for room that is only
    /// theirs until they are durable.
    Detach,
}

type Hook = Arc<dyn Fn(&Path) + Send + Sync>;

/// A handle to the finisher threads; cheap to clone.
#[derive(Clone)]
pub struct Finisher {
    inner: Arc<Inner>,
}

struct Inner {
    index: SharedIndex,
    finished: Hook,
    /// Root id -> its queue; a root's thread starts with its first job
    /// or camera.
    lanes: Mutex<BTreeMap<String, Arc<Lane>>>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// One root's queue. The channel itself is unbounded; `in_flight` bounds
/// it, to `QUEUE_PER_CAMERA` times the cameras attached.
struct Lane {
    tx: Sender<Job>,
    in_flight: Arc<AtomicUsize>,
    /// Cameras attached and not yet detached by the lane's thread.
    cameras: Arc<AtomicUsize>,
}

impl Lane {
    fn limit(&self) -> usize {
        QUEUE_PER_CAMERA * self.cameras.load(Ordering::Relaxed).max(1)
    }

    /// Queues `job` unless the lane is full; hands it back if it is.
    fn try_send(&self, job: Job) -> Result<(), Job> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.limit() {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(job);
        }
        self.tx.send(job).map_err(|e| {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            e.0
        })
    }
}

/// Owns the finisher threads; `join` waits until every submitted job is done.
pub struct FinisherThread {
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Finisher {
    pub fn start(index: SharedIndex) -> (Finisher, FinisherThread) {
        Self::start_with_hook(index, Arc::new(|_| {}))
    }

    /// Like [`Finisher::start`], calling `finished(path)` after each
    /// segment is durable and indexed. The hook must not block.
    pub fn start_with_hook(index: SharedIndex, finished: Hook) -> (Finisher, FinisherThread) {
        let threads = Arc::new(Mutex::new(Vec::new()));
        let inner = Inner {
            index,
            finished,
            lanes: Mutex::new(BTreeMap::new()),
            threads: threads.clone(),
        };
        (
            Finisher {
                inner: Arc::new(inner),
            },
            FinisherThread { threads },
        )
    }

    /// Hands a finished segment of storage root `root` over, or hands it
    /// back if that root's queue is full.
    pub fn submit(&self, root: &str, job: FinishJob) -> Result<(), Box<FinishJob>> {
        let status = job.status.clone();
        status.finishing_started();
        match self.lane(root).try_send(Job::Finish(Box::new(job))) {
            Ok(()) => Ok(()),
            Err(Job::Finish(job)) => {
                status.finishing_refused();
                Err(job)
            }
            Err(_) => unreachable!("a finish job comes back as it went"),
        }
    }

    /// A camera records to `root`: its queue grows by `QUEUE_PER_CAMERA`.
    pub fn attach(&self, root: &str) {
        self.lane(root).cameras.fetch_add(1, Ordering::Relaxed);
    }

    /// The camera attached to `root` stopped; its room in the queue goes
    /// once the jobs queued before now are done (see `Job::Detach`).
    pub fn detach(&self, root: &str) {
        let lane = self.lane(root);
        if lane.tx.send(Job::Detach).is_err() {
            detach_now(&lane.cameras);
        }
    }

    /// Reads a segment whose writing failed back (`recovery`). If the
    /// root's queue is full the file is closed and its row left
    /// `recording`: the start-up pass does the same then.
    pub fn recover(&self, root: &str, id: SegmentId, path: PathBuf, file: File) {
        if self
            .lane(root)
            .try_send(Job::Recover(id, path.clone(), file))
            .is_err()
        {
            tracing::error!(root, path = %path.display(),
                "the storage root's finisher is stuck; the segment is left for the start-up pass");
        }
    }

    /// Waits until every segment handed over so far is durable and indexed
    /// (so a camera restarted now sees its last segment's true end), but at
    /// most `FLUSH_WAIT` for each root: a stuck root must not stop the
    /// caller too.
    pub fn flush(&self) {
        let lanes: Vec<_> = self
            .lanes()
            .iter()
            .map(|(r, lane)| (r.clone(), lane.clone()))
            .collect();
        for (root, lane) in lanes {
            let (done_tx, done) = mpsc::channel();
            // A barrier holds no file: it may pass a full lane's limit.
            let waited = lane.tx.send(Job::Barrier(done_tx)).is_ok()
                && done.recv_timeout(FLUSH_WAIT).is_ok();
            if !waited {
                tracing::warn!(
                    root,
                    "storage root's finisher did not catch up; not waiting for it"
                );
            }
        }
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Lane>>> {
        self.inner.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lane(&self, root: &str) -> Arc<Lane> {
        let mut lanes = self.lanes();
        if let Some(lane) = lanes.get(root) {
            return lane.clone();
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let lane = Arc::new(Lane {
            tx,
            in_flight: Arc::new(AtomicUsize::new(0)),
            cameras: Arc::new(AtomicUsize::new(0)),
        });
        let (index, finished, name, in_flight, cameras) = (
            self.inner.index.clone(),
            self.inner.finished.clone(),
            root.to_owned(),
            lane.in_flight.clone(),
            lane.cameras.clone(),
        );
        let handle = std::thread::Builder::new()
            .name(format!("finish-{root}"))
            .spawn(move || run(&name, &index, &*finished, &in_flight, &cameras, rx))
            .expect("spawning a finisher thread");
        self.inner
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle);
        lanes.insert(root.to_owned(), lane.clone());
        lane
    }
}

impl FinisherThread {
    /// Waits for the queues to drain. Every `Finisher` clone must be
    /// dropped first, or this waits forever.
    pub fn join(self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

fn run(
    root: &str,
    index: &SharedIndex,
    finished: &(dyn Fn(&Path) + Send + Sync),
    in_flight: &AtomicUsize,
    cameras: &AtomicUsize,
    rx: mpsc::Receiver<Job>,
) {
    for job in rx {
        let holds_file = !matches!(job, Job::Barrier(_) | Job::Detach);
        match job {
            Job::Finish(job) => {
                let path = job.path.clone();
                let status = job.status.clone();
                let bytes = job.summary.bytes;
                let durable = finish(root, index, *job);
                status.finishing_ended();
                if durable {
                    status.segment_written(bytes);
                }
                finished(&path);
            }
            Job::Barrier(done) => {
                let _ = done.send(());
            }
            Job::Detach => detach_now(cameras),
            Job::Recover(id, path, file) => {
                drop(file);
                if let Err(e) = crate::recovery::recover_segment(index, id, &path) {
                    tracing::error!(path = %path.display(), error = %e,
                        "recovering a failed segment");
                }
            }
        }
        if holds_file {
            in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn detach_now(cameras: &AtomicUsize) {
    let _ = cameras.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
}

/// Makes one segment durable and completes its row; false if the row could
/// not be completed (it stays `recording` for the start-up pass).
fn finish(root: &str, index: &SharedIndex, job: FinishJob) -> bool {
    if crate::failpoint::arg("stall-fsync") == Some(root) {
        // A hung fsync: the thread never comes back.
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    storage::fsync_file(&job.file, &job.path);
    drop(job.file);
    if let Some(dir) = job.path.parent() {
        storage::fsync_dir(dir);
    }
    let completed = index.lock().transaction(|ix| {
        if let Some(r) = job.retime {
            ix.retime_segment(job.id, r.start_us, r.time_source, r.clock_offset_us)?;
        }
        ix.complete_segment(job.id, &job.summary)
    });
    if let Err(e) = completed {
        // The row stays "recording"; the next start-up recovers it from the file.
        tracing::error!(path = %job.path.display(), error = %e, "indexing a finished segment");
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Index, NewSegment, SegmentState};
    use crate::ingest::CameraState;

    fn job(
        index: &SharedIndex,
        dir: &Path,
        camera: &str,
        n: i64,
        st: &Arc<CameraStatus>,
    ) -> FinishJob {
        let ix = index.lock();
        let rel = format!("{camera}-{n}.mp4");
        let id = ix
            .begin_segment(&NewSegment {
                camera: ix.camera_id(camera).unwrap(),
                zone: "indoor",
                root: "main",
                path: &rel,
                start_us: n * 1_000_000,
                time_source: TimeSource::Local,
                clock_offset_us: None,
            })
            .unwrap();
        let path = dir.join(&rel);
        FinishJob {
            id,
            retime: None,
            file: File::create(&path).unwrap(),
            path,
            summary: SegmentSummary {
                end_us: n * 1_000_000 + 500_000,
                bytes: 0,
                frames: 1,
                key_frames: 1,
                video_codec: "h264".into(),
                audio_codec: None,
                sha256: [0; 32],
                recovered: false,
                activity: Vec::new(),
            },
            status: st.clone(),
        }
    }

    /// At shutdown every camera hands over its last segment while the others
    /// detach; on a slow disk the queue is then fuller than the room of the
    /// cameras still attached. The last segments must still be taken (the
    /// demo's Ctrl-C once left one `recording` this way).
    #[test]
    fn the_last_segments_of_cameras_stopping_together_are_never_refused() {
        let dir = tempfile::tempdir().unwrap();
        let index = SharedIndex::new(Index::open(&dir.path().join("index.db")).unwrap());
        // A slow disk: each finished segment waits for a token.
        let (tokens, gate) = mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let hook: Hook = Arc::new(move |_| {
            let _ = gate.lock().unwrap().recv();
        });
        let (finisher, thread) = Finisher::start_with_hook(index.clone(), hook);
        let st = Arc::new(CameraStatus::new(CameraState::Recording));
        finisher.attach("main");
        finisher.attach("main");
        for n in 0..7 {
            assert!(
                finisher
                    .submit("main", job(&index, dir.path(), "a", n, &st))
                    .is_ok()
            );
        }
        // Camera a stops; camera b's last segment still has its room.
        finisher.detach("main");
        let last = job(&index, dir.path(), "b", 100, &st);
        assert!(
            finisher.submit("main", last).is_ok(),
            "the last segment of a stopping camera was refused"
        );
        for _ in 0..8 {
            tokens.send(()).unwrap();
        }
        drop(finisher);
        thread.join();
        let ix = index.lock();
        for camera in ["a", "b"] {
            for s in ix.segments(camera, 0, i64::MAX).unwrap() {
                assert_eq!(s.state, SegmentState::Complete, "{s:?}");
            }
        }
    }
}
