//! Streamed replies (an export): a thread of its own writes the body
//! through a bounded channel to the connection, and writes the closing
//! audit entry when it ends.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use hyper::body::{Bytes, Frame, SizeHint};

use super::auth::Peer;
use super::server::Activity;
use super::{ApiState, STREAM_CHUNK, STREAM_CHUNKS_IN_FLIGHT, routes};
use crate::error::{Error, Result};

/// A reply body: whole, or chunks from a streaming thread.
pub enum ReplyBody {
    Whole(Option<Bytes>),
    Streamed(tokio::sync::mpsc::Receiver<Bytes>),
}

impl ReplyBody {
    pub(super) fn whole(bytes: impl Into<Bytes>) -> Self {
        ReplyBody::Whole(Some(bytes.into()))
    }
}

impl hyper::body::Body for ReplyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ReplyBody::Whole(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ReplyBody::Streamed(rx) => rx.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ReplyBody::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReplyBody::Whole(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ReplyBody::Streamed(_) => SizeHint::default(),
        }
    }
}

/// The streaming thread's end of a [`ReplyBody::Streamed`]: buffers writes
/// into chunks and blocks while the connection is behind. A write fails once
/// the connection is gone.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    activity: Arc<Activity>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(STREAM_CHUNK),
        ));
        let n = chunk.len() as u64;
        self.tx.blocking_send(chunk).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client closed the connection",
            )
        })?;
        self.activity.bytes.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(STREAM_CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= STREAM_CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Runs a streamed reply on a thread of its own (an export may take
/// minutes; the blocking pool stays free) and writes its closing audit entry.
pub(super) fn start_stream(
    state: Arc<ApiState>,
    peer: Arc<Peer>,
    activity: Arc<Activity>,
    stream: routes::Stream,
) -> Result<tokio::sync::mpsc::Receiver<Bytes>> {
    let (tx, rx) = tokio::sync::mpsc::channel(STREAM_CHUNKS_IN_FLIGHT);
    activity.streams.fetch_add(1, Ordering::Relaxed);
    let counted = activity.clone();
    let spawned = std::thread::Builder::new()
        .name("custos-stream".into())
        .spawn(move || {
            let mut w = ChannelWriter {
                tx,
                buf: Vec::with_capacity(STREAM_CHUNK),
                activity: activity.clone(),
            };
            let run = stream.run;
            let result = run(&mut w).and_then(|note| {
                std::io::Write::flush(&mut w)
                    .map(|()| note)
                    .map_err(|e| Error::unavailable(format!("the client went away: {e}")))
            });
            let (outcome, note) = match &result {
                Ok(note) => ("ok", note.clone()),
                Err(e) => (e.kind.as_str(), e.message.clone()),
            };
            if let Err(e) = &result {
                tracing::warn!(uid = peer.uid, error = %e, "a streamed reply ended early");
            }
            let a = stream.audit;
            let record = crate::index::AuditRecord {
                at_us: state.clocks.realtime(),
                uid: peer.uid,
                user: peer.user_name(),
                pid: peer.pid,
                role: a.role,
                action: a.action,
                target: format!("{}: {note}", a.target),
                reason: a.reason,
                outcome: outcome.to_owned(),
            };
            if let Err(e) = state.audit.append(record) {
                tracing::error!(error = %e, "cannot write the audit entry ending a stream");
            }
            activity.streams.fetch_sub(1, Ordering::Relaxed);
        });
    if let Err(e) = spawned {
        counted.streams.fetch_sub(1, Ordering::Relaxed);
        return Err(Error::internal(format!(
            "cannot start a streaming thread: {e}"
        )));
    }
    Ok(rx)
}

/// Applies a request's `Range` header to a streamed reply that can be sent
/// in parts (a recorded view): one satisfiable range makes it a 206 of
/// that part, one outside the body a 416 that sends nothing (its closing
/// audit entry says so). Anything else (no header, several ranges, a form
/// we do not read) leaves the whole reply: RFC 9110 lets a server ignore
/// `Range`. Returns the status to answer with.
pub(super) fn apply_range(
    stream: &mut routes::Stream,
    header: Option<&str>,
    status: http::StatusCode,
) -> http::StatusCode {
    let (Some(header), Some(ranged)) = (header, stream.ranged.take()) else {
        return status;
    };
    let len = ranged.length;
    let Some(range) = byte_range(header, len) else {
        return status;
    };
    stream.headers.retain(|(k, _)| *k != "content-length");
    match range {
        Ok(r) => {
            stream
                .headers
                .push(("content-length", (r.end - r.start).to_string()));
            stream.headers.push((
                "content-range",
                format!("bytes {}-{}/{len}", r.start, r.end - 1),
            ));
            let run = ranged.run;
            stream.run = Box::new(move |out| run(r, out));
            http::StatusCode::PARTIAL_CONTENT
        }
        Err(()) => {
            stream.headers.push(("content-length", "0".into()));
            stream
                .headers
                .push(("content-range", format!("bytes */{len}")));
            let asked = header.escape_debug().to_string();
            stream.run = Box::new(move |_| {
                Err(Error::invalid(format!(
                    "the range {asked} is outside the {len} bytes of the view; nothing was sent"
                )))
            });
            http::StatusCode::RANGE_NOT_SATISFIABLE
        }
    }
}

/// One byte range of a body of `len` bytes from a `Range` header:
/// `Some(Ok)` satisfiable, `Some(Err)` outside the body, `None` ignored.
fn byte_range(header: &str, len: u64) -> Option<std::result::Result<std::ops::Range<u64>, ()>> {
    let spec = header.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.is_empty(), b.is_empty()) {
        // The last `b` bytes.
        (true, false) => {
            let n: u64 = b.parse().ok()?;
            if n == 0 || len == 0 {
                return Some(Err(()));
            }
            len.saturating_sub(n)..len
        }
        (false, _) => {
            let start: u64 = a.parse().ok()?;
            let end = if b.is_empty() {
                len
            } else {
                let last: u64 = b.parse().ok()?;
                if last < start {
                    return None;
                }
                last.saturating_add(1).min(len)
            };
            if start >= len {
                return Some(Err(()));
            }
            start..end
        }
        (true, true) => return None,
    };
    Some(Ok(range))
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn byte_ranges_read_as_rfc_9110_says() {
        assert_eq!(byte_range("bytes=0-99", 1000), Some(Ok(0..100)));
        assert_eq!(byte_range("bytes=900-", 1000), Some(Ok(900..1000)));
        assert_eq!(byte_range("bytes=-100", 1000), Some(Ok(900..1000)));
        assert_eq!(byte_range("bytes=-5000", 1000), Some(Ok(0..1000)));
        assert_eq!(byte_range("bytes=990-2000", 1000), Some(Ok(990..1000)));
        assert_eq!(byte_range("bytes=1000-", 1000), Some(Err(())));
        assert_eq!(byte_range("bytes=-0", 1000), Some(Err(())));
        assert_eq!(byte_range("bytes=0-1,5-9", 1000), None);
        assert_eq!(byte_range("bytes=9-1", 1000), None);
        assert_eq!(byte_range("items=0-1", 1000), None);
        assert_eq!(byte_range("bytes=x-1", 1000), None);
    }
}
