//! Starting and stopping the whole stack: the emulator on a file under the data directory,
//! the schema, the seed, Discord (sandbox or real), the simulated market, the webhook, web, bot
//! and tracker services, the demo collector and devstack's pages.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use g3_access::Access;
use g3_appwrite::{ApiKey, Client, Config};
use g3_core::entitlements::PlanConfig;
use g3_store::{Collection, models::Route};

use crate::{
    BOT_SERVICE, DEMO_ACCOUNTS, DEMO_INGEST_SECRET, DEMO_METRICS_TOKEN, DEMO_SELLAPP_SECRET,
    DiscordMode, Settings, WEB_SERVICE, demo_collector,
    demo_store::DemoStore,
    market::{self, Market, Trading},
    pages, sandbox,
    seed::{self, DEMO_ROUTES, TRACKER_SERVICE},
};

/// What is running, for printing and for tests.
pub struct Running {
    pub emulator: appwrite_emulator::Handle,
    pub client: Client,
    pub webhook_addr: SocketAddr,
    pub web_addr: SocketAddr,
    /// devstack's pages: the sandbox (or real mode's summary) and the demo store.
    pub pages: pages::Pages,
    /// The fake Discord, in sandbox mode.
    pub sandbox: Option<sandbox::Sandbox>,
    pub discord: DiscordMode,
    /// Real Discord mode: what is off and which routes still need a channel, one line each.
    pub discord_notes: Vec<String>,
    /// The plans file this run uses, for `ops` (`PLANS_FILE`).
    pub plans_file: std::path::PathBuf,
    /// The simulated market the tracker follows.
    pub market: Market,
    /// Where the tracker answers `/healthz` and `/metrics`.
    pub tracker_addr: SocketAddr,
    trading: Trading,
    tracker_stop: tokio::sync::oneshot::Sender<()>,
    tracker_task: tokio::task::JoinHandle<anyhow::Result<()>>,
    webhook_stop: tokio::sync::oneshot::Sender<()>,
    webhook_task: tokio::task::JoinHandle<anyhow::Result<()>>,
    web_stop: tokio::sync::oneshot::Sender<()>,
    web_task: tokio::task::JoinHandle<anyhow::Result<()>>,
    demo: Option<demo_collector::DemoCollector>,
    bot_stop: tokio::sync::oneshot::Sender<()>,
    bot_task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// `PLAN_ROLES` of this run.
    pub fn plan_roles_spec(&self) -> String {
        match &self.discord {
            DiscordMode::Sandbox => sandbox::PLAN_ROLES.to_owned(),
            DiscordMode::Real(real) => real.plan_roles_spec.clone(),
        }
    }

    pub fn web_url(&self) -> String {
        format!("http://{}", self.web_addr)
    }

    /// The sandbox page (in real Discord mode, what that mode runs with).
    pub fn sandbox_url(&self) -> String {
        self.pages.url()
    }

    /// Stops every service, then the market and the emulator.
    pub async fn stop(self) -> anyhow::Result<()> {
        if let Some(demo) = self.demo {
            demo.stop().await;
        }
        // The tracker first: it stores the prices it judged and releases its lease while the
        // market and Appwrite are still up.
        let _ = self.tracker_stop.send(());
        self.tracker_task.await.context("tracker task panicked")??;
        let _ = self.bot_stop.send(());
        self.bot_task.await.context("bot task panicked")??;
        self.pages.stop().await;
        let _ = self.web_stop.send(());
        self.web_task.await.context("web task panicked")??;
        let _ = self.webhook_stop.send(());
        self.webhook_task.await.context("webhook task panicked")??;
        self.trading.stop().await;
        self.market.close();
        self.emulator.stop().await
    }
}

async fn bind(addr: SocketAddr, what: &str, env: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} for {what} (is another devstack running? set {env})")
    })
}

