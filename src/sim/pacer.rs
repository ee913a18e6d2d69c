//! One thread that feeds every clip-mode media in real time.
//!
//! Why a single pacing thread: each buffer is pushed into its `appsrc` when
//! the media's running time reaches the buffer's PTS, so nothing queues and
//! the RTP stream leaves at the camera's frame rate. One thread that sleeps
//! until the earliest due buffer of all feeds costs one wake-up per batch;
//! a thread or glib timeout per camera would cost one per frame per camera,
//! and `appsrc` itself cannot pace (pushing ahead would only fill its queue).
//! Buffers due within `EARLY` of the wake-up are pushed in the same batch;
//! their timestamps are exact, only the push is that much early.
//!
//! Invariants: timestamps are continuous across loops (loop `n` of a clip
//! starts `n * period` after the feed's origin), and the first buffer a
//! media gets is the clip's first, a key frame.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::clip::Clip;

/// How early a buffer may be pushed to share a wake-up with another.
const EARLY: Duration = Duration::from_millis(2);
/// How often to look again for a media that is not playing yet.
const NOT_PLAYING_RETRY: Duration = Duration::from_millis(10);
/// Sleep when there is nothing to feed (new feeds wake the thread).
const IDLE: Duration = Duration::from_secs(1);

/// The tracks of one media, fed against one shared origin so audio and
/// video stay in step.
pub(super) struct Feed {
    tracks: Vec<Track>,
    /// When the first buffer was due: a monotonic instant and the media's
    /// running time at that instant. `None` until the media plays.
    origin: Option<(Instant, gst::ClockTime)>,
}

struct Track {
    src: glib::WeakRef<gst_app::AppSrc>,
    clip: Arc<Clip>,
    /// Index of the next buffer to push.
    next: usize,
    /// Completed loops.
    loops: u64,
}

impl Feed {
    pub fn new(tracks: impl IntoIterator<Item = (gst_app::AppSrc, Arc<Clip>)>) -> Feed {
        let tracks = tracks
            .into_iter()
            .map(|(src, clip)| {
                src.set_caps(Some(&clip.caps));
                Track {
                    src: src.downgrade(),
                    clip,
                    next: 0,
                    loops: 0,
                }
            })
            .collect();
        Feed {
            tracks,
            origin: None,
        }
    }

    /// Pushes what is due at `now`, lowers `wake` to when the next buffer is
    /// due, and returns false once the media is gone.
    fn pump(&mut self, now: Instant, wake: &mut Instant) -> bool {
        let (origin_instant, origin_rt) = match self.origin {
            Some(origin) => origin,
            None => {
                let Some(src) = self.tracks.first().and_then(|t| t.src.upgrade()) else {
                    return false;
                };
                // The running time exists once the pipeline plays; the RTSP
                // server sets a live media playing while preparing it. Only
                // once the appsrc itself is PLAYING: the pipeline gives it
                // its clock before its base time, and a running time read in
                // between is the clock's absolute time (hours), which would
                // stamp every buffer that far ahead and hold the media's
                // first frame in its sink.
                let running_time = (src.current_state() == gst::State::Playing)
                    .then(|| src.current_running_time())
                    .flatten();
                match running_time {
                    Some(rt) => *self.origin.insert((now, rt)),
                    None => {
                        // Not playing yet (the media is configured before
                        // it is prepared): alive as long as the media is.
                        *wake = (*wake).min(now + NOT_PLAYING_RETRY);
                        return true;
                    }
                }
            }
        };
        for track in &mut self.tracks {
            let Some(src) = track.src.upgrade() else {
                return false;
            };
            loop {
                let clip = &track.clip;
                let buffer = &clip.buffers[track.next];
                let offset = clip.period * track.loops + buffer.pts().unwrap_or_default();
                let due = origin_instant + Duration::from_nanos(offset.nseconds());
                if due > now + EARLY {
                    *wake = (*wake).min(due);
                    break;
                }
                let mut out = buffer.copy();
                {
                    let out = out.make_mut();
                    out.set_pts(origin_rt + offset);
                    if track.next == 0 && track.loops == 0 {
                        out.set_flags(gst::BufferFlags::DISCONT);
                    }
                }
                if src.push_buffer(out).is_err() && src.current_state() <= gst::State::Ready {
                    // Flushing: the server has shut this media down.
                    return false;
                }
                track.next += 1;
                if track.next == clip.buffers.len() {
                    track.next = 0;
                    track.loops += 1;
                }
            }
        }
        true
    }
}

/// The pacing thread and the feeds it serves.
pub(super) struct Pacer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    feeds: Vec<Feed>,
    stopping: bool,
}

impl Pacer {
    pub fn start() -> std::io::Result<Pacer> {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            wake: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("camsim-pacer".into())
            .spawn({
                let shared = shared.clone();
                move || run(&shared)
            })?;
        Ok(Pacer {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Starts feeding a media; dropped once its `appsrc`s are gone or shut down.
    pub fn add(&self, feed: Feed) {
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if !state.stopping {
            state.feeds.push(feed);
            self.shared.wake.notify_one();
        }
    }

    /// Stops the thread and drops every feed. Idempotent.
    pub fn stop(&self) {
        {
            let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.stopping = true;
            state.feeds.clear();
            self.shared.wake.notify_one();
        }
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(shared: &Shared) {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    while !state.stopping {
        let now = Instant::now();
        let mut wake = now + IDLE;
        state.feeds.retain_mut(|feed| feed.pump(now, &mut wake));
        let timeout = wake.saturating_duration_since(Instant::now());
        state = shared
            .wake
            .wait_timeout(state, timeout)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}
