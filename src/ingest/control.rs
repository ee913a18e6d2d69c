//! Operations on running cameras, asked by the admin API and carried out by
//! the daemon's main thread, which owns the recorder. Defined here, below
//! both, so neither reaches into the other.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, RwLock};

use super::CameraStatus;
use crate::error::Result;

/// Live status of each running camera, by camera id; the recorder keeps it
/// up to date as cameras start and stop.
pub type CameraStatuses = Arc<RwLock<BTreeMap<String, Arc<CameraStatus>>>>;

/// What an operator asks of a running camera (admin API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraOp {
    /// Record again after `Disable`.
    Enable,
    /// Stop recording (open segment finalised) until `Enable`, a restart of
    /// the daemon, or a reload that changes the camera.
    Disable,
    /// Reconnect now (e.g. after fixing the camera), finalising the segment.
    Restart,
}

/// A camera operation sent from the admin API to the daemon's main thread,
/// which owns the recorder.
pub struct ControlRequest {
    pub camera: String,
    pub op: CameraOp,
    /// Who asked (user name and uid), for the log and the outage row.
    pub by: String,
    pub reply: mpsc::Sender<Result<String>>,
}

/// Where the admin API sends camera operations.
pub type ControlSender = mpsc::Sender<ControlRequest>;
