//! `view`: recorded footage from custosd (GET /v1/cameras/{id}/view) as one
//! MP4, to stdout (for `| ffplay -`) or into a new file. What was delivered,
//! and a gap where the view ends early, go to stderr: stdout is the video.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::process::ExitCode;

use super::args::*;
use super::output::*;
use super::socket;
use crate::api::client::Client;
use crate::api::params::encode;
use crate::error::{Error, Result};

const CONTENT_TYPE: &str = "video/mp4";

pub(super) fn view(cli: &Cli) -> Result<ExitCode> {
    let Command::View {
        camera,
        from,
        to,
        live,
        reason,
        out,
    } = &cli.command
    else {
        unreachable!()
    };
    if out.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err(Error::invalid(
            "the view is video, not text: pipe it to a player (custosctl view ... | ffplay -) \
             or write it to a file with --out FILE",
        ));
    }
    let target = match (from, to) {
        (Some(from), Some(to)) if !live => format!(
            "/v1/cameras/{}/view?from={}&to={}&reason={}",
            encode(camera),
            encode(from),
            encode(to),
            encode(reason)
        ),
        _ => format!(
            "/v1/cameras/{}/live?reason={}",
            encode(camera),
            encode(reason)
        ),
    };
    let mut reply = Client::new(&socket(cli)?).open_get(&target, super::export::EXPORT_PATIENCE)?;
    if !reply.content_type.starts_with(CONTENT_TYPE) {
        return Err(Error::internal(format!(
            "custosd answered the view with {:?}, not video/mp4; is it the same version as \
             this custosctl?",
            reply.content_type
        )));
    }
    let tz = jiff::tz::TimeZone::get(reply.header("x-custos-timezone").unwrap_or("UTC"))
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let at = |us: &str| {
        us.parse::<i64>()
            .ok()
            .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
            .map(|t| {
                t.to_zoned(tz.clone())
                    .strftime("%Y-%m-%d %H:%M:%S%.3f %:z")
                    .to_string()
            })
            .unwrap_or_else(|| us.to_owned())
    };
    let (got_from, got_to) = (
        reply.header("x-custos-from-us").map(at).unwrap_or_default(),
        reply.header("x-custos-to-us").map(at).unwrap_or_default(),
    );
    if *live {
        eprintln!("custosctl: camera {camera} live, from {got_from}");
    } else {
        eprintln!("custosctl: camera {camera}, {got_from} to {got_to}");
    }
    if let Some((a, b)) = reply
        .header("x-custos-gap-us")
        .and_then(|g| g.split_once('-'))
    {
        eprintln!(
            "custosctl: the recording has a gap from {} to {}; this view ends where it \
             starts. For the footage after it: --from '{}'",
            at(a),
            at(b),
            at(b)
        );
    }
    let expected = reply.length;
    let mut body = std::mem::replace(&mut reply.body, Box::new(std::io::empty()));
    let cut = |n: u64| {
        Error::unavailable(format!(
            "the view was cut off after {n} of {} bytes; custosd's log (journalctl -u \
             custosd) says why",
            expected.map_or("?".into(), |e| e.to_string())
        ))
    };
    match out {
        Some(path) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(crate::storage::FILE_MODE)
                .open(path)
                .map_err(|e| Error::io("cannot create (give a new file name)", path, e))?;
            let copied = copy(&mut body, &mut f);
            let n = match copied {
                Ok(n) if Some(n) == expected || expected.is_none() => n,
                failed => {
                    drop(f);
                    let _ = std::fs::remove_file(path);
                    return Err(match failed {
                        Err((_, Some(e))) => Error::io("cannot write", path, e),
                        Ok(n) | Err((n, None)) => cut(n),
                    });
                }
            };
            f.sync_all()
                .map_err(|e| Error::io("cannot write", path, e))?;
            out!("{} bytes written to {}", n, path.display());
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            match copy(&mut body, &mut lock) {
                Ok(n) if Some(n) == expected || expected.is_none() => {}
                Ok(n) => return Err(cut(n)),
                Err((_, Some(e))) => output_failed(e),
                Err((n, None)) => return Err(cut(n)),
            }
            if let Err(e) = lock.flush() {
                output_failed(e);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies until the body ends; an error carries the bytes copied and, if
/// it was the output that failed, its error.
fn copy(
    body: &mut dyn Read,
    out: &mut dyn Write,
) -> std::result::Result<u64, (u64, Option<std::io::Error>)> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let got = match body.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(got) => got,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Err((n, None)),
        };
        // Flushed as it comes: a live view is read while it is recorded.
        out.write_all(&buf[..got])
            .and_then(|()| out.flush())
            .map_err(|e| (n, Some(e)))?;
        n += got as u64;
    }
}
