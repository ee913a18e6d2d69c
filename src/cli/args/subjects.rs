//! The data subjects' commands: `request ...` (the register and what is
//! done for a request) and `redaction ...` (a redacted copy for one).

use std::path::PathBuf;

use clap::Subcommand;

/// Times of a request's event: the forms every command accepts.
const TIME_FORMS: &str = "now, -10m, -2h, today 08:00, yesterday 17:30, RFC 3339 or \
     \"YYYY-MM-DD HH:MM[:SS]\"; local times in the daemon's zone";

#[derive(Subcommand)]
pub enum RequestCmd {
    /// The register: every request with its last day and standing, open
    /// ones first.
    List,
    /// One request: its facts, deadline, what was done, restrictions and
    /// corrections.
    Show {
        /// The request id, e.g. R-2027-0001.
        id: String,
    },
    /// Register a request received from a data subject. The window may be
    /// at most requests.max_window wide (default 2 h; 000 §29).
    Open {
        /// What is asked: access, copy, rectification, erasure, restriction
        /// or objection.
        #[arg(long)]
        kind: String,
        /// The requester's name, e.g. "Jonas Jonaitis" (removed
        /// requests.personal_data_days after closing).
        #[arg(long)]
        requester: String,
        /// How to reach them, e.g. "jonas@example.lt".
        #[arg(long)]
        contact: String,
        /// How identity was checked, e.g. "passport shown at the front desk"
        /// (never a copy of the document).
        #[arg(long)]
        identity_check: String,
        /// Who checked it, e.g. "R. Petraitė". Default: you.
        #[arg(long)]
        verified_by: Option<String>,
        /// A camera of the event's place, e.g. gate; repeat for several.
        #[arg(long = "camera", required = true)]
        cameras: Vec<String>,
        #[arg(long, allow_hyphen_values = true, help = format!("Start of the event: {TIME_FORMS}."))]
        from: String,
        #[arg(long, allow_hyphen_values = true, help = format!("End of the event: {TIME_FORMS}."))]
        to: String,
        /// When the request arrived, in the same forms, e.g. "2027-01-12
        /// 09:00". Default: now. The month to answer counts from this day.
        #[arg(long, allow_hyphen_values = true)]
        received: Option<String>,
        /// Your own file number, e.g. "DS-2027/14".
        #[arg(long)]
        reference: Option<String>,
        /// How to recognise the requester in the footage, e.g. "red jacket".
        #[arg(long)]
        description: Option<String>,
    },
    /// Start a redacted copy of a camera's range for a copy request
    /// (roles dpo, evidence; 004 §27): custosd finds and follows the
    /// faces; then `redaction sheet` and `redaction choose`.
    Redact {
        /// The request id, e.g. R-2027-0001.
        id: String,
        /// One of the request's cameras.
        #[arg(long)]
        camera: String,
        #[arg(long, allow_hyphen_values = true, help = format!("Start: {TIME_FORMS}."))]
        from: String,
        #[arg(long, allow_hyphen_values = true, help = format!("End: {TIME_FORMS}."))]
        to: String,
        /// The detector's input width: 640 (default, fastest), 960, 1280 or
        /// 1920 (finds smaller faces, slower).
        #[arg(long)]
        detect_width: Option<u32>,
        /// Return at once instead of following the detection.
        #[arg(long)]
        no_wait: bool,
    },
    /// Extend the time to answer by 1 or 2 months (counted from receipt);
    /// the requester must have been told within the first month (004 §32).
    Extend {
        /// The request id, e.g. R-2027-0001.
        id: String,
        /// Months to add: 1 or 2.
        #[arg(long)]
        months: i8,
        /// Why more time is needed, e.g. "footage of 12 cameras to review".
        #[arg(long)]
        reason: String,
        /// The day the requester was told, e.g. 2027-02-01.
        #[arg(long)]
        told: String,
    },
    /// Close a request: answered, refused (with the reasons) or withdrawn.
    Close {
        /// The request id, e.g. R-2027-0001.
        id: String,
        /// answered, refused or withdrawn.
        #[arg(long)]
        outcome: String,
        /// What was answered, e.g. "letter sent by e-mail on 2027-02-10".
        #[arg(long)]
        answer: String,
    },
    /// Restrict the footage of the request's cameras and window: kept
    /// untouched and never deleted by age or pressure until lifted (004 §30).
    Restrict {
        /// The request id, e.g. R-2027-0001.
        id: String,
        /// Why, e.g. "accuracy contested by the requester".
        #[arg(long)]
        reason: String,
    },
    /// Lift one of a request's restrictions.
    Lift {
        /// The request id, e.g. R-2027-0001.
        id: String,
        /// The restriction's number, from `request show`, e.g. 3.
        #[arg(long)]
        restriction: i64,
        /// Why, e.g. "the date was corrected".
        #[arg(long)]
        reason: String,
    },
    /// Record the decision on an objection and its reasoning (004 §31).
    Decide {
        /// The request id, e.g. R-2027-0001.
        id: String,
        /// The objection is upheld (else: not upheld).
        #[arg(long)]
        upheld: bool,
        /// The reasoning, e.g. "no overriding legitimate grounds".
        #[arg(long)]
        reasoning: String,
    },
    /// Note that footage shows a wrong date or time; the files are never
    /// altered, later exports state the correction (004 §28).
    Rectify {
        /// The request id, e.g. R-2027-0001.
        id: String,
        /// Camera id, one of the request's, e.g. gate.
        #[arg(long)]
        camera: String,
        #[arg(long, allow_hyphen_values = true, help = format!("Start of the footage concerned: {TIME_FORMS}."))]
        from: String,
        #[arg(long, allow_hyphen_values = true, help = format!("End of the footage concerned: {TIME_FORMS}."))]
        to: String,
        /// How far the shown time is off: true time = shown + offset, e.g.
        /// +1h or -30m.
        #[arg(long, allow_hyphen_values = true)]
        offset: String,
        /// What was wrong, e.g. "camera clock an hour behind after DST".
        #[arg(long)]
        note: String,
    },
    /// Erase the footage of the request's cameras and window (004 §29):
    /// destroyed and journalled; footage held for a case is kept and named.
    Erase {
        /// The request id, e.g. R-2027-0001.
        id: String,
        /// Recorded in the audit log, e.g. "erasure granted".
        #[arg(long)]
        reason: String,
    },
    /// Write the answer letter (HTML for printing, Markdown) into DIR: what
    /// exists, what was deleted and why, retention, recipients of the past
    /// year, purposes, legal basis and what was done.
    Answer {
        /// The request id, e.g. R-2027-0001.
        id: String,
        /// Directory to write into (created if missing, private to you).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Language of the fixed wording: en, lt or lv.
        #[arg(long, default_value = "en")]
        lang: crate::notice::Language,
    },
}

