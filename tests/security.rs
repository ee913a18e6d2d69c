//! The daemon's data is its alone (issue 13; docs/design/security.md): the
//! admin socket belongs to a group of its own, and a member of that group,
//! even one who is also in the daemon's group, reaches the API and nothing
//! on disk: no recording, no index, no WAL, no evidence copy, no node key.
//! RULES 001 §24-26, 004 §12: footage only through a role, with an audit.

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use custos::index::SegmentState;
use support::api::{EVIDENCE, VIEWER, socket};
use support::daemon::files_under;

/// The socket's group in the test: no name needed, a gid is enough.
const SOCKET_GID: u32 = 2100;
/// A uid with no grant and in no group the socket or the data has.
const OUTSIDER: u32 = 2110;

/// Runs `args` as `uid` with primary group `gid` and supplementary `groups`
/// (util-linux setpriv), so the kernel checks real credentials.
fn run_as(uid: u32, gid: u32, groups: &[u32], args: &[&str]) -> Output {
    let groups: Vec<String> = groups.iter().map(u32::to_string).collect();
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"));
    if groups.is_empty() {
        cmd.arg("--clear-groups");
    } else {
        cmd.arg(format!("--groups={}", groups.join(",")));
    }
    cmd.arg("--")
        .args(args)
        .output()
        .expect("setpriv (util-linux)")
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Every directory under `dir`, itself included.
fn dirs_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_owned()];
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(dirs_under(&p));
        }
    }
    out
}

#[test]
fn a_member_of_the_socket_group_reaches_the_api_and_no_file() {
    let (_sim, mut site) = support::daemon::simulated_site(&["cam1"], 2);
    site.daemon_extra = format!("socket_group = \"{SOCKET_GID}\"\n");
    // Modes must come from where each file is made, not from the umask.
    site.umask = Some(0);
    let _daemon = support::api::start(&site, "");
    let segs: Vec<_> = site
        .wait_complete("cam1", 2, Duration::from_secs(60))
        .into_iter()
        .filter(|s| s.state == SegmentState::Complete)
        .collect();

    // An evidence copy and the node key, made by the daemon for the officer.
    let ts = support::api::rfc3339;
    let ok = |o: Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o
    };
    let sock = socket(&site);
    let (ctl, sock_arg) = (env!("CARGO_BIN_EXE_custosctl"), sock.to_str().unwrap());
    let officer = |args: &[&str]| {
        let mut all = vec![ctl, "--socket", sock_arg];
        all.extend_from_slice(args);
        ok(run_as(EVIDENCE, SOCKET_GID, &[], &all))
    };
    officer(&[
        "case",
        "open",
        "--id",
        "s-1",
        "--title",
        "Test",
        "--authority",
        "Police",
        "--authority-ref",
        "PD-1",
        "--legal-basis",
        "GDPR Art. 6(1)(c)",
    ]);
    let (from, to) = (ts(segs[0].start_us), ts(segs[1].end_us.unwrap()));
    officer(&[
        "hold", "add", "--case", "s-1", "--camera", "cam1", "--from", &from, "--to", &to,
    ]);
    officer(&["key", "show"]);

    let state = site.dir.path().join("state");
    let evidence = site.dir.path().join("evidence");
    let mut files = files_under(&site.root());
    let recordings = files.len();
    let copies = files_under(&evidence);
    files.extend(copies.iter().cloned());
    files.extend(files_under(&state));
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for must in ["index.db", "index.db-wal", "node.key"] {
        assert!(names.iter().any(|n| n == must), "no {must} in {names:?}");
    }
    assert!(recordings >= 2 && copies.len() == 2, "{files:?}");

    // Modes, as root sees them: set at creation although the umask was 0.
    for d in [site.root(), evidence.clone(), state.clone()]
        .iter()
        .flat_map(|d| dirs_under(d))
    {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        let want = if copies.contains(f) {
            0o400
        } else if name.ends_with(".pub") {
            0o644 // the node's public key is public
        } else {
            0o600
        };
        assert_eq!(mode(f), want, "{}", f.display());
    }
    let meta = fs::metadata(&sock).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.gid()), (0o660, SOCKET_GID));

    // A viewer in the socket's group, and in the daemon's group (root's, 0,
    // as the old README advised for group custos): the API answers...
    let o = run_as(
        VIEWER,
        SOCKET_GID,
        &[0],
        &[ctl, "--socket", sock_arg, "status"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("cam1"));
    // ...and no file opens, nor does any directory list.
    let mut script =
        String::from("for f; do if cat \"$f\" >/dev/null 2>&1; then echo \"OPENED $f\"; fi; done");
    script.push_str("; exit 0");
    let mut args = vec!["sh", "-c", script.as_str(), "sh"];
    let paths: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    let o = run_as(VIEWER, SOCKET_GID, &[0], &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let opened = String::from_utf8_lossy(&o.stdout);
    assert!(
        opened.is_empty(),
        "a socket-group member read the daemon's files:\n{opened}"
    );
    for d in [site.root(), evidence, state] {
        let o = run_as(VIEWER, SOCKET_GID, &[0], &["ls", d.to_str().unwrap()]);
        assert!(!o.status.success(), "{} could be listed", d.display());
    }
    // The sanity of the check itself: the same shell as root opens them all.
    let o = Command::new("sh").args(&args[1..]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        files.len(),
        "root should open every file"
    );

    // Outside the socket's group there is no way in at all.
    let o = run_as(OUTSIDER, 2200, &[], &[ctl, "--socket", sock_arg, "status"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("permission denied") && err.contains("group with gid 2100"),
        "{err}"
    );
}
