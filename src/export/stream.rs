//! An export package on the wire, from custosd to `custosctl export`
//! (format `custos-export-stream/1`, docs/api.md): a sequence of frames,
//! each a kind byte, a 32-bit big-endian length and that many bytes.
//!
//! | kind | payload |
//! |---|---|
//! | `P` | JSON `{"format", "clips": [{"name", "bytes"}], "clip_bytes"}`: first, once |
//! | `F` | JSON `{"name", "bytes"}`: a file begins |
//! | `D` | file data, at most [`MAX_DATA`] bytes |
//! | `E` | JSON `{"sha256"}`: the file ends |
//! | `Z` | JSON `{"files"}`: the package is complete and in the disclosure register |
//! | `X` | JSON `{"error": {"kind", "message"}}`: the export failed; nothing is valid |
//!
//! Invariants of [`receive`]: a file is written only under a plain name
//! inside the target directory, never past its announced size; each file's
//! SHA-256 is checked on arrival; the package counts only once `Z` arrives.
//! Anything else (an `X`, a cut connection, a bad frame) removes every file
//! the receiver wrote, so a partial package never lies around looking whole.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::PackageSink;
use crate::error::{Error, ErrorKind, Result};

/// The stream format's name, in the `P` frame and the reply's content type.
pub const FORMAT: &str = "custos-export-stream/1";
/// The reply's content type.
pub const CONTENT_TYPE: &str = "application/vnd.custos.export-stream";
/// Largest `D` frame.
pub const MAX_DATA: usize = 256 * 1024;
/// Largest JSON frame (the `P` frame of a day's clips is far smaller).
const MAX_JSON: usize = 1 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Begin {
    format: String,
    clips: Vec<FileEntry>,
    clip_bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct End {
    sha256: String,
}

/// Frames a package into `out`.
pub struct StreamSink<W: Write> {
    out: W,
}

impl<W: Write> StreamSink<W> {
    pub fn new(out: W) -> Self {
        StreamSink { out }
    }

    fn frame(&mut self, kind: u8, payload: &[u8]) -> Result<()> {
        let len = u32::try_from(payload.len())
            .map_err(|_| Error::internal("an export frame over 4 GiB"))?;
        let mut head = [0u8; 5];
        head[0] = kind;
        head[1..].copy_from_slice(&len.to_be_bytes());
        self.out
            .write_all(&head)
            .and_then(|()| self.out.write_all(payload))
            .map_err(gone)
    }

    fn json(&mut self, kind: u8, value: &impl Serialize) -> Result<()> {
        let text = serde_json::to_vec(value)
            .map_err(|e| Error::internal(format!("serialising an export frame: {e}")))?;
        self.frame(kind, &text)
    }

    /// Ends the stream with the error that stopped the export, if the
    /// receiver is still there to read it.
    pub fn fail(&mut self, error: &Error) {
        let body = serde_json::json!({
            "error": { "kind": error.kind, "message": error.message }
        });
        if self.json(b'X', &body).is_ok() {
            let _ = self.out.flush();
        }
    }
}

fn gone(e: std::io::Error) -> Error {
    Error::unavailable(format!("the export's receiver went away: {e}"))
}

impl<W: Write> PackageSink for StreamSink<W> {
    fn begin(&mut self, clips: &[(String, u64)]) -> Result<()> {
        let clips: Vec<FileEntry> = clips
            .iter()
            .map(|(name, bytes)| FileEntry {
                name: name.clone(),
                bytes: *bytes,
            })
            .collect();
        let clip_bytes = clips.iter().map(|c| c.bytes).sum();
        self.json(
            b'P',
            &Begin {
                format: FORMAT.into(),
                clips,
                clip_bytes,
            },
        )
    }

    fn file(
        &mut self,
        name: &str,
        len: u64,
        body: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
    ) -> Result<(u64, [u8; 32])> {
        self.json(
            b'F',
            &FileEntry {
                name: name.into(),
                bytes: len,
            },
        )?;
        let mut data = DataFrames {
            sink: self,
            buf: Vec::with_capacity(MAX_DATA),
            hash: Sha256::new(),
            bytes: 0,
        };
        body(&mut data)?;
        data.send()?;
        let bytes = data.bytes;
        let sha: [u8; 32] = data.hash.finalize().into();
        self.json(
            b'E',
            &End {
                sha256: hex::encode(sha),
            },
        )?;
        // Each file is handed on whole before the next begins, so a receiver
        // that went away is noticed before the disclosure is registered.
        self.out.flush().map_err(gone)?;
        if crate::failpoint::is("slow-export") {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        Ok((bytes, sha))
    }

    fn finish(&mut self) -> Result<()> {
        self.json(b'Z', &serde_json::json!({}))?;
        self.out.flush().map_err(gone)
    }
}

/// Cuts a file's bytes into `D` frames.
struct DataFrames<'a, W: Write> {
    sink: &'a mut StreamSink<W>,
    buf: Vec<u8>,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> DataFrames<'_, W> {
    fn send(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.hash.update(&self.buf);
            self.bytes += self.buf.len() as u64;
            let buf = std::mem::take(&mut self.buf);
            self.sink.frame(b'D', &buf)?;
            self.buf = buf;
            self.buf.clear();
        }
        Ok(())
    }
}

