//! When a request must be answered: one calendar month after it was
//! received, extendable by two more (002 §22.2, §25; 004 §32; GDPR Art.
//! 12(3)). Months are counted on the calendar of the site's zone, from the
//! day of receipt; a day that does not exist in the target month becomes
//! that month's last day (received 31 January: due 28 February, or 29 in a
//! leap year). The last day ends at midnight local time.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

use crate::clock::UnixMicros;
use crate::error::{Error, Result};

/// Months to answer without an extension.
pub const MONTHS_TO_ANSWER: i8 = 1;
/// Most months an extension may add.
pub const MAX_EXTENSION_MONTHS: i8 = 2;
/// A request is "due soon" this many days before its last day ends.
pub const DUE_SOON_DAYS: i64 = 7;

/// The local date `t` falls on in `tz`.
pub fn local_date(t: UnixMicros, tz: &TimeZone) -> Result<Date> {
    Ok(Timestamp::from_microsecond(t)
        .map_err(|e| Error::invalid(format!("time out of range: {e}")))?
        .to_zoned(tz.clone())
        .date())
}

/// The last day to answer a request received at `received_us`, with
/// `extra_months` of extension (0 to [`MAX_EXTENSION_MONTHS`]).
pub fn last_day(received_us: UnixMicros, tz: &TimeZone, extra_months: i8) -> Result<Date> {
    if !(0..=MAX_EXTENSION_MONTHS).contains(&extra_months) {
        return Err(Error::invalid(format!(
            "an extension adds 1 or 2 months, not {extra_months}: the period is one month, \
             extendable by two more (004 §32)"
        )));
    }
    local_date(received_us, tz)?
        .checked_add(Span::new().months(MONTHS_TO_ANSWER + extra_months))
        .map_err(|e| Error::invalid(format!("deadline out of range: {e}")))
}

/// The instant `day` ends in `tz` (the next day's local midnight).
pub fn end_of(day: Date, tz: &TimeZone) -> Result<UnixMicros> {
    let next = day
        .tomorrow()
        .map_err(|e| Error::invalid(format!("date out of range: {e}")))?;
    Ok(next
        .to_zoned(tz.clone())
        .map_err(|e| Error::invalid(format!("date out of range: {e}")))?
        .timestamp()
        .as_microsecond())
}

/// Where a request stands against its last day at `now_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Standing {
    /// More than [`DUE_SOON_DAYS`] left.
    InTime { days_left: i64 },
    /// Its last day ends within [`DUE_SOON_DAYS`].
    DueSoon { days_left: i64 },
    /// Its last day has ended.
    Overdue { days_over: i64 },
}

impl Standing {
    pub fn of(day: Date, tz: &TimeZone, now_us: UnixMicros) -> Result<Standing> {
        let today = local_date(now_us, tz)?;
        // Civil dates subtract to a span of whole days.
        let days = i64::from((day - today).get_days());
        Ok(if now_us >= end_of(day, tz)? {
            Standing::Overdue {
                days_over: (-days).max(1),
            }
        } else if days < DUE_SOON_DAYS {
            Standing::DueSoon { days_left: days }
        } else {
            Standing::InTime { days_left: days }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn vilnius() -> TimeZone {
        TimeZone::get("Europe/Vilnius").unwrap()
    }

    fn at(d: Date, h: i8, tz: &TimeZone) -> UnixMicros {
        d.at(h, 0, 0, 0)
            .to_zoned(tz.clone())
            .unwrap()
            .timestamp()
            .as_microsecond()
    }

    #[test]
    fn one_calendar_month_clamped_to_the_month_end() {
        let tz = vilnius();
        let cases = [
            (date(2027, 1, 31), date(2027, 2, 28)),
            (date(2028, 1, 31), date(2028, 2, 29)), // leap year
            (date(2027, 1, 15), date(2027, 2, 15)),
            (date(2027, 3, 31), date(2027, 4, 30)),
            (date(2027, 12, 20), date(2028, 1, 20)),
        ];
        for (received, due) in cases {
            assert_eq!(last_day(at(received, 10, &tz), &tz, 0).unwrap(), due);
        }
    }

    #[test]
    fn the_day_of_receipt_is_the_local_day() {
        // 23:30 UTC on 31 January is already 1 February in Vilnius.
        let tz = vilnius();
        let t = at(date(2027, 1, 31), 23, &TimeZone::UTC) + 30 * 60 * 1_000_000;
        assert_eq!(last_day(t, &tz, 0).unwrap(), date(2027, 3, 1));
        assert_eq!(last_day(t, &TimeZone::UTC, 0).unwrap(), date(2027, 2, 28));
    }

    #[test]
    fn an_extension_counts_from_receipt_and_adds_at_most_two_months() {
        let tz = vilnius();
        let received = at(date(2027, 1, 31), 10, &tz);
        assert_eq!(last_day(received, &tz, 2).unwrap(), date(2027, 4, 30));
        assert_eq!(last_day(received, &tz, 1).unwrap(), date(2027, 3, 31));
        let err = last_day(received, &tz, 3).unwrap_err().to_string();
        assert!(err.contains("004 §32"), "{err}");
    }

    #[test]
    fn standing_turns_overdue_at_local_midnight_after_the_last_day() {
        let tz = vilnius();
        let day = date(2027, 2, 28);
        let end = end_of(day, &tz).unwrap();
        assert_eq!(end, at(date(2027, 3, 1), 0, &tz));
        assert_eq!(
            Standing::of(day, &tz, end - 1).unwrap(),
            Standing::DueSoon { days_left: 0 }
        );
        assert_eq!(
            Standing::of(day, &tz, end).unwrap(),
            Standing::Overdue { days_over: 1 }
        );
        assert_eq!(
            Standing::of(day, &tz, at(date(2027, 2, 21), 12, &tz)).unwrap(),
            Standing::InTime { days_left: 7 }
        );
        assert_eq!(
            Standing::of(day, &tz, at(date(2027, 2, 22), 12, &tz)).unwrap(),
            Standing::DueSoon { days_left: 6 }
        );
        assert_eq!(
            Standing::of(day, &tz, at(date(2027, 3, 5), 12, &tz)).unwrap(),
            Standing::Overdue { days_over: 5 }
        );
    }
}
