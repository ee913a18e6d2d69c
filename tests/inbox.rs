//! Device files through the real daemon: MP4 and MOV files made by
//! GStreamer with known frame counts dropped into inboxes, taken only once
//! complete, validated, stored unaltered and indexed, quarantined with a
//! reason when not valid footage, recognised when brought twice, and
//! consistent after a kill -9 at each step of an ingest.

mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use custos::index::{Index, SegmentRow, SegmentState};
use support::daemon::{Site, files_under};

/// Two hours ago, on the minute: recent enough that retention keeps it.
fn t0() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (now - 7200) / 60 * 60
}

/// `t` (Unix seconds) as `YYYYMMDD_HHMMSS` on a clock in Vilnius.
fn vilnius_name(t: u64) -> String {
    jiff::Timestamp::from_second(t as i64)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::get("Europe/Vilnius").unwrap())
        .strftime("%Y%m%d_%H%M%S")
        .to_string()
}
/// Seconds from 1904 to 1970 (the MP4 epoch).
const MP4_EPOCH: u64 = 2_082_844_800;

/// Makes an H.264 file of `frames` frames at 25 fps with GStreamer's
/// `mux` (mp4mux or qtmux), then sets its `mvhd` creation time to
/// `created` (Unix seconds, as the device's civil clock reads; 0: unset).
fn make_video(path: &Path, frames: u32, mux: &str, created: u64) {
    let ok = Command::new("gst-launch-1.0")
        .args(["-q", "videotestsrc", &format!("num-buffers={frames}"), "!"])
        .args([
            "video/x-raw,format=I420,framerate=25/1,width=160,height=120",
            "!",
        ])
        .args(["x264enc", "key-int-max=25", "!", "h264parse", "!", mux, "!"])
        .args(["filesink", &format!("location={}", path.display())])
        .status()
        .unwrap()
        .success();
    assert!(ok, "gst-launch failed for {}", path.display());
    set_created(path, created);
}

/// Makes an H.265 + AAC file of `frames` video frames at 25 fps (mp4mux),
/// with its creation time set as [`make_video`] does.
fn make_h265_aac(path: &Path, frames: u32, created: u64) {
    let ok = Command::new("gst-launch-1.0")
        .args(["-q", "videotestsrc", &format!("num-buffers={frames}"), "!"])
        .args([
            "video/x-raw,format=I420,framerate=25/1,width=160,height=120",
            "!",
        ])
        .args([
            "x265enc",
            "key-int-max=25",
            "!",
            "h265parse",
            "!",
            "mp4mux",
            "name=m",
            "!",
        ])
        .args(["filesink", &format!("location={}", path.display())])
        .args([
            "audiotestsrc",
            "num-buffers=20",
            "!",
            "audioconvert",
            "!",
            "voaacenc",
            "!",
        ])
        .args(["aacparse", "!", "m."])
        .status()
        .unwrap()
        .success();
    assert!(ok, "gst-launch failed for {}", path.display());
    set_created(path, created);
}

fn set_created(path: &Path, created: u64) {
    let mut b = fs::read(path).unwrap();
    let i = b.windows(4).position(|w| w == b"mvhd").unwrap();
    let v = if created == 0 { 0 } else { created + MP4_EPOCH };
    if b[i + 4] == 0 {
        b[i + 8..i + 12].copy_from_slice(&(v as u32).to_be_bytes());
    } else {
        b[i + 8..i + 16].copy_from_slice(&v.to_be_bytes());
    }
    fs::write(path, b).unwrap();
}

/// A site with no cameras, a body camera (UTC clock) and a dash camera
/// (local-time clock), a dock inbox with a sub-directory per device and a
/// dash inbox whose file names carry serial and local time.
fn site() -> Site {
    site_polled_every("200ms")
}

fn site_polled_every(poll: &str) -> Site {
    let mut site = Site::new(Vec::new());
    let d = site.dir.path().to_owned();
    fs::create_dir_all(d.join("dock/bwc-07")).unwrap();
    fs::create_dir_all(d.join("dock/hh-1")).unwrap();
    fs::create_dir_all(d.join("dash")).unwrap();
    site.extra = format!(
        r#"
[[device]]
id = "bwc-07"
name = "Body camera 07"
zone = "indoor"
kind = "body"
serial = "BWC0007"
assigned_to = "officer 1043"
registered = "2026-01-01"

[[device]]
id = "dash-3"
name = "Vehicle LRA 512"
zone = "indoor"
kind = "dash"
serial = "DC0512"
assigned_to = "vehicle LRA 512"
timezone = "Europe/Vilnius"

[[zone]]
id = "quiet"
name = "Quiet"
retention_days = 10
purposes = ["safety"]
legal_basis = "GDPR Art. 6(1)(e)"
processor = "The school"

[[device]]
id = "hh-1"
name = "Handheld 1"
zone = "quiet"
kind = "handheld"
serial = "HH1"
assigned_to = "caretaker"

[[inbox]]
path = "{d}/dock"
settle = "1s"
poll = "{poll}"
quarantine = "{d}/quarantine/dock"

[[inbox]]
path = "{d}/dash"
pattern = "{{serial}}_{{YYYYMMDD}}_{{HHMMSS}}.mp4"
settle = "1s"
poll = "200ms"
quarantine = "{d}/quarantine/dash"
"#,
        d = d.display(),
        poll = poll
    );
    site
}

