//! `custosctl`, the administrator's command line, a client of the admin API
//! on custosd's Unix socket (docs/api.md). It holds no privilege of its own:
//! the daemon decides what the calling user may do from its uid, and audits
//! every call.
//!
//! Human tables by default, `--json` for scripts. Times are accepted as
//! RFC 3339 or local `YYYY-MM-DD HH:MM` (in the daemon's timezone) and shown
//! in the daemon's timezone with their offset. Exit codes follow the error
//! kind: 2 invalid input, 3 not found, 4 permission denied, 5 conflict,
//! 6 unavailable (daemon not running), 70 internal; 74 if the output cannot
//! be written, 141 (as for SIGPIPE) if its reader closed the pipe.
//!
//! Rooms: `args` (what can be typed), `output` (how anything is shown), one
//! module per command group, and here the dispatch from a command to its
//! request and its rendering.

// First: its `out!` is used by every module below.
#[macro_use]
mod output;

pub mod args;
mod audit;
mod breaches;
mod evidence;
mod export;
mod inbox;
mod notice;
mod recordings;
mod redact;
mod requests;
mod retention;
mod review;
mod status;
mod vault;
mod view;

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Value, json};

use crate::api::client::Client;
use crate::api::params::encode;
use crate::config::{Config, DEFAULT_CONFIG_PATH, DEFAULT_SOCKET, LoadOptions};
use args::*;
use output::*;

