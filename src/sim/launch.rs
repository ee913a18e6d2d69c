//! The `gst-launch` descriptions the simulator builds, in one place so they
//! can be read side by side and checked without a server.
//!
//! Every served media names its video payloader `pay0` and its audio
//! payloader `pay1` (the RTSP server's convention); in clip mode the sources
//! are `appsrc`s named `vsrc` and `asrc`. Encoded video leaves the parser as
//! `stream-format=avc|hvc1,alignment=au`, so one buffer is one access unit
//! and the payloader takes SPS/PPS from `codec_data` (`config-interval=-1`
//! repeats them before every key frame).

use super::{SimAudio, SimCamera, SimCodec};

/// Name of the video payloader in every served media.
pub(super) const VIDEO_PAYLOADER: &str = "pay0";
/// Name of the audio payloader in every served media.
pub(super) const AUDIO_PAYLOADER: &str = "pay1";
/// Name of the video `appsrc` in a clip-mode media.
pub(super) const VIDEO_APPSRC: &str = "vsrc";
/// Name of the audio `appsrc` in a clip-mode media.
pub(super) const AUDIO_APPSRC: &str = "asrc";
/// Name of the `videotestsrc` of a live-mode media (its pattern is switched
/// to make the camera still or moving).
pub(super) const LIVE_VIDEO_SOURCE: &str = "vtest";
/// The live pattern while moving, and while still: a black picture costs
/// an encoder almost nothing beyond the burnt-in clock, the moving ball
/// several times that (what an activity estimate measures).
pub(super) const MOVING_PATTERN: &str = "ball";
pub(super) const STILL_PATTERN: &str = "black";

/// Name of the `appsink` that collects an encoded clip.
pub(super) const CLIP_APPSINK: &str = "sink";

/// Live mode: a moving test pattern with the wall-clock date and time and the
/// stream's running time burnt in, encoded as the camera asks, plus a tone.
pub(super) fn live(camera: &SimCamera) -> String {
    let mut desc = format!(
        "videotestsrc name={LIVE_VIDEO_SOURCE} is-live=true pattern={MOVING_PATTERN} ! {raw} \
         ! clockoverlay time-format=\"%Y-%m-%d %H:%M:%S\" halignment=left valignment=top \
           shaded-background=true \
         ! timeoverlay halignment=right valignment=bottom shaded-background=true \
         ! {encode}{delay} ! {payload}",
        raw = raw_video_caps(camera),
        encode = video_encoder(camera),
        delay = latency(camera),
        payload = video_payloader(camera.codec),
    );
    if camera.audio != SimAudio::None {
        desc.push_str(&format!(
            " audiotestsrc is-live=true wave=sine freq=440 samplesperbuffer={spf} ! {raw} ! {encode}{delay} ! {payload}",
            spf = audio_samples_per_buffer(camera.audio),
            raw = raw_audio_caps(camera.audio),
            encode = audio_encoder(camera.audio),
            delay = latency(camera),
            payload = audio_payloader(camera.audio),
        ));
    }
    desc
}

/// Clip mode, encoding once: `frames` frames of a busy moving pattern (a zone
/// plate, which makes the encoder spend about the configured bit rate, unlike
/// a ball on black) with the clip position burnt in, into an `appsink`.
pub(super) fn clip_video(camera: &SimCamera, frames: u32) -> String {
    format!(
        "videotestsrc num-buffers={frames} pattern=zone-plate kt=2 kx2=20 ky2=20 ! {raw} \
         ! timeoverlay halignment=right valignment=bottom shaded-background=true \
         ! {encode} ! appsink name={CLIP_APPSINK} sync=false",
        raw = raw_video_caps(camera),
        encode = video_encoder(camera),
    )
}

/// Clip mode, encoding once: `buffers` buffers of the 440 Hz tone into an
/// `appsink`.
pub(super) fn clip_audio(audio: SimAudio, buffers: u32) -> String {
    format!(
        "audiotestsrc num-buffers={buffers} wave=sine freq=440 samplesperbuffer={spf} ! {raw} \
         ! {encode} ! appsink name={CLIP_APPSINK} sync=false",
        spf = audio_samples_per_buffer(audio),
        raw = raw_audio_caps(audio),
        encode = audio_encoder(audio),
    )
}

/// Clip mode, serving: `appsrc`s straight into the payloaders. The caps are
/// set on the `appsrc`s when the media is configured. The queue is bounded
/// and drops the oldest buffers: while the server holds a prepared media
/// blocked (between DESCRIBE and PLAY) nothing downstream drains it.
pub(super) fn clip_serve(camera: &SimCamera) -> String {
    let appsrc = "is-live=true format=time do-timestamp=false emit-signals=false \
                  max-bytes=0 max-time=1000000000 leaky-type=downstream \
                  min-latency=0 max-latency=1000000000";
    let mut desc = format!(
        "appsrc name={VIDEO_APPSRC} {appsrc}{delay} ! {payload}",
        delay = latency(camera),
        payload = video_payloader(camera.codec)
    );
    if camera.audio != SimAudio::None {
        desc.push_str(&format!(
            " appsrc name={AUDIO_APPSRC} {appsrc}{delay} ! {payload}",
            delay = latency(camera),
            payload = audio_payloader(camera.audio)
        ));
    }
    desc
}

/// A queue that holds every buffer for the camera's latency before the
/// payloader (timestamps unchanged, so they still say when it was captured);
/// nothing when the latency is 0.
fn latency(camera: &SimCamera) -> String {
    if camera.latency_ms == 0 {
        return String::new();
    }
    format!(
        " ! queue min-threshold-time={} max-size-time=0 max-size-buffers=0 max-size-bytes=0",
        u64::from(camera.latency_ms) * 1_000_000
    )
}

