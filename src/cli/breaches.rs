//! `breach ...`: the breach register and the DPO's notes; `alerts ...`: the
//! notification queue that tells the DPO.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::args::*;
use super::output::*;
use crate::Result;
use crate::api::client::Client;

pub(super) fn run(cli: &Cli, client: &Client, what: &BreachCmd) -> Result<ExitCode> {
    let v = match what {
        BreachCmd::List => client.get("/v1/breaches")?,
        BreachCmd::Show { id } => client.get(&format!("/v1/breaches/{id}"))?,
        BreachCmd::Report { what } => {
            client.call("POST", "/v1/breaches", Some(&json!({ "what": what })))?
        }
        BreachCmd::Note {
            id,
            note,
            assessment,
            actions,
            notified_authority,
            not_notified,
        } => client.call(
            "POST",
            &format!("/v1/breaches/{id}/note"),
            Some(&json!({
                "note": note, "assessment": assessment, "actions": actions,
                "notified_authority": notified_authority, "not_notified": not_notified,
            })),
        )?,
        BreachCmd::Close { id, note } => client.call(
            "POST",
            &format!("/v1/breaches/{id}/close"),
            Some(&json!({ "note": note })),
        )?,
    };
    if cli.json {
        out!("{}", pretty(&v));
    } else {
        show(&v);
    }
    Ok(ExitCode::SUCCESS)
}

fn clocks(b: &Value, tz: &jiff::tz::TimeZone) -> String {
    if b["status"] == "closed" {
        return format!("closed {}", when(&b["closed_us"], tz));
    }
    let dpo = if !b["dpo_informed_us"].is_null() {
        "DPO: taken up".to_owned()
    } else if b["dpo_overdue"] == true {
        "DPO: OVERDUE".to_owned()
    } else {
        format!("DPO by {}", when(&b["dpo_due_us"], tz))
    };
    let authority = if !b["authority_notified_us"].is_null() {
        "authority: notified".to_owned()
    } else if !b["not_notified_reason"].is_null() {
        "authority: not notified (reason recorded)".to_owned()
    } else if b["authority_overdue"] == true {
        "authority: OVERDUE".to_owned()
    } else {
        format!("authority by {}", when(&b["authority_due_us"], tz))
    };
    format!("{dpo}; {authority}")
}

fn show(v: &Value) {
    let tz = tz(v);
    if let Some(list) = v["breaches"].as_array() {
        let mut t = table(&["breach", "detected", "kind", "what", "clocks"]);
        for b in list {
            t.add_row([
                text(&b["id"]),
                when(&b["detected_us"], &tz),
                text(&b["kind"]),
                text(&b["what"]),
                clocks(b, &tz),
            ]);
        }
        out!("{t}");
        return;
    }
    let b = &v["breach"];
    for (k, val) in [
        ("breach", text(&b["id"])),
        ("detected", when(&b["detected_us"], &tz)),
        ("kind", text(&b["kind"])),
        ("subject", text(&b["subject"])),
        ("what", text(&b["what"])),
        ("clocks", clocks(b, &tz)),
        ("assessment", text(&b["assessment"])),
        ("actions", text(&b["actions"])),
        ("authority", when(&b["authority_notified_us"], &tz)),
        ("not notified", text(&b["not_notified_reason"])),
        ("closing", text(&b["close_note"])),
    ] {
        out!("{k:<13} {val}");
    }
    if let Some(notes) = b["notes"].as_array().filter(|n| !n.is_empty()) {
        let mut t = table(&["at", "by", "note"]);
        for n in notes {
            t.add_row([
                when(&n["at_us"], &tz),
                text(&n["by_user"]),
                text(&n["text"]),
            ]);
        }
        out!("{t}");
    }
}

/// `alerts list|test`.
pub(super) fn alerts(cli: &Cli, client: &Client, what: &AlertsCmd) -> Result<ExitCode> {
    let v = match what {
        AlertsCmd::List => client.get("/v1/alerts")?,
        AlertsCmd::Test => client.call("POST", "/v1/alerts/test", Some(&json!({})))?,
    };
    if cli.json {
        out!("{}", pretty(&v));
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(rows) = v["alerts"].as_array() {
        let tz = tz(&v);
        let mut t = table(&[
            "alert",
            "queued",
            "channel",
            "to",
            "state",
            "subject",
            "last error",
        ]);
        for a in rows {
            t.add_row([
                text(&a["id"]),
                when(&a["created_us"], &tz),
                text(&a["channel"]),
                text(&a["recipient"]),
                format!("{} ({} tries)", text(&a["state"]), text(&a["attempts"])),
                text(&a["subject"]),
                text(&a["last_error"]),
            ]);
        }
        out!("{t}");
    } else {
        out!("{}", text(&v["note"]));
    }
    Ok(ExitCode::SUCCESS)
}
