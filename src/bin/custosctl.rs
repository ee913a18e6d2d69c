//! `custosctl`: the administrator's command line.
//!
//! Until the admin API on the Unix socket exists, `custosctl` reads the
//! index directly, read-only, which needs read access to the state
//! directory (root or the `custos` user). Times are shown in the config's
//! timezone with their offset.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use custos::clock::UnixMicros;
use custos::config::{Config, DEFAULT_CONFIG_PATH};
use custos::index::Index;

#[derive(Parser)]
#[command(
    name = "custosctl",
    version,
    about = "Administer the Custos recording daemon"
)]
struct Cli {
    /// Configuration file (to find the index and the display timezone).
    #[arg(long, short = 'c', value_name = "FILE", env = "CUSTOS_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,

    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the recorded segments and outages of a camera.
    Recordings {
        /// Camera id, as in the config.
        #[arg(long)]
        camera: String,
        /// Only the last N segments.
        #[arg(long, default_value_t = 20)]
        last: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("custosctl: {e}");
            ExitCode::from(e.kind.exit_code() as u8)
        }
    }
}

fn run(cli: Cli) -> custos::Result<()> {
    let config = Config::load(&cli.config).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        custos::Error::invalid(lines.join("\n"))
    })?;
    let index = Index::open_read_only(&custos::daemon::index_path(&config))?;
    match cli.command {
        Command::Recordings { camera, last } => {
            if config.camera(&camera).is_none() && index.segments(&camera, 0, i64::MAX)?.is_empty()
            {
                return Err(custos::Error::not_found(format!(
                    "no camera {camera:?} in {} and no footage of it in the index",
                    config.path.display()
                )));
            }
            let segments = index.segments(&camera, 0, i64::MAX)?;
            let segments = &segments[segments.len().saturating_sub(last)..];
            let outages = index.outages(&camera, 0, i64::MAX)?;
            if cli.json {
                let out = serde_json::json!({ "segments": segments, "outages": outages });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&out).expect("serialisable")
                );
                return Ok(());
            }
            let show = |t: UnixMicros| local(&config, t);
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED);
            table.set_header(["start", "end", "state", "frames", "bytes", "codecs", "time"]);
            for s in segments {
                table.add_row([
                    show(s.start_us),
                    s.end_us.map(show).unwrap_or_else(|| "recording".into()),
                    format!("{:?}", s.state).to_lowercase(),
                    s.frames.map(|f| f.to_string()).unwrap_or_default(),
                    s.bytes.map(|b| b.to_string()).unwrap_or_default(),
                    [s.video_codec.as_deref(), s.audio_codec.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join("+"),
                    s.time_source.as_str().to_owned(),
                ]);
            }
            println!("{table}");
            if !outages.is_empty() {
                let mut table = Table::new();
                table.load_preset(UTF8_FULL_CONDENSED);
                table.set_header(["outage from", "to", "reason"]);
                for o in &outages {
                    table.add_row([
                        show(o.from_us),
                        o.to_us.map(show).unwrap_or_else(|| "ongoing".into()),
                        o.reason.clone(),
                    ]);
                }
                println!("{table}");
            }
            Ok(())
        }
    }
}

/// A time in the config's timezone with its offset, e.g. `2026-11-22 12:15:00.123 +02:00`.
fn local(config: &Config, t: UnixMicros) -> String {
    match jiff::Timestamp::from_microsecond(t) {
        Ok(ts) => ts
            .to_zoned(config.timezone.clone())
            .strftime("%Y-%m-%d %H:%M:%S%.3f %:z")
            .to_string(),
        Err(_) => t.to_string(),
    }
}
