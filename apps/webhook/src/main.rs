//! `webhook`: the Sell.app webhook receiver and collector ingest. Settings come from flags, the
//! environment and `.env` (`.env.example`); every bad or missing one is reported at once.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::Parser;
use g3_appwrite::{ApiKey, Config};
use g3_core::entitlements::{PlanConfig, PlanSources};
use g3_service::config::{Checks, ConfigError, given};
use webhook::{
    HttpSettings, Intervals, MetricsAccess, PreviousSecrets, Secret, Settings, Timeouts,
    ingest::cdn::AttachmentPolicy, reconcile::SellappApi,
};

/// Receives Sell.app webhooks and grants or revokes access in Appwrite.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[arg(long, env = "WEBHOOK_BIND", default_value = "127.0.0.1:8091")]
    bind: SocketAddr,
    /// A separate address serving `/metrics` without a token (a private scrape network).
    #[arg(long, env = "WEBHOOK_METRICS_BIND")]
    metrics_bind: Option<String>,
    /// Bearer token for `/metrics` on the public address; without it `/metrics` is 404 there.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    #[arg(long, env = "APPWRITE_ENDPOINT")]
    appwrite_endpoint: Option<String>,
    #[arg(long, env = "APPWRITE_PROJECT_ID")]
    appwrite_project: Option<String>,
    #[arg(long, env = "APPWRITE_API_KEY", hide_env_values = true)]
    appwrite_key: Option<String>,
    /// The store's webhook secret from Sell.app.
    #[arg(long, env = "SELLAPP_WEBHOOK_SECRET", hide_env_values = true)]
    sellapp_secret: Option<String>,
    /// The secret being rotated out: deliveries signed with it are still accepted.
    #[arg(long, env = "SELLAPP_WEBHOOK_SECRET_PREVIOUS", hide_env_values = true)]
    sellapp_secret_previous: Option<String>,
    /// The plans file (TOML, see `.env.example`), shared with web, bot and ops: each plan's
    /// products and Discord roles (and what web shows).
    #[arg(long, env = "PLANS_FILE")]
    plans_file: Option<String>,
    /// Without PLANS_FILE: product and variant ids to plans: `PRODUCT[:VARIANT]=PLAN,...`.
    #[arg(long, env = "SELLAPP_PLANS")]
    sellapp_plans: Option<String>,
    /// Without PLANS_FILE: Discord roles per plan: `PLAN=ROLE_ID[|ROLE_ID],...` (empty: no role
    /// state is kept).
    #[arg(long, env = "PLAN_ROLES", default_value = "")]
    plan_roles: String,
    /// Where failures are kept while Appwrite is unreachable.
    #[arg(long, env = "WEBHOOK_SPOOL_DIR", default_value = "./spool")]
    spool_dir: PathBuf,
    /// Secret of the collector's signed ingest requests (`whsec_...` or any string); ingest is
    /// off without it.
    #[arg(long, env = "INGEST_SECRET", hide_env_values = true)]
    ingest_secret: Option<String>,
    /// The ingest secret being rotated out: requests signed with it are still accepted.
    #[arg(long, env = "INGEST_SECRET_PREVIOUS", hide_env_values = true)]
    ingest_secret_previous: Option<String>,
    /// Hosts ingest downloads attachments from (comma-separated); anything else, and any
    /// non-public address, is refused.
    #[arg(
        long,
        env = "INGEST_ATTACHMENT_HOSTS",
        default_value = "cdn.discordapp.com,media.discordapp.net"
    )]
    ingest_attachment_hosts: String,
    /// Sell.app API base URL for refund reconciliation.
    #[arg(long, env = "SELLAPP_API_URL", default_value = "https://sell.app/api")]
    sellapp_api_url: String,
    /// Sell.app API key; without it refund reconciliation is off.
    #[arg(long, env = "SELLAPP_API_KEY", hide_env_values = true)]
    sellapp_api_key: Option<String>,
    /// Seconds between refund reconciliation passes.
    #[arg(long, env = "RECONCILE_INTERVAL_SECS", default_value_t = 900)]
    reconcile_interval_secs: u64,
    /// Seconds a client may take to send a request's headers.
    #[arg(long, env = "WEBHOOK_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    header_timeout_secs: u64,
    /// Seconds a client may take to send a request's body once its headers are in.
    #[arg(long, env = "WEBHOOK_BODY_TIMEOUT_SECS", default_value_t = 20)]
    body_timeout_secs: u64,
}

