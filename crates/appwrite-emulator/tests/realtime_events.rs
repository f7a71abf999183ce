//! Realtime over a real websocket: connect, ping, authenticate with a session, and receive
//! create/update/delete events only for documents the subscriber may read, including after
//! joining a team while connected.

mod documents_common;

use std::time::Duration;

use documents_common::*;
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(emu: &Emu, project: &str, channels: &[&str]) -> Ws {
    let mut url = format!("ws://{}/v1/realtime?project={project}", emu.handle.addr);
    for (i, c) in channels.iter().enumerate() {
        // Mix both spellings Appwrite clients use.
        if i % 2 == 0 {
            url.push_str(&format!("&channels[]={c}"));
        } else {
            url.push_str(&format!("&channels[{i}]={c}"));
        }
    }
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    ws
}

/// The next JSON message, or `None` when the socket closes; panics after a bounded wait.
async fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("timed out waiting for a realtime message");
        match msg {
            Some(Ok(Message::Text(t))) => {
                return Some(serde_json::from_str(t.as_str()).expect("json"));
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

async fn authenticate(ws: &mut Ws, secret: &str) -> Value {
    send(
        ws,
        json!({"type": "authentication", "data": {"session": secret}}),
    )
    .await;
    next(ws).await.expect("auth reply")
}

async fn setup() -> Emu {
    let emu = Emu::start().await;
    emu.create_db().await;
    emu.create_collection("private", &[], true).await;
    emu.attr(
        "private",
        "string",
        json!({"key": "v", "size": 32, "required": false}),
    )
    .await;
    emu.create_collection("paid", &["read(\"team:paid\")"], false)
        .await;
    emu.attr(
        "paid",
        "string",
        json!({"key": "v", "size": 32, "required": false}),
    )
    .await;
    emu
}

#[tokio::test]
async fn session_subscriber_sees_only_readable_documents() {
    let emu = setup().await;
    let alice = emu.user_session("alice");
    let channel = "databases.g3.collections.private.documents";
    let mut ws = connect(&emu, PROJECT, &[channel, "documents"]).await;
    let hello = next(&mut ws).await.expect("connected");
    assert_eq!(hello["type"], "connected");
    assert_eq!(hello["data"]["channels"], json!([channel, "documents"]));
    assert_eq!(hello["data"]["user"], Value::Null);

    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next(&mut ws).await.expect("pong"), json!({"type": "pong"}));

    let bad = authenticate(&mut ws, "not-a-session").await;
    assert_eq!(bad["type"], "error", "{bad}");
    let ok = authenticate(&mut ws, &alice).await;
    assert_eq!(ok["type"], "response", "{ok}");
    assert_eq!(ok["data"]["to"], "authentication");
    assert_eq!(ok["data"]["success"], true);
    assert_eq!(ok["data"]["user"]["$id"], "alice");

    // Bob's document first: if it were delivered, it would arrive before Alice's.
    let (s, _) = emu
        .create_doc(
            &As::Key,
            "private",
            "for-bob",
            json!({"v": "b"}),
            Some(&["read(\"user:bob\")"]),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = emu
        .create_doc(
            &As::Key,
            "private",
            "for-alice",
            json!({"v": "a"}),
            Some(&["read(\"user:alice\")"]),
        )
        .await;
    assert_eq!(s, 201);
    let ev = next(&mut ws).await.expect("event");
    assert_eq!(ev["type"], "event", "{ev}");
    let data = &ev["data"];
    assert_eq!(data["payload"]["$id"], "for-alice", "{ev}");
    assert_eq!(data["payload"]["v"], "a");
    let events: Vec<&str> = data["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        events[0],
        "databases.g3.collections.private.documents.for-alice.create"
    );
    for e in [
        "databases.*.collections.*.documents.*.create",
        "databases.g3.collections.private.documents.*.create",
        "databases.g3.collections.private.documents.for-alice",
    ] {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }
    assert_eq!(data["channels"], json!(["documents", channel]));
    assert!(data["timestamp"].is_string());

    // Updates and deletes of Bob's document stay hidden; Alice's arrive.
    let path = "/databases/g3/collections/private/documents";
    emu.ok(
        Method::PATCH,
        &format!("{path}/for-bob"),
        json!({"data": {"v": "b2"}}),
        200,
    )
    .await;
    emu.ok(
        Method::PATCH,
        &format!("{path}/for-alice"),
        json!({"data": {"v": "a2"}}),
        200,
    )
    .await;
    let ev = next(&mut ws).await.expect("event");
    assert_eq!(
        ev["data"]["events"][0],
        "databases.g3.collections.private.documents.for-alice.update"
    );
    assert_eq!(ev["data"]["payload"]["v"], "a2");
    let (s, _) = emu
        .key(Method::DELETE, &format!("{path}/for-bob"), None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = emu
        .key(Method::DELETE, &format!("{path}/for-alice"), None)
        .await;
    assert_eq!(s, 204);
    let ev = next(&mut ws).await.expect("event");
    assert_eq!(
        ev["data"]["events"][0],
        "databases.g3.collections.private.documents.for-alice.delete"
    );
    assert_eq!(ev["data"]["payload"]["$id"], "for-alice");
}

#[tokio::test]
async fn team_changes_while_connected_start_and_stop_delivery() {
    let emu = setup().await;
    let alice = emu.user_session("alice");
    let mut ws = connect(&emu, PROJECT, &["documents"]).await;
    assert_eq!(next(&mut ws).await.expect("connected")["type"], "connected");
    assert_eq!(authenticate(&mut ws, &alice).await["data"]["success"], true);

    let (s, _) = emu
        .create_doc(&As::Key, "paid", "before", json!({"v": "1"}), None)
        .await;
    assert_eq!(s, 201);
    // A readable marker proves the socket has already judged (and dropped) "before".
    let (s, _) = emu
        .create_doc(
            &As::Key,
            "private",
            "marker",
            json!({"v": "m"}),
            Some(&["read(\"user:alice\")"]),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(
        next(&mut ws).await.expect("marker")["data"]["payload"]["$id"],
        "marker"
    );

    emu.join_team("alice", "paid");
    let (s, _) = emu
        .create_doc(&As::Key, "paid", "after", json!({"v": "2"}), None)
        .await;
    assert_eq!(s, 201);
    let ev = next(&mut ws).await.expect("event");
    assert_eq!(ev["data"]["payload"]["$id"], "after", "{ev}");

    // Leaving the team (a cancelled customer) stops delivery just as fast.
    emu.leave_team("alice", "paid");
    let (s, _) = emu
        .create_doc(&As::Key, "paid", "revoked", json!({"v": "3"}), None)
        .await;
    assert_eq!(s, 201);
    let (s, _) = emu
        .create_doc(
            &As::Key,
            "private",
            "marker2",
            json!({"v": "m"}),
            Some(&["read(\"user:alice\")"]),
        )
        .await;
    assert_eq!(s, 201);
    let ev = next(&mut ws).await.expect("event");
    assert_eq!(ev["data"]["payload"]["$id"], "marker2", "{ev}");
}

#[tokio::test]
async fn guests_see_public_documents_only() {
    let emu = setup().await;
    let mut ws = connect(
        &emu,
        PROJECT,
        &["databases.g3.collections.private.documents"],
    )
    .await;
    assert_eq!(next(&mut ws).await.expect("connected")["type"], "connected");
    emu.create_doc(
        &As::Key,
        "private",
        "secret",
        json!({"v": "s"}),
        Some(&["read(\"users\")"]),
    )
    .await;
    emu.create_doc(
        &As::Key,
        "private",
        "public",
        json!({"v": "p"}),
        Some(&["read(\"any\")"]),
    )
    .await;
    // Events on other channels are not delivered either.
    emu.create_doc(&As::Key, "paid", "elsewhere", json!({"v": "x"}), None)
        .await;
    emu.create_doc(
        &As::Key,
        "private",
        "public2",
        json!({"v": "p"}),
        Some(&["read(\"guests\")"]),
    )
    .await;
    assert_eq!(
        next(&mut ws).await.expect("event")["data"]["payload"]["$id"],
        "public"
    );
    assert_eq!(
        next(&mut ws).await.expect("event")["data"]["payload"]["$id"],
        "public2"
    );
}

#[tokio::test]
async fn wrong_project_gets_an_error_then_close() {
    let emu = setup().await;
    let mut ws = connect(&emu, "other", &["documents"]).await;
    let err = next(&mut ws).await.expect("error message");
    assert_eq!(err["type"], "error");
    assert_eq!(err["data"]["code"], 1008);
    assert!(next(&mut ws).await.is_none(), "socket should close");
}
