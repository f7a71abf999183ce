//! The bot's command line and environment (`bot --help` lists every setting with its variable),
//! and [`Args::settings`], which checks them all at once and names every missing or bad one.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use g3_appwrite::{ApiKey, Config};
use g3_core::entitlements::{PlanConfig, PlanSources};
use g3_service::config::{Checks, ConfigError, given};

use crate::{
    LeaseSettings, Order, RetryPolicy, Secret, Settings,
    collect::{self, CollectorSettings},
    gateway::{GatewayMode, GatewaySettings},
    roles,
};

/// Mirrors signals into the customer Discord guild exactly once, keeps paid roles in sync, and
/// can collect a source guild. Run any number: one leads, the others stand by.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "bot", version)]
pub struct Args {
    /// Appwrite API endpoint, e.g. https://appwrite.example.com/v1
    #[arg(long, env = "APPWRITE_ENDPOINT")]
    pub appwrite_endpoint: Option<String>,
    /// Appwrite project id.
    #[arg(long, env = "APPWRITE_PROJECT_ID")]
    pub appwrite_project_id: Option<String>,
    /// Appwrite server API key (databases, users, teams, storage).
    #[arg(long, env = "APPWRITE_API_KEY", hide_env_values = true)]
    pub appwrite_api_key: Option<String>,
    /// The bot's token (Developer Portal > Bot).
    #[arg(long, env = "DISCORD_BOT_TOKEN", hide_env_values = true)]
    pub discord_bot_token: Option<String>,
    /// Discord's API origin [default: https://discord.com]; a fake Discord or sandbox (plain
    /// http allowed).
    #[arg(long, env = "DISCORD_API_URL")]
    pub discord_api_url: Option<String>,
    /// The `staff` service user the bot signs in as for Realtime.
    #[arg(long, env = "BOT_STAFF_EMAIL")]
    pub bot_staff_email: Option<String>,
    /// That user's password.
    #[arg(long, env = "BOT_STAFF_PASSWORD", hide_env_values = true)]
    pub bot_staff_password: Option<String>,
    /// Which end of a backlog is mirrored first: oldest-first or newest-first.
    #[arg(long, env = "MIRROR_ORDER")]
    pub mirror_order: Option<String>,
    /// The gateway connection: auto, on or off.
    #[arg(long, env = "BOT_GATEWAY")]
    pub bot_gateway: Option<String>,
    /// The customer guild (role sync, with PLAN_ROLES).
    #[arg(long, env = "DISCORD_GUILD_ID")]
    pub discord_guild_id: Option<String>,
    /// The plans file (TOML, see `.env.example`) shared with web, webhook and ops: the
    /// Discord roles each plan gives.
    #[arg(long, env = "PLANS_FILE")]
    pub plans_file: Option<String>,
    /// Without PLANS_FILE: Discord role ids each plan gives, e.g. `vip=123|456,basic=789`.
    #[arg(long, env = "PLAN_ROLES")]
    pub plan_roles: Option<String>,
    /// Seconds between full role reconciliations (default 600).
    #[arg(long, env = "ROLE_RECONCILE_SECS")]
    pub role_reconcile_secs: Option<String>,
    /// Source guild to collect (turns the collector on).
    #[arg(long, env = "COLLECTOR_SOURCE_GUILD_ID")]
    pub collector_source_guild_id: Option<String>,
    /// Source channels to collect (comma or space separated; empty: all).
    #[arg(long, env = "COLLECTOR_CHANNEL_IDS")]
    pub collector_channel_ids: Option<String>,
    /// Ingest's events URL (…/ingest/v1/events).
    #[arg(long, env = "COLLECTOR_INGEST_URL")]
    pub collector_ingest_url: Option<String>,
    /// Ingest's secret (the webhook service's INGEST_SECRET).
    #[arg(long, env = "COLLECTOR_INGEST_SECRET", hide_env_values = true)]
    pub collector_ingest_secret: Option<String>,
    /// Directory keeping undelivered events across restarts.
    #[arg(long, env = "COLLECTOR_SPOOL_DIR")]
    pub collector_spool_dir: Option<String>,
    /// Most events held while ingest is unreachable (default 10000).
    #[arg(long, env = "COLLECTOR_QUEUE_CAPACITY")]
    pub collector_queue_capacity: Option<String>,
    /// Where `GET /healthz` answers, e.g. 127.0.0.1:8093 (unset: no listener).
    #[arg(long, env = "BOT_HEALTH_BIND")]
    pub bot_health_bind: Option<String>,
    /// Bots sharing a lease name elect one leader (one name per customer guild) [default: bot].
    #[arg(long, env = "BOT_LEASE_NAME")]
    pub bot_lease_name: Option<String>,
    /// Seconds without renewal after which a standby takes over (default 10).
    #[arg(long, env = "BOT_LEASE_TTL_SECS")]
    pub bot_lease_ttl_secs: Option<String>,
    /// Seconds between the leader's renewals (default 2).
    #[arg(long, env = "BOT_LEASE_RENEW_SECS")]
    pub bot_lease_renew_secs: Option<String>,
    /// This process in the lease documents (default: host name, pid and a random suffix).
    #[arg(long, env = "BOT_INSTANCE_ID")]
    pub bot_instance_id: Option<String>,
    /// Host name for the default instance id (set by Docker and most shells).
    #[arg(long, env = "HOSTNAME", hide = true)]
    pub hostname: Option<String>,
}

