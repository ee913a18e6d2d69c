//! The SQLite index on real database files: creation, upgrade, refusal of a
//! newer schema, and the segment/outage queries recording relies on.

use custos::index::{Index, NewSegment, SCHEMA_VERSION, SegmentState, SegmentSummary, TimeSource};

fn summary(end_us: i64) -> SegmentSummary {
    SegmentSummary {
        end_us,
        bytes: 1000,
        frames: 125,
        key_frames: 3,
        video_codec: "h264".into(),
        audio_codec: None,
        sha256: [7; 32],
        recovered: false,
        activity: Vec::new(),
    }
}

#[test]
fn upgrade_from_first_schema_matches_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.db");
    Index::create_v1_for_tests(&old).unwrap();
    let upgraded = Index::open(&old).unwrap();
    assert_eq!(upgraded.schema_version().unwrap(), SCHEMA_VERSION);

    let fresh = Index::open(&dir.path().join("fresh.db")).unwrap();
    let (a, b) = (
        upgraded.describe_schema().unwrap(),
        fresh.describe_schema().unwrap(),
    );
    assert!(
        a.len() > 10,
        "schema description is too thin to compare: {a:?}"
    );
    assert_eq!(a, b, "upgraded schema differs from a fresh one");
}

#[test]
fn an_upgraded_segment_table_takes_the_device_clocks_and_names_them_for_old_device_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    Index::create_v1_for_tests(&path).unwrap();
    drop(Index::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    // The widened CHECK took (the schema description does not show CHECKs).
    conn.execute_batch(
        "INSERT INTO camera (name) VALUES ('bodycam-7');
         INSERT INTO segment (camera_id, zone, root, path, state, start_us, end_us, time_source)
         VALUES (1, 'mobile', 'main', 'mobile/bodycam-7/a.mp4', 1, 10, 20, 'metadata');
         INSERT INTO segment (camera_id, zone, root, path, state, start_us, end_us, time_source)
         VALUES (1, 'mobile', 'main', 'mobile/bodycam-7/b.mp4', 1, 30, 40, 'local');
         INSERT INTO device_file (segment_id, device, state, sha256, original_name,
                                  original_bytes, inbox, owner_uid, ingested_us, time_source)
         VALUES (2, 'bodycam-7', 1, x'01', 'b.mp4', 5, '/srv/inbox', 0, 50, 'file_name');",
    )
    .unwrap();
    let bad = conn.execute(
        "INSERT INTO segment (camera_id, zone, root, path, state, start_us, time_source) \
         VALUES (1, 'mobile', 'main', 'mobile/bodycam-7/c.mp4', 0, 60, 'guess')",
        [],
    );
    assert!(bad.is_err(), "the CHECK still refuses unknown sources");
    // A device row written by schema 11 said `local`; the step names its
    // true source from its device file.
    // (Back to schema 11 as it was: without the changes of steps 13 to 15.)
    conn.execute_batch(
        "ALTER TABLE camera DROP COLUMN longest_us;
         DROP TABLE vault_object;
         DROP TABLE redaction;
         ALTER TABLE deletion DROP COLUMN note;",
    )
    .unwrap();
    conn.pragma_update(None, "user_version", 11).unwrap();
    drop(conn);
    let index = Index::open(&path).unwrap();
    let rows = index.segments("bodycam-7", 0, 100).unwrap();
    let sources: Vec<_> = rows.iter().map(|r| r.time_source).collect();
    assert_eq!(sources, [TimeSource::Metadata, TimeSource::FileName]);
}

#[test]
fn a_device_file_longer_than_any_segment_is_found_from_anywhere_in_its_range() {
    use custos::index::{MAX_DEVICE_FILE_US, MAX_SEGMENT_US, NewDeviceFile};
    let dir = tempfile::tempdir().unwrap();
    let mut index = Index::open(&dir.path().join("index.db")).unwrap();
    let hour = 3_600_000_000;
    let start = 100 * hour;
    let id = index
        .begin_device_file(&NewDeviceFile {
            device: "dash-3",
            zone: "mobile",
            root: "main",
            path: "mobile/dash-3/night.mp4",
            start_us: start,
            sha256: [9; 32],
            original_name: "night.mp4",
            original_bytes: 1000,
            inbox: "/srv/inbox",
            owner_uid: 0,
            ingested_us: start + 9 * hour,
            time_source: TimeSource::FileName,
            mtime_offset_us: None,
        })
        .unwrap();
    let mut s = summary(start + 8 * hour);
    s.activity = vec![5; 8 * 3600];
    index.complete_device_file(id, &s).unwrap();
    assert!(8 * hour > MAX_SEGMENT_US && 8 * hour <= MAX_DEVICE_FILE_US);

    // Seven hours in, far past a camera segment's look-back.
    let (from, to) = (start + 7 * hour, start + 7 * hour + 60_000_000);
    let rows = index.segments("dash-3", from, to).unwrap();
    assert_eq!(rows.len(), 1, "the listing misses the long file");
    assert_eq!(index.segment_activity("dash-3", from, to).unwrap().len(), 1);
    let spans = index.footage_in("dash-3", from, to).unwrap();
    assert_eq!(spans.len(), 1, "a request's footage search misses it");
    // A camera keeps the short look-back its segments need.
    index.camera_id("gate").unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("index.db")).unwrap();
    let longest: i64 = conn
        .query_row(
            "SELECT longest_us FROM camera WHERE name = 'gate'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        longest, MAX_SEGMENT_US,
        "schema.sql's default is MAX_SEGMENT_US"
    );
}

