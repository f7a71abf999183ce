//! `webhook`: the Sell.app webhook receiver. Settings come from the environment (`.env.example`).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::Parser;
use g3_appwrite::{ApiKey, Config};
use g3_core::plans::{PlanCatalog, PlanRoles};
use webhook::{Intervals, Secret, Settings, reconcile::SellappApi};

/// Receives Sell.app webhooks and grants or revokes access in Appwrite.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[arg(long, env = "WEBHOOK_BIND", default_value = "127.0.0.1:8091")]
    bind: SocketAddr,
    #[arg(long, env = "APPWRITE_ENDPOINT")]
    appwrite_endpoint: String,
    #[arg(long, env = "APPWRITE_PROJECT_ID")]
    appwrite_project: String,
    #[arg(long, env = "APPWRITE_API_KEY", hide_env_values = true)]
    appwrite_key: String,
    /// The store's webhook secret from Sell.app.
    #[arg(long, env = "SELLAPP_WEBHOOK_SECRET", hide_env_values = true)]
    sellapp_secret: String,
    /// Product and variant ids to plans: `PRODUCT[:VARIANT]=PLAN,...`.
    #[arg(long, env = "SELLAPP_PLANS")]
    sellapp_plans: String,
    /// Discord roles per plan: `PLAN=ROLE_ID[|ROLE_ID],...` (empty: no role state is kept).
    #[arg(long, env = "PLAN_ROLES", default_value = "")]
    plan_roles: String,
    /// Where failures are kept while Appwrite is unreachable.
    #[arg(long, env = "WEBHOOK_SPOOL_DIR", default_value = "./spool")]
    spool_dir: PathBuf,
    /// Secret of the collector's signed ingest requests (`whsec_...` or any string); ingest is
    /// off without it.
    #[arg(long, env = "INGEST_SECRET", hide_env_values = true)]
    ingest_secret: Option<String>,
    /// Sell.app API base URL for refund reconciliation.
    #[arg(long, env = "SELLAPP_API_URL", default_value = "https://sell.app/api")]
    sellapp_api_url: String,
    /// Sell.app API key; without it refund reconciliation is off.
    #[arg(long, env = "SELLAPP_API_KEY", hide_env_values = true)]
    sellapp_api_key: Option<String>,
    /// Seconds between refund reconciliation passes.
    #[arg(long, env = "RECONCILE_INTERVAL_SECS", default_value_t = 900)]
    reconcile_interval_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    anyhow::ensure!(
        !args.sellapp_secret.trim().is_empty(),
        "SELLAPP_WEBHOOK_SECRET is empty"
    );
    let plans = PlanCatalog::parse(&args.sellapp_plans).context("SELLAPP_PLANS")?;
    anyhow::ensure!(
        !plans.is_empty(),
        "SELLAPP_PLANS maps no product to a plan: nothing could ever be granted"
    );
    let sellapp_api = match args.sellapp_api_key.filter(|k| !k.is_empty()) {
        Some(key) => Some(SellappApi::new(&args.sellapp_api_url, &key)?),
        None => {
            tracing::warn!("SELLAPP_API_KEY is not set: refund reconciliation is off");
            None
        }
    };
    let mut appwrite = Config::new(args.appwrite_endpoint, args.appwrite_project);
    appwrite.api_key = Some(ApiKey::new(args.appwrite_key));
    let settings = Settings {
        appwrite,
        sellapp_secret: Secret::new(args.sellapp_secret),
        plans,
        roles: PlanRoles::parse(&args.plan_roles).context("PLAN_ROLES")?,
        spool_dir: args.spool_dir,
        sellapp_api,
        ingest_secret: args
            .ingest_secret
            .filter(|s| !s.trim().is_empty())
            .map(Secret::new),
        intervals: Intervals {
            reconcile: Duration::from_secs(args.reconcile_interval_secs.max(60)),
            ..Intervals::default()
        },
        background_jobs: true,
    };
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("listening on {}", args.bind))?;
    webhook::run(settings, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
