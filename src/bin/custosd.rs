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

/// A line to stderr that cannot panic: a reader that went away costs the
/// line, never the daemon (see `custos::log`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

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
                say!("custosd: {e:#}");
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
                say!("{e}");
            }
            None
        }
    }
}

fn print_warnings(warnings: &[ConfigError]) {
    for w in warnings {
        say!("warning: {w}");
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

/// Logs go to the journal, with each event's fields as journal fields
/// (`CAMERA=`, `ERROR=`, ...), when stderr is the journal stream systemd set
/// up; otherwise to stderr as text. `RUST_LOG` overrides the default level
/// (info). GStreamer's own warnings and errors join the same log (target
/// `gstreamer`) instead of going to stderr on their own.
fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    let journal = if stderr_is_journal() {
        match tracing_journald::layer() {
            // Fields as plain journal fields (`journalctl CAMERA=cam1`), and
            // info as informational, not notice.
            Ok(layer) => Some(
                layer
                    .with_syslog_identifier("custosd".into())
                    .with_field_prefix(None)
                    .with_priority_mappings(tracing_journald::PriorityMappings {
                        info: tracing_journald::Priority::Informational,
                        debug: tracing_journald::Priority::Debug,
                        ..tracing_journald::PriorityMappings::new()
                    }),
            ),
            Err(e) => {
                say!("custosd: cannot log to the journal ({e}); logging to stderr");
                None
            }
        }
    } else {
        None
    };
    match journal {
        Some(layer) => tracing_subscriber::registry()
            .with(filter())
            .with(layer)
            .init(),
        None => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            tracing_subscriber::fmt()
                .with_env_filter(filter())
                .with_writer(custos::log::LossyStderr::make)
                .with_ansi(ansi)
                .init();
        }
    }
    route_gstreamer_logs();
}

/// True when stderr is the stream systemd connected to the journal: the
/// `JOURNAL_STREAM` variable names its device and inode (systemd.exec(5)).
/// Checking the inode, not just the variable, keeps a child process that
/// inherited the variable but not the stream logging to its real stderr.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(var) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = var.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// rtspsrc warns "receive interrupted", "PAUSE interrupted" and the like
/// when its connection is flushed, which happens only when Custos stops or
/// restarts a camera on purpose: noise at a normal stop, not a warning for an
/// administrator. Real read failures are reported as errors on the bus.
fn demote_deliberate_interrupts(
    category: &str,
    level: gstreamer::DebugLevel,
    text: &str,
) -> gstreamer::DebugLevel {
    if category == "rtspsrc"
        && level == gstreamer::DebugLevel::Warning
        && text.ends_with(" interrupted")
    {
        gstreamer::DebugLevel::Debug
    } else {
        level
    }
}

/// GStreamer's debug log into `tracing`: warnings and errors (or what
/// `GST_DEBUG` asks for), with the category, the object (element or pad) and
/// the source location as fields. GStreamer's own stderr printer is removed
/// so nothing bypasses the journal.
fn route_gstreamer_logs() {
    use gstreamer as gst;
    gst::log::remove_default_log_function();
    if std::env::var_os("GST_DEBUG").is_none() {
        gst::log::set_default_threshold(gst::DebugLevel::Warning);
    }
    gst::log::add_log_function(|category, level, file, _function, line, object, message| {
        let Some(text) = message.get() else { return };
        let category = category.name();
        let object = object.map(|o| o.to_string()).unwrap_or_default();
        let file = file.as_str();
        macro_rules! emit {
            ($level:ident) => {
                tracing::$level!(
                    target: "gstreamer",
                    category,
                    object = %object,
                    file,
                    line,
                    "{}",
                    text.as_str()
                )
            };
        }
        match demote_deliberate_interrupts(category, level, text.as_str()) {
            gst::DebugLevel::Error => emit!(error),
            gst::DebugLevel::Warning | gst::DebugLevel::Fixme => emit!(warn),
            gst::DebugLevel::Info => emit!(info),
            gst::DebugLevel::Debug => emit!(debug),
            _ => emit!(trace),
        }
    });
}
