//! The reaper: a thread in `custosd` that runs a retention pass every
//! `retention.interval`, and at once when a storage root comes under
//! pressure. The finisher tells it each time a segment is finished
//! ([`ReaperWaker::segment_finished`]); the reaper, not the finisher, then
//! checks the roots (statvfs plus a few index rows), at most once a second.
//!
//! One channel carries every event, so the thread waits on "interval
//! elapsed OR woken OR config changed OR stop" with a single
//! `recv_timeout`. Stopping sets a flag the pass checks between batches, so
//! shutdown never waits for a long pass to finish.
//!
//! Every pass goes through the [`ClockGuard`], which the admin API's audit
//! purge shares: a wall clock that jumped suspends both.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::clock::{ClockGuard, Clocks};
use crate::config::Config;
use crate::index::SharedIndex;

use super::{Context, DEFAULT_BATCH, Leases, StorageAlarms, pass, statvfs_free, under_pressure};

/// Pressure is checked no more often than this after finished segments.
const PRESSURE_CHECK_EVERY: Duration = Duration::from_secs(1);

enum Event {
    Wake,
    SegmentFinished,
    Config(Box<Config>),
    Stop,
}

/// A cheap handle to wake the reaper.
#[derive(Clone)]
pub struct ReaperWaker {
    tx: mpsc::Sender<Event>,
}

impl ReaperWaker {
    /// A segment was finished: check the roots for pressure soon.
    pub fn segment_finished(&self) {
        let _ = self.tx.send(Event::SegmentFinished);
    }

    /// Run a pass now.
    pub fn wake(&self) {
        let _ = self.tx.send(Event::Wake);
    }
}

/// The running reaper thread.
pub struct Reaper {
    tx: mpsc::Sender<Event>,
    cancel: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Reaper {
    /// Starts the thread; its first pass runs at once.
    pub fn start(
        index: SharedIndex,
        config: Config,
        leases: Arc<Leases>,
        alarms: Arc<StorageAlarms>,
        clocks: Arc<dyn Clocks>,
        guard: Arc<ClockGuard>,
    ) -> Reaper {
        let (tx, rx) = mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let handle = std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || {
                let mut config = config;
                let mut next_check = Instant::now();
                let run = |config: &Config| {
                    let ctx = Context {
                        index: &index,
                        config,
                        leases: &leases,
                        alarms: &alarms,
                        clocks: clocks.as_ref(),
                        guard: &guard,
                        free_bytes: &statvfs_free,
                        batch: DEFAULT_BATCH,
                        cancel: Some(&flag),
                    };
                    if let Err(e) = pass(&ctx) {
                        tracing::error!(error = %e, "retention pass failed; retrying next interval");
                    }
                };
                run(&config);
                let mut due = Instant::now() + config.retention.interval;
                loop {
                    let wait = due.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(wait) {
                        Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                        Ok(Event::Config(c)) => {
                            due = Instant::now() + c.retention.interval;
                            config = *c;
                            run(&config);
                        }
                        Ok(Event::Wake) | Err(RecvTimeoutError::Timeout) => {
                            run(&config);
                            due = Instant::now() + config.retention.interval;
                        }
                        Ok(Event::SegmentFinished) => {
                            if Instant::now() < next_check {
                                continue;
                            }
                            next_check = Instant::now() + PRESSURE_CHECK_EVERY;
                            match under_pressure(&index, &config, &statvfs_free) {
                                Ok(true) => run(&config),
                                Ok(false) => {}
                                Err(e) => tracing::error!(error = %e, "checking storage pressure"),
                            }
                        }
                    }
                }
            })
            .expect("spawning the reaper thread");
        Reaper {
            tx,
            cancel,
            handle: Some(handle),
        }
    }

    pub fn waker(&self) -> ReaperWaker {
        ReaperWaker {
            tx: self.tx.clone(),
        }
    }

    /// Uses `config` from now on (after SIGHUP), and runs a pass with it.
    pub fn set_config(&self, config: Config) {
        let _ = self.tx.send(Event::Config(Box::new(config)));
    }

    /// Stops the thread, interrupting a pass between batches.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        let _ = self.tx.send(Event::Stop);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.shutdown();
    }
}