fn dir(site: &Site, rel: &str) -> PathBuf {
    site.dir.path().join(rel)
}

fn segments(site: &Site, device: &str) -> Vec<SegmentRow> {
    if !site.index_path().exists() {
        return Vec::new();
    }
    match Index::open_read_only(&site.index_path()) {
        Ok(ix) => ix.segments(device, 0, i64::MAX).unwrap(),
        Err(e) => {
            eprintln!("index: {e}");
            Vec::new()
        }
    }
}

fn wait_for(what: &str, site: &Site, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "{what} not within {timeout:?}; log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn complete(site: &Site, device: &str) -> Vec<SegmentRow> {
    segments(site, device)
        .into_iter()
        .filter(|s| s.state == SegmentState::Complete)
        .collect()
}

/// Drops `src` into the inbox as `rel` the way a copy tool does: written
/// under a hidden name, then renamed in.
fn rename_in(site: &Site, src: &Path, rel: &str) {
    let dest = dir(site, rel);
    let tmp = dest.with_file_name(format!(
        ".{}.tmp",
        dest.file_name().unwrap().to_string_lossy()
    ));
    fs::copy(src, &tmp).unwrap();
    fs::rename(&tmp, &dest).unwrap();
}

/// Every complete row's file matches its hash and size, no row is left
/// unfinished, every file under the root (staging aside) has a row, and
/// the staging directory is empty.
fn assert_consistent(site: &Site, devices: &[&str]) {
    let ix = Index::open_read_only(&site.index_path()).unwrap();
    let mut indexed = std::collections::BTreeSet::new();
    for d in devices {
        for s in ix.segments(d, 0, i64::MAX).unwrap() {
            assert_eq!(s.state, SegmentState::Complete, "unfinished row {s:?}");
            let path = site.root().join(&s.path);
            let (bytes, sha) = custos::storage::hash_file(&path).unwrap();
            assert_eq!((Some(bytes), Some(sha)), (s.bytes, s.sha256), "{}", s.path);
            indexed.insert(path);
        }
    }
    for f in files_under(&site.root()) {
        assert!(indexed.contains(&f), "file without a row: {}", f.display());
    }
    let staging = site.root().join(custos::inbox::STAGING_DIR);
    assert_eq!(
        fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0),
        0,
        "staging not empty"
    );
}

fn reason_of(site: &Site, rel: &str) -> String {
    fs::read_to_string(dir(site, &format!("{rel}{}", custos::inbox::REASON_SUFFIX)))
        .unwrap_or_else(|e| panic!("no reason file for {rel}: {e}; log:\n{}", site.log()))
}

