//! Export packages end to end: the real custosd records a simulated camera
//! with AAC audio through three segments, a gap (the camera stops) and more
//! segments; the export library cuts a package from those files, which is
//! parsed back frame by frame (Custos's reader and GStreamer's qtdemux) and
//! checked against the sources and the manifest; then `verify` (library and
//! `custosctl verify`) is run on it and on copies with one byte changed.
//! RULES 004 §25.2 (disclosure to recipients), 001 §31 (evidence export).

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use custos::config::Config;
use custos::export::manifest::{MANIFEST_FILE, SIGNATURE_FILE};
use custos::export::{self, Manifest, NodeKey, Request, manifest::Exporter};
use custos::index::SharedIndex;
use custos::index::{Index, SegmentRow, SegmentState};
use custos::mp4::{self, SampleInfo};
use custos::retention::Leases;
use custos::sim::{SimAudio, SimCamera, SimConfig, Simulator};
use support::daemon::{Site, SiteCamera};
use support::media::demux;

const FRAME_TICKS: u64 = 3_600; // 25 fps at 90 kHz
const CAM: &str = "hall";

struct Recorded {
    site: Site,
    /// Complete segments before the gap, and after it.
    before: Vec<SegmentRow>,
    after: Vec<SegmentRow>,
    key_dir: tempfile::TempDir,
}

/// Records once for all tests of this binary.
fn recorded() -> &'static Recorded {
    static R: OnceLock<Recorded> = OnceLock::new();
    R.get_or_init(|| {
        let mut cam = SimCamera::new(CAM);
        cam.keyframe_interval_frames = 25; // 1 s GOP
        cam.audio = SimAudio::Aac;
        let sim = Simulator::start(SimConfig {
            address: "127.0.0.1".into(),
            port: 0,
            cameras: vec![cam],
        })
        .unwrap();
        let mut sc = SiteCamera::new(CAM, sim.url(CAM));
        sc.audio = true;
        sc.segment_secs = 2;
        let site = Site::new(vec![sc]);
        let daemon = site.start();
        site.wait_complete(CAM, 3, Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(500));
        sim.stop_camera(CAM);
        std::thread::sleep(Duration::from_secs(3));
        sim.start_camera(CAM);
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let outages = site.outages(CAM);
            let after = outages.first().and_then(|o| o.to_us).map(|t| {
                site.segments(CAM)
                    .iter()
                    .filter(|s| s.start_us >= t && s.state == SegmentState::Complete)
                    .count()
            });
            if after >= Some(2) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no recording after the gap: {}",
                site.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(
            daemon.terminate(Duration::from_secs(20)).success(),
            "{}",
            site.log()
        );
        // From now on the configuration is fixed (tests of this binary run
        // in parallel and read it): grants for the API test, and a site
        // directory other uids can pass through to the socket.
        let mut config = fs::read_to_string(site.config_path()).unwrap();
        config.push_str(support::api::GRANTS);
        // The cut-export test's in-process client is root, which needs a
        // footage role to export, granted like anyone's.
        config.push_str("\n[[access.grant]]\nuser = 0\nroles = [\"evidence\"]\n");
        fs::write(site.config_path(), config).unwrap();
        fs::set_permissions(
            site.dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let gap_at = site.outages(CAM)[0].from_us;
        let segs = site.segments(CAM);
        let (before, after): (Vec<_>, Vec<_>) = segs.into_iter().partition(|s| s.start_us < gap_at);
        assert!(before.len() >= 3, "{before:?}");
        let config = Config::load(&site.config_path()).unwrap();
        let index = SharedIndex::new(Index::open(&site.index_path()).unwrap());
        custos::evidence::create_case(
            &index,
            &config,
            &custos::evidence::CaseRequest {
                id: "2026-0042".into(),
                title: "Theft in the hall".into(),
                authority: "Vilnius police".into(),
                authority_ref: "12-3-456".into(),
                legal_basis: "GDPR Art. 6(1)(c)".into(),
                review_days: None,
            },
            "tester",
            1_790_000_000_000_000,
        )
        .unwrap();
        Recorded {
            site,
            before,
            after,
            key_dir: tempfile::tempdir().unwrap(),
        }
    })
}

