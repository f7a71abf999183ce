//! `bot`: mirrors signals into the customer guild. Settings come from the environment.

use std::time::Duration;

use anyhow::Context as _;
use bot::{Order, RetryPolicy, Secret, Settings};
use g3_appwrite::{ApiKey, Config};

fn env(name: &str) -> anyhow::Result<String> {
    let value = std::env::var(name).with_context(|| format!("{name} is not set"))?;
    anyhow::ensure!(!value.trim().is_empty(), "{name} is empty");
    Ok(value)
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
    };
    bot::run(settings, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
