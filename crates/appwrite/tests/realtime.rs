//! Realtime against a fake websocket server: handshake and authentication, events, pings,
//! reconnect after a drop (with `Connected { reconnected: true }`), a server that starts late,
//! a refused session, and the task stopping when the receiver is dropped.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use common::*;
use g3_appwrite::{EventAction, RealtimeMessage, RealtimeOptions, RetryPolicy, SessionSecret};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

const CHANNEL: &str = "databases.g3.collections.signals.documents";
const GOOD: &str = "good-secret";

#[derive(Clone)]
struct Fake {
    connections: Arc<AtomicUsize>,
    /// What the server saw: "query:<raw>", "ping", "closed:<n>".
    seen: mpsc::UnboundedSender<String>,
}

fn event(id: &str) -> String {
    json!({"type": "event", "data": {
        "events": [format!("{CHANNEL}.{id}.create"), "databases.*.collections.*.documents.*.create"],
        "channels": [CHANNEL],
        "timestamp": "2024-05-01 12:34:56.789",
        "payload": {"$id": id, "$sequence": 1, "$collectionId": "signals", "$databaseId": "g3",
            "$createdAt": "2024-05-01T12:34:56.789+00:00", "$updatedAt": "2024-05-01T12:34:56.789+00:00",
            "$permissions": [], "pair": "BTCUSDT"}
    }})
    .to_string()
}

async fn handler(
    ws: WebSocketUpgrade,
    State(fake): State<Fake>,
    RawQuery(q): RawQuery,
) -> Response {
    let _ = fake.seen.send(format!("query:{}", q.unwrap_or_default()));
    ws.on_upgrade(move |socket| session(socket, fake))
}

/// Connection 1 sends one event and drops; later connections send one event, answer pings,
/// and report when the client closes.
async fn session(mut socket: WebSocket, fake: Fake) {
    let n = fake.connections.fetch_add(1, Ordering::SeqCst) + 1;
    let connected = json!({"type": "connected", "data": {"channels": [CHANNEL], "user": null}});
    if socket
        .send(Message::Text(connected.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let Some(Ok(Message::Text(auth))) = socket.recv().await else {
        return;
    };
    let auth: Value = serde_json::from_str(auth.as_str()).unwrap();
    assert_eq!(auth["type"], "authentication");
    if auth["data"]["session"] != GOOD {
        let refused =
            json!({"type": "error", "data": {"code": 1003, "message": "Session is not valid."}});
        let _ = socket.send(Message::Text(refused.to_string().into())).await;
        return;
    }
    let ok = json!({"type": "response", "data": {"to": "authentication", "success": true, "user": {"$id": "svc"}}});
    socket
        .send(Message::Text(ok.to_string().into()))
        .await
        .unwrap();
    socket
        .send(Message::Text(event(&format!("doc{n}")).into()))
        .await
        .unwrap();
    if n == 1 {
        return; // drop the connection
    }
    while let Some(Ok(msg)) = socket.recv().await {
        match msg {
            Message::Text(t) if t.as_str().contains("ping") => {
                let _ = fake.seen.send("ping".into());
                let _ = socket
                    .send(Message::Text(r#"{"type":"pong"}"#.into()))
                    .await;
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    let _ = fake.seen.send(format!("closed:{n}"));
}

fn fake_router() -> (Router, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let fake = Fake {
        connections: Arc::default(),
        seen: tx,
    };
    let router = Router::new()
        .route("/v1/realtime", get(handler))
        .with_state(fake);
    (router, rx)
}

fn options() -> RealtimeOptions {
    let mut o = RealtimeOptions::new([CHANNEL]);
    o.ping_interval = Duration::from_millis(50);
    o.handshake_timeout = Duration::from_secs(2);
    o.reconnect = RetryPolicy {
        max_attempts: u32::MAX,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    o
}

async fn wait_for(rx: &mut mpsc::UnboundedReceiver<String>, pred: impl Fn(&str) -> bool) -> String {
    within(5, async {
        loop {
            let s = rx.recv().await.expect("fake server gone");
            if pred(&s) {
                return s;
            }
        }
    })
    .await
}

#[derive(Deserialize)]
struct Sig {
    pair: String,
}

#[tokio::test]
async fn reconnects_after_drop_and_says_so() {
    let (router, mut seen) = fake_router();
    let addr = serve(router).await;
    let c = client(addr, RetryPolicy::none());
    let mut rt = c.realtime(&SessionSecret::new(GOOD), options()).unwrap();

    assert_eq!(
        within(5, rt.recv()).await,
        Some(RealtimeMessage::Connected { reconnected: false })
    );
    let Some(RealtimeMessage::Event(e)) = within(5, rt.recv()).await else {
        panic!("expected an event");
    };
    assert_eq!(e.action(), Some(EventAction::Create));
    let d = e.document::<Sig>().unwrap();
    assert_eq!((d.id.as_str(), d.data.pair.as_str()), ("doc1", "BTCUSDT"));
    assert!(matches!(
        within(5, rt.recv()).await,
        Some(RealtimeMessage::Disconnected { .. })
    ));
    assert_eq!(
        within(5, rt.recv()).await,
        Some(RealtimeMessage::Connected { reconnected: true })
    );
    let Some(RealtimeMessage::Event(e)) = within(5, rt.recv()).await else {
        panic!("expected an event");
    };
    assert_eq!(e.document::<Sig>().unwrap().id, "doc2");

    let query = wait_for(&mut seen, |s| s.starts_with("query:")).await;
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.trim_start_matches("query:").as_bytes())
            .into_owned()
            .collect();
    assert!(pairs.contains(&("project".into(), PROJECT.into())));
    assert!(pairs.contains(&("channels[]".into(), CHANNEL.into())));

    wait_for(&mut seen, |s| s == "ping").await;
    drop(rt);
    wait_for(&mut seen, |s| s == "closed:2").await;
}

#[tokio::test]
async fn connects_once_the_server_comes_up() {
    let addr = free_addr();
    let c = client(addr, RetryPolicy::none());
    let (task, mut retrying) = spawn_observed("realtime disconnected; reconnecting", async move {
        c.realtime(&SessionSecret::new(GOOD), options())
    });
    let mut rt = within(5, task).await.unwrap().unwrap();
    within(5, retrying.recv()).await.unwrap();
    let (router, _seen) = fake_router();
    serve_on(addr, router).await;
    assert_eq!(
        within(10, rt.recv()).await,
        Some(RealtimeMessage::Connected { reconnected: false })
    );
    assert!(matches!(
        within(5, rt.recv()).await,
        Some(RealtimeMessage::Event(_))
    ));
}

#[tokio::test]
async fn refused_session_ends_the_stream() {
    let (router, _seen) = fake_router();
    let addr = serve(router).await;
    let c = client(addr, RetryPolicy::none());
    let mut rt = c.realtime(&SessionSecret::new("wrong"), options()).unwrap();
    assert_eq!(
        within(5, rt.recv()).await,
        Some(RealtimeMessage::AuthFailed {
            message: "Session is not valid.".into()
        })
    );
    assert_eq!(within(5, rt.recv()).await, None);
}

#[tokio::test]
async fn rejects_bad_subscriptions() {
    let c = client(free_addr(), RetryPolicy::none());
    assert!(
        c.realtime(
            &SessionSecret::new(GOOD),
            RealtimeOptions::new(Vec::<String>::new())
        )
        .is_err()
    );
    assert!(c.realtime(&SessionSecret::new(""), options()).is_err());
    assert!(c.realtime_with_own_session(options()).is_err());
}