/// Seconds as a positive (fractional) number.
fn seconds(text: &str) -> Result<Duration, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e7)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{text:?} is not a positive number of seconds"))
}

/// An absolute http(s) URL without query or fragment.
fn api_origin(text: &str) -> Result<String, String> {
    let url =
        reqwest::Url::parse(text.trim()).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{text:?} is not an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} must not have a query or fragment"));
    }
    // web takes Discord's API base (`…/api`); one shared DISCORD_API_URL serves both, since
    // serenity adds `/api/v10` to the origin itself.
    let mut origin = text.trim().trim_end_matches('/');
    for suffix in ["/api/v10", "/api/v9", "/api"] {
        if let Some(stripped) = origin.strip_suffix(suffix) {
            origin = stripped;
            break;
        }
    }
    Ok(origin.to_owned())
}

impl Args {
    /// The settings, or every problem found (each naming its variable).
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let mut c = Checks::new();
        let endpoint = c.required("APPWRITE_ENDPOINT", self.appwrite_endpoint.as_deref());
        let project = c.required("APPWRITE_PROJECT_ID", self.appwrite_project_id.as_deref());
        let key = c.required("APPWRITE_API_KEY", self.appwrite_api_key.as_deref());
        let token = c.required("DISCORD_BOT_TOKEN", self.discord_bot_token.as_deref());
        let email = c.required("BOT_STAFF_EMAIL", self.bot_staff_email.as_deref());
        let password = c.required("BOT_STAFF_PASSWORD", self.bot_staff_password.as_deref());
        if let Some(e) = &endpoint
            && let Err(problem) = api_origin(e)
        {
            c.fail("APPWRITE_ENDPOINT", problem);
        }
        let api_url = c.check(
            "DISCORD_API_URL",
            api_origin(
                &given(self.discord_api_url.as_deref())
                    .unwrap_or_else(|| crate::DISCORD_API.into()),
            ),
        );
        let order = match given(self.mirror_order.as_deref()) {
            Some(o) => c.check("MIRROR_ORDER", o.parse::<Order>()),
            None => Some(Order::default()),
        };
        let guild_id = match given(self.discord_guild_id.as_deref()) {
            Some(g) => c
                .check("DISCORD_GUILD_ID", collect::parse_snowflake(&g))
                .map(Some),
            None => Some(None),
        };
        let plan_roles = self.plan_roles(&mut c);
        let reconcile = match given(self.role_reconcile_secs.as_deref()) {
            Some(s) => c.check(
                "ROLE_RECONCILE_SECS",
                s.parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(Duration::from_secs)
                    .ok_or("must be a positive number of seconds"),
            ),
            None => Some(Duration::from_secs(600)),
        };
        let gateway = self.gateway(&mut c);
        let health_bind = match given(self.bot_health_bind.as_deref()) {
            Some(b) => c
                .check(
                    "BOT_HEALTH_BIND",
                    b.parse::<SocketAddr>()
                        .map_err(|_| format!("{b:?} is not an address like 127.0.0.1:8093")),
                )
                .map(Some),
            None => Some(None),
        };
        let lease = self.lease(&mut c);
        c.finish()?;
        let (
            Some(endpoint),
            Some(project),
            Some(key),
            Some(token),
            Some(email),
            Some(password),
            Some(api_url),
            Some(order),
            Some(guild_id),
            Some(plan_roles),
            Some(reconcile),
            Some(gateway),
            Some(health_bind),
            Some(lease),
        ) = (
            endpoint,
            project,
            key,
            token,
            email,
            password,
            api_url,
            order,
            guild_id,
            plan_roles,
            reconcile,
            gateway,
            health_bind,
            lease,
        )
        else {
            return Err(ConfigError::one("settings", "incomplete"));
        };
        let mut appwrite = Config::new(endpoint, project);
        appwrite.api_key = Some(ApiKey::new(key));
        Ok(Settings {
            discord_token: Secret::new(token),
            appwrite,
            staff_email: email,
            staff_password: Secret::new(password),
            order,
            discord_timeout: Duration::from_secs(15),
            retry: RetryPolicy::default(),
            discord_client: None,
            reconcile_every: Duration::from_secs(10 * 60),
            verify_window: Duration::from_secs(2 * 24 * 3600),
            retry_failed_after: Duration::from_secs(60),
            guild_id,
            plan_roles,
            role_timing: roles::Timing {
                reconcile_every: reconcile,
                ..roles::Timing::default()
            },
            gateway,
            discord_api_url: Some(api_url),
            lease,
            health_bind,
        })
    }

    /// `BOT_GATEWAY` and the `COLLECTOR_*` variables.
    fn gateway(&self, c: &mut Checks) -> Option<GatewaySettings> {
        let mode = match given(self.bot_gateway.as_deref()) {
            Some(m) => c.check("BOT_GATEWAY", m.parse::<GatewayMode>()),
            None => Some(GatewayMode::Auto),
        };
        let collector_vars = [
            ("COLLECTOR_INGEST_URL", &self.collector_ingest_url),
            ("COLLECTOR_INGEST_SECRET", &self.collector_ingest_secret),
            ("COLLECTOR_CHANNEL_IDS", &self.collector_channel_ids),
        ];
        let collector = match given(self.collector_source_guild_id.as_deref()) {
            None => {
                for (name, value) in collector_vars {
                    if given(value.as_deref()).is_some() {
                        c.fail(
                            name,
                            "is set but COLLECTOR_SOURCE_GUILD_ID is not: set the source guild to collect, or unset it",
                        );
                    }
                }
                Some(None)
            }
            Some(guild) => {
                let guild = c.check(
                    "COLLECTOR_SOURCE_GUILD_ID",
                    collect::parse_snowflake(&guild),
                );
                let channels = c.check(
                    "COLLECTOR_CHANNEL_IDS",
                    collect::parse_channel_ids(
                        &given(self.collector_channel_ids.as_deref()).unwrap_or_default(),
                    ),
                );
                let url = match given(self.collector_ingest_url.as_deref()) {
                    Some(u) => c
                        .check("COLLECTOR_INGEST_URL", collect::check_ingest_url(&u))
                        .map(|()| u),
                    None => {
                        c.fail(
                            "COLLECTOR_INGEST_URL",
                            "is not set: the collector needs ingest's URL (…/ingest/v1/events)",
                        );
                        None
                    }
                };
                let secret = given(self.collector_ingest_secret.as_deref());
                if secret.is_none() {
                    c.fail(
                        "COLLECTOR_INGEST_SECRET",
                        "is not set: the collector needs ingest's secret (the webhook service's INGEST_SECRET)",
                    );
                }
                let capacity = match given(self.collector_queue_capacity.as_deref()) {
                    Some(n) => c.check(
                        "COLLECTOR_QUEUE_CAPACITY",
                        n.parse::<usize>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or("must be a positive number of events"),
                    ),
                    None => Some(10_000),
                };
                match (guild, channels, url, secret, capacity) {
                    (Some(guild), Some(channels), Some(url), Some(secret), Some(capacity)) => {
                        let mut s =
                            CollectorSettings::new(guild, channels, url, Secret::new(secret));
                        s.spool_dir = given(self.collector_spool_dir.as_deref()).map(PathBuf::from);
                        s.queue_capacity = capacity;
                        Some(Some(s))
                    }
                    _ => None,
                }
            }
        };
        if mode == Some(GatewayMode::Off) && matches!(collector, Some(Some(_))) {
            c.fail(
                "BOT_GATEWAY",
                "is off, but the collector (COLLECTOR_SOURCE_GUILD_ID) needs the gateway",
            );
        }
        Some(GatewaySettings {
            mode: mode?,
            member_joins: None,
            collector: collector?,
        })
    }

    /// `BOT_LEASE_*` and `BOT_INSTANCE_ID`.
    fn lease(&self, c: &mut Checks) -> Option<LeaseSettings> {
        let defaults = g3_store::lease::Timing::default();
        let ttl = match given(self.bot_lease_ttl_secs.as_deref()) {
            Some(s) => c.check("BOT_LEASE_TTL_SECS", seconds(&s)),
            None => Some(defaults.ttl),
        };
        let renew = match given(self.bot_lease_renew_secs.as_deref()) {
            Some(s) => c.check("BOT_LEASE_RENEW_SECS", seconds(&s)),
            None => Some(defaults.renew_every),
        };
        let timing = match (ttl, renew) {
            (Some(t), Some(r)) if t == defaults.ttl && r == defaults.renew_every => Some(defaults),
            (Some(t), Some(r)) => {
                c.check("BOT_LEASE_RENEW_SECS", g3_store::lease::Timing::new(t, r))
            }
            _ => None,
        };
        let name = given(self.bot_lease_name.as_deref()).unwrap_or_else(|| "bot".into());
        let name_ok = !name.is_empty()
            && name.len() <= 24
            && name.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_'));
        if !name_ok {
            c.fail(
                "BOT_LEASE_NAME",
                format!("{name:?} must be 1 to 24 of a-z, A-Z, 0-9, - and _"),
            );
        }
        let holder = match given(self.bot_instance_id.as_deref()) {
            Some(h) if h.len() <= 128 => h,
            Some(_) => {
                c.fail("BOT_INSTANCE_ID", "must be at most 128 characters");
                String::new()
            }
            None => crate::default_holder(self.hostname.as_deref()),
        };
        Some(LeaseSettings {
            name,
            holder,
            timing: timing?,
            hold_renewals: None,
        })
    }
}

