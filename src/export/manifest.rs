//! The export manifest (`manifest.json`) and its signature file
//! (`manifest.sig`).
//!
//! The signature covers the exact bytes of `manifest.json`. `manifest.sig` is
//! three lines in one canonical form (a header, the manifest's SHA-256, the
//! Ed25519 signature, all lower-case hex), and a reader re-renders what it
//! parsed and compares: so any changed byte of either file is detected, and
//! the hash line tells which of the two changed.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const SIGNATURE_FILE: &str = "manifest.sig";
pub const README_FILE: &str = "README.txt";
const SIG_HEADER: &str = "custos manifest signature v1";

/// Everything a recipient (or a court) needs to know about an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub software: Software,
    pub controller: ControllerInfo,
    pub case: Option<String>,
    pub recipient: String,
    pub reason: String,
    /// The legal basis of this disclosure: the one given with the export,
    /// else its case's, else (no case) the basis the footage was recorded on.
    pub legal_basis: String,
    /// The zones the footage was recorded under, each with the legal basis
    /// and purposes of recording (the zone at the time, whatever the
    /// camera's zone is today).
    #[serde(default)]
    pub recorded_under: Vec<RecordingBasis>,
    pub exporter: Exporter,
    pub exported_at: Instant,
    pub camera: CameraInfo,
    pub requested: Range,
    pub actual: Range,
    /// Stretches inside the requested range with no recording; the export is
    /// split there, never bridged.
    pub gaps: Vec<Gap>,
    pub time: TimeInfo,
    pub sources: Vec<SourceSegment>,
    pub files: Vec<OutputFile>,
    /// The node's Ed25519 public key (hex) and its fingerprint.
    pub public_key: String,
    pub key_fingerprint: String,
    /// A redacted copy's record (`redact::record::Record`, with who
    /// approved it); absent from an export of footage as recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Software {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerInfo {
    pub name: String,
    pub registration_code: String,
    pub address: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exporter {
    pub user: String,
    pub uid: u32,
}

/// A moment, in UTC and in the site's local time with its offset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instant {
    pub unix_us: i64,
    pub utc: String,
    pub local: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub from: Instant,
    pub to: Instant,
    pub duration_us: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub from: Instant,
    pub to: Instant,
    pub duration_us: i64,
    /// From the outage log when known ("no data for 2 s", ...).
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraInfo {
    pub id: String,
    pub name: String,
    pub zone: String,
    pub zone_name: String,
    pub area: String,
}

/// Why footage was recorded: its zone then, and that zone's basis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingBasis {
    pub zone: String,
    /// Empty when the zone is no longer in the configuration.
    pub zone_name: String,
    /// "(zone no longer configured)" when it is not.
    pub legal_basis: String,
    pub purposes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeInfo {
    pub timezone: String,
    /// "local" (the server's clock) or "rtcp" (the camera's NTP time), per
    /// the sources; for a device's file "metadata" (its creation time) or
    /// "file_name"; several when they differ.
    pub sources: Vec<String>,
    /// Largest |camera clock - server clock| seen over the sources, if known.
    pub max_clock_offset_us: Option<i64>,
    /// Noted corrections of the recorded time over this range (a data
    /// subject's rectification, 004 §28): the files are as recorded; the
    /// true time is the recorded time plus `offset_us`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<TimeCorrection>,
}

/// A noted correction of the time shown in part of the footage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeCorrection {
    pub from: Instant,
    pub to: Instant,
    pub offset_us: i64,
    pub note: String,
    /// The data-subject request it was made for.
    pub request: String,
    pub noted_at: Instant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSegment {
    pub path: String,
    /// The zone it was recorded under.
    #[serde(default)]
    pub zone: String,
    pub start: Instant,
    pub end: Instant,
    pub bytes: u64,
    /// SHA-256 recorded in the index when the segment was finished, checked
    /// against the file before export.
    pub sha256: String,
    pub time_source: String,
    pub clock_offset_us: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
    /// Clips only: the span the file covers and its frame counts.
    pub from: Option<Instant>,
    pub to: Option<Instant>,
    pub video_frames: Option<u64>,
    pub audio_frames: Option<u64>,
}

/// The signature file's text for `manifest` bytes signed as `signature`.
pub fn render_signature(manifest: &[u8], signature: &[u8; 64]) -> String {
    format!(
        "{SIG_HEADER}\nsha256 {}\ned25519 {}\n",
        hex::encode(Sha256::digest(manifest)),
        hex::encode(signature)
    )
}

/// What `manifest.sig` says: the manifest's hash and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureFile {
    pub manifest_sha256: [u8; 32],
    pub signature: [u8; 64],
}

/// Parses `manifest.sig`; `None` unless it is exactly in canonical form.
pub fn parse_signature(text: &[u8]) -> Option<SignatureFile> {
    let text = std::str::from_utf8(text).ok()?;
    let mut lines = text.lines();
    if lines.next()? != SIG_HEADER {
        return None;
    }
    let sha: [u8; 32] = hex::decode(lines.next()?.strip_prefix("sha256 ")?)
        .ok()?
        .try_into()
        .ok()?;
    let sig: [u8; 64] = hex::decode(lines.next()?.strip_prefix("ed25519 ")?)
        .ok()?
        .try_into()
        .ok()?;
    let canonical = format!(
        "{SIG_HEADER}\nsha256 {}\ned25519 {}\n",
        hex::encode(sha),
        hex::encode(sig)
    );
    (canonical == text).then_some(SignatureFile {
        manifest_sha256: sha,
        signature: sig,
    })
}
