//! The evidence vault (issue 20; RULES 001 §18, §31; 004 §9, §11): a hold's
//! copies kept on a real S3 server with Object Lock (SeaweedFS `weed mini`
//! on loopback), under a legal hold and a retention the store enforces,
//! released and deleted (or left to expire) when the case closes, and
//! resumed after a crash mid-upload. The real daemon, its socket and real
//! uids; the store's refusals are asked of the store itself.

mod support;

use std::time::{Duration, Instant};

use custos::ErrorKind;
use custos::config::VaultLockMode;
use custos::index::SegmentState;
use serde_json::Value;
use support::api::{DPO, EVIDENCE, OPERATOR, ctl_as, open_case, rfc3339};
use support::daemon::{Daemon, Site, files_under};
use support::s3::Weed;

const DAY_US: i64 = 86_400_000_000;

fn ctl(site: &Site, uid: u32, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let o = ctl_as(site, uid, &all);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The number of objects in `state` per `vault status`.
fn count(status: &Value, state: &str) -> u64 {
    status["counts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["state"] == state)
        .and_then(|c| c["objects"].as_u64())
        .unwrap_or(0)
}

/// Polls `vault status` until `done` holds.
fn wait_status(site: &Site, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = ctl(site, OPERATOR, &["vault", "status"]);
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "the vault did not reach {what}: {s:#}\nlog:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A recording site with `vault` (config text) and `secrets`, started
/// (with `failpoint`), and its first two complete segments' range.
fn vault_site(
    vault: &str,
    secrets: &str,
    failpoint: Option<&str>,
) -> (custos::sim::Simulator, Site, Daemon, (String, String)) {
    let (sim, mut site) = support::daemon::simulated_site(&["cam1"], 2);
    site.secrets_extra = secrets.to_owned();
    let daemon = support::api::start_with_failpoint(&site, vault, failpoint);
    let segs: Vec<_> = site
        .wait_complete("cam1", 2, Duration::from_secs(60))
        .into_iter()
        .filter(|s| s.state == SegmentState::Complete)
        .collect();
    let range = (rfc3339(segs[0].start_us), rfc3339(segs[1].end_us.unwrap()));
    (sim, site, daemon, range)
}

fn hold(site: &Site, case: &str, range: &(String, String)) -> Value {
    open_case(site, EVIDENCE, case);
    let held = ctl(
        site,
        EVIDENCE,
        &[
            "hold", "add", "--case", case, "--camera", "cam1", "--from", &range.0, "--to", &range.1,
        ],
    );
    assert_eq!(
        held["hold"]["copies"].as_array().unwrap().len(),
        2,
        "{held}"
    );
    held
}

#[test]
fn a_holds_copies_are_locked_in_the_vault_and_deleted_when_the_case_closes() {
    let weed = Weed::start();
    weed.bucket("evidence", true);
    let (_sim, site, _daemon, range) = vault_site(
        &weed.vault_config(
            "evidence",
            "prefix = \"school-12\"\nlock_mode = \"governance\"\non_close = \"delete\"",
        ),
        &support::s3::secrets(),
        None,
    );
    let held = hold(&site, "v-1", &range);
    let status = wait_status(&site, "2 stored", |s| count(s, "stored") == 2);
    assert_eq!(status["lock_check"]["error"], Value::Null, "{status}");

    // In the bucket: under this server's prefix and the case, each with
    // the copy's SHA-256, a legal hold, and governance retention until the
    // case's review date.
    let case = ctl(&site, EVIDENCE, &["case", "show", "v-1"]);
    let review_us = case["case"]["review_us"].as_i64().unwrap();
    let listed = ctl(&site, EVIDENCE, &["vault", "list", "--case", "v-1"]);
    let objects = listed["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 2, "{listed:#}");
    let copies = held["hold"]["copies"].as_array().unwrap();
    for o in objects {
        assert_eq!(o["node"], "school-12", "{o}");
        assert!(
            o["key"].as_str().unwrap().starts_with("school-12/v-1/"),
            "{o}"
        );
        assert_eq!(o["legal_hold"], true, "{o}");
        assert_eq!(o["mode"], "GOVERNANCE", "{o}");
        let until = o["retain_until_us"].as_i64().unwrap();
        assert!(
            (until - review_us).abs() <= 1_000_000,
            "{o} vs review {review_us}"
        );
        assert!(
            copies.iter().any(|c| c["sha256"] == o["sha256"]),
            "{o} matches no copy: {copies:?}"
        );
    }
    // The operator sees the status, not what a case holds.
    let refused = ctl_as(&site, OPERATOR, &["vault", "list", "--case", "v-1"]);
    assert_eq!(refused.status.code(), Some(4));

    // The store itself refuses to delete a locked version, even with the
    // governance bypass while the legal hold is on: the lock took.
    let store = weed.store("evidence");
    let key = objects[0]["key"].as_str().unwrap();
    let version = objects[0]["version_id"].as_str().unwrap();
    for bypass in [false, true] {
        let e = store.delete_version(key, version, bypass).unwrap_err();
        assert_eq!(e.kind, ErrorKind::PermissionDenied, "bypass {bypass}: {e}");
    }
    assert!(store.head(key, Some(version)).unwrap().is_some());

    // case verify reads the vault copies back.
    let verified = ctl(&site, DPO, &["case", "verify", "v-1"]);
    let checks = verified["vault"].as_array().unwrap();
    assert_eq!(checks.len(), 2, "{verified:#}");
    assert!(
        checks.iter().all(|c| c["problem"].is_null()),
        "{verified:#}"
    );
    assert_eq!(verified["vault_error"], Value::Null);
    // And the words a person reads.
    let said = |uid: u32, args: &[&str]| {
        let o = ctl_as(&site, uid, args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let t = String::from_utf8(o.stdout).unwrap();
        eprintln!("$ custosctl {}\n{t}", args.join(" "));
        t
    };
    let t = said(DPO, &["case", "verify", "v-1"]);
    assert!(
        t.contains("vault: 2 of 2 stored copies read back match"),
        "{t}"
    );
    let t = said(OPERATOR, &["vault", "status"]);
    assert!(
        t.contains("Object Lock: enabled, credentials accepted"),
        "{t}"
    );
    assert!(t.contains("this server's prefix school-12/"), "{t}");
    let t = said(EVIDENCE, &["vault", "list", "--case", "v-1"]);
    assert!(
        t.contains("2 object version(s)") && t.contains("GOVERNANCE"),
        "{t}"
    );

    // Moving the review date out moves the retention out.
    ctl(
        &site,
        EVIDENCE,
        &[
            "case",
            "review",
            "v-1",
            "--days",
            "60",
            "--reason",
            "trial postponed",
        ],
    );
    let new_review = ctl(&site, EVIDENCE, &["case", "show", "v-1"])["case"]["review_us"]
        .as_i64()
        .unwrap();
    assert!(new_review > review_us + 29 * DAY_US);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = store.head(key, Some(version)).unwrap().unwrap();
        if (info.retain_until_us.unwrap() - new_review).abs() <= 1_000_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention not extended: {info:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Closing the case lifts the legal holds and deletes the versions
    // (governance, with the bypass the daemon's credential holds).
    ctl(
        &site,
        EVIDENCE,
        &["case", "close", "v-1", "--reason", "court ruled"],
    );
    wait_status(&site, "2 deleted", |s| count(s, "deleted") == 2);
    let listed = ctl(&site, EVIDENCE, &["vault", "list", "--case", "v-1"]);
    assert_eq!(listed["objects"], serde_json::json!([]), "{listed:#}");
    for o in objects {
        let (k, v) = (
            o["key"].as_str().unwrap(),
            o["version_id"].as_str().unwrap(),
        );
        assert_eq!(
            store.head(k, Some(v)).unwrap(),
            None,
            "{k} {v} is still there"
        );
    }
    // The deletion journal says so: root vault, and how.
    let deadline = Instant::now() + Duration::from_secs(30);
    let row = loop {
        let journal = ctl(&site, DPO, &["deletions"]);
        let rows = journal["deletions"].as_array().cloned().unwrap_or_default();
        if let Some(r) = rows.into_iter().find(|r| r["root"] == "vault") {
            break r;
        }
        assert!(Instant::now() < deadline, "no vault row in {journal:#}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(row["reason"], "case_closed", "{row}");
    assert_eq!(row["segments"], 2, "{row}");
    assert!(
        row["note"].as_str().unwrap().contains("governance bypass"),
        "{row}"
    );
}

#[test]
fn compliance_retention_cannot_be_shortened_and_a_closed_case_is_left_to_expire() {
    let weed = Weed::start();
    weed.bucket("evidence-c", true);
    let (_sim, site, _daemon, range) = vault_site(
        &weed.vault_config(
            "evidence-c",
            "prefix = \"city-hall\"\nlock_mode = \"compliance\"",
        ),
        &support::s3::secrets(),
        None,
    );
    hold(&site, "c-1", &range);
    wait_status(&site, "2 stored", |s| count(s, "stored") == 2);
    let listed = ctl(&site, DPO, &["vault", "list", "--case", "c-1"]);
    let o = &listed["objects"][0];
    assert_eq!(o["mode"], "COMPLIANCE", "{listed:#}");
    let key = o["key"].as_str().unwrap();
    let version = o["version_id"].as_str().unwrap();
    let until = o["retain_until_us"].as_i64().unwrap();

    // Shortening a compliance retention is refused by the store, and so is
    // deleting the version, bypass or not.
    let store = weed.store("evidence-c");
    let e = store
        .set_retention(key, version, VaultLockMode::Compliance, until - DAY_US)
        .unwrap_err();
    assert!(
        matches!(
            e.kind,
            ErrorKind::PermissionDenied | ErrorKind::InvalidInput
        ),
        "{e}"
    );
    let info = store.head(key, Some(version)).unwrap().unwrap();
    assert!(
        (info.retain_until_us.unwrap() - until).abs() <= 1_000_000,
        "{info:?}"
    );
    assert!(store.delete_version(key, version, true).is_err());

    // Closed: the legal hold is lifted, the object stays locked until its
    // date (then the daemon deletes it).
    ctl(
        &site,
        EVIDENCE,
        &["case", "close", "c-1", "--reason", "done"],
    );
    wait_status(&site, "2 expiring", |s| count(s, "expiring") == 2);
    let info = store.head(key, Some(version)).unwrap().unwrap();
    assert!(!info.legal_hold, "{info:?}");
    assert_eq!(info.mode.as_deref(), Some("COMPLIANCE"));
    assert!(store.delete_version(key, version, true).is_err());
}

#[test]
fn a_crash_right_after_an_upload_is_finished_by_the_next_start_without_a_second_copy() {
    let weed = Weed::start();
    weed.bucket("evidence", true);
    let (_sim, site, mut daemon, range) = vault_site(
        &weed.vault_config("evidence", "prefix = \"school-3\""),
        &support::s3::secrets(),
        Some("vault-after-put"),
    );
    hold(&site, "r-1", &range);
    // The first PUT lands; the daemon dies before it records anything.
    let deadline = Instant::now() + Duration::from_secs(60);
    while daemon.try_wait().is_none() {
        assert!(Instant::now() < deadline, "the failpoint was not reached");
        std::thread::sleep(Duration::from_millis(100));
    }
    let store = weed.store("evidence");
    let (before, _) = store.list_versions("school-3/r-1/", None).unwrap();
    assert_eq!(before.len(), 1, "one upload before the crash: {before:?}");

    let _daemon = Daemon::start(&site);
    support::api::wait_socket(&site);
    wait_status(&site, "2 stored", |s| count(s, "stored") == 2);
    let (after, _) = store.list_versions("school-3/r-1/", None).unwrap();
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after.iter().any(|v| v.version_id == before[0].version_id),
        "the version uploaded before the crash was adopted, not uploaded again: {after:?}"
    );
}

#[test]
fn wrong_credentials_and_a_bucket_without_object_lock_are_named_and_holds_go_on() {
    let weed = Weed::start();
    weed.bucket("plain", false);
    weed.bucket("locked", true);

    // The store's own answers, as the daemon words them.
    let e = weed.store("plain").check_object_lock().unwrap_err();
    assert!(
        e.message.contains("does not have Object Lock enabled"),
        "{e}"
    );
    let e = weed
        .store_as("locked", support::s3::ACCESS_KEY, "not-the-secret")
        .check_object_lock()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "{e}");
    assert!(e.message.contains("secret_access_key"), "{e}");
    assert!(weed.store("locked").check_object_lock().is_ok());

    // A daemon on the plain bucket: the hold and its local copies work,
    // the copies wait in the queue, the status says why, and the webhook
    // hears of it.
    const HOOK_SECRET: &str = "a-long-random-webhook-secret-0123456789";
    let (port, posts) = support::webhook::receiver();
    let (_sim, site, _daemon, range) = vault_site(
        &weed.vault_config(
            "plain",
            &format!(
                "prefix = \"n1\"\n\n[alerts]\nwebhook_url = \"http://127.0.0.1:{port}/custos\"\n"
            ),
        ),
        &format!(
            "{}\n[alerts]\nwebhook_secret = {HOOK_SECRET:?}\n",
            support::s3::secrets()
        ),
        None,
    );
    hold(&site, "p-1", &range);
    assert_eq!(
        files_under(&site.dir.path().join("evidence").join("p-1")).len(),
        2
    );
    let s = wait_status(&site, "a lock verdict with 2 pending", |s| {
        count(s, "pending") == 2 && s["lock_check"]["error"].is_string()
    });
    assert!(
        s["lock_check"]["error"]
            .as_str()
            .unwrap()
            .contains("does not have Object Lock enabled"),
        "{s:#}"
    );
    let out = ctl_as(&site, OPERATOR, &["vault", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("BUCKET NOT USABLE"), "{text}");
    let out = ctl_as(&site, OPERATOR, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ALARM: vault: bucket plain does not have Object Lock enabled")
            && text.contains("0 copies stored, 2 waiting"),
        "{text}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let alert = loop {
        let (signature, body) = posts
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("no vault alert reached the webhook");
        assert_eq!(
            signature,
            custos::alerts::sign(HOOK_SECRET.as_bytes(), &body)
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        if v["event"] == "vault" {
            break v;
        }
    };
    let body = alert["body"].as_str().unwrap();
    assert!(
        body.contains("does not have Object Lock enabled")
            && body.contains("kept on this server only"),
        "{alert}"
    );
    // Nothing went to the unlocked bucket.
    let (versions, _) = weed.store("plain").list_versions("", None).unwrap();
    assert!(versions.is_empty(), "{versions:?}");
    // case verify says the vault copies are not there yet.
    let out = ctl_as(&site, DPO, &["case", "verify", "p-1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("not yet in the vault"), "{text}");

    // A daemon with a wrong secret: told which keys to check.
    let wrong =
        "\n[vault]\naccess_key_id = \"custos-test-key\"\nsecret_access_key = \"wrong-secret\"\n";
    let (_sim2, site2, _daemon2, _) =
        vault_site(&weed.vault_config("locked", "prefix = \"n2\""), wrong, None);
    let s = wait_status(&site2, "a lock verdict", |s| {
        s["lock_check"]["error"].is_string()
    });
    let e = s["lock_check"]["error"].as_str().unwrap();
    assert!(
        e.contains("refused the daemon's credentials") && e.contains("access_key_id"),
        "{e}"
    );
}

/// Over TLS to a store whose certificate the municipality's own CA signed:
/// trusted with `ca_file`, refused (and said) without it.
#[test]
fn the_vault_is_reached_over_tls_with_the_configured_ca_and_refused_without_it() {
    let tls = tempfile::tempdir().unwrap();
    let (ca, cert, key) = support::tls::make_tls_files(tls.path());
    let weed = Weed::start_with(Some((&cert, &key)));
    weed.bucket("evidence", true);
    let https = format!("https://localhost:{}", weed.https_port.unwrap());
    let vault = |ca: Option<&std::path::Path>| {
        let mut v = format!(
            "\n[vault]\nendpoint = \"{https}\"\nbucket = \"evidence\"\nprefix = \"tls-1\"\n"
        );
        if let Some(ca) = ca {
            v.push_str(&format!("ca_file = {:?}\n", ca.display().to_string()));
        }
        v
    };
    let (_sim, site, _daemon, _) = vault_site(&vault(None), &support::s3::secrets(), None);
    let s = wait_status(&site, "a lock verdict", |s| {
        s["lock_check"]["error"].is_string()
    });
    let e = s["lock_check"]["error"]
        .as_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(e.contains("certificate") || e.contains("issuer"), "{e}");

    let (_sim2, site2, _daemon2, range) =
        vault_site(&vault(Some(&ca)), &support::s3::secrets(), None);
    hold(&site2, "t-1", &range);
    let s = wait_status(&site2, "2 stored", |s| count(s, "stored") == 2);
    assert_eq!(s["lock_check"]["error"], Value::Null, "{s}");
}
