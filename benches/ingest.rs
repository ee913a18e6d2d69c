//! Ingest throughput (issue 16): device files taken from an inbox by the
//! real custosd (settled, validated, copied with their SHA-256, fsynced,
//! indexed, removed from the inbox), against a plain copy of the same bytes
//! with an fsync per file, in the same run.
//!
//!     cargo bench --locked --bench ingest                       # 10 GB
//!     INGEST_BENCH_GB=1 INGEST_BENCH_ROUNDS=1 cargo bench --locked --bench ingest
//!
//! Environment: `INGEST_BENCH_GB` (bytes of files, default 10),
//! `INGEST_BENCH_ROUNDS` (default 2), `INGEST_BENCH_DROP_CACHES=0` (keep the
//! page cache; by default it is dropped before each run when root).
//!
//! The files (one minute each of 1080p H.264 at 4 Mbit/s plus AAC, as a body
//! camera would write them, named `BWC0001_YYYYMMDD_HHMMSS.mp4`) are made once
//! into `target/ingest-bench/source-<gb>g/` and reused. A run of `custosd`
//! starts on an empty site; the files are hard-linked into its inbox at once
//! (as a docking station finishing its copy), and the run ends when the index
//! holds all of them. The inbox waits `settle` (1 s here) after a file stops
//! changing before it takes it: the table shows the time with and without it.

#[path = "common/mod.rs"]
#[allow(dead_code)] // the helpers other benches share
mod common;
#[path = "common/footage.rs"]
#[allow(dead_code)]
mod footage;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use comfy_table::Table;
use common::{Daemon, config_head, drop_caches, env_or};
use footage::XorShift;

const CUSTOSD: &str = env!("CARGO_BIN_EXE_custosd");
/// 2026-10-05T06:00:00Z: the first file's start.
const T0_US: i64 = 1_791_180_000_000_000;
const FILE_S: u64 = 60;
const SETTLE: Duration = Duration::from_secs(1);

fn main() -> anyhow::Result<()> {
    let gb: f64 = env_or("INGEST_BENCH_GB", 10.0)?;
    let rounds: usize = env_or("INGEST_BENCH_ROUNDS", 2)?;
    let drop: u32 = env_or("INGEST_BENCH_DROP_CACHES", 1)?;
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ingest-bench");
    let source = base.join(format!("source-{gb}g"));
    let files = make_files(&source, (gb * 1e9) as u64)?;
    let bytes: u64 = files
        .iter()
        .map(|f| fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    println!(
        "ingest bench: {} files, {:.2} GB, {rounds} round(s); page cache {}",
        files.len(),
        bytes as f64 / 1e9,
        if drop == 1 && drop_caches() {
            "dropped before each run"
        } else {
            "kept"
        }
    );
    let mut table = Table::new();
    table.set_header(["round", "method", "seconds", "MB/s", "without settle, MB/s"]);
    let mut copy_rates = Vec::new();
    let mut ingest_rates = Vec::new();
    for round in 1..=rounds {
        if drop == 1 {
            drop_caches();
        }
        let t = copy(&files, &base.join("copy"))?;
        copy_rates.push(bytes as f64 / 1e6 / t.as_secs_f64());
        table.add_row([
            round.to_string(),
            "copy + fsync".into(),
            format!("{:.1}", t.as_secs_f64()),
            format!("{:.0}", copy_rates.last().unwrap()),
            "-".into(),
        ]);
        if drop == 1 {
            drop_caches();
        }
        let t = ingest(&files, &base.join("site"))?;
        let net = t.saturating_sub(SETTLE);
        ingest_rates.push(bytes as f64 / 1e6 / net.as_secs_f64());
        table.add_row([
            round.to_string(),
            "custosd inbox".into(),
            format!("{:.1}", t.as_secs_f64()),
            format!("{:.0}", bytes as f64 / 1e6 / t.as_secs_f64()),
            format!("{:.0}", ingest_rates.last().unwrap()),
        ]);
    }
    println!("{table}");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "ingest / copy (without settle), mean of {rounds}: {:.2}",
        mean(&ingest_rates) / mean(&copy_rates)
    );
    Ok(())
}

