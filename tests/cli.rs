//! custosctl as people use it: its output piped into `head`, redirected to
//! a full disk, pointed at a configuration that is not there. Each ends in
//! one clear line (or quietly, for a closed pipe), never a panic.

mod support;

use std::fs::File;
use std::os::fd::OwnedFd;
use std::process::{Command, Output, Stdio};

use support::daemon::{Site, SiteCamera};

/// `custosctl --socket S ARGS` as root with `stdout` as its standard output.
fn ctl_into(site: &Site, stdout: Stdio, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_custosctl"))
        .arg("--socket")
        .arg(support::api::socket(site))
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn output_into_a_closed_pipe_or_a_full_disk_ends_in_one_line_not_a_panic() {
    let site = Site::new(vec![SiteCamera::new(
        "cam1",
        "rtsp://127.0.0.1:9/none".into(),
    )]);
    let _daemon = support::api::start(&site, "");
    for args in [&["status"][..], &["audit", "list"], &["metrics"]] {
        // A reader that is gone before the first line, as `| head -0`.
        let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
        drop(read);
        let o = ctl_into(&site, Stdio::from(write), args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(141), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?} should end quietly: {err}");

        let o = ctl_into(&site, Stdio::from(File::create("/dev/full").unwrap()), args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(74), "{args:?}: {err}");
        assert_eq!(
            err.trim_end(),
            "custosctl: cannot write the output: No space left on device (os error 28)",
            "{args:?}"
        );
    }
}

#[test]
fn a_config_that_is_not_there_is_an_error_naming_it() {
    let o = Command::new(env!("CARGO_BIN_EXE_custosctl"))
        .args(["--config", "/nonexistent/custos.toml", "status"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("custosctl: /nonexistent/custos.toml: cannot read the configuration file")
            && err.contains("--socket PATH"),
        "{err}"
    );
}

/// Times as people type them, read in the daemon's zone, which the reply
/// names; a time that is not one says which forms work and in which zone.
#[test]
fn relative_and_local_times_are_read_in_the_named_zone() {
    use support::api::{EVIDENCE, ctl_as};
    let site = Site::new(vec![SiteCamera::new(
        "cam1",
        "rtsp://127.0.0.1:9/none".into(),
    )]);
    let _daemon = support::api::start(&site, "");
    let args = |from: &str, to: &str| {
        let o = ctl_as(
            &site,
            EVIDENCE,
            &[
                "recordings",
                "--camera",
                "cam1",
                "--from",
                from,
                "--to",
                to,
                "--reason",
                "t",
            ],
        );
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    for (from, to) in [
        ("-10m", "now"),
        ("yesterday 17:30", "today 08:00"),
        ("-2h", "-1h"),
    ] {
        let (code, out, err) = args(from, to);
        assert_eq!(code, Some(0), "{from}..{to}: {err}");
        let first = out.lines().next().unwrap_or("");
        assert!(
            first.starts_with("camera cam1, ") && first.ends_with("(times in Europe/Vilnius)"),
            "{from}..{to}: {out}"
        );
    }
    let (code, _, err) = args("soon", "now");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("\"soon\" is not a time")
            && err.contains("today 08:00")
            && err.contains("local times are read as Europe/Vilnius ("),
        "{err}"
    );
}

/// Case commands print reports and tables, times in the daemon's zone with
/// their offset; `--json` is the machine form, with an RFC 3339 time beside
/// every microsecond one.
#[test]
fn case_commands_print_tables_and_json_carries_rfc3339_times() {
    use support::api::{EVIDENCE, ctl_as};
    let site = Site::new(vec![SiteCamera::new(
        "cam1",
        "rtsp://127.0.0.1:9/none".into(),
    )]);
    let _daemon = support::api::start(&site, "");
    let ctl = |args: &[&str]| {
        let o = ctl_as(&site, EVIDENCE, args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let opened = ctl(&[
        "case",
        "open",
        "--id",
        "t-1",
        "--title",
        "Bicycle theft",
        "--authority",
        "Police",
        "--authority-ref",
        "PD-7",
        "--legal-basis",
        "GDPR Art. 6(1)(c)",
    ]);
    assert!(opened.contains("case         t-1"), "{opened}");
    assert!(opened.contains("authority    Police (PD-7)"), "{opened}");
    let review = opened
        .lines()
        .find(|l| l.starts_with("review"))
        .unwrap_or("");
    assert!(
        review.ends_with("+02:00") || review.ends_with("+03:00"),
        "a local time with its offset: {opened}"
    );
    assert!(!opened.contains("review_us"), "{opened}");
    let listed = ctl(&["case", "list"]);
    assert!(
        listed.contains("t-1") && listed.contains("Bicycle theft"),
        "{listed}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ctl(&["--json", "case", "show", "t-1"])).unwrap();
    let case = &json["case"];
    let us = case["review_us"].as_i64().unwrap();
    assert_eq!(
        case["review_rfc3339"].as_str().unwrap(),
        jiff::Timestamp::from_microsecond(us).unwrap().to_string()
    );
    let closed = ctl(&["case", "close", "t-1", "--reason", "solved"]);
    assert!(
        closed.starts_with("case closed: 0 hold(s) released"),
        "{closed}"
    );
    let disclosures = ctl(&["disclosures"]);
    assert!(disclosures.contains("recipient"), "a table: {disclosures}");
}
