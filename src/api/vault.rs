//! Vault endpoints: what the evidence vault holds and whether it works
//! (`GET /v1/vault`; operator, evidence, dpo, admin: counts and errors, no
//! case content), and a case's objects across every server sharing the
//! bucket (`GET /v1/vault/cases/{id}`; evidence, dpo). Also the vault
//! metrics. Routing, authorisation and auditing are `routes.rs`'s.

use serde_json::{Value, json};

use super::ApiState;
use super::auth::Action;
use super::params::Query;
use super::routes::Draft;
use crate::config::Config;
use crate::error::Result;

pub(super) fn handle(
    state: &ApiState,
    config: &Config,
    action: Action,
    rest: &[&str],
    query: &Query,
    draft: &mut Draft,
) -> Result<Value> {
    query.only(&[])?;
    let Some(vault) = &config.vault else {
        return Ok(json!({
            "configured": false,
            "note": "no [vault] is configured: evidence copies are kept on this server only",
        }));
    };
    match (action, rest) {
        (Action::VaultList, ["vault", "cases", id]) => {
            let id = super::params::decode_path(id)?;
            draft.set_target(format!("case {}", id.escape_debug()));
            crate::evidence::validate_case_id(&id)?;
            let here = state.read_index()?.case_vault_objects(&id)?;
            let objects = crate::vault::list_case(vault, &id)?;
            Ok(json!({
                "configured": true,
                "timezone": config.timezone_name,
                "case": id,
                "bucket": vault.bucket,
                "prefix": vault.prefix,
                "objects": objects,
                "this_server": here,
            }))
        }
        _ => {
            let ix = state.read_index()?;
            let check = state.vault.get().and_then(|s| s.lock_check());
            Ok(json!({
                "configured": true,
                "timezone": config.timezone_name,
                "endpoint": vault.endpoint.as_str(),
                "bucket": vault.bucket,
                "region": vault.region,
                "prefix": vault.prefix,
                "lock_mode": vault.lock_mode,
                "on_close": vault.on_close,
                "running": state.vault.get().is_some(),
                "lock_check": check,
                "counts": ix.vault_counts()?,
                "oldest_pending_us": ix.vault_oldest_pending()?,
                "last_error": ix.vault_last_error()?.map(|(key, error)| json!({"key": key, "error": error})),
            }))
        }
    }
}

/// The vault families of `/v1/metrics`.
pub(super) fn metrics(state: &ApiState, config: &Config) -> Result<String> {
    if config.vault.is_none() {
        return Ok(String::new());
    }
    let ix = state.read_index()?;
    let now = state.clocks.realtime();
    let mut text = String::from(
        "# HELP custos_vault_objects Evidence copies in the vault's queue, by state.\n\
         # TYPE custos_vault_objects gauge\n",
    );
    for c in ix.vault_counts()? {
        text.push_str(&format!(
            "custos_vault_objects{{state=\"{}\"}} {}\n",
            c.state.as_str(),
            c.objects
        ));
    }
    let oldest = ix
        .vault_oldest_pending()?
        .map_or(0, |q| now.saturating_sub(q) / 1_000_000);
    let ok = state
        .vault
        .get()
        .and_then(|s| s.lock_check())
        .is_some_and(|c| c.error.is_none());
    text.push_str(&format!(
        "# HELP custos_vault_oldest_pending_seconds Age of the oldest evidence copy not yet confirmed by the vault.\n\
         # TYPE custos_vault_oldest_pending_seconds gauge\n\
         custos_vault_oldest_pending_seconds {oldest}\n\
         # HELP custos_vault_up Whether the vault's bucket answers with Object Lock enabled (last check).\n\
         # TYPE custos_vault_up gauge\n\
         custos_vault_up {}\n",
        u8::from(ok)
    ));
    Ok(text)
}
