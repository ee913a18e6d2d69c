//! Recording benchmark (issue 8): what recording costs per camera, custosd
//! against ffmpeg `-c copy -f segment` (the method Frigate and Shinobi use),
//! side by side in one run.
//!
//! For each camera count N, and for each recorder in alternating order (so
//! machine drift affects both), one phase:
//! 1. `custos-camsim` serves N cameras in its own process, looping a
//!    pre-encoded clip (1080p30, 4 Mbit/s, a key frame every 2 s);
//! 2. the recorder records all N (custosd: one process; ffmpeg: one process
//!    per camera), until every camera has written data, then settles;
//! 3. over the window, CPU is utime+stime from `/proc/<pid>/stat` (summed over
//!    processes), memory is sampled from `/proc/<pid>/status` (VmRSS, Threads)
//!    and `/proc/<pid>/smaps_rollup` (Pss) and the peak kept; context
//!    switches of every thread (`/proc/<pid>/task/*/status`), per frame the
//!    cameras sent in the window, say how often the recorder sleeps and wakes;
//! 4. the simulator is told (SIGUSR1) to freeze every camera and print what it
//!    served; after a pause for in-flight data the recorder gets SIGTERM and
//!    finalises its files; frames in the files (parsed back with
//!    `custos::mp4::scan_file`) are compared with frames served.
//!
//! Run: `scripts/bench` (installs ffmpeg, builds release, runs this), or
//! `cargo bench --bench recording -- --cameras 1,8 --window 20s`.

#[path = "recording/procfs.rs"]
mod procfs;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use comfy_table::Table;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use procfs::MemSample;

const CUSTOSD: &str = env!("CARGO_BIN_EXE_custosd");
const CAMSIM: &str = env!("CARGO_BIN_EXE_custos-camsim");

/// The stream every simulated camera serves.
const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const FPS: u32 = 30;
const KBPS: u32 = 4000;
const GOP_FRAMES: u32 = 60;
/// Segment length for both recorders (ffmpeg's `-segment_time 60`).
const SEGMENT_SECS: u32 = 60;

/// How often memory and threads are sampled during the window.
const MEM_SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Between freezing the cameras and stopping the recorder: data in flight
/// (socket buffers, jitter buffer) reaches the recorder.
const DRAIN: Duration = Duration::from_millis(1500);

/// Recording cost per camera: custosd against ffmpeg, from one clip-mode simulator.
#[derive(Debug, Parser)]
struct Args {
    /// Camera counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,64,128")]
    cameras: Vec<usize>,
    /// Measuring window per phase (after every camera is recording).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    window: Duration,
    /// Wait after every camera is recording, before the window opens.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Phases per recorder and N (alternating custosd and ffmpeg).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Which recorders: custosd (its default client, retina for these
    /// rtsp:// cameras over TCP), custosd-gstreamer (cameras with
    /// rtsp_client = "gstreamer", the client for UDP and rtsps://), ffmpeg.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "custosd,custosd-gstreamer,ffmpeg"
    )]
    recorders: Vec<Recorder>,
    /// Keep the recordings and logs (the directory is printed).
    #[arg(long)]
    keep: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
enum Recorder {
    Custosd,
    CustosdGstreamer,
    Ffmpeg,
}

impl Recorder {
    fn name(self) -> &'static str {
        match self {
            Recorder::Custosd => "custosd",
            Recorder::CustosdGstreamer => "custosd-gstreamer",
            Recorder::Ffmpeg => "ffmpeg",
        }
    }
}

/// The figures of one phase.
#[derive(Debug, Clone, serde::Serialize)]
struct Phase {
    recorder: Recorder,
    cameras: usize,
    /// Cameras that had written data when the window opened.
    recording: usize,
    window_s: f64,
    /// Recorder CPU over the window, % of one core, all processes.
    cpu_pct: f64,
    /// Peak over the window.
    rss_mib: f64,
    pss_mib: f64,
    threads: u64,
    processes: usize,
    frames_served: u64,
    frames_in_files: u64,
    /// Reconnects (custosd, from its log) or restarted processes (ffmpeg).
    restarts: u64,
    /// Simulator CPU over the window, % of one core.
    sim_cpu_pct: f64,
    /// The recorder's context switches over the window (its threads'
    /// sleeps and wake-ups), per frame served in the window.
    switches_per_frame: f64,
    load_before: String,
    load_after: String,
}

