//! `web`: the customer dashboard. Settings come from the environment or `.env`
//! (`.env.example`); every missing or bad one is reported at once, then it serves until SIGTERM
//! or SIGINT and drains.

use std::{net::SocketAddr, process::ExitCode, str::FromStr, time::Duration};

use anyhow::Context as _;
use clap::Parser;
use g3_appwrite::{ApiKey, Config};
use g3_core::entitlements::{PlanConfig, PlanSources};
use g3_service::config::{Checks, ConfigError, given};
use url::Url;
use web::{Limits, MetricsAccess, Secret, ServiceUser, Settings, Timeouts};

/// Serves sign-in, the paid signal feed and the account page.
///
/// Values are read as text and checked together after parsing, so one start names every problem.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[arg(long, env = "WEB_BIND", default_value = "127.0.0.1:8092")]
    bind: String,
    /// Where browsers reach this service; `https://` turns on Secure cookies.
    #[arg(long, env = "WEB_PUBLIC_URL")]
    public_url: Option<String>,
    /// The shop's page, linked from the paywall.
    #[arg(long, env = "WEB_STORE_URL")]
    store_url: Option<String>,
    #[arg(long, env = "APPWRITE_ENDPOINT")]
    appwrite_endpoint: Option<String>,
    #[arg(long, env = "APPWRITE_PROJECT_ID")]
    appwrite_project: Option<String>,
    #[arg(long, env = "APPWRITE_API_KEY", hide_env_values = true)]
    appwrite_key: Option<String>,
    /// The `staff` service user for Realtime (the live feed).
    #[arg(long, env = "WEB_SERVICE_EMAIL")]
    service_email: Option<String>,
    #[arg(long, env = "WEB_SERVICE_PASSWORD", hide_env_values = true)]
    service_password: Option<String>,
    /// Behind a reverse proxy: take the client address from `X-Forwarded-For`.
    #[arg(long, env = "WEB_TRUST_PROXY", default_value = "false")]
    trust_proxy: String,
    /// Failed sign-ins (and mailed codes, resets, sign-ups) per client address in the window.
    #[arg(long, env = "WEB_SIGNIN_PER_IP", default_value = "30")]
    signin_per_ip: String,
    /// The same per (email, client address). Past this many failures for an email from all
    /// addresses together its attempts are only slowed down (a few seconds at most), never
    /// refused: nobody can lock an owner out. Good sign-ins never count.
    #[arg(long, env = "WEB_SIGNIN_PER_EMAIL", default_value = "10")]
    signin_per_email: String,
    /// The window both limits count over.
    #[arg(long, env = "WEB_SIGNIN_WINDOW_SECS", default_value = "900")]
    signin_window_secs: String,
    /// How long page loads reuse a session check and a paid standing (0: ask Appwrite on
    /// every request). A revocation made elsewhere reaches open pages within this time.
    #[arg(long, env = "WEB_AUTH_CACHE_MS", default_value = "2000")]
    auth_cache_ms: String,
    /// Rendered signal cards kept in memory (about 1 KB each), shared by every page and live event.
    #[arg(long, env = "WEB_CARD_CACHE", default_value = "16384")]
    card_cache: String,
    /// Longest time from a request's first byte to the end of its headers.
    #[arg(long, env = "WEB_HEADER_TIMEOUT_SECS", default_value = "10")]
    header_timeout_secs: String,
    /// Longest time to receive a request's body once its handler reads it.
    #[arg(long, env = "WEB_BODY_TIMEOUT_SECS", default_value = "20")]
    body_timeout_secs: String,
    /// `/metrics` on the public address only with `Authorization: Bearer <token>` (unset: not
    /// there at all).
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// A separate (private) address serving `/metrics` without a token.
    #[arg(long, env = "WEB_METRICS_BIND")]
    metrics_bind: Option<String>,
    /// The plans file (TOML, see `.env.example`), shared with webhook, bot and ops: the routes
    /// each plan unlocks, what the paywall offers, products and roles.
    #[arg(long, env = "PLANS_FILE")]
    plans_file: Option<String>,
    /// Without PLANS_FILE: Sell.app products to plans, as for webhook: lets staff retry failed
    /// deliveries from `/admin` (empty: retry with `ops failures retry`).
    #[arg(long, env = "SELLAPP_PLANS", default_value = "")]
    sellapp_plans: String,
    /// Without PLANS_FILE: Discord roles per plan, as for webhook: `PLAN=ROLE_ID[|ROLE_ID],...`.
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
    discord_api_url: String,
    #[arg(long, env = "DISCORD_AUTHORIZE_URL", default_value = web::DiscordSettings::DEFAULT_AUTHORIZE_URL)]
    discord_authorize_url: String,
    /// Where customers manage their subscription (the store's customer portal), linked from the
    /// account page; `{email}` in it is replaced by theirs. Unset: no link.
    #[arg(long, env = "MANAGE_SUBSCRIPTION_URL")]
    manage_subscription_url: Option<String>,
    /// An invite to the customer Discord server, offered on the account page once a customer
    /// linked Discord. Unset: no invite.
    #[arg(long, env = "DISCORD_INVITE_URL")]
    discord_invite_url: Option<String>,
}

