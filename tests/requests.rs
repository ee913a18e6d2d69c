//! Data-subject requests (RULES "Rights of the people recorded"; 001 §32-35;
//! 004 §17, §24-32; 000 §29): the register and its deadlines, erasure
//! (refused for held footage, naming the case), restriction against age and
//! pressure deletion, the access answer with the past year's recipients,
//! overdue requests as violations, and the dpo role alone reaching it. Real
//! SQLite, real files, the real retention pass on a simulated clock; then
//! the real custosd and custosctl as real uids.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use custos::clock::{ClockGuard, SimulatedClocks};
use custos::config::Config;
use custos::index::{DeletionReason, Index, NewDisclosure, SegmentId, SharedIndex};
use custos::notice::Language;
use custos::requests::{self, Kind, Outcome, Registration, Standing};
use custos::retention::{self, Context, DAY_US, Leases, StorageAlarms};
use custos::{ErrorKind, evidence};
use support::api::{ADMIN, DPO, EVIDENCE, OPERATOR, VIEWER, ctl_as, ctl_json, start};
use support::daemon::simulated_site;

/// 2027-01-31T10:00:00Z (12:00 in Vilnius).
const RECEIVED: i64 = 1_801_389_600_000_000;
const MIN_US: i64 = 60_000_000;

struct Fixture {
    _dir: tempfile::TempDir,
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
dpo = {{ name = "D. Pareigūnė", email = "dpo@example.org" }}
[[storage]]
id = "main"
path = "{d}/recordings"
destruction = "overwrite"
{storage_extra}
[evidence]
path = "{d}/evidence"
[requests]
max_window = "2h"
personal_data_days = 365
[[zone]]
id = "indoor"
name = "Indoor"
retention_days = 10
purposes = ["safety of pupils"]
legal_basis = "GDPR Art. 6(1)(e)"
processor = "The school"
[[camera]]
id = "hall"
name = "Hall"
zone = "indoor"
url = "rtsp://127.0.0.1:1/hall"
area = "Main hall"
[[camera]]
id = "gate"
name = "Gate"
zone = "indoor"
url = "rtsp://127.0.0.1:1/gate"
area = "School gate"
"#
        );
        let config = Config::parse_str(&text, &dir.path().join("custos.toml"))
            .unwrap_or_else(|e| panic!("{e:?}"));
        let index = SharedIndex::new(Index::open(&dir.path().join("state/index.db")).unwrap());
        Fixture {
            _dir: dir,
            root,
            config,
            index,
            leases: Leases::new(),
            alarms: StorageAlarms::new(),
        }
    }

    /// A complete one-minute segment of `camera` ending at `end_us`, 400 bytes.
    fn segment(&self, camera: &str, end_us: i64) -> SegmentId {
        let content: Vec<u8> = (0..400).map(|i| (i * 7 + end_us as usize) as u8).collect();
        support::index::put_segment(
            &self.index,
            &self.root,
            camera,
            "indoor",
            end_us - MIN_US,
            end_us,
            &content,
        )
    }

    fn exists(&self, id: SegmentId) -> bool {
        self.index.lock().segment(id).unwrap().is_some()
    }

    fn file(&self, id: SegmentId) -> PathBuf {
        self.root
            .join(self.index.lock().segment(id).unwrap().unwrap().path)
    }

    fn register(
        &self,
        kind: Kind,
        cameras: &[&str],
        from_us: i64,
        to_us: i64,
        received: i64,
    ) -> custos::Result<custos::index::RequestRow> {
        requests::register(
            &self.index,
            &self.config,
            &Registration {
                kind,
                reference: Some("DS-2027/14".into()),
                received_us: received,
                requester: "Jonas Jonaitis".into(),
                contact: "jonas@example.lt".into(),
                description: Some("red jacket".into()),
                identity_check: "passport shown at the front desk".into(),
                verified_by: "R. Petraitė".into(),
                cameras: cameras.iter().map(|c| c.to_string()).collect(),
                from_us,
                to_us,
            },
            "dpo",
            received,
        )
    }

    fn pass(&self, now: i64) -> retention::PassReport {
        let clocks = SimulatedClocks::new(now);
        let free_bytes = |_: &custos::config::StorageRoot| None;
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
}

