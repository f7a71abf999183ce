//! The Discord bot: mirrors signals into the customer guild's channels, exactly once, through
//! crashes, rate limits and faults ([`mirror`]), rendered by [`render`], following signals with
//! a durable cursor ([`follow`]). When configured it also connects to the gateway ([`gateway`])
//! to collect the source guild's messages for ingest ([`collect`]) and to see members join.
//! Settings are loaded once in `main`; tests build them as a literal and inject the fake
//! Discord's HTTP client.

pub mod collect;
pub mod follow;
pub mod gateway;
pub mod mirror;
pub mod render;
pub mod roles;
pub mod state;

use std::{future::Future, str::FromStr, sync::Arc, time::Duration};

use anyhow::Context as _;

use g3_appwrite::Document;
use g3_store::{
    models::{Route, Signal},
    schema::DATABASE_ID,
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
    s.parse::<u64>().ok().filter(|n| *n != 0)
}

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

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
}

/// Runs the bot until `shutdown` resolves: reconcile at start and periodically, follow signals
/// through Realtime, mirror them one at a time.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let http = discord_http(&settings)?;
    let appwrite =
        g3_appwrite::Client::new(settings.appwrite.clone()).context("appwrite settings")?;
    let mirrorer = Arc::new(Mirrorer::new(
        http.clone(),
        appwrite.clone(),
        settings.retry.clone(),
    ));
    let queue = Arc::new(follow::WorkQueue::default());
    // A stored catch-up cursor replaces the full reconciliation at start (see `follow`).
    let stored = follow::load_cursor(&appwrite).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "catch-up cursor unreadable: reconciling everything");
        None
    });
    let progress = Arc::new(follow::Progress::starting_at(stored));
    let turn = Arc::new(tokio::sync::Mutex::new(()));
    // Without one, the reconciliation pass at start covers everything before now.
    let cursor =
        stored.unwrap_or_else(|| time::OffsetDateTime::now_utc() - time::Duration::seconds(5));
    // Member joins reach role sync through this channel (from the gateway).
    let (member_joins, joins) = tokio::sync::mpsc::channel::<roles::MemberJoined>(1024);
    let role_sync = roles::Config::from_settings(&settings)
        .map(|config| tokio::spawn(roles::run(config, http.clone(), appwrite.clone(), joins)));
    if role_sync.is_none() {
        tracing::info!("role sync is off: DISCORD_GUILD_ID and PLAN_ROLES are not both set");
    }
    let gateway = if gateway::enabled(&settings) {
        let joins = settings
            .gateway
            .member_joins
            .clone()
            .unwrap_or_else(|| member_joins.clone());
        Some(gateway::start(
            &settings,
            appwrite.clone(),
            http.clone(),
            joins,
        )?)
    } else {
        None
    };
    let mut tasks = vec![
        tokio::spawn(follow::reconcile(follow::Reconciler {
            appwrite: appwrite.clone(),
            mirrorer: mirrorer.clone(),
            queue: queue.clone(),
            progress: progress.clone(),
            order: settings.order,
            every: settings.reconcile_every,
            verify_window: settings.verify_window,
            at_start: stored.is_none(),
            turn: turn.clone(),
        })),
        tokio::spawn(follow::follow(
            appwrite.clone(),
            settings.clone(),
            queue.clone(),
            progress.clone(),
            cursor,
        )),
        tokio::spawn(follow::keep_cursor(
            appwrite.clone(),
            progress.clone(),
            Duration::from_secs(1),
        )),
        tokio::spawn(follow::work(
            mirrorer,
            appwrite.clone(),
            queue,
            progress.clone(),
            settings.retry_failed_after,
            turn,
        )),
    ];
    tasks.extend(role_sync);
    shutdown.await;
    if let Some(gateway) = gateway {
        gateway.stop().await;
    }
    drop(member_joins);
    for t in &tasks {
        t.abort();
    }
    // Stopped means stopped: no mirror call outlives `run`.
    for t in tasks {
        let _ = t.await;
    }
    // What was mirrored by now stays behind the cursor; the rest is caught up next time.
    if let Err(e) = follow::store_cursor(&appwrite, &progress).await {
        tracing::warn!(error = %e, "catch-up cursor not stored at shutdown");
    }
    Ok(())
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

/// serenity's `Http` with its rate limiter on, over our client.
pub fn discord_http(settings: &Settings) -> anyhow::Result<Arc<Http>> {
    let client = discord_client(settings)?;
    Ok(Arc::new(
        HttpBuilder::new(settings.discord_token.expose())
            .client(client)
            .build(),
    ))
}

/// The customer channels a signal's route names (none for an unknown or disabled route).
pub async fn targets(
    appwrite: &g3_appwrite::Client,
    signal: &Signal,
) -> Result<Vec<ChannelId>, g3_appwrite::Error> {
    let route = appwrite
        .documents(DATABASE_ID, "routes")
        .get_optional::<Route>(&signal.route_key)
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
        .filter_map(|c| match c.parse::<u64>() {
            Ok(id) if id != 0 => Some(ChannelId::new(id)),
            _ => {
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
