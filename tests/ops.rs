//! Operations (issue 7): the Prometheus metrics scraped from the real custosd
//! over its admin socket and checked with a strict parser of the text
//! exposition format; the values are checked against what the test made
//! happen (a recording camera, a dead camera, refused and allowed requests).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::api::*;
use support::daemon::{Site, SiteCamera, simulated_site};

/// One sample: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A family: its type and samples.
#[derive(Debug, Default)]
struct Family {
    kind: String,
    help: String,
    samples: Vec<Sample>,
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_' || x == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// Parses the text exposition format 0.0.4 strictly: every line is a HELP,
/// a TYPE or a sample; HELP and TYPE come once per family, before its
/// samples; a sample belongs to the family declared last; label values are
/// quoted with only `\\`, `\"` and `\n` escapes; no sample repeats a label
/// set; values are floats. Panics with the offending line otherwise.
fn parse(text: &str) -> BTreeMap<String, Family> {
    assert!(
        text.ends_with('\n'),
        "the exposition must end with a newline"
    );
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut seen = std::collections::HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = || format!("line {}: {line:?}", n + 1);
        assert!(!line.is_empty(), "empty line at {}", at());
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", at()));
            assert!(is_name(name), "{}", at());
            assert!(!families.contains_key(name), "family twice: {}", at());
            families.insert(
                name.into(),
                Family {
                    help: help.into(),
                    ..Family::default()
                },
            );
            current = Some(name.into());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", at()));
            assert_eq!(
                Some(name),
                current.as_deref(),
                "TYPE not after HELP: {}",
                at()
            );
            let f = families.get_mut(name).unwrap();
            assert!(f.kind.is_empty() && f.samples.is_empty(), "{}", at());
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{}",
                at()
            );
            f.kind = kind.into();
        } else {
            assert!(!line.starts_with('#'), "stray comment: {}", at());
            let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("{}", at()));
            let name = &line[..name_end];
            assert!(is_name(name), "{}", at());
            let fam = current.as_deref().unwrap_or_else(|| panic!("{}", at()));
            assert_eq!(name, fam, "sample outside its family: {}", at());
            let mut rest = &line[name_end..];
            let mut labels = BTreeMap::new();
            if let Some(r) = rest.strip_prefix('{') {
                rest = r;
                loop {
                    let eq = rest.find('=').unwrap_or_else(|| panic!("{}", at()));
                    let key = &rest[..eq];
                    assert!(is_name(key) && !key.starts_with("__"), "{}", at());
                    rest = rest[eq + 1..]
                        .strip_prefix('"')
                        .unwrap_or_else(|| panic!("{}", at()));
                    let mut value = String::new();
                    let mut chars = rest.char_indices();
                    let end = loop {
                        match chars.next() {
                            Some((_, '\\')) => match chars.next() {
                                Some((_, '\\')) => value.push('\\'),
                                Some((_, '"')) => value.push('"'),
                                Some((_, 'n')) => value.push('\n'),
                                _ => panic!("bad escape: {}", at()),
                            },
                            Some((i, '"')) => break i,
                            Some((_, c)) => value.push(c),
                            None => panic!("unterminated label value: {}", at()),
                        }
                    };
                    assert!(labels.insert(key.to_owned(), value).is_none(), "{}", at());
                    rest = &rest[end + 1..];
                    if let Some(r) = rest.strip_prefix(',') {
                        rest = r;
                    } else if let Some(r) = rest.strip_prefix('}') {
                        rest = r;
                        break;
                    } else {
                        panic!("{}", at());
                    }
                }
            }
            let value = rest.strip_prefix(' ').unwrap_or_else(|| panic!("{}", at()));
            assert!(!value.contains(' '), "timestamps are not used: {}", at());
            let value: f64 = match value {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value: {}", at())),
            };
            assert!(
                seen.insert((name.to_owned(), format!("{labels:?}"))),
                "duplicate sample: {}",
                at()
            );
            families.get_mut(fam).unwrap().samples.push(Sample {
                name: name.into(),
                labels,
                value,
            });
        }
    }
    for (name, f) in &families {
        assert!(!f.kind.is_empty(), "{name} has no TYPE");
        assert!(!f.help.is_empty(), "{name} has no HELP");
        assert!(
            name.starts_with("custos_"),
            "{name}: not in the custos_ namespace"
        );
        // Prometheus naming: counters end in _total, and nothing else does.
        assert_eq!(f.kind == "counter", name.ends_with("_total"), "{name}");
        if f.kind == "counter" {
            assert!(f.samples.iter().all(|s| s.value >= 0.0), "{name}");
        }
    }
    families
}

