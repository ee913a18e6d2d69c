//! A test site for the admin API: the real custosd with grants for numeric
//! uids (no system users needed), and `custosctl` run as those uids in a
//! child process, so the daemon sees real peer credentials.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::daemon::{Daemon, Site};

/// Grants written into the test config: uid -> (roles, zones).
pub const VIEWER: u32 = 2001;
pub const OPERATOR: u32 = 2002;
pub const EVIDENCE: u32 = 2003;
pub const DPO: u32 = 2004;
pub const ADMIN: u32 = 2005;
pub const NOBODY: u32 = 2006;
/// A viewer of zone `outdoor` only (the test cameras are in `indoor`).
pub const VIEWER_OUTDOOR: u32 = 2007;

pub const GRANTS: &str = r#"
[[zone]]
id = "outdoor"
name = "Outdoor"
retention_days = 14
purposes = ["safety"]
legal_basis = "GDPR Art. 6(1)(e)"
processor = "Security contractor"

[[access.grant]]
user = 2001
roles = ["viewer"]
zones = ["indoor"]

[[access.grant]]
user = 2002
roles = ["operator"]

[[access.grant]]
user = 2003
roles = ["evidence"]

[[access.grant]]
user = 2004
roles = ["dpo"]

[[access.grant]]
user = 2005
roles = ["admin"]

[[access.grant]]
user = 2007
roles = ["viewer"]
zones = ["outdoor"]
"#;

/// Writes the site's config plus [`GRANTS`] and `extra`, opens the site's
/// directory to other uids (so they can reach the socket), starts custosd
/// and waits for its socket.
pub fn start(site: &Site, extra: &str) -> Daemon {
    start_with_failpoint(site, extra, None)
}

/// [`start`] with `CUSTOS_FAILPOINT` set (see src/failpoint.rs).
pub fn start_with_failpoint(site: &Site, extra: &str, failpoint: Option<&str>) -> Daemon {
    site.write_config();
    let mut text = fs::read_to_string(site.config_path()).unwrap();
    text.push_str(GRANTS);
    text.push_str(extra);
    fs::write(site.config_path(), text).unwrap();
    fs::set_permissions(site.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let daemon = Daemon::start_with_failpoint(site, failpoint);
    wait_socket(site);
    daemon
}

pub fn socket(site: &Site) -> PathBuf {
    site.dir.path().join("admin.sock")
}

pub fn wait_socket(site: &Site) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(socket(site)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the admin socket did not appear; log:\n{}",
            site.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `custosctl --socket S ARGS` as `uid` (gid 0, no supplementary
/// groups: the socket is mode 0660 with the daemon's group, root).
pub fn ctl_as(site: &Site, uid: u32, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custosctl"));
    cmd.arg("--socket").arg(socket(site)).args(args);
    if uid != 0 {
        cmd.uid(uid).gid(0);
    }
    cmd.output().unwrap()
}

/// `custosctl --json ARGS` as root, parsed.
pub fn ctl_json(site: &Site, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = ctl_as(site, 0, &all);
    assert!(
        out.status.success(),
        "custosctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// RFC 3339 in UTC of a µs time, as custosctl takes it.
pub fn rfc3339(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us).unwrap().to_string()
}

/// Opens case `id` through `custosctl` as `uid`, which must succeed.
pub fn open_case(site: &Site, uid: u32, id: &str) {
    let o = ctl_as(
        site,
        uid,
        &[
            "case",
            "open",
            "--id",
            id,
            "--title",
            "t",
            "--authority",
            "Police",
            "--authority-ref",
            "PD-9",
            "--legal-basis",
            "GDPR Art. 6(1)(c)",
        ],
    );
    assert!(
        o.status.success(),
        "case open {id}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
