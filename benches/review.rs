//! Review cost (issue 15): a recorded view and a contact sheet of one hour
//! of one 4 Mbit/s 1080p camera, against a plain read of the same bytes in
//! the same run.
//!
//!     cargo bench --locked --bench review
//!     REVIEW_BENCH_MINUTES=10 REVIEW_BENCH_ROUNDS=1 cargo bench --locked --bench review
//!
//! Environment: `REVIEW_BENCH_MINUTES` (length of the recording, default
//! 60), `REVIEW_BENCH_ROUNDS` (rounds of the three methods, default 3),
//! `REVIEW_BENCH_DROP_CACHES=0` (keep the page cache between runs; by
//! default it is dropped before each run when the bench runs as root).
//!
//! The site (`common/site.rs`) is built once into
//! `target/review-bench/site-<minutes>m/`: 60 s segments as custosd writes
//! them, whose video is one real GOP (60 frames of 1920x1080 at 30 fps,
//! an IDR then P-frames, encoded by ffmpeg's libx264 at 4 Mbit/s) repeated,
//! so the key frames decode; the audio is pseudo-random AAC-sized bytes.
//!
//! Each round runs, in rotating order:
//! - `read`: every source segment file read in order with a 1 MiB buffer
//!   (what any reader of the footage must at least do);
//! - `view`: [`custos::review::plan`] of the hour and the MP4 written to a
//!   sink, as the daemon streams it to `custosctl view` (stream copy, with
//!   the caption track);
//! - `sheet`: [`custos::review::sheet::make`] of the hour at 30 s: 120 tiles,
//!   each a key frame decoded by avdec_h264, scaled, labelled, one PNG.
//!
//! MB/s is source bytes (the segments' total) over wall time; CPU is this
//! process's (user + system). Outside the timing, the view must be the
//! planned length with every source frame, and the sheet must have every
//! tile filled.

#[path = "common/mod.rs"]
#[allow(dead_code)] // the helpers other benches share
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
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use comfy_table::Table;
use common::{cpu_time, drop_caches, env_or, mb_per_s};
use custos::config::Config;
use custos::index::Index;
use custos::retention::Leases;
use footage::{FPS, Gop};
use site::{CAMERA, SEGMENT_S, Site, T0_US};

const SHEET_EVERY_US: i64 = 30_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Read,
    View,
    Sheet,
}

impl Method {
    const ALL: [Method; 3] = [Method::Read, Method::View, Method::Sheet];

    fn name(self) -> &'static str {
        match self {
            Method::Read => "read",
            Method::View => "view",
            Method::Sheet => "sheet",
        }
    }
}

struct Run {
    round: usize,
    method: Method,
    wall: Duration,
    cpu: Duration,
    /// Bytes read from the sources (read, sheet) or written (view).
    bytes: u64,
    load: String,
}

