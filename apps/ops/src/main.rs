//! `ops`: admin CLI. Settings come from flags or the environment (see `.env.example`).

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use g3_access::{Access, Cause};
use g3_appwrite::ApiKey;
use g3_core::{
    Email,
    entitlements::{PlanConfig, PlanSources},
    plans::Plan,
};
use g3_store::bootstrap;
use ops::{Settings, commands};

#[derive(Parser, Debug)]
#[command(version, about = "Admin CLI for G3netic Signals")]
struct Cli {
    /// Appwrite REST endpoint, including /v1.
    #[arg(
        long,
        env = "APPWRITE_ENDPOINT",
        global = true,
        default_value = "http://127.0.0.1:8090/v1"
    )]
    endpoint: String,
    /// Appwrite project id.
    #[arg(long, env = "APPWRITE_PROJECT_ID", global = true, default_value = "g3")]
    project: String,
    /// Appwrite server API key (prefer the environment variable: flags show up in `ps`).
    #[arg(
        long = "api-key",
        env = "APPWRITE_API_KEY",
        global = true,
        hide_env_values = true
    )]
    api_key: Option<String>,
    /// The plans file (TOML, see `.env.example`) shared with web, webhook and bot: products
    /// (to retry deliveries), Discord roles and the routes each plan unlocks (`lookup`).
    #[arg(long, env = "PLANS_FILE", global = true)]
    plans_file: Option<String>,
    /// Without PLANS_FILE: Sell.app product ids to plans (`PRODUCT[:VARIANT]=PLAN,...`); needed
    /// to retry deliveries.
    #[arg(long, env = "SELLAPP_PLANS", global = true, default_value = "")]
    plans: String,
    /// Without PLANS_FILE: Discord roles per plan (`PLAN=ROLE_ID[|ROLE_ID],...`), kept in role
    /// state on grant/revoke.
    #[arg(long, env = "PLAN_ROLES", global = true, default_value = "")]
    plan_roles: String,
    /// Who is acting, for the audit log.
    #[arg(long, env = "OPS_ACTOR", global = true)]
    actor: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create database g3 with every collection, attribute and index, the teams and the bucket.
    /// Idempotent: a second run changes nothing and says so.
    Bootstrap,
    /// Compare the schema in code with the backend.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Give a customer a plan (audited).
    Grant {
        #[arg(long)]
        email: String,
        #[arg(long)]
        plan: String,
        /// Last day of access (`2026-12-31`) or an RFC 3339 time; open-ended when omitted.
        #[arg(long)]
        until: Option<String>,
        /// Why, for the audit log.
        #[arg(long, default_value = "manual grant")]
        reason: String,
    },
    /// End a customer's access at once: every plan, or one (audited).
    Revoke {
        #[arg(long)]
        email: String,
        #[arg(long)]
        plan: Option<String>,
        #[arg(long, default_value = "manual revoke")]
        reason: String,
    },
    /// Show everything about a customer: account, teams, Discord link and roles, subscriptions
    /// with history, webhook events and failures, audit trail.
    Lookup {
        #[arg(long)]
        email: String,
    },
    /// Expire subscriptions whose paid period has ended (the webhook service does this too).
    Expire,
    /// Failed webhook deliveries.
    #[command(subcommand)]
    Failures(FailuresCommand),
    /// Which source channels are ingested, and where the bot mirrors them.
    #[command(subcommand)]
    Routes(RoutesCommand),
    /// Discord roles the bot manages (needs PLAN_ROLES).
    #[command(subcommand)]
    Roles(RolesCommand),
    /// Customers' Discord links.
    #[command(subcommand)]
    Link(LinkCommand),
    /// Who may use the admin console (team `staff`).
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Accounts the services sign in as for Realtime (web's live feed, the bot).
    #[command(subcommand, name = "service-user")]
    ServiceUser(ServiceUserCommand),
    /// Signal outcomes kept by the tracker.
    #[command(subcommand)]
    Outcomes(OutcomesCommand),
    /// Stored signals.
    #[command(subcommand)]
    Signals(SignalsCommand),
}

#[derive(Subcommand, Debug)]
enum SignalsCommand {
    /// Rewrite pairs stored in another spelling ("BTCUSDT", from other tools or an import) as
    /// the parser stores them ("BTC/USDT"), so pair filters find them and read their index in
    /// order. Only the pair changes: no mirror is edited. Safe to run again.
    #[command(name = "normalize-pairs")]
    NormalizePairs {
        /// Only say what would change.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand, Debug)]
enum OutcomesCommand {
    /// Judge outcomes again from their recorded revisions and the stored prices, and rewrite
    /// the documents that differ.
    Recompute {
        /// One signal's outcome.
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        signal: Option<String>,
        /// Every stored outcome.
        #[arg(long)]
        all: bool,
        /// Only say what would change.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand, Debug)]
enum StaffCommand {
    /// Make an existing account staff (they sign up on the dashboard first; audited).
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "staff added")]
        reason: String,
    },
    /// Take an account out of staff (audited).
    Remove {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "staff removed")]
        reason: String,
    },
    /// List staff members and service users.
    List,
}

