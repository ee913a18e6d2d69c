//! The S3 calls the vault makes, each one request: rusty-s3 signs it (AWS
//! Signature Version 4, as a presigned URL whose signed headers are sent
//! as signed), ureq sends it (blocking; rustls for https), roxmltree reads
//! the answer. Only what Object Lock needs: the bucket's lock
//! configuration, PUT with lock headers and a SHA-256 checksum, HEAD of a
//! version, legal hold and retention of a version, DELETE of a version,
//! and version listings.
//!
//! An answer the store refuses becomes an [`Error`] whose message says what
//! to change (credentials, bucket, endpoint); the store's own error code is
//! kept in it.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use rusty_s3::Method;

use crate::config::{VaultConfig, VaultLockMode};
use crate::error::{Error, ErrorKind, Result};

/// How long a signature stays valid: longer than any one upload of a
/// segment on a slow link.
const SIGNATURE_TTL_S: u64 = 3600;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-request bound: a 1 GiB segment at 2 MB/s.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// User metadata that carries the copy's SHA-256 (hex), readable by HEAD
/// on every store, besides the checksum the store verified on upload.
const SHA_META: &str = "x-amz-meta-custos-sha256";

/// The lock state of one object version, as the store reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectInfo {
    pub version_id: Option<String>,
    pub bytes: u64,
    /// From the object's metadata; hex.
    pub sha256: Option<String>,
    pub mode: Option<String>,
    pub retain_until_us: Option<i64>,
    pub legal_hold: bool,
}

/// One version in a listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VersionEntry {
    pub key: String,
    pub version_id: String,
    pub bytes: u64,
    pub latest: bool,
    pub last_modified: String,
    /// A delete marker rather than data.
    pub delete_marker: bool,
}

/// A store refusal: the HTTP status and the S3 error code.
#[derive(Debug, Clone)]
struct Refusal {
    status: u16,
    code: String,
    message: String,
}

/// The bucket, reached with the daemon's credentials.
pub struct Store {
    endpoint: url::Url,
    bucket: String,
    region: String,
    access_key: String,
    secret_key: String,
    agent: ureq::Agent,
}

