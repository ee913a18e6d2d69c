//! Evidence (RULES 001 §18, §31; 004 §9, §11): cases with validated ids and
//! review dates, holds that protect footage from age and disk-pressure
//! deletion and make verified, read-only case-linked copies, and closing a
//! case, which destroys the copies, releases the holds and journals it.
//! Real SQLite, real files, the real retention pass on a simulated clock.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use custos::ErrorKind;
use custos::clock::{ClockGuard, SimulatedClocks};
use custos::config::Config;
use custos::evidence::{self, CaseRequest, HoldRequest};
use custos::index::SharedIndex;
use custos::index::{DeletionReason, Index, SegmentId, SegmentState};
use custos::retention::{self, Context, DAY_US, Leases, StorageAlarms};
use support::daemon::files_under;

/// 2026-11-22T10:00:00Z.
const NOW: i64 = 1_795_341_600_000_000;
const SEG_US: i64 = 60_000_000;

struct Fixture {
    dir: tempfile::TempDir,
    root: PathBuf,
    config: Config,
    index: SharedIndex,
    leases: Arc<Leases>,
    alarms: Arc<StorageAlarms>,
}

impl Fixture {
    fn new(storage_extra: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let root = dir.path().join("recordings");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(dir.path().join("state")).unwrap();
        let text = format!(
            r#"timezone = "Europe/Vilnius"
[daemon]
state_dir = "{d}/state"
[controller]
name = "Test school"
registration_code = "190000000"
address = "Test street 1"
email = "info@example.org"
dpo = {{ email = "dpo@example.org" }}
[[storage]]
id = "main"
path = "{d}/recordings"
{storage_extra}
[evidence]
path = "{d}/evidence"
review_days_default = 30
review_days_max = 90
[[zone]]
id = "indoor"
name = "Indoor"
retention_days = 10
purposes = ["safety"]
legal_basis = "GDPR Art. 6(1)(e)"
processor = "The school"
[[camera]]
id = "hall"
name = "Hall"
zone = "indoor"
url = "rtsp://127.0.0.1:1/hall"
area = "Hall"
"#
        );
        let config = Config::parse_str(&text, &dir.path().join("custos.toml"))
            .unwrap_or_else(|e| panic!("{e:?}"));
        let index = SharedIndex::new(Index::open(&dir.path().join("state/index.db")).unwrap());
        Fixture {
            dir,
            root,
            config,
            index,
            leases: Leases::new(),
            alarms: StorageAlarms::new(),
        }
    }

    /// A complete segment `[end - SEG_US, end)` with a real file of `bytes`
    /// and its real hash in the index.
    fn segment(&self, end_us: i64, bytes: usize) -> SegmentId {
        let content: Vec<u8> = (0..bytes)
            .map(|i| (i * 7 + end_us as usize) as u8)
            .collect();
        support::index::put_segment(
            &self.index,
            &self.root,
            "hall",
            "indoor",
            end_us - SEG_US,
            end_us,
            &content,
        )
    }

    fn pass(&self, now: i64, free: Option<u64>) -> retention::PassReport {
        let clocks = SimulatedClocks::new(now);
        let free_bytes = move |_: &custos::config::StorageRoot| free;
        retention::pass(&Context {
            index: &self.index,
            config: &self.config,
            leases: &self.leases,
            alarms: &self.alarms,
            clocks: &clocks,
            guard: &ClockGuard::default(),
            free_bytes: &free_bytes,
            batch: 10,
            cancel: None,
        })
        .unwrap()
    }

    fn state(&self, id: SegmentId) -> Option<SegmentState> {
        self.index.lock().segment(id).unwrap().map(|r| r.state)
    }

    fn case(&self, id: &str, now: i64) -> custos::Result<custos::index::CaseRow> {
        evidence::create_case(
            &self.index,
            &self.config,
            &CaseRequest {
                id: id.into(),
                title: "Broken window".into(),
                authority: "Police".into(),
                authority_ref: "PD-1".into(),
                legal_basis: "GDPR Art. 6(1)(c)".into(),
                review_days: None,
            },
            "officer",
            now,
        )
    }

