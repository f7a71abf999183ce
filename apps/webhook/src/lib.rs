//! The webhook service: signed inbound machine traffic. `POST /webhooks/sellapp` verifies
//! Sell.app's signature over the raw body, records the delivery idempotently and applies it
//! (grant, extend, revoke, cancel) through `g3-access`; it answers 2xx only once the effect (or
//! the failure record) is durable. `POST /ingest/v1/events` merges the collector's signed
//! message events into `signals`. Both pass one signed-body check (`signed`) and answer errors
//! through [`WebhookError`]. Background workers retry failures, expire ended periods and
//! reconcile refunds. Routes are listed in [`router`].
//!
//! Any number of replicas may run: per-customer work is serialised by `g3-access`'s locks in
//! Appwrite, and nothing else is shared. `/metrics` is hidden on the public listener unless a
//! bearer token is configured; a separate private listener can serve it without one.

pub mod error;
pub mod ingest;
pub mod metrics;
pub mod reconcile;
mod sellapp;
mod signed;
pub mod spool;
mod worker;

pub use error::WebhookError;

use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use g3_access::Access;
use g3_core::plans::{PlanCatalog, PlanRoles};
use tokio::net::TcpListener;

use crate::{metrics::Metrics, reconcile::SellappApi, spool::Spool};

/// Largest accepted webhook body; larger ones get 413.
pub const MAX_BODY: usize = 1024 * 1024;

pub use g3_service::{
    Secret,
    http::{MetricsAccess, Timeouts},
};

/// Secrets still accepted beside the current ones while a rotation is under way.
#[derive(Clone, Debug, Default)]
pub struct PreviousSecrets {
    /// `SELLAPP_WEBHOOK_SECRET_PREVIOUS`.
    pub sellapp: Option<Secret>,
    /// `INGEST_SECRET_PREVIOUS` (ignored while ingest is off).
    pub ingest: Option<Secret>,
}

/// How the service speaks HTTP: how it listens, and where ingest may download from.
#[derive(Clone, Debug, Default)]
pub struct HttpSettings {
    /// Header and body read deadlines of every connection.
    pub timeouts: Timeouts,
    /// Who may read `/metrics` on the public listener.
    pub metrics: MetricsAccess,
    /// Which attachment URLs ingest downloads (`INGEST_ATTACHMENT_HOSTS`); tests with a fake
    /// CDN on 127.0.0.1 add a local exception.
    pub attachment_policy: ingest::cdn::AttachmentPolicy,
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
    /// Older secrets accepted during a rotation.
    pub previous_secrets: PreviousSecrets,
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
    pub http: HttpSettings,
}

#[derive(Clone)]
pub struct AppState {
    pub access: Arc<Access>,
    /// The current Sell.app secret first, then any previous one still accepted.
    pub sellapp_secrets: Vec<Secret>,
    pub metrics_access: MetricsAccess,
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
            sellapp_secrets: std::iter::once(settings.sellapp_secret.clone())
                .chain(settings.previous_secrets.sellapp.clone())
                .collect(),
            metrics_access: settings.http.metrics.clone(),
            spool: Spool::open(&settings.spool_dir)?,
            metrics: Arc::new(Metrics::default()),
            ingest: match settings.ingest_secret.clone() {
                Some(secret) => {
                    let secrets = std::iter::once(secret)
                        .chain(settings.previous_secrets.ingest.clone())
                        .collect();
                    Some(Arc::new(ingest::Ingest::new(
                        client.clone(),
                        secrets,
                        settings.http.attachment_policy.clone(),
                    )?))
                }
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

/// Every route of the service (`/metrics` only for holders of the metrics token).
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
        .route("/metrics", get(guarded_metrics))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// The private metrics listener (`WEBHOOK_METRICS_BIND`): `/metrics` without a token.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

/// Without the token the route does not exist, as far as the caller can tell.
async fn guarded_metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if state.metrics_access.allows(&headers) {
        metrics(State(state)).await.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
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
    run_with_metrics(settings, listener, None, shutdown).await
}

/// Like [`run`], with `/metrics` also served without a token on `metrics_listener` (a private
/// scrape network). When `shutdown` resolves both listeners stop accepting, requests in flight
/// finish (a delivery being applied is answered), and the background jobs stop after their
/// current step.
pub async fn run_with_metrics(
    settings: Settings,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(&settings)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let jobs = settings
        .background_jobs
        .then(|| worker::spawn(state.clone(), settings.clone(), stop_rx.clone()));
    let timeouts = settings.http.timeouts;
    tracing::info!(addr = %listener.local_addr()?, "webhook service listening");
    let private = match metrics_listener {
        Some(metrics_listener) => {
            tracing::info!(addr = %metrics_listener.local_addr()?, "metrics listening");
            Some(tokio::spawn(g3_service::http::serve(
                metrics_listener,
                metrics_router(state.clone()),
                timeouts,
                stopped(stop_rx.clone()),
            )))
        }
        None => None,
    };
    let served = g3_service::http::serve(listener, router(state), timeouts, stopped(stop_rx)).await;
    if let Some(private) = private {
        private
            .await
            .context("metrics listener task")?
            .context("serving metrics")?;
    }
    if let Some(jobs) = jobs {
        let _ = jobs.await;
    }
    served.context("serving the webhook service")
}
