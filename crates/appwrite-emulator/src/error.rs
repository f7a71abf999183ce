//! Appwrite's error shape: `{message, code, type, version}`, with `code` equal to the HTTP status.
//! Every handler returns `ApiError`, so clients see exactly what real Appwrite would send.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::APPWRITE_VERSION;

/// One Appwrite error: HTTP status, machine-readable `type`, and a human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} ({status}): {message}")]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    pub fn argument_invalid(message: impl Into<String>) -> Self {
        Self::new(400, "general_argument_invalid", message)
    }

    pub fn query_invalid(message: impl Into<String>) -> Self {
        Self::new(400, "general_query_invalid", message)
    }

    /// The caller lacks the scope for this route (guests on server routes, missing project, ...).
    pub fn unauthorized_scope(role: &str, scope: &str) -> Self {
        Self::new(
            401,
            "general_unauthorized_scope",
            format!("User (role: {role}) missing scope ({scope})"),
        )
    }

    pub fn user_unauthorized() -> Self {
        Self::new(
            401,
            "user_unauthorized",
            "The current user is not authorized to perform the requested action.",
        )
    }

    pub fn route_not_found() -> Self {
        Self::new(
            404,
            "general_route_not_found",
            "The requested route was not found. Please refer to the API docs and try again.",
        )
    }

    /// A route Appwrite has but this emulator does not implement: said plainly, in Appwrite's shape.
    pub fn not_implemented(what: &str) -> Self {
        Self::new(
            501,
            "general_not_implemented",
            format!("The Appwrite emulator does not implement {what}."),
        )
    }

    pub fn server_error(message: impl Into<String>) -> Self {
        Self::new(500, "general_server_error", message)
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(err: rusqlite::Error) -> Self {
        tracing::error!(error = %err, "sqlite error");
        Self::server_error(format!("Storage error: {err}"))
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(err: serde_json::Error) -> Self {
        Self::server_error(format!("Stored JSON is corrupt: {err}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({
            "message": self.message,
            "code": self.status,
            "type": self.kind,
            "version": APPWRITE_VERSION,
        });
        (status, Json(body)).into_response()
    }
}
