//! `inbox ...`: what the device-file inboxes hold, what was set aside and
//! why, what was stored lately; taking a quarantined file back.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::args::*;
use super::output::*;
use crate::Result;
use crate::api::client::Client;

pub(super) fn run(cli: &Cli, client: &Client, what: &InboxCmd) -> Result<ExitCode> {
    let v = match what {
        InboxCmd::Status => client.get("/v1/inbox")?,
        InboxCmd::Retry { file } => {
            client.call("POST", "/v1/inbox/retry", Some(&json!({ "file": file })))?
        }
    };
    if cli.json {
        out!("{}", pretty(&v));
        return Ok(ExitCode::SUCCESS);
    }
    match what {
        InboxCmd::Status => show_status(&v),
        InboxCmd::Retry { .. } => out!("{}", text(&v["note"])),
    }
    Ok(ExitCode::SUCCESS)
}

fn rows(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn show_status(v: &Value) {
    let tz = tz(v);
    if v["running"] == json!(false) {
        out!("the inboxes are not watched (see the daemon's log)");
    }
    let mut t = table(&["pending", "inbox", "bytes", "seen"]);
    for p in rows(&v["pending"]) {
        t.add_row([
            text(&p["file"]),
            text(&p["inbox"]),
            size(&p["bytes"]),
            when(&p["seen_us"], &tz),
        ]);
    }
    out!("{} pending\n{t}", rows(&v["pending"]).len());
    let mut t = table(&["quarantined", "reason"]);
    for q in rows(&v["quarantined"]) {
        t.add_row([text(&q["file"]), text(&q["reason"])]);
    }
    out!("{} quarantined\n{t}", rows(&v["quarantined"]).len());
    let mut t = table(&[
        "stored",
        "device",
        "file",
        "bytes",
        "sha256",
        "owner uid",
        "time from",
    ]);
    for r in rows(&v["recent"]) {
        let sha = text(&r["sha256"]);
        t.add_row([
            when(&r["ingested_us"], &tz),
            text(&r["device"]),
            text(&r["original_name"]),
            size(&r["original_bytes"]),
            sha.chars().take(16).collect(),
            text(&r["owner_uid"]),
            text(&r["time_source"]),
        ]);
    }
    out!("recent ingests\n{t}");
}