#[derive(Subcommand, Debug)]
enum ServiceUserCommand {
    /// Create a service user (or set its password again): verified, member of team `staff`.
    /// Prints a generated password once unless --password-env names a variable holding one.
    Create {
        /// e.g. `web@service.internal` for WEB_SERVICE_EMAIL, `bot@service.internal` for
        /// BOT_STAFF_EMAIL.
        #[arg(long)]
        email: String,
        /// Take the password from this environment variable (keeps it out of `ps` and logs).
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum RolesCommand {
    /// Recompute who should hold which role and have the bot check Discord again now.
    Resync {
        /// One customer.
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        email: Option<String>,
        /// Everyone with a Discord link.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand, Debug)]
enum LinkCommand {
    /// The Discord account a customer linked, or the customer a Discord account belongs to.
    Show {
        #[arg(
            long,
            required_unless_present = "discord_id",
            conflicts_with = "discord_id"
        )]
        email: Option<String>,
        #[arg(long)]
        discord_id: Option<String>,
    },
    /// Unlink a customer's Discord account (audited); the bot removes the managed roles.
    Remove {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "manual unlink")]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
enum RoutesCommand {
    /// Add (or replace) a route.
    Add {
        /// Route key, e.g. `vip` (letters, digits, . - _).
        #[arg(long)]
        key: String,
        /// Source channel id (in the source guild).
        #[arg(long)]
        channel: String,
        /// Source guild id.
        #[arg(long)]
        guild: Option<String>,
        /// Display name shown on the feed.
        #[arg(long)]
        name: String,
        /// Customer channel ids the bot mirrors to (repeat or comma-separate).
        #[arg(long = "customer-channel", value_delimiter = ',')]
        customer_channels: Vec<String>,
        /// Add it disabled (its messages are dropped until enabled).
        #[arg(long)]
        disabled: bool,
    },
    /// List routes.
    List,
    /// Remove a route.
    Remove {
        #[arg(long)]
        key: String,
    },
}

#[derive(Subcommand, Debug)]
enum SchemaCommand {
    /// List every difference between the backend and the schema in code; exit 1 if any.
    Diff,
}

#[derive(Subcommand, Debug)]
enum FailuresCommand {
    /// Open failures (add --all for resolved ones too).
    List {
        #[arg(long)]
        all: bool,
    },
    /// One failure with its payload and headers.
    Show { id: String },
    /// Replay one failure now, or every open one with --all.
    Retry {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        #[arg(long)]
        all: bool,
    },
}

fn email(raw: &str) -> anyhow::Result<Email> {
    Email::parse(raw).with_context(|| format!("--email {raw:?}"))
}

fn plan(raw: &str) -> anyhow::Result<Plan> {
    Plan::parse(raw).with_context(|| format!("--plan {raw:?}"))
}

/// The plans: `--plans-file`/`PLANS_FILE`, or `SELLAPP_PLANS` and `PLAN_ROLES` (never both).
fn plan_config(
    plans_file: Option<&str>,
    sellapp_plans: &str,
    plan_roles: &str,
) -> anyhow::Result<PlanConfig> {
    let file = plans_file
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|path| std::fs::read_to_string(path).with_context(|| format!("PLANS_FILE {path}")))
        .transpose()?;
    PlanConfig::from_sources(PlanSources {
        file: file.as_deref(),
        sellapp_plans: Some(sellapp_plans),
        plan_roles: Some(plan_roles),
    })
    .map_err(|e| anyhow::anyhow!("{}: {e}", e.setting))
}

fn main() -> std::process::ExitCode {
    let cli: Cli = g3_service::config::parse_args();
    // Commands print their results on stdout; logs (warnings and worse by default) go to stderr.
    g3_service::init_tracing_with("warn");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return g3_service::config::exit(Err(e.into())),
    };
    g3_service::config::exit(runtime.block_on(run(cli)))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let Some(key) = g3_service::config::given(cli.api_key.as_deref()) else {
        return Err(g3_service::config::ConfigError::one(
            "APPWRITE_API_KEY",
            "is not set (or pass --api-key): ops needs the server API key",
        )
        .into());
    };
    let settings = Settings {
        endpoint: cli.endpoint,
        project_id: cli.project,
        api_key: ApiKey::new(key),
    };
    let client = settings.client()?;
    client
        .ping()
        .await
        .with_context(|| format!("cannot reach Appwrite at {}", settings.endpoint))?;
    let config = plan_config(cli.plans_file.as_deref(), &cli.plans, &cli.plan_roles)?;
    let plans = config.catalog().clone();
    let access = Access::new(client.clone(), plans.clone()).with_plans(&config);
    let actor = cli
        .actor
        .or_else(|| std::env::var("USER").ok())
        .map(|a| format!("ops:{a}"))
        .unwrap_or_else(|| "ops".into());
    let admin = |reason: String| Cause::Admin {
        actor: actor.clone(),
        reason,
    };

