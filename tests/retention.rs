//! Retention (RULES "How long it is kept": 001 §16-18, 004 §9-11, §30):
//! ceilings to the microsecond with a simulated clock, disk pressure that
//! spares protected and leased footage, the alarm, destruction by
//! overwrite, and crash safety with the real custosd killed between marking
//! and destroying.

mod support;

use std::fs;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use custos::clock::{ClockGuard, Clocks, SimulatedClocks};
use custos::config::{Config, Destruction};
use custos::index::SharedIndex;
use custos::index::{CameraId, DeletionReason, Index, SegmentId, SegmentState};
use custos::retention::{self, Context, DAY_US, Leases, StorageAlarms};
use support::daemon::{Daemon, Site, files_under, simulated_site};

/// 2026-11-22T10:00:00Z.
const NOW: i64 = 1_795_341_600_000_000;
const SEG_US: i64 = 60_000_000;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: Config,
    index: SharedIndex,
    clocks: SimulatedClocks,
    leases: Arc<Leases>,
    alarms: Arc<StorageAlarms>,
    guard: Arc<ClockGuard>,
    /// What the storage view reports as free on the root.
    free: Option<u64>,
}

/// A config with two zones on one root: `indoor` (10 days, camera `hall`)
/// and `yard` (14 days, camera `gate`). `storage_extra` goes in `[[storage]]`.
fn config_text(dir: &Path, storage_extra: &str) -> String {
    let d = dir.display();
    format!(
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
[[zone]]
id = "indoor"
name = "Indoor"
retention_days = 10
purposes = ["safety"]
legal_basis = "GDPR Art. 6(1)(e)"
processor = "The school"
[[zone]]
id = "yard"
name = "Yard"
retention_days = 14
purposes = ["safety"]
legal_basis = "GDPR Art. 6(1)(e)"
processor = "Contractor"
[[camera]]
id = "hall"
name = "Hall"
zone = "indoor"
url = "rtsp://127.0.0.1:1/hall"
area = "Hall"
[[camera]]
id = "gate"
name = "Gate"
zone = "yard"
url = "rtsp://127.0.0.1:1/gate"
area = "Gate"
"#
    )
}

impl Fixture {
    fn new(storage_extra: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("recordings");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(dir.path().join("state")).unwrap();
        let path = dir.path().join("custos.toml");
        let config = Config::parse_str(&config_text(dir.path(), storage_extra), &path)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let index = SharedIndex::new(Index::open(&dir.path().join("state/index.db")).unwrap());
        Fixture {
            _dir: dir,
            root,
            config,
            index,
            clocks: SimulatedClocks::new(NOW),
            leases: Leases::new(),
            alarms: StorageAlarms::new(),
            guard: ClockGuard::new(),
            free: None,
        }
    }

    fn zone_of(camera: &str) -> &'static str {
        if camera == "hall" { "indoor" } else { "yard" }
    }

    /// A complete segment `[end - SEG_US, end)` with a real file of `bytes`.
    fn segment(&self, camera: &str, end_us: i64, bytes: usize) -> SegmentId {
        support::index::put_segment(
            &self.index,
            &self.root,
            camera,
            Self::zone_of(camera),
            end_us - SEG_US,
            end_us,
            &vec![0xA5; bytes],
        )
    }

    fn camera(&self, name: &str) -> CameraId {
        self.index.lock().camera_id(name).unwrap()
    }

    fn pass(&self) -> retention::PassReport {
        let free = self.free;
        let free_bytes = move |_: &custos::config::StorageRoot| free;
        retention::pass(&Context {
            index: &self.index,
            config: &self.config,
            leases: &self.leases,
            alarms: &self.alarms,
            clocks: &self.clocks,
            guard: &self.guard,
            free_bytes: &free_bytes,
            batch: 3, // small, so passes span several batches
            cancel: None,
        })
        .unwrap()
    }

    /// The segment's row state, or None if the row is gone; asserts the file
    /// exists exactly when the row does.
    fn state(&self, id: SegmentId) -> Option<SegmentState> {
        let row = self.index.lock().segment(id).unwrap();
        if let Some(row) = &row {
            assert!(
                self.root.join(&row.path).exists(),
                "row without file: {row:?}"
            );
        }
        row.map(|r| r.state)
    }

    fn files(&self) -> usize {
        files_under(&self.root).len()
    }
}

