//! Faces followed across frames: detections linked into tracks, and the
//! frames a track's face was briefly missed in filled by interpolation, so
//! that no frame between two sightings of a face is left without its mask.
//!
//! Invariants:
//! - Every detection belongs to exactly one track.
//! - A track has a box at every frame from its first sighting to its last:
//!   detected, or interpolated linearly between the sightings around it.
//! - Linking is greedy, nearest first, against where each track's face
//!   would be now if it kept its last velocity: a detection continues a
//!   track if its centre is within `max_shift` box sizes of the predicted
//!   centre (per axis, in the box's width and height) and its size within
//!   a factor of 2. A track not seen for more
//!   than `max_gap` frames ends, and a face seen after that starts a new
//!   one.

use super::detect::FaceBox;

/// How tracks are linked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Linking {
    /// The most frames a face may be missed and its track go on.
    pub max_gap: usize,
    /// The farthest a detection's centre may be from a track's predicted
    /// centre to continue it, in the predicted box's width and height.
    pub max_shift: f32,
}

impl Default for Linking {
    fn default() -> Self {
        Linking {
            max_gap: 12,
            max_shift: 1.0,
        }
    }
}

/// One face's box in one frame.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrackBox {
    pub frame: usize,
    pub face: FaceBox,
    /// False where the box was interpolated between sightings.
    pub detected: bool,
}

/// A face followed across frames, with a box in every frame of its span.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Track {
    /// 1, 2, ... in order of first sighting, then left to right: the
    /// number a reviewer names.
    pub id: u32,
    pub boxes: Vec<TrackBox>,
}

impl Track {
    pub fn first_frame(&self) -> usize {
        self.boxes[0].frame
    }

    pub fn last_frame(&self) -> usize {
        self.boxes[self.boxes.len() - 1].frame
    }

    /// The box at `frame`, if the track spans it.
    pub fn at(&self, frame: usize) -> Option<&TrackBox> {
        let first = self.first_frame();
        (frame >= first && frame <= self.last_frame()).then(|| &self.boxes[frame - first])
    }

    /// Frames whose box was interpolated.
    pub fn interpolated(&self) -> usize {
        self.boxes.iter().filter(|b| !b.detected).count()
    }
}

/// Where `a`'s box would be `t` of the way to `b`'s.
fn lerp(a: &FaceBox, b: &FaceBox, t: f32) -> FaceBox {
    let m = |x: f32, y: f32| x + (y - x) * t;
    FaceBox {
        x0: m(a.x0, b.x0),
        y0: m(a.y0, b.y0),
        x1: m(a.x1, b.x1),
        y1: m(a.y1, b.y1),
        score: a.score.min(b.score),
    }
}

/// How far `d`'s centre is from `p`'s, in `p`'s own width and height
/// (so it does not matter that boxes are fractions of a frame that is not
/// square), if their sizes are within a factor of 2.
fn shift(p: &FaceBox, d: &FaceBox) -> Option<f32> {
    let (pw, ph) = (p.width(), p.height());
    let near = |a: f32, b: f32| a > 0.0 && b <= 2.0 * a && a <= 2.0 * b;
    if !near(pw, d.width()) || !near(ph, d.height()) {
        return None;
    }
    let dx = (d.x0 + d.x1 - p.x0 - p.x1) / 2.0 / pw;
    let dy = (d.y0 + d.y1 - p.y0 - p.y1) / 2.0 / ph;
    Some((dx * dx + dy * dy).sqrt())
}

/// A track while linking: its sightings only.
struct Open {
    seen: Vec<(usize, FaceBox)>,
}

impl Open {
    /// Where its face would be at `frame`, moving as between its last two
    /// sightings.
    fn predict(&self, frame: usize) -> FaceBox {
        let (lf, last) = self.seen[self.seen.len() - 1];
        let Some(&(pf, prev)) = self.seen.len().checked_sub(2).map(|i| &self.seen[i]) else {
            return last;
        };
        let t = (frame - pf) as f32 / (lf - pf) as f32;
        lerp(&prev, &last, t)
    }
}

