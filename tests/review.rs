//! Finding an incident in hours of footage, end to end: the real custosd
//! records a simulated camera that is moving, then still, then moving,
//! then still; `custosctl activity` (and `sheet`) read that range as the
//! users the grants name. RULES 001 §24-26, 004 §12-13 (access for a duty,
//! with a purpose, audited).

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::sync::OnceLock;
use std::time::Duration;

use custos::index::{AuditFilter, AuditRecord, SegmentState};
use custos::sim::{SimCamera, SimConfig, Simulator};
use support::api::{ADMIN, DPO, VIEWER, VIEWER_OUTDOOR, ctl_as, rfc3339, wait_socket};
use support::daemon::{Daemon, Site, SiteCamera};

const CAM: &str = "hall";
/// How long each phase lasts.
const PHASE_US: i64 = 6_000_000;
/// Whether phase i is still: moving, still, moving, still.
const STILL: [bool; 4] = [false, true, false, true];

struct Recorded {
    site: Site,
    /// Wall-clock start of each phase, and the end of the last.
    phases: Vec<i64>,
}

fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// Records once for all tests of this binary.
fn recorded() -> &'static Recorded {
    static R: OnceLock<Recorded> = OnceLock::new();
    R.get_or_init(|| {
        let mut cam = SimCamera::new(CAM);
        cam.keyframe_interval_frames = 25; // 1 s GOP
        let sim = Simulator::start(SimConfig {
            address: "127.0.0.1".into(),
            port: 0,
            cameras: vec![cam],
        })
        .unwrap();
        let mut sc = SiteCamera::new(CAM, sim.url(CAM));
        sc.segment_secs = 4;
        let site = Site::new(vec![sc]);
        let daemon = site.start();
        site.wait_complete(CAM, 1, Duration::from_secs(60));
        let mut phases = Vec::new();
        for still in STILL {
            sim.still(CAM, still);
            phases.push(now_us());
            std::thread::sleep(Duration::from_micros(PHASE_US as u64));
        }
        phases.push(now_us());
        sim.still(CAM, false);
        // The last phase's segment is finished once the next one starts.
        let end = *phases.last().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !site
            .segments(CAM)
            .iter()
            .any(|s| s.state == SegmentState::Complete && s.end_us.is_some_and(|e| e >= end))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the range was not recorded: {}",
                site.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(
            daemon.terminate(Duration::from_secs(20)).success(),
            "{}",
            site.log()
        );
        sim.shutdown();
        let mut config = fs::read_to_string(site.config_path()).unwrap();
        config.push_str(support::api::GRANTS);
        fs::write(site.config_path(), config).unwrap();
        fs::set_permissions(site.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        Recorded { site, phases }
    })
}

/// Tests that run custosd on the shared site take turns (one socket).
static DAEMON: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn start(r: &Recorded) -> (std::sync::MutexGuard<'static, ()>, Daemon) {
    let turn = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let daemon = Daemon::start(&r.site);
    wait_socket(&r.site);
    (turn, daemon)
}

fn audit(r: &Recorded, action: &str, reason: &str) -> Vec<AuditRecord> {
    r.site
        .index()
        .audit_entries(&AuditFilter {
            from_us: None,
            to_us: None,
            uid: None,
            action: Some(action.into()),
            camera: None,
            limit: None,
        })
        .unwrap()
        .into_iter()
        .map(|e| e.record)
        .filter(|e| e.reason == reason)
        .collect()
}

/// The recorded phases, as `--from` and `--to`.
fn range(r: &Recorded) -> (String, String) {
    let from = r.phases[0];
    (rfc3339(from), rfc3339(from + STILL.len() as i64 * PHASE_US))
}

