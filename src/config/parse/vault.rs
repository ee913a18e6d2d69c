//! `[vault]`: the S3 bucket with Object Lock that keeps a copy of every
//! evidence file; its credentials come from the secrets file's `[vault]`
//! table (`credentials.rs`).

use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVault {
    endpoint: String,
    bucket: String,
    region: Option<String>,
    lock_mode: Option<String>,
    on_close: Option<String>,
    prefix: Option<String>,
    ca_file: Option<PathBuf>,
}

/// S3 bucket naming: 3 to 63 of lowercase letters, digits, dots and
/// hyphens, starting and ending with a letter or digit.
fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A node prefix: one path segment of letters, digits, `.`, `_`, `-`.
pub(crate) fn valid_prefix(p: &str) -> bool {
    (1..=63).contains(&p.len())
        && p.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        && !p.starts_with('.')
}

/// This machine's name, as the default node prefix.
fn host_name() -> Option<String> {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .map(|h| h.split('.').next().unwrap_or_default().to_owned())
        .filter(|h| valid_prefix(h))
}

impl Builder<'_, '_> {
    pub(super) fn read_vault(&mut self) {
        let Some(raw) = self.section::<RawVault>("vault") else {
            return;
        };
        let at = root().key("vault");
        let endpoint = match url::Url::parse(&raw.endpoint) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                if u.scheme() == "http"
                    && !u.host_str().is_some_and(super::alerts::is_loopback_host)
                {
                    self.warn(
                        &at.key("endpoint"),
                        format!(
                            "{:?} is plain HTTP: evidence footage would cross the network \
                             unencrypted; use https (with ca_file for the municipality's own CA)",
                            raw.endpoint
                        ),
                    );
                }
                if u.query().is_some() || u.username() != "" || u.password().is_some() {
                    self.err(
                        &at.key("endpoint"),
                        "give only scheme, host and port (credentials belong in the secrets \
                         file's [vault] table)",
                    );
                }
                Some(u)
            }
            Ok(_) => {
                self.err(
                    &at.key("endpoint"),
                    format!(
                        "{:?}: give the store's http(s) address, e.g. \"https://s3.example.lt:9000\"",
                        raw.endpoint
                    ),
                );
                None
            }
            Err(e) => {
                self.err(
                    &at.key("endpoint"),
                    format!("{:?} is not a URL: {e}", raw.endpoint),
                );
                None
            }
        };
        if !valid_bucket(&raw.bucket) {
            self.err(
                &at.key("bucket"),
                format!(
                    "{:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and \
                     hyphens)",
                    raw.bucket
                ),
            );
        }
        let lock_mode = match raw.lock_mode.as_deref().unwrap_or("governance") {
            "governance" => VaultLockMode::Governance,
            "compliance" => VaultLockMode::Compliance,
            other => {
                self.err(
                    &at.key("lock_mode"),
                    format!("{other:?} is not governance or compliance"),
                );
                VaultLockMode::Governance
            }
        };
        let on_close = match raw.on_close.as_deref() {
            None if lock_mode == VaultLockMode::Compliance => VaultOnClose::Expire,
            None | Some("delete") => VaultOnClose::Delete,
            Some("expire") => VaultOnClose::Expire,
            Some(other) => {
                self.err(
                    &at.key("on_close"),
                    format!("{other:?} is not delete or expire"),
                );
                VaultOnClose::Expire
            }
        };
        if lock_mode == VaultLockMode::Compliance && on_close == VaultOnClose::Delete {
            self.err(
                &at.key("on_close"),
                "\"delete\" cannot work with lock_mode = \"compliance\": nobody can delete a \
                 compliance-locked object before its retain-until date; use on_close = \
                 \"expire\", or lock_mode = \"governance\"",
            );
        }
        let prefix = match raw.prefix {
            Some(p) => {
                if !valid_prefix(&p) {
                    self.err(
                        &at.key("prefix"),
                        format!(
                            "{p:?}: give one name of letters, digits, '.', '_' and '-' (no '/'), \
                             unique to this server, e.g. prefix = \"school-12\""
                        ),
                    );
                }
                p
            }
            None => match host_name() {
                Some(h) => h,
                None => {
                    self.err(
                        &at.key("prefix"),
                        "is missing and this machine's host name cannot serve as one; give a \
                         name unique to this server, e.g. prefix = \"school-12\"",
                    );
                    String::new()
                }
            },
        };
        let ca_file = raw.ca_file.map(|p| {
            let key = at.key("ca_file");
            self.path_value(&key, &p)
        });
        let region = raw.region.unwrap_or_else(|| "us-east-1".to_owned());
        self.non_empty(&at.key("region"), &region, "give the store's region");
        if let Some(endpoint) = endpoint {
            self.vault = Some(VaultConfig {
                endpoint,
                bucket: raw.bucket,
                region,
                lock_mode,
                on_close,
                prefix,
                ca_file,
                access_key_id: None,
                secret_access_key: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_and_prefix_names() {
        assert!(valid_bucket("custos-evidence"));
        assert!(!valid_bucket("Custos"));
        assert!(!valid_bucket("ab"));
        assert!(!valid_bucket("-abc"));
        assert!(valid_prefix("school-12"));
        assert!(!valid_prefix("a/b"));
        assert!(!valid_prefix(".."));
        assert!(!valid_prefix(""));
    }
}
