//! A fake Discord for bot tests: the REST API the bot uses (channel messages with JSON or
//! multipart bodies, nonce de-duplication, replies (`message_reference`), webhooks, guild members and their roles, guild roles
//! with Discord's hierarchy check, member listing, rate-limit headers, scripted and random
//! faults), a record of every request, and a TLS-terminating CONNECT proxy so serenity's own
//! `Http`, rate limiter on, reaches it as `https://discord.com` (see [`tls`]). Its gateway
//! ([`gateway`]) serves serenity's `Client`: sessions, resumes, and source-guild messages and
//! member joins dispatched as a test makes them; and an OAuth2 provider (`oauth.rs`: authorize
//! page, token exchange, revocation) for account linking.
//!
//! Layering, one way only: `state.rs` holds what the fake remembers; `api.rs` (REST, which asks
//! `oauth.rs` about Bearer tokens and tells the gateway about member joins), `oauth.rs` and
//! [`gateway`] serve it; this file starts them all behind [`FakeDiscord`], to which `oauth.rs`
//! and `gateway` add their test controls.

mod api;
pub mod gateway;
mod oauth;
mod state;
pub mod tls;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use rand::{SeedableRng as _, rngs::StdRng};

pub use oauth::{AuthorizeError, AuthorizeParams, pkce_challenge};
pub use state::{
    BOT_USER_ID, ChannelLimit, FakeRole, FakeUser, Fault, FaultRates, IssuedToken, OAuthApp,
    OAuthRoute, RecordedRequest, StoredAttachment, StoredMessage, permissions,
};

use state::State;

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
        let state = Arc::new(Mutex::new(State::new()));
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

#[cfg(test)]
mod tests;