/// `custosctl --json activity` of the recorded phases as `uid`.
fn activity(r: &Recorded, uid: u32, every: &str, reason: &str) -> std::process::Output {
    let (from, to) = range(r);
    ctl_as(
        &r.site,
        uid,
        &[
            "--json", "activity", "--camera", CAM, "--from", &from, "--to", &to, "--every", every,
            "--reason", reason,
        ],
    )
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "custosctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The rates (bytes per second of non-key frames) of the buckets well
/// inside moving phases, and of those well inside still ones: a second's
/// margin each side for the switch and the encoder's rate control.
fn by_phase(r: &Recorded, v: &serde_json::Value) -> (Vec<u64>, Vec<u64>) {
    let (mut moving, mut still) = (Vec::new(), Vec::new());
    for b in v["buckets"].as_array().unwrap() {
        let (a, z) = (b["from_us"].as_i64().unwrap(), b["to_us"].as_i64().unwrap());
        let Some(i) = (0..STILL.len())
            .find(|&i| a >= r.phases[i] + 1_000_000 && z <= r.phases[i + 1] - 500_000)
        else {
            continue;
        };
        assert!(b["recorded_s"].as_u64().unwrap() > 0, "{b}");
        let rate = b["bytes_per_s"].as_u64().unwrap();
        if STILL[i] { &mut still } else { &mut moving }.push(rate);
    }
    (moving, still)
}

#[test]
fn activity_shows_the_moving_intervals_clearly_above_the_still_ones_and_is_audited() {
    let r = recorded();
    let (_turn, _daemon) = start(r);
    let reason = "activity: where did it move";
    let v = json(&activity(r, VIEWER, "2s", reason));
    let buckets = v["buckets"].as_array().unwrap();
    assert_eq!(v["every_s"], 2, "{v}");
    assert_eq!(buckets.len(), 12, "four 6 s phases in 2 s intervals: {v}");
    assert_eq!(v["segments_counted_from_files"], 0, "{v}");
    let (moving, still) = by_phase(r, &v);
    assert!(moving.len() >= 2 && still.len() >= 2, "{v}");
    let quietest_moving = *moving.iter().min().unwrap();
    let busiest_still = *still.iter().max().unwrap();
    assert!(
        quietest_moving > 2 * busiest_still,
        "moving intervals {moving:?} should be clearly above still ones {still:?}"
    );
    // The terminal form: a bar per interval, longest where it moved.
    let (from, to) = range(r);
    let out = ctl_as(
        &r.site,
        DPO,
        &[
            "activity", "--camera", CAM, "--from", &from, "--to", &to, "--every", "3s", "--reason",
            reason,
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains("█")).count(),
        8,
        "one bar per 3 s interval: {text}"
    );
    // One entry per query, with the camera and the range asked for.
    let entries = audit(r, "activity", reason);
    assert_eq!(entries.len(), 2, "{entries:?}");
    for e in &entries {
        assert_eq!(e.outcome, "ok", "{e:?}");
        assert!(
            e.target.starts_with(&format!("camera {CAM} from ")),
            "{e:?}"
        );
        assert!(e.target.contains("footage"), "delivered: {e:?}");
    }
    // `audit list --camera` finds them by the camera, and another camera's
    // filter does not.
    let listed = |camera: &str| {
        let v = json(&ctl_as(
            &r.site,
            DPO,
            &[
                "--json", "audit", "list", "--camera", camera, "--action", "activity",
            ],
        ));
        v["entries"].as_array().unwrap().clone()
    };
    let ours = listed(CAM);
    assert_eq!(ours.len(), 2, "{ours:?}");
    assert!(
        ours.iter().all(|e| e["target"]
            .as_str()
            .unwrap()
            .starts_with("camera hall from ")),
        "{ours:?}"
    );
    assert!(listed("hal").is_empty());
}

#[test]
fn activity_of_segments_without_a_summary_is_counted_from_their_files_alike() {
    let r = recorded();
    let (_turn, daemon) = start(r);
    let reason = "activity: summary against files";
    let counted = json(&activity(r, VIEWER, "1s", reason));
    drop(daemon);
    // As a segment recorded before the recorder kept the summary.
    let db = rusqlite::Connection::open(r.site.index_path()).unwrap();
    let saved: Vec<(i64, Option<Vec<u8>>)> = db
        .prepare("SELECT id, activity FROM segment")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    db.execute("UPDATE segment SET activity = NULL", [])
        .unwrap();
    let daemon = Daemon::start(&r.site);
    wait_socket(&r.site);
    let from_files = json(&activity(r, VIEWER, "1s", reason));
    drop(daemon);
    for (id, blob) in saved {
        db.execute(
            "UPDATE segment SET activity = ?1 WHERE id = ?2",
            rusqlite::params![blob, id],
        )
        .unwrap();
    }
    assert!(
        from_files["segments_counted_from_files"].as_u64().unwrap() >= 2,
        "{from_files}"
    );
    assert_eq!(
        counted["buckets"], from_files["buckets"],
        "the recorder's summary and the files' frames disagree"
    );
}

#[test]
fn activity_is_refused_outside_the_viewers_zones_without_a_reason_and_to_admin() {
    let r = recorded();
    let (_turn, _daemon) = start(r);
    for (uid, reason, expect) in [
        (VIEWER_OUTDOOR, "activity: wrong zone", "zone"),
        (ADMIN, "activity: admin", "role"),
        (VIEWER, " ", "purpose"),
    ] {
        let out = activity(r, uid, "1m", reason);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "uid {uid} got {:?}", out.stdout);
        assert!(err.contains(expect), "uid {uid}: {err}");
        assert!(out.stdout.is_empty(), "uid {uid}");
    }
    let refused = audit(r, "activity", "activity: wrong zone");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].outcome, "permission_denied", "{refused:?}");
    assert!(refused[0].target.contains(&format!("camera {CAM} from ")));
    let out = activity(r, VIEWER, "1500ms", "activity: odd interval");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("whole number of seconds"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Decodes a PNG into (width, height, packed RGB) with GStreamer's pngdec.
fn decode_png(path: &std::path::Path) -> (usize, usize, Vec<u8>) {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! pngdec ! videoconvert ! video/x-raw,format=RGB \
         ! appsink name=sink sync=false",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gstreamer_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(10))
        .unwrap();
    let s = sample.caps().unwrap().structure(0).unwrap().to_owned();
    let (w, h) = (
        s.get::<i32>("width").unwrap() as usize,
        s.get::<i32>("height").unwrap() as usize,
    );
    let map = sample.buffer().unwrap().map_readable().unwrap();
    let stride = (w * 3 + 3) & !3;
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        rgb.extend_from_slice(&map[y * stride..y * stride + w * 3]);
    }
    pipeline.set_state(gst::State::Null).unwrap();
    (w, h, rgb)
}