#[test]
fn the_last_day_is_one_calendar_month_later_and_an_extension_adds_two_at_most() {
    let f = Fixture::new("");
    let window = (RECEIVED - 3 * DAY_US, RECEIVED - 3 * DAY_US + 30 * MIN_US);
    // Received 31 January 2027: due the last day of February.
    let r = f
        .register(Kind::Access, &["hall"], window.0, window.1, RECEIVED)
        .unwrap();
    assert_eq!(r.id, "R-2027-0001");
    assert_eq!(r.due_date, "2027-02-28");
    // 31 January of a leap year: 29 February.
    let leap = RECEIVED + 365 * DAY_US; // 2028-01-31
    let r2 = f
        .register(Kind::Access, &["hall"], window.0, window.1, leap)
        .unwrap();
    assert_eq!(
        (r2.id.as_str(), r2.due_date.as_str()),
        ("R-2028-0001", "2028-02-29")
    );

    // The requester must be told within the first month.
    let err = requests::extend(
        &f.index,
        &f.config,
        &r.id,
        2,
        "12 cameras",
        "2027-03-01",
        "dpo",
        RECEIVED + 40 * DAY_US,
    )
    .unwrap_err();
    assert!(err.to_string().contains("004 §32"), "{err}");
    let err = requests::extend(
        &f.index,
        &f.config,
        &r.id,
        3,
        "12 cameras",
        "2027-02-10",
        "dpo",
        RECEIVED + 11 * DAY_US,
    )
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    // Two more months from receipt: 30 April (not 28 April).
    let r = requests::extend(
        &f.index,
        &f.config,
        &r.id,
        2,
        "12 cameras to review",
        "2027-02-10",
        "dpo",
        RECEIVED + 11 * DAY_US,
    )
    .unwrap();
    assert_eq!(r.extended_to.as_deref(), Some("2027-04-30"));
    // Once only.
    let err = requests::extend(
        &f.index,
        &f.config,
        &r.id,
        1,
        "more",
        "2027-02-10",
        "dpo",
        RECEIVED + 12 * DAY_US,
    )
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
    let st = requests::status(&f.index, &f.config, &r.id, RECEIVED + 12 * DAY_US).unwrap();
    assert_eq!(st.last_day, "2027-04-30");
    assert!(st.events.iter().any(|e| e.kind == "extended"));
}

#[test]
fn a_window_wider_than_the_maximum_or_an_unknown_camera_is_refused_with_the_reason() {
    let f = Fixture::new("");
    let from = RECEIVED - DAY_US;
    let err = f
        .register(
            Kind::Access,
            &["hall"],
            from,
            from + 2 * 3600 * 1_000_000 + 1,
            RECEIVED,
        )
        .unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(
        msg.contains("000 §29") && msg.contains("requests.max_window") && msg.contains("2h"),
        "{msg}"
    );
    // Exactly the maximum is allowed.
    f.register(
        Kind::Access,
        &["hall"],
        from,
        from + 2 * 3600 * 1_000_000,
        RECEIVED,
    )
    .unwrap();
    let err = f
        .register(Kind::Access, &["yard"], from, from + MIN_US, RECEIVED)
        .unwrap_err();
    assert!(
        err.to_string().contains("hall") && err.to_string().contains("gate"),
        "{err}"
    );
    // A copy of an identity document does not fit in the register.
    let mut long = Registration {
        kind: Kind::Access,
        reference: None,
        received_us: RECEIVED,
        requester: "J".into(),
        contact: "j@example.lt".into(),
        description: None,
        identity_check: "x".repeat(10_000),
        verified_by: "R".into(),
        cameras: vec!["hall".into()],
        from_us: from,
        to_us: from + MIN_US,
    };
    let err = requests::register(&f.index, &f.config, &long, "dpo", RECEIVED).unwrap_err();
    assert!(err.to_string().contains("never a document"), "{err}");
    long.identity_check = "ID card".into();
    long.received_us = RECEIVED + DAY_US;
    let err = requests::register(&f.index, &f.config, &long, "dpo", RECEIVED).unwrap_err();
    assert!(err.to_string().contains("future"), "{err}");
}

