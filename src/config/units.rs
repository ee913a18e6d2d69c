//! Parsing of the small value formats in the file: durations, byte sizes,
//! ids, camera URLs. Each returns a message that says what would be right.

use std::time::Duration;

use super::MAX_ID_LEN;

/// A humantime duration such as "5s", "90s", "2min".
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        format!("\"{s}\" is not a duration ({e}); write a number with a unit, like \"5s\", \"90s\" or \"2min\"")
    })
}

/// Formats a whole-second duration the way one would write it ("2s", "15min", "1h").
pub(crate) fn fmt_duration(d: Duration) -> String {
    match d.as_secs() {
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}min", s / 60),
        s if d.subsec_nanos() == 0 => format!("{s}s"),
        _ => humantime::format_duration(d).to_string(),
    }
}

/// A byte size: "50 GiB", "2 TiB", "500GB", "1.5 TB", "1048576".
/// KiB/MiB/GiB/TiB are powers of 1024; kB/MB/GB/TB powers of 1000.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let bad = |why: &str| {
        format!(
            "\"{s}\" is not a size{why}; write a number and a unit, like \"50 GiB\", \"500 GB\" or \"2 TiB\""
        )
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(bad(""));
    }
    let unit = unit.trim();
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1000,
        "mb" | "m" => 1000u64.pow(2),
        "gb" | "g" => 1000u64.pow(3),
        "tb" | "t" => 1000u64.pow(4),
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(bad(&format!(" (unknown unit \"{unit}\")"))),
    };
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mult).ok_or_else(|| bad(" (too large)"));
    }
    let f: f64 = num.parse().map_err(|_| bad(""))?;
    let bytes = (f * mult as f64).round();
    if !(0.0..1.8e19).contains(&bytes) {
        return Err(bad(" (too large)"));
    }
    Ok(bytes as u64)
}

/// Camera ids: letters, digits, `-`, `_`, ASCII, starting with a letter or digit.
pub(crate) fn check_camera_id(id: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if id.is_empty() {
        return Err("is empty; a camera id is a short name such as \"1A-foje-pietine\"".into());
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!("\"{id}\" is longer than {MAX_ID_LEN} bytes"));
    }
    if let Some(c) = id.chars().find(|&c| !ok_char(c)) {
        return Err(format!(
            "\"{id}\" contains {c:?}; a camera id may hold only ASCII letters, digits, '-' and '_' \
             because it names a directory (put the full name, with any letters, in `name`)"
        ));
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!("\"{id}\" must start with a letter or digit"));
    }
    Ok(())
}

/// Zone and storage ids: `[a-z0-9][a-z0-9-]*`.
pub(crate) fn check_slug(id: &str, what: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if id.is_empty() {
        return Err(format!(
            "is empty; a {what} id is a short name such as \"school-indoor\""
        ));
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!("\"{id}\" is longer than {MAX_ID_LEN} bytes"));
    }
    if !id.chars().all(ok_char) || id.starts_with('-') {
        return Err(format!(
            "\"{id}\" is not a valid {what} id; use lowercase ASCII letters, digits and '-', \
             starting with a letter or digit (e.g. \"school-indoor\")"
        ));
    }
    Ok(())
}

/// Query keys that carry secrets in some cameras' URLs.
const SECRET_QUERY_KEYS: &[&str] = &[
    "user", "username", "password", "pass", "passwd", "pwd", "token", "auth", "key", "secret",
    "apikey",
];

/// Splits a URL into (scheme, userinfo, host-and-port, path, query). Anything
/// before the last `@` ahead of the query counts as userinfo, so a password
/// holding `/` is still caught.
pub(crate) struct UrlParts<'a> {
    pub scheme: Option<&'a str>,
    pub userinfo: Option<&'a str>,
    pub authority: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
}

pub(crate) fn split_url(url: &str) -> UrlParts<'_> {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (userinfo, hostpath) = match before_query.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, before_query),
    };
    let (authority, path) = match hostpath.find('/') {
        Some(i) => hostpath.split_at(i),
        None => (hostpath, ""),
    };
    UrlParts {
        scheme,
        userinfo,
        authority,
        path,
        query,
    }
}

/// Checks a camera URL. `id` is used in advice on where credentials belong.
pub(crate) fn check_camera_url(url: &str, credentials_key: &str) -> Result<(), String> {
    let shown = super::redact_url(url);
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "\"{shown}\" contains spaces or control characters; percent-encode them"
        ));
    }
    let parts = split_url(url);
    if parts.userinfo.is_some() {
        return Err(format!(
            "contains credentials (user:password@ before the host); credentials never go in this file: \
             remove them, leaving \"{shown}\", and put them in the secrets file as \
             [camera.{credentials_key}] username = \"...\" password = \"...\""
        ));
    }
    match parts.scheme.map(|s| s.to_ascii_lowercase()) {
        Some(s) if s == "rtsp" || s == "rtsps" => {}
        _ => {
            return Err(format!(
                "\"{shown}\" must start with rtsp:// or rtsps:// (e.g. \"rtsp://192.168.10.21:554/stream1\")"
            ));
        }
    }
    let (host, port) = if let Some(rest) = parts.authority.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err(format!("\"{shown}\" has an unclosed IPv6 address '['")),
        }
    } else {
        match parts.authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (parts.authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!(
            "\"{shown}\" has no host; e.g. \"rtsp://192.168.10.21:554/stream1\""
        ));
    }
    if let Some(p) = port
        && !matches!(p.parse::<u16>(), Ok(n) if n > 0)
    {
        return Err(format!(
            "\"{shown}\" has an invalid port \"{p}\"; use 1-65535 (RTSP's is 554)"
        ));
    }
    if let Some(q) = parts.query {
        for pair in q.split('&') {
            let name = pair
                .split_once('=')
                .map_or(pair, |(k, _)| k)
                .to_ascii_lowercase();
            if SECRET_QUERY_KEYS.contains(&name.as_str()) {
                return Err(format!(
                    "carries a secret in its query (\"{name}=\"); credentials never go in this file: \
                     put them in the secrets file as [camera.{credentials_key}] username/password"
                ));
            }
        }
    }
    Ok(())
}