#[test]
fn device_files_are_taken_validated_stored_and_quarantined() {
    let site = site();
    let t0 = t0();
    let work = tempfile::tempdir().unwrap();
    let w = |n: &str| work.path().join(n);
    make_video(&w("a.mp4"), 50, "mp4mux", t0);
    make_video(&w("b.mov"), 30, "qtmux", t0 + 60);
    make_h265_aac(&w("c.mp4"), 25, t0 + 180);
    // Dash camera: no creation time; the name carries Vilnius local time.
    make_video(&w("dash.mp4"), 25, "mp4mux", 0);
    // A corrupt file: cut in the middle.
    let whole = fs::read(w("a.mp4")).unwrap();
    fs::write(w("cut.mp4"), &whole[..whole.len() / 2]).unwrap();
    fs::write(w("notes.txt"), "not a video\n").unwrap();
    // Implausible times: a day ahead, and before the device was registered.
    make_video(&w("future.mp4"), 10, "mp4mux", t0 + 7200 + 86_400);
    make_video(&w("early.mp4"), 10, "mp4mux", 1_750_000_000); // 2025-06-15

    let daemon = site.start();
    rename_in(&site, &w("a.mp4"), "dock/bwc-07/A0001.MP4");
    rename_in(&site, &w("b.mov"), "dock/bwc-07/A0002.MOV");
    rename_in(&site, &w("c.mp4"), "dock/bwc-07/A0006.MP4");
    // Sound, from a device of a zone that forbids it (001 §19).
    rename_in(&site, &w("c.mp4"), "dock/hh-1/H0001.MP4");
    let dash_name = format!("DC0512_{}.mp4", vilnius_name(t0));
    rename_in(&site, &w("dash.mp4"), &format!("dash/{dash_name}"));
    rename_in(&site, &w("cut.mp4"), "dock/bwc-07/A0003.MP4");
    rename_in(&site, &w("notes.txt"), "dock/bwc-07/notes.txt");
    rename_in(&site, &w("a.mp4"), "dock/unknown.mp4");
    rename_in(&site, &w("future.mp4"), "dock/bwc-07/FUTURE.MP4");
    std::os::unix::fs::symlink(w("a.mp4"), dir(&site, "dock/bwc-07/LINK.MP4")).unwrap();
    rename_in(&site, &w("early.mp4"), "dock/bwc-07/EARLY.MP4");

    // A slow writer: a file growing for 4 s (settle is 1 s, pauses 0.5 s).
    make_video(&w("slow.mp4"), 40, "mp4mux", t0 + 120);
    let slow = fs::read(w("slow.mp4")).unwrap();
    {
        let mut f = fs::File::create(dir(&site, "dock/bwc-07/A0004.MP4")).unwrap();
        for chunk in slow.chunks(slow.len() / 8 + 1) {
            f.write_all(chunk).unwrap();
            f.flush().unwrap();
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    wait_for(
        "four body-camera files and a dash-camera file stored",
        &site,
        Duration::from_secs(30),
        || complete(&site, "bwc-07").len() == 4 && complete(&site, "dash-3").len() == 1,
    );
    wait_for(
        "the bad files quarantined",
        &site,
        Duration::from_secs(20),
        || {
            dir(&site, "quarantine/dock/unknown.mp4").exists()
                && dir(&site, "quarantine/dock/bwc-07/notes.txt").exists()
                && dir(&site, "quarantine/dock/bwc-07/A0003.MP4").exists()
        },
    );

    let body = complete(&site, "bwc-07");
    // Stored unaltered, at the mvhd time (UTC clock), with frames counted.
    assert_eq!(body[0].start_us, t0 as i64 * 1_000_000);
    assert_eq!(body[0].frames, Some(50));
    assert_eq!(body[0].end_us, Some(t0 as i64 * 1_000_000 + 2_000_000));
    assert_eq!(fs::read(site.root().join(&body[0].path)).unwrap(), whole);
    let day = jiff::Timestamp::from_second(t0 as i64)
        .unwrap()
        .strftime("%Y-%m-%d");
    assert!(
        body[0].path.starts_with(&format!("indoor/bwc-07/{day}/")),
        "{}",
        body[0].path
    );
    assert_eq!(body[1].frames, Some(30), "the MOV file");
    assert_eq!(body[0].video_codec.as_deref(), Some("h264"));
    // H.265 with AAC sound.
    assert_eq!(body[3].frames, Some(25));
    assert_eq!(body[3].video_codec.as_deref(), Some("h265"));
    assert_eq!(body[3].audio_codec.as_deref(), Some("aac"));
    // The slow file was taken whole, never early.
    assert_eq!(body[2].frames, Some(40));
    assert_eq!(fs::read(site.root().join(&body[2].path)).unwrap(), slow);
    assert!(
        !site.log().contains("A0004.MP4 (")
            || !dir(&site, "quarantine/dock/bwc-07/A0004.MP4").exists()
    );
    // The dash camera's local time, placed at the right UTC time.
    let dash = complete(&site, "dash-3");
    assert_eq!(
        dash[0].start_us,
        t0 as i64 * 1_000_000,
        "the name's Vilnius time, in UTC"
    );
    // The inboxes are empty, the reasons say what is wrong.
    assert!(files_under(&dir(&site, "dock")).is_empty());
    assert!(files_under(&dir(&site, "dash")).is_empty());
    let notes = reason_of(&site, "quarantine/dock/bwc-07/notes.txt");
    assert!(notes.contains("not an MP4/MOV file"), "{notes}");
    assert!(
        reason_of(&site, "quarantine/dock/bwc-07/A0003.MP4").contains("no complete movie header"),
        "{}",
        reason_of(&site, "quarantine/dock/bwc-07/A0003.MP4")
    );
    assert!(reason_of(&site, "quarantine/dock/unknown.mp4").contains("sub-directory"));
    let sound = reason_of(&site, "quarantine/dock/hh-1/H0001.MP4");
    assert!(
        sound.contains("zone \"quiet\" forbids recording sound"),
        "{sound}"
    );
    assert!(complete(&site, "hh-1").is_empty());
    let link = reason_of(&site, "quarantine/dock/bwc-07/LINK.MP4");
    assert!(link.contains("symbolic link"), "{link}");
    assert!(
        fs::symlink_metadata(dir(&site, "quarantine/dock/bwc-07/LINK.MP4"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read(w("a.mp4")).unwrap(),
        whole,
        "the link's target is left alone"
    );
    let future = reason_of(&site, "quarantine/dock/bwc-07/FUTURE.MP4");
    assert!(
        future.contains("implausible time") && future.contains("in the future"),
        "{future}"
    );
    let early = reason_of(&site, "quarantine/dock/bwc-07/EARLY.MP4");
    assert!(
        early.contains("before the device was registered (2026-01-01)"),
        "{early}"
    );
    // The quarantined files are kept byte for byte.
    assert_eq!(
        fs::read(dir(&site, "quarantine/dock/unknown.mp4")).unwrap(),
        whole
    );

    // The same file again: recognised, not stored twice, gone from the inbox.
    rename_in(&site, &w("a.mp4"), "dock/bwc-07/COPY.MP4");
    wait_for(
        "the duplicate recognised",
        &site,
        Duration::from_secs(20),
        || !dir(&site, "dock/bwc-07/COPY.MP4").exists(),
    );
    assert_eq!(complete(&site, "bwc-07").len(), 4);

    // Files waiting while the daemon was stopped are taken at start.
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    make_video(&w("later.mp4"), 25, "mp4mux", t0 + 600);
    rename_in(&site, &w("later.mp4"), "dock/bwc-07/A0005.MP4");
    let daemon = site.start();
    wait_for(
        "the waiting file taken at start",
        &site,
        Duration::from_secs(20),
        || complete(&site, "bwc-07").len() == 5,
    );
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    assert_consistent(&site, &["bwc-07", "dash-3"]);

    // Chain of custody: each ingest, duplicate and quarantine is audited
    // with the device, the file, its hash and its owner.
    let ix = Index::open_read_only(&site.index_path()).unwrap();
    let audit = ix.audit_all().unwrap();
    let ingests: Vec<_> = audit
        .iter()
        .filter(|e| e.record.action == "inbox.ingest")
        .collect();
    assert_eq!(ingests.len(), 6, "{audit:#?}");
    let sha = hex::encode(body[0].sha256.unwrap());
    assert!(ingests.iter().any(
        |e| e.record.target.contains("device bwc-07: bwc-07/A0001.MP4")
            && e.record.target.contains(&sha)
            && e.record.target.contains("owner uid 0")
    ));
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.record.action == "inbox.duplicate")
            .count(),
        1
    );
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.record.action == "inbox.quarantine")
            .count(),
        7
    );
    let recent = ix.recent_device_files(10).unwrap();
    assert_eq!(recent.len(), 6);
    let dash_row = recent.iter().find(|r| r.device == "dash-3").unwrap();
    assert_eq!(dash_row.time_source, custos::index::TimeSource::FileName);
    assert_eq!(dash_row.original_name, dash_name);
    // The segment names the device's clock too, as a camera's names RTCP.
    let dash_segments = ix.segments("dash-3", i64::MIN / 2, i64::MAX / 2).unwrap();
    assert!(!dash_segments.is_empty());
    assert!(
        dash_segments
            .iter()
            .all(|r| r.time_source == custos::index::TimeSource::FileName),
        "{dash_segments:?}"
    );
    drop(ix);

    // Device footage is footage: a hold copies it and the copy verifies.
    let config = custos::config::Config::load(&site.config_path()).unwrap();
    let index = custos::index::SharedIndex::new(Index::open(&site.index_path()).unwrap());
    let now = t0 as i64 * 1_000_000 + 3_600_000_000;
    custos::evidence::create_case(
        &index,
        &config,
        &custos::evidence::CaseRequest {
            id: "2026-0077".into(),
            title: "Incident in the street".into(),
            authority: "Police".into(),
            authority_ref: "PD-7".into(),
            legal_basis: "GDPR Art. 6(1)(c)".into(),
            review_days: None,
        },
        "officer",
        now,
    )
    .unwrap();
    let report = custos::evidence::add_hold(
        &index,
        &config,
        &custos::retention::Leases::new(),
        &custos::evidence::HoldRequest {
            case_id: "2026-0077".into(),
            camera: "bwc-07".into(),
            from_us: t0 as i64 * 1_000_000,
            to_us: t0 as i64 * 1_000_000 + 1_000_000,
        },
        now,
    )
    .unwrap();
    assert_eq!(report.copies.len(), 1, "{report:#?}");
    assert_eq!(report.copies[0].sha256, body[0].sha256.unwrap());
    assert!(
        custos::evidence::verify_copies(&index, &config, "2026-0077")
            .unwrap()
            .is_empty()
    );
}

