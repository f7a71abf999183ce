//! Shared helpers for the users, account, teams, storage and mailbox tests: a running emulator
//! on 127.0.0.1 with typed request builders for the key, a session, or a guest.
#![allow(dead_code)]

use appwrite_emulator::{AppState, Config};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

pub const PROJECT: &str = "test-project";
pub const KEY: &str = "test-key";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    /// Present when started with [`TestApp::with_state`]: lets a test edit rows or listen to events.
    pub state: Option<AppState>,
    _handle: Option<appwrite_emulator::Handle>,
    _server: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    /// An in-memory emulator started with `appwrite_emulator::spawn`.
    pub async fn spawn() -> Self {
        Self::spawn_config(Config::in_memory(PROJECT, KEY)).await
    }

    pub async fn spawn_config(config: Config) -> Self {
        let handle = appwrite_emulator::spawn(config)
            .await
            .expect("spawn emulator");
        Self {
            base: format!("http://{}", handle.addr),
            http: reqwest::Client::new(),
            state: None,
            _handle: Some(handle),
            _server: None,
        }
    }

    /// Serves the router over a state the test keeps, to reach into the store or event bus.
    pub async fn with_state() -> Self {
        let state = appwrite_emulator::build_state(Config::in_memory(PROJECT, KEY)).expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = appwrite_emulator::router(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            state: Some(state),
            _handle: None,
            _server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn guest(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.url(&format!("/v1{path}")))
            .header("x-appwrite-project", PROJECT)
    }

    pub fn key(&self, method: Method, path: &str) -> RequestBuilder {
        self.guest(method, path).header("x-appwrite-key", KEY)
    }

    pub fn session(&self, method: Method, path: &str, secret: &str) -> RequestBuilder {
        self.guest(method, path)
            .header("x-appwrite-session", secret)
    }

    /// Creates a user with the key; returns its id.
    pub async fn create_user(&self, id: &str, email: &str, password: &str) -> Value {
        let (status, body) = send(self.key(Method::POST, "/users").json(&json!({
            "userId": id, "email": email, "password": password, "name": id
        })))
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Signs in with email and password through the key (server-side sessions); returns the secret.
    pub async fn sign_in(&self, email: &str, password: &str) -> String {
        let (status, body) = send(
            self.key(Method::POST, "/account/sessions/email")
                .json(&json!({ "email": email, "password": password })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let secret = body["secret"].as_str().expect("secret").to_owned();
        assert!(!secret.is_empty());
        secret
    }

    /// Messages for `to`, newest first.
    pub async fn mail_for(&self, to: &str) -> Vec<Value> {
        let resp = self
            .http
            .get(self.url("/mailbox/api/messages"))
            .query(&[("to", to)])
            .send()
            .await
            .expect("mailbox");
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.expect("json");
        body["messages"].as_array().cloned().unwrap_or_default()
    }

    /// The newest message of `kind` for `to`.
    pub async fn last_mail(&self, to: &str, kind: &str) -> Value {
        self.mail_for(to)
            .await
            .into_iter()
            .find(|m| m["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} mail for {to}"))
    }
}

/// Sends and returns status and JSON body (`null` for empty bodies).
pub async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// Asserts an Appwrite error response.
pub fn assert_error(status: StatusCode, body: &Value, code: u16, kind: &str) {
    assert_eq!(status.as_u16(), code, "{body}");
    assert_eq!(body["type"], kind, "{body}");
    assert_eq!(body["code"], code, "{body}");
}

/// Asserts `obj` has every key of `keys` (the spec's required fields of a model).
pub fn assert_fields(obj: &Value, keys: &[&str]) {
    for k in keys {
        assert!(obj.get(*k).is_some(), "missing `{k}` in {obj}");
    }
}

pub const USER_FIELDS: &[&str] = &[
    "$id",
    "$createdAt",
    "$updatedAt",
    "name",
    "registration",
    "status",
    "labels",
    "passwordUpdate",
    "email",
    "phone",
    "emailVerification",
    "phoneVerification",
    "mfa",
    "prefs",
    "targets",
    "accessedAt",
];
pub const SESSION_FIELDS: &[&str] = &[
    "$id",
    "$createdAt",
    "$updatedAt",
    "userId",
    "expire",
    "provider",
    "providerUid",
    "providerAccessToken",
    "providerAccessTokenExpiry",
    "providerRefreshToken",
    "ip",
    "osCode",
    "osName",
    "osVersion",
    "clientType",
    "clientCode",
    "clientName",
    "clientVersion",
    "clientEngine",
    "clientEngineVersion",
    "deviceName",
    "deviceBrand",
    "deviceModel",
    "countryCode",
    "countryName",
    "current",
    "factors",
    "secret",
    "mfaUpdatedAt",
];
pub const TOKEN_FIELDS: &[&str] = &["$id", "$createdAt", "userId", "secret", "expire", "phrase"];
pub const TEAM_FIELDS: &[&str] = &["$id", "$createdAt", "$updatedAt", "name", "total", "prefs"];
pub const MEMBERSHIP_FIELDS: &[&str] = &[
    "$id",
    "$createdAt",
    "$updatedAt",
    "userId",
    "userName",
    "userEmail",
    "teamId",
    "teamName",
    "invited",
    "joined",
    "confirm",
    "mfa",
    "roles",
];
pub const BUCKET_FIELDS: &[&str] = &[
    "$id",
    "$createdAt",
    "$updatedAt",
    "$permissions",
    "fileSecurity",
    "name",
    "enabled",
    "maximumFileSize",
    "allowedFileExtensions",
    "compression",
    "encryption",
    "antivirus",
    "transformations",
];
pub const FILE_FIELDS: &[&str] = &[
    "$id",
    "bucketId",
    "$createdAt",
    "$updatedAt",
    "$permissions",
    "name",
    "signature",
    "mimeType",
    "sizeOriginal",
    "chunksTotal",
    "chunksUploaded",
];

/// `queries[]=...` pairs for reqwest's `.query()`.
pub fn queries(qs: &[Value]) -> Vec<(&'static str, String)> {
    qs.iter().map(|q| ("queries[]", q.to_string())).collect()
}
