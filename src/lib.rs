//! Custos: a recording daemon for video surveillance under the GDPR.
//!
//! Data flows one way: `ingest` (GStreamer) writes segments through `mp4` into
//! `storage` and records them in `index`; retention, evidence and export act on
//! what the index and storage hold. See `docs/design/architecture.md`.

pub mod alerts;
pub mod api;
pub mod audit;
pub mod breach;
pub mod cli;
pub mod clock;
pub mod compliance;
pub mod config;
pub mod daemon;
pub mod error;
pub mod evidence;
pub mod export;
pub mod failpoint;
pub mod inbox;
pub mod index;
pub mod ingest;
pub mod integrity;
pub mod log;
pub mod metrics;
pub mod mp4;
pub mod notice;
pub mod notify;
pub mod recovery;
pub mod redact;
pub mod requests;
pub mod retention;
pub mod review;
pub mod sim;
pub mod storage;
pub mod vault;

pub use error::{Error, ErrorKind, Result};
