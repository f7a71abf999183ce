//! Shared by the gateway, collector and follow tests: a backend with the bot's service user, the
//! bot's settings against the fake Discord, a running bot, and the real ingest service behind a
//! switch that records every request.

#![allow(dead_code)]

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use bot::{RetryPolicy, Secret, Settings, collect::CollectorSettings};
use g3_appwrite::Document;
use g3_store::{
    Collection,
    models::{Route, Signal},
    schema::TEAM_STAFF,
};
use serde_json::Value;
use testkit::{backend::Backend, discord::FakeDiscord};
use time::OffsetDateTime;
use tokio::sync::oneshot;

pub use testkit::wait::eventually;

pub const STAFF_EMAIL: &str = "bot-service@test.local";
pub const STAFF_PASSWORD: &str = "bot service password";
pub const INGEST_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A bootstrapped backend with the `staff` service user the bot signs in as.
pub async fn backend() -> Backend {
    let backend = testkit::backend::backend().await;
    let user = backend
        .client
        .users()
        .create(
            "bot-service",
            STAFF_EMAIL,
            Some(STAFF_PASSWORD),
            Some("bot"),
        )
        .await
        .unwrap();
    backend
        .client
        .teams()
        .add_member_if_absent(TEAM_STAFF, &user.id, &[] as &[&str])
        .await
        .unwrap();
    backend
}

/// The enabled route `main`: source channel 200 mirrored into `channel`.
pub async fn main_route(backend: &Backend, channel: u64) {
    Collection::<Route>::new(&backend.client)
        .upsert(
            "main",
            &Route {
                source_channel_id: "200".into(),
                source_guild_id: None,
                name: "Main".into(),
                customer_channel_ids: vec![channel.to_string()],
                enabled: Some(true),
            },
            None,
        )
        .await
        .unwrap();
}

/// A live signal of route `main` (source guild 100, channel 200) with plain `content`.
pub fn live_signal(id: &str, content: &str, revision: i64, posted_at: OffsetDateTime) -> Signal {
    Signal {
        content: Some(content.into()),
        revision,
        ..Signal::live(("100", "200", id), "main", posted_at)
    }
}

/// HTTP-only settings with fast timings (no gateway unless a test adds it).
pub fn settings(backend: &Backend, fake: &FakeDiscord) -> Settings {
    Settings {
        discord_token: Secret::new("test-token"),
        appwrite: backend.client_config(),
        staff_email: STAFF_EMAIL.into(),
        staff_password: Secret::new(STAFF_PASSWORD),
        order: bot::Order::OldestFirst,
        discord_timeout: Duration::from_millis(500),
        retry: RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(10),
            max: Duration::from_millis(50),
        },
        discord_client: Some(fake.client(Duration::from_millis(500))),
        reconcile_every: Duration::from_secs(3600),
        verify_window: Duration::from_secs(24 * 3600),
        retry_failed_after: Duration::from_millis(100),
        guild_id: None,
        plan_roles: Default::default(),
        role_timing: Default::default(),
        gateway: Default::default(),
        discord_api_url: None,
        lease: bot::LeaseSettings::default(),
        health_bind: None,
    }
}

/// Settings for one of several bots sharing a lease: fast lease timings (ttl 3 s, renewed
/// every 300 ms; a renewal slower than 900 ms does not count).
pub fn fast_lease(settings: Settings, holder: &str) -> Settings {
    Settings {
        lease: bot::LeaseSettings {
            name: "bot".into(),
            holder: holder.into(),
            timing: g3_store::lease::Timing::new(
                Duration::from_millis(3000),
                Duration::from_millis(300),
            )
            .unwrap(),
            hold_renewals: None,
        },
        ..settings
    }
}

/// Collector settings for tests: fast back-off, no page delay.
pub fn collector(guild: u64, channels: Vec<u64>, ingest: &Ingest) -> CollectorSettings {
    let mut c = CollectorSettings::new(
        guild,
        channels,
        format!("{}/ingest/v1/events", ingest.url()),
        Secret::new(INGEST_SECRET),
    );
    c.backoff_base = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c.page_delay = Duration::ZERO;
    c.request_timeout = Duration::from_secs(2);
    c
}

/// A running bot; [`Running::kill`] stops it and waits until it has stopped. Dropping it
/// stops the bot too (the stop channel closes) without waiting.
pub struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn kill(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }

    /// Stops the bot the way `kill -9` would: no drain, no cursor, no lease release.
    pub async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A running bot with its `/healthz` listener.
pub struct Bot {
    pub running: Running,
    pub health: SocketAddr,
}

