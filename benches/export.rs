//! Export throughput (issues 6 and 8): one hour of one 4 Mbit/s camera
//! exported as a package, against a plain sequential copy of the same source
//! bytes in the same run (the physical limit of this disk).
//!
//!     cargo bench --locked --bench export
//!     EXPORT_BENCH_MINUTES=10 EXPORT_BENCH_ROUNDS=2 cargo bench --locked --bench export
//!
//! Environment: `EXPORT_BENCH_MINUTES` (length of the recording, default
//! 60), `EXPORT_BENCH_ROUNDS` (rounds of the three methods, default 3),
//! `EXPORT_BENCH_DROP_CACHES=0` (keep the page cache between runs; by default
//! it is dropped when the bench runs as root, and the output says whether).
//!
//! The site is built once into `target/export-bench/site-<minutes>m/` and
//! reused: a camera recorded as custosd records it (1920x1080 H.264 at 30 fps,
//! a key frame every 2 s, 4 Mbit/s of video plus 64 kbit/s AAC, 60 s
//! segments of 500 ms fragments written with [`FragmentedWriter`]), each
//! segment indexed complete with its real SHA-256, frames and size. Sample
//! payloads are pseudo-random bytes of realistic sizes (key frames ten times
//! a P-frame). The index is copied from a pristine copy at every start, so
//! disclosures and audit rows of earlier runs do not pile up.
//!
//! Each round runs, in rotating order, with the page cache dropped before each:
//! - `copy`: the source segment files read in order with a 1 MiB buffer and
//!   written into one new file, then fsynced (the export fsyncs too);
//! - `library`: [`custos::export::export`] of the whole range;
//! - `custosctl`: `custosctl export` as an officer runs it, against the real
//!   custosd running on the site (the running uid is granted role evidence):
//!   custosd cuts the package and streams it, custosctl writes it.
//!
//! MB/s is source bytes (the segments' total, 10^6 bytes) over wall time.
//! CPU is this process's (copy, library) or custosctl's, plus custosd's
//! over the same run (from /proc, 10 ms ticks).
//! Every export is then checked outside the timing: the clips' video frames,
//! key frames and sample bytes (parsed back with [`custos::mp4::scan_file`])
//! must equal the sources', and [`custos::export::verify`] must pass.

#[path = "common/mod.rs"]
mod common;
#[path = "common/footage.rs"]
#[allow(dead_code)]
mod footage;
#[path = "recording/procfs.rs"]
#[allow(dead_code)]
mod procfs;
#[path = "common/site.rs"]
#[allow(dead_code)]
mod site;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use comfy_table::Table;
use common::{Daemon, cpu_time, drop_caches, env_or, mb_per_s};
use custos::config::Config;
use custos::export::{self, NodeKey, Request, manifest::Exporter};
use custos::index::SharedIndex;
use custos::index::{Index, SegmentRow};
use custos::retention::Leases;
use footage::{FPS, GOP_FRAMES};
use site::{CAMERA, SEGMENT_S, Site, T0_US};

const CUSTOSD: &str = env!("CARGO_BIN_EXE_custosd");
const CUSTOSCTL: &str = env!("CARGO_BIN_EXE_custosctl");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Copy,
    Library,
    Custosctl,
}

impl Method {
    const ALL: [Method; 3] = [Method::Copy, Method::Library, Method::Custosctl];

    fn name(self) -> &'static str {
        match self {
            Method::Copy => "copy",
            Method::Library => "library",
            Method::Custosctl => "custosctl",
        }
    }
}

/// What the hour's sources hold, to check every export against.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Content {
    video_frames: u64,
    key_frames: u64,
    audio_frames: u64,
    /// Sample payload bytes, both tracks.
    sample_bytes: u64,
}

struct Run {
    round: usize,
    method: Method,
    wall: Duration,
    /// User + system CPU of the process doing the work (for `custosctl`,
    /// the client; the daemon's share is `daemon_cpu`).
    cpu: Duration,
    /// `custosctl` only: custosd's CPU over the run (10 ms resolution).
    daemon_cpu: Option<Duration>,
    /// Bytes written (the copy's file, or the package's clips).
    written: u64,
    /// 1-minute load average before the run (the machine is shared).
    load: String,
    check: Result<(), String>,
}