    fn evidence_dir(&self) -> PathBuf {
        self.dir.path().join("evidence")
    }
}

#[test]
fn a_hold_protects_its_range_its_copy_verifies_and_closing_destroys_it() {
    // Budget 1000 bytes; 5 × 400 bytes recorded: pressure from the start.
    let f = Fixture::new("budget = \"1000\"\ndestruction = \"overwrite\"");
    let t0 = NOW - 3 * DAY_US;
    let segs: Vec<SegmentId> = (1..=5).map(|i| f.segment(t0 + i * SEG_US, 400)).collect();
    f.case("2026-0042", NOW).unwrap();
    // Hold the 2nd and 3rd segments (a range reaching into both).
    let report = evidence::add_hold(
        &f.index,
        &f.config,
        &f.leases,
        &HoldRequest {
            case_id: "2026-0042".into(),
            camera: "hall".into(),
            from_us: t0 + SEG_US + 10,
            to_us: t0 + 3 * SEG_US - 10,
        },
        NOW,
    )
    .unwrap();
    assert_eq!(report.copies.len(), 2, "{report:#?}");
    assert!(report.missing.is_empty());

    // The copies: in <evidence>/<case>/, read-only, byte-identical to the
    // originals, verified against the index hashes.
    let case_dir = f.evidence_dir().join("2026-0042");
    for (c, seg) in report.copies.iter().zip(&segs[1..3]) {
        let copy = f.evidence_dir().join(&c.copy_path);
        assert!(copy.starts_with(&case_dir));
        assert_eq!(
            fs::metadata(&copy).unwrap().permissions().mode() & 0o777,
            0o400
        );
        let row = f.index.lock().segment(*seg).unwrap().unwrap();
        assert_eq!(
            fs::read(&copy).unwrap(),
            fs::read(f.root.join(&row.path)).unwrap()
        );
        assert_eq!(Some(c.sha256), row.sha256);
    }
    assert!(
        evidence::verify_copies(&f.index, &f.config, "2026-0042")
            .unwrap()
            .is_empty()
    );
    // A changed copy is caught.
    {
        let p = f.evidence_dir().join(&report.copies[0].copy_path);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let mut b = fs::read(&p).unwrap();
        b[10] ^= 1;
        fs::write(&p, &b).unwrap();
        assert_eq!(
            evidence::verify_copies(&f.index, &f.config, "2026-0042").unwrap(),
            vec![report.copies[0].copy_path.clone()]
        );
        b[10] ^= 1;
        fs::write(&p, &b).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o444)).unwrap();
    }

    // Disk pressure: every unheld segment goes, the held ones stay.
    let r = f.pass(NOW, Some(u64::MAX));
    assert_eq!(r.disk_pressure.segments, 3, "{r:?}");
    assert_eq!(f.state(segs[1]), Some(SegmentState::Complete));
    assert_eq!(f.state(segs[2]), Some(SegmentState::Complete));
    for gone in [segs[0], segs[3], segs[4]] {
        assert_eq!(f.state(gone), None);
    }
    // Age: 10-day ceiling long past; the held ones still stay.
    let later = NOW + 31 * DAY_US; // past the 30-day review date
    let r = f.pass(later, Some(u64::MAX));
    assert_eq!(r.retention.segments, 0, "{r:?}");
    assert_eq!(f.state(segs[1]), Some(SegmentState::Complete));

    // The review date is past: flagged.
    let st = evidence::case_status(&f.index, "2026-0042", later).unwrap();
    assert!(st.review_overdue);
    assert_eq!(st.copies, 2);
    assert!(
        !evidence::case_status(&f.index, "2026-0042", NOW)
            .unwrap()
            .review_overdue
    );
    // ... and a violation in the retention report.
    let rs = retention::status(&f.index.lock(), &f.config, &f.leases, later).unwrap();
    assert_eq!(rs.overdue_reviews, vec!["2026-0042".to_string()]);
    assert_eq!(rs.violations, 1, "{rs:#?}");
    let rs = retention::status(&f.index.lock(), &f.config, &f.leases, NOW).unwrap();
    assert_eq!(rs.violations, 0);

    // Closing needs a reason; then copies are destroyed, the directory goes,
    // the hold is released and the journal says case_closed.
    let e =
        evidence::close_case(&f.index, &f.config, "2026-0042", " ", "admin", later).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    let closed = evidence::close_case(
        &f.index,
        &f.config,
        "2026-0042",
        "court ruling final",
        "admin",
        later,
    )
    .unwrap();
    assert_eq!(closed.copies_destroyed, 2);
    assert_eq!(closed.holds_released, 1);
    assert_eq!(closed.bytes_destroyed, 800);
    assert!(!case_dir.exists());
    assert!(files_under(&f.evidence_dir()).is_empty());
    let journal = f.index.lock().deletion_journal(0, i64::MAX).unwrap();
    let row = journal
        .iter()
        .find(|d| d.reason == DeletionReason::CaseClosed)
        .unwrap_or_else(|| panic!("{journal:#?}"));
    assert_eq!(row.segments, 2);
    assert_eq!(row.actor, "admin");
    let st = evidence::case_status(&f.index, "2026-0042", later).unwrap();
    assert_eq!(st.case.status, "closed");
    assert!(!st.review_overdue, "a closed case is not overdue");
    let rs = retention::status(&f.index.lock(), &f.config, &f.leases, later).unwrap();
    assert!(rs.overdue_reviews.is_empty());
    assert!(st.holds.iter().all(|h| h.released_us == Some(later)));
    // Closed stays closed; no new holds.
    let e = evidence::close_case(&f.index, &f.config, "2026-0042", "again", "admin", later)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);

    // The released originals age out at the next pass.
    let r = f.pass(later, Some(u64::MAX));
    assert_eq!(r.retention.segments, 2, "{r:?}");
    assert!(files_under(&f.root).is_empty());
}

