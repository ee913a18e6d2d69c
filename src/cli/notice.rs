//! `notice`: the public notice and camera register, from the configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use super::args::*;
use crate::config::{Config, DEFAULT_CONFIG_PATH, LoadOptions};

/// `custosctl notice`: reads only the configuration file.
pub(super) fn notice(
    cli: &Cli,
    out: &std::path::Path,
    lang: crate::notice::Language,
) -> crate::Result<ExitCode> {
    let path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    // Neither secrets nor directories matter for what the public is told.
    let options = LoadOptions {
        secrets: false,
        filesystem: false,
        ..LoadOptions::default()
    };
    let config =
        Config::load_with(&path, &options).map_err(|e| crate::Error::invalid(format!("{e}")))?;
    for written in crate::notice::write(&config, lang, out)? {
        out!("{}", written.display());
    }
    Ok(ExitCode::SUCCESS)
}
