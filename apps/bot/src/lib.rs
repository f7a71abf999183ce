//! The Discord bot: mirrors signals into the customer guild's channels, exactly once, through
//! crashes, rate limits and faults ([`mirror`]), rendered by [`render`], following signals with
//! a durable cursor ([`follow`]), and replies to those mirrors when the tracker records a target
//! or stop hit ([`replies`]), through the same Discord path (`discord.rs`). When configured it
//! also connects to the gateway ([`gateway`]) to collect the source guild's messages for ingest
//! ([`collect`]) and to see members join. Any number of bot processes may run: one holds the
//! lease and works ([`lead`]), the others stand by ([`g3_store::lease`]). Settings are loaded
//! once in `main`; tests build them as a literal and inject the fake Discord's HTTP client.

pub mod collect;
pub mod config;
mod discord;
pub mod follow;
pub mod gateway;
pub mod health;
pub mod lead;
pub mod mirror;
pub mod render;
pub mod replies;
pub mod roles;
pub mod startup;
pub mod state;

use std::{
    future::Future,
    net::SocketAddr,
    str::FromStr,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use anyhow::Context as _;

use g3_appwrite::Document;
use g3_core::Snowflake;
use g3_store::{
    Collection,
    models::{Route, Signal},
};
use serenity::{
    all::ChannelId,
    http::{Http, HttpBuilder},
};

pub use mirror::{MirrorError, Mirrorer, Outcome, RetryPolicy};

/// `base` doubled `doublings` times (at most 16), capped at `max`: the step of every backoff in
/// the bot, each adding its own jitter.
pub(crate) fn exponential(base: Duration, max: Duration, doublings: u32) -> Duration {
    base.saturating_mul(2u32.saturating_pow(doublings.min(16)))
        .min(max)
}

/// A Discord id (snowflake) as stored in documents: a non-zero number.
pub(crate) fn snowflake(s: &str) -> Option<u64> {
    Snowflake::parse(s)
        .ok()
        .map(Snowflake::get)
        .filter(|n| *n != 0)
}

pub use g3_service::Secret;

/// Which end of a backlog (e.g. after downtime) is mirrored first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    OldestFirst,
    NewestFirst,
}

impl FromStr for Order {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "oldest-first" | "oldest" => Ok(Order::OldestFirst),
            "newest-first" | "newest" => Ok(Order::NewestFirst),
            other => Err(format!(
                "unknown order {other:?}: use oldest-first or newest-first"
            )),
        }
    }
}

/// Everything the bot needs, loaded once in `main`.
#[derive(Clone, Debug)]
pub struct Settings {
    pub discord_token: Secret,
    /// Appwrite with the server key: signals, routes, mirrors, storage.
    pub appwrite: g3_appwrite::Config,
    /// The `staff` service user the Realtime socket signs in as.
    pub staff_email: String,
    pub staff_password: Secret,
    pub order: Order,
    /// Timeout of one Discord request (a stalled answer becomes a retried timeout).
    pub discord_timeout: Duration,
    pub retry: RetryPolicy,
    /// The HTTP client serenity uses; `None` builds the production one. Tests pass the fake
    /// Discord's client (`testkit::discord::FakeDiscord::client`).
    pub discord_client: Option<reqwest::Client>,
    /// How often every signal is checked against its mirrors.
    pub reconcile_every: Duration,
    /// Reconciliation checks that mirrors of signals posted this recently still exist.
    pub verify_window: Duration,
    /// Pause before a signal whose mirror failed is tried again.
    pub retry_failed_after: Duration,
    /// The customer guild (`DISCORD_GUILD_ID`), where paid roles are kept in sync.
    pub guild_id: Option<u64>,
    /// The roles each plan gives (`PLAN_ROLES`); role sync runs only with these and `guild_id`.
    pub plan_roles: g3_core::plans::PlanRoles,
    /// Role sync's reconciliation (`ROLE_RECONCILE_SECS`), recheck and retry timings.
    pub role_timing: roles::Timing,
    /// The gateway connection: the source-guild collector and member joins ([`gateway`]).
    pub gateway: gateway::GatewaySettings,
    /// Where REST requests go instead of `https://discord.com` (`DISCORD_API_URL`): a fake
    /// Discord or sandbox. `None` is Discord itself.
    pub discord_api_url: Option<String>,
    /// Leader election among bot processes (`BOT_LEASE_*`).
    pub lease: LeaseSettings,
    /// Where `GET /healthz` answers (`BOT_HEALTH_BIND`); `None` serves nothing.
    pub health_bind: Option<SocketAddr>,
}

/// Leader election among bot processes: one lease per name, one holder at a time.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// `BOT_LEASE_NAME`: processes sharing it elect one leader (one per customer guild).
    pub name: String,
    /// This process in the lease documents (`BOT_INSTANCE_ID`; default host, pid and a nonce).
    pub holder: String,
    /// `BOT_LEASE_TTL_SECS` and `BOT_LEASE_RENEW_SECS`, with what follows from them.
    pub timing: g3_store::lease::Timing,
    /// Tests: while set, the leader sends no renewals (a stalled leader).
    pub hold_renewals: Option<Arc<AtomicBool>>,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        Self {
            name: "bot".into(),
            holder: default_holder(None),
            timing: g3_store::lease::Timing::default(),
            hold_renewals: None,
        }
    }
}