#[test]
fn a_ceiling_holds_to_the_microsecond_and_zones_are_independent() {
    let f = Fixture::new("");
    let ten = NOW - 10 * DAY_US;
    let fourteen = NOW - 14 * DAY_US;
    let hall_at_ceiling = f.segment("hall", ten, 100); // now - end == 10 days: stays
    let hall_over = f.segment("hall", ten - 1, 100); // one µs over: goes
    let gate_at_ten = f.segment("gate", ten - 1, 100); // yard keeps 14 days
    let gate_at_ceiling = f.segment("gate", fourteen, 100);
    let gate_over = f.segment("gate", fourteen - 1, 100);
    let recent = f.segment("hall", NOW, 100);

    let status = retention::status(&f.index.lock(), &f.config, &f.leases, NOW).unwrap();
    assert_eq!(status.violations, 2, "{status:#?}");

    let report = f.pass();
    assert_eq!(report.retention.segments, 2, "{report:?}");
    assert_eq!(f.state(hall_over), None);
    assert_eq!(f.state(gate_over), None);
    for kept in [hall_at_ceiling, gate_at_ten, gate_at_ceiling, recent] {
        assert_eq!(f.state(kept), Some(SegmentState::Complete));
    }
    assert_eq!(f.files(), 4);

    let status = retention::status(&f.index.lock(), &f.config, &f.leases, NOW).unwrap();
    assert_eq!(status.violations, 0);
    let hall = &status
        .zones
        .iter()
        .find(|z| z.zone == "indoor")
        .unwrap()
        .cameras[0];
    assert_eq!(hall.next_deletion_us, Some(NOW), "{hall:?}");
    assert_eq!(hall.oldest_age_us, Some(10 * DAY_US + SEG_US));

    // One microsecond later both footage at the ceilings goes; the yard's
    // footage at ten days stays.
    f.clocks.advance(Duration::from_micros(1));
    let report = f.pass();
    assert_eq!(report.retention.segments, 2, "{report:?}");
    assert_eq!(f.state(hall_at_ceiling), None);
    assert_eq!(f.state(gate_at_ceiling), None);
    assert_eq!(f.state(gate_at_ten), Some(SegmentState::Complete));
    // Empty day directories older than yesterday are gone.
    assert!(!f.root.join("yard/gate/2026-11-08").exists());
    assert!(f.root.join("yard/gate/2026-11-12").exists());

    // The journal: what, when, why, by whom; per camera.
    let journal = f.index.lock().deletion_journal(0, i64::MAX).unwrap();
    assert_eq!(journal.len(), 4, "{journal:#?}");
    assert!(journal.iter().all(|j| j.reason == DeletionReason::Retention
        && j.actor == "reaper"
        && j.segments == 1
        && j.bytes == 100));
    let hall_first = journal.iter().find(|j| j.camera == "hall").unwrap();
    assert_eq!(
        (hall_first.from_us, hall_first.to_us),
        (ten - 1 - SEG_US, ten - 1)
    );
}

