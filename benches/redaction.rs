//! Redaction speed end to end on 1080p footage (issue 18): the real
//! custosd takes a body-camera file in, then a redaction job runs as a DPO
//! starts it with `custosctl request redact`: decoding, face detection and
//! tracking, then (after `custosctl redaction choose`) decoding again,
//! masking and encoding the copy with x264enc. Against real time (25
//! frames per second) and, in the same run, against decoding alone.
//!
//!     cargo bench --locked --bench redaction
//!     REDACTION_BENCH_SECONDS=20 REDACTION_BENCH_WIDTHS=640,1280 cargo bench --locked --bench redaction
//!
//! Environment: `REDACTION_BENCH_SECONDS` (length of the clip, default
//! 10), `REDACTION_BENCH_WIDTHS` (detector input widths, one job each,
//! default 640). Needs the model and the test face that scripts/setup
//! installs. The clip (1920x1080, 25 fps, H.264 by x264enc at 4 Mbit/s, a
//! key frame every 2 s) shows three copies of the astronaut (faces about
//! 65 px wide) moving across a textured background; it is made once into
//! `target/redaction-bench/` and reused. Each job's wall time is from the
//! command to the state change (polled every 100 ms), and custosd's CPU
//! time over it is read from /proc. Outside the timing, each job must find
//! at least three tracks and the copy must have every frame.

#[path = "common/mod.rs"]
#[allow(dead_code)] // the helpers other benches share
mod common;
#[path = "recording/procfs.rs"]
#[allow(dead_code)]
mod procfs;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use common::{Daemon, env_or};
use custos::redact::{frames, model_dir};

const CUSTOSD: &str = env!("CARGO_BIN_EXE_custosd");
const CUSTOSCTL: &str = env!("CARGO_BIN_EXE_custosctl");
const W: u32 = 1920;
const H: u32 = 1080;
const FPS: u32 = 25;
/// The pasted picture's side: her face is about 0.18 of it.
const S: u32 = 360;

fn frame(face: &[u8], i: u32) -> Vec<u8> {
    let mut rgb: Vec<u8> = (0..W * H)
        .flat_map(|p| {
            let (x, y) = (p % W, p / W);
            [
                (40 + (x / 7) % 90) as u8,
                (50 + (y / 5) % 80) as u8,
                (70 + ((x + y) / 11) % 60) as u8,
            ]
        })
        .collect();
    for k in 0..3u32 {
        let px = (100 + k * 560 + i * 3) % (W - S);
        let py = 60 + k * 300;
        for y in 0..S {
            let from = (y * S * 3) as usize;
            let to = (((py + y) * W + px) * 3) as usize;
            rgb[to..to + (S * 3) as usize].copy_from_slice(&face[from..from + (S * 3) as usize]);
        }
    }
    rgb
}

/// The clip of `seconds`, made once.
fn clip(dir: &Path, seconds: u32) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("clip-{seconds}s.mp4"));
    if path.exists() {
        return Ok(path);
    }
    let face = frames::still_rgb(&model_dir().join("test").join("astronaut.png"), S, S)
        .context("the test face (scripts/setup installs it)")?;
    let tmp = path.with_extension("tmp");
    let desc = format!(
        "appsrc name=src format=time block=true max-bytes=50000000 ! videoconvert ! \
         video/x-raw,format=I420 ! x264enc speed-preset=veryfast bitrate=4000 key-int-max=50 ! \
         h264parse ! mp4mux ! filesink location={}",
        tmp.display()
    );
    let pipeline = gst::parse::launch(&desc)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .context("appsrc")?;
    src.set_caps(Some(
        &gst::Caps::builder("video/x-raw")
            .field("format", "RGB")
            .field("width", W as i32)
            .field("height", H as i32)
            .field("framerate", gst::Fraction::new(FPS as i32, 1))
            .build(),
    ));
    pipeline.set_state(gst::State::Playing)?;
    let step = 1_000_000_000 / u64::from(FPS);
    for i in 0..seconds * FPS {
        let mut b = gst::Buffer::from_mut_slice(frame(&face, i));
        let m = b.get_mut().context("buffer")?;
        m.set_pts(gst::ClockTime::from_nseconds(u64::from(i) * step));
        m.set_duration(gst::ClockTime::from_nseconds(step));
        src.push_buffer(b)?;
    }
    src.end_of_stream()?;
    let m = pipeline
        .bus()
        .context("bus")?
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(600),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .context("the encoder did not finish")?;
    pipeline.set_state(gst::State::Null)?;
    ensure!(m.type_() == gst::MessageType::Eos, "encoding failed: {m:?}");
    fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Seconds to decode the clip alone, scaled to `w`×`h` RGB.
