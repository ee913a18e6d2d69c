//! Camera credentials: the secrets file, and the types that keep them out of
//! logs. Credentials are never written in the main file (a URL with
//! `user:pass@` is an error) and never printed: [`Credentials`] displays as
//! `***`, and URLs go through [`redact_url`] before they are logged.
//!
//! The secrets file:
//! ```toml
//! [camera.1A-foje-pietine]      # the key: a camera's id, or its `credentials` value
//! username = "custos"
//! password = "..."
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::diag::{ConfigError, KeyPath, Source};
use super::units::split_url;

/// A camera's username and password. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    key: String,
    username: String,
    password: String,
}

impl Credentials {
    pub fn new(
        key: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Credentials {
            key: key.into(),
            username: username.into(),
            password: password.into(),
        }
    }

    /// The `[camera.KEY]` entry these came from.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// For the RTSP client only; never log it.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// For the RTSP client only; never log it.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The top-level `secrets` key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretsSource {
    /// A file; relative paths are resolved against the configuration's directory.
    File(PathBuf),
    /// `credential:NAME`: the file `$CREDENTIALS_DIRECTORY/NAME`, handed over by
    /// systemd's `LoadCredential=NAME:/etc/custos/secrets.toml`.
    Credential(String),
}

/// Prefix of [`SecretsSource::Credential`] in the file.
pub(crate) const CREDENTIAL_PREFIX: &str = "credential:";

/// A URL fit for logs: userinfo removed, every query value (and any bare query
/// token) replaced by `***`, fragment dropped.
///
/// `rtsp://admin:pw@10.0.0.5:554/s?channel=1&token=abc` becomes
/// `rtsp://10.0.0.5:554/s?channel=***&token=***`.
pub fn redact_url(url: &str) -> String {
    let parts = split_url(url);
    let mut out = String::with_capacity(url.len());
    if let Some(s) = parts.scheme {
        out.push_str(s);
        out.push_str("://");
    }
    out.push_str(parts.authority);
    out.push_str(parts.path);
    if let Some(q) = parts.query {
        out.push('?');
        for (i, pair) in q.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((k, _)) => {
                    out.push_str(k);
                    out.push_str("=***");
                }
                None if pair.is_empty() => {}
                None => out.push_str("***"),
            }
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredentials {
    username: String,
    password: String,
}

/// Passwords that cameras ship with or that people choose first; 004 §21
/// requires default passwords to be changed.
const WEAK_PASSWORDS: &[&str] = &[
    "admin", "12345", "123456", "1234567", "12345678", "888888", "666666", "password", "pass",
    "root", "ipcam", "camera",
];

/// A secret string (an SMTP password, a webhook key). `Debug` and
/// `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// For the one place that sends it; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `[alerts]` of the secrets file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlertSecrets {
    pub smtp_password: Option<String>,
    pub webhook_secret: Option<String>,
}

/// `[vault]` of the secrets file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVaultSecrets {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// A parsed secrets file.
#[derive(Debug, Default)]
pub(crate) struct Secrets {
    pub path: PathBuf,
    pub entries: BTreeMap<String, Credentials>,
    /// Every `[camera.KEY]` in the file, parsed or not, with its line.
    pub lines: BTreeMap<String, Option<usize>>,
    /// `[alerts] smtp_password`.
    pub smtp_password: Option<Secret>,
    /// `[alerts] webhook_secret`.
    pub webhook_secret: Option<Secret>,
    /// `[vault] access_key_id` and `secret_access_key`.
    pub vault_key: Option<(Secret, Secret)>,
    /// Whether the file has a `[vault]` table at all.
    pub vault_table: bool,
}

