//! Where the daemon's text log goes when it is not the journal: stderr,
//! through a writer that can never stop the daemon. A log whose reader went
//! away (a closed pipe, a restarted journald stream, a full disk behind a
//! redirect) loses lines, not footage: the line is dropped and counted
//! (`custos_log_lines_dropped_total`), and recording goes on. tracing's own
//! writer would report the failure with `eprintln!`, which panics on the
//! same broken stderr and takes the logging thread (a camera's) with it.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Log lines that could not be written since start.
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// stderr that reports success whatever happens to the write.
#[derive(Debug, Default, Clone, Copy)]
pub struct LossyStderr;

impl LossyStderr {
    /// For `tracing_subscriber::fmt().with_writer(LossyStderr::make)`.
    pub fn make() -> LossyStderr {
        LossyStderr
    }
}

impl Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if io::stderr().write_all(buf).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}