/// The bench's files, made once: consecutive minutes of one body camera.
fn make_files(dir: &Path, bytes: u64) -> anyhow::Result<Vec<PathBuf>> {
    let done = dir.join(".complete");
    if !done.exists() {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir)?;
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut scratch = Vec::new();
        let (mut made, mut k) = (0u64, 0i64);
        while made < bytes {
            let start = T0_US + k * FILE_S as i64 * 1_000_000;
            let path = dir.join(name(start));
            let f = footage::write(File::create(&path)?, start, FILE_S, &mut rng, &mut scratch)?;
            f.sync_all()?;
            made += fs::metadata(&path)?.len();
            k += 1;
        }
        File::create(&done)?;
    }
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "mp4"))
        .collect();
    files.sort();
    ensure!(!files.is_empty(), "no files in {}", dir.display());
    Ok(files)
}

fn name(start_us: i64) -> String {
    let t = jiff::Timestamp::from_microsecond(start_us).expect("a valid time");
    format!("BWC0001_{}.mp4", t.strftime("%Y%m%d_%H%M%S"))
}

/// The plain copy: each file read and written with a 1 MiB buffer (as
/// `std::io::copy` does), fsynced, and the directory fsynced at the end.
fn copy(files: &[PathBuf], out: &Path) -> anyhow::Result<Duration> {
    let _ = fs::remove_dir_all(out);
    fs::create_dir_all(out)?;
    let t = Instant::now();
    for f in files {
        let to = out.join(f.file_name().context("a file name")?);
        let mut from = File::open(f)?;
        let mut w = File::create(&to)?;
        std::io::copy(&mut from, &mut w)?;
        w.sync_all()?;
    }
    File::open(out)?.sync_all()?;
    let d = t.elapsed();
    fs::remove_dir_all(out)?;
    Ok(d)
}

/// One run of custosd on an empty site; returns the time from the files'
/// arrival in the inbox until the index holds every one of them.
fn ingest(files: &[PathBuf], site: &Path) -> anyhow::Result<Duration> {
    let _ = fs::remove_dir_all(site);
    for d in ["inbox", "quarantine", "recordings", "state"] {
        fs::create_dir_all(site.join(d))?;
    }
    let d = site.display();
    let config = format!(
        r#"{head}
[[zone]]
id = "mobile"
name = "Mobile cameras"
retention_days = 366
purposes = ["public order"]
legal_basis = "GDPR Art. 6(1)(e)"
processor = "Municipal police"
audio = "allowed"

[[device]]
id = "bwc-01"
name = "Body camera 01"
zone = "mobile"
kind = "body"
serial = "BWC0001"
assigned_to = "officer 1001"

[[inbox]]
path = "{d}/inbox"
pattern = "{{serial}}_{{YYYYMMDD}}_{{HHMMSS}}.mp4"
settle = "1s"
poll = "500ms"
quarantine = "{d}/quarantine"
"#,
        head = config_head(site)
    );
    let config_path = site.join("custos.toml");
    fs::write(&config_path, config)?;
    let (_, mut daemon) = Daemon::start(
        CUSTOSD,
        &config_path,
        &site.join("admin.sock"),
        &site.join("custosd.log"),
        Duration::from_millis(50),
    )?;
    let index_path = site.join("state/index.db");
    let t = Instant::now();
    for f in files {
        fs::hard_link(
            f,
            site.join("inbox")
                .join(f.file_name().context("a file name")?),
        )?;
    }
    let want = files.len() as u64;
    loop {
        let stored = custos::index::Index::open_read_only(&index_path)
            .and_then(|ix| ix.device_file_totals())
            .map(|(n, _)| n)
            .unwrap_or(0);
        if stored >= want {
            break;
        }
        let quarantined = fs::read_dir(site.join("quarantine"))?.count();
        ensure!(
            quarantined == 0,
            "{quarantined} file(s) quarantined; see {}",
            site.join("quarantine").display()
        );
        ensure!(
            t.elapsed() < Duration::from_secs(3600),
            "custosd took none of the files in an hour; see {}",
            site.join("custosd.log").display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = t.elapsed();
    daemon.stop();
    fs::remove_dir_all(site)?;
    Ok(elapsed)
}
