//! `request ...`: the register of data-subject requests, the acts done for
//! one, and the answer letter written into a directory of the DPO's.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::args::*;
use super::output::*;
use crate::api::client::Client;
use crate::api::params::encode;
use crate::{Error, Result};

/// Runs a `request` command.
pub(super) fn run(cli: &Cli, client: &Client, what: &RequestCmd) -> Result<ExitCode> {
    let path = |id: &str, tail: &str| format!("/v1/requests/{}{tail}", encode(id));
    let v = match what {
        RequestCmd::List => client.get("/v1/requests")?,
        RequestCmd::Redact { .. } => return super::redact::start(cli, client, what),
        RequestCmd::Show { id } => client.get(&path(id, ""))?,
        RequestCmd::Open {
            kind,
            requester,
            contact,
            identity_check,
            verified_by,
            cameras,
            from,
            to,
            received,
            reference,
            description,
        } => client.call(
            "POST",
            "/v1/requests",
            Some(&json!({
                "kind": kind, "requester": requester, "contact": contact,
                "identity_check": identity_check, "verified_by": verified_by,
                "cameras": cameras, "from": from, "to": to, "received": received,
                "reference": reference, "description": description,
            })),
        )?,
        RequestCmd::Extend {
            id,
            months,
            reason,
            told,
        } => client.call(
            "POST",
            &path(id, "/extend"),
            Some(&json!({ "months": months, "reason": reason, "told": told })),
        )?,
        RequestCmd::Close {
            id,
            outcome,
            answer,
        } => client.call(
            "POST",
            &path(id, "/close"),
            Some(&json!({ "outcome": outcome, "answer": answer })),
        )?,
        RequestCmd::Restrict { id, reason } => client.call(
            "POST",
            &path(id, "/restrict"),
            Some(&json!({ "reason": reason })),
        )?,
        RequestCmd::Lift {
            id,
            restriction,
            reason,
        } => client.call(
            "POST",
            &path(id, &format!("/restrictions/{restriction}/lift")),
            Some(&json!({ "reason": reason })),
        )?,
        RequestCmd::Decide {
            id,
            upheld,
            reasoning,
        } => client.call(
            "POST",
            &path(id, "/objection"),
            Some(&json!({ "upheld": upheld, "reasoning": reasoning })),
        )?,
        RequestCmd::Rectify {
            id,
            camera,
            from,
            to,
            offset,
            note,
        } => client.call(
            "POST",
            &path(id, "/rectify"),
            Some(&json!({
                "camera": camera, "from": from, "to": to, "offset": offset, "note": note,
            })),
        )?,
        RequestCmd::Erase { id, reason } => client.call(
            "POST",
            &path(id, "/erase"),
            Some(&json!({ "reason": reason })),
        )?,
        RequestCmd::Answer { id, out, lang } => {
            let v = client.get(&format!(
                "{}?language={}",
                path(id, "/answer"),
                lang.as_str()
            ))?;
            let written = write_documents(out, &v["documents"])?;
            if cli.json {
                out!("{}", pretty(&v["findings"]));
            } else {
                show_findings(&v);
                for w in written {
                    out!("wrote {}", w);
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    if cli.json {
        out!("{}", pretty(&v));
    } else {
        show(&v);
    }
    Ok(ExitCode::SUCCESS)
}

/// `custosctl compliance`: the findings as lines, grouped by topic; with
/// `--out`, the HTML page too. Exit 1 if any finding is a violation.
pub(super) fn compliance(cli: &Cli, client: &Client, out: Option<&Path>) -> Result<ExitCode> {
    let v = client.get("/v1/compliance")?;
    let r = &v["report"];
    if let Some(dir) = out {
        let day = r["generated_us"]
            .as_i64()
            .and_then(|t| jiff::Timestamp::from_microsecond(t).ok())
            .map(|t| t.to_zoned(tz(&v)).strftime("%Y-%m-%d").to_string())
            .unwrap_or_default();
        let docs =
            json!([{ "file_name": format!("compliance-{day}.html"), "contents": v["html"] }]);
        for w in write_documents(dir, &docs)? {
            if !cli.json {
                out!("wrote {w}");
            }
        }
    }
    if cli.json {
        out!("{}", pretty(r));
    } else {
        let mut topic = "";
        for f in r["findings"].as_array().into_iter().flatten() {
            let t = f["topic"].as_str().unwrap_or_default();
            if t != topic {
                out!("{t}:");
                topic = t;
            }
            let mark = match f["state"].as_str() {
                Some("violation") => "VIOLATION ",
                Some("attention") => "ATTENTION ",
                _ => "",
            };
            out!("  {mark}{} [{}]", text(&f["text"]), text(&f["clause"]));
        }
        out!(
            "{} violation(s), {} to look at; times in {}",
            text(&r["violations"]),
            text(&r["attention"]),
            text(&r["timezone"])
        );
    }
    Ok(if r["violations"].as_u64() == Some(0) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Writes the letter's files into `dir` (made 0700 if missing), each 0600:
/// it names the requester.
fn write_documents(dir: &Path, docs: &Value) -> Result<Vec<String>> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("create", dir, e))?;
    }
    let mut written = Vec::new();
    for d in docs.as_array().into_iter().flatten() {
        let name = d["file_name"].as_str().unwrap_or_default();
        // Only a plain file name from the daemon: never a path.
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(Error::internal(format!(
                "the daemon sent a document named {name:?}; refusing to write it"
            )));
        }
        let path = dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        f.write_all(d["contents"].as_str().unwrap_or_default().as_bytes())
            .map_err(|e| Error::io("write", &path, e))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

fn standing(r: &Value) -> String {
    let s = &r["standing"];
    match s["state"].as_str() {
        Some("overdue") => format!("OVERDUE by {} d", text(&s["days_over"])),
        Some("due_soon") => format!("due in {} d", text(&s["days_left"])),
        Some("in_time") => format!("{} d left", text(&s["days_left"])),
        _ => text(&r["status"]),
    }
}

fn cameras(r: &Value) -> String {
    r["cameras"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect::<Vec<_>>()
        .join(", ")
}

fn show(v: &Value) {
    let tz = tz(v);
    if let Some(list) = v["requests"].as_array() {
        let mut t = table(&[
            "request", "kind", "received", "last day", "standing", "cameras", "from", "to",
        ]);
        for r in list {
            t.add_row([
                text(&r["id"]),
                text(&r["kind"]),
                when(&r["received_us"], &tz),
                text(&r["last_day"]),
                standing(r),
                cameras(r),
                when(&r["from_us"], &tz),
                when(&r["to_us"], &tz),
            ]);
        }
        out!("{t}");
        out!("times in {}", text(&v["timezone"]));
    } else if v["request"].is_object() {
        show_request(&v["request"], &tz);
    } else if let Some(list) = v["restrictions"].as_array() {
        for r in list {
            out!(
                "restriction {}: {} from {} to {} (never deleted until lifted)",
                text(&r["id"]),
                text(&r["camera"]),
                when(&r["from_us"], &tz),
                when(&r["to_us"], &tz)
            );
        }
    } else if v["restriction"].is_object() {
        let r = &v["restriction"];
        out!(
            "restriction {} lifted: {}",
            text(&r["id"]),
            text(&r["lift_reason"])
        );
    } else if v["correction"].is_object() {
        let c = &v["correction"];
        out!(
            "correction {} noted: {} from {} to {}, offset {} µs: {}",
            text(&c["id"]),
            text(&c["camera"]),
            when(&c["from_us"], &tz),
            when(&c["to_us"], &tz),
            text(&c["offset_us"]),
            text(&c["note"])
        );
    } else if v["erasure"].is_object() {
        let e = &v["erasure"];
        for x in e["erased"].as_array().into_iter().flatten() {
            out!(
                "erased {}: {} segment(s), {}, {} to {}",
                text(&x["camera"]),
                text(&x["segments"]),
                size(&x["bytes"]),
                when(&x["from_us"], &tz),
                when(&x["to_us"], &tz)
            );
        }
        for k in e["kept"].as_array().into_iter().flatten() {
            out!(
                "NOT ERASED {}: {} segment(s), {} to {}: {}",
                text(&k["camera"]),
                text(&k["segments"]),
                when(&k["from_us"], &tz),
                when(&k["to_us"], &tz),
                text(&k["why"])
            );
        }
        if e["erased"].as_array().is_none_or(Vec::is_empty)
            && e["kept"].as_array().is_none_or(Vec::is_empty)
        {
            out!("no footage of the request's cameras and window exists; nothing to erase");
        }
    } else {
        show_pretty(v, 0);
    }
}

fn show_request(r: &Value, tz: &jiff::tz::TimeZone) {
    let mut facts = vec![
        ("request", text(&r["id"])),
        ("kind", text(&r["kind"])),
        ("status", text(&r["status"])),
        ("received", when(&r["received_us"], tz)),
        (
            "last day",
            format!("{} ({})", text(&r["last_day"]), standing(r)),
        ),
        ("requester", text(&r["requester"])),
        ("contact", text(&r["contact"])),
        (
            "identity",
            format!(
                "{} (checked by {})",
                text(&r["identity_check"]),
                text(&r["verified_by"])
            ),
        ),
        ("cameras", cameras(r)),
        (
            "window",
            format!("{} to {}", when(&r["from_us"], tz), when(&r["to_us"], tz)),
        ),
    ];
    if !r["extended_to"].is_null() {
        facts.push((
            "extended",
            format!(
                "to {} (told {}): {}",
                text(&r["extended_to"]),
                text(&r["extension_told"]),
                text(&r["extension_reason"])
            ),
        ));
    }
    if !r["closed_us"].is_null() {
        facts.push((
            "closed",
            format!("{}: {}", when(&r["closed_us"], tz), text(&r["answer"])),
        ));
    }
    if !r["purged_us"].is_null() {
        facts.push(("purged", when(&r["purged_us"], tz)));
    }
    for (k, v) in facts {
        out!("{k:<10} {v}");
    }
    if let Some(events) = r["events"].as_array().filter(|e| !e.is_empty()) {
        let mut t = table(&["at", "by", "what", "detail"]);
        for e in events {
            t.add_row([
                when(&e["at_us"], tz),
                text(&e["by_user"]),
                text(&e["kind"]),
                e["detail"].to_string(),
            ]);
        }
        out!("{t}");
    }
    if let Some(list) = r["restrictions"].as_array().filter(|e| !e.is_empty()) {
        let mut t = table(&["restriction", "camera", "from", "to", "state"]);
        for x in list {
            let state = if x["lifted_us"].is_null() {
                "active".to_owned()
            } else {
                format!(
                    "lifted {}: {}",
                    when(&x["lifted_us"], tz),
                    text(&x["lift_reason"])
                )
            };
            t.add_row([
                text(&x["id"]),
                text(&x["camera"]),
                when(&x["from_us"], tz),
                when(&x["to_us"], tz),
                state,
            ]);
        }
        out!("{t}");
    }
}

fn show_findings(v: &Value) {
    let tz = tz(v);
    let f = &v["findings"];
    for c in f["cameras"].as_array().into_iter().flatten() {
        let footage: u64 = c["footage"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["segments"].as_u64())
            .sum();
        out!(
            "{}: {} segment(s) exist; {} deletion(s); {} recipient(s) in the past year; kept {} days",
            text(&c["camera"]),
            footage,
            c["deleted"].as_array().map_or(0, Vec::len),
            c["disclosed"].as_array().map_or(0, Vec::len),
            text(&c["retention_days"])
        );
        for d in c["disclosed"].as_array().into_iter().flatten() {
            out!(
                "  disclosed {} to {}",
                when(&d["at_us"], &tz),
                text(&d["recipient"])
            );
        }
    }
}
