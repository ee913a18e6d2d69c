//! A simulator of RTSP cameras on loopback, for the README's demo, the
//! recorder's integration tests and the many-camera benchmark.
//!
//! Each camera is one mount (`/<name>`) of a GStreamer RTSP server running on
//! its own glib main loop thread. A mount's media is shared by all its
//! clients, so a recorder and a viewer see the same stream. Two modes:
//! - `Live` encodes a moving pattern with the wall-clock time burnt in: what
//!   a person wants to look at, at about 40% of a core for 1080p.
//! - `Clip` encodes a few seconds once and loops those buffers from an
//!   `appsrc`, paced by one thread for all cameras (see `pacer`): about 1% of
//!   a core per camera, for benchmarks.
//!
//! Counting: every access unit (and audio frame) that reaches a camera's
//! payloader is counted, per camera, across every media the camera has had.
//! Freezing drops buffers at the same point, so a frozen camera keeps its
//! connections and sessions but sends no RTP data, and nothing is counted.

mod clip;
mod launch;
mod mount;
mod pacer;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

use crate::error::{Error, ErrorKind, Result};

use mount::Camera;
use pacer::Pacer;

/// Video codec of a simulated camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimCodec {
    H264,
    H265,
}

/// Audio track of a simulated camera: a 440 Hz tone, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimAudio {
    None,
    /// AAC-LC, mono, 16 kHz, RTP MPEG4-GENERIC.
    Aac,
    /// G.711 A-law, mono, 8 kHz.
    Pcma,
    /// G.711 µ-law, mono, 8 kHz.
    Pcmu,
}

/// How a simulated camera makes its video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimMode {
    /// Encodes live, with the wall-clock date and time and the running time
    /// burnt into the picture.
    Live,
    /// Loops a clip encoded once at start-up: no live encoding.
    Clip,
}

/// One simulated camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCamera {
    /// Mount path is `/<name>`; letters, digits, `-`, `_` and `.` only.
    pub name: String,
    /// Default H.264.
    pub codec: SimCodec,
    /// Default none.
    pub audio: SimAudio,
    /// Pixels; even. Default 320.
    pub width: u32,
    /// Pixels; even. Default 240.
    pub height: u32,
    /// Frames per second. Default 25.
    pub fps: u32,
    /// Target video bit rate in kbit/s. Default 500.
    pub bitrate_kbps: u32,
    /// A key frame every this many frames, and at no other time. Default 50
    /// (2 s at 25 fps).
    pub keyframe_interval_frames: u32,
    /// Default live.
    pub mode: SimMode,
    /// Frames leave the camera this long after they were captured, like an
    /// encoder's delay. Its RTCP time is the capture time, so a recorder
    /// sees the camera's clock this much behind its own. Default 0.
    pub latency_ms: u32,
    /// RTCP (and so the sender reports that carry the camera's clock) is
    /// withheld for this long after the camera's media starts, like cameras
    /// whose first report comes late. Default 0.
    pub sender_reports_after_ms: u32,
    /// The SDP declares the AAC track with an empty `config` (no
    /// AudioSpecificConfig), as broken cameras do. Default false.
    pub empty_aac_config: bool,
}

impl SimCamera {
    pub fn new(name: impl Into<String>) -> SimCamera {
        SimCamera {
            name: name.into(),
            codec: SimCodec::H264,
            audio: SimAudio::None,
            width: 320,
            height: 240,
            fps: 25,
            bitrate_kbps: 500,
            keyframe_interval_frames: 50,
            mode: SimMode::Live,
            latency_ms: 0,
            sender_reports_after_ms: 0,
            empty_aac_config: false,
        }
    }

    fn validate(&self) -> Result<()> {
        let name = &self.name;
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        let problem = if !valid_name {
            "the name must be non-empty and use only letters, digits, '-', '_' and '.'".to_owned()
        } else if self.width == 0 || self.height == 0 || self.width % 2 == 1 || self.height % 2 == 1
        {
            format!(
                "{}x{} is not a size an encoder takes: use even, non-zero sizes",
                self.width, self.height
            )
        } else if !(1..=120).contains(&self.fps) {
            format!("{} frames per second is out of range 1-120", self.fps)
        } else if self.bitrate_kbps == 0 {
            "the bit rate must be at least 1 kbit/s".to_owned()
        } else if self.keyframe_interval_frames == 0 {
            "the key-frame interval must be at least 1 frame".to_owned()
        } else if self.empty_aac_config && self.audio != SimAudio::Aac {
            "an empty AAC config needs an AAC audio track (audio = aac)".to_owned()
        } else {
            return Ok(());
        };
        Err(Error::invalid(format!(
            "simulated camera {name:?}: {problem}"
        )))
    }
}

/// What to serve, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Address to listen on. Default `127.0.0.1`.
    pub address: String,
    /// TCP port; 0 picks a free one (see [`Simulator::port`]). Default 0.
    pub port: u16,
    pub cameras: Vec<SimCamera>,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            address: "127.0.0.1".to_owned(),
            port: 0,
            cameras: Vec::new(),
        }
    }
}