/// The plans: `PLANS_FILE`, or `SELLAPP_PLANS` (required then) and `PLAN_ROLES`; both at once
/// are refused, and so are plans no product buys.
fn plan_config(checks: &mut Checks, args: &Args) -> Option<PlanConfig> {
    let file = checks.file("PLANS_FILE", args.plans_file.as_deref())?;
    let sellapp = given(args.sellapp_plans.as_deref());
    if file.is_none() && sellapp.is_none() {
        checks.fail("SELLAPP_PLANS", "is not set (nor PLANS_FILE)");
        return None;
    }
    let config = PlanConfig::from_sources(PlanSources {
        file: file.as_deref(),
        sellapp_plans: sellapp.as_deref(),
        plan_roles: Some(&args.plan_roles),
    })
    .map_err(|e| checks.fail(e.setting, &e))
    .ok()?;
    if config.catalog().is_empty() {
        checks.fail(
            if file.is_some() {
                "PLANS_FILE"
            } else {
                "SELLAPP_PLANS"
            },
            "maps no product to a plan: nothing could ever be granted",
        );
        return None;
    }
    Some(config)
}

/// Checks every setting, naming each problem; the settings and the private metrics address.
fn settings(args: Args) -> Result<(Settings, Option<SocketAddr>), ConfigError> {
    let mut checks = Checks::new();
    let endpoint = checks.required("APPWRITE_ENDPOINT", args.appwrite_endpoint.as_deref());
    let project = checks.required("APPWRITE_PROJECT_ID", args.appwrite_project.as_deref());
    let key = checks.required("APPWRITE_API_KEY", args.appwrite_key.as_deref());
    let sellapp_secret = checks.required("SELLAPP_WEBHOOK_SECRET", args.sellapp_secret.as_deref());
    let plan_config = plan_config(&mut checks, &args);
    let (plans, roles) = match plan_config {
        Some(c) => (Some(c.catalog().clone()), Some(c.roles().clone())),
        None => (None, None),
    };
    let metrics_bind = given(args.metrics_bind.as_deref()).and_then(|a| {
        checks.check(
            "WEBHOOK_METRICS_BIND",
            a.parse::<SocketAddr>()
                .map_err(|e| format!("{a:?} is not an address: {e}")),
        )
    });
    let mut seconds = |name: &str, value: u64| {
        if value == 0 {
            checks.fail(name, "must be at least 1 second");
        }
        Duration::from_secs(value.max(1))
    };
    let timeouts = Timeouts {
        header_read: seconds("WEBHOOK_HEADER_TIMEOUT_SECS", args.header_timeout_secs),
        body_read: seconds("WEBHOOK_BODY_TIMEOUT_SECS", args.body_timeout_secs),
    };
    let sellapp_api = match given(args.sellapp_api_key.as_deref()) {
        Some(key) => checks.check(
            "SELLAPP_API_URL",
            SellappApi::new(&args.sellapp_api_url, &key).map_err(|e| format!("{e:#}")),
        ),
        None => {
            tracing::warn!("SELLAPP_API_KEY is not set: refund reconciliation is off");
            None
        }
    };
    let ingest_secret = given(args.ingest_secret.as_deref()).map(Secret::new);
    let ingest_previous = given(args.ingest_secret_previous.as_deref()).map(Secret::new);
    if ingest_secret.is_none() && ingest_previous.is_some() {
        checks.fail(
            "INGEST_SECRET_PREVIOUS",
            "is set without INGEST_SECRET (set the new secret there, the old one here)",
        );
    }
    let attachment_policy = checks
        .check(
            "INGEST_ATTACHMENT_HOSTS",
            AttachmentPolicy::parse_hosts(&args.ingest_attachment_hosts),
        )
        .map(|hosts| AttachmentPolicy {
            hosts,
            ..AttachmentPolicy::default()
        })
        .unwrap_or_default();
    let settings = match (endpoint, project, key, sellapp_secret, plans, roles) {
        (Some(endpoint), Some(project), Some(key), Some(secret), Some(plans), Some(roles)) => {
            let mut appwrite = Config::new(endpoint, project);
            appwrite.api_key = Some(ApiKey::new(key));
            Some(Settings {
                appwrite,
                sellapp_secret: Secret::new(secret),
                previous_secrets: PreviousSecrets {
                    sellapp: given(args.sellapp_secret_previous.as_deref()).map(Secret::new),
                    ingest: ingest_previous,
                },
                plans,
                roles,
                spool_dir: args.spool_dir,
                sellapp_api,
                ingest_secret,
                intervals: Intervals {
                    reconcile: Duration::from_secs(args.reconcile_interval_secs.max(60)),
                    ..Intervals::default()
                },
                background_jobs: true,
                http: HttpSettings {
                    timeouts,
                    metrics: MetricsAccess::from_token(args.metrics_token.as_deref()),
                    attachment_policy,
                },
            })
        }
        _ => None,
    };
    let settings = checks.done(settings)?;
    Ok((settings, metrics_bind))
}

async fn serve(
    settings: Settings,
    metrics_bind: Option<SocketAddr>,
    bind: SocketAddr,
) -> anyhow::Result<()> {
    let listener = g3_service::http::bind(bind, "WEBHOOK_BIND").await?;
    let metrics_listener =
        g3_service::http::bind_optional(metrics_bind, "WEBHOOK_METRICS_BIND").await?;
    webhook::run_with_metrics(
        settings,
        listener,
        metrics_listener,
        g3_service::shutdown_signal(),
    )
    .await
}

