//! Realtime subscriptions. A background task owns the websocket: it authenticates with a
//! session secret (API keys cannot subscribe), pings, reconnects with backoff, and emits
//! `Connected { reconnected }` after every (re)connect so the caller can catch up by listing.
//! Services that follow for their whole life use [`crate::Follower`], which also signs in.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, Stream, StreamExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tracing::instrument::WithSubscriber;
use tracing::{debug, info, warn};
use url::Url;

use crate::client::Client;
use crate::config::{RetryPolicy, SessionSecret, realtime_url};
use crate::error::Error;
use crate::models::Document;

/// What to subscribe to and how to behave.
#[derive(Debug, Clone)]
pub struct RealtimeOptions {
    /// e.g. `databases.g3.collections.signals.documents`.
    pub channels: Vec<String>,
    /// How often to send `{"type":"ping"}`.
    pub ping_interval: Duration,
    /// Bound on connecting, the `connected` greeting and the authentication answer.
    pub handshake_timeout: Duration,
    /// Backoff between reconnect attempts (`max_attempts` is ignored: it never gives up).
    pub reconnect: RetryPolicy,
    /// Messages buffered for a slow receiver before the socket reader waits.
    pub buffer: usize,
}

impl RealtimeOptions {
    pub fn new<S: Into<String>>(channels: impl IntoIterator<Item = S>) -> Self {
        Self {
            channels: channels.into_iter().map(Into::into).collect(),
            ping_interval: Duration::from_secs(20),
            handshake_timeout: Duration::from_secs(10),
            reconnect: RetryPolicy {
                max_attempts: u32::MAX,
                base_delay: Duration::from_millis(500),
                max_delay: Duration::from_secs(30),
            },
            buffer: 256,
        }
    }
}

/// What the subscription yields.
#[derive(Debug, Clone, PartialEq)]
pub enum RealtimeMessage {
    /// Subscribed and authenticated. `reconnected` is false only the first time; on true, list
    /// what changed since your cursor: events sent while disconnected are lost.
    Connected {
        reconnected: bool,
    },
    Event(RealtimeEvent),
    /// The socket dropped; a reconnect is under way.
    Disconnected {
        reason: String,
    },
    /// The session was refused. This is the last message: sign in again and resubscribe.
    AuthFailed {
        message: String,
    },
}

/// One change pushed by Appwrite.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RealtimeEvent {
    /// e.g. `databases.g3.collections.signals.documents.123.update`.
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub payload: Value,
}

/// The kind of change, from the event names' last segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAction {
    Create,
    Update,
    /// `PUT .../documents/{id}` (Appwrite 1.8): created or replaced, the document as it is now.
    Upsert,
    Delete,
}

impl RealtimeEvent {
    /// The payload as a document of the caller's type.
    pub fn document<T: DeserializeOwned>(&self) -> Result<Document<T>, Error> {
        Document::<T>::deserialize(&self.payload).map_err(|source| Error::Decode {
            what: "realtime document",
            source,
        })
    }

    pub fn action(&self) -> Option<EventAction> {
        self.events.iter().find_map(|e| match e.rsplit('.').next() {
            Some("create") => Some(EventAction::Create),
            Some("update") => Some(EventAction::Update),
            Some("upsert") => Some(EventAction::Upsert),
            Some("delete") => Some(EventAction::Delete),
            _ => None,
        })
    }
}

/// A live subscription. Dropping it stops the background task and closes the socket.
#[derive(Debug)]
pub struct Realtime {
    rx: mpsc::Receiver<RealtimeMessage>,
}

impl Realtime {
    /// The next message; `None` once the task has stopped (after `AuthFailed`).
    pub async fn recv(&mut self) -> Option<RealtimeMessage> {
        self.rx.recv().await
    }

    pub fn into_receiver(self) -> mpsc::Receiver<RealtimeMessage> {
        self.rx
    }
}

