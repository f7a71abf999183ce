//! `discord-sandbox`: devstack's fake customer Discord as a process of its own, for the compose
//! stack's local and staging runs. The fake's REST API (and OAuth2 pages) listen on a fixed
//! address (`DISCORD_API_URL`/`DISCORD_AUTHORIZE_URL` of web and the bot point there); a second
//! listener serves the sandbox page, a JSON status (mirrored messages per channel, guild
//! members with their roles) for smoke tests, and `/healthz`.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::{Json, Router, extract::State, response::Html, routing::get};
use clap::Parser;
use devstack::sandbox::{self, Sandbox};
use g3_core::Snowflake;
use serde_json::{Value, json};
use testkit::discord::{FakeDiscord, OAuthApp};

/// Runs a fake Discord set up as the customer's: guild, roles, OAuth2 app, mirror channels.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Where the fake's REST API and OAuth2 pages listen (`DISCORD_API_URL` is
    /// `http://<this>/api`, `DISCORD_AUTHORIZE_URL` `http://<this>/oauth2/authorize`).
    #[arg(long, env = "SANDBOX_BIND", default_value = "127.0.0.1:8094")]
    bind: SocketAddr,
    /// Where the sandbox page, `/status` (JSON) and `/healthz` listen.
    #[arg(long, env = "SANDBOX_STATUS_BIND", default_value = "127.0.0.1:8095")]
    status_bind: SocketAddr,
    /// web's OAuth2 callback, the app's only redirect URI
    /// (`WEB_PUBLIC_URL/account/discord/callback`).
    #[arg(long, env = "SANDBOX_REDIRECT_URI")]
    redirect_uri: url::Url,
    /// The OAuth2 app's client id, as web is configured with.
    #[arg(long, env = "DISCORD_CLIENT_ID")]
    client_id: String,
    /// The OAuth2 app's client secret, as web is configured with.
    #[arg(long, env = "DISCORD_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// The bot token the sandbox accepts (as Discord would, others get 401); unset: any.
    #[arg(long, env = "DISCORD_BOT_TOKEN", hide_env_values = true)]
    bot_token: Option<String>,
    /// Customer channels the bot mirrors into: `NAME=CHANNEL_ID`, comma separated.
    #[arg(
        long,
        env = "SANDBOX_CHANNELS",
        value_delimiter = ',',
        default_value = "VIP Calls=1300000000000000001,Scalps=1300000000000000002"
    )]
    channels: Vec<String>,
}

fn parse_channels(specs: &[String]) -> anyhow::Result<Vec<(String, u64)>> {
    specs
        .iter()
        .map(|spec| {
            let (name, id) = spec
                .rsplit_once('=')
                .with_context(|| format!("SANDBOX_CHANNELS: {spec:?} is not NAME=CHANNEL_ID"))?;
            let id = Snowflake::parse(id.trim())
                .map(Snowflake::get)
                .with_context(|| format!("SANDBOX_CHANNELS: {id:?} is not a channel id"))?;
            Ok((name.trim().to_owned(), id))
        })
        .collect()
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Args = g3_service::config::parse_args();
    g3_service::init_tracing();
    g3_service::config::exit(run(args).await)
}

async fn run(args: Args) -> anyhow::Result<()> {
    for addr in [args.bind, args.status_bind] {
        anyhow::ensure!(
            addr.ip().is_loopback(),
            "the sandbox only listens on loopback addresses, not {addr}"
        );
    }
    anyhow::ensure!(
        !args.client_id.trim().is_empty() && !args.client_secret.trim().is_empty(),
        "DISCORD_CLIENT_ID and DISCORD_CLIENT_SECRET must be set (web uses the same)"
    );
    let channels = parse_channels(&args.channels)?;
    let fake = FakeDiscord::spawn_on(args.bind)
        .await
        .with_context(|| format!("cannot listen on {} (SANDBOX_BIND)", args.bind))?;
    let oauth = fake.register_app_with(OAuthApp {
        client_id: args.client_id.trim().to_owned(),
        client_secret: args.client_secret.trim().to_owned(),
        name: sandbox::APP_NAME.to_owned(),
        redirect_uris: vec![args.redirect_uri.to_string()],
    });
    fake.require_bot_token(
        args.bot_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty()),
    );
    let sandbox = Sandbox::set_up(fake, oauth, channels);
    let listener = tokio::net::TcpListener::bind(args.status_bind)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (SANDBOX_STATUS_BIND)",
                args.status_bind
            )
        })?;
    let base = sandbox.fake.base_url();
    tracing::info!(
        api = %format!("{base}/api"),
        authorize = %format!("{base}/oauth2/authorize"),
        gateway = %sandbox.fake.gateway_url(),
        page = %format!("http://{}", args.status_bind),
        guild = sandbox::GUILD_ID,
        plan_roles = sandbox::PLAN_ROLES,
        "Discord sandbox listening"
    );
    let app = Router::new()
        .route("/", get(page))
        .route("/status", get(status))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(sandbox);
    axum::serve(listener, app)
        .with_graceful_shutdown(g3_service::shutdown_signal())
        .await
        .context("serving the sandbox page")?;
    tracing::info!("stopped");
    Ok(())
}

async fn page(State(sandbox): State<Sandbox>) -> Html<String> {
    Html(sandbox.page(""))
}

/// What the sandbox holds, for smoke tests: messages per customer channel, members and roles.
async fn status(State(sandbox): State<Sandbox>) -> Json<Value> {
    let fake = &sandbox.fake;
    let names: std::collections::HashMap<u64, String> = fake
        .discord_users()
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect();
    let channels: Vec<Value> = sandbox
        .channels
        .iter()
        .map(|(name, id)| {
            let messages: Vec<Value> = fake
                .messages(*id)
                .into_iter()
                .map(
                    |m| json!({ "id": m.id.to_string(), "content": m.content, "embeds": m.embeds }),
                )
                .collect();
            json!({ "name": name, "id": id.to_string(), "messages": messages })
        })
        .collect();
    let members: Vec<Value> = fake
        .guild_members(sandbox::GUILD_ID)
        .into_iter()
        .map(|(id, roles)| {
            json!({
                "id": id.to_string(),
                "username": names.get(&id),
                "roles": roles.iter().map(u64::to_string).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({
        "guild_id": sandbox::GUILD_ID.to_string(),
        "plan_roles": sandbox::PLAN_ROLES,
        "gateway_sessions": fake.gateway_sessions(),
        "channels": channels,
        "members": members,
    }))
}
