//! Views end to end: the real custosd records a simulated camera (with AAC)
//! through several segments, a gap (the camera stops) and more segments;
//! `custosctl view` fetches ranges of it as the users the grants name, into
//! a file and through a real pipe, and the MP4 is parsed back frame by frame
//! with Custos's reader and GStreamer's qtdemux against the source segments
//! and the index. RULES 001 §24-26, 004 §12-13 (access for a duty, with a
//! purpose, audited).

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use custos::config::Config;
use custos::index::{AuditFilter, Index, SegmentRow, SegmentState};
use custos::mp4::{self, Codec};
use custos::retention::Leases;
use custos::sim::{SimCamera, SimConfig, Simulator};
use support::api::{ADMIN, VIEWER, VIEWER_OUTDOOR, ctl_as, rfc3339, socket, wait_socket};
use support::daemon::{Daemon, Site, SiteCamera};
use support::media::{demux, demux_fd};

const FRAME_TICKS: u64 = 3_600; // 25 fps at 90 kHz
const CAM: &str = "yard";

struct Recorded {
    site: Site,
    /// Complete segments before the gap, and after it.
    before: Vec<SegmentRow>,
    after: Vec<SegmentRow>,
    /// A directory each test uid may write its files into.
    homes: tempfile::TempDir,
}