impl<W: Write> Write for DataFrames<'_, W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(MAX_DATA - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == MAX_DATA {
            self.send().map_err(std::io::Error::other)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What [`receive`] wrote.
#[derive(Debug, Clone)]
pub struct Received {
    pub files: Vec<ReceivedFile>,
}

/// A file as it arrived: its size and SHA-256, computed while writing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: [u8; 32],
}

/// Progress of a [`receive`]: bytes written so far and the total expected
/// (the clips' size, growing as the small files are announced).
pub trait Progress {
    fn update(&mut self, done: u64, total: u64);
}

impl<F: FnMut(u64, u64)> Progress for F {
    fn update(&mut self, done: u64, total: u64) {
        self(done, total)
    }
}

/// Reads a package stream from `input` into `dir`, which must exist and be
/// empty. On any failure the files written are removed and the error says
/// why (the daemon's own error when it sent one).
pub fn receive(input: impl Read, dir: &Path, progress: &mut dyn Progress) -> Result<Received> {
    let mut r = Receiver {
        input,
        dir,
        written: Vec::new(),
        files: Vec::new(),
        done: 0,
        total: 0,
        payload: Vec::with_capacity(MAX_DATA),
    };
    match r.run(progress) {
        Ok(()) => Ok(Received { files: r.files }),
        Err(e) => {
            for path in &r.written {
                let _ = fs::remove_file(path);
            }
            Err(e)
        }
    }
}

struct Receiver<'a, R: Read> {
    input: R,
    dir: &'a Path,
    /// Every file created, for the clean-up on failure.
    written: Vec<PathBuf>,
    files: Vec<ReceivedFile>,
    done: u64,
    total: u64,
    /// The last frame's payload (one buffer, reused).
    payload: Vec<u8>,
}

/// A file being received.
struct Open {
    entry: FileEntry,
    path: PathBuf,
    file: File,
    hash: Sha256,
    got: u64,
}

impl<R: Read> Receiver<'_, R> {
    fn run(&mut self, progress: &mut dyn Progress) -> Result<()> {
        if self.frame()? != b'P' {
            return Err(broken("the stream does not start with a package header"));
        }
        let begin: Begin = parse(&self.payload)?;
        if begin.format != FORMAT {
            return Err(Error::invalid(format!(
                "custosd sends export format {:?}; this custosctl reads {FORMAT}: use the \
                 custosctl of the same version as the daemon",
                begin.format
            )));
        }
        self.total = begin.clip_bytes;
        progress.update(0, self.total);
        let mut open: Option<Open> = None;
        loop {
            let kind = self.frame()?;
            let payload = &self.payload;
            match (kind, open.as_mut()) {
                (b'F', None) => {
                    let entry: FileEntry = parse(payload)?;
                    check_name(&entry.name)?;
                    if !begin.clips.contains(&entry) {
                        self.total += entry.bytes;
                    }
                    let path = self.dir.join(&entry.name);
                    let file = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(crate::storage::FILE_MODE)
                        .open(&path)
                        .map_err(|e| Error::io("cannot create", &path, e))?;
                    self.written.push(path.clone());
                    open = Some(Open {
                        entry,
                        path,
                        file,
                        hash: Sha256::new(),
                        got: 0,
                    });
                }
                (b'D', Some(f)) => {
                    f.got += payload.len() as u64;
                    if f.got > f.entry.bytes {
                        return Err(broken(&format!(
                            "{} is longer than announced",
                            f.entry.name
                        )));
                    }
                    f.hash.update(payload);
                    f.file
                        .write_all(payload)
                        .map_err(|e| Error::io("cannot write", &f.path, e))?;
                    self.done += payload.len() as u64;
                    progress.update(self.done, self.total);
                }
                (b'E', Some(_)) => {
                    let f = open.take().unwrap_or_else(|| unreachable!());
                    let end: End = parse(payload)?;
                    let digest: [u8; 32] = f.hash.finalize().into();
                    let sha = hex::encode(digest);
                    if f.got != f.entry.bytes || sha != end.sha256 {
                        return Err(Error::new(
                            ErrorKind::Internal,
                            format!(
                                "{} arrived damaged ({} of {} bytes, SHA-256 {sha}, sent as {}); \
                                 run the export again",
                                f.entry.name, f.got, f.entry.bytes, end.sha256
                            ),
                        ));
                    }
                    f.file
                        .sync_all()
                        .map_err(|e| Error::io("cannot flush to disk", &f.path, e))?;
                    self.files.push(ReceivedFile {
                        name: f.entry.name,
                        bytes: f.got,
                        sha256: digest,
                    });
                }
                (b'Z', None) => {
                    crate::storage::fsync_dir(self.dir);
                    return Ok(());
                }
                (b'X', _) => {
                    let v: serde_json::Value = parse(payload)?;
                    let e = Error::from_reply(500, &v);
                    return Err(Error::new(
                        e.kind,
                        format!("custosd stopped the export: {}", e.message),
                    ));
                }
                (k, _) => {
                    return Err(broken(&format!(
                        "unexpected frame {:?}",
                        char::from(k).escape_default().to_string()
                    )));
                }
            }
        }
    }

    /// Reads the next frame into `self.payload`; returns its kind.
    fn frame(&mut self) -> Result<u8> {
        let mut head = [0u8; 5];
        self.input.read_exact(&mut head).map_err(cut)?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let max = if head[0] == b'D' { MAX_DATA } else { MAX_JSON };
        if len > max {
            return Err(broken(&format!("a frame of {len} bytes")));
        }
        self.payload.resize(len, 0);
        self.input.read_exact(&mut self.payload).map_err(cut)?;
        Ok(head[0])
    }
}

