//! `POST /webhooks/sellapp`: verify, record, apply, answer.
//!
//! Order of work, and why: a body not sent as `application/json` is refused (415) unread; then
//! the signature is checked over the raw bytes (an unsigned request writes nothing anywhere);
//! only then is the JSON parsed; the delivery is applied through `Access::handle_delivery`,
//! which is idempotent. The reply is 2xx only when the effect, or a durable failure record,
//! exists: on a backend failure the delivery goes to `webhook_failures`, or to the local spool
//! when Appwrite is unreachable, and Sell.app is told to retry (503).

use std::time::Instant;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use g3_access::{AccessError, NewFailure, Outcome};
use g3_core::{
    ids,
    sellapp::Event,
    signing::{self, SignatureError, StandardHeaders},
};
use serde_json::json;
use tracing::{error, info, warn};

use crate::{AppState, Secret, metrics::Endpoint, spool::SpooledFailure};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether any of `secrets` (the current one first, then one being rotated out) signed the
/// delivery; the current secret's error otherwise.
fn verify_any(secrets: &[Secret], headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
    let mut first_error = None;
    for secret in secrets {
        match verify(secret.expose(), headers, body) {
            Ok(()) => return Ok(()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(SignatureError::Missing))
}

/// Standard Webhooks when all three of its headers are present, else Sell.app's `signature`.
fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
    match (
        header(headers, "webhook-id"),
        header(headers, "webhook-timestamp"),
        header(headers, "webhook-signature"),
    ) {
        (Some(id), Some(timestamp), Some(signature)) => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            signing::verify_standard(
                secret,
                StandardHeaders {
                    id,
                    timestamp,
                    signature,
                },
                body,
                now,
            )
        }
        _ => signing::verify_sellapp(secret, body, header(headers, "signature")),
    }
}

/// The headers worth keeping with a failure: enough to see how it was signed and by whom.
fn kept_headers(headers: &HeaderMap) -> String {
    let mut map = serde_json::Map::new();
    for name in [
        "signature",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-type",
        "user-agent",
    ] {
        if let Some(v) = header(headers, name) {
            map.insert(name.to_owned(), json!(v));
        }
    }
    serde_json::Value::Object(map).to_string()
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

pub(crate) async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    if !crate::is_json(&headers) {
        return crate::not_json(&state, Endpoint::Sellapp);
    }
    if let Err(e) = verify_any(&state.sellapp_secrets, &headers, &body) {
        state.metrics.rejected(Endpoint::Sellapp, &e);
        state
            .metrics
            .delivery("unverified", "rejected", started.elapsed());
        return reply(StatusCode::UNAUTHORIZED, json!({ "error": e.to_string() }));
    }

    let event = match Event::parse(&body) {
        Ok(event) => event,
        Err(e) => {
            // Signed but unreadable: keep it for a human, nothing to retry automatically.
            let delivery_id = ids::derive("unparsable", &[&String::from_utf8_lossy(&body)]);
            let failure = SpooledFailure {
                delivery_id,
                event: None,
                email: None,
                payload: String::from_utf8_lossy(&body).into_owned(),
                headers: kept_headers(&headers),
                error: e.to_string(),
                retryable: false,
            };
            record_failure(&state, &failure).await;
            state
                .metrics
                .delivery("unparsable", "malformed", started.elapsed());
            return reply(StatusCode::BAD_REQUEST, json!({ "error": e.to_string() }));
        }
    };

    // Standard Webhooks' id identifies the delivery across Sell.app's retries; otherwise the
    // event, object and store do.
    let delivery_id = match header(&headers, "webhook-id") {
        Some(id) => ids::derive("webhook-id", &[id]),
        None => event.delivery_id(),
    };
    let event_name = event.kind.as_str().to_owned();
    let result = state.access.handle_delivery(&delivery_id, &event).await;
    let took = started.elapsed();
    match result {
        Ok(outcome) => {
            let (label, detail) = match &outcome {
                Outcome::Applied(d) => ("applied", d.as_str()),
                Outcome::Ignored => ("ignored", "event not acted on"),
                Outcome::Duplicate => ("duplicate", "already applied"),
            };
            info!(delivery = %delivery_id, event = %event_name, outcome = label, detail, "delivery handled");
            state.metrics.delivery(&event_name, label, took);
            reply(
                StatusCode::OK,
                json!({ "status": label, "delivery": delivery_id, "detail": detail }),
            )
        }
        Err(e) => {
            let retryable = e.is_retryable();
            let failure = SpooledFailure {
                delivery_id: delivery_id.clone(),
                event: Some(event_name.clone()),
                email: event.email.as_ref().map(|m| m.as_str().to_owned()),
                payload: String::from_utf8_lossy(&body).into_owned(),
                headers: kept_headers(&headers),
                error: e.to_string(),
                retryable,
            };
            let durable = record_failure(&state, &failure).await;
            match (&e, durable) {
                // Input we cannot apply (unknown product, no email): recorded for a human;
                // Sell.app retrying the same delivery would not help.
                (AccessError::Unprocessable(message), true) => {
                    warn!(delivery = %delivery_id, error = %message, "delivery recorded as a failure");
                    state.metrics.delivery(&event_name, "failed", took);
                    reply(
                        StatusCode::OK,
                        json!({ "status": "failed", "delivery": delivery_id, "error": message }),
                    )
                }
                (_, true) => {
                    warn!(delivery = %delivery_id, error = %e, "backend failed; failure recorded, asking Sell.app to retry");
                    state.metrics.delivery(&event_name, "retry", took);
                    reply(
                        StatusCode::SERVICE_UNAVAILABLE,
                        json!({ "status": "retry_later", "delivery": delivery_id, "error": "backend unavailable" }),
                    )
                }
                (_, false) => {
                    error!(delivery = %delivery_id, error = %e, "could not apply nor record the delivery");
                    state.metrics.delivery(&event_name, "lost_locally", took);
                    reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({ "status": "error", "delivery": delivery_id }),
                    )
                }
            }
        }
    }
}

/// Records a failure in Appwrite, or in the local spool when Appwrite cannot take it.
/// Returns whether the record is durable somewhere.
async fn record_failure(state: &AppState, f: &SpooledFailure) -> bool {
    let recorded = state
        .access
        .record_failure(NewFailure {
            delivery_id: &f.delivery_id,
            event: f.event.as_deref(),
            email: f.email.as_deref(),
            payload: f.payload.as_bytes(),
            headers: &f.headers,
            error: &f.error,
            retryable: f.retryable,
            retry_now: false,
        })
        .await;
    match recorded {
        Ok(_) => true,
        Err(e) => {
            warn!(error = %e, "Appwrite cannot record the failure; spooling it locally");
            match state.spool.put(f) {
                Ok(()) => true,
                Err(e) => {
                    error!(error = %format!("{e:#}"), "spooling the failure failed too");
                    false
                }
            }
        }
    }
}