#[test]
fn upgrade_keeps_existing_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    Index::create_v1_for_tests(&path).unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "INSERT INTO camera (name) VALUES ('gate');
             INSERT INTO segment (camera_id, zone, root, path, state, start_us, end_us,
                                  time_source)
             VALUES (1, 'yard', 'main', 'yard/gate/x.mp4', 1, 10, 20, 'local');",
        )
        .unwrap();
    }
    let index = Index::open(&path).unwrap();
    let rows = index.segments("gate", 0, 100).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, SegmentState::Complete);
    assert!(!rows[0].recovered);
}

#[test]
fn refuses_a_newer_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.db");
    drop(Index::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let err = Index::open(&path)
        .err()
        .expect("a newer schema must be refused");
    assert!(
        err.message.contains("newer than this custos"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains(&path.display().to_string()),
        "{}",
        err.message
    );
    // Refused without writing: the version is untouched.
    let v: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION + 1);
}

#[test]
fn pragmas_are_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.db");
    let _index = Index::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn segments_by_camera_and_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = Index::open(&dir.path().join("index.db")).unwrap();
    let (gate, hall) = (
        index.camera_id("gate").unwrap(),
        index.camera_id("hall").unwrap(),
    );
    assert_eq!(
        index.camera_id("gate").unwrap(),
        gate,
        "camera ids are stable"
    );
    let sec = 1_000_000;
    index
        .transaction(|ix| {
            for (cam, i) in [(gate, 0), (gate, 1), (gate, 2), (hall, 0)] {
                let path = format!("z/{}/{i}.mp4", cam.0);
                let id = ix.begin_segment(&NewSegment {
                    camera: cam,
                    zone: "z",
                    root: "main",
                    path: &path,
                    start_us: i * 60 * sec,
                    time_source: TimeSource::Local,
                    clock_offset_us: None,
                })?;
                if cam == gate && i < 2 {
                    ix.complete_segment(id, &summary((i + 1) * 60 * sec))?;
                }
            }
            Ok(())
        })
        .unwrap();

    let all = index.segments("gate", 0, 1000 * sec).unwrap();
    assert_eq!(
        all.iter().map(|s| s.start_us / sec).collect::<Vec<_>>(),
        [0, 60, 120]
    );
    assert_eq!(all[2].state, SegmentState::Recording);
    assert_eq!(all[0].sha256, Some([7; 32]));

    // [30 s, 61 s) overlaps the first two; an end exactly at `from` does not overlap.
    let some = index.segments("gate", 30 * sec, 61 * sec).unwrap();
    assert_eq!(some.len(), 2);
    let none = index.segments("gate", 60 * sec, 60 * sec).unwrap();
    assert!(none.is_empty());
    assert_eq!(index.segments("gate", 60 * sec, 61 * sec).unwrap().len(), 1);

    let unfinished = index.unfinished_segments().unwrap();
    assert_eq!(unfinished.len(), 2, "one recording segment per camera");

    // Completing twice is refused: a complete row never changes.
    let err = index.complete_segment(custos::index::SegmentId(all[0].id), &summary(5));
    assert!(err.is_err());
}

#[test]
fn a_failed_transaction_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = Index::open(&dir.path().join("index.db")).unwrap();
    let cam = index.camera_id("gate").unwrap();
    let res: custos::Result<()> = index.transaction(|ix| {
        ix.begin_segment(&NewSegment {
            camera: cam,
            zone: "z",
            root: "main",
            path: "a.mp4",
            start_us: 0,
            time_source: TimeSource::Rtcp,
            clock_offset_us: Some(-2500),
        })?;
        Err(custos::Error::conflict("abort"))
    });
    assert!(res.is_err());
    assert!(index.unfinished_segments().unwrap().is_empty());
}

