//! The reviewer's choice and what it means for each frame: which tracks
//! stay visible (the requester's), the manual masks for what detection
//! missed, and the modes.
//!
//! Invariants:
//! - Every track not kept is masked at every frame of its span, and for
//!   [`EDGE_FRAMES`] frames before its first sighting and after its last
//!   (at the box it had there): a face is often found a few frames after
//!   it entered, and lost a few before it left.
//! - A manual mask with one key time covers the whole range at that box;
//!   with more, it covers its first to its last key time, its box
//!   interpolated linearly between keys.
//! - In keep-only mode everything outside the kept tracks' boxes (with
//!   their margin) is filled; a frame where no kept track has a box is
//!   filled whole.

use serde::{Deserialize, Serialize};

use super::detect::FaceBox;
use super::mask;
use super::track::Track;
use crate::{Error, Result};

/// Frames a mask is carried before a track's first sighting and after its
/// last.
pub const EDGE_FRAMES: usize = 5;

/// What the reviewer chose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// Tracks left visible: the requester's.
    #[serde(default)]
    pub keep: Vec<u32>,
    /// Boxes for what detection missed: plates, bodies, faces turned away.
    #[serde(default)]
    pub masks: Vec<ManualMask>,
    /// Fill everything outside the kept tracks' boxes.
    #[serde(default)]
    pub keep_only: bool,
    /// Keep the sound (it may identify others: on purpose only).
    #[serde(default)]
    pub keep_audio: bool,
    /// Around each box, on each side, as a fraction of its size.
    #[serde(default = "default_margin")]
    pub margin: f32,
}

fn default_margin() -> f32 {
    mask::DEFAULT_MARGIN
}

/// A box the reviewer drew, at key times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualMask {
    pub keys: Vec<Key>,
}

/// A manual box at one time, in the source's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Key {
    pub at_us: i64,
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Choice {
    /// Checks the choice against the tracks found and the picture size.
    pub fn check(&self, tracks: &[Track], width: u32, height: u32) -> Result<()> {
        for id in &self.keep {
            if !tracks.iter().any(|t| t.id == *id) {
                return Err(Error::invalid(format!(
                    "there is no track {id}; the tracks are 1 to {} (see the review sheet: \
                     custosctl redaction sheet)",
                    tracks.len()
                )));
            }
        }
        if self.keep_only && self.keep.is_empty() {
            return Err(Error::invalid(
                "keep-only fills everything outside the requester's box: name the \
                 requester's track with --keep",
            ));
        }
        if !(0.0..=1.0).contains(&self.margin) {
            return Err(Error::invalid(
                "the margin is a fraction of a box's size on each side, 0 to 1 (default 0.25)",
            ));
        }
        for m in &self.masks {
            if m.keys.is_empty() {
                return Err(Error::invalid("a manual mask needs at least one key time"));
            }
            if m.keys.windows(2).any(|k| k[1].at_us <= k[0].at_us) {
                return Err(Error::invalid(
                    "a manual mask's key times must be in order, each after the one before",
                ));
            }
            for k in &m.keys {
                if k.w == 0 || k.h == 0 || k.x + k.w > width || k.y + k.h > height {
                    return Err(Error::invalid(format!(
                        "a manual box {}x{} at ({}, {}) does not lie within the {width}x{height} \
                         picture",
                        k.w, k.h, k.x, k.y
                    )));
                }
            }
        }
        Ok(())
    }
}

impl ManualMask {
    /// The box at `at_us` as fractions of a `w`×`h` frame, if the mask
    /// covers that time.
    pub fn at(&self, at_us: i64, w: u32, h: u32) -> Option<FaceBox> {
        let frac = |k: &Key| FaceBox {
            x0: k.x as f32 / w as f32,
            y0: k.y as f32 / h as f32,
            x1: (k.x + k.w) as f32 / w as f32,
            y1: (k.y + k.h) as f32 / h as f32,
            score: 1.0,
        };
        match self.keys.as_slice() {
            [] => None,
            [one] => Some(frac(one)),
            keys => {
                let i = keys
                    .windows(2)
                    .position(|k| at_us >= k[0].at_us && at_us <= k[1].at_us)?;
                let (a, b) = (&keys[i], &keys[i + 1]);
                let t = (at_us - a.at_us) as f32 / (b.at_us - a.at_us) as f32;
                let (fa, fb) = (frac(a), frac(b));
                let m = |x: f32, y: f32| x + (y - x) * t;
                Some(FaceBox {
                    x0: m(fa.x0, fb.x0),
                    y0: m(fa.y0, fb.y0),
                    x1: m(fa.x1, fb.x1),
                    y1: m(fa.y1, fb.y1),
                    score: 1.0,
                })
            }
        }
    }
}

/// What one frame gets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameMasks {
    /// Boxes to fill (with their margin).
    pub fill: Vec<FaceBox>,
    /// Keep-only: boxes to leave (with their margin); everything else is
    /// filled.
    pub keep_only: Option<Vec<FaceBox>>,
    /// Masked tracks whose box here was interpolated or carried (not
    /// detected), and those detected with a low score: for the review.
    pub lost: Vec<u32>,
    pub low: Vec<u32>,
}

