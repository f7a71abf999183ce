//! The emulator's SQLite store: one connection (file or memory) owned by one thread that runs
//! every storage call in turn. Holds the fixed tables (users, teams, schema metadata, files,
//! mail); each Appwrite collection additionally gets its own table, created by the collections
//! routes.
//!
//! One thread rather than `spawn_blocking` per call: calls are serialized by the single
//! connection anyway, and a burst of requests would otherwise start hundreds of blocking
//! threads that only wait for the connection (each with its own stack and allocator arena).
//!
//! Group commit: writes ([`Store::transaction`]) that are waiting in the queue when the thread
//! gets to them share one SQLite transaction, each inside its own savepoint (a failed call
//! rolls back only its own changes), and all of them answer once that transaction is
//! committed. Committing (writing every changed page to the WAL) is most of a small write's
//! cost, and concurrent writes touch many of the same pages (the ends of the `$sequence`,
//! `$createdAt` and `$updatedAt` indexes, interior pages), so a burst of writes costs far less
//! this way. Calls still run one at a time in the order they were made, see every change made
//! before them, and answer only when their change is durable: clients see exactly what one
//! transaction per call would give them. A call that is not a transaction ([`Store::call`]) runs
//! alone, after the writes before it are committed.
//!
//! Statistics: MariaDB keeps index statistics up to date by itself, and Appwrite relies on them
//! (a feed filter on route, two spellings of a pair and side should read the four-column index
//! and sort a few hundred rows, not walk the route and side index checking every row). SQLite
//! plans without statistics until `ANALYZE` runs, so the thread runs a sampled `ANALYZE` after
//! every [`ANALYZE_AFTER_WRITES`] writes, at most once per [`ANALYZE_EVERY`] (22 ms for one
//! 100,000-row table with eight indexes, measured in a stand-alone SQLite program). Prepared statements are re-planned by SQLite after it.

use std::{
    panic::AssertUnwindSafe,
    path::Path,
    sync::mpsc::{self, Receiver},
};

use rusqlite::{Connection, Transaction};

use crate::error::{ApiError, ApiResult};

/// Prepared statements kept per connection (see [`Store::open`]).
const STATEMENT_CACHE: usize = 1024;
/// Most writes committed together: bounds how long the first of them waits for its answer.
const MAX_GROUP: usize = 32;

/// Writes after which the statistics are refreshed (see the module docs).
const ANALYZE_AFTER_WRITES: u64 = 1_000;
/// The statistics are refreshed at most this often.
const ANALYZE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// Rows sampled per index by each `ANALYZE`: enough to tell a selective index from a broad one.
const ANALYSIS_LIMIT: u32 = 10_000;

/// A job for the storage thread.
enum Job {
    /// Runs alone with the connection, outside any transaction ([`Store::call`]).
    Alone(Box<dyn FnOnce(&mut Connection) + Send>),
    /// Runs inside a transaction, possibly shared with other writes ([`Store::transaction`]).
    Write(Box<dyn Write>),
}

/// One [`Store::transaction`] call, type-erased for the queue.
trait Write: Send {
    /// Runs the call inside `tx` and keeps its result; `false` when it failed (its changes
    /// must then be undone).
    fn run(&mut self, tx: &Transaction<'_>) -> bool;
    /// Answers the caller: with the kept result, or with `err` in its place (the shared
    /// transaction did not commit, or the call never ran).
    fn answer(self: Box<Self>, err: Option<ApiError>);
}

struct WriteCall<T, F> {
    f: Option<F>,
    result: Option<ApiResult<T>>,
    reply: tokio::sync::oneshot::Sender<ApiResult<T>>,
}

impl<T, F> Write for WriteCall<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Transaction<'_>) -> ApiResult<T> + Send + 'static,
{
    fn run(&mut self, tx: &Transaction<'_>) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        // A panicking call fails alone (its caller sees an error); the rest go on.
        match std::panic::catch_unwind(AssertUnwindSafe(|| f(tx))) {
            Ok(result) => {
                let ok = result.is_ok();
                self.result = Some(result);
                ok
            }
            Err(_) => false,
        }
    }