/// A writer that counts and drops what it is given.
struct Sink(u64);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let minutes: u64 = env_or("REVIEW_BENCH_MINUTES", 60)?;
    let rounds: usize = env_or("REVIEW_BENCH_ROUNDS", 3)?;
    let want_drop = env_or("REVIEW_BENCH_DROP_CACHES", 1u8)? != 0;
    ensure!(
        minutes > 0 && rounds > 0,
        "REVIEW_BENCH_MINUTES and REVIEW_BENCH_ROUNDS must be at least 1"
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .context("CARGO_TARGET_TMPDIR has no parent")?
        .join("review-bench");
    fs::create_dir_all(&dir)?;
    let gop = Gop::encode(&dir)?;
    let site = Site::decodable(dir.join(format!("site-{minutes}m")), minutes, gop);
    site.ensure_built()?;
    site.reset_index()?;
    site.write_config()?;
    let config = Config::load(&site.config()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let index = Index::open(&site.index())?;
    let leases = Leases::new();
    let (from_us, to_us) = (T0_US, T0_US + (minutes * 60_000_000) as i64);
    let rows = index.segments(CAMERA, from_us, to_us)?;
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
    let frames = minutes * 60 * FPS;
    let tiles = ((to_us - from_us) / SHEET_EVERY_US) as usize;

    let dropped = want_drop && drop_caches();
    eprintln!(
        "review benchmark: {}; {minutes} min, {} segments, {:.1} MB; page cache {}",
        procfs::machine(),
        rows.len(),
        source_bytes as f64 / 1e6,
        if dropped {
            "dropped before each run"
        } else {
            "NOT dropped"
        }
    );
    let everyone = |_: &str| true;
    let mut runs = Vec::new();
    for round in 0..rounds {
        let mut order = Method::ALL;
        order.rotate_left(round % Method::ALL.len());
        for method in order {
            if dropped {
                drop_caches();
            }
            let load = procfs::loadavg();
            let (cpu0, t) = (cpu_time(libc::RUSAGE_SELF), Instant::now());
            let bytes = match method {
                Method::Read => {
                    let mut buf = vec![0u8; 1 << 20];
                    let mut n = 0u64;
                    for path in &sources {
                        let mut f = File::open(path)?;
                        loop {
                            let k = f.read(&mut buf)?;
                            if k == 0 {
                                break;
                            }
                            n += k as u64;
                        }
                    }
                    ensure!(n == source_bytes, "read {n} of {source_bytes} bytes");
                    n
                }
                Method::View => {
                    let req = custos::review::Request {
                        camera: CAMERA.into(),
                        from_us,
                        to_us,
                    };
                    let view = custos::review::plan(&index, &config, &leases, &req, &everyone)?;
                    let mut sink = Sink(0);
                    let mut reached = 0;
                    let n = view.write(&mut sink, &mut reached)?;
                    ensure!(
                        n == view.bytes() && sink.0 == n,
                        "the view wrote {} of {} bytes",
                        sink.0,
                        view.bytes()
                    );
                    ensure!(
                        view.video_frames == frames,
                        "the view has {} of {frames} frames",
                        view.video_frames
                    );
                    n
                }
                Method::Sheet => {
                    let sheet = custos::review::sheet::make(
                        &index,
                        &config,
                        &leases,
                        CAMERA,
                        (from_us, to_us, SHEET_EVERY_US),
                        &everyone,
                    )?;
                    ensure!(
                        sheet.tiles.len() == tiles && sheet.tiles.iter().all(Option::is_some),
                        "the sheet filled {} of {tiles} tiles",
                        sheet.tiles.iter().flatten().count()
                    );
                    ensure!(sheet.png.starts_with(b"\x89PNG"), "the sheet is not a PNG");
                    sheet.bytes_read
                }
            };
            let (wall, cpu) = (t.elapsed(), cpu_time(libc::RUSAGE_SELF) - cpu0);
            eprintln!(
                "round {round} {:5}: {:.2} s wall, {:.2} s CPU, {:.1} MB",
                method.name(),
                wall.as_secs_f64(),
                cpu.as_secs_f64(),
                bytes as f64 / 1e6
            );
            runs.push(Run {
                round,
                method,
                wall,
                cpu,
                bytes,
                load,
            });
        }
    }
    println!("{}", runs_table(&runs, source_bytes));
    println!("{}", summary_table(&runs, source_bytes));
    println!(
        "Source: {minutes} min of one camera, {} segments of {SEGMENT_S} s, {:.1} MB \
         ({:.2} Mbit/s: H.264 1080p {FPS} fps from a real GOP, plus AAC-sized audio). \
         Sheet: {tiles} tiles, one every {} s.",
        rows.len(),
        source_bytes as f64 / 1e6,
        source_bytes as f64 * 8.0 / (minutes * 60) as f64 / 1e6,
        SHEET_EVERY_US / 1_000_000
    );
    Ok(())
}

fn runs_table(runs: &[Run], source_bytes: u64) -> Table {
    let mut t = Table::new();
    t.set_header(vec![
        "round", "method", "wall s", "CPU s", "MB/s", "x read", "bytes MB", "load 1m",
    ]);
    for r in runs {
        let read = runs
            .iter()
            .find(|x| x.round == r.round && x.method == Method::Read)
            .map(|x| x.wall);
        t.add_row(vec![
            r.round.to_string(),
            r.method.name().into(),
            format!("{:.2}", r.wall.as_secs_f64()),
            format!("{:.2}", r.cpu.as_secs_f64()),
            format!("{:.0}", mb_per_s(source_bytes, r.wall)),
            read.map_or("-".into(), |w| {
                format!("{:.2}", r.wall.as_secs_f64() / w.as_secs_f64())
            }),
            format!("{:.1}", r.bytes as f64 / 1e6),
            r.load.clone(),
        ]);
    }
    t
}

/// Per method, the median wall time and its ratio to the same round's read.
fn summary_table(runs: &[Run], source_bytes: u64) -> Table {
    let mut t = Table::new();
    t.set_header(vec![
        "method",
        "median wall s",
        "median MB/s",
        "median x read",
        "median CPU s",
    ]);
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for m in Method::ALL {
        let mine: Vec<&Run> = runs.iter().filter(|r| r.method == m).collect();
        let ratios: Vec<f64> = mine
            .iter()
            .filter_map(|r| {
                runs.iter()
                    .find(|x| x.round == r.round && x.method == Method::Read)
                    .map(|x| r.wall.as_secs_f64() / x.wall.as_secs_f64())
            })
            .collect();
        let wall = median(mine.iter().map(|r| r.wall.as_secs_f64()).collect());
        t.add_row(vec![
            m.name().into(),
            format!("{wall:.2}"),
            format!("{:.0}", source_bytes as f64 / 1e6 / wall),
            format!("{:.2}", median(ratios)),
            format!(
                "{:.2}",
                median(mine.iter().map(|r| r.cpu.as_secs_f64()).collect())
            ),
        ]);
    }
    t
}
