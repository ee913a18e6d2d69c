//! A test site: a temporary storage root and state directory, a config file
//! pointing at simulated cameras, and the real `custosd` binary run on it.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use custos::index::{Index, OutageRow, SegmentRow, SegmentState};

/// A simulator serving live cameras named `names` (key frame every second,
/// so short segments are cut on time) and a site recording each of them in
/// `segment_secs`-second segments. Keep the simulator alive as long as the
/// daemon runs.
pub fn simulated_site(names: &[&str], segment_secs: u32) -> (custos::sim::Simulator, Site) {
    let cameras = names
        .iter()
        .map(|n| {
            let mut c = custos::sim::SimCamera::new(*n);
            c.keyframe_interval_frames = 25;
            c
        })
        .collect();
    let sim = custos::sim::Simulator::start(custos::sim::SimConfig {
        address: "127.0.0.1".into(),
        port: 0,
        cameras,
    })
    .unwrap();
    let site = Site::new(
        names
            .iter()
            .map(|n| {
                let mut c = SiteCamera::new(n, sim.url(n));
                c.segment_secs = segment_secs;
                c
            })
            .collect(),
    );
    (sim, site)
}

/// One camera of a test site.
#[derive(Clone)]
pub struct SiteCamera {
    pub id: String,
    pub url: String,
    /// Default "indoor" (on storage root "main"); other zones come from
    /// config text the test adds.
    pub zone: String,
    pub audio: bool,
    pub segment_secs: u32,
    pub enabled: bool,
    /// Username and password, written to the secrets file.
    pub credentials: Option<(String, String)>,
}

impl SiteCamera {
    pub fn new(id: &str, url: String) -> Self {
        SiteCamera {
            id: id.into(),
            url,
            zone: "indoor".into(),
            audio: false,
            segment_secs: 5,
            enabled: true,
            credentials: None,
        }
    }
}

pub struct Site {
    pub dir: tempfile::TempDir,
    pub cameras: Vec<SiteCamera>,
    pub stall_timeout: &'static str,
    pub retry_max: &'static str,
    /// `rtsp_client` of every camera, "gstreamer" or "retina"; `None`
    /// leaves it out, for the daemon's default (retina over TCP).
    pub rtsp_client: Option<&'static str>,
    /// Lines added to the config's `[daemon]` section.
    pub daemon_extra: String,
    /// Lines appended to the secrets file (e.g. an `[alerts]` table).
    pub secrets_extra: String,
    /// The umask custosd starts with (default: the test process's).
    pub umask: Option<u32>,
    /// Sections appended to the config (devices, inboxes).
    pub extra: String,
}

