//! The router: every route the emulator serves, grouped by Appwrite service. Each module owns
//! one service and exposes `router()`; this file only assembles them.

mod account;
mod databases;
mod documents;
mod health;
mod mailbox;
mod realtime;
mod storage;
mod teams;
mod users;

use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRequest, Request},
    http::{HeaderValue, Method, StatusCode, header::CONTENT_TYPE},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::de::DeserializeOwned;

use crate::{error::ApiError, state::AppState};

/// Largest request body: one 5 MiB upload chunk plus multipart overhead, with room to spare.
const MAX_BODY: usize = 8 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .merge(health::router())
        .merge(databases::router())
        .merge(documents::router())
        .merge(users::router())
        .merge(account::router())
        .merge(teams::router())
        .merge(storage::router())
        .merge(realtime::router());
    Router::new()
        .nest("/v1", v1)
        .merge(mailbox::router())
        .fallback(fallback)
        // A known path with a method it lacks is, in Appwrite, just another unknown route.
        .method_not_allowed_fallback(fallback)
        .layer(axum::middleware::map_response(default_content_type))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(run_to_completion))
        .with_state(state)
}

/// Runs every request to completion on its own task, even if the client goes away mid-request.
/// Hyper drops a request's future when its connection closes; a handler dropped after its write
/// committed would never publish the Realtime event, so subscribers would silently miss a stored
/// document. Real Appwrite (Swoole) always finishes a request it started. One spawn per request;
/// the request moves whole, so a websocket upgrade (`OnUpgrade` in its extensions) still works.
async fn run_to_completion(req: Request, next: Next) -> Response {
    match tokio::spawn(next.run(req)).await {
        Ok(res) => res,
        Err(err) => {
            tracing::error!(error = %err, "emulator: request task failed");
            ApiError::server_error("Server Error").into_response()
        }
    }
}

/// Appwrite's HTTP server (Swoole) names `Content-Type: text/html` on every response whose
/// handler set none, 204s included (Utopia's `noContent()` sets no type; Swoole adds its default).
/// Clients rely on it: Appwrite's Python SDK reads the header on every response and raises
/// `KeyError('content-type')` without it. WebSocket upgrades (101) carry none, as with Swoole.
async fn default_content_type(mut res: Response) -> Response {
    if res.status() != StatusCode::SWITCHING_PROTOCOLS && !res.headers().contains_key(CONTENT_TYPE)
    {
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    }
    res
}

/// Unknown routes (and known paths with a method they lack, which axum would answer with an empty
/// 405) get Appwrite's 404 JSON, with a message that says which side is missing it.
async fn fallback(method: Method, uri: axum::http::Uri) -> impl IntoResponse {
    let mut err = ApiError::route_not_found();
    if uri.path().starts_with("/v1/") {
        err.message = format!(
            "The requested route was not found: the Appwrite emulator does not implement {method} {}. \
             If Appwrite has this route, the emulator needs it added (crates/appwrite-emulator).",
            uri.path()
        );
    }
    err
}

/// A JSON body whose rejections are Appwrite errors (400 `general_argument_invalid`) instead of
/// axum's plain-text ones. An empty body reads as `{}`, as Appwrite treats it.
#[allow(dead_code)] // used by the service modules as they land
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        413,
                        "general_argument_invalid",
                        "Request body is too large.",
                    )
                } else {
                    ApiError::argument_invalid(e.body_text())
                }
            })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes)
            .map(Body)
            .map_err(|e| ApiError::argument_invalid(format!("Invalid JSON body: {e}")))
    }
}
