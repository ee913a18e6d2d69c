//! Errors as the API returns them: an HTTP status from the error kind, and
//! `{"error": {"kind": "...", "message": "..."}}` with a sentence a person
//! can act on. 401 is never used: identity is the peer credential.

use http::StatusCode;

use crate::error::{Error, ErrorKind};

/// An error with the status it is sent with.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            kind: ErrorKind::InvalidInput,
            message: message.into(),
        }
    }

    pub fn too_large(limit: u64) -> Self {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            kind: ErrorKind::InvalidInput,
            message: format!(
                "the request body is larger than {limit} bytes (api.max_body_bytes); send less"
            ),
        }
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::REQUEST_TIMEOUT,
            kind: ErrorKind::InvalidInput,
            message: message.into(),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {"kind": self.kind.as_str(), "message": self.message}})
    }
}

/// The status for each kind.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError {
            status: status_of(e.kind),
            kind: e.kind,
            message: e.message,
        }
    }
}
