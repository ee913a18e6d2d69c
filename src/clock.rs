//! Time as Custos sees it: wall-clock UTC in microseconds since the Unix
//! epoch, and a monotonic clock for timeouts. Policy code takes a `Clocks` so
//! tests can put boundaries at exact instants. [`guard`] decides whether
//! the wall clock may be trusted to destroy anything.

pub mod guard;

pub use guard::{ClockAlarm, ClockGuard, KnownTimes};

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Microseconds since 1970-01-01T00:00:00Z.
pub type UnixMicros = i64;

pub trait Clocks: Send + Sync + 'static {
    /// Wall-clock time, UTC.
    fn realtime(&self) -> UnixMicros;
    /// A clock that never jumps, for timeouts and intervals.
    fn monotonic(&self) -> Instant;
}

/// The system's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClocks;

impl Clocks for SystemClocks {
    fn realtime(&self) -> UnixMicros {
        system_time_micros(SystemTime::now())
    }

    fn monotonic(&self) -> Instant {
        Instant::now()
    }
}

/// Converts a `SystemTime` to microseconds since the epoch (negative before it).
pub fn system_time_micros(t: SystemTime) -> UnixMicros {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

/// Clocks that move only when told to, for tests of time-based policy.
#[derive(Debug, Clone)]
pub struct SimulatedClocks {
    base: Instant,
    offset_us: Arc<AtomicI64>,
    /// Steps of the wall clock alone (an NTP step, a bad RTC).
    wall_step_us: Arc<AtomicI64>,
    realtime_at_base: UnixMicros,
}

impl SimulatedClocks {
    pub fn new(realtime: UnixMicros) -> Self {
        SimulatedClocks {
            base: Instant::now(),
            offset_us: Arc::new(AtomicI64::new(0)),
            wall_step_us: Arc::new(AtomicI64::new(0)),
            realtime_at_base: realtime,
        }
    }

    /// Time passes: both clocks move by `by`.
    pub fn advance(&self, by: Duration) {
        self.offset_us
            .fetch_add(by.as_micros() as i64, Ordering::SeqCst);
    }

    /// The wall clock is stepped by `by_us` (negative: back); the monotonic
    /// clock does not move.
    pub fn step_wall(&self, by_us: i64) {
        self.wall_step_us.fetch_add(by_us, Ordering::SeqCst);
    }
}

impl Clocks for SimulatedClocks {
    fn realtime(&self) -> UnixMicros {
        self.realtime_at_base
            + self.offset_us.load(Ordering::SeqCst)
            + self.wall_step_us.load(Ordering::SeqCst)
    }

    fn monotonic(&self) -> Instant {
        self.base + Duration::from_micros(self.offset_us.load(Ordering::SeqCst) as u64)
    }
}

/// Formats a time as RFC 3339 UTC with milliseconds, e.g. `2026-11-22T10:15:00.123Z`.
pub fn format_utc(t: UnixMicros) -> String {
    match jiff::Timestamp::from_microsecond(t) {
        Ok(ts) => format!("{ts:.3}"),
        Err(_) => format!("{t}us"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_clocks_move_together() {
        let c = SimulatedClocks::new(1_000_000);
        let m0 = c.monotonic();
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.realtime(), 2_500_000);
        assert_eq!(c.monotonic() - m0, Duration::from_millis(1500));
    }

    #[test]
    fn formats_utc_with_milliseconds() {
        assert_eq!(
            format_utc(1_795_852_800_123_456),
            "2026-11-28T08:00:00.123Z"
        );
    }
}
