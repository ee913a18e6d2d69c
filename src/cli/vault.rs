//! `vault ...`: whether the evidence vault works and what waits for it;
//! what it holds of a case, from every server sharing the bucket.

use std::process::ExitCode;

use serde_json::Value;

use super::args::*;
use super::output::*;
use crate::Result;
use crate::api::client::Client;
use crate::api::params::encode;

pub(super) fn run(cli: &Cli, client: &Client, what: &VaultCmd) -> Result<ExitCode> {
    let v = match what {
        VaultCmd::Status => client.get("/v1/vault")?,
        VaultCmd::List { case } => client.get(&format!("/v1/vault/cases/{}", encode(case)))?,
    };
    if cli.json {
        out!("{}", pretty(&v));
        return Ok(ExitCode::SUCCESS);
    }
    if v["configured"] == false {
        out!("{}", text(&v["note"]));
        return Ok(ExitCode::SUCCESS);
    }
    match what {
        VaultCmd::Status => show_status(&v),
        VaultCmd::List { .. } => show_list(&v),
    }
    Ok(ExitCode::SUCCESS)
}

fn rows(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn show_status(v: &Value) {
    let tz = tz(v);
    out!(
        "vault: bucket {} at {} (region {}), this server's prefix {}/, lock mode {}, closed \
         cases' copies: {}",
        text(&v["bucket"]),
        text(&v["endpoint"]),
        text(&v["region"]),
        text(&v["prefix"]),
        text(&v["lock_mode"]),
        text(&v["on_close"])
    );
    let check = &v["lock_check"];
    if v["running"] == false {
        out!("the vault worker is not running (see the daemon's log)");
    } else if check.is_null() {
        out!("Object Lock: not checked yet");
    } else if let Some(e) = check["error"].as_str() {
        out!(
            "BUCKET NOT USABLE (checked {}): {e}",
            when(&check["at_us"], &tz)
        );
    } else {
        out!(
            "Object Lock: enabled, credentials accepted (checked {})",
            when(&check["at_us"], &tz)
        );
    }
    let mut t = table(&["state", "objects", "bytes"]);
    for c in rows(&v["counts"]) {
        t.add_row([text(&c["state"]), text(&c["objects"]), size(&c["bytes"])]);
    }
    out!("{t}");
    if !v["oldest_pending_us"].is_null() {
        out!("oldest queued since {}", when(&v["oldest_pending_us"], &tz));
    }
    if let Some(e) = v["last_error"].as_object() {
        out!("last error: {}: {}", text(&e["key"]), text(&e["error"]));
    }
}

fn show_list(v: &Value) {
    let tz = tz(v);
    let objects = rows(&v["objects"]);
    let mut t = table(&[
        "server",
        "key",
        "bytes",
        "sha256",
        "mode",
        "retain until",
        "legal hold",
    ]);
    for o in objects {
        let sha = text(&o["sha256"]);
        t.add_row([
            text(&o["node"]),
            text(&o["key"]),
            size(&o["bytes"]),
            sha.chars().take(16).collect(),
            text(&o["mode"]),
            when(&o["retain_until_us"], &tz),
            if o["legal_hold"] == true { "on" } else { "off" }.to_owned(),
        ]);
    }
    out!(
        "case {} in vault bucket {}: {} object version(s)\n{t}",
        text(&v["case"]),
        text(&v["bucket"]),
        objects.len()
    );
    let here = rows(&v["this_server"]);
    let waiting = here.iter().filter(|o| o["state"] == "pending").count();
    if waiting > 0 {
        out!("{waiting} of this server's copies are not yet in the vault (queued)");
    }
}
