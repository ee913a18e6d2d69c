//! Diagnostics: errors that name a file, line and key, and the span machinery
//! that finds the line of a key (and the key of a span) in the TOML source.
//!
//! The source is parsed once into `toml`'s spanned tree (`DeTable`); serde
//! errors carry a span, which is mapped back to a key path; semantic errors
//! carry a key path, which is mapped to the line of that key.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// One problem in a configuration (or secrets) file.
///
/// Displays as `FILE:LINE: KEY: MESSAGE`; `:LINE` is left out when unknown
/// and `KEY: ` when the problem concerns the whole file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line, if the problem can be placed.
    pub line: Option<usize>,
    /// Key path such as `camera[3].zone` (indices from 0); empty for the whole file.
    pub key: String,
    /// What is wrong and what would be right.
    pub message: String,
}

impl ConfigError {
    pub fn new(
        file: impl Into<PathBuf>,
        line: Option<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.into(),
            line,
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one load, sorted by file and line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first error whose key is `key`, for tests and callers that care
    /// about one setting.
    pub fn find(&self, key: &str) -> Option<&ConfigError> {
        self.0.iter().find(|e| e.key == key)
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// One error per line.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigErrors> for crate::Error {
    fn from(e: ConfigErrors) -> Self {
        crate::Error::invalid(e.to_string())
    }
}

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A path to a key, e.g. `camera[3].zone`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }

    pub fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_owned()));
        p
    }

    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

fn is_bare_key(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare_key(k) {
                        f.write_str(k)?
                    } else {
                        write!(f, "{k:?}")?
                    }
                }
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Whether `span` lies in `value` or anywhere below it. Needed because the
/// span of a `[table]` or `[[array]]` element covers only its header.
fn subtree_contains(value: &Spanned<DeValue<'_>>, span: &Range<usize>) -> bool {
    if contains(&value.span(), span) {
        return true;
    }
    match value.get_ref() {
        DeValue::Table(t) => t
            .iter()
            .any(|(k, v)| contains(&k.span(), span) || subtree_contains(v, span)),
        DeValue::Array(a) => a.iter().any(|v| subtree_contains(v, span)),
        _ => false,
    }
}

/// The deepest key path under `value` (at `path`) whose key or value holds `span`.
fn find_path(value: &Spanned<DeValue<'_>>, path: &KeyPath, span: &Range<usize>) -> Option<KeyPath> {
    match value.get_ref() {
        DeValue::Table(t) => {
            for (k, v) in t.iter() {
                let child = path.key(k.get_ref());
                if let Some(p) = find_path(v, &child, span) {
                    return Some(p);
                }
                if contains(&k.span(), span) || contains(&v.span(), span) {
                    return Some(child);
                }
            }
            None
        }
        DeValue::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                let child = path.index(i);
                if let Some(p) = find_path(v, &child, span) {
                    return Some(p);
                }
                if contains(&v.span(), span) {
                    return Some(child);
                }
            }
            None
        }
        _ => None,
    }
}

/// A parsed TOML file with what is needed to place errors in it.
pub(crate) struct Source<'a> {
    pub file: PathBuf,
    pub text: &'a str,
    pub root: Spanned<DeValue<'a>>,
}

impl<'a> Source<'a> {
    /// Parses `text`; on syntax errors returns them all (with lines).
    pub fn parse(text: &'a str, file: &Path) -> Result<Self, Vec<ConfigError>> {
        let (root, errors) = DeTable::parse_recoverable(text);
        if !errors.is_empty() {
            let mut errors: Vec<ConfigError> = errors
                .into_iter()
                .map(|e| {
                    let span = e.span();
                    let line = span.as_ref().map(|s| line_of(text, s.start));
                    // The only syntax error tied to a key: name it.
                    let key = match &span {
                        Some(s) if e.message().starts_with("duplicate key") => {
                            text.get(s.clone()).unwrap_or("").to_owned()
                        }
                        _ => String::new(),
                    };
                    let mut message = format!("TOML syntax: {}", e.message());
                    if e.message().starts_with("duplicate key") {
                        message.push_str("; each key may appear once per table");
                    }
                    ConfigError::new(file, line, key, message)
                })
                .collect();
            errors.sort_by_key(|e| e.line);
            return Err(errors);
        }
        let span = root.span();
        let root = Spanned::new(span, DeValue::Table(root.into_inner()));
        Ok(Source {
            file: file.to_owned(),
            text,
            root,
        })
    }

    pub fn line(&self, offset: usize) -> usize {
        line_of(self.text, offset)
    }

