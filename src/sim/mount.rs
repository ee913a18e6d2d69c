//! A simulated camera as the RTSP server sees it: a media factory on a mount,
//! the probes that count and freeze its payloaders' input, and taking the
//! mount away together with its clients.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

use super::clip::{self, ClipSet};
use super::pacer::{Feed, Pacer};
use super::{SimAudio, SimCamera, SimMode, launch};
use crate::error::{Error, ErrorKind, Result};

/// Per-camera state that outlives any one media.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub video: AtomicU64,
    pub audio: AtomicU64,
    pub frozen: AtomicBool,
    /// Live mode: the picture does not move (see `launch::STILL_PATTERN`).
    pub still: AtomicBool,
}

#[derive(Debug)]
pub(super) struct Camera {
    pub spec: SimCamera,
    pub counters: Arc<Counters>,
    /// Whether the camera's factory is on its mount; held while changing it.
    pub mounted: Mutex<bool>,
    /// The server's launch description, without the enclosing parentheses.
    launch: String,
    /// Clip mode only.
    clips: Option<ClipSet>,
}

impl Camera {
    /// Checks that GStreamer can build the camera's media and, in clip mode,
    /// encodes (or finds) its clips.
    pub fn prepare(spec: SimCamera) -> Result<Camera> {
        let (launch, clips) = match spec.mode {
            SimMode::Live => (launch::live(&spec), None),
            SimMode::Clip => (launch::clip_serve(&spec), Some(clip::for_camera(&spec)?)),
        };
        // Otherwise a missing plugin would only show as a failed DESCRIBE.
        gst::parse::launch(&launch).map_err(|e| {
            Error::with_source(
                ErrorKind::Unavailable,
                format!(
                    "simulated camera {:?}: cannot build its media ({e}); are the GStreamer \
                     plugins installed (scripts/setup)?",
                    spec.name
                ),
                e,
            )
        })?;
        Ok(Camera {
            spec,
            counters: Arc::default(),
            mounted: Mutex::new(true),
            launch,
            clips,
        })
    }

    pub fn path(&self) -> String {
        format!("/{}", self.spec.name)
    }

    /// A factory with one media shared by all clients. A new factory per
    /// mounting: the server caches shared media in the factory.
    pub fn factory(&self, pacer: &Arc<Pacer>) -> rtsp::RTSPMediaFactory {
        let factory = rtsp::RTSPMediaFactory::new();
        factory.set_launch(&format!("( {} )", self.launch));
        factory.set_shared(true);
        let name = self.spec.name.clone();
        let counters = self.counters.clone();
        let clips = self.clips.clone();
        let pacer = Arc::downgrade(pacer);
        let spec = self.spec.clone();
        factory.connect_media_configure(move |_, media| {
            if let Err(e) = configure(media, &spec, &counters, clips.as_ref(), &pacer) {
                tracing::error!(
                    camera = name,
                    "cannot configure simulated camera media: {e}"
                );
            } else {
                tracing::debug!(camera = name, "new media");
            }
        });
        factory
    }
}

fn configure(
    media: &rtsp::RTSPMedia,
    spec: &SimCamera,
    counters: &Arc<Counters>,
    clips: Option<&ClipSet>,
    pacer: &Weak<Pacer>,
) -> Result<()> {
    let element = media.element();
    let bin = element
        .downcast_ref::<gst::Bin>()
        .ok_or_else(|| Error::internal("media is not a bin"))?;
    let by_name = |name: &str| {
        bin.by_name(name)
            .ok_or_else(|| Error::internal(format!("media has no {name}")))
    };
    count_and_gate(&by_name(launch::VIDEO_PAYLOADER)?, counters, |c| &c.video)?;
    if let Ok(source) = by_name(launch::LIVE_VIDEO_SOURCE) {
        follow_stillness(&source, counters)?;
    }
    if let Ok(pay) = by_name(launch::AUDIO_PAYLOADER) {
        count_and_gate(&pay, counters, |c| &c.audio)?;
        if spec.audio == SimAudio::Aac && spec.empty_aac_config {
            empty_aac_config(&pay)?;
        }
    }
    if spec.sender_reports_after_ms > 0 || spec.latency_ms > 0 {
        let withhold_until = (spec.sender_reports_after_ms > 0)
            .then(|| Instant::now() + Duration::from_millis(spec.sender_reports_after_ms.into()));
        configure_rtcp(&element, spec.latency_ms > 0, withhold_until)?;
    }
    let Some(clips) = clips else { return Ok(()) };
    let appsrc = |name: &str| {
        by_name(name)?
            .downcast::<gst_app::AppSrc>()
            .map_err(|_| Error::internal(format!("{name} is not an appsrc")))
    };
    let mut tracks = vec![(appsrc(launch::VIDEO_APPSRC)?, clips.video.clone())];
    if let Some(audio) = &clips.audio {
        tracks.push((appsrc(launch::AUDIO_APPSRC)?, audio.clone()));
    }
    if let Some(pacer) = pacer.upgrade() {
        pacer.add(Feed::new(tracks));
    }
    Ok(())
}

