//! A TCP relay between custosd and the camera simulator: the real RTSP
//! server on one side, the real daemon on the other, and a network that can
//! pause. It passes the camera's bytes message by message (RTSP replies and
//! interleaved `$` packets) and can hold them at the end of a video frame.
//! Video is interleaved channel 0 (the first stream set up); a frame ends at
//! an RTP packet with the marker bit.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub struct Relay {
    port: u16,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Video frames passed whole.
    frames: u64,
    /// Bytes of video passed since the last frame ended, and the size of
    /// the last whole frame.
    current: usize,
    last_frame: usize,
    /// Frames still to pass before holding; `None`: pass everything.
    allow: Option<u64>,
    /// When and how many bytes passed, over the last second.
    passed: VecDeque<(Instant, usize)>,
}

impl Relay {
    /// Listens on a loopback port of its own, relaying every connection
    /// to `upstream_port` on 127.0.0.1.
    pub fn start(upstream_port: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(camera) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                relay(client, camera, s.clone());
            }
        });
        Relay { port, shared }
    }

    /// The URL of `path` (as "/name") through the relay.
    pub fn url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}{path}", self.port)
    }

    /// Passes `frames` more video frames, then holds the stream.
    pub fn hold_after(&self, frames: u64) {
        self.state().allow = Some(frames);
        self.shared.changed.notify_all();
    }

    /// Waits until the stream is held; returns the frames passed in all
    /// and the size of the last one.
    pub fn wait_held(&self, timeout: Duration) -> (u64, usize) {
        let state = self.state();
        let (state, wait) = self
            .shared
            .changed
            .wait_timeout_while(state, timeout, |s| s.allow != Some(0))
            .unwrap();
        assert!(!wait.timed_out(), "the relay's stream was not held");
        (state.frames, state.last_frame)
    }

    /// Bytes passed over the last second.
    pub fn bytes_last_second(&self) -> usize {
        let mut state = self.state();
        state.trim();
        state.passed.iter().map(|p| p.1).sum()
    }

    pub fn frames(&self) -> u64 {
        self.state().frames
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap()
    }
}

impl State {
    fn trim(&mut self) {
        while self
            .passed
            .front()
            .is_some_and(|p| p.0.elapsed() > Duration::from_secs(1))
        {
            self.passed.pop_front();
        }
    }
}

/// Copies the daemon's requests up as they come and the camera's messages
/// down one by one, holding them when told.
fn relay(client: TcpStream, camera: TcpStream, shared: Arc<Shared>) {
    let (mut up_from, mut up_to) = (client.try_clone().unwrap(), camera.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_from, &mut up_to);
        let _ = up_to.shutdown(Shutdown::Write);
    });
    std::thread::spawn(move || {
        let mut from = BufReader::new(camera);
        let mut to = client;
        while let Some((message, video_end)) = next_message(&mut from) {
            let mut state = shared
                .changed
                .wait_while(shared.state.lock().unwrap(), |s| s.allow == Some(0))
                .unwrap();
            if to.write_all(&message).is_err() {
                break;
            }
            state.passed.push_back((Instant::now(), message.len()));
            state.trim();
            if message[0] == b'$' && message[1] == 0 {
                state.current += message.len();
            }
            if video_end {
                state.frames += 1;
                state.last_frame = std::mem::take(&mut state.current);
                if let Some(n) = state.allow.as_mut() {
                    *n -= 1;
                }
                drop(state);
                shared.changed.notify_all();
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// The next whole message from the camera, and whether it ends a video
/// frame; `None` at the end of the connection.
fn next_message(from: &mut BufReader<TcpStream>) -> Option<(Vec<u8>, bool)> {
    let first = from.fill_buf().ok()?.first().copied()?;
    if first == b'$' {
        let mut head = [0u8; 4];
        from.read_exact(&mut head).ok()?;
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let mut message = head.to_vec();
        message.resize(4 + len, 0);
        from.read_exact(&mut message[4..]).ok()?;
        // Channel 0, RTP version 2, marker bit.
        let end = head[1] == 0 && len >= 12 && message[4] >> 6 == 2 && message[5] & 0x80 != 0;
        return Some((message, end));
    }
    // An RTSP reply: headers to the blank line, then Content-Length bytes.
    let mut message = Vec::new();
    let mut body = 0;
    loop {
        let mut line = String::new();
        if from.read_line(&mut line).ok()? == 0 {
            return None;
        }
        message.extend_from_slice(line.as_bytes());
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            body = value.trim().parse().ok()?;
        }
        if line == "\r\n" {
            break;
        }
    }
    let start = message.len();
    message.resize(start + body, 0);
    from.read_exact(&mut message[start..]).ok()?;
    Some((message, false))
}
