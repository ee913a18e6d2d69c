//! The compliance report for an auditor: one reading of everything the rules
//! ask the controller to show, each finding citing the RULES clause it
//! answers to. Per zone the ceiling and the oldest footage; the destruction
//! of deleted footage; who holds which role; evidence cases and their review
//! dates; data-subject requests and their deadlines; disclosures of the past
//! year; the deletion journal's summary; the breach register; the audit
//! chain's state.
//!
//! Invariants: it reads and never changes anything; every figure comes from
//! the index, the configuration or the audit log's verification at the time
//! of the report, never from a cache; a finding is `violation` only where the
//! rules are broken (footage past its ceiling, a review or a request deadline
//! passed, a broken audit chain), `attention` where a person should look.
//! The HTML escapes every value taken from the configuration or the index.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::audit::Verification;
use crate::clock::UnixMicros;
use crate::config::{Config, Destruction, Principal};
use crate::error::Result;
use crate::index::{DeletionReason, DisclosureRow, Index};
use crate::notice::escape_html;
use crate::requests::Standing;
use crate::retention::Leases;

/// How a finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Ok,
    Attention,
    Violation,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// retention, destruction, access, evidence, requests, disclosures,
    /// deletions, breaches or audit.
    pub topic: &'static str,
    /// The RULES clauses it answers to.
    pub clause: &'static str,
    pub state: State,
    pub text: String,
}

/// Deletions of the past year for one reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeletionSummary {
    pub reason: String,
    pub entries: u64,
    pub segments: u64,
    pub bytes: u64,
    pub last_us: Option<i64>,
}

/// The report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub generated_us: UnixMicros,
    pub timezone: String,
    pub controller: String,
    /// Figures from this time on: one calendar year back.
    pub since_us: UnixMicros,
    pub violations: usize,
    pub attention: usize,
    pub findings: Vec<Finding>,
    pub disclosures: Vec<DisclosureRow>,
    pub deletions: Vec<DeletionSummary>,
    pub audit: Verification,
}

