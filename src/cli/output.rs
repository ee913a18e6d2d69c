//! The output layer: tables, times in the daemon's zone, sizes, JSON, and
//! writing to stdout without ever panicking (a closed pipe ends quietly, a
//! full disk is said in one line).

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::Value;

/// `println!` that cannot panic: see [`output_failed`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            $crate::cli::output::output_failed(e);
        }
    }};
}

/// Exit status when stdout cannot be written (EX_IOERR of sysexits.h).
pub(super) const EXIT_OUTPUT: i32 = 74;

/// Ends the program when its output cannot be written: quietly, with the
/// status a shell shows for SIGPIPE (128 + 13), if the reader closed the
/// pipe (`custosctl audit list | head -1`); otherwise in one line naming
/// the error (a full disk).
pub(super) fn output_failed(e: std::io::Error) -> ! {
    use std::io::Write as _;
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(128 + libc::SIGPIPE);
    }
    let _ = writeln!(std::io::stderr(), "custosctl: cannot write the output: {e}");
    std::process::exit(EXIT_OUTPUT)
}

pub(super) fn show_pretty(v: &Value, _: usize) {
    out!("{}", pretty(v));
}

/// The machine form (`--json`): the reply, with an RFC 3339 UTC time beside
/// every microsecond time (`review_us` gains `review_rfc3339`).
pub(super) fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(&with_rfc3339(v)).expect("JSON values serialise")
}

/// `v` with `NAME_rfc3339` beside each `NAME_us` that is a point in time
/// (not a duration, offset or age).
fn with_rfc3339(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, x) in map {
                out.insert(k.clone(), with_rfc3339(x));
                let Some(name) = k.strip_suffix("_us") else {
                    continue;
                };
                if ["duration", "offset", "age"]
                    .iter()
                    .any(|w| name.contains(w))
                {
                    continue;
                }
                if let Some(ts) = x
                    .as_i64()
                    .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
                {
                    out.insert(format!("{name}_rfc3339"), Value::String(ts.to_string()));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(with_rfc3339).collect()),
        other => other.clone(),
    }
}

pub(super) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header.iter().copied());
    t
}

pub(super) fn tz(v: &Value) -> jiff::tz::TimeZone {
    v["timezone"]
        .as_str()
        .or(v["daemon"]["timezone"].as_str())
        .and_then(|n| jiff::tz::TimeZone::get(n).ok())
        .unwrap_or_else(jiff::tz::TimeZone::system)
}

/// A time in the daemon's timezone with its offset, or `none`.
pub(super) fn when(t: &Value, tz: &jiff::tz::TimeZone) -> String {
    match t.as_i64() {
        Some(us) => crate::api::params::show_time(us, tz),
        None => "-".into(),
    }
}

pub(super) fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Bytes as a person reads them: 1.5 GiB.
pub(super) fn size(v: &Value) -> String {
    let Some(b) = v.as_u64() else {
        return "-".into();
    };
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = b as f64;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < units.len() {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{x:.1} {}", units[u])
    }
}

/// An age in µs as days and hours: 9 d 23 h.
pub(super) fn age(v: &Value) -> String {
    let Some(us) = v.as_i64() else {
        return "-".into();
    };
    let h = us / 3_600_000_000;
    format!("{} d {} h", h / 24, h % 24)
}

pub(super) fn show_note(v: &Value, _: usize) {
    out!("{}", text(&v["note"]));
}

/// The clock guard's alarm, if the reply carries one: nothing is deleted
/// while it lasts.
pub(super) fn print_clock_alarm(v: &Value) {
    if let Some(state) = v["clock_alarm"]["state"].as_str() {
        out!(
            "ALARM: clock: {state} (since {})",
            when(&v["clock_alarm"]["since_us"], &tz(v))
        );
    }
}
