//! `activity`: how much moved in each interval of a camera's range (GET
//! /v1/cameras/{id}/activity), as a bar table or, with --json, the reply.

use std::process::ExitCode;

use serde_json::Value;

use super::args::*;
use super::output::*;
use crate::api::client::Client;
use crate::api::params::encode;
use crate::error::Result;

/// Width of the longest bar, in characters.
const BAR_WIDTH: u64 = 40;

pub(super) fn run(cli: &Cli, client: &Client) -> Result<ExitCode> {
    let Command::Activity {
        camera,
        from,
        to,
        every,
        reason,
    } = &cli.command
    else {
        unreachable!()
    };
    let v = client.get(&format!(
        "/v1/cameras/{}/activity?from={}&to={}&every={}&reason={}",
        encode(camera),
        encode(from),
        encode(to),
        encode(every),
        encode(reason)
    ))?;
    if cli.json {
        out!("{}", pretty(&v));
    } else {
        show_activity(&v);
    }
    Ok(ExitCode::SUCCESS)
}

fn show_activity(v: &Value) {
    let tz = tz(v);
    out!(
        "camera {}, {} to {} every {}s (times in {}); bar: bytes per second of non-key \
         frames (motion costs bits)",
        text(&v["camera"]),
        when(&v["from_us"], &tz),
        when(&v["to_us"], &tz),
        text(&v["every_s"]),
        text(&v["timezone"])
    );
    let buckets = v["buckets"].as_array().cloned().unwrap_or_default();
    let peak = buckets
        .iter()
        .filter_map(|b| b["bytes_per_s"].as_u64())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut t = table(&["from", "footage", "bytes/s", "activity"]);
    for b in &buckets {
        let rate = b["bytes_per_s"].as_u64().unwrap_or(0);
        let recorded = b["recorded_s"].as_u64().unwrap_or(0);
        let bar = if recorded == 0 {
            "(no footage)".to_owned()
        } else {
            // At least one mark for any motion, so a quiet interval with
            // footage is told from one without.
            let n = (rate * BAR_WIDTH).div_ceil(peak);
            "█".repeat(n as usize)
        };
        t.add_row([
            when(&b["from_us"], &tz),
            format!("{recorded}s"),
            rate.to_string(),
            bar,
        ]);
    }
    out!("{t}");
}