impl Args {
    /// The roles each plan gives: from `PLANS_FILE`, or else `PLAN_ROLES` (never both).
    fn plan_roles(&self, c: &mut Checks) -> Option<g3_core::plans::PlanRoles> {
        let file = c.file("PLANS_FILE", self.plans_file.as_deref())?;
        PlanConfig::from_sources(PlanSources {
            file: file.as_deref(),
            sellapp_plans: None,
            plan_roles: self.plan_roles.as_deref(),
        })
        .map(|config| config.roles().clone())
        .map_err(|e| c.fail(e.setting, &e))
        .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_roles_come_from_the_plans_file_or_plan_roles_never_both() {
        let path = std::env::temp_dir().join(format!("bot-plans-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "[plans.vip]\nname = \"VIP\"\nroles = [\"111\", \"222\"]\nroutes = [\"*\"]\n",
        )
        .unwrap();
        let with_file = Args {
            plans_file: Some(path.display().to_string()),
            ..complete()
        };
        let s = with_file.clone().settings().unwrap();
        assert_eq!(s.plan_roles.managed(), vec!["111", "222"]);
        let err = Args {
            plan_roles: Some("vip=1".into()),
            ..with_file
        }
        .settings()
        .unwrap_err();
        assert_eq!(err.problems()[0].0, "PLAN_ROLES", "{err}");
        let _ = std::fs::remove_file(&path);
        let s = Args {
            plan_roles: Some("vip=5".into()),
            ..complete()
        }
        .settings()
        .unwrap();
        assert_eq!(s.plan_roles.managed(), vec!["5"]);
        assert!(complete().settings().unwrap().plan_roles.is_empty());
    }

    fn complete() -> Args {
        Args {
            appwrite_endpoint: Some("http://127.0.0.1:8080/v1".into()),
            appwrite_project_id: Some("g3".into()),
            appwrite_api_key: Some("key".into()),
            discord_bot_token: Some("token".into()),
            bot_staff_email: Some("bot@example.com".into()),
            bot_staff_password: Some("pw".into()),
            ..Args::default()
        }
    }

    #[test]
    fn complete_settings_take_the_defaults() {
        let s = complete().settings().unwrap();
        assert_eq!(s.order, Order::OldestFirst);
        assert_eq!(s.discord_api_url.as_deref(), Some(crate::DISCORD_API));
        assert_eq!(s.lease.timing, g3_store::lease::Timing::default());
        assert_eq!(s.lease.name, "bot");
        assert!(s.health_bind.is_none());
        assert!(s.gateway.collector.is_none());
        assert_eq!(s.role_timing.reconcile_every, Duration::from_secs(600));
        assert!(
            !format!("{s:?}").contains("token\""),
            "a secret printed: {s:?}"
        );
    }

    #[test]
    fn every_missing_or_bad_setting_is_named_at_once() {
        let args = Args {
            discord_api_url: Some("ftp://x".into()),
            mirror_order: Some("sideways".into()),
            discord_guild_id: Some("abc".into()),
            role_reconcile_secs: Some("0".into()),
            bot_health_bind: Some("localhost".into()),
            bot_lease_ttl_secs: Some("-1".into()),
            bot_lease_name: Some("no spaces".into()),
            collector_ingest_url: Some("http://ingest".into()),
            ..Args::default()
        };
        let err = args.settings().unwrap_err();
        let named: Vec<&str> = err.problems().iter().map(|(n, _)| n.as_str()).collect();
        for name in [
            "APPWRITE_ENDPOINT",
            "APPWRITE_PROJECT_ID",
            "APPWRITE_API_KEY",
            "DISCORD_BOT_TOKEN",
            "BOT_STAFF_EMAIL",
            "BOT_STAFF_PASSWORD",
            "DISCORD_API_URL",
            "MIRROR_ORDER",
            "DISCORD_GUILD_ID",
            "ROLE_RECONCILE_SECS",
            "BOT_HEALTH_BIND",
            "BOT_LEASE_TTL_SECS",
            "BOT_LEASE_NAME",
            "COLLECTOR_INGEST_URL",
        ] {
            assert!(named.contains(&name), "{name} not named in: {err}");
        }
        assert!(
            err.to_string().starts_with("14 settings need fixing:"),
            "{err}"
        );
    }

    #[test]
    fn the_collector_needs_its_url_and_secret_and_the_gateway() {
        let args = Args {
            collector_source_guild_id: Some("100".into()),
            bot_gateway: Some("off".into()),
            ..complete()
        };
        let err = args.settings().unwrap_err();
        let named: Vec<&str> = err.problems().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            named,
            ["COLLECTOR_INGEST_URL", "COLLECTOR_INGEST_SECRET"],
            "{err}"
        );
        let args = Args {
            collector_source_guild_id: Some("100".into()),
            collector_ingest_url: Some("http://127.0.0.1:9/ingest/v1/events".into()),
            collector_ingest_secret: Some("s".into()),
            collector_channel_ids: Some("200, 201".into()),
            bot_gateway: Some("off".into()),
            ..complete()
        };
        let err = args.settings().unwrap_err();
        assert_eq!(err.problems()[0].0, "BOT_GATEWAY", "{err}");
        let args = Args {
            bot_gateway: None,
            ..args
        };
        let c = args.settings().unwrap().gateway.collector.unwrap();
        assert_eq!(c.channels, [200, 201]);
    }

    #[test]
    fn lease_timings_and_the_api_url_are_checked() {
        let s = Args {
            bot_lease_ttl_secs: Some("3".into()),
            bot_lease_renew_secs: Some("0.5".into()),
            discord_api_url: Some("http://127.0.0.1:9999/".into()),
            bot_health_bind: Some("127.0.0.1:8093".into()),
            ..complete()
        }
        .settings()
        .unwrap();
        assert_eq!(s.lease.timing.ttl, Duration::from_secs(3));
        assert_eq!(s.discord_api_url.as_deref(), Some("http://127.0.0.1:9999"));
        for given in [
            "https://discord.com/api",
            "https://discord.com/api/v10/",
            "https://discord.com",
        ] {
            let s = Args {
                discord_api_url: Some(given.into()),
                ..complete()
            }
            .settings()
            .unwrap();
            assert_eq!(
                s.discord_api_url.as_deref(),
                Some("https://discord.com"),
                "{given}"
            );
        }
        assert_eq!(s.health_bind, Some("127.0.0.1:8093".parse().unwrap()));
        let err = Args {
            bot_lease_renew_secs: Some("9".into()),
            ..complete()
        }
        .settings()
        .unwrap_err();
        assert_eq!(err.problems()[0].0, "BOT_LEASE_RENEW_SECS", "{err}");
    }

    #[test]
    fn help_names_every_variable() {
        use clap::CommandFactory as _;
        let help = Args::command().render_long_help().to_string();
        for var in [
            "APPWRITE_ENDPOINT",
            "DISCORD_BOT_TOKEN",
            "DISCORD_API_URL",
            "PLAN_ROLES",
            "COLLECTOR_SOURCE_GUILD_ID",
            "BOT_HEALTH_BIND",
            "BOT_LEASE_TTL_SECS",
        ] {
            assert!(help.contains(var), "{var} missing from --help");
        }
    }
}
