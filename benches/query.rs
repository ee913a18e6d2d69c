//! Queries over a big index (issue 8): how fast the officer's and the DPO's
//! questions are answered with a million segments indexed, through the real
//! daemon's API against the index methods the API calls (the floor), and how
//! long custosd takes to start on that index.
//!
//!     cargo bench --locked --bench query
//!     QUERY_BENCH_SEGMENTS=100000 QUERY_BENCH_REQUESTS=50 cargo bench --locked --bench query
//!
//! Environment: `QUERY_BENCH_SEGMENTS` (rows, default 1 000 000, over 100
//! cameras), `QUERY_BENCH_REQUESTS` (timed requests per query, default 200,
//! after 5 untimed), `QUERY_BENCH_STARTS` (start-ups per kind, default 3),
//! `QUERY_BENCH_DROP_CACHES=0` (no cold-cache start-ups; by default they are
//! made when the bench runs as root).
//!
//! The index is built once into `target/query-bench/pristine-<rows>.db` and
//! copied for every daemon start: 100 cameras in 4 zones, each with the same
//! number of complete 60 s segments (rows only, no files, as
//! benches/reaper.rs), 20 open cases each holding two hours of one camera,
//! and 1 000 disclosures. Every camera is configured but disabled, so
//! custosd records nothing while it is measured.
//!
//! Queries (each request picks a camera and a window at random, the same
//! sequence for the index and the API):
//! - recordings over 1 h and 24 h (`GET /v1/cameras/ID/recordings`, the
//!   officer's search; index: `segments` + `outages`);
//! - the disclosure register (`GET /v1/disclosures`; index: `disclosures`);
//! - retention status (`GET /v1/retention/status`, the DPO's view; index:
//!   `custos::retention::status`);
//! - `GET /v1/status` (no index query: the API's own cost per request).
//!
//! API figures are end to end as `custosctl` sees them: connect, request,
//! the daemon's authorisation and audit record, the JSON, close, and the
//! client parsing the JSON (also shown on its own). Each API answer is
//! checked against the index's for the same request (same number of rows).
//! The index figures reuse one read-only connection and its cached
//! statements; the API opens a read-only connection per request.
//!
//! Start-up: time from spawning custosd to its socket answering
//! `/v1/status`, on this index and on an empty one (the daemon's fixed
//! cost), with a warm page cache and after dropping it; against opening the
//! index and counting its segments, and `PRAGMA quick_check`.

#[path = "common/mod.rs"]
#[allow(dead_code)] // the helpers other benches share
mod common;
#[path = "recording/procfs.rs"]
#[allow(dead_code)]
mod procfs;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use comfy_table::Table;
use common::{Daemon, drop_caches, env_or};
use custos::api::client::Client;
use custos::api::params::encode;
use custos::config::Config;
use custos::index::{Index, NewCase, NewDisclosure, NewSegment, SegmentSummary, TimeSource};
use custos::retention::Leases;
use serde_json::Value;
use sha2::{Digest, Sha256};

const CUSTOSD: &str = env!("CARGO_BIN_EXE_custosd");

const CAMERAS: i64 = 100;
const ZONES: i64 = 4;
const SEG_US: i64 = 60_000_000;
const HOUR_US: i64 = 3_600_000_000;
/// 2026-11-01T00:00:00Z: every camera's first segment.
const T0: i64 = 1_793_491_200_000_000;
const CASES: i64 = 20;
const DISCLOSURES: i64 = 1_000;
/// Untimed requests before each timed series.
const WARM_UP: usize = 5;
/// Bumped whenever what is built changes, so a stale cache is rebuilt.
const INDEX_FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Query {
    Recordings1h,
    Recordings24h,
    Disclosures,
    RetentionStatus,
    Status,
}

impl Query {
    const ALL: [Query; 5] = [
        Query::Recordings1h,
        Query::Recordings24h,
        Query::Disclosures,
        Query::RetentionStatus,
        Query::Status,
    ];