#[test]
fn erasure_destroys_files_and_rows_journals_them_and_keeps_held_footage_naming_the_case() {
    let f = Fixture::new("");
    let t0 = RECEIVED - 2 * DAY_US;
    // Ten one-minute segments of the hall; the window covers the 3rd to 8th.
    let segs: Vec<SegmentId> = (1..=10)
        .map(|i| f.segment("hall", t0 + i * MIN_US))
        .collect();
    let gate = f.segment("gate", t0 + 5 * MIN_US);
    let (from, to) = (t0 + 2 * MIN_US + 1, t0 + 8 * MIN_US - 1);
    // A case holds the 4th minute.
    evidence::create_case(
        &f.index,
        &f.config,
        &evidence::CaseRequest {
            id: "2027-0007".into(),
            title: "Fight".into(),
            authority: "Police".into(),
            authority_ref: "PD-7".into(),
            legal_basis: "GDPR Art. 6(1)(c)".into(),
            review_days: None,
        },
        "officer",
        RECEIVED,
    )
    .unwrap();
    evidence::add_hold(
        &f.index,
        &f.config,
        &f.leases,
        &evidence::HoldRequest {
            case_id: "2027-0007".into(),
            camera: "hall".into(),
            from_us: t0 + 3 * MIN_US + 10,
            to_us: t0 + 4 * MIN_US - 10,
        },
        RECEIVED,
    )
    .unwrap();
    let r = f
        .register(Kind::Erasure, &["hall"], from, to, RECEIVED)
        .unwrap();
    // An access request cannot erase.
    let access = f
        .register(Kind::Access, &["hall"], from, to, RECEIVED)
        .unwrap();
    let err =
        requests::erase(&f.index, &f.config, &f.leases, &access.id, "dpo", RECEIVED).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");

    let files: Vec<PathBuf> = segs.iter().map(|s| f.file(*s)).collect();
    let report = requests::erase(
        &f.index,
        &f.config,
        &f.leases,
        &r.id,
        "dpo",
        RECEIVED + MIN_US,
    )
    .unwrap();
    // Segments 3..=8 overlap the window; the 4th is held.
    let erased: Vec<usize> = vec![2, 4, 5, 6, 7];
    for (i, s) in segs.iter().enumerate() {
        let gone = erased.contains(&i);
        assert_eq!(!f.exists(*s), gone, "segment {}", i + 1);
        assert_eq!(!files[i].exists(), gone, "file of segment {}", i + 1);
    }
    assert!(f.exists(gate), "another camera is untouched");
    assert_eq!(report.erased.len(), 1, "{report:#?}");
    assert_eq!(report.erased[0].segments, 5);
    assert_eq!(report.erased[0].bytes, 5 * 400);
    assert_eq!(report.kept.len(), 1, "{report:#?}");
    assert_eq!(report.kept[0].case.as_deref(), Some("2027-0007"));
    assert!(report.kept[0].why.contains("004 §29"), "{report:#?}");

    // Journalled as erasure, by the DPO, for the request.
    let journal = f.index.lock().deletion_journal(0, i64::MAX).unwrap();
    assert_eq!(journal.len(), 1, "{journal:#?}");
    let j = &journal[0];
    assert_eq!(
        (j.reason, j.actor.as_str(), j.segments),
        (DeletionReason::Erasure, "dpo", 5)
    );
    assert_eq!(j.request_id.as_deref(), Some(r.id.as_str()));
    // The request records both; the answer letter states both.
    let st = requests::status(&f.index, &f.config, &r.id, RECEIVED + MIN_US).unwrap();
    let kinds: Vec<&str> = st.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["erased", "erasure_refused"]);
    let findings =
        requests::access::findings(&f.index, &f.config, &r.id, RECEIVED + MIN_US).unwrap();
    let md = &requests::letter::render(&findings, &f.config, Language::En)[1].contents;
    assert!(md.contains("were erased on 2027-01-31"), "{md}");
    assert!(
        md.contains("were not erased: they are needed for legal proceedings"),
        "{md}"
    );
    assert!(md.contains("erased at a data subject's request"), "{md}");
    // Erasing again finds only the held minute.
    let again = requests::erase(
        &f.index,
        &f.config,
        &f.leases,
        &r.id,
        "dpo",
        RECEIVED + 2 * MIN_US,
    )
    .unwrap();
    assert!(
        again.erased.is_empty() && again.kept.len() == 1,
        "{again:#?}"
    );
}

