//! Whether a file is footage Custos can keep, and when it was recorded.
//! Parsed with Custos's own reader (`mp4::read`), which reads MP4 and
//! QuickTime MOV alike: a complete `moov`, an H.264 or H.265 video track
//! with frames, no trailing bytes. The start comes from the `mvhd`
//! creation time, else the file name; both are civil times of the
//! device's clock, put into UTC with the device's zone. A start in the
//! future, before the device was registered or before 2000 (a clock that
//! was reset) is implausible: the file is refused, not dated by guess.

use std::path::Path;

use crate::config::{AudioPolicy, Device, Zone};
use crate::index::{MAX_DEVICE_FILE_US, TimeSource};
use crate::mp4;

/// Seconds from 1904-01-01 (the MP4 epoch) to 1970-01-01.
const MP4_EPOCH_OFFSET: u64 = 2_082_844_800;

/// Later than this past the server's clock is "in the future": device
/// clocks drift, but not by this much.
const FUTURE_SLACK_US: i64 = 10 * 60 * 1_000_000;

/// 2000-01-01T00:00:00Z: earlier starts come from a reset clock.
const EARLIEST_US: i64 = 946_684_800_000_000;

/// What a valid device file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footage {
    pub start_us: i64,
    pub end_us: i64,
    pub frames: u64,
    pub key_frames: u64,
    pub video_codec: String,
    pub audio_codec: Option<String>,
    pub time_source: TimeSource,
    /// See [`Content::activity`].
    pub activity: Vec<u32>,
}

/// What the file's bytes hold: tracks, frames, duration and the `mvhd`
/// creation time (seconds since 1970 by the device's civil clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub duration_us: i64,
    pub frames: u64,
    pub key_frames: u64,
    pub video_codec: String,
    pub audio_codec: Option<String>,
    pub created_civil_s: Option<i64>,
    /// Non-key video bytes per second, as the recorder counts them for
    /// cameras (`custosctl activity`).
    pub activity: Vec<u32>,
}

/// Reads the file; `Err` is the reason it is not keepable footage.
pub fn content(path: &Path) -> Result<Content, String> {
    let file = super::store::open_no_follow(path).map_err(|e| format!("cannot be read: {e}"))?;
    let info = mp4::read::scan(std::io::BufReader::new(file))
        .map_err(|e| format!("not an MP4/MOV file Custos can read: {}", e.message))?;
    if info.complete_len == 0 {
        return Err(
            "not an MP4/MOV file, or not a finished one: no complete movie header (moov) was found"
                .to_owned(),
        );
    }
    if info.truncated {
        return Err(format!(
            "the file is cut off or has trailing bytes after byte {}",
            info.complete_len
        ));
    }
    let Some(video) = info.tracks.iter().find(|t| t.codec.is_video()) else {
        return Err("no H.264 or H.265 video track".to_owned());
    };
    let frames = info.frame_count(video.id) as u64;
    if frames == 0 {
        return Err("the video track holds no frames".to_owned());
    }
    if video.timescale == 0 {
        return Err("the video track has a timescale of 0".to_owned());
    }
    let ticks = info.total_duration(video.id);
    let duration_us = i64::try_from(u128::from(ticks) * 1_000_000 / u128::from(video.timescale))
        .map_err(|_| "the video track's duration is out of range".to_owned())?;
    if duration_us <= 0 {
        return Err("the video track's duration is 0".to_owned());
    }
    if duration_us > MAX_DEVICE_FILE_US {
        return Err(format!(
            "the recording lasts {} s, longer than the {} h one device file may last; have the \
             device (or its docking software) split recordings into shorter files",
            duration_us / 1_000_000,
            MAX_DEVICE_FILE_US / 3_600_000_000
        ));
    }
    let audio = info.tracks.iter().find(|t| !t.codec.is_video());
    let created_civil_s = info
        .created
        .filter(|&c| c > MP4_EPOCH_OFFSET)
        .and_then(|c| i64::try_from(c - MP4_EPOCH_OFFSET).ok());
    let samples: Vec<&mp4::SampleInfo> = info
        .samples
        .iter()
        .filter(|s| s.track == video.id)
        .collect();
    let activity = crate::recovery::activity(&samples, video.timescale);
    Ok(Content {
        activity,
        duration_us,
        frames,
        key_frames: info.keyframe_count(video.id) as u64,
        video_codec: video.codec.name().to_owned(),
        audio_codec: audio.map(|a| a.codec.name().to_owned()),
        created_civil_s,
    })
}

/// Dates the content and checks it against the device and zone.
pub fn footage(
    c: &Content,
    device: &Device,
    zone: &Zone,
    name_time: Option<jiff::civil::DateTime>,
    now_us: i64,
) -> Result<Footage, String> {
    if c.audio_codec.is_some() && zone.audio == AudioPolicy::Forbidden {
        return Err(format!(
            "the file has sound, and zone \"{}\" forbids recording sound (001 §19); set the device to \
             record without sound, or audio = \"allowed\" in that zone if its rules permit it",
            zone.id
        ));
    }
    let (civil, source) = match (c.created_civil_s, name_time) {
        (Some(s), _) => {
            let ts = jiff::Timestamp::from_second(s)
                .map_err(|e| format!("the creation time in the file is out of range: {e}"))?;
            (
                ts.to_zoned(jiff::tz::TimeZone::UTC).datetime(),
                TimeSource::Metadata,
            )
        }
        (None, Some(t)) => (t, TimeSource::FileName),
        (None, None) => {
            return Err(
                "no recording time: the file's creation time (mvhd) is not set and the inbox has no \
                 file-name pattern with {YYYYMMDD}_{HHMMSS}"
                    .to_owned(),
            );
        }
    };
    let start = civil
        .to_zoned(device.timezone.clone())
        .map_err(|e| {
            format!("the recording time {civil} does not exist in the device's zone: {e}")
        })?
        .timestamp()
        .as_microsecond();
    let what = match source {
        TimeSource::Metadata => "creation time",
        _ => "time in the file name",
    };
    let shown = format!("{civil} ({})", device.timezone_name);
    if start > now_us.saturating_add(FUTURE_SLACK_US) {
        return Err(format!(
            "implausible time: the {what} {shown} is in the future; check the device's clock and \
             its timezone in the config"
        ));
    }
    if start < EARLIEST_US {
        return Err(format!(
            "implausible time: the {what} {shown} is before 2000, as from a clock that was reset; \
             set the device's clock"
        ));
    }
    if let Some(day) = device.registered {
        let from = day
            .to_zoned(device.timezone.clone())
            .map(|z| z.timestamp().as_microsecond())
            .unwrap_or(i64::MIN);
        if start < from {
            return Err(format!(
                "implausible time: the {what} {shown} is before the device was registered ({day}); \
                 check the device's clock"
            ));
        }
    }
    Ok(Footage {
        start_us: start,
        end_us: start + c.duration_us,
        frames: c.frames,
        key_frames: c.key_frames,
        video_codec: c.video_codec.clone(),
        audio_codec: c.audio_codec.clone(),
        time_source: source,
        activity: c.activity.clone(),
    })
}