    fn name(self) -> &'static str {
        match self {
            Query::Recordings1h => "recordings, 1 h",
            Query::Recordings24h => "recordings, 24 h",
            Query::Disclosures => "disclosure register",
            Query::RetentionStatus => "retention status",
            Query::Status => "daemon status",
        }
    }

    fn endpoint(self) -> &'static str {
        match self {
            Query::Recordings1h | Query::Recordings24h => "GET /v1/cameras/ID/recordings",
            Query::Disclosures => "GET /v1/disclosures",
            Query::RetentionStatus => "GET /v1/retention/status",
            Query::Status => "GET /v1/status",
        }
    }

    fn window_us(self) -> Option<i64> {
        match self {
            Query::Recordings1h => Some(HOUR_US),
            Query::Recordings24h => Some(24 * HOUR_US),
            _ => None,
        }
    }
}

/// One request's parameters.
#[derive(Debug, Clone)]
struct Params {
    camera: String,
    from_us: i64,
    to_us: i64,
}

/// What one request returned.
struct Answer {
    /// Segments, disclosures or zones.
    rows: usize,
    /// API only: bytes of the answer, and the time the client took to
    /// parse its JSON (part of the request's time).
    bytes: usize,
    parse: Duration,
}

/// Latencies of one series, sorted.
struct Series {
    times: Vec<Duration>,
    /// Client JSON parsing within `times`, sorted.
    parse: Vec<Duration>,
    /// Per request, in order: rows answered.
    rows: Vec<usize>,
    /// Mean bytes of an answer.
    bytes: usize,
}

impl Series {
    fn mean_rows(&self) -> f64 {
        self.rows.iter().sum::<usize>() as f64 / self.rows.len().max(1) as f64
    }

    fn pct(&self, p: usize) -> Duration {
        percentile(&self.times, p)
    }
}

