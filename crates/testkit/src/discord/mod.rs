//! A fake Discord for bot tests: the REST API the bot uses (channel messages with JSON or
//! multipart bodies, nonce de-duplication, webhooks, guild members and their roles, guild roles
//! with Discord's hierarchy check, member listing, rate-limit headers, scripted and random
//! faults), a record of every request, and a TLS-terminating CONNECT proxy so serenity's own
//! `Http`, rate limiter on, reaches it as `https://discord.com` (see [`tls`]). Its gateway
//! ([`gateway`]) serves serenity's `Client`: sessions, resumes, and source-guild messages and
//! member joins dispatched as a test makes them.

mod api;
pub mod gateway;
mod oauth;
pub mod tls;

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use serde_json::Value;

pub use oauth::{
    AuthorizeError, AuthorizeParams, FakeUser, IssuedToken, OAuthApp, OAuthRoute, pkce_challenge,
};

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
    /// The `X-Audit-Log-Reason` header, percent-decoded.
    pub audit_reason: Option<String>,
    pub at: Instant,
}

/// Permission bits the fake checks (Discord's values).
pub mod permissions {
    pub const ADMINISTRATOR: u64 = 1 << 3;
    pub const MANAGE_ROLES: u64 = 1 << 28;
}

/// A guild role. Once a guild has roles (see [`FakeDiscord::add_guild_role`]), role changes
/// there are checked as Discord does: the role must exist, and the bot needs Manage Roles (or
/// Administrator) and a highest role above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeRole {
    pub id: u64,
    pub name: String,
    pub position: u16,
    pub permissions: u64,
}

impl FakeRole {
    pub fn new(id: u64, name: &str, position: u16, permissions: u64) -> Self {
        Self {
            id,
            name: name.to_owned(),
            position,
            permissions,
        }
    }
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
    /// guild → its roles (`@everyone`, id = guild id, is implied at position 0).
    guild_roles: HashMap<u64, Vec<FakeRole>>,
    /// webhook id → (token, channel).
    webhooks: HashMap<u64, (String, u64)>,
    /// OAuth2 apps, Discord accounts, codes and tokens (see [`oauth`]).
    oauth: oauth::OAuthState,
    /// When set, `Authorization: Bot <other>` is answered 401 (see [`FakeDiscord::require_bot_token`]).
    bot_token: Option<String>,
}

/// The fake itself: cheap to clone, every clone sees the same state.
#[derive(Clone)]
pub struct FakeDiscord {
    state: Arc<Mutex<State>>,
    /// Plain-HTTP address serving the same API (for inspection and non-TLS clients).
    pub addr: SocketAddr,
    proxy: Arc<tls::Proxy>,
    gateway: Arc<gateway::Gateway>,
}

impl FakeDiscord {
    /// Starts the API on 127.0.0.1:0 and the CONNECT proxy in front of it.
    pub async fn spawn() -> FakeDiscord {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake Discord");
        Self::spawn_with(listener).await
    }