#[test]
fn protected_footage_survives_age_and_pressure_and_the_alarm_fires() {
    let mut f = Fixture::new("budget = \"500\"\nmin_free = \"1 GB\"");
    let old = NOW - 20 * DAY_US;
    let held = f.segment("hall", old, 400);
    let restricted = f.segment("gate", old + SEG_US, 400);
    let oldest_free = f.segment("hall", NOW - 2 * DAY_US, 300);
    let newer_free = f.segment("gate", NOW - DAY_US, 300);
    let newest = f.segment("hall", NOW, 300);
    let (hall, gate) = (f.camera("hall"), f.camera("gate"));
    {
        let ix = f.index.lock();
        ix.add_hold("case-7", hall, old - 1, old + 10, NOW).unwrap();
        ix.add_restriction(gate, old, old + 1, "subject request", NOW)
            .unwrap();
    }
    // 1700 bytes used against a budget of 500; free space is plenty.
    f.free = Some(10_000_000_000);
    let plan = retention::plan(&f.index.lock(), &f.config, &f.leases, NOW, &|_| f.free).unwrap();
    assert_eq!(plan.total.segments, 3, "{plan:#?}");
    assert_eq!(plan.roots[0].unmet_bytes, 300);

    let report = f.pass();
    // Oldest first across both cameras: every unprotected segment goes.
    assert_eq!(report.disk_pressure.segments, 3, "{report:?}");
    assert_eq!(
        report.retention.segments, 0,
        "protected footage is past its ceiling"
    );
    assert_eq!(f.state(held), Some(SegmentState::Complete));
    assert_eq!(f.state(restricted), Some(SegmentState::Complete));
    for gone in [oldest_free, newer_free, newest] {
        assert_eq!(f.state(gone), None);
    }
    // Still 300 bytes over budget, nothing deletable: the alarm.
    assert_eq!(report.alarms, vec!["main".to_owned()]);
    let alarm = f.alarms.get("main").unwrap();
    assert_eq!(alarm.short_bytes, 300);
    assert_eq!(f.alarms.raised_total(), 1);

    // Disk below min_free as well: still nothing protected goes, no new alarm.
    f.free = Some(1);
    let report = f.pass();
    assert_eq!(report.disk_pressure.segments, 0);
    assert_eq!(f.state(held), Some(SegmentState::Complete));
    assert_eq!(f.alarms.raised_total(), 1);
    assert!(f.alarms.get("main").unwrap().short_bytes > 900_000_000);

    // Status shows why the footage is kept, and no violation.
    let status = retention::status(&f.index.lock(), &f.config, &f.leases, NOW).unwrap();
    assert_eq!(status.violations, 0, "{status:#?}");
    let hall = &status.zones[0].cameras[0];
    assert!(
        matches!(&hall.protected_by[..], [custos::index::Protection::Hold { case_id, .. }] if case_id == "case-7")
    );

    // Released hold and lifted restriction: the next pass deletes by age
    // and the alarm clears.
    f.free = Some(10_000_000_000);
    {
        let ix = f.index.lock();
        ix.release_hold(1, NOW).unwrap();
        ix.lift_restriction(1, NOW).unwrap();
    }
    let report = f.pass();
    assert_eq!(report.retention.segments, 2, "{report:?}");
    assert_eq!(f.files(), 0);
    assert_eq!(f.alarms.get("main"), None);
}

/// The plan and the pass walk one selection: what the plan lists is what
/// the pass then deletes, for every reason at once: age in two zones, the
/// `max_retention_days` ceiling of a zone no longer configured, and a
/// budget, with a leased segment at the front of the pressure order and
/// batches smaller than each step.
#[test]
fn the_plan_lists_exactly_what_the_pass_then_deletes() {
    use std::collections::BTreeMap;
    let f = Fixture::new("budget = \"450\"");
    let lobby = |end_us: i64| {
        // Footage of a zone since removed from the config.
        support::index::put_segment(
            &f.index,
            &f.root,
            "hall",
            "lobby",
            end_us - SEG_US,
            end_us,
            &[0xA5; 100],
        )
    };
    let indoor_aged: Vec<SegmentId> = (0..4)
        .map(|k| f.segment("hall", NOW - 11 * DAY_US - k * SEG_US, 100))
        .collect();
    let yard_aged: Vec<SegmentId> = (0..2)
        .map(|k| f.segment("gate", NOW - 15 * DAY_US - k * SEG_US, 100))
        .collect();
    let past_ceiling = lobby(NOW - 40 * DAY_US);
    // Oldest first for disk pressure: 600 bytes left after age, 150 over.
    let leased = lobby(NOW - 20 * DAY_US);
    let pressed = [
        f.segment("gate", NOW - 12 * DAY_US, 100),
        f.segment("hall", NOW - 5 * DAY_US, 100),
    ];
    let kept = [
        leased,
        f.segment("gate", NOW - 4 * DAY_US, 100),
        f.segment("hall", NOW - 3 * DAY_US, 100),
        f.segment("hall", NOW, 100),
    ];
    let _lease = f.leases.acquire(&[leased]);

    let plan = retention::plan(&f.index.lock(), &f.config, &f.leases, NOW, &|_| None).unwrap();
    let report = f.pass();

    type Key = (String, String, DeletionReason);
    let mut planned: BTreeMap<Key, (u64, u64, i64, i64)> = BTreeMap::new();
    for i in &plan.items {
        let key = (i.zone.clone(), i.camera.clone(), i.reason);
        planned.insert(key, (i.segments, i.bytes, i.from_us, i.to_us));
    }
    let mut deleted: BTreeMap<Key, (u64, u64, i64, i64)> = BTreeMap::new();
    for j in f.index.lock().deletion_journal(0, i64::MAX).unwrap() {
        let d = deleted
            .entry((j.zone.clone(), j.camera.clone(), j.reason))
            .or_insert((0, 0, i64::MAX, i64::MIN));
        d.0 += j.segments;
        d.1 += j.bytes;
        d.2 = d.2.min(j.from_us);
        d.3 = d.3.max(j.to_us);
    }
    assert_eq!(planned, deleted, "{plan:#?}\n{report:?}");
    let reasons: Vec<(&str, DeletionReason)> = planned
        .keys()
        .map(|(zone, _, reason)| (zone.as_str(), *reason))
        .collect();
    for want in [
        ("indoor", DeletionReason::Retention),
        ("yard", DeletionReason::Retention),
        ("lobby", DeletionReason::Retention),
        ("yard", DeletionReason::DiskPressure),
        ("indoor", DeletionReason::DiskPressure),
    ] {
        assert!(reasons.contains(&want), "{want:?} not in {reasons:?}");
    }
    assert_eq!((plan.total.segments, plan.leased), (9, 1), "{plan:#?}");
    assert_eq!(
        (
            report.retention.segments,
            report.disk_pressure.segments,
            report.leased
        ),
        (7, 2, 1)
    );
    assert_eq!(
        (plan.roots[0].short_bytes, plan.roots[0].unmet_bytes),
        (150, 0)
    );
    assert!(report.alarms.is_empty(), "{report:?}");

    // Oldest first: the leased segment is passed over, never the older
    // footage behind it in the same batch.
    for gone in indoor_aged
        .iter()
        .chain(&yard_aged)
        .chain([&past_ceiling])
        .chain(&pressed)
    {
        assert_eq!(f.state(*gone), None, "{gone:?}");
    }
    for k in kept {
        assert_eq!(f.state(k), Some(SegmentState::Complete), "{k:?}");
    }
}

