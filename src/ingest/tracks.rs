//! Which of the streams a camera offers are recorded, for both RTSP clients:
//! the first H.264/H.265 video stream, and the first AAC/PCMA/PCMU audio
//! stream when the camera records audio. Each client turns its own stream
//! description (GStreamer caps, a retina `Stream`) into an offer; the rules
//! and the sentences a person reads live only here.
//!
//! Invariants: at most one video and one audio stream are taken; a refused
//! stream is logged once, with what to change; a later stream of a kind
//! already taken is skipped without a word.

/// What to do with one offered stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Choice<A> {
    /// Record it as the video track.
    Video,
    /// Record it as the audio track, described by `A`.
    Audio(A),
    /// Not recorded, and nothing to tell (not wanted, or a kind already taken).
    Skip,
    /// Not recorded, because Custos cannot record it; logged.
    Refused(Refusal),
}

/// Why a stream the camera offers cannot be recorded.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The first video stream is not H.264 or H.265.
    Video { encoding: String },
    /// The first audio stream (audio wanted) is not one Custos records.
    Audio { encoding: String },
}

impl Refusal {
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::Video { .. } => {
                "the camera's video is not H.264 or H.265; Custos records those without \
                 transcoding. Set the camera's encoder to H.264 or H.265"
            }
            Refusal::Audio { .. } => {
                "the camera's audio codec is not AAC, PCMA or PCMU; recording video only"
            }
        }
    }

    fn log(&self, camera: &str) {
        match self {
            Refusal::Video { encoding } => {
                tracing::error!(camera, encoding = %encoding, "{}", self.message())
            }
            Refusal::Audio { encoding } => {
                tracing::warn!(camera, encoding = %encoding, "{}", self.message())
            }
        }
    }
}

/// Why a connection cannot record at all: no stream was taken as video.
pub const NO_VIDEO: &str =
    "the camera offers no H.264 or H.265 video stream; set its encoder to H.264 or H.265";

/// The streams taken, by their number in the SDP.
#[derive(Debug, PartialEq, Eq)]
pub struct Chosen {
    pub video: usize,
    pub audio: Option<usize>,
}

/// Decides, stream by stream in the order the SDP lists them.
#[derive(Debug)]
pub struct TrackChooser {
    camera: String,
    want_audio: bool,
    video: Option<usize>,
    audio: Option<usize>,
}

impl TrackChooser {
    /// For camera `camera` (named in the log), recording audio if `want_audio`.
    pub fn new(camera: &str, want_audio: bool) -> Self {
        TrackChooser {
            camera: camera.to_owned(),
            want_audio,
            video: None,
            audio: None,
        }
    }

    /// Offered stream number `index`: its SDP media ("video", "audio", ...) and
    /// encoding name (any case), and how to describe it as an audio track;
    /// `audio_track` is called only for an audio stream that would be taken,
    /// and gives `None` when Custos cannot record that codec.
    pub fn offer<A>(
        &mut self,
        index: usize,
        media: &str,
        encoding: &str,
        audio_track: impl FnOnce() -> Option<A>,
    ) -> Choice<A> {
        let choice = match media {
            "video" if self.video.is_none() => {
                if encoding.eq_ignore_ascii_case("H264") || encoding.eq_ignore_ascii_case("H265") {
                    self.video = Some(index);
                    Choice::Video
                } else {
                    Choice::Refused(Refusal::Video {
                        encoding: encoding.to_owned(),
                    })
                }
            }
            "audio" if self.want_audio && self.audio.is_none() => match audio_track() {
                Some(track) => {
                    self.audio = Some(index);
                    Choice::Audio(track)
                }
                None => Choice::Refused(Refusal::Audio {
                    encoding: encoding.to_owned(),
                }),
            },
            _ => Choice::Skip,
        };
        if let Choice::Refused(r) = &choice {
            r.log(&self.camera);
        }
        choice
    }