    /// Starts the plain-HTTP API on a fixed address (a standalone sandbox that other processes
    /// reach at a known URL); the gateway and the CONNECT proxy still take free ports, which
    /// `GET /api/v10/gateway` and [`FakeDiscord::proxy_url`] name.
    pub async fn spawn_on(addr: SocketAddr) -> std::io::Result<FakeDiscord> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        Ok(Self::spawn_with(listener).await)
    }

    async fn spawn_with(listener: tokio::net::TcpListener) -> FakeDiscord {
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
            guild_roles: HashMap::new(),
            webhooks: HashMap::new(),
            oauth: oauth::OAuthState::default(),
            bot_token: None,
        }));
        let gateway = gateway::Gateway::spawn().await;
        let app =
            api::router(state.clone(), gateway.clone()).merge(gateway::routes(gateway.clone()));
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
            gateway,
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

    /// Accepts only this bot token from now on (`None`: any): a request with
    /// `Authorization: Bot <other>` gets Discord's 401 `{"message": "401: Unauthorized", "code": 0}`.
    pub fn require_bot_token(&self, token: Option<&str>) {
        self.lock().bot_token = token.map(str::to_owned);
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

    /// Every member of a guild with their roles, by ascending user id.
    pub fn guild_members(&self, guild_id: u64) -> Vec<(u64, Vec<u64>)> {
        self.lock().members_of(guild_id)
    }

    /// Sets a member's roles by hand, as a moderator would (not recorded as a request).
    /// Returns false when the user is not in the guild.
    pub fn set_member_roles(&self, guild_id: u64, user_id: u64, roles: Vec<u64>) -> bool {
        match self.lock().members.get_mut(&(guild_id, user_id)) {
            Some(held) => {
                *held = roles;
                true
            }
            None => false,
        }
    }

    /// The user leaves the guild (their roles go with them, as on Discord).
    pub fn remove_member(&self, guild_id: u64, user_id: u64) -> bool {
        self.lock().members.remove(&(guild_id, user_id)).is_some()
    }

    /// Adds a role to a guild, or replaces the role with that id (a moderator editing it).
    pub fn add_guild_role(&self, guild_id: u64, role: FakeRole) {
        let mut s = self.lock();
        let roles = s.guild_roles.entry(guild_id).or_default();
        roles.retain(|r| r.id != role.id);
        roles.push(role);
    }

    /// The guild's roles as `GET /guilds/{g}/roles` answers them (with `@everyone`).
    pub fn guild_roles(&self, guild_id: u64) -> Vec<FakeRole> {
        self.lock().roles_of(guild_id).unwrap_or_default()
    }

    /// Role grants and removals (`PUT`/`DELETE .../members/{u}/roles/{r}`), whatever they were answered.
    pub fn role_requests(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| {
                (r.method == "PUT" || r.method == "DELETE")
                    && r.path.contains("/members/")
                    && r.path.contains("/roles/")
            })
            .collect()
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
    /// Every member of a guild with their roles, by ascending user id.
    fn members_of(&self, guild_id: u64) -> Vec<(u64, Vec<u64>)> {
        let mut members: Vec<(u64, Vec<u64>)> = self
            .members
            .iter()
            .filter(|((g, _), _)| *g == guild_id)
            .map(|((_, u), roles)| (*u, roles.clone()))
            .collect();
        members.sort_by_key(|(u, _)| *u);
        members
    }

    /// A guild's roles with `@everyone` (id = guild id) unless it was added explicitly;
    /// `None` when the guild has no roles configured.
    fn roles_of(&self, guild_id: u64) -> Option<Vec<FakeRole>> {
        let mut roles = self.guild_roles.get(&guild_id)?.clone();
        if !roles.iter().any(|r| r.id == guild_id) {
            roles.push(FakeRole::new(guild_id, "@everyone", 0, 0));
        }
        roles.sort_by_key(|r| (r.position, r.id));
        Some(roles)
    }

    /// Whether the bot may grant or remove `role` in `guild` (`Err` is Discord's answer).
    fn may_manage(&self, guild_id: u64, role: u64) -> Result<(), (u16, u32, &'static str)> {
        let Some(roles) = self.roles_of(guild_id) else {
            return Ok(());
        };
        let Some(target) = roles.iter().find(|r| r.id == role) else {
            return Err((404, 10011, "Unknown Role"));
        };
        let held = self
            .members
            .get(&(guild_id, BOT_USER_ID))
            .cloned()
            .unwrap_or_default();
        let mine: Vec<&FakeRole> = roles
            .iter()
            .filter(|r| r.id == guild_id || held.contains(&r.id))
            .collect();
        let perms = mine.iter().fold(0, |p, r| p | r.permissions);
        let top = mine.iter().map(|r| r.position).max().unwrap_or(0);
        let allowed = perms & (permissions::ADMINISTRATOR | permissions::MANAGE_ROLES) != 0;
        if !allowed || target.position >= top {
            return Err((403, 50013, "Missing Permissions"));
        }
        Ok(())
    }

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