/// Tests that run custosd on the shared site take turns (one socket).
static DAEMON: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn request(from_us: i64, to_us: i64) -> Request {
    Request {
        camera: CAM.into(),
        from_us,
        to_us,
        case: Some("2026-0042".into()),
        recipient: "Vilnius police, officer J. Jonaitis".into(),
        reason: "theft investigation 12-3-456".into(),
        legal_basis: None,
        exporter: Exporter {
            user: "tester".into(),
            uid: 1000,
        },
    }
}

fn run_export(r: &Recorded, req: &Request, out: &Path) -> custos::Result<Manifest> {
    let config = Config::load(&r.site.config_path()).unwrap();
    let index = SharedIndex::new(Index::open(&r.site.index_path()).unwrap());
    let key = NodeKey::load_or_create(r.key_dir.path()).unwrap();
    export::export(
        &index,
        &config,
        &Leases::new(),
        &key,
        req,
        out,
        1_790_000_000_000_000,
    )
}

/// A fresh package: three segments before the gap, the gap, one after.
fn package() -> (
    &'static Recorded,
    Request,
    tempfile::TempDir,
    PathBuf,
    Manifest,
) {
    let r = recorded();
    // From mid-GOP in the first segment to mid-way into the second
    // segment after the gap.
    let from = r.before[0].start_us + 500_000;
    let to = r.after[1].start_us + 700_000;
    let req = request(from, to);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pkg");
    let m = run_export(r, &req, &out).unwrap();
    (r, req, dir, out, m)
}

fn video_track(info: &mp4::Mp4Info) -> u32 {
    info.tracks.iter().find(|t| t.codec.is_video()).unwrap().id
}

/// Source video frames whose wall-clock start lies in `[from, to)`.
fn source_frames(segs: &[SegmentRow], root: &Path, from: i64, to: i64) -> usize {
    let mut n = 0;
    for s in segs {
        let info = mp4::scan_file(&root.join(&s.path)).unwrap();
        let v = video_track(&info);
        n += info
            .samples
            .iter()
            .filter(|x| x.track == v)
            .filter(|x| {
                let wall = s.start_us + (x.decode_time as i64 * 1_000_000 / 90_000);
                wall >= from && wall < to
            })
            .count();
    }
    n
}