impl Phase {
    fn per_camera(&self, v: f64) -> f64 {
        v / self.cameras as f64
    }
    fn lost(&self) -> i64 {
        self.frames_served as i64 - self.frames_in_files as i64
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        !args.cameras.is_empty() && args.cameras.iter().all(|&n| n > 0),
        "--cameras: give one or more camera counts above 0, e.g. 1,8,32"
    );
    if args.recorders.contains(&Recorder::Ffmpeg) {
        let ok = Command::new("ffmpeg")
            .arg("-version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        anyhow::ensure!(
            ok,
            "ffmpeg is not installed: run scripts/bench (it installs it), or apt-get install ffmpeg"
        );
    }
    let work = tempfile::Builder::new()
        .prefix("custos-bench-recording")
        .tempdir()?;
    // Kept from the start, so a failed phase leaves its logs too.
    let (work, _cleanup) = if args.keep {
        (work.keep(), None)
    } else {
        (work.path().to_owned(), Some(work))
    };
    let machine = procfs::machine();
    let started = jiff::Timestamp::now();
    eprintln!(
        "recording benchmark: {machine}; cameras {:?}; window {}; work dir {}",
        args.cameras,
        humantime::format_duration(args.window),
        work.display()
    );

    let mut phases = Vec::new();
    for round in 0..args.rounds {
        for (i, &n) in args.cameras.iter().enumerate() {
            let mut order = args.recorders.clone();
            if (i + round) % 2 == 1 {
                order.reverse();
            }
            for recorder in order {
                let dir = work.join(format!("r{round}-n{n}-{}", recorder.name()));
                fs::create_dir_all(&dir)?;
                eprintln!("-- {} x{n} (round {round})", recorder.name());
                let phase = run_phase(recorder, n, &args, &dir)?;
                eprintln!(
                    "   cpu {:.2}%/camera, pss {:.1} MiB/camera, threads {}, frames {}/{} served, sim cpu {:.0}%",
                    phase.per_camera(phase.cpu_pct),
                    phase.per_camera(phase.pss_mib),
                    phase.threads,
                    phase.frames_in_files,
                    phase.frames_served,
                    phase.sim_cpu_pct
                );
                phases.push(phase);
                if !args.keep {
                    let _ = fs::remove_dir_all(&dir);
                }
            }
        }
    }

    let command = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect::<Vec<_>>();
    println!();
    println!("Recording benchmark, {started}");
    println!("Machine: {machine}");
    println!(
        "Stream: {WIDTH}x{HEIGHT} H.264, {FPS} fps, {KBPS} kbit/s, key frame every {GOP_FRAMES} frames; \
         window {} per phase; segments {SEGMENT_SECS} s",
        humantime::format_duration(args.window)
    );
    println!(
        "Command: cargo bench --bench recording -- {}",
        if command.is_empty() {
            "(defaults)".to_owned()
        } else {
            command.join(" ")
        }
    );
    println!();
    println!("{}", phases_table(&phases));
    println!();
    println!("{}", ratio_table(&phases));
    if let Some(path) = &args.json {
        fs::write(path, serde_json::to_string_pretty(&phases)?)?;
    }
    if args.keep {
        println!("recordings and logs kept in {}", work.display());
    }
    Ok(())
}

