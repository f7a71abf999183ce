//! `POST /webhooks/sellapp`: verify, record, apply, answer.
//!
//! Order of work, and why: the shared signed-body check (`signed`) refuses a body not sent as
//! `application/json` (415) unread and checks the signature over the raw bytes, so an unsigned
//! request writes nothing anywhere; only then is the JSON parsed; the delivery is applied
//! through `Access::handle_delivery`, which is idempotent. The reply is 2xx only when the
//! effect, or a durable failure record, exists: on a backend failure the delivery goes to
//! `webhook_failures`, or to the local spool when Appwrite is unreachable, and Sell.app is told
//! to retry (503).

use std::time::Instant;

use axum::{
    Json,
    extract::{Request, State},
    http::HeaderMap,
};
use g3_access::{AccessError, NewFailure, Outcome};
use g3_core::{ids, sellapp::Event};
use serde_json::{Value, json};
use tracing::{error, info, warn};

use crate::{
    AppState,
    error::WebhookError,
    metrics::Endpoint,
    signed::{Scheme, SignedBody, header_str},
    spool::SpooledFailure,
};

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
        if let Some(v) = header_str(headers, name) {
            map.insert(name.to_owned(), json!(v));
        }
    }
    Value::Object(map).to_string()
}

pub(crate) async fn receive(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Value>, WebhookError> {
    let started = Instant::now();
    let SignedBody { headers, body } = SignedBody::read(
        request,
        &state,
        Endpoint::Sellapp,
        Scheme::StandardOrSellapp,
        &state.sellapp_secrets,
    )
    .await
    .inspect_err(|e| {
        if e.is_unverified() {
            state
                .metrics
                .delivery("unverified", "rejected", started.elapsed());
        }
    })?;

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
            return Err(WebhookError::Malformed(e.to_string()));
        }
    };

    // Standard Webhooks' id identifies the delivery across Sell.app's retries; otherwise the
    // event, object and store do.
    let delivery_id = match header_str(&headers, "webhook-id") {
        Some(id) => ids::derive("webhook-id", &[id]),
        None => event.delivery_id(),
    };
    let event_name = event.kind.as_str().to_owned();
    let result = state.access.handle_delivery(&delivery_id, &event).await;
    let took = started.elapsed();
    let e = match result {
        Ok(outcome) => {
            let (label, detail) = match &outcome {
                Outcome::Applied(d) => ("applied", d.as_str()),
                Outcome::Ignored => ("ignored", "event not acted on"),
                Outcome::Duplicate => ("duplicate", "already applied"),
            };
            info!(delivery = %delivery_id, event = %event_name, outcome = label, detail, "delivery handled");
            state.metrics.delivery(&event_name, label, took);
            return Ok(Json(
                json!({ "status": label, "delivery": delivery_id, "detail": detail }),
            ));
        }
        Err(e) => e,
    };
    let failure = SpooledFailure {
        delivery_id: delivery_id.clone(),
        event: Some(event_name.clone()),
        email: event.email.as_ref().map(|m| m.as_str().to_owned()),
        payload: String::from_utf8_lossy(&body).into_owned(),
        headers: kept_headers(&headers),
        error: e.to_string(),
        retryable: e.is_retryable(),
    };
    let durable = record_failure(&state, &failure).await;
    match (&e, durable) {
        // Input we cannot apply (unknown product, no email): recorded for a human; Sell.app
        // retrying the same delivery would not help.
        (AccessError::Unprocessable(message), true) => {
            warn!(delivery = %delivery_id, error = %message, "delivery recorded as a failure");
            state.metrics.delivery(&event_name, "failed", took);
            Ok(Json(
                json!({ "status": "failed", "delivery": delivery_id, "error": message }),
            ))
        }
        (_, true) => {
            warn!(delivery = %delivery_id, error = %e, "backend failed; failure recorded, asking Sell.app to retry");
            state.metrics.delivery(&event_name, "retry", took);
            Err(WebhookError::RetryLater {
                delivery: delivery_id,
            })
        }
        (_, false) => {
            error!(delivery = %delivery_id, error = %e, "could not apply nor record the delivery");
            state.metrics.delivery(&event_name, "lost_locally", took);
            Err(WebhookError::Lost {
                delivery: delivery_id,
            })
        }
    }
}

/// Records a failure in Appwrite, or in the local spool when Appwrite cannot take it.
/// Returns whether the record is durable somewhere.
async fn record_failure(state: &AppState, f: &SpooledFailure) -> bool {
    match state.access.record_failure(NewFailure::from(f)).await {
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
