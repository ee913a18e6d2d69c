//! The README's commands. The test command checks the disk before it
//! builds (`scripts/check-disk`). The first command, `scripts/demo 0`, is
//! stopped as a person stops it: one Ctrl-C, which the terminal sends to
//! the whole process group (the script, custosd, the simulator and the
//! `tee` carrying custosd's log).
//! custosd finalises every segment, the demo prints what was recorded, and
//! it exits 0. Uses this build's binaries (CUSTOS_BIN_DIR), not a release
//! build.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use custos::index::{Index, SegmentState};

#[test]
fn one_ctrl_c_stops_the_demo_cleanly_with_every_segment_complete() {
    let dir = tempfile::tempdir().unwrap();
    // Files, not pipes: a full pipe would hold up the log, and so custosd.
    let (out_path, err_path) = (dir.path().join("demo.out"), dir.path().join("demo.err"));
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_custosd")).parent().unwrap();
    let mut demo = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo"))
        .arg("0")
        .env("CUSTOS_BIN_DIR", bin_dir)
        .env("CUSTOS_DEMO_DIR", dir.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        // Its own process group, as a terminal's foreground job has.
        .process_group(0)
        .spawn()
        .unwrap();
    /// Ends the demo's whole group however the test ends.
    struct Group(nix::unistd::Pid);
    impl Drop for Group {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGKILL);
        }
    }
    let pgid = nix::unistd::Pid::from_raw(-(demo.id() as i32));
    let _group = Group(pgid);
    let index = dir.path().join("index.db");
    let deadline = Instant::now() + Duration::from_secs(60);
    let config = dir.path().join("custos.toml");
    while !index.exists() {
        assert!(Instant::now() < deadline, "the demo did not start custosd");
        std::thread::sleep(Duration::from_millis(200));
    }
    let options = custos::config::LoadOptions {
        secrets: false,
        filesystem: false,
        ..Default::default()
    };
    let cameras = custos::config::Config::load_with(&config, &options)
        .unwrap()
        .cameras
        .iter()
        .filter(|c| c.enabled)
        .count();
    let recording = || {
        Index::open_read_only(&index)
            .and_then(|ix| ix.usage())
            .map(|u| u.len())
            .unwrap_or(0)
    };
    while recording() < cameras {
        assert!(
            Instant::now() < deadline,
            "the demo's cameras did not all start recording"
        );
        assert!(demo.try_wait().unwrap().is_none(), "the demo ended early");
        std::thread::sleep(Duration::from_millis(200));
    }
    nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(s) = demo.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the demo did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = std::fs::read_to_string(&out_path).unwrap();
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert!(status.success(), "demo: {status}\n{out}\n{err}");
    assert!(out.contains("demo: files recorded"), "{out}");
    assert!(err.contains("all segments finalised"), "{err}");
    let ix = Index::open_read_only(&index).unwrap();
    let mut segments = 0;
    for u in ix.usage().unwrap() {
        for s in ix.segments(&u.camera, 0, i64::MAX).unwrap() {
            assert_eq!(s.state, SegmentState::Complete, "{s:?}\n{err}");
            segments += 1;
        }
    }
    assert!(segments >= cameras, "{segments} segments");
}

/// `scripts/test` says before building when the disk is too small for a
/// cold build, rather than letting rustc stop half-way with "No space left
/// on device" (how a CI run failed on 2026-12-07).
#[test]
fn the_test_command_names_a_disk_too_small_for_the_build_before_building() {
    let dir = tempfile::tempdir().unwrap();
    let check = |need_gib: &str| {
        Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/check-disk"))
            .env("CARGO_TARGET_DIR", dir.path())
            .env("CUSTOS_BUILD_DISK_GIB", need_gib)
            .output()
            .unwrap()
    };
    let refused = check("1000000");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(
        said.contains("needs about 1000000 GiB")
            && said.contains("MiB free")
            && said.contains("cargo clean"),
        "the refusal should say what is needed, what is free and what to do: {said}"
    );
    let passed = check("1");
    assert!(
        passed.status.success() && String::from_utf8_lossy(&passed.stdout).contains("MiB free"),
        "{passed:?}"
    );
}
