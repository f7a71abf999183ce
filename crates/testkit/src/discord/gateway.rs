//! The fake's gateway (API v10, JSON text frames, no compression): enough of Discord's protocol
//! for serenity's `Client`. `GET /api/v10/gateway` (and `/gateway/bot`) name a plain
//! `ws://127.0.0.1:P` served here. A socket gets Hello (op 10); Identify (op 2) answers READY
//! (session id, the bot user, its guilds as unavailable, `resume_gateway_url`; no GUILD_CREATE
//! follows, serenity without its cache does not need one); Resume (op 6)
//! of a known session answers RESUMED, of an unknown one Invalid Session (op 9); heartbeats
//! (op 1) get an ACK (op 11). Dispatches go to every identified socket whose intents cover the
//! event, with Discord's rules: guild message events need GUILD_MESSAGES, their content,
//! embeds and attachments need MESSAGE_CONTENT, member joins need GUILD_MEMBERS.
//!
//! Events dispatched while no session is connected are not kept for a later resume: what a
//! client misses while away it has to fetch over REST (backfill), which is what tests of
//! reconnects want to see. Sockets stay open until the client closes them or a test calls
//! [`FakeDiscord::gateway_disconnect`] (serenity waits 5 s between shard starts, so a fake that
//! hung up on its own would make tests slow).

use std::{
    collections::{BTreeSet, HashMap},
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{
        State as AxState,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
    },
    response::{IntoResponse, Response},
    routing::get,
};
use rand::Rng as _;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::{
    FakeDiscord,
    state::{BOT_USER_ID, StoredMessage, fetched_json, now_ms},
};

/// Gateway intents the fake checks (Discord's bit values).
pub const INTENT_GUILDS: u64 = 1;
pub const INTENT_GUILD_MEMBERS: u64 = 1 << 1;
pub const INTENT_GUILD_MESSAGES: u64 = 1 << 9;
pub const INTENT_MESSAGE_CONTENT: u64 = 1 << 15;

/// Discord's default heartbeat interval.
const DEFAULT_HEARTBEAT_MS: u64 = 41_250;

enum Out {
    Json(Value),
    Close(u16, &'static str),
}

struct Socket {
    tx: mpsc::UnboundedSender<Out>,
    /// The session this socket identified or resumed, if it did.
    session: Option<String>,
}

/// A session as Discord keeps it for resuming.
struct Session {
    intents: u64,
    seq: u64,
}

#[derive(Default)]
struct GwState {
    next_socket: u64,
    connections: u64,
    heartbeats: u64,
    heartbeat_ms: u64,
    identifies: Vec<Value>,
    resumes: Vec<Value>,
    sockets: HashMap<u64, Socket>,
    sessions: HashMap<String, Session>,
    guilds: BTreeSet<u64>,
    /// The guild of each source channel (MESSAGE_* events name it).
    channel_guilds: HashMap<u64, u64>,
}

pub(crate) struct Gateway {
    url: String,
    state: Mutex<GwState>,
    /// While false, new sockets wait before their upgrade completes.
    accepting: watch::Sender<bool>,
}

impl Gateway {
    /// Listens on 127.0.0.1:0.
    pub(crate) async fn spawn() -> Arc<Gateway> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake gateway");
        let addr: SocketAddr = listener.local_addr().expect("local addr");
        let gateway = Arc::new(Gateway {
            url: format!("ws://{addr}"),
            state: Mutex::new(GwState {
                heartbeat_ms: DEFAULT_HEARTBEAT_MS,
                ..GwState::default()
            }),
            accepting: watch::channel(true).0,
        });
        let app = Router::new()
            .route("/", get(upgrade))
            .with_state(gateway.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        gateway
    }

