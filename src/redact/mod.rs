//! Redacted copies for data subjects (issue 18; 001 §35.2; 004 §17, §27):
//! third parties made unidentifiable by solid fills burned into a new
//! copy, reviewed by a second person; the master footage is never
//! altered. See docs/design/redaction.md.
//!
//! A job ([`job`]) decodes a request's range ([`footage`]), finds faces
//! ([`detect`], CenterFace by tract) and follows them ([`track`]); the
//! reviewer names the requester's tracks from a sheet ([`sheets`]) and adds
//! masks ([`choice`]); the copy is rendered ([`render`], [`mask`]) with its
//! record ([`record`]); a second DPO approves it ([`acts`]) and it is
//! released as a signed package ([`release`]).

pub mod acts;
pub mod choice;
pub mod detect;
pub mod footage;
pub mod frames;
pub mod job;
pub mod mask;
pub mod record;
pub mod release;
pub mod render;
pub mod sheets;
pub mod track;

pub use choice::Choice;
pub use detect::{DEFAULT_THRESHOLD, Detector, FaceBox, MODEL_FILE, MODEL_SHA256, model_dir};
pub use job::Worker;
