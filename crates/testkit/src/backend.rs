//! A bootstrapped backend for service tests: an Appwrite emulator with the product's schema,
//! and a server-key client for it. In memory by default; on a file when a test needs to stop
//! and restart Appwrite without losing data.

use std::{net::SocketAddr, path::Path};

use g3_appwrite::{ApiKey, Client, Config, RetryPolicy};

pub const PROJECT: &str = "test-project";
pub const API_KEY: &str = "test-server-key";

pub struct Backend {
    emulator: Option<appwrite_emulator::Handle>,
    emulator_config: appwrite_emulator::Config,
    pub addr: SocketAddr,
    pub endpoint: String,
    /// A client holding the server key; no retries, so tests see every failure.
    pub client: Client,
}

impl Backend {
    /// A client configuration for services under test (server key, no retries).
    pub fn client_config(&self) -> Config {
        let mut config = Config::new(&self.endpoint, PROJECT);
        config.api_key = Some(ApiKey::new(API_KEY));
        config.retry = RetryPolicy::none();
        config
    }

    /// Stops Appwrite (the address stays reserved for [`Backend::start`]).
    pub async fn stop(&mut self) {
        if let Some(handle) = self.emulator.take() {
            handle.stop().await.expect("emulator stops cleanly");
        }
    }

    /// Starts Appwrite again on the same address and data.
    pub async fn start(&mut self) {
        assert!(self.emulator.is_none(), "already running");
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("rebind the emulator's address");
        self.emulator = Some(
            appwrite_emulator::spawn_on(self.emulator_config.clone(), listener)
                .await
                .expect("emulator restarts"),
        );
    }
}

/// The emulator as service tests run it: a list query that no index of `g3-store`'s schema
/// covers is refused (`require_indexes`), so a service that issues a new query shape fails its
/// tests until the schema has an index for it.
fn emulator_config() -> appwrite_emulator::Config {
    let mut config = appwrite_emulator::Config::in_memory(PROJECT, API_KEY);
    config.require_indexes = true;
    config
}

/// An in-memory emulator with the product's schema.
pub async fn backend() -> Backend {
    start(emulator_config()).await
}

/// An emulator keeping its data in `dir`, so it survives [`Backend::stop`] and [`Backend::start`].
pub async fn backend_on_disk(dir: &Path) -> Backend {
    let mut config = emulator_config();
    config.database_path = Some(dir.join("appwrite.sqlite"));
    config.storage_dir = Some(dir.join("files"));
    start(config).await
}

async fn start(config: appwrite_emulator::Config) -> Backend {
    let emulator = appwrite_emulator::spawn(config.clone())
        .await
        .expect("the emulator starts");
    let mut client_config = Config::new(&emulator.endpoint, PROJECT);
    client_config.api_key = Some(ApiKey::new(API_KEY));
    client_config.retry = RetryPolicy::none();
    let client = Client::new(client_config).expect("client config is valid");
    g3_store::bootstrap::run(&client, &mut |_: &str| {})
        .await
        .expect("schema bootstraps");
    Backend {
        addr: emulator.addr,
        endpoint: emulator.endpoint.clone(),
        emulator: Some(emulator),
        emulator_config: config,
        client,
    }
}