#[test]
fn a_restriction_protects_its_range_from_age_and_pressure_until_lifted() {
    // A budget of 1200 bytes with 6 × 400 recorded: pressure from the start.
    let f = Fixture::new("budget = \"1200\"");
    let t0 = RECEIVED - 20 * DAY_US; // past the 10-day ceiling
    let old: Vec<SegmentId> = (1..=3)
        .map(|i| f.segment("hall", t0 + i * MIN_US))
        .collect();
    let recent: Vec<SegmentId> = (1..=3)
        .map(|i| f.segment("hall", RECEIVED - DAY_US + i * MIN_US))
        .collect();
    let r = f
        .register(
            Kind::Restriction,
            &["hall"],
            t0 + MIN_US + 1,
            t0 + 2 * MIN_US - 1,
            RECEIVED,
        )
        .unwrap();
    let r2 = f
        .register(
            Kind::Restriction,
            &["hall"],
            RECEIVED - DAY_US + MIN_US + 1,
            RECEIVED - DAY_US + 2 * MIN_US - 1,
            RECEIVED,
        )
        .unwrap();
    let lifted =
        requests::restrict(&f.index, &r.id, "accuracy contested", "dpo", RECEIVED).unwrap();
    requests::restrict(&f.index, &r2.id, "accuracy contested", "dpo", RECEIVED).unwrap();
    assert_eq!(lifted.len(), 1);

    let report = f.pass(RECEIVED);
    // Age: the two unrestricted old segments go; the restricted one stays.
    assert!(
        f.exists(old[1]),
        "restricted footage past its ceiling is kept"
    );
    assert!(!f.exists(old[0]) && !f.exists(old[2]));
    // Pressure: 4 × 400 left > 1200; the oldest unrestricted segment goes
    // (the first recent one), never the restricted ones before it.
    assert!(
        f.exists(recent[1]),
        "restricted footage is never taken for space"
    );
    assert!(!f.exists(recent[0]), "{report:#?}");
    assert!(report.disk_pressure.segments >= 1, "{report:#?}");
    // Retention status shows the restriction.
    let status = retention::status(&f.index.lock(), &f.config, &f.leases, RECEIVED).unwrap();
    let cam = &status.zones[0].cameras[0];
    assert!(!cam.protected_by.is_empty(), "{cam:#?}");

    // Lifted with a reason: the next pass deletes it by age.
    let row = requests::lift(
        &f.index,
        &r.id,
        lifted[0].id,
        "the date was corrected",
        "dpo",
        RECEIVED + DAY_US,
    )
    .unwrap();
    assert_eq!(row.lift_reason.as_deref(), Some("the date was corrected"));
    let err = requests::lift(&f.index, &r2.id, lifted[0].id, "x", "dpo", RECEIVED).unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::NotFound,
        "another request's restriction: {err}"
    );
    f.pass(RECEIVED + DAY_US);
    assert!(!f.exists(old[1]), "deleted once the restriction was lifted");
    assert!(
        f.exists(recent[1]),
        "the other request's restriction still holds"
    );
}