#[test]
fn a_failed_commit_is_rolled_back_and_the_connection_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = Index::open(&dir.path().join("index.db")).unwrap();
    let cam = index.camera_id("gate").unwrap();
    // A deferred foreign key fails at COMMIT, after every statement succeeded.
    let res: custos::Result<()> = index.transaction(|ix| {
        ix.begin_segment(&NewSegment {
            camera: cam,
            zone: "z",
            root: "main",
            path: "a.mp4",
            start_us: 0,
            time_source: TimeSource::Local,
            clock_offset_us: None,
        })?;
        ix.tamper_for_tests(
            "PRAGMA defer_foreign_keys = ON;
             INSERT INTO outage (camera_id, from_us, reason) VALUES (999, 0, 'no such camera');",
        )
    });
    let err = res.expect_err("the COMMIT must fail");
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    // Nothing of it landed, and the next transaction starts afresh rather
    // than inside the one left open.
    index
        .transaction(|ix| ix.camera_id("hall").map(drop))
        .unwrap();
    assert!(index.unfinished_segments().unwrap().is_empty());
    let other = Index::open(&dir.path().join("index.db")).unwrap();
    assert!(other.unfinished_segments().unwrap().is_empty());
}

#[test]
fn every_connection_waits_for_a_busy_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.db");
    drop(Index::open(&path).unwrap());
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = {
        let path = path.clone();
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch("BEGIN IMMEDIATE; INSERT INTO camera (name) VALUES ('held');")
                .unwrap();
            locked_tx.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(1500));
            conn.execute_batch("COMMIT").unwrap();
        })
    };
    locked_rx.recv().unwrap();
    let t = std::time::Instant::now();
    // Opening (schema check, pragmas) and writing both wait for the lock.
    let mut index = Index::open(&path).unwrap();
    index
        .transaction(|ix| ix.camera_id("waiting").map(drop))
        .unwrap();
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(1000),
        "the write did not wait for the lock: {:?}",
        t.elapsed()
    );
    let reader = Index::open_read_only(&path).unwrap();
    assert_eq!(reader.schema_version().unwrap(), SCHEMA_VERSION);
    holder.join().unwrap();
}

#[test]
fn the_audit_purge_takes_only_a_prefix_of_old_entries() {
    use custos::audit::AuditLog;
    use custos::index::AuditRecord;
    const Y2026: i64 = 1_795_341_600_000_000;
    const Y2000: i64 = 946_684_800_000_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.db");
    let key = custos::export::NodeKey::load_or_create(dir.path()).unwrap();
    let log = AuditLog::open(Index::open(&path).unwrap(), key).unwrap();
    // Two old entries, two recent ones, one written while the clock read
    // 2000, and a recent one after it.
    let day = 86_400_000_000;
    let times = [
        Y2026 - 2000 * day,
        Y2026 - 1999 * day,
        Y2026 - day,
        Y2026,
        Y2000,
        Y2026 + 1,
    ];
    for at_us in times {
        log.append(AuditRecord {
            at_us,
            uid: 0,
            user: "root".into(),
            pid: 1,
            role: "admin".into(),
            action: "status".into(),
            target: "-".into(),
            reason: String::new(),
            outcome: "ok".into(),
        })
        .unwrap();
    }
    let index = Index::open(&path).unwrap();
    assert_eq!(index.newest_audit_at().unwrap(), Some(Y2026 + 1));
    let cutoff = Y2026 - 3 * 365 * day;
    assert_eq!(log.purge(cutoff).unwrap(), 2);
    let seqs: Vec<i64> = index.audit_all().unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        [3, 4, 5, 6],
        "the 2000-stamped entry took newer ones with it"
    );
    assert_eq!(index.audit_anchor().unwrap().seq, 2);
    assert!(
        log.verify(None).unwrap().ok(),
        "the rest verifies from the anchor"
    );
    // Again: entry 3 is recent, so nothing more goes.
    assert_eq!(log.purge(cutoff).unwrap(), 0);
    // Once every entry is old, all of them go.
    assert_eq!(log.purge(Y2026 + 2).unwrap(), 4);
    assert_eq!(index.audit_anchor().unwrap().seq, 6);
}

#[test]
fn outages_open_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(&dir.path().join("index.db")).unwrap();
    let cam = index.camera_id("gate").unwrap();
    let a = index.begin_outage(cam, 100, "connection refused").unwrap();
    index.end_outage(a, 200).unwrap();
    index.begin_outage(cam, 500, "stalled").unwrap();
    let rows = index.outages("gate", 0, 1000).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].from_us, rows[0].to_us), (100, Some(200)));
    assert_eq!(rows[1].to_us, None);
    assert_eq!(index.end_open_outages(900).unwrap(), 1);
    assert_eq!(index.outages("gate", 0, 1000).unwrap()[1].to_us, Some(900));
    assert!(index.outages("gate", 200, 500).unwrap().is_empty());
}

