//! A fake Discord for bot tests: the REST API the bot uses (channel messages with JSON or
//! multipart bodies, nonce de-duplication, webhooks, guild members and their roles, rate-limit headers,
//! scripted and random faults), a
//! record of every request, and a TLS-terminating CONNECT proxy so serenity's own `Http`, rate
//! limiter on, reaches it as `https://discord.com` (see [`tls`]).

mod api;
pub mod tls;

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use serde_json::Value;

/// The fake bot user every message is authored by (one bot per fake).
pub const BOT_USER_ID: u64 = 1_100_000_000_000_000_001;

/// Discord's epoch (2015-01-01) in Unix milliseconds: snowflakes count from it.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// A fault the fake answers with instead of (or on top of) the real effect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// 429 with `retry-after` (seconds); nothing happens.
    RateLimited { retry_after: f64 },
    /// The bot's global limit: 429 with `x-ratelimit-global: true` and `retry-after`.
    GlobalRateLimited { retry_after: f64 },
    /// A 5xx with no effect.
    ServerError(u16),
    /// The effect happens, but the answer is held this long (a client timeout loses it).
    Stall(Duration),
}

/// Faults drawn at random for every message request, from a seeded RNG so runs repeat.
#[derive(Debug, Clone, Copy)]
pub struct FaultRates {
    pub rate_limited: f64,
    pub server_error: f64,
    pub stall: f64,
    pub stall_for: Duration,
    pub retry_after: f64,
    pub seed: u64,
}

/// Per-channel rate limits, like Discord's 5 messages per 5 s in one channel.
#[derive(Debug, Clone, Copy)]
pub struct ChannelLimit {
    pub limit: u32,
    pub window: Duration,
}

/// One request as it reached the fake.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub channel_id: Option<u64>,
    /// The JSON body (or multipart `payload_json`).
    pub body: Option<Value>,
    pub nonce: Option<String>,
    pub enforce_nonce: bool,
    /// File names of the multipart `files[n]` parts.
    pub files: Vec<String>,
    /// The status answered.
    pub status: u16,
    /// Why it was not served normally, if it was not.
    pub fault: Option<Fault>,
    /// A 429 caused by the per-channel limit (the client did not pace itself).
    pub over_limit: bool,
    pub at: Instant,
}

/// An uploaded file as the fake stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttachment {
    pub id: u64,
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// A message as the fake stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub id: u64,
    pub channel_id: u64,
    pub author_id: u64,
    pub content: String,
    pub embeds: Vec<Value>,
    pub attachments: Vec<StoredAttachment>,
    pub nonce: Option<String>,
    pub created_ms: u64,
    pub edited_ms: Option<u64>,
    /// Set when a webhook sent it (the author is then the webhook).
    pub webhook_id: Option<u64>,
}

#[derive(Debug)]
struct Bucket {
    started: Instant,
    used: u32,
}