impl Store {
    /// A client for `config`'s bucket; reads its CA file if it names one.
    pub fn new(config: &VaultConfig) -> Result<Store> {
        let (Some(access), Some(secret)) = (&config.access_key_id, &config.secret_access_key)
        else {
            return Err(Error::invalid(
                "the vault has no credentials: add [vault] access_key_id and secret_access_key \
                 to the secrets file",
            ));
        };
        let mut agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .user_agent(concat!("custosd/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &config.ca_file {
            let pem = std::fs::read(ca).map_err(|e| Error::io("cannot read", ca, e))?;
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(Error::invalid(format!(
                    "{} holds no PEM certificate ([vault] ca_file)",
                    ca.display()
                )));
            }
            let tls = ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build();
            agent = agent.tls_config(tls);
        }
        Ok(Store {
            endpoint: config.endpoint.clone(),
            bucket: config.bucket.clone(),
            region: config.region.clone(),
            access_key: access.expose().to_owned(),
            secret_key: secret.expose().to_owned(),
            agent: agent.build().new_agent(),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The URL of `key` (or of the bucket, for `None`), path-style.
    fn url(&self, key: Option<&str>) -> url::Url {
        let mut url = self.endpoint.clone();
        {
            let mut path = url
                .path_segments_mut()
                .expect("an http(s) endpoint has a path");
            path.pop_if_empty().push(&self.bucket);
            if let Some(key) = key {
                path.extend(key.split('/'));
            }
        }
        url
    }

    /// Signs and sends one request; `query` and `headers` in any order.
    fn call(
        &self,
        method: Method,
        key: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let mut query = query.to_vec();
        query.sort();
        let mut headers: Vec<(String, &str)> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
            .collect();
        headers.sort();
        let url = rusty_s3::signing::sign(
            &Timestamp::now(),
            method,
            self.url(key),
            &self.access_key,
            &self.secret_key,
            None,
            &self.region,
            SIGNATURE_TTL_S,
            query.iter().copied(),
            headers.iter().map(|(k, v)| (k.as_str(), *v)),
        );
        let target = match key {
            Some(k) => format!("{}/{k}", self.bucket),
            None => self.bucket.clone(),
        };
        let unreachable = |e: ureq::Error| {
            Error::unavailable(format!(
                "the vault at {} did not answer ({e}); uploads wait and are retried",
                self.endpoint
            ))
        };
        let uri = url.as_str();
        let response = match method {
            Method::Put => {
                let mut r = self.agent.put(uri);
                for (k, v) in &headers {
                    r = r.header(k.as_str(), *v);
                }
                match body {
                    Body::File(f, len) => r
                        .header("content-length", len.to_string())
                        .send(ureq::SendBody::from_reader(&mut &*f)),
                    Body::Bytes(b) => r.send(b),
                    Body::Empty => r.send_empty(),
                }
            }
            Method::Delete => {
                let mut r = self.agent.delete(uri);
                for (k, v) in &headers {
                    r = r.header(k.as_str(), *v);
                }
                r.call()
            }
            Method::Head => self.agent.head(uri).call(),
            _ => {
                let mut r = self.agent.get(uri);
                for (k, v) in &headers {
                    r = r.header(k.as_str(), *v);
                }
                r.call()
            }
        }
        .map_err(unreachable)?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let text = response.into_body().read_to_string().unwrap_or_default();
        let refusal = parse_error(status, &text);
        Err(explain(&refusal, &target, self))
    }

    /// Creates the bucket, with Object Lock if `object_lock`. The daemon
    /// never creates its bucket (a bucket's lock is the store owner's
    /// decision); set-up tooling and the tests do.
    pub fn create_bucket(&self, object_lock: bool) -> Result<()> {
        let headers: Vec<(&str, String)> = if object_lock {
            vec![("x-amz-bucket-object-lock-enabled", "true".to_owned())]
        } else {
            Vec::new()
        };
        self.call(Method::Put, None, &[], &headers, Body::Empty)
            .map(drop)
    }

    /// Checks that the bucket exists, answers these credentials and has
    /// Object Lock enabled.
    pub fn check_object_lock(&self) -> Result<()> {
        let r = self.call(Method::Get, None, &[("object-lock", "")], &[], Body::Empty)?;
        let text = read_text(r)?;
        let doc = parse_xml(&text)?;
        match child_text(doc.root_element(), "ObjectLockEnabled").as_deref() {
            Some("Enabled") => Ok(()),
            _ => Err(no_object_lock(&self.bucket)),
        }
    }

    /// Uploads `path` as `key` with its checksum and lock; returns the
    /// version id the store gave it.
    #[allow(clippy::too_many_arguments)]
    pub fn put_locked(
        &self,
        key: &str,
        path: &Path,
        bytes: u64,
        sha256: &[u8; 32],
        mode: VaultLockMode,
        retain_until_us: i64,
        legal_hold: bool,
    ) -> Result<Option<String>> {
        let file = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
        let headers = [
            ("x-amz-checksum-sha256", base64(sha256)),
            (SHA_META, hex::encode(sha256)),
            ("x-amz-object-lock-mode", mode.s3_name().to_owned()),
            (
                "x-amz-object-lock-retain-until-date",
                s3_time(retain_until_us)?,
            ),
            (
                "x-amz-object-lock-legal-hold",
                if legal_hold { "ON" } else { "OFF" }.to_owned(),
            ),
            ("content-type", "video/mp4".to_owned()),
        ];
        let r = self.call(
            Method::Put,
            Some(key),
            &[],
            &headers,
            Body::File(&file, bytes),
        )?;
        Ok(header(&r, "x-amz-version-id"))
    }

    /// The lock state of `key` (one version, or the latest). `None` if
    /// there is no such object.
    pub fn head(&self, key: &str, version: Option<&str>) -> Result<Option<ObjectInfo>> {
        let query: Vec<(&str, &str)> = version.map(|v| ("versionId", v)).into_iter().collect();
        let r = match self.call(Method::Head, Some(key), &query, &[], Body::Empty) {
            Ok(r) => r,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let until = header(&r, "x-amz-object-lock-retain-until-date")
            .map(|t| {
                t.parse::<Timestamp>()
                    .map(|t| t.as_microsecond())
                    .map_err(|e| {
                        Error::unavailable(format!("the vault sent a bad date {t:?}: {e}"))
                    })
            })
            .transpose()?;
        Ok(Some(ObjectInfo {
            version_id: header(&r, "x-amz-version-id"),
            bytes: header(&r, "content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0),
            sha256: header(&r, SHA_META),
            mode: header(&r, "x-amz-object-lock-mode"),
            retain_until_us: until,
            legal_hold: header(&r, "x-amz-object-lock-legal-hold").as_deref() == Some("ON"),
        }))
    }

    /// Reads one version back and hashes it: its SHA-256 and length.
    pub fn sha256_of(&self, key: &str, version: &str) -> Result<([u8; 32], u64)> {
        use sha2::Digest;
        let r = self.call(
            Method::Get,
            Some(key),
            &[("versionId", version)],
            &[],
            Body::Empty,
        )?;
        let mut reader = r.into_body().into_reader();
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = std::io::Read::read(&mut reader, &mut buf)
                .map_err(|e| Error::unavailable(format!("reading {key} from the vault: {e}")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            total += n as u64;
        }
        Ok((hasher.finalize().into(), total))
    }

    /// Sets or lifts the legal hold of one version.
    pub fn set_legal_hold(&self, key: &str, version: &str, on: bool) -> Result<()> {
        let body = format!(
            "<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>{}</Status></LegalHold>",
            if on { "ON" } else { "OFF" }
        );
        self.call(
            Method::Put,
            Some(key),
            &[("legal-hold", ""), ("versionId", version)],
            &[],
            Body::Bytes(body.as_bytes()),
        )
        .map(drop)
    }

    /// Sets the retention of one version (the store refuses to shorten a
    /// compliance one, or a governance one without the bypass).
    pub fn set_retention(
        &self,
        key: &str,
        version: &str,
        mode: VaultLockMode,
        until_us: i64,
    ) -> Result<()> {
        let body = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode>\
             <RetainUntilDate>{}</RetainUntilDate></Retention>",
            mode.s3_name(),
            s3_time(until_us)?
        );
        self.call(
            Method::Put,
            Some(key),
            &[("retention", ""), ("versionId", version)],
            &[],
            Body::Bytes(body.as_bytes()),
        )
        .map(drop)
    }

    /// Deletes one version; `bypass` sends the governance bypass (the
    /// credential needs the permission for it).
    pub fn delete_version(&self, key: &str, version: &str, bypass: bool) -> Result<()> {
        let headers: Vec<(&str, String)> = if bypass {
            vec![("x-amz-bypass-governance-retention", "true".to_owned())]
        } else {
            Vec::new()
        };
        match self.call(
            Method::Delete,
            Some(key),
            &[("versionId", version)],
            &headers,
            Body::Empty,
        ) {
            Ok(_) => Ok(()),
            // Already gone counts: deleting is idempotent.
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every version under `prefix`, and (with `delimiter`) the common
    /// prefixes one level down.
    pub fn list_versions(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<(Vec<VersionEntry>, Vec<String>)> {
        let mut versions = Vec::new();
        let mut prefixes = Vec::new();
        let mut marker: Option<(String, String)> = None;
        loop {
            let mut query = vec![("prefix", prefix), ("versions", "")];
            if let Some(d) = delimiter {
                query.push(("delimiter", d));
            }
            if let Some((k, v)) = &marker {
                query.push(("key-marker", k));
                query.push(("version-id-marker", v));
            }
            let text = read_text(self.call(Method::Get, None, &query, &[], Body::Empty)?)?;
            let doc = parse_xml(&text)?;
            let top = doc.root_element();
            for n in top.children().filter(|n| n.is_element()) {
                match n.tag_name().name() {
                    tag @ ("Version" | "DeleteMarker") => versions.push(VersionEntry {
                        key: child_text(n, "Key").unwrap_or_default(),
                        version_id: child_text(n, "VersionId").unwrap_or_default(),
                        bytes: child_text(n, "Size")
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0),
                        latest: child_text(n, "IsLatest").as_deref() == Some("true"),
                        last_modified: child_text(n, "LastModified").unwrap_or_default(),
                        delete_marker: tag == "DeleteMarker",
                    }),
                    "CommonPrefixes" => {
                        if let Some(p) = child_text(n, "Prefix") {
                            prefixes.push(p);
                        }
                    }
                    _ => {}
                }
            }
            let truncated = child_text(top, "IsTruncated").as_deref() == Some("true");
            let next = (
                child_text(top, "NextKeyMarker"),
                child_text(top, "NextVersionIdMarker"),
            );
            match (truncated, next) {
                (true, (Some(k), Some(v))) if marker.as_ref() != Some(&(k.clone(), v.clone())) => {
                    marker = Some((k, v));
                }
                _ => break,
            }
        }
        Ok((versions, prefixes))
    }
}

/// What a request carries.
enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    File(&'a File, u64),
}

fn header(r: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn read_text(r: ureq::http::Response<ureq::Body>) -> Result<String> {
    r.into_body()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .map_err(|e| Error::unavailable(format!("reading the vault's answer: {e}")))
}

fn parse_xml(text: &str) -> Result<roxmltree::Document<'_>> {
    roxmltree::Document::parse(text)
        .map_err(|e| Error::unavailable(format!("the vault sent XML that does not parse: {e}")))
}

fn child_text(node: roxmltree::Node, name: &str) -> Option<String> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
        .and_then(|c| c.text())
        .map(str::to_owned)
}

fn parse_error(status: u16, text: &str) -> Refusal {
    let (code, message) = match roxmltree::Document::parse(text) {
        Ok(doc) => (
            child_text(doc.root_element(), "Code").unwrap_or_default(),
            child_text(doc.root_element(), "Message").unwrap_or_default(),
        ),
        // HEAD answers carry no body: the status says it.
        Err(_) => (String::new(), String::new()),
    };
    Refusal {
        status,
        code,
        message,
    }
}

fn no_object_lock(bucket: &str) -> Error {
    Error::invalid(format!(
        "bucket {bucket} does not have Object Lock enabled, so nothing stored there could be \
         kept from deletion; create a bucket with Object Lock (e.g. `aws s3api create-bucket \
         --bucket {bucket} --object-lock-enabled-for-bucket`; most stores cannot turn it on \
         later) and name it in [vault] bucket"
    ))
}

/// Turns a refusal into words an administrator can act on.
fn explain(r: &Refusal, target: &str, store: &Store) -> Error {
    let said = if r.code.is_empty() {
        format!("HTTP {}", r.status)
    } else if r.message.is_empty() {
        format!("{} (HTTP {})", r.code, r.status)
    } else {
        format!("{}: {} (HTTP {})", r.code, r.message, r.status)
    };
    match (r.status, r.code.as_str()) {
        (_, "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidSecurity") | (401, _) => {
            Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "the vault at {} refused the daemon's credentials ({said}); check [vault] \
             access_key_id and secret_access_key in the secrets file, and [vault] region",
                    store.endpoint
                ),
            )
        }
        (_, "ObjectLockConfigurationNotFoundError") => no_object_lock(&store.bucket),
        (_, "NoSuchBucket") => Error::invalid(format!(
            "the vault at {} has no bucket {} ({said}); create it with Object Lock enabled or \
             correct [vault] bucket",
            store.endpoint, store.bucket
        )),
        (404, _) => Error::not_found(format!("{target}: not in the vault ({said})")),
        (403, _) => Error::new(
            ErrorKind::PermissionDenied,
            format!("the vault refused {target}: {said}"),
        ),
        (400 | 409, _) => Error::invalid(format!("the vault refused {target}: {said}")),
        _ => Error::unavailable(format!("the vault failed on {target}: {said}")),
    }
}

/// RFC 3339 in UTC, whole seconds, as S3 takes dates.
fn s3_time(us: i64) -> Result<String> {
    let t = Timestamp::from_second(us.div_euclid(1_000_000))
        .map_err(|e| Error::internal(format!("time {us} µs: {e}")))?;
    Ok(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn dates_are_whole_seconds_in_utc() {
        assert_eq!(
            s3_time(1_798_761_600_500_000).unwrap(),
            "2027-01-01T00:00:00Z"
        );
    }

    #[test]
    fn a_refusal_is_read_from_the_stores_xml() {
        let r = parse_error(
            404,
            "<?xml version=\"1.0\"?><Error><Code>ObjectLockConfigurationNotFoundError</Code>\
             <Message>none</Message></Error>",
        );
        assert_eq!(r.code, "ObjectLockConfigurationNotFoundError");
        assert_eq!(r.message, "none");
        assert_eq!(parse_error(404, "").code, "");
    }
}
