//! What the vault holds of one case: read back and checked (`case
//! verify`), and listed across every server sharing the bucket (`vault
//! list`). Both run in an API request, with a client of their own.

use crate::config::VaultConfig;
use crate::error::Result;
use crate::index::{VaultObjectRow, VaultState};

use super::Store;

/// The verdict on one of this server's vault objects.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VaultCheck {
    pub key: String,
    pub state: VaultState,
    /// None: read back whole, same SHA-256 and size, locked as recorded.
    pub problem: Option<String>,
}

/// Reads back every stored object of a case (`rows`, this server's) and
/// compares it with the copy's hash; checks its lock. Objects not stored
/// (pending, deleted) are reported by state, not read.
pub fn verify_case(vault: &VaultConfig, rows: &[VaultObjectRow]) -> Result<Vec<VaultCheck>> {
    let store = Store::new(vault)?;
    let mut checks = Vec::new();
    for row in rows {
        let problem = match (row.state, row.version_id.as_deref()) {
            (VaultState::Stored | VaultState::Expiring, Some(version)) => {
                check_one(&store, row, version)?
            }
            (VaultState::Pending, _) => Some(format!(
                "not yet in the vault (queued; {})",
                row.last_error.as_deref().unwrap_or("being uploaded")
            )),
            _ => None,
        };
        checks.push(VaultCheck {
            key: row.key.clone(),
            state: row.state,
            problem,
        });
    }
    Ok(checks)
}

fn check_one(store: &Store, row: &VaultObjectRow, version: &str) -> Result<Option<String>> {
    let Some(info) = store.head(&row.key, Some(version))? else {
        return Ok(Some(format!("version {version} is missing from the vault")));
    };
    let (sha, bytes) = store.sha256_of(&row.key, version)?;
    let mut wrong = Vec::new();
    if sha != row.sha256 {
        wrong.push(format!(
            "its content hashes to {}, not {}",
            hex::encode(sha),
            hex::encode(row.sha256)
        ));
    }
    if bytes != row.bytes {
        wrong.push(format!("it has {bytes} bytes, not {}", row.bytes));
    }
    if row.state == VaultState::Stored && row.case_open && !info.legal_hold {
        wrong.push("its legal hold is off while the case is open".to_owned());
    }
    let locked = row.locked_until_us.unwrap_or(row.retain_until_us);
    if info.retain_until_us.unwrap_or(0) < locked - 1_000_000 {
        wrong.push(format!(
            "it is locked until {}, not {}",
            info.retain_until_us
                .map_or("never".into(), crate::clock::format_utc),
            crate::clock::format_utc(locked)
        ));
    }
    Ok((!wrong.is_empty()).then(|| wrong.join("; ")))
}

/// One object version of a case in the bucket, from any server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListedObject {
    /// The server's prefix.
    pub node: String,
    pub key: String,
    pub version_id: String,
    pub bytes: u64,
    pub last_modified: String,
    pub sha256: Option<String>,
    pub mode: Option<String>,
    pub retain_until_us: Option<i64>,
    pub legal_hold: bool,
}

/// Every version of `case` in the bucket, under every server's prefix.
pub fn list_case(vault: &VaultConfig, case: &str) -> Result<Vec<ListedObject>> {
    let store = Store::new(vault)?;
    let (_, nodes) = store.list_versions("", Some("/"))?;
    let mut out = Vec::new();
    for node in nodes {
        let prefix = format!("{node}{case}/");
        let (versions, _) = store.list_versions(&prefix, None)?;
        for v in versions.into_iter().filter(|v| !v.delete_marker) {
            let info = store.head(&v.key, Some(&v.version_id))?;
            out.push(ListedObject {
                node: node.trim_end_matches('/').to_owned(),
                key: v.key,
                version_id: v.version_id,
                bytes: v.bytes,
                last_modified: v.last_modified,
                sha256: info.as_ref().and_then(|i| i.sha256.clone()),
                mode: info.as_ref().and_then(|i| i.mode.clone()),
                retain_until_us: info.as_ref().and_then(|i| i.retain_until_us),
                legal_hold: info.is_some_and(|i| i.legal_hold),
            });
        }
    }
    Ok(out)
}
