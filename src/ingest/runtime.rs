//! The one tokio runtime of ingest: every camera's supervisor and every
//! retina connection is a task on it, not a thread of its own. With a
//! thread per camera (and, for retina, a runtime per camera), each packet
//! cost wake-ups and context switches that dominated the path, and each
//! thread its stack and allocator arena (BENCHMARKS.md, issue 21).
//!
//! Invariants:
//! - [`WORKERS`] threads run every task, whatever the number of cameras.
//! - A task never blocks a worker on I/O that can take long (the index, a
//!   segment's file, a GStreamer state change): it goes through
//!   [`blocking`], which hands the worker's other tasks to a new thread
//!   meanwhile. Those threads end after [`IDLE`] without work.

use std::sync::OnceLock;
use std::time::Duration;

/// Threads that run the tasks: enough to use both cores of a small
/// recorder, few enough that 128 cameras add none.
pub const WORKERS: usize = 2;

/// A thread lent to blocking work ends after this long without any.
const IDLE: Duration = Duration::from_secs(2);

/// The runtime, started when the first camera starts.
pub(super) fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKERS)
                .thread_name("ingest")
                .thread_keep_alive(IDLE)
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start recording (no threads for ingest: {e})"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Runs `f`, which may block, from a task of the runtime without holding
/// up the other tasks of its worker.
pub(super) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}
