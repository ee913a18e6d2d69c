//! The daemon's own settings: `timezone`, `secrets`, `[daemon]`, `[retention]`,
//! `[api]` and `[audit]`; each key absent keeps its default from `config`.

use serde::Deserialize;

use crate::config::secrets::CREDENTIAL_PREFIX;

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    state_dir: Option<PathBuf>,
    socket: Option<PathBuf>,
    socket_group: Option<String>,
    stall_timeout: Option<String>,
    retry_max: Option<String>,
    shutdown_timeout: Option<String>,
    max_retention_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    interval: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    max_body_bytes: Option<u64>,
    metrics_listen: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    retention_years: Option<u32>,
}

impl Builder<'_, '_> {
    pub(super) fn read_timezone(&mut self) {
        let at = root().key("timezone");
        let Some(name) = self.top_string("timezone") else {
            let tz = jiff::tz::TimeZone::system();
            let name = tz.iana_name().unwrap_or("system").to_owned();
            self.timezone = Some((tz, name));
            return;
        };
        match jiff::tz::TimeZone::get(&name) {
            Ok(tz) => self.timezone = Some((tz, name)),
            Err(_) => self.err(
                &at,
                format!(
                    "unknown time zone \"{name}\"; use an IANA name such as \"Europe/Vilnius\" or \
                     \"Europe/Riga\", or remove the key to use the system's time zone"
                ),
            ),
        }
    }

    pub(super) fn read_secrets_key(&mut self) {
        let at = root().key("secrets");
        let Some(value) = self.top_string("secrets") else {
            return;
        };
        if let Some(name) = value.strip_prefix(CREDENTIAL_PREFIX) {
            if name.is_empty() || name.contains('/') {
                self.err(
                    &at,
                    format!(
                        "\"{value}\": a systemd credential name must be non-empty and contain no '/', \
                         e.g. \"credential:custos-secrets\""
                    ),
                );
                return;
            }
            self.secrets = Some(SecretsSource::Credential(name.to_owned()));
        } else if value.is_empty() {
            self.err(&at, "is empty; give the secrets file's path, or remove the key if no camera needs credentials");
        } else {
            self.secrets = Some(SecretsSource::File(self.resolve(Path::new(&value))));
        }
    }

    pub(super) fn read_daemon(&mut self) {
        let Some(raw) = self.section::<RawDaemon>("daemon") else {
            return;
        };
        let at = root().key("daemon");
        if let Some(p) = &raw.state_dir {
            self.daemon.state_dir = self.path_value(&at.key("state_dir"), p);
        }
        if let Some(p) = &raw.socket {
            self.daemon.socket = self.path_value(&at.key("socket"), p);
        }
        if let Some(g) = &raw.socket_group {
            let ok = !g.is_empty()
                && g.len() <= 32
                && g.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if ok {
                self.daemon.socket_group = g.clone();
            } else {
                self.err(
                    &at.key("socket_group"),
                    "is not a group name: give the name of the group whose members may use \
                     custosctl (e.g. \"custos-users\"), or a numeric gid",
                );
            }
        }
        self.daemon.stall_timeout = self.duration(
            &at.key("stall_timeout"),
            raw.stall_timeout.as_deref(),
            DEFAULT_STALL_TIMEOUT,
            DAEMON_TIMEOUT_RANGE,
        );
        self.daemon.retry_max = self.duration(
            &at.key("retry_max"),
            raw.retry_max.as_deref(),
            DEFAULT_RETRY_MAX,
            DAEMON_TIMEOUT_RANGE,
        );
        self.daemon.shutdown_timeout = self.duration(
            &at.key("shutdown_timeout"),
            raw.shutdown_timeout.as_deref(),
            DEFAULT_SHUTDOWN_TIMEOUT,
            DAEMON_TIMEOUT_RANGE,
        );
        if let Some(max) = raw.max_retention_days {
            let (lo, hi) = MAX_RETENTION_DAYS_RANGE;
            if (lo..=hi).contains(&max) {
                self.daemon.max_retention_days = max;
            } else {
                self.err(
                    &at.key("max_retention_days"),
                    format!(
                        "{max} is out of range; give {lo} to {hi} (days; default \
                         {DEFAULT_MAX_RETENTION_DAYS}, the longest period in the rules is one month, 003 §24.2)"
                    ),
                );
            }
        }
    }

    pub(super) fn read_retention(&mut self) {
        let Some(raw) = self.section::<RawRetention>("retention") else {
            return;
        };
        self.retention.interval = self.duration(
            &root().key("retention").key("interval"),
            raw.interval.as_deref(),
            DEFAULT_RETENTION_INTERVAL,
            RETENTION_INTERVAL_RANGE,
        );
    }

    pub(super) fn read_api_audit(&mut self) {
        let raw_api = self.section::<RawApi>("api");
        if let Some(addr) = raw_api.as_ref().and_then(|r| r.metrics_listen.as_deref()) {
            let key = root().key("api").key("metrics_listen");
            match addr.parse::<std::net::SocketAddr>() {
                Ok(a) if a.ip().is_loopback() => self.api.metrics_listen = Some(a),
                Ok(a) => self.err(
                    &key,
                    format!(
                        "{a} is not a loopback address; the metrics port has no \
                         authentication, so give e.g. \"127.0.0.1:9464\" and let a local agent or \
                         an SSH tunnel carry the scrape"
                    ),
                ),
                Err(_) => self.err(
                    &key,
                    format!("{addr:?} is not an address and port; write e.g. \"127.0.0.1:9464\""),
                ),
            }
        }
        if let Some(raw) = raw_api
            && let Some(n) = raw.max_body_bytes
        {
            let (lo, hi) = API_MAX_BODY_BYTES_RANGE;
            if (lo..=hi).contains(&n) {
                self.api.max_body_bytes = n;
            } else {
                self.err(
                    &root().key("api").key("max_body_bytes"),
                    format!("{n} is out of range; give {lo} to {hi} (bytes)"),
                );
            }
        }
        if let Some(raw) = self.section::<RawAudit>("audit")
            && let Some(n) = raw.retention_years
        {
            let (lo, hi) = AUDIT_RETENTION_YEARS_RANGE;
            if (lo..=hi).contains(&n) {
                self.audit.retention_years = n;
            } else {
                self.err(
                    &root().key("audit").key("retention_years"),
                    format!("{n} is out of range; give {lo} to {hi} (years)"),
                );
            }
        }
    }
}
