//! The Prometheus alert rules shipped with the package
//! (`packaging/prometheus/custos-alerts.yml`): valid, their unit tests pass
//! under the real `promtool` (Debian `prometheus`, installed by
//! scripts/setup), and every metric they use is one a running custosd
//! exports, so no rule waits on a series that never comes.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::api::{ADMIN, DPO, EVIDENCE, NOBODY, VIEWER, ctl_as, start};
use support::daemon::simulated_site;

const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/prometheus/custos-alerts.yml"
);
const RULE_TESTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/prometheus/custos-alerts.test.yml"
);

fn promtool(args: &[&str]) -> std::process::Output {
    Command::new("promtool")
        .args(args)
        .current_dir(Path::new(RULES).parent().unwrap())
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool (Debian package prometheus; scripts/setup installs it): {e}")
        })
}

#[test]
fn the_alert_rules_are_valid_and_pass_their_unit_tests() {
    let check = promtool(&["check", "rules", RULES]);
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let test = promtool(&["test", "rules", RULE_TESTS]);
    assert!(
        test.status.success(),
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    // Every rule has a severity and both annotations, and a test.
    let rules = std::fs::read_to_string(RULES).unwrap();
    let tests = std::fs::read_to_string(RULE_TESTS).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 15, "{alerts:?}");
    assert_eq!(rules.matches("severity: ").count(), alerts.len());
    assert_eq!(rules.matches("summary: ").count(), alerts.len());
    assert_eq!(rules.matches("description: ").count(), alerts.len());
    for a in &alerts {
        assert!(
            tests.contains(&format!("alertname: {a}\n")),
            "alert {a} has no unit test"
        );
    }
}

#[test]
fn every_metric_the_rules_use_is_exported_by_custosd() {
    let (_sim, site) = simulated_site(&["cam1"], 2);
    let _daemon = start(&site, "");
    site.wait_complete("cam1", 1, Duration::from_secs(60));
    let rules = std::fs::read_to_string(RULES).unwrap();
    let mut used: Vec<String> = Vec::new();
    for line in rules
        .lines()
        .filter(|l| l.trim_start().starts_with("expr:"))
    {
        let mut rest = line;
        while let Some(i) = rest.find("custos_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[i + name.len()..];
            used.push(name);
        }
    }
    used.sort();
    used.dedup();
    assert!(used.len() >= 14, "{used:?}");
    // The audit chain's verdict appears once the first verification (at
    // start) has finished.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = ctl_as(&site, 0, &["metrics"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let missing: Vec<&String> = used
            .iter()
            .filter(|m| {
                !text
                    .lines()
                    .any(|l| l.starts_with(&format!("{m}{{")) || l.starts_with(&format!("{m} ")))
            })
            .collect();
        if missing.is_empty() {
            assert!(text.contains("custos_audit_chain_broken 0"), "{text}");
            assert!(
                text.contains("custos_storage_alarm{root=\"main\"} 0"),
                "{text}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rules use metrics custosd does not export: {missing:?}\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A row changed behind the daemon's back is found by the verification at
/// start and shows as `custos_audit_chain_broken 1`, which the rule
/// CustosAuditChainBroken turns into a critical alert.
#[test]
fn a_tampered_audit_row_turns_the_chain_broken_metric_on_at_the_next_start() {
    let (_sim, site) = simulated_site(&["cam1"], 2);
    let daemon = start(&site, "");
    for _ in 0..3 {
        assert!(ctl_as(&site, 0, &["status"]).status.success());
    }
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    custos::index::Index::open(&site.index_path())
        .unwrap()
        .tamper_for_tests("UPDATE audit SET outcome = 'granted' WHERE seq = 2")
        .unwrap();
    let _daemon = support::daemon::Daemon::start(&site);
    support::api::wait_socket(&site);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = String::from_utf8_lossy(&ctl_as(&site, 0, &["metrics"]).stdout).to_string();
        if text.contains("custos_audit_chain_broken 1") {
            break;
        }
        assert!(!text.contains("custos_audit_chain_broken 0"), "{text}");
        assert!(Instant::now() < deadline, "no verdict: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        site.log().contains("the audit chain does not verify"),
        "{}",
        site.log()
    );

    // It opened a breach record, once, that only the DPO may read and that
    // closes only once the authority question is answered.
    let list = |uid: u32| ctl_as(&site, uid, &["--json", "breach", "list"]);
    for uid in [VIEWER, EVIDENCE, ADMIN, 0] {
        assert_eq!(list(uid).status.code(), Some(4), "uid {uid}");
    }
    let out = list(DPO);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let records = v["breaches"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{v}");
    let b = &records[0];
    assert_eq!(
        (b["kind"].as_str(), b["status"].as_str()),
        (Some("audit_chain"), Some("open"))
    );
    assert!(b["what"].as_str().unwrap().contains("entry 2"), "{b}");
    // `audit verify` finds it again: still one record.
    assert_eq!(
        ctl_as(&site, DPO, &["audit", "verify"]).status.code(),
        Some(1)
    );
    let v: serde_json::Value = serde_json::from_slice(&list(DPO).stdout).unwrap();
    assert_eq!(v["breaches"].as_array().unwrap().len(), 1, "{v}");
    let metrics = String::from_utf8_lossy(&ctl_as(&site, 0, &["metrics"]).stdout).to_string();
    assert!(metrics.contains("custos_breaches_open 1"), "{metrics}");
    let out = ctl_as(&site, DPO, &["status"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("BREACH: 1 open record"));

    let id = b["id"].to_string();
    let out = ctl_as(&site, DPO, &["breach", "close", &id, "--note", "done"]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Art. 33"));
    let out = ctl_as(
        &site,
        DPO,
        &[
            "breach",
            "note",
            &id,
            "--note",
            "taken up",
            "--assessment",
            "a test site: no personal data concerned",
            "--not-notified",
            "no risk to anyone",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ctl_as(
        &site,
        DPO,
        &["breach", "close", &id, "--note", "chain checked"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&ctl_as(&site, DPO, &["--json", "breach", "show", &id]).stdout)
            .unwrap();
    let b = &v["breach"];
    assert_eq!(b["status"], "closed");
    assert!(!b["dpo_informed_us"].is_null());
    assert_eq!(b["notes"].as_array().unwrap().len(), 1);
    let audit = ctl_as(
        &site,
        DPO,
        &["--json", "audit", "list", "--action", "breaches.write"],
    );
    let a: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    let n = a["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "ok")
        .count();
    assert_eq!(n, 2, "the note and the close are audited: {a}");
}

/// Ten refused calls by one uid within ten minutes open one record naming
/// the uid.
#[test]
fn a_burst_of_refused_calls_from_one_uid_opens_a_breach_record() {
    let (_sim, site) = simulated_site(&["cam1"], 2);
    let _daemon = start(&site, "");
    for _ in 0..12 {
        assert_eq!(ctl_as(&site, NOBODY, &["status"]).status.code(), Some(4));
    }
    assert_eq!(ctl_as(&site, VIEWER, &["deletions"]).status.code(), Some(4));
    let out = ctl_as(&site, DPO, &["--json", "breach", "list"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let records = v["breaches"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{v}");
    assert_eq!(records[0]["kind"], "refused_access");
    assert_eq!(records[0]["subject"], format!("uid {NOBODY}"));
    assert!(
        records[0]["what"]
            .as_str()
            .unwrap()
            .contains("refused 10 times")
    );
}