/// Reads and parses the secrets file at `path`. Read failures are the
/// caller's to report (they belong to the `secrets` key of the main file).
pub(crate) fn read_secrets(path: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

/// Parses a secrets file; errors and warnings name `path`.
pub(crate) fn parse_secrets(
    text: &str,
    path: &Path,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> Secrets {
    let mut secrets = Secrets {
        path: path.to_owned(),
        ..Secrets::default()
    };
    let src = match Source::parse(text, path) {
        Ok(s) => s,
        Err(es) => {
            errors.extend(es);
            return secrets;
        }
    };
    let root = KeyPath::root();
    let Some(toml::de::DeValue::Table(top)) = src.get(&root).map(|v| v.get_ref()) else {
        return secrets;
    };
    for (k, _) in top.iter() {
        if !matches!(k.get_ref().as_ref(), "camera" | "alerts" | "vault") {
            errors.push(src.error(
                &root.key(k.get_ref()),
                format!(
                    "unknown key `{}`; a secrets file holds [camera.KEY] tables, [alerts] \
                     (smtp_password, webhook_secret) and [vault] (access_key_id, \
                     secret_access_key)",
                    k.get_ref()
                ),
            ));
        }
    }
    let alerts = root.key("alerts");
    if src.get(&alerts).is_some()
        && let Some(raw) = src.de::<RawAlertSecrets>(&alerts, errors)
    {
        for (name, v) in [
            ("smtp_password", &raw.smtp_password),
            ("webhook_secret", &raw.webhook_secret),
        ] {
            if v.as_deref() == Some("") {
                errors.push(src.error(&alerts.key(name), "is empty"));
            }
        }
        if raw
            .webhook_secret
            .as_deref()
            .is_some_and(|w| !w.is_empty() && w.len() < 16)
        {
            errors.push(src.error(
                &alerts.key("webhook_secret"),
                "is shorter than 16 characters; use a long random key (e.g. `openssl rand -hex 32`)",
            ));
        }
        secrets.smtp_password = raw.smtp_password.filter(|p| !p.is_empty()).map(Secret::new);
        secrets.webhook_secret = raw
            .webhook_secret
            .filter(|p| p.len() >= 16)
            .map(Secret::new);
    }
    let vault = root.key("vault");
    if src.get(&vault).is_some() {
        secrets.vault_table = true;
        if let Some(raw) = src.de::<RawVaultSecrets>(&vault, errors) {
            match (raw.access_key_id, raw.secret_access_key) {
                (Some(id), Some(key)) if !id.is_empty() && !key.is_empty() => {
                    secrets.vault_key = Some((Secret::new(id), Secret::new(key)));
                }
                _ => errors.push(src.error(
                    &vault,
                    "needs both access_key_id and secret_access_key, not empty: the vault's \
                     credential, which may lift legal holds and bypass governance retention \
                     (and nothing else)",
                )),
            }
        }
    }
    let cams = root.key("camera");
    let Some(value) = src.get(&cams) else {
        return secrets;
    };
    let toml::de::DeValue::Table(table) = value.get_ref() else {
        errors.push(src.error(
            &cams,
            "expected tables [camera.KEY] with username and password",
        ));
        return secrets;
    };
    for (k, _) in table.iter() {
        let key = k.get_ref().to_string();
        let at = cams.key(&key);
        secrets.lines.insert(key.clone(), src.line_of_path(&at));
        let Some(raw) = src.de::<RawCredentials>(&at, errors) else {
            continue;
        };
        if raw.username.is_empty() {
            errors.push(src.error(
                &at.key("username"),
                "is empty; give the camera account's user name",
            ));
        }
        if raw.password.is_empty() {
            errors.push(src.error(
                &at.key("password"),
                "is empty; set a password on the camera (004 §21)",
            ));
        } else if WEAK_PASSWORDS.contains(&raw.password.to_ascii_lowercase().as_str()) {
            warnings.push(src.error(
                &at.key("password"),
                "looks like a factory default or trivial password; change it on the camera (004 §21)",
            ));
        }
        secrets.entries.insert(
            key.clone(),
            Credentials::new(key, raw.username, raw.password),
        );
    }
    secrets
}

/// Warns if others may read the secrets file (mode & 0o004).
pub(crate) fn check_mode(path: &Path, warnings: &mut Vec<ConfigError>) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o004 != 0 {
            warnings.push(ConfigError::new(
                path,
                None,
                "",
                format!(
                    "is readable by every user on this machine (mode {:04o}); it holds camera passwords and keys: \
                     chmod 0600 it (or 0640 with the daemon's group custos, which nobody else joins)",
                    mode & 0o7777
                ),
            ));
        }
    }
}
