//! `GET /healthz` for a container HEALTHCHECK or a load balancer: 200
//! `{"status":"ok","role":"leader"|"standby"}` once the start-up check passed, 503 before it
//! (and while stopping). Served on `BOT_HEALTH_BIND` only; nothing else is exposed there.

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use serde_json::{Value, json};
use tokio::sync::watch;

/// What this process is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Checking its token and permissions.
    Starting,
    /// Waiting for the lease.
    Standby,
    /// Holding the lease: mirroring and syncing roles.
    Leader,
    /// Draining after SIGTERM.
    Stopping,
}

impl From<g3_store::lease::Standing> for Role {
    fn from(standing: g3_store::lease::Standing) -> Self {
        use g3_store::lease::Standing;
        match standing {
            Standing::Standby => Role::Standby,
            Standing::Leader => Role::Leader,
            Standing::Stopping => Role::Stopping,
        }
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Starting => "starting",
            Role::Standby => "standby",
            Role::Leader => "leader",
            Role::Stopping => "stopping",
        }
    }
}

/// The health router over the current role.
pub fn router(role: watch::Receiver<Role>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(role)
}

async fn healthz(State(role): State<watch::Receiver<Role>>) -> (StatusCode, Json<Value>) {
    let role = *role.borrow();
    match role {
        Role::Standby | Role::Leader => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "role": role.as_str() })),
        ),
        Role::Starting | Role::Stopping => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": role.as_str() })),
        ),
    }
}
