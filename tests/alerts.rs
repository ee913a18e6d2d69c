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
    // With an evidence vault (a real S3 server with Object Lock), whose
    // metrics exist only where one is configured.
    let weed = support::s3::Weed::start();
    weed.bucket("evidence", true);
    let (_sim, mut site) = simulated_site(&["cam1"], 2);
    site.secrets_extra = support::s3::secrets();
    let _daemon = start(&site, &weed.vault_config("evidence", "prefix = \"nvr1\""));
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
            if !text.contains("custos_vault_up 1") {
                // The first Object Lock check is under way.
                std::thread::sleep(Duration::from_millis(200));
                assert!(Instant::now() < deadline, "the vault is not up: {text}");
                continue;
            }
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

// ---------------------------------------------------------------------------
// Direct notification: a real SMTP sink (Debian python3-aiosmtpd) and a
// webhook receiver on loopback.

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// aiosmtpd on `port`, storing each message in the Maildir `dir`.
struct SmtpSink {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl SmtpSink {
    fn start(port: u16, dir: &Path) -> SmtpSink {
        Self::start_with(port, dir, &[])
    }

    /// With `args` for aiosmtpd (e.g. `--tlscert`, `--tlskey` for STARTTLS).
    fn start_with(port: u16, dir: &Path, args: &[&str]) -> SmtpSink {
        // Maildir makes new/, cur/ and tmp/ only in a directory it creates.
        assert!(!dir.exists());
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(args)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd (scripts/setup installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the SMTP sink did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        SmtpSink {
            child,
            dir: dir.to_owned(),
        }
    }

    /// The messages received so far, as text.
    fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.dir.join(sub)) {
                for e in entries.flatten() {
                    out.push(std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }

    /// Waits for a message containing `what`; on timeout the failure shows
    /// the daemon's alert queue.
    fn wait_for(&self, site: &support::daemon::Site, what: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.messages().into_iter().find(|m| m.contains(what)) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no message with {what:?}: {:?}\nqueue: {}\nlog: {}",
                self.messages(),
                String::from_utf8_lossy(&ctl_as(site, 0, &["alerts", "list"]).stdout),
                site.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn email_config(port: u16) -> String {
    format!(
        "\n[alerts]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsmtp_tls = \"none\"\n\
         from = \"custos@nvr1.example.lt\"\ncamera_down_after = \"5s\"\n"
    )
}

#[test]
fn a_camera_that_stops_is_mailed_to_the_dpo_within_seconds_and_audited() {
    let port = free_port();
    let mail = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(port, &mail.path().join("box"));
    let (sim, site) = simulated_site(&["cam1"], 2);
    let _daemon = start(&site, &email_config(port));
    site.wait_complete("cam1", 1, Duration::from_secs(60));
    assert!(sink.messages().is_empty(), "{:?}", sink.messages());
    let stopped = Instant::now();
    sim.stop_camera("cam1");
    let m = sink.wait_for(
        &site,
        "Camera cam1 is not recording",
        Duration::from_secs(60),
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(45),
        "{:?}",
        stopped.elapsed()
    );
    // To the DPO of [controller] by default, from the configured sender.
    assert!(m.contains("To: dpo@example.org"), "{m}");
    assert!(m.contains("From: custos@nvr1.example.lt"), "{m}");
    assert!(m.contains("001 =C2=A720") || m.contains("001 §20"), "{m}");
    // One alert per repeat_after, however many ticks see the camera down.
    std::thread::sleep(Duration::from_secs(5));
    let down = sink
        .messages()
        .into_iter()
        .filter(|m| m.contains("is not recording"))
        .count();
    assert_eq!(down, 1);
    let audit = ctl_as(
        &site,
        DPO,
        &["--json", "audit", "list", "--action", "alert.sent"],
    );
    let a: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    let entries = a["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{a}");
    assert_eq!(entries[0]["outcome"], "ok");
    assert!(
        entries[0]["target"]
            .as_str()
            .unwrap()
            .contains("email dpo@example.org")
    );
}

#[test]
fn a_queued_alert_survives_a_restart_and_is_delivered_exactly_once() {
    let port = free_port();
    let mail = tempfile::tempdir().unwrap();
    let (_sim, site) = simulated_site(&["cam1"], 2);
    let daemon = start(&site, &email_config(port));
    // No mail server yet: the test alert is queued and its first try fails.
    let out = ctl_as(&site, DPO, &["alerts", "test"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: serde_json::Value =
            serde_json::from_slice(&ctl_as(&site, 0, &["--json", "alerts", "list"]).stdout)
                .unwrap();
        let a = &v["alerts"][0];
        if a["attempts"].as_u64() >= Some(1) {
            assert_eq!(a["state"], "pending", "{v}");
            assert!(
                a["last_error"].as_str().unwrap().contains("SMTP 127.0.0.1"),
                "{v}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never tried: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    let sink = SmtpSink::start(port, &mail.path().join("box"));
    let daemon = support::daemon::Daemon::start(&site);
    support::api::wait_socket(&site);
    sink.wait_for(&site, "Test alert", Duration::from_secs(30));
    // Sent once; another restart sends nothing again.
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    let _daemon = support::daemon::Daemon::start(&site);
    support::api::wait_socket(&site);
    std::thread::sleep(Duration::from_secs(5));
    let tests = sink
        .messages()
        .into_iter()
        .filter(|m| m.contains("Test alert"))
        .count();
    assert_eq!(tests, 1);
    let v: serde_json::Value =
        serde_json::from_slice(&ctl_as(&site, 0, &["--json", "alerts", "list"]).stdout).unwrap();
    assert_eq!(v["alerts"][0]["state"], "sent", "{v}");
    // Others may not send or read alerts.
    for uid in [VIEWER, EVIDENCE] {
        assert_eq!(
            ctl_as(&site, uid, &["alerts", "test"]).status.code(),
            Some(4)
        );
    }
}

#[test]
fn the_webhook_gets_each_alert_signed_and_a_tampered_audit_row_reaches_it_as_a_breach() {
    const SECRET: &str = "a-long-random-webhook-secret-0123456789";
    let (port, got) = support::webhook::receiver();
    let (_sim, mut site) = simulated_site(&["cam1"], 2);
    site.secrets_extra = format!("[alerts]\nwebhook_secret = {SECRET:?}\n");
    let config = format!("\n[alerts]\nwebhook_url = \"http://127.0.0.1:{port}/custos\"\n");
    let daemon = start(&site, &config);
    assert!(ctl_as(&site, 0, &["alerts", "test"]).status.success());
    let (signature, body) = got.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(signature, custos::alerts::sign(SECRET.as_bytes(), &body));
    assert_ne!(signature, custos::alerts::sign(b"another secret", &body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["subject"].as_str()),
        (Some("test"), Some("Test alert"))
    );

    // A row changed behind the daemon's back: at the next start the chain
    // does not verify, a breach record opens, and the webhook hears of it.
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    custos::index::Index::open(&site.index_path())
        .unwrap()
        .tamper_for_tests("UPDATE audit SET outcome = 'granted' WHERE seq = 1")
        .unwrap();
    let _daemon = support::daemon::Daemon::start(&site);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (signature, body) = got
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("no breach alert");
        assert_eq!(signature, custos::alerts::sign(SECRET.as_bytes(), &body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if v["event"] == "breach" {
            assert!(
                v["body"]
                    .as_str()
                    .unwrap()
                    .contains("hash chain does not verify"),
                "{v}"
            );
            break;
        }
    }
}

#[test]
fn a_webhook_without_its_secret_or_off_this_machine_is_refused_at_start() {
    let (_sim, site) = simulated_site(&["cam1"], 2);
    site.write_config();
    let mut text = std::fs::read_to_string(site.config_path()).unwrap();
    text.push_str("\n[alerts]\nwebhook_url = \"http://10.0.0.5/hook\"\nsmtp_host = \"smtp.example.lt\"\nsmtp_tls = \"none\"\nfrom = \"x@example.lt\"\n");
    std::fs::write(site.config_path(), text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_custosd"))
        .arg("check-config")
        .arg(site.config_path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("alerts.webhook_url") && err.contains("this machine only"),
        "{err}"
    );
    assert!(
        err.contains("alerts.smtp_tls") && err.contains("in clear"),
        "{err}"
    );
}

/// Footage the index holds that is gone or changed on disk (removed or
/// edited outside Custos) opens breach records at the next sweep, which
/// runs at start and then hourly.
#[test]
fn recorded_footage_removed_or_changed_outside_custos_opens_breach_records() {
    let (_sim, site) = simulated_site(&["cam1"], 2);
    let daemon = start(&site, "");
    site.wait_complete("cam1", 3, Duration::from_secs(60));
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    let segs = site.segments("cam1");
    std::fs::remove_file(site.root().join(&segs[0].path)).unwrap();
    let changed = site.root().join(&segs[1].path);
    let mut bytes = std::fs::read(&changed).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&changed, bytes).unwrap();
    let _daemon = support::daemon::Daemon::start(&site);
    support::api::wait_socket(&site);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = ctl_as(&site, DPO, &["--json", "breach", "list"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let kinds: Vec<&str> = v["breaches"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["kind"].as_str())
            .collect();
        if kinds.contains(&"footage_missing") && kinds.contains(&"footage_changed") {
            let text = v.to_string();
            assert!(
                text.contains(&segs[0].path) && text.contains(&segs[1].path),
                "{v}"
            );
            assert!(
                !text.contains(&segs[2].path),
                "an intact segment is not named: {v}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no breach records: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// STARTTLS to a server whose certificate a municipality's own CA signed:
/// trusted with `smtp_ca_file`, refused without it (the alert waits, with
/// the reason in the queue). The sink refuses mail before STARTTLS.
#[test]
fn alert_mail_goes_over_starttls_to_a_server_signed_by_the_configured_ca() {
    let tls = tempfile::tempdir().unwrap();
    let (ca, cert, key) = support::tls::make_tls_files(tls.path());
    let port = free_port();
    let mail = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start_with(
        port,
        &mail.path().join("box"),
        &[
            "--tlscert",
            cert.to_str().unwrap(),
            "--tlskey",
            key.to_str().unwrap(),
        ],
    );
    let config = |ca: Option<&Path>| {
        let mut c = format!(
            "\n[alerts]\nsmtp_host = \"localhost\"\nsmtp_port = {port}\nsmtp_tls = \"starttls\"\n\
             from = \"custos@nvr1.example.lt\"\n"
        );
        if let Some(ca) = ca {
            c.push_str(&format!("smtp_ca_file = {:?}\n", ca.display().to_string()));
        }
        c
    };
    // Without the CA the server is not trusted: nothing is sent.
    let (_sim, site) = simulated_site(&["cam1"], 2);
    let daemon = start(&site, &config(None));
    assert!(ctl_as(&site, DPO, &["alerts", "test"]).status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: serde_json::Value =
            serde_json::from_slice(&ctl_as(&site, 0, &["--json", "alerts", "list"]).stdout)
                .unwrap();
        if v["alerts"][0]["attempts"].as_u64() >= Some(1) {
            assert_eq!(v["alerts"][0]["state"], "pending", "{v}");
            let error = v["alerts"][0]["last_error"]
                .as_str()
                .unwrap()
                .to_ascii_lowercase();
            assert!(
                error.contains("certificate") || error.contains("issuer"),
                "{v}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never tried: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(sink.messages().is_empty());
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    // With it, the waiting alert goes at the next start, over STARTTLS.
    let (_sim2, site2) = simulated_site(&["cam1"], 2);
    let _daemon = start(&site2, &config(Some(&ca)));
    assert!(ctl_as(&site2, DPO, &["alerts", "test"]).status.success());
    sink.wait_for(&site2, "Test alert", Duration::from_secs(30));
}
