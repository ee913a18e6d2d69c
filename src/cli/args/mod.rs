//! custosctl's arguments (clap): every command and option, each with a line
//! of help.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod subjects;
pub use subjects::*;

#[derive(Parser)]
#[command(
    name = "custosctl",
    version,
    about = "Administer the Custos recording daemon through its admin socket"
)]
pub struct Cli {
    /// The daemon's admin socket. Default: `daemon.socket` of --config if
    /// given, else /run/custos/admin.sock.
    #[arg(long, global = true, value_name = "PATH", env = "CUSTOS_SOCKET")]
    pub socket: Option<PathBuf>,

    /// Configuration file, only to find the socket.
    #[arg(
        long,
        short = 'c',
        global = true,
        value_name = "FILE",
        env = "CUSTOS_CONFIG"
    )]
    pub config: Option<PathBuf>,

    /// Print the daemon's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
        /// Start: now, -10m, -2h, today 08:00, yesterday 17:30, RFC 3339 or
        /// "YYYY-MM-DD HH:MM[:SS]"; local times in the daemon's zone. Default: 24 h before --to.
        #[arg(long, allow_hyphen_values = true)]
        from: Option<String>,
        /// End, in the same forms as --from, e.g. "today 09:00" or now. Default: now.
        #[arg(long, allow_hyphen_values = true)]
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
        /// Start: now, -10m, -2h, today 08:00, yesterday 17:30, RFC 3339 or
        /// "YYYY-MM-DD HH:MM[:SS]"; local times in the daemon's zone.
        #[arg(long, allow_hyphen_values = true)]
        from: Option<String>,
        /// End, in the same forms as --from, e.g. "today 09:00" or now.
        #[arg(long, allow_hyphen_values = true)]
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
        /// What to do: enable, disable or restart.
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
        lang: crate::notice::Language,
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
        /// Camera id, as in the config, e.g. 1A-foje-pietine.
        #[arg(long)]
        camera: String,
        /// Start: now, -10m, -2h, today 08:00, yesterday 17:30, RFC 3339 or
        /// "YYYY-MM-DD HH:MM[:SS]"; local times in the daemon's zone.
        #[arg(long, allow_hyphen_values = true)]
        from: String,
        /// End, in the same forms as --from, e.g. "today 09:00" or now.
        #[arg(long, allow_hyphen_values = true)]
        to: String,
        /// Who receives it (named in the manifest and the register).
        #[arg(long)]
        recipient: String,
        /// Why it is handed over, e.g. "theft 12-3-456" (in the manifest and
        /// the register).
        #[arg(long)]
        reason: String,
        /// The disclosure's legal basis, e.g. "GDPR Art. 6(1)(c)". Default:
        /// the case's; without a case, the recording's.
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
    /// The compliance report for an auditor (GET /v1/compliance; role dpo):
    /// retention per zone, destruction, grants, cases, requests, disclosures,
    /// deletions and the audit chain, each citing its RULES clause. Exit 1
    /// if it finds a violation.
    Compliance {
        /// Also write it as printable HTML into DIR (created if missing,
        /// private to you).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Direct notification (e-mail, webhook) of [alerts]: the queue, or a
    /// test message (/v1/alerts; role dpo or admin).
    Alerts {
        #[command(subcommand)]
        what: AlertsCmd,
    },
    /// The breach register: suspected breaches with the DPO's 4-hour and the
    /// authority's 72-hour clocks (/v1/breaches; role dpo; 004 §22; GDPR
    /// Art. 33).
    Breach {
        #[command(subcommand)]
        what: BreachCmd,
    },
    /// Data-subject requests: the register, deadlines, erasure, restriction,
    /// objection, rectification and the answer letter (/v1/requests; role
    /// dpo; 001 §32-35; 004 §24-32).
    Request {
        #[command(subcommand)]
        what: RequestCmd,
    },
    /// Redacted copies for data subjects: follow a job, its review
    /// sheets, choose who stays visible, approve (a second DPO) and
    /// release (/v1/redactions; roles evidence and dpo; 004 §27). A job
    /// is started with `request redact`.
    Redaction {
        #[command(subcommand)]
        what: RedactionCmd,
    },
    /// Look at footage: a recorded range as one MP4 (stream copy, a
    /// caption track with the wall-clock time), or the camera live
    /// (--live), to stdout, e.g. piped to `ffplay -` or `mpv -`, or into a
    /// file. Audited; needs role viewer
    /// (its zones), evidence or dpo and a reason (004 §13).
    View {
        /// Camera id, as in the config, e.g. 1A-foje-pietine.
        #[arg(long)]
        camera: String,
        /// Start: now, -10m, -2h, today 08:00, yesterday 17:30, RFC 3339 or
        /// "YYYY-MM-DD HH:MM[:SS]"; local times in the daemon's zone. The
        /// view starts at the key frame at or before it.
        #[arg(long, allow_hyphen_values = true, required_unless_present = "live")]
        from: Option<String>,
        /// End, in the same forms as --from.
        #[arg(long, allow_hyphen_values = true, required_unless_present = "live")]
        to: Option<String>,
        /// What the camera records now, as fragmented MP4, until you stop
        /// reading (at most about a second behind).
        #[arg(long, conflicts_with_all = ["from", "to"])]
        live: bool,
        /// Why you look, e.g. "incident report 2026-14" (in the audit log).
        #[arg(long)]
        reason: String,
        /// Write the MP4 into this new file (private to you) instead of
        /// stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Inboxes of device files (body, dash, handheld cameras; /v1/inbox;
    /// role operator or admin): files waiting, quarantined with reasons,
    /// recent ingests; take a fixed quarantined file back.
    Inbox {
        #[command(subcommand)]
        what: InboxCmd,
    },
    /// The evidence vault, an S3 bucket with Object Lock (/v1/vault):
    /// whether it works and what waits (roles operator, evidence, dpo,
    /// admin), and what it holds of a case across every server sharing the
    /// bucket (roles evidence, dpo).
    Vault {
        #[command(subcommand)]
        what: VaultCmd,
    },
    /// How much moved in each interval of a camera's range (GET
    /// /v1/cameras/{id}/activity), estimated from the sizes of the recorded
    /// frames without decoding: where to look first. Audited; needs role
    /// viewer (its zones), evidence or dpo and a reason (004 §13).
    Activity {
        /// Camera id, as in the config.
        #[arg(long)]
        camera: String,
        /// Start, in the forms `view --from` takes.
        #[arg(long, allow_hyphen_values = true)]
        from: String,
        /// End, in the same forms.
        #[arg(long, allow_hyphen_values = true)]
        to: String,
        /// Length of each interval: whole seconds, e.g. 10s, 1m, 5m.
        #[arg(long, default_value = "1m")]
        every: String,
        /// Why you look, e.g. "incident report 2026-14" (in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// One PNG of a camera's range, a tile per interval from its nearest
    /// key frame, labelled with the picture's local time (GET
    /// /v1/cameras/{id}/sheet). Audited; needs role viewer (its zones),
    /// evidence or dpo and a reason (004 §13).
    Sheet {
        /// Camera id, as in the config.
        #[arg(long)]
        camera: String,
        /// Start, in the forms `view --from` takes.
        #[arg(long, allow_hyphen_values = true)]
        from: String,
        /// End, in the same forms.
        #[arg(long, allow_hyphen_values = true)]
        to: String,
        /// One tile per this long, e.g. 30s, 1m (an hour at 30s is 120 tiles).
        #[arg(long, default_value = "30s")]
        every: String,
        /// Why you look, e.g. "incident report 2026-14" (in the audit log).
        #[arg(long)]
        reason: String,
        /// The new PNG file to write (private to you).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum AlertsCmd {
    /// The newest alerts with their channel, state and last error.
    List,
    /// Queue a test alert to every configured channel.
    Test,
}

#[derive(Subcommand)]
pub enum BreachCmd {
    /// Every record, open ones first, with its clocks.
    List,
    /// One record with its notes.
    Show {
        /// The record's number, e.g. 3.
        id: i64,
    },
    /// Record a breach reported to you, e.g. a lost export.
    Report {
        /// What happened, e.g. "USB stick with export 2026-0042 lost".
        #[arg(long)]
        what: String,
    },
    /// Add a note; the first one means the DPO has taken it up.
    Note {
        /// The record's number, e.g. 3.
        id: i64,
        /// The note, e.g. "taken up; checking the backup".
        #[arg(long)]
        note: String,
        /// Your assessment of the risk, e.g. "low: nothing left the server".
        #[arg(long)]
        assessment: Option<String>,
        /// What was done, e.g. "access revoked, keys rotated".
        #[arg(long)]
        actions: Option<String>,
        /// When the authority was notified, e.g. "2026-12-05 10:00".
        #[arg(long, allow_hyphen_values = true)]
        notified_authority: Option<String>,
        /// Why the authority is not notified, e.g. "no risk to anyone".
        #[arg(long)]
        not_notified: Option<String>,
    },
    /// Close a record once the authority question is answered.
    Close {
        /// The record's number, e.g. 3.
        id: i64,
        /// The closing note, e.g. "chain restored; no footage concerned".
        #[arg(long)]
        note: String,
    },
}

#[derive(Subcommand)]
pub enum InboxCmd {
    /// Files waiting in the inboxes, files in quarantine with the reason,
    /// and the latest files stored (device, original name, hash, owner).
    Status,
    /// Moves a quarantined file back into its inbox to be examined again,
    /// once what its reason names was fixed (e.g. the device was added to
    /// the config). FILE as `inbox status` lists it.
    Retry {
        /// The quarantined file, relative to its quarantine directory.
        #[arg(value_name = "FILE")]
        file: String,
    },
}

#[derive(Subcommand)]
pub enum VaultCmd {
    /// The bucket, its Object Lock check, and the copies per state
    /// (pending, stored, expiring, deleted, skipped), with the last error.
    Status,
    /// Every object version of a case in the bucket, from every server
    /// (prefix), with its lock: legal hold and retain-until date.
    List {
        /// The case id.
        #[arg(long)]
        case: String,
    },
}

#[derive(Subcommand)]
pub enum CaseCmd {
    /// All cases with their holds, copies and review state.
    List,
    /// One case with its copies.
    Show {
        /// The case id, e.g. 2026-0042.
        id: String,
    },
    /// Read every evidence copy of a case back and check it against the hash
    /// recorded when it was made; exit 1 if any changed or is missing.
    Verify {
        /// The case id, e.g. 2026-0042.
        id: String,
    },
    /// Open a case for an authority's request, with a review date.
    Open {
        /// The case id, e.g. 2026-0042: it names a directory, so ASCII
        /// letters, digits, '-', '_' and '.' only.
        #[arg(long)]
        id: String,
        /// What happened, e.g. "Theft in the hall".
        #[arg(long)]
        title: String,
        /// The requesting authority, e.g. "Vilnius police".
        #[arg(long)]
        authority: String,
        /// Its reference, e.g. 12-3-456.
        #[arg(long)]
        authority_ref: String,
        /// The legal basis of keeping the footage, e.g. "GDPR Art. 6(1)(c)".
        #[arg(long)]
        legal_basis: String,
        /// Days until review (default and maximum from [evidence]).
        #[arg(long)]
        review_days: Option<u32>,
    },
    /// Move the review date to DAYS from now; needs a reason.
    Review {
        /// The case id, e.g. 2026-0042.
        id: String,
        /// Days from now, e.g. 30 (at most evidence.review_days_max).
        #[arg(long)]
        days: u32,
        /// Why the footage is still needed, e.g. "trial set for March".
        #[arg(long)]
        reason: String,
    },
    /// Close a case: its copies are destroyed and its holds released.
    Close {
        /// The case id, e.g. 2026-0042.
        id: String,
        /// Why the purpose has ended, e.g. "proceedings ended".
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
pub enum HoldCmd {
    /// Hold a camera's footage over a range for a case.
    Add {
        /// The open case, e.g. 2026-0042.
        #[arg(long)]
        case: String,
        /// Camera id, as in the config, e.g. 1A-foje-pietine.
        #[arg(long)]
        camera: String,
        /// Start: now, -10m, -2h, today 08:00, yesterday 17:30, RFC 3339 or
        /// "YYYY-MM-DD HH:MM[:SS]"; local times in the daemon's zone.
        #[arg(long, allow_hyphen_values = true)]
        from: String,
        /// End, in the same forms as --from, e.g. "today 09:00" or now.
        #[arg(long, allow_hyphen_values = true)]
        to: String,
    },
}

#[derive(Subcommand)]
pub enum KeyCmd {
    /// Print the public key and its fingerprint (GET /v1/key; without the
    /// daemon, from the state directory of --config).
    Show,
}

#[derive(Subcommand)]
pub enum RetentionCmd {
    /// Per zone and camera: ceiling, oldest footage, bytes, violations (GET /v1/retention/status).
    Status,
    /// What the next pass would delete, without deleting (GET /v1/retention/plan).
    Plan,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum CameraOp {
    Enable,
    Disable,
    Restart,
}

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Entries, newest first (GET /v1/audit).
    List {
        /// Start: now, -10m, -2h, today 08:00, yesterday 17:30, RFC 3339 or
        /// "YYYY-MM-DD HH:MM[:SS]"; local times in the daemon's zone.
        #[arg(long, allow_hyphen_values = true)]
        from: Option<String>,
        /// End, in the same forms as --from, e.g. "today 09:00" or now.
        #[arg(long, allow_hyphen_values = true)]
        to: Option<String>,
        /// Only this uid.
        #[arg(long)]
        uid: Option<u32>,
        /// Only this action, e.g. recordings.list.
        #[arg(long)]
        action: Option<String>,
        /// Only entries about this camera (views, sheets, exports, holds...).
        #[arg(long)]
        camera: Option<String>,
        /// Newest entries shown, 1 to 10000.
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command says what it does, and every option and argument has a
    /// line of help that ends as a sentence would, not cut off mid-list.
    #[test]
    fn every_command_and_option_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let here = format!("{path} {}", cmd.get_name());
            let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
            if about.trim().is_empty() || about.trim_end().ends_with(',') {
                missing.push(format!("{here}: about {about:?}"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                if help.trim().is_empty() || help.trim_end().ends_with(',') {
                    missing.push(format!("{here} --{id}: help {help:?}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &here, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "without help:\n{}", missing.join("\n"));
    }
}