    /// After the last offer: the streams taken, or `NO_VIDEO` if no video was.
    pub fn finish(&self) -> Result<Chosen, String> {
        let video = self.video.ok_or_else(|| NO_VIDEO.to_owned())?;
        Ok(Chosen {
            video,
            audio: self.audio,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> Option<u8> {
        panic!("an audio track was described though no audio stream is taken")
    }

    #[test]
    fn the_first_h264_or_h265_video_is_taken_and_a_second_skipped() {
        let mut c = TrackChooser::new("cam", false);
        assert_eq!(c.offer(0, "video", "H264", never), Choice::Video);
        assert_eq!(c.offer(1, "video", "h265", never), Choice::Skip);
        assert_eq!(
            c.finish(),
            Ok(Chosen {
                video: 0,
                audio: None
            })
        );

        let mut c = TrackChooser::new("cam", false);
        assert_eq!(c.offer(0, "video", "h265", never), Choice::Video);
    }

    #[test]
    fn mjpeg_video_is_refused_with_what_to_change() {
        let mut c = TrackChooser::new("cam", false);
        let choice = c.offer(0, "video", "JPEG", never);
        let Choice::Refused(r) = choice else {
            panic!("MJPEG was not refused: {choice:?}");
        };
        assert_eq!(
            r,
            Refusal::Video {
                encoding: "JPEG".into()
            }
        );
        assert!(
            r.message().contains("not H.264 or H.265"),
            "{}",
            r.message()
        );
        assert!(r.message().contains("Set the camera's encoder"));
        // A refused first video does not block a later H.264 one.
        assert_eq!(c.offer(1, "video", "H264", never), Choice::Video);
        assert_eq!(c.finish().map(|c| c.video), Ok(1));
    }

    #[test]
    fn audio_is_taken_only_when_wanted_and_supported() {
        let mut c = TrackChooser::new("cam", false);
        assert_eq!(c.offer(0, "video", "H264", never), Choice::Video);
        assert_eq!(c.offer(1, "audio", "PCMA", never), Choice::Skip);
        assert_eq!(c.finish().map(|c| c.audio), Ok(None));

        let mut c = TrackChooser::new("cam", true);
        assert_eq!(c.offer(0, "audio", "PCMA", || Some(1u8)), Choice::Audio(1));
        assert_eq!(
            c.offer(1, "audio", "PCMU", never),
            Choice::Skip,
            "second audio"
        );
        assert_eq!(c.offer(2, "video", "H264", never), Choice::Video);
        assert_eq!(
            c.finish(),
            Ok(Chosen {
                video: 2,
                audio: Some(0)
            })
        );

        let mut c = TrackChooser::new("cam", true);
        let choice = c.offer(0, "audio", "OPUS", || None::<u8>);
        let Choice::Refused(r) = choice else {
            panic!("Opus was not refused: {choice:?}");
        };
        assert_eq!(
            r,
            Refusal::Audio {
                encoding: "OPUS".into()
            }
        );
        assert!(
            r.message()
                .contains("not AAC, PCMA or PCMU; recording video only")
        );
        // After a refused codec, a later supported audio stream is taken.
        assert_eq!(
            c.offer(1, "audio", "mpeg4-generic", || Some(2u8)),
            Choice::Audio(2)
        );
    }

    #[test]
    fn other_media_are_skipped() {
        let mut c = TrackChooser::new("cam", true);
        assert_eq!(c.offer(0, "application", "ONVIF", never), Choice::Skip);
        assert_eq!(c.offer(1, "", "", never), Choice::Skip);
    }

    #[test]
    fn no_video_is_an_error_that_says_what_to_set() {
        let mut c = TrackChooser::new("cam", true);
        assert!(matches!(
            c.offer(0, "video", "JPEG", never),
            Choice::Refused(_)
        ));
        assert_eq!(c.offer(1, "audio", "PCMU", || Some(0u8)), Choice::Audio(0));
        assert_eq!(c.finish(), Err(NO_VIDEO.to_owned()));
        assert!(NO_VIDEO.contains("set its encoder to H.264 or H.265"));
        assert_eq!(
            TrackChooser::new("cam", false).finish(),
            Err(NO_VIDEO.into())
        );
    }
}