/// kill -9 (an abort at a failpoint) at one step of an ingest; after the
/// restart the file is stored and indexed once, and the inbox is empty.
fn crash_at(failpoint: &str) {
    let site = site();
    let t0 = t0();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("a.mp4");
    make_video(&src, 25, "mp4mux", t0);
    site.write_config();
    let mut daemon = support::daemon::Daemon::start_with_failpoint(&site, Some(failpoint));
    rename_in(&site, &src, "dock/bwc-07/A0001.MP4");
    let status = daemon.wait(Duration::from_secs(30));
    assert!(
        !status.success(),
        "custosd did not stop at {failpoint}; log:\n{}",
        site.log()
    );
    assert!(
        site.log()
            .contains(&format!("failpoint {failpoint} reached"))
    );
    // Either the inbox file or the stored one (or both, until the restart).
    let inbox_file = dir(&site, "dock/bwc-07/A0001.MP4");
    let stored = complete(&site, "bwc-07");
    assert!(
        inbox_file.exists() || stored.len() == 1,
        "neither after {failpoint}"
    );

    let daemon = site.start();
    wait_for(
        "the file stored after the restart",
        &site,
        Duration::from_secs(30),
        || !inbox_file.exists() && complete(&site, "bwc-07").len() == 1,
    );
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    assert_consistent(&site, &["bwc-07"]);
    let stored = complete(&site, "bwc-07");
    assert_eq!(
        fs::read(site.root().join(&stored[0].path)).unwrap(),
        fs::read(&src).unwrap()
    );
    let ix = Index::open_read_only(&site.index_path()).unwrap();
    let files = ix.recent_device_files(10).unwrap();
    assert_eq!(files.len(), 1, "{files:#?}");
    assert_eq!(Some(files[0].sha256), stored[0].sha256);
}

