//! devstack: the whole stack in one process on this machine. Starts the Appwrite emulator on a
//! file under the data directory, bootstraps the schema, seeds demo accounts and signals, starts
//! the services (the Sell.app webhook receiver, the web dashboard, and the bot) and tells the
//! user where everything is.
//!
//! Discord is the sandbox by default ([`sandbox`]: a fake Discord in this process where the bot
//! mirrors, keeps paid roles in sync and web links accounts), or real Discord when
//! `DISCORD_BOT_TOKEN` is set ([`discord`]). devstack's own pages ([`pages`]) show the sandbox
//! and hold the demo store ([`store`]) the paywall leads to.

pub mod demo_collector;
pub mod discord;
pub mod pages;
pub mod sandbox;
pub mod store;

use std::{future::Future, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use g3_access::{Access, Cause};
use g3_appwrite::{ApiKey, Client, Config, Upserted};
use g3_core::{
    Email,
    plans::{Plan, PlanCatalog},
    signing,
};
use g3_store::{
    models::Route,
    schema::{DATABASE_ID, TEAM_STAFF},
};
use serde_json::{Value, json};

pub use discord::DiscordMode;

/// The Sell.app products devstack pretends to sell.
pub const DEMO_PLANS: &str = "3301:9001=vip,3301=basic";
/// The webhook secret devstack's demo purchase is signed with.
pub const DEMO_SELLAPP_SECRET: &str = "devstack-sellapp-secret";
/// The bearer token web and webhook ask for on `/metrics` in devstack.
pub const DEMO_METRICS_TOKEN: &str = "devstack-metrics";
/// The ingest secret the demo collector (and a real collector pointed at devstack) signs with.
pub const DEMO_INGEST_SECRET: &str = "whsec_ZGV2c3RhY2staW5nZXN0LXNlY3JldA==";

/// Everything devstack needs; `main` fills it from flags and the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where the emulator keeps its database and files, and the webhook its spool.
    pub data_dir: PathBuf,
    /// Address of the Appwrite emulator (`127.0.0.1:0` picks a free port).
    pub emulator_addr: SocketAddr,
    /// Address of the Sell.app webhook receiver.
    pub webhook_addr: SocketAddr,
    /// Address of the web dashboard.
    pub web_addr: SocketAddr,
    /// Address of devstack's pages: the Discord sandbox and the demo store.
    pub sandbox_addr: SocketAddr,
    pub project_id: String,
    pub api_key: String,
    /// How often the demo collector posts a signal through ingest; `None` turns it off.
    pub demo_interval: Option<Duration>,
    /// The sandbox, or real Discord ([`DiscordMode::from_env`]).
    pub discord: DiscordMode,
}

/// A demo account devstack creates and prints.
#[derive(Clone, Debug)]
pub struct DemoAccount {
    pub id: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub name: &'static str,
    pub labels: &'static [&'static str],
    /// Staff accounts join team `staff`; others get this plan like a buyer would.
    pub staff: bool,
    pub plan: Option<&'static str>,
}

/// The staff member (admin) and the paying customer every devstack has.
pub const DEMO_ACCOUNTS: &[DemoAccount] = &[
    DemoAccount {
        id: "demo-staff",
        email: "staff@g3.local",
        password: "staff-demo-password",
        name: "Demo Staff",
        labels: &["admin"],
        staff: true,
        plan: None,
    },
    DemoAccount {
        id: "demo-customer",
        email: "customer@g3.local",
        password: "customer-demo-password",
        name: "Demo Customer",
        labels: &[],
        staff: false,
        plan: Some("vip"),
    },
];

/// The `staff` service user web signs in as for its Realtime subscription (Realtime takes no
/// API keys). Not a person: printed apart from the demo accounts.
pub const WEB_SERVICE: DemoAccount = DemoAccount {
    id: "web-service",
    email: "web-service@g3.local",
    password: "devstack-web-service-password",
    name: "Web live feed",
    labels: &["service"],
    staff: true,
    plan: None,
};

/// The `staff` service user the bot signs in as for its Realtime subscription.
pub const BOT_SERVICE: DemoAccount = DemoAccount {
    id: "bot-service",
    email: "bot-service@g3.local",
    password: "devstack-bot-service-password",
    name: "Mirroring bot",
    labels: &["service"],
    staff: true,
    plan: None,
};

