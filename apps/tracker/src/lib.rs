//! The tracker: follows `signals` (Realtime as a `staff` service user, catching up on every
//! connect), follows the exchange prices of the open ones (`g3-market`), judges them with
//! `g3-outcomes` and keeps one `signal_outcomes` document per signal. One process leads (the
//! `tracker` lease in `g3_store::lease`); the others stand by.
//!
//! Prices are judged as 1-second bars built from trades (`tape`), except that a trade reaching
//! a level of an open signal (its band, `g3_outcomes::Tracker::band`) closes the bar before it
//! and is judged at once as a tick; exactly those items are stored per minute
//! (`price_minutes`), so `recompute` gives the same documents from storage.
//! `GET /healthz` and `/metrics` (with `METRICS_TOKEN`) answer on `TRACKER_BIND`.

pub mod clock;
pub mod config;
mod follow;
mod lead;
pub mod metrics;
pub mod prices;
pub mod recompute;
pub mod signals;
pub mod tape;
mod work;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use g3_market::{Backoff, Endpoints, Venue};
use g3_outcomes::Rules;
pub use g3_service::{Secret, http::MetricsAccess};
use serde_json::json;
use tokio::{net::TcpListener, sync::watch};

pub use clock::Clock;
pub use metrics::Stats;

/// The lease the trackers share, its holder and timings.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub name: String,
    pub holder: String,
    pub timing: g3_store::lease::Timing,
}

/// Everything the tracker needs, checked once in `main` (or built by a test).
#[derive(Clone)]
pub struct Settings {
    pub appwrite: g3_appwrite::Config,
    /// The `staff` service user Realtime signs in as.
    pub staff_email: String,
    pub staff_password: Secret,
    /// Where a pair is followed: the first venue that lists it.
    pub venues: Vec<Venue>,
    /// Endpoints per venue; a venue not named uses its production endpoints.
    pub endpoints: BTreeMap<Venue, Endpoints>,
    pub feed_backoff: Backoff,
    /// How long an instrument list is trusted.
    pub listings_ttl: Duration,
    pub rules: Rules,
    /// A second's bar closes once the clock is this far past its end (trades arrive late).
    pub bar_grace: time::Duration,
    /// How often bars are closed and deadlines checked.
    pub tick_every: Duration,
    /// An open outcome whose events did not change is rewritten (last price, prices judged)
    /// at most this often.
    pub progress_every: Duration,
    pub lease: LeaseSettings,
    pub metrics: MetricsAccess,
    pub clock: Clock,
    /// Counters shared with `/metrics` (and tests).
    pub stats: Arc<Stats>,
}

impl Settings {
    pub fn endpoints(&self, venue: Venue) -> Endpoints {
        self.endpoints
            .get(&venue)
            .cloned()
            .unwrap_or_else(|| Endpoints::production(venue))
    }
}

/// What this process is doing: the leader loop's [`Standing`](g3_store::lease::Standing).
pub use g3_store::lease::Standing as Role;

#[derive(Clone)]
struct AppState {
    role: watch::Receiver<Role>,
    stats: Arc<Stats>,
    access: MetricsAccess,
}

/// Every route of the service.
fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Response {
    let role = *state.role.borrow();
    let code = match role {
        Role::Standby | Role::Leader => StatusCode::OK,
        Role::Stopping => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, Json(json!({ "status": "ok", "role": role.as_str() }))).into_response()
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.access.allows(&headers) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let leader = *state.role.borrow() == Role::Leader;
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.stats.render(leader),
    )
        .into_response()
}

/// Runs the tracker until `shutdown`: serves `/healthz` and `/metrics` on `listener`, stands
/// by for the lease, tracks while holding it. On shutdown the leader stores what it judged and
/// releases the lease.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let client = g3_appwrite::Client::new(settings.appwrite.clone())?;
    let (role, role_rx) = watch::channel(Role::Standby);
    let app = router(AppState {
        role: role_rx,
        stats: settings.stats.clone(),
        access: settings.metrics.clone(),
    });
    tracing::info!(addr = %listener.local_addr()?, "tracker listening");
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(g3_service::http::serve(
        listener,
        app,
        g3_service::http::Timeouts::default(),
        async move {
            let _ = http_stopped.await;
        },
    ));
    let result = lead::run(&settings, client, &role, shutdown).await;
    let _ = stop_http.send(());
    let _ = http.await;
    result
}

/// A holder id unique to this process: `<host>-<pid>-<random>`.
pub fn default_holder(host: Option<&str>) -> String {
    use rand::Rng as _;
    let nonce: u32 = rand::rng().random();
    let host: String = host
        .unwrap_or("tracker")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(64)
        .collect();
    format!("{host}-{}-{nonce:08x}", std::process::id())
}