#[test]
fn a_leased_segment_waits_for_its_lease() {
    let f = Fixture::new("");
    let old = f.segment("hall", NOW - 11 * DAY_US, 100);
    let other = f.segment("hall", NOW - 12 * DAY_US, 100);
    let lease = f.leases.acquire(&[old]);
    let plan = retention::plan(&f.index.lock(), &f.config, &f.leases, NOW, &|_| None).unwrap();
    assert_eq!((plan.total.segments, plan.leased), (1, 1));
    let report = f.pass();
    assert_eq!((report.retention.segments, report.leased), (1, 1));
    assert_eq!(f.state(old), Some(SegmentState::Complete));
    assert_eq!(f.state(other), None);
    // A nested lease keeps it too.
    let again = f.leases.acquire(&[old]);
    drop(lease);
    assert_eq!(f.pass().retention.segments, 0);
    drop(again);
    assert_eq!(f.pass().retention.segments, 1);
    assert_eq!(f.state(old), None);
}

#[test]
fn overwrite_leaves_no_original_bytes_before_unlink() {
    let f = Fixture::new("destruction = \"overwrite\"");
    assert_eq!(f.config.storage[0].destruction, Destruction::Overwrite);
    let old = f.segment("gate", NOW - 15 * DAY_US, 200_000);
    let row = f.index.lock().segment(old).unwrap().unwrap();
    let path = f.root.join(&row.path);
    // A second descriptor on the same inode sees what is on disk after the
    // name is gone.
    let reader = fs::File::open(&path).unwrap();
    let mut before = vec![0u8; 200_000];
    reader.read_exact_at(&mut before, 0).unwrap();
    assert!(before.iter().all(|&b| b == 0xA5));

    assert_eq!(f.pass().retention.segments, 1);
    assert!(!path.exists());
    let mut after = Vec::new();
    (&reader).read_to_end(&mut after).unwrap();
    assert_eq!(after.len(), 200_000, "overwritten in place, not truncated");
    assert!(after.iter().all(|&b| b == 0), "original bytes remain");
}

#[test]
fn unlink_mode_leaves_the_bytes_to_the_filesystem() {
    // The counterpart of the test above, so it cannot pass by accident.
    let f = Fixture::new("");
    let old = f.segment("gate", NOW - 15 * DAY_US, 1000);
    let path = f
        .root
        .join(f.index.lock().segment(old).unwrap().unwrap().path);
    let reader = fs::File::open(&path).unwrap();
    f.pass();
    assert!(!path.exists());
    let mut after = Vec::new();
    (&reader).read_to_end(&mut after).unwrap();
    assert!(after.iter().all(|&b| b == 0xA5));
}