fn phases_table(phases: &[Phase]) -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    t.set_header([
        "N",
        "recorder",
        "CPU %/cam",
        "RSS MiB/cam",
        "PSS MiB/cam",
        "threads",
        "switches/frame",
        "procs",
        "frames served",
        "lost",
        "restarts",
        "recording",
        "sim CPU %",
        "load",
    ]);
    for p in phases {
        t.add_row([
            p.cameras.to_string(),
            p.recorder.name().to_owned(),
            format!("{:.2}", p.per_camera(p.cpu_pct)),
            format!("{:.2}", p.per_camera(p.rss_mib)),
            format!("{:.2}", p.per_camera(p.pss_mib)),
            p.threads.to_string(),
            format!("{:.2}", p.switches_per_frame),
            p.processes.to_string(),
            p.frames_served.to_string(),
            p.lost().to_string(),
            p.restarts.to_string(),
            format!("{}/{}", p.recording, p.cameras),
            format!("{:.0}", p.sim_cpu_pct),
            format!("{}->{}", p.load_before, p.load_after),
        ]);
    }
    t
}

/// Each custosd client against ffmpeg, per N, from the means over rounds.
fn ratio_table(phases: &[Phase]) -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    t.set_header([
        "N",
        "recorder",
        "CPU / ffmpeg",
        "RSS / ffmpeg",
        "PSS / ffmpeg",
    ]);
    let mut ns: Vec<usize> = phases.iter().map(|p| p.cameras).collect();
    ns.sort_unstable();
    ns.dedup();
    for n in ns {
        let mean = |r: Recorder, f: fn(&Phase) -> f64| {
            let v: Vec<f64> = phases
                .iter()
                .filter(|p| p.cameras == n && p.recorder == r)
                .map(f)
                .collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        for recorder in [Recorder::Custosd, Recorder::CustosdGstreamer] {
            if mean(recorder, |p| p.cpu_pct).is_none() {
                continue;
            }
            let ratio = |f: fn(&Phase) -> f64| match (mean(recorder, f), mean(Recorder::Ffmpeg, f))
            {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "-".into(),
            };
            t.add_row([
                n.to_string(),
                recorder.name().to_owned(),
                ratio(|p| p.cpu_pct),
                ratio(|p| p.rss_mib),
                ratio(|p| p.pss_mib),
            ]);
        }
    }
    t
}

/// The simulator process and its stdout (URLs, then the counts line).
struct Sim {
    child: Child,
    stdout: BufReader<ChildStdout>,
    urls: Vec<(String, String)>,
}

