//! The emulator's SQLite store: one connection (file or memory) owned by one thread that runs
//! every storage call in turn. Holds the fixed tables (users, teams, schema metadata, files,
//! mail); each Appwrite collection additionally gets its own table, created by the collections
//! routes.
//!
//! One thread rather than `spawn_blocking` per call: calls are serialized by the single
//! connection anyway, and a burst of requests would otherwise start hundreds of blocking
//! threads that only wait for the connection (each with its own stack and allocator arena).

use std::{panic::AssertUnwindSafe, path::Path, sync::mpsc};

use rusqlite::Connection;

use crate::error::{ApiError, ApiResult};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Prepared statements kept per connection (see [`Store::open`]).
const STATEMENT_CACHE: usize = 1024;

/// A cheaply clonable handle to the database. The connection closes when the last handle
/// is dropped.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
}

impl Store {
    /// Opens (creating if needed) a database file, or an in-memory one for `None`.
    pub fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        let conn = match path {
            Some(p) => Connection::open(p)?,
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )?;
        conn.execute_batch(BASE_SCHEMA)?;
        // Hot lookups (a document by id, a session, a membership) and list queries run from
        // prepared statements kept in this cache, keyed by SQL text. Each collection has about
        // 7 statements of its own (get, insert, update, delete, readers) and each list query
        // shape up to 3 (count, cursor row, page): the product's 13 collections and ~40 shapes
        // need about 250 with the account-side ones, so 1024 leaves room for every one of them
        // (a prepared statement costs a few KiB).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("emulator-sqlite".into())
            .spawn(move || {
                let mut conn = conn;
                for job in queue {
                    // A panicking call fails alone (its caller sees an error); the rest go on.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
                }
            })?;
        Ok(Self { jobs })
    }

    /// Runs `f` with exclusive access to the connection, on the storage thread.
    pub async fn call<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> ApiResult<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |conn: &mut Connection| {
                let _ = tx.send(f(conn));
            }))
            .map_err(|_| ApiError::server_error("storage thread stopped"))?;
        rx.await
            .map_err(|_| ApiError::server_error("storage task failed"))?
    }

    /// Like [`Store::call`] but inside one SQLite transaction, committed when `f` succeeds.
    pub async fn transaction<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> ApiResult<T> + Send + 'static,
    {
        self.call(move |conn| {
            let tx = conn.transaction()?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }
}

/// Fixed tables. JSON columns hold arrays/objects as text. Times are Appwrite-format strings,
/// which sort correctly as text because they are always UTC with fixed width.
const BASE_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS users (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    email TEXT UNIQUE,
    phone TEXT UNIQUE,
    password_hash TEXT,
    password_salt TEXT,
    password_update TEXT NOT NULL DEFAULT '',
    registration TEXT NOT NULL,
    status INTEGER NOT NULL DEFAULT 1,
    labels TEXT NOT NULL DEFAULT '[]',
    prefs TEXT NOT NULL DEFAULT '{}',
    email_verification INTEGER NOT NULL DEFAULT 0,
    phone_verification INTEGER NOT NULL DEFAULT 0,
    accessed_at TEXT NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL UNIQUE,
    provider TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    expire TEXT NOT NULL,
    ip TEXT NOT NULL DEFAULT '',
    factors TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);

-- One-time secrets: email codes, verification and recovery links.
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expire TEXT NOT NULL,
    phrase TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tokens_user ON tokens(user_id, kind);

CREATE TABLE IF NOT EXISTS teams (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    prefs TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS memberships (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    roles TEXT NOT NULL DEFAULT '[]',
    invited TEXT NOT NULL,
    joined TEXT NOT NULL DEFAULT '',
    confirm INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (team_id, user_id)
);
CREATE INDEX IF NOT EXISTS memberships_user ON memberships(user_id);

CREATE TABLE IF NOT EXISTS databases (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- `table_name` is the SQLite table that holds the collection's documents.
CREATE TABLE IF NOT EXISTS collections (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    database_id TEXT NOT NULL REFERENCES databases(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    permissions TEXT NOT NULL DEFAULT '[]',
    document_security INTEGER NOT NULL DEFAULT 0,
    enabled INTEGER NOT NULL DEFAULT 1,
    table_name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (database_id, id)
);

-- `spec` holds the type-specific fields (size, min, max, elements, format, default, ...).
CREATE TABLE IF NOT EXISTS attributes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    database_id TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    key TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    required INTEGER NOT NULL DEFAULT 0,
    is_array INTEGER NOT NULL DEFAULT 0,
    spec TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (database_id, collection_id, key)
);

CREATE TABLE IF NOT EXISTS indexes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    database_id TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    key TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    attributes TEXT NOT NULL,
    orders TEXT NOT NULL DEFAULT '[]',
    lengths TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (database_id, collection_id, key)
);

CREATE TABLE IF NOT EXISTS buckets (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    permissions TEXT NOT NULL DEFAULT '[]',
    file_security INTEGER NOT NULL DEFAULT 0,
    enabled INTEGER NOT NULL DEFAULT 1,
    maximum_file_size INTEGER NOT NULL,
    allowed_file_extensions TEXT NOT NULL DEFAULT '[]',
    compression TEXT NOT NULL DEFAULT 'none',
    encryption INTEGER NOT NULL DEFAULT 0,
    antivirus INTEGER NOT NULL DEFAULT 0,
    transformations INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- File bytes live on disk (or in `content` for in-memory stores); `chunks_uploaded` grows during
-- a chunked upload until it equals `chunks_total`.
CREATE TABLE IF NOT EXISTS files (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket_id TEXT NOT NULL REFERENCES buckets(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    signature TEXT NOT NULL DEFAULT '',
    mime_type TEXT NOT NULL DEFAULT 'application/octet-stream',
    size INTEGER NOT NULL,
    chunks_total INTEGER NOT NULL DEFAULT 1,
    chunks_uploaded INTEGER NOT NULL DEFAULT 0,
    permissions TEXT NOT NULL DEFAULT '[]',
    content BLOB,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (bucket_id, id)
);

-- Chunks of an upload in progress (files over 5 MiB), assembled into the file when complete.
CREATE TABLE IF NOT EXISTS file_chunks (
    bucket_id TEXT NOT NULL,
    file_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (bucket_id, file_id, idx),
    FOREIGN KEY (bucket_id, file_id) REFERENCES files(bucket_id, id) ON DELETE CASCADE
);

-- Account mail the emulator "sends": read on the mailbox page or its JSON endpoint.
CREATE TABLE IF NOT EXISTS mail (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    to_email TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    -- machine-readable parts for tests: {"userId":..., "secret":..., "url":...}
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS mail_to ON mail(to_email);
"#;
