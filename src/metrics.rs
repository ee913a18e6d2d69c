//! Prometheus metrics, in the text exposition format (version 0.0.4), served
//! at `GET /v1/metrics` on the admin socket.
//!
//! Names follow the Prometheus conventions: prefix `custos_`, base units
//! (seconds, bytes), `_total` on counters, `_timestamp_seconds` on Unix
//! times, one enum-like gauge with a `state` label instead of numeric state
//! codes. Every family is written with its `# HELP` and `# TYPE` even when
//! it has no sample, so dashboards see the same set on every daemon.
//!
//! Counters come from two places: the cameras' live status (reset when a
//! camera restarts, which Prometheus' `rate()` handles) and the index
//! (deletions and outages, which survive restarts). Nothing here writes.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::audit::AuditLog;
use crate::clock::ClockGuard;
use crate::config::Config;
use crate::error::Result;
use crate::index::Index;
use crate::ingest::CameraState;
use crate::ingest::control::CameraStatuses;
use crate::retention::Leases;

/// Content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Prometheus metric types used here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// A metrics text being written: families in order, each once.
#[derive(Default)]
pub struct Exposition {
    out: String,
    current: Option<String>,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the family `name`; its samples follow with [`Exposition::sample`].
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        debug_assert!(valid_name(name), "bad metric name {name}");
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self.current = Some(name.to_owned());
    }

    /// A sample of the current family.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        let name = self
            .current
            .as_deref()
            .expect("a sample follows its family");
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                debug_assert!(valid_name(k), "bad label name {k}");
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&format_value(value));
        self.out.push('\n');
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Label values escape `\`, `"` and newline (the format's only escapes).
fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Requests the admin API answered, by outcome (`ok` or an error kind).
#[derive(Debug, Default)]
pub struct RequestCounter(Mutex<BTreeMap<&'static str, u64>>);

impl RequestCounter {
    pub fn count(&self, outcome: &'static str) {
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(outcome)
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

const CAMERA_STATES: [(CameraState, &str); 6] = [
    (CameraState::Connecting, "connecting"),
    (CameraState::Recording, "recording"),
    (CameraState::Retrying, "retrying"),
    (CameraState::Error, "error"),
    (CameraState::Disabled, "disabled"),
    (CameraState::Stopped, "stopped"),
];

fn secs(us: i64) -> f64 {
    us as f64 / 1e6
}

/// What the metrics are read from: the daemon's parts, lent by whoever
/// serves them (the admin API), so this module depends on no server.
pub struct Sources<'a> {
    pub config: &'a Config,
    pub now_us: i64,
    /// A read-only connection to the index.
    pub index: Index,
    pub started_us: i64,
    pub cameras: &'a CameraStatuses,
    pub leases: &'a Leases,
    pub clock_guard: &'a ClockGuard,
    pub requests: &'a RequestCounter,
    pub audit: &'a AuditLog,
    /// Storage roots short of space with only protected footage left.
    pub alarms: &'a crate::retention::StorageAlarms,
    /// When the audit chain was last verified, and whether it held.
    pub audit_verified: Option<(i64, bool)>,
    /// Cut-off segments the start-up recovery could not read back.
    pub unreadable_at_start: usize,
}

/// The whole exposition.
pub fn render(state: &Sources) -> Result<String> {
    let config = state.config;
    let now = state.now_us;
    let index = &state.index;
    let mut e = Exposition::new();

    e.family("custos_build_info", Kind::Gauge, "Version of custosd.");
    e.sample(&[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    e.family(
        "custos_start_time_seconds",
        Kind::Gauge,
        "When custosd started, Unix time.",
    );
    e.sample(&[], secs(state.started_us));

    // Cameras: live status.
    let snaps: Vec<_> = {
        let statuses = state.cameras.read().unwrap_or_else(|p| p.into_inner());
        config
            .cameras
            .iter()
            .map(|c| (c, statuses.get(&c.id).map(|s| s.snapshot())))
            .collect()
    };
    e.family(
        "custos_camera_state",
        Kind::Gauge,
        "1 for the state each configured camera is in, 0 for the others.",
    );
    for (c, snap) in &snaps {
        let current = match (snap, c.enabled) {
            (_, false) => CameraState::Disabled,
            (Some(s), true) => s.state,
            (None, true) => CameraState::Stopped,
        };
        for (st, name) in CAMERA_STATES {
            let labels = [
                ("camera", c.id.as_str()),
                ("zone", &c.zone),
                ("state", name),
            ];
            e.sample(&labels, f64::from(u8::from(st == current)));
        }
    }
    let camera_family =
        |e: &mut Exposition,
         name: &str,
         kind: Kind,
         help: &str,
         get: &dyn Fn(&crate::ingest::StatusSnapshot) -> Option<f64>| {
            e.family(name, kind, help);
            for (c, snap) in &snaps {
                if let Some(v) = snap.as_ref().and_then(get) {
                    e.sample(&[("camera", c.id.as_str()), ("zone", &c.zone)], v);
                }
            }
        };
    camera_family(
        &mut e,
        "custos_camera_last_frame_timestamp_seconds",
        Kind::Gauge,
        "Wall-clock time of the last recorded frame, Unix time.",
        &|s| s.last_frame_us.map(secs),
    );
    camera_family(
        &mut e,
        "custos_camera_written_bytes_total",
        Kind::Counter,
        "Bytes of completed segments written since the camera's pipeline started.",
        &|s| Some(s.bytes_written as f64),
    );
    camera_family(
        &mut e,
        "custos_camera_segments_written_total",
        Kind::Counter,
        "Segments completed since the camera's pipeline started.",
        &|s| Some(s.segments_written as f64),
    );
    camera_family(
        &mut e,
        "custos_camera_reconnects_total",
        Kind::Counter,
        "Reconnections after a failure since the camera's pipeline started.",
        &|s| Some(s.reconnects as f64),
    );

    // Cameras: outages, from the index (they outlive restarts). A configured
    // camera that never had one counts 0, so the first outage is an
    // increase a rule can see, not a series appearing.
    let mut outages = index.outage_totals(now)?;
    for c in &config.cameras {
        if !outages.iter().any(|o| o.camera == c.id) {
            outages.push(crate::index::OutageTotal {
                camera: c.id.clone(),
                outages: 0,
                micros: 0,
            });
        }
    }
    e.family(
        "custos_camera_outages_total",
        Kind::Counter,
        "Recording outages recorded in the index (001 §20).",
    );
    for o in &outages {
        e.sample(&[("camera", &o.camera)], o.outages as f64);
    }
    e.family(
        "custos_camera_outage_seconds_total",
        Kind::Counter,
        "Total length of recording outages; an open outage counts up to now.",
    );
    for o in &outages {
        e.sample(&[("camera", &o.camera)], secs(o.micros));
    }

    // Storage roots and zones.
    let status = crate::retention::status(index, config, state.leases, now)?;
    let protected: BTreeMap<String, u64> = index.protected_bytes()?.into_iter().collect();
    e.family(
        "custos_storage_used_bytes",
        Kind::Gauge,
        "Bytes of footage the index holds on the storage root.",
    );
    for r in &status.roots {
        e.sample(&[("root", &r.root)], r.used_bytes as f64);
    }
    e.family(
        "custos_storage_free_bytes",
        Kind::Gauge,
        "Bytes available to custosd on the storage root's filesystem.",
    );
    for r in &config.storage {
        if let Some(free) = crate::retention::statvfs_free(r) {
            e.sample(&[("root", &r.id)], free as f64);
        }
    }
    e.family(
        "custos_storage_size_bytes",
        Kind::Gauge,
        "Size of the storage root's filesystem, in bytes.",
    );
    for r in &config.storage {
        if let Ok(fs) = nix::sys::statvfs::statvfs(&r.path) {
            e.sample(
                &[("root", &r.id)],
                (fs.blocks() as f64) * (fs.fragment_size() as f64),
            );
        }
    }
    e.family(
        "custos_storage_alarm",
        Kind::Gauge,
        "1 while the storage root is short of space and only protected (held, \
         restricted or leased) footage is left to delete.",
    );
    for r in &config.storage {
        let on = state.alarms.get(&r.id).is_some();
        e.sample(&[("root", &r.id)], if on { 1.0 } else { 0.0 });
    }
    e.family(
        "custos_storage_protected_bytes",
        Kind::Gauge,
        "Bytes of footage under an active hold or restriction (never reaped).",
    );
    for r in &status.roots {
        let bytes = protected.get(&r.root).copied().unwrap_or(0);
        e.sample(&[("root", &r.root)], bytes as f64);
    }
    e.family(
        "custos_zone_retention_seconds",
        Kind::Gauge,
        "The zone's retention ceiling (004 §9; 001 §17).",
    );
    for z in &status.zones {
        e.sample(&[("zone", &z.zone)], f64::from(z.retention_days) * 86400.0);
    }
    e.family(
        "custos_zone_oldest_footage_age_seconds",
        Kind::Gauge,
        "Age of the oldest footage of the zone on each storage root.",
    );
    let mut oldest: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for z in &status.zones {
        for c in &z.cameras {
            if let Some(age) = c.oldest_age_us {
                let slot = oldest
                    .entry((z.zone.as_str(), c.root.as_str()))
                    .or_default();
                *slot = (*slot).max(age);
            }
        }
    }
    for ((zone, root), age) in &oldest {
        e.sample(&[("zone", zone), ("root", root)], secs(*age));
    }

    // The reaper, from the deletion journal.
    let deletions = index.deletion_totals()?;
    e.family(
        "custos_reaper_deleted_segments_total",
        Kind::Counter,
        "Segments deleted, by reason (retention, disk_pressure, erasure, case_closed).",
    );
    for d in &deletions {
        e.sample(&[("reason", &d.reason)], d.segments as f64);
    }
    e.family(
        "custos_reaper_deleted_bytes_total",
        Kind::Counter,
        "Bytes deleted, by reason.",
    );
    for d in &deletions {
        e.sample(&[("reason", &d.reason)], d.bytes as f64);
    }
    e.family(
        "custos_reaper_last_deletion_pass_timestamp_seconds",
        Kind::Gauge,
        "Start of the newest pass that deleted anything, Unix time.",
    );
    if let Some(last) = deletions.iter().map(|d| d.last_pass_us).max() {
        e.sample(&[], secs(last));
    }
    e.family(
        "custos_retention_violations",
        Kind::Gauge,
        "Cameras with unprotected footage older than their zone's ceiling; must be 0.",
    );
    e.sample(&[], status.violations as f64);

    e.family(
        "custos_evidence_reviews_overdue",
        Kind::Gauge,
        "Open evidence cases past their review date (001 §18); must be 0.",
    );
    e.sample(&[], index.overdue_cases(now)?.len() as f64);

    // Suspected breaches and their clocks (004 §22; GDPR Art. 33).
    let breaches = crate::breach::clocks(index, now)?;
    e.family(
        "custos_breaches_open",
        Kind::Gauge,
        "Open records in the breach register.",
    );
    e.sample(&[], breaches.open as f64);
    e.family(
        "custos_breach_clocks_overdue",
        Kind::Gauge,
        "Open breach records past a clock: dpo (4 hours to take it up) or authority \
         (72 hours to notify, or record why not); must be 0.",
    );
    e.sample(&[("clock", "dpo")], breaches.dpo_overdue.len() as f64);
    e.sample(
        &[("clock", "authority")],
        breaches.authority_overdue.len() as f64,
    );

    // Data-subject requests against their deadlines (004 §32).
    let deadlines = crate::requests::deadlines(index, config, now)?;
    e.family(
        "custos_subject_requests_open",
        Kind::Gauge,
        "Data-subject requests not yet answered, refused or withdrawn.",
    );
    e.sample(&[], deadlines.open as f64);
    e.family(
        "custos_subject_requests_due_soon",
        Kind::Gauge,
        "Open data-subject requests whose last day to answer ends within 7 days.",
    );
    e.sample(&[], deadlines.due_soon.len() as f64);
    e.family(
        "custos_subject_requests_overdue",
        Kind::Gauge,
        "Open data-subject requests past their last day to answer (004 §32); must be 0.",
    );
    e.sample(&[], deadlines.overdue.len() as f64);

    // The clock guard of destruction.
    e.family(
        "custos_clock_implausible",
        Kind::Gauge,
        "1 while the wall clock disagrees with recorded footage or the monotonic clock; \
         retention passes and the audit purge are suspended. Must be 0.",
    );
    e.sample(
        &[],
        f64::from(u8::from(state.clock_guard.alarm().is_some())),
    );
    e.family(
        "custos_clock_alarms_total",
        Kind::Counter,
        "Times the clock guard raised its alarm since start.",
    );
    e.sample(&[], state.clock_guard.raised_total() as f64);
    e.family(
        "custos_log_lines_dropped_total",
        Kind::Counter,
        "Log lines that could not be written to stderr (its reader went away) since start; \
         recording goes on without them.",
    );
    e.sample(&[], crate::log::dropped_lines() as f64);
    e.family(
        "custos_recovery_unreadable_segments",
        Kind::Gauge,
        "Cut-off segments the start-up recovery could not read back (kept for the next \
         start). Must be 0.",
    );
    e.sample(&[], state.unreadable_at_start as f64);

    // The API and its audit log.
    e.family(
        "custos_api_requests_total",
        Kind::Counter,
        "Admin API requests since start, by outcome (ok or an error kind).",
    );
    for (outcome, n) in state.requests.snapshot() {
        e.sample(&[("outcome", outcome)], n as f64);
    }
    e.family(
        "custos_audit_chain_length",
        Kind::Gauge,
        "Sequence number of the newest audit entry (entries ever written).",
    );
    e.sample(&[], state.audit.head().seq as f64);
    if let Some((at_us, ok)) = state.audit_verified {
        e.family(
            "custos_audit_chain_verified_timestamp_seconds",
            Kind::Gauge,
            "When the whole audit chain was last verified (hourly), Unix time.",
        );
        e.sample(&[], secs(at_us));
        e.family(
            "custos_audit_chain_broken",
            Kind::Gauge,
            "1 if the last verification found the audit chain broken (changed or \
             removed entries); must be 0.",
        );
        e.sample(&[], if ok { 0.0 } else { 1.0 });
    }

    Ok(e.finish())
}