/// Links `frames` (each frame's detections) into tracks, numbered in order
/// of first sighting (then left to right), each filled over its gaps.
pub fn link(frames: &[Vec<FaceBox>], linking: Linking) -> Vec<Track> {
    let mut open: Vec<Open> = Vec::new();
    let mut done: Vec<Open> = Vec::new();
    for (f, dets) in frames.iter().enumerate() {
        // Tracks missed too long end before this frame is matched.
        let (alive, ended): (Vec<Open>, Vec<Open>) = open
            .into_iter()
            .partition(|t| f - t.seen[t.seen.len() - 1].0 <= linking.max_gap + 1);
        done.extend(ended);
        open = alive;
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in open.iter().enumerate() {
            let p = t.predict(f);
            for (di, d) in dets.iter().enumerate() {
                if let Some(s) = shift(&p, d).filter(|s| *s <= linking.max_shift) {
                    pairs.push((s, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut track_taken = vec![false; open.len()];
        let mut det_taken = vec![false; dets.len()];
        for (_, ti, di) in pairs {
            if !track_taken[ti] && !det_taken[di] {
                track_taken[ti] = true;
                det_taken[di] = true;
                open[ti].seen.push((f, dets[di]));
            }
        }
        for (di, d) in dets.iter().enumerate() {
            if !det_taken[di] {
                open.push(Open {
                    seen: vec![(f, *d)],
                });
            }
        }
    }
    done.extend(open);
    done.sort_by(|a, b| {
        (a.seen[0].0, a.seen[0].1.x0, a.seen[0].1.y0)
            .partial_cmp(&(b.seen[0].0, b.seen[0].1.x0, b.seen[0].1.y0))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    done.into_iter()
        .enumerate()
        .map(|(i, t)| Track {
            id: i as u32 + 1,
            boxes: fill(&t.seen),
        })
        .collect()
}

/// Every frame from the first sighting to the last, gaps interpolated.
fn fill(seen: &[(usize, FaceBox)]) -> Vec<TrackBox> {
    let mut out = Vec::new();
    for (i, &(f, face)) in seen.iter().enumerate() {
        if let Some(&(pf, prev)) = i.checked_sub(1).map(|j| &seen[j]) {
            for g in pf + 1..f {
                out.push(TrackBox {
                    frame: g,
                    face: lerp(&prev, &face, (g - pf) as f32 / (f - pf) as f32),
                    detected: false,
                });
            }
        }
        out.push(TrackBox {
            frame: f,
            face,
            detected: true,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32) -> FaceBox {
        FaceBox {
            x0: x,
            y0: y,
            x1: x + 0.1,
            y1: y + 0.15,
            score: 0.9,
        }
    }

    #[test]
    fn a_face_missed_for_a_few_frames_is_one_track_filled_in_between() {
        // Moving right 0.02 a frame; not detected in frames 10 to 14.
        let frames: Vec<Vec<FaceBox>> = (0..40)
            .map(|f| {
                if (10..15).contains(&f) {
                    vec![]
                } else {
                    vec![face(0.05 + 0.02 * f as f32, 0.3)]
                }
            })
            .collect();
        let tracks = link(&frames, Linking::default());
        assert_eq!(tracks.len(), 1, "{tracks:#?}");
        let t = &tracks[0];
        assert_eq!((t.first_frame(), t.last_frame()), (0, 39));
        assert_eq!(t.boxes.len(), 40);
        assert_eq!(t.interpolated(), 5);
        let mid = t.at(12).unwrap();
        assert!(!mid.detected);
        assert!((mid.face.x0 - (0.05 + 0.02 * 12.0)).abs() < 1e-4, "{mid:?}");
    }

    #[test]
    fn a_fast_face_is_one_track_where_its_boxes_barely_overlap() {
        // 0.08 a frame with boxes 0.1 wide: consecutive boxes overlap by
        // IoU 0.11 only; centres are 0.8 box widths apart.
        let frames: Vec<Vec<FaceBox>> = (0..10)
            .map(|f| vec![face(0.02 + 0.08 * f as f32, 0.5)])
            .collect();
        assert!(face(0.0, 0.5).iou(&face(0.08, 0.5)) < 0.12);
        let tracks = link(&frames, Linking::default());
        assert_eq!(tracks.len(), 1, "{tracks:#?}");
        assert_eq!(tracks[0].boxes.len(), 10);
        // Farther than its own width per frame is another face.
        let jumps: Vec<Vec<FaceBox>> = (0..4)
            .map(|f| vec![face(0.02 + 0.15 * f as f32, 0.5)])
            .collect();
        assert_eq!(link(&jumps, Linking::default()).len(), 4);
    }

    #[test]
    fn two_faces_are_two_tracks_and_a_face_gone_too_long_starts_a_new_one() {
        let frames: Vec<Vec<FaceBox>> = (0..60)
            .map(|f| {
                let mut v = vec![face(0.1, 0.2)];
                if !(20..40).contains(&f) {
                    v.push(face(0.7, 0.6));
                }
                v
            })
            .collect();
        let tracks = link(&frames, Linking::default());
        assert_eq!(tracks.len(), 3, "{tracks:#?}");
        let spans: Vec<(u32, usize, usize)> = tracks
            .iter()
            .map(|t| (t.id, t.first_frame(), t.last_frame()))
            .collect();
        assert_eq!(spans, [(1, 0, 59), (2, 0, 19), (3, 40, 59)]);
        // Every detection is in exactly one track.
        let detected: usize = tracks
            .iter()
            .map(|t| t.boxes.iter().filter(|b| b.detected).count())
            .sum();
        assert_eq!(detected, 60 + 40);
    }
}
