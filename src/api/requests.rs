//! Data-subject request endpoints (role `dpo`): the register, acts done for
//! a request (extension, closing, restriction and its lifting, an
//! objection's decision, a time correction, erasure), the answer letter, and
//! the compliance report that gathers them with the rest.
//! Routing, authorisation and auditing are `routes.rs`'s; this only does
//! the work. Writes go through a read-write connection of their own.

use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::{Action, Caller};
use super::params::{Query, parse_time};
use super::routes::Draft;
use crate::error::{Error, Result};
use crate::index::SharedIndex;
use crate::requests::{self, Kind, Outcome, Registration};

/// Checks a request id's shape (`R-2026-0001`) before it reaches a query.
pub fn check_request_id(id: &str) -> Result<()> {
    let ok = id.len() <= 32
        && id.starts_with("R-")
        && id[2..].split('-').count() == 2
        && id[2..]
            .split('-')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{:?} is not a request id; ids look like R-2026-0001 (`custosctl request list`)",
            id.escape_debug().to_string()
        )))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    kind: String,
    reference: Option<String>,
    received: Option<String>,
    requester: String,
    contact: String,
    description: Option<String>,
    identity_check: String,
    verified_by: Option<String>,
    cameras: Vec<String>,
    from: String,
    to: String,
}

const REGISTER_EXAMPLE: &str = r#"{"kind": "access", "requester": "Jonas Jonaitis", "contact": "jonas@example.lt", "identity_check": "passport shown at the front desk", "cameras": ["gate"], "from": "2027-01-10 10:30", "to": "2027-01-10 11:00"}"#;