    /// The value at `path`, if present.
    pub fn get(&self, path: &KeyPath) -> Option<&Spanned<DeValue<'a>>> {
        let mut v = &self.root;
        for seg in &path.0 {
            v = match (seg, v.get_ref()) {
                (Seg::Key(k), DeValue::Table(t)) => t.get(k.as_str())?,
                (Seg::Index(i), DeValue::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(v)
    }

    /// The line of the key at `path`, or of its nearest existing ancestor
    /// (e.g. the `[[camera]]` header when the key itself is missing).
    pub fn line_of_path(&self, path: &KeyPath) -> Option<usize> {
        let mut v = &self.root;
        let mut best: Option<Range<usize>> = None;
        for seg in &path.0 {
            match (seg, v.get_ref()) {
                (Seg::Key(k), DeValue::Table(t)) => match t.get_key_value(k.as_str()) {
                    Some((key, value)) => {
                        // The key's own span: for a value it is on the key's line;
                        // for a sub-table it is its header or dotted key.
                        best = Some(key.span());
                        v = value;
                    }
                    None => break,
                },
                (Seg::Index(i), DeValue::Array(a)) => match a.get(*i) {
                    Some(value) => {
                        best = Some(value.span());
                        v = value;
                    }
                    None => break,
                },
                _ => break,
            }
        }
        best.map(|s| self.line(s.start))
    }

    /// An error at `path`.
    pub fn error(&self, path: &KeyPath, message: impl Into<String>) -> ConfigError {
        ConfigError::new(
            &self.file,
            self.line_of_path(path),
            path.to_string(),
            message,
        )
    }

    /// Converts a serde error raised while deserializing the value at `base`.
    fn de_error(&self, e: &toml::de::Error, base: &KeyPath) -> ConfigError {
        let span = e.span();
        let path = span
            .as_ref()
            .and_then(|s| find_path(&self.root, &KeyPath::root(), s));
        let mut path = path.unwrap_or_else(|| base.clone());
        let line = span
            .map(|s| self.line(s.start))
            .or_else(|| self.line_of_path(&path));
        let raw = e.message().trim();
        let message = if let Some(field) = backticked_after(raw, "missing field ") {
            path = path.key(field);
            format!("required key `{field}` is missing{}", hint_for_key(field))
        } else if let Some(field) = backticked_after(raw, "unknown field ") {
            let expected = raw.split_once(", expected ").map(|(_, x)| x).unwrap_or("");
            if expected.is_empty() || expected.starts_with("nothing") {
                format!("unknown key `{field}`; this table takes no keys")
            } else {
                format!("unknown key `{field}`; expected {expected}")
            }
        } else {
            let field = match path.0.last() {
                Some(Seg::Key(k)) => k.clone(),
                _ => String::new(),
            };
            let mut m = rewrite_serde_message(raw);
            if path.0.contains(&Seg::Key("roles".into())) {
                m = m.replace("unknown value", "unknown role");
            }
            format!("{m}{}", hint_for_key(&field))
        };
        ConfigError::new(&self.file, line, path.to_string(), message)
    }

    /// Deserializes the value at `path` into `T`. On an error tied to one of
    /// the table's keys, reports it, sets that key aside and tries again, so
    /// several bad keys in one table are all reported. Returns `None` if the
    /// table cannot be read even without them (a required key is bad).
    pub fn de<T: DeserializeOwned>(
        &self,
        path: &KeyPath,
        errors: &mut Vec<ConfigError>,
    ) -> Option<T> {
        let mut value = self.get(path)?.clone();
        let mut removed: Vec<String> = Vec::new();
        loop {
            let err = match T::deserialize(ValueDeserializer::from(value.clone())) {
                // With bad keys set aside the rest still parses: return it so
                // the checks across values run too (the load fails anyway).
                Ok(t) => return Some(t),
                Err(e) => e,
            };
            // A key we set aside is now "missing": that was already reported.
            if let Some(field) = backticked_after(err.message(), "missing field ")
                && removed.iter().any(|r| r == field)
            {
                return None;
            }
            errors.push(self.de_error(&err, path));
            let (Some(span), DeValue::Table(table)) = (err.span(), value.get_mut()) else {
                return None;
            };
            let culprit = table
                .iter()
                .find(|(k, v)| contains(&k.span(), &span) || subtree_contains(v, &span))
                .map(|(k, _)| k.get_ref().to_string());
            match culprit {
                Some(k) if removed.len() < 64 => {
                    table.remove(k.as_str());
                    removed.push(k);
                }
                _ => return None,
            }
        }
    }
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// `x` from "PREFIX`x`...".
fn backticked_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('`')?;
    rest.split_once('`').map(|(f, _)| f)
}

/// Words a person configuring a camera knows, instead of Rust's.
fn rewrite_serde_message(raw: &str) -> String {
    let mut m = raw.to_owned();
    // "expected struct RawCamera" -> "expected a table"
    while let Some(pos) = m.find("expected struct ") {
        let end = m[pos + 16..]
            .find(|c: char| !c.is_alphanumeric() && c != '_')
            .map_or(m.len(), |e| pos + 16 + e);
        m.replace_range(pos..end, "expected a table");
    }
    for ty in ["u8", "u16", "u32", "u64", "usize", "i64"] {
        let from = format!("expected {ty}");
        if m.ends_with(&from) {
            let cut = m.len() - from.len();
            m.truncate(cut);
            m.push_str("expected a whole number, 0 or more");
        }
    }
    m = m.replace(
        "expected a sequence",
        "expected an array such as [\"a\", \"b\"]",
    );
    m = m.replace("unknown variant", "unknown value");
    m = m.replace("expected path string", "expected a path in quotes");
    if m.starts_with("invalid type: string")
        && (m.contains("whole number") || m.contains("a boolean"))
    {
        m.push_str("; write it without quotes");
    }
    if m.starts_with("invalid value: integer `-") && m.contains("whole number") {
        m.push_str(" (negative numbers are not allowed here)");
    }
    m
}

/// Extra advice for keys whose format is easy to get wrong.
pub(crate) fn hint_for_key(key: &str) -> &'static str {
    match key {
        "segment" | "stall_timeout" | "retry_max" | "shutdown_timeout" => {
            "; write a duration in quotes, like \"60s\" or \"2min\""
        }
        "min_free" | "budget" => "; write a size in quotes, like \"50 GiB\" or \"2 TiB\"",
        "retention_days" => "; the number of days footage is kept at most, e.g. 10",
        "area" => "; describe what the camera watches, for the public camera register",
        _ => "",
    }
}
