//! `web`: the customer dashboard. Settings come from the environment (`.env.example`).

use std::{net::SocketAddr, time::Duration};

use anyhow::Context as _;
use clap::Parser;
use g3_appwrite::{ApiKey, Config};
use url::Url;
use web::{Limits, Secret, ServiceUser, Settings};

/// Serves sign-in, the paid signal feed and the account page.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[arg(long, env = "WEB_BIND", default_value = "127.0.0.1:8092")]
    bind: SocketAddr,
    /// Where browsers reach this service; `https://` turns on Secure cookies.
    #[arg(long, env = "WEB_PUBLIC_URL")]
    public_url: Url,
    /// The shop's page, linked from the paywall.
    #[arg(long, env = "WEB_STORE_URL")]
    store_url: Url,
    #[arg(long, env = "APPWRITE_ENDPOINT")]
    appwrite_endpoint: String,
    #[arg(long, env = "APPWRITE_PROJECT_ID")]
    appwrite_project: String,
    #[arg(long, env = "APPWRITE_API_KEY", hide_env_values = true)]
    appwrite_key: String,
    /// The `staff` service user for Realtime (the live feed).
    #[arg(long, env = "WEB_SERVICE_EMAIL")]
    service_email: Option<String>,
    #[arg(long, env = "WEB_SERVICE_PASSWORD", hide_env_values = true)]
    service_password: Option<String>,
    /// Behind a reverse proxy: take the client address from `X-Forwarded-For`.
    #[arg(long, env = "WEB_TRUST_PROXY", default_value_t = false)]
    trust_proxy: bool,
    #[arg(long, env = "WEB_SIGNIN_PER_IP", default_value_t = 30)]
    signin_per_ip: usize,
    #[arg(long, env = "WEB_SIGNIN_PER_EMAIL", default_value_t = 10)]
    signin_per_email: usize,
    #[arg(long, env = "WEB_SIGNIN_WINDOW_SECS", default_value_t = 900)]
    signin_window_secs: u64,
    /// How long page loads reuse a session check and a paid standing (0: ask Appwrite on
    /// every request). A revocation made elsewhere reaches open pages within this time.
    #[arg(long, env = "WEB_AUTH_CACHE_MS", default_value_t = 2000)]
    auth_cache_ms: u64,
    /// Sell.app products to plans, as for webhook: lets staff retry failed deliveries from
    /// `/admin` (empty: retry with `ops failures retry`).
    #[arg(long, env = "SELLAPP_PLANS", default_value = "")]
    sellapp_plans: String,
    /// Discord roles per plan, as for webhook: `PLAN=ROLE_ID[|ROLE_ID],...`.
    #[arg(long, env = "PLAN_ROLES", default_value = "")]
    plan_roles: String,
    /// Discord linking: on with the OAuth2 client id and secret, which then need the bot token
    /// and guild id (shared with the bot); off without them.
    #[arg(long, env = "DISCORD_CLIENT_ID")]
    discord_client_id: Option<String>,
    #[arg(long, env = "DISCORD_CLIENT_SECRET", hide_env_values = true)]
    discord_client_secret: Option<String>,
    #[arg(long, env = "DISCORD_BOT_TOKEN", hide_env_values = true)]
    discord_bot_token: Option<String>,
    /// The customer guild linked users are added to.
    #[arg(long, env = "DISCORD_GUILD_ID")]
    discord_guild_id: Option<String>,
    #[arg(long, env = "DISCORD_API_URL", default_value = web::DiscordSettings::DEFAULT_API_URL)]
    discord_api_url: Url,
    #[arg(long, env = "DISCORD_AUTHORIZE_URL", default_value = web::DiscordSettings::DEFAULT_AUTHORIZE_URL)]
    discord_authorize_url: Url,
}

/// The Discord settings when the OAuth2 client is given (with the bot token and guild id), none
/// when it is not; the bot's own DISCORD_BOT_TOKEN and DISCORD_GUILD_ID alone do not turn it on.
fn discord_settings(args: &Args) -> anyhow::Result<Option<web::DiscordSettings>> {
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let parts = (
        given(&args.discord_client_id),
        given(&args.discord_client_secret),
        given(&args.discord_bot_token),
        given(&args.discord_guild_id),
    );
    match parts {
        (None, None, _, _) => Ok(None),
        (Some(client_id), Some(secret), Some(bot), Some(guild_id)) => {
            for (name, url) in [
                ("DISCORD_API_URL", &args.discord_api_url),
                ("DISCORD_AUTHORIZE_URL", &args.discord_authorize_url),
            ] {
                anyhow::ensure!(
                    matches!(url.scheme(), "http" | "https"),
                    "{name} must be http(s)"
                );
            }
            anyhow::ensure!(
                guild_id.len() <= 20 && guild_id.bytes().all(|b| b.is_ascii_digit()),
                "DISCORD_GUILD_ID must be a Discord id (digits)"
            );
            Ok(Some(web::DiscordSettings {
                client_id,
                client_secret: Secret::new(secret),
                bot_token: Secret::new(bot),
                guild_id,
                api_url: args.discord_api_url.clone(),
                authorize_url: args.discord_authorize_url.clone(),
            }))
        }
        _ => anyhow::bail!(
            "Discord linking needs all of DISCORD_CLIENT_ID, DISCORD_CLIENT_SECRET, \
             DISCORD_BOT_TOKEN and DISCORD_GUILD_ID (leave the client id and secret empty to \
             turn it off)"
        ),
    }
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
        !args.appwrite_key.trim().is_empty(),
        "APPWRITE_API_KEY is empty"
    );
    anyhow::ensure!(
        matches!(args.public_url.scheme(), "http" | "https"),
        "WEB_PUBLIC_URL must be http(s)"
    );
    if args.public_url.scheme() == "http" {
        tracing::warn!("WEB_PUBLIC_URL is http: cookies are sent without Secure");
    }
    let discord = discord_settings(&args)?;
    if discord.is_none() {
        tracing::warn!("no DISCORD_CLIENT_ID / DISCORD_CLIENT_SECRET: Discord linking is off");
    }
    let service_user = match (args.service_email, args.service_password) {
        (Some(email), Some(password)) if !password.is_empty() => Some(ServiceUser {
            email,
            password: Secret::new(password),
        }),
        _ => None,
    };
    let mut appwrite = Config::new(args.appwrite_endpoint, args.appwrite_project);
    appwrite.api_key = Some(ApiKey::new(args.appwrite_key));
    let settings = Settings {
        appwrite,
        public_url: args.public_url,
        store_url: args.store_url,
        service_user,
        live: web::live::LiveOptions::default(),
        limits: Limits {
            per_ip: args.signin_per_ip.max(1),
            per_email: args.signin_per_email.max(1),
            window: Duration::from_secs(args.signin_window_secs.max(1)),
        },
        trust_proxy: args.trust_proxy,
        auth_cache: Duration::from_millis(args.auth_cache_ms),
        plans: g3_core::plans::PlanCatalog::parse(&args.sellapp_plans).context("SELLAPP_PLANS")?,
        discord,
        plan_roles: g3_core::plans::PlanRoles::parse(&args.plan_roles).context("PLAN_ROLES")?,
    };
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("listening on {}", args.bind))?;
    web::run(settings, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
