//! `retention status`, `retention plan` and `deletions`.

use serde_json::Value;

use super::output::*;

/// Per zone and camera: ceiling, oldest footage and its age, bytes, what
/// protects footage, the next deletion, and violations first and loudest.
pub(super) fn show_retention(v: &Value, _: usize) {
    let tz = tz(v);
    let zones = v["zones"].as_array().cloned().unwrap_or_default();
    let mut violations = Vec::new();
    let mut t = table(&[
        "zone",
        "ceiling",
        "camera",
        "oldest",
        "age",
        "bytes",
        "protected by",
        "next deletion",
    ]);
    for z in &zones {
        for c in z["cameras"].as_array().into_iter().flatten() {
            let protected: Vec<String> = c["protected_by"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| match p["kind"].as_str() {
                    Some("hold") => format!("hold for case {}", text(&p["case_id"])),
                    _ => format!("restriction: {}", text(&p["reason"])),
                })
                .collect();
            if !c["violation"].is_null() {
                violations.push(format!(
                    "VIOLATION: camera {} in zone {} keeps {} segments ({}) older than its \
                     {}-day ceiling, oldest from {}",
                    text(&c["camera"]),
                    text(&z["zone"]),
                    text(&c["violation"]["segments"]),
                    size(&c["violation"]["bytes"]),
                    text(&z["retention_days"]),
                    when(&c["violation"]["oldest_start_us"], &tz),
                ));
            }
            t.add_row([
                text(&z["zone"]),
                format!("{} d", text(&z["retention_days"])),
                text(&c["camera"]),
                when(&c["oldest_us"], &tz),
                age(&c["oldest_age_us"]),
                size(&c["bytes"]),
                if protected.is_empty() {
                    "-".into()
                } else {
                    protected.join("; ")
                },
                when(&c["next_deletion_us"], &tz),
            ]);
        }
    }
    for r in v["overdue_requests"].as_array().into_iter().flatten() {
        violations.push(format!(
            "VIOLATION: data-subject request {} was due by {} and is not answered \
             (custosctl request show {})",
            text(&r[0]),
            text(&r[1]),
            text(&r[0])
        ));
    }
    for line in &violations {
        out!("{line}");
    }
    if !violations.is_empty() {
        out!();
    }
    out!("{t}");
    let mut r = table(&["storage root", "used", "budget", "keep free", "destruction"]);
    for root in v["roots"].as_array().into_iter().flatten() {
        r.add_row([
            text(&root["root"]),
            size(&root["used_bytes"]),
            size(&root["budget"]),
            size(&root["min_free"]),
            text(&root["destruction"]),
        ]);
    }
    out!("{r}");
    print_clock_alarm(v);
    out!(
        "{} camera(s) with footage past its ceiling; {} segment(s) being read",
        text(&v["violations"]),
        text(&v["leased_segments"])
    );
}

/// What the next retention pass would delete, without deleting it.
pub(super) fn show_plan(v: &Value, _: usize) {
    let tz = tz(v);
    let mut t = table(&[
        "camera", "zone", "reason", "segments", "bytes", "from", "to",
    ]);
    for i in v["items"].as_array().into_iter().flatten() {
        t.add_row([
            text(&i["camera"]),
            text(&i["zone"]),
            text(&i["reason"]).replace('_', " "),
            text(&i["segments"]),
            size(&i["bytes"]),
            when(&i["from_us"], &tz),
            when(&i["to_us"], &tz),
        ]);
    }
    out!("{t}");
    for root in v["roots"].as_array().into_iter().flatten() {
        if root["unmet_bytes"].as_u64().unwrap_or(0) > 0 {
            out!(
                "ALARM: storage root {} would still be {} short after deleting everything \
                 deletable; what is left is protected (holds, restrictions) or being read",
                text(&root["root"]),
                size(&root["unmet_bytes"])
            );
        }
    }
    print_clock_alarm(v);
    out!(
        "next pass: {} segment(s), {}; {} skipped while being read",
        text(&v["total"]["segments"]),
        size(&v["total"]["bytes"]),
        text(&v["leased"])
    );
}

pub(super) fn show_deletions(v: &Value, _: usize) {
    let tz = tz(v);
    let mut t = table(&[
        "at", "camera", "zone", "where", "from", "to", "segments", "bytes", "reason", "by",
    ]);
    let mut notes = Vec::new();
    for d in v["deletions"].as_array().into_iter().flatten() {
        t.add_row([
            when(&d["at_us"], &tz),
            text(&d["camera"]),
            text(&d["zone"]),
            text(&d["root"]),
            when(&d["from_us"], &tz),
            when(&d["to_us"], &tz),
            text(&d["segments"]),
            size(&d["bytes"]),
            match d["request_id"].as_str() {
                Some(r) => format!("{} ({r})", text(&d["reason"])),
                None => text(&d["reason"]),
            },
            text(&d["actor"]),
        ]);
        if let Some(n) = d["note"].as_str() {
            notes.push(format!(
                "{} {} ({}): {n}",
                when(&d["at_us"], &tz),
                text(&d["camera"]),
                text(&d["root"])
            ));
        }
    }
    out!("{t}");
    for n in notes {
        out!("{n}");
    }
}