/// Handles a request action on `/v1/requests/...`.
pub(super) fn handle(
    state: &ApiState,
    caller: &Caller,
    action: Action,
    rest: &[&str],
    query: &Query,
    req_body: &[u8],
    draft: &mut Draft,
) -> Result<Value> {
    let config = &state.config();
    let tz = &config.timezone;
    let now = state.clocks.realtime();
    let user = caller.peer.user_name();
    let id = match rest {
        ["requests", id, ..] => {
            let id = super::params::decode_path(id)?;
            draft.set_target(format!("request {}", id.escape_debug()));
            check_request_id(&id)?;
            Some(id)
        }
        _ => None,
    };
    let zone = || json!(config.timezone_name);
    match (action, rest, id) {
        (Action::RequestRead, ["requests"], None) => {
            query.only(&[])?;
            let ix = SharedIndex::new(state.read_index()?);
            let list = requests::list(&ix, config, now)?;
            Ok(json!({ "timezone": zone(), "requests": list }))
        }
        (Action::RequestRead, ["requests", _], Some(id)) => {
            query.only(&[])?;
            let ix = SharedIndex::new(state.read_index()?);
            let st = requests::status(&ix, config, &id, now)?;
            Ok(json!({ "timezone": zone(), "request": st }))
        }
        (Action::RequestRead, ["requests", _, "answer"], Some(id)) => {
            query.only(&["language"])?;
            let language: crate::notice::Language =
                query.get("language").unwrap_or("en").parse()?;
            let ix = SharedIndex::new(state.read_index()?);
            let findings = requests::access::findings(&ix, config, &id, now)?;
            let docs: Vec<Value> = requests::letter::render(&findings, config, language)
                .into_iter()
                .map(|d| json!({ "file_name": d.file_name, "contents": d.contents }))
                .collect();
            Ok(json!({ "timezone": zone(), "findings": findings, "documents": docs }))
        }
        (Action::RequestWrite, ["requests"], None) => {
            query.only(&[])?;
            let b: RegisterBody = super::params::json_body(req_body, REGISTER_EXAMPLE)?;
            let kind = Kind::parse(&b.kind)?;
            for c in &b.cameras {
                super::params::check_id("camera", c)?;
            }
            let received_us = match &b.received {
                Some(s) => parse_time(s, tz, now)?,
                None => now,
            };
            let (from_us, to_us) = (parse_time(&b.from, tz, now)?, parse_time(&b.to, tz, now)?);
            draft.set_target(format!(
                "new {} request, cameras {} from {} to {}",
                kind.as_str(),
                b.cameras.join(","),
                super::params::show_time(from_us, tz),
                super::params::show_time(to_us, tz)
            ));
            let reg = Registration {
                kind,
                reference: b.reference,
                received_us,
                requester: b.requester,
                contact: b.contact,
                description: b.description,
                identity_check: b.identity_check,
                verified_by: b.verified_by.unwrap_or_else(|| user.clone()),
                cameras: b.cameras,
                from_us,
                to_us,
            };
            // Refuse what can be refused before the audit entry: a window
            // that is too wide is an answer, not an act.
            requests::check_window(config, from_us, to_us)?;
            draft.intend()?;
            let index = state.write_index()?;
            let row = requests::register(&index, config, &reg, &user, now)?;
            draft.set_target(format!("request {}", row.id));
            let st = requests::status(&index, config, &row.id, now)?;
            Ok(json!({ "timezone": zone(), "request": st }))
        }
        (Action::RequestWrite, ["requests", _, "extend"], Some(id)) => {
            query.only(&[])?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct B {
                months: i8,
                reason: String,
                told: String,
            }
            let b: B = super::params::json_body(
                req_body,
                r#"{"months": 2, "reason": "footage of 12 cameras to review", "told": "2027-02-01"}"#,
            )?;
            draft.set_reason(&b.reason);
            draft.intend()?;
            let index = state.write_index()?;
            requests::extend(
                &index, config, &id, b.months, &b.reason, &b.told, &user, now,
            )?;
            let st = requests::status(&index, config, &id, now)?;
            Ok(json!({ "timezone": zone(), "request": st }))
        }
        (Action::RequestWrite, ["requests", _, "close"], Some(id)) => {
            query.only(&[])?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct B {
                outcome: Outcome,
                answer: String,
            }
            let b: B = super::params::json_body(
                req_body,
                r#"{"outcome": "answered", "answer": "letter sent by e-mail on 2027-02-10"}"#,
            )?;
            draft.set_reason(b.outcome.as_str());
            draft.intend()?;
            let index = state.write_index()?;
            requests::close(&index, &id, b.outcome, &b.answer, &user, now)?;
            let st = requests::status(&index, config, &id, now)?;
            Ok(json!({ "timezone": zone(), "request": st }))
        }
        (Action::RequestWrite, ["requests", _, "restrict"], Some(id)) => {
            query.only(&[])?;
            let b: Reason =
                super::params::json_body(req_body, r#"{"reason": "accuracy contested"}"#)?;
            draft.set_reason(&b.reason);
            draft.intend()?;
            let r = requests::restrict(&state.write_index()?, &id, &b.reason, &user, now)?;
            Ok(json!({ "timezone": zone(), "restrictions": r }))
        }
        (Action::RequestWrite, ["requests", _, "restrictions", n, "lift"], Some(id)) => {
            query.only(&[])?;
            let n: i64 = n.parse().map_err(|_| {
                Error::invalid(format!("{n:?} is not a restriction number (e.g. 3)"))
            })?;
            let b: Reason =
                super::params::json_body(req_body, r#"{"reason": "the date was corrected"}"#)?;
            draft.set_target(format!("request {id} restriction {n}"));
            draft.set_reason(&b.reason);
            draft.intend()?;
            let r = requests::lift(&state.write_index()?, &id, n, &b.reason, &user, now)?;
            Ok(json!({ "timezone": zone(), "restriction": r }))
        }
        (Action::RequestWrite, ["requests", _, "objection"], Some(id)) => {
            query.only(&[])?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct B {
                upheld: bool,
                reasoning: String,
            }
            let b: B = super::params::json_body(
                req_body,
                r#"{"upheld": true, "reasoning": "no overriding legitimate grounds"}"#,
            )?;
            draft.set_reason(if b.upheld { "upheld" } else { "rejected" });
            draft.intend()?;
            requests::decide_objection(
                &state.write_index()?,
                &id,
                b.upheld,
                &b.reasoning,
                &user,
                now,
            )?;
            let st = requests::status(&state.write_index()?, config, &id, now)?;
            Ok(json!({ "timezone": zone(), "request": st }))
        }
        (Action::RequestWrite, ["requests", _, "rectify"], Some(id)) => {
            query.only(&[])?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct B {
                camera: String,
                from: String,
                to: String,
                offset: String,
                note: String,
            }
            let b: B = super::params::json_body(
                req_body,
                r#"{"camera": "gate", "from": "2027-01-10 10:00", "to": "2027-01-10 12:00", "offset": "+1h", "note": "camera clock was an hour behind"}"#,
            )?;
            super::params::check_id("camera", &b.camera)?;
            let offset_us = parse_offset(&b.offset)?;
            let (from_us, to_us) = (parse_time(&b.from, tz, now)?, parse_time(&b.to, tz, now)?);
            draft.set_target(format!("request {id} camera {}", b.camera));
            draft.set_reason(&b.note);
            draft.intend()?;
            let c = requests::rectify(
                &state.write_index()?,
                &id,
                &b.camera,
                from_us,
                to_us,
                offset_us,
                &b.note,
                &user,
                now,
            )?;
            Ok(json!({ "timezone": zone(), "correction": c }))
        }
        (Action::RequestErase, ["requests", _, "erase"], Some(id)) => {
            query.only(&[])?;
            let b: Reason =
                super::params::json_body(req_body, r#"{"reason": "erasure requested (004 §29)"}"#)?;
            draft.set_reason(&b.reason);
            draft.intend()?;
            let r = requests::erase(
                &state.write_index()?,
                config,
                &state.leases,
                &id,
                &user,
                now,
            )?;
            Ok(json!({ "timezone": zone(), "erasure": r }))
        }
        _ => Err(Error::not_found(
            "no such request endpoint; see docs/api.md",
        )),
    }
}

/// `GET /v1/compliance`: the report for an auditor, and the same as HTML.
/// Verifies the whole audit chain first.
pub(super) fn compliance(
    state: &ApiState,
    config: &crate::config::Config,
    now: crate::clock::UnixMicros,
) -> Result<Value> {
    let audit = state.audit.verify(None)?;
    let index = state.read_index()?;
    let report = crate::compliance::report(&index, config, &state.leases, audit, now)?;
    let html = crate::compliance::html(&report, config);
    Ok(json!({ "timezone": config.timezone_name, "report": report, "html": html }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: String,
}

/// `+1h`, `-30m`, `+1h 30m`: how far the recorded time is off (the true
/// time is the recorded one plus this).
pub fn parse_offset(s: &str) -> Result<i64> {
    let s = s.trim();
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let d = humantime::parse_duration(rest.trim()).map_err(|e| {
        Error::invalid(format!(
            "offset {s:?} is not a duration ({e}); write e.g. +1h or -30m"
        ))
    })?;
    let us = i64::try_from(d.as_micros())
        .ok()
        .filter(|us| *us <= 366 * 86_400 * 1_000_000)
        .ok_or_else(|| Error::invalid(format!("offset {s:?} is more than a year")))?;
    Ok(sign * us)
}
