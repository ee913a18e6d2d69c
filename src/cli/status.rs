//! `status` and `cameras`.

use serde_json::Value;

use super::output::*;

pub(super) fn show_status(v: &Value, _: usize) {
    let tz = tz(v);
    let d = &v["daemon"];
    out!(
        "custosd {} (pid {}), up since {}, timezone {}, audit entries {}",
        text(&d["version"]),
        text(&d["pid"]),
        when(&d["started_us"], &tz),
        text(&d["timezone"]),
        text(&d["audit_seq"]),
    );
    let you = &v["you"];
    out!(
        "you: {} (uid {}), roles: {}",
        text(&you["user"]),
        text(&you["uid"]),
        you["roles"]
            .as_array()
            .map(|r| r.iter().map(text).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    );
    let mut t = table(&["storage", "path", "free", "total", "min free", "budget"]);
    for r in v["storage"].as_array().into_iter().flatten() {
        t.add_row([
            text(&r["id"]),
            text(&r["path"]),
            size(&r["free_bytes"]),
            size(&r["total_bytes"]),
            size(&r["min_free"]),
            size(&r["budget"]),
        ]);
    }
    out!("{t}");
    for a in v["storage_alarms"].as_array().into_iter().flatten() {
        out!("ALARM: {}", a);
    }
    print_clock_alarm(v);
    if let Some(state) = v["recovery_alarm"]["state"].as_str() {
        out!("ALARM: recovery: {state}");
    }
    let vault = &v["vault"];
    if let Some(e) = vault["error"].as_str() {
        out!("ALARM: vault: {e}");
    }
    if vault.is_object() {
        let waiting = vault["pending"].as_u64().unwrap_or(0);
        out!(
            "vault: bucket {}, {} copies stored, {waiting} waiting{}",
            text(&vault["bucket"]),
            text(&vault["stored"]),
            if waiting > 0 {
                format!(" (oldest since {})", when(&vault["oldest_pending_us"], &tz))
            } else {
                String::new()
            }
        );
    }
    let r = &v["redactions"];
    if r.is_object() {
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        if n("failed") > 0 {
            out!(
                "ALARM: {} redaction job(s) failed: custosctl redaction list shows why",
                n("failed")
            );
        }
        if n("running") + n("choosing") + n("review") + n("approved") > 0 {
            out!(
                "redactions: {} running, {} waiting for a choice, {} for a second DPO's \
                 approval, {} approved and not released",
                n("running"),
                n("choosing"),
                n("review"),
                n("approved")
            );
        }
    }
    for id in v["overdue_reviews"].as_array().into_iter().flatten() {
        out!(
            "VIOLATION: case {} is past its review date: extend it with a reason \
             (custosctl case review) or close it",
            text(id)
        );
    }
    let breaches = &v["breaches"];
    for id in breaches["dpo_overdue"].as_array().into_iter().flatten() {
        out!(
            "VIOLATION: breach {} was not taken up by the DPO within 4 hours (004 §22): \
             custosctl breach show {}",
            text(id),
            text(id)
        );
    }
    for id in breaches["authority_overdue"]
        .as_array()
        .into_iter()
        .flatten()
    {
        out!(
            "VIOLATION: breach {}: 72 hours passed without notifying the authority or \
             recording why not (GDPR Art. 33(1))",
            text(id)
        );
    }
    if let Some(n) = breaches["open"].as_u64().filter(|n| *n > 0) {
        out!("BREACH: {n} open record(s) in the breach register: custosctl breach list");
    }
    let requests = &v["subject_requests"];
    for r in requests["overdue"].as_array().into_iter().flatten() {
        out!(
            "VIOLATION: data-subject request {} was due by {}: answer it \
             (custosctl request show {})",
            text(&r[0]),
            text(&r[1]),
            text(&r[0])
        );
    }
    for r in requests["due_soon"].as_array().into_iter().flatten() {
        out!(
            "DUE SOON: data-subject request {} must be answered by {}",
            text(&r[0]),
            text(&r[1])
        );
    }
    show_cameras(v, 0);
}

pub(super) fn show_cameras(v: &Value, _: usize) {
    let mut t = table(&["camera", "zone", "state", "segments", "last error"]);
    for c in v["cameras"].as_array().into_iter().flatten() {
        t.add_row([
            text(&c["id"]),
            text(&c["zone"]),
            text(&c["state"]),
            text(&c["segments_written"]),
            text(&c["last_error"]),
        ]);
    }
    out!("{t}");
}
