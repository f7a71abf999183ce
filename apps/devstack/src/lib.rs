//! devstack: the whole stack in one process on this machine. Starts the Appwrite emulator on a
//! file under the data directory, bootstraps the schema, seeds demo accounts, starts the
//! services (so far: the Sell.app webhook receiver) and tells the user where everything is.
//! Later services (web, bot) join here as they land.

use std::{future::Future, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use g3_access::{Access, Cause};
use g3_appwrite::{ApiKey, Client, Config, Upserted};
use g3_core::{
    Email,
    plans::{Plan, PlanCatalog},
    signing,
};
use g3_store::schema::TEAM_STAFF;
use serde_json::json;

/// The Sell.app products devstack pretends to sell.
pub const DEMO_PLANS: &str = "3301:9001=vip,3301=basic";
/// The webhook secret devstack's demo purchase is signed with.
pub const DEMO_SELLAPP_SECRET: &str = "devstack-sellapp-secret";

/// Everything devstack needs; `main` fills it from flags and the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where the emulator keeps its database and files, and the webhook its spool.
    pub data_dir: PathBuf,
    /// Address of the Appwrite emulator (`127.0.0.1:0` picks a free port).
    pub emulator_addr: SocketAddr,
    /// Address of the Sell.app webhook receiver.
    pub webhook_addr: SocketAddr,
    pub project_id: String,
    pub api_key: String,
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

/// A signed demo purchase: what the printed `curl` line sends.
pub struct DemoPurchase {
    pub url: String,
    pub signature: String,
    pub body: String,
}

impl DemoPurchase {
    pub fn new(webhook_addr: SocketAddr) -> Self {
        let body = json!({
            "event": "order.completed",
            "store": 1,
            "data": {
                "id": 424242,
                "status": "COMPLETED",
                "customer": { "email": "buyer@g3.local" },
                "line_items": [{ "id": 1, "product_id": 3301, "product_variant_id": 9001, "quantity": 1 }]
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
    webhook_stop: tokio::sync::oneshot::Sender<()>,
    webhook_task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub fn banner(&self, data_dir: &std::path::Path) -> String {
        let base = format!("http://{}", self.emulator.addr);
        let mut out = String::new();
        out.push_str("\nG3netic Signals devstack is running\n\n");
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
            "                      metrics http://{}/metrics\n",
            self.webhook_addr
        ));
        out.push_str("\n  Demo accounts (email / password):\n");
        for a in DEMO_ACCOUNTS {
            let role = if a.staff { "staff" } else { "customer" };
            out.push_str(&format!("    {role:<9} {} / {}\n", a.email, a.password));
        }
        out.push_str("\n  Send a signed demo purchase (buyer@g3.local gets plan vip):\n    ");
        out.push_str(&DemoPurchase::new(self.webhook_addr).curl());
        out.push_str(&format!(
            "\n\n  Look the buyer up:\n    APPWRITE_ENDPOINT={} APPWRITE_API_KEY={} cargo run -p ops -- lookup --email buyer@g3.local\n",
            self.emulator.endpoint, self.emulator.api_key
        ));
        out.push_str(&format!(
            "\n  Data is kept in {} (delete it to start fresh).\n\nPress Ctrl-C to stop.\n",
            data_dir.display()
        ));
        out
    }

    /// Stops every service, then the emulator.
    pub async fn stop(self) -> anyhow::Result<()> {
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

    let plans = PlanCatalog::parse(DEMO_PLANS)?;
    seed(
        &client,
        &Access::new(client.clone(), plans.clone()),
        progress,
    )
    .await?;

    let webhook_addr = webhook_listener.local_addr()?;
    let webhook_settings = webhook::Settings {
        appwrite: config,
        sellapp_secret: webhook::Secret::new(DEMO_SELLAPP_SECRET),
        plans,
        roles: Default::default(),
        spool_dir: settings.data_dir.join("webhook-spool"),
        sellapp_api: None,
        ingest_secret: None,
        intervals: webhook::Intervals::default(),
        background_jobs: true,
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
    Ok(Running {
        emulator,
        client,
        webhook_addr,
        webhook_stop,
        webhook_task,
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

/// Creates the demo accounts if absent: staff join team `staff`, customers get their plan the
/// way an admin grant gives it (subscription, `paid` team, audit). Idempotent.
async fn seed(
    client: &Client,
    access: &Access,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let users = client.users();
    for account in DEMO_ACCOUNTS {
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
