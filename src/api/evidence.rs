//! Evidence endpoints (role `evidence`; reads also `dpo`): cases, holds,
//! review extensions, closing, the disclosure register and the node's
//! public key. Routing, authorisation and auditing are `routes.rs`'s; this
//! only does the work. Writes go through a read-write connection of their
//! own, opened per request.

use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::{Action, Caller};
use super::params::Query;
use super::routes::Draft;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::evidence::{self, CaseRequest, HoldRequest};
use crate::index::Index;
use crate::index::SharedIndex;

/// The body of `POST /v1/exports`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportBody {
    camera: String,
    from: String,
    to: String,
    case: Option<String>,
    recipient: String,
    reason: String,
    legal_basis: Option<String>,
}

/// `POST /v1/exports`: checks the request and prepares the package (sources
/// leased and re-hashed, clips laid out) before answering, so a refusal is
/// an ordinary error reply; returns what streams it once the request's
/// audit entry is written.
pub(super) fn export(
    state: &ApiState,
    caller: &Caller,
    req_body: &[u8],
    draft: &mut Draft,
) -> Result<super::routes::StreamFn> {
    let config = state.config();
    let b: ExportBody = super::params::json_body(
        req_body,
        r#"{"camera": "cam1", "from": "2026-11-20T10:00:00Z", "to": "2026-11-20T10:05:00Z", "case": "2026-0042", "recipient": "Vilnius police, officer J. Jonaitis", "reason": "theft investigation 12-3-456"}"#,
    )?;
    super::params::check_id("camera", &b.camera)?;
    if let Some(c) = &b.case {
        evidence::validate_case_id(c)?;
    }
    let tz = &config.timezone;
    let now = state.clocks.realtime();
    let (from_us, to_us) = (
        super::params::parse_time(&b.from, tz, now)?,
        super::params::parse_time(&b.to, tz, now)?,
    );
    draft.set_target(format!(
        "camera {} from {} to {}{} for {}",
        b.camera,
        super::params::show_time(from_us, tz),
        super::params::show_time(to_us, tz),
        b.case
            .as_deref()
            .map(|c| format!(" case {c}"))
            .unwrap_or_default(),
        b.recipient.escape_debug(),
    ));
    draft.set_reason(&b.reason);
    if let Some(zone) = config.footage_zone(&b.camera)
        && !caller.may_see_zone(zone)
    {
        return Err(Error::new(
            crate::error::ErrorKind::PermissionDenied,
            format!(
                "{} may not export footage of zone {}",
                caller.peer.describe(),
                zone
            ),
        ));
    }
    let request = crate::export::Request {
        camera: b.camera,
        from_us,
        to_us,
        case: b.case,
        recipient: b.recipient,
        reason: b.reason,
        legal_basis: b.legal_basis,
        exporter: crate::export::manifest::Exporter {
            user: caller.peer.user_name(),
            uid: caller.peer.uid,
        },
    };
    // One connection for the whole export: its checks, then the disclosure
    // row it writes at the end.
    let index = SharedIndex::new(Index::open(&state.index_path)?);
    let prepared = crate::export::prepare(&index, config.clone(), &state.leases, &request)?;
    let (key, clocks) = (state.node_key.clone(), state.clocks.clone());
    Ok(Box::new(move |out: &mut dyn std::io::Write| {
        let mut sink = crate::export::stream::StreamSink::new(out);
        let result = prepared.write(&index, &key, &mut sink, clocks.realtime());
        match result {
            Ok(m) => {
                let bytes: u64 = m.files.iter().map(|f| f.bytes).sum();
                Ok(format!(
                    "sent {} files, {bytes} bytes, {} to {}",
                    m.files.len(),
                    m.actual.from.utc,
                    m.actual.to.utc
                ))
            }
            Err(e) => {
                sink.fail(&e);
                Err(e)
            }
        }
    }))
}

