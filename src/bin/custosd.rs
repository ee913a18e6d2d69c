//! `custosd`: the recording daemon. The binary only wires things up; the
//! work is in the `custos` library.
//!
//! ```text
//! custosd [--config FILE]            run the daemon
//! custosd check-config [FILE]        check a configuration and exit
//! ```
//!
//! Exit codes: 0 success; 2 the configuration has errors (each printed to
//! stderr as `FILE:LINE: KEY: MESSAGE`); 1 any other failure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use custos::config::{Config, ConfigError, DEFAULT_CONFIG_PATH};

/// Exit code for a configuration with errors (as `ErrorKind::InvalidInput`).
const EXIT_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(
    name = "custosd",
    version,
    about = "Video-surveillance recording daemon built for the GDPR"
)]
struct Cli {
    /// Configuration file.
    #[arg(long, short = 'c', value_name = "FILE", env = "CUSTOS_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Check a configuration file (and its secrets file and directories), print
    /// every error, and exit: 0 if it is valid, 2 if not.
    CheckConfig {
        /// The file to check; default: the --config file.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { file }) => check_config(file.as_deref().unwrap_or(&cli.config)),
        None => match run(&cli.config) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("custosd: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Loads a configuration; prints warnings, or every error and `None`.
fn load(path: &Path) -> Option<Config> {
    match Config::load(path) {
        Ok(config) => {
            print_warnings(&config.warnings);
            Some(config)
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            None
        }
    }
}

fn print_warnings(warnings: &[ConfigError]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

fn check_config(path: &Path) -> ExitCode {
    match load(path) {
        Some(config) => {
            println!("config OK: {}", config.summary());
            ExitCode::SUCCESS
        }
        None => ExitCode::from(EXIT_CONFIG),
    }
}

fn run(path: &Path) -> anyhow::Result<ExitCode> {
    // Before any thread exists, so every thread inherits the mask and only
    // the main thread takes the signals.
    custos::daemon::block_signals()?;
    init_logging();
    let Some(config) = load(path) else {
        return Ok(ExitCode::from(EXIT_CONFIG));
    };
    tracing::info!(config = %path.display(), version = env!("CARGO_PKG_VERSION"), "custosd starting");
    custos::daemon::run(path, config)?;
    Ok(ExitCode::SUCCESS)
}

/// Structured logs to stderr; `RUST_LOG` overrides the default level (info).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}