/// Records once for all tests of this binary.
fn recorded() -> &'static Recorded {
    static R: OnceLock<Recorded> = OnceLock::new();
    R.get_or_init(|| {
        let mut cam = SimCamera::new(CAM);
        cam.keyframe_interval_frames = 25; // 1 s GOP
        cam.audio = custos::sim::SimAudio::Aac;
        let sim = Simulator::start(SimConfig {
            address: "127.0.0.1".into(),
            port: 0,
            cameras: vec![cam],
        })
        .unwrap();
        let mut sc = SiteCamera::new(CAM, sim.url(CAM));
        sc.segment_secs = 2;
        sc.audio = true;
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
            if after >= Some(1) {
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
        let mut config = fs::read_to_string(site.config_path()).unwrap();
        config.push_str(support::api::GRANTS);
        // The in-process client of the range test is root, which needs a
        // footage role, granted like anyone's.
        config
            .push_str("\n[[access.grant]]\nuser = 0\nroles = [\"viewer\"]\nzones = [\"indoor\"]\n");
        fs::write(site.config_path(), config).unwrap();
        fs::set_permissions(site.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let gap_at = site.outages(CAM)[0].from_us;
        let segs: Vec<SegmentRow> = site
            .segments(CAM)
            .into_iter()
            .filter(|s| s.state == SegmentState::Complete)
            .collect();
        let (before, after): (Vec<_>, Vec<_>) = segs.into_iter().partition(|s| s.start_us < gap_at);
        assert!(before.len() >= 3, "{before:?}");
        let homes = tempfile::tempdir().unwrap();
        fs::set_permissions(homes.path(), fs::Permissions::from_mode(0o777)).unwrap();
        Recorded {
            site,
            before,
            after,
            homes,
        }
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

/// A source video frame: its wall-clock time from its segment's indexed
/// start, and whether it is a key frame.
fn source_frames(r: &Recorded, segs: &[SegmentRow]) -> Vec<(i64, bool)> {
    let mut out = Vec::new();
    for s in segs {
        let info = mp4::scan_file(&r.site.root().join(&s.path)).unwrap();
        let v = info.tracks.iter().find(|t| t.codec.is_video()).unwrap().id;
        let mut frames: Vec<_> = info.samples.iter().filter(|x| x.track == v).collect();
        frames.sort_by_key(|x| x.decode_time);
        for x in frames {
            let wall = s.start_us + (x.decode_time as i64 * 1_000_000 / 90_000);
            out.push((wall, x.keyframe));
        }
    }
    out
}

/// The frames a view of `[from, to)` must hold: from the key frame at or
/// before `from`, every one that starts before `to`.
fn expected_frames(r: &Recorded, segs: &[SegmentRow], from: i64, to: i64) -> Vec<(i64, bool)> {
    let all = source_frames(r, segs);
    let start = all
        .iter()
        .rposition(|&(w, k)| k && w <= from)
        .expect("a key frame before the range");
    all[start..]
        .iter()
        .copied()
        .filter(|&(w, _)| w < to)
        .collect()
}

fn view_args<'a>(from: &'a str, to: &'a str, reason: &'a str) -> Vec<&'a str> {
    vec![
        "view", "--camera", CAM, "--from", from, "--to", to, "--reason", reason,
    ]
}

fn home(r: &Recorded, uid: u32) -> PathBuf {
    let h = r.homes.path().join(uid.to_string());
    if !h.exists() {
        fs::create_dir(&h).unwrap();
        std::os::unix::fs::chown(&h, Some(uid), Some(0)).unwrap();
    }
    h
}

/// Checks a view's file against the frames it must hold and the index:
/// every frame, one frame apart, key frames where the sources have them,
/// and a caption per wall-clock second that names the second of its first
/// frame. Returns the caption texts.
fn check_view(bytes: &[u8], expected: &[(i64, bool)]) -> Vec<String> {
    let info = mp4::parse(bytes).unwrap();
    assert!(!info.truncated);
    let video = info.tracks.iter().find(|t| t.codec.is_video()).unwrap();
    let text = info
        .tracks
        .iter()
        .find(|t| t.codec == Codec::Tx3g)
        .expect("a caption track");
    let mut frames: Vec<_> = info
        .samples
        .iter()
        .filter(|s| s.track == video.id)
        .collect();
    frames.sort_by_key(|s| s.decode_time);
    assert_eq!(frames.len(), expected.len(), "every source frame, once");
    for (i, (f, e)) in frames.iter().zip(expected).enumerate() {
        assert_eq!(f.decode_time, i as u64 * FRAME_TICKS, "frame {i}");
        assert_eq!(f.duration as u64, FRAME_TICKS, "frame {i}");
        assert_eq!(f.keyframe, e.1, "frame {i}");
    }
    let tz = jiff::tz::TimeZone::get("Europe/Vilnius").unwrap();
    let mut captions: Vec<_> = info.samples.iter().filter(|s| s.track == text.id).collect();
    captions.sort_by_key(|s| s.decode_time);
    let mut texts = Vec::new();
    let mut next = 0;
    for c in &captions {
        assert_eq!(c.decode_time, next, "captions follow each other");
        next = c.decode_time + u64::from(c.duration);
        let data = info.sample_data(bytes, c).unwrap();
        let len = u16::from_be_bytes([data[0], data[1]]) as usize;
        let got = std::str::from_utf8(&data[2..2 + len]).unwrap().to_owned();
        // The frame the caption starts with, and its time from the index.
        let k = (c.decode_time / FRAME_TICKS) as usize;
        assert_eq!(
            k as u64 * FRAME_TICKS,
            c.decode_time,
            "{got} starts on a frame"
        );
        let second = expected[k].0.div_euclid(1_000_000) * 1_000_000;
        assert_eq!(
            got,
            custos::review::caption_text(second, &tz),
            "caption {got}"
        );
        if k > 0 {
            assert_ne!(
                expected[k - 1].0.div_euclid(1_000_000) * 1_000_000,
                second,
                "a caption starts where the second changes"
            );
        }
        texts.push(got);
    }
    assert_eq!(
        next,
        expected.len() as u64 * FRAME_TICKS,
        "captions to the end"
    );
    let seconds = (expected.last().unwrap().0 / 1_000_000) - (expected[0].0 / 1_000_000) + 1;
    assert_eq!(
        texts.len() as i64,
        seconds,
        "one caption per second: {texts:?}"
    );
    texts
}

/// Audit entries of `action`, oldest first.
fn entries(r: &Recorded, action: &str) -> Vec<custos::index::AuditRecord> {
    site_entries(&r.site, action)
}

/// The audit entries of `action` on `site`, oldest first.
fn site_entries(site: &Site, action: &str) -> Vec<custos::index::AuditRecord> {
    site.index()
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
        .rev()
        .map(|e| e.record)
        .collect()
}

fn audit(r: &Recorded, action: &str, reason: &str) -> Vec<custos::index::AuditRecord> {
    entries(r, action)
        .into_iter()
        .filter(|e| e.reason == reason)
        .collect()
}

#[test]
fn a_view_across_three_segments_keeps_every_frame_and_captions_its_time_and_is_audited() {
    let r = recorded();
    let (_turn, daemon) = start(r);
    let from = r.before[0].start_us + 500_000;
    let to = r.before[2].start_us + 1_200_000;
    let expected = expected_frames(r, &r.before, from, to);
    let out = home(r, VIEWER).join("three.mp4");
    let (f, t) = (rfc3339(from), rfc3339(to));
    let mut args = view_args(&f, &t, "incident 7");
    args.extend(["--out", out.to_str().unwrap()]);
    let o = ctl_as(&r.site, VIEWER, &args);
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        r.site.log()
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("gap"), "{stderr}");
    let bytes = fs::read(&out).unwrap();
    let meta = fs::metadata(&out).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), VIEWER);
    let texts = check_view(&bytes, &expected);
    let info = mp4::parse(&bytes).unwrap();
    let sound = info
        .tracks
        .iter()
        .find(|t| matches!(t.codec, Codec::Aac { .. }))
        .expect("the sound is copied too");
    let sound_frames = info.frame_count(sound.id);
    assert!(sound_frames > 50, "{sound_frames} audio frames");

    // GStreamer's demuxer sees the same frames and captions.
    let d = demux(&out);
    assert_eq!(d.video.frames.len(), expected.len());
    let mut pts: Vec<u64> = d.video.frames.iter().map(|f| f.0).collect();
    pts.sort();
    for w in pts.windows(2) {
        assert_eq!(w[1] - w[0], 40_000_000, "one frame apart");
    }
    assert_eq!(d.texts, texts, "qtdemux reads the captions");
    assert_eq!(d.audio.map(|a| a.frames.len()), Some(sound_frames));

    // So does libavformat, the demuxer of ffplay and mpv (and VLC's
    // fallback): every video packet, and the captions as subtitles.
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(&out)
        .output()
        .expect("ffprobe (scripts/setup installs ffmpeg)");
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout).trim(),
        expected.len().to_string()
    );
    let srt = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&out)
        .args(["-map", "0:s:0", "-f", "srt", "-"])
        .output()
        .unwrap();
    assert!(
        srt.status.success(),
        "{}",
        String::from_utf8_lossy(&srt.stderr)
    );
    let srt = String::from_utf8_lossy(&srt.stdout);
    // An SRT cue is a number, a time line, the text and a blank line; the
    // text comes wrapped in the track's style (<font ...>{\an7}...</font>).
    let plain = |line: &str| {
        let mut out = String::new();
        let mut depth = 0;
        for c in line.chars() {
            match c {
                '<' | '{' => depth += 1,
                '>' | '}' => depth -= 1,
                c if depth == 0 => out.push(c),
                _ => {}
            }
        }
        out
    };
    let cues: Vec<String> = srt
        .split("\n\n")
        .filter_map(|cue| cue.lines().nth(2))
        .map(plain)
        .collect();
    assert_eq!(cues, texts, "ffmpeg reads the captions: {srt}");

    // The request before the first byte, the end with the bytes.
    let asked = audit(r, "view", "incident 7");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].outcome, "ok");
    assert_eq!(asked[0].role, "viewer");
    assert!(
        asked[0].target.contains(&format!("camera {CAM} from ")),
        "{asked:?}"
    );
    let tz = jiff::tz::TimeZone::get("Europe/Vilnius").unwrap();
    let show = |us: i64| {
        jiff::Timestamp::from_microsecond(us)
            .unwrap()
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S %:z")
            .to_string()
    };
    assert!(asked[0].target.contains(&show(from)), "{asked:?}");
    assert!(asked[0].target.contains(&show(to)), "{asked:?}");
    let finished = audit(r, "view.finished", "incident 7");
    assert_eq!(finished.len(), 1, "{finished:?}");
    assert_eq!(finished[0].outcome, "ok");
    assert!(
        finished[0].target.contains(&format!(
            "sent {} bytes, {} frames",
            bytes.len(),
            expected.len()
        )),
        "{finished:?}"
    );
    // Looking hands nothing over: no disclosure.
    assert!(
        r.site
            .index()
            .disclosures(Some(CAM), i64::MIN)
            .unwrap()
            .is_empty()
    );
    assert!(daemon.terminate(Duration::from_secs(20)).success());
}