#[test]
fn export_across_three_segments_and_a_gap_keeps_every_frame_and_states_the_gap() {
    let (r, req, _dir, out, m) = package();
    let clips: Vec<_> = m
        .files
        .iter()
        .filter(|f| f.name.ends_with(".mp4"))
        .collect();
    assert_eq!(clips.len(), 2, "split at the gap: {:#?}", m.files);
    assert_eq!(m.gaps.len(), 1, "{:#?}", m.gaps);
    let outage = &r.site.outages(CAM)[0];
    let gap = &m.gaps[0];
    assert!(
        gap.from.unix_us <= outage.from_us + 100_000
            && gap.to.unix_us >= outage.to_us.unwrap() - 100_000,
        "gap {gap:?} vs outage {outage:?}"
    );
    assert!(gap.reason.is_some());

    // The requested range is covered: from the key frame at or before T1
    // (T1 is mid-GOP, the segment starts with a key frame 0.5 s earlier)
    // to a frame reaching T2.
    assert_eq!(m.actual.from.unix_us, r.before[0].start_us);
    assert!(m.actual.to.unix_us >= req.to_us);
    assert!(m.actual.to.unix_us < req.to_us + 40_000 + 1);
    assert_eq!(
        m.actual.duration_us,
        m.actual.to.unix_us - m.actual.from.unix_us
    );
    assert_eq!(m.requested.from.unix_us, req.from_us);
    assert!(m.requested.from.utc.ends_with('Z'));
    assert!(
        m.requested.from.local.ends_with("+02:00") || m.requested.from.local.ends_with("+03:00")
    );
    assert_eq!(m.camera.area, "Test area of hall");
    // Two legal bases: the disclosure's (its case's) and the recording's
    // (the zone each source was recorded under).
    assert_eq!(m.legal_basis, "GDPR Art. 6(1)(c)");
    assert_eq!(m.recorded_under.len(), 1, "{:#?}", m.recorded_under);
    assert_eq!(
        (
            m.recorded_under[0].zone.as_str(),
            m.recorded_under[0].legal_basis.as_str()
        ),
        ("indoor", "GDPR Art. 6(1)(e)")
    );
    assert!(m.sources.iter().all(|s| s.zone == "indoor"));
    assert_eq!(m.controller.name, "Test school");
    let used = r.before.len() + 2;
    assert_eq!(m.sources.len(), used, "{:#?}", m.sources);
    for (s, row) in m.sources.iter().zip(r.before.iter().chain(&r.after)) {
        assert_eq!(s.sha256, hex::encode(row.sha256.unwrap()));
        assert_eq!(s.start.unix_us, row.start_us);
    }

    let root = r.site.root();
    let runs: [&[SegmentRow]; 2] = [&r.before, &r.after[..2]];
    for (clip, segs) in clips.iter().zip(runs) {
        let path = out.join(&clip.name);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, clip.bytes);
        // Progressive with the moov first: ftyp, then moov.
        assert_eq!(&bytes[4..8], b"ftyp");
        let ftyp_len = u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
        assert_eq!(&bytes[ftyp_len + 4..ftyp_len + 8], b"moov");

        let info = mp4::parse(&bytes).unwrap();
        assert_eq!(info.tracks.len(), 2, "video and audio");
        let v = video_track(&info);
        let video: Vec<&SampleInfo> = info.samples.iter().filter(|s| s.track == v).collect();
        assert!(video[0].keyframe);
        assert_eq!(video[0].decode_time, 0);
        // No frame lost or doubled at segment boundaries: every step is one
        // frame (live timestamps jitter by a few ms; a lost frame is two).
        for w in video.windows(2) {
            let step = w[1].decode_time - w[0].decode_time;
            assert!(
                step > FRAME_TICKS / 4 && step < FRAME_TICKS * 7 / 4,
                "{w:?}"
            );
        }
        let (from, to) = (clip.from.as_ref().unwrap(), clip.to.as_ref().unwrap());
        let expected = source_frames(segs, &root, from.unix_us, to.unix_us);
        assert_eq!(video.len(), expected, "{}", clip.name);
        assert_eq!(clip.video_frames, Some(video.len() as u64));
        // The clip lasts as long as its wall-clock span, within a frame
        // (segments are joined on the camera's timeline; their wall-clock
        // starts may have been re-timed by a few ms).
        let dur_us = (info.total_duration(v) * 1_000_000 / 90_000) as i64;
        assert!(
            (dur_us - (to.unix_us - from.unix_us)).abs() < 40_000,
            "{dur_us} vs {from:?}..{to:?}"
        );

        // Audio: present, in step with the video within one audio frame
        // plus one video frame.
        let a = info.tracks.iter().find(|t| !t.codec.is_video()).unwrap();
        let audio_us = (info.total_duration(a.id) as f64 / a.timescale as f64 * 1e6) as i64;
        assert!(clip.audio_frames.unwrap() > 0);
        assert!(
            (audio_us - dur_us).abs() < 40_000 + 1_024 * 1_000_000 / i64::from(a.timescale) + 1
        );

        // GStreamer's own demuxer agrees.
        let d = demux(&path);
        assert_eq!(d.video.frames.len(), video.len());
        assert!(d.video.frames[0].2, "starts on a key frame");
        assert!(d.audio.is_some());
    }
    // The disclosure register names the recipient, basis, range and hashes
    // (004 §25.2).
    let index = Index::open(&r.site.index_path()).unwrap();
    let d = index.disclosures(Some(CAM), 0).unwrap();
    let mine = d
        .iter()
        .find(|d| d.from_us == m.actual.from.unix_us && d.to_us == m.actual.to.unix_us)
        .unwrap_or_else(|| panic!("{d:#?}"));
    assert_eq!(mine.recipient, req.recipient);
    assert_eq!(mine.case_id.as_deref(), Some("2026-0042"));
    assert_eq!(mine.by_uid, 1000);
    assert!(mine.files.contains(&clips[0].sha256));
    assert_eq!(
        hex::encode(mine.manifest_sha256),
        hex::encode(sha2::Digest::finalize(sha2::Digest::chain_update(
            sha2::Sha256::default(),
            fs::read(out.join(MANIFEST_FILE)).unwrap()
        )))
    );
    assert!(index.disclosures(Some("other"), 0).unwrap().is_empty());
    // The first clip spans at least three segments.
    assert!(
        clips[0].video_frames.unwrap() as i64 * 40_000
            > r.before[1].end_us.unwrap() - r.before[0].start_us
    );
}