/// The luma of the pixels in a rectangle of a packed RGB picture.
fn region(rgb: &[u8], width: usize, (x, y, w, h): (usize, usize, usize, usize)) -> Vec<f64> {
    let mut out = Vec::with_capacity(w * h);
    for row in y..y + h {
        for col in x..x + w {
            let p = &rgb[(row * width + col) * 3..][..3];
            out.push(0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]));
        }
    }
    out
}

fn variance(v: &[f64]) -> f64 {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64
}

#[test]
fn a_contact_sheet_has_a_tile_per_interval_none_blank_each_labelled_and_is_audited() {
    let r = recorded();
    let (_turn, _daemon) = start(r);
    let reason = "sheet: what happened";
    let (from, to) = range(r);
    let out_dir = tempfile::tempdir().unwrap();
    fs::set_permissions(out_dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let file = out_dir.path().join("sheet.png");
    let out = ctl_as(
        &r.site,
        VIEWER,
        &[
            "--json",
            "sheet",
            "--camera",
            CAM,
            "--from",
            &from,
            "--to",
            &to,
            "--every",
            "2s",
            "--reason",
            reason,
            "--out",
            file.to_str().unwrap(),
        ],
    );
    let v = json(&out);
    let tiles = v["tiles"].as_array().unwrap();
    assert_eq!(tiles.len(), 12, "24 s at 2 s: {v}");
    let from_us = r.phases[0];
    for (i, t) in tiles.iter().enumerate() {
        let at = t["at_us"]
            .as_i64()
            .unwrap_or_else(|| panic!("tile {i} empty: {v}"));
        let start = from_us + i as i64 * 2_000_000;
        assert!(
            at >= start - 1_000_000 && at < start + 2_000_000,
            "tile {i} at {at} is not of its interval from {start}"
        );
    }
    let (w, h, rgb) = decode_png(&file);
    // Six tiles a row, 320 wide, 240 high for the 320x240 camera, and a
    // 24-pixel label band under each.
    assert_eq!((w, h), (6 * 320, 2 * (240 + 24)));
    let mut bands = Vec::new();
    for i in 0..12 {
        let (x, y) = ((i % 6) * 320, (i / 6) * 264);
        let picture = region(&rgb, w, (x, y, 320, 240));
        assert!(
            variance(&picture) > 20.0,
            "tile {i} is blank (variance {})",
            variance(&picture)
        );
        let band = region(&rgb, w, (x, y + 240, 320, 24));
        let lit = band.iter().filter(|&&l| l > 160.0).count();
        assert!(lit > 40, "tile {i} has no label ({lit} bright pixels)");
        bands.push(band);
    }
    // A label names its own time: tiles of different seconds differ there.
    for i in 1..12 {
        let (a, b) = (tiles[i - 1]["at_us"].as_i64(), tiles[i]["at_us"].as_i64());
        if a.map(|t| t / 1_000_000) != b.map(|t| t / 1_000_000) {
            assert_ne!(
                bands[i - 1],
                bands[i],
                "tiles {} and {i} have one label",
                i - 1
            );
        }
    }
    let asked = audit(r, "sheet", reason);
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].target.starts_with(&format!("camera {CAM} from "))
            && asked[0].target.contains("12 of 12 tiles"),
        "{asked:?}"
    );
    let finished = audit(r, "sheet.finished", reason);
    assert_eq!(finished.len(), 1, "{finished:?}");
    // Outside the viewer's zones: refused, nothing written.
    let other = out_dir.path().join("other.png");
    let out = ctl_as(
        &r.site,
        VIEWER_OUTDOOR,
        &[
            "sheet",
            "--camera",
            CAM,
            "--from",
            &from,
            "--to",
            &to,
            "--reason",
            reason,
            "--out",
            other.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(!other.exists());
}