    let output = match cli.command {
        Command::Bootstrap => {
            let mut print = |line: &str| println!("{line}");
            let outcome = bootstrap::run(&client, &mut print).await?;
            let mut out = if outcome.applied == 0 {
                "schema is up to date: nothing to change".to_owned()
            } else {
                format!("done: {} change(s) applied", outcome.applied)
            };
            if !outcome.drift.is_empty() {
                out.push_str(&format!(
                    "\n{} difference(s) left for a human (see warnings above; `ops schema diff` lists them)",
                    outcome.drift.len()
                ));
            }
            out
        }
        Command::Schema(SchemaCommand::Diff) => {
            let changes = bootstrap::plan(&client).await?;
            if changes.is_empty() {
                "backend matches the schema in code".to_owned()
            } else {
                for change in &changes {
                    println!("{change}");
                }
                println!("{} difference(s)", changes.len());
                std::process::exit(1);
            }
        }
        Command::Grant {
            email: e,
            plan: p,
            until,
            reason,
        } => {
            let now = time::OffsetDateTime::now_utc();
            let until = until
                .as_deref()
                .map(|raw| g3_core::until::parse_until(raw, now))
                .transpose()
                .context("--until")?;
            let plan = plan(&p)?;
            if config.has_routes() && config.get(plan.as_str()).is_none() {
                eprintln!("warning: plan {plan} is not in PLANS_FILE: it unlocks no route");
            }
            commands::grant(&access, &email(&e)?, &plan, until, &admin(reason)).await?
        }
        Command::Revoke {
            email: e,
            plan: p,
            reason,
        } => {
            let p = p.as_deref().map(plan).transpose()?;
            commands::revoke(&access, &email(&e)?, p.as_ref(), &admin(reason)).await?
        }
        Command::Lookup { email: e } => commands::lookup(&access, &email(&e)?).await?,
        Command::Expire => {
            let n = access.expire_due(time::OffsetDateTime::now_utc()).await?;
            format!("{n} subscription(s) expired")
        }
        Command::Routes(RoutesCommand::Add {
            key,
            channel,
            guild,
            name,
            customer_channels,
            disabled,
        }) => {
            let route = g3_store::models::Route {
                source_channel_id: channel,
                source_guild_id: guild,
                name,
                customer_channel_ids: customer_channels,
                enabled: Some(!disabled),
            };
            commands::routes_add(&client, &key, &route).await?
        }
        Command::Routes(RoutesCommand::List) => commands::routes_list(&client).await?,
        Command::Routes(RoutesCommand::Remove { key }) => {
            commands::routes_remove(&client, &key).await?
        }
        Command::Roles(RolesCommand::Resync { email: e, all: _ }) => {
            let e = e.as_deref().map(email).transpose()?;
            commands::roles_resync(&access, e.as_ref(), &actor, &mut |line| println!("{line}"))
                .await?
        }
        Command::Link(LinkCommand::Show {
            email: e,
            discord_id,
        }) => {
            let e = e.as_deref().map(email).transpose()?;
            commands::link_show(&access, e.as_ref(), discord_id.as_deref()).await?
        }
        Command::Link(LinkCommand::Remove { email: e, reason }) => {
            commands::link_remove(&access, &email(&e)?, &actor, &reason).await?
        }
        Command::Failures(FailuresCommand::List { all }) => {
            commands::failures_list(&access, all).await?
        }
        Command::Failures(FailuresCommand::Show { id }) => {
            commands::failures_show(&access, &id).await?
        }
        Command::Staff(StaffCommand::Add { email: e, reason }) => {
            commands::staff_add(&access, &email(&e)?, &admin(reason)).await?
        }
        Command::Staff(StaffCommand::Remove { email: e, reason }) => {
            commands::staff_remove(&access, &email(&e)?, &admin(reason)).await?
        }
        Command::Staff(StaffCommand::List) => commands::staff_list(&client).await?,
        Command::Outcomes(OutcomesCommand::Recompute {
            signal,
            all: _,
            dry_run,
        }) => {
            let scope = match signal {
                Some(id) => ops::outcomes::Scope::Signal(id),
                None => ops::outcomes::Scope::All,
            };
            ops::outcomes::recompute(&client, &scope, dry_run).await?
        }
        Command::Signals(SignalsCommand::NormalizePairs { dry_run }) => {
            let mut shown = 0;
            ops::signals::normalize_pairs(&client, dry_run, |read| {
                if read >= shown + 5_000 {
                    shown = read;
                    eprintln!("ops: {read} signals read");
                }
            })
            .await?
        }
        Command::ServiceUser(ServiceUserCommand::Create {
            email: e,
            password_env,
        }) => {
            let (password, generated) = match password_env {
                Some(var) => (
                    g3_service::config::given(std::env::var(&var).ok().as_deref())
                        .with_context(|| format!("--password-env: {var} is not set"))?,
                    false,
                ),
                None => (commands::generate_password(), true),
            };
            let cause = admin("service user".into());
            let mut out =
                commands::service_user_create(&access, &email(&e)?, &password, &cause).await?;
            if generated {
                out.push_str(&format!(
                    "\npassword (shown once; put it in WEB_SERVICE_PASSWORD or BOT_STAFF_PASSWORD): {password}"
                ));
            }
            out
        }
        Command::Failures(FailuresCommand::Retry { id, all: _ }) => {
            if plans.is_empty() {
                eprintln!(
                    "warning: no product is mapped to a plan (PLANS_FILE or SELLAPP_PLANS): \
                     deliveries that buy a plan will fail again"
                );
            }
            commands::failures_retry(&access, id.as_deref(), &mut |line| println!("{line}")).await?
        }
    };
    println!("{output}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn plans_come_from_the_file_or_the_variables_never_both() {
        let path = std::env::temp_dir().join(format!("ops-plans-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "[plans.vip]\nname = \"VIP\"\nproducts = [\"1\"]\nroutes = [\"vip-calls\"]\n",
        )
        .unwrap();
        let file = path.display().to_string();
        let cli = Cli::try_parse_from(["ops", "--plans-file", &file, "bootstrap"]).unwrap();
        let config = plan_config(cli.plans_file.as_deref(), &cli.plans, &cli.plan_roles).unwrap();
        assert_eq!(config.get("vip").unwrap().name, "VIP");
        let cli = Cli::try_parse_from([
            "ops",
            "--plans-file",
            &file,
            "--plans",
            "1=vip",
            "bootstrap",
        ])
        .unwrap();
        let err = plan_config(cli.plans_file.as_deref(), &cli.plans, &cli.plan_roles)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("SELLAPP_PLANS: is set together with PLANS_FILE"),
            "{err}"
        );
        let _ = std::fs::remove_file(&path);
        let cli = Cli::try_parse_from(["ops", "--plans-file", &file, "bootstrap"]).unwrap();
        assert!(
            plan_config(cli.plans_file.as_deref(), &cli.plans, &cli.plan_roles)
                .unwrap_err()
                .to_string()
                .contains("PLANS_FILE")
        );
    }

    #[test]
    fn routes_add_key_is_the_route_key_not_the_api_key() {
        let cli = Cli::try_parse_from([
            "ops",
            "routes",
            "add",
            "--key",
            "vip",
            "--channel",
            "1",
            "--name",
            "VIP",
        ])
        .unwrap();
        assert_ne!(cli.api_key.as_deref(), Some("vip"));
        match cli.command {
            Command::Routes(RoutesCommand::Add { key, .. }) => assert_eq!(key, "vip"),
            other => panic!("parsed as {other:?}"),
        }
        let cli =
            Cli::try_parse_from(["ops", "--api-key", "k", "routes", "remove", "--key", "vip"])
                .unwrap();
        assert_eq!(cli.api_key.as_deref(), Some("k"));
    }

    #[test]
    fn staff_and_service_user_commands_parse() {
        let cli = Cli::try_parse_from(["ops", "staff", "add", "--email", "a@b.c"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Staff(StaffCommand::Add { .. })
        ));
        let cli = Cli::try_parse_from([
            "ops",
            "service-user",
            "create",
            "--email",
            "web@svc.local",
            "--password-env",
            "P",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::ServiceUser(ServiceUserCommand::Create {
                password_env: Some(_),
                ..
            })
        ));
    }
}
