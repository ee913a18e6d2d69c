//! Erasure at a data subject's request (004 §29): the footage of the
//! request's cameras overlapping its window is destroyed with the storage
//! root's destruction mode and journalled as `erasure`, naming the request.
//!
//! Segments are erased whole: a file is never cut, so footage just outside
//! the window but in the same segment goes too (the report says the range
//! actually erased). Not erased, and said so in the report and the request:
//! footage under an active hold of a case (needed for legal claims; the case
//! is named), under a restriction (it must first be lifted), a segment still
//! being recorded, and one being read (an export): erase again later.

use std::collections::BTreeMap;

use crate::clock::UnixMicros;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::index::{Candidate, DeletionReason, Protection, SegmentState, SharedIndex};
use crate::retention::{DeletedBy, Leases, Tally, erase_segments};

use super::Kind;

/// Footage of one camera that was erased.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Erased {
    pub camera: String,
    pub segments: u64,
    pub bytes: u64,
    /// The range of the segments erased (whole segments).
    pub from_us: i64,
    pub to_us: i64,
}

/// Footage of one camera that was not erased, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Kept {
    pub camera: String,
    pub segments: u64,
    pub from_us: i64,
    pub to_us: i64,
    /// "held for case C (legal claims, 004 §29)", "restricted (restriction
    /// N)", "still being recorded", "being read".
    pub why: String,
    /// The case holding it, if that is why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
}

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ErasureReport {
    pub request: String,
    pub erased: Vec<Erased>,
    pub kept: Vec<Kept>,
}

/// Start and end of each segment kept for one reason.
type Spans = Vec<(i64, i64)>;

fn overlaps(from: i64, to: i64, s: &Candidate) -> bool {
    from < s.end_us && to > s.start_us
}

/// Erases the footage of request `id` (an open erasure or objection
/// request) and records what was and was not erased in the request.
pub fn erase(
    index: &SharedIndex,
    config: &Config,
    leases: &Leases,
    id: &str,
    by_user: &str,
    now_us: UnixMicros,
) -> Result<ErasureReport> {
    let request = index.lock().open_request(id)?;
    if request.kind != Kind::Erasure.as_str() && request.kind != Kind::Objection.as_str() {
        return Err(Error::conflict(format!(
            "request {id} is a {} request; footage is erased for an erasure request or an \
             upheld objection",
            request.kind
        )));
    }
    let mut report = ErasureReport {
        request: id.to_owned(),
        ..ErasureReport::default()
    };
    for camera in &request.cameras {
        let (rows, protections) = {
            let ix = index.lock();
            let rows = ix.segments(camera, request.from_us, request.to_us)?;
            let protections = ix.active_protections(ix.camera_id(camera)?)?;
            (rows, protections)
        };
        let mut kept: BTreeMap<(String, Option<String>), Spans> = BTreeMap::new();
        let mut chosen = Vec::new();
        for s in rows {
            let Some(end_us) = s.end_us.filter(|_| s.state == SegmentState::Complete) else {
                if s.state == SegmentState::Recording {
                    let end = s.end_us.unwrap_or(now_us);
                    kept.entry((
                        "still being recorded: erase again once its segment is finished".into(),
                        None,
                    ))
                    .or_default()
                    .push((s.start_us, end));
                }
                continue;
            };
            let c = Candidate {
                id: s.id,
                camera_id: 0,
                camera: s.camera.clone(),
                zone: s.zone.clone(),
                root: s.root.clone(),
                path: s.path.clone(),
                start_us: s.start_us,
                end_us,
                bytes: s.bytes.unwrap_or(0),
            };
            let reason = protections.iter().find_map(|p| match p {
                Protection::Hold {
                    case_id,
                    from_us,
                    to_us,
                    ..
                } if overlaps(*from_us, *to_us, &c) => Some((
                    format!("held for case {case_id}: needed for legal claims (004 §29)"),
                    Some(case_id.clone()),
                )),
                Protection::Restriction {
                    id: rid,
                    from_us,
                    to_us,
                    ..
                } if overlaps(*from_us, *to_us, &c) => Some((
                    format!("restricted (restriction {rid}): lift the restriction first"),
                    None,
                )),
                _ => None,
            });
            match reason {
                Some(k) => kept.entry(k).or_default().push((c.start_us, c.end_us)),
                None => chosen.push(c),
            }
        }
        let camera_id = index.lock().camera_id(camera)?.0;
        for c in &mut chosen {
            c.camera_id = camera_id;
        }
        let wanted = chosen.len() as u64;
        let range = span(chosen.iter().map(|c| (c.start_us, c.end_us)));
        let by = DeletedBy {
            reason: DeletionReason::Erasure,
            actor: by_user,
            request: Some(id),
        };
        let (tally, leased) = if chosen.is_empty() {
            (Tally::default(), Vec::new())
        } else {
            erase_segments(index, config, leases, now_us, &by, chosen)?
        };
        if !leased.is_empty() {
            kept.entry((
                "being read (an export): erase again once it ends".into(),
                None,
            ))
            .or_default()
            .extend(leased.iter().map(|c| (c.start_us, c.end_us)));
        }
        let protected_since = wanted - tally.segments - leased.len() as u64;
        if protected_since > 0 {
            tracing::info!(request = id, camera = %camera, segments = protected_since,
                "erasure: segments protected since they were chosen were left");
        }
        if tally.segments > 0
            && let Some((from_us, to_us)) = range
        {
            report.erased.push(Erased {
                camera: camera.clone(),
                segments: tally.segments,
                bytes: tally.bytes,
                from_us,
                to_us,
            });
        }
        for ((why, case), spans) in kept {
            let (from_us, to_us) = span(spans.iter().copied()).unwrap_or((0, 0));
            report.kept.push(Kept {
                camera: camera.clone(),
                segments: spans.len() as u64,
                from_us,
                to_us,
                why,
                case,
            });
        }
    }
    index.lock().transaction(|ix| {
        for e in &report.erased {
            ix.add_request_event(id, now_us, by_user, "erased", &json(e))?;
        }
        for k in &report.kept {
            ix.add_request_event(id, now_us, by_user, "erasure_refused", &json(k))?;
        }
        Ok(())
    })?;
    Ok(report)
}

fn span(it: impl Iterator<Item = (i64, i64)>) -> Option<(i64, i64)> {
    it.fold(None, |acc, (a, b)| match acc {
        None => Some((a, b)),
        Some((x, y)) => Some((x.min(a), y.max(b))),
    })
}

fn json(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}
