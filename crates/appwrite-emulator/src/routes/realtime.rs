//! Realtime: the `/v1/realtime` websocket. Subscribers pick channels, may authenticate with a
//! session secret, and receive document events their roles may read. An authenticated socket
//! re-reads its roles (one indexed query) before judging each event on its channels, so joining
//! or leaving a team, or losing the session, takes effect at once, as Appwrite does.

use std::collections::HashSet;

use axum::{
    Router,
    extract::{
        Query, State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    response::Response,
    routing::get,
};
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::{
    auth,
    error::ApiResult,
    identity,
    state::{AppState, RealtimeEvent},
    util,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/realtime", get(connect))
}

async fn connect(
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.on_upgrade(move |socket| serve(state, params, socket))
}

/// The roles of whoever is on the socket, and the session that gave them.
struct Subscriber {
    session_hash: Option<String>,
    user_id: Option<String>,
    roles: Vec<String>,
}

fn guest_roles() -> Vec<String> {
    vec!["any".to_owned(), "guests".to_owned()]
}

fn message(kind: &str, data: Value) -> Message {
    Message::Text(json!({ "type": kind, "data": data }).to_string().into())
}

fn error_message(code: u16, text: &str) -> Message {
    message("error", json!({ "code": code, "message": text }))
}

#[tracing::instrument(skip_all)]
async fn serve(state: AppState, params: Vec<(String, String)>, mut socket: WebSocket) {
    let project = params
        .iter()
        .find(|(k, _)| k == "project")
        .map(|(_, v)| v.as_str());
    if project != Some(state.config.project_id.as_str()) {
        let _ = socket
            .send(error_message(1008, "Missing or unknown project ID"))
            .await;
        let _ = socket.send(Message::Close(None)).await;
        return;
    }
    let mut channels: Vec<String> = Vec::new();
    for (k, v) in &params {
        let is_channel = k == "channels"
            || k.strip_prefix("channels[")
                .and_then(|r| r.strip_suffix(']'))
                .is_some_and(|i| i.chars().all(|c| c.is_ascii_digit()));
        if is_channel && !v.is_empty() && !channels.contains(v) {
            channels.push(v.clone());
        }
    }
    if channels.is_empty() {
        let _ = socket.send(error_message(1008, "Missing channels")).await;
        let _ = socket.send(Message::Close(None)).await;
        return;
    }
    let subscribed: HashSet<String> = channels.iter().cloned().collect();
    // Subscribe before saying "connected", so nothing published after that is missed.
    let mut events = state.events.subscribe();
    if socket
        .send(message(
            "connected",
            json!({ "channels": channels, "user": null }),
        ))
        .await
        .is_err()
    {
        return;
    }
    let mut sub = Subscriber {
        session_hash: None,
        user_id: None,
        roles: guest_roles(),
    };
    let mut stopping = state.stopping.subscribe();
    loop {
        tokio::select! {
            // The only change ever sent is `true` (the server is stopping).
            _ = stopping.changed() => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { return };
                let reply = match msg {
                    Message::Text(text) => handle_client(&state, &mut sub, text.as_str()).await,
                    Message::Close(_) => return,
                    _ => None,
                };
                if let Some(reply) = reply
                    && socket.send(reply).await.is_err()
                {
                    return;
                }
            }
            event = events.recv() => {
                let event = match event {
                    Ok(e) => e,
                    // A slow socket loses events rather than holding everyone else back;
                    // clients catch up by listing on reconnect.
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "realtime subscriber lagged; events dropped");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                let matched: Vec<&String> = event.channels.iter().filter(|c| subscribed.contains(*c)).collect();
                if matched.is_empty() {
                    continue;
                }
                // Revoked access must stop at once (a cancelled customer keeps no live feed), and
                // granted access must start at once, so the roles are never trusted from cache.
                if sub.session_hash.is_some() {
                    refresh(&state, &mut sub).await;
                }
                if !may_read(&sub.roles, &event) {
                    continue;
                }
                let out = message("event", json!({
                    "events": event.events,
                    "channels": matched,
                    "timestamp": event.timestamp,
                    "payload": event.payload,
                }));
                if socket.send(out).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn may_read(roles: &[String], event: &RealtimeEvent) -> bool {
    event.readers.iter().any(|r| roles.contains(r))
}

async fn handle_client(state: &AppState, sub: &mut Subscriber, text: &str) -> Option<Message> {
    let Ok(msg) = serde_json::from_str::<Value>(text) else {
        return Some(error_message(1003, "Message format is not valid."));
    };
    match msg.get("type").and_then(Value::as_str) {
        Some("ping") => Some(Message::Text(json!({ "type": "pong" }).to_string().into())),
        Some("authentication") => {
            let secret = msg
                .pointer("/data/session")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if secret.is_empty() {
                return Some(error_message(1003, "Payload is not valid."));
            }
            let hash = util::hash_secret(secret);
            match load_session(state, hash.clone(), true).await {
                Ok(Some((user_id, roles, user))) => {
                    sub.session_hash = Some(hash);
                    sub.user_id = Some(user_id);
                    sub.roles = roles;
                    Some(message(
                        "response",
                        json!({ "to": "authentication", "success": true, "user": user }),
                    ))
                }
                Ok(None) => Some(error_message(1003, "Session is not valid.")),
                Err(e) => Some(error_message(1011, &e.message)),
            }
        }
        _ => Some(error_message(1003, "Message type is not valid.")),
    }
}

/// Re-reads the subscriber's roles; an ended session falls back to guest. On a storage error
/// the socket keeps only guest roles for this event rather than possibly stale wider ones.
async fn refresh(state: &AppState, sub: &mut Subscriber) {
    let Some(hash) = sub.session_hash.clone() else {
        return;
    };
    match load_session(state, hash, false).await {
        Ok(Some((user_id, roles, _))) => {
            sub.user_id = Some(user_id);
            sub.roles = roles;
        }
        Ok(None) => {
            sub.session_hash = None;
            sub.user_id = None;
            sub.roles = guest_roles();
        }
        Err(e) => {
            tracing::warn!(error = %e, "realtime role refresh failed");
            sub.roles = guest_roles();
        }
    }
}

/// A live session's user: id, roles and (when `with_user`) the user JSON Appwrite sends on
/// authentication.
async fn load_session(
    state: &AppState,
    hash: String,
    with_user: bool,
) -> ApiResult<Option<(String, Vec<String>, Value)>> {
    state
        .store
        .call(move |conn| {
            let row: Option<(String, String)> = conn
                .prepare_cached("SELECT user_id, expire FROM sessions WHERE secret_hash = ?1")?
                .query_row(params![hash], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((user_id, _)) = row.filter(|(_, expire)| *expire >= util::now()) else {
                return Ok(None);
            };
            // Blocked users lose access, as their REST calls do.
            let user = if with_user {
                match identity::find_user(conn, &user_id)? {
                    Some(u) if u.status => u.to_json(),
                    _ => return Ok(None),
                }
            } else {
                let status: Option<i64> = conn
                    .prepare_cached("SELECT status FROM users WHERE id = ?1")?
                    .query_row(params![user_id], |r| r.get(0))
                    .optional()?;
                if status != Some(1) {
                    return Ok(None);
                }
                Value::Null
            };
            let roles = auth::roles_for_user(conn, &user_id)?;
            Ok(Some((user_id, roles, user)))
        })
        .await
}
