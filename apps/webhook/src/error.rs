//! `WebhookError`: every error reply of the two endpoints and the status and JSON body it gets.
//! Handlers return `Result<_, WebhookError>`; what went wrong inside is logged where it
//! happened, and the reply says only what the sender can act on.

use axum::{
    Json,
    extract::rejection::BytesRejection,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use g3_core::signing::SignatureError;
use serde_json::json;

use crate::ingest::BatchError;

/// Why a request to `/webhooks/sellapp` or `/ingest/v1/events` was not (fully) accepted.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The endpoint is off on this server (404).
    #[error("{0}")]
    Off(&'static str),
    /// The body is not declared JSON; refused unread (415).
    #[error("the body must be JSON, sent with Content-Type: application/json")]
    NotJson,
    /// The body could not be read within the route's limit (413), answered as axum does.
    #[error(transparent)]
    Body(#[from] BytesRejection),
    /// None of the signature headers the endpoint needs are there (401).
    #[error("{0}")]
    Unsigned(&'static str),
    /// Signed, but not by an accepted secret, or out of the time window (401).
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// A signed Sell.app body that is not a Sell.app event (400).
    #[error("{0}")]
    Malformed(String),
    /// A signed ingest body that is not a batch of message events (400).
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// Ingest could not write: the collector retries the whole request (503).
    #[error("backend unavailable, retry later: {0}")]
    Unavailable(g3_appwrite::Error),
    /// Sell.app delivery not applied, its failure recorded: Sell.app retries it (503).
    #[error("backend unavailable")]
    RetryLater { delivery: String },
    /// Sell.app delivery neither applied nor recorded anywhere (500).
    #[error("could not apply nor record the delivery")]
    Lost { delivery: String },
}

impl WebhookError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebhookError::Off(_) => StatusCode::NOT_FOUND,
            WebhookError::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            WebhookError::Body(rejection) => rejection.status(),
            WebhookError::Unsigned(_) | WebhookError::Signature(_) => StatusCode::UNAUTHORIZED,
            WebhookError::Malformed(_) | WebhookError::Batch(_) => StatusCode::BAD_REQUEST,
            WebhookError::Unavailable(_) | WebhookError::RetryLater { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            WebhookError::Lost { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the request was refused for its signature.
    pub fn is_unverified(&self) -> bool {
        matches!(self, WebhookError::Unsigned(_) | WebhookError::Signature(_))
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match self {
            WebhookError::Body(rejection) => return rejection.into_response(),
            WebhookError::RetryLater { delivery } => json!({
                "status": "retry_later", "delivery": delivery, "error": "backend unavailable"
            }),
            WebhookError::Lost { delivery } => json!({ "status": "error", "delivery": delivery }),
            other => json!({ "error": other.to_string() }),
        };
        (status, Json(body)).into_response()
    }
}
