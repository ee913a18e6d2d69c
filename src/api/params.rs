//! Request parameters: query strings, ids and times. Everything a client
//! sends is checked here before it reaches the index or the disk.

use std::collections::BTreeMap;

use crate::clock::UnixMicros;
use crate::config::MAX_ID_LEN;
use crate::error::{Error, Result};

/// Decoded `key=value` pairs of a query string. A key given twice is refused
/// (which one would win is a guess).
#[derive(Debug, Default)]
pub struct Query(BTreeMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Query> {
        let mut map = BTreeMap::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (decode(k)?, decode(v)?);
            if map.insert(k.clone(), v).is_some() {
                return Err(Error::invalid(format!(
                    "query parameter `{}` is given twice; give it once",
                    k.escape_debug()
                )));
            }
        }
        Ok(Query(map))
    }

    /// Refuses any key not in `known`.
    pub fn only(&self, known: &[&str]) -> Result<()> {
        if let Some(k) = self.0.keys().find(|k| !known.contains(&k.as_str())) {
            let list = if known.is_empty() {
                "this endpoint takes none".to_owned()
            } else {
                format!("expected {}", known.join(", "))
            };
            return Err(Error::invalid(format!(
                "unknown query parameter `{}`; {list}",
                k.escape_debug()
            )));
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A time parameter, if present (see [`parse_time`]).
    pub fn time(
        &self,
        key: &str,
        tz: &jiff::tz::TimeZone,
        now_us: UnixMicros,
    ) -> Result<Option<UnixMicros>> {
        self.get(key)
            .map(|v| {
                parse_time(v, tz, now_us)
                    .map_err(|e| Error::invalid(format!("query parameter `{key}`: {e}")))
            })
            .transpose()
    }

    pub fn u32(&self, key: &str) -> Result<Option<u32>> {
        self.get(key)
            .map(|v| {
                v.parse::<u32>().map_err(|_| {
                    Error::invalid(format!(
                        "query parameter `{key}`: \"{}\" is not a whole number from 0 to 4294967295",
                        v.escape_debug()
                    ))
                })
            })
            .transpose()
    }
}

/// Percent-decoding (`+` is a space), to UTF-8.
fn decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        Error::invalid("the query string has a bad %-escape; encode it as %XX")
                    })?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| Error::invalid("the query string is not UTF-8"))
}

/// Decodes one path segment (`%2F` and the like), for [`check_id`] to judge.
pub fn decode_path(s: &str) -> Result<String> {
    decode(&s.replace('+', "%2B"))
}

/// Percent-encodes a query value (the client side of [`Query::parse`]).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Checks a camera (or other) id taken from a path before it is used: the
/// same alphabet as config ids, so no `/`, `..`, control characters or
/// anything else that could leave a directory.
pub fn check_id(what: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if ok {
        Ok(())
    } else {
        let shown: String = id.chars().take(MAX_ID_LEN).collect();
        Err(Error::invalid(format!(
            "\"{}\" is not a valid {what} id: use the id from the configuration (ASCII \
             letters, digits, '-', '_'; at most {MAX_ID_LEN} bytes)",
            shown.escape_debug()
        )))
    }
}

/// The forms [`parse_time`] takes, for messages and help texts.
pub const TIME_FORMS: &str = "now, -10m, -2h, today 08:00, yesterday 17:30, RFC 3339 \
     (2026-03-01T08:00:00+02:00) or local YYYY-MM-DD HH:MM[:SS]";

