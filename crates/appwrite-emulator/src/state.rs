//! Shared state handed to every route: configuration, the store, and the realtime event bus.

use std::{path::PathBuf, sync::Arc};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::store::Store;

/// How an emulator instance is set up. Tests build it as a struct literal.
#[derive(Clone, Debug)]
pub struct Config {
    /// The only project id this emulator serves.
    pub project_id: String,
    /// The server API key (`X-Appwrite-Key`) that may do everything.
    pub api_key: String,
    /// SQLite file; `None` keeps everything in memory.
    pub database_path: Option<PathBuf>,
    /// Where uploaded file bytes are kept; `None` keeps them in the database.
    pub storage_dir: Option<PathBuf>,
    /// Public base URL of this server (`http://127.0.0.1:PORT`), used in mailed links.
    /// Filled in by `run` from the bound address when empty.
    pub public_url: String,
    /// Refuse a document list query that no index of its collection covers (400, naming the
    /// collection and the query shape; see `indexes`). Real Appwrite answers such queries, only
    /// slowly, so this is for tests (testkit's backends turn it on); off by default.
    pub require_indexes: bool,
}

impl Config {
    /// An in-memory emulator with the given project and key: what most tests want.
    pub fn in_memory(project_id: &str, api_key: &str) -> Self {
        Self {
            project_id: project_id.to_owned(),
            api_key: api_key.to_owned(),
            database_path: None,
            storage_dir: None,
            public_url: String::new(),
            require_indexes: false,
        }
    }
}

/// A change that Realtime subscribers may see.
#[derive(Clone, Debug)]
pub struct RealtimeEvent {
    /// Appwrite event names, most specific first
    /// (`databases.g3.collections.signals.documents.ID.create`, ...).
    pub events: Vec<String>,
    /// Channels this event is delivered on (`documents`, `databases.g3.collections.signals.documents`, ...).
    pub channels: Vec<String>,
    /// Roles allowed to read the payload (`any`, `team:paid`, `user:ID`, ...). The server key is
    /// not a realtime subscriber, so there is no "everyone" shortcut.
    pub readers: Vec<String>,
    pub timestamp: String,
    pub payload: Value,
}

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub events: broadcast::Sender<RealtimeEvent>,
    /// Collection metadata for the documents routes, cleared on every schema change.
    pub schema: Arc<crate::schema::SchemaCache>,
    /// Sessions already resolved, valid until the next write ([`crate::auth::SessionCache`]).
    pub sessions: Arc<crate::auth::SessionCache>,
    /// Turns true when the server stops: upgraded Realtime sockets are not tracked by the
    /// HTTP server's graceful shutdown, so they watch this and close themselves.
    pub stopping: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    /// Publishes an event; having no subscribers is normal.
    pub fn publish(&self, event: RealtimeEvent) {
        let _ = self.events.send(event);
    }

    /// Publishes the event `make` builds, if anyone listens: most writes have no Realtime
    /// subscriber, and an event (every wildcard name, the payload) costs more than the write's
    /// own answer. A subscriber that connects while a write is answered may miss it either way.
    pub fn publish_with(&self, make: impl FnOnce() -> RealtimeEvent) {
        if self.events.receiver_count() > 0 {
            self.publish(make());
        }
    }
}
