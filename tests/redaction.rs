//! A redacted copy for a data subject, end to end through the real daemon
//! (issue 18; 001 §35.2; 004 §17, §27): a body-camera file with two
//! people's faces moving across the picture (the public-domain astronaut
//! of scikit-image, installed by scripts/setup) and sound is brought in
//! through an inbox; a copy request is registered; `custosctl request
//! redact` finds and follows the faces with the real CenterFace model;
//! detection is cancelled and resumed; the requester's track is kept and
//! the other masked; the copy is rendered with x264enc; its preparer
//! cannot approve it, a second DPO does; the released package verifies
//! with `custosctl verify`, the disclosure register names the request, and
//! the master footage is byte-for-byte unchanged. Every frame of the copy
//! is decoded and checked.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use custos::index::{Index, SegmentState};
use custos::redact::{DEFAULT_THRESHOLD, Detector, FaceBox, MODEL_FILE, frames, model_dir};
use support::api::{DPO, EVIDENCE, ctl_as, ctl_json, rfc3339};
use support::daemon::Site;

/// A second DPO (four eyes).
const DPO2: u32 = 2008;
const W: u32 = 512;
const H: u32 = 256;
/// The pasted astronaut picture's side, in pixels.
const S: u32 = 160;
const FRAMES: u32 = 40;
const FPS: u32 = 10;

/// The astronaut's face in her picture, as fractions (tests/redact.rs).
const FACE: FaceBox = FaceBox {
    x0: 0.352,
    y0: 0.121,
    x1: 0.531,
    y1: 0.352,
    score: 1.0,
};

/// Where picture `who` (0: the requester, moving right; 1: the other
/// person, moving left) is in frame `i`: its top-left corner.
fn place(who: usize, i: u32) -> (u32, u32) {
    match who {
        0 => (5 * i / 2, 0),
        _ => (352 - 5 * i / 2, 96),
    }
}

/// `who`'s face box in frame `i`, as fractions of the frame.
fn face_at(who: usize, i: u32) -> FaceBox {
    let (px, py) = place(who, i);
    FaceBox {
        x0: (px as f32 + FACE.x0 * S as f32) / W as f32,
        y0: (py as f32 + FACE.y0 * S as f32) / H as f32,
        x1: (px as f32 + FACE.x1 * S as f32) / W as f32,
        y1: (py as f32 + FACE.y1 * S as f32) / H as f32,
        score: 1.0,
    }
}

/// The synthetic frames: a dim background, the two pictures pasted in.
fn source_frames() -> Vec<Vec<u8>> {
    let face = frames::still_rgb(&model_dir().join("test").join("astronaut.png"), S, S).unwrap();
    (0..FRAMES)
        .map(|i| {
            let mut rgb: Vec<u8> = (0..W * H * 3)
                .map(|p| 60 + ((p / 3) % W / 8) as u8)
                .collect();
            for who in 0..2 {
                let (px, py) = place(who, i);
                for y in 0..S {
                    let from = (y * S * 3) as usize;
                    let to = (((py + y) * W + px) * 3) as usize;
                    rgb[to..to + (S * 3) as usize]
                        .copy_from_slice(&face[from..from + (S * 3) as usize]);
                }
            }
            rgb
        })
        .collect()
}

/// Encodes the frames (H.264, a key frame a second) with 4 s of AAC sound
/// into an MP4 whose creation time is `created` (Unix seconds).
fn make_clip(path: &Path, frames: &[Vec<u8>], created: u64) {
    gst::init().unwrap();
    let desc = format!(
        "appsrc name=src format=time ! videoconvert ! video/x-raw,format=I420 ! \
         x264enc key-int-max={FPS} ! h264parse ! mp4mux name=mux ! filesink location={} \
         audiotestsrc num-buffers=172 ! audioconvert ! voaacenc ! aacparse ! mux.",
        path.display()
    );
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    src.set_caps(Some(
        &gst::Caps::builder("video/x-raw")
            .field("format", "RGB")
            .field("width", W as i32)
            .field("height", H as i32)
            .field("framerate", gst::Fraction::new(FPS as i32, 1))
            .build(),
    ));
    pipeline.set_state(gst::State::Playing).unwrap();
    let step = 1_000_000_000 / u64::from(FPS);
    for (i, f) in frames.iter().enumerate() {
        let mut b = gst::Buffer::from_mut_slice(f.clone());
        let m = b.get_mut().unwrap();
        m.set_pts(gst::ClockTime::from_nseconds(i as u64 * step));
        m.set_duration(gst::ClockTime::from_nseconds(step));
        src.push_buffer(b).unwrap();
    }
    src.end_of_stream().unwrap();
    let bus = pipeline.bus().unwrap();
    let m = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .unwrap();
    assert_eq!(m.type_(), gst::MessageType::Eos, "{m:?}");
    pipeline.set_state(gst::State::Null).unwrap();
    // The body camera's clock: the mvhd creation time (UTC).
    let mut b = fs::read(path).unwrap();
    let i = b.windows(4).position(|w| w == b"mvhd").unwrap();
    let v = created + 2_082_844_800;
    if b[i + 4] == 0 {
        b[i + 8..i + 12].copy_from_slice(&(v as u32).to_be_bytes());
    } else {
        b[i + 8..i + 16].copy_from_slice(&v.to_be_bytes());
    }
    fs::write(path, b).unwrap();
}