#[test]
fn the_access_answer_lists_exactly_the_recipients_of_the_past_year_and_what_was_deleted() {
    let f = Fixture::new("");
    // The event: 10:00-10:30 local on 20 January 2027.
    let from = RECEIVED - 11 * DAY_US - 2 * 3600 * 1_000_000;
    let to = from + 30 * MIN_US;
    for i in 1..=30 {
        f.segment("hall", from + i * MIN_US);
    }
    let disclose = |camera: &str, at_us: i64, f_us: i64, t_us: i64, recipient: &str| {
        let ix = f.index.lock();
        ix.record_disclosure(&NewDisclosure {
            at_us,
            case_id: None,
            camera,
            from_us: f_us,
            to_us: t_us,
            recipient,
            legal_basis: "GDPR Art. 6(1)(c)",
            reason: "investigation",
            by_user: "officer",
            by_uid: 2003,
            files: "[]",
            manifest_sha256: &[0; 32],
        })
        .unwrap();
    };
    // (Footage of a year ago cannot overlap this window; the register's
    // own age is what is filtered, so the old row names this window too.)
    disclose("hall", RECEIVED - 400 * DAY_US, from, to, "Old recipient");
    disclose(
        "hall",
        RECEIVED - 5 * DAY_US,
        from + MIN_US,
        from + 5 * MIN_US,
        "Vilnius police",
    );
    disclose(
        "gate",
        RECEIVED - 4 * DAY_US,
        from,
        to,
        "Other camera's recipient",
    );
    disclose(
        "hall",
        RECEIVED - 3 * DAY_US,
        to + MIN_US,
        to + 9 * MIN_US,
        "Other time's recipient",
    );
    disclose(
        "hall",
        RECEIVED - DAY_US,
        from + 20 * MIN_US,
        to + 20 * MIN_US,
        "Insurer UAB Draudimas",
    );
    let r = f
        .register(Kind::Access, &["hall"], from, to, RECEIVED)
        .unwrap();
    // Ten days later part of it is past the ceiling and deleted.
    f.pass(from + 10 * DAY_US + 10 * MIN_US + 1);
    let now = RECEIVED + DAY_US;
    let findings = requests::access::findings(&f.index, &f.config, &r.id, now).unwrap();
    let cam = &findings.cameras[0];
    let recipients: Vec<&str> = cam.disclosed.iter().map(|d| d.recipient.as_str()).collect();
    assert_eq!(recipients, ["Insurer UAB Draudimas", "Vilnius police"]);
    assert_eq!(cam.retention_days, 10);
    assert_eq!(cam.legal_basis, "GDPR Art. 6(1)(e)");
    assert_eq!(cam.deleted.len(), 1, "{:#?}", cam.deleted);
    assert_eq!(cam.deleted[0].reason, DeletionReason::Retention);
    let left: u64 = cam.footage.iter().map(|s| s.segments).sum();
    assert_eq!(left + cam.deleted[0].segments, 30);

    for (lang, deleted) in [
        (Language::En, "10-day retention period had ended"),
        (Language::Lt, "10 d. saugojimo terminas"),
        (Language::Lv, "10 dienu glabāšanas termiņš"),
    ] {
        let docs = requests::letter::render(&findings, &f.config, lang);
        assert_eq!(docs[0].file_name, "answer-R-2027-0001.html");
        for d in &docs {
            assert!(d.contents.contains("Vilnius police"), "{}", d.contents);
            assert!(d.contents.contains("Insurer UAB Draudimas"));
            for absent in ["Old recipient", "Other camera", "Other time"] {
                assert!(!d.contents.contains(absent), "{absent} in {}", d.contents);
            }
            assert!(d.contents.contains(deleted), "{}", d.contents);
            assert!(d.contents.contains("Jonas Jonaitis"));
            assert!(d.contents.contains("dpo@example.org"));
            assert!(d.contents.contains("safety of pupils"));
        }
    }
    // Values are escaped: a recipient cannot inject markup.
    disclose("hall", RECEIVED, from, to, "<script>x</script>");
    let findings = requests::access::findings(&f.index, &f.config, &r.id, now).unwrap();
    let html = &requests::letter::render(&findings, &f.config, Language::En)[0].contents;
    assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
}

