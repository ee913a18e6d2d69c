//! `GET /v1/cameras/{id}/recordings`: a camera's segments, outages and gaps
//! over a range, paged, for callers who may see the zone each segment was
//! recorded under, with a stated reason (004 §13).

use serde_json::{Value, json};

use super::ApiState;
use super::auth::Caller;
use super::params::{Query, show_time};
use super::routes::{Draft, no_camera, not_your_zone};
use crate::clock::UnixMicros;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::index::SegmentRow;

/// The range listed when `from` is not given: a day before `to`.
const DEFAULT_WINDOW_US: i64 = 24 * 3600 * 1_000_000;
/// Most segments one listing returns (a week of one-minute segments); the
/// reply says where the next page starts.
const MAX_LISTED_SEGMENTS: u32 = 10_080;

pub(super) fn list(
    state: &ApiState,
    config: &Config,
    caller: &Caller,
    id: &str,
    query: &Query,
    draft: &mut Draft,
    now: UnixMicros,
) -> Result<Value> {
    let tz = &config.timezone;
    query.only(&["from", "to", "reason", "limit"])?;
    let limit = query.u32("limit")?.unwrap_or(MAX_LISTED_SEGMENTS);
    if limit == 0 || limit > MAX_LISTED_SEGMENTS {
        return Err(Error::invalid(format!(
            "limit must be 1 to {MAX_LISTED_SEGMENTS}; the reply's more_from_us says \
             where the next page starts"
        )));
    }
    let to = query.time("to", tz, now)?.unwrap_or(now);
    let from = query
        .time("from", tz, now)?
        .unwrap_or(to.saturating_sub(DEFAULT_WINDOW_US));
    draft.set_target(format!(
        "camera {id} from {} to {}",
        show_time(from, tz),
        show_time(to, tz)
    ));
    let zone = config.footage_zone(id).map(str::to_owned);
    let visible_now = zone.as_deref().is_some_and(|z| caller.may_see_zone(z));
    draft.stated_reason(query, "listing recordings")?;
    if from >= to {
        return Err(Error::invalid(format!(
            "`from` ({}) must be before `to` ({})",
            show_time(from, tz),
            show_time(to, tz)
        )));
    }
    let index = state.read_index()?;
    let mut segments = index.segments_page(id, from, to, Some(limit + 1))?;
    // A full page ends at the end of its last segment; the rest of
    // the range (outages and gaps too) is the next page's.
    let mut more_from = None;
    if segments.len() > limit as usize {
        segments.truncate(limit as usize);
        more_from = segments.last().and_then(|s| s.end_us);
    }
    let to = more_from.unwrap_or(to);
    let mut outages = index.outages(id, from, to)?;
    if zone.is_none() && segments.is_empty() && outages.is_empty() {
        return Err(no_camera(config, id));
    }
    // Scope follows the zone each segment was recorded under: a
    // camera moved from zone B to A shows its B-era footage only to
    // viewers of B.
    segments.retain(|s| caller.may_see_zone(&s.zone));
    if !visible_now {
        outages.clear();
        if segments.is_empty() {
            return Err(not_your_zone(caller, id, zone.as_deref()));
        }
    }
    let gaps = gaps(&segments, from, to.min(now));
    Ok(json!({
        "camera": id,
        "zone": zone,
        "timezone": config.timezone_name,
        "from_us": from,
        "to_us": to,
        "segments": segments,
        "outages": outages,
        "gaps": gaps,
        "more_from_us": more_from,
    }))
}

/// Stretches of `[from, to)` not covered by any segment, longer than
/// `export::GAP_US` (what an export calls a gap too): the moment between a
/// range's start and the first frame after it is none.
fn gaps(segments: &[SegmentRow], from: i64, to: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut push = |a: i64, b: i64| {
        if b - a > crate::export::GAP_US {
            out.push(json!({"from_us": a, "to_us": b}));
        }
    };
    let mut cursor = from;
    for s in segments {
        let end = s.end_us.unwrap_or(to);
        if s.start_us > cursor {
            push(cursor, s.start_us.min(to));
        }
        cursor = cursor.max(end);
        if cursor >= to {
            break;
        }
    }
    if cursor < to {
        push(cursor, to);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{SegmentState, TimeSource};

    fn seg(start_us: i64, end_us: Option<i64>) -> SegmentRow {
        SegmentRow {
            id: 1,
            camera: "cam1".into(),
            zone: "indoor".into(),
            root: "main".into(),
            path: "p".into(),
            state: SegmentState::Complete,
            start_us,
            end_us,
            bytes: None,
            frames: None,
            key_frames: None,
            video_codec: None,
            audio_codec: None,
            sha256: None,
            time_source: TimeSource::Local,
            clock_offset_us: None,
            recovered: false,
        }
    }

    #[test]
    fn a_moment_before_the_first_frame_is_no_gap_but_a_hole_is() {
        let s = 1_000_000_000_000;
        // The range starts 200 ms before the first frame; the recording
        // segment runs to the range's end: no gap.
        assert!(gaps(&[seg(s + 200_000, None)], s, s + 15_000_000).is_empty());
        // A 2 s hole between two segments, and 3 s missing at the end.
        let g = gaps(
            &[
                seg(s, Some(s + 10_000_000)),
                seg(s + 12_000_000, Some(s + 20_000_000)),
            ],
            s,
            s + 23_000_000,
        );
        assert_eq!(
            g,
            vec![
                json!({"from_us": s + 10_000_000, "to_us": s + 12_000_000}),
                json!({"from_us": s + 20_000_000, "to_us": s + 23_000_000}),
            ]
        );
    }
}