fn value(f: &BTreeMap<String, Family>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    f.get(name)
        .unwrap_or_else(|| panic!("no family {name}"))
        .samples
        .iter()
        .find(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

fn scrape(site: &Site) -> (String, BTreeMap<String, Family>) {
    let out = ctl_as(site, 0, &["metrics"]);
    assert!(
        out.status.success(),
        "custosctl metrics: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let parsed = parse(&text);
    (text, parsed)
}

#[test]
fn the_parser_rejects_what_prometheus_rejects() {
    let ok = "# HELP custos_x_total X.\n# TYPE custos_x_total counter\ncustos_x_total{a=\"q\\\"\\n\"} 1\n";
    assert_eq!(parse(ok)["custos_x_total"].samples[0].labels["a"], "q\"\n");
    for bad in [
        "custos_x 1\n",                                                        // no family
        "# HELP custos_x X.\n# TYPE custos_x gauge\ncustos_x{a=\"b} 1\n",      // unterminated
        "# HELP custos_x X.\n# TYPE custos_x gauge\ncustos_x one\n",           // not a number
        "# HELP custos_x X.\n# TYPE custos_x gauge\ncustos_x 1\ncustos_x 2\n", // duplicate
        "# HELP custos_x X.\n# TYPE custos_x counter\ncustos_x 1\n", // counter without _total
        "# HELP custos_x X.\n# TYPE custos_x gauge\ncustos_x{a=\"\\t\"} 1\n", // bad escape
    ] {
        let r = std::panic::catch_unwind(|| parse(bad));
        assert!(r.is_err(), "accepted: {bad:?}");
    }
}

#[test]
fn metrics_scrape_cleanly_and_count_what_happened() {
    let (_sim, mut site) = simulated_site(&["cam1"], 2);
    // Nothing listens on port 9: this camera fails and reconnects.
    site.cameras
        .push(SiteCamera::new("dead", "rtsp://127.0.0.1:9/none".into()));
    let _daemon = start(&site, "");
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    site.wait_complete("cam1", 2, Duration::from_secs(30));

    // A refused request (uid 2006 has no role) and one by the operator.
    assert_eq!(ctl_as(&site, NOBODY, &["metrics"]).status.code(), Some(4));
    assert!(ctl_as(&site, OPERATOR, &["metrics"]).status.success());

    // Counters reach their values a moment after the index does.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (text, m) = loop {
        let (text, m) = scrape(&site);
        let segs = value(
            &m,
            "custos_camera_segments_written_total",
            &[("camera", "cam1")],
        );
        let reconnects = value(&m, "custos_camera_reconnects_total", &[("camera", "dead")]);
        if segs >= Some(2.0) && reconnects >= Some(1.0) {
            break (text, m);
        }
        assert!(
            Instant::now() < deadline,
            "metrics never caught up:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    // Cameras.
    let state =
        |cam: &str, st: &str| value(&m, "custos_camera_state", &[("camera", cam), ("state", st)]);
    assert_eq!(state("cam1", "recording"), Some(1.0), "{text}");
    assert_eq!(state("cam1", "retrying"), Some(0.0));
    assert_eq!(state("dead", "recording"), Some(0.0));
    let cam1_states: f64 = m["custos_camera_state"]
        .samples
        .iter()
        .filter(|s| s.labels["camera"] == "cam1")
        .map(|s| s.value)
        .sum();
    assert_eq!(cam1_states, 1.0, "exactly one state is 1");
    let last = value(
        &m,
        "custos_camera_last_frame_timestamp_seconds",
        &[("camera", "cam1")],
    )
    .unwrap();
    assert!(
        last > started - 5.0 && last < started + 120.0,
        "{last} vs {started}"
    );
    assert!(
        value(
            &m,
            "custos_camera_written_bytes_total",
            &[("camera", "cam1")]
        )
        .unwrap()
            > 1000.0
    );
    // The dead camera is in an outage that has lasted a while.
    assert!(value(&m, "custos_camera_outages_total", &[("camera", "dead")]).unwrap() >= 1.0);
    assert!(
        value(
            &m,
            "custos_camera_outage_seconds_total",
            &[("camera", "dead")]
        )
        .unwrap()
            > 0.0
    );

    // Storage and zones: what the index holds, what the filesystem has.
    let segments = site.segments("cam1");
    let indexed: u64 = segments.iter().filter_map(|s| s.bytes).sum();
    let used = value(&m, "custos_storage_used_bytes", &[("root", "main")]).unwrap();
    assert!(
        used > 0.0 && used <= indexed as f64 * 2.0,
        "{used} vs {indexed}"
    );
    assert!(value(&m, "custos_storage_free_bytes", &[("root", "main")]).unwrap() > 0.0);
    assert_eq!(
        value(&m, "custos_storage_protected_bytes", &[("root", "main")]),
        Some(0.0)
    );
    assert_eq!(
        value(&m, "custos_zone_retention_seconds", &[("zone", "indoor")]),
        Some(10.0 * 86400.0)
    );
    let age = value(
        &m,
        "custos_zone_oldest_footage_age_seconds",
        &[("zone", "indoor"), ("root", "main")],
    )
    .unwrap();
    assert!(age > 0.0 && age < 120.0, "{age}");

    // Reaper: nothing deleted yet, no violation.
    assert_eq!(m["custos_reaper_deleted_segments_total"].samples.len(), 0);
    assert_eq!(value(&m, "custos_retention_violations", &[]), Some(0.0));
    // A healthy clock on a fresh install with recording going on: no alarm.
    assert_eq!(value(&m, "custos_clock_implausible", &[]), Some(0.0));
    assert_eq!(value(&m, "custos_clock_alarms_total", &[]), Some(0.0));

    // API and audit: the refused call, the operator's, and the scrapes.
    assert_eq!(
        value(
            &m,
            "custos_api_requests_total",
            &[("outcome", "permission_denied")]
        ),
        Some(1.0)
    );
    // A scrape is rendered before its own request is counted and audited,
    // so it shows every earlier request: the operator's, earlier scrapes.
    let ok = value(&m, "custos_api_requests_total", &[("outcome", "ok")]).unwrap();
    assert!(ok >= 1.0, "{ok}");
    let chain = value(&m, "custos_audit_chain_length", &[]).unwrap();
    // Every request is audited, allowed or refused.
    assert_eq!(chain, ok + 1.0, "{text}");
    assert_eq!(
        value(
            &m,
            "custos_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
}

// ---------------------------------------------------------------------------
// systemd notification and the progress watchdog

use custos::ingest::CameraState;
use custos::notify::{CameraObservation, PROGRESS_SLACK, Progress, Watchdog};

fn observed(state: CameraState, last_data: Instant, segments: u64) -> CameraObservation {
    CameraObservation {
        id: "cam1".into(),
        state,
        last_data,
        segments_written: segments,
        finishing_since: None,
        segment: Duration::from_secs(60),
    }
}

#[test]
fn the_watchdog_check_fails_when_a_segment_never_becomes_durable_in_any_state() {
    let stall = Duration::from_secs(5);
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let wait_max = (Duration::from_secs(120) + stall * 3 + PROGRESS_SLACK).as_secs();
    for state in [
        CameraState::Recording,
        CameraState::Error,
        CameraState::Retrying,
    ] {
        let mut p = Progress::new();
        let waiting = |s: u64| CameraObservation {
            finishing_since: Some(t0),
            ..observed(state, at(s), 3)
        };
        assert!(p.check(at(wait_max), &[waiting(wait_max)], stall).is_ok());
        let err = p
            .check(at(wait_max + 1), &[waiting(wait_max + 1)], stall)
            .unwrap_err();
        assert!(
            err.contains("cam1") && err.contains("durable"),
            "{state:?}: {err}"
        );
    }
    // A camera in `error` with nothing waiting (it cannot start segments) is
    // not a hang: a restart would not mend it.
    let mut p = Progress::new();
    assert!(
        p.check(at(1000), &[observed(CameraState::Error, t0, 0)], stall)
            .is_ok()
    );
}

#[test]
fn the_watchdog_check_fails_exactly_when_a_recording_camera_stops_progressing() {
    let stall = Duration::from_secs(5);
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    // Silence limit: 3 stall timeouts + slack = 25 s.
    let silent_max = (stall * 3 + PROGRESS_SLACK).as_secs();
    let mut p = Progress::new();
    let cam = observed(CameraState::Recording, t0, 0);
    assert!(p.check(at(0), std::slice::from_ref(&cam), stall).is_ok());
    assert!(
        p.check(at(silent_max), std::slice::from_ref(&cam), stall)
            .is_ok()
    );
    let err = p
        .check(at(silent_max + 1), std::slice::from_ref(&cam), stall)
        .unwrap_err();
    assert!(err.contains("cam1") && err.contains("no data"), "{err}");
    // A camera that is retrying or stopped is not a hang: its supervisor acts.
    let mut p = Progress::new();
    for st in [
        CameraState::Retrying,
        CameraState::Connecting,
        CameraState::Stopped,
    ] {
        assert!(p.check(at(1000), &[observed(st, t0, 0)], stall).is_ok());
    }

    // Data flows but no segment completes: limit 2 segments + 3 stalls + slack.
    let idle_max = (Duration::from_secs(120) + stall * 3 + PROGRESS_SLACK).as_secs();
    let mut p = Progress::new();
    assert!(
        p.check(at(0), &[observed(CameraState::Recording, at(0), 7)], stall)
            .is_ok()
    );
    let fresh = |s| observed(CameraState::Recording, at(s), 7);
    assert!(p.check(at(idle_max), &[fresh(idle_max)], stall).is_ok());
    let err = p
        .check(at(idle_max + 1), &[fresh(idle_max + 1)], stall)
        .unwrap_err();
    assert!(err.contains("completed no segment"), "{err}");
    // A completed segment resets the clock.
    let done = observed(CameraState::Recording, at(idle_max + 2), 8);
    assert!(p.check(at(idle_max + 2), &[done], stall).is_ok());
    // So does leaving and re-entering `recording` (a reconnect).
    let mut p = Progress::new();
    assert!(p.check(at(0), &[fresh(0)], stall).is_ok());
    assert!(
        p.check(
            at(100),
            &[observed(CameraState::Retrying, at(100), 7)],
            stall
        )
        .is_ok()
    );
    assert!(
        p.check(at(idle_max + 50), &[fresh(idle_max + 50)], stall)
            .is_ok()
    );
}

#[test]
fn the_watchdog_pings_on_schedule_only_while_progressing() {
    let t0 = Instant::now();
    let stall = Duration::from_secs(5);
    let mut w = Watchdog::new(Duration::from_secs(8), t0);
    let ok = || vec![observed(CameraState::Recording, t0, 1)];
    assert!(w.tick(t0, ok, stall), "first tick pings");
    assert!(
        !w.tick(t0 + Duration::from_secs(1), ok, stall),
        "not before a quarter"
    );
    assert!(w.tick(t0 + Duration::from_secs(2), ok, stall));
    let stuck = || vec![observed(CameraState::Recording, t0, 1)];
    assert!(!w.tick(t0 + Duration::from_secs(100), stuck, stall));
    assert!(!w.tick(t0 + Duration::from_secs(103), stuck, stall));
    let moving = || {
        vec![observed(
            CameraState::Recording,
            t0 + Duration::from_secs(105),
            2,
        )]
    };
    assert!(w.tick(t0 + Duration::from_secs(106), moving, stall));
}

/// custosd started by hand with a notification socket, as systemd would.
struct Notified {
    child: std::process::Child,
    sock: std::os::unix::net::UnixDatagram,
}

impl Notified {
    /// The next datagram's lines, or None after `timeout`.
    fn next(&self, timeout: Duration) -> Option<Vec<String>> {
        self.sock.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 4096];
        let n = self.sock.recv(&mut buf).ok()?;
        Some(
            String::from_utf8_lossy(&buf[..n])
                .lines()
                .map(str::to_owned)
                .collect(),
        )
    }

    /// Waits for a datagram with `line`, returning everything seen on the way.
    fn until(&self, line: &str, timeout: Duration) -> Vec<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = self
                .next(left.max(Duration::from_millis(1)))
                .unwrap_or_else(|| panic!("no {line} within {timeout:?}; got {seen:?}"));
            let hit = msg.iter().any(|l| l == line);
            seen.push(msg);
            if hit {
                return seen;
            }
        }
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ready_comes_after_the_socket_is_bound_and_the_watchdog_is_fed() {
    let (_sim, site) = simulated_site(&["cam1"], 2);
    site.write_config();
    let notify_path = site.dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    let log = std::fs::File::create(site.log_path()).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_custosd"))
        .arg("--config")
        .arg(site.config_path())
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "800000")
        .env_remove("WATCHDOG_PID")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let d = Notified { child, sock };

    // The first message is READY=1, and by then the API answers and the
    // index exists.
    let first = d
        .next(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no READY; log:\n{}", site.log()));
    assert!(first.contains(&"READY=1".to_owned()), "{first:?}");
    assert!(
        first
            .iter()
            .any(|l| l.starts_with("STATUS=recording 1 camera")),
        "{first:?}"
    );
    assert!(std::os::unix::net::UnixStream::connect(socket(&site)).is_ok());
    assert!(site.index_path().exists());

    // Fed every 200 ms (a quarter of 800 ms) while cam1 records.
    let started = Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_secs(3) {
        if let Some(msg) = d.next(Duration::from_secs(1)) {
            pings += msg.iter().filter(|l| *l == "WATCHDOG=1").count();
        }
    }
    assert!(pings >= 8, "only {pings} watchdog pings in 3 s");
    site.wait_complete("cam1", 1, Duration::from_secs(20));

    // A reload is bracketed by RELOADING=1 and READY=1.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let seen = d.until("RELOADING=1", Duration::from_secs(10));
    assert!(
        seen.last()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("MONOTONIC_USEC="))
    );
    d.until("READY=1", Duration::from_secs(10));

    // SIGTERM: STOPPING=1, then a clean exit.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    d.until("STOPPING=1", Duration::from_secs(10));
    let mut d = d;
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = d.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "custosd did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}; log:\n{}", site.log());
}

// ---------------------------------------------------------------------------
// The systemd unit

/// `systemd-analyze verify` on the shipped unit, with ExecStart pointing at
/// the binary under test (verify checks that executables exist), and the
/// `systemd-analyze security` exposure held at or below the recorded 1.2.
#[test]
fn the_unit_verifies_and_its_exposure_stays_low() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/custosd.service"
    ))
    .unwrap();
    for want in [
        "Type=notify",
        "After=network-online.target local-fs.target time-sync.target\n",
        "WatchdogSec=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "User=custos",
        "StateDirectory=custos",
        "RuntimeDirectory=custos",
        "ConfigurationDirectory=custos",
        "LoadCredential=custos-secrets:",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=CAP_LEASE\n",
        "AmbientCapabilities=CAP_LEASE\n",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    ] {
        assert!(unit.contains(want), "the unit lacks {want:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custosd.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/custosd", env!("CARGO_BIN_EXE_custosd")),
    )
    .unwrap();
    let verify = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (package systemd) must be installed");
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "verify failed: {stderr}");
    assert!(
        !stderr.contains("custosd.service"),
        "verify warned about the unit: {stderr}"
    );
    let security = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&security.stdout);
    let line = out
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no score in: {out}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {line:?}"));
    // 1.2 without capabilities; CAP_LEASE (0.1) lets the inbox tell a copy
    // still open for writing by another owner (docs/design/inbox.md).
    assert!(score <= 1.3, "exposure rose to {score}: {out}");
}

