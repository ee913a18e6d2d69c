//! Failpoints for crash tests: `CUSTOS_FAILPOINT=NAME` in the daemon's
//! environment makes the named point misbehave on purpose, so tests can put
//! a real kill or delay exactly where a crash would hurt most. Unset (as in
//! production), every point is a no-op costing one cached lookup.
//!
//! Points:
//! - `after-mark`: retention aborts right after marking segments doomed;
//! - `slow-shutdown`: the shutdown waits 5 s before finalising, so a test
//!   can send the second stop signal while it is under way;
//! - `slow-export`: an export stream pauses 1 s after each file, so a test
//!   can leave in the middle;
//! - `slow-audit-verify`: an audit verification takes 3 s more, so a test
//!   can keep long requests running;
//! - `evidence-copy-before-row`: a hold aborts after its first copy is
//!   renamed into place and its directory fsynced, before the copy's row;
//! - `recovery-read-eio`: reading a cut-off segment back fails with EIO, as
//!   a dying disk's would;
//! - `stall-fsync:ROOT`: the finisher of storage root ROOT hangs before its
//!   first fsync, as on a dead NFS server or disk;
//! - `inbox-after-copy`, `inbox-after-row`, `inbox-after-rename`,
//!   `inbox-after-complete`: an inbox ingest aborts after that step
//!   (`crate::inbox`'s store order);
//! - `slow-redaction`: a redaction's detection takes 200 ms more per frame,
//!   so a test can cancel or kill it part-way.

use std::sync::OnceLock;

fn get() -> Option<&'static str> {
    static FAILPOINT: OnceLock<Option<String>> = OnceLock::new();
    FAILPOINT
        .get_or_init(|| std::env::var("CUSTOS_FAILPOINT").ok())
        .as_deref()
}

/// True if the failpoint `name` is set.
pub fn is(name: &str) -> bool {
    get() == Some(name)
}

/// The argument of failpoint `name`, set as `NAME:ARG`.
pub fn arg(name: &str) -> Option<&'static str> {
    get()?.strip_prefix(name)?.strip_prefix(':')
}

/// Aborts the process (like a kill -9: no destructor, no flush) if the
/// failpoint `name` is set.
pub fn abort_at(name: &str) {
    if is(name) {
        eprintln!("custos: failpoint {name} reached; aborting");
        std::process::abort();
    }
}