fn main() -> anyhow::Result<()> {
    let minutes: u64 = env_or("EXPORT_BENCH_MINUTES", 60)?;
    let rounds: usize = env_or("EXPORT_BENCH_ROUNDS", 3)?;
    let want_drop = env_or("EXPORT_BENCH_DROP_CACHES", 1u8)? != 0;
    ensure!(
        minutes > 0 && rounds > 0,
        "EXPORT_BENCH_MINUTES and EXPORT_BENCH_ROUNDS must be at least 1"
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .context("CARGO_TARGET_TMPDIR has no parent")?
        .join("export-bench");
    let site = Site::new(dir.join(format!("site-{minutes}m")), minutes);
    site.ensure_built()?;
    site.reset_index()?;
    site.write_config()?;
    let from_us = T0_US;
    let to_us = T0_US + (minutes * 60 * 1_000_000) as i64;
    let rows = Index::open_read_only(&site.index())?.segments(CAMERA, from_us, to_us)?;
    ensure!(
        rows.len() as u64 == minutes * 60 / SEGMENT_S,
        "the site's index lists {} segments; remove {} to rebuild it",
        rows.len(),
        site.dir.display()
    );
    let sources: Vec<PathBuf> = rows
        .iter()
        .map(|r| site.recordings().join(&r.path))
        .collect();
    let source_bytes: u64 = rows.iter().map(|r| r.bytes.unwrap_or(0)).sum();
    let expected = content_of(&sources)?;
    check_index_agrees(&rows, &expected)?;

    let work = dir.join("work");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let (_, mut daemon) = Daemon::start(
        CUSTOSD,
        &site.config(),
        &site.socket(),
        &dir.join("custosd.log"),
        Duration::from_millis(20),
    )?;
    let dropped = want_drop && drop_caches();
    let machine = procfs::machine();
    let started = jiff::Timestamp::now();
    eprintln!(
        "export benchmark: {machine}; {minutes} min, {} segments, {:.1} MB; page cache {}",
        rows.len(),
        source_bytes as f64 / 1e6,
        if dropped {
            "dropped before each run"
        } else {
            "NOT dropped"
        }
    );

    let mut runs = Vec::new();
    for round in 0..rounds {
        let mut order = Method::ALL;
        order.rotate_left(round % Method::ALL.len());
        for method in order {
            let out = work.join(format!("r{round}-{}", method.name()));
            if dropped {
                drop_caches();
            }
            let load = procfs::loadavg();
            let run = run_one(
                &site,
                method,
                round,
                &sources,
                (from_us, to_us),
                &out,
                &expected,
                daemon.pid(),
            );
            let mut run = match run {
                Ok(r) => r,
                Err(e) => {
                    daemon.stop();
                    return Err(e.context(format!("{} in round {round}", method.name())));
                }
            };
            run.load = load;
            eprintln!(
                "-- round {round} {}: {:.2?}, {:.1} MB/s, load {}, {}",
                method.name(),
                run.wall,
                mb_per_s(source_bytes, run.wall),
                run.load,
                run.check.as_ref().err().map_or("checked", String::as_str)
            );
            runs.push(run);
            fs::remove_dir_all(&out)?;
        }
    }
    daemon.stop();

    println!();
    println!("Export benchmark, {started}");
    println!("Machine: {machine}");
    println!(
        "Source: {minutes} min of one camera, {} segments of {SEGMENT_S} s, {:.1} MB \
         ({:.2} Mbit/s: H.264 1080p {FPS} fps, key frame every {GOP_FRAMES} frames, plus AAC); \
         {} video frames",
        rows.len(),
        source_bytes as f64 / 1e6,
        source_bytes as f64 * 8.0 / (minutes * 60) as f64 / 1e6,
        expected.video_frames
    );
    println!(
        "Page cache: {}",
        if dropped {
            "dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before every run"
        } else {
            "not dropped (not root, or EXPORT_BENCH_DROP_CACHES=0): reads may come from memory"
        }
    );
    println!(
        "Command: EXPORT_BENCH_MINUTES={minutes} EXPORT_BENCH_ROUNDS={rounds} \
         cargo bench --locked --bench export"
    );
    println!();
    println!("{}", runs_table(&runs, source_bytes));
    println!();
    println!("{}", summary_table(&runs, source_bytes));
    let failed: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            r.check
                .as_ref()
                .err()
                .map(|e| format!("round {} {}: {e}", r.round, r.method.name()))
        })
        .collect();
    ensure!(
        failed.is_empty(),
        "exports failed their checks:\n{}",
        failed.join("\n")
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_one(
    site: &Site,
    method: Method,
    round: usize,
    sources: &[PathBuf],
    (from_us, to_us): (i64, i64),
    out: &Path,
    expected: &Content,
    daemon: u32,
) -> anyhow::Result<Run> {
    let who = match method {
        Method::Custosctl => libc::RUSAGE_CHILDREN,
        _ => libc::RUSAGE_SELF,
    };
    let cpu0 = cpu_time(who);
    let daemon0 = procfs::cpu_ticks(daemon);
    let t = Instant::now();
    let written = match method {
        Method::Copy => copy(sources, out)?,
        Method::Library => export_library(site, from_us, to_us, out)?,
        Method::Custosctl => export_custosctl(site, from_us, to_us, out)?,
    };
    let wall = t.elapsed();
    let cpu = cpu_time(who).saturating_sub(cpu0);
    let daemon_cpu = match (method, daemon0, procfs::cpu_ticks(daemon)) {
        (Method::Custosctl, Some(a), Some(b)) => Some(Duration::from_secs_f64(
            b.saturating_sub(a) as f64 / procfs::ticks_per_second(),
        )),
        _ => None,
    };
    let check = match method {
        Method::Copy => {
            let total: u64 = sources
                .iter()
                .map(|p| fs::metadata(p).map_or(0, |m| m.len()))
                .sum();
            if written == total {
                Ok(())
            } else {
                Err(format!("copied {written} bytes of {total}"))
            }
        }
        _ => check_package(out, expected),
    };
    Ok(Run {
        round,
        method,
        wall,
        cpu,
        daemon_cpu,
        written,
        load: String::new(),
        check,
    })
}

/// The physical limit: every source byte read once, in order, and written
/// once to a new file, made durable as the export makes its files.
fn copy(sources: &[PathBuf], out: &Path) -> anyhow::Result<u64> {
    fs::create_dir_all(out)?;
    let path = out.join("copy.bin");
    let mut dst = File::create_new(&path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    for src in sources {
        let mut f = File::open(src).with_context(|| format!("opening {}", src.display()))?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            dst.write_all(&buf[..n])?;
            total += n as u64;
        }
    }
    dst.sync_all()?;
    File::open(out)?.sync_all()?;
    Ok(total)
}

fn export_library(site: &Site, from_us: i64, to_us: i64, out: &Path) -> anyhow::Result<u64> {
    let config = Config::load(&site.config()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let index = SharedIndex::new(Index::open(&site.index())?);
    let key = NodeKey::load_or_create(&config.daemon.state_dir)?;
    let req = Request {
        camera: CAMERA.into(),
        from_us,
        to_us,
        case: None,
        recipient: "Bench police, officer B. Bench".into(),
        reason: "export benchmark".into(),
        legal_basis: None,
        exporter: Exporter {
            user: "bench".into(),
            uid: nix::unistd::getuid().as_raw(),
        },
    };
    let now = jiff::Timestamp::now().as_microsecond();
    let m = export::export(&index, &config, &Leases::new(), &key, &req, out, now)?;
    Ok(m.files
        .iter()
        .filter(|f| f.name.ends_with(".mp4"))
        .map(|f| f.bytes)
        .sum())
}

fn export_custosctl(site: &Site, from_us: i64, to_us: i64, out: &Path) -> anyhow::Result<u64> {
    let rfc3339 = |us: i64| {
        jiff::Timestamp::from_microsecond(us)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    let output = Command::new(CUSTOSCTL)
        .arg("--config")
        .arg(site.config())
        .arg("--socket")
        .arg(site.socket())
        .args(["export", "--camera", CAMERA])
        .args(["--from", &rfc3339(from_us), "--to", &rfc3339(to_us)])
        .args(["--recipient", "Bench police, officer B. Bench"])
        .args(["--reason", "export benchmark"])
        .arg("--out")
        .arg(out)
        .stdin(Stdio::null())
        .output()?;
    ensure!(
        output.status.success(),
        "custosctl export failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(mp4_files(out)?
        .iter()
        .map(|p| fs::metadata(p).map_or(0, |m| m.len()))
        .sum())
}

fn mp4_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "mp4"))
        .collect();
    v.sort();
    Ok(v)
}