/// Parses a time as people type it: `now`; `-10m`, `-2h`, `-1d` (before
/// `now_us`); `today 08:00`, `yesterday 17:30:15`; RFC 3339
/// (`2026-03-01T08:00:00+02:00`, `...Z`); or local `2026-03-01 08:00[:30]`.
/// Local times are in `tz`, and a refusal says so. A local time that occurs
/// twice (autumn clock change) takes the earlier.
pub fn parse_time(s: &str, tz: &jiff::tz::TimeZone, now_us: UnixMicros) -> Result<UnixMicros> {
    let s = s.trim();
    let refuse = |why: &str| {
        Error::invalid(format!(
            "\"{}\" is not a time{why}; use {TIME_FORMS}; local times are read as {}",
            s.escape_debug(),
            zone_now(tz, now_us)
        ))
    };
    if s == "now" {
        return Ok(now_us);
    }
    if let Some(ago) = s.strip_prefix('-') {
        let d = humantime::parse_duration(ago.trim()).map_err(|_| refuse(""))?;
        let us = i64::try_from(d.as_micros()).map_err(|_| refuse(" (too far back)"))?;
        return now_us
            .checked_sub(us)
            .ok_or_else(|| refuse(" (too far back)"));
    }
    let day_word = [("today", 0), ("yesterday", 1)]
        .into_iter()
        .find_map(|(w, back)| s.strip_prefix(w).map(|rest| (rest.trim(), back)));
    let civil = if let Some((clock, back)) = day_word {
        let clock = ["%H:%M", "%H:%M:%S"]
            .iter()
            .find_map(|f| jiff::civil::Time::strptime(f, clock).ok())
            .ok_or_else(|| refuse(" (give the time of day as HH:MM)"))?;
        let today = jiff::Timestamp::from_microsecond(now_us)
            .map_err(|_| refuse(""))?
            .to_zoned(tz.clone())
            .date();
        let day = today
            .checked_sub(jiff::Span::new().days(back))
            .map_err(|_| refuse(""))?;
        day.to_datetime(clock)
    } else if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts.as_microsecond());
    } else {
        ["%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
            .iter()
            .find_map(|f| jiff::civil::DateTime::strptime(f, s).ok())
            .ok_or_else(|| refuse(""))?
    };
    let ts = tz
        .to_ambiguous_zoned(civil)
        .compatible()
        .map_err(|e| Error::invalid(format!("\"{s}\" is not a valid local time: {e}")))?
        .timestamp();
    Ok(ts.as_microsecond())
}

/// `Europe/Vilnius (+02:00 now)`: the zone local times are read in.
pub fn zone_now(tz: &jiff::tz::TimeZone, now_us: UnixMicros) -> String {
    let name = tz.iana_name().unwrap_or("the system's zone");
    match jiff::Timestamp::from_microsecond(now_us) {
        Ok(now) => format!("{name} ({} now)", tz.to_offset(now)),
        Err(_) => name.to_owned(),
    }
}

/// A time in `tz` with its offset, e.g. `2026-11-22 12:15:00 +02:00`.
pub fn show_time(t: UnixMicros, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_microsecond(t) {
        Ok(ts) => ts
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        Err(_) => t.to_string(),
    }
}

/// A request body as `T`; a refusal shows `example` of what would be right.
pub fn json_body<T: for<'de> serde::Deserialize<'de>>(bytes: &[u8], example: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::invalid(format!(
            "the body is not the expected JSON ({e}); send e.g. {example}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let tz = jiff::tz::TimeZone::get("Europe/Vilnius").unwrap();
        // 2026-03-01T10:30:00+02:00.
        let now = 1_772_353_800_000_000;
        let p = |s: &str| parse_time(s, &tz, now);
        let a = p("2026-03-01T08:00:00+02:00").unwrap();
        assert_eq!(p("2026-03-01 08:00").unwrap(), a);
        assert_eq!(p("2026-03-01T06:00:00Z").unwrap(), a);
        assert_eq!(p("today 08:00").unwrap(), a);
        assert_eq!(p("yesterday 08:00").unwrap(), a - 24 * 3600 * 1_000_000);
        assert_eq!(p("today 08:00:30").unwrap(), a + 30_000_000);
        assert_eq!(p("now").unwrap(), now);
        assert_eq!(p("-10m").unwrap(), now - 600_000_000);
        assert_eq!(p("-2h").unwrap(), now - 7_200_000_000);
        assert_eq!(p(" -1d ").unwrap(), now - 86_400_000_000);
        for bad in [
            "yesterday",
            "today 25:00",
            "-",
            "-10 parsecs",
            "2026-13-01 08:00",
            "soon",
        ] {
            let e = p(bad).unwrap_err();
            assert!(
                e.message.contains("Europe/Vilnius (+02 now)")
                    || e.message.contains("Europe/Vilnius (+02:00 now)")
                    || e.message.contains("not a valid local time"),
                "{bad}: {}",
                e.message
            );
        }
        assert!(p("-1000000000d").is_err());
    }

    #[test]
    fn ids() {
        for bad in [
            "", "..", "../etc", "a/b", "a\nb", ".hidden", "-x", "Fojė", "a b", "a%2Fb",
        ] {
            assert!(check_id("camera", bad).is_err(), "{bad:?}");
        }
        check_id("camera", "1A-foje-pietine").unwrap();
    }

    #[test]
    fn query_round_trip() {
        let q = Query::parse(Some(&format!("reason={}", encode("case 12/3 & more")))).unwrap();
        assert_eq!(q.get("reason"), Some("case 12/3 & more"));
        assert!(Query::parse(Some("a=1&a=2")).is_err());
        assert!(Query::parse(Some("a=%zz")).is_err());
    }
}