/// Every frame of an MP4 file decoded to packed RGB.
fn decoded(path: &Path) -> Vec<Vec<u8>> {
    let desc = format!(
        "filesrc location={} ! qtdemux name=d d.video_0 ! queue ! h264parse ! avdec_h264 ! \
         videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false",
        path.display()
    );
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut out = Vec::new();
    while let Ok(s) = sink.pull_sample() {
        let map = s.buffer().unwrap().map_readable().unwrap();
        out.push(map.to_vec());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    out
}

fn pixel_rect(b: &FaceBox) -> (u32, u32, u32, u32) {
    custos::redact::mask::pixels(b, W, H)
}

/// The largest channel value and the mean over `b`'s pixels.
fn darkness(rgb: &[u8], b: &FaceBox) -> (u8, f64) {
    let (x0, y0, x1, y1) = pixel_rect(b);
    let (mut max, mut sum, mut n) = (0u8, 0u64, 0u64);
    for y in y0..y1 {
        for x in x0..x1 {
            let i = ((y * W + x) * 3) as usize;
            for c in &rgb[i..i + 3] {
                max = max.max(*c);
                sum += u64::from(*c);
                n += 1;
            }
        }
    }
    (max, sum as f64 / n.max(1) as f64)
}

fn wait_state(site: &Site, id: &str, want: &[&str], timeout: Duration) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        let v = json_as(site, DPO, &["redaction", "show", id]);
        let state = v["redaction"]["state"].as_str().unwrap_or("").to_owned();
        if want.contains(&state.as_str()) {
            return v;
        }
        assert_ne!(
            state,
            "failed",
            "the job failed: {v:#}\nlog:\n{}",
            site.log()
        );
        assert!(
            Instant::now() < deadline,
            "redaction {id} is {state}, not {want:?}, after {timeout:?}; log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `custosctl --json ARGS` as `uid`, parsed.
fn json_as(site: &Site, uid: u32, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(site, uid, &all)).unwrap()
}

fn ok(site: &Site, uid: u32, args: &[&str]) -> String {
    let o = ctl_as(site, uid, args);
    assert!(
        o.status.success(),
        "custosctl {args:?} as {uid} failed: {}\nlog:\n{}",
        String::from_utf8_lossy(&o.stderr),
        site.log()
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn refused(site: &Site, uid: u32, args: &[&str]) -> String {
    let o = ctl_as(site, uid, args);
    assert!(
        !o.status.success(),
        "custosctl {args:?} as {uid} was not refused"
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A site with a body camera whose file of [`source_frames`] with sound
/// is taken in, and an open copy request over it.
struct Scene {
    site: Site,
    daemon: Option<support::daemon::Daemon>,
    source: Vec<Vec<u8>>,
    segment: custos::index::SegmentRow,
    master: PathBuf,
    master_bytes: Vec<u8>,
    request: String,
    from: String,
    to: String,
    /// A directory the DPOs may write into.
    own: PathBuf,
}

const EXTRA_GRANT: &str = "\n[[access.grant]]\nuser = 2008\nroles = [\"dpo\"]\n";

fn scene(failpoint: Option<&str>) -> Scene {
    let mut site = Site::new(Vec::new());
    let d = site.dir.path().to_owned();
    fs::create_dir_all(d.join("dock/bwc-07")).unwrap();
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

[[inbox]]
path = "{d}/dock"
settle = "1s"
poll = "200ms"
quarantine = "{d}/quarantine"
"#,
        d = d.display()
    );
    let daemon = support::api::start_with_failpoint(&site, EXTRA_GRANT, failpoint);
    // One hour ago, on the second: the body camera's recording.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let t0 = now - 3600;
    let source = source_frames();
    let clip = d.join("A0001.MP4");
    make_clip(&clip, &source, t0);
    let tmp = d.join("dock/bwc-07/.A0001.MP4.tmp");
    fs::copy(&clip, &tmp).unwrap();
    fs::rename(&tmp, d.join("dock/bwc-07/A0001.MP4")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let segment = loop {
        let rows = Index::open_read_only(&site.index_path())
            .and_then(|ix| ix.segments("bwc-07", 0, i64::MAX))
            .unwrap_or_default();
        if let Some(s) = rows.into_iter().find(|s| s.state == SegmentState::Complete) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the file was not taken in; log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let master = d.join("recordings").join(&segment.path);
    let master_bytes = fs::read(&master).unwrap();

    let (from, to) = (
        segment.start_us - 1_000_000,
        segment.end_us.unwrap() + 1_000_000,
    );
    let (from, to) = (rfc3339(from), rfc3339(to));
    let v = json_as(
        &site,
        DPO,
        &[
            "request",
            "open",
            "--kind",
            "copy",
            "--requester",
            "Jonas Jonaitis",
            "--contact",
            "jonas@example.lt",
            "--identity-check",
            "passport shown",
            "--camera",
            "bwc-07",
            "--from",
            &from,
            "--to",
            &to,
        ],
    );
    let request = v["request"]["id"].as_str().unwrap().to_owned();
    let own = d.join("dpo");
    fs::create_dir(&own).unwrap();
    fs::set_permissions(&own, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    Scene {
        site,
        daemon: Some(daemon),
        source,
        segment,
        master,
        master_bytes,
        request,
        from,
        to,
        own,
    }
}

/// Starts a redaction of the whole clip as the DPO; its number.
fn redact(sc: &Scene) -> String {
    let v = json_as(
        &sc.site,
        DPO,
        &[
            "request",
            "redact",
            &sc.request,
            "--camera",
            "bwc-07",
            "--from",
            &sc.from,
            "--to",
            &sc.to,
            "--no-wait",
        ],
    );
    v["redaction"]["id"].as_i64().unwrap().to_string()
}

fn wait_progress(site: &Site, id: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = json_as(site, DPO, &["redaction", "show", id]);
        let done = v["redaction"]["frames_done"].as_u64().unwrap_or(0);
        if done > 0 {
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "no progress; log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The track on `who`'s face in its first frame.
fn track_of(tracks: &[custos::redact::track::Track], who: usize) -> u32 {
    let mine: Vec<u32> = tracks
        .iter()
        .filter(|t| {
            let b = &t.boxes[0];
            b.face.iou(&face_at(who, b.frame as u32)) > 0.3
        })
        .map(|t| t.id)
        .collect();
    assert_eq!(mine.len(), 1, "{tracks:#?}");
    mine[0]
}

fn tracks(sc: &Scene, id: &str) -> Vec<custos::redact::track::Track> {
    custos::redact::job::read_tracks(&sc.site.dir.path().join("state"), id.parse().unwrap())
        .unwrap()
        .tracks
}

/// Approves (as the second DPO) and releases job `id` into `name`; the
/// copy's path.
fn approve_and_release(sc: &Scene, id: &str, name: &str) -> PathBuf {
    ok(&sc.site, DPO2, &["redaction", "approve", id]);
    let pkg = sc.own.join(name);
    ok(
        &sc.site,
        DPO2,
        &["redaction", "release", id, "--out", pkg.to_str().unwrap()],
    );
    ok(&sc.site, 0, &["verify", pkg.to_str().unwrap()]);
    fs::read_dir(&pkg)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "mp4"))
        .unwrap()
}

#[test]
fn a_redacted_copy_masks_everyone_but_the_requester_and_is_released_by_a_second_dpo() {
    let sc = scene(Some("slow-redaction"));
    let (site, request, from, to) = (&sc.site, &sc.request, &sc.from, &sc.to);
    let (source, segment, own) = (&sc.source, &sc.segment, &sc.own);

    // An operator may not start one; the DPO does.
    refused(
        site,
        support::api::OPERATOR,
        &[
            "request", "redact", request, "--camera", "bwc-07", "--from", from, "--to", to,
        ],
    );
    let id = redact(&sc);
    // Cancelled part-way, then resumed: detection goes on from that frame.
    wait_progress(site, &id);
    // The job runs below recording's priority (nice 10).
    let pid = sc.daemon.as_ref().unwrap().pid();
    let nice: Vec<i64> = fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| {
            let t = t.ok()?.path();
            (fs::read_to_string(t.join("comm")).ok()?.trim() == "redaction").then(|| {
                let stat = fs::read_to_string(t.join("stat")).unwrap();
                let after = &stat[stat.rfind(')').unwrap() + 2..];
                after.split(' ').nth(16).unwrap().parse().unwrap()
            })
        })
        .collect();
    assert_eq!(nice, [10], "the redaction thread's nice value");
    let v = json_as(site, EVIDENCE, &["redaction", "cancel", &id]);
    assert_eq!(v["redaction"]["state"], "cancelled", "{v:#}");
    wait_state(site, &id, &["cancelled"], Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(1));
    let v = json_as(site, DPO, &["redaction", "show", &id]);
    let at_cancel = v["redaction"]["frames_done"].as_u64().unwrap();
    assert!(
        at_cancel > 0 && at_cancel < u64::from(FRAMES),
        "stopped part-way: {v:#}"
    );
    ok(site, EVIDENCE, &["redaction", "resume", &id]);
    let v = wait_state(site, &id, &["choosing"], Duration::from_secs(600));
    assert!(
        site.log().contains(&format!(
            "detection resumes redaction={id} frames={at_cancel}"
        )),
        "the resumed job did not continue from its batch; log:\n{}",
        site.log()
    );
    assert_eq!(v["redaction"]["frames"], FRAMES, "{v:#}");
    let tracks = tracks(&sc, &id);
    assert!(tracks.len() >= 2, "both faces are tracked: {tracks:#?}");
    let mine = track_of(&tracks, 0);
    let sheet = own.join("tracks.png");
    ok(
        site,
        DPO,
        &["redaction", "sheet", &id, "--out", sheet.to_str().unwrap()],
    );
    assert!(fs::read(&sheet).unwrap().starts_with(b"\x89PNG"));

    // Nothing can be approved before it is rendered.
    refused(site, DPO2, &["redaction", "approve", &id]);
    let keep = mine.to_string();
    ok(site, DPO, &["redaction", "choose", &id, "--keep", &keep]);
    let v = wait_state(site, &id, &["review"], Duration::from_secs(600));
    let record = &v["redaction"]["record"];
    assert_eq!(record["output"]["frames"], FRAMES, "{record:#}");
    assert_eq!(record["audio"], "removed");
    assert_eq!(record["model"]["sha256"], custos::redact::MODEL_SHA256);
    let copy_sheet = own.join("copy.png");
    ok(
        site,
        DPO2,
        &[
            "redaction",
            "sheet",
            &id,
            "--copy",
            "--out",
            copy_sheet.to_str().unwrap(),
        ],
    );
    assert!(fs::read(&copy_sheet).unwrap().starts_with(b"\x89PNG"));

    // It waits for a second DPO: the status says so, and the metrics.
    let status = ok(site, DPO2, &["status"]);
    assert!(status.contains("1 for a second DPO's approval"), "{status}");
    let metrics = ok(site, 0, &["metrics"]);
    assert!(
        metrics.contains("custos_redactions{state=\"review\"} 1"),
        "{metrics}"
    );

    // Four eyes: who prepared it cannot approve it, nor an evidence officer.
    let e = refused(site, DPO, &["redaction", "approve", &id]);
    assert!(e.contains("four eyes"), "{e}");
    refused(site, EVIDENCE, &["redaction", "approve", &id]);
    let pkg = own.join("package");
    let e = refused(
        site,
        DPO2,
        &["redaction", "release", &id, "--out", pkg.to_str().unwrap()],
    );
    assert!(e.contains("approved"), "{e}");
    let mp4 = approve_and_release(&sc, &id, "package2");
    let demuxed = support::media::demux(&mp4);
    assert!(demuxed.audio.is_none(), "the sound was removed");
    let out = decoded(&mp4);
    assert_eq!(
        out.len(),
        FRAMES as usize,
        "the copy has every frame of the range"
    );
    let detector = Detector::load(&model_dir().join(MODEL_FILE), W, H).unwrap();
    for (i, rgb) in out.iter().enumerate() {
        assert_eq!(rgb.len(), (W * H * 3) as usize);
        // The other person's face, with the margin the job masked around
        // each of its boxes, is the fill colour (black, within the
        // re-encoding's error; a face's pixels are far brighter).
        let theirs = face_at(1, i as u32);
        let (max, mean) = darkness(rgb, &theirs);
        assert!(
            darkness(&source[i], &theirs).1 > 50.0,
            "the check can tell a face"
        );
        assert!(
            max <= 40 && mean <= 6.0,
            "frame {i}: their face shows (max {max}, mean {mean:.1})"
        );
        for t in tracks.iter().filter(|t| t.id != mine) {
            if let Some(b) = t.at(i) {
                let grown =
                    custos::redact::mask::grown(&b.face, custos::redact::mask::DEFAULT_MARGIN);
                let (max, mean) = darkness(rgb, &grown);
                assert!(
                    max <= 48 && mean <= 8.0,
                    "frame {i}: track {} shows ({max}, {mean:.1})",
                    t.id
                );
            }
        }
        // The requester's face is there, as recorded.
        let own = face_at(0, i as u32);
        let (_, own_mean) = darkness(rgb, &own);
        let (_, src_mean) = darkness(&source[i], &own);
        assert!(
            (own_mean - src_mean).abs() < 12.0,
            "frame {i}: {own_mean:.1} vs {src_mean:.1}"
        );
        if i % 10 == 0 {
            let found = detector.detect(rgb, DEFAULT_THRESHOLD).unwrap();
            assert!(
                found.iter().any(|f| f.iou(&own) > 0.4),
                "frame {i}: the requester's face is not found in the copy: {found:?}"
            );
            // A head's outline around a black box may still stir the
            // detector faintly; no face is found there with any certainty.
            assert!(
                !found.iter().any(|f| f.iou(&theirs) > 0.2 && f.score > 0.5),
                "frame {i}: the other face is still found: {found:?}"
            );
        }
    }

    // The register names the request; the request's events say it all.
    let v = json_as(site, DPO, &["disclosures"]);
    let rows = v["disclosures"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["recipient"].as_str().unwrap().contains(request.as_str())),
        "{v:#}"
    );
    let v = json_as(site, DPO, &["request", "show", request]);
    let kinds: Vec<&str> = v["request"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in [
        "redaction_started",
        "redaction_chosen",
        "redaction_approved",
        "redaction_released",
    ] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    // Every step is in the audit log, the refused approval included.
    let v = ctl_json(site, &["audit", "list", "--action", "redactions.approve"]);
    let entries = v["entries"].as_array().unwrap();
    let by = |uid: u32, outcome: &str| {
        entries
            .iter()
            .any(|e| e["uid"] == uid && e["outcome"] == outcome)
    };
    assert!(by(DPO, "permission_denied"), "{v:#}");
    assert!(by(DPO2, "ok"), "{v:#}");
    // Once the request is answered and closed, the job's files (copy,
    // sheets, detections) are destroyed; its row stays as the record.
    ok(
        site,
        DPO,
        &[
            "request",
            "close",
            request,
            "--outcome",
            "answered",
            "--answer",
            "copy handed over",
        ],
    );
    wait_state(site, &id, &["purged"], Duration::from_secs(30));
    let work = site.dir.path().join("state/redactions").join(&id);
    assert!(!work.exists(), "{} remains", work.display());
    // The master is as recorded.
    assert_eq!(fs::read(&sc.master).unwrap(), sc.master_bytes);
    let (_, sha) = custos::storage::hash_file(&sc.master).unwrap();
    assert_eq!(Some(sha), segment.sha256);
}

/// Killed part-way through detection, the next start goes on where the
/// stored detections end. Then: a manual mask moving between two key
/// times and the sound kept on purpose; chosen again in review, keep-only.
#[test]
fn after_a_kill_detection_resumes_and_manual_masks_sound_and_keep_only_render() {
    let mut sc = scene(Some("slow-redaction"));
    let id = redact(&sc);
    let deadline = Instant::now() + Duration::from_secs(120);
    let stored = |sc: &Scene| {
        Index::open_read_only(&sc.site.index_path())
            .unwrap()
            .redaction(id.parse().unwrap())
            .unwrap()
            .unwrap()
            .frames_done
    };
    while stored(&sc) < 10 {
        assert!(
            Instant::now() < deadline,
            "no progress; log:\n{}",
            sc.site.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sc.daemon.take().unwrap().kill9();
    let done = stored(&sc);
    assert!(done < u64::from(FRAMES), "killed part-way");
    sc.daemon = Some(support::daemon::Daemon::start(&sc.site));
    support::api::wait_socket(&sc.site);
    let site = &sc.site;
    wait_state(site, &id, &["choosing"], Duration::from_secs(600));
    assert!(
        site.log()
            .contains(&format!("detection resumes redaction={id} frames={done}")),
        "not resumed at frame {done}; log:\n{}",
        site.log()
    );
    let tracks = tracks(&sc, &id);
    let mine = track_of(&tracks, 0).to_string();

    // A plate the detector cannot know, moving from x 60 to 140 at the
    // bottom of the picture over the clip.
    let t = |i: u32| rfc3339(sc.segment.start_us + i64::from(i) * 1_000_000 / i64::from(FPS));
    let mask = format!("{}@60,200,64x32;{}@140,200,64x32", t(0), t(FRAMES - 1));
    // A box outside the picture is refused, naming it.
    let e = refused(
        site,
        DPO,
        &[
            "redaction",
            "choose",
            &id,
            "--keep",
            &mine,
            "--mask",
            &format!("{}@500,200,64x32", t(0)),
        ],
    );
    assert!(e.contains("does not lie within the 512x256 picture"), "{e}");
    ok(
        site,
        DPO,
        &[
            "redaction",
            "choose",
            &id,
            "--keep",
            &mine,
            "--mask",
            &mask,
            "--keep-audio",
        ],
    );
    let v = wait_state(site, &id, &["review"], Duration::from_secs(600));
    let record = &v["redaction"]["record"];
    assert_eq!(record["audio"], "kept", "{record:#}");
    assert_eq!(record["manual_masks"].as_array().unwrap().len(), 1);
    let copy = site
        .dir
        .path()
        .join("state/redactions")
        .join(&id)
        .join("copy.mp4");
    let demuxed = support::media::demux(&copy);
    assert!(demuxed.audio.is_some(), "the sound was kept on purpose");
    let out = decoded(&copy);
    assert_eq!(out.len(), FRAMES as usize);
    for (i, rgb) in out.iter().enumerate() {
        let x = 60.0 + 80.0 * i as f32 / (FRAMES - 1) as f32;
        // Inside the interpolated box (a pixel in from its edges, which
        // fall between pixels) all is fill.
        let plate = FaceBox {
            x0: (x + 1.0) / W as f32,
            y0: 201.0 / H as f32,
            x1: (x + 63.0) / W as f32,
            y1: 231.0 / H as f32,
            score: 1.0,
        };
        let (max, mean) = darkness(rgb, &plate);
        assert!(
            max <= 40 && mean <= 6.0,
            "frame {i}: the plate shows ({max}, {mean:.1})"
        );
        assert!(darkness(&sc.source[i], &plate).1 > 50.0);
        let (_, own) = darkness(rgb, &face_at(0, i as u32));
        assert!(own > 50.0, "frame {i}: the requester is visible");
    }
    // The first frame's plate position is uncovered by the end.
    let first = FaceBox {
        x0: 61.0 / W as f32,
        y0: 201.0 / H as f32,
        x1: 100.0 / W as f32,
        y1: 231.0 / H as f32,
        score: 1.0,
    };
    assert!(darkness(&out[FRAMES as usize - 1], &first).1 > 50.0);

    // Chosen again before approval: keep only the requester's box.
    ok(
        site,
        EVIDENCE,
        &["redaction", "choose", &id, "--keep", &mine, "--keep-only"],
    );
    let v = wait_state(site, &id, &["review"], Duration::from_secs(600));
    assert_eq!(v["redaction"]["record"]["masking"]["keep_only"], true);
    assert_eq!(v["redaction"]["record"]["audio"], "removed");
    let out = decoded(&copy);
    assert_eq!(out.len(), FRAMES as usize);
    let corner = FaceBox {
        x0: 0.0,
        y0: 0.8,
        x1: 0.1,
        y1: 1.0,
        score: 1.0,
    };
    for (i, rgb) in out.iter().enumerate() {
        for b in [face_at(1, i as u32), corner] {
            let (max, mean) = darkness(rgb, &b);
            assert!(
                max <= 40 && mean <= 6.0,
                "frame {i}: {b:?} shows ({max}, {mean:.1})"
            );
        }
        let (_, own) = darkness(rgb, &face_at(0, i as u32));
        assert!(own > 50.0, "frame {i}: the requester is visible");
    }
    // The evidence officer chose this time: the DPO who started it may
    // still not approve; the second DPO does.
    let e = refused(site, DPO, &["redaction", "approve", &id]);
    assert!(e.contains("four eyes"), "{e}");
    let mp4 = approve_and_release(&sc, &id, "package");
    assert_eq!(decoded(&mp4).len(), FRAMES as usize);
}
