//! The other side of a camera, without GStreamer: the retina crate's RTSP
//! client reads interleaved RTP over TCP with large reads and depacketises
//! H.264/H.265, AAC and G.711 in Rust; frames go to the segmenter from the
//! connection's task, on the ingest runtime (`ingest::runtime`) that every
//! camera shares.
//!
//! Why: GStreamer's rtspsrc costs about three `recvfrom` calls and eight
//! pad pushes per RTP packet (BENCHMARKS.md); this path does none of that
//! and records the same camera for a third of the CPU.
//!
//! Invariants, the same as the GStreamer path's (so the segmenter cannot
//! tell them apart):
//! - Timestamps come from `rtptime::Timing`: arrival of a stream's first
//!   frame plus the RTP timestamp's advance since it, per stream, on one
//!   monotonic clock for audio and video.
//! - Once an RTCP sender report arrived for a stream, its frames carry the
//!   camera's NTP time.
//! - Video is 4-byte length-prefixed NAL units with the parameter sets in
//!   the sample entry (avcC/hvcC), as h264parse/h265parse give it.
//! - A failure ends the connection with one sentence for the supervisor,
//!   with credentials never in it.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use retina::client::{self, PlayOptions, SessionOptions, SetupOptions, TcpTransportOptions};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};
use tokio::sync::oneshot;

use crate::clock::Clocks;
use crate::config::{Camera, redact_url};
use crate::mp4;

use super::rtptime::Timing;
use super::segmenter::{Frame, Kind, Payload, Segmenter};
use super::tracks::{Choice, Chosen, TrackChooser};

/// One connection's task. Dropping it does not stop it: call `stop`.
pub struct RetinaSource {
    stop: Option<oneshot::Sender<()>>,
    ended: Option<oneshot::Receiver<()>>,
}

impl RetinaSource {
    /// Connects in a task of the ingest runtime (the caller's); frames go
    /// to `segmenter`, `on_frame` is called after each, and `on_failure`
    /// once with why the connection ended (not called when stopped).
    pub fn start(
        camera: &Camera,
        segmenter: Arc<Mutex<Segmenter>>,
        clocks: Arc<dyn Clocks>,
        on_frame: Arc<dyn Fn() + Send + Sync>,
        on_failure: Box<dyn FnOnce(String) + Send>,
    ) -> RetinaSource {
        let (stop, stopped) = oneshot::channel();
        let (done, ended) = oneshot::channel();
        let mut reader = Reader {
            camera: camera.clone(),
            segmenter,
            clocks,
            on_frame,
            origin: Instant::now(),
            timing: Vec::new(),
            h265: false,
        };
        tokio::spawn(async move {
            let ended = tokio::select! {
                _ = stopped => None,
                r = reader.run() => Some(r),
            };
            if let Some(reason) = ended {
                on_failure(redact_url(&reason));
            }
            // The reader (and its session) is dropped before `stop` returns.
            drop(reader);
            let _ = done.send(());
        });
        RetinaSource {
            stop: Some(stop),
            ended: Some(ended),
        }
    }

    /// Ends the connection and waits until its task has let go of it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(ended) = self.ended.take() {
            // An error means the task is gone already (it panicked).
            let _ = ended.await;
        }
    }
}

struct Reader {
    camera: Camera,
    segmenter: Arc<Mutex<Segmenter>>,
    clocks: Arc<dyn Clocks>,
    on_frame: Arc<dyn Fn() + Send + Sync>,
    /// Arrival times are nanoseconds since this instant.
    origin: Instant,
    /// Per stream index of the session (only set-up streams are used).
    timing: Vec<Timing>,
    /// The video is H.265.
    h265: bool,
}

impl Reader {
    /// Runs the connection until it fails; returns why.
    async fn run(&mut self) -> String {
        match self.session().await {
            Ok(()) => "the camera ended the stream".into(),
            Err(e) => e,
        }
    }