/// What `main` starts with: the service's settings, its addresses, and what to warn about.
#[derive(Debug)]
struct Startup {
    settings: Settings,
    bind: SocketAddr,
    metrics_bind: Option<SocketAddr>,
    warnings: Vec<&'static str>,
}

/// `raw` parsed as `T`, or the problem recorded under `name`.
fn parse<T: FromStr>(checks: &mut Checks, name: &str, raw: &str) -> Option<T>
where
    T::Err: std::fmt::Display,
{
    checks.check(name, raw.trim().parse::<T>())
}

/// An `http(s)` URL, or the problem recorded under `name`.
fn http_url(checks: &mut Checks, name: &str, raw: &str) -> Option<Url> {
    let url = checks.check(name, Url::parse(raw.trim()))?;
    if matches!(url.scheme(), "http" | "https") {
        Some(url)
    } else {
        checks.fail(name, "must be an http(s) URL");
        None
    }
}

/// A whole number of seconds, at least one.
fn seconds(checks: &mut Checks, name: &str, raw: &str) -> Option<Duration> {
    match parse::<u64>(checks, name, raw)? {
        0 => {
            checks.fail(name, "must be at least 1");
            None
        }
        n => Some(Duration::from_secs(n)),
    }
}

/// The Discord settings when the OAuth2 client is given (with the bot token and guild id), none
/// when it is not; the bot's own DISCORD_BOT_TOKEN and DISCORD_GUILD_ID alone do not turn it on.
fn discord_settings(checks: &mut Checks, args: &Args) -> Option<web::DiscordSettings> {
    let client_id = given(args.discord_client_id.as_deref());
    let secret = given(args.discord_client_secret.as_deref());
    if client_id.is_none() && secret.is_none() {
        return None;
    }
    let why = "is needed for Discord linking (leave DISCORD_CLIENT_ID and DISCORD_CLIENT_SECRET \
               empty to turn it off)";
    let mut need = |name: &str, value: Option<String>| {
        if value.is_none() {
            checks.fail(name, why);
        }
        value
    };
    let client_id = need("DISCORD_CLIENT_ID", client_id);
    let secret = need("DISCORD_CLIENT_SECRET", secret);
    let bot = need(
        "DISCORD_BOT_TOKEN",
        given(args.discord_bot_token.as_deref()),
    );
    let guild_id = need("DISCORD_GUILD_ID", given(args.discord_guild_id.as_deref()));
    let guild_id = guild_id.filter(|g| {
        let ok = g3_core::Snowflake::is_valid(g);
        if !ok {
            checks.fail("DISCORD_GUILD_ID", "must be a Discord id (digits)");
        }
        ok
    });
    // The bot reads the same variable as Discord's origin (`https://discord.com`); web's calls
    // live under `/api`, so an origin alone means its `/api`.
    let api_url = http_url(checks, "DISCORD_API_URL", &args.discord_api_url).map(|mut url| {
        if url.path() == "/" {
            url.set_path("/api");
        }
        url
    });
    let authorize_url = http_url(checks, "DISCORD_AUTHORIZE_URL", &args.discord_authorize_url);
    Some(web::DiscordSettings {
        client_id: client_id?,
        client_secret: Secret::new(secret?),
        bot_token: Secret::new(bot?),
        guild_id: guild_id?,
        api_url: api_url?,
        authorize_url: authorize_url?,
    })
}

