//! `notice`: the public notice and camera register, from the configuration.

use std::process::ExitCode;

use super::args::*;
use super::{config_path, read_config};

/// `custosctl notice`: reads only the configuration file.
pub(super) fn notice(
    cli: &Cli,
    out: &std::path::Path,
    lang: crate::notice::Language,
) -> crate::Result<ExitCode> {
    let config = read_config(&config_path(cli))?;
    for written in crate::notice::write(&config, lang, out)? {
        out!("{}", written.display());
    }
    Ok(ExitCode::SUCCESS)
}
