//! The reaper over a large index: a pass with nothing to delete, and a pass
//! deleting about a tenth of the rows, while a second thread writes segment
//! rows the way ingest does (begin, then complete, each under the shared
//! index lock) and records how long each write waited.
//!
//!     cargo bench --bench reaper                 # 10 000 000 rows
//!     REAPER_BENCH_ROWS=1000000 cargo bench --bench reaper
//!
//! The index is built once into target/reaper-bench/pristine-<rows>.db and
//! copied for each run. Segment files are not created: the figures are the
//! index's cost (unlinking 1M real files adds the filesystem's time).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use custos::clock::{ClockGuard, SimulatedClocks};
use custos::config::Config;
use custos::index::SharedIndex;
use custos::index::{Index, NewSegment, SegmentSummary, TimeSource};
use custos::retention::{self, Context, DAY_US, DEFAULT_BATCH, Leases, StorageAlarms};

const CAMERAS: i64 = 100;
const SEG_US: i64 = 20_000_000;
/// 2026-01-01T00:00:00Z: the first segment of every camera.
const T0: i64 = 1_767_225_600_000_000;
const RETENTION_DAYS: u32 = 31;

fn main() {
    let rows: i64 = std::env::var("REAPER_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("reaper-bench");
    std::fs::create_dir_all(dir.join("recordings")).unwrap();
    let pristine = dir.join(format!("pristine-{rows}.db"));
    if !pristine.exists() {
        let t = Instant::now();
        build(&pristine, rows);
        println!(
            "built {rows} rows in {:.1?} ({})",
            t.elapsed(),
            pristine.display()
        );
    }
    let work = dir.join("work.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", work.display()));
    }
    std::fs::copy(&pristine, &work).unwrap();
    let config = config(&dir);
    let per_camera = rows / CAMERAS;
    // At `edge` the oldest footage is exactly at its 31-day ceiling.
    let edge = T0 + SEG_US + RETENTION_DAYS as i64 * DAY_US;
    let index = SharedIndex::new(Index::open(&work).unwrap());

    println!("\nreaper over {rows} segments, {CAMERAS} cameras, batch {DEFAULT_BATCH}");
    println!("| pass | deleted | time | ingest writes | longest stall | p99 stall |");
    println!("|---|---:|---:|---:|---:|---:|");
    run(&index, &config, edge, "nothing to delete");
    // A tenth of each camera's footage over the ceiling.
    let now = edge + (per_camera / 10 - 1) * SEG_US + 1;
    run(&index, &config, now, "a tenth over ceiling");
}

fn config(dir: &Path) -> Config {
    let d = dir.display();
    let text = format!(
        r#"[daemon]
state_dir = "{d}"
max_retention_days = {RETENTION_DAYS}
[controller]
name = "Bench"
registration_code = "1"
address = "Bench street"
email = "a@example.org"
dpo = {{ email = "dpo@example.org" }}
[[storage]]
id = "main"
path = "{d}/recordings"
[evidence]
path = "{d}/evidence"
[[zone]]
id = "z"
name = "Z"
retention_days = {RETENTION_DAYS}
purposes = ["safety"]
legal_basis = "GDPR Art. 6(1)(e)"
processor = "Bench"
"#
    );
    Config::parse_str(&text, &dir.join("custos.toml")).unwrap_or_else(|e| panic!("{e:?}"))
}

fn summary(end_us: i64) -> SegmentSummary {
    SegmentSummary {
        end_us,
        bytes: 2_500_000,
        frames: 500,
        key_frames: 20,
        video_codec: "h264".into(),
        audio_codec: None,
        sha256: [7; 32],
        recovered: false,
        activity: Vec::new(),
    }
}

/// Rows in time order across cameras, in transactions of 50 000.
fn build(path: &Path, rows: i64) {
    let _ = std::fs::remove_file(path);
    let mut index = Index::open(path).unwrap();
    let cams: Vec<_> = (0..CAMERAS)
        .map(|c| index.camera_id(&format!("cam{c:03}")).unwrap())
        .collect();
    let per_camera = rows / CAMERAS;
    let mut i = 0;
    while i < per_camera {
        let upto = (i + 50_000 / CAMERAS).min(per_camera);
        index
            .transaction(|ix| {
                for k in i..upto {
                    let start = T0 + k * SEG_US;
                    for (c, cam) in cams.iter().enumerate() {
                        let p = format!("z/cam{c:03}/{k}.mp4");
                        let id = ix.begin_segment(&NewSegment {
                            camera: *cam,
                            zone: "z",
                            root: "main",
                            path: &p,
                            start_us: start,
                            time_source: TimeSource::Local,
                            clock_offset_us: None,
                        })?;
                        ix.complete_segment(id, &summary(start + SEG_US))?;
                    }
                }
                Ok(())
            })
            .unwrap();
        i = upto;
    }
}

fn run(index: &SharedIndex, config: &Config, now_us: i64, what: &str) {
    let stop = Arc::new(AtomicBool::new(false));
    let stalls = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let writer = {
        let (index, stop, stalls) = (index.clone(), stop.clone(), stalls.clone());
        std::thread::spawn(move || {
            let cam = index.lock().camera_id("ingest").unwrap();
            let mut n = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let start = now_us + n * SEG_US;
                let p = format!("z/ingest/{now_us}-{n}.mp4");
                let t = Instant::now();
                let id = index
                    .lock()
                    .begin_segment(&NewSegment {
                        camera: cam,
                        zone: "z",
                        root: "main",
                        path: &p,
                        start_us: start,
                        time_source: TimeSource::Local,
                        clock_offset_us: None,
                    })
                    .unwrap();
                let begun = t.elapsed();
                let t = Instant::now();
                index
                    .lock()
                    .complete_segment(id, &summary(start + SEG_US))
                    .unwrap();
                stalls.lock().unwrap().extend([begun, t.elapsed()]);
                n += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let clocks = SimulatedClocks::new(now_us);
    let leases = Leases::new();
    let alarms = StorageAlarms::new();
    let t = Instant::now();
    let report = retention::pass(&Context {
        index,
        config,
        leases: &leases,
        alarms: &alarms,
        clocks: &clocks,
        guard: &ClockGuard::default(),
        free_bytes: &|_| None,
        batch: DEFAULT_BATCH,
        cancel: None,
    })
    .unwrap();
    let took = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let mut s = stalls.lock().unwrap().clone();
    s.sort();
    let max = s.last().copied().unwrap_or_default();
    let p99 = s.get(s.len() * 99 / 100).copied().unwrap_or_default();
    println!(
        "| {what} | {} | {took:.2?} | {} | {max:.1?} | {p99:.1?} |",
        report.retention.segments,
        s.len(),
    );
}