    fn answer(self: Box<Self>, err: Option<ApiError>) {
        let result = match (err, self.result) {
            // A call that failed by itself answers with its own error either way.
            (_, Some(Err(own))) => Err(own),
            (Some(err), _) => Err(err),
            (None, Some(ok)) => ok,
            // It panicked: dropping the sender tells the caller.
            (None, None) => return,
        };
        let _ = self.reply.send(result);
    }
}

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
             PRAGMA busy_timeout = 5000;
             -- Checkpoint every 4,000 WAL pages (16 MiB; the default is 1,000): a page written
             -- many times between checkpoints (index ends, interior pages) is copied back once.
             PRAGMA wal_autocheckpoint = 4000;
             -- Pages read through a 256 MiB memory map, as MariaDB keeps its buffer pool
             -- (128 MiB by default): a filtered page that checks a thousand rows otherwise
             -- reads most of them with a system call. The page cache keeps SQLite's 2 MiB: a
             -- 64 MiB one served filter pages no measurably faster, and every commit walked its
             -- whole hash table (`pcache1TruncateUnsafe`): 1,438 rather than 1,256 µs of CPU
             -- per webhook delivery (bench, 30,000 customers).
             PRAGMA mmap_size = 268435456;",
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
            .spawn(move || serve(conn, queue))?;
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
            .send(Job::Alone(Box::new(move |conn: &mut Connection| {
                let _ = tx.send(f(conn));
            })))
            .map_err(|_| ApiError::server_error("storage thread stopped"))?;
        rx.await
            .map_err(|_| ApiError::server_error("storage task failed"))?
    }

    /// Like [`Store::call`] but inside one SQLite transaction, committed when `f` succeeds
    /// (possibly together with other writes, see the module docs); answers once committed.
    pub async fn transaction<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> ApiResult<T> + Send + 'static,
    {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job::Write(Box::new(WriteCall {
                f: Some(f),
                result: None,
                reply,
            })))
            .map_err(|_| ApiError::server_error("storage thread stopped"))?;
        rx.await
            .map_err(|_| ApiError::server_error("storage task failed"))?
    }
}

/// The storage thread: runs jobs in the order they came until every handle is dropped.
fn serve(mut conn: Connection, queue: Receiver<Job>) {
    let mut next: Option<Job> = None;
    let mut stats = Statistics::new();
    loop {
        stats.refresh_if_due(&conn);
        let job = match next.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        match job {
            Job::Alone(f) => {
                // A panicking call fails alone (its caller sees an error); the rest go on.
                let _ = std::panic::catch_unwind(AssertUnwindSafe(|| f(&mut conn)));
            }
            Job::Write(first) => {
                let (after, written) = write_group(&mut conn, first, &queue);
                next = after;
                stats.written(written);
            }
        }
    }
}

/// When the index statistics were last refreshed, and the writes since.
struct Statistics {
    writes: u64,
    at: std::time::Instant,
}

impl Statistics {
    fn new() -> Self {
        Self {
            writes: 0,
            at: std::time::Instant::now(),
        }
    }

    fn written(&mut self, n: usize) {
        self.writes += n as u64;
    }

    fn refresh_if_due(&mut self, conn: &Connection) {
        if self.writes < ANALYZE_AFTER_WRITES || self.at.elapsed() < ANALYZE_EVERY {
            return;
        }
        self.writes = 0;
        self.at = std::time::Instant::now();
        let sql = format!("PRAGMA analysis_limit = {ANALYSIS_LIMIT}; ANALYZE;");
        if let Err(e) = conn.execute_batch(&sql) {
            // Plans stay as they were: slower at worst, never wrong.
            tracing::warn!(error = %e, "emulator: refreshing index statistics failed");
        }
    }
}

fn storage_error(e: rusqlite::Error) -> ApiError {
    ApiError::from(e)
}

/// Runs `first` and the writes queued behind it in one transaction (each in a savepoint,
/// except the first, whose failure simply rolls the transaction back), commits, then answers
/// them all. Returns the job that ended the group, if it is not a write.
fn write_group(
    conn: &mut Connection,
    first: Box<dyn Write>,
    queue: &Receiver<Job>,
) -> (Option<Job>, usize) {
    let mut count = 0;
    let next = run_group(conn, first, queue, &mut count);
    (next, count)
}

fn run_group(
    conn: &mut Connection,
    mut first: Box<dyn Write>,
    queue: &Receiver<Job>,
    count: &mut usize,
) -> Option<Job> {
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            first.answer(Some(storage_error(e)));
            return None;
        }
    };
    if !first.run(&tx) {
        // Nothing else ran yet: undo it all and answer with its own error.
        drop(tx);
        first.answer(None);
        return None;
    }
    let mut done: Vec<Box<dyn Write>> = vec![first];
    let mut next = None;
    while done.len() < MAX_GROUP {
        let mut job = match queue.try_recv() {
            Ok(Job::Write(job)) => job,
            Ok(other) => {
                next = Some(other);
                break;
            }
            Err(_) => break,
        };
        if let Err(e) = savepoint(&tx, "SAVEPOINT grouped") {
            job.answer(Some(e));
            break;
        }
        let ok = job.run(&tx);
        if tx.is_autocommit() {
            // SQLite rolled the whole transaction back (an I/O error, out of memory): what
            // the group wrote is gone.
            let lost = ApiError::server_error("Storage error: the transaction was rolled back");
            for earlier in done {
                earlier.answer(Some(lost.clone()));
            }
            job.answer(if ok { Some(lost) } else { None });
            return next;
        }
        let undone = if ok {
            savepoint(&tx, "RELEASE grouped")
        } else {
            savepoint(&tx, "ROLLBACK TO grouped").and_then(|()| savepoint(&tx, "RELEASE grouped"))
        };
        if let Err(e) = undone {
            // The group cannot go on safely: undo all of it.
            drop(tx);
            for earlier in done {
                earlier.answer(Some(e.clone()));
            }
            job.answer(Some(e));
            return next;
        }
        done.push(job);
    }
    let committed = tx.commit().err().map(storage_error);
    if committed.is_none() {
        *count = done.len();
    }
    for job in done {
        job.answer(committed.clone());
    }
    next
}

