//! `ops`: admin CLI. Settings come from flags or the environment (see `.env.example`).

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use g3_access::{Access, Cause};
use g3_appwrite::ApiKey;
use g3_core::{
    Email,
    plans::{Plan, PlanCatalog, PlanRoles},
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
    #[arg(long, env = "APPWRITE_API_KEY", global = true, hide_env_values = true)]
    key: Option<String>,
    /// Sell.app product ids to plans (`PRODUCT[:VARIANT]=PLAN,...`); needed to retry deliveries.
    #[arg(long, env = "SELLAPP_PLANS", global = true, default_value = "")]
    plans: String,
    /// Discord roles per plan (`PLAN=ROLE_ID[|ROLE_ID],...`), kept in role state on grant/revoke.
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
    /// with history, webhook events and failures.
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let key = cli
        .key
        .filter(|k| !k.is_empty())
        .context("no API key: set APPWRITE_API_KEY (or pass --key)")?;
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
    let plans = PlanCatalog::parse(&cli.plans).context("SELLAPP_PLANS")?;
    let roles = PlanRoles::parse(&cli.plan_roles).context("PLAN_ROLES")?;
    let access = Access::new(client.clone(), plans.clone()).with_roles(roles);
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
            let until = until.as_deref().map(commands::parse_until).transpose()?;
            commands::grant(&access, &email(&e)?, &plan(&p)?, until, &admin(reason)).await?
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
        Command::Failures(FailuresCommand::Retry { id, all: _ }) => {
            if plans.is_empty() {
                eprintln!(
                    "warning: SELLAPP_PLANS is empty: deliveries that buy a plan will fail again"
                );
            }
            commands::failures_retry(&access, id.as_deref(), &mut |line| println!("{line}")).await?
        }
    };
    println!("{output}");
    Ok(())
}