#[test]
fn a_hold_on_deleted_footage_says_so_and_holds_nothing() {
    let f = Fixture::new("");
    let seg = f.segment(NOW - 20 * DAY_US, 100);
    f.pass(NOW, None); // past the 10-day ceiling: deleted
    assert_eq!(f.state(seg), None);
    f.case("c1", NOW).unwrap();
    let e = evidence::add_hold(
        &f.index,
        &f.config,
        &f.leases,
        &HoldRequest {
            case_id: "c1".into(),
            camera: "hall".into(),
            from_us: NOW - 20 * DAY_US - SEG_US,
            to_us: NOW - 20 * DAY_US,
        },
        NOW,
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("already been deleted"), "{}", e.message);
    assert!(f.index.lock().case_holds("c1").unwrap().is_empty());

    // Part of the range missing: held, and the gap reported.
    let kept = f.segment(NOW - DAY_US, 100);
    let r = evidence::add_hold(
        &f.index,
        &f.config,
        &f.leases,
        &HoldRequest {
            case_id: "c1".into(),
            camera: "hall".into(),
            from_us: NOW - DAY_US - 2 * SEG_US,
            to_us: NOW - DAY_US,
        },
        NOW,
    )
    .unwrap();
    assert_eq!(r.copies.len(), 1);
    assert_eq!(
        r.missing,
        vec![(NOW - DAY_US - 2 * SEG_US, NOW - DAY_US - SEG_US)]
    );
    assert_eq!(f.state(kept), Some(SegmentState::Complete));
}