/// `p`th percentile of sorted `v`.
fn percentile(v: &[Duration], p: usize) -> Duration {
    let i = (v.len() * p / 100).min(v.len().saturating_sub(1));
    v.get(i).copied().unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    let rows: i64 = env_or("QUERY_BENCH_SEGMENTS", 1_000_000)?;
    let requests: usize = env_or("QUERY_BENCH_REQUESTS", 200)?;
    let starts: usize = env_or("QUERY_BENCH_STARTS", 3)?;
    let want_drop = env_or("QUERY_BENCH_DROP_CACHES", 1u8)? != 0;
    ensure!(
        rows >= CAMERAS * 24 * 60 && requests > 0 && starts > 0,
        "QUERY_BENCH_SEGMENTS must be at least {} (a day per camera); \
         QUERY_BENCH_REQUESTS and QUERY_BENCH_STARTS at least 1",
        CAMERAS * 24 * 60
    );
    let per_camera = rows / CAMERAS;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .context("CARGO_TARGET_TMPDIR has no parent")?
        .join("query-bench");
    fs::create_dir_all(&dir)?;
    let pristine = dir.join(format!("pristine-{rows}.db"));
    let marker = dir.join(format!("pristine-{rows}.built"));
    let marker_text = format!("format {INDEX_FORMAT}\n");
    if fs::read_to_string(&marker).ok().as_deref() != Some(marker_text.as_str()) {
        let t = Instant::now();
        eprintln!("building an index of {rows} segments (once)");
        build(&pristine, per_camera)?;
        fs::write(&marker, &marker_text)?;
        eprintln!("built in {:.1?}: {}", t.elapsed(), pristine.display());
    }
    let site = Site::new(dir.join("site"))?;
    site.write_config()?;
    // An index as custosd leaves it after its first start with no footage:
    // starting on it is the daemon's fixed cost.
    let empty = dir.join("empty.db");
    if !empty.exists() {
        site.reset_index(None)?;
        let (_, daemon) = site.start(&dir.join("custosd-startup.log"))?;
        drop(daemon);
        let conn = rusqlite::Connection::open(site.index())?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        drop(conn);
        fs::copy(site.index(), &empty)?;
    }
    let config = Config::load(&site.config()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let machine = procfs::machine();
    let started = jiff::Timestamp::now();
    let load_before = procfs::loadavg();
    let can_drop = want_drop && drop_caches();
    let db_mib = fs::metadata(&pristine)?.len() as f64 / (1024.0 * 1024.0);
    eprintln!(
        "query benchmark: {machine}; {rows} segments ({db_mib:.0} MiB); {requests} requests \
         per query; cold start-ups {}",
        if can_drop { "yes" } else { "no (not root)" }
    );

    // Start-up first, while nothing else has warmed the cache.
    let mut startup: Vec<(String, Vec<Duration>)> = Vec::new();
    let mut record = |what: String, d: Duration| {
        eprintln!("-- {what}: {d:.1?}");
        match startup.iter_mut().find(|(w, _)| *w == what) {
            Some((_, v)) => v.push(d),
            None => startup.push((what, vec![d])),
        }
    };
    let caches: &[bool] = if can_drop { &[false, true] } else { &[false] };
    for _ in 0..starts {
        for &cold in caches {
            let label = if cold { "cold cache" } else { "warm cache" };
            site.reset_index(Some(&pristine))?;
            if cold {
                drop_caches();
            }
            let t = Instant::now();
            let n = open_and_count(&site.index())?;
            record(format!("index: open + count, {label}"), t.elapsed());
            ensure!(n == rows, "the index holds {n} segments, not {rows}");
            drop_caches_if(cold);
            let t = Instant::now();
            quick_check(&site.index())?;
            record(format!("index: PRAGMA quick_check, {label}"), t.elapsed());

            drop_caches_if(cold);
            let (d, daemon) = site.start(&dir.join("custosd-startup.log"))?;
            record(format!("custosd, {rows} segments, {label}"), d);
            drop(daemon);

            site.reset_index(Some(&empty))?;
            drop_caches_if(cold);
            let (d, daemon) = site.start(&dir.join("custosd-startup.log"))?;
            record(format!("custosd, empty index, {label}"), d);
            drop(daemon);
        }
    }

    // Queries: the daemon on a fresh copy; the index read directly beside it.
    site.reset_index(Some(&pristine))?;
    let (_, daemon) = site.start(&dir.join("custosd.log"))?;
    let index = Index::open_read_only(&site.index())?;
    let client = Client::new(&site.socket());
    let leases = Leases::new();
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut results = Vec::new();
    for q in Query::ALL {
        let params: Vec<Params> = (0..WARM_UP + requests)
            .map(|_| pick(&mut rng, q, per_camera))
            .collect();
        let raw = match q {
            Query::Status => None,
            _ => Some(series(&params, |p| {
                raw_query(&index, &config, &leases, q, p)
            })?),
        };
        let api = series(&params, |p| api_query(&client, q, p))?;
        if let Some(raw) = &raw {
            let differ = raw.rows.iter().zip(&api.rows).position(|(a, b)| a != b);
            if let Some(i) = differ {
                bail!(
                    "{}: for {:?} the API answered {} rows, the index {}",
                    q.name(),
                    params[i],
                    api.rows[i],
                    raw.rows[i]
                );
            }
        }
        eprintln!(
            "-- {}: api median {:.2?}, index median {}",
            q.name(),
            api.pct(50),
            raw.as_ref()
                .map_or("-".into(), |r| format!("{:.2?}", r.pct(50)))
        );
        results.push((q, raw, api));
    }
    drop(index);
    drop(daemon);
    let load_after = procfs::loadavg();

    println!();
    println!("Query benchmark, {started}");
    println!("Machine: {machine}; 1-minute load {load_before} before, {load_after} after");
    println!(
        "Index: {rows} complete segments of 60 s ({CAMERAS} cameras x {per_camera}, {ZONES} \
         zones), {CASES} cases with a hold each, {DISCLOSURES} disclosures; {db_mib:.0} MiB"
    );
    println!(
        "Command: QUERY_BENCH_SEGMENTS={rows} QUERY_BENCH_REQUESTS={requests} \
         QUERY_BENCH_STARTS={starts} cargo bench --locked --bench query"
    );
    println!();
    println!("{}", query_table(&results, requests));
    println!();
    println!("{}", startup_table(&startup));
    Ok(())
}

fn drop_caches_if(cold: bool) {
    if cold {
        drop_caches();
    }
}

fn camera_name(c: i64) -> String {
    format!("cam{c:03}")
}

fn zone_of(c: i64) -> String {
    format!("z{}", c * ZONES / CAMERAS)
}

/// A random camera and, for recordings, a window inside its footage.
fn pick(rng: &mut XorShift, q: Query, per_camera: i64) -> Params {
    let camera = camera_name(rng.below(CAMERAS as u64) as i64);
    let span = per_camera * SEG_US;
    let (from_us, to_us) = match q.window_us() {
        Some(w) => {
            let minutes = ((span - w) / SEG_US) as u64;
            let from = T0 + rng.below(minutes + 1) as i64 * SEG_US + 30_000_000;
            (from, from + w)
        }
        None => (T0, T0 + span),
    };
    Params {
        camera,
        from_us,
        to_us,
    }
}

/// Times `f` over `params` (the first `WARM_UP` untimed).
fn series(
    params: &[Params],
    mut f: impl FnMut(&Params) -> anyhow::Result<Answer>,
) -> anyhow::Result<Series> {
    let mut times = Vec::with_capacity(params.len());
    let mut parse = Vec::with_capacity(params.len());
    let mut rows = Vec::with_capacity(params.len());
    let mut bytes = 0;
    for (i, p) in params.iter().enumerate() {
        let t = Instant::now();
        let a = f(p)?;
        let d = t.elapsed();
        if i >= WARM_UP {
            times.push(d);
            parse.push(a.parse);
        }
        rows.push(a.rows);
        bytes += a.bytes;
    }
    times.sort_unstable();
    parse.sort_unstable();
    let bytes = bytes / params.len().max(1);
    Ok(Series {
        times,
        parse,
        rows,
        bytes,
    })
}

/// What the API runs for `q`, called on the index directly.
fn raw_query(
    index: &Index,
    config: &Config,
    leases: &Leases,
    q: Query,
    p: &Params,
) -> anyhow::Result<Answer> {
    let rows = match q {
        Query::Recordings1h | Query::Recordings24h => {
            let segments = index.segments(&p.camera, p.from_us, p.to_us)?;
            let outages = index.outages(&p.camera, p.from_us, p.to_us)?;
            std::hint::black_box(&outages);
            segments.len()
        }
        Query::Disclosures => index.disclosures(None, i64::MIN)?.len(),
        Query::RetentionStatus => {
            let now = jiff::Timestamp::now().as_microsecond();
            let s = custos::retention::status(index, config, leases, now)?;
            std::hint::black_box(&s);
            config.zones.len()
        }
        Query::Status => 0,
    };
    Ok(Answer {
        rows,
        bytes: 0,
        parse: Duration::ZERO,
    })
}

fn rfc3339(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The request `custosctl` would send for `q`, and its answer parsed.
fn api_query(client: &Client, q: Query, p: &Params) -> anyhow::Result<Answer> {
    let target = match q {
        Query::Recordings1h | Query::Recordings24h => format!(
            "/v1/cameras/{}/recordings?from={}&to={}&reason={}",
            p.camera,
            encode(&rfc3339(p.from_us)),
            encode(&rfc3339(p.to_us)),
            encode("query benchmark")
        ),
        Query::Disclosures => "/v1/disclosures".into(),
        Query::RetentionStatus => "/v1/retention/status".into(),
        Query::Status => "/v1/status".into(),
    };
    let r = client.raw("GET", &target, &[])?;
    ensure!(
        r.status == 200,
        "{target}: status {}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    let t = Instant::now();
    let v: Value = r.json()?;
    let parse = t.elapsed();
    let count = |key: &str| v[key].as_array().map_or(0, Vec::len);
    let rows = match q {
        Query::Recordings1h | Query::Recordings24h => count("segments"),
        Query::Disclosures => count("disclosures"),
        Query::RetentionStatus => count("zones"),
        Query::Status => 0,
    };
    Ok(Answer {
        rows,
        bytes: r.body.len(),
        parse,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn query_table(results: &[(Query, Option<Series>, Series)], requests: usize) -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    t.set_header([
        "query",
        "API",
        "rows (mean)",
        "answer KB (mean)",
        "index median ms",
        "index p99 ms",
        "API median ms",
        "API p99 ms",
        "of which client JSON parse, median ms",
        "API / index (median)",
    ]);
    for (q, raw, api) in results {
        t.add_row([
            q.name().to_owned(),
            format!("{} (x{requests})", q.endpoint()),
            format!("{:.1}", api.mean_rows()),
            format!("{:.1}", api.bytes as f64 / 1e3),
            raw.as_ref().map_or("-".into(), |r| ms(r.pct(50))),
            raw.as_ref().map_or("-".into(), |r| ms(r.pct(99))),
            ms(api.pct(50)),
            ms(api.pct(99)),
            ms(percentile(&api.parse, 50)),
            raw.as_ref().map_or("-".into(), |r| {
                format!("{:.1}", api.pct(50).as_secs_f64() / r.pct(50).as_secs_f64())
            }),
        ]);
    }
    t
}

fn startup_table(startup: &[(String, Vec<Duration>)]) -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    t.set_header(["start-up", "runs", "min ms", "median ms", "max ms"]);
    for (what, v) in startup {
        let mut v = v.clone();
        v.sort_unstable();
        t.add_row([
            what.clone(),
            v.len().to_string(),
            ms(v[0]),
            ms(v[v.len() / 2]),
            ms(v[v.len() - 1]),
        ]);
    }
    t
}

/// What any start on the index must do at least: open it (schema check)
/// and touch every segment once, as `SELECT count(*)` does.
fn open_and_count(path: &Path) -> anyhow::Result<i64> {
    drop(Index::open(path)?);
    let conn = rusqlite::Connection::open(path)?;
    Ok(conn.query_row("SELECT count(*) FROM segment", [], |r| r.get(0))?)
}

fn quick_check(path: &Path) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    let r: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    ensure!(r == "ok", "quick_check of {}: {r}", path.display());
    Ok(())
}

fn summary(start: i64, path: &str) -> SegmentSummary {
    SegmentSummary {
        end_us: start + SEG_US,
        bytes: 30_000_000,
        frames: 1_800,
        key_frames: 30,
        video_codec: "h264".into(),
        audio_codec: None,
        sha256: Sha256::digest(path.as_bytes()).into(),
        recovered: false,
        activity: Vec::new(),
    }
}

/// Rows in time order across cameras, in transactions of about 50 000; then
/// the cases, their holds and the disclosures.
fn build(path: &Path, per_camera: i64) -> anyhow::Result<()> {
    for ext in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{ext}", path.display()));
    }
    let mut index = Index::open(path)?;
    let cams = (0..CAMERAS)
        .map(|c| index.camera_id(&camera_name(c)))
        .collect::<custos::Result<Vec<_>>>()?;
    let mut k = 0;
    while k < per_camera {
        let upto = (k + 50_000 / CAMERAS).min(per_camera);
        index.transaction(|ix| {
            for k in k..upto {
                let start = T0 + k * SEG_US;
                for (c, cam) in (0..).zip(&cams) {
                    let zone = zone_of(c);
                    let p = custos::storage::segment_path(&zone, &camera_name(c), start)?;
                    let id = ix.begin_segment(&NewSegment {
                        camera: *cam,
                        zone: &zone,
                        root: "main",
                        path: &p,
                        start_us: start,
                        time_source: TimeSource::Rtcp,
                        clock_offset_us: Some(1_500),
                    })?;
                    ix.complete_segment(id, &summary(start, &p))?;
                }
            }
            Ok(())
        })?;
        k = upto;
    }
    let span = per_camera * SEG_US;
    let now = T0 + span;
    index.transaction(|ix| {
        for i in 0..CASES {
            let id = format!("2026-{:04}", i + 1);
            ix.insert_case(&NewCase {
                id: &id,
                title: "Bench case",
                authority: "Bench police",
                authority_ref: &format!("B-{i}"),
                legal_basis: "GDPR Art. 6(1)(c)",
                created_by: "bench",
                created_us: now,
                review_us: now + 90 * 24 * HOUR_US,
            })?;
            let from = T0 + (i * span / CASES) / SEG_US * SEG_US;
            ix.add_hold(&id, cams[(i * 5) as usize], from, from + 2 * HOUR_US, now)?;
        }
        for i in 0..DISCLOSURES {
            let c = i % CAMERAS;
            let from = T0 + (i * span / DISCLOSURES) / SEG_US * SEG_US;
            let case = format!("2026-{:04}", i % CASES + 1);
            let name = format!("{}_{i}.mp4", camera_name(c));
            let files = serde_json::json!([{ "name": name, "sha256": hex::encode([i as u8; 32]),
                "bytes": 30_000_000 }])
            .to_string();
            ix.record_disclosure(&NewDisclosure {
                at_us: from + HOUR_US,
                case_id: Some(&case),
                camera: &camera_name(c),
                from_us: from,
                to_us: from + 10 * SEG_US,
                recipient: "Bench police, officer B. Bench",
                legal_basis: "GDPR Art. 6(1)(c)",
                reason: "query benchmark",
                by_user: "bench",
                by_uid: 1000,
                files: &files,
                manifest_sha256: &[7; 32],
            })?;
        }
        Ok(())
    })?;
    Ok(())
}

/// The benchmark's daemon site: config, state, recordings, socket.
struct Site {
    dir: PathBuf,
}

impl Site {
    /// custosd on the site, with the time until it answered (polled
    /// every 2 ms).
    fn start(&self, log: &Path) -> anyhow::Result<(Duration, Daemon)> {
        Daemon::start(
            CUSTOSD,
            &self.config(),
            &self.socket(),
            log,
            Duration::from_millis(2),
        )
    }

    fn new(dir: PathBuf) -> anyhow::Result<Site> {
        fs::create_dir_all(dir.join("state"))?;
        fs::create_dir_all(dir.join("recordings"))?;
        Ok(Site { dir })
    }

    fn config(&self) -> PathBuf {
        self.dir.join("custos.toml")
    }
    fn socket(&self) -> PathBuf {
        self.dir.join("admin.sock")
    }
    fn index(&self) -> PathBuf {
        self.dir.join("state").join("index.db")
    }

    /// A fresh copy of `from`, or no index at all (custosd makes one).
    fn reset_index(&self, from: Option<&Path>) -> anyhow::Result<()> {
        for ext in ["", "-wal", "-shm"] {
            let _ = fs::remove_file(format!("{}{ext}", self.index().display()));
        }
        if let Some(from) = from {
            fs::copy(from, self.index())?;
        }
        Ok(())
    }

    fn write_config(&self) -> anyhow::Result<()> {
        use std::fmt::Write as _;
        let mut text = common::config_head(&self.dir);
        for z in 0..ZONES {
            write!(
                text,
                r#"
[[zone]]
id = "z{z}"
name = "Zone {z}"
retention_days = 3650
purposes = ["safety"]
legal_basis = "GDPR Art. 6(1)(e)"
processor = "The school"
"#
            )?;
        }
        for c in 0..CAMERAS {
            let id = camera_name(c);
            write!(
                text,
                r#"
[[camera]]
id = "{id}"
name = "{id}"
zone = "{zone}"
url = "rtsp://127.0.0.1:9/{id}"
segment = "60s"
area = "Bench area {c}"
enabled = false
"#,
                zone = zone_of(c)
            )?;
        }
        fs::write(self.config(), text)?;
        Ok(())
    }
}

/// xorshift64*: a fixed sequence of requests, the same for every run.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}