#[test]
fn start_up_query_uses_the_partial_index() {
    // Recovery reads the unfinished rows at every start; with millions of
    // segments it must not scan the table.
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(&dir.path().join("index.db")).unwrap();
    let plan = index.query_plan_of_unfinished().unwrap();
    assert!(plan.contains("segment_unfinished"), "{plan}");
}

/// The index is a lower room: it owns the rows it stores (the audit rows
/// among them) and takes nothing from the modules built on it.
#[test]
fn the_index_does_not_reach_up_into_the_modules_above_it() {
    const ABOVE: [&str; 9] = [
        "api",
        "daemon",
        "ingest",
        "retention",
        "evidence",
        "export",
        "audit",
        "review",
        "cli",
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/index");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            for m in ABOVE {
                if line.contains(&format!("crate::{m}::"))
                    || line.contains(&format!("crate::{m}}}"))
                    || line.contains(&format!("crate::{m};"))
                {
                    found.push(format!("{}:{}: {line}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "upward references:\n{}", found.join("\n"));
}

/// The index chains each entry to the one before it with the hash it is
/// given, from the genesis hash, without knowing how the hash is made.
#[test]
fn the_index_links_audit_entries_with_the_hash_it_is_given() {
    use custos::index::{AUDIT_GENESIS_HASH, AuditRecord};
    let dir = tempfile::tempdir().unwrap();
    let mut index = Index::open(&dir.path().join("index.db")).unwrap();
    let record = AuditRecord {
        at_us: 1,
        uid: 0,
        user: "root".into(),
        pid: 1,
        role: "admin".into(),
        action: "status".into(),
        target: "-".into(),
        reason: String::new(),
        outcome: "ok".into(),
    };
    let mut seen = Vec::new();
    for _ in 0..3 {
        let e = index
            .append_audit(&record, |seq, r, prev| {
                seen.push((seq, prev.to_vec()));
                assert_eq!(r, &record);
                [seq as u8; 32]
            })
            .unwrap();
        assert_eq!(e.hash, [e.seq as u8; 32]);
    }
    assert_eq!(
        seen,
        [
            (1, AUDIT_GENESIS_HASH.to_vec()),
            (2, vec![1; 32]),
            (3, vec![2; 32])
        ]
    );
    let stored: Vec<(i64, Vec<u8>)> = index
        .audit_all()
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.prev_hash))
        .collect();
    assert_eq!(stored, seen);
    // A head whose stored hash is not 32 bytes is not chained onto.
    index
        .tamper_for_tests("UPDATE audit SET hash = x'00' WHERE seq = 3")
        .unwrap();
    let err = index.append_audit(&record, |_, _, _| [0; 32]).unwrap_err();
    assert!(
        err.message.contains("audit entry 3 has a hash of 1 bytes"),
        "{err}"
    );
}

/// `audit list --camera X` matches entries whose target names camera X as
/// a whole word, in any of the forms the API writes, and no other camera.
#[test]
fn audit_entries_filter_by_the_camera_their_target_names() {
    use custos::index::{AuditFilter, AuditRecord};
    let dir = tempfile::tempdir().unwrap();
    let mut index = Index::open(&dir.path().join("index.db")).unwrap();
    let targets = [
        "camera gate from 2026-03-01 10:00:00 +02:00 to 2026-03-01 10:05:00 +02:00",
        "camera gate: enable",
        "camera gate",
        "camera gate2 from 2026-03-01 10:00:00 +02:00 to 2026-03-01 11:00:00 +02:00",
        "case C-1 camera gate",
        "new access request, cameras yard,gate from a to b",
        "new access request, cameras yard from a to b",
        "camera yard live",
        "from start to end",
    ];
    for (i, target) in targets.iter().enumerate() {
        let record = AuditRecord {
            at_us: i as i64 + 1,
            uid: 0,
            user: "root".into(),
            pid: 1,
            role: "dpo".into(),
            action: "view".into(),
            target: (*target).into(),
            reason: String::new(),
            outcome: "ok".into(),
        };
        index.append_audit(&record, |_, _, _| [0; 32]).unwrap();
    }
    let about = |camera: &str| -> Vec<String> {
        let mut found: Vec<String> = index
            .audit_entries(&AuditFilter {
                camera: Some(camera.into()),
                ..AuditFilter::default()
            })
            .unwrap()
            .into_iter()
            .map(|e| e.record.target)
            .collect();
        found.reverse();
        found
    };
    assert_eq!(
        about("gate"),
        [targets[0], targets[1], targets[2], targets[4], targets[5]]
    );
    assert_eq!(about("gate2"), [targets[3]]);
    assert_eq!(about("yard"), [targets[5], targets[6], targets[7]]);
    assert!(about("gat").is_empty());
}