#[test]
fn start_up_finishes_a_deletion_marked_before_a_crash() {
    let f = Fixture::new("");
    let doomed = f.segment("hall", NOW - 11 * DAY_US, 100);
    let doomed_gone = f.segment("hall", NOW - 12 * DAY_US, 100);
    let kept = f.segment("hall", NOW, 100);
    let paths: Vec<PathBuf> = [doomed, doomed_gone]
        .iter()
        .map(|&id| {
            f.root
                .join(f.index.lock().segment(id).unwrap().unwrap().path)
        })
        .collect();
    f.index
        .lock()
        .transaction(|ix| ix.mark_doomed(&[doomed, doomed_gone]))
        .unwrap();
    // One file was destroyed before the crash, the other not.
    fs::remove_file(&paths[1]).unwrap();
    let report = custos::recovery::run(&f.index, &f.config, f.clocks.realtime()).unwrap();
    assert_eq!(report.destroyed, 2);
    assert_eq!(f.state(doomed), None);
    assert_eq!(f.state(doomed_gone), None);
    assert!(!paths[0].exists());
    assert_eq!(f.state(kept), Some(SegmentState::Complete));
    assert_eq!(f.files(), 1);
}

// ---------------------------------------------------------------------------
// Premises: numbers at their bounds, a clock that jumped, protection that
// appears between choosing and marking

const YEAR_US: i64 = 365 * DAY_US;
/// 2000-01-01T00:00:00Z, where a machine without an RTC battery boots.
const Y2000: i64 = 946_684_800_000_000;

#[test]
fn the_longest_ceilings_keep_everything_inside_them() {
    let mut f = Fixture::new("");
    // The longest ceiling a config may set: footage inside it stays.
    f.config.daemon.max_retention_days = 366;
    f.config.zones[0].retention_days = 366;
    let inside = f.segment("hall", NOW - 366 * DAY_US, 100);
    let over = f.segment("hall", NOW - 366 * DAY_US - 1, 100);
    let gate = f.segment("gate", NOW - 13 * DAY_US, 100);
    let report = f.pass();
    assert_eq!(report.retention.segments, 1, "{report:?}");
    assert_eq!(f.state(over), None);
    assert_eq!(f.state(inside), Some(SegmentState::Complete));
    assert_eq!(f.state(gate), Some(SegmentState::Complete));

    // Ceilings no config allows (their cut-off does not fit in 64 bits, and
    // used to wrap into the future): the pass fails before deleting anything.
    let recent = f.segment("hall", NOW - DAY_US, 100);
    for (max, days) in [(u32::MAX, 10), (u32::MAX, u32::MAX), (366, u32::MAX)] {
        f.config.daemon.max_retention_days = max;
        f.config.zones[0].retention_days = days;
        let free = |_: &custos::config::StorageRoot| None;
        let err = retention::pass(&Context {
            index: &f.index,
            config: &f.config,
            leases: &f.leases,
            alarms: &f.alarms,
            clocks: &f.clocks,
            guard: &f.guard,
            free_bytes: &free,
            batch: 3,
            cancel: None,
        })
        .expect_err("a cut-off out of range must fail the pass");
        assert!(
            err.to_string().contains("not a representable time"),
            "{err}"
        );
        for kept in [inside, gate, recent] {
            assert_eq!(f.state(kept), Some(SegmentState::Complete));
        }
        let plan = retention::plan(&f.index.lock(), &f.config, &f.leases, NOW, &|_| None);
        assert!(plan.is_err(), "{plan:?}");
    }
    assert!(retention::cutoff(NOW, u32::MAX).is_err());
    assert!(retention::cutoff(i64::MIN + DAY_US - 1, 1).is_err());
    assert!(retention::days_after(i64::MAX - DAY_US + 1, 1).is_err());
    assert_eq!(retention::cutoff(NOW, 366).unwrap(), NOW - 366 * DAY_US);
}