#[test]
fn a_view_read_from_a_real_pipe_demuxes_whole() {
    let r = recorded();
    let (_turn, daemon) = start(r);
    let from = r.before[0].start_us + 300_000;
    let to = r.before[2].start_us + 900_000;
    let expected = expected_frames(r, &r.before, from, to);
    let (f, t) = (rfc3339(from), rfc3339(to));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_custosctl"))
        .arg("--socket")
        .arg(socket(&r.site))
        .args(view_args(&f, &t, "pipe test"))
        .uid(VIEWER)
        .gid(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let d = demux_fd(stdout.as_raw_fd());
    drop(stdout);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(d.video.frames.len(), expected.len(), "{}", r.site.log());
    let keys = d.video.frames.iter().filter(|f| f.2).count();
    assert_eq!(keys, expected.iter().filter(|e| e.1).count());
    let text = d.text.expect("the caption track");
    assert_eq!(text.frames.len(), d.texts.len());
    let seconds = (expected.last().unwrap().0 / 1_000_000) - (expected[0].0 / 1_000_000) + 1;
    assert_eq!(d.texts.len() as i64, seconds, "{:?}", d.texts);

    // ffprobe reads it from a pipe too, as `custosctl view | ffplay -` does.
    let mut ctl = std::process::Command::new(env!("CARGO_BIN_EXE_custosctl"))
        .arg("--socket")
        .arg(socket(&r.site))
        .args(view_args(&f, &t, "pipe test"))
        .uid(VIEWER)
        .gid(0)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
        .args([
            "-show_entries",
            "stream=nb_read_packets",
            "-of",
            "csv=p=0",
            "-",
        ])
        .stdin(ctl.stdout.take().unwrap())
        .output()
        .expect("ffprobe (scripts/setup installs ffmpeg)");
    assert!(ctl.wait().unwrap().success());
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout).trim(),
        expected.len().to_string()
    );

    // And read whole from the pipe, then parsed with Custos's reader.
    let o = ctl_as(&r.site, VIEWER, &view_args(&f, &t, "pipe test"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    check_view(&o.stdout, &expected);
    assert!(daemon.terminate(Duration::from_secs(20)).success());
}

#[test]
fn a_view_ends_at_a_gap_and_says_where_footage_resumes() {
    let r = recorded();
    let (_turn, daemon) = start(r);
    let last = r.before.last().unwrap();
    let from = last.start_us + 200_000;
    let to = r.after[0].start_us + 1_000_000;
    let expected = expected_frames(r, std::slice::from_ref(last), from, to);
    let (f, t) = (rfc3339(from), rfc3339(to));
    let o = ctl_as(&r.site, VIEWER, &view_args(&f, &t, "gap test"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("the recording has a gap from"), "{stderr}");
    assert!(stderr.contains("--from '"), "{stderr}");
    check_view(&o.stdout, &expected);
    assert!(daemon.terminate(Duration::from_secs(20)).success());
}

#[test]
fn a_view_is_refused_outside_the_viewers_zones_without_a_reason_and_to_admin() {
    let r = recorded();
    let (_turn, daemon) = start(r);
    let (f, t) = (rfc3339(r.before[0].start_us), rfc3339(r.before[1].start_us));
    let code = |o: &std::process::Output| o.status.code();
    let o = ctl_as(&r.site, VIEWER_OUTDOOR, &view_args(&f, &t, "curious"));
    assert_eq!(code(&o), Some(4), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.is_empty());
    assert!(String::from_utf8_lossy(&o.stderr).contains("zone indoor"));
    let o = ctl_as(&r.site, ADMIN, &view_args(&f, &t, "curious"));
    assert_eq!(code(&o), Some(4), "{}", String::from_utf8_lossy(&o.stderr));
    let o = ctl_as(&r.site, VIEWER, &view_args(&f, &t, " "));
    assert_eq!(code(&o), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("purpose"));
    assert!(o.stdout.is_empty());
    let refused: Vec<_> = entries(r, "view")
        .into_iter()
        .filter(|e| [VIEWER_OUTDOOR, ADMIN].contains(&e.uid))
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().all(|e| e.outcome == "permission_denied"));
    assert_eq!(refused[0].reason, "curious", "{refused:?}");
    let unreasoned: Vec<_> = entries(r, "view")
        .into_iter()
        .filter(|e| e.uid == VIEWER && e.outcome == "invalid_input")
        .collect();
    assert_eq!(unreasoned.len(), 1, "{unreasoned:?}");
    assert!(
        entries(r, "view.finished")
            .iter()
            .all(|e| ![VIEWER_OUTDOOR, ADMIN].contains(&e.uid))
    );
    assert!(daemon.terminate(Duration::from_secs(20)).success());
}

/// While a view is being written its segments are leased: the retention
/// pass (here its plan, a month on, when all of it is due) skips them; once
/// the view is done they are due again.
#[test]
fn a_view_in_progress_keeps_its_segments_from_the_reaper() {
    let r = recorded();
    let config = Config::load(&r.site.config_path()).unwrap();
    let index = Index::open_read_only(&r.site.index_path()).unwrap();
    let leases = Leases::new();
    let later = r.after[0].start_us + 30 * 24 * 3600 * 1_000_000;
    let leased = |leases: &Leases| {
        custos::retention::plan(&index, &config, leases, later, &|_| Some(u64::MAX))
            .unwrap()
            .leased
    };
    assert_eq!(leased(&leases), 0);
    let req = custos::review::Request {
        camera: CAM.into(),
        from_us: r.before[0].start_us + 100_000,
        to_us: r.before[2].end_us.unwrap() - 100_000,
    };
    let view = custos::review::plan(&index, &config, &leases, &req, &|_| true).unwrap();

    /// Asks the plan on its first write, mid-view.
    struct Probe<'a> {
        seen: Option<u64>,
        ask: &'a dyn Fn() -> u64,
        bytes: Vec<u8>,
    }
    impl std::io::Write for Probe<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.seen.is_none() {
                self.seen = Some((self.ask)());
            }
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let ask = || leased(&leases);
    let mut probe = Probe {
        seen: None,
        ask: &ask,
        bytes: Vec::new(),
    };
    let mut reached = 0;
    view.write(&mut probe, &mut reached).unwrap();
    assert_eq!(
        probe.seen,
        Some(3),
        "the three segments are spared mid-view"
    );
    assert_eq!(probe.bytes.len() as u64, view.bytes());
    drop(view);
    assert_eq!(leased(&leases), 0, "due again once the view is over");
}