/// A running RTSP server with simulated cameras. Stops on [`Simulator::shutdown`]
/// or when dropped.
///
/// The per-camera methods panic on a name that is not in the configuration:
/// that is a mistake in the calling test, not a run-time condition.
pub struct Simulator {
    port: u16,
    host: String,
    cameras: HashMap<String, Camera>,
    server: rtsp::RTSPServer,
    context: glib::MainContext,
    main_loop: glib::MainLoop,
    listener: Option<glib::SourceId>,
    thread: Option<JoinHandle<()>>,
    pacer: Arc<Pacer>,
}

impl Simulator {
    /// Encodes the clips clip-mode cameras need, then starts serving; returns
    /// once the server is listening.
    pub fn start(config: SimConfig) -> Result<Simulator> {
        gst::init().map_err(|e| {
            Error::with_source(
                ErrorKind::Unavailable,
                format!("cannot initialise GStreamer: {e}"),
                e,
            )
        })?;
        let pacer = Arc::new(Pacer::start().map_err(|e| {
            Error::with_source(ErrorKind::Internal, "cannot start the pacing thread", e)
        })?);
        let mut cameras = HashMap::new();
        for spec in &config.cameras {
            spec.validate()?;
            let camera = Camera::prepare(spec.clone())?;
            if cameras.insert(spec.name.clone(), camera).is_some() {
                return Err(Error::invalid(format!(
                    "simulated camera {:?} is configured twice: names must be unique",
                    spec.name
                )));
            }
        }

        let server = rtsp::RTSPServer::new();
        server.set_address(&config.address);
        server.set_service(&config.port.to_string());
        let mounts = server
            .mount_points()
            .ok_or_else(|| Error::internal("RTSP server has no mount points"))?;
        for camera in cameras.values() {
            mounts.add_factory(&camera.path(), camera.factory(&pacer));
        }

        let context = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&context), false);
        // Binds and listens now, so a failure is this call's error and a
        // client may connect as soon as we return.
        let listener = server.attach(Some(&context)).map_err(|e| {
            Error::with_source(
                ErrorKind::Unavailable,
                format!(
                    "cannot listen for RTSP on {}:{}: {e} (is the port in use?)",
                    config.address, config.port
                ),
                e,
            )
        })?;
        let port = u16::try_from(server.bound_port())
            .map_err(|_| Error::internal("RTSP server reports no bound port"))?;
        let thread = std::thread::Builder::new()
            .name("camsim-rtsp".into())
            .spawn({
                let context = context.clone();
                let main_loop = main_loop.clone();
                move || {
                    if let Err(e) = context.with_thread_default(|| main_loop.run()) {
                        tracing::error!("camera simulator main loop did not run: {e}");
                    }
                }
            })
            .map_err(|e| {
                Error::with_source(
                    ErrorKind::Internal,
                    "cannot start the RTSP server thread",
                    e,
                )
            })?;

        let host = match config.address.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
            Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => config.address.clone(),
        };
        tracing::info!(port, cameras = cameras.len(), "camera simulator listening");
        Ok(Simulator {
            port,
            host,
            cameras,
            server,
            context,
            main_loop,
            listener: Some(listener),
            thread: Some(thread),
            pacer,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rtsp://HOST:PORT/<camera>`, whether or not the camera is running.
    pub fn url(&self, camera: &str) -> String {
        format!(
            "rtsp://{}:{}{}",
            self.host,
            self.port,
            self.camera(camera).path()
        )
    }

    /// The configured cameras' names, in no particular order.
    pub fn camera_names(&self) -> impl Iterator<Item = &str> {
        self.cameras.keys().map(String::as_str)
    }

    /// Video access units handed to the camera's payloader since start, over
    /// all the media the camera has had. Frames dropped while frozen are not
    /// counted.
    pub fn video_frames_sent(&self, camera: &str) -> u64 {
        self.camera(camera).counters.video.load(Ordering::Relaxed)
    }

    /// Audio frames handed to the camera's payloader since start.
    pub fn audio_frames_sent(&self, camera: &str) -> u64 {
        self.camera(camera).counters.audio.load(Ordering::Relaxed)
    }

    /// While frozen the camera keeps its connections and sessions, answers
    /// RTSP requests, and sends no media. A new client's DESCRIBE waits for
    /// the unfreeze if the camera has no running media to share.
    pub fn freeze(&self, camera: &str, frozen: bool) {
        self.camera(camera)
            .counters
            .frozen
            .store(frozen, Ordering::Relaxed);
        tracing::info!(camera, frozen, "camera freeze");
    }

    /// Makes a live-mode camera's picture still (black, with the burnt-in
    /// clock) or moving again (the ball), from its next frame. No effect
    /// in clip mode.
    pub fn still(&self, camera: &str, still: bool) {
        self.camera(camera)
            .counters
            .still
            .store(still, Ordering::Relaxed);
        tracing::info!(camera, still, "camera stillness");
    }

    /// Takes the camera away: its mount is removed (new requests get 404),
    /// its clients' connections are closed and their sessions removed.
    /// No effect if already stopped.
    pub fn stop_camera(&self, camera: &str) {
        let camera = self.camera(camera);
        let mut mounted = camera.mounted.lock().unwrap_or_else(|e| e.into_inner());
        if !*mounted {
            return;
        }
        let (path, server) = (camera.path(), self.server.clone());
        self.on_server_thread(move || mount::unmount(&server, &path))
            .expect("camera simulator main loop stopped");
        *mounted = false;
        tracing::info!(camera = camera.spec.name, "camera stopped");
    }

    /// Brings a stopped camera back on the same URL, with a new media for
    /// the next client. No effect if running.
    pub fn start_camera(&self, camera: &str) {
        let camera = self.camera(camera);
        let mut mounted = camera.mounted.lock().unwrap_or_else(|e| e.into_inner());
        if *mounted {
            return;
        }
        let (path, server, factory) = (
            camera.path(),
            self.server.clone(),
            camera.factory(&self.pacer),
        );
        self.on_server_thread(move || mount::mount(&server, &path, factory))
            .expect("camera simulator main loop stopped");
        *mounted = true;
        tracing::info!(camera = camera.spec.name, "camera started");
    }

    /// Closes every connection and stops the server. Also done on drop.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn camera(&self, name: &str) -> &Camera {
        self.cameras
            .get(name)
            .unwrap_or_else(|| panic!("no simulated camera named {name:?}"))
    }

    /// Runs `f` on the main loop's thread, so changes to mounts and clients
    /// are ordered with the server's own handling of requests.
    /// `None` if the loop is gone.
    fn on_server_thread<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.context.invoke(move || {
            let _ = tx.send(f());
        });
        rx.recv().ok()
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let server = self.server.clone();
        let paths: Vec<String> = self.cameras.values().map(Camera::path).collect();
        let listener = self.listener.take();
        let context = self.context.clone();
        let _ = self.on_server_thread(move || {
            if let Some(source) = listener.and_then(|id| context.find_source_by_id(&id)) {
                source.destroy();
            }
            for path in &paths {
                mount::unmount(&server, path);
            }
        });
        self.main_loop.quit();
        let _ = thread.join();
        self.pacer.stop();
        tracing::info!(port = self.port, "camera simulator stopped");
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("port", &self.port)
            .field("cameras", &self.cameras.len())
            .finish()
    }
}