#[test]
fn a_clock_stepped_a_year_forward_destroys_nothing_until_it_is_put_back() {
    let f = Fixture::new("");
    let expired = f.segment("hall", NOW - 11 * DAY_US, 100);
    assert_eq!(f.pass().retention.segments, 1);
    assert_eq!(f.state(expired), None);
    let kept: Vec<SegmentId> = (0..5)
        .map(|i| {
            f.segment(
                if i % 2 == 0 { "hall" } else { "gate" },
                NOW - i * DAY_US,
                100,
            )
        })
        .collect();

    // Five minutes later the clock is stepped a year ahead: every segment
    // would be "expired".
    f.clocks.advance(Duration::from_secs(300));
    f.clocks.step_wall(YEAR_US);
    let plan = retention::plan(
        &f.index.lock(),
        &f.config,
        &f.leases,
        f.clocks.realtime(),
        &|_| None,
    )
    .unwrap();
    assert_eq!(plan.total.segments, 5, "the premise of the test");
    for _ in 0..2 {
        let report = f.pass();
        assert_eq!(report.retention.segments + report.disk_pressure.segments, 0);
        let alarm = report.clock_alarm.expect("a clock alarm");
        assert!(
            alarm.state.contains("jumped forward by 365 days since")
                && alarm.state.contains("check NTP")
                && alarm.state.contains("destruction")
                && alarm.state.contains("suspended"),
            "{alarm:?}"
        );
        f.clocks.advance(Duration::from_secs(300));
    }
    assert_eq!(
        f.guard.raised_total(),
        1,
        "raised once, kept while it lasts"
    );
    // Recorded while the clock was ahead: stamped a year in the future.
    let stamped_ahead = f.segment("hall", f.clocks.realtime(), 100);
    for &id in &kept {
        assert_eq!(f.state(id), Some(SegmentState::Complete));
    }

    // Put back: the alarm clears and passes resume, deleting by the true time.
    f.clocks.step_wall(-YEAR_US);
    let late = f.segment("gate", NOW - 15 * DAY_US, 100);
    let report = f.pass();
    assert_eq!(report.clock_alarm, None);
    assert_eq!(f.guard.alarm(), None);
    assert_eq!(report.retention.segments, 1, "{report:?}");
    assert_eq!(f.state(late), None);
    assert_eq!(f.state(stamped_ahead), Some(SegmentState::Complete));
    for &id in &kept {
        assert_eq!(f.state(id), Some(SegmentState::Complete));
    }
}

#[test]
fn a_clock_back_in_2000_destroys_nothing_and_says_what_to_check() {
    let f = Fixture::new("");
    let expired = f.segment("hall", NOW - 11 * DAY_US, 100);
    let recent = f.segment("hall", NOW, 100);
    // A start-up (nothing remembered) on a machine whose clock reads 2000.
    f.clocks.step_wall(Y2000 - NOW);
    let report = f.pass();
    assert_eq!(report.retention.segments + report.disk_pressure.segments, 0);
    let alarm = report.clock_alarm.expect("a clock alarm");
    assert!(
        alarm.state.starts_with(
            "the wall clock reads 2000-01-01T00:00:00.000Z but footage up to \
             2026-11-22T10:00:00.000Z exists: check NTP"
        ),
        "{alarm:?}"
    );
    assert_eq!(f.state(expired), Some(SegmentState::Complete));
    assert_eq!(f.state(recent), Some(SegmentState::Complete));
    // Fixed: the expired segment goes, the recent one stays.
    f.clocks.step_wall(NOW - Y2000);
    let report = f.pass();
    assert_eq!(report.clock_alarm, None);
    assert_eq!(f.state(expired), None);
    assert_eq!(f.state(recent), Some(SegmentState::Complete));
    assert_eq!(report.retention.segments, 1, "{report:?}");

    // While running: stepped back to 2000 five minutes later.
    let expired = f.segment("gate", NOW - 15 * DAY_US, 100);
    f.clocks.advance(Duration::from_secs(300));
    f.clocks.step_wall(Y2000 - f.clocks.realtime());
    let report = f.pass();
    let alarm = report.clock_alarm.expect("a clock alarm");
    assert!(
        alarm
            .state
            .starts_with("the wall clock reads 2000-01-01T00:00:00.000Z and jumped back"),
        "{alarm:?}"
    );
    assert_eq!(f.state(expired), Some(SegmentState::Complete));
    f.clocks.step_wall(NOW + 300_000_000 - Y2000);
    assert_eq!(f.pass().retention.segments, 1);
    assert_eq!(f.state(expired), None);
}

