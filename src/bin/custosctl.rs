//! `custosctl`: the administrator's command line (`custos::cli`). The binary
//! only parses the arguments and dispatches; an error is printed in one line
//! and becomes the exit code of its kind.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use custos::cli::args::Cli;

fn main() -> ExitCode {
    match custos::cli::run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "custosctl: {e}");
            ExitCode::from(e.kind.exit_code() as u8)
        }
    }
}