#[derive(Subcommand)]
pub enum RedactionCmd {
    /// Every redaction job, newest first, with its state and progress.
    List {
        /// Only this request's, e.g. R-2027-0001.
        #[arg(long)]
        request: Option<String>,
    },
    /// One job: its state, progress, tracks, choice and record.
    Show {
        /// The job's number, e.g. 3.
        id: i64,
        /// Follow it until its running phase ends.
        #[arg(long)]
        wait: bool,
    },
    /// Write a review sheet (PNG): the tracks found, numbered (default),
    /// or with --copy the rendered copy, a frame a second, marked where a
    /// face was carried over or found with a low score.
    Sheet {
        /// The job's number, e.g. 3.
        id: i64,
        /// The rendered copy's sheet instead of the tracks'.
        #[arg(long)]
        copy: bool,
        /// The PNG file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Say what stays visible, then render the copy: everyone else is
    /// covered by solid fills.
    Choose {
        /// The job's number, e.g. 3.
        id: i64,
        /// The requester's track number(s) from the tracks sheet, e.g.
        /// --keep 2 or --keep 2,5.
        #[arg(long, value_delimiter = ',')]
        keep: Vec<u32>,
        /// A box for what detection missed (a plate, a body, a face turned
        /// away), in the picture's pixels at key times, interpolated
        /// between them: "TIME@X,Y,WxH;TIME@X,Y,WxH". One key covers the
        /// whole range. Repeat for several.
        #[arg(long)]
        mask: Vec<String>,
        /// Fill everything outside the kept track's box: the safest
        /// choice in a crowd.
        #[arg(long)]
        keep_only: bool,
        /// Keep the sound (it may identify others: only on purpose).
        #[arg(long)]
        keep_audio: bool,
        /// Around each box, on each side, as a fraction of its size
        /// (default 0.25).
        #[arg(long)]
        margin: Option<f32>,
        /// Return at once instead of following the rendering.
        #[arg(long)]
        no_wait: bool,
    },
    /// Stop a job that is detecting or rendering (resume continues it).
    Cancel {
        /// The job's number, e.g. 3.
        id: i64,
    },
    /// Continue a cancelled or failed job where it stopped.
    Resume {
        /// The job's number, e.g. 3.
        id: i64,
    },
    /// Approve a rendered copy after reviewing it (role dpo; not the
    /// person who prepared it).
    Approve {
        /// The job's number, e.g. 3.
        id: i64,
    },
    /// Write the approved copy as a signed package for the requester
    /// into DIR, registered in the disclosure register (role dpo).
    Release {
        /// The job's number, e.g. 3.
        id: i64,
        /// A new or empty directory.
        #[arg(long)]
        out: PathBuf,
    },
}