struct State {
    next_seq: u64,
    channels: HashMap<u64, Vec<StoredMessage>>,
    missing_channels: Vec<u64>,
    forbidden_channels: Vec<u64>,
    /// (author, channel, nonce) → message id and when it was sent.
    nonces: HashMap<(u64, u64, String), (u64, Instant)>,
    nonce_window: Duration,
    requests: Vec<RecordedRequest>,
    scripted: VecDeque<Fault>,
    rates: Option<(FaultRates, StdRng)>,
    limit: Option<ChannelLimit>,
    buckets: HashMap<(&'static str, u64), Bucket>,
    /// (guild, user) → the member's role ids.
    members: HashMap<(u64, u64), Vec<u64>>,
    /// webhook id → (token, channel).
    webhooks: HashMap<u64, (String, u64)>,
}

/// The fake itself: cheap to clone, every clone sees the same state.
#[derive(Clone)]
pub struct FakeDiscord {
    state: Arc<Mutex<State>>,
    /// Plain-HTTP address serving the same API (for inspection and non-TLS clients).
    pub addr: SocketAddr,
    proxy: Arc<tls::Proxy>,
}

impl FakeDiscord {
    /// Starts the API on 127.0.0.1:0 and the CONNECT proxy in front of it.
    pub async fn spawn() -> FakeDiscord {
        let state = Arc::new(Mutex::new(State {
            next_seq: 0,
            channels: HashMap::new(),
            missing_channels: Vec::new(),
            forbidden_channels: Vec::new(),
            nonces: HashMap::new(),
            nonce_window: Duration::from_secs(300),
            requests: Vec::new(),
            scripted: VecDeque::new(),
            rates: None,
            limit: None,
            buckets: HashMap::new(),
            members: HashMap::new(),
            webhooks: HashMap::new(),
        }));
        let app = api::router(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake Discord");
        let addr = listener.local_addr().expect("local addr");
        let plain = app.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, plain).await;
        });
        let proxy = tls::Proxy::spawn(app).await;
        FakeDiscord {
            state,
            addr,
            proxy: Arc::new(proxy),
        }
    }

    /// `http://127.0.0.1:P` of the plain-HTTP API.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A reqwest 0.12 client that reaches this fake whenever it asks for `https://discord.com`
    /// (and nothing else): hand it to serenity with `HttpBuilder::client`.
    pub fn client(&self, timeout: Duration) -> reqwest::Client {
        self.proxy.client(timeout)
    }

    /// The proxy's URL (`http://127.0.0.1:P`).
    pub fn proxy_url(&self) -> String {
        self.proxy.url()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers the next message request with `fault` (queued in order).
    pub fn fail_next(&self, fault: Fault) {
        self.lock().scripted.push_back(fault);
    }

    /// Draws faults at random for every message request from now on (`None` stops).
    pub fn set_fault_rates(&self, rates: Option<FaultRates>) {
        self.lock().rates = rates.map(|r| (r, StdRng::seed_from_u64(r.seed)));
    }

    /// Limits every channel's message routes (each route kind counted apart, as serenity does).
    pub fn set_channel_limit(&self, limit: Option<ChannelLimit>) {
        let mut s = self.lock();
        s.limit = limit;
        s.buckets.clear();
    }

    /// How long a nonce sent with `enforce_nonce` keeps returning the first message.
    pub fn set_nonce_window(&self, window: Duration) {
        self.lock().nonce_window = window;
    }

    /// Makes a channel answer 404 Unknown Channel.
    pub fn remove_channel(&self, channel_id: u64) {
        self.lock().missing_channels.push(channel_id);
    }

    /// Makes a channel answer 403 Missing Access (until [`FakeDiscord::allow_channel`]).
    pub fn forbid_channel(&self, channel_id: u64) {
        self.lock().forbidden_channels.push(channel_id);
    }

    pub fn allow_channel(&self, channel_id: u64) {
        let mut s = self.lock();
        s.forbidden_channels.retain(|c| *c != channel_id);
        s.missing_channels.retain(|c| *c != channel_id);
    }

    /// The messages of a channel, oldest first.
    pub fn messages(&self, channel_id: u64) -> Vec<StoredMessage> {
        self.lock()
            .channels
            .get(&channel_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Deletes a message as a moderator would by hand (not recorded as a request).
    pub fn delete_by_hand(&self, channel_id: u64, message_id: u64) -> bool {
        let mut s = self.lock();
        let Some(list) = s.channels.get_mut(&channel_id) else {
            return false;
        };
        let before = list.len();
        list.retain(|m| m.id != message_id);
        before != list.len()
    }

    /// Creates a webhook posting into `channel_id`; returns its id and token.
    pub fn create_webhook(&self, channel_id: u64) -> (u64, String) {
        let mut s = self.lock();
        let (id, _) = s.snowflake();
        let token = format!("whtoken{id}");
        s.webhooks.insert(id, (token.clone(), channel_id));
        (id, token)
    }

    /// Puts a user in a guild (as joining by invite would).
    pub fn add_member(&self, guild_id: u64, user_id: u64) {
        self.lock().members.entry((guild_id, user_id)).or_default();
    }

    /// A member's roles; `None` when the user is not in the guild.
    pub fn member_roles(&self, guild_id: u64, user_id: u64) -> Option<Vec<u64>> {
        self.lock().members.get(&(guild_id, user_id)).cloned()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Message-creating requests (`POST .../messages`) that were answered 2xx.
    pub fn creates(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/messages") && r.status < 300)
            .collect()
    }
}

impl State {
    fn snowflake(&mut self) -> (u64, u64) {
        let ms = now_ms();
        self.next_seq = (self.next_seq + 1) & 0xfff;
        (
            (ms.saturating_sub(DISCORD_EPOCH_MS) << 22) | self.next_seq,
            ms,
        )
    }

    /// A fault for this request: scripted first, then drawn at random.
    fn draw_fault(&mut self) -> Option<Fault> {
        if let Some(f) = self.scripted.pop_front() {
            return Some(f);
        }
        let (rates, rng) = self.rates.as_mut()?;
        let roll: f64 = rng.random();
        if roll < rates.rate_limited {
            Some(Fault::RateLimited {
                retry_after: rates.retry_after,
            })
        } else if roll < rates.rate_limited + rates.server_error {
            Some(Fault::ServerError(500))
        } else if roll < rates.rate_limited + rates.server_error + rates.stall {
            Some(Fault::Stall(rates.stall_for))
        } else {
            None
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