    fn lock(&self) -> MutexGuard<'_, GwState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a dispatch to every session that `needs` (intent bits, all required) allows;
    /// `shape` may adjust the payload to the session's intents. Returns the sessions reached.
    fn dispatch(
        &self,
        event: &str,
        data: &Value,
        needs: u64,
        shape: impl Fn(u64, &Value) -> Value,
    ) -> usize {
        let mut g = self.lock();
        let GwState {
            sockets, sessions, ..
        } = &mut *g;
        let mut reached = 0;
        for socket in sockets.values() {
            let Some(session) = socket.session.as_ref().and_then(|id| sessions.get_mut(id)) else {
                continue;
            };
            if session.intents & needs != needs {
                continue;
            }
            session.seq += 1;
            let payload =
                json!({ "op": 0, "t": event, "s": session.seq, "d": shape(session.intents, data) });
            if socket.tx.send(Out::Json(payload)).is_ok() {
                reached += 1;
            }
        }
        reached
    }
}

impl Gateway {
    /// Sets `guild_id` on an event about a source channel whose guild is known.
    fn add_guild_id(&self, event: &mut Value, channel_id: u64) {
        if let Some(guild) = self.lock().channel_guilds.get(&channel_id) {
            event["guild_id"] = json!(guild.to_string());
        }
    }

    /// GUILD_MEMBER_ADD of a member who joined through the REST API (with `roles`), to
    /// sessions with GUILD_MEMBERS. Returns the sessions reached.
    pub(crate) fn member_added(&self, guild_id: u64, user_id: u64, roles: &[u64]) -> usize {
        let mut member = member_json(guild_id, user_id);
        member["roles"] = json!(roles.iter().map(u64::to_string).collect::<Vec<_>>());
        self.dispatch("GUILD_MEMBER_ADD", &member, INTENT_GUILD_MEMBERS, as_is)
    }
}

/// `GET /api/v10/gateway` and `/gateway/bot`, served with the REST API.
pub(crate) fn routes(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/api/v10/gateway", get(gateway_url))
        .route("/api/v10/gateway/bot", get(gateway_bot))
        .with_state(gateway)
}

async fn gateway_url(AxState(gw): AxState<Arc<Gateway>>) -> Response {
    Json(json!({ "url": gw.url })).into_response()
}

async fn gateway_bot(AxState(gw): AxState<Arc<Gateway>>) -> Response {
    Json(json!({
        "url": gw.url,
        "shards": 1,
        "session_start_limit": { "total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1 },
    }))
    .into_response()
}

async fn upgrade(AxState(gw): AxState<Arc<Gateway>>, ws: WebSocketUpgrade) -> Response {
    let mut open = gw.accepting.subscribe();
    let _ = open.wait_for(|open| *open).await;
    ws.on_upgrade(move |socket| serve(gw, socket))
}

fn text(v: &Value) -> Message {
    Message::Text(v.to_string().into())
}

async fn serve(gw: Arc<Gateway>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let (id, heartbeat_ms) = {
        let mut g = gw.lock();
        g.next_socket += 1;
        g.connections += 1;
        let id = g.next_socket;
        g.sockets.insert(
            id,
            Socket {
                tx: tx.clone(),
                session: None,
            },
        );
        (id, g.heartbeat_ms)
    };
    let hello = json!({ "op": 10, "d": { "heartbeat_interval": heartbeat_ms } });
    if socket.send(text(&hello)).await.is_ok() {
        loop {
            tokio::select! {
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Text(t))) => {
                        let Ok(frame) = serde_json::from_str::<Value>(t.as_str()) else {
                            let _ = socket.send(close(4002, "Decode error")).await;
                            break;
                        };
                        receive(&gw, id, &tx, frame);
                    }
                    Some(Ok(Message::Close(_))) => {
                        // Discord answers a close frame; tungstenite sends the queued answer on
                        // the next read, which then ends with the connection.
                        let _ = tokio::time::timeout(Duration::from_secs(1), socket.recv()).await;
                        break;
                    }
                    None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
                out = rx.recv() => match out {
                    Some(Out::Json(v)) => {
                        if socket.send(text(&v)).await.is_err() {
                            break;
                        }
                    }
                    Some(Out::Close(code, reason)) => {
                        let _ = socket.send(close(code, reason)).await;
                        break;
                    }
                    None => break,
                },
            }
        }
    }
    gw.lock().sockets.remove(&id);
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// Handles one client frame.
fn receive(gw: &Gateway, socket: u64, tx: &mpsc::UnboundedSender<Out>, frame: Value) {
    let op = frame.get("op").and_then(Value::as_u64);
    let d = frame.get("d").cloned().unwrap_or(Value::Null);
    let mut g = gw.lock();
    match op {
        Some(1) => {
            g.heartbeats += 1;
            let _ = tx.send(Out::Json(json!({ "op": 11 })));
        }
        Some(2) => {
            g.identifies.push(d.clone());
            if d.get("token")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                let _ = tx.send(Out::Close(4004, "Authentication failed."));
                return;
            }
            let intents = d.get("intents").and_then(Value::as_u64).unwrap_or(0);
            let session_id = format!("{:032x}", rand::rng().random::<u128>());
            let ready = json!({
                "v": 10,
                "user": {
                    "id": BOT_USER_ID.to_string(), "username": "g3-bot", "discriminator": "0000",
                    "global_name": null, "avatar": null, "bot": true, "verified": true,
                    "mfa_enabled": false, "flags": 0,
                },
                "guilds": g.guilds.iter().map(|id| json!({ "id": id.to_string(), "unavailable": true })).collect::<Vec<_>>(),
                "session_id": session_id,
                "resume_gateway_url": gw.url,
                "shard": d.get("shard").cloned().unwrap_or(json!([0, 1])),
                "application": { "id": BOT_USER_ID.to_string(), "flags": 0 },
            });
            g.sessions
                .insert(session_id.clone(), Session { intents, seq: 1 });
            if let Some(s) = g.sockets.get_mut(&socket) {
                s.session = Some(session_id);
            }
            let _ = tx.send(Out::Json(
                json!({ "op": 0, "t": "READY", "s": 1, "d": ready }),
            ));
        }
        Some(6) => {
            g.resumes.push(d.clone());
            let session_id = d
                .get("session_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let Some(session) = g.sessions.get_mut(&session_id) else {
                let _ = tx.send(Out::Json(json!({ "op": 9, "d": false })));
                return;
            };
            session.seq += 1;
            let seq = session.seq;
            if let Some(s) = g.sockets.get_mut(&socket) {
                s.session = Some(session_id);
            }
            let _ = tx.send(Out::Json(
                json!({ "op": 0, "t": "RESUMED", "s": seq, "d": {} }),
            ));
        }
        _ => {}
    }
}

