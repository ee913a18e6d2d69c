//! Redacted copies for data subjects (issue 18; 001 §35.2; 004 §17, §27):
//! third parties made unidentifiable by solid fills burned into a new
//! copy, reviewed by a second person. Built so far: finding faces
//! (`detect`, CenterFace by tract) in pictures decoded by GStreamer
//! (`frames`), following them across frames (`track`), and masks burned
//! into pixels (`mask`). The job, the review sheet, rendering and release
//! are not built yet
//! (docs/design/redaction.md).

pub mod detect;
pub mod frames;
pub mod mask;
pub mod track;

pub use detect::{DEFAULT_THRESHOLD, Detector, FaceBox, MODEL_FILE, MODEL_SHA256, model_dir};
