//! What the answer to a request states, per camera of its window (004 §25;
//! 001 §33): what footage exists, what no longer does and why (from the
//! deletion journal), how long the area's footage is kept, to whom footage
//! of that window was disclosed in the past year (the disclosure register,
//! 004 §25.2), and the purposes and legal basis of the recording. Read from
//! the index and the configuration only; nothing here changes anything.

use crate::clock::UnixMicros;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::index::{
    CorrectionRow, DeletionRow, FootageSpan, RequestEvent, RequestRow, RestrictionRow, SharedIndex,
};

/// The findings for one camera of a request.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CameraFindings {
    pub camera: String,
    pub name: String,
    pub area: String,
    pub zone: String,
    pub zone_name: String,
    pub retention_days: u32,
    pub purposes: Vec<String>,
    pub legal_basis: String,
    pub processor: String,
    /// Footage that still exists, per zone it was recorded under.
    pub footage: Vec<FootageSpan>,
    /// Footage of the window that was deleted, and why.
    pub deleted: Vec<DeletionRow>,
    /// Disclosures of footage of the window in the past year.
    pub disclosed: Vec<Disclosed>,
    /// Whether a case's hold keeps some of it (legal claims).
    pub held: bool,
}

/// One recipient of footage of the window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Disclosed {
    pub at_us: i64,
    pub recipient: String,
    pub legal_basis: String,
}

/// Everything the answer letter states.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Findings {
    pub request: RequestRow,
    pub last_day: String,
    pub at_us: i64,
    /// Disclosures since this time are listed (one year back).
    pub disclosed_since_us: i64,
    pub cameras: Vec<CameraFindings>,
    pub events: Vec<RequestEvent>,
    pub restrictions: Vec<RestrictionRow>,
    pub corrections: Vec<CorrectionRow>,
}

/// One calendar year before `now_us` (UTC).
pub fn year_before(now_us: UnixMicros) -> Result<UnixMicros> {
    let now = jiff::Timestamp::from_microsecond(now_us)
        .map_err(|e| Error::internal(format!("clock out of range: {e}")))?;
    Ok(now
        .to_zoned(jiff::tz::TimeZone::UTC)
        .checked_sub(jiff::Span::new().years(1))
        .map_err(|e| Error::internal(format!("a year back: {e}")))?
        .timestamp()
        .as_microsecond())
}

/// The findings for request `id` at `now_us`.
pub fn findings(
    index: &SharedIndex,
    config: &Config,
    id: &str,
    now_us: UnixMicros,
) -> Result<Findings> {
    let status = super::status(index, config, id, now_us)?;
    let request = status.request;
    let since = year_before(now_us)?;
    let ix = index.lock();
    let mut cameras = Vec::new();
    for camera in &request.cameras {
        let cam = config.footage_source(camera);
        let zone = cam.as_ref().and_then(|c| config.zone(&c.zone));
        let (from, to) = (request.from_us, request.to_us);
        let held = match ix.camera_id(camera) {
            Ok(cid) => ix.active_protections(cid)?.iter().any(|p| {
                matches!(p, crate::index::Protection::Hold { from_us, to_us, .. }
                    if *from_us < to && *to_us > from)
            }),
            Err(_) => false,
        };
        cameras.push(CameraFindings {
            camera: camera.clone(),
            name: cam
                .as_ref()
                .map_or_else(|| camera.clone(), |c| c.name.clone()),
            area: cam.map(|c| c.area).unwrap_or_default(),
            zone: zone.map(|z| z.id.clone()).unwrap_or_default(),
            zone_name: zone.map(|z| z.name.clone()).unwrap_or_default(),
            retention_days: zone.map_or(config.daemon.max_retention_days, |z| z.retention_days),
            purposes: zone.map(|z| z.purposes.clone()).unwrap_or_default(),
            legal_basis: zone.map(|z| z.legal_basis.clone()).unwrap_or_default(),
            processor: zone.map(|z| z.processor.clone()).unwrap_or_default(),
            footage: ix.footage_in(camera, from, to)?,
            deleted: ix.deletions_of(camera, from, to)?,
            disclosed: ix
                .disclosures_of(camera, from, to, since)?
                .into_iter()
                .map(|d| Disclosed {
                    at_us: d.at_us,
                    recipient: d.recipient,
                    legal_basis: d.legal_basis,
                })
                .collect(),
            held,
        });
    }
    Ok(Findings {
        request,
        last_day: status.last_day,
        at_us: now_us,
        disclosed_since_us: since,
        cameras,
        events: status.events,
        restrictions: status.restrictions,
        corrections: status.corrections,
    })
}