/// A dispatch payload sent the same to every session.
fn as_is(_intents: u64, data: &Value) -> Value {
    data.clone()
}

/// A message as gateway events carry it: the REST shape plus `guild_id`, with content, embeds
/// and attachments blanked for a session without MESSAGE_CONTENT.
fn gateway_message(intents: u64, message: &Value) -> Value {
    let mut m = message.clone();
    if intents & INTENT_MESSAGE_CONTENT == 0 {
        m["content"] = json!("");
        m["embeds"] = json!([]);
        m["attachments"] = json!([]);
    }
    m
}

fn member_json(guild: u64, user: u64) -> Value {
    json!({
        "guild_id": guild.to_string(),
        "user": {
            "id": user.to_string(), "username": format!("user{user}"), "discriminator": "0000",
            "global_name": null, "avatar": null,
        },
        "nick": null,
        "roles": [],
        "joined_at": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
    })
}

/// Test-facing gateway controls and the source-guild helpers.
impl FakeDiscord {
    /// The `ws://127.0.0.1:P` URL `GET /gateway` names.
    pub fn gateway_url(&self) -> String {
        self.gateway.url.clone()
    }

    /// WebSocket connections accepted so far (each reconnect counts).
    pub fn gateway_connections(&self) -> u64 {
        self.gateway.lock().connections
    }

    /// Sockets open now that identified or resumed a session.
    pub fn gateway_sessions(&self) -> usize {
        self.gateway
            .lock()
            .sockets
            .values()
            .filter(|s| s.session.is_some())
            .count()
    }