impl SimCodec {
    pub fn as_str(self) -> &'static str {
        match self {
            SimCodec::H264 => "h264",
            SimCodec::H265 => "h265",
        }
    }
}

impl SimAudio {
    pub fn as_str(self) -> &'static str {
        match self {
            SimAudio::None => "none",
            SimAudio::Aac => "aac",
            SimAudio::Pcma => "pcma",
            SimAudio::Pcmu => "pcmu",
        }
    }
}

impl SimMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SimMode::Live => "live",
            SimMode::Clip => "clip",
        }
    }
}

fn parse_choice<T: Copy>(
    what: &str,
    s: &str,
    choices: &[T],
    name: fn(T) -> &'static str,
) -> Result<T> {
    choices
        .iter()
        .copied()
        .find(|&c| name(c).eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|&c| name(c)).collect();
            Error::invalid(format!(
                "unknown {what} {s:?}: use one of {}",
                names.join(", ")
            ))
        })
}

impl FromStr for SimCodec {
    type Err = Error;
    fn from_str(s: &str) -> Result<SimCodec> {
        parse_choice(
            "codec",
            s,
            &[SimCodec::H264, SimCodec::H265],
            SimCodec::as_str,
        )
    }
}

impl FromStr for SimAudio {
    type Err = Error;
    fn from_str(s: &str) -> Result<SimAudio> {
        parse_choice(
            "audio",
            s,
            &[
                SimAudio::None,
                SimAudio::Aac,
                SimAudio::Pcma,
                SimAudio::Pcmu,
            ],
            SimAudio::as_str,
        )
    }
}

impl FromStr for SimMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<SimMode> {
        parse_choice("mode", s, &[SimMode::Live, SimMode::Clip], SimMode::as_str)
    }
}

impl fmt::Display for SimCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for SimAudio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for SimMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_case_insensitively_and_name_the_alternatives() {
        assert_eq!("H265".parse::<SimCodec>().unwrap(), SimCodec::H265);
        assert_eq!("pcmu".parse::<SimAudio>().unwrap(), SimAudio::Pcmu);
        let e = "vp8".parse::<SimCodec>().unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert!(e.message.contains("h264, h265"), "{}", e.message);
    }

    #[test]
    fn validation_names_the_camera_and_the_fix() {
        let odd = SimCamera {
            width: 321,
            ..SimCamera::new("cam1")
        };
        let e = odd.validate().unwrap_err();
        assert!(
            e.message.contains("\"cam1\"") && e.message.contains("even"),
            "{}",
            e.message
        );
        assert!(SimCamera::new("a/b").validate().is_err());
        assert!(SimCamera::new("cam-1.main_2").validate().is_ok());
    }
}
