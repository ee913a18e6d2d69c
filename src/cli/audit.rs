//! `audit list` and `audit verify`.

use serde_json::Value;

use super::output::*;

pub(super) fn show_audit(v: &Value, _: usize) {
    let tz = tz(v);
    let mut t = table(&[
        "seq", "at", "user", "uid", "pid", "role", "action", "target", "reason", "outcome",
    ]);
    for e in v["entries"].as_array().into_iter().flatten() {
        t.add_row([
            text(&e["seq"]),
            when(&e["at_us"], &tz),
            text(&e["user"]),
            text(&e["uid"]),
            text(&e["pid"]),
            text(&e["role"]),
            text(&e["action"]),
            text(&e["target"]),
            text(&e["reason"]),
            text(&e["outcome"]),
        ]);
    }
    out!("{t}");
}

pub(super) fn show_verify(v: &Value, _: usize) {
    let ver = &v["verification"];
    match &ver["broken"] {
        Value::Null => out!(
            "audit log intact: {} entries checked (seq {} to {}); head seq {} hash {}\n\
             checkpoint (for a later --checkpoint): {}",
            text(&ver["checked"]),
            text(&ver["first_seq"]),
            text(&ver["last_seq"]),
            text(&v["head"]["seq"]),
            text(&v["head"]["hash"]),
            text(&v["checkpoint"]),
        ),
        b => out!(
            "AUDIT LOG BROKEN at entry {}: {}\n({} entries before it are intact)",
            text(&b["seq"]),
            text(&b["problem"]),
            text(&ver["checked"]),
        ),
    }
}