/// mimalloc rather than glibc's allocator: pages, Appwrite answers and their JSON are built and
/// dropped across threads, where glibc's arenas, their locks and consolidation took about a
/// fifth of the CPU (perf, `./scripts/bench.sh --only web-filters`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before any thread starts: `.env` is loaded into the environment here.
    let args = g3_service::config::parse_args::<Args>();
    g3_service::init_tracing();
    let bind = args.bind;
    let result =
        settings(args)
            .map_err(anyhow::Error::from)
            .and_then(|(settings, metrics_bind)| {
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .context("starting the async runtime")?
                    .block_on(serve(settings, metrics_bind, bind))
            });
    g3_service::config::exit(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("webhook").chain(pairs.iter().copied())).unwrap()
    }

    #[test]
    fn every_missing_or_bad_setting_is_named_at_once() {
        let err = settings(args(&[
            "--appwrite-endpoint",
            "http://127.0.0.1:1/v1",
            "--sellapp-plans",
            "nonsense",
            "--metrics-bind",
            "not-an-address",
            "--body-timeout-secs",
            "0",
            "--ingest-secret-previous",
            "old",
            "--ingest-attachment-hosts",
            "http://127.0.0.1",
        ]))
        .unwrap_err()
        .to_string();
        for name in [
            "APPWRITE_PROJECT_ID",
            "APPWRITE_API_KEY",
            "SELLAPP_WEBHOOK_SECRET",
            "SELLAPP_PLANS",
            "WEBHOOK_METRICS_BIND",
            "WEBHOOK_BODY_TIMEOUT_SECS",
            "INGEST_SECRET_PREVIOUS",
            "INGEST_ATTACHMENT_HOSTS",
        ] {
            assert!(err.contains(name), "{name} missing from: {err}");
        }
        assert!(!err.contains("APPWRITE_ENDPOINT"), "{err}");
    }

    #[test]
    fn a_complete_configuration_with_rotation_and_private_metrics() {
        let (settings, metrics_bind) = settings(args(&[
            "--appwrite-endpoint",
            "http://127.0.0.1:1/v1",
            "--appwrite-project",
            "p",
            "--appwrite-key",
            "k",
            "--sellapp-secret",
            "new",
            "--sellapp-secret-previous",
            "old",
            "--sellapp-plans",
            "3301=vip",
            "--metrics-bind",
            "127.0.0.1:9093",
            "--metrics-token",
            "t",
            "--header-timeout-secs",
            "3",
        ]))
        .unwrap();
        assert_eq!(metrics_bind, Some("127.0.0.1:9093".parse().unwrap()));
        assert_eq!(settings.previous_secrets.sellapp.unwrap().expose(), "old");
        assert_eq!(settings.http.timeouts.header_read, Duration::from_secs(3));
        assert!(matches!(settings.http.metrics, MetricsAccess::Bearer(_)));
        assert_eq!(
            settings.http.attachment_policy.hosts,
            ["cdn.discordapp.com", "media.discordapp.net"]
        );
    }

    #[test]
    fn plans_come_from_the_plans_file_and_never_with_sellapp_plans() {
        let path = std::env::temp_dir().join(format!("webhook-plans-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "[plans.vip]\nname = \"VIP\"\nproducts = [\"3301:9001\"]\nroles = [\"111\"]\n\
             routes = [\"*\"]\n",
        )
        .unwrap();
        let file = path.display().to_string();
        let base = [
            "--appwrite-endpoint",
            "http://127.0.0.1:1/v1",
            "--appwrite-project",
            "p",
            "--appwrite-key",
            "k",
            "--sellapp-secret",
            "s",
            "--plans-file",
            &file,
        ];
        let (settings, _) = settings(args(&base)).unwrap();
        let item = g3_core::sellapp::LineItem {
            product_id: "3301".into(),
            variant_id: Some("9001".into()),
            subscription_id: None,
        };
        assert_eq!(
            settings.plans.plan_for(&item).map(|p| p.as_str()),
            Some("vip")
        );
        assert_eq!(settings.roles.managed(), vec!["111"]);
        let both = [&base[..], &["--sellapp-plans", "1=vip"]].concat();
        let err = settings_error(&both);
        assert!(
            err.contains("SELLAPP_PLANS") && err.contains("PLANS_FILE"),
            "{err}"
        );
        std::fs::write(&path, "[plans.vip]\nname = \"VIP\"\nroutes = []\n").unwrap();
        let err = settings_error(&base);
        assert!(err.contains("PLANS_FILE: maps no product"), "{err}");
        let _ = std::fs::remove_file(&path);
    }

    fn settings_error(pairs: &[&str]) -> String {
        match settings(args(pairs)) {
            Ok(_) => panic!("settings accepted"),
            Err(e) => e.to_string(),
        }
    }
}
