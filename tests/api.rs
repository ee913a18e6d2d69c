//! The admin API (issue 5): the permission matrix over the real socket with
//! real peer credentials (custosctl run as other uids against the real
//! custosd), hostile input against a recording daemon, a property test of
//! the request handling, and tamper detection in the audit chain.
//!
//! RULES.md "Who may touch it": 001 §24-27, 004 §12 (only authorised
//! persons, only their actions, every access traceable); 004 §13 (stated
//! purpose).

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use custos::api::auth::Peer;
use custos::api::routes::{self, Request};
use custos::api::{ApiState, CameraStatuses, ReloadFn};
use custos::audit::{AuditLog, Checkpoint, entry_hash, verify};
use custos::clock::SimulatedClocks;
use custos::config::Config;
use custos::index::{AuditRecord, Index};
use proptest::prelude::*;
use serde_json::Value;
use support::api::*;
use support::daemon::{Site, SiteCamera, simulated_site};

// ---------------------------------------------------------------------------
// Permission matrix

/// Every endpoint, as custosctl arguments, with the callers allowed, written
/// out here independently of `Action::allowed` (docs/api.md's table).
fn matrix() -> Vec<(&'static str, Vec<&'static str>, Vec<u32>)> {
    let everyone = vec![0, VIEWER, OPERATOR, EVIDENCE, DPO, ADMIN, VIEWER_OUTDOOR];
    let dpo_admin = vec![0, DPO, ADMIN];
    vec![
        ("status", vec!["status"], everyone.clone()),
        ("cameras.list", vec!["cameras"], everyone.clone()),
        (
            "recordings.list",
            vec!["recordings", "--camera", "cam1", "--reason", "matrix test"],
            // Footage by duty, never by rank (001 §24-26; 004 §12): not
            // the operator, not admin or root, not a viewer of another zone.
            vec![VIEWER, EVIDENCE, DPO],
        ),
        (
            "retention.status",
            vec!["retention", "status"],
            dpo_admin.clone(),
        ),
        (
            "retention.plan",
            vec!["retention", "plan"],
            dpo_admin.clone(),
        ),
        ("deletions.list", vec!["deletions"], dpo_admin.clone()),
        ("audit.list", vec!["audit", "list"], dpo_admin.clone()),
        ("audit.verify", vec!["audit", "verify"], dpo_admin.clone()),
        ("config.reload", vec!["reload"], vec![0, ADMIN]),
        // Keeping cameras running: operators and admins.
        (
            "camera.control",
            vec!["camera", "restart", "cam1"],
            vec![0, OPERATOR, ADMIN],
        ),
        // Camera and storage health, no footage: operators and admins.
        ("metrics", vec!["metrics"], vec![0, OPERATOR, ADMIN]),
        // Evidence: the evidence officer opens and closes cases; the DPO may
        // read cases and disclosures. admin holds no footage role.
        ("cases.read", vec!["case", "list"], vec![EVIDENCE, DPO]),
        (
            "cases.write",
            vec![
                "case",
                "open",
                "--id",
                "m-1",
                "--title",
                "t",
                "--authority",
                "police",
                "--authority-ref",
                "r-1",
                "--legal-basis",
                "GDPR Art. 6(1)(c)",
            ],
            vec![EVIDENCE],
        ),
        (
            "cases.close",
            vec!["case", "close", "m-1", "--reason", "matrix test"],
            vec![EVIDENCE],
        ),
        ("disclosures.list", vec!["disclosures"], vec![EVIDENCE, DPO]),
        ("key.show", vec!["key", "show"], everyone.clone()),
        // The register of data-subject requests names requesters; answering
        // them, erasure included, is the DPO's duty alone (001 §32-35).
        ("requests.read", vec!["request", "list"], vec![DPO]),
        (
            "requests.write",
            vec![
                "request",
                "open",
                "--kind",
                "erasure",
                "--requester",
                "J. Jonaitis",
                "--contact",
                "j@example.lt",
                "--identity-check",
                "ID card shown",
                "--camera",
                "cam1",
                "--from",
                "2026-11-20T10:00:00Z",
                "--to",
                "2026-11-20T10:30:00Z",
            ],
            vec![DPO],
        ),
        ("compliance.report", vec!["compliance"], vec![DPO]),
        ("breaches.read", vec!["breach", "list"], vec![DPO]),
        ("alerts.list", vec!["alerts", "list"], dpo_admin.clone()),
        (
            "breaches.write",
            vec![
                "breach",
                "report",
                "--what",
                "matrix test: a lost USB stick",
            ],
            vec![DPO],
        ),
        (
            "requests.erase",
            vec!["request", "erase", "REQ", "--reason", "matrix test"],
            vec![DPO],
        ),
        // Handing footage to a recipient: the evidence officer only.
        // The camera has recorded nothing, so an allowed export ends in
        // "no footage" (exit 3) after the permission check.
        (
            "export",
            vec![
                "export",
                "--camera",
                "cam1",
                "--from",
                "2026-11-20T10:00:00Z",
                "--to",
                "2026-11-20T10:05:00Z",
                "--recipient",
                "police",
                "--reason",
                "matrix test",
                "--out",
                "OUT",
            ],
            vec![EVIDENCE],
        ),
        // Looking at footage: by duty, as listing it (001 §24-26; 004
        // §12-13). Nothing recorded: an allowed view ends in "no footage"
        // (exit 3) after the permission check.
        (
            "view",
            vec![
                "view",
                "--camera",
                "cam1",
                "--from",
                "2026-11-20T10:00:00Z",
                "--to",
                "2026-11-20T10:05:00Z",
                "--reason",
                "matrix test",
            ],
            vec![VIEWER, EVIDENCE, DPO],
        ),
        // The camera live: as a recorded view. cam1 is not recording, so an
        // allowed live view ends in "no live footage" (exit 3).
        (
            "view.live",
            vec![
                "view",
                "--camera",
                "cam1",
                "--live",
                "--reason",
                "matrix test",
            ],
            vec![VIEWER, EVIDENCE, DPO],
        ),
        // Device-file inboxes: names, owners and reasons, no footage.
        (
            "inbox.status",
            vec!["inbox", "status"],
            vec![0, OPERATOR, ADMIN],
        ),
        // The evidence vault: whether it works, for those who run the
        // system and those who rely on it; what a case holds there, for
        // the case's roles. Without a [vault] both answer that none is
        // configured.
        (
            "vault.status",
            vec!["vault", "status"],
            vec![0, OPERATOR, EVIDENCE, DPO, ADMIN],
        ),
        (
            "vault.list",
            vec!["vault", "list", "--case", "m-1"],
            vec![EVIDENCE, DPO],
        ),
        // Redacted copies for data subjects: prepared by whoever finds
        // footage for the request, approved and released by a DPO. No job
        // exists: an allowed call on job 1 ends in "no redaction 1" (exit
        // 3) after the permission check.
        (
            "redactions.read",
            vec!["redaction", "list"],
            vec![EVIDENCE, DPO],
        ),
        (
            "redactions.write",
            vec!["redaction", "cancel", "1"],
            vec![EVIDENCE, DPO],
        ),
        (
            "redactions.approve",
            vec!["redaction", "approve", "1"],
            vec![DPO],
        ),
        (
            "redactions.release",
            vec!["redaction", "release", "1", "--out", "OUT"],
            vec![DPO],
        ),
        // An allowed activity query of a camera with nothing recorded is
        // an empty table.
        (
            "activity",
            vec![
                "activity",
                "--camera",
                "cam1",
                "--from",
                "2026-11-20T10:00:00Z",
                "--to",
                "2026-11-20T11:00:00Z",
                "--reason",
                "matrix test",
            ],
            vec![VIEWER, EVIDENCE, DPO],
        ),
        // An allowed sheet of a camera with nothing recorded ends in "no
        // complete footage" (exit 3), before any file is made.
        (
            "sheet",
            vec![
                "sheet",
                "--camera",
                "cam1",
                "--from",
                "2026-11-20T10:00:00Z",
                "--to",
                "2026-11-20T10:01:00Z",
                "--reason",
                "matrix test",
                "--out",
                "/nonexistent/sheet.png",
            ],
            vec![VIEWER, EVIDENCE, DPO],
        ),
    ]
}

