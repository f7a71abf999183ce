//! The webhook service: signed inbound machine traffic. `POST /webhooks/sellapp` verifies
//! Sell.app's signature over the raw body, records the delivery idempotently and applies it
//! (grant, extend, revoke, cancel) through `g3-access`; it answers 2xx only once the effect (or
//! the failure record) is durable. Background workers retry failures, expire ended periods and
//! reconcile refunds. Routes are listed in [`router`].

pub mod ingest;
pub mod metrics;
pub mod reconcile;
mod sellapp;
pub mod spool;
mod worker;

use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    http::{StatusCode, header},
    response::IntoResponse,
    routing::{get, post},
};
use g3_access::Access;
use g3_core::plans::{PlanCatalog, PlanRoles};
use tokio::net::TcpListener;

use crate::{metrics::Metrics, reconcile::SellappApi, spool::Spool};

/// Largest accepted webhook body; larger ones get 413.
pub const MAX_BODY: usize = 1024 * 1024;

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How often the background jobs run.
#[derive(Clone, Debug)]
pub struct Intervals {
    /// Drain the spool and retry due failures.
    pub retry: Duration,
    /// Expire subscriptions whose paid period ended.
    pub expiry: Duration,
    /// Read orders back from Sell.app to find refunds.
    pub reconcile: Duration,
}

impl Default for Intervals {
    fn default() -> Self {
        Self {
            retry: Duration::from_secs(15),
            expiry: Duration::from_secs(60),
            reconcile: Duration::from_secs(15 * 60),
        }
    }
}

/// Everything the service needs, loaded once in `main`; tests build it as a literal.
#[derive(Clone, Debug)]
pub struct Settings {
    pub appwrite: g3_appwrite::Config,
    pub sellapp_secret: Secret,
    pub plans: PlanCatalog,
    /// Discord roles per plan, recorded as desired role state for the bot.
    pub roles: PlanRoles,
    pub spool_dir: PathBuf,
    /// Secret of the collector's signed ingest requests; `None` turns ingest off (404).
    pub ingest_secret: Option<Secret>,
    /// Sell.app's API for refund reconciliation; `None` disables it.
    pub sellapp_api: Option<SellappApi>,
    pub intervals: Intervals,
    /// Run the background jobs (tests that drive them by hand turn this off).
    pub background_jobs: bool,
}

#[derive(Clone)]
pub struct AppState {
    pub access: Arc<Access>,
    pub secret: Secret,
    pub spool: Spool,
    pub metrics: Arc<Metrics>,
    pub ingest: Option<ingest::SharedIngest>,
}

impl AppState {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let client =
            g3_appwrite::Client::new(settings.appwrite.clone()).context("Appwrite client")?;
        Ok(Self {
            access: Arc::new(
                Access::new(client.clone(), settings.plans.clone())
                    .with_roles(settings.roles.clone()),
            ),
            secret: settings.sellapp_secret.clone(),
            spool: Spool::open(&settings.spool_dir)?,
            metrics: Arc::new(Metrics::default()),
            ingest: match settings.ingest_secret.clone() {
                Some(secret) => Some(Arc::new(ingest::Ingest::new(client.clone(), secret)?)),
                None => None,
            },
        })
    }

    /// One pass of the retry worker: drain the spool, retry due failures. For tests and ops.
    pub async fn retry_once(&self) -> worker::RetryReport {
        worker::retry_once(self).await
    }
}

pub use worker::RetryReport;

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/webhooks/sellapp",
            post(sellapp::receive).layer(DefaultBodyLimit::max(MAX_BODY)),
        )
        .merge(
            Router::new()
                .route("/ingest/v1/events", post(ingest::receive))
                .layer(DefaultBodyLimit::max(MAX_BODY))
                .layer(ingest::cors()),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.access.client().ping().await {
        Ok(latency) => (
            StatusCode::OK,
            format!("ready: Appwrite answered in {} ms\n", latency.as_millis()),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: Appwrite unreachable: {e}\n"),
        ),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics.set_spooled(state.spool.len() as i64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Serves until `shutdown` resolves; background jobs stop with it.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(&settings)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let jobs = settings
        .background_jobs
        .then(|| worker::spawn(state.clone(), settings.clone(), stop_rx));
    tracing::info!(addr = %listener.local_addr()?, "webhook service listening");
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop_tx.send(true);
    if let Some(jobs) = jobs {
        let _ = jobs.await;
    }
    served.context("serving the webhook service")
}