#[test]
fn protection_that_appears_between_choosing_and_marking_is_respected() {
    let f = Fixture::new("");
    let old = NOW - 20 * DAY_US;
    let held = f.segment("hall", old, 100);
    let restricted = f.segment("hall", old + SEG_US, 100);
    let leased = f.segment("hall", old + 2 * SEG_US, 100);
    let free = f.segment("hall", old + 3 * SEG_US, 100);
    // Chosen...
    let cut = retention::cutoff(NOW, 10).unwrap();
    let chosen = f
        .index
        .lock()
        .age_candidates("indoor", cut, custos::index::Cursor::START, 100)
        .unwrap();
    assert_eq!(chosen.len(), 4);
    // ...then protected, before the marking.
    let hall = f.camera("hall");
    {
        let ix = f.index.lock();
        ix.add_hold("case-9", hall, old - 1, old, NOW).unwrap();
        ix.add_restriction(hall, old + 1, old + 2, "subject request", NOW)
            .unwrap();
    }
    let _lease = f.leases.acquire(&[leased]);
    let free_bytes = |_: &custos::config::StorageRoot| None;
    let ctx = Context {
        index: &f.index,
        config: &f.config,
        leases: &f.leases,
        alarms: &f.alarms,
        clocks: &f.clocks,
        guard: &f.guard,
        free_bytes: &free_bytes,
        batch: 100,
        cancel: None,
    };
    let (deleted, skipped_leased) =
        retention::delete_candidates(&ctx, NOW, DeletionReason::Retention, chosen).unwrap();
    assert_eq!((deleted.segments, skipped_leased), (1, 1));
    assert_eq!(f.state(free), None);
    for kept in [held, restricted, leased] {
        assert_eq!(f.state(kept), Some(SegmentState::Complete));
    }
    let journal = f.index.lock().deletion_journal(i64::MIN, i64::MAX).unwrap();
    assert_eq!(journal.iter().map(|d| d.segments).sum::<u64>(), 1);
}

// ---------------------------------------------------------------------------
// End to end with the real custosd

fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes the site's config with `extra` added to its `[[storage]]` table.
fn write_config_with_storage(site: &Site, extra: &str) {
    site.write_config();
    let text = fs::read_to_string(site.config_path()).unwrap();
    let at = text.find("path = ").unwrap();
    let eol = at + text[at..].find('\n').unwrap() + 1;
    let text = format!("{}{extra}\n{}", &text[..eol], &text[eol..]);
    fs::write(site.config_path(), text).unwrap();
}

#[test]
fn crash_between_marking_and_destroying_is_finished_at_the_next_start() {
    let (_sim, site) = simulated_site(&["lobby"], 2);

    // A budget far below one segment: the first finished segment puts the
    // root under pressure, the reaper marks it and the failpoint aborts.
    write_config_with_storage(&site, "budget = \"1 KiB\"");
    let mut daemon = Daemon::start_with_failpoint(&site, Some("after-mark"));
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(s) = daemon.try_wait() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "custosd never reached the failpoint"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "custosd should have aborted: {status:?}");
    assert!(
        site.log().contains("failpoint after-mark reached"),
        "{}",
        site.log()
    );

    let doomed: Vec<_> = site
        .index()
        .unfinished_segments()
        .unwrap()
        .into_iter()
        .filter(|s| s.state == SegmentState::Doomed)
        .collect();
    assert!(!doomed.is_empty(), "nothing was marked");
    for s in &doomed {
        assert!(
            site.root().join(&s.path).exists(),
            "marked, not yet destroyed"
        );
    }
    let journal = site.index().deletion_journal(0, i64::MAX).unwrap();
    assert_eq!(journal.len(), 1, "{journal:?}");
    assert_eq!(journal[0].reason, DeletionReason::DiskPressure);
    assert_eq!(journal[0].segments, doomed.len() as u64);

    // Restart without the budget: the start-up pass finishes the deletion.
    write_config_with_storage(&site, "");
    let daemon = Daemon::start(&site);
    wait_until(Duration::from_secs(20), "recovery to finish", || {
        site.log().contains("finished interrupted deletions")
    });
    let status = daemon.terminate(Duration::from_secs(20));
    assert!(status.success(), "{}", site.log());
    for s in &doomed {
        assert!(
            !site.root().join(&s.path).exists(),
            "orphan file {}",
            s.path
        );
        // By path: SQLite may give a later segment the same row id.
        let rows = site.segments("lobby");
        assert!(
            rows.iter().all(|r| r.path != s.path),
            "dangling row {}",
            s.path
        );
    }
    // No dangling row, no orphan file, every complete row matches its file.
    site.assert_consistent();
}
