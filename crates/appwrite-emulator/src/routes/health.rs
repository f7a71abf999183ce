//! Health and ping: what clients use to check that the backend is there.

use axum::{Json, Router, routing::get};
use serde_json::{Value, json};

use crate::{APPWRITE_VERSION, auth::Caller, error::ApiResult, state::AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health/version", get(version))
        .route("/ping", get(ping))
        .route("/health", get(health))
        .route("/health/db", get(health_db))
}

/// Public: no project needed.
async fn version() -> Json<Value> {
    Json(json!({ "version": APPWRITE_VERSION }))
}

async fn ping(_caller: Caller) -> &'static str {
    "Pong!"
}

async fn health(caller: Caller) -> ApiResult<Json<Value>> {
    caller.require_key("health.read")?;
    Ok(Json(json!({ "name": "http", "ping": 0, "status": "pass" })))
}

async fn health_db(
    caller: Caller,
    axum::extract::State(state): axum::extract::State<AppState>,
) -> ApiResult<Json<Value>> {
    caller.require_key("health.read")?;
    let started = std::time::Instant::now();
    state
        .store
        .call(|conn| Ok(conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
        .await?;
    let ping = started.elapsed().as_millis() as u64;
    Ok(Json(json!({
        "total": 1,
        "statuses": [{ "name": "database", "ping": ping, "status": "pass" }]
    })))
}