fn decode_only(clip: &Path, size: Option<(u32, u32)>) -> anyhow::Result<f64> {
    let caps = match size {
        Some((w, h)) => format!("videoscale ! video/x-raw,format=RGB,width={w},height={h}"),
        None => "video/x-raw,format=RGB".into(),
    };
    let t = Instant::now();
    let ok = Command::new("gst-launch-1.0")
        .args(["-q", "filesrc"])
        .arg(format!("location={}", clip.display()))
        .args([
            "!",
            "qtdemux",
            "!",
            "h264parse",
            "!",
            "avdec_h264",
            "!",
            "videoconvert",
            "!",
        ])
        .args(caps.split(' '))
        .args(["!", "fakesink", "sync=false"])
        .status()?
        .success();
    ensure!(ok, "gst-launch failed");
    Ok(t.elapsed().as_secs_f64())
}

fn ctl(socket: &Path, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(CUSTOSCTL)
        .arg("--socket")
        .arg(socket)
        .arg("--json")
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!(
            "custosctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Polls job `id` until it is in `state`; the wall time and custosd's CPU
/// seconds since `since` (a start time and CPU ticks).
fn wait(
    socket: &Path,
    id: &str,
    state: &str,
    pid: u32,
    since: (Instant, u64),
) -> anyhow::Result<(f64, f64)> {
    loop {
        let v = ctl(socket, &["redaction", "show", id])?;
        let now = v["redaction"]["state"].as_str().unwrap_or("").to_owned();
        if now == state {
            let ticks = procfs::cpu_ticks(pid).unwrap_or(0) - since.1;
            return Ok((
                since.0.elapsed().as_secs_f64(),
                ticks as f64 / procfs::ticks_per_second(),
            ));
        }
        ensure!(now != "failed", "the job failed: {v:#}");
        if since.0.elapsed() > Duration::from_secs(3600) {
            bail!("redaction {id} still {now} after an hour");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn main() -> anyhow::Result<()> {
    let seconds: u32 = env_or("REDACTION_BENCH_SECONDS", 10)?;
    let widths: String = env_or("REDACTION_BENCH_WIDTHS", "640".to_owned())?;
    gst::init()?;
    let work = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/redaction-bench");
    fs::create_dir_all(&work)?;
    let clip = clip(&work, seconds)?;
    let frames_n = u64::from(seconds * FPS);

    let site = work.join("site");
    let _ = fs::remove_dir_all(&site);
    fs::create_dir_all(site.join("dock/bwc-07"))?;
    let uid = nix::unistd::getuid().as_raw();
    let d = site.display();
    let config = common::config_head(&site)
        + &format!(
            r#"
[[zone]]
id = "indoor"
name = "Indoor"
retention_days = 30
purposes = ["safety"]
legal_basis = "GDPR Art. 6(1)(e)"
processor = "The school"

[[device]]
id = "bwc-07"
name = "Body camera 07"
zone = "indoor"
kind = "body"
serial = "BWC0007"
assigned_to = "officer 1043"

[[inbox]]
path = "{d}/dock"
settle = "1s"
poll = "200ms"
quarantine = "{d}/quarantine"

[[access.grant]]
user = {uid}
roles = ["dpo"]
"#
        );
    let config_path = site.join("custos.toml");
    fs::write(&config_path, config)?;
    let socket = site.join("admin.sock");
    let (_, mut daemon) = Daemon::start(
        CUSTOSD,
        &config_path,
        &socket,
        &site.join("custosd.log"),
        Duration::from_millis(50),
    )?;
    let pid = daemon.pid();
    fs::copy(&clip, site.join("dock/bwc-07/.A0001.MP4.tmp"))?;
    fs::rename(
        site.join("dock/bwc-07/.A0001.MP4.tmp"),
        site.join("dock/bwc-07/A0001.MP4"),
    )?;
    let t = Instant::now();
    let (from, to) = loop {
        let rows = custos::index::Index::open_read_only(&site.join("state/index.db"))
            .and_then(|ix| ix.segments("bwc-07", 0, i64::MAX))
            .unwrap_or_default();
        if let Some(r) = rows
            .iter()
            .find(|r| r.state == custos::index::SegmentState::Complete)
        {
            break (r.start_us, r.end_us.context("end")?);
        }
        ensure!(
            t.elapsed() < Duration::from_secs(60),
            "the clip was not taken in"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let rfc = |us: i64| jiff::Timestamp::from_microsecond(us).map(|t| t.to_string());
    let (from, to) = (rfc(from - 1_000_000)?, rfc(to + 1_000_000)?);
    let v = ctl(
        &socket,
        &[
            "request",
            "open",
            "--kind",
            "copy",
            "--requester",
            "Bench",
            "--contact",
            "bench",
            "--identity-check",
            "bench",
            "--camera",
            "bwc-07",
            "--from",
            &from,
            "--to",
            &to,
        ],
    )?;
    let request = v["request"]["id"]
        .as_str()
        .context("request id")?
        .to_owned();

    let decode_small = decode_only(&clip, Some((640, 352)))?;
    let decode_full = decode_only(&clip, None)?;
    println!(
        "{}; {seconds} s of 1920x1080 at {FPS} fps ({frames_n} frames)",
        procfs::machine()
    );
    println!("| step | detector input | wall (s) | frames/s | x real time | custosd CPU (s) |");
    println!("|---|---|---|---|---|---|");
    let row = |step: &str, input: &str, wall: f64, cpu: Option<f64>| {
        let fps = frames_n as f64 / wall;
        println!(
            "| {step} | {input} | {wall:.1} | {fps:.1} | {:.2} | {} |",
            fps / f64::from(FPS),
            cpu.map_or("-".into(), |c| format!("{c:.1}"))
        );
    };
    row(
        "baseline: decode to 640x352 (gst-launch)",
        "-",
        decode_small,
        None,
    );
    row(
        "baseline: decode to 1920x1080 (gst-launch)",
        "-",
        decode_full,
        None,
    );
    for w in widths.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let since = (Instant::now(), procfs::cpu_ticks(pid).unwrap_or(0));
        let v = ctl(
            &socket,
            &[
                "request",
                "redact",
                &request,
                "--camera",
                "bwc-07",
                "--from",
                &from,
                "--to",
                &to,
                "--detect-width",
                w,
                "--no-wait",
            ],
        )?;
        let id = v["redaction"]["id"].to_string();
        let (wall, cpu) = wait(&socket, &id, "choosing", pid, since)?;
        let input = {
            let (dw, dh) = custos::redact::job::detector_size(w.parse()?, W, H);
            format!("{dw}x{dh}")
        };
        row("detect + track + tracks sheet", &input, wall, Some(cpu));
        let v = ctl(&socket, &["redaction", "show", &id])?;
        let tracks = v["redaction"]["tracks"].as_u64().unwrap_or(0);
        ensure!(tracks >= 3, "only {tracks} tracks at {input}: {v:#}");
        let since = (Instant::now(), procfs::cpu_ticks(pid).unwrap_or(0));
        ctl(
            &socket,
            &["redaction", "choose", &id, "--keep", "1", "--no-wait"],
        )?;
        let (wall, cpu) = wait(&socket, &id, "review", pid, since)?;
        row(
            "render (decode, mask, x264enc) + copy sheet",
            &input,
            wall,
            Some(cpu),
        );
        let v = ctl(&socket, &["redaction", "show", &id])?;
        let out = v["redaction"]["record"]["output"]["frames"]
            .as_u64()
            .unwrap_or(0);
        ensure!(out == frames_n, "the copy has {out} frames of {frames_n}");
        println!("  ({tracks} tracks found at {input})");
    }
    daemon.stop();
    Ok(())
}
