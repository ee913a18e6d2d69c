//! The camera simulator, checked with a real RTSP client (rtspsrc over TCP on
//! loopback): streams arrive, counters match what arrived, and freezing,
//! stopping and restarting a camera look to a client like the real thing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use custos::sim::{SimAudio, SimCamera, SimCodec, SimConfig, SimMode, Simulator};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// An rtspsrc client that depayloads each stream into an appsink and counts
/// video access units (noting key frames) and audio frames.
struct Client {
    pipeline: gst::Pipeline,
    video: Arc<Mutex<Vec<bool>>>,
    audio: Arc<AtomicU64>,
}

impl Client {
    fn connect(url: &str) -> Client {
        gst::init().unwrap();
        let pipeline = gst::Pipeline::new();
        let src = gst::ElementFactory::make("rtspsrc")
            .property("location", url)
            .property("latency", 200u32)
            .property_from_str("protocols", "tcp")
            .property_from_str("buffer-mode", "none")
            .build()
            .unwrap();
        pipeline.add(&src).unwrap();
        let video = Arc::new(Mutex::new(Vec::new()));
        let audio = Arc::new(AtomicU64::new(0));
        let weak = pipeline.downgrade();
        let (v, a) = (video.clone(), audio.clone());
        src.connect_pad_added(move |_, pad| {
            let Some(pipeline) = weak.upgrade() else {
                return;
            };
            let caps = pad.current_caps().unwrap();
            let s = caps.structure(0).unwrap();
            let encoding = s.get::<&str>("encoding-name").unwrap().to_owned();
            let depay = match encoding.as_str() {
                "H264" => "rtph264depay ! video/x-h264,stream-format=avc,alignment=au",
                "H265" => "rtph265depay ! video/x-h265,stream-format=hvc1,alignment=au",
                "MPEG4-GENERIC" => "rtpmp4gdepay",
                "PCMA" => "rtppcmadepay",
                "PCMU" => "rtppcmudepay",
                other => panic!("unexpected stream {other}"),
            };
            let bin = gst::parse::bin_from_description(
                &format!("{depay} ! appsink name=sink sync=false"),
                true,
            )
            .unwrap();
            let sink = bin
                .by_name("sink")
                .unwrap()
                .downcast::<gst_app::AppSink>()
                .unwrap();
            let is_video = encoding.starts_with("H26");
            let (v, a) = (v.clone(), a.clone());
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        if is_video {
                            let key = !sample
                                .buffer()
                                .unwrap()
                                .flags()
                                .contains(gst::BufferFlags::DELTA_UNIT);
                            v.lock().unwrap().push(key);
                        } else {
                            a.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
            pipeline.add(&bin).unwrap();
            bin.sync_state_with_parent().unwrap();
            pad.link(&bin.static_pad("sink").unwrap()).unwrap();
        });
        pipeline.set_state(gst::State::Playing).unwrap();
        Client {
            pipeline,
            video,
            audio,
        }
    }

    fn video_frames(&self) -> u64 {
        self.video.lock().unwrap().len() as u64
    }

    fn key_frames(&self) -> Vec<usize> {
        let video = self.video.lock().unwrap();
        video
            .iter()
            .enumerate()
            .filter(|(_, key)| **key)
            .map(|(i, _)| i)
            .collect()
    }

    fn audio_frames(&self) -> u64 {
        self.audio.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` for `done`; false if it never held.
    fn wait_until(&self, timeout: Duration, done: impl Fn(&Client) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if done(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        done(self)
    }

    /// The first EOS or error on the bus within `timeout`, as text.
    fn ended(&self, timeout: Duration) -> Option<String> {
        let bus = self.pipeline.bus().unwrap();
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )?;
        Some(match msg.view() {
            gst::MessageView::Error(e) => format!("error: {}", e.error()),
            _ => "eos".to_owned(),
        })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn start(cameras: Vec<SimCamera>) -> Simulator {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    Simulator::start(SimConfig {
        cameras,
        ..SimConfig::default()
    })
    .unwrap()
}

fn clip_camera(name: &str) -> SimCamera {
    SimCamera {
        mode: SimMode::Clip,
        ..SimCamera::new(name)
    }
}

/// What a client received is what the simulator counted, give or take the
/// frames sent before the client played or still in flight.
fn assert_counts_match(what: &str, sent: u64, received: u64, slack: u64) {
    assert!(received > 0, "{what}: nothing received");
    assert!(
        received <= sent && sent - received <= slack,
        "{what}: simulator counted {sent}, client received {received}"
    );
}

#[test]
fn live_and_clip_cameras_stream_and_count_what_they_send() {
    let sim = start(vec![
        SimCamera::new("live264"),
        SimCamera {
            codec: SimCodec::H265,
            audio: SimAudio::Aac,
            ..SimCamera::new("live265aac")
        },
        SimCamera {
            audio: SimAudio::Pcmu,
            ..clip_camera("clip264pcmu")
        },
    ]);
    assert_eq!(
        sim.url("live264"),
        format!("rtsp://127.0.0.1:{}/live264", sim.port())
    );
    let clients: Vec<(&str, Client)> = ["live264", "live265aac", "clip264pcmu"]
        .into_iter()
        .map(|name| (name, Client::connect(&sim.url(name))))
        .collect();
    for (name, client) in &clients {
        // Two seconds of video, so the clip camera sends at least one key frame.
        assert!(
            client.wait_until(Duration::from_secs(8), |c| c.video_frames() >= 55),
            "{name}: {} frames after 8 s",
            client.video_frames()
        );
    }
    for (_, client) in &clients {
        client.pipeline.set_state(gst::State::Null).unwrap();
    }
    // The clients are stopped; in flight is what had not reached them yet.
    std::thread::sleep(Duration::from_millis(200));
    for (name, client) in &clients {
        assert_counts_match(name, sim.video_frames_sent(name), client.video_frames(), 25);
    }
    let (_, h265) = &clients[1];
    assert_counts_match(
        "live265aac audio",
        sim.audio_frames_sent("live265aac"),
        h265.audio_frames(),
        25,
    );
    let (_, clip) = &clients[2];
    assert_counts_match(
        "clip264pcmu audio",
        sim.audio_frames_sent("clip264pcmu"),
        clip.audio_frames(),
        60,
    );
    assert_eq!(sim.audio_frames_sent("live264"), 0);

    // The clip is looped with its 2 s GOP intact: key frames 50 frames apart.
    let keys = clip.key_frames();
    assert!(!keys.is_empty(), "clip camera sent no key frame");
    assert!(
        keys.windows(2).all(|w| w[1] - w[0] == 50),
        "key frames at {keys:?}"
    );
    sim.shutdown();
}

#[test]
fn frozen_camera_keeps_the_connection_but_sends_nothing() {
    let sim = start(vec![clip_camera("cam")]);
    let client = Client::connect(&sim.url("cam"));
    assert!(
        client.wait_until(Duration::from_secs(5), |c| c.video_frames() >= 10),
        "no frames"
    );

    sim.freeze("cam", true);
    std::thread::sleep(Duration::from_millis(300));
    let (received, sent) = (client.video_frames(), sim.video_frames_sent("cam"));
    assert_eq!(
        client.ended(Duration::from_secs(2)),
        None,
        "client saw the stream end while frozen"
    );
    assert_eq!(
        client.video_frames(),
        received,
        "frames arrived while frozen"
    );
    assert_eq!(
        sim.video_frames_sent("cam"),
        sent,
        "frames counted while frozen"
    );

    sim.freeze("cam", false);
    assert!(
        client.wait_until(Duration::from_secs(3), |c| c.video_frames()
            >= received + 10),
        "frames did not resume on the same connection"
    );
}

#[test]
fn stopped_camera_ends_its_clients_and_is_not_found_until_started() {
    let sim = start(vec![clip_camera("cam"), clip_camera("cam1")]);
    let client = Client::connect(&sim.url("cam"));
    let other = Client::connect(&sim.url("cam1"));
    assert!(
        client.wait_until(Duration::from_secs(5), |c| c.video_frames() >= 10),
        "no frames"
    );
    assert!(
        other.wait_until(Duration::from_secs(5), |c| c.video_frames() >= 10),
        "no frames"
    );

    sim.stop_camera("cam");
    let gone = client.ended(Duration::from_secs(5));
    assert!(gone.is_some(), "client did not see the camera go");
    let late = Client::connect(&sim.url("cam"));
    let ended = late.ended(Duration::from_secs(5));
    assert!(
        ended.as_deref().is_some_and(|e| e.starts_with("error")),
        "new client got {ended:?}"
    );
    assert_eq!(late.video_frames(), 0);
    // Only the camera with that exact name went away.
    let before = other.video_frames();
    assert!(other.wait_until(Duration::from_secs(2), |c| c.video_frames() >= before + 10));

    sim.start_camera("cam");
    let again = Client::connect(&sim.url("cam"));
    assert!(
        again.wait_until(Duration::from_secs(5), |c| c.video_frames() >= 10),
        "no frames after restart"
    );
    let key_frames = again.key_frames();
    assert_eq!(
        key_frames.first(),
        Some(&0),
        "a new media starts with the clip's key frame"
    );
}

#[test]
fn a_port_in_use_is_reported() {
    let sim = start(vec![clip_camera("cam")]);
    let config = SimConfig {
        port: sim.port(),
        cameras: vec![clip_camera("cam")],
        ..SimConfig::default()
    };
    let err = Simulator::start(config).unwrap_err();
    assert_eq!(err.kind, custos::ErrorKind::Unavailable, "{err}");
}

#[test]
fn a_simulator_can_be_shared_between_threads() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Simulator>();
}
