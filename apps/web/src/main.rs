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
    };
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("listening on {}", args.bind))?;
    web::run(settings, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