#[test]
fn an_open_request_past_its_last_day_is_overdue_and_closing_then_purging_keeps_the_record() {
    let f = Fixture::new("");
    let from = RECEIVED - DAY_US;
    let r = f
        .register(Kind::Objection, &["gate"], from, from + MIN_US, RECEIVED)
        .unwrap();
    let soon = RECEIVED + 25 * DAY_US; // 25 February
    let late = RECEIVED + 29 * DAY_US; // 1 March, 12:00 local
    let ix = || f.index.lock();
    assert_eq!(
        requests::deadlines(&ix(), &f.config, RECEIVED)
            .unwrap()
            .open,
        1
    );
    let d = requests::deadlines(&ix(), &f.config, soon).unwrap();
    assert_eq!(d.due_soon, [(r.id.clone(), "2027-02-28".to_owned())]);
    let d = requests::deadlines(&ix(), &f.config, late).unwrap();
    assert_eq!(d.overdue, [(r.id.clone(), "2027-02-28".to_owned())]);
    let st = requests::status(&f.index, &f.config, &r.id, late).unwrap();
    assert_eq!(st.standing, Some(Standing::Overdue { days_over: 1 }));

    // An objection's decision, then the answer.
    requests::decide_objection(
        &f.index,
        &r.id,
        false,
        "the safety of pupils prevails",
        "dpo",
        late,
    )
    .unwrap();
    requests::close(
        &f.index,
        &r.id,
        Outcome::Answered,
        "letter sent 2027-03-01",
        "dpo",
        late,
    )
    .unwrap();
    assert!(
        requests::deadlines(&ix(), &f.config, late)
            .unwrap()
            .overdue
            .is_empty()
    );
    let err = requests::restrict(&f.index, &r.id, "late", "dpo", late).unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::Conflict,
        "a closed request takes no more acts: {err}"
    );

    // personal_data_days after closing, the requester's data goes; the rest stays.
    assert!(
        requests::purge_personal_data(&f.index, &f.config, late + 364 * DAY_US)
            .unwrap()
            .is_empty()
    );
    let purged = requests::purge_personal_data(&f.index, &f.config, late + 366 * DAY_US).unwrap();
    assert_eq!(purged, std::slice::from_ref(&r.id));
    let row = f.index.lock().request(&r.id).unwrap().unwrap();
    assert_eq!(
        (row.requester, row.contact, row.description),
        (None, None, None)
    );
    assert_eq!(row.status, "answered");
    assert_eq!(row.kind, "objection");
    assert!(row.purged_us.is_some());
}

