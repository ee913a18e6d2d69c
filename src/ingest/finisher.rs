//! Makes finished segments durable off the streaming threads: fsync the
//! file, fsync its directory, then mark the index row complete. A row is
//! complete only once its file would survive a power cut. After each
//! finished segment it calls an optional hook (the daemon wakes the reaper
//! with it, which checks storage pressure off this thread).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::index::{SegmentId, SegmentSummary, TimeSource};
use crate::storage;

use super::SharedIndex;

pub struct FinishJob {
    pub id: SegmentId,
    /// Times corrected after the row was written (see `Segmenter`).
    pub retime: Option<Retime>,
    pub path: PathBuf,
    pub file: File,
    pub summary: SegmentSummary,
}

/// A segment's start and time source, when they changed while it was written.
#[derive(Debug, Clone, Copy)]
pub struct Retime {
    pub start_us: i64,
    pub time_source: TimeSource,
    pub clock_offset_us: Option<i64>,
}

enum Job {
    Finish(FinishJob),
    /// A segment whose writing failed: read back what is on disk.
    Recover(SegmentId, PathBuf, File),
    /// Answered once every job sent before it is done.
    Barrier(mpsc::Sender<()>),
}

/// A handle to the finisher thread; cheap to clone.
#[derive(Clone)]
pub struct Finisher {
    tx: mpsc::Sender<Job>,
}

/// Owns the finisher thread; `join` waits until every submitted job is done.
pub struct FinisherThread {
    handle: JoinHandle<()>,
}

impl Finisher {
    pub fn start(index: SharedIndex) -> (Finisher, FinisherThread) {
        Self::start_with_hook(index, Box::new(|_| {}))
    }

    /// Like [`Finisher::start`], calling `finished(path)` after each
    /// segment is durable and indexed. The hook must not block.
    pub fn start_with_hook(
        index: SharedIndex,
        finished: Box<dyn Fn(&Path) + Send>,
    ) -> (Finisher, FinisherThread) {
        let (tx, rx) = mpsc::channel::<Job>();
        let handle = std::thread::Builder::new()
            .name("finisher".into())
            .spawn(move || {
                for job in rx {
                    match job {
                        Job::Finish(job) => {
                            let path = job.path.clone();
                            finish(&index, job);
                            finished(&path);
                        }
                        Job::Barrier(done) => {
                            let _ = done.send(());
                        }
                        Job::Recover(id, path, file) => {
                            drop(file);
                            if let Err(e) = crate::recovery::recover_segment(&index, id, &path) {
                                tracing::error!(path = %path.display(), error = %e,
                                    "recovering a failed segment");
                            }
                        }
                    }
                }
            })
            .expect("spawning the finisher thread");
        (Finisher { tx }, FinisherThread { handle })
    }

    pub fn submit(&self, job: FinishJob) {
        // The thread outlives every sender; a send can fail only after a
        // panic there, which aborts anyway.
        let _ = self.tx.send(Job::Finish(job));
    }

    pub fn recover(&self, id: SegmentId, path: PathBuf, file: File) {
        let _ = self.tx.send(Job::Recover(id, path, file));
    }

    /// Waits until every segment handed over so far is durable and indexed
    /// (so a camera restarted now sees its last segment's true end).
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Job::Barrier(tx)).is_ok() {
            let _ = rx.recv();
        }
    }
}

impl FinisherThread {
    /// Waits for the queue to drain. Every `Finisher` clone must be dropped
    /// first, or this waits forever.
    pub fn join(self) {
        let _ = self.handle.join();
    }
}

fn finish(index: &SharedIndex, job: FinishJob) {
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
    }
}
