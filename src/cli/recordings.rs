//! `recordings`: segments, outages and gaps of a camera.

use serde_json::Value;

use super::output::*;

pub(super) fn show_recordings(v: &Value, last: usize) {
    let tz = tz(v);
    // The range as the daemon understood it, so a time read in another
    // zone than the user meant shows at once.
    out!(
        "camera {}, {} to {} (times in {})",
        text(&v["camera"]),
        when(&v["from_us"], &tz),
        when(&v["to_us"], &tz),
        text(&v["timezone"])
    );
    let segs = v["segments"].as_array().cloned().unwrap_or_default();
    let segs = &segs[segs.len().saturating_sub(last)..];
    let mut t = table(&["start", "end", "state", "frames", "bytes", "codecs", "time"]);
    for s in segs {
        let codecs = [&s["video_codec"], &s["audio_codec"]]
            .iter()
            .filter_map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join("+");
        t.add_row([
            when(&s["start_us"], &tz),
            if s["end_us"].is_null() {
                "recording".into()
            } else {
                when(&s["end_us"], &tz)
            },
            text(&s["state"]),
            text(&s["frames"]),
            text(&s["bytes"]),
            codecs,
            text(&s["time_source"]),
        ]);
    }
    out!("{t}");
    let outages = v["outages"].as_array().cloned().unwrap_or_default();
    if !outages.is_empty() {
        let mut t = table(&["outage from", "to", "reason"]);
        for o in &outages {
            t.add_row([
                when(&o["from_us"], &tz),
                if o["to_us"].is_null() {
                    "ongoing".into()
                } else {
                    when(&o["to_us"], &tz)
                },
                text(&o["reason"]),
            ]);
        }
        out!("{t}");
    }
    let gaps = v["gaps"].as_array().cloned().unwrap_or_default();
    if !gaps.is_empty() {
        let mut t = table(&["gap from", "to"]);
        for g in &gaps {
            t.add_row([when(&g["from_us"], &tz), when(&g["to_us"], &tz)]);
        }
        out!("{t}");
    }
    if let Some(next) = v["more_from_us"]
        .as_i64()
        .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
    {
        // Exact to the microsecond, so the next page starts where this ends.
        out!(
            "More segments follow: run again with --from {}",
            next.to_zoned(tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")
        );
    }
}