/// The account page's links: `MANAGE_SUBSCRIPTION_URL` and `DISCORD_INVITE_URL`, each optional.
fn account_links(checks: &mut Checks, args: &Args) -> web::AccountLinks {
    let manage_subscription = given(args.manage_subscription_url.as_deref()).and_then(|raw| {
        checks.check(
            "MANAGE_SUBSCRIPTION_URL",
            g3_core::entitlements::BuyUrl::parse(&raw),
        )
    });
    let discord_invite = given(args.discord_invite_url.as_deref())
        .and_then(|raw| http_url(checks, "DISCORD_INVITE_URL", &raw));
    web::AccountLinks {
        manage_subscription,
        discord_invite,
    }
}

/// The plans: `PLANS_FILE`, or `SELLAPP_PLANS` and `PLAN_ROLES` (both at once refused).
fn plan_config(checks: &mut Checks, args: &Args) -> Option<PlanConfig> {
    let file = checks.file("PLANS_FILE", args.plans_file.as_deref())?;
    let sources = PlanSources {
        file: file.as_deref(),
        sellapp_plans: Some(&args.sellapp_plans),
        plan_roles: Some(&args.plan_roles),
    };
    PlanConfig::from_sources(sources)
        .map_err(|e| checks.fail(e.setting, &e))
        .ok()
}

/// Checks every setting and builds what `main` needs, or names every problem at once.
fn startup(args: &Args) -> Result<Startup, ConfigError> {
    let mut c = Checks::new();
    let mut warnings = Vec::new();
    let bind = parse::<SocketAddr>(&mut c, "WEB_BIND", &args.bind);
    let metrics_bind = given(args.metrics_bind.as_deref())
        .map(|raw| parse::<SocketAddr>(&mut c, "WEB_METRICS_BIND", &raw));
    if let (Some(bind), Some(Some(metrics))) = (bind, metrics_bind)
        && bind == metrics
    {
        c.fail("WEB_METRICS_BIND", "must differ from WEB_BIND");
    }
    let public_url = c
        .required("WEB_PUBLIC_URL", args.public_url.as_deref())
        .and_then(|raw| http_url(&mut c, "WEB_PUBLIC_URL", &raw));
    if public_url.as_ref().is_some_and(|u| u.scheme() == "http") {
        warnings.push("WEB_PUBLIC_URL is http: cookies are sent without Secure");
    }
    let store_url = c
        .required("WEB_STORE_URL", args.store_url.as_deref())
        .and_then(|raw| http_url(&mut c, "WEB_STORE_URL", &raw));
    let endpoint = c
        .required("APPWRITE_ENDPOINT", args.appwrite_endpoint.as_deref())
        .and_then(|raw| http_url(&mut c, "APPWRITE_ENDPOINT", &raw).map(|_| raw));
    let project = c.required("APPWRITE_PROJECT_ID", args.appwrite_project.as_deref());
    let key = c.required("APPWRITE_API_KEY", args.appwrite_key.as_deref());
    let service_user = match (
        given(args.service_email.as_deref()),
        given(args.service_password.as_deref()),
    ) {
        (Some(email), Some(password)) => Some(ServiceUser {
            email,
            password: Secret::new(password),
        }),
        (None, None) => {
            warnings.push("no WEB_SERVICE_EMAIL: the live feed updates only on reload");
            None
        }
        (Some(_), None) => {
            c.fail("WEB_SERVICE_PASSWORD", "is not set (WEB_SERVICE_EMAIL is)");
            None
        }
        (None, Some(_)) => {
            c.fail("WEB_SERVICE_EMAIL", "is not set (WEB_SERVICE_PASSWORD is)");
            None
        }
    };
    let trust_proxy = parse::<bool>(&mut c, "WEB_TRUST_PROXY", &args.trust_proxy);
    let per_ip = parse::<usize>(&mut c, "WEB_SIGNIN_PER_IP", &args.signin_per_ip);
    let per_email = parse::<usize>(&mut c, "WEB_SIGNIN_PER_EMAIL", &args.signin_per_email);
    let window = seconds(&mut c, "WEB_SIGNIN_WINDOW_SECS", &args.signin_window_secs);
    let auth_cache =
        parse::<u64>(&mut c, "WEB_AUTH_CACHE_MS", &args.auth_cache_ms).map(Duration::from_millis);
    let card_cache = parse::<usize>(&mut c, "WEB_CARD_CACHE", &args.card_cache);
    let header_read = seconds(&mut c, "WEB_HEADER_TIMEOUT_SECS", &args.header_timeout_secs);
    let body_read = seconds(&mut c, "WEB_BODY_TIMEOUT_SECS", &args.body_timeout_secs);
    let metrics = MetricsAccess::from_token(args.metrics_token.as_deref());
    if matches!(metrics, MetricsAccess::Hidden) && metrics_bind.is_none() {
        warnings.push("neither METRICS_TOKEN nor WEB_METRICS_BIND: /metrics is not served");
    }
    let plans = plan_config(&mut c, args);
    let discord = discord_settings(&mut c, args);
    let account_links = account_links(&mut c, args);
    if discord.is_none() {
        warnings.push("no DISCORD_CLIENT_ID / DISCORD_CLIENT_SECRET: Discord linking is off");
    }
    c.finish()?;
    // Every value below is present: `finish` found no problem.
    let incomplete = || ConfigError::one("settings", "incomplete");
    let mut appwrite = Config::new(
        endpoint.ok_or_else(incomplete)?,
        project.ok_or_else(incomplete)?,
    );
    appwrite.api_key = Some(ApiKey::new(key.ok_or_else(incomplete)?));
    let settings = Settings {
        appwrite,
        public_url: public_url.ok_or_else(incomplete)?,
        store_url: store_url.ok_or_else(incomplete)?,
        service_user,
        live: web::live::LiveOptions::default(),
        limits: Limits {
            per_ip: per_ip.ok_or_else(incomplete)?.max(1),
            per_email: per_email.ok_or_else(incomplete)?.max(1),
            window: window.ok_or_else(incomplete)?,
        },
        trust_proxy: trust_proxy.ok_or_else(incomplete)?,
        auth_cache: auth_cache.ok_or_else(incomplete)?,
        card_cache: card_cache.ok_or_else(incomplete)?.max(1),
        plans: plans.ok_or_else(incomplete)?,
        discord,
        account_links,
        link_ttl: web::link::STATE_TTL,
        metrics,
        timeouts: Timeouts {
            header_read: header_read.ok_or_else(incomplete)?,
            body_read: body_read.ok_or_else(incomplete)?,
        },
    };
    Ok(Startup {
        settings,
        bind: bind.ok_or_else(incomplete)?,
        metrics_bind: metrics_bind.flatten(),
        warnings,
    })
}