/// A plain file name: no directory part, not hidden, printable.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(broken(&format!("refusing the file name {name:?}")))
    }
}

fn parse<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T> {
    serde_json::from_slice(payload).map_err(|e| broken(&format!("a bad frame ({e})")))
}

fn broken(what: &str) -> Error {
    Error::internal(format!(
        "the export stream from custosd is broken: {what}; nothing was kept"
    ))
}

fn cut(e: std::io::Error) -> Error {
    Error::unavailable(format!(
        "the connection to custosd ended before the export was complete ({e}); nothing was \
         kept; see custosd's log and run the export again"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(sink: &mut dyn PackageSink, clip: &[u8]) -> Result<()> {
        sink.begin(&[("a.mp4".into(), clip.len() as u64)])?;
        sink.file("a.mp4", clip.len() as u64, &mut |w| {
            w.write_all(clip)
                .map_err(|e| Error::internal(e.to_string()))
        })?;
        sink.file("README.txt", 3, &mut |w| {
            w.write_all(b"hi\n")
                .map_err(|e| Error::internal(e.to_string()))
        })?;
        sink.finish()
    }

    #[test]
    fn a_package_crosses_the_stream_intact_with_progress() {
        let clip: Vec<u8> = (0..MAX_DATA * 2 + 17).map(|i| (i % 251) as u8).collect();
        let mut wire = Vec::new();
        package(&mut StreamSink::new(&mut wire), &clip).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        let got = receive(&wire[..], dir.path(), &mut |d, t| seen.push((d, t))).unwrap();
        assert_eq!(got.files.len(), 2);
        assert_eq!(fs::read(dir.path().join("a.mp4")).unwrap(), clip);
        assert_eq!(fs::read(dir.path().join("README.txt")).unwrap(), b"hi\n");
        let total = clip.len() as u64 + 3;
        assert_eq!(seen.last(), Some(&(total, total)));
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn a_cut_or_altered_stream_leaves_nothing() {
        let clip = vec![7u8; 1000];
        let mut wire = Vec::new();
        package(&mut StreamSink::new(&mut wire), &clip).unwrap();
        // Cut anywhere before the final frame.
        for cut_at in [3, 40, 500, wire.len() - 6] {
            let dir = tempfile::tempdir().unwrap();
            let e = receive(&wire[..cut_at], dir.path(), &mut |_, _| {}).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Unavailable, "{e}");
            assert_eq!(
                fs::read_dir(dir.path()).unwrap().count(),
                0,
                "cut at {cut_at}"
            );
        }
        // One byte of the clip changed in transit.
        let mut bad = wire.clone();
        let at = bad.windows(4).position(|w| w == [7, 7, 7, 7]).unwrap();
        bad[at] = 8;
        let dir = tempfile::tempdir().unwrap();
        let e = receive(&bad[..], dir.path(), &mut |_, _| {}).unwrap_err();
        assert!(e.message.contains("a.mp4 arrived damaged"), "{e}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_daemons_error_is_reported_and_nothing_kept() {
        let mut wire = Vec::new();
        let mut sink = StreamSink::new(&mut wire);
        sink.begin(&[("a.mp4".into(), 10)]).unwrap();
        let r = sink.file("a.mp4", 10, &mut |w| {
            w.write_all(b"12345").unwrap();
            Err(Error::internal("segment x does not match its hash"))
        });
        sink.fail(&r.unwrap_err());
        let dir = tempfile::tempdir().unwrap();
        let e = receive(&wire[..], dir.path(), &mut |_, _| {}).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert!(e.message.contains("does not match its hash"), "{e}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn hostile_file_names_are_refused() {
        for name in ["../x", "/etc/passwd", "a/b", ".hidden", "", "a\nb", "a b"] {
            let mut wire = Vec::new();
            let mut sink = StreamSink::new(&mut wire);
            sink.begin(&[]).unwrap();
            sink.file(name, 1, &mut |w| {
                w.write_all(b"x")
                    .map_err(|e| Error::internal(e.to_string()))
            })
            .unwrap();
            sink.finish().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let e = receive(&wire[..], dir.path(), &mut |_, _| {}).unwrap_err();
            assert!(
                e.message.contains("refusing the file name"),
                "{name:?}: {e}"
            );
            assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }
}