    /// Every Identify payload (`d`: token, intents, properties, shard, ...), in order.
    pub fn gateway_identifies(&self) -> Vec<Value> {
        self.gateway.lock().identifies.clone()
    }

    /// Every Resume payload (`d`: token, session_id, seq), in order.
    pub fn gateway_resumes(&self) -> Vec<Value> {
        self.gateway.lock().resumes.clone()
    }

    /// Heartbeats received (each was acknowledged).
    pub fn gateway_heartbeats(&self) -> u64 {
        self.gateway.lock().heartbeats
    }

    /// The interval Hello announces to sockets opened from now on.
    pub fn set_gateway_heartbeat_interval(&self, interval: Duration) {
        self.gateway.lock().heartbeat_ms = interval.as_millis().max(1) as u64;
    }

    /// Sends any dispatch (`t` = `event`, `d` = `data`) to every session, whatever its intents.
    /// Returns how many sessions it reached.
    pub fn gateway_dispatch(&self, event: &str, data: Value) -> usize {
        self.gateway.dispatch(event, &data, 0, as_is)
    }

    /// Closes every open socket with `code` (4000 "unknown error": clients resume). Their
    /// sessions stay resumable; anything dispatched until a client is back is lost to it.
    pub fn gateway_disconnect(&self, code: u16) {
        let sockets: Vec<Socket> = self
            .gateway
            .lock()
            .sockets
            .drain()
            .map(|(_, s)| s)
            .collect();
        for s in sockets {
            let _ =
                s.tx.send(Out::Close(code, "fake gateway closed the socket"));
        }
    }

    /// Holds new gateway connections (their upgrade waits) until [`FakeDiscord::release_gateway`].
    pub fn hold_gateway(&self) {
        self.gateway.accepting.send_replace(false);
    }

    pub fn release_gateway(&self) {
        self.gateway.accepting.send_replace(true);
    }

    /// Puts the bot in a guild: READY lists it from the next Identify on.
    pub fn add_guild(&self, guild_id: u64) {
        self.gateway.lock().guilds.insert(guild_id);
    }

    /// A user posts in a channel of `guild_id`: stored (REST lists it) and dispatched as
    /// MESSAGE_CREATE. Returns the message id.
    pub fn source_message_create(
        &self,
        guild_id: u64,
        channel_id: u64,
        author_id: u64,
        content: &str,
    ) -> u64 {
        self.source_message_create_with(guild_id, channel_id, author_id, content, Vec::new())
    }

    /// Like [`FakeDiscord::source_message_create`], with embeds.
    pub fn source_message_create_with(
        &self,
        guild_id: u64,
        channel_id: u64,
        author_id: u64,
        content: &str,
        embeds: Vec<Value>,
    ) -> u64 {
        {
            let mut g = self.gateway.lock();
            g.guilds.insert(guild_id);
            g.channel_guilds.insert(channel_id, guild_id);
        }
        let (id, json) = {
            let mut s = self.lock();
            let (id, ms) = s.snowflake();
            let message = StoredMessage {
                id,
                channel_id,
                author_id,
                content: content.to_owned(),
                embeds,
                attachments: Vec::new(),
                nonce: None,
                created_ms: ms,
                edited_ms: None,
                webhook_id: None,
                reply_to: None,
            };
            let json = fetched_json(&message);
            s.channels.entry(channel_id).or_default().push(message);
            (id, json)
        };
        let mut d = json;
        d["guild_id"] = json!(guild_id.to_string());
        self.gateway
            .dispatch("MESSAGE_CREATE", &d, INTENT_GUILD_MESSAGES, gateway_message);
        id
    }

