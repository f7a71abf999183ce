//! The Realtime follower against the emulator, behind a proxy that can cut and refuse the
//! websocket: catch-up on the first connect and after a reconnect (events made meanwhile wait
//! for it), signing in again once the session is refused, backoff while the service user cannot
//! sign in, and the socket closed on shutdown.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use appwrite_emulator::Config as EmulatorConfig;
use common::within;
use g3_appwrite::{
    AttributeSpec, Channel, Client, Config, Credentials, Follow, Follower, Interruption,
    Permission, Query, RealtimeEvent, RetryPolicy, Role,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

const PROJECT: &str = "proj";
const KEY: &str = "key";
const EMAIL: &str = "svc@example.com";
const PASSWORD: &str = "service-password";

/// What the handler saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// A connect, with the ids its catch-up listed.
    Connected {
        reconnected: bool,
        listed: Vec<String>,
    },
    Event(String),
    Dropped,
    Refused {
        attempt: u32,
        retry_in: Duration,
    },
    SignInFailed {
        attempt: u32,
        retry_in: Duration,
    },
}

/// A caller of the follower: catches up by listing `notes` since its cursor.
struct Recorder {
    admin: Client,
    cursor: Option<OffsetDateTime>,
    /// A note to write at the start of the next reconnect's catch-up.
    write_during_catch_up: Option<String>,
    seen: mpsc::UnboundedSender<Seen>,
}

impl Follow for Recorder {
    async fn connected(&mut self, reconnected: bool) {
        if reconnected && let Some(id) = self.write_during_catch_up.take() {
            note(&self.admin, &id).await;
        }
        let mut queries = vec![Query::order_asc("$updatedAt")];
        if let Some(c) = self.cursor {
            let since = g3_appwrite::format_datetime(c);
            queries.push(Query::greater_than_equal("$updatedAt", since.as_str()));
        }
        let docs = self
            .admin
            .documents("g3", "notes")
            .list_all::<Value>(&queries, 100)
            .await
            .unwrap();
        for d in &docs {
            self.cursor = self.cursor.max(Some(d.updated_at));
        }
        let listed = docs.into_iter().map(|d| d.id).collect();
        let _ = self.seen.send(Seen::Connected {
            reconnected,
            listed,
        });
    }

    async fn event(&mut self, event: RealtimeEvent) {
        let doc = event.document::<Value>().unwrap();
        self.cursor = self.cursor.max(Some(doc.updated_at));
        let _ = self.seen.send(Seen::Event(doc.id));
    }

    async fn disconnected(&mut self, why: &Interruption) {
        let seen = match why {
            Interruption::Dropped { .. } => Seen::Dropped,
            Interruption::SessionRefused {
                attempt, retry_in, ..
            } => Seen::Refused {
                attempt: *attempt,
                retry_in: *retry_in,
            },
            Interruption::SignInFailed {
                attempt, retry_in, ..
            } => Seen::SignInFailed {
                attempt: *attempt,
                retry_in: *retry_in,
            },
        };
        let _ = self.seen.send(seen);
    }
}

/// Passes TCP through to the emulator; Realtime sockets can be cut and new ones refused.
struct Proxy {
    addr: SocketAddr,
    refuse: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
    /// Realtime sockets open through the proxy.
    open: watch::Sender<usize>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            refuse: Arc::default(),
            cut: watch::Sender::new(0),
            open: watch::Sender::new(0),
        };
        let (refuse, cut, open) = (proxy.refuse.clone(), proxy.cut.clone(), proxy.open.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                tokio::spawn(pass(
                    inbound,
                    upstream,
                    refuse.clone(),
                    cut.subscribe(),
                    open.clone(),
                ));
            }
        });
        proxy
    }

    /// Drops every open Realtime socket.
    fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    fn refuse(&self, refuse: bool) {
        self.refuse.store(refuse, Ordering::SeqCst);
    }

    async fn wait_open(&self, n: usize) {
        let mut open = self.open.subscribe();
        within(10, open.wait_for(|o| *o == n)).await.unwrap();
    }
}

