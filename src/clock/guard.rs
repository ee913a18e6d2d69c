//! The clock guard: destruction (the reaper's passes, the audit purge) runs
//! only while the wall clock is plausible, because every cut-off is "now
//! minus a ceiling" and a wrong "now" destroys footage inside its ceiling.
//!
//! The wall clock is plausible when:
//! - since the last check that found it plausible, it advanced by what the
//!   monotonic clock did, within [`TOLERANCE_US`]: a clock stepped a year
//!   forward (or back) fails this. The reference is kept from the last
//!   *plausible* check, so a jumped clock never becomes the new normal by
//!   being read twice; it is plausible again once it is put back.
//! - before any check found it plausible (at start-up), it is not earlier
//!   than what is already known to have happened (the newest footage's end,
//!   the newest audit entry) by more than [`TOLERANCE_US`]: a machine
//!   without a battery-backed RTC that boots in 2000 fails this. Once the
//!   monotonic reference exists it is the better witness: footage stamped
//!   while the clock was ahead must not keep the alarm on after the clock
//!   is put back.
//!
//! Nothing is known on a fresh install before the first check, so it
//! passes. Limits: a clock already wrong when custosd starts, but later
//! than every known time, cannot be told from a long downtime; a machine
//! that suspends shows as a forward jump (restart custosd then). On an implausible reading the guard raises a [`ClockAlarm`] (status,
//! metrics, log at error once, saying what to check) and the caller deletes
//! nothing; the alarm clears at the first plausible reading.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::{Clocks, UnixMicros, format_utc};

/// How far the wall clock may disagree with what is known, and with the
/// monotonic clock between two checks: more than NTP steps a healthy clock
/// at boot, far less than the shortest ceiling (a day).
pub const TOLERANCE_US: i64 = 10 * 60 * 1_000_000;

/// What is known to have happened, as wall-clock times, from the index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KnownTimes {
    /// End of the newest complete segment.
    pub newest_footage_us: Option<UnixMicros>,
    /// Time of the newest audit entry.
    pub newest_audit_us: Option<UnixMicros>,
}

/// The wall clock is not plausible: destruction is suspended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClockAlarm {
    /// What is wrong and what to check, for a person.
    pub state: String,
    /// The wall clock's reading when the alarm was raised.
    pub since_us: UnixMicros,
    /// The wall clock's reading at the latest check.
    pub wall_us: UnixMicros,
}

#[derive(Debug, Default)]
struct State {
    /// Wall and monotonic time at the last plausible check.
    trusted: Option<(UnixMicros, Instant)>,
    alarm: Option<ClockAlarm>,
}

/// Shared by everything that destroys on the wall clock's word.
#[derive(Debug, Default)]
pub struct ClockGuard {
    state: Mutex<State>,
    raised: AtomicU64,
}

