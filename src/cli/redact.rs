//! `request redact` and `redaction ...`: a redacted copy for a data
//! subject, from starting the job to the signed package in the DPO's
//! directory. custosd does the work; this follows it, writes the sheets
//! and receives the package (verified as an export is).

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use super::args::*;
use super::output::*;
use crate::api::client::Client;
use crate::api::params::encode;
use crate::{Error, Result};

/// `custosctl request redact`.
pub(super) fn start(cli: &Cli, client: &Client, what: &RequestCmd) -> Result<ExitCode> {
    let RequestCmd::Redact {
        id,
        camera,
        from,
        to,
        detect_width,
        no_wait,
    } = what
    else {
        unreachable!()
    };
    let v = client.call(
        "POST",
        &format!("/v1/requests/{}/redactions", encode(id)),
        Some(&json!({"camera": camera, "from": from, "to": to, "detect_width": detect_width})),
    )?;
    finish(cli, client, v, !no_wait)
}

/// Runs a `redaction` command.
pub(super) fn run(cli: &Cli, client: &Client, what: &RedactionCmd) -> Result<ExitCode> {
    let path = |id: &i64, tail: &str| format!("/v1/redactions/{id}{tail}");
    let v = match what {
        RedactionCmd::List { request } => {
            let v = match request {
                Some(r) => client.get(&format!("/v1/redactions?request={}", encode(r)))?,
                None => client.get("/v1/redactions")?,
            };
            if cli.json {
                out!("{}", pretty(&v));
            } else {
                show_list(&v);
            }
            return Ok(ExitCode::SUCCESS);
        }
        RedactionCmd::Show { id, wait } => {
            let v = client.get(&path(id, ""))?;
            return finish(cli, client, v, *wait);
        }
        RedactionCmd::Sheet { id, copy, out } => {
            let name = if *copy { "copy.png" } else { "tracks.png" };
            return sheet(client, &path(id, &format!("/{name}")), out);
        }
        RedactionCmd::Choose {
            id,
            keep,
            mask,
            keep_only,
            keep_audio,
            margin,
            no_wait,
        } => {
            let masks = mask
                .iter()
                .map(|m| parse_mask(m))
                .collect::<Result<Vec<_>>>()?;
            let v = client.call(
                "POST",
                &path(id, "/choose"),
                Some(
                    &json!({"keep": keep, "masks": masks, "keep_only": keep_only,
                             "keep_audio": keep_audio, "margin": margin}),
                ),
            )?;
            return finish(cli, client, v, !no_wait);
        }
        RedactionCmd::Cancel { id } => client.call("POST", &path(id, "/cancel"), None)?,
        RedactionCmd::Resume { id } => client.call("POST", &path(id, "/resume"), None)?,
        RedactionCmd::Approve { id } => client.call("POST", &path(id, "/approve"), None)?,
        RedactionCmd::Release { id, out } => return release(cli, client, *id, out),
    };
    finish(cli, client, v, false)
}