impl Site {
    pub fn new(cameras: Vec<SiteCamera>) -> Site {
        let dir = tempfile::Builder::new()
            .prefix("custos-test")
            .tempdir()
            .unwrap();
        fs::create_dir_all(dir.path().join("recordings")).unwrap();
        Site {
            dir,
            cameras,
            stall_timeout: "2s",
            retry_max: "2s",
            rtsp_client: None,
            daemon_extra: String::new(),
            secrets_extra: String::new(),
            umask: None,
            extra: String::new(),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("recordings")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("custos.toml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("custosd.log")
    }

    pub fn index_path(&self) -> PathBuf {
        self.dir.path().join("state").join("index.db")
    }

    /// Writes the config file for the current cameras.
    pub fn write_config(&self) {
        let d = self.dir.path().display();
        let mut t = format!(
            r#"timezone = "Europe/Vilnius"

[daemon]
state_dir = "{d}/state"
socket = "{d}/admin.sock"
stall_timeout = "{stall}"
retry_max = "{retry}"
shutdown_timeout = "10s"
{daemon_extra}
[controller]
name = "Test school"
registration_code = "190000000"
address = "Test street 1"
phone = "+370 600 00000"
email = "info@example.org"
website = "https://example.org"
dpo = {{ name = "DPO", email = "dpo@example.org", phone = "+370 600 00001" }}

[[storage]]
id = "main"
path = "{d}/recordings"

[evidence]
path = "{d}/evidence"
create = true

[[zone]]
id = "indoor"
name = "Indoor"
retention_days = 10
purposes = ["safety"]
legal_basis = "GDPR Art. 6(1)(e)"
processor = "The school"
audio = "allowed"
"#,
            stall = self.stall_timeout,
            retry = self.retry_max,
            daemon_extra = self.daemon_extra,
        );
        for c in &self.cameras {
            write!(
                t,
                r#"
[[camera]]
id = "{id}"
name = "{id}"
zone = "{zone}"
url = "{url}"{client}
audio = {audio}
segment = "{seg}s"
area = "Test area of {id}"
enabled = {enabled}
"#,
                id = c.id,
                zone = c.zone,
                url = c.url,
                client = self
                    .rtsp_client
                    .map(|c| format!("\nrtsp_client = \"{c}\""))
                    .unwrap_or_default(),
                audio = c.audio,
                seg = c.segment_secs,
                enabled = c.enabled,
            )
            .unwrap();
        }
        let mut secrets = String::new();
        for c in &self.cameras {
            if let Some((user, password)) = &c.credentials {
                writeln!(
                    secrets,
                    "[camera.{}]\nusername = {user:?}\npassword = {password:?}",
                    c.id
                )
                .unwrap();
            }
        }
        secrets.push_str(&self.secrets_extra);
        if !secrets.is_empty() {
            let path = self.dir.path().join("secrets.toml");
            fs::write(&path, secrets).unwrap();
            fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            t.insert_str(0, &format!("secrets = {:?}\n", path.display().to_string()));
        }
        t.push_str(&self.extra);
        fs::write(self.config_path(), t).unwrap();
    }

    pub fn start(&self) -> Daemon {
        self.write_config();
        Daemon::start(self)
    }

    pub fn index(&self) -> Index {
        Index::open_read_only(&self.index_path()).unwrap()
    }

    /// The camera's segments, oldest first (none before the daemon has
    /// created the index: the file exists a moment before its schema does).
    pub fn segments(&self, camera: &str) -> Vec<SegmentRow> {
        if !self.index_path().exists() {
            return Vec::new();
        }
        match Index::open_read_only(&self.index_path()) {
            Ok(index) => index.segments(camera, 0, i64::MAX).unwrap(),
            Err(e) if e.message.contains("schema version 0") => Vec::new(),
            Err(e) => panic!("{e}"),
        }
    }

    pub fn outages(&self, camera: &str) -> Vec<OutageRow> {
        self.index().outages(camera, 0, i64::MAX).unwrap()
    }

    /// Waits until `camera` has at least `n` complete segments.
    pub fn wait_complete(&self, camera: &str, n: usize, timeout: Duration) -> Vec<SegmentRow> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.index_path().exists() {
                let segs = self.segments(camera);
                if segs
                    .iter()
                    .filter(|s| s.state == SegmentState::Complete)
                    .count()
                    >= n
                {
                    return segs;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{camera}: fewer than {n} complete segments after {timeout:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Checks the storage invariants of docs/design/storage.md: every
    /// complete row's file exists with its size and hash, no row is left
    /// recording, and every file under the root has a row.
    pub fn assert_consistent(&self) {
        let index = self.index();
        let mut indexed = std::collections::BTreeSet::new();
        for camera in &self.cameras {
            for s in index.segments(&camera.id, 0, i64::MAX).unwrap() {
                assert_eq!(s.state, SegmentState::Complete, "unfinished row {s:?}");
                let path = self.root().join(&s.path);
                let (bytes, sha) = custos::storage::hash_file(&path)
                    .unwrap_or_else(|e| panic!("indexed file {}: {e}", path.display()));
                assert_eq!(Some(bytes), s.bytes, "size of {}", s.path);
                assert_eq!(Some(sha), s.sha256, "hash of {}", s.path);
                indexed.insert(path);
            }
        }
        for file in files_under(&self.root()) {
            assert!(
                indexed.contains(&file),
                "file without a row: {}",
                file.display()
            );
        }
    }
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The real daemon, run as a child process.
pub struct Daemon {
    child: Option<Child>,
}

impl Daemon {
    pub fn start(site: &Site) -> Daemon {
        Daemon::start_with_failpoint(site, None)
    }

    /// Starts custosd with `CUSTOS_FAILPOINT` set (see src/failpoint.rs).
    pub fn start_with_failpoint(site: &Site, failpoint: Option<&str>) -> Daemon {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(site.log_path())
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_custosd"));
        cmd.arg("--config")
            .arg(site.config_path())
            .env(
                "RUST_LOG",
                std::env::var("CUSTOS_TEST_LOG").unwrap_or("custos=debug,info".into()),
            )
            .env_remove("CUSTOS_FAILPOINT")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(fp) = failpoint {
            cmd.env("CUSTOS_FAILPOINT", fp);
        }
        if let Some(mask) = site.umask {
            use std::os::unix::process::CommandExt;
            // SAFETY: umask is async-signal-safe and touches no memory.
            unsafe {
                cmd.pre_exec(move || {
                    libc::umask(mask as libc::mode_t);
                    Ok(())
                });
            }
        }
        Daemon {
            child: Some(cmd.spawn().unwrap()),
        }
    }

    /// Exited already? Then its status.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut().unwrap().try_wait().unwrap();
        if status.is_some() {
            self.child = None;
        }
        status
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// SIGTERM, then wait for the exit.
    pub fn terminate(mut self, timeout: Duration) -> ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.wait(timeout)
    }

    /// SIGKILL, then reap.
    pub fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "custosd did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
