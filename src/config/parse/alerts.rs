//! `[alerts]`: e-mail and webhook notification; their secrets come from the
//! secrets file's `[alerts]` table (`credentials.rs`).

use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    smtp_tls: Option<String>,
    smtp_user: Option<String>,
    smtp_ca_file: Option<PathBuf>,
    from: Option<String>,
    to: Option<Vec<String>>,
    email_events: Option<Vec<String>>,
    webhook_url: Option<String>,
    webhook_events: Option<Vec<String>>,
    camera_down_after: Option<String>,
    repeat_after: Option<String>,
}

/// An address of the form `name@domain`, without spaces or angle brackets.
fn looks_like_address(a: &str) -> bool {
    let Some((local, domain)) = a.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !a
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '<' | '>' | ',' | '"'))
}

pub(super) fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Builder<'_, '_> {
    fn events(&mut self, at: &KeyPath, raw: Option<Vec<String>>) -> Vec<String> {
        let Some(list) = raw else {
            return ALERT_EVENTS.iter().map(|e| e.to_string()).collect();
        };
        for e in &list {
            if !ALERT_EVENTS.contains(&e.as_str()) {
                self.err(
                    at,
                    format!(
                        "unknown event {e:?}; events are {}",
                        ALERT_EVENTS.join(", ")
                    ),
                );
            }
        }
        list
    }

    pub(super) fn read_alerts(&mut self) {
        let Some(raw) = self.section::<RawAlerts>("alerts") else {
            return;
        };
        let at = root().key("alerts");
        self.alerts.camera_down_after = self.duration(
            &at.key("camera_down_after"),
            raw.camera_down_after.as_deref(),
            AlertsConfig::default().camera_down_after,
            (Duration::from_secs(5), Duration::from_secs(86_400)),
        );
        self.alerts.repeat_after = self.duration(
            &at.key("repeat_after"),
            raw.repeat_after.as_deref(),
            AlertsConfig::default().repeat_after,
            (Duration::from_secs(60), Duration::from_secs(7 * 86_400)),
        );
        if let Some(host) = raw.smtp_host {
            let tls = match raw.smtp_tls.as_deref().unwrap_or("starttls") {
                "starttls" => SmtpTls::StartTls,
                "tls" => SmtpTls::Tls,
                "none" => SmtpTls::None,
                other => {
                    self.err(
                        &at.key("smtp_tls"),
                        format!("{other:?} is not starttls, tls or none"),
                    );
                    SmtpTls::StartTls
                }
            };
            if tls == SmtpTls::None && !is_loopback_host(&host) {
                self.err(
                    &at.key("smtp_tls"),
                    format!(
                        "\"none\" would send alerts and the password in clear to {host}; use \
                         starttls or tls, or a relay on this machine (smtp_host = \"127.0.0.1\")"
                    ),
                );
            }
            if host.trim().is_empty() {
                self.err(
                    &at.key("smtp_host"),
                    "is empty; give the mail server's name",
                );
            }
            let from = raw.from.unwrap_or_default();
            if !looks_like_address(&from) {
                self.err(
                    &at.key("from"),
                    "give the sender's address, e.g. from = \"custos@nvr1.example.lt\"",
                );
            }
            let to = match raw.to {
                Some(to) => to,
                None => self
                    .controller
                    .as_ref()
                    .map(|c| vec![c.dpo.email.clone()])
                    .unwrap_or_default(),
            };
            if to.is_empty() {
                self.err(&at.key("to"), "names nobody; give at least one address");
            }
            for a in &to {
                if !looks_like_address(a) {
                    self.err(&at.key("to"), format!("{a:?} is not an e-mail address"));
                }
            }
            let events = self.events(&at.key("email_events"), raw.email_events);
            let ca_file = raw.smtp_ca_file.map(|p| {
                let key = at.key("smtp_ca_file");
                let p = self.path_value(&key, &p);
                if tls == SmtpTls::None {
                    self.err(&key, "a CA is for TLS; smtp_tls is \"none\"");
                }
                p
            });
            self.alerts.email = Some(EmailAlerts {
                ca_file,
                port: raw.smtp_port.unwrap_or(match tls {
                    SmtpTls::StartTls => 587,
                    SmtpTls::Tls => 465,
                    SmtpTls::None => 25,
                }),
                host,
                tls,
                user: raw.smtp_user,
                password: None,
                from,
                to,
                events,
            });
        } else if raw.from.is_some() || raw.to.is_some() || raw.smtp_user.is_some() {
            self.err(
                &at.key("smtp_host"),
                "is missing: e-mail alerts need the mail server, e.g. smtp_host = \"smtp.example.lt\"",
            );
        }
        if let Some(u) = raw.webhook_url {
            let key = at.key("webhook_url");
            match url::Url::parse(&u) {
                Ok(url)
                    if url.scheme() == "http" && url.host_str().is_some_and(is_loopback_host) =>
                {
                    let events = self.events(&at.key("webhook_events"), raw.webhook_events);
                    self.alerts.webhook = Some(WebhookAlerts {
                        url,
                        secret: None,
                        events,
                    });
                }
                Ok(_) => self.err(
                    &key,
                    format!(
                        "{u:?}: webhooks are posted over plain HTTP to this machine only (e.g. \
                         \"http://127.0.0.1:9100/custos\"); relay from there to a remote service \
                         over TLS (https is not supported yet)"
                    ),
                ),
                Err(e) => self.err(&key, format!("{u:?} is not a URL: {e}")),
            }
        }
    }
}
