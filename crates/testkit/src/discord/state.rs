//! What the fake remembers, in one place its REST API ([`super::api`]), OAuth2 provider
//! ([`super::oauth`]) and gateway ([`super::gateway`]) all use: messages, members, roles,
//! webhooks, OAuth2 apps and tokens, scripted faults, and every request as it arrived. None of
//! those modules imports another's internals; this one imports none of them.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use axum::http::Method;
use rand::{Rng as _, rngs::StdRng};
use serde_json::{Value, json};

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

/// A guild role. Once a guild has roles (see [`super::FakeDiscord::add_guild_role`]), role changes
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
    /// The message this one replies to (`message_reference.message_id`), in the same channel.
    pub reply_to: Option<u64>,
}

#[derive(Debug)]
pub(super) struct Bucket {
    pub(super) started: Instant,
    pub(super) used: u32,
}

pub(super) struct State {
    pub(super) next_seq: u64,
    pub(super) channels: HashMap<u64, Vec<StoredMessage>>,
    pub(super) missing_channels: Vec<u64>,
    pub(super) forbidden_channels: Vec<u64>,
    /// (author, channel, nonce) → message id and when it was sent.
    pub(super) nonces: HashMap<(u64, u64, String), (u64, Instant)>,
    pub(super) nonce_window: Duration,
    pub(super) requests: Vec<RecordedRequest>,
    pub(super) scripted: VecDeque<Fault>,
    pub(super) rates: Option<(FaultRates, StdRng)>,
    pub(super) limit: Option<ChannelLimit>,
    pub(super) buckets: HashMap<(&'static str, u64), Bucket>,
    /// (guild, user) → the member's role ids.
    pub(super) members: HashMap<(u64, u64), Vec<u64>>,
    /// guild → its roles (`@everyone`, id = guild id, is implied at position 0).
    pub(super) guild_roles: HashMap<u64, Vec<FakeRole>>,
    /// webhook id → (token, channel).
    pub(super) webhooks: HashMap<u64, (String, u64)>,
    /// OAuth2 apps, Discord accounts, codes and tokens (see [`super::oauth`]).
    pub(super) oauth: OAuthState,
    /// When set, `Authorization: Bot <other>` is answered 401 (see [`super::FakeDiscord::require_bot_token`]).
    pub(super) bot_token: Option<String>,
}

impl State {
    pub(super) fn new() -> State {
        State {
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
            oauth: OAuthState::default(),
            bot_token: None,
        }
    }
}

/// The state as every route handler holds it.
pub(super) type Shared = Arc<Mutex<State>>;

pub(super) fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    /// Every member of a guild with their roles, by ascending user id.
    pub(super) fn members_of(&self, guild_id: u64) -> Vec<(u64, Vec<u64>)> {
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
    pub(super) fn roles_of(&self, guild_id: u64) -> Option<Vec<FakeRole>> {
        let mut roles = self.guild_roles.get(&guild_id)?.clone();
        if !roles.iter().any(|r| r.id == guild_id) {
            roles.push(FakeRole::new(guild_id, "@everyone", 0, 0));
        }
        roles.sort_by_key(|r| (r.position, r.id));
        Some(roles)
    }

    /// Whether the bot may grant or remove `role` in `guild` (`Err` is Discord's answer).
    pub(super) fn may_manage(
        &self,
        guild_id: u64,
        role: u64,
    ) -> Result<(), (u16, u32, &'static str)> {
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

    pub(super) fn snowflake(&mut self) -> (u64, u64) {
        let ms = now_ms();
        self.next_seq = (self.next_seq + 1) & 0xfff;
        (
            (ms.saturating_sub(DISCORD_EPOCH_MS) << 22) | self.next_seq,
            ms,
        )
    }

    /// A fault for this request: scripted first, then drawn at random.
    pub(super) fn draw_fault(&mut self) -> Option<Fault> {
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

pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A request as it arrived, before its answer is known (`status` 0).
pub(super) fn record(
    method: &Method,
    path: &str,
    query: Option<String>,
    channel: u64,
) -> RecordedRequest {
    RecordedRequest {
        method: method.to_string(),
        path: path.to_owned(),
        query,
        channel_id: Some(channel),
        body: None,
        nonce: None,
        enforce_nonce: false,
        files: Vec::new(),
        status: 0,
        fault: None,
        over_limit: false,
        audit_reason: None,
        at: Instant::now(),
    }
}

// Discord's wire format of the stored values, shared by REST answers and gateway dispatches.

/// The bot's own user.
pub(super) fn bot_user_json() -> Value {
    json!({
        "id": BOT_USER_ID.to_string(),
        "username": "g3-bot",
        "discriminator": "0000",
        "global_name": null,
        "avatar": null,
        "bot": true,
    })
}

/// A message as the create answer shows it (with its nonce).
pub(super) fn message_json(m: &StoredMessage) -> Value {
    let mut v = fetched_json(m);
    v["nonce"] = json!(m.nonce);
    v
}

/// A message as fetching shows it: Discord does not keep nonces, so none here either.
pub(super) fn fetched_json(m: &StoredMessage) -> Value {
    let stamp = |ms: u64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
    };
    json!({
        "id": m.id.to_string(),
        "channel_id": m.channel_id.to_string(),
        "author": match m.webhook_id {
            Some(w) => json!({
                "id": w.to_string(),
                "username": "webhook",
                "discriminator": "0000",
                "avatar": null,
                "bot": true,
            }),
            None if m.author_id == BOT_USER_ID => bot_user_json(),
            // A user's message in a source guild (see `gateway`).
            None => json!({
                "id": m.author_id.to_string(),
                "username": format!("user{}", m.author_id),
                "discriminator": "0000",
                "global_name": null,
                "avatar": null,
            }),
        },
        "webhook_id": m.webhook_id.map(|w| w.to_string()),
        "content": m.content,
        "timestamp": stamp(m.created_ms),
        "edited_timestamp": m.edited_ms.and_then(stamp),
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": m.attachments.iter().map(|a| json!({
            "id": a.id.to_string(),
            "filename": a.filename,
            "size": a.bytes.len(),
            "url": format!("https://cdn.discordapp.com/attachments/{}/{}/{}", m.channel_id, a.id, a.filename),
            "proxy_url": format!("https://media.discordapp.net/attachments/{}/{}/{}", m.channel_id, a.id, a.filename),
            "content_type": a.content_type,
        })).collect::<Vec<_>>(),
        "embeds": m.embeds,
        "pinned": false,
        // 19 is a reply (Discord's `REPLY` message type), 0 a plain message.
        "type": if m.reply_to.is_some() { 19 } else { 0 },
        "flags": 0,
        "message_reference": m.reply_to.map(|r| json!({
            "type": 0,
            "message_id": r.to_string(),
            "channel_id": m.channel_id.to_string(),
        })),
    })
}