/// Runs one savepoint statement (from the statement cache).
fn savepoint(tx: &Transaction<'_>, sql: &str) -> ApiResult<()> {
    tx.prepare_cached(sql)?.execute([])?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes queued behind a busy call share one transaction: each answers with its own
    /// result, and a failed one leaves nothing behind while the others are committed.
    #[tokio::test]
    async fn grouped_writes_fail_alone() {
        let store = Store::open(None).unwrap();
        store
            .call(|conn| {
                conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")?;
                Ok(())
            })
            .await
            .unwrap();
        // Keeps the storage thread busy while the writes queue up behind it (this test's
        // runtime has one thread: spawned tasks start in the order they were spawned).
        let busy = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .call(|_| {
                        std::thread::sleep(std::time::Duration::from_millis(200));
                        Ok(())
                    })
                    .await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let writes: Vec<_> = (0..6)
            .map(|n: i64| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .transaction(move |tx| {
                            tx.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
                            tx.execute("INSERT INTO t (n) VALUES (?1)", [n + 100])?;
                            match n {
                                // Fails after writing: both of its rows must go.
                                2 => Err(ApiError::argument_invalid("two")),
                                // Collides with a row written earlier in the same group.
                                4 => {
                                    tx.execute("INSERT INTO t (n) VALUES (?1)", [3])?;
                                    Ok(n)
                                }
                                _ => Ok(n),
                            }
                        })
                        .await
                })
            })
            .collect();
        busy.await.unwrap().unwrap();
        let mut results = Vec::new();
        for w in writes {
            results.push(w.await.unwrap());
        }
        assert_eq!(results[0], Ok(0));
        assert_eq!(results[1], Ok(1));
        assert_eq!(results[2], Err(ApiError::argument_invalid("two")));
        assert_eq!(results[3], Ok(3));
        assert_eq!(results[4].as_ref().map_err(|e| e.status), Err(500));
        assert_eq!(results[5], Ok(5));
        let stored: Vec<i64> = store
            .call(|conn| {
                let mut stmt = conn.prepare("SELECT n FROM t ORDER BY n")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(stored, vec![0, 1, 3, 5, 100, 101, 103, 105]);
    }
}

#[cfg(test)]
mod statistics {
    use super::*;

    /// The combined feed filter's plan on `conn`, as `EXPLAIN QUERY PLAN` details.
    fn plan(conn: &Connection) -> String {
        let sql = "EXPLAIN QUERY PLAN SELECT t.* FROM t WHERE t.route = 'r1' \
                   AND t.pair IN ('p7/USDT', 'p7USDT') AND t.side = 'long' \
                   ORDER BY t.posted DESC, t._seq ASC LIMIT 26";
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn a_sampled_analyze_runs_when_due_and_changes_the_plan() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (_seq INTEGER PRIMARY KEY, route TEXT, pair TEXT, side TEXT, posted TEXT);
             CREATE INDEX by_route_side_posted ON t (route, side, posted DESC);
             CREATE INDEX by_route_pair_side_posted ON t (route, pair, side, posted DESC);",
        )
        .unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        for i in 0..30_000u64 {
            let h = i.wrapping_mul(2_654_435_761) % 1_000_003;
            tx.execute(
                "INSERT INTO t (route, pair, side, posted) VALUES (?1, ?2, ?3, ?4)",
                (
                    format!("r{}", h % 4),
                    format!("p{}/USDT", (h / 4) % 50),
                    if (h / 200) % 2 == 0 { "long" } else { "short" },
                    format!("{i:09}"),
                ),
            )
            .unwrap();
        }
        tx.commit().unwrap();
        assert!(
            plan(&conn).contains("by_route_side_posted"),
            "without statistics SQLite walks route and side: {}",
            plan(&conn)
        );

        let long_ago =
            std::time::Instant::now() - ANALYZE_EVERY - std::time::Duration::from_secs(1);
        let mut stats = Statistics {
            writes: ANALYZE_AFTER_WRITES - 1,
            at: long_ago,
        };
        stats.refresh_if_due(&conn);
        assert!(plan(&conn).contains("by_route_side_posted"), "not due yet");

        stats.written(1);
        stats.refresh_if_due(&conn);
        assert!(
            plan(&conn).contains("by_route_pair_side_posted"),
            "with statistics the four-column index: {}",
            plan(&conn)
        );
        assert_eq!(stats.writes, 0);

        // Due by writes but not by time: nothing runs.
        stats.written(ANALYZE_AFTER_WRITES as usize);
        stats.refresh_if_due(&conn);
        assert_eq!(
            stats.writes, ANALYZE_AFTER_WRITES,
            "at most once per ANALYZE_EVERY"
        );
    }
}
