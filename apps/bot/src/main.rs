//! `bot`: mirrors signals into the customer guild. Settings come from the environment.

use std::time::Duration;

use anyhow::Context as _;
use bot::{
    Order, RetryPolicy, Secret, Settings,
    collect::{self, CollectorSettings},
    gateway::{GatewayMode, GatewaySettings},
    roles,
};
use g3_appwrite::{ApiKey, Config};
use g3_core::plans::PlanRoles;

fn env(name: &str) -> anyhow::Result<String> {
    let value = std::env::var(name).with_context(|| format!("{name} is not set"))?;
    anyhow::ensure!(!value.trim().is_empty(), "{name} is empty");
    Ok(value)
}

/// An optional variable: `None` when unset or blank.
fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `BOT_GATEWAY` and the `COLLECTOR_*` variables.
fn gateway_settings() -> anyhow::Result<GatewaySettings> {
    let mode = match optional("BOT_GATEWAY") {
        Some(m) => m
            .parse::<GatewayMode>()
            .map_err(|e| anyhow::anyhow!("BOT_GATEWAY: {e}"))?,
        None => GatewayMode::Auto,
    };
    let collector = match optional("COLLECTOR_SOURCE_GUILD_ID") {
        None => {
            for name in [
                "COLLECTOR_INGEST_URL",
                "COLLECTOR_INGEST_SECRET",
                "COLLECTOR_CHANNEL_IDS",
            ] {
                anyhow::ensure!(
                    optional(name).is_none(),
                    "{name} is set but COLLECTOR_SOURCE_GUILD_ID is not: set the source guild to collect, or unset {name}"
                );
            }
            None
        }
        Some(guild) => {
            let guild = collect::parse_snowflake(&guild)
                .map_err(|e| anyhow::anyhow!("COLLECTOR_SOURCE_GUILD_ID: {e}"))?;
            let channels =
                collect::parse_channel_ids(&optional("COLLECTOR_CHANNEL_IDS").unwrap_or_default())
                    .map_err(|e| anyhow::anyhow!("COLLECTOR_CHANNEL_IDS: {e}"))?;
            let url = env("COLLECTOR_INGEST_URL")
                .context("the collector needs ingest's URL (…/ingest/v1/events)")?;
            collect::check_ingest_url(&url)
                .map_err(|e| anyhow::anyhow!("COLLECTOR_INGEST_URL: {e}"))?;
            let secret = env("COLLECTOR_INGEST_SECRET").context(
                "the collector needs ingest's secret (the webhook service's INGEST_SECRET)",
            )?;
            let mut c =
                CollectorSettings::new(guild, channels, url.trim().to_owned(), Secret::new(secret));
            c.spool_dir = optional("COLLECTOR_SPOOL_DIR").map(Into::into);
            if let Some(n) = optional("COLLECTOR_QUEUE_CAPACITY") {
                c.queue_capacity = n
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .context("COLLECTOR_QUEUE_CAPACITY must be a positive number of events")?;
            }
            Some(c)
        }
    };
    anyhow::ensure!(
        !(mode == GatewayMode::Off && collector.is_some()),
        "BOT_GATEWAY=off, but the collector (COLLECTOR_SOURCE_GUILD_ID) needs the gateway"
    );
    Ok(GatewaySettings {
        mode,
        member_joins: None,
        collector,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut appwrite = Config::new(env("APPWRITE_ENDPOINT")?, env("APPWRITE_PROJECT_ID")?);
    appwrite.api_key = Some(ApiKey::new(env("APPWRITE_API_KEY")?));
    let settings = Settings {
        discord_token: Secret::new(env("DISCORD_BOT_TOKEN")?),
        appwrite,
        staff_email: env("BOT_STAFF_EMAIL")?,
        staff_password: Secret::new(env("BOT_STAFF_PASSWORD")?),
        order: match std::env::var("MIRROR_ORDER") {
            Ok(o) => o.parse::<Order>().map_err(anyhow::Error::msg)?,
            Err(_) => Order::default(),
        },
        discord_timeout: Duration::from_secs(15),
        retry: RetryPolicy::default(),
        discord_client: None,
        reconcile_every: Duration::from_secs(10 * 60),
        verify_window: Duration::from_secs(2 * 24 * 3600),
        retry_failed_after: Duration::from_secs(60),
        guild_id: match std::env::var("DISCORD_GUILD_ID") {
            Ok(g) if !g.trim().is_empty() => Some(
                g.trim()
                    .parse()
                    .context("DISCORD_GUILD_ID is not a guild id")?,
            ),
            _ => None,
        },
        plan_roles: match std::env::var("PLAN_ROLES") {
            Ok(spec) => PlanRoles::parse(&spec).context("PLAN_ROLES")?,
            Err(_) => PlanRoles::default(),
        },
        role_timing: roles::Timing {
            reconcile_every: Duration::from_secs(match std::env::var("ROLE_RECONCILE_SECS") {
                Ok(s) => s
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .context("ROLE_RECONCILE_SECS must be a positive number of seconds")?,
                Err(_) => 600,
            }),
            ..roles::Timing::default()
        },
        gateway: gateway_settings()?,
    };
    bot::run(settings, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