impl ClockGuard {
    pub fn new() -> Arc<ClockGuard> {
        Arc::new(ClockGuard::default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the wall clock and checks it against `known` and the monotonic
    /// clock. `Ok(now)`: destroy at `now`. `Err`: delete nothing; the alarm
    /// is raised (or kept) and returned.
    pub fn check(&self, clocks: &dyn Clocks, known: &KnownTimes) -> Result<UnixMicros, ClockAlarm> {
        let now = clocks.realtime();
        let mono = clocks.monotonic();
        let mut st = self.lock();
        match doubt(now, mono, st.trusted, known) {
            None => {
                st.trusted = Some((now, mono));
                if st.alarm.take().is_some() {
                    tracing::info!(
                        wall = %format_utc(now),
                        "the wall clock is plausible again; destruction resumes"
                    );
                }
                Ok(now)
            }
            Some(why) => {
                let state = format!(
                    "{why}: check NTP and the RTC (timedatectl status; chronyc tracking); \
                     destruction (retention passes, audit purge) is suspended until the clock \
                     is plausible"
                );
                let alarm = st.alarm.get_or_insert_with(|| {
                    self.raised.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(wall = %format_utc(now), "{state}");
                    ClockAlarm {
                        state: state.clone(),
                        since_us: now,
                        wall_us: now,
                    }
                });
                alarm.state = state;
                alarm.wall_us = now;
                Err(alarm.clone())
            }
        }
    }

    /// The active alarm, if any.
    pub fn alarm(&self) -> Option<ClockAlarm> {
        self.lock().alarm.clone()
    }

    /// How many times an alarm was raised since start.
    pub fn raised_total(&self) -> u64 {
        self.raised.load(Ordering::Relaxed)
    }
}

/// Why the reading `now` is not plausible, or `None` if it is.
fn doubt(
    now: UnixMicros,
    mono: Instant,
    trusted: Option<(UnixMicros, Instant)>,
    known: &KnownTimes,
) -> Option<String> {
    let Some((then, then_mono)) = trusted else {
        return before_known(now, known);
    };
    let mono_us =
        i64::try_from(mono.saturating_duration_since(then_mono).as_micros()).unwrap_or(i64::MAX);
    let wall_us = now.saturating_sub(then);
    let off = wall_us.saturating_sub(mono_us);
    if off.abs() <= TOLERANCE_US {
        return None;
    }
    let direction = if off > 0 { "forward" } else { "back" };
    Some(format!(
        "the wall clock reads {} and jumped {direction} by {} since {} (the monotonic clock \
         advanced {} in that time)",
        format_utc(now),
        human(off.unsigned_abs()),
        format_utc(then),
        human(mono_us.unsigned_abs()),
    ))
}

/// Why `now` is earlier than what is known to have happened, if it is.
fn before_known(now: UnixMicros, known: &KnownTimes) -> Option<String> {
    let facts = [
        (known.newest_footage_us, "footage up to", "exists"),
        (known.newest_audit_us, "audit entries up to", "exist"),
    ];
    for (at, what, verb) in facts {
        if let Some(at) = at
            && now < at.saturating_sub(TOLERANCE_US)
        {
            return Some(format!(
                "the wall clock reads {} but {what} {} {verb}",
                format_utc(now),
                format_utc(at)
            ));
        }
    }
    None
}

/// A long duration the way a person reads it: "365 days", "2 days 3 h",
/// "4 h 10 min", "12 min 5 s".
fn human(us: u64) -> String {
    let s = us / 1_000_000;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, _) => format!("{m} min {s} s"),
        (0, _, _) => format!("{h} h {m} min"),
        (_, 0, _) => format!("{d} days"),
        _ => format!("{d} days {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimulatedClocks;
    use std::time::Duration;

    const NOW: UnixMicros = 1_795_341_600_000_000;
    const YEAR_US: i64 = 365 * 86_400 * 1_000_000;

    #[test]
    fn a_fresh_install_and_normal_operation_are_plausible() {
        let c = SimulatedClocks::new(NOW);
        let g = ClockGuard::default();
        assert_eq!(g.check(&c, &KnownTimes::default()), Ok(NOW));
        c.advance(Duration::from_secs(300));
        let known = KnownTimes {
            newest_footage_us: Some(NOW + 300_000_000 + 2_000_000),
            newest_audit_us: Some(NOW),
        };
        assert!(g.check(&c, &known).is_ok());
        assert_eq!(g.raised_total(), 0);
    }

    #[test]
    fn a_forward_step_alarms_until_the_clock_is_put_back() {
        let c = SimulatedClocks::new(NOW);
        let g = ClockGuard::default();
        g.check(&c, &KnownTimes::default()).unwrap();
        c.advance(Duration::from_secs(300));
        c.step_wall(YEAR_US);
        let a = g.check(&c, &KnownTimes::default()).unwrap_err();
        assert!(
            a.state.contains("jumped forward by 365 days since"),
            "{a:?}"
        );
        // Read again: still a jump relative to the last plausible reading.
        c.advance(Duration::from_secs(300));
        assert!(g.check(&c, &KnownTimes::default()).is_err());
        assert_eq!(g.raised_total(), 1);
        // Footage stamped while the clock was ahead does not keep the alarm.
        c.step_wall(-YEAR_US);
        let stamped_ahead = KnownTimes {
            newest_footage_us: Some(NOW + YEAR_US),
            newest_audit_us: None,
        };
        assert!(g.check(&c, &stamped_ahead).is_ok());
        assert_eq!(g.alarm(), None);
    }

    #[test]
    fn at_start_up_a_clock_before_known_times_alarms() {
        let c = SimulatedClocks::new(NOW);
        let g = ClockGuard::default();
        let known = KnownTimes {
            newest_footage_us: Some(NOW + TOLERANCE_US + 1),
            newest_audit_us: Some(NOW),
        };
        let a = g.check(&c, &known).unwrap_err();
        assert!(a.state.contains("but footage up to"), "{a:?}");
        // Within the tolerance (NTP's first step, a camera's clock) it passes.
        let g = ClockGuard::default();
        let known = KnownTimes {
            newest_footage_us: Some(NOW + TOLERANCE_US),
            newest_audit_us: Some(NOW + TOLERANCE_US),
        };
        assert_eq!(g.check(&c, &known), Ok(NOW));
    }
}