#[test]
fn unsafe_case_ids_are_refused_and_nothing_is_created() {
    let f = Fixture::new("");
    for bad in [
        "../x", "..", "a/b", "/etc", "x\ny", "x\u{7}", "tab\t", ".hidden", "",
    ] {
        let e = f.case(bad, NOW).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput, "{bad:?}");
    }
    assert!(f.index.lock().cases().unwrap().is_empty());
    assert!(!f.evidence_dir().exists() || files_under(&f.evidence_dir()).is_empty());
    // And a hold can never name one either.
    let e = evidence::add_hold(
        &f.index,
        &f.config,
        &f.leases,
        &HoldRequest {
            case_id: "../../recordings".into(),
            camera: "hall".into(),
            from_us: 0,
            to_us: 1,
        },
        NOW,
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    // A good id, once; never reused.
    f.case("2026-7", NOW).unwrap();
    assert_eq!(f.case("2026-7", NOW).unwrap_err().kind, ErrorKind::Conflict);
}

#[test]
fn review_dates_are_bounded_and_extending_needs_a_reason() {
    let f = Fixture::new("");
    let c = f.case("r1", NOW).unwrap();
    assert_eq!(c.review_us, NOW + 30 * DAY_US, "default from the config");
    let mut req = CaseRequest {
        id: "r2".into(),
        title: "t".into(),
        authority: "a".into(),
        authority_ref: "r".into(),
        legal_basis: "b".into(),
        review_days: Some(91),
    };
    let e = evidence::create_case(&f.index, &f.config, &req, "u", NOW).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    req.review_days = Some(90);
    evidence::create_case(&f.index, &f.config, &req, "u", NOW).unwrap();

    let e = evidence::extend_review(&f.index, &f.config, "r1", 60, "", "u", NOW).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    let e = evidence::extend_review(&f.index, &f.config, "r1", 120, "why", "u", NOW).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    let c = evidence::extend_review(&f.index, &f.config, "r1", 60, "trial postponed", "u", NOW)
        .unwrap();
    assert_eq!(c.review_us, NOW + 60 * DAY_US);
}

/// A review period no config allows (its date does not fit in 64 bits, and
/// used to wrap) is refused, not stored.
#[test]
fn a_review_date_out_of_range_is_an_error_not_a_wrapped_date() {
    let mut f = Fixture::new("");
    f.config.evidence.review_days_max = u32::MAX;
    let req = CaseRequest {
        id: "r3".into(),
        title: "t".into(),
        authority: "a".into(),
        authority_ref: "r".into(),
        legal_basis: "b".into(),
        review_days: Some(u32::MAX),
    };
    let e = evidence::create_case(&f.index, &f.config, &req, "u", NOW).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput, "{e}");
    assert!(f.index.lock().case("r3").unwrap().is_none());
    f.case("r4", NOW).unwrap();
    let e =
        evidence::extend_review(&f.index, &f.config, "r4", u32::MAX, "why", "u", NOW).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput, "{e}");
    let c = f.index.lock().case("r4").unwrap().unwrap();
    assert_eq!(c.review_us, NOW + 30 * DAY_US);
}