    /// The author edits a message: stored with a new `edited_timestamp` and dispatched as
    /// MESSAGE_UPDATE (the full message, as Discord sends edits). False if it does not exist.
    pub fn source_message_update(&self, channel_id: u64, message_id: u64, content: &str) -> bool {
        let json = {
            let mut s = self.lock();
            let Some(m) = s
                .channels
                .get_mut(&channel_id)
                .and_then(|list| list.iter_mut().find(|m| m.id == message_id))
            else {
                return false;
            };
            m.content = content.to_owned();
            // Strictly later than any earlier version, even within one millisecond.
            let at = now_ms().max(m.edited_ms.unwrap_or(m.created_ms) + 1);
            m.edited_ms = Some(at);
            fetched_json(m)
        };
        let mut d = json;
        self.gateway.add_guild_id(&mut d, channel_id);
        self.gateway
            .dispatch("MESSAGE_UPDATE", &d, INTENT_GUILD_MESSAGES, gateway_message);
        true
    }

    /// The message is deleted: gone from REST and dispatched as MESSAGE_DELETE. False if it did
    /// not exist.
    pub fn source_message_delete(&self, channel_id: u64, message_id: u64) -> bool {
        if !self.delete_by_hand(channel_id, message_id) {
            return false;
        }
        let mut d = json!({ "id": message_id.to_string(), "channel_id": channel_id.to_string() });
        self.gateway.add_guild_id(&mut d, channel_id);
        self.gateway
            .dispatch("MESSAGE_DELETE", &d, INTENT_GUILD_MESSAGES, as_is);
        true
    }

    /// A user joins a guild: a member in REST and GUILD_MEMBER_ADD to sessions with
    /// GUILD_MEMBERS. Returns the sessions reached.
    pub fn member_join(&self, guild_id: u64, user_id: u64) -> usize {
        self.add_member(guild_id, user_id);
        self.gateway.lock().guilds.insert(guild_id);
        self.gateway.dispatch(
            "GUILD_MEMBER_ADD",
            &member_json(guild_id, user_id),
            INTENT_GUILD_MEMBERS,
            as_is,
        )
    }
}

#[cfg(test)]
mod tests {
    use serenity::{
        all::{
            Context, EventHandler, GatewayIntents, Member, Message, Ready, ResumedEvent,
            ShardManager,
        },
        async_trait,
        http::HttpBuilder,
    };

    use super::*;

    #[derive(Debug, PartialEq)]
    enum Seen {
        Ready(String),
        Resumed,
        Message(u64, String),
        /// A member joined: guild, user, roles.
        Joined(u64, u64, Vec<u64>),
    }

    struct Handler(mpsc::UnboundedSender<Seen>);

    #[async_trait]
    impl EventHandler for Handler {
        async fn ready(&self, _: Context, ready: Ready) {
            let _ = self.0.send(Seen::Ready(ready.session_id));
        }
        async fn resume(&self, _: Context, _: ResumedEvent) {
            let _ = self.0.send(Seen::Resumed);
        }
        async fn message(&self, _: Context, m: Message) {
            let _ = self.0.send(Seen::Message(m.id.get(), m.content));
        }
        async fn guild_member_addition(&self, _: Context, m: Member) {
            let roles = m.roles.iter().map(|r| r.get()).collect();
            let _ = self
                .0
                .send(Seen::Joined(m.guild_id.get(), m.user.id.get(), roles));
        }
    }

    /// serenity's `Client` against the fake, started on a task.
    async fn start(
        fake: &FakeDiscord,
        intents: GatewayIntents,
    ) -> (Arc<ShardManager>, mpsc::UnboundedReceiver<Seen>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let http = HttpBuilder::new("test-token")
            .client(fake.client(Duration::from_secs(5)))
            .build();
        let mut client = serenity::client::ClientBuilder::new_with_http(http, intents)
            .event_handler(Handler(tx))
            .await
            .expect("client");
        let manager = client.shard_manager.clone();
        tokio::spawn(async move {
            let _ = client.start().await;
        });
        (manager, rx)
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an event in time")
            .expect("handler alive")
    }

    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not in time"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn serenity_identifies_heartbeats_gets_messages_and_resumes() {
        let fake = FakeDiscord::spawn().await;
        fake.add_guild(7);
        fake.set_gateway_heartbeat_interval(Duration::from_millis(150));
        let intents = GatewayIntents::GUILDS
            | GatewayIntents::GUILD_MESSAGES
            | GatewayIntents::MESSAGE_CONTENT;
        let (manager, mut rx) = start(&fake, intents).await;
        let Seen::Ready(session) = next(&mut rx).await else {
            panic!("READY first");
        };
        let identify = &fake.gateway_identifies()[0];
        assert_eq!(identify["intents"].as_u64(), Some(intents.bits()));
        assert!(identify["token"].as_str().unwrap().ends_with("test-token"));