#[test]
fn the_compliance_report_states_the_figures_of_the_site_each_with_its_clause() {
    use custos::audit::{Break, Verification};
    use custos::compliance::{self, State};
    let f = Fixture::new("");
    let now = RECEIVED + 40 * DAY_US; // 12 March 2027
    // Footage: the oldest 15 days back and protected by nothing, so past the
    // 10-day ceiling (no pass has run): a violation.
    let oldest = f.segment("hall", now - 15 * DAY_US);
    f.segment("hall", now - DAY_US);
    // A case whose review date has passed.
    evidence::create_case(
        &f.index,
        &f.config,
        &evidence::CaseRequest {
            id: "2027-0009".into(),
            title: "Graffiti".into(),
            authority: "Police".into(),
            authority_ref: "PD-9".into(),
            legal_basis: "GDPR Art. 6(1)(c)".into(),
            review_days: Some(7),
        },
        "officer",
        RECEIVED,
    )
    .unwrap();
    // A request received 31 January, not answered by 28 February.
    let late = f
        .register(
            Kind::Access,
            &["gate"],
            RECEIVED - DAY_US,
            RECEIVED - DAY_US + MIN_US,
            RECEIVED,
        )
        .unwrap();
    // An erasure of the day before yesterday, and a disclosure.
    let gone = f.segment("gate", now - 2 * DAY_US);
    let er = f
        .register(
            Kind::Erasure,
            &["gate"],
            now - 2 * DAY_US - MIN_US,
            now - 2 * DAY_US,
            now - DAY_US,
        )
        .unwrap();
    requests::erase(&f.index, &f.config, &f.leases, &er.id, "dpo", now - DAY_US).unwrap();
    assert!(!f.exists(gone));
    {
        let ix = f.index.lock();
        ix.record_disclosure(&NewDisclosure {
            at_us: now - 3 * DAY_US,
            case_id: Some("2027-0009"),
            camera: "hall",
            from_us: now - 4 * DAY_US,
            to_us: now - 4 * DAY_US + MIN_US,
            recipient: "Vilnius police",
            legal_basis: "GDPR Art. 6(1)(c)",
            reason: "graffiti",
            by_user: "officer",
            by_uid: 2003,
            files: "[]",
            manifest_sha256: &[0; 32],
        })
        .unwrap();
    }
    custos::breach::detected(
        &f.index.lock(),
        &custos::breach::Detected::RefusedAccess {
            uid: 2006,
            user: "uid 2006".into(),
            count: 10,
        },
        now - 3600 * 1_000_000,
    )
    .unwrap();
    let intact = Verification {
        checked: 12,
        first_seq: Some(1),
        last_seq: Some(12),
        broken: None,
    };
    let r = compliance::report(&f.index.lock(), &f.config, &f.leases, intact, now).unwrap();
    let find = |topic: &str| -> Vec<&compliance::Finding> {
        r.findings.iter().filter(|x| x.topic == topic).collect()
    };
    let zone = find("retention");
    assert_eq!(zone.len(), 1, "{zone:#?}");
    assert_eq!(zone[0].state, State::Violation);
    assert!(
        zone[0]
            .text
            .contains("kept at most 10 days; oldest footage 2027-02-25"),
        "{zone:#?}"
    );
    assert!(zone[0].text.contains("1 segment(s) past the ceiling"));
    assert_eq!(zone[0].clause, "001 §16-18; 004 §9-10");
    let _ = oldest;
    let dest = find("destruction");
    assert_eq!(
        (dest[0].state, dest[0].clause),
        (State::Ok, "004 §11"),
        "{dest:#?}"
    );
    let case = find("evidence");
    assert!(case[0].text.contains("Case 2027-0009") && case[0].text.contains("REVIEW OVERDUE"));
    assert_eq!(case[0].state, State::Violation);
    let req = find("requests");
    assert_eq!(req.len(), 2, "{req:#?}");
    let late_line = req.iter().find(|x| x.text.contains(&late.id)).unwrap();
    assert_eq!(late_line.state, State::Violation);
    assert!(
        late_line.text.contains("last day 2027-02-28") && late_line.text.contains("OVERDUE by 12"),
        "{late_line:#?}"
    );
    let disc = find("disclosures");
    assert_eq!(disc.len(), 1);
    assert!(
        disc[0]
            .text
            .contains("camera hall to Vilnius police (GDPR Art. 6(1)(c)), case 2027-0009"),
        "{disc:#?}"
    );
    assert_eq!(r.disclosures.len(), 1);
    let del = find("deletions");
    assert_eq!(del.len(), 1, "{del:#?}");
    assert!(
        del[0].text.starts_with("1 segment(s), 400 B") && del[0].text.contains("erased"),
        "{del:#?}"
    );
    assert_eq!(r.deletions[0].reason, "erasure");
    let breaches = find("breaches");
    assert_eq!(breaches.len(), 1, "{breaches:#?}");
    assert_eq!(
        breaches[0].state,
        State::Attention,
        "open, within its clocks"
    );
    assert!(breaches[0].text.contains("uid 2006") && breaches[0].clause.contains("Art. 33"));
    let audit = find("audit");
    assert!(
        audit[0]
            .text
            .contains("12 entries (seq 1 to 12), chain intact")
    );
    assert_eq!(r.violations, 3, "{:#?}", r.findings);
    // A broken chain is a violation too, and the page names it.
    let broken = Verification {
        checked: 5,
        first_seq: Some(1),
        last_seq: Some(5),
        broken: Some(Break {
            seq: 4,
            problem: "hash does not match".into(),
        }),
    };
    let r = compliance::report(&f.index.lock(), &f.config, &f.leases, broken, now).unwrap();
    assert_eq!(r.violations, 4);
    let html = compliance::html(&r, &f.config);
    assert!(html.contains("chain BROKEN at entry 4") && html.contains("class=\"violation\""));
    assert!(html.contains("004 §18-19, §25.2"));
}