impl Stream for Realtime {
    type Item = RealtimeMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Client {
    /// Subscribes to `options.channels` as the session's user. Must run inside a Tokio runtime.
    pub fn realtime(
        &self,
        session: &SessionSecret,
        options: RealtimeOptions,
    ) -> Result<Realtime, Error> {
        if options.channels.is_empty() {
            return Err(Error::InvalidInput(
                "realtime needs at least one channel".into(),
            ));
        }
        if session.is_empty() {
            return Err(Error::InvalidInput(
                "realtime needs a session secret".into(),
            ));
        }
        let url = realtime_url(self.endpoint(), self.project_id(), &options.channels)?;
        let (tx, rx) = mpsc::channel(options.buffer.max(1));
        // The task logs wherever the caller's logs go.
        tokio::spawn(run(url, session.clone(), options, tx).with_current_subscriber());
        Ok(Realtime { rx })
    }

    /// Subscribes with this client's own session (see [`Client::with_session`]).
    pub fn realtime_with_own_session(&self, options: RealtimeOptions) -> Result<Realtime, Error> {
        let session = self
            .session_secret()
            .cloned()
            .ok_or_else(|| Error::InvalidInput("client has no session".into()))?;
        self.realtime(&session, options)
    }
}

enum Outcome {
    ReceiverGone,
    AuthFailed(String),
    Dropped { was_connected: bool, reason: String },
}

async fn run(
    url: Url,
    session: SessionSecret,
    options: RealtimeOptions,
    tx: mpsc::Sender<RealtimeMessage>,
) {
    let channels = options.channels.join(",");
    let mut connected_before = false;
    let mut failures: u32 = 0;
    loop {
        let outcome = tokio::select! {
            () = tx.closed() => Outcome::ReceiverGone,
            outcome = connect_once(&url, &session, &options, &tx, connected_before) => outcome,
        };
        match outcome {
            Outcome::ReceiverGone => {
                debug!(%channels, "realtime receiver dropped; stopping");
                return;
            }
            Outcome::AuthFailed(message) => {
                warn!(%channels, %message, "realtime authentication refused; stopping");
                let _ = tx.send(RealtimeMessage::AuthFailed { message }).await;
                return;
            }
            Outcome::Dropped {
                was_connected,
                reason,
            } => {
                if was_connected {
                    connected_before = true;
                    failures = 0;
                    if tx
                        .send(RealtimeMessage::Disconnected {
                            reason: reason.clone(),
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                failures = failures.saturating_add(1);
                let delay = options.reconnect.backoff(failures);
                warn!(%channels, %reason, attempt = failures, delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "realtime disconnected; reconnecting");
                tokio::select! {
                    () = tx.closed() => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

fn parse_incoming(msg: &Message) -> Option<Incoming> {
    match msg {
        Message::Text(t) => serde_json::from_str(t.as_str()).ok(),
        Message::Binary(b) => serde_json::from_slice(b).ok(),
        _ => None,
    }
}

fn dropped(was_connected: bool, reason: impl Into<String>) -> Outcome {
    Outcome::Dropped {
        was_connected,
        reason: reason.into(),
    }
}

async fn connect_once(
    url: &Url,
    session: &SessionSecret,
    options: &RealtimeOptions,
    tx: &mpsc::Sender<RealtimeMessage>,
    connected_before: bool,
) -> Outcome {
    let handshake = options.handshake_timeout;
    let mut ws =
        match tokio::time::timeout(handshake, tokio_tungstenite::connect_async(url.as_str())).await
        {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => return dropped(false, format!("connect failed: {e}")),
            Err(_) => return dropped(false, "connect timed out"),
        };

    // Greeting, then authentication answer, each bounded by the handshake timeout.
    let mut authenticating = false;
    loop {
        let next = match tokio::time::timeout(handshake, ws.next()).await {
            Ok(Some(Ok(msg))) => msg,
            Ok(Some(Err(e))) => return dropped(false, format!("socket error: {e}")),
            Ok(None) => return dropped(false, "closed during handshake"),
            Err(_) => return dropped(false, "handshake timed out"),
        };
        if let Message::Close(frame) = &next {
            let reason = frame
                .as_ref()
                .map(|f| format!("closed during handshake: {} {}", f.code, f.reason))
                .unwrap_or_else(|| "closed during handshake".into());
            return dropped(false, reason);
        }
        let Some(incoming) = parse_incoming(&next) else {
            continue;
        };
        match (incoming.kind.as_str(), authenticating) {
            ("connected", false) => {
                let auth = json!({"type": "authentication", "data": {"session": session.expose()}});
                if let Err(e) = ws.send(Message::Text(auth.to_string().into())).await {
                    return dropped(false, format!("send failed: {e}"));
                }
                authenticating = true;
            }
            ("response", true) if incoming.data["to"] == "authentication" => {
                if incoming.data["success"] == true {
                    break;
                }
                return Outcome::AuthFailed(error_message(
                    &incoming.data,
                    "authentication refused",
                ));
            }
            ("error", true) => {
                return Outcome::AuthFailed(error_message(&incoming.data, "authentication failed"));
            }
            ("error", false) => {
                return dropped(false, error_message(&incoming.data, "server error"));
            }
            _ => {}
        }
    }

    info!(reconnected = connected_before, "realtime connected");
    if tx
        .send(RealtimeMessage::Connected {
            reconnected: connected_before,
        })
        .await
        .is_err()
    {
        return Outcome::ReceiverGone;
    }

    let start = tokio::time::Instant::now() + options.ping_interval;
    let mut ping =
        tokio::time::interval_at(start, options.ping_interval.max(Duration::from_millis(10)));
    loop {
        tokio::select! {
            _ = ping.tick() => {
                if let Err(e) = ws.send(Message::Text(r#"{"type":"ping"}"#.into())).await {
                    return dropped(true, format!("ping failed: {e}"));
                }
            }
            next = ws.next() => {
                let msg = match next {
                    Some(Ok(msg)) => msg,
                    Some(Err(e)) => return dropped(true, format!("socket error: {e}")),
                    None => return dropped(true, "socket closed"),
                };
                if let Message::Close(frame) = &msg {
                    let reason = frame
                        .as_ref()
                        .map(|f| format!("closed by server: {} {}", f.code, f.reason))
                        .unwrap_or_else(|| "closed by server".into());
                    return dropped(true, reason);
                }
                let Some(incoming) = parse_incoming(&msg) else { continue };
                match incoming.kind.as_str() {
                    "event" => match serde_json::from_value::<RealtimeEvent>(incoming.data) {
                        Ok(event) => {
                            if tx.send(RealtimeMessage::Event(event)).await.is_err() {
                                let _ = ws.close(None).await;
                                return Outcome::ReceiverGone;
                            }
                        }
                        Err(e) => warn!(error = %e, "undecodable realtime event skipped"),
                    },
                    "error" => warn!(message = %error_message(&incoming.data, "?"), "realtime error message"),
                    _ => {}
                }
            }
            () = tx.closed() => {
                let _ = ws.close(None).await;
                return Outcome::ReceiverGone;
            }
        }
    }
}

fn error_message(data: &Value, fallback: &str) -> String {
    data["message"]
        .as_str()
        .map_or_else(|| fallback.to_owned(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_decode_into_documents() {
        let data = json!({
            "events": ["databases.g3.collections.signals.documents.1.update", "databases.*.collections.*.documents.*.update"],
            "channels": ["databases.g3.collections.signals.documents"],
            "timestamp": "2024-05-01 12:34:56.789",
            "payload": {"$id":"1","$sequence":1,"$collectionId":"signals","$databaseId":"g3",
                "$createdAt":"2024-05-01T12:34:56.789+00:00","$updatedAt":"2024-05-01T12:34:56.789+00:00",
                "$permissions":[],"pair":"ETHUSDT"}
        });
        let event: RealtimeEvent = serde_json::from_value(data).unwrap();
        assert_eq!(event.action(), Some(EventAction::Update));
        let mut upserted = event.clone();
        upserted.events = vec!["databases.g3.collections.signals.documents.1.upsert".into()];
        assert_eq!(upserted.action(), Some(EventAction::Upsert));
        #[derive(Deserialize)]
        struct S {
            pair: String,
        }
        let doc = event.document::<S>().unwrap();
        assert_eq!(doc.id, "1");
        assert_eq!(doc.data.pair, "ETHUSDT");
        let bad = RealtimeEvent {
            events: vec![],
            channels: vec![],
            timestamp: String::new(),
            payload: json!({"x":1}),
        };
        assert!(matches!(bad.document::<S>(), Err(Error::Decode { .. })));
        assert_eq!(bad.action(), None);
    }
}