        let id = fake.source_message_create(7, 42, 500, "hello");
        assert_eq!(next(&mut rx).await, Seen::Message(id, "hello".into()));

        // Heartbeats are acknowledged: serenity keeps the one socket.
        until("three heartbeats", || fake.gateway_heartbeats() >= 3).await;
        assert_eq!(fake.gateway_connections(), 1);

        // A dropped socket is resumed with the same session; what was posted while no session
        // was connected is not replayed.
        fake.hold_gateway();
        fake.gateway_disconnect(4000);
        assert_eq!(fake.gateway_sessions(), 0);
        let missed = fake.source_message_create(7, 42, 500, "while away");
        fake.release_gateway();
        assert_eq!(next(&mut rx).await, Seen::Resumed);
        let resume = &fake.gateway_resumes()[0];
        assert_eq!(resume["session_id"].as_str(), Some(session.as_str()));
        assert_eq!(fake.gateway_connections(), 2);
        assert!(fake.messages(42).iter().any(|m| m.id == missed));
        let id = fake.source_message_create(7, 42, 500, "after");
        assert_eq!(next(&mut rx).await, Seen::Message(id, "after".into()));
        manager.shutdown_all().await;
    }

    #[tokio::test]
    async fn intents_decide_what_a_session_gets() {
        let fake = FakeDiscord::spawn().await;
        let (manager, mut rx) = start(&fake, GatewayIntents::GUILD_MESSAGES).await;
        assert!(matches!(next(&mut rx).await, Seen::Ready(_)));
        let id = fake.source_message_create(7, 42, 500, "secret text");
        assert_eq!(next(&mut rx).await, Seen::Message(id, String::new()));
        assert_eq!(fake.member_join(7, 600), 0, "no GUILD_MEMBERS intent");
        assert_eq!(
            fake.member_roles(7, 600),
            Some(vec![]),
            "joined in REST anyway"
        );
        assert_eq!(fake.gateway_dispatch("G3_TEST", json!({})), 1);
        manager.shutdown_all().await;
    }

    #[tokio::test]
    async fn a_join_through_the_rest_api_is_dispatched_with_its_roles() {
        let fake = FakeDiscord::spawn().await;
        let (manager, mut rx) = start(&fake, GatewayIntents::GUILD_MEMBERS).await;
        assert!(matches!(next(&mut rx).await, Seen::Ready(_)));
        let erin = fake.add_discord_user(700, "erin");
        assert_eq!(
            fake.add_discord_user(701, "erin"),
            erin,
            "the username is taken"
        );
        let token = fake.grant_token(erin.id, &["identify", "guilds.join"]);
        let join = || {
            reqwest::Client::new()
                .put(format!(
                    "{}/api/v10/guilds/7/members/{}",
                    fake.base_url(),
                    erin.id
                ))
                .header("authorization", "Bot test-token")
                .json(&json!({ "access_token": token, "roles": ["9"] }))
                .send()
        };
        assert_eq!(join().await.unwrap().status(), 201);
        assert_eq!(next(&mut rx).await, Seen::Joined(7, 700, vec![9]));
        // Already a member: no second event.
        assert_eq!(join().await.unwrap().status(), 204);
        fake.add_member(7, 5);
        assert_eq!(fake.guild_members(7), vec![(5, vec![]), (700, vec![9])]);
        assert_eq!(fake.gateway_dispatch("G3_TEST", json!({})), 1);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), rx.recv())
                .await
                .is_err(),
            "nothing else was dispatched"
        );
        manager.shutdown_all().await;
    }
}
