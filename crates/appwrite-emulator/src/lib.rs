//! A local server that answers Appwrite 1.8's REST and Realtime endpoints for everything this
//! product uses, stored in SQLite, so the product runs and is tested without Appwrite or Docker.
//!
//! Start it with [`spawn`] (tests, devstack) or [`run`] (the binary). A route it does not have
//! answers Appwrite's 404 `general_route_not_found` naming the route; a feature of a route it
//! has but does not implement (bulk writes, team invitations by mail) answers 501
//! `general_not_implemented`.

pub mod auth;
mod docstore;
pub mod error;
mod identity;
pub mod indexes;
// Public for the fuzz target in fuzz/ (the account-side list queries).
pub mod list_query;
mod mail;
mod params;
pub mod permissions;
// Public for the fuzz target in fuzz/ (parse_queries and compile).
pub mod query;
mod routes;
pub mod schema;
pub mod state;
pub mod store;
pub mod util;

use std::{future::Future, net::SocketAddr};

use anyhow::Context as _;
use tokio::{net::TcpListener, sync::broadcast};

pub use crate::state::{AppState, Config};
use crate::store::Store;

/// The Appwrite server version this emulator imitates, reported in errors and `/health/version`.
pub const APPWRITE_VERSION: &str = "1.8.1";

/// Opens the store and builds the shared state.
pub fn build_state(config: Config) -> anyhow::Result<AppState> {
    if let Some(dir) = &config.storage_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating storage directory {}", dir.display()))?;
    }
    let store = Store::open(config.database_path.as_deref()).with_context(|| {
        format!(
            "opening emulator database {}",
            config
                .database_path
                .as_deref()
                .map_or("(memory)".into(), |p| p.display().to_string())
        )
    })?;
    let (events, _) = broadcast::channel(4096);
    Ok(AppState {
        config: std::sync::Arc::new(config),
        store,
        events,
        schema: Default::default(),
        sessions: Default::default(),
        stopping: tokio::sync::watch::Sender::new(false),
    })
}

/// The whole HTTP surface, for callers that want to serve it themselves.
pub fn router(state: AppState) -> axum::Router {
    routes::router(state)
}

/// Serves on `listener` until `shutdown` resolves.
pub async fn run(
    mut config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    if config.public_url.is_empty() {
        config.public_url = format!("http://{addr}");
    }
    let state = build_state(config)?;
    let stopping = state.stopping.clone();
    tracing::info!(%addr, "appwrite emulator listening");
    // Realtime frames are small: without TCP_NODELAY they can wait ~40 ms for delayed ACKs.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Realtime clients see the server go away, as they would with real Appwrite.
            let _ = stopping.send(true);
        })
        .await
        .context("serving the appwrite emulator")
}

/// A running emulator: its address and a way to stop it.
pub struct Handle {
    pub addr: SocketAddr,
    /// Base URL of the REST API, e.g. `http://127.0.0.1:40123/v1`.
    pub endpoint: String,
    pub project_id: String,
    pub api_key: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Handle {
    /// Stops serving and waits until the listener is closed.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.context("emulator task panicked")?
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts an emulator on `127.0.0.1:0` in the background.
pub async fn spawn(config: Config) -> anyhow::Result<Handle> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    spawn_on(config, listener).await
}

/// Starts an emulator on a given listener (a fixed port, e.g. to restart on the same address).
pub async fn spawn_on(config: Config, listener: TcpListener) -> anyhow::Result<Handle> {
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let project_id = config.project_id.clone();
    let api_key = config.api_key.clone();
    let task = tokio::spawn(run(config, listener, async move {
        let _ = rx.await;
    }));
    Ok(Handle {
        addr,
        endpoint: format!("http://{addr}/v1"),
        project_id,
        api_key,
        stop: Some(tx),
        task,
    })
}