/// `GET target` with `Range: range` over the socket, as root: the status,
/// the headers (names in lower case) and the body.
fn get_range(site: &Site, target: &str, range: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket(site)).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: custos\r\nRange: {range}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(all[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, all[split + 4..].to_vec())
}

/// A player seeking in a view asks for byte ranges: each part is those
/// bytes of the whole view; a range past the end is
/// refused with 416; every part is audited with what it sent.
#[test]
fn a_recorded_view_answers_range_requests_with_those_bytes() {
    use std::io::Read;
    let r = recorded();
    let (_turn, daemon) = start(r);
    let target = format!(
        "/v1/cameras/{CAM}/view?from={}&to={}&reason=seeking",
        custos::api::params::encode(&rfc3339(r.before[0].start_us + 100_000)),
        custos::api::params::encode(&rfc3339(r.before[1].start_us + 900_000)),
    );
    let client = custos::api::client::Client::new(&socket(&r.site));
    let mut whole = client.open_get(&target, Duration::from_secs(30)).unwrap();
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    let mut full = Vec::new();
    whole.body.read_to_end(&mut full).unwrap();
    assert_eq!(whole.length, Some(full.len() as u64));
    let len = full.len();
    let header =
        |h: &[(String, String)], k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    for (range, want) in [
        ("bytes=0-99".to_owned(), 0..100),
        (format!("bytes={}-", len - 5000), len - 5000..len),
        ("bytes=-777".to_owned(), len - 777..len),
        (format!("bytes=1000-{}", len / 2), 1000..len / 2 + 1),
    ] {
        let (status, h, body) = get_range(&r.site, &target, &range);
        assert_eq!(status, 206, "{range}: {}", String::from_utf8_lossy(&body));
        assert_eq!(
            header(&h, "content-range"),
            Some(format!("bytes {}-{}/{len}", want.start, want.end - 1))
        );
        assert_eq!(body, &full[want.clone()], "{range}");
    }
    let (status, h, body) = get_range(&r.site, &target, &format!("bytes={len}-"));
    assert_eq!(status, 416);
    assert_eq!(header(&h, "content-range"), Some(format!("bytes */{len}")));
    assert!(body.is_empty());
    let deadline = Instant::now() + Duration::from_secs(20);
    let finished = loop {
        let f = audit(r, "view.finished", "seeking");
        if f.len() == 6 {
            break f;
        }
        assert!(Instant::now() < deadline, "{f:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        finished[1].target.contains("sent 100 bytes (bytes 0-99 of"),
        "{finished:?}"
    );
    assert_eq!(finished[5].outcome, "invalid_input", "{finished:?}");
    assert_eq!(audit(r, "view", "seeking").len(), 6);
    assert!(daemon.terminate(Duration::from_secs(20)).success());
}

/// Top-level boxes of `bytes` as (type, start, size), as far as they are whole.
fn top_boxes(bytes: &[u8]) -> Vec<([u8; 4], usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        if size < 8 || pos + size > bytes.len() {
            break;
        }
        out.push((bytes[pos + 4..pos + 8].try_into().unwrap(), pos, size));
        pos += size;
    }
    out
}

/// A live view as an API client reads it: frames arrive within about a
/// second of being recorded, continue across segment changes without a
/// lost frame on one timeline, in fragments numbered 1, 2, 3...; and
/// `custosctl view --live` pipes the same stream.
#[test]
fn a_live_view_follows_the_camera_across_segments_within_a_second() {
    use std::io::Read;
    const LIVE: &str = "gate";
    let mut cam = SimCamera::new(LIVE);
    cam.keyframe_interval_frames = 25;
    cam.audio = custos::sim::SimAudio::Aac;
    let sim = Simulator::start(SimConfig {
        address: "127.0.0.1".into(),
        port: 0,
        cameras: vec![cam],
    })
    .unwrap();
    let mut sc = SiteCamera::new(LIVE, sim.url(LIVE));
    sc.segment_secs = 2;
    sc.audio = true;
    let site = Site::new(vec![sc]);
    // The in-process client is root, which needs a footage role.
    let _daemon = support::api::start(
        &site,
        "\n[[access.grant]]\nuser = 0\nroles = [\"viewer\"]\nzones = [\"indoor\"]\n",
    );
    site.wait_complete(LIVE, 1, Duration::from_secs(60));
    let client = custos::api::client::Client::new(&socket(&site));
    let mut reply = client
        .open_get(
            &format!("/v1/cameras/{LIVE}/live?reason=live+test"),
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(reply.content_type, "video/mp4");
    let from_us: i64 = reply.header("x-custos-from-us").unwrap().parse().unwrap();
    let started = Instant::now();
    let now_us = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64
    };
    let first_segment = site.segments(LIVE).last().unwrap().start_us;
    // (bytes received so far, when) after each read.
    let mut arrivals: Vec<(usize, i64)> = Vec::new();
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while started.elapsed() < Duration::from_secs(7) {
        let n = reply.body.read(&mut buf).unwrap();
        assert!(n > 0, "the live view ended: {}", site.log());
        bytes.extend_from_slice(&buf[..n]);
        arrivals.push((bytes.len(), now_us()));
    }
    drop(reply); // the viewer stops
    let segments_started = site
        .segments(LIVE)
        .iter()
        .filter(|s| s.start_us > first_segment)
        .count();
    assert!(segments_started >= 2, "segment changes while watching");

    let info = mp4::parse(&bytes).unwrap();
    assert_eq!(info.tracks.len(), 2, "video and audio: {:?}", info.tracks);
    let mut frames: Vec<_> = info.samples.iter().filter(|s| s.track == 1).collect();
    frames.sort_by_key(|s| s.decode_time);
    assert!(frames[0].keyframe, "starts at a key frame");
    for w in frames.windows(2) {
        assert_eq!(
            w[1].decode_time - w[0].decode_time,
            FRAME_TICKS,
            "one frame apart, across segment changes"
        );
    }
    assert!(frames.len() >= 6 * 25, "{} frames in 7 s", frames.len());
    let mut audio: Vec<_> = info.samples.iter().filter(|s| s.track == 2).collect();
    audio.sort_by_key(|s| s.decode_time);
    assert!(audio.len() > 100, "{} audio frames", audio.len());
    // Fragments numbered on from 1.
    let seqs: Vec<u32> = top_boxes(&bytes)
        .iter()
        .filter(|b| &b.0 == b"moof")
        .map(|b| u32::from_be_bytes(bytes[b.1 + 20..b.1 + 24].try_into().unwrap()))
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u32).collect::<Vec<_>>());
    // Each frame's delay: from when it was recorded (its place on the
    // timeline after the first, whose time the reply states) to when its
    // last byte arrived. The first fragments may be up to a GOP old.
    let t0 = frames[0].decode_time;
    let mut late = Vec::new();
    for f in &frames {
        let recorded = from_us + ((f.decode_time - t0) as i64 * 1_000_000 / 90_000);
        let arrived = arrivals.iter().find(|a| a.0 as u64 >= f.end()).unwrap().1;
        if recorded > from_us + 2_000_000 {
            late.push(arrived - recorded);
        }
    }
    late.sort();
    let worst = *late.last().unwrap();
    let median = late[late.len() / 2];
    eprintln!("live delay: median {median} us, worst {worst} us");
    assert!(median <= 1_000_000, "median delay {median} us");
    assert!(worst <= 1_500_000, "worst delay {worst} us");

    // custosctl pipes the same stream.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_custosctl"))
        .arg("--socket")
        .arg(socket(&site))
        .args(["view", "--camera", LIVE, "--live", "--reason", "live pipe"])
        .uid(VIEWER)
        .gid(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut got = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "custosctl's live view ended: {}", site.log());
        got.extend_from_slice(&buf[..n]);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let info = mp4::parse(&got).unwrap();
    assert!(info.samples.iter().filter(|s| s.track == 1).count() >= 25);

    // Both viewers are in the audit log, with how their views ended.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ended = site_entries(&site, "view.live.finished");
        if ended.len() == 2 {
            assert!(ended.iter().all(|e| e.target.contains("fragments")));
            break;
        }
        assert!(Instant::now() < deadline, "{ended:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let asked = site_entries(&site, "view.live");
    assert_eq!(asked.len(), 2, "{asked:?}");

    // A reload that withdraws the grant ends a live view in progress.
    let mut reply = client
        .open_get(
            &format!("/v1/cameras/{LIVE}/live?reason=revoked+test"),
            Duration::from_secs(30),
        )
        .unwrap();
    let n = reply.body.read(&mut buf).unwrap();
    assert!(n > 0, "the third live view sent nothing");
    let grant = "\n[[access.grant]]\nuser = 0\nroles = [\"viewer\"]\nzones = [\"indoor\"]\n";
    let text = std::fs::read_to_string(site.config_path()).unwrap();
    assert!(text.contains(grant));
    std::fs::write(site.config_path(), text.replace(grant, "")).unwrap();
    let out = ctl_as(&site, 0, &["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reloaded = Instant::now();
    loop {
        match reply.body.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(
                reloaded.elapsed() < Duration::from_secs(5),
                "the live view went on 5 s after its grant was withdrawn"
            ),
        }
    }
    // Its closing entry says why it ended.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ended = site_entries(&site, "view.live.finished");
        if let Some(e) = ended.iter().find(|e| e.reason == "revoked test") {
            assert!(e.target.contains("withdrawn"), "{e:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{ended:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
