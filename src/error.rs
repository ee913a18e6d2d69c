//! Errors that carry a kind, so the API can map them to a status and the CLI
//! to an exit code, and a sentence a person can act on.

use std::fmt;

/// What sort of failure this is; decides HTTP status and CLI exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    NotFound,
    InvalidInput,
    PermissionDenied,
    Conflict,
    Unavailable,
    Internal,
}

impl ErrorKind {
    /// Exit code used by the binaries for this kind (sysexits-inspired).
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::InvalidInput => 2,
            ErrorKind::NotFound => 3,
            ErrorKind::PermissionDenied => 4,
            ErrorKind::Conflict => 5,
            ErrorKind::Unavailable => 6,
            ErrorKind::Internal => 70,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

/// An error with a kind and a message meant for the person reading it.
#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error an API error reply describes (`{"error": {"kind",
    /// "message"}}`, docs/api.md), as the client and the export stream
    /// read it; an unknown kind is internal.
    pub fn from_reply(status: u16, json: &serde_json::Value) -> Error {
        let kind = json["error"]["kind"]
            .as_str()
            .and_then(|k| {
                serde_json::from_value::<ErrorKind>(serde_json::Value::String(k.into())).ok()
            })
            .unwrap_or(ErrorKind::Internal);
        let message = json["error"]["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("custosd answered {status} without an explanation"));
        Error::new(kind, message)
    }

    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error {
            kind,
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// An I/O failure on `path`, described as "what we tried on which file: why".
    pub fn io(what: &str, path: &std::path::Path, err: std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            _ => ErrorKind::Internal,
        };
        Error::with_source(kind, format!("{what} {}: {err}", path.display()), err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::with_source(ErrorKind::Internal, format!("index database: {e}"), e)
    }
}