impl Bot {
    /// Starts `bot::run_with` with a health listener on 127.0.0.1:0.
    pub async fn start(settings: Settings) -> Bot {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let health = listener.local_addr().unwrap();
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            bot::run_with(settings, Some(listener), async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Bot {
            running: Running { stop, task },
            health,
        }
    }

    /// `/healthz`'s status code and `role` (or `status` while not serving).
    pub async fn health(&self) -> (u16, String) {
        health_of(self.health).await
    }

    pub async fn role(&self) -> String {
        self.health().await.1
    }
}

pub async fn health_of(addr: SocketAddr) -> (u16, String) {
    let Ok(response) = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
    else {
        return (0, "unreachable".into());
    };
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or_default();
    let role = body
        .get("role")
        .or_else(|| body.get("status"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    (status, role)
}

pub fn start(settings: Settings) -> Running {
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        bot::run(settings, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running { stop, task }
}

pub async fn signal(backend: &Backend, id: u64) -> Option<Document<Signal>> {
    Collection::<Signal>::new(&backend.client)
        .get_optional(&id.to_string())
        .await
        .unwrap()
}

/// The bot's log lines, collected while the guard of [`Logs::capture`] lives.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Collects INFO and above logged on this thread. A `#[tokio::test]` runtime runs every
    /// task on the test's thread, so that is everything the bot logs.
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (logs, guard)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// How many lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(needle)).count()
    }
}

/// What reached ingest: every attempt's events and the events of answered (2xx) requests.
#[derive(Default)]
pub struct IngestLog {
    /// `(type, message id)` of each request, in arrival order, answered or not.
    pub attempts: Vec<Vec<(String, String)>>,
    /// `(type, message id)` that ingest took (2xx), in order.
    pub delivered: Vec<(String, String)>,
    /// While set, requests are answered 503 without reaching ingest.
    pub down: bool,
}

/// The webhook service with ingest on, against the test backend, on 127.0.0.1.
pub struct Ingest {
    addr: SocketAddr,
    state: webhook::AppState,
    pub log: Arc<Mutex<IngestLog>>,
    server: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
    _spool: tempfile::TempDir,
}

async fn record(State(log): State<Arc<Mutex<IngestLog>>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 4 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let events: Vec<(String, String)> = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("events").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_owned(),
                e["message"]["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    {
        let mut log = log.lock().unwrap();
        log.attempts.push(events.clone());
        if log.down {
            return (StatusCode::SERVICE_UNAVAILABLE, "down for the test").into_response();
        }
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if response.status().is_success() {
        log.lock().unwrap().delivered.extend(events);
    }
    response
}

impl Ingest {
    pub async fn spawn(backend: &Backend) -> Ingest {
        let spool = tempfile::tempdir().unwrap();
        let settings = webhook::Settings {
            appwrite: backend.client_config(),
            sellapp_secret: webhook::Secret::new("unused"),
            plans: Default::default(),
            roles: Default::default(),
            spool_dir: spool.path().to_path_buf(),
            ingest_secret: Some(webhook::Secret::new(INGEST_SECRET)),
            sellapp_api: None,
            intervals: webhook::Intervals::default(),
            background_jobs: false,
            previous_secrets: Default::default(),
            http: Default::default(),
        };
        let state = webhook::AppState::new(&settings).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut ingest = Ingest {
            addr: listener.local_addr().unwrap(),
            state,
            log: Arc::default(),
            server: None,
            _spool: spool,
        };
        ingest.serve(listener);
        ingest
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let app = webhook::router(self.state.clone()).layer(axum::middleware::from_fn_with_state(
            self.log.clone(),
            record,
        ));
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        self.server = Some((stop, task));
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops listening (connections are refused) until [`Ingest::start`].
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.server.take() {
            let _ = stop.send(());
            task.await.unwrap();
        }
    }

    pub async fn start(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    pub fn set_down(&self, down: bool) {
        self.log.lock().unwrap().down = down;
    }

    pub fn delivered(&self) -> Vec<(String, String)> {
        self.log.lock().unwrap().delivered.clone()
    }

    /// Whether some request carried an event of `kind` for `id` (delivered or not).
    pub fn attempted(&self, kind: &str, id: u64) -> bool {
        let id = id.to_string();
        self.log
            .lock()
            .unwrap()
            .attempts
            .iter()
            .flatten()
            .any(|(k, m)| k == kind && *m == id)
    }

    /// The events of the latest request.
    pub fn last_attempt(&self) -> Vec<(String, String)> {
        self.log
            .lock()
            .unwrap()
            .attempts
            .last()
            .cloned()
            .unwrap_or_default()
    }

    pub fn attempts(&self) -> usize {
        self.log.lock().unwrap().attempts.len()
    }
}

/// `(type, id)` as the log keeps them.
pub fn ev(kind: &str, id: u64) -> (String, String) {
    (kind.to_owned(), id.to_string())
}
