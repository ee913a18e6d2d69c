//! `case ...`, `hold add` and `disclosures`: tables and short reports, times
//! in the daemon's zone, sizes readable.

use serde_json::Value;

use super::output::*;

/// Renders any reply of the evidence endpoints by its shape.
pub(super) fn show_evidence(v: &Value, _: usize) {
    let tz = tz(v);
    if let Some(cases) = v["cases"].as_array() {
        let mut t = table(&[
            "case",
            "status",
            "title",
            "authority",
            "review",
            "holds",
            "copies",
        ]);
        for c in cases {
            t.add_row([
                text(&c["id"]),
                status(c),
                text(&c["title"]),
                format!("{} ({})", text(&c["authority"]), text(&c["authority_ref"])),
                when(&c["review_us"], &tz),
                c["holds"].as_array().map_or(0, Vec::len).to_string(),
                format!("{} ({})", text(&c["copies"]), size(&c["copy_bytes"])),
            ]);
        }
        out!("{t}");
    } else if v["case"].is_object() {
        show_case(&v["case"], v["copies"].as_array(), &tz);
    } else if v["hold"].is_object() {
        let h = &v["hold"];
        let copies = h["copies"].as_array().cloned().unwrap_or_default();
        let bytes: u64 = copies.iter().filter_map(|c| c["bytes"].as_u64()).sum();
        out!(
            "hold {}: {} verified cop{} ({})",
            text(&h["hold_id"]),
            copies.len(),
            if copies.len() == 1 { "y" } else { "ies" },
            size(&Value::from(bytes))
        );
        for m in h["missing"].as_array().into_iter().flatten() {
            out!(
                "NO FOOTAGE from {} to {} (never recorded, or deleted under its ceiling)",
                when(&m[0], &tz),
                when(&m[1], &tz)
            );
        }
    } else if v["closed"].is_object() {
        let c = &v["closed"];
        out!(
            "case closed: {} hold(s) released, {} cop(ies) destroyed ({}, {})",
            text(&c["holds_released"]),
            text(&c["copies_destroyed"]),
            size(&c["bytes_destroyed"]),
            text(&c["destruction"])
        );
    } else if let Some(rows) = v["disclosures"].as_array() {
        let mut t = table(&[
            "at",
            "camera",
            "from",
            "to",
            "recipient",
            "legal basis",
            "reason",
            "by",
            "case",
            "files",
        ]);
        for d in rows {
            t.add_row([
                when(&d["at_us"], &tz),
                text(&d["camera"]),
                when(&d["from_us"], &tz),
                when(&d["to_us"], &tz),
                text(&d["recipient"]),
                text(&d["legal_basis"]),
                text(&d["reason"]),
                text(&d["by_user"]),
                text(&d["case_id"]),
                d["files"].as_array().map_or(0, Vec::len).to_string(),
            ]);
        }
        out!("{t}");
    } else {
        show_pretty(v, 0);
    }
}

fn status(c: &Value) -> String {
    if c["review_overdue"].as_bool() == Some(true) {
        "open, REVIEW OVERDUE".into()
    } else {
        text(&c["status"])
    }
}

/// One case: its facts, its holds and (from `case show`) its copies.
fn show_case(c: &Value, copies: Option<&Vec<Value>>, tz: &jiff::tz::TimeZone) {
    let mut facts = vec![
        ("case", text(&c["id"])),
        ("status", status(c)),
        ("title", text(&c["title"])),
        (
            "authority",
            format!("{} ({})", text(&c["authority"]), text(&c["authority_ref"])),
        ),
        ("legal basis", text(&c["legal_basis"])),
        (
            "opened",
            format!(
                "{} by {}",
                when(&c["created_us"], tz),
                text(&c["created_by"])
            ),
        ),
        ("review", when(&c["review_us"], tz)),
    ];
    if !c["closed_us"].is_null() {
        facts.push((
            "closed",
            format!(
                "{}: {}",
                when(&c["closed_us"], tz),
                text(&c["close_reason"])
            ),
        ));
    }
    if !c["copies"].is_null() {
        facts.push((
            "copies",
            format!("{} ({})", text(&c["copies"]), size(&c["copy_bytes"])),
        ));
    }
    for (k, v) in facts {
        out!("{k:<12} {v}");
    }
    if let Some(holds) = c["holds"].as_array().filter(|h| !h.is_empty()) {
        let mut t = table(&["hold", "camera", "from", "to"]);
        for h in holds {
            t.add_row([
                text(&h["id"]),
                text(&h["camera"]),
                when(&h["from_us"], tz),
                when(&h["to_us"], tz),
            ]);
        }
        out!("{t}");
    }
    if let Some(copies) = copies.filter(|c| !c.is_empty()) {
        let mut t = table(&["copy", "from", "to", "bytes", "sha256"]);
        for c in copies {
            let sha = text(&c["sha256"]);
            t.add_row([
                text(&c["copy_path"]),
                when(&c["start_us"], tz),
                when(&c["end_us"], tz),
                size(&c["bytes"]),
                sha.chars().take(16).collect::<String>() + "…",
            ]);
        }
        out!("{t}");
    }
}

/// Prints a `case verify` reply (if `print`); true if everything checked
/// matched, here and in the vault.
pub(super) fn show_verify(v: &Value, id: &str, print: bool) -> bool {
    let list =
        |key: &str| -> Vec<String> { v[key].as_array().into_iter().flatten().map(text).collect() };
    let bad = list("changed_or_missing");
    let vault_bad = list("vault_changed_or_missing");
    let vault_error = v["vault_error"].as_str();
    if print {
        for b in &bad {
            out!("COPY CHANGED OR MISSING: {b}");
        }
        if bad.is_empty() {
            out!(
                "case {id}: all {} evidence copies match their recorded hashes",
                text(&v["copies"])
            );
        } else {
            out!(
                "case {id}: {} of {} copies do not match their recorded hashes",
                bad.len(),
                text(&v["copies"])
            );
        }
        if let Some(e) = vault_error {
            out!("VAULT NOT CHECKED: {e}");
        }
        let checks = v["vault"].as_array().cloned().unwrap_or_default();
        let mut pending = 0;
        for c in &checks {
            match (c["state"].as_str(), c["problem"].as_str()) {
                (Some("pending"), _) => pending += 1,
                (_, Some(p)) => out!("VAULT COPY WRONG: {}: {p}", text(&c["key"])),
                _ => {}
            }
        }
        let read = checks
            .iter()
            .filter(|c| matches!(c["state"].as_str(), Some("stored" | "expiring")))
            .count();
        if v["vault_configured"] == true && vault_error.is_none() {
            out!(
                "vault: {} of {read} stored copies read back match their recorded hashes and locks{}",
                read - vault_bad.len(),
                if pending > 0 {
                    format!("; {pending} not yet in the vault (queued)")
                } else {
                    String::new()
                }
            );
        }
    }
    bad.is_empty() && vault_bad.is_empty() && vault_error.is_none()
}
