//! Shared helpers for the databases, documents and realtime tests: an emulator on a temporary
//! SQLite file (so tests can add users and sessions directly), and typed request helpers.
#![allow(dead_code)]

use std::time::Duration;

use appwrite_emulator::{Config, Handle};
use reqwest::Method;
use serde_json::{Value, json};

pub const PROJECT: &str = "test-project";
pub const KEY: &str = "test-key";
pub const DB: &str = "g3";

/// Who sends a request.
#[derive(Clone, Debug)]
pub enum As {
    Key,
    Guest,
    Session(String),
}

pub struct Emu {
    pub handle: Handle,
    pub http: reqwest::Client,
    pub db_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Emu {
    pub async fn start() -> Emu {
        Self::start_with(|_| {}).await
    }

    /// As [`Emu::start`], with `adjust` applied to the configuration first.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Emu {
        let dir = tempfile::tempdir().expect("tempdir");
        let db_path = dir.path().join("emulator.sqlite");
        let mut config = Config::in_memory(PROJECT, KEY);
        config.database_path = Some(db_path.clone());
        adjust(&mut config);
        let handle = appwrite_emulator::spawn(config).await.expect("spawn");
        let emu = Emu {
            handle,
            http: reqwest::Client::new(),
            db_path,
            _dir: dir,
        };
        // The server task binds before returning; wait until it answers.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let ok = emu
                .http
                .get(format!("{}/health/version", emu.handle.endpoint))
                .send()
                .await
                .is_ok();
            if ok {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "emulator did not start"
            );
            tokio::task::yield_now().await;
        }
        emu
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.handle.endpoint, path)
    }

    pub async fn req(
        &self,
        who: &As,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut rb = self
            .http
            .request(method, self.url(path))
            .header("X-Appwrite-Project", PROJECT);
        rb = match who {
            As::Key => rb.header("X-Appwrite-Key", KEY),
            As::Guest => rb,
            As::Session(s) => rb.header("X-Appwrite-Session", s),
        };
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    pub async fn key(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.req(&As::Key, method, path, body).await
    }

    /// Asserts a status and returns the body.
    pub async fn ok(&self, method: Method, path: &str, body: Value, status: u16) -> Value {
        let (got, json) = self.key(method.clone(), path, Some(body)).await;
        assert_eq!(got, status, "{method} {path}: {json}");
        json
    }

    /// GET documents with queries (each a JSON value), as `who`.
    pub async fn list(&self, who: &As, col: &str, queries: &[Value]) -> (u16, Value) {
        let mut rb = self
            .http
            .get(self.url(&format!("/databases/{DB}/collections/{col}/documents")))
            .header("X-Appwrite-Project", PROJECT);
        rb = match who {
            As::Key => rb.header("X-Appwrite-Key", KEY),
            As::Guest => rb,
            As::Session(s) => rb.header("X-Appwrite-Session", s),
        };
        let pairs: Vec<(String, String)> = queries
            .iter()
            .map(|q| ("queries[]".to_owned(), q.to_string()))
            .collect();
        let resp = rb.query(&pairs).send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn create_db(&self) {
        self.ok(
            Method::POST,
            "/databases",
            json!({"databaseId": DB, "name": "G3"}),
            201,
        )
        .await;
    }

    pub async fn create_collection(&self, col: &str, perms: &[&str], document_security: bool) {
        self.ok(
            Method::POST,
            &format!("/databases/{DB}/collections"),
            json!({"collectionId": col, "name": col, "permissions": perms, "documentSecurity": document_security}),
            201,
        )
        .await;
    }

    /// Creates an attribute and waits until it is available, as clients do.
    pub async fn attr(&self, col: &str, kind: &str, body: Value) {
        let key = body["key"].as_str().expect("key").to_owned();
        self.ok(
            Method::POST,
            &format!("/databases/{DB}/collections/{col}/attributes/{kind}"),
            body,
            202,
        )
        .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (s, a) = self
                .key(
                    Method::GET,
                    &format!("/databases/{DB}/collections/{col}/attributes/{key}"),
                    None,
                )
                .await;
            assert_eq!(s, 200, "{a}");
            if a["status"] == "available" {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "attribute {key} never available"
            );
            tokio::task::yield_now().await;
        }
    }

    pub async fn index(&self, col: &str, key: &str, kind: &str, attrs: &[&str], orders: &[&str]) {
        self.ok(
            Method::POST,
            &format!("/databases/{DB}/collections/{col}/indexes"),
            json!({"key": key, "type": kind, "attributes": attrs, "orders": orders}),
            202,
        )
        .await;
    }

    pub async fn create_doc(
        &self,
        who: &As,
        col: &str,
        id: &str,
        data: Value,
        perms: Option<&[&str]>,
    ) -> (u16, Value) {
        let mut body = json!({"documentId": id, "data": data});
        if let Some(p) = perms {
            body["permissions"] = json!(p);
        }
        self.req(
            who,
            Method::POST,
            &format!("/databases/{DB}/collections/{col}/documents"),
            Some(body),
        )
        .await
    }

    fn sqlite(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(&self.db_path).expect("open sqlite");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        conn
    }

    /// Adds a verified user with a live session directly in the store (the account routes
    /// belong to another part of the emulator) and returns the session secret.
    pub fn user_session(&self, user_id: &str) -> String {
        let conn = self.sqlite();
        let now = "2024-01-01T00:00:00.000+00:00";
        conn.execute(
            "INSERT INTO users (id, created_at, updated_at, name, email, registration, email_verification)
             VALUES (?1, ?2, ?2, ?1, ?1 || '@example.com', ?2, 1)",
            rusqlite::params![user_id, now],
        )
        .expect("insert user");
        let secret = format!("secret-{user_id}");
        conn.execute(
            "INSERT INTO sessions (id, user_id, secret_hash, provider, created_at, updated_at, expire)
             VALUES (?1, ?2, ?3, 'email', ?4, ?4, '2999-01-01T00:00:00.000+00:00')",
            rusqlite::params![
                format!("s-{user_id}"),
                user_id,
                appwrite_emulator::util::hash_secret(&secret),
                now
            ],
        )
        .expect("insert session");
        secret
    }

    /// Makes `user_id` a confirmed member of `team` (created if needed).
    pub fn join_team(&self, user_id: &str, team: &str) {
        let conn = self.sqlite();
        let now = "2024-01-01T00:00:00.000+00:00";
        conn.execute(
            "INSERT OR IGNORE INTO teams (id, name, created_at, updated_at) VALUES (?1, ?1, ?2, ?2)",
            rusqlite::params![team, now],
        )
        .expect("insert team");
        conn.execute(
            "INSERT INTO memberships (id, team_id, user_id, roles, invited, joined, confirm, created_at, updated_at)
             VALUES (?1, ?2, ?3, '[]', ?4, ?4, 1, ?4, ?4)",
            rusqlite::params![format!("m-{team}-{user_id}"), team, user_id, now],
        )
        .expect("insert membership");
    }

    /// Raw SQL against the store, for checking what the emulator built.
    pub fn sql_strings(&self, sql: &str) -> Vec<String> {
        let conn = self.sqlite();
        let mut stmt = conn.prepare(sql).expect("prepare");
        stmt.query_map([], |r| r.get::<_, String>(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }
}

impl Emu {
    /// `EXPLAIN QUERY PLAN` details for `sql`.
    pub fn query_plan(&self, sql: &str) -> Vec<String> {
        let conn = self.sqlite();
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("prepare");
        stmt.query_map([], |r| r.get::<_, String>(3))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }
}

pub fn ids(list: &Value) -> Vec<String> {
    list["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| d["$id"].as_str().expect("id").to_owned())
        .collect()
}

impl Emu {
    /// Ends `user_id`'s membership of `team`.
    pub fn leave_team(&self, user_id: &str, team: &str) {
        self.sqlite()
            .execute(
                "DELETE FROM memberships WHERE team_id = ?1 AND user_id = ?2",
                rusqlite::params![team, user_id],
            )
            .expect("delete membership");
    }
}