/// Switches the live source's pattern whenever the camera is made still or
/// moving: checked at each frame it makes, so the next one follows.
fn follow_stillness(source: &gst::Element, counters: &Arc<Counters>) -> Result<()> {
    let pad = source
        .static_pad("src")
        .ok_or_else(|| Error::internal("video source has no src pad"))?;
    let counters = counters.clone();
    let applied = AtomicBool::new(false);
    let element = source.downgrade();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        let still = counters.still.load(Ordering::Relaxed);
        if applied.swap(still, Ordering::Relaxed) != still
            && let Some(element) = element.upgrade()
        {
            let pattern = if still {
                launch::STILL_PATTERN
            } else {
                launch::MOVING_PATTERN
            };
            element.set_property_from_str("pattern", pattern);
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

/// Counts what reaches `payloader`, or drops it while the camera is frozen.
fn count_and_gate(
    payloader: &gst::Element,
    counters: &Arc<Counters>,
    counter: fn(&Counters) -> &AtomicU64,
) -> Result<()> {
    let pad = payloader
        .static_pad("sink")
        .ok_or_else(|| Error::internal("payloader has no sink pad"))?;
    let counters = counters.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            if counters.frozen.load(Ordering::Relaxed) {
                // `Handled` consumes the buffer and reports OK upstream. (`Drop`
                // through gstreamer-rs 0.25 makes GStreamer 1.22 unref a NULL
                // buffer and log a critical per frame.)
                return gst::PadProbeReturn::Handled;
            }
            let n = match &info.data {
                Some(gst::PadProbeData::Buffer(_)) => 1,
                Some(gst::PadProbeData::BufferList(list)) => list.len() as u64,
                _ => 0,
            };
            counter(&counters).fetch_add(n, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        },
    );
    Ok(())
}

/// Sets up the media's RTP manager, which joins the media's pipeline when
/// the media is prepared, after this runs. With `capture_time` its sender
/// reports map RTP time to the frames' capture time (as a camera's do), not
/// to when they were sent; with `withhold_until` its outgoing RTCP is
/// dropped until then.
fn configure_rtcp(
    element: &gst::Element,
    capture_time: bool,
    withhold_until: Option<Instant>,
) -> Result<()> {
    let pipeline = element
        .parent()
        .and_downcast::<gst::Bin>()
        .ok_or_else(|| Error::internal("media has no pipeline yet"))?;
    pipeline.connect_element_added(move |_, child| {
        if child.factory().is_none_or(|f| f.name() != "rtpbin") {
            return;
        }
        if capture_time {
            child.set_property("rtcp-sync-send-time", false);
        }
        let Some(until) = withhold_until else { return };
        child.connect_pad_added(move |_, pad| {
            if !pad.name().starts_with("send_rtcp_src") {
                return;
            }
            pad.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                move |_, _| {
                    if Instant::now() < until {
                        gst::PadProbeReturn::Handled
                    } else {
                        gst::PadProbeReturn::Ok
                    }
                },
            );
        });
    });
    Ok(())
}

/// Makes the AAC payloader's caps, and so the SDP made from them, carry
/// `config=""`. The server reads a stream's caps from the payloader's source
/// pad, so the stored caps event is replaced there, and downstream too.
fn empty_aac_config(payloader: &gst::Element) -> Result<()> {
    let pad = payloader
        .static_pad("src")
        .ok_or_else(|| Error::internal("payloader has no src pad"))?;
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |pad, info| {
        let Some(gst::PadProbeData::Event(event)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let gst::EventView::Caps(c) = event.view() else {
            return gst::PadProbeReturn::Ok;
        };
        let mut caps = c.caps_owned();
        if caps
            .structure(0)
            .is_some_and(|s| s.get::<&str>("config").is_ok_and(|v| v.is_empty()))
        {
            return gst::PadProbeReturn::Ok;
        }
        if let Some(s) = caps.make_mut().structure_mut(0) {
            s.set("config", "");
        }
        let event = gst::event::Caps::new(&caps);
        if pad.store_sticky_event(&event).is_err() {
            tracing::warn!("cannot replace the AAC payloader's caps");
        }
        info.data = Some(gst::PadProbeData::Event(event));
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

pub(super) fn mount(server: &rtsp::RTSPServer, path: &str, factory: rtsp::RTSPMediaFactory) {
    if let Some(mounts) = server.mount_points() {
        mounts.add_factory(path, factory);
    }
}

/// Removes the mount at `path`, closes the connections of clients with a
/// session on it, and removes whatever sessions remain (a UDP client's
/// session outlives its connection), which shuts the media down.
pub(super) fn unmount(server: &rtsp::RTSPServer, path: &str) {
    if let Some(mounts) = server.mount_points() {
        mounts.remove_factory(path);
    }
    let on_path = |session: &rtsp::RTSPSession| {
        // `matches` is a prefix test: "/cam1" matches a request for "/cam10".
        let on_path = |_: &rtsp::RTSPSession, media: &rtsp::RTSPSessionMedia| {
            if media.matches(path) == Some(path.len() as i32) {
                rtsp::RTSPFilterResult::Ref
            } else {
                rtsp::RTSPFilterResult::Keep
            }
        };
        !session.filter(Some(&mut { on_path })).is_empty()
    };
    server.client_filter(Some(&mut |_, client| {
        let sessions = client.session_filter(Some(&mut |_, session| {
            if on_path(session) {
                rtsp::RTSPFilterResult::Ref
            } else {
                rtsp::RTSPFilterResult::Keep
            }
        }));
        if sessions.is_empty() {
            rtsp::RTSPFilterResult::Keep
        } else {
            rtsp::RTSPFilterResult::Remove
        }
    }));
    if let Some(pool) = server.session_pool() {
        pool.filter(Some(&mut |_, session| {
            if on_path(session) {
                rtsp::RTSPFilterResult::Remove
            } else {
                rtsp::RTSPFilterResult::Keep
            }
        }));
    }
}
