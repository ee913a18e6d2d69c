//! A small blocking client of the admin API, for `custosctl` and tests: one
//! request per connection (`Connection: close`), JSON in and out, and error
//! bodies turned back into [`Error`]s with their kind.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};

/// A raw reply: status code and body.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::internal(format!(
                "custosd answered with something that is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
            ))
        })
    }
}

pub struct Client {
    socket: PathBuf,
    timeout: Duration,
}

impl Client {
    pub fn new(socket: &Path) -> Client {
        Client {
            socket: socket.to_owned(),
            timeout: Duration::from_secs(60),
        }
    }

    fn connect(&self) -> Result<UnixStream> {
        let s = UnixStream::connect(&self.socket).map_err(|e| {
            let path = self.socket.display();
            match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    Error::unavailable(format!(
                        "nothing is listening on {path}: is custosd running? (give its socket \
                         with --socket PATH or CUSTOS_SOCKET)"
                    ))
                }
                std::io::ErrorKind::PermissionDenied => Error::new(
                    ErrorKind::PermissionDenied,
                    format!(
                        "cannot open {path}: permission denied; the socket is for members of \
                         group {} (ask the administrator to add your account to it)",
                        socket_group(&self.socket)
                    ),
                ),
                _ => Error::unavailable(format!("cannot connect to {path}: {e}")),
            }
        })?;
        s.set_read_timeout(Some(self.timeout)).ok();
        s.set_write_timeout(Some(self.timeout)).ok();
        Ok(s)
    }

    /// Sends one request; `target` is the path with its query string.
    pub fn raw(&self, method: &str, target: &str, body: &[u8]) -> Result<RawResponse> {
        let mut s = self.connect()?;
        let mut req = format!(
            "{method} {target} HTTP/1.1\r\nHost: custos\r\nConnection: close\r\n\
             Accept: application/json\r\n"
        );
        if !body.is_empty() || method != "GET" {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        let io = |e: std::io::Error| {
            Error::unavailable(format!(
                "talking to custosd on {}: {e}",
                self.socket.display()
            ))
        };
        s.write_all(req.as_bytes()).map_err(io)?;
        s.write_all(body).map_err(io)?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).map_err(io)?;
        parse_response(&buf)
    }

    /// Sends a request and returns the JSON body of a 2xx reply, or the
    /// error the daemon described.
    pub fn call(&self, method: &str, target: &str, body: Option<&Value>) -> Result<Value> {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let r = self.raw(method, target, &body)?;
        let json = r.json()?;
        if (200..300).contains(&r.status) {
            return Ok(json);
        }
        Err(Error::from_reply(r.status, &json))
    }

    pub fn get(&self, target: &str) -> Result<Value> {
        self.call("GET", target, None)
    }

    /// Sends a request whose reply may be long (an export): waits up to
    /// `patience` for the reply and for each piece of it, and returns the
    /// body as a reader, or the error the daemon described.
    pub fn open(
        &self,
        method: &str,
        target: &str,
        body: &Value,
        patience: Duration,
    ) -> Result<Streamed> {
        self.open_with(method, target, Some(&body.to_string()), patience)
    }

    /// [`Client::open`] for a GET (a view): no body.
    pub fn open_get(&self, target: &str, patience: Duration) -> Result<Streamed> {
        self.open_with("GET", target, None, patience)
    }

    fn open_with(
        &self,
        method: &str,
        target: &str,
        body: Option<&str>,
        patience: Duration,
    ) -> Result<Streamed> {
        let client = Client {
            socket: self.socket.clone(),
            timeout: patience,
        };
        let mut s = client.connect()?;
        let req = match body {
            Some(body) => format!(
                "{method} {target} HTTP/1.1\r\nHost: custos\r\nConnection: close\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
            None => {
                format!("{method} {target} HTTP/1.1\r\nHost: custos\r\nConnection: close\r\n\r\n")
            }
        };
        s.write_all(req.as_bytes()).map_err(|e| self.io(e))?;
        let mut r = BufReader::with_capacity(256 * 1024, s);
        let bad = || Error::unavailable("custosd closed the connection without a valid HTTP reply");
        let mut line = String::new();
        r.read_line(&mut line).map_err(|e| self.io(e))?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(bad)?;
        let (mut chunked, mut length, mut content_type) = (false, None, String::new());
        let mut headers = Vec::new();
        loop {
            line.clear();
            r.read_line(&mut line).map_err(|e| self.io(e))?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let Some((k, v)) = l.split_once(':') else {
                return Err(bad());
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                "content-length" => length = v.parse::<u64>().ok(),
                "content-type" => content_type = v.to_owned(),
                _ => {}
            }
            headers.push((k, v.to_owned()));
        }
        let body: Box<dyn Read + Send> = if chunked {
            Box::new(Chunked {
                inner: r,
                left: 0,
                done: false,
            })
        } else if let Some(n) = length {
            Box::new(r.take(n))
        } else {
            Box::new(r)
        };
        let streamed = Streamed {
            status,
            content_type,
            length,
            headers,
            body,
        };
        if (200..300).contains(&status) {
            return Ok(streamed);
        }
        let mut text = Vec::new();
        let mut body = streamed.body;
        body.read_to_end(&mut text).map_err(|e| self.io(e))?;
        let json = RawResponse { status, body: text }.json()?;
        Err(Error::from_reply(status, &json))
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::unavailable(format!(
            "talking to custosd on {}: {e}",
            self.socket.display()
        ))
    }
}

/// A reply being read: its status, content type and body.
pub struct Streamed {
    pub status: u16,
    pub content_type: String,
    /// The body's length, if the reply stated it.
    pub length: Option<u64>,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Box<dyn Read + Send>,
}

impl Streamed {
    /// The value of header `name` (lower case), if the reply has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The body of a `Transfer-Encoding: chunked` reply, decoded.
struct Chunked<R: BufRead> {
    inner: R,
    /// Bytes left in the current chunk.
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            let size = line.trim_end().split(';').next().unwrap_or("");
            if size.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the reply ended in the middle",
                ));
            }
            self.left = u64::from_str_radix(size.trim(), 16).map_err(|_| bad("bad chunk size"))?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the reply ended in the middle",
            ));
        }
        self.left -= n as u64;
        if self.left == 0 {
            let mut crlf = [0u8; 2];
            self.inner.read_exact(&mut crlf)?;
            if crlf != *b"\r\n" {
                return Err(bad("bad chunk end"));
            }
        }
        Ok(n)
    }
}

/// Parses `HTTP/1.1 200 OK\r\n...headers...\r\n\r\nbody`.
fn parse_response(buf: &[u8]) -> Result<RawResponse> {
    let bad = || Error::unavailable("custosd closed the connection without a valid HTTP reply");
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| bad())?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(bad)?;
    let mut body = buf[end + 4..].to_vec();
    for l in lines {
        if let Some((k, v)) = l.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
            && let Ok(n) = v.trim().parse::<usize>()
        {
            body.truncate(n);
        }
    }
    Ok(RawResponse { status, body })
}

/// The name of the socket's group (or its gid), for telling a refused user
/// which group to ask for; the configured default if it cannot be seen.
fn socket_group(socket: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(socket) else {
        return crate::config::DEFAULT_SOCKET_GROUP.to_owned();
    };
    match nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(meta.gid())) {
        Ok(Some(g)) => g.name,
        _ => format!("with gid {}", meta.gid()),
    }
}