fn raw_video_caps(camera: &SimCamera) -> String {
    // I420 on purpose: left to negotiate, x264enc may pick a 4:4:4 profile
    // that many players cannot decode.
    format!(
        "video/x-raw,format=I420,width={},height={},framerate={}/1",
        camera.width, camera.height, camera.fps
    )
}

/// Encoder, parser and the caps that make one buffer one access unit. Key
/// frames come every `keyframe_interval_frames` and at no other time
/// (scene-cut detection off), with no B-frames (`zerolatency`).
fn video_encoder(camera: &SimCamera) -> String {
    let gop = camera.keyframe_interval_frames;
    let kbps = camera.bitrate_kbps;
    match camera.codec {
        SimCodec::H264 => format!(
            "x264enc tune=zerolatency speed-preset=ultrafast bitrate={kbps} key-int-max={gop} \
               option-string=\"scenecut=0\" \
             ! video/x-h264,profile=main ! h264parse \
             ! video/x-h264,stream-format=avc,alignment=au"
        ),
        SimCodec::H265 => format!(
            "x265enc tune=zerolatency speed-preset=ultrafast bitrate={kbps} key-int-max={gop} \
               option-string=\"keyint={gop}:min-keyint={gop}:scenecut=0\" \
             ! video/x-h265,profile=main ! h265parse \
             ! video/x-h265,stream-format=hvc1,alignment=au"
        ),
    }
}

fn video_payloader(codec: SimCodec) -> String {
    let element = match codec {
        SimCodec::H264 => "rtph264pay",
        SimCodec::H265 => "rtph265pay",
    };
    format!("{element} name={VIDEO_PAYLOADER} pt=96 config-interval=-1")
}

/// Sample rate of the audio track: 8 kHz for G.711, 16 kHz for AAC (what
/// cameras commonly send).
pub(super) fn audio_rate(audio: SimAudio) -> u32 {
    match audio {
        SimAudio::Aac => 16_000,
        SimAudio::None | SimAudio::Pcma | SimAudio::Pcmu => 8_000,
    }
}

/// One AAC frame, or 20 ms of G.711.
pub(super) fn audio_samples_per_buffer(audio: SimAudio) -> u32 {
    match audio {
        SimAudio::Aac => 1024,
        SimAudio::None | SimAudio::Pcma | SimAudio::Pcmu => 160,
    }
}

fn raw_audio_caps(audio: SimAudio) -> String {
    format!(
        "audio/x-raw,format=S16LE,rate={},channels=1",
        audio_rate(audio)
    )
}

fn audio_encoder(audio: SimAudio) -> &'static str {
    match audio {
        SimAudio::Aac => "voaacenc bitrate=32000",
        SimAudio::Pcma => "alawenc",
        SimAudio::Pcmu => "mulawenc",
        SimAudio::None => unreachable!("no encoder for a camera without audio"),
    }
}

fn audio_payloader(audio: SimAudio) -> String {
    let (element, pt) = match audio {
        SimAudio::Aac => ("rtpmp4gpay", 97),
        SimAudio::Pcma => ("rtppcmapay", 8),
        SimAudio::Pcmu => ("rtppcmupay", 0),
        SimAudio::None => unreachable!("no payloader for a camera without audio"),
    };
    format!("{element} name={AUDIO_PAYLOADER} pt={pt}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera(codec: SimCodec, audio: SimAudio) -> SimCamera {
        SimCamera {
            codec,
            audio,
            ..SimCamera::new("c")
        }
    }

    #[test]
    fn live_h264_forces_i420_and_one_gop_length() {
        let d = live(&camera(SimCodec::H264, SimAudio::None));
        assert!(
            d.contains("format=I420,width=320,height=240,framerate=25/1"),
            "{d}"
        );
        assert!(d.contains("key-int-max=50"), "{d}");
        assert!(d.contains("scenecut=0"), "{d}");
        assert!(d.contains("rtph264pay name=pay0"), "{d}");
        assert!(!d.contains("pay1"), "{d}");
    }

    #[test]
    fn h265_sets_keyint_in_x265_options() {
        let d = live(&camera(SimCodec::H265, SimAudio::Aac));
        assert!(d.contains("keyint=50:min-keyint=50:scenecut=0"), "{d}");
        assert!(d.contains("rtph265pay name=pay0"), "{d}");
        assert!(
            d.contains("voaacenc") && d.contains("rtpmp4gpay name=pay1"),
            "{d}"
        );
    }

    #[test]
    fn latency_holds_buffers_before_each_payloader() {
        let mut c = camera(SimCodec::H264, SimAudio::Pcma);
        assert!(!live(&c).contains("queue"));
        c.latency_ms = 300;
        for d in [live(&c), clip_serve(&c)] {
            let q = "queue min-threshold-time=300000000";
            assert_eq!(d.matches(q).count(), 2, "{d}");
            assert!(
                d.contains(&format!(
                    "{q} max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! rtph264pay"
                )),
                "{d}"
            );
        }
    }

    #[test]
    fn clip_serving_has_no_encoder() {
        let d = clip_serve(&camera(SimCodec::H264, SimAudio::Pcmu));
        assert!(
            !["x264enc", "mulawenc"].iter().any(|e| d.contains(e)),
            "{d}"
        );
        assert!(
            d.contains("appsrc name=vsrc") && d.contains("appsrc name=asrc"),
            "{d}"
        );
        assert!(d.contains("rtppcmupay name=pay1 pt=0"), "{d}");
    }
}