#[test]
fn verify_passes_fresh_and_names_the_file_after_any_changed_byte() {
    let (r, _, _dir, out, m) = package();
    let report = export::verify(&out, None).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.files_checked, m.files.len());
    let key = NodeKey::load_or_create(r.key_dir.path()).unwrap();
    assert!(export::verify(&out, Some(&key.public())).unwrap().ok());
    let other = NodeKey::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
    let wrong = export::verify(&out, Some(&other.public())).unwrap();
    assert!(!wrong.ok());

    let clip = m
        .files
        .iter()
        .find(|f| f.name.ends_with(".mp4"))
        .unwrap()
        .name
        .clone();
    for file in [clip.as_str(), MANIFEST_FILE, SIGNATURE_FILE, "README.txt"] {
        let len = fs::metadata(out.join(file)).unwrap().len() as usize;
        for pos in [0, len / 3, len / 2, len - 1] {
            let copy = tempfile::tempdir().unwrap();
            for e in fs::read_dir(&out).unwrap() {
                let e = e.unwrap();
                fs::copy(e.path(), copy.path().join(e.file_name())).unwrap();
            }
            let p = copy.path().join(file);
            let mut bytes = fs::read(&p).unwrap();
            bytes[pos] ^= 0x01;
            fs::write(&p, bytes).unwrap();
            let report = export::verify(copy.path(), Some(&key.public())).unwrap();
            assert!(!report.ok(), "{file} byte {pos}: not detected");
            assert!(
                report.problems.iter().any(|p| p.file == file),
                "{file} byte {pos}: {:?}",
                report.problems
            );
            // The CLI, offline, says so and exits non-zero.
            if pos == len / 2 {
                let o = std::process::Command::new(env!("CARGO_BIN_EXE_custosctl"))
                    .arg("verify")
                    .arg(copy.path())
                    .output()
                    .unwrap();
                assert!(!o.status.success());
                let text = String::from_utf8_lossy(&o.stdout).to_string()
                    + &String::from_utf8_lossy(&o.stderr);
                assert!(text.contains(file), "{text}");
            }
        }
    }
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_custosctl"))
        .arg("verify")
        .arg(&out)
        .arg("--key")
        .arg(hex::encode(key.public().as_bytes()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn export_of_footage_never_recorded_says_so() {
    let r = recorded();
    let dir = tempfile::tempdir().unwrap();
    let from = r.before[0].start_us - 3_600_000_000;
    let err = run_export(r, &request(from, from + 60_000_000), &dir.path().join("p")).unwrap_err();
    assert_eq!(err.kind, custos::ErrorKind::NotFound);
    assert!(err.message.contains("deleted"), "{}", err.message);
}

/// A data subject's rectification (004 §28) is a note, never a change to the
/// files: a later export states the corrections overlapping its range, and
/// only those, inside the signed manifest.
#[test]
fn a_time_correction_is_stated_in_later_export_manifests_and_the_files_are_unchanged() {
    use custos::requests::{self, Kind, Registration};
    let r = recorded();
    let config = Config::load(&r.site.config_path()).unwrap();
    let index = SharedIndex::new(Index::open(&r.site.index_path()).unwrap());
    let (s0, s1) = (&r.before[0], &r.before[1]);
    let now = r.after.last().unwrap().end_us.unwrap() + 1;
    let req = requests::register(
        &index,
        &config,
        &Registration {
            kind: Kind::Rectification,
            reference: None,
            received_us: now,
            requester: "Jonas Jonaitis".into(),
            contact: "jonas@example.lt".into(),
            description: None,
            identity_check: "ID card shown".into(),
            verified_by: "front desk".into(),
            cameras: vec![CAM.into()],
            from_us: s0.start_us,
            to_us: s1.end_us.unwrap(),
        },
        "dpo",
        now,
    )
    .unwrap();
    let hour = 3_600_000_000;
    requests::rectify(
        &index,
        &req.id,
        CAM,
        s0.start_us,
        s1.end_us.unwrap(),
        hour,
        "camera clock an hour behind",
        "dpo",
        now,
    )
    .unwrap();
    // One on footage after the gap, outside the export's range.
    let later = &r.after[0];
    requests::rectify(
        &index,
        &req.id,
        CAM,
        later.start_us,
        later.end_us.unwrap(),
        -hour,
        "other range",
        "dpo",
        now,
    )
    .unwrap();
    let before: Vec<Vec<u8>> = [s0, s1]
        .iter()
        .map(|s| fs::read(r.site.root().join(&s.path)).unwrap())
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p");
    let m = run_export(r, &request(s0.start_us, s1.end_us.unwrap()), &out).unwrap();
    assert_eq!(m.time.corrections.len(), 1, "{:#?}", m.time.corrections);
    let c = &m.time.corrections[0];
    assert_eq!((c.offset_us, c.request.as_str()), (hour, req.id.as_str()));
    assert_eq!(c.note, "camera clock an hour behind");
    assert!(
        export::verify(&out, None).unwrap().ok(),
        "the manifest is signed with it"
    );
    let text = fs::read_to_string(out.join(MANIFEST_FILE)).unwrap();
    assert!(text.contains("camera clock an hour behind"));
    // The master files are as recorded.
    for (s, b) in [s0, s1].iter().zip(&before) {
        assert_eq!(&fs::read(r.site.root().join(&s.path)).unwrap(), b);
    }
}

/// The officer's path: `custosctl export` as a user with role evidence asks
/// the running daemon, which streams the package; the files are hers (her
/// uid, her directory), the package verifies against the key the daemon
/// shows, and the export is in the disclosure register and the audit log.
/// A viewer and an unknown case are refused with nothing written.
#[test]
fn an_officer_exports_through_the_daemon_into_her_own_files_registered_and_audited() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use support::api::{EVIDENCE, VIEWER, ctl_as, ctl_json, wait_socket};
    let r = recorded();
    let _turn = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let daemon = support::daemon::Daemon::start(&r.site);
    wait_socket(&r.site);
    let ts = support::api::rfc3339;
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let home = |uid: u32| {
        let h = tmp.path().join(uid.to_string());
        fs::create_dir(&h).unwrap();
        std::os::unix::fs::chown(&h, Some(uid), Some(0)).unwrap();
        h
    };
    let out = home(EVIDENCE).join("pkg");
    let (from, to) = (
        ts(r.before[1].start_us + 200_000),
        ts(r.before[1].start_us + 1_500_000),
    );
    let export_as = |uid: u32, case: &str, out: &Path| {
        ctl_as(
            &r.site,
            uid,
            &[
                "--json",
                "export",
                "--case",
                case,
                "--camera",
                CAM,
                "--from",
                &from,
                "--to",
                &to,
                "--recipient",
                "Insurer",
                "--reason",
                "claim 77",
                "--out",
                out.to_str().unwrap(),
            ],
        )
    };
    let o = export_as(EVIDENCE, "2026-0042", &out);
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        r.site.log()
    );
    let m: Manifest = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m.files.len(), 2, "one clip and the README: {:#?}", m.files);
    assert!(m.gaps.is_empty());
    assert_eq!(m.recipient, "Insurer");
    assert_eq!(m.exporter.uid, EVIDENCE);
    assert_eq!(m.case.as_deref(), Some("2026-0042"));
    // Written by the officer's own process: every file is hers.
    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected: Vec<String> = m.files.iter().map(|f| f.name.clone()).collect();
    expected.extend([MANIFEST_FILE.to_string(), SIGNATURE_FILE.to_string()]);
    expected.sort();
    assert_eq!(names, expected);
    // ...and hers alone: footage for its recipient, 0600 in a 0700 directory.
    assert_eq!(fs::metadata(&out).unwrap().mode() & 0o777, 0o700);
    for n in &names {
        let meta = fs::metadata(out.join(n)).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o777), (EVIDENCE, 0o600), "{n}");
    }
    // The clip is the frames asked for, parsed back.
    let clip = mp4::scan_file(&out.join(&m.files[0].name)).unwrap();
    let frames = clip
        .samples
        .iter()
        .filter(|s| s.track == video_track(&clip))
        .count() as u64;
    assert_eq!(Some(frames), m.files[0].video_frames);
    assert!(frames > 0);

    // Signed by the node key the daemon made at its first start (0600),
    // which any role may read from the daemon.
    let state = r.site.dir.path().join("state");
    let mode = fs::metadata(state.join("node.key")).unwrap().permissions();
    assert_eq!(mode.mode() & 0o777, 0o600);
    let o = ctl_as(&r.site, VIEWER, &["key", "show"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&m.key_fingerprint));
    // The key is public; the package is the officer's, who checks it before
    // handing it on (another user cannot even read it).
    let o = ctl_as(
        &r.site,
        VIEWER,
        &["verify", out.to_str().unwrap(), "--key", &m.public_key],
    );
    assert!(!o.status.success(), "a viewer read the officer's package");
    let o = ctl_as(
        &r.site,
        EVIDENCE,
        &["verify", out.to_str().unwrap(), "--key", &m.public_key],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

    // In the disclosure register and the audit log, by the officer.
    // (Other tests of this binary export the same camera meanwhile: only
    // this test's rows, "claim 77", are counted.)
    let claims = || {
        let d = ctl_json(&r.site, &["disclosures", "--camera", CAM]);
        d["disclosures"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["reason"] == "claim 77")
            .cloned()
            .collect::<Vec<_>>()
    };
    let rows = claims();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["recipient"], "Insurer");
    assert_eq!(rows[0]["by_uid"], EVIDENCE);
    let audit = ctl_json(&r.site, &["audit", "list", "--uid", &EVIDENCE.to_string()]);
    let entries = audit["entries"].as_array().unwrap();
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} entry: {audit:#}"))
    };
    let (started, finished) = (find("export"), find("export.finished"));
    assert_eq!(started["outcome"], "ok");
    assert_eq!(started["role"], "evidence");
    assert_eq!(started["reason"], "claim 77");
    assert_eq!(finished["outcome"], "ok");
    assert!(
        finished["target"]
            .as_str()
            .unwrap()
            .contains("sent 2 files"),
        "{finished:#}"
    );

    // A viewer may not export: refused, audited, nothing left behind.
    let viewer_out = home(VIEWER).join("pkg");
    let o = export_as(VIEWER, "2026-0042", &viewer_out);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!viewer_out.exists());
    // An unknown case is refused, and nothing is written.
    let out2 = out.with_file_name("pkg2");
    let o = export_as(EVIDENCE, "nope", &out2);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out2.exists());
    assert_eq!(claims().len(), 1, "refused exports are not disclosures");

    // On a terminal, custosctl shows its progress (run under script(1) for
    // a pseudo-terminal); the package is the same.
    let tty_out = out.with_file_name("pkg-tty");
    let command = format!(
        "{} --socket {} export --camera {CAM} --from {from} --to {to} --recipient Insurer \
         --reason tty --out {}",
        env!("CARGO_BIN_EXE_custosctl"),
        support::api::socket(&r.site).display(),
        tty_out.display()
    );
    let o = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{shown}");
    assert!(
        shown.contains("exporting [") || shown.contains("checking the footage"),
        "no progress shown on the terminal: {shown:?}"
    );
    assert!(custos::export::verify(&tty_out, None).unwrap().ok());

    assert!(daemon.terminate(Duration::from_secs(20)).success());
    // With the daemon stopped, the public key is still shown, from the
    // state directory of the configuration.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_custosctl"))
        .arg("--config")
        .arg(r.site.config_path())
        .args(["key", "show"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&m.key_fingerprint));
}