#[test]
fn the_dpo_registers_answers_and_erases_through_custosctl_and_no_other_role_may() {
    let (_sim, site) = simulated_site(&["cam1"], 2);
    let daemon = start(&site, "");
    site.wait_complete("cam1", 3, Duration::from_secs(60));
    let segs = site.segments("cam1");
    let from = support::api::rfc3339(segs[0].start_us);
    let to = support::api::rfc3339(segs[2].end_us.unwrap());
    let open = |uid: u32, kind: &str, received: &str| {
        ctl_as(
            &site,
            uid,
            &[
                "--json",
                "request",
                "open",
                "--kind",
                kind,
                "--requester",
                "Jonas Jonaitis",
                "--contact",
                "jonas@example.lt",
                "--identity-check",
                "ID card shown",
                "--camera",
                "cam1",
                "--from",
                &from,
                "--to",
                &to,
                "--received",
                received,
            ],
        )
    };
    // Only the DPO: evidence, viewer, operator, admin and root are refused.
    for uid in [VIEWER, OPERATOR, EVIDENCE, ADMIN, 0] {
        let out = open(uid, "erasure", "now");
        assert_eq!(
            out.status.code(),
            Some(4),
            "uid {uid}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = ctl_as(&site, uid, &["request", "list"]);
        assert_eq!(out.status.code(), Some(4), "uid {uid} listing");
    }
    // A request received two months ago is overdue.
    let out = open(DPO, "access", "-62d");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let late: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let late_id = late["request"]["id"].as_str().unwrap().to_owned();
    let out = open(DPO, "erasure", "now");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = v["request"]["id"].as_str().unwrap().to_owned();

    // The DPO sees it in status and the retention report; metrics count it.
    let out = ctl_as(&site, DPO, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("VIOLATION: data-subject request {late_id}")),
        "{text}"
    );
    let out = ctl_as(&site, DPO, &["--json", "retention", "status"]);
    let rs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rs["violations"].as_u64().unwrap() >= 1, "{rs}");
    assert_eq!(rs["overdue_requests"][0][0], late_id.as_str());
    let metrics = String::from_utf8_lossy(&ctl_as(&site, 0, &["metrics"]).stdout).to_string();
    assert!(
        metrics.contains("custos_subject_requests_overdue 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("custos_subject_requests_open 2"),
        "{metrics}"
    );

    // The compliance report: the overdue request makes it exit 1.
    let report_dir = tempfile::tempdir().unwrap();
    fs::set_permissions(report_dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let reports = report_dir.path().join("reports");
    let out = ctl_as(
        &site,
        DPO,
        &["compliance", "--out", reports.to_str().unwrap()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("VIOLATION Request {late_id}")),
        "{text}"
    );
    assert!(text.contains("chain intact"), "{text}");
    let page = fs::read_dir(&reports)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        fs::metadata(&page).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        fs::read_to_string(&page)
            .unwrap()
            .contains("Compliance report")
    );
    for uid in [VIEWER, EVIDENCE, ADMIN, 0] {
        let out = ctl_as(&site, uid, &["compliance"]);
        assert_eq!(out.status.code(), Some(4), "uid {uid}");
    }

    // The answer letter, written private to the DPO.
    let out_dir = tempfile::tempdir().unwrap();
    fs::set_permissions(out_dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let letters = out_dir.path().join("letters");
    let out = ctl_as(
        &site,
        DPO,
        &[
            "request",
            "answer",
            &id,
            "--out",
            letters.to_str().unwrap(),
            "--lang",
            "lt",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = letters.join(format!("answer-{id}.md"));
    let meta = fs::metadata(&md).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), DPO);
    let letter = fs::read_to_string(&md).unwrap();
    assert!(
        letter.contains("Atsakymas į jūsų prašymą") && letter.contains("Yra įrašų"),
        "{letter}"
    );

    // Erasure through the daemon: files and rows gone, journalled.
    let files: Vec<PathBuf> = segs[..3]
        .iter()
        .map(|s| site.root().join(&s.path))
        .collect();
    assert!(files.iter().all(|p| p.exists()), "{files:?}");
    let out = ctl_as(
        &site,
        DPO,
        &["request", "erase", &id, "--reason", "erasure granted"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("erased cam1"), "{text}");
    assert!(files.iter().all(|p| !p.exists()), "{files:?}");
    let journal = ctl_json(&site, &["deletions"]);
    let rows = journal["deletions"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|d| d["reason"] == "erasure" && d["request_id"] == id.as_str()),
        "{journal}"
    );

    // Every act is audited, intent first, as the DPO.
    let audit = ctl_json(&site, &["audit", "list", "--action", "requests.erase"]);
    let outcomes: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["uid"] == DPO)
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["ok", "intent"], "newest first");
    // Index and files agree after the erasure.
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    site.assert_consistent();
}
