//! What the export and query benchmarks share: a bench site's configuration
//! head, custosd started on it, page-cache dropping and settings from the
//! environment. Included with `#[path = "common/mod.rs"] mod common;`.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::bail;
use custos::api::client::Client;

/// A numeric setting from the environment, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a valid number")),
        Err(_) => Ok(default),
    }
}

/// Flushes dirty pages and drops the page cache, so the next run reads from
/// disk. False if not permitted (not root).
pub fn drop_caches() -> bool {
    nix::unistd::sync();
    fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

/// The configuration of a bench site in `dir` up to its zones: daemon
/// (retention ceiling a year away, so cached footage is not reaped soon),
/// controller, one storage root, evidence.
pub fn config_head(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"timezone = "Europe/Vilnius"

[daemon]
state_dir = "{d}/state"
socket = "{d}/admin.sock"
max_retention_days = 366

[controller]
name = "Bench school"
registration_code = "190000000"
address = "Bench street 1"
email = "info@example.org"
dpo = {{ name = "DPO", email = "dpo@example.org" }}

[[storage]]
id = "main"
path = "{d}/recordings"
create = true

[evidence]
path = "{d}/evidence"
create = true
"#
    )
}

/// Megabytes (10^6 bytes) per second.
pub fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// User + system CPU time of this process (`RUSAGE_SELF`) or of its
/// waited-for children (`RUSAGE_CHILDREN`).
pub fn cpu_time(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut u) } != 0 {
        return Duration::ZERO;
    }
    let d = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    d(u.ru_utime) + d(u.ru_stime)
}

/// The real custosd, stopped when dropped.
pub struct Daemon {
    child: Option<Child>,
}

impl Daemon {
    /// Starts `custosd --config CONFIG` logging to `log`, and returns it
    /// with the time until its socket answered `/v1/status` (polled every
    /// `poll`, for at most 5 minutes).
    pub fn start(
        custosd: &str,
        config: &Path,
        socket: &Path,
        log: &Path,
        poll: Duration,
    ) -> anyhow::Result<(Duration, Daemon)> {
        let _ = fs::remove_file(socket);
        let logf = File::create(log)?;
        let client = Client::new(socket);
        let t = Instant::now();
        let child = Command::new(custosd)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf)
            .spawn()?;
        let mut d = Daemon { child: Some(child) };
        loop {
            if client.get("/v1/status").is_ok() {
                return Ok((t.elapsed(), d));
            }
            let exited = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || t.elapsed() > Duration::from_secs(300) {
                let status = exited.map_or("timed out".into(), |s| s.to_string());
                d.stop();
                bail!(
                    "custosd did not answer on {} ({status}); see {}",
                    socket.display(),
                    log.display()
                );
            }
            std::thread::sleep(poll);
        }
    }

    #[allow(dead_code)] // used by one of the benchmarks only
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGTERM, then SIGKILL if it has not exited within 30 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