/// An officer whose custosctl dies mid-export: the daemon notices before the
/// package is complete, so nothing is registered as disclosed, the audit log
/// says how the export ended, and the daemon goes on serving.
#[test]
fn an_export_whose_receiver_goes_away_is_not_registered_and_is_audited_as_cut() {
    use custos::api::client::Client;
    use std::io::Read;
    let r = recorded();
    let _turn = DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let daemon = support::daemon::Daemon::start_with_failpoint(&r.site, Some("slow-export"));
    support::api::wait_socket(&r.site);
    // Other tests of this binary export the same camera meanwhile: count
    // only this export's rows.
    let disclosed = || {
        r.site
            .index()
            .disclosures(Some(CAM), i64::MIN)
            .unwrap()
            .into_iter()
            .filter(|d| d.reason == "cut test")
            .count()
    };
    let ts = support::api::rfc3339;
    let body = serde_json::json!({
        "camera": CAM,
        "from": ts(r.before[0].start_us),
        "to": ts(r.before[2].end_us.unwrap()),
        "recipient": "Vilnius police",
        "reason": "cut test",
    });
    let client = Client::new(&support::api::socket(&r.site));
    let mut reply = client
        .open("POST", "/v1/exports", &body, Duration::from_secs(30))
        .unwrap();
    assert_eq!(reply.content_type, custos::export::stream::CONTENT_TYPE);
    let mut head = [0u8; 5];
    reply.body.read_exact(&mut head).unwrap();
    assert_eq!(head[0], b'P', "the stream starts with the package header");
    drop(reply); // custosctl killed

    let deadline = Instant::now() + Duration::from_secs(30);
    let finished = loop {
        let entries = r
            .site
            .index()
            .audit_entries(&custos::index::AuditFilter {
                from_us: None,
                to_us: None,
                uid: None,
                action: Some("export.finished".into()),
                camera: None,
                limit: None,
            })
            .unwrap();
        if let Some(e) = entries.into_iter().find(|e| e.record.reason == "cut test") {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "no export.finished entry: {}",
            r.site.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(finished.record.outcome, "unavailable", "{finished:?}");
    assert!(finished.record.target.contains("went away"), "{finished:?}");
    assert_eq!(disclosed(), 0, "a cut export is not a disclosure");
    // The daemon still serves.
    assert!(client.get("/v1/status").is_ok());
    assert!(daemon.terminate(Duration::from_secs(20)).success());
}