async fn pass(
    mut inbound: TcpStream,
    upstream: SocketAddr,
    refuse: Arc<AtomicBool>,
    mut cut: watch::Receiver<u64>,
    open: watch::Sender<usize>,
) {
    // The websocket upgrade's request line arrives in the first segment.
    let mut head = [0u8; 16];
    let Ok(n) = inbound.peek(&mut head).await else {
        return;
    };
    let realtime = head[..n].starts_with(b"GET /v1/realtime");
    if realtime && refuse.load(Ordering::SeqCst) {
        return;
    }
    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
        return;
    };
    if !realtime {
        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
        return;
    }
    cut.mark_unchanged();
    open.send_modify(|n| *n += 1);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = cut.changed() => {}
    }
    open.send_modify(|n| *n -= 1);
}

struct Env {
    _emulator: appwrite_emulator::Handle,
    admin: Client,
    proxy: Proxy,
}

fn client(endpoint: String) -> Client {
    let mut config = Config::new(endpoint, PROJECT).with_api_key(KEY);
    config.retry = RetryPolicy::none();
    config.timeout = Duration::from_secs(10);
    Client::new(config).unwrap()
}

/// An emulator with a `notes` collection every signed-in user may read, and a proxy to it.
async fn env() -> Env {
    let emulator = appwrite_emulator::spawn(EmulatorConfig::in_memory(PROJECT, KEY))
        .await
        .unwrap();
    let admin = client(emulator.endpoint.clone());
    let dbs = admin.databases();
    dbs.create("g3", "G3").await.unwrap();
    dbs.create_collection(
        "g3",
        "notes",
        "Notes",
        &[Permission::read(Role::users())],
        false,
    )
    .await
    .unwrap();
    dbs.create_attribute("g3", "notes", &AttributeSpec::string("text", 64))
        .await
        .unwrap();
    dbs.wait_attribute_available("g3", "notes", "text", Duration::from_secs(10))
        .await
        .unwrap();
    let proxy = Proxy::start(emulator.addr).await;
    Env {
        _emulator: emulator,
        admin,
        proxy,
    }
}

async fn service_user(admin: &Client) {
    admin
        .users()
        .create("svc", EMAIL, Some(PASSWORD), None)
        .await
        .unwrap();
}

async fn note(admin: &Client, id: &str) {
    admin
        .documents("g3", "notes")
        .create(id, &json!({"text": id}), None)
        .await
        .unwrap();
}

fn fast(base_ms: u64, max_ms: u64) -> RetryPolicy {
    RetryPolicy {
        max_attempts: u32::MAX,
        base_delay: Duration::from_millis(base_ms),
        max_delay: Duration::from_millis(max_ms),
    }
}

/// Starts a follower of `notes` through the proxy; it stops when the sender is dropped or sent.
fn follow(
    env: &Env,
    resubscribe: RetryPolicy,
    write_during_catch_up: Option<&str>,
) -> (
    mpsc::UnboundedReceiver<Seen>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut recorder = Recorder {
        admin: env.admin.clone(),
        cursor: None,
        write_during_catch_up: write_during_catch_up.map(str::to_owned),
        seen: tx,
    };
    let follower = Follower::new(
        client(format!("http://{}/v1", env.proxy.addr)),
        Credentials::new(EMAIL, PASSWORD),
        [Channel::documents("g3", "notes")],
    )
    .reconnect(fast(10, 50))
    .resubscribe(resubscribe);
    let task = tokio::spawn(async move {
        follower
            .run_until(&mut recorder, async {
                let _ = stopped.await;
            })
            .await;
    });
    (rx, stop, task)
}

async fn next(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    within(10, seen.recv()).await.expect("follower stopped")
}

fn listed(seen: &Seen) -> &[String] {
    match seen {
        Seen::Connected { listed, .. } => listed,
        other => panic!("expected a connect, got {other:?}"),
    }
}

