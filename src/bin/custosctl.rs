//! `custosctl`: the administrator's command line, a client of the admin API
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

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use custos::api::client::Client;
use custos::api::params::encode;
use custos::config::{Config, DEFAULT_CONFIG_PATH, DEFAULT_SOCKET, LoadOptions};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "custosctl",
    version,
    about = "Administer the Custos recording daemon through its admin socket"
)]
struct Cli {
    /// The daemon's admin socket. Default: `daemon.socket` of --config if
    /// given, else /run/custos/admin.sock.
    #[arg(long, global = true, value_name = "PATH", env = "CUSTOS_SOCKET")]
    socket: Option<PathBuf>,

    /// Configuration file, only to find the socket.
    #[arg(
        long,
        short = 'c',
        global = true,
        value_name = "FILE",
        env = "CUSTOS_CONFIG"
    )]
    config: Option<PathBuf>,

    /// Print the daemon's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The daemon, its storage roots and cameras (GET /v1/status).
    Status,
    /// Cameras with their state and last error (GET /v1/cameras[/ID]).
    Cameras {
        /// One camera only.
        id: Option<String>,
    },
    /// Recorded segments, outages and gaps of a camera
    /// (GET /v1/cameras/ID/recordings). Needs --reason.
    Recordings {
        /// Camera id, as in the config.
        #[arg(long)]
        camera: String,
        /// Start of the range: RFC 3339 or local "YYYY-MM-DD HH:MM". Default: 24 h before --to.
        #[arg(long)]
        from: Option<String>,
        /// End of the range. Default: now.
        #[arg(long)]
        to: Option<String>,
        /// Only the last N segments in the table.
        #[arg(long, default_value_t = 20)]
        last: usize,
        /// Purpose of access, recorded in the audit log (required).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Retention ceilings, oldest footage and violations, or the next pass's plan.
    Retention {
        #[command(subcommand)]
        what: RetentionCmd,
    },
    /// The deletion journal: what was deleted, when, why, by whom (GET /v1/deletions).
    Deletions {
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
    /// Read or verify the audit log.
    Audit {
        #[command(subcommand)]
        what: AuditCmd,
    },
    /// Enable, disable or restart a camera (POST /v1/cameras/ID/enable|disable|restart).
    /// Disabling lasts until enabled, a daemon restart, or a reload that
    /// changes the camera.
    Camera {
        #[arg(value_enum)]
        op: CameraOp,
        /// Camera id, as in the config.
        camera: String,
        /// Why, recorded in the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Make the daemon reload its configuration (POST /v1/config/reload).
    Reload {
        /// Why, recorded in the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
    /// The Prometheus metrics, as text (GET /v1/metrics).
    Metrics,
    /// Write the public signs (one per zone) and the camera register, as HTML
    /// for A4 printing and Markdown for the website. Works offline from
    /// --config; the daemon need not run (001 §8, §21; 004 §23, §37).
    Notice {
        /// Directory to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Language of the fixed wording: en, lt or lv.
        #[arg(long, default_value = "en")]
        lang: custos::notice::Language,
    },
    /// Evidence cases (POST/GET /v1/cases...; role evidence, reading also dpo).
    Case {
        #[command(subcommand)]
        what: CaseCmd,
    },
    /// Hold footage for a case and make its case-linked copy
    /// (POST /v1/cases/ID/holds; role evidence).
    Hold {
        #[command(subcommand)]
        what: HoldCmd,
    },
    /// The disclosure register: who received exported footage, when, on what
    /// basis (GET /v1/disclosures; 004 §25.2).
    Disclosures {
        /// Only exports of this camera.
        #[arg(long)]
        camera: Option<String>,
        /// How far back, e.g. 30d, 1y.
        #[arg(long, default_value = "1y")]
        since: String,
    },
    /// Export footage for a recipient into DIR (POST /v1/exports; role
    /// evidence): one MP4 per continuous stretch, manifest.json, manifest.sig
    /// (node key) and README.txt, streamed from custosd and written with your
    /// own permissions; recorded in the disclosure register and the audit log.
    Export {
        /// The open case this export serves.
        #[arg(long)]
        case: Option<String>,
        #[arg(long)]
        camera: String,
        /// RFC 3339 or local "YYYY-MM-DD HH:MM".
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// Who receives it (named in the manifest and the register).
        #[arg(long)]
        recipient: String,
        #[arg(long)]
        reason: String,
        /// Default: the camera's zone's legal basis.
        #[arg(long)]
        legal_basis: Option<String>,
        /// A new or empty directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Check an export package offline, without the daemon: the manifest's
    /// signature and every file's SHA-256. Exits 0 only if all is intact.
    Verify {
        /// The package directory.
        dir: PathBuf,
        /// The node's public key (64 hex digits, from `custosctl key show`).
        /// Default: the key named in the manifest, which proves the files are
        /// unchanged but not who signed them.
        #[arg(long, value_name = "HEX")]
        key: Option<String>,
    },
    /// The node key that signs export manifests.
    Key {
        #[command(subcommand)]
        what: KeyCmd,
    },
}

#[derive(Subcommand)]
enum CaseCmd {
    /// All cases with their holds, copies and review state.
    List,
    /// One case with its copies.
    Show { id: String },
    /// Read every evidence copy of a case back and check it against the hash
    /// recorded when it was made; exit 1 if any changed or is missing.
    Verify { id: String },
    /// Open a case. The id becomes a directory name: letters, digits, -, _, .
    Open {
        #[arg(long)]
        id: String,
        #[arg(long)]
        title: String,
        /// The requesting authority.
        #[arg(long)]
        authority: String,
        /// Its reference.
        #[arg(long)]
        authority_ref: String,
        #[arg(long)]
        legal_basis: String,
        /// Days until review (default and maximum from [evidence]).
        #[arg(long)]
        review_days: Option<u32>,
    },
    /// Move the review date to DAYS from now; needs a reason.
    Review {
        id: String,
        #[arg(long)]
        days: u32,
        #[arg(long)]
        reason: String,
    },
    /// Close a case: its copies are destroyed and its holds released.
    Close {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum HoldCmd {
    /// Hold a camera's footage over a range for a case.
    Add {
        #[arg(long)]
        case: String,
        #[arg(long)]
        camera: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Print the public key and its fingerprint (GET /v1/key; without the
    /// daemon, from the state directory of --config).
    Show,
}

#[derive(Subcommand)]
enum RetentionCmd {
    /// Per zone and camera: ceiling, oldest footage, bytes, violations (GET /v1/retention/status).
    Status,
    /// What the next pass would delete, without deleting (GET /v1/retention/plan).
    Plan,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CameraOp {
    Enable,
    Disable,
    Restart,
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Entries, newest first (GET /v1/audit).
    List {
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// Only this uid.
        #[arg(long)]
        uid: Option<u32>,
        /// Only this action, e.g. recordings.list.
        #[arg(long)]
        action: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Check the hash chain; reports the first broken entry (GET /v1/audit/verify).
    Verify {
        /// A checkpoint from the daemon's log (the audit_checkpoint field of
        /// "audit checkpoint" lines), as SEQ:HASH:SIGNATURE; it must carry
        /// the node key's signature, and the log must still reach it.
        #[arg(long, value_name = "SEQ:HASH:SIG")]
        checkpoint: Option<String>,
    },
}

/// `println!` that cannot panic: see [`output_failed`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            output_failed(e);
        }
    }};
}

/// Exit status when stdout cannot be written (EX_IOERR of sysexits.h).
const EXIT_OUTPUT: i32 = 74;

/// Ends the program when its output cannot be written: quietly, with the
/// status a shell shows for SIGPIPE (128 + 13), if the reader closed the
/// pipe (`custosctl audit list | head -1`); otherwise in one line naming
/// the error (a full disk).
fn output_failed(e: std::io::Error) -> ! {
    use std::io::Write as _;
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(128 + libc::SIGPIPE);
    }
    let _ = writeln!(std::io::stderr(), "custosctl: cannot write the output: {e}");
    std::process::exit(EXIT_OUTPUT)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "custosctl: {e}");
            ExitCode::from(e.kind.exit_code() as u8)
        }
    }
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
fn socket(cli: &Cli) -> custos::Result<PathBuf> {
    if let Some(s) = &cli.socket {
        return Ok(s.clone());
    }
    let Some(path) = &cli.config else {
        return Ok(PathBuf::from(DEFAULT_SOCKET));
    };
    let options = LoadOptions {
        secrets: false,
        filesystem: false,
        ..LoadOptions::default()
    };
    Config::load_with(path, &options)
        .map(|c| c.daemon.socket)
        .map_err(|errors| {
            custos::Error::invalid(format!(
                "{errors}\n(that is the --config file; to reach a daemon without reading its \
                 configuration, give its socket with --socket PATH; the default is \
                 {DEFAULT_SOCKET})"
            ))
        })
}

/// `custosctl notice`: reads only the configuration file.
fn notice(
    cli: &Cli,
    out: &std::path::Path,
    lang: custos::notice::Language,
) -> custos::Result<ExitCode> {
    let path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    // Neither secrets nor directories matter for what the public is told.
    let options = LoadOptions {
        secrets: false,
        filesystem: false,
        ..LoadOptions::default()
    };
    let config =
        Config::load_with(&path, &options).map_err(|e| custos::Error::invalid(format!("{e}")))?;
    for written in custos::notice::write(&config, lang, out)? {
        out!("{}", written.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `custosctl export`: custosd checks the request, prepares the package and
/// streams it (POST /v1/exports); this process writes it into DIR with the
/// caller's own permissions, checks each file's SHA-256 as it arrives, and
/// verifies the finished package offline before saying it is done.
fn export(cli: &Cli) -> custos::Result<ExitCode> {
    use custos::export::stream;
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
    custos::export::prepare_dir(out)?;
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
                return Err(custos::Error::internal(format!(
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
            let report = custos::export::verify_received(out, None, &received.files)?;
            match report.problems.first() {
                None => Ok(()),
                Some(p) => Err(custos::Error::internal(format!(
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
    let text = std::fs::read(out.join(custos::export::manifest::MANIFEST_FILE))
        .map_err(|e| custos::Error::io("cannot read", out, e))?;
    let m: custos::export::Manifest = serde_json::from_slice(&text)
        .map_err(|e| custos::Error::internal(format!("reading the manifest: {e}")))?;
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
const EXPORT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(900);

/// `custosctl verify`: offline, from the package alone.
fn verify(cli: &Cli, dir: &std::path::Path, key: Option<&str>) -> custos::Result<ExitCode> {
    let key = key.map(custos::export::key::parse_public).transpose()?;
    let report = custos::export::verify(dir, key.as_ref())?;
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
fn key_show(cli: &Cli) -> custos::Result<ExitCode> {
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
        Err(e) if e.kind == custos::ErrorKind::Unavailable => {}
        Err(e) => return Err(e),
    }
    let path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    let options = LoadOptions {
        secrets: false,
        filesystem: false,
        ..LoadOptions::default()
    };
    let config =
        Config::load_with(&path, &options).map_err(|e| custos::Error::invalid(format!("{e}")))?;
    let key = custos::export::key::read_public(&config.daemon.state_dir)?;
    let fp = custos::export::key::fingerprint(&key);
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

fn run(cli: Cli) -> custos::Result<ExitCode> {
    if let Command::Notice { out, lang } = &cli.command {
        return notice(&cli, out, *lang);
    }
    match &cli.command {
        Command::Verify { dir, key } => return verify(&cli, dir, key.as_deref()),
        Command::Export { .. } => return export(&cli),
        Command::Key { what: KeyCmd::Show } => return key_show(&cli),
        _ => {}
    }
    let client = Client::new(&socket(&cli)?);
    if let Command::Metrics = &cli.command {
        // Text, not JSON: printed as the daemon sent it.
        let r = client.raw("GET", "/v1/metrics", b"")?;
        if !(200..300).contains(&r.status) {
            return Err(custos::api::client::error_from(r.status, &r.json()?));
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
        Command::Status => (client.get("/v1/status")?, show_status),
        Command::Cameras { id } => match id {
            None => (client.get("/v1/cameras")?, show_cameras),
            Some(id) => {
                let one = client.get(&format!("/v1/cameras/{}", encode(id)))?;
                (json!({ "cameras": [one] }), show_cameras)
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
            (client.get(&t)?, show_recordings)
        }
        Command::Retention { what } => match what {
            RetentionCmd::Status => (client.get("/v1/retention/status")?, show_retention),
            RetentionCmd::Plan => (client.get("/v1/retention/plan")?, show_plan),
        },
        Command::Deletions { from, to } => {
            let t = target(
                "/v1/deletions",
                &[("from", from.clone()), ("to", to.clone())],
            );
            (client.get(&t)?, show_deletions)
        }
        Command::Audit { what } => match what {
            AuditCmd::List {
                from,
                to,
                uid,
                action,
                limit,
            } => {
                let t = target(
                    "/v1/audit",
                    &[
                        ("from", from.clone()),
                        ("to", to.clone()),
                        ("uid", uid.map(|u| u.to_string())),
                        ("action", action.clone()),
                        ("limit", Some(limit.to_string())),
                    ],
                );
                (client.get(&t)?, show_audit)
            }
            AuditCmd::Verify { checkpoint } => {
                let t = target("/v1/audit/verify", &[("checkpoint", checkpoint.clone())]);
                let v = client.get(&t)?;
                let broken = !v["verification"]["broken"].is_null();
                if cli.json {
                    out!("{}", pretty(&v));
                } else {
                    show_verify(&v, 0);
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
            let bad: Vec<String> = v["changed_or_missing"]
                .as_array()
                .into_iter()
                .flatten()
                .map(text)
                .collect();
            if cli.json {
                out!("{}", pretty(&v));
            } else if bad.is_empty() {
                out!(
                    "case {id}: all {} evidence copies match their recorded hashes",
                    text(&v["copies"])
                );
            } else {
                for b in &bad {
                    out!("COPY CHANGED OR MISSING: {b}");
                }
                out!(
                    "case {id}: {} of {} copies do not match their recorded hashes",
                    bad.len(),
                    text(&v["copies"])
                );
            }
            // Like `audit verify`: a finding, not a failure to run.
            return Ok(if bad.is_empty() {
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
            (v, show_pretty)
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
            show_pretty,
        ),
        Command::Disclosures { camera, since } => {
            let back = humantime::parse_duration(since).map_err(|e| {
                custos::Error::invalid(format!("--since {since:?}: {e}; e.g. 30d or 1y"))
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
                show_pretty,
            )
        }
        Command::Notice { .. }
        | Command::Metrics
        | Command::Verify { .. }
        | Command::Export { .. }
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

fn show_pretty(v: &Value, _: usize) {
    out!("{}", pretty(v));
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("JSON values serialise")
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header.iter().copied());
    t
}

fn tz(v: &Value) -> jiff::tz::TimeZone {
    v["timezone"]
        .as_str()
        .or(v["daemon"]["timezone"].as_str())
        .and_then(|n| jiff::tz::TimeZone::get(n).ok())
        .unwrap_or_else(jiff::tz::TimeZone::system)
}

/// A time in the daemon's timezone with its offset, or `none`.
fn when(t: &Value, tz: &jiff::tz::TimeZone) -> String {
    match t.as_i64() {
        Some(us) => custos::api::params::show_time(us, tz),
        None => "-".into(),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Bytes as a person reads them: 1.5 GiB.
fn size(v: &Value) -> String {
    let Some(b) = v.as_u64() else {
        return "-".into();
    };
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = b as f64;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < units.len() {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{x:.1} {}", units[u])
    }
}

/// An age in µs as days and hours: 9 d 23 h.
fn age(v: &Value) -> String {
    let Some(us) = v.as_i64() else {
        return "-".into();
    };
    let h = us / 3_600_000_000;
    format!("{} d {} h", h / 24, h % 24)
}

/// Per zone and camera: ceiling, oldest footage and its age, bytes, what
/// protects footage, the next deletion, and violations first and loudest.
fn show_retention(v: &Value, _: usize) {
    let tz = tz(v);
    let zones = v["zones"].as_array().cloned().unwrap_or_default();
    let mut violations = Vec::new();
    let mut t = table(&[
        "zone",
        "ceiling",
        "camera",
        "oldest",
        "age",
        "bytes",
        "protected by",
        "next deletion",
    ]);
    for z in &zones {
        for c in z["cameras"].as_array().into_iter().flatten() {
            let protected: Vec<String> = c["protected_by"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| match p["kind"].as_str() {
                    Some("hold") => format!("hold for case {}", text(&p["case_id"])),
                    _ => format!("restriction: {}", text(&p["reason"])),
                })
                .collect();
            if !c["violation"].is_null() {
                violations.push(format!(
                    "VIOLATION: camera {} in zone {} keeps {} segments ({}) older than its \
                     {}-day ceiling, oldest from {}",
                    text(&c["camera"]),
                    text(&z["zone"]),
                    text(&c["violation"]["segments"]),
                    size(&c["violation"]["bytes"]),
                    text(&z["retention_days"]),
                    when(&c["violation"]["oldest_start_us"], &tz),
                ));
            }
            t.add_row([
                text(&z["zone"]),
                format!("{} d", text(&z["retention_days"])),
                text(&c["camera"]),
                when(&c["oldest_us"], &tz),
                age(&c["oldest_age_us"]),
                size(&c["bytes"]),
                if protected.is_empty() {
                    "-".into()
                } else {
                    protected.join("; ")
                },
                when(&c["next_deletion_us"], &tz),
            ]);
        }
    }
    for line in &violations {
        out!("{line}");
    }
    if !violations.is_empty() {
        out!();
    }
    out!("{t}");
    let mut r = table(&["storage root", "used", "budget", "keep free", "destruction"]);
    for root in v["roots"].as_array().into_iter().flatten() {
        r.add_row([
            text(&root["root"]),
            size(&root["used_bytes"]),
            size(&root["budget"]),
            size(&root["min_free"]),
            text(&root["destruction"]),
        ]);
    }
    out!("{r}");
    print_clock_alarm(v);
    out!(
        "{} camera(s) with footage past its ceiling; {} segment(s) being read",
        text(&v["violations"]),
        text(&v["leased_segments"])
    );
}

/// What the next retention pass would delete, without deleting it.
fn show_plan(v: &Value, _: usize) {
    let tz = tz(v);
    let mut t = table(&[
        "camera", "zone", "reason", "segments", "bytes", "from", "to",
    ]);
    for i in v["items"].as_array().into_iter().flatten() {
        t.add_row([
            text(&i["camera"]),
            text(&i["zone"]),
            text(&i["reason"]).replace('_', " "),
            text(&i["segments"]),
            size(&i["bytes"]),
            when(&i["from_us"], &tz),
            when(&i["to_us"], &tz),
        ]);
    }
    out!("{t}");
    for root in v["roots"].as_array().into_iter().flatten() {
        if root["unmet_bytes"].as_u64().unwrap_or(0) > 0 {
            out!(
                "ALARM: storage root {} would still be {} short after deleting everything \
                 deletable; what is left is protected (holds, restrictions) or being read",
                text(&root["root"]),
                size(&root["unmet_bytes"])
            );
        }
    }
    print_clock_alarm(v);
    out!(
        "next pass: {} segment(s), {}; {} skipped while being read",
        text(&v["total"]["segments"]),
        size(&v["total"]["bytes"]),
        text(&v["leased"])
    );
}

/// The clock guard's alarm, if the reply carries one: nothing is deleted
/// while it lasts.
fn print_clock_alarm(v: &Value) {
    if let Some(state) = v["clock_alarm"]["state"].as_str() {
        out!(
            "ALARM: clock: {state} (since {})",
            when(&v["clock_alarm"]["since_us"], &tz(v))
        );
    }
}

fn show_note(v: &Value, _: usize) {
    out!("{}", text(&v["note"]));
}

fn show_status(v: &Value, _: usize) {
    let tz = tz(v);
    let d = &v["daemon"];
    out!(
        "custosd {} (pid {}), up since {}, timezone {}, audit entries {}",
        text(&d["version"]),
        text(&d["pid"]),
        when(&d["started_us"], &tz),
        text(&d["timezone"]),
        text(&d["audit_seq"]),
    );
    let you = &v["you"];
    out!(
        "you: {} (uid {}), roles: {}",
        text(&you["user"]),
        text(&you["uid"]),
        you["roles"]
            .as_array()
            .map(|r| r.iter().map(text).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    );
    let mut t = table(&["storage", "path", "free", "total", "min free", "budget"]);
    for r in v["storage"].as_array().into_iter().flatten() {
        t.add_row([
            text(&r["id"]),
            text(&r["path"]),
            size(&r["free_bytes"]),
            size(&r["total_bytes"]),
            size(&r["min_free"]),
            size(&r["budget"]),
        ]);
    }
    out!("{t}");
    for a in v["storage_alarms"].as_array().into_iter().flatten() {
        out!("ALARM: {}", a);
    }
    print_clock_alarm(v);
    if let Some(state) = v["recovery_alarm"]["state"].as_str() {
        out!("ALARM: recovery: {state}");
    }
    for id in v["overdue_reviews"].as_array().into_iter().flatten() {
        out!(
            "VIOLATION: case {} is past its review date: extend it with a reason \
             (custosctl case review) or close it",
            text(id)
        );
    }
    show_cameras(v, 0);
}

fn show_cameras(v: &Value, _: usize) {
    let mut t = table(&["camera", "zone", "state", "segments", "last error"]);
    for c in v["cameras"].as_array().into_iter().flatten() {
        t.add_row([
            text(&c["id"]),
            text(&c["zone"]),
            text(&c["state"]),
            text(&c["segments_written"]),
            text(&c["last_error"]),
        ]);
    }
    out!("{t}");
}

fn show_recordings(v: &Value, last: usize) {
    let tz = tz(v);
    let segs = v["segments"].as_array().cloned().unwrap_or_default();
    let segs = &segs[segs.len().saturating_sub(last)..];
    let mut t = table(&["start", "end", "state", "frames", "bytes", "codecs", "time"]);
    for s in segs {
        let codecs = [&s["video_codec"], &s["audio_codec"]]
            .iter()
            .filter_map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join("+");
        t.add_row([
            when(&s["start_us"], &tz),
            if s["end_us"].is_null() {
                "recording".into()
            } else {
                when(&s["end_us"], &tz)
            },
            text(&s["state"]),
            text(&s["frames"]),
            text(&s["bytes"]),
            codecs,
            text(&s["time_source"]),
        ]);
    }
    out!("{t}");
    let outages = v["outages"].as_array().cloned().unwrap_or_default();
    if !outages.is_empty() {
        let mut t = table(&["outage from", "to", "reason"]);
        for o in &outages {
            t.add_row([
                when(&o["from_us"], &tz),
                if o["to_us"].is_null() {
                    "ongoing".into()
                } else {
                    when(&o["to_us"], &tz)
                },
                text(&o["reason"]),
            ]);
        }
        out!("{t}");
    }
    let gaps = v["gaps"].as_array().cloned().unwrap_or_default();
    if !gaps.is_empty() {
        let mut t = table(&["gap from", "to"]);
        for g in &gaps {
            t.add_row([when(&g["from_us"], &tz), when(&g["to_us"], &tz)]);
        }
        out!("{t}");
    }
    if let Some(next) = v["more_from_us"]
        .as_i64()
        .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
    {
        // Exact to the microsecond, so the next page starts where this ends.
        out!(
            "More segments follow: run again with --from {}",
            next.to_zoned(tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")
        );
    }
}

fn show_deletions(v: &Value, _: usize) {
    let tz = tz(v);
    let mut t = table(&[
        "at", "camera", "zone", "from", "to", "segments", "bytes", "reason", "by",
    ]);
    for d in v["deletions"].as_array().into_iter().flatten() {
        t.add_row([
            when(&d["at_us"], &tz),
            text(&d["camera"]),
            text(&d["zone"]),
            when(&d["from_us"], &tz),
            when(&d["to_us"], &tz),
            text(&d["segments"]),
            text(&d["bytes"]),
            text(&d["reason"]),
            text(&d["actor"]),
        ]);
    }
    out!("{t}");
}

fn show_audit(v: &Value, _: usize) {
    let tz = tz(v);
    let mut t = table(&[
        "seq", "at", "user", "uid", "pid", "role", "action", "target", "reason", "outcome",
    ]);
    for e in v["entries"].as_array().into_iter().flatten() {
        t.add_row([
            text(&e["seq"]),
            when(&e["at_us"], &tz),
            text(&e["user"]),
            text(&e["uid"]),
            text(&e["pid"]),
            text(&e["role"]),
            text(&e["action"]),
            text(&e["target"]),
            text(&e["reason"]),
            text(&e["outcome"]),
        ]);
    }
    out!("{t}");
}

fn show_verify(v: &Value, _: usize) {
    let ver = &v["verification"];
    match &ver["broken"] {
        Value::Null => out!(
            "audit log intact: {} entries checked (seq {} to {}); head seq {} hash {}\n\
             checkpoint (for a later --checkpoint): {}",
            text(&ver["checked"]),
            text(&ver["first_seq"]),
            text(&ver["last_seq"]),
            text(&v["head"]["seq"]),
            text(&v["head"]["hash"]),
            text(&v["checkpoint"]),
        ),
        b => out!(
            "AUDIT LOG BROKEN at entry {}: {}\n({} entries before it are intact)",
            text(&b["seq"]),
            text(&b["problem"]),
            text(&ver["checked"]),
        ),
    }
}
