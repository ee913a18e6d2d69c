//! Breach register endpoints (role `dpo`): the records with their clocks, a
//! breach reported by a person, the DPO's notes (assessment, actions, the
//! authority question) and closing. The daemon opens records itself
//! (`ApiState::record_breach`).

use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::{Action, Caller};
use super::params::{Query, parse_time};
use super::routes::Draft;
use crate::error::{Error, Result};
use crate::index::{BreachUpdate, SharedIndex};

pub(super) fn handle(
    state: &ApiState,
    action: Action,
    rest: &[&str],
    query: &Query,
    req_body: &[u8],
    caller: &Caller,
    draft: &mut Draft,
) -> Result<Value> {
    query.only(&[])?;
    let config = state.config();
    let now = state.clocks.realtime();
    let user = caller.peer.user_name();
    let id = match rest {
        ["breaches", id, ..] => {
            draft.set_target(format!("breach {}", id.escape_debug()));
            Some(id.parse::<i64>().map_err(|_| {
                Error::invalid(format!(
                    "{:?} is not a breach number (e.g. 3; `custosctl breach list`)",
                    id.escape_debug().to_string()
                ))
            })?)
        }
        _ => None,
    };
    let zone = json!(config.timezone_name);
    match (action, rest, id) {
        (Action::BreachRead, ["breaches"], None) => {
            let list = crate::breach::list(&state.read_index()?, now)?;
            Ok(json!({ "timezone": zone, "breaches": list }))
        }
        (Action::BreachRead, ["breaches", _], Some(id)) => {
            let b = crate::breach::status(&SharedIndex::new(state.read_index()?), id, now)?;
            Ok(json!({ "timezone": zone, "breach": b }))
        }
        (Action::BreachWrite, ["breaches"], None) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct B {
                what: String,
            }
            let b: B = super::params::json_body(
                req_body,
                r#"{"what": "a USB stick with an export was lost on the bus"}"#,
            )?;
            draft.set_reason(&b.what);
            draft.intend()?;
            let id = crate::breach::report(&state.write_index()?, &b.what, &user, now)?;
            draft.set_target(format!("breach {id}"));
            let b = crate::breach::status(&state.write_index()?, id, now)?;
            Ok(json!({ "timezone": zone, "breach": b }))
        }
        (Action::BreachWrite, ["breaches", _, "note"], Some(id)) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct B {
                note: String,
                assessment: Option<String>,
                actions: Option<String>,
                notified_authority: Option<String>,
                not_notified: Option<String>,
            }
            let b: B = super::params::json_body(
                req_body,
                r#"{"note": "taken up", "assessment": "low risk: no footage left the server", "not_notified": "no risk to the people recorded (GDPR Art. 33(1))"}"#,
            )?;
            let notified = b
                .notified_authority
                .as_deref()
                .map(|t| parse_time(t, &config.timezone, now))
                .transpose()?;
            draft.set_reason(&b.note);
            draft.intend()?;
            let st = crate::breach::note(
                &state.write_index()?,
                id,
                &user,
                &b.note,
                &BreachUpdate {
                    assessment: b.assessment.as_deref(),
                    actions: b.actions.as_deref(),
                    authority_notified_us: notified,
                    not_notified_reason: b.not_notified.as_deref(),
                },
                now,
            )?;
            Ok(json!({ "timezone": zone, "breach": st }))
        }
        (Action::BreachWrite, ["breaches", _, "close"], Some(id)) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct B {
                note: String,
            }
            let b: B = super::params::json_body(
                req_body,
                r#"{"note": "chain restored from backup; keys rotated"}"#,
            )?;
            draft.set_reason(&b.note);
            draft.intend()?;
            let st = crate::breach::close(&state.write_index()?, id, &user, &b.note, now)?;
            Ok(json!({ "timezone": zone, "breach": st }))
        }
        _ => Err(Error::not_found("no such breach endpoint; see docs/api.md")),
    }
}