/// Through the real daemon's socket, as the evidence officer's uid: open a
/// case, hold recorded footage (copies made by the daemon), close it; the
/// close is audited with its reason and journalled as case_closed.
#[test]
fn through_the_api_the_evidence_officer_holds_and_closes_and_it_is_audited() {
    use support::api::{EVIDENCE, OPERATOR, ctl_as, ctl_json};

    let (_sim, site, _daemon, segs) = recording_site();
    let ts = support::api::rfc3339;
    let ctl = |args: &[&str]| {
        let o = ctl_as(&site, EVIDENCE, args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    ctl(&[
        "--json",
        "case",
        "open",
        "--id",
        "e-1",
        "--title",
        "Fight in the yard",
        "--authority",
        "Police",
        "--authority-ref",
        "PD-9",
        "--legal-basis",
        "GDPR Art. 6(1)(c)",
    ]);
    let (from, to) = (ts(segs[0].start_us), ts(segs[1].end_us.unwrap()));
    let held = ctl(&[
        "--json", "hold", "add", "--case", "e-1", "--camera", "cam1", "--from", &from, "--to", &to,
    ]);
    assert_eq!(
        held["hold"]["copies"].as_array().unwrap().len(),
        2,
        "{held}"
    );
    let case_dir = site.dir.path().join("evidence").join("e-1");
    assert_eq!(files_under(&case_dir).len(), 2);
    let shown = ctl(&["--json", "case", "show", "e-1"]);
    assert_eq!(shown["case"]["copies"], 2, "{shown}");
    // The copies verify; a changed byte in one is found and named.
    let verified = ctl(&["--json", "case", "verify", "e-1"]);
    assert_eq!(verified["copies"], 2, "{verified}");
    assert_eq!(
        verified["changed_or_missing"],
        serde_json::json!([]),
        "{verified}"
    );
    let copy = &files_under(&case_dir)[0];
    fs::set_permissions(copy, fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = fs::read(copy).unwrap();
    bytes[100] ^= 0x01;
    fs::write(copy, bytes).unwrap();
    let o = ctl_as(&site, EVIDENCE, &["case", "verify", "e-1"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let name = copy.file_name().unwrap().to_str().unwrap();
    assert!(
        out.contains("COPY CHANGED OR MISSING") && out.contains(name),
        "{out}"
    );
    // Closing destroys evidence: an operator may not.
    let o = ctl_as(&site, OPERATOR, &["case", "close", "e-1", "--reason", "x"]);
    assert_eq!(o.status.code(), Some(4));
    ctl(&[
        "--json",
        "case",
        "close",
        "e-1",
        "--reason",
        "court ruling final",
    ]);
    assert!(!case_dir.exists());

    let audit = ctl_json(&site, &["audit", "list", "--action", "cases.close"]);
    let entries = audit["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["uid"] == EVIDENCE
            && e["reason"] == "court ruling final"
            && e["outcome"] == "ok"
            && e["target"] == "case e-1"),
        "{audit:#}"
    );
    let deletions = ctl_json(&site, &["deletions"]);
    assert!(
        deletions["deletions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["reason"] == "case_closed" && d["segments"] == 2),
        "{deletions:#}"
    );

    // A case opened 40 days ago (default review 30 days) is overdue: the
    // daemon's status flags it for those who may read cases, as a violation.
    let config = Config::load(&site.config_path()).unwrap();
    let index = SharedIndex::new(Index::open(&site.index_path()).unwrap());
    let now = jiff::Timestamp::now().as_microsecond();
    evidence::create_case(
        &index,
        &config,
        &CaseRequest {
            id: "old-1".into(),
            title: "Forgotten case".into(),
            authority: "Police".into(),
            authority_ref: "PD-9".into(),
            legal_basis: "GDPR Art. 6(1)(c)".into(),
            review_days: None,
        },
        "officer",
        now - 40 * DAY_US,
    )
    .unwrap();
    let st = ctl(&["--json", "status"]);
    assert_eq!(
        st["overdue_reviews"],
        serde_json::json!(["old-1"]),
        "{st:#}"
    );
    let o = ctl_as(&site, EVIDENCE, &["status"]);
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        shown.contains("VIOLATION: case old-1 is past its review date"),
        "{shown}"
    );
    let o = ctl_as(&site, OPERATOR, &["--json", "status"]);
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        st["overdue_reviews"].is_null(),
        "operators see no cases: {st:#}"
    );
}

/// Closing a case while a hold is being added to it (each through a
/// connection of its own, as two API requests would): whichever wins, the
/// closed case keeps no active hold, no live copy row and no copy on disk,
/// and a hold that lost says so.
#[test]
fn a_hold_racing_the_close_of_its_case_leaves_nothing_behind() {
    let f = Fixture::new("destruction = \"overwrite\"");
    let t0 = NOW - DAY_US;
    for i in 1..=3 {
        f.segment(t0 + i * SEG_US, 4096);
    }
    let path = f.dir.path().join("state/index.db");
    let closer = SharedIndex::new(Index::open(&path).unwrap());
    let holder = SharedIndex::new(Index::open(&path).unwrap());
    let (mut held, mut lost, mut refused) = (0, 0, 0);
    for round in 0..200 {
        let case = format!("race-{round}");
        f.case(&case, NOW).unwrap();
        let go = Arc::new(std::sync::Barrier::new(2));
        let hold = {
            let (index, config, leases, go) = (
                holder.clone(),
                f.config.clone(),
                f.leases.clone(),
                go.clone(),
            );
            let req = HoldRequest {
                case_id: case.clone(),
                camera: "hall".into(),
                from_us: t0,
                to_us: t0 + 3 * SEG_US,
            };
            std::thread::spawn(move || {
                go.wait();
                evidence::add_hold(&index, &config, &leases, &req, NOW)
            })
        };
        go.wait();
        // Staggered starts, so the close lands before, during and after
        // each step of the hold across the rounds.
        std::thread::sleep(std::time::Duration::from_micros((round % 25) * 200));
        let closed = evidence::close_case(&closer, &f.config, &case, "race", "admin", NOW);
        let hold = hold.join().unwrap();
        closed.unwrap_or_else(|e| panic!("round {round}: the close failed: {e}"));
        let st = evidence::case_status(&f.index, &case, NOW).unwrap();
        match hold {
            Ok(_) => held += 1,
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::Conflict, "round {round}: {e}");
                if st.holds.is_empty() {
                    refused += 1;
                } else {
                    lost += 1;
                }
            }
        }
        assert_eq!(st.case.status, "closed", "round {round}");
        assert!(
            st.holds.iter().all(|h| h.released_us.is_some()),
            "round {round}: an active hold on a closed case: {:#?}",
            st.holds
        );
        assert_eq!(
            st.copies, 0,
            "round {round}: a live copy row of a closed case"
        );
        let left = files_under(&f.evidence_dir().join(&case));
        assert!(
            left.is_empty(),
            "round {round}: copies left on disk: {left:?}"
        );
    }
    eprintln!(
        "{held} holds made before the close, {lost} made but undone by it, {refused} refused"
    );
}

/// Every state change is audited before it acts (docs/design/security.md):
/// while the audit log cannot be written (a trigger refuses every insert
/// into `audit`), closing a case destroys no copy, adding a hold creates
/// none, and disabling a camera leaves it recording. Once the log works
/// again, the same requests act, each between its intent and its outcome.
#[test]
fn with_the_audit_log_unwritable_close_hold_and_camera_control_do_nothing() {
    use support::api::{EVIDENCE, OPERATOR, ctl_as, ctl_json};

    let (_sim, site, _daemon, segs) = recording_site();
    let ts = support::api::rfc3339;
    let ctl = |uid: u32, args: &[&str]| {
        let o = ctl_as(&site, uid, args);
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    support::api::open_case(&site, EVIDENCE, "e-1");
    let hold = |seg: &custos::index::SegmentRow| {
        ctl(
            EVIDENCE,
            &[
                "hold",
                "add",
                "--case",
                "e-1",
                "--camera",
                "cam1",
                "--from",
                &ts(seg.start_us),
                "--to",
                &ts(seg.end_us.unwrap()),
            ],
        )
    };
    let (ok, err) = hold(&segs[0]);
    assert!(ok, "{err}");
    let case_dir = site.dir.path().join("evidence").join("e-1");
    // One copy, or two if the next segment starts a tick before this ends.
    let copies = files_under(&case_dir);
    assert!(!copies.is_empty());
    let copy_bytes: Vec<Vec<u8>> = copies.iter().map(|c| fs::read(c).unwrap()).collect();

    let index = Index::open(&site.index_path()).unwrap();
    index
        .tamper_for_tests(
            "CREATE TRIGGER no_audit BEFORE INSERT ON audit \
             BEGIN SELECT RAISE(ABORT, 'audit insert refused by the test'); END",
        )
        .unwrap();
    let refused = |(ok, err): (bool, String)| {
        assert!(!ok, "acted without an audit entry");
        assert!(err.contains("audit log cannot be written"), "{err}");
    };
    refused(ctl(EVIDENCE, &["case", "close", "e-1", "--reason", "done"]));
    refused(hold(&segs[1]));
    refused(ctl(
        OPERATOR,
        &["camera", "disable", "cam1", "--reason", "test"],
    ));

    // The copy is intact and the case open with its one hold.
    assert_eq!(files_under(&case_dir), copies);
    for (c, bytes) in copies.iter().zip(&copy_bytes) {
        assert_eq!(&fs::read(c).unwrap(), bytes);
    }
    let ix = SharedIndex::new(Index::open(&site.index_path()).unwrap());
    let st = evidence::case_status(&ix, "e-1", 0).unwrap();
    assert_eq!(st.case.status, "open");
    assert_eq!(st.holds.len(), 1, "{:#?}", st.holds);
    assert_eq!(st.copies, copies.len());
    // The camera records on.
    let n = site
        .segments("cam1")
        .iter()
        .filter(|s| s.state == SegmentState::Complete)
        .count();
    site.wait_complete("cam1", n + 2, std::time::Duration::from_secs(30));

    index.tamper_for_tests("DROP TRIGGER no_audit").unwrap();
    let (ok, err) = ctl(EVIDENCE, &["case", "close", "e-1", "--reason", "done"]);
    assert!(ok, "{err}");
    assert!(!case_dir.exists());
    let log = ctl_json(&site, &["audit", "list", "--action", "cases.close"]);
    let outcomes: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["ok", "intent"], "newest first: {log:#}");
    let v = ctl_json(&site, &["audit", "verify"]);
    assert!(v["verification"]["broken"].is_null(), "{v:#}");
}

/// A copy is renamed into place and its directory fsynced before its row is
/// written. A daemon killed between the two (failpoint) leaves the copy's
/// file and no row; the next hold of the range records the copy again
/// rather than taking the unrecorded file for one made earlier.
#[test]
fn a_crash_between_a_copy_and_its_row_is_mended_by_the_next_hold() {
    use support::api::{EVIDENCE, ctl_as, wait_socket};
    use support::daemon::Daemon;

    let (_sim, site, daemon, segs) = recording_site();
    let ts = support::api::rfc3339;
    let ctl = |args: &[&str]| {
        let o = ctl_as(&site, EVIDENCE, args);
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    support::api::open_case(&site, EVIDENCE, "e-1");
    assert!(
        daemon
            .terminate(std::time::Duration::from_secs(20))
            .success()
    );

    // Mid-segment bounds: exactly these two overlap the range, whatever
    // ticks their neighbours share.
    let mid = |s: &custos::index::SegmentRow| ts((s.start_us + s.end_us.unwrap()) / 2);
    let (from, to) = (mid(&segs[0]), mid(&segs[1]));
    let hold = [
        "hold", "add", "--case", "e-1", "--camera", "cam1", "--from", &from, "--to", &to,
    ];
    let mut daemon = Daemon::start_with_failpoint(&site, Some("evidence-copy-before-row"));
    wait_socket(&site);
    let (ok, _) = ctl(&hold);
    assert!(!ok, "the daemon should have died at the failpoint");
    let status = daemon.wait(std::time::Duration::from_secs(20));
    assert!(!status.success(), "{}", site.log());
    assert!(
        site.log()
            .contains("failpoint evidence-copy-before-row reached")
    );
    let case_dir = site.dir.path().join("evidence").join("e-1");
    let left = files_under(&case_dir);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(
        left[0].extension().unwrap(),
        "mp4",
        "renamed into place: {left:?}"
    );
    let ix = SharedIndex::new(Index::open_read_only(&site.index_path()).unwrap());
    assert_eq!(ix.lock().case_copies("e-1").unwrap().len(), 0);

    let _daemon = Daemon::start(&site);
    wait_socket(&site);
    let o = ctl_as(&site, EVIDENCE, &[&["--json"][..], &hold].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let held: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        held["hold"]["copies"].as_array().unwrap().len(),
        2,
        "{held:#}"
    );
    assert_eq!(files_under(&case_dir).len(), 2);
    let config = Config::load(&site.config_path()).unwrap();
    let bad = evidence::verify_copies(&ix, &config, "e-1").unwrap();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(ix.lock().case_copies("e-1").unwrap().len(), 2);
}

/// The order of the durable steps of a copy, as the kernel sees them
/// (strace on the running daemon): the copy is renamed into place, its
/// case directory fsynced, and only then is its row committed (the WAL's
/// sync). A crash after the commit cannot lose the copy's name.
#[test]
fn a_copy_is_durable_in_its_directory_before_its_row_commits() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use support::api::{EVIDENCE, ctl_as};

    let (_sim, site, daemon, segs) = recording_site();
    let ts = support::api::rfc3339;
    let ctl = |args: &[&str]| {
        let o = ctl_as(&site, EVIDENCE, args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    support::api::open_case(&site, EVIDENCE, "e-1");

    let trace = site.dir.path().join("strace.txt");
    let mut strace = Command::new("strace")
        .args([
            "-f",
            "-y",
            "-e",
            "trace=rename,renameat,renameat2,fsync,fdatasync",
            "-o",
        ])
        .arg(&trace)
        .args(["-p", &daemon.pid().to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("this test needs strace (apt-get install strace)");
    // Attached once strace says so for the daemon's threads.
    let mut stderr = BufReader::new(strace.stderr.take().unwrap());
    let (mut line, mut said) = (String::new(), String::new());
    while !line.contains("attached") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "strace could not attach to the daemon (it needs ptrace): {said}"
        );
        said.push_str(&line);
    }
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Mid-segment bounds: exactly these two overlap the range, whatever
    // ticks their neighbours share.
    let mid = |s: &custos::index::SegmentRow| ts((s.start_us + s.end_us.unwrap()) / 2);
    let (from, to) = (mid(&segs[0]), mid(&segs[1]));
    ctl(&[
        "hold", "add", "--case", "e-1", "--camera", "cam1", "--from", &from, "--to", &to,
    ]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(strace.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    strace.wait().unwrap();

    let case_dir = site.dir.path().join("evidence").join("e-1");
    let case_dir = format!("<{}>", case_dir.canonicalize().unwrap().display());
    let text = fs::read_to_string(&trace).unwrap();
    // "TID  call(...) = result"; strace pads the TID.
    let lines: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(tid, call)| (tid, call.trim_start()))
        .collect();
    let mut checked = 0;
    for (i, (tid, call)) in lines.iter().enumerate() {
        let renamed_copy = call.starts_with("rename")
            && call.contains("/evidence/e-1/")
            && call.contains(".mp4\"")
            && call.contains(".mp4.tmp\"");
        if !renamed_copy {
            continue;
        }
        // What this thread made durable next.
        let syncs: Vec<&str> = lines[i + 1..]
            .iter()
            .filter(|(t, _)| t == tid)
            .map(|(_, c)| *c)
            .take_while(|c| !c.starts_with("rename"))
            .filter(|c| c.starts_with("fsync") || c.starts_with("fdatasync"))
            .collect();
        let dir = syncs.iter().position(|c| c.contains(&case_dir));
        let wal = syncs.iter().position(|c| c.contains("index.db-wal>"));
        assert!(
            matches!((dir, wal), (Some(d), Some(w)) if d < w),
            "after {call}, thread {tid} synced {syncs:#?}: the case directory must be \
             fsynced before the copy's row is committed"
        );
        checked += 1;
    }
    assert_eq!(checked, 2, "both copies' renames traced:\n{text}");
}

/// custosd recording `cam1` in 2 s segments with the API's test grants, and
/// its first complete segments (at least two).
fn recording_site() -> (
    custos::sim::Simulator,
    support::daemon::Site,
    support::daemon::Daemon,
    Vec<custos::index::SegmentRow>,
) {
    let (sim, site) = support::daemon::simulated_site(&["cam1"], 2);
    let daemon = support::api::start(&site, "");
    let segs = site
        .wait_complete("cam1", 2, std::time::Duration::from_secs(60))
        .into_iter()
        .filter(|s| s.state == SegmentState::Complete)
        .collect();
    (sim, site, daemon, segs)
}