/// Frames, key frames and sample bytes of the video and audio tracks of
/// `files`, parsed from their boxes.
fn content_of(files: &[PathBuf]) -> anyhow::Result<Content> {
    let mut c = Content::default();
    for f in files {
        let info = custos::mp4::scan_file(f)?;
        for s in &info.samples {
            let video = info.track(s.track).is_some_and(|t| t.codec.is_video());
            if video {
                c.video_frames += 1;
                c.key_frames += u64::from(s.keyframe);
            } else {
                c.audio_frames += 1;
            }
            c.sample_bytes += u64::from(s.size);
        }
    }
    Ok(c)
}

fn check_index_agrees(rows: &[SegmentRow], c: &Content) -> anyhow::Result<()> {
    let frames: u64 = rows.iter().map(|r| r.frames.unwrap_or(0)).sum();
    let keys: u64 = rows.iter().map(|r| r.key_frames.unwrap_or(0)).sum();
    ensure!(
        (frames, keys) == (c.video_frames, c.key_frames),
        "the index counts {frames} frames and {keys} key frames, the files {} and {}",
        c.video_frames,
        c.key_frames
    );
    Ok(())
}

/// The package holds exactly the sources' media, and verifies.
fn check_package(out: &Path, expected: &Content) -> Result<(), String> {
    let files = mp4_files(out).map_err(|e| e.to_string())?;
    let got = content_of(&files).map_err(|e| e.to_string())?;
    if got != *expected {
        return Err(format!("the clips hold {got:?}, the sources {expected:?}"));
    }
    let report = export::verify(out, None).map_err(|e| e.to_string())?;
    if !report.ok() {
        return Err(format!("verify: {:?}", report.problems));
    }
    Ok(())
}