// OAuth2 records (the flows that create them are in `oauth`).

/// An application registered with the fake (the Developer Portal's OAuth2 page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: String,
    pub name: String,
    /// Exact redirect URIs allowed, as Discord requires.
    pub redirect_uris: Vec<String>,
}

/// A Discord account of the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    pub id: u64,
    pub username: String,
    pub global_name: Option<String>,
}

/// An access token the fake issued, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub access_token: String,
    pub refresh_token: String,
    pub client_id: String,
    pub user_id: u64,
    pub scopes: Vec<String>,
    pub revoked: bool,
}

/// An OAuth endpoint a fault can be scripted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthRoute {
    Token,
    /// `users/@me` with a Bearer token.
    Me,
    Revoke,
}

/// The fake's OAuth records, kept inside the fake's state.
#[derive(Debug, Default)]
pub(super) struct OAuthState {
    pub(super) apps: Vec<OAuthApp>,
    pub(super) users: Vec<FakeUser>,
    pub(super) codes: HashMap<String, Grant>,
    pub(super) tokens: Vec<IssuedToken>,
    pub(super) faults: VecDeque<(OAuthRoute, u16)>,
    pub(super) down: bool,
}

#[derive(Debug)]
pub(super) struct Grant {
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) user_id: u64,
    pub(super) scopes: Vec<String>,
    pub(super) challenge: Option<String>,
    pub(super) expires: Instant,
}
