//! The secrets pass: reads the secrets file `secrets` names and attaches its
//! credentials to cameras (by `credentials` key, or else by camera id).

use std::collections::BTreeSet;

use crate::config::secrets::{Secrets, check_mode, read_secrets};

use super::*;

impl Builder<'_, '_> {
    /// Reads the secrets file the configuration names.
    pub(super) fn load_secrets(&mut self, credentials_directory: Option<&Path>) {
        let at = root().key("secrets");
        let path = match &self.secrets {
            None => {
                self.apply_secrets(&Secrets::default());
                return;
            }
            Some(SecretsSource::File(p)) => p.clone(),
            Some(SecretsSource::Credential(name)) => match credentials_directory {
                Some(dir) => dir.join(name),
                None => {
                    self.err(
                        &at,
                        format!(
                            "refers to the systemd credential \"{name}\", but $CREDENTIALS_DIRECTORY is not set; \
                             run under systemd with LoadCredential={name}:/etc/custos/secrets.toml, \
                             or give the secrets file's path"
                        ),
                    );
                    return;
                }
            },
        };
        match read_secrets(&path) {
            Ok(text) => {
                check_mode(&path, &mut self.warnings);
                let secrets = parse_secrets(&text, &path, &mut self.errors, &mut self.warnings);
                self.apply_secrets(&secrets);
            }
            Err(e) => self.err(
                &at,
                format!(
                    "cannot read secrets file {}: {e}; create it (chmod 0600) with [camera.KEY] \
                     username/password tables, or remove secrets = if no camera needs credentials",
                    path.display()
                ),
            ),
        }
    }

    /// Attaches the alert secrets, and reports what `[alerts]` needs and the
    /// secrets file lacks.
    fn apply_alert_secrets(&mut self, secrets: &Secrets) {
        let at = root().key("alerts");
        if let Some(email) = &mut self.alerts.email {
            email.password = secrets.smtp_password.clone();
            if email.user.is_some() && email.password.is_none() {
                let m = format!(
                    "smtp_user is set but the secrets file has no [alerts] smtp_password; add it \
                     to {}",
                    secrets.path.display()
                );
                self.err(&at.key("smtp_user"), m);
            }
        }
        if let Some(hook) = &mut self.alerts.webhook {
            hook.secret = secrets.webhook_secret.clone();
            if hook.secret.is_none() {
                let m = "a webhook needs [alerts] webhook_secret in the secrets file (at least 16 \
                         characters): the receiver checks each alert's signature with it";
                self.err(&at.key("webhook_url"), m);
            }
        }
    }

    /// Attaches the vault's credential; without one the vault cannot work.
    fn apply_vault_secrets(&mut self, secrets: &Secrets) {
        let Some(vault) = &mut self.vault else {
            if secrets.vault_table {
                self.warnings.push(ConfigError::new(
                    &secrets.path,
                    None,
                    "vault",
                    "holds a vault credential but the configuration has no [vault]; remove it",
                ));
            }
            return;
        };
        match &secrets.vault_key {
            Some((id, key)) => {
                vault.access_key_id = Some(id.clone());
                vault.secret_access_key = Some(key.clone());
            }
            None if secrets.vault_table => {} // its table is broken: reported there
            None => {
                let m = if secrets.path.as_os_str().is_empty() {
                    format!(
                        "the vault needs a credential, and no secrets file is configured; add \
                         secrets = \"/etc/custos/secrets.toml\" at the top of {} and a [vault] \
                         table with access_key_id and secret_access_key in it",
                        self.src.file.display()
                    )
                } else {
                    format!(
                        "the vault needs a credential: add a [vault] table with access_key_id and \
                         secret_access_key to {}",
                        secrets.path.display()
                    )
                };
                self.err(&root().key("vault"), m);
            }
        }
    }

    /// Attaches credentials to cameras; reports keys that name no entry.
    pub(super) fn apply_secrets(&mut self, secrets: &Secrets) {
        self.apply_alert_secrets(secrets);
        self.apply_vault_secrets(secrets);
        let configured = self.secrets.is_some() || !secrets.path.as_os_str().is_empty();
        let mut used: BTreeSet<String> = BTreeSet::new();
        let mut problems = Vec::new();
        for entry in &mut self.cameras {
            let at = root().key("camera").index(entry.index).key("credentials");
            match &entry.credentials_key {
                Some(k) if k.is_empty() => {}
                Some(k) => match secrets.entries.get(k) {
                    Some(c) => {
                        entry.camera.credentials = Some(c.clone());
                        used.insert(k.clone());
                    }
                    None if !configured => problems.push((
                        at,
                        format!(
                            "names credentials \"{k}\", but no secrets file is configured; add \
                             secrets = \"/etc/custos/secrets.toml\" at the top of {}",
                            self.src.file.display()
                        ),
                    )),
                    None if secrets.lines.contains_key(k) => {} // its entry is broken: reported there
                    None => problems.push((
                        at,
                        format!(
                            "no [camera.{k}] entry in secrets file {}; add one with username and password, \
                             or correct the key",
                            secrets.path.display()
                        ),
                    )),
                },
                None => {
                    if let Some(c) = secrets.entries.get(&entry.camera.id) {
                        entry.camera.credentials = Some(c.clone());
                        used.insert(entry.camera.id.clone());
                    }
                }
            }
        }
        for (at, m) in problems {
            self.err(&at, m);
        }
        for (key, line) in &secrets.lines {
            if !used.contains(key) && secrets.entries.contains_key(key) {
                self.warnings.push(ConfigError::new(
                    &secrets.path,
                    *line,
                    format!("camera.{key}"),
                    "is used by no camera (no camera has this id or credentials key); remove it",
                ));
            }
        }
    }
}