fn day(t: i64, config: &Config) -> String {
    jiff::Timestamp::from_microsecond(t)
        .map(|t| {
            t.to_zoned(config.timezone.clone())
                .strftime("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_else(|_| "?".into())
}

fn moment(t: i64, config: &Config) -> String {
    jiff::Timestamp::from_microsecond(t)
        .map(|t| {
            t.to_zoned(config.timezone.clone())
                .strftime("%Y-%m-%d %H:%M %:z")
                .to_string()
        })
        .unwrap_or_else(|_| "?".into())
}

fn size(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let (mut x, mut u) = (b as f64, 0);
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

/// The report at `now_us`; `audit` is the audit log's verification, run by
/// the caller (it reads the whole chain).
pub fn report(
    index: &Index,
    config: &Config,
    leases: &Leases,
    audit: Verification,
    now_us: UnixMicros,
) -> Result<Report> {
    let since = crate::requests::access::year_before(now_us)?;
    let mut findings = Vec::new();
    let mut add = |topic, clause, state, text: String| {
        findings.push(Finding {
            topic,
            clause,
            state,
            text,
        })
    };

    // Retention: each zone's ceiling against its oldest footage.
    let retention = crate::retention::status(index, config, leases, now_us)?;
    for z in &retention.zones {
        let oldest = z.cameras.iter().filter_map(|c| c.oldest_us).min();
        let over: u64 = z
            .cameras
            .iter()
            .filter_map(|c| c.violation.as_ref().map(|v| v.segments))
            .sum();
        let protected = z.cameras.iter().any(|c| !c.protected_by.is_empty());
        let name = z.name.clone().unwrap_or_else(|| z.zone.clone());
        let mut text = format!(
            "Zone {name}: kept at most {} days; oldest footage {}",
            z.retention_days,
            oldest.map_or_else(|| "none".into(), |t| day(t, config))
        );
        if protected {
            text.push_str("; some is kept longer under a case's hold or a restriction");
        }
        let state = if over > 0 {
            let _ = write!(text, "; {over} segment(s) past the ceiling");
            State::Violation
        } else {
            State::Ok
        };
        add("retention", "001 §16-18; 004 §9-10", state, text);
    }

    // Destruction of what is deleted.
    for r in &config.storage {
        let (state, how) = match r.destruction {
            Destruction::Overwrite => (State::Ok, "overwritten with zeros, then unlinked"),
            Destruction::Unlink => (
                State::Attention,
                "unlinked only: recoverable unless the disk is encrypted or an SSD that \
                 discards freed blocks",
            ),
        };
        add(
            "destruction",
            "004 §11",
            state,
            format!("Storage root {}: deleted footage is {how}", r.id),
        );
    }

    // Who may reach footage, and for what.
    for g in &config.access.grants {
        let who = match &g.principal {
            Principal::User(u) => format!("user {u}"),
            Principal::Uid(u) => format!("uid {u}"),
            Principal::Group(gr) => format!("group {gr}"),
        };
        let roles: Vec<&str> = g.roles.iter().map(|r| r.as_str()).collect();
        let zones = if g.zones.is_empty() {
            String::new()
        } else {
            format!(
                " (zones {})",
                g.zones.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        };
        add(
            "access",
            "000 §22; 001 §24-27; 004 §12",
            State::Ok,
            format!("{who}: {}{zones}", roles.join(", ")),
        );
    }

    // Evidence cases and their review dates.
    let overdue_cases = index.overdue_cases(now_us)?;
    for c in index.cases()? {
        if c.status == "open" {
            let late = overdue_cases.contains(&c.id);
            add(
                "evidence",
                "001 §18, §31; 004 §9",
                if late { State::Violation } else { State::Ok },
                format!(
                    "Case {} ({}, {} {}): open, review by {}{}",
                    c.id,
                    c.title,
                    c.authority,
                    c.authority_ref,
                    day(c.review_us, config),
                    if late { ", REVIEW OVERDUE" } else { "" }
                ),
            );
        } else if c.closed_us.is_some_and(|t| t >= since) {
            add(
                "evidence",
                "001 §18, §31; 004 §9",
                State::Ok,
                format!(
                    "Case {}: closed {}, its copies destroyed",
                    c.id,
                    day(c.closed_us.unwrap_or(0), config)
                ),
            );
        }
    }

    // Data-subject requests: open ones and those received in the past year.
    for r in index.requests()? {
        if r.status != "open" && r.received_us < since {
            continue;
        }
        let standing = if r.status == "open" {
            let last: jiff::civil::Date = r.last_day().parse().map_err(|_| {
                crate::Error::internal(format!("request {} has a bad last day", r.id))
            })?;
            Some(Standing::of(last, &config.timezone, now_us)?)
        } else {
            None
        };
        let (state, how) = match standing {
            Some(Standing::Overdue { days_over }) => {
                (State::Violation, format!("OVERDUE by {days_over} day(s)"))
            }
            Some(Standing::DueSoon { days_left }) => {
                (State::Attention, format!("open, {days_left} day(s) left"))
            }
            Some(Standing::InTime { .. }) => (State::Ok, "open".into()),
            None => (
                State::Ok,
                format!(
                    "{} {}",
                    r.status,
                    r.closed_us.map(|t| day(t, config)).unwrap_or_default()
                ),
            ),
        };
        add(
            "requests",
            "001 §32-35; 002 §22.2; 004 §24-32",
            state,
            format!(
                "Request {} ({}), received {}, last day {}: {how}",
                r.id,
                r.kind,
                day(r.received_us, config),
                r.last_day()
            ),
        );
    }

    // Disclosures of the past year.
    let disclosures = index.disclosures(None, since)?;
    for d in &disclosures {
        add(
            "disclosures",
            "001 §22-23; 004 §18-19, §25.2",
            State::Ok,
            format!(
                "{}: camera {} to {} ({}){}",
                day(d.at_us, config),
                d.camera,
                d.recipient,
                d.legal_basis,
                d.case_id
                    .as_deref()
                    .map(|c| format!(", case {c}"))
                    .unwrap_or_default()
            ),
        );
    }
    if disclosures.is_empty() {
        add(
            "disclosures",
            "001 §22-23; 004 §18-19, §25.2",
            State::Ok,
            "No footage was disclosed in the past year".into(),
        );
    }

    // The deletion journal of the past year.
    let mut by_reason: BTreeMap<&'static str, (DeletionReason, DeletionSummary)> = BTreeMap::new();
    for d in index.deletion_journal(since, now_us.saturating_add(1))? {
        let reason = d.reason.as_str();
        let (_, s) = by_reason.entry(reason).or_insert_with(|| {
            (
                d.reason,
                DeletionSummary {
                    reason: reason.into(),
                    ..DeletionSummary::default()
                },
            )
        });
        s.entries += 1;
        s.segments += d.segments;
        s.bytes += d.bytes;
        s.last_us = s.last_us.max(Some(d.at_us));
    }
    let mut deletions = Vec::new();
    for (reason, s) in by_reason.into_values() {
        let why = match reason {
            DeletionReason::Retention => "past their zone's ceiling",
            DeletionReason::DiskPressure => "oldest first when storage was full",
            DeletionReason::Erasure => "erased at data subjects' requests",
            DeletionReason::CaseClosed => "evidence copies of closed cases",
        };
        add(
            "deletions",
            "001 §16, §18; 004 §10-11, §29",
            State::Ok,
            format!(
                "{} segment(s), {}, deleted in the past year {why} (last {})",
                s.segments,
                size(s.bytes),
                s.last_us.map(|t| day(t, config)).unwrap_or_default()
            ),
        );
        deletions.push(s);
    }

    // The breach register: open records, and those of the past year.
    for b in crate::breach::list(index, now_us)? {
        let r = &b.breach;
        if r.status != "open" && r.detected_us < since {
            continue;
        }
        let (state, how) = if b.dpo_overdue || b.authority_overdue {
            (State::Violation, "open, PAST ITS CLOCK".to_owned())
        } else if r.status == "open" {
            (State::Attention, "open".to_owned())
        } else {
            let authority = if r.authority_notified_us.is_some() {
                "authority notified"
            } else {
                "authority not notified, reason recorded"
            };
            (
                State::Ok,
                format!(
                    "closed {} ({authority})",
                    r.closed_us.map(|t| day(t, config)).unwrap_or_default()
                ),
            )
        };
        add(
            "breaches",
            "001 §36; 004 §22; GDPR Art. 33",
            state,
            format!(
                "Breach {} detected {}: {}; {how}",
                r.id,
                day(r.detected_us, config),
                r.what
            ),
        );
    }

    // The audit log.
    match &audit.broken {
        None => add(
            "audit",
            "001 §24-26; 004 §12-13",
            State::Ok,
            format!(
                "Audit log: {} entries (seq {} to {}), chain intact",
                audit.checked,
                audit.first_seq.unwrap_or(0),
                audit.last_seq.unwrap_or(0)
            ),
        ),
        Some(b) => add(
            "audit",
            "001 §24-26; 004 §12-13",
            State::Violation,
            format!("Audit log: chain BROKEN at entry {}: {}", b.seq, b.problem),
        ),
    }

    let violations = findings
        .iter()
        .filter(|f| f.state == State::Violation)
        .count();
    let attention = findings
        .iter()
        .filter(|f| f.state == State::Attention)
        .count();
    Ok(Report {
        generated_us: now_us,
        timezone: config.timezone_name.clone(),
        controller: config.controller.name.clone(),
        since_us: since,
        violations,
        attention,
        findings,
        disclosures,
        deletions,
        audit,
    })
}

const TITLES: &[(&str, &str)] = &[
    ("retention", "Retention"),
    ("destruction", "Destruction of deleted footage"),
    ("access", "Who may reach footage"),
    ("evidence", "Evidence cases"),
    ("requests", "Data-subject requests"),
    ("disclosures", "Disclosures in the past year"),
    ("deletions", "Deletion journal, past year"),
    ("breaches", "Breach register"),
    ("audit", "Audit log"),
];

/// The report as one HTML page for printing.
pub fn html(r: &Report, config: &Config) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Compliance report</title><style>@page{{size:A4;margin:15mm}}\
         body{{font-family:'DejaVu Sans',Arial,sans-serif;color:#111}}\
         table{{border-collapse:collapse;width:100%}}td,th{{border:0.3mm solid #111;\
         padding:1.5mm;text-align:left;vertical-align:top;font-size:10pt}}th{{background:#eee}}\
         .violation{{background:#fdd;font-weight:bold}}.attention{{background:#ffd}}\
         </style></head><body>\n<h1>Compliance report: {}</h1>\n<p>Generated {} ({}); \
         figures of the past year from {}. {} violation(s), {} finding(s) to look at.</p>\n",
        escape_html(&r.controller),
        escape_html(&moment(r.generated_us, config)),
        escape_html(&r.timezone),
        escape_html(&day(r.since_us, config)),
        r.violations,
        r.attention
    );
    for (topic, title) in TITLES {
        let rows: Vec<&Finding> = r.findings.iter().filter(|f| f.topic == *topic).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "<h2>{title}</h2>\n<table><tr><th>finding</th><th>state</th><th>rules</th></tr>"
        );
        for f in rows {
            let class = match f.state {
                State::Ok => "ok",
                State::Attention => "attention",
                State::Violation => "violation",
            };
            let _ = writeln!(
                out,
                "<tr class=\"{class}\"><td>{}</td><td>{class}</td><td>{}</td></tr>",
                escape_html(&f.text),
                escape_html(f.clause)
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}
