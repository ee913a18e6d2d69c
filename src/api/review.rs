//! `GET /v1/cameras/{id}/activity`: how much moved in each interval of a
//! range (`crate::review::activity`), as JSON. `GET /v1/cameras/{id}/sheet`:
//! a contact sheet of the range (`crate::review::sheet`), as PNG. Same
//! roles, zones and reason as a view; each is one audit entry (`activity`,
//! `sheet`) whose target names the camera, the requested range and what
//! was delivered.

use serde_json::{Value, json};

use super::ApiState;
use super::auth::Caller;
use super::params::{Query, show_time};
use super::routes::{Draft, Stream, StreamAudit, no_camera};
use super::view::zone_of;
use crate::config::Config;
use crate::error::{Error, Result};

/// The interval when none is asked for.
const DEFAULT_EVERY_US: i64 = 60_000_000;

/// The requested range and interval; sets the audit entry's target and
/// reason first, so a refusal is recorded with what was asked.
fn range(
    config: &Config,
    id: &str,
    query: &Query,
    draft: &mut Draft,
    now: i64,
    what: &str,
) -> Result<(i64, i64, i64)> {
    let tz = &config.timezone;
    query.only(&["from", "to", "every", "reason"])?;
    let (Some(from), Some(to)) = (query.time("from", tz, now)?, query.time("to", tz, now)?) else {
        return Err(Error::invalid(format!(
            "{what} needs from=... and to=... (custosctl {what} --from T1 --to T2), e.g. \
             from=today+10:00&to=today+11:00"
        )));
    };
    draft.set_target(format!(
        "camera {id} from {} to {}",
        show_time(from, tz),
        show_time(to, tz)
    ));
    draft.stated_reason(query, "reading footage's activity or a contact sheet")?;
    let every = match query.get("every") {
        None => DEFAULT_EVERY_US,
        Some(s) => humantime::parse_duration(s.trim())
            .ok()
            .and_then(|d| i64::try_from(d.as_micros()).ok())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "every={s:?} is not an interval; give one such as 10s, 30s, 1m or 5m"
                ))
            })?,
    };
    if from >= to {
        return Err(Error::invalid(format!(
            "`from` ({}) must be before `to` ({})",
            show_time(from, tz),
            show_time(to, tz)
        )));
    }
    Ok((from, to, every))
}

pub(super) fn activity(
    state: &ApiState,
    config: &Config,
    caller: &Caller,
    id: &str,
    query: &Query,
    draft: &mut Draft,
    now: i64,
) -> Result<Value> {
    let (from, to, every) = range(config, id, query, draft, now, "activity")?;
    let zone = zone_of(config, caller, id)?;
    let index = state.read_index()?;
    let found = crate::review::activity::query(
        &index,
        config,
        &state.leases,
        id,
        (from, to, every),
        &|z| caller.may_see_zone(z),
    )?;
    if zone.is_none() && found.segments == 0 {
        return Err(no_camera(config, id));
    }
    let tz = &config.timezone;
    let recorded: u64 = found.buckets.iter().map(|b| u64::from(b.recorded_s)).sum();
    let bytes: u64 = found.buckets.iter().map(|b| b.bytes).sum();
    draft.set_target(format!(
        "camera {id} from {} to {}: {} intervals of {}s, {recorded}s of footage in {} \
         segment(s), {bytes} bytes of frames counted",
        show_time(from, tz),
        show_time(to, tz),
        found.buckets.len(),
        every / 1_000_000,
        found.segments,
    ));
    let buckets: Vec<Value> = found
        .buckets
        .iter()
        .map(|b| {
            json!({
                "from_us": b.from_us,
                "to_us": b.to_us,
                "from": show_time(b.from_us, tz),
                "recorded_s": b.recorded_s,
                "bytes": b.bytes,
                "bytes_per_s": b.rate(),
            })
        })
        .collect();
    Ok(json!({
        "camera": id,
        "timezone": config.timezone_name,
        "from_us": from,
        "to_us": to,
        "every_s": every / 1_000_000,
        "segments": found.segments,
        "segments_counted_from_files": found.from_files,
        "buckets": buckets,
    }))
}

/// The sheet's content type.
pub const SHEET_CONTENT_TYPE: &str = "image/png";
/// Reply header: each tile's picture time (µs since the epoch, UTC), or
/// `-` for an interval without footage, comma-separated in tile order.
pub const TILES_HEADER: &str = "x-custos-tiles";

pub(super) fn sheet(
    state: &ApiState,
    config: &Config,
    caller: &Caller,
    id: &str,
    query: &Query,
    draft: &mut Draft,
    now: i64,
) -> Result<Stream> {
    let (from, to, every) = range(config, id, query, draft, now, "sheet")?;
    let zone = zone_of(config, caller, id)?;
    let index = state.read_index()?;
    let sheet = match crate::review::sheet::make(
        &index,
        config,
        &state.leases,
        id,
        (from, to, every),
        &|z| caller.may_see_zone(z),
    ) {
        Err(e) if zone.is_none() && e.kind == crate::ErrorKind::NotFound => {
            return Err(no_camera(config, id));
        }
        r => r?,
    };
    let shown = sheet.tiles.iter().flatten().count();
    let tz = &config.timezone;
    let (first, last) = (
        sheet.tiles.iter().flatten().next().copied(),
        sheet.tiles.iter().flatten().last().copied(),
    );
    let delivered = match (first, last) {
        (Some(a), Some(b)) => format!(
            "{} of {} tiles with pictures from {} to {}",
            shown,
            sheet.tiles.len(),
            show_time(a, tz),
            show_time(b, tz)
        ),
        _ => format!("{} tiles, none with footage", sheet.tiles.len()),
    };
    draft.set_target(format!(
        "camera {id} from {} to {} every {}s: {delivered}, {} bytes of key frames decoded",
        show_time(from, tz),
        show_time(to, tz),
        every / 1_000_000,
        sheet.bytes_read
    ));
    let tiles: Vec<String> = sheet
        .tiles
        .iter()
        .map(|t| t.map_or("-".to_owned(), |us| us.to_string()))
        .collect();
    let headers = vec![
        ("content-length", sheet.png.len().to_string()),
        (TILES_HEADER, tiles.join(",")),
        ("x-custos-timezone", config.timezone_name.clone()),
    ];
    Ok(png_stream(sheet.png, headers, "sheet.finished"))
}

/// A PNG sent whole (its length among `headers`), audited at its end as
/// `action`.
pub(super) fn png_stream(
    png: Vec<u8>,
    headers: Vec<(&'static str, String)>,
    action: &str,
) -> Stream {
    let run = Box::new(move |out: &mut dyn std::io::Write| {
        out.write_all(&png)
            .and_then(|()| out.flush())
            .map_err(|e| Error::unavailable(format!("the reader went away: {e}")))?;
        Ok(format!("sent {} bytes of PNG", png.len()))
    });
    Stream {
        content_type: SHEET_CONTENT_TYPE,
        headers,
        run,
        ranged: None,
        audit: StreamAudit {
            action: action.into(),
            role: String::new(),
            target: String::new(),
            reason: String::new(),
        },
    }
}
