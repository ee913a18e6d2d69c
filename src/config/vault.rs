//! `[vault]` as checked: where the evidence vault is and how it locks
//! (see `crate::vault`; read in `parse/vault.rs`).

use std::path::PathBuf;

use super::Secret;

/// How the vault locks an object (S3 Object Lock retention modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultLockMode {
    /// Nobody can delete or shorten it before its date, except a
    /// credential holding the bypass permission (the daemon's, to delete a
    /// closed case's copies).
    Governance,
    /// Nobody can delete or shorten it before its date, not even the
    /// bucket's owner.
    Compliance,
}

impl VaultLockMode {
    /// As the S3 API spells it.
    pub fn s3_name(self) -> &'static str {
        match self {
            VaultLockMode::Governance => "GOVERNANCE",
            VaultLockMode::Compliance => "COMPLIANCE",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VaultLockMode::Governance => "governance",
            VaultLockMode::Compliance => "compliance",
        }
    }
}

/// What happens to a closed case's vault copies once their legal hold is
/// lifted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultOnClose {
    /// Deleted at once, with the governance bypass.
    Delete,
    /// Left until their retain-until date, then deleted.
    Expire,
}

impl VaultOnClose {
    pub fn as_str(self) -> &'static str {
        match self {
            VaultOnClose::Delete => "delete",
            VaultOnClose::Expire => "expire",
        }
    }
}

/// `[vault]`: a copy of every evidence file on an S3 bucket with Object
/// Lock (see `crate::vault`). Its credentials are `[vault]` of the secrets
/// file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultConfig {
    /// `http(s)://host:port`; requests are path-style.
    pub endpoint: url::Url,
    pub bucket: String,
    /// Default `us-east-1` (what most self-run stores accept).
    pub region: String,
    pub lock_mode: VaultLockMode,
    pub on_close: VaultOnClose,
    /// This server's part of the bucket: every key starts `PREFIX/`, so
    /// servers sharing the bucket never write each other's keys. Default
    /// the host name.
    pub prefix: String,
    /// A PEM file of the CA that signed the store's certificate: trusted
    /// instead of the public (Mozilla) roots, so only that CA's servers are.
    pub ca_file: Option<PathBuf>,
    pub access_key_id: Option<Secret>,
    pub secret_access_key: Option<Secret>,
}