fn runs_table(runs: &[Run], source_bytes: u64) -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    t.set_header([
        "round",
        "method",
        "time s",
        "MB/s",
        "time / copy",
        "CPU s",
        "custosd CPU s",
        "MB written",
        "load",
        "check",
    ]);
    for r in runs {
        let copy = runs
            .iter()
            .find(|c| c.round == r.round && c.method == Method::Copy);
        t.add_row([
            r.round.to_string(),
            r.method.name().to_owned(),
            format!("{:.2}", r.wall.as_secs_f64()),
            format!("{:.1}", mb_per_s(source_bytes, r.wall)),
            copy.map_or("-".into(), |c| {
                format!("{:.2}", r.wall.as_secs_f64() / c.wall.as_secs_f64())
            }),
            format!("{:.2}", r.cpu.as_secs_f64()),
            r.daemon_cpu
                .map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64())),
            format!("{:.1}", r.written as f64 / 1e6),
            r.load.clone(),
            match &r.check {
                Ok(()) => "ok".into(),
                Err(e) => format!("WRONG: {e}"),
            },
        ]);
    }
    t
}

/// Means over rounds; the throughput ratio is export MB/s over copy MB/s.
fn summary_table(runs: &[Run], source_bytes: u64) -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    t.set_header([
        "method",
        "rounds",
        "mean time s",
        "mean MB/s",
        "MB/s / copy MB/s",
        "mean CPU s (client + custosd)",
    ]);
    let of = |m: Method| runs.iter().filter(move |r| r.method == m);
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
    for m in Method::ALL {
        let n = of(m).count();
        let ratios: Vec<f64> = of(m)
            .filter_map(|r| {
                let c = of(Method::Copy).find(|c| c.round == r.round)?;
                Some(c.wall.as_secs_f64() / r.wall.as_secs_f64())
            })
            .collect();
        t.add_row([
            m.name().to_owned(),
            n.to_string(),
            format!("{:.2}", mean(of(m).map(|r| r.wall.as_secs_f64()).collect())),
            format!(
                "{:.1}",
                mean(of(m).map(|r| mb_per_s(source_bytes, r.wall)).collect())
            ),
            format!("{:.2}", mean(ratios)),
            format!(
                "{:.2}",
                mean(
                    of(m)
                        .map(|r| (r.cpu + r.daemon_cpu.unwrap_or_default()).as_secs_f64())
                        .collect()
                )
            ),
        ]);
    }
    t
}