/// Starts the emulator, bootstraps, seeds and starts the services. `progress` hears each step.
pub async fn start(settings: &Settings, progress: &mut dyn FnMut(&str)) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
    let emulator_listener = bind(
        settings.emulator_addr,
        "the Appwrite emulator",
        "DEVSTACK_EMULATOR_ADDR",
    )
    .await?;
    let webhook_listener = bind(
        settings.webhook_addr,
        "the webhook service",
        "DEVSTACK_WEBHOOK_ADDR",
    )
    .await?;
    let web_listener = bind(settings.web_addr, "the web dashboard", "DEVSTACK_WEB_ADDR").await?;
    let pages_listener = bind(
        settings.sandbox_addr,
        "the Discord sandbox page and demo store",
        "DEVSTACK_SANDBOX_ADDR",
    )
    .await?;
    let tracker_listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .await
        .context("listening for the tracker's health and metrics")?;
    let (market, trading) = Market::start(settings.market_addr, settings.market).await?;
    progress(&format!(
        "simulated market (a fake exchange, random-walk prices) listening on http://{}",
        market.addr()
    ));
    let webhook_addr = webhook_listener.local_addr()?;
    let web_addr = web_listener.local_addr()?;
    let pages_addr = pages_listener.local_addr()?;
    let public_url = url::Url::parse(&format!("http://{web_addr}"))?;
    let config = appwrite_emulator::Config {
        project_id: settings.project_id.clone(),
        api_key: settings.api_key.clone(),
        database_path: Some(settings.data_dir.join("appwrite.sqlite")),
        storage_dir: Some(settings.data_dir.join("appwrite-files")),
        public_url: String::new(),
        // Real Appwrite answers unindexed queries; devstack behaves the same.
        require_indexes: false,
    };
    let emulator = appwrite_emulator::spawn_on(config, emulator_listener).await?;
    progress(&format!(
        "Appwrite emulator listening on {}",
        emulator.endpoint
    ));

    let mut config = Config::new(&emulator.endpoint, &settings.project_id);
    config.api_key = Some(ApiKey::new(settings.api_key.clone()));
    let client = Client::new(config.clone())?;
    wait_until_up(&client).await?;

    let mut step = |line: &str| progress(&format!("bootstrap: {line}"));
    let outcome = g3_store::bootstrap::run(&client, &mut step).await?;
    progress(&if outcome.applied == 0 {
        "bootstrap: schema already up to date".to_owned()
    } else {
        format!("bootstrap: {} change(s) applied", outcome.applied)
    });

    // Discord first: web and the bot are configured from it.
    let (sandbox, plan_roles) = match &settings.discord {
        DiscordMode::Sandbox => {
            let redirect = format!(
                "{}/account/discord/callback",
                public_url.as_str().trim_end_matches('/')
            );
            let channels = DEMO_ROUTES
                .iter()
                .filter_map(|(_, name, _, customer)| {
                    Some(((*name).to_owned(), customer.parse().ok()?))
                })
                .collect();
            let sandbox = sandbox::Sandbox::start(channels, &redirect).await;
            progress(&format!(
                "Discord sandbox (a fake Discord) listening on {}",
                sandbox.fake.base_url()
            ));
            (Some(sandbox), sandbox::Sandbox::plan_roles())
        }
        DiscordMode::Real(real) => (None, real.plan_roles.clone()),
    };

    // One plans file for every service, as production has: written for `ops` too.
    let plans_text = crate::demo_plans_file(&format!("http://{pages_addr}/store"), &plan_roles);
    let plan_config = PlanConfig::from_toml(&plans_text)
        .context("devstack's plans file")?
        .with_roles(plan_roles.clone());
    let plans_file = settings.data_dir.join("plans.toml");
    std::fs::write(&plans_file, &plans_text)
        .with_context(|| format!("writing {}", plans_file.display()))?;
    let plans = plan_config.catalog().clone();
    let access = Access::new(client.clone(), plans.clone()).with_plans(&plan_config);
    seed::accounts(&client, &access, progress).await?;
    if let Some(sandbox) = &sandbox {
        let customer = DEMO_ACCOUNTS
            .iter()
            .find(|a| !a.staff)
            .context("a demo customer")?;
        sandbox::Sandbox::link_demo_customer(&access, customer.id, customer.email, progress)
            .await?;
        let restored = sandbox.restore(&access).await?;
        progress(&format!(
            "Discord sandbox: {restored} linked account(s) in the customer guild"
        ));
        // The fake's channels start empty every time: without its catch-up cursor the bot
        // reconciles at start, which posts again the recent mirrors the last sandbox held.
        bot::state::forget(&client, bot::follow::CURSOR_KEY)
            .await
            .context("forgetting the bot's catch-up cursor")?;
    }

    seed::routes_and_signals(&client, progress).await?;
    let discord_notes = match &settings.discord {
        DiscordMode::Real(real) => {
            let mut notes = real.missing();
            notes.extend(route_notes(&client, &emulator.endpoint, &emulator.api_key).await?);
            notes
        }
        DiscordMode::Sandbox => Vec::new(),
    };

    let webhook_settings = webhook::Settings {
        appwrite: config.clone(),
        sellapp_secret: webhook::Secret::new(DEMO_SELLAPP_SECRET),
        plans: plans.clone(),
        roles: plan_roles.clone(),
        spool_dir: settings.data_dir.join("webhook-spool"),
        sellapp_api: None,
        ingest_secret: Some(webhook::Secret::new(DEMO_INGEST_SECRET)),
        intervals: webhook::Intervals::default(),
        background_jobs: true,
        previous_secrets: Default::default(),
        // Demo only: `/metrics` with `Authorization: Bearer devstack-metrics`.
        http: webhook::HttpSettings {
            metrics: webhook::MetricsAccess::from_token(Some(DEMO_METRICS_TOKEN)),
            // Demo only: the demo collector's fake CDN serves attachments on 127.0.0.1.
            attachment_policy: webhook::ingest::cdn::AttachmentPolicy::default()
                .allowing_local("127.0.0.1", std::net::Ipv4Addr::LOCALHOST.into()),
            ..Default::default()
        },
    };
    let (webhook_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let webhook_task = tokio::spawn(webhook::run(
        webhook_settings,
        webhook_listener,
        async move {
            let _ = stopped.await;
        },
    ));
    progress(&format!(
        "webhook service listening on http://{webhook_addr}"
    ));

    let web_discord = match (&settings.discord, &sandbox) {
        (DiscordMode::Real(real), _) => real.web_settings(),
        (DiscordMode::Sandbox, Some(sandbox)) => Some(sandbox.web_settings()?),
        (DiscordMode::Sandbox, None) => None,
    };
    let web_settings = web::Settings {
        appwrite: config.clone(),
        public_url,
        store_url: url::Url::parse(&format!("http://{pages_addr}/store"))?,
        service_user: Some(web::ServiceUser {
            email: WEB_SERVICE.email.to_owned(),
            password: web::Secret::new(WEB_SERVICE.password),
        }),
        live: web::live::LiveOptions::default(),
        limits: web::Limits::default(),
        trust_proxy: false,
        auth_cache: std::time::Duration::from_secs(2),
        card_cache: web::card::CARD_CACHE_DEFAULT,
        plans: plan_config,
        discord: web_discord,
        // Demo only: the demo store stands in for the store's customer portal, and the sandbox
        // page (which shows the fake customer guild) for the server invite.
        account_links: web::AccountLinks {
            manage_subscription: Some(
                g3_core::entitlements::BuyUrl::parse(&format!(
                    "http://{pages_addr}/store?email={{email}}"
                ))
                .map_err(anyhow::Error::msg)?,
            ),
            discord_invite: match &settings.discord {
                DiscordMode::Sandbox => Some(url::Url::parse(&format!("http://{pages_addr}/"))?),
                DiscordMode::Real(_) => None,
            },
        },
        link_ttl: web::link::STATE_TTL,
        // Demo only: `/metrics` with `Authorization: Bearer devstack-metrics`.
        metrics: web::MetricsAccess::from_token(Some(DEMO_METRICS_TOKEN)),
        timeouts: Default::default(),
    };
    let (web_stop, web_stopped) = tokio::sync::oneshot::channel::<()>();
    let web_task = tokio::spawn(web::run(web_settings, web_listener, async move {
        let _ = web_stopped.await;
    }));
    progress(&format!("web dashboard listening on http://{web_addr}"));

    let store = DemoStore {
        webhook_addr,
        web_url: format!("http://{web_addr}"),
        port: pages_addr.port(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()?,
    };
    let real_lines = match &settings.discord {
        DiscordMode::Real(real) => {
            let mut lines = vec![match real.guild_id {
                Some(g) => format!("customer guild {g}"),
                None => "no customer guild".to_owned(),
            }];
            lines.extend(discord_notes.iter().map(|n| format!("missing: {n}")));
            lines
        }
        DiscordMode::Sandbox => Vec::new(),
    };
    let pages = pages::Pages::start(pages_listener, sandbox.clone(), real_lines, store)?;
    progress(&format!("devstack pages listening on {}", pages.url()));

    let demo = match settings.demo_interval {
        Some(interval) => {
            let channels = DEMO_ROUTES
                .iter()
                .map(|(_, _, c, _)| (*c).to_owned())
                .collect();
            let url = format!("http://{webhook_addr}/ingest/v1/events");
            let demo = demo_collector::start(
                url,
                DEMO_INGEST_SECRET.to_owned(),
                channels,
                interval,
                market.clone(),
            )
            .await?;
            progress(&format!(
                "demo collector posting a signal every {} s",
                interval.as_secs()
            ));
            Some(demo)
        }
        None => None,
    };

    let (discord_token, discord_client, guild_id) = match (&settings.discord, &sandbox) {
        (DiscordMode::Real(real), _) => (real.bot_token.expose().to_owned(), None, real.guild_id),
        (DiscordMode::Sandbox, Some(sandbox)) => (
            sandbox::BOT_TOKEN.to_owned(),
            Some(sandbox.discord_client(Duration::from_secs(10))),
            Some(sandbox::GUILD_ID),
        ),
        (DiscordMode::Sandbox, None) => anyhow::bail!("the sandbox did not start"),
    };
    let config_for_tracker = config.clone();
    let bot_settings = bot::Settings {
        discord_token: bot::Secret::new(discord_token),
        appwrite: config,
        staff_email: BOT_SERVICE.email.to_owned(),
        staff_password: bot::Secret::new(BOT_SERVICE.password),
        order: bot::Order::OldestFirst,
        discord_timeout: Duration::from_secs(10),
        retry: bot::RetryPolicy::default(),
        discord_client,
        reconcile_every: Duration::from_secs(300),
        verify_window: Duration::from_secs(24 * 3600),
        retry_failed_after: Duration::from_secs(30),
        guild_id,
        plan_roles,
        role_timing: Default::default(),
        gateway: Default::default(),
        discord_api_url: None,
        lease: Default::default(),
        health_bind: None,
    };
    let (bot_stop, bot_stopped) = tokio::sync::oneshot::channel::<()>();
    let bot_task = tokio::spawn(bot::run(bot_settings, async move {
        let _ = bot_stopped.await;
    }));
    progress(&match &sandbox {
        Some(s) => format!(
            "bot mirroring into the Discord sandbox and keeping roles in sync in guild {} ({})",
            sandbox::GUILD_ID,
            s.fake.base_url()
        ),
        None => "bot running against real Discord (https://discord.com)".to_owned(),
    });

    let tracker_addr = tracker_listener.local_addr()?;
    let (tracker_stop, tracker_stopped) = tokio::sync::oneshot::channel::<()>();
    let tracker_task = tokio::spawn(tracker::run(
        tracker_settings(&config_for_tracker, &market)?,
        tracker_listener,
        async move {
            let _ = tracker_stopped.await;
        },
    ));
    progress(&format!(
        "tracker following signals on the simulated market (health http://{tracker_addr}/healthz)"
    ));
    Ok(Running {
        emulator,
        client,
        webhook_addr,
        web_addr,
        pages,
        sandbox,
        discord: settings.discord.clone(),
        discord_notes,
        plans_file,
        market,
        tracker_addr,
        trading,
        tracker_stop,
        tracker_task,
        webhook_stop,
        webhook_task,
        web_stop,
        web_task,
        demo,
        bot_stop,
        bot_task,
    })
}

/// Real Discord mode: routes that mirror nowhere, or still into the sandbox's channels, with
/// the `ops` line that points them at a channel of the operator's guild.
pub async fn route_notes(
    client: &Client,
    endpoint: &str,
    api_key: &str,
) -> anyhow::Result<Vec<String>> {
    let routes = Collection::<Route>::new(client)
        .list_all(&[], 100)
        .await
        .context("reading the routes")?;
    let sandbox_channels: Vec<&str> = DEMO_ROUTES.iter().map(|(_, _, _, c)| *c).collect();
    let mut notes = Vec::new();
    for route in routes {
        let r = &route.data;
        if r.enabled == Some(false) {
            continue;
        }
        let stale: Vec<&str> = r
            .customer_channel_ids
            .iter()
            .map(String::as_str)
            .filter(|c| sandbox_channels.contains(c))
            .collect();
        let problem = if r.customer_channel_ids.is_empty() {
            "mirrors into no channel".to_owned()
        } else if !stale.is_empty() {
            format!(
                "still mirrors into the sandbox's channel {} (not in your guild)",
                stale.join(", ")
            )
        } else {
            continue;
        };
        let guild = r
            .source_guild_id
            .as_deref()
            .map(|g| format!(" --guild {g}"))
            .unwrap_or_default();
        notes.push(format!(
            "route {} {problem}: APPWRITE_ENDPOINT={endpoint} APPWRITE_API_KEY={api_key} cargo run -p ops -- routes add --key {} --channel {}{guild} --name '{}' --customer-channel <channel id in your guild>",
            route.id, route.id, r.source_channel_id, r.name
        ));
    }
    Ok(notes)
}

/// The tracker as devstack runs it: signed in as [`TRACKER_SERVICE`], following every signal
/// on the simulated market for the production time limit, writing progress (last price) every
/// 10 s so cards move.
fn tracker_settings(appwrite: &Config, market: &Market) -> anyhow::Result<tracker::Settings> {
    Ok(tracker::Settings {
        appwrite: appwrite.clone(),
        staff_email: TRACKER_SERVICE.email.to_owned(),
        staff_password: tracker::Secret::new(TRACKER_SERVICE.password),
        venues: vec![market::VENUE],
        endpoints: market.endpoints()?,
        feed_backoff: g3_market::Backoff {
            first: Duration::from_millis(500),
            max: Duration::from_secs(5),
        },
        listings_ttl: Duration::from_secs(3600),
        rules: g3_outcomes::Rules::default(),
        bar_grace: time::Duration::seconds(1),
        tick_every: Duration::from_millis(250),
        progress_every: Duration::from_secs(10),
        lease: tracker::LeaseSettings {
            name: "tracker".to_owned(),
            holder: tracker::default_holder(Some("devstack")),
            timing: g3_store::lease::Timing::default(),
        },
        // Demo only: `/metrics` with `Authorization: Bearer devstack-metrics`.
        metrics: tracker::MetricsAccess::from_token(Some(DEMO_METRICS_TOKEN)),
        clock: tracker::Clock::system(),
        stats: Arc::new(tracker::Stats::default()),
    })
}

async fn wait_until_up(client: &Client) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match client.ping().await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(e).context("the Appwrite emulator did not answer within 10 s");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