#[test]
fn kill_after_the_copy_leaves_the_inbox_file() {
    crash_at("inbox-after-copy");
}

#[test]
fn kill_after_the_rows_leaves_the_inbox_file_and_recovery_drops_the_rows() {
    crash_at("inbox-after-row");
}

#[test]
fn kill_after_the_rename_is_completed_by_recovery() {
    crash_at("inbox-after-rename");
}

#[test]
fn kill_before_the_inbox_file_is_removed_leaves_a_duplicate_that_goes() {
    crash_at("inbox-after-complete");
}

#[test]
fn a_burst_of_200_files_is_taken_whole() {
    let site = site();
    let t0 = t0();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("a.mp4");
    make_video(&src, 10, "mp4mux", t0);
    let daemon = site.start();
    for i in 0..200u64 {
        let p = work.path().join(format!("f{i}.mp4"));
        fs::copy(&src, &p).unwrap();
        set_created(&p, t0 - 7200 + i * 10);
        rename_in(&site, &p, &format!("dock/bwc-07/F{i:04}.MP4"));
    }
    wait_for("200 files stored", &site, Duration::from_secs(120), || {
        complete(&site, "bwc-07").len() == 200
    });
    assert!(files_under(&dir(&site, "dock")).is_empty());
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    assert_consistent(&site, &["bwc-07"]);
    let segs = complete(&site, "bwc-07");
    assert!(segs.iter().all(|s| s.frames == Some(10)));
}