// ---------------------------------------------------------------------------
// Logging

/// GStreamer's own warnings and errors reach custosd's log through tracing
/// (target `gstreamer`, with the element), not GStreamer's stderr printer.
#[test]
fn gstreamer_warnings_join_the_daemon_log() {
    // Nothing listens on port 9: rtspsrc reports an error of its own.
    // GStreamer's client, whose rtspsrc reports through GStreamer's log.
    let mut site = Site::new(vec![SiteCamera::new(
        "dead",
        "rtsp://127.0.0.1:9/none".into(),
    )]);
    site.rtsp_client = Some("gstreamer");
    site.write_config();
    let daemon = support::daemon::Daemon::start(&site);
    let deadline = Instant::now() + Duration::from_secs(20);
    let line = loop {
        let log = site.log();
        if let Some(l) = log.lines().find(|l| l.contains(" gstreamer:")) {
            break l.to_owned();
        }
        assert!(Instant::now() < deadline, "no GStreamer line in:\n{log}");
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("routed: {line}");
    assert!(line.contains("WARN") || line.contains("ERROR"), "{line}");
    assert!(line.contains("category="), "{line}");
    // GStreamer's own format ("0:00:01.234567 12345 0x... WARN") is absent.
    let log = site.log();
    assert!(
        !log.lines().any(|l| l.starts_with("0:00:")),
        "GStreamer printed on its own:\n{log}"
    );
    daemon.terminate(Duration::from_secs(15));
}

/// Parses one datagram of journald's native protocol: `KEY=value` lines, or
/// `KEY\n` + 64-bit little-endian length + value + `\n` for binary values.
fn journal_fields(mut d: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    while !d.is_empty() {
        let nl = d.iter().position(|&b| b == b'\n').expect("field ends");
        let line = &d[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            out.insert(
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            );
            d = &d[nl + 1..];
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let len = u64::from_le_bytes(d[nl + 1..nl + 9].try_into().unwrap()) as usize;
            let value = &d[nl + 9..nl + 9 + len];
            out.insert(key, String::from_utf8_lossy(value).into_owned());
            d = &d[nl + 9 + len + 1..];
        }
    }
    out
}

/// Under systemd (stderr is the stream JOURNAL_STREAM names), custosd logs
/// to the journal's native socket with structured fields. The "journal" is
/// a datagram socket of this test's, put at /run/systemd/journal/socket in a
/// private mount namespace, so the test needs no journald and touches no
/// system file.
#[test]
fn under_systemd_logs_go_to_the_journal_with_fields() {
    use std::os::unix::fs::MetadataExt;
    // GStreamer's client, whose rtspsrc reports through GStreamer's log.
    let mut site = Site::new(vec![SiteCamera::new(
        "dead",
        "rtsp://127.0.0.1:9/none".into(),
    )]);
    site.rtsp_client = Some("gstreamer");
    site.write_config();
    let run = site.dir.path().join("run");
    std::fs::create_dir_all(run.join("systemd/journal")).unwrap();
    let journal =
        std::os::unix::net::UnixDatagram::bind(run.join("systemd/journal/socket")).unwrap();
    journal
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let stderr_path = site.dir.path().join("stderr");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let meta = stderr.metadata().unwrap();
    let mut child = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" /run && exec "$2" --config "$3""#)
        .arg("sh")
        .arg(&run)
        .arg(env!("CARGO_BIN_EXE_custosd"))
        .arg(site.config_path())
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stdin(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut events = Vec::new();
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(20);
    let found = loop {
        let Ok(n) = journal.recv(&mut buf) else {
            break false;
        };
        if n == 0 {
            continue; // tracing-journald's connection probe
        }
        let f = journal_fields(&buf[..n]);
        let done = f.get("TARGET").map(String::as_str) == Some("gstreamer")
            && events
                .iter()
                .any(|e: &BTreeMap<String, String>| e.contains_key("CAMERA"));
        events.push(f);
        if done || Instant::now() > deadline {
            break done;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let stderr_text = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(found, "events: {events:#?}\nstderr: {stderr_text}");
    for e in &events {
        assert_eq!(
            e.get("SYSLOG_IDENTIFIER").map(String::as_str),
            Some("custosd"),
            "{e:?}"
        );
        assert!(
            e.contains_key("MESSAGE") && e.contains_key("PRIORITY"),
            "{e:?}"
        );
    }
    // A camera event carries the camera as a field of its own.
    let cam = events.iter().find(|e| e.contains_key("CAMERA")).unwrap();
    assert_eq!(cam["CAMERA"], "dead");
    // GStreamer's error, routed, with its element's details, at priority err.
    let gst = events.iter().find(|e| e["TARGET"] == "gstreamer").unwrap();
    assert!(gst.contains_key("CATEGORY"), "{gst:?}");
    assert!(["3", "4"].contains(&gst["PRIORITY"].as_str()), "{gst:?}");
    // Nothing went to stderr once logging was set up.
    assert!(
        !stderr_text.contains("INFO") && !stderr_text.contains("ERROR"),
        "{stderr_text}"
    );
}

/// `GET path` over TCP; returns the status code and body.
fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn metrics_are_also_served_on_a_configured_loopback_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let site = Site::new(vec![SiteCamera::new(
        "dead",
        "rtsp://127.0.0.1:9/none".into(),
    )]);
    let _daemon = start(&site, &format!("\n[api]\nmetrics_listen = \"{addr}\"\n"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "no metrics port; log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = http_get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    let m = parse(&body);
    assert!(m.contains_key("custos_camera_state"), "{body}");
    assert!(
        value(&m, "custos_camera_state", &[("camera", "dead")]).is_some(),
        "{body}"
    );
    // Nothing else is served there: the admin API stays on the socket.
    assert_eq!(http_get(addr, "/v1/status").0, 404);
}

#[test]
fn a_metrics_port_off_loopback_is_refused() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/custos.example.toml"
    ))
    .unwrap()
    .replace("[api]\n", "[api]\nmetrics_listen = \"0.0.0.0:9464\"\n");
    assert!(
        text.contains("0.0.0.0:9464"),
        "the example has an [api] section"
    );
    let path = std::path::Path::new("custos.toml");
    let errors = custos::config::Config::parse_str(&text, path).unwrap_err();
    let e = errors
        .find("api.metrics_listen")
        .unwrap_or_else(|| panic!("{errors}"));
    assert!(e.message.contains("not a loopback address"), "{e}");
    assert!(e.message.contains("127.0.0.1:9464"), "{e}");
}

#[test]
fn a_stalled_fsync_on_one_root_holds_up_only_its_cameras_and_the_watchdog_notices() {
    let cams: Vec<_> = ["stuck", "free"]
        .iter()
        .map(|n| {
            let mut c = custos::sim::SimCamera::new(*n);
            c.keyframe_interval_frames = 25;
            c
        })
        .collect();
    let sim = custos::sim::Simulator::start(custos::sim::SimConfig {
        cameras: cams,
        ..Default::default()
    })
    .unwrap();
    let mut stuck = SiteCamera::new("stuck", sim.url("stuck"));
    stuck.zone = "far".into();
    let mut cams = vec![stuck, SiteCamera::new("free", sim.url("free"))];
    for c in &mut cams {
        c.segment_secs = 2;
    }
    let mut site = Site::new(cams);
    let slow = site.dir.path().join("slow");
    // Zone "far" is on root "slow".
    let write_config = |site: &Site| {
        site.write_config();
        let mut text = std::fs::read_to_string(site.config_path())
            .unwrap()
            .replacen(
                "id = \"indoor\"\n",
                "id = \"indoor\"\nstorage = \"main\"\n",
                1,
            );
        text.push_str(&format!(
            r#"
[[storage]]
id = "slow"
path = "{}"
create = true

[[zone]]
id = "far"
name = "Far"
storage = "slow"
retention_days = 10
purposes = ["safety"]
legal_basis = "GDPR Art. 6(1)(e)"
processor = "The school"
"#,
            slow.display()
        ));
        std::fs::write(site.config_path(), text).unwrap();
    };
    write_config(&site);
    std::fs::set_permissions(
        site.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    // Root "slow" never returns from its first fsync.
    let notify_path = site.dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    let log = std::fs::File::create(site.log_path()).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_custosd"))
        .arg("--config")
        .arg(site.config_path())
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "2000000")
        .env("CUSTOS_FAILPOINT", "stall-fsync:slow")
        .env("RUST_LOG", "custos=debug,info")
        .env_remove("WATCHDOG_PID")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let d = Notified { child, sock };
    wait_socket(&site);
    d.until("READY=1", Duration::from_secs(20));
    // Read what the daemon sends as it comes (an unread socket would block
    // it); true if it pinged the watchdog.
    let pinged = || {
        let mut pinged = false;
        while let Some(msg) = d.next(Duration::from_millis(50)) {
            pinged |= msg.iter().any(|l| l == "WATCHDOG=1");
        }
        pinged
    };

    // The other root's camera keeps completing segments ...
    let deadline = Instant::now() + Duration::from_secs(60);
    while site
        .segments("free")
        .iter()
        .filter(|s| s.state == custos::index::SegmentState::Complete)
        .count()
        < 5
    {
        assert!(Instant::now() < deadline, "{}", site.log());
        pinged();
    }
    let done = |cam: &str| {
        site.segments(cam)
            .iter()
            .filter(|s| s.state == custos::index::SegmentState::Complete)
            .count()
    };
    assert_eq!(done("stuck"), 0, "{:#?}", site.segments("stuck"));
    // ... while the stalled root's camera, once its queue is full, shows why.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = ctl_json(&site, &["cameras", "stuck"]);
        let cam = &v["cameras"][0];
        let reason = cam["last_error"].as_str().unwrap_or_default();
        if cam["state"] == "error" && reason.contains("not making segments durable") {
            assert!(reason.contains("slow"), "{reason}");
            break;
        }
        assert!(Instant::now() < deadline, "{v}\n{}", site.log());
        pinged();
    }
    // Durable progress counts, not hand-offs: the watchdog stops.
    let deadline = Instant::now() + Duration::from_secs(40);
    while !site.log().contains("not feeding the watchdog") {
        assert!(Instant::now() < deadline, "{}", site.log());
        pinged();
    }
    assert!(
        site.log().contains("camera stuck's segment has waited"),
        "{}",
        site.log()
    );
    pinged();
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(3) {
        assert!(!pinged(), "the watchdog was fed after the check failed");
    }
    assert!(done("free") >= 5);
    drop(d); // what systemd would do: kill it

    // The next start makes the stalled segments durable.
    write_config(&site);
    let stalled: Vec<String> = site.segments("stuck").into_iter().map(|s| s.path).collect();
    assert!(stalled.len() >= 5, "{stalled:?}");
    let daemon = support::daemon::Daemon::start(&site);
    let deadline = Instant::now() + Duration::from_secs(30);
    while site
        .segments("stuck")
        .iter()
        .any(|s| stalled.contains(&s.path) && s.state != custos::index::SegmentState::Complete)
    {
        assert!(Instant::now() < deadline, "{}", site.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    for s in site.segments("stuck") {
        let (bytes, sha) = custos::storage::hash_file(&slow.join(&s.path)).unwrap();
        assert_eq!((Some(bytes), Some(sha)), (s.bytes, s.sha256), "{s:?}");
    }
    site.cameras.retain(|c| c.id == "free");
    site.assert_consistent();
}