/// Handles an evidence action on `/v1/<rest...>`.
pub(super) fn handle(
    state: &ApiState,
    caller: &Caller,
    action: Action,
    rest: &[&str],
    query: &Query,
    req_body: &[u8],
    draft: &mut Draft,
) -> Result<Value> {
    let config: &Config = &state.config();
    let now = state.clocks.realtime();
    let user = caller.peer.user_name();
    let case_id = match rest {
        ["cases", id, ..] => {
            let id = super::params::decode_path(id)?;
            draft.set_target(format!("case {}", id.escape_debug()));
            evidence::validate_case_id(&id)?;
            Some(id)
        }
        _ => None,
    };
    match (action, rest, case_id) {
        (Action::CaseRead, ["cases"], None) => {
            query.only(&[])?;
            let ix = SharedIndex::new(state.read_index()?);
            let ids: Vec<String> = ix.lock().cases()?.into_iter().map(|c| c.id).collect();
            let mut cases = Vec::new();
            for id in ids {
                cases.push(evidence::case_status(&ix, &id, now)?);
            }
            Ok(json!({ "timezone": config.timezone_name, "cases": cases }))
        }
        (Action::CaseRead, ["cases", _], Some(id)) => {
            query.only(&[])?;
            let ix = SharedIndex::new(state.read_index()?);
            let st = evidence::case_status(&ix, &id, now)?;
            let copies = ix.lock().case_copies(&id)?;
            Ok(json!({ "timezone": config.timezone_name, "case": st, "copies": copies }))
        }
        (Action::CaseRead, ["cases", _, "verify"], Some(id)) => {
            // Reads every copy back and compares it with the hash recorded
            // when it was made: evidence must be provably unchanged.
            query.only(&[])?;
            let ix = SharedIndex::new(state.read_index()?);
            evidence::case_status(&ix, &id, now)?;
            let copies = ix.lock().case_copies(&id)?.len();
            let bad = evidence::verify_copies(&ix, config, &id)?;
            // The vault's copies are read back too; a vault that cannot be
            // reached is said, not taken for a changed copy.
            let (vault, vault_error) = match &config.vault {
                None => (Vec::new(), None),
                Some(v) => {
                    let rows = ix.lock().case_vault_objects(&id)?;
                    match crate::vault::verify_case(v, &rows) {
                        Ok(checks) => (checks, None),
                        Err(e) => (Vec::new(), Some(e.to_string())),
                    }
                }
            };
            let vault_bad: Vec<String> = vault
                .iter()
                .filter(|c| c.problem.is_some() && c.state != crate::index::VaultState::Pending)
                .map(|c| format!("vault:{}", c.key))
                .collect();
            if !bad.is_empty() || !vault_bad.is_empty() {
                state.record_breach(&crate::breach::Detected::EvidenceChanged {
                    case: id.clone(),
                    files: bad
                        .iter()
                        .cloned()
                        .chain(vault_bad.iter().cloned())
                        .collect(),
                });
            }
            Ok(json!({
                "case": id,
                "copies": copies,
                "changed_or_missing": bad,
                "vault_configured": config.vault.is_some(),
                "vault": vault,
                "vault_changed_or_missing": vault_bad,
                "vault_error": vault_error,
            }))
        }
        (Action::CaseWrite, ["cases"], None) => {
            query.only(&[])?;
            let req: CaseRequest = super::params::json_body(
                req_body,
                r#"{"id": "2026-0042", "title": "...", "authority": "...", "authority_ref": "...", "legal_basis": "...", "review_days": 30}"#,
            )?;
            draft.set_target(format!("case {}", req.id.escape_debug()));
            draft.intend()?;
            let case = evidence::create_case(&state.write_index()?, config, &req, &user, now)?;
            Ok(json!({ "timezone": config.timezone_name, "case": case }))
        }
        (Action::CaseWrite, ["cases", _, "holds"], Some(id)) => {
            query.only(&[])?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct B {
                camera: String,
                from: String,
                to: String,
            }
            let b: B = super::params::json_body(
                req_body,
                r#"{"camera": "cam1", "from": "2026-11-20T10:00:00Z", "to": "2026-11-20T10:30:00Z"}"#,
            )?;
            let tz = &config.timezone;
            let from = super::params::parse_time(&b.from, tz, now)?;
            let to = super::params::parse_time(&b.to, tz, now)?;
            draft.set_target(format!("case {id} camera {}", b.camera.escape_debug()));
            let req = HoldRequest {
                case_id: id,
                camera: b.camera,
                from_us: from,
                to_us: to,
            };
            draft.intend()?;
            let r = evidence::add_hold(&state.write_index()?, config, &state.leases, &req, now)?;
            Ok(json!({ "timezone": config.timezone_name, "hold": r }))
        }
        (Action::CaseWrite, ["cases", _, "review"], Some(id)) => {
            query.only(&[])?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct B {
                days: u32,
                reason: String,
            }
            let b: B =
                super::params::json_body(req_body, r#"{"days": 60, "reason": "trial postponed"}"#)?;
            draft.set_reason(&b.reason);
            draft.intend()?;
            let c = evidence::extend_review(
                &state.write_index()?,
                config,
                &id,
                b.days,
                &b.reason,
                &user,
                now,
            )?;
            Ok(json!({ "timezone": config.timezone_name, "case": c }))
        }
        (Action::CaseClose, ["cases", _, "close"], Some(id)) => {
            query.only(&[])?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct B {
                reason: String,
            }
            let b: B = super::params::json_body(req_body, r#"{"reason": "proceedings ended"}"#)?;
            draft.set_reason(&b.reason);
            draft.intend()?;
            let r =
                evidence::close_case(&state.write_index()?, config, &id, &b.reason, &user, now)?;
            Ok(json!({ "timezone": config.timezone_name, "closed": r }))
        }
        (Action::Disclosures, ["disclosures"], None) => {
            query.only(&["camera", "since"])?;
            let camera = query.get("camera");
            if let Some(c) = camera {
                super::params::check_id("camera", c)?;
                draft.set_target(format!("camera {c}"));
            }
            let since = query
                .time("since", &config.timezone, now)?
                .unwrap_or(i64::MIN);
            let rows = state.read_index()?.disclosures(camera, since)?;
            Ok(json!({ "timezone": config.timezone_name, "disclosures": rows }))
        }
        (Action::KeyShow, ["key"], None) => {
            query.only(&[])?;
            let key = state.node_key.public();
            Ok(json!({
                "public_key": hex::encode(key.as_bytes()),
                "fingerprint": crate::export::key::fingerprint(&key),
            }))
        }
        _ => Err(Error::not_found(
            "no such evidence endpoint; see docs/api.md",
        )),
    }
}