const CALLERS: [u32; 8] = [
    VIEWER,
    OPERATOR,
    EVIDENCE,
    DPO,
    ADMIN,
    NOBODY,
    VIEWER_OUTDOOR,
    0,
];

#[test]
fn permission_matrix_over_the_real_socket_and_every_refusal_is_audited() {
    // The camera need not work: the matrix is about the API.
    let site = Site::new(vec![SiteCamera::new(
        "cam1",
        "rtsp://127.0.0.1:9/none".into(),
    )]);
    let _daemon = start(&site, "");
    // Export packages go to a directory every caller may write.
    let exports = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        exports.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let mut expected_refusals = Vec::new();
    let mut calls = 0;
    // The one request the DPO registers: the first of the year it arrives in.
    let year = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::get("Europe/Vilnius").unwrap())
        .year();
    let request = format!("R-{year}-0001");
    for (action, args, allowed) in matrix() {
        for uid in CALLERS {
            // Each caller opens and closes a case of its own ("m-UID"):
            // case ids are never reused.
            let case = format!("m-{uid}");
            let out_dir = exports.path().join(uid.to_string());
            let out_dir = out_dir.to_str().unwrap();
            let args: Vec<&str> = args
                .iter()
                .map(|a| match *a {
                    "m-1" => case.as_str(),
                    "REQ" => request.as_str(),
                    "OUT" => out_dir,
                    a => a,
                })
                .collect();
            let out = ctl_as(&site, uid, &args);
            calls += 1;
            let stderr = String::from_utf8_lossy(&out.stderr);
            if allowed.contains(&uid) {
                let no_footage = matches!(action, "export" | "view" | "view.live" | "sheet")
                    && out.status.code() == Some(3)
                    && stderr.contains("footage of camera cam1");
                let no_job = action.starts_with("redactions.")
                    && out.status.code() == Some(3)
                    && stderr.contains("no redaction 1");
                assert!(
                    out.status.success() || no_footage || no_job,
                    "uid {uid} should be allowed {action}: {stderr}"
                );
            } else {
                assert_eq!(
                    out.status.code(),
                    Some(4),
                    "uid {uid} should be refused {action} (exit 4): {stderr}"
                );
                assert!(
                    stderr.contains(&format!("uid {uid}"))
                        && (stderr.contains("needs ") || stderr.contains("has role viewer")),
                    "the refusal should say who and what is needed: {stderr}"
                );
                expected_refusals.push((uid, action));
            }
        }
    }
    // The operator is told what they have and what is needed.
    let out = ctl_as(&site, OPERATOR, &["reload"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("uid 2002 has role operator; reloading the configuration needs role admin"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    calls += 1;
    expected_refusals.push((OPERATOR, "config.reload"));

    // Every call is in the audit log; every refusal as permission_denied,
    // with the caller's uid and pid and the action.
    let log = ctl_json(&site, &["audit", "list", "--limit", "10000"]);
    let all = log["entries"].as_array().unwrap();
    let (intents, entries): (Vec<&Value>, Vec<&Value>) =
        all.iter().partition(|e| e["outcome"] == routes::INTENT);
    assert_eq!(entries.len(), calls, "one outcome entry per call");
    // Every allowed state change also wrote its intent before it acted (an
    // export's request entry is its intent).
    let acts: usize = matrix()
        .iter()
        .filter(|(a, _, _)| {
            [
                "config.reload",
                "camera.control",
                "cases.write",
                "cases.close",
                "requests.write",
                "requests.erase",
                "breaches.write",
            ]
            .contains(a)
        })
        .map(|(_, _, allowed)| allowed.len())
        .sum();
    assert_eq!(intents.len(), acts, "{intents:#?}");
    let mut denied: Vec<(u32, String)> = entries
        .iter()
        .filter(|e| e["outcome"] == "permission_denied")
        .map(|e| {
            assert!(e["pid"].as_i64().unwrap() > 0);
            (
                e["uid"].as_u64().unwrap() as u32,
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    denied.sort();
    let mut want: Vec<(u32, String)> = expected_refusals
        .iter()
        .map(|(u, a)| (*u, a.to_string()))
        .collect();
    want.sort();
    assert_eq!(denied, want);
    // A reading of footage listings carries its reason.
    assert!(entries.iter().any(|e| e["action"] == "recordings.list"
        && e["uid"] == VIEWER
        && e["reason"] == "matrix test"
        && e["outcome"] == "ok"));
    // The chain is intact...
    let out = ctl_as(&site, DPO, &["audit", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // ...it names its head as a signed checkpoint, which verifies later...
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let checkpoint = stdout
        .split_whitespace()
        .last()
        .filter(|c| c.split(':').count() == 3)
        .unwrap_or_else(|| panic!("no checkpoint in {stdout}"));
    let out = ctl_as(&site, DPO, &["audit", "verify", "--checkpoint", checkpoint]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ...and one whose signature was changed is refused as not the node's.
    let (rest, sig) = checkpoint.rsplit_once(':').unwrap();
    let forged = format!(
        "{rest}:{}{}",
        if sig.starts_with('0') { '1' } else { '0' },
        &sig[1..]
    );
    let out = ctl_as(&site, DPO, &["audit", "verify", "--checkpoint", &forged]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("not signed by this node's key"), "{stderr}");
    // ...and a row changed behind the daemon's back is found.
    let index = Index::open(&site.index_path()).unwrap();
    index
        .tamper_for_tests("UPDATE audit SET outcome = 'granted' WHERE seq = 7")
        .unwrap();
    let out = ctl_as(&site, DPO, &["audit", "verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("BROKEN at entry 7"), "{stdout}");
}

// ---------------------------------------------------------------------------
// Scope by the zone of the footage

/// A camera moved from zone outdoor to indoor: its outdoor-era footage is
/// shown only to viewers of outdoor, its indoor footage only to viewers of
/// indoor (the zone stored with each segment, not the camera's today), and
/// a long listing comes in pages that join without a gap or a repeat.
#[test]
fn footage_is_scoped_by_the_zone_it_was_recorded_under_and_listings_are_paged() {
    let site = Site::new(vec![SiteCamera::new(
        "cam1",
        "rtsp://127.0.0.1:9/none".into(),
    )]);
    // root lists pages over raw HTTP here, which needs a footage role.
    let _daemon = start(&site, "\n[[access.grant]]\nuser = 0\nroles = [\"dpo\"]\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Index::open_read_only(&site.index_path()).is_err() {
        assert!(Instant::now() < deadline, "no index");
        std::thread::sleep(Duration::from_millis(50));
    }
    let index = custos::index::SharedIndex::new(Index::open(&site.index_path()).unwrap());
    // 2026-11-20T10:00:00Z: two minutes under outdoor, then one under indoor.
    let t0 = 1_795_168_800_000_000_i64;
    let min = 60_000_000;
    for (i, zone) in ["outdoor", "outdoor", "indoor"].iter().enumerate() {
        let start = t0 + i as i64 * min;
        support::index::put_segment(&index, &site.root(), "cam1", zone, start, start + min, b"x");
    }
    let ts = support::api::rfc3339;
    let (from, to) = (ts(t0), ts(t0 + 3 * min));
    let list = |uid: u32| {
        let args = [
            "--json",
            "recordings",
            "--camera",
            "cam1",
            "--from",
            &from,
            "--to",
            &to,
            "--reason",
            "scope test",
        ];
        let o = ctl_as(&site, uid, &args);
        let zones: Option<Vec<String>> = o.status.success().then(|| {
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            v["segments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["zone"].as_str().unwrap().to_owned())
                .collect()
        });
        (
            o.status.code(),
            zones,
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (_, zones, _) = list(VIEWER);
    assert_eq!(
        zones.unwrap(),
        ["indoor"],
        "a viewer of indoor sees only indoor footage"
    );
    let (_, zones, _) = list(VIEWER_OUTDOOR);
    assert_eq!(
        zones.unwrap(),
        ["outdoor", "outdoor"],
        "a viewer of outdoor sees the camera's outdoor-era footage"
    );
    let (_, zones, _) = list(EVIDENCE);
    assert_eq!(zones.unwrap(), ["outdoor", "outdoor", "indoor"]);
    // Where the camera holds nothing of outdoor, its viewer is refused.
    let args = [
        "recordings",
        "--camera",
        "cam1",
        "--from",
        &ts(t0 + 2 * min),
        "--to",
        &to,
        "--reason",
        "scope test",
    ];
    let o = ctl_as(&site, VIEWER_OUTDOOR, &args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains("zone outdoor") && err.contains("zone indoor"),
        "{err}"
    );
    // An administrator without a footage role sees none of it.
    let (code, _, err) = list(ADMIN);
    assert_eq!(code, Some(4), "{err}");
    assert!(
        err.contains("needs role viewer or evidence or dpo"),
        "{err}"
    );

    // Pages of two: the first ends where the second begins.
    let sock = socket(&site);
    let page = |from: i64, limit: u32| {
        let (status, v) = raw(
            &sock,
            &get(&format!(
                "/v1/cameras/cam1/recordings?from={}&to={}&reason=paging&limit={limit}",
                custos::api::params::encode(&ts(from)),
                custos::api::params::encode(&to)
            )),
        );
        assert_eq!(status, 200, "{v}");
        v
    };
    let first = page(t0, 2);
    assert_eq!(first["segments"].as_array().unwrap().len(), 2, "{first}");
    assert_eq!(first["more_from_us"], t0 + 2 * min, "{first}");
    assert_eq!(first["gaps"], serde_json::json!([]), "{first}");
    let second = page(first["more_from_us"].as_i64().unwrap(), 2);
    let starts: Vec<i64> = second["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start_us"].as_i64().unwrap())
        .collect();
    assert_eq!(starts, [t0 + 2 * min], "{second}");
    assert!(second["more_from_us"].is_null(), "{second}");
    let (status, v) = raw(
        &sock,
        &get("/v1/cameras/cam1/recordings?reason=paging&limit=0"),
    );
    assert_eq!(status, 400, "{v}");
}

// ---------------------------------------------------------------------------
// Floods and long work

/// Not a test by itself: the flooding client of
/// `one_uid_flooding_the_socket_does_not_keep_other_callers_waiting`, run by
/// it in a child process as another uid. 100 threads open connections as
/// fast as the daemon closes them, half asking for the status, half only
/// holding the connection open.
#[test]
#[ignore = "a child process of the flood test"]
fn flood_helper() {
    let Ok(sock) = std::env::var("CUSTOS_FLOOD_SOCKET") else {
        return;
    };
    let until = Instant::now() + Duration::from_secs(30);
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                while Instant::now() < until {
                    let Ok(mut s) = UnixStream::connect(&sock) else {
                        continue;
                    };
                    if i % 2 == 0 {
                        let _ = s.write_all(&get("/v1/status"));
                    }
                    let _ = s.read_to_end(&mut Vec::new());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// A uid with no role floods the socket with 100 connections, reopened as
/// fast as they are closed: it gets its few connections, the rest are
/// closed at once, and root's `custosctl status` is answered within a few
/// seconds every time.
#[test]
fn one_uid_flooding_the_socket_does_not_keep_other_callers_waiting() {
    use std::os::unix::process::CommandExt;
    let site = Site::new(vec![SiteCamera::new(
        "cam1",
        "rtsp://127.0.0.1:9/none".into(),
    )]);
    let _daemon = start(&site, "");
    /// Kills the flooder however the test ends.
    struct Flood(std::process::Child);
    impl Drop for Flood {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let flood = Flood(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "flood_helper", "--ignored", "--quiet"])
            .env("CUSTOS_FLOOD_SOCKET", socket(&site))
            .uid(NOBODY)
            .gid(0)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(2));
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        let out = ctl_as(&site, 0, &["status"]);
        assert!(
            out.status.success(),
            "root was not answered under the flood: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        slowest = slowest.max(t.elapsed());
    }
    drop(flood);
    assert!(
        slowest < Duration::from_secs(3),
        "root waited {slowest:?} for its status"
    );
    assert!(
        site.log().contains("closing its new ones"),
        "the flooder's extra connections were not refused: {}",
        site.log()
    );
}

/// Long requests (here audit verifications, slowed to 3 s each by a
/// failpoint) take turns: while six run, more than the API has threads,
/// short requests are still answered at once, and every long one finishes.
/// Without turns the six would hold every thread of the blocking pool for
/// their 3 s and a status asked 0.7 s in would wait about 2.3 s.
#[test]
fn long_requests_take_turns_and_leave_threads_for_short_ones() {
    let site = Site::new(vec![SiteCamera::new(
        "cam1",
        "rtsp://127.0.0.1:9/none".into(),
    )]);
    let _daemon = support::api::start_with_failpoint(&site, "", Some("slow-audit-verify"));
    // Two uids, as one may hold only MAX_CONNECTIONS_PER_UID connections.
    let verifies: Vec<_> = [DPO, DPO, DPO, ADMIN, ADMIN, ADMIN]
        .into_iter()
        .map(|uid| {
            let site_sock = socket(&site);
            std::thread::spawn(move || {
                let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_custosctl"));
                std::os::unix::process::CommandExt::uid(&mut cmd, uid);
                std::os::unix::process::CommandExt::gid(&mut cmd, 0);
                cmd.arg("--socket")
                    .arg(site_sock)
                    .args(["audit", "verify"])
                    .output()
                    .unwrap()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    // Asked from this process (root, an admin), so the time is the
    // daemon's answer, not a client's start on a loaded machine.
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        let (status, body) = raw(&socket(&site), &get("/v1/status"));
        assert_eq!(status, 200, "{body}");
        slowest = slowest.max(t.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(1500),
        "status waited {slowest:?} behind long requests"
    );
    for v in verifies {
        let out = v.join().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------
// Hostile input

/// Sends `bytes` on a new connection and reads the reply until EOF.
fn raw(sock: &Path, bytes: &[u8]) -> (u16, Value) {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // The server may answer (413) and close before it has read everything.
    let _ = s.write_all(bytes);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP reply: {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    let json = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, json)
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn assert_error(what: &str, (status, json): (u16, Value), want_status: u16, kind: &str) {
    assert_eq!(status, want_status, "{what}: {json}");
    assert_eq!(json["error"]["kind"], kind, "{what}: {json}");
    let msg = json["error"]["message"].as_str().unwrap_or("");
    assert!(msg.len() > 20, "{what}: the message should explain: {json}");
}

#[test]
fn hostile_input_gets_a_clear_4xx_and_the_daemon_keeps_recording() {
    let (_sim, site) = simulated_site(&["cam1"], 2);
    // root asks for footage here, which needs a footage role like anyone's.
    let mut daemon = start(
        &site,
        "\n[api]\nmax_body_bytes = 2048\n[[access.grant]]\nuser = 0\nroles = [\"dpo\"]\n",
    );
    let sock = socket(&site);
    let before = site.wait_complete("cam1", 1, Duration::from_secs(30)).len();

    // Slowloris: a request whose headers never finish, held open while the
    // rest runs; the server must drop it after its header timeout.
    let mut slow = UnixStream::connect(&sock).unwrap();
    slow.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let slow_started = Instant::now();

    let rec = "/v1/cameras/cam1/recordings";
    assert_error(
        "malformed JSON",
        raw(&sock, &post("/v1/config/reload", "{not json")),
        400,
        "invalid_input",
    );
    assert_error(
        "wrong type",
        raw(&sock, &post("/v1/config/reload", r#"{"reason": 5}"#)),
        400,
        "invalid_input",
    );
    assert_error(
        "unknown field",
        raw(
            &sock,
            &post("/v1/config/reload", r#"{"reason": "x", "force": true}"#),
        ),
        400,
        "invalid_input",
    );
    let big = "x".repeat(4096);
    assert_error(
        "oversized body",
        raw(&sock, &post("/v1/config/reload", &big)),
        413,
        "invalid_input",
    );
    // Chunked, with no length announced: cut off while reading.
    let chunked = format!(
        "POST /v1/config/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
         1000\r\n{}\r\n0\r\n\r\n",
        "y".repeat(4096)
    );
    assert_error(
        "oversized chunked body",
        raw(&sock, chunked.as_bytes()),
        413,
        "invalid_input",
    );
    assert_error(
        "invalid time",
        raw(&sock, &get(&format!("{rec}?from=yesterday&reason=x"))),
        400,
        "invalid_input",
    );
    assert_error(
        "impossible date",
        raw(
            &sock,
            &get(&format!("{rec}?from=2026-02-30+10:00&reason=x")),
        ),
        400,
        "invalid_input",
    );
    assert_error(
        "from after to",
        raw(
            &sock,
            &get(&format!(
                "{rec}?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z&reason=x"
            )),
        ),
        400,
        "invalid_input",
    );
    assert_error("no reason", raw(&sock, &get(rec)), 400, "invalid_input");
    for evil in [
        "..%2F..%2Fetc%2Fpasswd",
        "..",
        "%2E%2E",
        "cam1%00",
        "cam1%0A",
        "a%2Fb",
    ] {
        assert_error(
            evil,
            raw(
                &sock,
                &get(&format!("/v1/cameras/{evil}/recordings?reason=x")),
            ),
            400,
            "invalid_input",
        );
    }
    assert_error(
        "traversal out of /v1",
        raw(&sock, &get("/v1/../../etc/passwd")),
        404,
        "not_found",
    );
    assert_error(
        "unknown parameter",
        raw(&sock, &get("/v1/status?verbose=1")),
        400,
        "invalid_input",
    );
    assert_error(
        "bad escape",
        raw(&sock, &get(&format!("{rec}?reason=%G1"))),
        400,
        "invalid_input",
    );
    let (status, json) = raw(
        &sock,
        b"DELETE /v1/audit HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 405, "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("append-only")
    );
    assert_error(
        "GET with a body",
        raw(
            &sock,
            b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
        ),
        400,
        "invalid_input",
    );
    assert_error(
        "unknown path",
        raw(&sock, &get("/v2/status")),
        404,
        "not_found",
    );
    // Not HTTP at all: hyper answers 400 and closes.
    let (status, _) = raw(&sock, b"\x00\x01garbage\r\n\r\n");
    assert_eq!(status, 400);

    // The slow request is cut off within the header timeout (5 s) plus slack.
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let held = slow_started.elapsed();
    assert!(
        held < Duration::from_secs(12),
        "a request with unfinished headers was held {held:?}"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected reply to a slow request: {text}"
    );

    // The daemon lives, answers, and is still recording.
    assert!(daemon.try_alive(), "custosd died; log:\n{}", site.log());
    let (status, json) = raw(&sock, &get("/v1/status"));
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["cameras"][0]["state"], "recording", "{json}");
    site.wait_complete("cam1", before + 2, Duration::from_secs(30));
    assert!(!site.log().contains("panicked"), "{}", site.log());
}

trait Alive {
    fn try_alive(&mut self) -> bool;
}

impl Alive for support::daemon::Daemon {
    fn try_alive(&mut self) -> bool {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), None).is_ok()
            && !std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
                .unwrap_or_default()
                .contains(") Z ")
    }
}

// ---------------------------------------------------------------------------
// Property test of the request handling, in-process

const CONFIG: &str = r#"
timezone = "Europe/Riga"
[daemon]
state_dir = "/nonexistent/state"
[controller]
name = "T"
registration_code = "1"
address = "a"
email = "a@example.org"
dpo = { email = "d@example.org" }
[[storage]]
id = "main"
path = "/nonexistent/rec"
[evidence]
path = "/nonexistent/ev"
[[zone]]
id = "indoor"
name = "Indoor"
retention_days = 10
purposes = ["safety"]
legal_basis = "x"
processor = "y"
[[camera]]
id = "cam1"
name = "cam1"
zone = "indoor"
url = "rtsp://127.0.0.1:9/x"
area = "a"
[[access.grant]]
user = 2001
roles = ["viewer"]
zones = ["indoor"]
[[access.grant]]
user = 2003
roles = ["evidence"]
[[access.grant]]
user = 2004
roles = ["dpo"]
"#;

struct InProcess {
    _dir: tempfile::TempDir,
    state: ApiState,
    reloads: Arc<AtomicUsize>,
    clocks: SimulatedClocks,
}

fn in_process() -> InProcess {
    let dir = tempfile::tempdir().unwrap();
    let index_path = dir.path().join("index.db");
    drop(Index::open(&index_path).unwrap());
    // The audit writer needs the node key, which lives in the state dir.
    let config = CONFIG.replace("/nonexistent/state", dir.path().to_str().unwrap());
    let config = Config::parse_str(&config, Path::new("/nonexistent/custos.toml")).unwrap();
    let reloads = Arc::new(AtomicUsize::new(0));
    let r = reloads.clone();
    let reload: ReloadFn = Arc::new(move || {
        r.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    let clocks = SimulatedClocks::new(1_800_000_000_000_000);
    let state = ApiState::new(
        config,
        CameraStatuses::default(),
        Arc::new(clocks.clone()),
        index_path,
        reload,
        custos::retention::Leases::new(),
        custos::retention::StorageAlarms::new(),
        custos::clock::ClockGuard::new(),
    )
    .unwrap();
    InProcess {
        _dir: dir,
        state,
        reloads,
        clocks,
    }
}

fn peer(uid: u32) -> Peer {
    Peer {
        uid,
        gid: 0,
        pid: 4242,
        name: None,
        groups: vec![],
    }
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("v1".to_owned()),
        Just("cameras".to_owned()),
        Just("cam1".to_owned()),
        Just("recordings".to_owned()),
        Just("status".to_owned()),
        Just("audit".to_owned()),
        Just("verify".to_owned()),
        Just("retention".to_owned()),
        Just("plan".to_owned()),
        Just("config".to_owned()),
        Just("reload".to_owned()),
        Just("deletions".to_owned()),
        Just("..".to_owned()),
        Just("%2F".to_owned()),
        Just("".to_owned()),
        "[ -~]{0,12}",
        "\\PC{0,6}",
    ]
}

fn query() -> impl Strategy<Value = Option<String>> {
    let pair = prop_oneof![
        Just("reason=because".to_owned()),
        Just("from=2026-03-01+08:00".to_owned()),
        Just("to=2026-03-01T09:00:00Z".to_owned()),
        Just("limit=5".to_owned()),
        Just("uid=x".to_owned()),
        Just("checkpoint=1:00".to_owned()),
        "[a-z]{1,6}=[ -~]{0,10}",
        "[ -~]{0,16}",
    ];
    proptest::option::of(proptest::collection::vec(pair, 0..4).prop_map(|v| v.join("&")))
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(b"{}".to_vec()),
        Just(br#"{"reason": "x"}"#.to_vec()),
        Just(br#"{"reason": 1}"#.to_vec()),
        Just(br#"{"reason": "x", "extra": null}"#.to_vec()),
        Just(b"[1,2,3]".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

fn method() -> impl Strategy<Value = http::Method> {
    prop_oneof![
        Just(http::Method::GET),
        Just(http::Method::POST),
        Just(http::Method::PUT),
        Just(http::Method::DELETE),
        Just(http::Method::PATCH),
        Just(http::Method::HEAD),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Whatever arrives: no panic, no 5xx, a JSON error with kind and message
    /// for every 4xx, one audit entry per request, and the chain stays valid.
    #[test]
    fn any_request_gets_a_sound_reply_and_an_audit_entry(
        requests in proptest::collection::vec(
            (method(), proptest::collection::vec(segment(), 0..5), query(), body(),
             prop_oneof![Just(0u32), Just(2001u32), Just(2004u32), Just(3000u32)]),
            1..12,
        )
    ) {
        let ip = in_process();
        let before = ip.state.audit.head().seq;
        for (m, segs, q, b, uid) in &requests {
            let path = format!("/{}", segs.join("/"));
            let reply = routes::handle(&ip.state, &peer(*uid), Request {
                method: m,
                path: &path,
                query: q.as_deref(),
                body: b,
            });
            let status = reply.status.as_u16();
            prop_assert!(status < 500, "{m} {path}?{q:?}: {status} {}", reply.body);
            if status >= 400 {
                prop_assert!(reply.body["error"]["kind"].is_string(), "{}", reply.body);
                prop_assert!(reply.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
            } else {
                prop_assert!(reply.body.is_object());
                prop_assert!(*uid == 0 || *uid == 2001 || *uid == 2004, "uid {uid} without a role got {status}");
            }
        }
        // One outcome entry per request (state changes also wrote an intent).
        let outcomes = ip.state.audit
            .with_index(|ix| ix.audit_all())
            .unwrap()
            .into_iter()
            .filter(|e| e.seq > before && e.record.outcome != routes::INTENT)
            .count();
        prop_assert_eq!(outcomes, requests.len());
        let v = ip.state.audit.verify(None).unwrap();
        prop_assert!(v.ok(), "{:?}", v);
        let _ = ip.reloads.load(Ordering::SeqCst);
    }
}

#[test]
fn reload_is_signalled_only_after_it_is_audited_and_only_for_admins() {
    let ip = in_process();
    let post = http::Method::POST;
    let req = Request {
        method: &post,
        path: "/v1/config/reload",
        query: None,
        body: br#"{"reason": "new grant for anna"}"#,
    };
    let r = routes::handle(&ip.state, &peer(2001), req);
    assert_eq!(r.status.as_u16(), 403);
    assert_eq!(ip.reloads.load(Ordering::SeqCst), 0);
    let r = routes::handle(&ip.state, &peer(0), req);
    assert_eq!(r.status.as_u16(), 202, "{}", r.body);
    assert_eq!(ip.reloads.load(Ordering::SeqCst), 1);
    let last = ip
        .state
        .audit
        .with_index(|ix| ix.audit_entries(&Default::default()))
        .unwrap();
    // Newest first: the outcome, the intent written before the signal, and
    // the refusal (which did nothing, so it has no intent).
    for e in &last[..2] {
        assert_eq!(e.record.action, "config.reload");
        assert_eq!(e.record.reason, "new grant for anna");
        assert_eq!(e.record.uid, 0);
    }
    assert_eq!(last[0].record.outcome, "ok");
    assert_eq!(last[1].record.outcome, routes::INTENT);
    assert_eq!(last[2].record.outcome, "permission_denied");
}

/// A state change is audited before it acts: when its intent entry cannot
/// be written (a trigger makes every insert into `audit` fail), the reply
/// is 503 and nothing is done.
#[test]
fn a_state_change_whose_intent_cannot_be_audited_does_nothing() {
    let ip = in_process();
    let post = http::Method::POST;
    let index = Index::open(&ip.state.index_path).unwrap();
    index
        .tamper_for_tests(
            "CREATE TRIGGER no_audit BEFORE INSERT ON audit \
             BEGIN SELECT RAISE(ABORT, 'audit insert refused by the test'); END",
        )
        .unwrap();
    let open_case = Request {
        method: &post,
        path: "/v1/cases",
        query: None,
        body: br#"{"id": "c-1", "title": "t", "authority": "police", "authority_ref": "r-1", "legal_basis": "GDPR Art. 6(1)(c)"}"#,
    };
    let reload = Request {
        method: &post,
        path: "/v1/config/reload",
        query: None,
        body: b"",
    };
    // Cases are the evidence officer's; reloading is admin's (root's).
    for (req, uid) in [(open_case, EVIDENCE), (reload, 0)] {
        let r = routes::handle(&ip.state, &peer(uid), req);
        assert_eq!(r.status.as_u16(), 503, "{}: {}", req.path, r.body);
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("audit log cannot be written") && message.contains("nothing was done"),
            "{message}"
        );
    }
    assert!(index.cases().unwrap().is_empty(), "a case was opened");
    assert_eq!(
        ip.reloads.load(Ordering::SeqCst),
        0,
        "a reload was signalled"
    );
    assert_eq!(ip.state.audit.head().seq, 0);

    // Once the log can be written again, the same requests act, each
    // between its intent and its outcome.
    index.tamper_for_tests("DROP TRIGGER no_audit").unwrap();
    for (req, uid) in [(open_case, EVIDENCE), (reload, 0)] {
        let r = routes::handle(&ip.state, &peer(uid), req);
        assert!(r.status.is_success(), "{}: {}", req.path, r.body);
    }
    assert_eq!(index.cases().unwrap().len(), 1);
    assert_eq!(ip.reloads.load(Ordering::SeqCst), 1);
    let entries = index.audit_all().unwrap();
    let got: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.record.action.as_str(), e.record.outcome.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("cases.write", routes::INTENT),
            ("cases.write", "ok"),
            ("config.reload", routes::INTENT),
            ("config.reload", "ok"),
        ]
    );
    assert_eq!(entries[0].record.target, "case c-1");
    assert!(ip.state.audit.verify(None).unwrap().ok());
}

/// Verifying reads the chain outside the writer's lock: entries are
/// appended while a long chain is checked.
#[test]
fn appends_go_on_while_a_long_verify_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.db");
    {
        // A long chain, built fast: no fsync per entry.
        let mut index = Index::open(&path).unwrap();
        index.tamper_for_tests("PRAGMA synchronous = OFF").unwrap();
        for i in 0..100_000 {
            index.append_audit(&record(i), entry_hash).unwrap();
        }
    }
    let key = custos::export::NodeKey::load_or_create(dir.path()).unwrap();
    let log = Arc::new(AuditLog::open(Index::open(&path).unwrap(), key).unwrap());
    let verifying = {
        let log = log.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let v = log.verify(None).unwrap();
            (start, Instant::now(), v)
        })
    };
    let mut appended = Vec::new();
    while !verifying.is_finished() {
        log.append(record(0)).unwrap();
        appended.push(Instant::now());
    }
    let (start, end, v) = verifying.join().unwrap();
    assert!(v.ok(), "{v:?}");
    assert!(v.checked >= 100_000, "{v:?}");
    let during = appended.iter().filter(|t| **t > start && **t < end).count();
    assert!(
        during >= 3,
        "only {during} of {} appends were committed during the {:?} the verify took",
        appended.len(),
        end - start
    );
    assert!(log.verify(None).unwrap().ok());
}

fn record(i: i64) -> AuditRecord {
    AuditRecord {
        at_us: 1_800_000_000_000_000 + i,
        uid: 2004,
        user: "uid 2004".into(),
        pid: 4242,
        role: "dpo".into(),
        action: "audit.list".into(),
        target: "-".into(),
        reason: String::new(),
        outcome: "ok".into(),
    }
}

#[test]
fn a_jumped_clock_suspends_the_audit_purge_and_raises_an_alarm() {
    const YEAR_US: i64 = 365 * 86_400_000_000;
    let ip = in_process();
    let get = http::Method::GET;
    let status = |ip: &InProcess| {
        let r = routes::handle(
            &ip.state,
            &peer(0),
            Request {
                method: &get,
                path: "/v1/status",
                query: None,
                body: b"",
            },
        );
        assert_eq!(r.status.as_u16(), 200, "{}", r.body);
        r.body
    };
    let entries = |ip: &InProcess| {
        ip.state
            .audit
            .with_index(|ix| ix.audit_all())
            .unwrap()
            .len()
    };
    let gauge = |ip: &InProcess| {
        let m = ip.state.render_metrics().unwrap();
        m.lines()
            .find_map(|l| l.strip_prefix("custos_clock_implausible "))
            .map(str::to_owned)
    };
    assert!(status(&ip)["clock_alarm"].is_null());
    assert_eq!(ip.state.purge_audit().unwrap(), 0);
    assert_eq!(gauge(&ip).as_deref(), Some("0"));

    // Ten years ahead, a minute later: every entry would be past
    // audit.retention_years (3).
    ip.clocks.advance(Duration::from_secs(60));
    ip.clocks.step_wall(10 * YEAR_US);
    let before = entries(&ip);
    assert_eq!(ip.state.purge_audit().unwrap(), 0);
    assert_eq!(entries(&ip), before, "the purge ran on a clock that jumped");
    let alarm = &status(&ip)["clock_alarm"];
    let text = alarm["state"].as_str().unwrap();
    assert!(
        text.contains("jumped forward by 3650 days since") && text.contains("audit purge"),
        "{alarm}"
    );
    assert_eq!(gauge(&ip).as_deref(), Some("1"));
    // The retention plan, computed on this clock, says that no pass runs.
    let plan = routes::handle(
        &ip.state,
        &peer(0),
        Request {
            method: &get,
            path: "/v1/retention/plan",
            query: None,
            body: b"",
        },
    );
    assert_eq!(plan.status.as_u16(), 200, "{}", plan.body);
    assert_eq!(plan.body["clock_alarm"], *alarm);

    // Back where it was: plausible, the purge runs (nothing is old yet).
    ip.clocks.step_wall(-10 * YEAR_US);
    assert_eq!(ip.state.purge_audit().unwrap(), 0);
    assert!(status(&ip)["clock_alarm"].is_null());
    assert_eq!(gauge(&ip).as_deref(), Some("0"));

    // Booted in 2000 (nothing remembered): the entries already written say
    // the clock is wrong.
    let ip = in_process();
    status(&ip);
    ip.clocks
        .step_wall(946_684_800_000_000 - 1_800_000_000_000_000);
    assert_eq!(ip.state.purge_audit().unwrap(), 0);
    let text = status(&ip)["clock_alarm"]["state"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        text.starts_with("the wall clock reads 2000-01-01T00:00:00.000Z but audit entries up to 2027-01-15T08:00:00.000Z exist"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------
// Audit chain: any single change, deletion or reordering is detected

const N: i64 = 6;

/// An index holding `N` audit entries, and the head the writer remembers.
fn audit_fixture() -> (tempfile::TempDir, Index, Checkpoint) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.db");
    let key = custos::export::NodeKey::load_or_create(dir.path()).unwrap();
    let log = AuditLog::open(Index::open(&path).unwrap(), key).unwrap();
    for i in 1..=N {
        log.append(AuditRecord {
            at_us: 1_800_000_000_000_000 + i * 1_000_000,
            uid: 2000 + i as u32,
            user: format!("uid {}", 2000 + i),
            pid: 100 + i as i32,
            role: "dpo".into(),
            action: "audit.list".into(),
            target: "-".into(),
            reason: format!("check {i}"),
            outcome: "ok".into(),
        })
        .unwrap();
    }
    let head = log.head();
    assert_eq!(head.seq, N);
    drop(log);
    let index = Index::open(&path).unwrap();
    (dir, index, head)
}

fn first_break(index: &Index, head: &Checkpoint) -> Option<i64> {
    let v = verify(
        &index.audit_anchor().unwrap(),
        &index.audit_all().unwrap(),
        Some(head),
    );
    v.broken.map(|b| b.seq)
}

#[test]
fn an_intact_chain_verifies() {
    let (_d, index, head) = audit_fixture();
    assert_eq!(first_break(&index, &head), None);
}

#[test]
fn changing_any_field_of_any_entry_is_detected_at_that_entry() {
    let changes = [
        "at_us = at_us + 1",
        "uid = 0",
        "user = 'someone else'",
        "pid = 1",
        "role = 'admin'",
        "action = 'status'",
        "target = 'camera x'",
        "reason = ''",
        "outcome = 'permission_denied'",
        "hash = randomblob(32)",
        "prev_hash = randomblob(32)",
    ];
    for seq in 1..=N {
        for change in changes {
            let (_d, index, head) = audit_fixture();
            index
                .tamper_for_tests(&format!("UPDATE audit SET {change} WHERE seq = {seq}"))
                .unwrap();
            assert_eq!(
                first_break(&index, &head),
                Some(seq),
                "{change} on entry {seq}"
            );
        }
    }
}

#[test]
fn deleting_any_entry_is_detected() {
    for seq in 1..=N {
        let (_d, index, head) = audit_fixture();
        index
            .tamper_for_tests(&format!("DELETE FROM audit WHERE seq = {seq}"))
            .unwrap();
        // The last entry's removal is caught by the head (checkpoint).
        assert_eq!(first_break(&index, &head), Some(seq), "deleted {seq}");
    }
    // Truncation of the tail, with no head known, is invisible to the table
    // alone: that is what checkpoints in the journal are for.
    let (_d, index, _head) = audit_fixture();
    index
        .tamper_for_tests(&format!("DELETE FROM audit WHERE seq = {N}"))
        .unwrap();
    let v = verify(
        &index.audit_anchor().unwrap(),
        &index.audit_all().unwrap(),
        None,
    );
    assert!(v.ok());
}

#[test]
fn reordering_any_two_adjacent_entries_is_detected() {
    let cols = "at_us, uid, user, pid, role, action, target, reason, outcome, prev_hash, hash";
    for seq in 1..N {
        let (_d, index, head) = audit_fixture();
        // Swap every column but seq between entries seq and seq + 1.
        index
            .tamper_for_tests(&format!(
                "CREATE TEMP TABLE a AS SELECT {cols} FROM audit WHERE seq = {seq};
                 CREATE TEMP TABLE b AS SELECT {cols} FROM audit WHERE seq = {next};
                 UPDATE audit SET ({cols}) = (SELECT {cols} FROM b) WHERE seq = {seq};
                 UPDATE audit SET ({cols}) = (SELECT {cols} FROM a) WHERE seq = {next};",
                next = seq + 1
            ))
            .unwrap();
        assert_eq!(
            first_break(&index, &head),
            Some(seq),
            "swapped {seq} and {}",
            seq + 1
        );
        // Renumbering instead of swapping contents is caught too.
        let (_d, index, head) = audit_fixture();
        index
            .tamper_for_tests(&format!(
                "UPDATE audit SET seq = -1 WHERE seq = {seq};
                 UPDATE audit SET seq = {seq} WHERE seq = {next};
                 UPDATE audit SET seq = {next} WHERE seq = -1;",
                next = seq + 1
            ))
            .unwrap();
        assert_eq!(first_break(&index, &head), Some(seq), "renumbered {seq}");
    }
}

#[test]
fn purging_old_entries_keeps_the_rest_verifiable() {
    let (_d, mut index, head) = audit_fixture();
    // Entries 1..=3 are older than entry 4's time.
    let cutoff = 1_800_000_000_000_000 + 4 * 1_000_000;
    assert_eq!(index.purge_audit(cutoff, |_| vec![0; 64]).unwrap(), 3);
    let anchor = index.audit_anchor().unwrap();
    assert_eq!(anchor.seq, 3);
    assert_eq!(first_break(&index, &head), None);
    index
        .tamper_for_tests("UPDATE audit SET user = 'x' WHERE seq = 4")
        .unwrap();
    assert_eq!(first_break(&index, &head), Some(4));
}
