//! Operators keep cameras running (issue 5's operator role): disable,
//! enable and restart a camera through the admin API of the real custosd,
//! as an operator uid over the real socket. Each gap is one outage row that
//! says who caused it; the other camera records on undisturbed.

mod support;

use std::time::{Duration, Instant};

use custos::sim::{SimCamera, SimConfig, Simulator};
use support::api::{OPERATOR, VIEWER, ctl_as, ctl_json, start};
use support::daemon::{Site, SiteCamera};

fn camera(name: &str) -> SimCamera {
    let mut c = SimCamera::new(name);
    c.keyframe_interval_frames = 25;
    c
}

fn state(site: &Site, camera: &str) -> String {
    let v = ctl_json(site, &["cameras", camera]);
    v["cameras"][0]["state"].as_str().unwrap_or("").to_owned()
}

fn wait_state(site: &Site, camera: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while state(site, camera) != want {
        assert!(
            Instant::now() < deadline,
            "{camera} never became {want}; log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_operator_disables_enables_and_restarts_a_camera() {
    let sim = Simulator::start(SimConfig {
        address: "127.0.0.1".into(),
        port: 0,
        cameras: vec![camera("hall"), camera("yard")],
    })
    .unwrap();
    let mut cams = vec![
        SiteCamera::new("hall", sim.url("hall")),
        SiteCamera::new("yard", sim.url("yard")),
    ];
    for c in &mut cams {
        c.segment_secs = 2;
    }
    let site = Site::new(cams);
    let daemon = start(&site, "");
    site.wait_complete("hall", 1, Duration::from_secs(30));
    wait_state(&site, "hall", "recording");

    // A viewer may not.
    let out = ctl_as(&site, VIEWER, &["camera", "disable", "hall"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = ctl_as(
        &site,
        OPERATOR,
        &["camera", "disable", "hall", "--reason", "lens cleaning"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("disabled"));
    assert_eq!(state(&site, "hall"), "disabled");
    // Its open segment was finalised: nothing is left recording.
    let segs = site.segments("hall");
    assert!(
        segs.iter()
            .all(|s| s.state == custos::index::SegmentState::Complete),
        "{segs:?}"
    );
    let n = segs.len();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        site.segments("hall").len(),
        n,
        "a disabled camera records nothing"
    );

    // Restarting a disabled camera is refused with what to do instead.
    let out = ctl_as(&site, OPERATOR, &["camera", "restart", "hall"]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("enable it"));

    let out = ctl_as(&site, OPERATOR, &["camera", "enable", "hall"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    site.wait_complete("hall", n + 1, Duration::from_secs(30));
    let outages = site.outages("hall");
    assert_eq!(outages.len(), 1, "{outages:?}");
    assert!(
        outages[0].reason.contains("disabled by uid 2002"),
        "{outages:?}"
    );
    let gap = outages[0].to_us.unwrap() - outages[0].from_us;
    assert!(
        gap > 3_000_000,
        "the outage covers the disabled time: {gap} µs"
    );

    // Restart: a short gap, said to be a restart.
    let m = site.segments("hall").len();
    let out = ctl_as(&site, OPERATOR, &["camera", "restart", "hall"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    site.wait_complete("hall", m + 1, Duration::from_secs(30));
    let outages = site.outages("hall");
    assert_eq!(outages.len(), 2, "{outages:?}");
    assert!(
        outages[1].reason.contains("restarted by uid 2002"),
        "{outages:?}"
    );

    // The other camera never stopped.
    assert!(
        site.outages("yard").is_empty(),
        "{:?}",
        site.outages("yard")
    );
    // Every operation is in the audit log with its reason.
    let log = ctl_json(&site, &["audit", "list", "--action", "camera.control"]);
    let entries = log["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["reason"] == "lens cleaning" && e["outcome"] == "ok")
    );
    assert!(
        entries
            .iter()
            .any(|e| e["uid"] == VIEWER && e["outcome"] == "permission_denied")
    );
    assert!(
        daemon.terminate(Duration::from_secs(20)).success(),
        "{}",
        site.log()
    );
    site.assert_consistent();
}