/// Below this score a detection is marked for the reviewer.
pub const LOW_SCORE: f32 = 0.5;

/// The masks of frame `frame` (shown at `at_us`) of a `w`×`h` picture.
pub fn frame_masks(
    choice: &Choice,
    tracks: &[Track],
    frame: usize,
    at_us: i64,
    (w, h): (u32, u32),
) -> FrameMasks {
    let mut out = FrameMasks::default();
    let mut kept = Vec::new();
    for t in tracks {
        let keep = choice.keep.contains(&t.id);
        let (b, detected) = match t.at(frame) {
            Some(b) => (b.face, b.detected),
            None if frame < t.first_frame() && t.first_frame() - frame <= EDGE_FRAMES => {
                (t.boxes[0].face, false)
            }
            None if frame > t.last_frame() && frame - t.last_frame() <= EDGE_FRAMES => {
                (t.boxes[t.boxes.len() - 1].face, false)
            }
            None => continue,
        };
        let grown = mask::grown(&b, choice.margin);
        if keep {
            kept.push(grown);
            continue;
        }
        out.fill.push(grown);
        if !detected {
            out.lost.push(t.id);
        } else if b.score < LOW_SCORE {
            out.low.push(t.id);
        }
    }
    for m in &choice.masks {
        if let Some(b) = m.at(at_us, w, h) {
            out.fill.push(b);
        }
    }
    if choice.keep_only {
        out.keep_only = Some(kept);
    }
    out
}

/// Burns `masks` into a packed RGB frame.
pub fn apply(rgb: &mut [u8], w: u32, h: u32, masks: &FrameMasks) {
    if let Some(keep) = &masks.keep_only {
        mask::fill_outside(rgb, w, h, keep, mask::FILL);
    }
    for b in &masks.fill {
        mask::fill(rgb, w, h, b, mask::FILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::track::TrackBox;

    fn face(x: f32) -> FaceBox {
        FaceBox {
            x0: x,
            y0: 0.4,
            x1: x + 0.1,
            y1: 0.5,
            score: 0.9,
        }
    }

    fn track(id: u32, first: usize, n: usize) -> Track {
        Track {
            id,
            boxes: (0..n)
                .map(|i| TrackBox {
                    frame: first + i,
                    face: face(0.1 + i as f32 * 0.01),
                    detected: i != 2,
                })
                .collect(),
        }
    }

    fn choice(keep: &[u32]) -> Choice {
        Choice {
            keep: keep.to_vec(),
            masks: Vec::new(),
            keep_only: false,
            keep_audio: false,
            margin: 0.25,
        }
    }

    #[test]
    fn masked_tracks_carry_over_their_edges_and_kept_ones_stay_clear() {
        let tracks = [track(1, 10, 5), track(2, 10, 5)];
        let c = choice(&[2]);
        let at = |f| frame_masks(&c, &tracks, f, 0, (100, 100));
        assert_eq!(at(12).fill.len(), 1, "only track 1 is masked");
        assert_eq!(at(12).lost, [1], "its interpolated frame is marked");
        assert_eq!(at(5).fill.len(), 1, "five frames before the first sighting");
        assert!(at(4).fill.is_empty());
        assert_eq!(at(19).fill.len(), 1, "five frames after the last");
        assert!(at(20).fill.is_empty());
    }

    #[test]
    fn a_manual_mask_is_interpolated_between_its_keys() {
        let m = ManualMask {
            keys: vec![
                Key {
                    at_us: 0,
                    x: 0,
                    y: 0,
                    w: 10,
                    h: 10,
                },
                Key {
                    at_us: 1_000_000,
                    x: 40,
                    y: 20,
                    w: 10,
                    h: 10,
                },
            ],
        };
        let b = m.at(500_000, 100, 100).unwrap();
        assert!((b.x0 - 0.2).abs() < 1e-6 && (b.y0 - 0.1).abs() < 1e-6);
        assert!(m.at(1_000_001, 100, 100).is_none());
        assert!(m.at(-1, 100, 100).is_none());
    }

    #[test]
    fn a_choice_names_real_tracks_and_boxes_inside_the_picture() {
        let tracks = [track(1, 0, 3)];
        assert!(choice(&[1]).check(&tracks, 100, 100).is_ok());
        let e = choice(&[3]).check(&tracks, 100, 100).unwrap_err();
        assert!(e.to_string().contains("no track 3"), "{e}");
        let mut c = choice(&[]);
        c.keep_only = true;
        assert!(c.check(&tracks, 100, 100).is_err());
        let mut c = choice(&[]);
        c.masks.push(ManualMask {
            keys: vec![Key {
                at_us: 0,
                x: 95,
                y: 0,
                w: 10,
                h: 10,
            }],
        });
        assert!(c.check(&tracks, 100, 100).is_err());
    }
}