/// A signed demo purchase: what the printed `curl` line and the demo store send.
pub struct DemoPurchase {
    pub url: String,
    pub signature: String,
    pub body: String,
}

impl DemoPurchase {
    /// The banner's purchase: plan vip for buyer@g3.local, order 424242.
    pub fn new(webhook_addr: SocketAddr) -> Self {
        Self::order(webhook_addr, "buyer@g3.local", 424242, "vip")
    }

    /// An `order.completed` for `email` buying `plan` (`vip` or `basic`, see [`DEMO_PLANS`]).
    pub fn order(webhook_addr: SocketAddr, email: &str, order_id: u64, plan: &str) -> Self {
        let variant = match plan {
            "vip" => json!(9001),
            _ => Value::Null,
        };
        let body = json!({
            "event": "order.completed",
            "store": 1,
            "data": {
                "id": order_id,
                "status": "COMPLETED",
                "customer": { "email": email },
                "line_items": [{ "id": 1, "product_id": 3301, "product_variant_id": variant, "quantity": 1 }]
            }
        })
        .to_string();
        Self {
            url: format!("http://{webhook_addr}/webhooks/sellapp"),
            signature: signing::sellapp_signature(DEMO_SELLAPP_SECRET, body.as_bytes()),
            body,
        }
    }

