//! A client that goes away mid-request (a service killed with kill -9) must not make Realtime
//! subscribers miss a write that was committed: every stored document produces exactly one
//! create event. Real Appwrite (Swoole) finishes every request it started; the emulator runs each
//! request on its own task so hyper dropping the connection does not drop the handler between
//! its commit and its publish.

mod documents_common;

use std::{collections::HashMap, time::Duration};

use documents_common::*;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

const COL: &str = "burst";
/// Connections opened and abandoned per round, one request each.
const CONNECTIONS: usize = 100;
/// Stored documents wanted before checking (many abandoned requests never reach a handler).
const MIN_STORED: usize = 20;
/// Rounds at most.
const MAX_ROUNDS: usize = 10;

/// A complete create-document request, as raw HTTP/1.1.
fn create_request(addr: std::net::SocketAddr, id: &str) -> Vec<u8> {
    // A larger body makes each write take a little longer, widening the window in which the
    // client is already gone while the write is under way.
    let body = json!({
        "documentId": id,
        "data": {"v": "x".repeat(2000)},
    })
    .to_string();
    format!(
        "POST /v1/databases/{DB}/collections/{COL}/documents HTTP/1.1\r\n\
         Host: {addr}\r\n\
         Content-Type: application/json\r\n\
         X-Appwrite-Project: {PROJECT}\r\n\
         X-Appwrite-Key: {KEY}\r\n\
         Content-Length: {}\r\n\
         \r\n\
         {body}",
        body.len()
    )
    .into_bytes()
}

/// Ids of every document in the collection.
async fn stored(emu: &Emu) -> Vec<String> {
    let (s, list) = emu
        .list(
            &As::Key,
            COL,
            &[json!({"method": "limit", "values": [5000]})],
        )
        .await;
    assert_eq!(s, 200, "{list}");
    ids(&list)
}

/// The stored ids once the store has stopped changing (every abandoned request has finished or
/// given up).
async fn settled(emu: &Emu) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut docs = stored(emu).await;
    let mut stable = 0;
    while stable < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store never settled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = stored(emu).await;
        if now.len() == docs.len() {
            stable += 1;
        } else {
            stable = 0;
        }
        docs = now;
    }
    docs
}

/// The next create event's document id, or `None` if none arrives within `wait`.
async fn next_create(ws: &mut Ws, wait: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()?;
        let Some(Ok(Message::Text(t))) = msg else {
            match msg {
                Some(Ok(_)) => continue,
                other => panic!("realtime socket ended: {other:?}"),
            }
        };
        let ev: Value = serde_json::from_str(t.as_str()).expect("json");
        assert_eq!(ev["type"], "event", "{ev}");
        let id = ev["data"]["payload"]["$id"]
            .as_str()
            .expect("payload id")
            .to_owned();
        let first = ev["data"]["events"][0].as_str().expect("event name");
        assert_eq!(
            first,
            format!("databases.{DB}.collections.{COL}.documents.{id}.create"),
            "{ev}"
        );
        return Some(id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abandoned_requests_still_publish_their_events() {
    let emu = Emu::start().await;
    emu.create_db().await;
    emu.create_collection(COL, &["read(\"any\")"], false).await;
    emu.attr(
        COL,
        "string",
        json!({"key": "v", "size": 4096, "required": false}),
    )
    .await;

    let url = format!(
        "ws://{}/v1/realtime?project={PROJECT}&channels[]=databases.{DB}.collections.{COL}.documents",
        emu.handle.addr
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let hello = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("connected in time")
        .expect("socket open")
        .expect("message");
    let hello: Value = serde_json::from_str(hello.to_text().expect("text")).expect("json");
    assert_eq!(hello["type"], "connected", "{hello}");

    // Open, write a complete request, close without reading the answer: the server sees the
    // end of the stream while the write is queued for the store. Hyper gives up on many such
    // requests before they reach a handler (nothing stored, nothing to publish), so rounds go
    // on until enough of them were stored for the check to mean something.
    let addr = emu.handle.addr;
    let mut docs = Vec::new();
    for round in 0..MAX_ROUNDS {
        for c in 0..CONNECTIONS {
            let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
            tcp.write_all(&create_request(addr, &format!("r{round}-c{c}")))
                .await
                .expect("write");
            let _ = tcp.shutdown().await;
            drop(tcp);
        }
        docs = settled(&emu).await;
        if docs.len() >= MIN_STORED {
            break;
        }
    }
    assert!(
        !docs.is_empty(),
        "no abandoned request was stored; the test checks nothing"
    );

    // Every stored document's event, within a bounded wait, then nothing more.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while docs.iter().any(|d| !seen.contains_key(d)) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(id) = next_create(&mut ws, left).await else {
            break;
        };
        *seen.entry(id).or_default() += 1;
    }
    while let Some(id) = next_create(&mut ws, Duration::from_millis(200)).await {
        *seen.entry(id).or_default() += 1;
    }

    let missing: Vec<&String> = docs.iter().filter(|d| !seen.contains_key(*d)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} stored documents produced no Realtime event: {missing:?}",
        missing.len(),
        docs.len()
    );
    let repeated: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(repeated.is_empty(), "repeated events: {repeated:?}");
    let unstored: Vec<&String> = seen.keys().filter(|id| !docs.contains(id)).collect();
    assert!(
        unstored.is_empty(),
        "events for unstored documents: {unstored:?}"
    );
}
