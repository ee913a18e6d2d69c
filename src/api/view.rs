//! `GET /v1/cameras/{id}/view`: a recorded range as one progressive MP4
//! (`crate::review`), streamed. Routing, authorisation and the request's
//! audit entry (camera, requested range, reason) are `routes.rs`'s; the
//! stream's end is a second entry, `view.finished`, with the delivered
//! range and bytes. A view is not a disclosure: no register row.
//! `GET /v1/cameras/{id}/live`: what the camera records now, as fragmented
//! MP4 (`crate::review::live`), until the reader stops; `view.live` and
//! `view.live.finished`.

use super::ApiState;
use super::auth::Caller;
use super::params::{Query, show_time};
use super::routes::{Draft, Stream, StreamAudit, no_camera, not_your_zone};
use crate::config::Config;
use crate::error::{Error, Result};

/// The reply's content type (both views: a player tells the fragmented
/// one by its boxes).
pub const CONTENT_TYPE: &str = "video/mp4";
/// Reply headers: the delivered range (µs since the epoch, UTC) and, when
/// the view ends at a gap, where the gap starts and footage resumes.
pub const FROM_HEADER: &str = "x-custos-from-us";
pub const TO_HEADER: &str = "x-custos-to-us";
pub const GAP_HEADER: &str = "x-custos-gap-us";

pub(super) fn view(
    state: &ApiState,
    config: &Config,
    caller: &Caller,
    id: &str,
    query: &Query,
    draft: &mut Draft,
    now: i64,
) -> Result<Stream> {
    let tz = &config.timezone;
    query.only(&["from", "to", "reason"])?;
    let from = query.time("from", tz, now)?;
    let to = query.time("to", tz, now)?;
    let (Some(from), Some(to)) = (from, to) else {
        return Err(Error::invalid(
            "a view needs from=... and to=... (custosctl view --from T1 --to T2), e.g. \
             from=today+10:40&to=today+10:45",
        ));
    };
    draft.set_target(format!(
        "camera {id} from {} to {}",
        show_time(from, tz),
        show_time(to, tz)
    ));
    let reason = draft.stated_reason(query, "viewing footage")?;
    if from >= to {
        return Err(Error::invalid(format!(
            "`from` ({}) must be before `to` ({})",
            show_time(from, tz),
            show_time(to, tz)
        )));
    }
    let zone = zone_of(config, caller, id)?;
    let index = state.read_index()?;
    let req = crate::review::Request {
        camera: id.to_owned(),
        from_us: from,
        to_us: to,
    };
    let view = match crate::review::plan(&index, config, &state.leases, &req, &|z| {
        caller.may_see_zone(z)
    }) {
        Err(e) if zone.is_none() && e.kind == crate::ErrorKind::NotFound => {
            return Err(no_camera(config, id));
        }
        r => r?,
    };
    let mut headers = vec![
        ("content-length", view.bytes().to_string()),
        ("accept-ranges", "bytes".to_owned()),
        (FROM_HEADER, view.from_us.to_string()),
        (TO_HEADER, view.to_us.to_string()),
        ("x-custos-timezone", config.timezone_name.clone()),
    ];
    if let Some((a, b)) = view.gap {
        headers.push((GAP_HEADER, format!("{a}-{b}")));
    }
    let length = view.bytes();
    let view = std::sync::Arc::new(view);
    let (whole, part, tz, tz2) = (view.clone(), view, tz.clone(), tz.clone());
    let run = Box::new(move |out: &mut dyn std::io::Write| send(&whole, 0..length, out, &tz));
    let ranged = super::routes::Ranged {
        length,
        run: Box::new(move |range, out: &mut dyn std::io::Write| send(&part, range, out, &tz2)),
    };
    Ok(Stream {
        content_type: CONTENT_TYPE,
        headers,
        run,
        ranged: Some(ranged),
        audit: StreamAudit {
            action: "view.finished".into(),
            role: String::new(),
            target: format!("camera {id}"),
            reason: reason.to_owned(),
        },
    })
}

