//! `export` (the package streamed from the daemon into the officer's own
//! files), offline `verify`, and `key show`.

use std::process::ExitCode;

use serde_json::json;

use super::args::*;
use super::output::*;
use super::{config_path, read_config, socket};
use crate::api::client::Client;

/// `custosctl export`: custosd checks the request, prepares the package and
/// streams it (POST /v1/exports); this process writes it into DIR with the
/// caller's own permissions, checks each file's SHA-256 as it arrives, and
/// verifies the finished package offline before saying it is done.
pub(super) fn export(cli: &Cli) -> crate::Result<ExitCode> {
    use crate::export::stream;
    use std::io::IsTerminal;
    let Command::Export {
        case,
        camera,
        from,
        to,
        recipient,
        reason,
        legal_basis,
        out,
    } = &cli.command
    else {
        unreachable!()
    };
    let existed = out.exists();
    crate::export::prepare_dir(out)?;
    let body = json!({
        "camera": camera,
        "from": from,
        "to": to,
        "case": case,
        "recipient": recipient,
        "reason": reason,
        "legal_basis": legal_basis,
    });
    let bar = (!cli.json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message("custosd is checking the footage");
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    });
    let result = Client::new(&socket(cli)?)
        .open("POST", "/v1/exports", &body, EXPORT_PATIENCE)
        .and_then(|reply| {
            if !reply.content_type.starts_with(stream::CONTENT_TYPE) {
                return Err(crate::Error::internal(format!(
                    "custosd answered the export with {:?}, not an export stream; is it the \
                     same version as this custosctl?",
                    reply.content_type
                )));
            }
            stream::receive(reply.body, out, &mut |done, total| {
                if let Some(b) = &bar {
                    if done == 0 {
                        b.set_message("exporting");
                    }
                    b.set_length(total);
                    b.set_position(done);
                }
            })
        })
        .and_then(|received| {
            // The signature and the listing are checked as `verify` does;
            // the files' hashes were taken as they arrived, not read back.
            let report = crate::export::verify_received(out, None, &received.files)?;
            match report.problems.first() {
                None => Ok(()),
                Some(p) => Err(crate::Error::internal(format!(
                    "the package arrived but does not verify: {}: {}",
                    p.file, p.message
                ))),
            }
        });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Err(e) = result {
        if !existed {
            let _ = std::fs::remove_dir(out);
        }
        return Err(e);
    }
    let text = std::fs::read(out.join(crate::export::manifest::MANIFEST_FILE))
        .map_err(|e| crate::Error::io("cannot read", out, e))?;
    let m: crate::export::Manifest = serde_json::from_slice(&text)
        .map_err(|e| crate::Error::internal(format!("reading the manifest: {e}")))?;
    if cli.json {
        out!("{}", serde_json::to_string_pretty(&m).unwrap_or_default());
    } else {
        for f in &m.files {
            out!("{}  {} bytes  sha256 {}", f.name, f.bytes, f.sha256);
        }
        for g in &m.gaps {
            out!(
                "GAP  no recording from {} to {}{}",
                g.from.local,
                g.to.local,
                g.reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
        }
        out!(
            "exported {} to {} into {}; verified, signed by key {}",
            m.actual.from.local,
            m.actual.to.local,
            out.display(),
            m.key_fingerprint
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// How long `custosctl export` waits for custosd to start sending (it first
/// re-hashes every source segment: minutes for a day of footage) and for
/// each piece after.
pub(super) const EXPORT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(900);

/// `custosctl verify`: offline, from the package alone.
pub(super) fn verify(
    cli: &Cli,
    dir: &std::path::Path,
    key: Option<&str>,
) -> crate::Result<ExitCode> {
    let key = key.map(crate::export::key::parse_public).transpose()?;
    let report = crate::export::verify(dir, key.as_ref())?;
    if cli.json {
        out!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        for p in &report.problems {
            out!("FAILED  {}: {}", p.file, p.message);
        }
        let fp = report.key_fingerprint.as_deref().unwrap_or("-");
        if report.ok() {
            out!(
                "OK  {} files intact, manifest signed by key {fp}{}",
                report.files_checked,
                if report.key_given {
                    ""
                } else {
                    " (the key named in the manifest: \
                 compare this fingerprint with the controller's)"
                }
            );
        }
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `custosctl key show`: the public half, from the daemon (GET /v1/key),
/// or from the state directory of --config when the daemon is not running.
pub(super) fn key_show(cli: &Cli) -> crate::Result<ExitCode> {
    match Client::new(&socket(cli)?).get("/v1/key") {
        Ok(v) => {
            if cli.json {
                out!("{}", pretty(&v));
            } else {
                out!(
                    "public key   {}\nfingerprint  {}",
                    text(&v["public_key"]),
                    text(&v["fingerprint"])
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) if e.kind == crate::ErrorKind::Unavailable => {}
        Err(e) => return Err(e),
    }
    let config = read_config(&config_path(cli))?;
    let key = crate::export::key::read_public(&config.daemon.state_dir)?;
    let fp = crate::export::key::fingerprint(&key);
    if cli.json {
        out!(
            "{}",
            json!({ "public_key": hex::encode(key.as_bytes()), "fingerprint": fp })
        );
    } else {
        out!(
            "public key   {}\nfingerprint  {fp}",
            hex::encode(key.as_bytes())
        );
    }
    Ok(ExitCode::SUCCESS)
}