/// A holder id unique to this process: `<host>-<pid>-<random>`, at most 120 characters.
pub fn default_holder(host: Option<&str>) -> String {
    use rand::Rng as _;
    let nonce: u32 = rand::rng().random();
    let host: String = host
        .unwrap_or("bot")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(64)
        .collect();
    format!("{host}-{}-{nonce:08x}", std::process::id())
}

/// Discord's own API origin, which `DISCORD_API_URL` replaces.
pub const DISCORD_API: &str = "https://discord.com";

/// Runs the bot until `shutdown` resolves, serving `/healthz` on `settings.health_bind`.
/// See [`run_with`].
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let health = g3_service::http::bind_optional(settings.health_bind, "BOT_HEALTH_BIND").await?;
    run_with(settings, health, shutdown).await
}

/// Runs the bot until `shutdown` resolves: checks the token (and role sync's permissions), then
/// stands by until it holds the lease and works as the leader ([`lead`]) until `shutdown` (it
/// then drains, stores its cursor and releases the lease) or until it loses the lease (it then
/// stops all work and stands by again). `health`, if given, serves `GET /healthz`.
pub async fn run_with(
    settings: Settings,
    health: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let http = discord_http(&settings)?;
    let appwrite =
        g3_appwrite::Client::new(settings.appwrite.clone()).context("appwrite settings")?;
    let (role, role_rx) = tokio::sync::watch::channel(health::Role::Starting);
    let (stop_health, health_stopped) = tokio::sync::oneshot::channel::<()>();
    let health_task = health.map(|listener| {
        tokio::spawn(g3_service::http::serve(
            listener,
            health::router(role_rx),
            g3_service::http::Timeouts::default(),
            async {
                let _ = health_stopped.await;
            },
        ))
    });
    let result = lead::run(&settings, http, appwrite, &role, shutdown).await;
    let _ = stop_health.send(());
    if let Some(task) = health_task {
        let _ = task.await;
    }
    result
}

/// The HTTP client for Discord: the injected one (tests, the devstack sandbox) or rustls with
/// the per-request timeout.
pub fn discord_client(settings: &Settings) -> anyhow::Result<reqwest::Client> {
    Ok(match &settings.discord_client {
        Some(c) => c.clone(),
        None => reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(settings.discord_timeout)
            .build()?,
    })
}

/// serenity's `HttpBuilder` over our client and, with `discord_api_url`, pointed there.
///
/// serenity 0.12 applies `HttpBuilder::proxy` (which replaces the `https://discord.com` prefix of
/// every request URL, keeping `/api/v10/...`) only when its rate limiter is off: the limiter
/// builds requests without the proxy. So with `DISCORD_API_URL` the limiter is off, and 429s are
/// retried by the mirrorer's own backoff instead.
pub fn discord_http_builder(settings: &Settings) -> anyhow::Result<HttpBuilder> {
    let client = discord_client(settings)?;
    let builder = HttpBuilder::new(settings.discord_token.expose()).client(client);
    Ok(match api_url(settings) {
        Some(url) => builder.proxy(url).ratelimiter_disabled(true),
        None => builder,
    })
}

/// `discord_api_url`, unless it names Discord itself.
fn api_url(settings: &Settings) -> Option<String> {
    settings
        .discord_api_url
        .as_deref()
        .map(|u| u.trim().trim_end_matches('/'))
        .filter(|u| !u.is_empty() && *u != DISCORD_API)
        .map(str::to_owned)
}

/// serenity's `Http` (rate limiter on when talking to Discord itself), over our client.
pub fn discord_http(settings: &Settings) -> anyhow::Result<Arc<Http>> {
    Ok(Arc::new(discord_http_builder(settings)?.build()))
}

/// The customer channels a signal's route names (none for an unknown or disabled route).
pub async fn targets(
    appwrite: &g3_appwrite::Client,
    signal: &Signal,
) -> Result<Vec<ChannelId>, g3_appwrite::Error> {
    let route = Collection::<Route>::new(appwrite)
        .get_optional(&signal.route_key)
        .await?;
    let Some(route) = route else {
        tracing::warn!(route = %signal.route_key, "signal names an unknown route: not mirrored");
        return Ok(Vec::new());
    };
    if route.data.enabled == Some(false) {
        return Ok(Vec::new());
    }
    Ok(route
        .data
        .customer_channel_ids
        .iter()
        .filter_map(|c| match snowflake(c) {
            Some(id) => Some(ChannelId::new(id)),
            None => {
                tracing::warn!(channel = %c, "route names an invalid channel id");
                None
            }
        })
        .collect())
}

/// Mirrors one signal into every channel of its route (with `verify`, also checking that
/// current mirrors still exist). Every channel is tried; the first error is returned after all.
pub async fn mirror_signal(
    mirrorer: &Mirrorer,
    appwrite: &g3_appwrite::Client,
    signal: &Document<Signal>,
    verify: bool,
) -> Result<Vec<Outcome>, MirrorError> {
    let mut outcomes = Vec::new();
    let mut first_error = None;
    for channel in targets(appwrite, &signal.data).await? {
        let result = if verify {
            mirrorer.verify(signal, channel).await
        } else {
            mirrorer.mirror(signal, channel).await
        };
        match result {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(outcomes),
    }
}
