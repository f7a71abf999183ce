//! Helpers shared by the integration tests: serve a fake on 127.0.0.1:0, build clients, and
//! observe the client's own tracing events so tests wait on conditions instead of sleeping.
#![allow(dead_code)]

use std::fmt::Debug;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use g3_appwrite::{Client, Config, RetryPolicy};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::instrument::WithSubscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};

pub const PROJECT: &str = "proj";
pub const KEY: &str = "test-key";

/// Serves `router` on an ephemeral port; returns the address.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

/// Serves `router` on a given address (a port reserved earlier).
pub async fn serve_on(addr: SocketAddr, router: axum::Router) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
}

/// A port that nothing listens on (yet).
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

pub fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

pub fn client(addr: SocketAddr, retry: RetryPolicy) -> Client {
    client_with_timeout(addr, retry, Duration::from_secs(5))
}

pub fn client_with_timeout(addr: SocketAddr, retry: RetryPolicy, timeout: Duration) -> Client {
    let mut config = Config::new(format!("http://{addr}/v1"), PROJECT).with_api_key(KEY);
    config.retry = retry;
    config.timeout = timeout;
    Client::new(config).unwrap()
}

/// Awaits `fut`, failing the test if it takes longer than `secs`.
pub async fn within<T>(secs: u64, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("condition not reached in time")
}

/// Runs `fut` in a task whose tracing events whose message contains `needle` are reported on
/// the returned channel.
pub fn spawn_observed<F>(
    needle: &'static str,
    fut: F,
) -> (
    tokio::task::JoinHandle<F::Output>,
    mpsc::UnboundedReceiver<()>,
)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let subscriber = tracing_subscriber::registry().with(Signal { needle, tx });
    (tokio::spawn(fut.with_subscriber(subscriber)), rx)
}

struct Signal {
    needle: &'static str,
    tx: mpsc::UnboundedSender<()>,
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Signal {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        if m.0.contains(self.needle) {
            let _ = self.tx.send(());
        }
    }
}