/// mimalloc rather than glibc's allocator: pages, Appwrite answers and their JSON are built and
/// dropped across threads, where glibc's arenas, their locks and consolidation took about a
/// fifth of the CPU (perf, `./scripts/bench.sh --only web-filters`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Args = g3_service::config::parse_args();
    g3_service::init_tracing();
    g3_service::config::exit(serve(&args))
}

fn serve(args: &Args) -> anyhow::Result<()> {
    let start = startup(args)?;
    for warning in &start.warnings {
        tracing::warn!("{warning}");
    }
    tokio::runtime::Runtime::new()
        .context("starting the async runtime")?
        .block_on(async {
            let listener = g3_service::http::bind(start.bind, "WEB_BIND").await?;
            let metrics =
                g3_service::http::bind_optional(start.metrics_bind, "WEB_METRICS_BIND").await?;
            web::run_with_metrics(
                start.settings,
                listener,
                metrics,
                g3_service::shutdown_signal(),
            )
            .await
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything a production start needs, as the environment would give it.
    fn args() -> Args {
        Args {
            bind: "127.0.0.1:8092".into(),
            public_url: Some("https://app.example.com".into()),
            store_url: Some("https://example.sell.app/".into()),
            appwrite_endpoint: Some("https://appwrite.example.com/v1".into()),
            appwrite_project: Some("g3".into()),
            appwrite_key: Some("key".into()),
            service_email: Some("web@service.internal".into()),
            service_password: Some("pw".into()),
            trust_proxy: "true".into(),
            signin_per_ip: "30".into(),
            signin_per_email: "10".into(),
            signin_window_secs: "900".into(),
            auth_cache_ms: "2000".into(),
            card_cache: "16384".into(),
            header_timeout_secs: "10".into(),
            body_timeout_secs: "20".into(),
            metrics_token: None,
            metrics_bind: None,
            plans_file: None,
            sellapp_plans: "3301=vip".into(),
            plan_roles: "vip=111".into(),
            discord_client_id: None,
            discord_client_secret: None,
            discord_bot_token: None,
            discord_guild_id: None,
            discord_api_url: web::DiscordSettings::DEFAULT_API_URL.into(),
            discord_authorize_url: web::DiscordSettings::DEFAULT_AUTHORIZE_URL.into(),
            manage_subscription_url: None,
            discord_invite_url: None,
        }
    }

    fn problems(args: &Args) -> Vec<String> {
        startup(args)
            .unwrap_err()
            .problems()
            .iter()
            .map(|(name, _)| name.clone())
            .collect()
    }

    #[test]
    fn a_complete_environment_starts_with_defaults_filled_in() {
        let start = startup(&args()).unwrap();
        let s = &start.settings;
        assert_eq!(start.bind, "127.0.0.1:8092".parse().unwrap());
        assert_eq!(start.metrics_bind, None);
        assert!(s.trust_proxy && s.secure_cookies());
        assert_eq!(s.timeouts, Timeouts::default());
        assert_eq!(s.link_ttl, web::link::STATE_TTL);
        assert_eq!(s.card_cache, web::card::CARD_CACHE_DEFAULT);
        assert!(matches!(s.metrics, MetricsAccess::Hidden));
        assert!(s.discord.is_none());
        assert_eq!(s.appwrite.api_key.as_ref().map(|k| k.expose()), Some("key"));
        assert!(
            start
                .warnings
                .iter()
                .any(|w| w.contains("/metrics is not served"))
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut a = args();
        a.bind = "nowhere".into();
        a.public_url = None;
        a.store_url = Some("ftp://store".into());
        a.appwrite_key = Some("   ".into());
        a.service_password = None;
        a.signin_per_ip = "many".into();
        a.card_cache = "lots".into();
        a.header_timeout_secs = "0".into();
        a.body_timeout_secs = "-1".into();
        a.metrics_bind = Some("metrics".into());
        a.plan_roles = "vip".into();
        a.discord_client_id = Some("123".into());
        a.discord_guild_id = Some("not-digits".into());
        let names = problems(&a);
        for name in [
            "WEB_BIND",
            "WEB_PUBLIC_URL",
            "WEB_STORE_URL",
            "APPWRITE_API_KEY",
            "WEB_SERVICE_PASSWORD",
            "WEB_SIGNIN_PER_IP",
            "WEB_CARD_CACHE",
            "WEB_HEADER_TIMEOUT_SECS",
            "WEB_BODY_TIMEOUT_SECS",
            "WEB_METRICS_BIND",
            "PLAN_ROLES",
            "DISCORD_CLIENT_SECRET",
            "DISCORD_BOT_TOKEN",
            "DISCORD_GUILD_ID",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} missing: {names:?}");
        }
        assert!(!names.iter().any(|n| n == "APPWRITE_ENDPOINT"), "{names:?}");
        let text = startup(&a).unwrap_err().to_string();
        assert!(text.starts_with(&format!("{} settings need fixing:", names.len())));
        assert!(!text.contains("pw"), "no secret in the report: {text}");
    }

    #[test]
    fn metrics_token_timeouts_and_metrics_address_are_read() {
        let mut a = args();
        a.metrics_token = Some(" s3cret ".into());
        a.metrics_bind = Some("127.0.0.1:9102".into());
        a.header_timeout_secs = "3".into();
        a.body_timeout_secs = "7".into();
        let start = startup(&a).unwrap();
        assert_eq!(start.metrics_bind, Some("127.0.0.1:9102".parse().unwrap()));
        assert!(
            matches!(&start.settings.metrics, MetricsAccess::Bearer(t) if t.expose() == "s3cret")
        );
        assert_eq!(
            start.settings.timeouts,
            Timeouts {
                header_read: Duration::from_secs(3),
                body_read: Duration::from_secs(7),
            }
        );
        assert!(!start.warnings.iter().any(|w| w.contains("/metrics")));
        // The same address twice cannot both listen.
        a.metrics_bind = Some(a.bind.clone());
        assert_eq!(problems(&a), vec!["WEB_METRICS_BIND".to_owned()]);
    }

    #[test]
    fn discord_linking_is_all_or_nothing() {
        let mut a = args();
        a.discord_bot_token = Some("bot".into());
        a.discord_guild_id = Some("4242".into());
        let start = startup(&a).unwrap();
        assert!(start.settings.discord.is_none(), "the bot's settings alone");
        a.discord_client_id = Some("app".into());
        a.discord_client_secret = Some("secret".into());
        let discord = startup(&a).unwrap().settings.discord.unwrap();
        assert_eq!(discord.guild_id, "4242");
        assert_eq!(discord.api_url.as_str(), "https://discord.com/api");
        a.discord_api_url = "https://discord.com".into();
        let discord = startup(&a).unwrap().settings.discord.unwrap();
        assert_eq!(
            discord.api_url.as_str(),
            "https://discord.com/api",
            "the bot's form"
        );
        a.discord_api_url = "http://127.0.0.1:9000/api/".into();
        let discord = startup(&a).unwrap().settings.discord.unwrap();
        assert_eq!(discord.api_url.as_str(), "http://127.0.0.1:9000/api/");
        a.discord_authorize_url = "javascript:alert(1)".into();
        assert_eq!(problems(&a), vec!["DISCORD_AUTHORIZE_URL".to_owned()]);
    }

    #[test]
    fn plans_come_from_the_file_or_the_old_variables_never_both() {
        let path = std::env::temp_dir().join(format!("web-plans-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "[plans.vip]\nname = \"VIP\"\nproducts = [\"3301\"]\nroutes = [\"vip-calls\"]\n",
        )
        .unwrap();
        let mut a = args();
        a.plans_file = Some(path.display().to_string());
        assert_eq!(
            problems(&a),
            vec!["SELLAPP_PLANS".to_owned()],
            "the file and SELLAPP_PLANS at once"
        );
        a.sellapp_plans = String::new();
        assert_eq!(problems(&a), vec!["PLAN_ROLES".to_owned()]);
        a.plan_roles = String::new();
        let plans = startup(&a).unwrap().settings.plans;
        assert!(plans.has_routes());
        assert_eq!(plans.get("vip").unwrap().name, "VIP");
        a.plans_file = Some("/nonexistent/plans.toml".into());
        assert_eq!(problems(&a), vec!["PLANS_FILE".to_owned()]);
        std::fs::write(&path, "[plans.vip]\nname = \"VIP\"\n").unwrap();
        a.plans_file = Some(path.display().to_string());
        assert_eq!(
            problems(&a),
            vec!["PLANS_FILE".to_owned()],
            "routes missing"
        );
        let _ = std::fs::remove_file(&path);
        // Without the file, the old variables as before: every plan unlocks every route.
        let plans = startup(&args()).unwrap().settings.plans;
        assert!(!plans.has_routes());
        assert_eq!(plans.roles().managed(), vec!["111"]);
    }

    #[test]
    fn account_links_are_optional_urls() {
        let links = startup(&args()).unwrap().settings.account_links;
        assert!(links.manage_subscription.is_none() && links.discord_invite.is_none());
        let mut a = args();
        a.manage_subscription_url = Some("https://example.sell.app/customer?email={email}".into());
        a.discord_invite_url = Some(" https://discord.gg/abc ".into());
        let links = startup(&a).unwrap().settings.account_links;
        assert_eq!(
            links
                .manage_subscription
                .unwrap()
                .for_email(Some("a+b@c.d")),
            "https://example.sell.app/customer?email=a%2Bb%40c.d"
        );
        assert_eq!(
            links.discord_invite.unwrap().as_str(),
            "https://discord.gg/abc"
        );
        a.manage_subscription_url = Some("javascript:alert(1)".into());
        a.discord_invite_url = Some("discord.gg/abc".into());
        assert_eq!(
            problems(&a),
            vec![
                "MANAGE_SUBSCRIPTION_URL".to_owned(),
                "DISCORD_INVITE_URL".to_owned()
            ]
        );
    }

    #[test]
    fn the_service_user_needs_both_halves_and_none_is_a_warning() {
        let mut a = args();
        a.service_email = None;
        assert_eq!(problems(&a), vec!["WEB_SERVICE_EMAIL".to_owned()]);
        a.service_password = None;
        let start = startup(&a).unwrap();
        assert!(start.settings.service_user.is_none());
        assert!(
            start
                .warnings
                .iter()
                .any(|w| w.contains("WEB_SERVICE_EMAIL"))
        );
    }
}
