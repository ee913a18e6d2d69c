//! `activity`: how much moved in each interval of a camera's range (GET
//! /v1/cameras/{id}/activity), as a bar table or, with --json, the reply.
//! `sheet`: a contact sheet of the range (GET /v1/cameras/{id}/sheet) into
//! a new PNG file; its tiles' times on stdout (or as JSON).

use std::process::ExitCode;

use serde_json::Value;

use super::args::*;
use super::output::*;
use crate::api::client::Client;
use crate::api::params::encode;
use crate::error::{Error, Result};

/// Width of the longest bar, in characters.
const BAR_WIDTH: u64 = 40;

pub(super) fn run(cli: &Cli, client: &Client) -> Result<ExitCode> {
    if let Command::Sheet { .. } = &cli.command {
        return sheet(cli);
    }
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

fn sheet(cli: &Cli) -> Result<ExitCode> {
    let Command::Sheet {
        camera,
        from,
        to,
        every,
        reason,
        out,
    } = &cli.command
    else {
        unreachable!()
    };
    let target = format!(
        "/v1/cameras/{}/sheet?from={}&to={}&every={}&reason={}",
        encode(camera),
        encode(from),
        encode(to),
        encode(every),
        encode(reason)
    );
    let mut reply =
        Client::new(&super::socket(cli)?).open_get(&target, super::export::EXPORT_PATIENCE)?;
    let tiles: Vec<Option<i64>> = reply
        .header("x-custos-tiles")
        .unwrap_or("")
        .split(',')
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().ok())
        .collect();
    let timezone = reply
        .header("x-custos-timezone")
        .unwrap_or("UTC")
        .to_owned();
    let png = png_body(&mut reply)?;
    write_private(out, &png)?;
    let v = serde_json::json!({
        "camera": camera,
        "timezone": timezone,
        "file": out,
        "bytes": png.len(),
        "tiles": tiles.iter().map(|t| serde_json::json!({ "at_us": t })).collect::<Vec<_>>(),
    });
    if cli.json {
        out!("{}", pretty(&v));
    } else {
        let shown = tiles.iter().flatten().count();
        let tz = tz(&v);
        let first = tiles
            .iter()
            .flatten()
            .next()
            .map(|&us| when(&us.into(), &tz));
        let last = tiles
            .iter()
            .flatten()
            .last()
            .map(|&us| when(&us.into(), &tz));
        out!(
            "{} tiles ({shown} with footage{}) written to {}",
            tiles.len(),
            match (first, last) {
                (Some(a), Some(b)) => format!(", {a} to {b}"),
                _ => String::new(),
            },
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` into a new file `out` only its owner may read (footage).
pub(super) fn write_private(out: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(crate::storage::FILE_MODE)
        .open(out)
        .map_err(|e| Error::io("cannot create (give a new file name)", out, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("cannot write", out, e))
}

/// A PNG reply's body, whole: refused if it is not a PNG or was cut off.
pub(super) fn png_body(reply: &mut crate::api::client::Streamed) -> Result<Vec<u8>> {
    if !reply.content_type.starts_with("image/png") {
        return Err(Error::internal(format!(
            "custosd answered with {:?}, not image/png; is it the same version as this \
             custosctl?",
            reply.content_type
        )));
    }
    let mut png = Vec::new();
    std::io::Read::read_to_end(&mut reply.body, &mut png)
        .map_err(|e| Error::unavailable(format!("the sheet was cut off: {e}")))?;
    if reply.length.is_some_and(|n| n != png.len() as u64) {
        return Err(Error::unavailable(
            "the sheet was cut off; custosd's log (journalctl -u custosd) says why",
        ));
    }
    Ok(png)
}