/// Files as ffmpeg writes them (H.264 with AAC; one with its `moov` at the
/// end, one with `-movflags +faststart`, one fragmented), with their
/// creation time: each is taken whole with its frame count.
#[test]
fn files_made_by_ffmpeg_are_taken_with_their_frame_counts() {
    let site = site();
    let t0 = t0();
    let work = tempfile::tempdir().unwrap();
    let created = jiff::Timestamp::from_second(t0 as i64).unwrap().to_string();
    let kinds: [(&str, &[&str]); 3] = [
        ("plain", &[]),
        ("faststart", &["-movflags", "+faststart"]),
        (
            "fragmented",
            &["-movflags", "+frag_keyframe+empty_moov+default_base_moof"],
        ),
    ];
    let daemon = site.start();
    for (i, (name, flags)) in kinds.iter().enumerate() {
        let out = work.path().join(format!("{name}.mp4"));
        let status = Command::new("ffmpeg")
            .args(["-loglevel", "error", "-f", "lavfi", "-i"])
            .arg("testsrc=size=320x240:rate=25")
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args([
                "-t", "4", "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p",
            ])
            .args(["-c:a", "aac", "-shortest"])
            .args(["-metadata", &format!("creation_time={created}")])
            .args(*flags)
            .arg(&out)
            .status()
            .expect("ffmpeg (scripts/setup installs it)");
        assert!(status.success(), "ffmpeg {name}");
        // One minute apart: footage of one device never overlaps.
        set_created(&out, t0 - 3600 + i as u64 * 60);
        rename_in(&site, &out, &format!("dock/bwc-07/{name}.mp4"));
    }
    wait_for(
        "3 ffmpeg files stored",
        &site,
        Duration::from_secs(60),
        || complete(&site, "bwc-07").len() == 3,
    );
    assert!(
        files_under(&dir(&site, "dock")).is_empty(),
        "all taken, none quarantined"
    );
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    assert_consistent(&site, &["bwc-07"]);
    for s in complete(&site, "bwc-07") {
        assert_eq!(s.frames, Some(100), "{s:?}");
        assert_eq!(s.audio_codec.as_deref(), Some("aac"), "{s:?}");
    }
}