/// Writes bytes `range` of `view`; says what was sent, for the closing
/// audit entry.
fn send(
    view: &crate::review::View,
    range: std::ops::Range<u64>,
    out: &mut dyn std::io::Write,
    tz: &jiff::tz::TimeZone,
) -> Result<String> {
    let total = view.bytes();
    let part = if range == (0..total) {
        String::new()
    } else {
        format!(" (bytes {}-{} of {total})", range.start, range.end - 1)
    };
    let mut counted = Counted {
        inner: out,
        bytes: 0,
        failed: false,
    };
    let mut reached = view.from_us;
    match view.write_range(&mut counted, range, &mut reached) {
        Ok(n) => Ok(format!(
            "sent {n} bytes{part}, {} frames, {} to {}",
            view.video_frames,
            show_time(view.from_us, tz),
            show_time(view.to_us, tz)
        )),
        Err(e) => {
            let sent = format!(
                "sent {} of {total} bytes{part}, {} to at most {}",
                counted.bytes,
                show_time(view.from_us, tz),
                show_time(reached, tz)
            );
            Err(if counted.failed {
                Error::unavailable(format!("the viewer stopped reading; {sent}"))
            } else {
                Error::new(e.kind, format!("{}; {sent}", e.message))
            })
        }
    }
}

/// `GET /v1/cameras/{id}/live?reason=`: follows what the camera records.
pub(super) fn live(
    state: &ApiState,
    config: &Config,
    caller: &Caller,
    id: &str,
    query: &Query,
    draft: &mut Draft,
    now: i64,
) -> Result<Stream> {
    query.only(&["reason"])?;
    draft.set_target(format!("camera {id} live"));
    let reason = draft.stated_reason(query, "viewing footage")?;
    let zone = zone_of(config, caller, id)?;
    if zone.is_none() {
        return Err(no_camera(config, id));
    }
    let live = crate::review::live::open(
        state.read_index()?,
        std::sync::Arc::new(config.clone()),
        &state.leases,
        id,
        now,
        {
            // Under the grants in force at each look, not those the view
            // began with: a reload that withdraws the grant ends the view.
            let (peer, daemon_uid) = (caller.peer.clone(), state.daemon_uid);
            let config = state.config_in_force();
            Box::new(move |z| Caller::new(peer.clone(), &config(), daemon_uid).may_see_zone(z))
        },
    )?;
    let headers = vec![
        (FROM_HEADER, live.from_us.to_string()),
        ("x-custos-timezone", config.timezone_name.clone()),
    ];
    let tz = config.timezone.clone();
    let from = live.from_us;
    let run = Box::new(move |out: &mut dyn std::io::Write| {
        let (sent, result) = live.run(out);
        let note = format!(
            "sent {} bytes, {} fragments of {} segment(s), {} to {}",
            sent.bytes,
            sent.fragments,
            sent.segments,
            show_time(from, &tz),
            show_time(sent.to_us, &tz)
        );
        match result {
            Ok(()) => Ok(note),
            Err(e) => Err(Error::new(e.kind, format!("{}; {note}", e.message))),
        }
    });
    Ok(Stream {
        content_type: CONTENT_TYPE,
        headers,
        run,
        ranged: None,
        audit: StreamAudit {
            action: "view.live.finished".into(),
            role: String::new(),
            target: String::new(),
            reason: reason.to_owned(),
        },
    })
}

/// The camera's zone now, if it is configured; refuses a viewer of others.
pub(super) fn zone_of(config: &Config, caller: &Caller, id: &str) -> Result<Option<String>> {
    let zone = config.camera(id).map(|c| c.zone.clone());
    if let Some(z) = &zone
        && !caller.may_see_zone(z)
    {
        return Err(not_your_zone(caller, id, Some(z)));
    }
    Ok(zone)
}

/// Counts what reaches the connection, and whether it refused a write.
struct Counted<'a> {
    inner: &'a mut dyn std::io::Write,
    bytes: u64,
    failed: bool,
}

impl std::io::Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        match &r {
            Ok(n) => self.bytes += *n as u64,
            Err(_) => self.failed = true,
        }
        r
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.failed |= r.is_err();
        r
    }
}
