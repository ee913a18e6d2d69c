//! `custos-camsim`: serves simulated RTSP cameras until SIGINT or SIGTERM.
//! Prints each camera's URL on stdout once listening; logs go to stderr.
//! SIGUSR1 freezes every camera and prints the frames each one sent, as one
//! JSON line on stdout (for the recording benchmark's frame-loss count).

use anyhow::Context;
use clap::Parser;
use custos::sim::{SimAudio, SimCamera, SimCodec, SimConfig, SimMode, Simulator};
use nix::sys::signal::{SigSet, Signal};

/// Serve simulated RTSP cameras (moving test pattern, optional 440 Hz tone).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// TCP port; 0 picks a free one.
    #[arg(long, default_value_t = 8554)]
    port: u16,
    /// Number of cameras named <name-prefix>1..N (ignored with --camera).
    #[arg(long, default_value_t = 1)]
    cameras: u32,
    /// Prefix of the numbered cameras' names.
    #[arg(long, default_value = "cam")]
    name_prefix: String,
    /// A camera as NAME[:CODEC[:AUDIO]], e.g. door:h265:aac; repeat for a mix.
    /// Codec and audio default to --codec and --audio.
    #[arg(long = "camera", value_name = "NAME:CODEC:AUDIO")]
    camera_specs: Vec<String>,
    /// h264 or h265.
    #[arg(long, default_value = "h264")]
    codec: SimCodec,
    /// none, aac, pcma or pcmu.
    #[arg(long, default_value = "none")]
    audio: SimAudio,
    /// Pixels; even.
    #[arg(long, default_value_t = 320)]
    width: u32,
    /// Pixels; even.
    #[arg(long, default_value_t = 240)]
    height: u32,
    /// Frames per second.
    #[arg(long, default_value_t = 25)]
    fps: u32,
    /// Target video bit rate, kbit/s.
    #[arg(long, default_value_t = 500)]
    bitrate_kbps: u32,
    /// Frames from one key frame to the next.
    #[arg(long, default_value_t = 50)]
    gop_frames: u32,
    /// live (encode with a clock overlay) or clip (loop a pre-encoded clip: cheap).
    #[arg(long, default_value = "live")]
    mode: SimMode,
}

impl Args {
    fn cameras(&self) -> anyhow::Result<Vec<SimCamera>> {
        let base = |name: &str| SimCamera {
            codec: self.codec,
            audio: self.audio,
            width: self.width,
            height: self.height,
            fps: self.fps,
            bitrate_kbps: self.bitrate_kbps,
            keyframe_interval_frames: self.gop_frames,
            mode: self.mode,
            ..SimCamera::new(name)
        };
        if self.camera_specs.is_empty() {
            return Ok((1..=self.cameras)
                .map(|i| base(&format!("{}{i}", self.name_prefix)))
                .collect());
        }
        self.camera_specs
            .iter()
            .map(|spec| {
                let mut parts = spec.split(':');
                let mut camera = base(parts.next().unwrap_or_default());
                if let Some(codec) = parts.next() {
                    camera.codec = codec.parse().with_context(|| format!("--camera {spec}"))?;
                }
                if let Some(audio) = parts.next() {
                    camera.audio = audio.parse().with_context(|| format!("--camera {spec}"))?;
                }
                anyhow::ensure!(
                    parts.next().is_none(),
                    "--camera {spec}: expected NAME[:CODEC[:AUDIO]]"
                );
                Ok(camera)
            })
            .collect()
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("custos-camsim: {e:#}");
        let code = e
            .downcast_ref::<custos::Error>()
            .map_or(1, |e| e.kind.exit_code());
        std::process::exit(code);
    }
}

fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();

    // Blocked before any thread starts, so every thread inherits the mask
    // and the signals wait for `sigwait` below.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGUSR1);
    signals
        .thread_block()
        .context("cannot block SIGINT, SIGTERM and SIGUSR1")?;

    let config = SimConfig {
        address: args.address.clone(),
        port: args.port,
        cameras: args.cameras()?,
    };
    let names: Vec<String> = config.cameras.iter().map(|c| c.name.clone()).collect();
    let simulator = Simulator::start(config)?;
    for name in &names {
        println!("{}", simulator.url(name));
    }

    loop {
        let signal = signals.wait().context("cannot wait for a signal")?;
        if signal == Signal::SIGUSR1 {
            print_final_counts(&simulator, &names);
            continue;
        }
        tracing::info!(?signal, "shutting down");
        simulator.shutdown();
        return Ok(());
    }
}

/// SIGUSR1: freezes every camera, so what it sent is final, and prints one
/// JSON line `{"video_frames_sent":{NAME:N,...},"audio_frames_sent":{...}}`.
/// The recording benchmark compares these counts with the frames in the files.
fn print_final_counts(simulator: &Simulator, names: &[String]) {
    use std::io::Write as _;
    for name in names {
        simulator.freeze(name, true);
    }
    // A payloader probe that read "not frozen" just before may still count
    // its buffer; give it time to finish.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let counts = |f: fn(&Simulator, &str) -> u64| {
        names
            .iter()
            .map(|n| (n.clone(), serde_json::Value::from(f(simulator, n))))
            .collect::<serde_json::Map<_, _>>()
    };
    let line = serde_json::json!({
        "video_frames_sent": counts(Simulator::video_frames_sent),
        "audio_frames_sent": counts(Simulator::audio_frames_sent),
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