#[test]
fn a_recording_longer_than_a_camera_segment_is_kept_whole_and_found_anywhere_in_it() {
    // Body cameras write an incident as one file, often past 15 minutes;
    // the exhibit is kept as it came, not split.
    let site = site();
    let t0 = t0();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("long.mp4");
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc=size=160x120:rate=2")
        .args([
            "-t", "1500", "-c:v", "libx264", "-g", "20", "-pix_fmt", "yuv420p",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg (scripts/setup installs it)");
    assert!(status.success());
    let start = t0 - 7200;
    set_created(&out, start);
    let bytes = fs::read(&out).unwrap();
    let daemon = site.start();
    rename_in(&site, &out, "dock/bwc-07/LONG.MP4");
    wait_for(
        "the long file stored",
        &site,
        Duration::from_secs(60),
        || complete(&site, "bwc-07").len() == 1,
    );
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    let stored = complete(&site, "bwc-07");
    assert_eq!(stored[0].frames, Some(3000));
    assert_eq!(stored[0].end_us, Some((start as i64 + 1500) * 1_000_000));
    assert_eq!(fs::read(site.root().join(&stored[0].path)).unwrap(), bytes);
    // A minute 24 minutes in finds it, as a listing, export or view asks.
    let ix = Index::open_read_only(&site.index_path()).unwrap();
    let from = (start as i64 + 24 * 60) * 1_000_000;
    let found = ix.segments("bwc-07", from, from + 60_000_000).unwrap();
    assert_eq!(found.len(), 1, "the minute 24 minutes in finds no footage");
    assert_consistent(&site, &["bwc-07"]);
}

#[test]
fn inbox_status_and_retry_through_custosctl_after_a_reload() {
    use support::api::{ADMIN, DPO, OPERATOR, VIEWER, ctl_as};
    let site = site();
    let t0 = t0();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("a.mp4");
    make_video(&src, 25, "mp4mux", t0);
    let daemon = support::api::start(&site, "");
    fs::create_dir_all(dir(&site, "dock/bwc-08")).unwrap();
    rename_in(&site, &src, "dock/bwc-08/B0001.MP4");
    wait_for(
        "the file of an unknown device quarantined",
        &site,
        Duration::from_secs(20),
        || dir(&site, "quarantine/dock/bwc-08/B0001.MP4").exists(),
    );
    let status = |uid: u32| {
        let out = ctl_as(&site, uid, &["--json", "inbox", "status"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let v = status(OPERATOR);
    assert_eq!(v["quarantined"][0]["file"], "bwc-08/B0001.MP4", "{v:#}");
    let reason = v["quarantined"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("no [[device]] has id \"bwc-08\""),
        "{reason}"
    );
    assert_eq!(
        ctl_as(&site, VIEWER, &["inbox", "status"]).status.code(),
        Some(4)
    );
    let table = ctl_as(&site, ADMIN, &["inbox", "status"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("1 quarantined"));
    let metrics =
        String::from_utf8_lossy(&ctl_as(&site, OPERATOR, &["metrics"]).stdout).into_owned();
    assert!(
        metrics.contains("custos_inbox_quarantined_files 1"),
        "{metrics}"
    );

    // The device is added and the config reloaded; the file is taken back.
    let mut text = fs::read_to_string(site.config_path()).unwrap();
    text.push_str(
        "\n[[device]]\nid = \"bwc-08\"\nname = \"Body camera 08\"\nzone = \"indoor\"\nkind = \"body\"\n\
         serial = \"BWC0008\"\nassigned_to = \"officer 1044\"\n",
    );
    fs::write(site.config_path(), text).unwrap();
    assert!(ctl_as(&site, 0, &["reload"]).status.success());
    let refused = ctl_as(&site, DPO, &["inbox", "retry", "bwc-08/B0001.MP4"]);
    assert_eq!(
        refused.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let out = ctl_as(&site, OPERATOR, &["inbox", "retry", "bwc-08/B0001.MP4"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(
        "the retried file stored",
        &site,
        Duration::from_secs(20),
        || complete(&site, "bwc-08").len() == 1,
    );
    let v = status(OPERATOR);
    assert_eq!(v["quarantined"].as_array().unwrap().len(), 0, "{v:#}");
    assert_eq!(v["recent"][0]["device"], "bwc-08");
    assert_eq!(v["recent"][0]["original_name"], "bwc-08/B0001.MP4");
    // Device footage is listed like a camera's, to a viewer of its zone.
    let o = ctl_as(
        &site,
        VIEWER,
        &[
            "--json",
            "recordings",
            "--camera",
            "bwc-08",
            "--reason",
            "incident 7",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("indoor/bwc-08/"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // Device footage is exported like a camera's, and the package verifies.
    use support::api::EVIDENCE;
    let exports = tempfile::tempdir().unwrap();
    fs::set_permissions(
        exports.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let out_dir = exports.path().join("pkg");
    let at = |t: u64| jiff::Timestamp::from_second(t as i64).unwrap().to_string();
    let (from, to) = (at(t0), at(t0 + 1));
    let o = ctl_as(
        &site,
        EVIDENCE,
        &[
            "export",
            "--camera",
            "bwc-08",
            "--from",
            &from,
            "--to",
            &to,
            "--recipient",
            "police",
            "--reason",
            "incident 7",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = ctl_as(&site, EVIDENCE, &["verify", out_dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let manifest = fs::read_to_string(out_dir.join("manifest.json")).unwrap_or_default();
    assert!(manifest.contains("serial BWC0008"), "{manifest}");
    // The time's source is the file's, not the server clock's.
    let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    for s in m["sources"].as_array().unwrap() {
        let ts = s["time_source"].as_str().unwrap();
        assert!(ts == "metadata" || ts == "file_name", "{manifest}");
    }
    assert!(
        !m["time"]["sources"].to_string().contains("local"),
        "{manifest}"
    );

    // A data-subject request may name the device as the place of the event.
    let o = ctl_as(
        &site,
        DPO,
        &[
            "request",
            "open",
            "--kind",
            "access",
            "--requester",
            "J. Jonaitis",
            "--contact",
            "j@example.lt",
            "--identity-check",
            "ID card shown",
            "--camera",
            "bwc-08",
            "--from",
            &from,
            "--to",
            &to,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let bad = ctl_as(&site, OPERATOR, &["inbox", "retry", "../etc/passwd"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    assert_consistent(&site, &["bwc-07", "bwc-08"]);
}

#[test]
fn change_events_wake_the_inbox_between_polls() {
    // Polled once an hour: only a change event (and the settle time after
    // it) can have the file taken within seconds.
    let site = site_polled_every("1h");
    let t0 = t0();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("a.mp4");
    make_video(&src, 25, "mp4mux", t0);
    let daemon = site.start();
    // The first scan, at start, has found the inbox empty.
    wait_for("the daemon up", &site, Duration::from_secs(20), || {
        site.log().contains("admin API listening")
    });
    std::thread::sleep(Duration::from_millis(500));
    rename_in(&site, &src, "dock/bwc-07/A0001.MP4");
    let t = Instant::now();
    wait_for(
        "the file taken after its event",
        &site,
        Duration::from_secs(15),
        || complete(&site, "bwc-07").len() == 1,
    );
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "taken before its settle time"
    );
    assert!(daemon.terminate(Duration::from_secs(20)).success());
}

#[test]
fn a_file_still_open_for_writing_is_not_taken_while_its_writer_pauses() {
    // A copy that stalls (a USB drive spinning up, a network hiccup) for
    // longer than the settle time, with the file still open: unchanged
    // size is not enough, the open writer keeps it waiting.
    let site = site_polled_every("200ms");
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("a.mp4");
    make_video(&src, 50, "mp4mux", t0());
    let bytes = fs::read(&src).unwrap();
    let daemon = site.start();
    wait_for("the daemon up", &site, Duration::from_secs(20), || {
        site.log().contains("admin API listening")
    });
    let target = dir(&site, "dock/bwc-07/A0001.MP4");
    let mut f = fs::File::create(&target).unwrap();
    f.write_all(&bytes[..bytes.len() / 2]).unwrap();
    f.flush().unwrap();
    // Three settle times (1 s each) with the writer open and silent.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        target.exists() && segments(&site, "bwc-07").is_empty(),
        "a half-written file was taken while its writer had it open"
    );
    assert!(
        !dir(&site, "quarantine/dock/bwc-07/A0001.MP4").exists(),
        "a half-written file was quarantined while its writer had it open"
    );
    f.write_all(&bytes[bytes.len() / 2..]).unwrap();
    drop(f);
    wait_for(
        "the whole file taken once closed",
        &site,
        Duration::from_secs(15),
        || complete(&site, "bwc-07").len() == 1,
    );
    let stored = complete(&site, "bwc-07");
    assert_eq!(stored[0].frames, Some(50));
    assert_eq!(fs::read(site.root().join(&stored[0].path)).unwrap(), bytes);
    assert!(daemon.terminate(Duration::from_secs(20)).success());
}

#[test]
fn device_footage_past_its_zone_retention_is_deleted_by_its_recording_time() {
    let mut site = site();
    // The reaper's own round is hourly: only the ingest waking it can have
    // the expired file deleted within the 30 s below.
    site.extra.push_str("\n[retention]\ninterval = \"1h\"\n");
    // Recorded 11 days ago; zone "indoor" keeps footage 10 days.
    let old = t0() - 11 * 86_400 + 7200;
    let recent = t0();
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (work.path().join("a.mp4"), work.path().join("b.mp4"));
    make_video(&a, 25, "mp4mux", old);
    make_video(&b, 25, "mp4mux", recent);
    let daemon = site.start();
    rename_in(&site, &a, "dock/bwc-07/OLD.MP4");
    rename_in(&site, &b, "dock/bwc-07/NEW.MP4");
    wait_for(
        "both taken, the old one then deleted",
        &site,
        Duration::from_secs(30),
        || {
            files_under(&dir(&site, "dock")).is_empty()
                && segments(&site, "bwc-07").len() == 1
                && Index::open_read_only(&site.index_path())
                    .map(|ix| ix.recent_device_files(10).unwrap().len() == 2)
                    .unwrap_or(false)
        },
    );
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    let left = complete(&site, "bwc-07");
    assert_eq!(left[0].start_us, recent as i64 * 1_000_000);
    let ix = Index::open_read_only(&site.index_path()).unwrap();
    let journal = ix.deletion_journal(0, i64::MAX).unwrap();
    assert!(
        journal
            .iter()
            .any(|d| d.camera == "bwc-07" && d.from_us == old as i64 * 1_000_000),
        "{journal:#?}"
    );
    assert_consistent(&site, &["bwc-07"]);
}

#[test]
fn with_the_audit_log_unwritable_no_file_is_taken_or_quarantined() {
    let site = site();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("a.mp4");
    make_video(&src, 25, "mp4mux", t0());
    let daemon = site.start();
    wait_for("the index", &site, Duration::from_secs(20), || {
        site.log().contains("admin API listening")
    });
    let index = Index::open(&site.index_path()).unwrap();
    index
        .tamper_for_tests(
            "CREATE TRIGGER no_audit BEFORE INSERT ON audit \
             BEGIN SELECT RAISE(ABORT, 'audit insert refused by the test'); END",
        )
        .unwrap();
    rename_in(&site, &src, "dock/bwc-07/A0001.MP4");
    fs::write(dir(&site, "dock/bwc-07/notes.txt"), "not a video\n").unwrap();
    wait_for(
        "both refused for want of an audit entry",
        &site,
        Duration::from_secs(20),
        || site.log().matches("cannot take the inbox file").count() >= 2,
    );
    assert!(dir(&site, "dock/bwc-07/A0001.MP4").exists());
    assert!(dir(&site, "dock/bwc-07/notes.txt").exists());
    assert!(files_under(&dir(&site, "quarantine")).is_empty());
    assert!(segments(&site, "bwc-07").is_empty());
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    assert_consistent(&site, &["bwc-07"]);
    index.tamper_for_tests("DROP TRIGGER no_audit").unwrap();
    drop(index);
    let daemon = site.start();
    wait_for(
        "both taken once audited",
        &site,
        Duration::from_secs(20),
        || {
            complete(&site, "bwc-07").len() == 1
                && dir(&site, "quarantine/dock/bwc-07/notes.txt").exists()
        },
    );
    assert!(daemon.terminate(Duration::from_secs(20)).success());
}