    pub fn curl(&self) -> String {
        format!(
            "curl -sS -X POST {} -H 'content-type: application/json' -H 'signature: {}' --data '{}'",
            self.url, self.signature, self.body
        )
    }
}

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
    webhook_stop: tokio::sync::oneshot::Sender<()>,
    webhook_task: tokio::task::JoinHandle<anyhow::Result<()>>,
    web_stop: tokio::sync::oneshot::Sender<()>,
    web_task: tokio::task::JoinHandle<anyhow::Result<()>>,
    demo: Option<demo_collector::DemoCollector>,
    bot_stop: tokio::sync::oneshot::Sender<()>,
    bot_task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub fn banner(&self, data_dir: &std::path::Path) -> String {
        let base = format!("http://{}", self.emulator.addr);
        let web = self.web_url();
        let mut out = String::new();
        out.push_str("\nG3netic Signals devstack is running\n\n");
        out.push_str(&format!(
            "  Web dashboard       {web}  (sign in as the demo customer for the feed; a new sign-up sees the paywall)\n"
        ));
        out.push_str(&format!(
            "                      admin console {web}/admin (demo staff); metrics {web}/metrics \
             (header `Authorization: Bearer {DEMO_METRICS_TOKEN}`)\n"
        ));
        out.push_str(&format!(
            "  Appwrite emulator   {}  (project {}, API key {})\n",
            self.emulator.endpoint, self.emulator.project_id, self.emulator.api_key
        ));
        out.push_str(&format!(
            "  Mailbox             {base}/mailbox  (verification links and sign-in codes)\n"
        ));
        out.push_str(&format!(
            "  Sell.app webhook    http://{}/webhooks/sellapp  (secret {DEMO_SELLAPP_SECRET}, plans {DEMO_PLANS})\n",
            self.webhook_addr
        ));
        out.push_str(&format!(
            "                      metrics http://{}/metrics (same bearer token)\n",
            self.webhook_addr
        ));
        out.push_str(&format!(
            "  Collector ingest    http://{}/ingest/v1/events  (secret {DEMO_INGEST_SECRET}, guild {}, channels {})\n",
            self.webhook_addr,
            demo_collector::DEMO_GUILD,
            DEMO_ROUTES.iter().map(|(_, _, c, _)| *c).collect::<Vec<_>>().join(", ")
        ));
        out.push_str(&format!(
            "  Demo store          {}  (where the paywall's \"Buy a plan\" leads: a signed Sell.app order for any email)\n",
            self.pages.store_url()
        ));
        match (&self.discord, &self.sandbox) {
            (DiscordMode::Real(real), _) => {
                out.push_str(
                    "  Discord             REAL Discord (DISCORD_BOT_TOKEN is set): the bot posts into each route's customer channels\n",
                );
                if let Some(guild) = real.guild_id {
                    out.push_str(&format!("                      customer guild {guild}"));
                    if real.plan_roles.is_empty() {
                        out.push('\n');
                    } else {
                        out.push_str(&format!(
                            "; role sync for PLAN_ROLES {}\n",
                            real.plan_roles_spec
                        ));
                    }
                    out.push_str(
                        "                      (the bot needs Manage Roles with its role above the managed ones, and the Server Members intent: Developer Portal > Bot)\n",
                    );
                }
                if real.oauth.is_some() {
                    out.push_str(&format!(
                        "                      \"Link Discord\" is on: add {web}/account/discord/callback as a redirect (Developer Portal > OAuth2)\n"
                    ));
                }
                for note in &self.discord_notes {
                    out.push_str(&format!("                      missing: {note}\n"));
                }
                out.push_str(&format!(
                    "                      {}  (says the same)\n",
                    self.pages.url()
                ));
            }
            (DiscordMode::Sandbox, Some(sandbox)) => {
                out.push_str(
                    "  Discord             sandbox: a fake Discord in this process (set DISCORD_BOT_TOKEN for real Discord)\n",
                );
                out.push_str(&format!(
                    "  Discord sandbox     {}  (the bot's mirrors per customer channel; the customer guild's members and roles)\n",
                    self.pages.url()
                ));
                out.push_str(&format!(
                    "                      OAuth2 app {}: \"Link Discord\" authorizes at {}/oauth2/authorize as any username\n",
                    sandbox.oauth.client_id,
                    sandbox.fake.base_url()
                ));
                out.push_str(&format!(
                    "                      guild {}, PLAN_ROLES {} (VIP for plan vip, Basic for plan basic)\n",
                    sandbox::GUILD_ID,
                    sandbox::PLAN_ROLES
                ));
            }
            (DiscordMode::Sandbox, None) => {}
        }
        out.push_str("\n  Demo accounts (email / password):\n");
        for a in DEMO_ACCOUNTS {
            let role = if a.staff { "staff" } else { "customer" };
            out.push_str(&format!("    {role:<9} {} / {}", a.email, a.password));
            if a.staff {
                out.push_str(&format!("  (admin console {web}/admin)"));
            } else if self.sandbox.is_some() {
                out.push_str(&format!(
                    "  (linked to sandbox Discord account {}, holds VIP)",
                    sandbox::DEMO_DISCORD_USERNAME
                ));
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "    service   {} / {}  (web's Realtime subscription)\n",
            WEB_SERVICE.email, WEB_SERVICE.password
        ));
        out.push_str(&format!(
            "    service   {} / {}  (the bot's Realtime subscription)\n",
            BOT_SERVICE.email, BOT_SERVICE.password
        ));
        out.push_str("\n  Try it as a new customer:\n");
        out.push_str(&format!(
            "    1. Sign up at {web}/signup and enter the code the mailbox shows ({base}/mailbox).\n"
        ));
        out.push_str(&format!(
            "    2. Press \"Buy a plan\" on the paywall, or buy in the demo store ({}) with the same email.\n",
            self.pages.store_url()
        ));
        if self.sandbox.is_some() {
            out.push_str(&format!(
                "    3. On {web}/account press \"Link Discord\" and authorize on the sandbox's page as any username.\n"
            ));
            out.push_str(&format!(
                "    4. Watch {}: your account joins the customer guild and gets the VIP role within seconds.\n",
                self.pages.url()
            ));
        } else {
            out.push_str(&format!(
                "    3. On {web}/account press \"Link Discord\" and authorize on Discord (needs DISCORD_CLIENT_ID/SECRET).\n"
            ));
            out.push_str(
                "    4. Watch your guild: the account joins and gets the plan's roles (needs DISCORD_GUILD_ID and PLAN_ROLES).\n",
            );
        }
        out.push_str(&format!(
            "    5. Sign in as {} at {web}/admin: find your email, revoke the plan, and watch the role go;\n",
            DEMO_ACCOUNTS[0].email
        ));
        out.push_str(&format!(
            "       {web}/admin/failures lists failed deliveries and role syncs, each with a retry button.\n"
        ));
        out.push_str("\n  Send a signed demo purchase (buyer@g3.local gets plan vip):\n    ");
        out.push_str(&DemoPurchase::new(self.webhook_addr).curl());
        let ops_env = format!(
            "APPWRITE_ENDPOINT={} APPWRITE_API_KEY={} SELLAPP_PLANS='{DEMO_PLANS}' PLAN_ROLES='{}'",
            self.emulator.endpoint,
            self.emulator.api_key,
            self.plan_roles_spec()
        );
        out.push_str(&format!(
            "\n\n  Look a customer up, or revoke their plan (the bot takes the role back):\n    \
             {ops_env} cargo run -p ops -- lookup --email buyer@g3.local\n    \
             {ops_env} cargo run -p ops -- revoke --email buyer@g3.local --reason 'trying devstack'\n"
        ));
        out.push_str(&format!(
            "\n  Data is kept in {} (delete it to start fresh).\n\nPress Ctrl-C to stop.\n",
            data_dir.display()
        ));
        out
    }

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

    /// Stops every service, then the emulator.
    pub async fn stop(self) -> anyhow::Result<()> {
        if let Some(demo) = self.demo {
            demo.stop().await;
        }
        let _ = self.bot_stop.send(());
        self.bot_task.await.context("bot task panicked")??;
        self.pages.stop().await;
        let _ = self.web_stop.send(());
        self.web_task.await.context("web task panicked")??;
        let _ = self.webhook_stop.send(());
        self.webhook_task.await.context("webhook task panicked")??;
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

    let plans = PlanCatalog::parse(DEMO_PLANS)?;
    let access = Access::new(client.clone(), plans.clone()).with_roles(plan_roles.clone());
    seed(&client, &access, progress).await?;
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
        client
            .documents(DATABASE_ID, bot::state::COLLECTION)
            .delete_if_exists(bot::follow::CURSOR_KEY)
            .await
            .context("forgetting the bot's catch-up cursor")?;
    }

    seed_signals(&client, progress).await?;
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
        plans,
        discord: web_discord,
        plan_roles: plan_roles.clone(),
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

    let store = store::Store {
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
            let demo =
                demo_collector::start(url, DEMO_INGEST_SECRET.to_owned(), channels, interval)
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
    Ok(Running {
        emulator,
        client,
        webhook_addr,
        web_addr,
        pages,
        sandbox,
        discord: settings.discord.clone(),
        discord_notes,
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
    let routes = client
        .documents(DATABASE_ID, "routes")
        .list_all::<Route>(&[], 100)
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

/// Creates the demo accounts if absent: staff join team `staff`, customers get their plan the
/// way an admin grant gives it (subscription, `paid` team, audit). Idempotent.
async fn seed(
    client: &Client,
    access: &Access,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let users = client.users();
    for account in DEMO_ACCOUNTS.iter().chain([&WEB_SERVICE, &BOT_SERVICE]) {
        let created = match users
            .create(
                account.id,
                account.email,
                Some(account.password),
                Some(account.name),
            )
            .await
        {
            Ok(_) => true,
            Err(e) if e.is_conflict() => false,
            Err(e) => {
                return Err(e).with_context(|| format!("creating demo user {}", account.email));
            }
        };
        if !created {
            continue;
        }
        users.update_email_verification(account.id, true).await?;
        if !account.labels.is_empty() {
            users.update_labels(account.id, account.labels).await?;
        }
        if account.staff
            && let Upserted::Created(_) = client
                .teams()
                .add_member_if_absent(TEAM_STAFF, account.id, &["admin"])
                .await?
        {
            progress(&format!("seed: {} joined team {TEAM_STAFF}", account.email));
        }
        if let Some(plan) = account.plan {
            let cause = Cause::Admin {
                actor: "devstack".into(),
                reason: "demo customer".into(),
            };
            access
                .grant(
                    &Email::parse(account.email)?,
                    &Plan::parse(plan)?,
                    None,
                    &cause,
                )
                .await?;
            progress(&format!("seed: {} has plan {plan}", account.email));
        }
        progress(&format!("seed: created {}", account.email));
    }
    Ok(())
}

/// The demo routes: key, display name, source channel, customer channel (in the sandbox).
const DEMO_ROUTES: &[(&str, &str, &str, &str)] = &[
    (
        "vip-calls",
        "VIP Calls",
        "1100000000000000001",
        "1300000000000000001",
    ),
    (
        "scalps",
        "Scalps",
        "1100000000000000002",
        "1300000000000000002",
    ),
];

/// A parsed trade: pair, side, entries, targets, stop, leverage.
type Trade = (
    &'static str,
    &'static str,
    &'static [f64],
    &'static [f64],
    f64,
    f64,
);

/// One demo signal: id (a message snowflake), route, hours ago, author, text, parsed trade.
struct DemoSignal {
    id: &'static str,
    route: &'static str,
    hours_ago: i64,
    author: &'static str,
    content: &'static str,
    trade: Option<Trade>,
    edited: bool,
    deleted: bool,
}

const DEMO_SIGNALS: &[DemoSignal] = &[
    DemoSignal {
        id: "1300000000000000010",
        route: "vip-calls",
        hours_ago: 1,
        author: "Nova",
        content: "**BTCUSDT LONG**\nEntry 64200 - 63800\nTP 65000 / 66500 / 68000\nSL 62900\nLev 10x",
        trade: Some((
            "BTCUSDT",
            "long",
            &[64200.0, 63800.0],
            &[65000.0, 66500.0, 68000.0],
            62900.0,
            10.0,
        )),
        edited: false,
        deleted: false,
    },
    DemoSignal {
        id: "1300000000000000009",
        route: "scalps",
        hours_ago: 3,
        author: "Kite",
        content: "ETHUSDT short scalp\nEntry 3180\nTargets 3140, 3110\nStop 3215\n20x",
        trade: Some((
            "ETHUSDT",
            "short",
            &[3180.0],
            &[3140.0, 3110.0],
            3215.0,
            20.0,
        )),
        edited: false,
        deleted: false,
    },
    DemoSignal {
        id: "1300000000000000008",
        route: "vip-calls",
        hours_ago: 6,
        author: "Nova",
        content: "SOLUSDT LONG\nEntry 142.5 - 139\nTP 148 / 155\nSL 134 (moved to entry after TP1)\nLev 5x",
        trade: Some((
            "SOLUSDT",
            "long",
            &[142.5, 139.0],
            &[148.0, 155.0],
            134.0,
            5.0,
        )),
        edited: true,
        deleted: false,
    },
    DemoSignal {
        id: "1300000000000000007",
        route: "vip-calls",
        hours_ago: 9,
        author: "Atlas",
        content: "Market update: funding is flipping negative on majors, expect chop until the US open. No new positions from me today, manage the open ones.",
        trade: None,
        edited: false,
        deleted: false,
    },
    DemoSignal {
        id: "1300000000000000006",
        route: "scalps",
        hours_ago: 14,
        author: "Kite",
        content: "DOGEUSDT long\nEntry 0.1625\nTP 0.168 / 0.172\nSL 0.158\n15x",
        trade: Some(("DOGEUSDT", "long", &[0.1625], &[0.168, 0.172], 0.158, 15.0)),
        edited: false,
        deleted: false,
    },
    DemoSignal {
        id: "1300000000000000005",
        route: "vip-calls",
        hours_ago: 20,
        author: "Atlas",
        content: "LINKUSDT SHORT\nEntry 18.40 - 18.75\nTP 17.60 / 16.90\nSL 19.30\nLev 8x",
        trade: Some((
            "LINKUSDT",
            "short",
            &[18.4, 18.75],
            &[17.6, 16.9],
            19.3,
            8.0,
        )),
        edited: false,
        deleted: false,
    },
    DemoSignal {
        id: "1300000000000000004",
        route: "scalps",
        hours_ago: 26,
        author: "Kite",
        content: "XRPUSDT long, quick one\nEntry 0.615\nTP 0.628\nSL 0.604\n25x",
        trade: Some(("XRPUSDT", "long", &[0.615], &[0.628], 0.604, 25.0)),
        edited: false,
        deleted: true,
    },
    DemoSignal {
        id: "1300000000000000003",
        route: "vip-calls",
        hours_ago: 31,
        author: "Nova",
        content: "AVAXUSDT LONG\nEntry 36.2\nTP 38 / 40 / 43\nSL 34.6\nLev 6x",
        trade: Some(("AVAXUSDT", "long", &[36.2], &[38.0, 40.0, 43.0], 34.6, 6.0)),
        edited: false,
        deleted: false,
    },
    DemoSignal {
        id: "1300000000000000002",
        route: "vip-calls",
        hours_ago: 40,
        author: "Atlas",
        content: "BNBUSDT SHORT\nEntry 598 - 604\nTP 585 / 570\nSL 612\nLev 10x",
        trade: Some((
            "BNBUSDT",
            "short",
            &[598.0, 604.0],
            &[585.0, 570.0],
            612.0,
            10.0,
        )),
        edited: false,
        deleted: false,
    },
    DemoSignal {
        id: "1300000000000000001",
        route: "scalps",
        hours_ago: 47,
        author: "Kite",
        content: "ARBUSDT long\nEntry 1.08\nTP 1.12 / 1.15\nSL 1.05\n10x\n_Small size, news at 14:00 UTC._",
        trade: Some(("ARBUSDT", "long", &[1.08], &[1.12, 1.15], 1.05, 10.0)),
        edited: false,
        deleted: false,
    },
];

/// Seeds the demo routes and signals if absent, so the demo customer sees a working feed.
/// Times are relative to the first start; later starts change nothing.
async fn seed_signals(client: &Client, progress: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
    let routes = client.documents(DATABASE_ID, "routes");
    for (key, name, channel, customer) in DEMO_ROUTES {
        let route = json!({
            "source_channel_id": channel,
            "source_guild_id": "1000000000000000001",
            "name": name,
            "customer_channel_ids": [customer],
            "enabled": true,
        });
        if let Upserted::Created(_) = routes
            .create_if_absent::<Value>(key, &route, None)
            .await
            .with_context(|| format!("seeding route {key}"))?
        {
            progress(&format!("seed: route {key}"));
        } else {
            // Routes seeded before the sandbox existed name no customer channel: give them one.
            let existing = routes.get::<Value>(key).await?;
            let empty = existing.data["customer_channel_ids"]
                .as_array()
                .is_none_or(|a| a.is_empty());
            if empty {
                routes.upsert::<Value>(key, &route, None).await?;
                progress(&format!(
                    "seed: route {key} mirrors into channel {customer}"
                ));
            }
        }
    }
    let signals = client.documents(DATABASE_ID, "signals");
    let now = time::OffsetDateTime::now_utc();
    let mut created = 0;
    for s in DEMO_SIGNALS {
        let posted = now - time::Duration::hours(s.hours_ago);
        let channel = DEMO_ROUTES
            .iter()
            .find(|(k, _, _, _)| *k == s.route)
            .map_or("0", |(_, _, c, _)| *c);
        let mut doc = json!({
            "source_guild_id": "1000000000000000001",
            "source_channel_id": channel,
            "source_message_id": s.id,
            "route_key": s.route,
            "author_id": "1200000000000000001",
            "author_name": s.author,
            "content": s.content,
            "revision": if s.edited { 2 } else { 1 },
            "status": if s.deleted { "deleted" } else { "live" },
            "posted_at": g3_appwrite::format_datetime(posted),
        });
        if let Some((pair, side, entries, targets, stop, leverage)) = s.trade {
            doc["pair"] = json!(pair);
            doc["side"] = json!(side);
            doc["entries"] = json!(entries);
            doc["targets"] = json!(targets);
            doc["stop"] = json!(stop);
            doc["leverage"] = json!(leverage);
        }
        if s.edited {
            doc["edited_at"] = json!(g3_appwrite::format_datetime(
                posted + time::Duration::minutes(25)
            ));
        }
        if s.deleted {
            doc["deleted_at"] = json!(g3_appwrite::format_datetime(
                posted + time::Duration::hours(2)
            ));
        }
        if let Upserted::Created(_) = signals
            .create_if_absent::<Value>(s.id, &doc, None)
            .await
            .with_context(|| format!("seeding signal {}", s.id))?
        {
            created += 1;
        }
    }
    if created > 0 {
        progress(&format!("seed: {created} demo signals"));
    }
    Ok(())
}

/// Runs until `shutdown` resolves, then stops everything cleanly.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()>,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let running = start(&settings, progress).await?;
    progress(&running.banner(&settings.data_dir));
    shutdown.await;
    progress("stopping");
    running.stop().await?;
    progress("stopped cleanly");
    Ok(())
}