impl Sim {
    fn start(n: usize, dir: &Path) -> anyhow::Result<Sim> {
        let mut child = Command::new(CAMSIM)
            .args(["--port", "0", "--mode", "clip", "--name-prefix", "cam"])
            .args(["--cameras", &n.to_string()])
            .args([
                "--width",
                &WIDTH.to_string(),
                "--height",
                &HEIGHT.to_string(),
            ])
            .args([
                "--fps",
                &FPS.to_string(),
                "--gop-frames",
                &GOP_FRAMES.to_string(),
            ])
            .args(["--bitrate-kbps", &KBPS.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(fs::File::create(dir.join("camsim.log"))?)
            .spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut urls = Vec::with_capacity(n);
        for _ in 0..n {
            let mut line = String::new();
            if stdout.read_line(&mut line)? == 0 {
                let _ = child.kill();
                anyhow::bail!(
                    "custos-camsim exited before listing its cameras; see {}",
                    dir.join("camsim.log").display()
                );
            }
            let url = line.trim().to_owned();
            let name = url.rsplit('/').next().unwrap_or_default().to_owned();
            urls.push((name, url));
        }
        Ok(Sim {
            child,
            stdout,
            urls,
        })
    }

    /// Freezes every camera and returns the video frames each one served.
    fn freeze_and_count(&mut self) -> anyhow::Result<Vec<(String, u64)>> {
        signal(self.child.id(), Signal::SIGUSR1);
        let mut line = String::new();
        anyhow::ensure!(
            self.stdout.read_line(&mut line)? > 0,
            "custos-camsim exited instead of printing its counts"
        );
        let v: serde_json::Value = serde_json::from_str(&line)?;
        let counts = v["video_frames_sent"]
            .as_object()
            .ok_or_else(|| anyhow::anyhow!("unexpected counts line {line:?}"))?;
        Ok(counts
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
            .collect())
    }

    fn stop(mut self) {
        signal(self.child.id(), Signal::SIGTERM);
        if !wait_timeout(&mut self.child, Duration::from_secs(20)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(pid: u32, sig: Signal) {
    let _ = kill(Pid::from_raw(pid as i32), sig);
}

/// Waits for `child` to exit; false if it is still running after `timeout`.
fn wait_timeout(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The running recorder: its processes and where each camera's files go.
struct Running {
    children: Vec<Child>,
    /// Per camera: the directory its files are written under.
    camera_dirs: Vec<(String, PathBuf)>,
    /// ffmpeg only: per camera, for restarts.
    urls: Vec<String>,
    /// ffmpeg processes restarted after exiting early; custosd's reconnects
    /// are counted from its log.
    restarts: u64,
    ffmpeg: bool,
}

impl Running {
    fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// Restarts ffmpeg processes that have exited (as a supervisor such as
    /// Frigate's would): under load, a probe now and then finds no stream.
    fn restart_exited(&mut self, dir: &Path) -> anyhow::Result<()> {
        if !self.ffmpeg {
            return Ok(());
        }
        for i in 0..self.children.len() {
            if matches!(self.children[i].try_wait(), Ok(Some(_))) {
                self.children[i] = spawn_ffmpeg(&self.urls[i], &self.camera_dirs[i].1, dir)?;
                self.restarts += 1;
            }
        }
        Ok(())
    }

    /// custosd: SIGTERM. ffmpeg ends by itself once the cameras are silent
    /// for its `-timeout`; SIGTERM only if it does not.
    fn stop(mut self, dir: &Path) -> anyhow::Result<()> {
        if self.ffmpeg {
            let deadline = Instant::now() + Duration::from_secs(30);
            for c in &mut self.children {
                wait_timeout(c, deadline.saturating_duration_since(Instant::now()));
            }
        }
        for c in &mut self.children {
            if matches!(c.try_wait(), Ok(None)) {
                signal(c.id(), Signal::SIGTERM);
            }
        }
        for c in &mut self.children {
            if !wait_timeout(c, Duration::from_secs(60)) {
                let _ = c.kill();
                let _ = c.wait();
                anyhow::bail!(
                    "a recorder did not stop within 60 s of SIGTERM; logs in {}",
                    dir.display()
                );
            }
        }
        Ok(())
    }
}

fn start_custosd(
    urls: &[(String, String)],
    rtsp_client: Option<&str>,
    dir: &Path,
) -> anyhow::Result<Running> {
    let root = dir.join("recordings");
    fs::create_dir_all(&root)?;
    let config = dir.join("custos.toml");
    fs::write(&config, custosd_config(urls, rtsp_client, dir))?;
    let check = Command::new(CUSTOSD)
        .args(["check-config"])
        .arg(&config)
        .output()?;
    anyhow::ensure!(
        check.status.success(),
        "custosd check-config failed:\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let child = Command::new(CUSTOSD)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("custosd.log"))?)
        .spawn()?;
    let camera_dirs = urls
        .iter()
        .map(|(name, _)| (name.clone(), root.join("bench").join(name)))
        .collect();
    Ok(Running {
        children: vec![child],
        camera_dirs,
        urls: Vec::new(),
        restarts: 0,
        ffmpeg: false,
    })
}

/// The config for `urls`; without `rtsp_client`, each camera gets the
/// default client.
fn custosd_config(urls: &[(String, String)], rtsp_client: Option<&str>, dir: &Path) -> String {
    use std::fmt::Write as _;
    let d = dir.display();
    let mut t = format!(
        r#"timezone = "Europe/Riga"

[daemon]
state_dir = "{d}/state"
socket = "{d}/admin.sock"
stall_timeout = "10s"
shutdown_timeout = "30s"

[controller]
name = "Benchmark"
registration_code = "000000000"
address = "Loopback 1"
phone = "+371 600 00000"
email = "bench@example.org"
website = "https://example.org"
dpo = {{ name = "DPO", email = "dpo@example.org", phone = "+371 600 00001" }}

[[storage]]
id = "main"
path = "{d}/recordings"
create = true

[evidence]
path = "{d}/evidence"
create = true

[[zone]]
id = "bench"
name = "Benchmark"
retention_days = 14
purposes = ["benchmark"]
legal_basis = "GDPR Art. 6(1)(e)"
processor = "Benchmark"
"#
    );
    let client = rtsp_client
        .map(|c| format!("\nrtsp_client = \"{c}\""))
        .unwrap_or_default();
    for (name, url) in urls {
        write!(
            t,
            r#"
[[camera]]
id = "{name}"
name = "{name}"
zone = "bench"
url = "{url}"{client}
segment = "{SEGMENT_SECS}s"
area = "Simulated camera {name}"
"#
        )
        .expect("writing to a String");
    }
    t
}

fn start_ffmpeg(urls: &[(String, String)], dir: &Path) -> anyhow::Result<Running> {
    let mut children = Vec::new();
    let mut camera_dirs = Vec::new();
    for (name, url) in urls {
        let out = dir.join("ffmpeg").join(name);
        fs::create_dir_all(&out)?;
        children.push(spawn_ffmpeg(url, &out, dir)?);
        camera_dirs.push((name.clone(), out));
    }
    Ok(Running {
        children,
        camera_dirs,
        urls: urls.iter().map(|(_, u)| u.clone()).collect(),
        restarts: 0,
        ffmpeg: true,
    })
}

/// One ffmpeg recording one camera as Frigate does: copy the stream, cut
/// 60 s MP4 segments, give up on a camera silent for 5 s (`-timeout`, which
/// also makes ffmpeg end by itself, trailer written, once the simulator
/// freezes). Logging at "error" so ffmpeg does not pay for the per-GOP
/// timestamp warnings.
fn spawn_ffmpeg(url: &str, out: &Path, dir: &Path) -> anyhow::Result<Child> {
    let log = fs::File::options()
        .create(true)
        .append(true)
        .open(dir.join("ffmpeg.log"))?;
    Ok(Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error"])
        .args(["-rtsp_transport", "tcp", "-timeout", "5000000", "-i", url])
        .args(["-c", "copy", "-f", "segment"])
        .args(["-segment_time", &SEGMENT_SECS.to_string()])
        .args(["-segment_format", "mp4", "-reset_timestamps", "1"])
        .arg(out.join("%05d.mp4"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?)
}

/// Bytes of all files under `dir`, recursively.
fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => bytes_under(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

fn mp4_files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            mp4_files_under(&path, out);
        } else if path.extension().is_some_and(|x| x == "mp4") {
            out.push(path);
        }
    }
}

/// Video frames in the MP4 files under `dir`. A sample that starts less
/// than a quarter frame after the previous one is a second slice of the
/// same picture: ffmpeg's RTSP reader splits some multi-slice key frames
/// into two packets at one timestamp and nudges the second one tick later.
fn count_frames(dir: &Path) -> u64 {
    let mut files = Vec::new();
    mp4_files_under(dir, &mut files);
    let mut frames = 0;
    for path in files {
        let info = match custos::mp4::scan_file(&path) {
            Ok(info) => info,
            Err(e) => {
                eprintln!("   cannot parse {}: {e}", path.display());
                continue;
            }
        };
        let Some(video) = info.tracks.iter().find(|t| t.codec.is_video()) else {
            continue;
        };
        let quarter = u64::from(video.timescale / FPS / 4);
        let mut times: Vec<u64> = info
            .samples
            .iter()
            .filter(|s| s.track == video.id)
            .map(|s| s.decode_time)
            .collect();
        times.sort_unstable();
        let mut last: Option<u64> = None;
        for t in times {
            if last.is_none_or(|l| t >= l + quarter.max(1)) {
                frames += 1;
            }
            last = Some(t);
        }
    }
    frames
}

fn run_phase(recorder: Recorder, n: usize, args: &Args, dir: &Path) -> anyhow::Result<Phase> {
    let tck = procfs::ticks_per_second();
    let load_before = procfs::loadavg();
    let mut sim = Sim::start(n, dir)?;
    let running = match recorder {
        Recorder::Custosd => start_custosd(&sim.urls, None, dir),
        Recorder::CustosdGstreamer => start_custosd(&sim.urls, Some("gstreamer"), dir),
        Recorder::Ffmpeg => start_ffmpeg(&sim.urls, dir),
    };
    let mut running = match running {
        Ok(r) => r,
        Err(e) => {
            sim.stop();
            return Err(e);
        }
    };

    // Every camera has written something (or give up waiting).
    let deadline = Instant::now() + Duration::from_secs(30) + Duration::from_millis(300 * n as u64);
    let recording = loop {
        let k = running
            .camera_dirs
            .iter()
            .filter(|(_, d)| bytes_under(d) > 0)
            .count();
        if k == n || Instant::now() >= deadline {
            break k;
        }
        running.restart_exited(dir)?;
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(args.settle);
    let pids = running.pids();

    let sim_pid = [sim.child.id()];
    let (cpu0, sim0, switches0, t0) = (
        procfs::sum_cpu_ticks(&pids),
        procfs::sum_cpu_ticks(&sim_pid),
        procfs::context_switches(&pids),
        Instant::now(),
    );
    let mut mem = procfs::mem_sample(&pids);
    let end = t0 + args.window;
    while Instant::now() < end {
        std::thread::sleep(MEM_SAMPLE_EVERY.min(end.saturating_duration_since(Instant::now())));
        mem = mem.max(procfs::mem_sample(&pids));
    }
    let (cpu1, sim1, switches1, t1) = (
        procfs::sum_cpu_ticks(&pids),
        procfs::sum_cpu_ticks(&sim_pid),
        procfs::context_switches(&pids),
        Instant::now(),
    );
    let window_s = (t1 - t0).as_secs_f64();
    let switches = procfs::context_switches_between(&switches0, &switches1);
    let frames_in_window = window_s * f64::from(FPS) * n as f64;

    let served = sim.freeze_and_count();
    std::thread::sleep(DRAIN);
    let camera_dirs = running.camera_dirs.clone();
    let ffmpeg_restarts = running.restarts;
    let stopped = running.stop(dir);
    sim.stop();
    let served = served?;
    stopped?;

    let mut frames_served = 0;
    let mut frames_in_files = 0;
    for (name, camera_dir) in &camera_dirs {
        let sent = served
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, v)| *v);
        let got = count_frames(camera_dir);
        if sent != got {
            eprintln!("   {name}: {got} frames in files, {sent} served");
        }
        frames_served += sent;
        frames_in_files += got;
    }
    let restarts = match recorder {
        Recorder::Ffmpeg => ffmpeg_restarts,
        Recorder::Custosd | Recorder::CustosdGstreamer => {
            fs::read_to_string(dir.join("custosd.log"))
                .unwrap_or_default()
                .matches("camera failed")
                .count() as u64
        }
    };
    let MemSample {
        rss_kib,
        pss_kib,
        threads,
    } = mem;
    Ok(Phase {
        recorder,
        cameras: n,
        recording,
        window_s,
        cpu_pct: cpu1.saturating_sub(cpu0) as f64 / tck / window_s * 100.0,
        rss_mib: rss_kib as f64 / 1024.0,
        pss_mib: pss_kib as f64 / 1024.0,
        threads,
        processes: pids.len(),
        frames_served,
        frames_in_files,
        restarts,
        sim_cpu_pct: sim1.saturating_sub(sim0) as f64 / tck / window_s * 100.0,
        switches_per_frame: switches as f64 / frames_in_window,
        load_before,
        load_after: procfs::loadavg(),
    })
}