/// Runs a parsed command line; the binary prints the error, if any, and
/// exits with its kind's code.
pub fn run(cli: Cli) -> crate::Result<ExitCode> {
    if let Command::Notice { out, lang } = &cli.command {
        return notice::notice(&cli, out, *lang);
    }
    match &cli.command {
        Command::Verify { dir, key } => return export::verify(&cli, dir, key.as_deref()),
        Command::Export { .. } => return export::export(&cli),
        Command::View { .. } => return view::view(&cli),
        Command::Key { what: KeyCmd::Show } => return export::key_show(&cli),
        _ => {}
    }
    let client = Client::new(&socket(&cli)?);
    if let Command::Inbox { what } = &cli.command {
        return inbox::run(&cli, &client, what);
    }
    if let Command::Vault { what } = &cli.command {
        return vault::run(&cli, &client, what);
    }
    if let Command::Request { what } = &cli.command {
        return requests::run(&cli, &client, what);
    }
    if let Command::Redaction { what } = &cli.command {
        return redact::run(&cli, &client, what);
    }
    if let Command::Activity { .. } | Command::Sheet { .. } = &cli.command {
        return review::run(&cli, &client);
    }
    if let Command::Alerts { what } = &cli.command {
        return breaches::alerts(&cli, &client, what);
    }
    if let Command::Breach { what } = &cli.command {
        return breaches::run(&cli, &client, what);
    }
    if let Command::Compliance { out } = &cli.command {
        return requests::compliance(&cli, &client, out.as_deref());
    }
    if let Command::Metrics = &cli.command {
        // Text, not JSON: printed as the daemon sent it.
        let r = client.raw("GET", "/v1/metrics", b"")?;
        if !(200..300).contains(&r.status) {
            return Err(crate::Error::from_reply(r.status, &r.json()?));
        }
        {
            use std::io::Write as _;
            let mut stdout = std::io::stdout();
            if let Err(e) = stdout.write_all(&r.body).and_then(|()| stdout.flush()) {
                output_failed(e);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (value, show): (Value, fn(&Value, usize)) = match &cli.command {
        Command::Status => (client.get("/v1/status")?, status::show_status),
        Command::Cameras { id } => match id {
            None => (client.get("/v1/cameras")?, status::show_cameras),
            Some(id) => {
                let one = client.get(&format!("/v1/cameras/{}", encode(id)))?;
                (json!({ "cameras": [one] }), status::show_cameras)
            }
        },
        Command::Recordings {
            camera,
            from,
            to,
            reason,
            ..
        } => {
            let t = target(
                &format!("/v1/cameras/{}/recordings", encode(camera)),
                &[
                    ("from", from.clone()),
                    ("to", to.clone()),
                    ("reason", reason.clone()),
                ],
            );
            (client.get(&t)?, recordings::show_recordings)
        }
        Command::Retention { what } => match what {
            RetentionCmd::Status => (
                client.get("/v1/retention/status")?,
                retention::show_retention,
            ),
            RetentionCmd::Plan => (client.get("/v1/retention/plan")?, retention::show_plan),
        },
        Command::Deletions { from, to } => {
            let t = target(
                "/v1/deletions",
                &[("from", from.clone()), ("to", to.clone())],
            );
            (client.get(&t)?, retention::show_deletions)
        }
        Command::Audit { what } => match what {
            AuditCmd::List {
                from,
                to,
                uid,
                action,
                camera,
                limit,
            } => {
                let t = target(
                    "/v1/audit",
                    &[
                        ("from", from.clone()),
                        ("to", to.clone()),
                        ("uid", uid.map(|u| u.to_string())),
                        ("action", action.clone()),
                        ("camera", camera.clone()),
                        ("limit", Some(limit.to_string())),
                    ],
                );
                (client.get(&t)?, audit::show_audit)
            }
            AuditCmd::Verify { checkpoint } => {
                let t = target("/v1/audit/verify", &[("checkpoint", checkpoint.clone())]);
                let v = client.get(&t)?;
                let broken = !v["verification"]["broken"].is_null();
                if cli.json {
                    out!("{}", pretty(&v));
                } else {
                    audit::show_verify(&v, 0);
                }
                // A broken chain is a finding, not a failure to run: exit 1.
                return Ok(if broken {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                });
            }
        },
        Command::Camera { op, camera, reason } => {
            let op = match op {
                CameraOp::Enable => "enable",
                CameraOp::Disable => "disable",
                CameraOp::Restart => "restart",
            };
            let body = match reason {
                Some(r) => json!({ "reason": r }),
                None => json!({}),
            };
            let path = format!("/v1/cameras/{}/{op}", encode(camera));
            (client.call("POST", &path, Some(&body))?, show_note)
        }
        Command::Reload { reason } => {
            let body = match reason {
                Some(r) => json!({ "reason": r }),
                None => json!({}),
            };
            (
                client.call("POST", "/v1/config/reload", Some(&body))?,
                show_note,
            )
        }
        Command::Case {
            what: CaseCmd::Verify { id },
        } => {
            let v = client.get(&format!("/v1/cases/{}/verify", encode(id)))?;
            if cli.json {
                out!("{}", pretty(&v));
            }
            // Like `audit verify`: a finding, not a failure to run.
            return Ok(if evidence::show_verify(&v, id, !cli.json) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        Command::Case { what } => {
            let v = match what {
                CaseCmd::List => client.get("/v1/cases")?,
                CaseCmd::Show { id } => client.get(&format!("/v1/cases/{}", encode(id)))?,
                CaseCmd::Verify { .. } => unreachable!("handled above"),
                CaseCmd::Open {
                    id,
                    title,
                    authority,
                    authority_ref,
                    legal_basis,
                    review_days,
                } => client.call(
                    "POST",
                    "/v1/cases",
                    Some(&json!({
                        "id": id, "title": title, "authority": authority,
                        "authority_ref": authority_ref, "legal_basis": legal_basis,
                        "review_days": review_days,
                    })),
                )?,
                CaseCmd::Review { id, days, reason } => client.call(
                    "POST",
                    &format!("/v1/cases/{}/review", encode(id)),
                    Some(&json!({ "days": days, "reason": reason })),
                )?,
                CaseCmd::Close { id, reason } => client.call(
                    "POST",
                    &format!("/v1/cases/{}/close", encode(id)),
                    Some(&json!({ "reason": reason })),
                )?,
            };
            (v, evidence::show_evidence)
        }
        Command::Hold {
            what:
                HoldCmd::Add {
                    case,
                    camera,
                    from,
                    to,
                },
        } => (
            client.call(
                "POST",
                &format!("/v1/cases/{}/holds", encode(case)),
                Some(&json!({ "camera": camera, "from": from, "to": to })),
            )?,
            evidence::show_evidence,
        ),
        Command::Disclosures { camera, since } => {
            let back = humantime::parse_duration(since).map_err(|e| {
                crate::Error::invalid(format!("--since {since:?}: {e}; e.g. 30d or 1y"))
            })?;
            let since = jiff::Timestamp::now()
                .checked_sub(
                    jiff::SignedDuration::try_from(back).unwrap_or(jiff::SignedDuration::MAX),
                )
                .unwrap_or(jiff::Timestamp::MIN)
                .to_string();
            (
                client.get(&target(
                    "/v1/disclosures",
                    &[("camera", camera.clone()), ("since", Some(since))],
                ))?,
                evidence::show_evidence,
            )
        }
        Command::Notice { .. }
        | Command::Metrics
        | Command::Verify { .. }
        | Command::Export { .. }
        | Command::View { .. }
        | Command::Activity { .. }
        | Command::Sheet { .. }
        | Command::Request { .. }
        | Command::Redaction { .. }
        | Command::Inbox { .. }
        | Command::Vault { .. }
        | Command::Compliance { .. }
        | Command::Breach { .. }
        | Command::Alerts { .. }
        | Command::Key { .. } => {
            unreachable!("handled above, without a client")
        }
    };
    if cli.json {
        out!("{}", pretty(&value));
    } else {
        let last = match &cli.command {
            Command::Recordings { last, .. } => *last,
            _ => usize::MAX,
        };
        show(&value, last);
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds `path?k=v&...` from the parameters that are set.
fn target(path: &str, params: &[(&str, Option<String>)]) -> String {
    let q: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

/// The daemon's socket: `--socket`, else the one `--config` names, else the
/// default. A `--config` that cannot be read or parsed is an error naming
/// it, never a silent fall-back to another daemon's socket.
pub(super) fn socket(cli: &Cli) -> crate::Result<PathBuf> {
    if let Some(s) = &cli.socket {
        return Ok(s.clone());
    }
    let Some(path) = &cli.config else {
        return Ok(PathBuf::from(DEFAULT_SOCKET));
    };
    read_config(path).map(|c| c.daemon.socket).map_err(|e| {
        crate::Error::invalid(format!(
            "{}\n(that is the --config file; to reach a daemon without reading its \
             configuration, give its socket with --socket PATH; the default is \
             {DEFAULT_SOCKET})",
            e.message
        ))
    })
}

/// `--config`, or the installed configuration.
pub(super) fn config_path(cli: &Cli) -> PathBuf {
    cli.config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

/// The configuration at `path`, read for what custosctl needs of it (the
/// socket, the state directory, the public notice): neither its secrets
/// nor its directories.
pub(super) fn read_config(path: &std::path::Path) -> crate::Result<Config> {
    let options = LoadOptions {
        secrets: false,
        filesystem: false,
        ..LoadOptions::default()
    };
    Config::load_with(path, &options).map_err(|errors| crate::Error::invalid(errors.to_string()))
}