/// Prints a job, first following it until its running phase ends if
/// `follow`.
fn finish(cli: &Cli, client: &Client, mut v: Value, follow: bool) -> Result<ExitCode> {
    if follow {
        v = follow_job(cli, client, v)?;
    }
    if cli.json {
        out!("{}", pretty(&v));
    } else {
        show(&v);
    }
    Ok(if v["redaction"]["state"] == "failed" {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn follow_job(cli: &Cli, client: &Client, mut v: Value) -> Result<Value> {
    let id = v["redaction"]["id"].as_i64().unwrap_or(0);
    let bar = (!cli.json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {pos}/{len} frames, eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    while matches!(
        v["redaction"]["state"].as_str(),
        Some("detecting" | "rendering")
    ) {
        if let Some(b) = &bar {
            let r = &v["redaction"];
            b.set_message(match r["state"].as_str() {
                Some("detecting") => "finding faces",
                _ => "rendering the copy",
            });
            b.set_length(r["frames"].as_u64().unwrap_or(0));
            b.set_position(r["frames_done"].as_u64().unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(500));
        v = client.get(&format!("/v1/redactions/{id}"))?;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(v)
}

/// `TIME@X,Y,WxH;TIME@X,Y,WxH` as the API's keys.
fn parse_mask(s: &str) -> Result<Value> {
    let bad = |part: &str| {
        Error::invalid(format!(
            "{part:?} is not a mask key; write TIME@X,Y,WxH in the picture's pixels, e.g. \
             \"2027-01-10 10:30:05@640,360,120x80\", and separate keys with ';'"
        ))
    };
    let mut keys = Vec::new();
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (at, rect) = part.rsplit_once('@').ok_or_else(|| bad(part))?;
        let nums: Vec<&str> = rect.split([',', 'x']).map(str::trim).collect();
        let [x, y, w, h] = nums.as_slice() else {
            return Err(bad(part));
        };
        let n = |v: &str| v.parse::<u32>().map_err(|_| bad(part));
        keys.push(json!({"at": at.trim(), "x": n(x)?, "y": n(y)?, "w": n(w)?, "h": n(h)?}));
    }
    if keys.is_empty() {
        return Err(bad(s));
    }
    Ok(json!({ "keys": keys }))
}

fn sheet(client: &Client, target: &str, out: &Path) -> Result<ExitCode> {
    let mut reply = client.open_get(target, super::export::EXPORT_PATIENCE)?;
    let png = super::review::png_body(&mut reply)?;
    super::review::write_private(out, &png)?;
    out!("wrote {} ({} bytes)", out.display(), png.len());
    Ok(ExitCode::SUCCESS)
}

fn release(cli: &Cli, client: &Client, id: i64, out: &Path) -> Result<ExitCode> {
    use crate::export::stream;
    let existed = out.exists();
    crate::export::prepare_dir(out)?;
    let result = client
        .open(
            "POST",
            &format!("/v1/redactions/{id}/release"),
            &json!({}),
            super::export::EXPORT_PATIENCE,
        )
        .and_then(|reply| {
            if !reply.content_type.starts_with(stream::CONTENT_TYPE) {
                return Err(Error::internal(format!(
                    "custosd answered the release with {:?}, not a package stream",
                    reply.content_type
                )));
            }
            stream::receive(reply.body, out, &mut |_, _| {})
        })
        .and_then(|received| {
            let report = crate::export::verify_received(out, None, &received.files)?;
            match report.problems.first() {
                None => Ok(()),
                Some(p) => Err(Error::internal(format!(
                    "the package arrived but does not verify: {}: {}",
                    p.file, p.message
                ))),
            }
        });
    if let Err(e) = result {
        if !existed {
            let _ = std::fs::remove_dir(out);
        }
        return Err(e);
    }
    let bytes = std::fs::read(out.join(crate::export::manifest::MANIFEST_FILE))
        .map_err(|e| Error::io("cannot read", out, e))?;
    let m: crate::export::Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| Error::internal(format!("reading the manifest: {e}")))?;
    if cli.json {
        out!("{}", serde_json::to_string_pretty(&m).unwrap_or_default());
    } else {
        for f in &m.files {
            out!("{}  {} bytes  sha256 {}", f.name, f.bytes, f.sha256);
        }
        out!(
            "released redaction {id} to {} into {}; verified, signed by key {}; the \
             disclosure is registered",
            m.recipient,
            out.display(),
            m.key_fingerprint
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn show_list(v: &Value) {
    let tz = tz(v);
    let mut t = table(&[
        "#", "request", "camera", "from", "to", "state", "frames", "tracks",
    ]);
    for r in v["redactions"].as_array().map_or(&[][..], Vec::as_slice) {
        t.add_row([
            text(&r["id"]),
            text(&r["request_id"]),
            text(&r["camera"]),
            when(&r["from_us"], &tz),
            when(&r["to_us"], &tz),
            text(&r["state"]),
            format!("{}/{}", text(&r["frames_done"]), text(&r["frames"])),
            text(&r["tracks"]),
        ]);
    }
    out!("{t}");
}

fn show(v: &Value) {
    let tz = tz(v);
    let r = &v["redaction"];
    let id = text(&r["id"]);
    out!(
        "redaction {id} of request {}: camera {} from {} to {}",
        text(&r["request_id"]),
        text(&r["camera"]),
        when(&r["from_us"], &tz),
        when(&r["to_us"], &tz)
    );
    out!(
        "started by {} (uid {}) on {}",
        text(&r["created_by"]),
        text(&r["created_uid"]),
        when(&r["created_us"], &tz)
    );
    let state = r["state"].as_str().unwrap_or("");
    let progress = format!("{}/{} frames", text(&r["frames_done"]), text(&r["frames"]));
    match state {
        "detecting" => out!("finding faces: {progress}"),
        "rendering" => out!("rendering the copy: {progress}"),
        "choosing" => out!(
            "{} faces found. Look at the tracks sheet (custosctl redaction sheet {id} --out \
             tracks.png), then name the requester's: custosctl redaction choose {id} --keep N",
            text(&r["tracks"])
        ),
        "review" => out!(
            "the copy is rendered. A second DPO reviews its sheet (custosctl redaction sheet \
             {id} --copy --out copy.png) and approves it: custosctl redaction approve {id}"
        ),
        "approved" => out!(
            "approved by {} (uid {}): custosctl redaction release {id} --out DIR",
            text(&r["approved_by"]),
            text(&r["approved_uid"])
        ),
        "released" => out!("released on {}", when(&r["released_us"], &tz)),
        "cancelled" => out!("cancelled at {progress}: custosctl redaction resume {id}"),
        "failed" => out!(
            "FAILED: {} (custosctl redaction resume {id} tries again)",
            text(&r["error"])
        ),
        other => out!("{other}"),
    }
    if let Some(tracks) = r["track_list"].as_array() {
        let kept: Vec<u64> = r["choice"]["keep"]
            .as_array()
            .map(|k| k.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let mut t = table(&[
            "track",
            "frames",
            "interpolated",
            "first frame",
            "last frame",
            "",
        ]);
        for tr in tracks {
            let kept = tr["id"].as_u64().is_some_and(|i| kept.contains(&i));
            t.add_row([
                text(&tr["id"]),
                text(&tr["frames"]),
                text(&tr["interpolated"]),
                text(&tr["first_frame"]),
                text(&tr["last_frame"]),
                if kept { "kept" } else { "" }.to_owned(),
            ]);
        }
        if !tracks.is_empty() {
            out!("{t}");
        }
    }
    let rec = &r["record"];
    if rec.is_object() {
        out!(
            "copy: {} frames, {} bytes, sha256 {}; sound {}; {} masked tracks, {} manual \
             masks{}; {} seconds marked for a closer look",
            text(&rec["output"]["frames"]),
            text(&rec["output"]["bytes"]),
            text(&rec["output"]["sha256"]),
            text(&rec["audio"]),
            rec["tracks"]
                .as_array()
                .map_or(0, |t| t.iter().filter(|t| t["kept"] == false).count()),
            rec["manual_masks"].as_array().map_or(0, Vec::len),
            if rec["masking"]["keep_only"] == true {
                ", keep only"
            } else {
                ""
            },
            text(&rec["marked_seconds"])
        );
    }
}
