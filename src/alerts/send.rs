//! Sending what is queued: e-mail through lettre's SMTP transport (rustls),
//! the webhook by an HTTP/1.1 POST through hyper. Blocking: run it off the
//! API's threads.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::audit::AuditLog;
use crate::clock::UnixMicros;
use crate::config::{Config, EmailAlerts, SmtpTls, WebhookAlerts};
use crate::error::{Error, Result};
use crate::index::{AlertRow, AuditRecord, Index};

/// Attempts before an alert is given up (about a day with the backoff).
pub const MAX_ATTEMPTS: u32 = 30;
const FIRST_RETRY_US: i64 = 30_000_000;
const LAST_RETRY_US: i64 = 3_600_000_000;
const TIMEOUT: Duration = Duration::from_secs(10);

/// The webhook signature of `body` under `secret`: `sha256=<hex>` of its
/// HMAC-SHA256, sent as `X-Custos-Signature`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn backoff(attempts: u32) -> i64 {
    FIRST_RETRY_US
        .saturating_mul(1i64 << attempts.min(20))
        .min(LAST_RETRY_US)
}

/// Sends every alert due at `now_us` (at most `limit`), marks each sent or
/// to be retried, and audits each attempt. Returns how many were sent.
pub fn deliver_due(
    ix: &Index,
    config: &Config,
    audit: &AuditLog,
    now_us: UnixMicros,
    limit: usize,
) -> Result<usize> {
    let mut sent = 0;
    for row in ix.due_alerts(now_us, limit)? {
        let result = match row.channel.as_str() {
            "email" => match &config.alerts.email {
                Some(e) => send_email(e, &row),
                None => Err(Error::unavailable("e-mail alerts are no longer configured")),
            },
            _ => match &config.alerts.webhook {
                Some(w) => post_webhook(w, &row, now_us),
                None => Err(Error::unavailable("the webhook is no longer configured")),
            },
        };
        let outcome = match &result {
            Ok(()) => {
                ix.alert_sent(row.id, now_us)?;
                sent += 1;
                "ok".to_owned()
            }
            Err(e) => {
                let next = (row.attempts + 1 < MAX_ATTEMPTS)
                    .then(|| now_us.saturating_add(backoff(row.attempts)));
                ix.alert_failed(row.id, &e.to_string(), next)?;
                tracing::warn!(alert = row.id, channel = %row.channel, error = %e,
                    retry = next.is_some(), "an alert could not be sent");
                e.kind.as_str().to_owned()
            }
        };
        audit.append(AuditRecord {
            at_us: now_us,
            uid: nix::unistd::geteuid().as_raw(),
            user: "custosd".into(),
            pid: std::process::id() as i32,
            role: "system".into(),
            action: "alert.sent".into(),
            target: format!("{} {} (alert {})", row.channel, row.recipient, row.id),
            reason: row.subject.clone(),
            outcome,
        })?;
    }
    Ok(sent)
}

fn send_email(e: &EmailAlerts, row: &AlertRow) -> Result<()> {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{Message, SmtpTransport, Transport};
    let bad = |what: &str, err: String| Error::invalid(format!("alert e-mail {what}: {err}"));
    let mut message = Message::builder()
        .from(e.from.parse().map_err(|x| bad("sender", format!("{x}")))?)
        .subject(format!("[custos] {}", row.subject));
    for to in &e.to {
        message = message.to(to.parse().map_err(|x| bad("recipient", format!("{x}")))?);
    }
    let message = message
        .body(row.body.clone())
        .map_err(|x| bad("message", x.to_string()))?;
    let unreachable = |x: lettre::transport::smtp::Error| {
        Error::unavailable(format!("SMTP {}:{}: {x}", e.host, e.port))
    };
    let builder = match (&e.ca_file, e.tls) {
        (_, SmtpTls::None) => SmtpTransport::builder_dangerous(&e.host),
        (None, SmtpTls::StartTls) => SmtpTransport::starttls_relay(&e.host).map_err(unreachable)?,
        (None, SmtpTls::Tls) => SmtpTransport::relay(&e.host).map_err(unreachable)?,
        (Some(ca), tls) => {
            use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
            let pem = std::fs::read(ca).map_err(|x| Error::io("cannot read", ca, x))?;
            let cert = Certificate::from_pem(&pem).map_err(|x| {
                Error::invalid(format!("{} is not a PEM certificate: {x}", ca.display()))
            })?;
            let params = TlsParameters::builder(e.host.clone())
                .add_root_certificate(cert)
                .build_rustls()
                .map_err(unreachable)?;
            let tls = match tls {
                SmtpTls::StartTls => Tls::Required(params),
                _ => Tls::Wrapper(params),
            };
            SmtpTransport::builder_dangerous(&e.host).tls(tls)
        }
    };
    let mut builder = builder.port(e.port).timeout(Some(TIMEOUT));
    if let (Some(user), Some(password)) = (&e.user, &e.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose().into()));
    }
    builder
        .build()
        .send(&message)
        .map(|_| ())
        .map_err(unreachable)
}

fn post_webhook(w: &WebhookAlerts, row: &AlertRow, now_us: UnixMicros) -> Result<()> {
    let secret = w
        .secret
        .as_ref()
        .ok_or_else(|| Error::invalid("the webhook has no secret"))?;
    let body = serde_json::to_vec(&serde_json::json!({
        "id": row.id,
        "key": row.key,
        "event": row.event,
        "subject": row.subject,
        "body": row.body,
        "created_us": row.created_us,
        "sent_us": now_us,
    }))
    .map_err(|e| Error::internal(format!("alert as JSON: {e}")))?;
    let signature = sign(secret.expose().as_bytes(), &body);
    let host = w.url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = w.url.port_or_known_default().unwrap_or(80);
    let path = match w.url.query() {
        Some(q) => format!("{}?{q}", w.url.path()),
        None => w.url.path().to_owned(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("a runtime for the webhook: {e}")))?;
    let url = w.url.to_string();
    runtime.block_on(async move {
        let unreachable = |e: String| Error::unavailable(format!("webhook {url}: {e}"));
        let post = async {
            let stream = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
            tokio::spawn(connection);
            let request = http::Request::post(path)
                .header(http::header::HOST, host.as_str())
                .header(http::header::CONTENT_TYPE, "application/json")
                .header("X-Custos-Signature", signature)
                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .map_err(|e| Error::internal(format!("webhook request: {e}")))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(unreachable(format!("answered {}", response.status())))
            }
        };
        tokio::time::timeout(TIMEOUT, post)
            .await
            .map_err(|_| Error::unavailable(format!("webhook {url}: no answer in 10 s")))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_30_s_to_an_hour() {
        assert_eq!(backoff(0), 30_000_000);
        assert_eq!(backoff(1), 60_000_000);
        assert_eq!(backoff(6), 1_920_000_000);
        assert_eq!(backoff(7), LAST_RETRY_US);
        assert_eq!(backoff(40), LAST_RETRY_US);
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