#[tokio::test]
async fn catches_up_on_every_connect_before_the_events_that_follow() {
    let env = env().await;
    service_user(&env.admin).await;
    note(&env.admin, "a").await;
    let (mut seen, stop, task) = follow(&env, fast(10, 50), Some("d"));

    let first = next(&mut seen).await;
    assert!(matches!(
        first,
        Seen::Connected {
            reconnected: false,
            ..
        }
    ));
    assert_eq!(listed(&first), ["a"], "the first connect catches up too");
    note(&env.admin, "b").await;
    assert_eq!(next(&mut seen).await, Seen::Event("b".into()));

    // Down, and kept down while a note is written: no event can bring it.
    env.proxy.refuse(true);
    env.proxy.cut();
    assert_eq!(next(&mut seen).await, Seen::Dropped);
    note(&env.admin, "c").await;
    env.proxy.refuse(false);

    let again = next(&mut seen).await;
    assert!(matches!(
        again,
        Seen::Connected {
            reconnected: true,
            ..
        }
    ));
    assert!(
        listed(&again).contains(&"c".to_owned()),
        "the reconnect catches up: {again:?}"
    );
    // "d" was written while the catch-up ran: its event waited for it.
    assert_eq!(next(&mut seen).await, Seen::Event("d".into()));

    stop.send(()).unwrap();
    within(10, task).await.unwrap();
    env.proxy.wait_open(0).await;
}

#[tokio::test]
async fn signs_in_again_when_the_session_is_refused() {
    let env = env().await;
    service_user(&env.admin).await;
    let (mut seen, _stop, _task) = follow(&env, fast(10, 50), None);
    assert!(matches!(
        next(&mut seen).await,
        Seen::Connected {
            reconnected: false,
            ..
        }
    ));

    // The session ends; the socket only finds out when it reconnects.
    env.admin.users().delete_sessions("svc").await.unwrap();
    env.proxy.cut();
    assert_eq!(next(&mut seen).await, Seen::Dropped);
    assert!(matches!(
        next(&mut seen).await,
        Seen::Refused { attempt: 1, .. }
    ));
    assert!(matches!(
        next(&mut seen).await,
        Seen::Connected {
            reconnected: true,
            ..
        }
    ));
    assert_eq!(
        env.admin.users().list_sessions("svc").await.unwrap().total,
        1,
        "signed in once more"
    );
    note(&env.admin, "after").await;
    assert_eq!(next(&mut seen).await, Seen::Event("after".into()));
}

#[tokio::test]
async fn backs_off_while_the_service_user_cannot_sign_in() {
    let env = env().await;
    let (mut seen, _stop, _task) = follow(&env, fast(20, 80), None);

    // Each wait is in [d/2, d] for d = 20 ms doubled per attempt, capped at 80 ms.
    for (attempt, d) in [(1, 20), (2, 40), (3, 80), (4, 80)] {
        let Seen::SignInFailed {
            attempt: got,
            retry_in,
        } = next(&mut seen).await
        else {
            panic!("expected a failed sign-in");
        };
        assert_eq!(got, attempt);
        let d = Duration::from_millis(d);
        assert!(
            retry_in >= d / 2 && retry_in <= d,
            "attempt {attempt}: {retry_in:?}"
        );
    }

    service_user(&env.admin).await;
    let connected = loop {
        match next(&mut seen).await {
            Seen::SignInFailed { .. } => continue,
            other => break other,
        }
    };
    assert!(matches!(
        connected,
        Seen::Connected {
            reconnected: false,
            ..
        }
    ));

    // A connect starts the count over.
    env.admin.users().delete_sessions("svc").await.unwrap();
    env.proxy.cut();
    assert_eq!(next(&mut seen).await, Seen::Dropped);
    let Seen::Refused { attempt, retry_in } = next(&mut seen).await else {
        panic!("expected a refused session");
    };
    assert_eq!(attempt, 1);
    assert!(retry_in <= Duration::from_millis(20), "{retry_in:?}");
}