    async fn session(&mut self) -> Result<(), String> {
        let url = url::Url::parse(&self.camera.url)
            .map_err(|e| format!("the camera's URL is not valid: {e}"))?;
        let creds = self
            .camera
            .credentials
            .as_ref()
            .map(|c| client::Credentials {
                username: c.username().to_owned(),
                password: c.password().to_owned(),
            });
        let options = SessionOptions::default()
            .creds(creds)
            .user_agent(format!("Custos/{}", env!("CARGO_PKG_VERSION")));
        let mut session = client::Session::describe(url, options)
            .await
            .map_err(|e| describe_error(&e))?;
        let chosen = self.choose(session.streams())?;
        self.h265 = session.streams()[chosen.video].encoding_name() == "h265";
        for i in std::iter::once(chosen.video).chain(chosen.audio) {
            session
                .setup(
                    i,
                    SetupOptions::default()
                        .transport(client::Transport::Tcp(TcpTransportOptions::default()))
                        .frame_format(FrameFormat::MP4),
                )
                .await
                .map_err(|e| describe_error(&e))?;
        }
        self.timing = session
            .streams()
            .iter()
            .map(|s| Timing::with_clock_rate(s.clock_rate_hz()))
            .collect();
        let mut demuxed = session
            .play(PlayOptions::default())
            .await
            .map_err(|e| describe_error(&e))?
            .demuxed()
            .map_err(|e| describe_error(&e))?;
        let mut format_set = false;
        while let Some(item) = demuxed.next().await {
            match item.map_err(|e| describe_error(&e))? {
                CodecItem::VideoFrame(f) => {
                    // The format of the previous connection may differ: set
                    // it at the first frame, and whenever the camera changes it.
                    if f.has_new_parameters() || !format_set {
                        let spec = video_spec(demuxed.streams().get(f.stream_id()))?;
                        self.segmenter.lock().unwrap().video_format(spec);
                        format_set = true;
                    }
                    let stream = f.stream_id();
                    let ts = f.timestamp().timestamp() as u32;
                    // retina 0.4 counts only IDR pictures as H.265 random
                    // access points; CRA and BLA (all IRAP) are key frames too.
                    let keyframe = f.is_random_access_point() || (self.h265 && h265_irap(f.data()));
                    let data = bytes::Bytes::from(f.into_data());
                    self.push(stream, Kind::Video, ts, None, keyframe, data);
                }
                CodecItem::AudioFrame(f) => {
                    let rate = f.timestamp().clock_rate().get();
                    let duration_ns =
                        u64::from(f.frame_length().get()) * 1_000_000_000 / u64::from(rate);
                    let ts = f.timestamp().timestamp() as u32;
                    let data = bytes::Bytes::copy_from_slice(f.data());
                    self.push(
                        f.stream_id(),
                        Kind::Audio,
                        ts,
                        Some(duration_ns),
                        true,
                        data,
                    );
                }
                CodecItem::Rtcp(rtcp) => {
                    let Some(timing) = self.timing.get_mut(rtcp.stream_id()) else {
                        continue;
                    };
                    for pkt in rtcp.pkts() {
                        if let Ok(Some(sr)) = pkt.as_sender_report() {
                            timing.sender_report(sr.rtp_timestamp(), sr.ntp_timestamp().0);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The streams to record (`tracks`); the audio one is declared to the
    /// segmenter.
    fn choose(&self, streams: &[client::Stream]) -> Result<Chosen, String> {
        let mut chooser = TrackChooser::new(&self.camera.id, self.camera.audio);
        for (i, s) in streams.iter().enumerate() {
            if let Choice::Audio(spec) =
                chooser.offer(i, s.media(), s.encoding_name(), || audio_spec(s))
            {
                self.segmenter.lock().unwrap().expect_audio(spec);
            }
        }
        chooser.finish()
    }

    fn push(
        &mut self,
        stream: usize,
        kind: Kind,
        ts: u32,
        duration_ns: Option<u64>,
        keyframe: bool,
        data: bytes::Bytes,
    ) {
        let arrival_us = self.clocks.realtime();
        let arrival_ns = self.origin.elapsed().as_nanos() as u64;
        let Some(stamp) = self
            .timing
            .get_mut(stream)
            .and_then(|t| t.stamp(ts, arrival_ns))
        else {
            return;
        };
        self.segmenter.lock().unwrap().push(Frame {
            kind,
            dts_ns: stamp.pts_ns,
            pts_ns: stamp.pts_ns,
            duration_ns,
            keyframe,
            data: Payload::Bytes(data),
            arrival_us,
            ntp_us: stamp.ntp_ns.map(ntp_ns_to_unix_us),
        });
        (self.on_frame)();
    }
}

/// Whether an H.265 access unit (4-byte length-prefixed NAL units) holds an
/// IRAP picture: a VCL NAL unit of type 16 (BLA_W_LP) to 23.
fn h265_irap(mut au: &[u8]) -> bool {
    while let Some((len, rest)) = au.split_first_chunk::<4>() {
        let Some(nal) = rest.get(..u32::from_be_bytes(*len) as usize) else {
            return false;
        };
        if nal
            .first()
            .is_some_and(|h| (16..=23).contains(&((h >> 1) & 0x3f)))
        {
            return true;
        }
        au = &rest[nal.len()..];
    }
    false
}

/// Nanoseconds since 1900 (NTP's epoch) as microseconds since 1970.
fn ntp_ns_to_unix_us(ntp_ns: u64) -> i64 {
    const NTP_TO_UNIX_S: i64 = 2_208_988_800;
    (ntp_ns / 1000) as i64 - NTP_TO_UNIX_S * 1_000_000
}

/// The MP4 track for a video stream's current parameters.
fn video_spec(stream: Option<&client::Stream>) -> Result<mp4::TrackSpec, String> {
    let stream = stream.ok_or("a video frame from an unknown stream")?;
    let Some(ParametersRef::Video(p)) = stream.parameters() else {
        return Err("the camera's video has no codec configuration (SPS/PPS)".into());
    };
    let config = p.extra_data().to_vec();
    let codec = match stream.encoding_name() {
        "h265" => mp4::Codec::H265 { hvcc: config },
        _ => mp4::Codec::H264 { avcc: config },
    };
    let (width, height) = p.pixel_dimensions();
    let clamp = |v: u32| v.min(u32::from(u16::MAX)) as u16;
    Ok(mp4::TrackSpec::video(codec, clamp(width), clamp(height)))
}

/// The MP4 track for an audio stream, from the SDP.
fn audio_spec(stream: &client::Stream) -> Option<mp4::TrackSpec> {
    let rate = stream.clock_rate_hz();
    let codec = match stream.encoding_name() {
        "mpeg4-generic" => match stream.parameters()? {
            ParametersRef::Audio(p) => mp4::Codec::Aac {
                asc: p.extra_data().to_vec(),
            },
            _ => return None,
        },
        "pcma" => mp4::Codec::Pcma,
        "pcmu" => mp4::Codec::Pcmu,
        _ => return None,
    };
    let channels = stream.channels().map_or(1, |c| c.get());
    Some(mp4::TrackSpec::audio(codec, rate, channels))
}

/// A retina error as one line. Retina's messages are multi-line with
/// connection details; the first line says what happened.
fn describe_error(e: &retina::Error) -> String {
    let text = e.to_string();
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    first.unwrap_or("the RTSP connection failed").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn au(types: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &t in types {
            out.extend_from_slice(&3u32.to_be_bytes());
            out.extend_from_slice(&[t << 1, 1, 0xaf]);
        }
        out
    }

    #[test]
    fn h265_key_frames_are_irap_pictures() {
        assert!(h265_irap(&au(&[21])), "CRA");
        assert!(h265_irap(&au(&[19])), "IDR_W_RADL");
        assert!(h265_irap(&au(&[39, 16])), "SEI then BLA_W_LP");
        assert!(!h265_irap(&au(&[1])), "TRAIL_R");
        assert!(!h265_irap(&au(&[39, 1, 0])), "SEI, TRAIL_R, TRAIL_N");
        assert!(!h265_irap(&[0, 0, 0, 9, 42]), "truncated");
        assert!(!h265_irap(&[]), "empty");
    }

    #[test]
    fn ntp_time_converts_to_unix_microseconds() {
        // 1 January 1970 is 2 208 988 800 s after NTP's epoch.
        assert_eq!(ntp_ns_to_unix_us(2_208_988_800_000_000_000), 0);
        assert_eq!(ntp_ns_to_unix_us(2_208_988_801_500_000_000), 1_500_000);
    }
}
