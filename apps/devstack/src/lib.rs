//! devstack: the whole stack in one process on this machine. Starts the Appwrite emulator on a
//! file under the data directory, bootstraps the schema, seeds demo accounts and signals, starts
//! a simulated market ([`market`]) and the services (the Sell.app webhook receiver, the web
//! dashboard, the bot, and the tracker following signals on that market) and tells the user
//! where everything is.
//!
//! [`stack`] starts and stops everything, [`seed`] holds the demo data and writes it, and
//! [`banner`] says where everything is. Discord is the sandbox by default ([`sandbox`]: a fake
//! Discord in this process where the bot mirrors, keeps paid roles in sync and web links
//! accounts), or real Discord when `DISCORD_BOT_TOKEN` is set ([`discord`]). devstack's own pages
//! ([`pages`]) show the sandbox and hold the demo store ([`demo_store`]) the paywall leads to.

pub mod banner;
pub mod demo_collector;
pub mod demo_store;
pub mod discord;
pub mod market;
pub mod pages;
pub mod sandbox;
pub mod seed;
pub mod stack;

use std::{future::Future, net::SocketAddr, path::PathBuf, time::Duration};

pub use demo_store::DemoPurchase;
pub use discord::DiscordMode;
pub use market::MarketSettings;
pub use seed::{BOT_SERVICE, DEMO_ACCOUNTS, DemoAccount, TRACKER_SERVICE, WEB_SERVICE};
pub use stack::{Running, route_notes, start};

/// The Sell.app products devstack pretends to sell (as [`DEMO_PLANS_FILE`] maps them).
pub const DEMO_PLANS: &str = "3301:9001=vip,3301=basic";
/// The plans file devstack runs with (written to its data directory for `ops`): VIP unlocks
/// every demo route, Basic only the scalps, so the feed shows the difference. `{store}` is the
/// demo store's address; `{vip_roles}` and `{basic_roles}` the roles of the Discord in use.
pub const DEMO_PLANS_FILE: &str = r#"# devstack's plans (written at every start).
[plans.basic]
name = "Basic"
price = "$19 / month (demo)"
benefits = ["Scalp calls in the web feed", "The Basic role in the Discord server"]
buy_url = "{store}?email={email}"
products = ["3301"]
roles = [{basic_roles}]
routes = ["scalps"]

[plans.vip]
name = "VIP"
price = "$49 / month (demo)"
benefits = ["Every call: VIP calls and scalps", "The VIP role in the Discord server"]
buy_url = "{store}?email={email}"
products = ["3301:9001"]
roles = [{vip_roles}]
routes = ["vip-calls", "scalps"]
"#;

/// [`DEMO_PLANS_FILE`] for a demo store at `store` and the plans' `roles`.
pub fn demo_plans_file(store: &str, roles: &g3_core::plans::PlanRoles) -> String {
    let list = |plan: &str| {
        roles
            .roles_for([plan])
            .iter()
            .map(|r| format!("\"{r}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    DEMO_PLANS_FILE
        .replace("{store}", store)
        .replace("{vip_roles}", &list("vip"))
        .replace("{basic_roles}", &list("basic"))
}
/// The webhook secret devstack's demo purchase is signed with.
pub const DEMO_SELLAPP_SECRET: &str = "devstack-sellapp-secret";
/// The bearer token web and webhook ask for on `/metrics` in devstack.
pub const DEMO_METRICS_TOKEN: &str = "devstack-metrics";
/// The ingest secret the demo collector (and a real collector pointed at devstack) signs with.
pub const DEMO_INGEST_SECRET: &str = "whsec_ZGV2c3RhY2staW5nZXN0LXNlY3JldA==";

/// Everything devstack needs; `main` fills it from flags and the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where the emulator keeps its database and files, and the webhook its spool.
    pub data_dir: PathBuf,
    /// Address of the Appwrite emulator (`127.0.0.1:0` picks a free port).
    pub emulator_addr: SocketAddr,
    /// Address of the Sell.app webhook receiver.
    pub webhook_addr: SocketAddr,
    /// Address of the web dashboard.
    pub web_addr: SocketAddr,
    /// Address of devstack's pages: the Discord sandbox and the demo store.
    pub sandbox_addr: SocketAddr,
    /// Address of the simulated market (a fake exchange speaking Binance spot's API).
    pub market_addr: SocketAddr,
    /// How the simulated market moves, and so how fast demo signals resolve.
    pub market: MarketSettings,
    pub project_id: String,
    pub api_key: String,
    /// How often the demo collector posts a signal through ingest; `None` turns it off.
    pub demo_interval: Option<Duration>,
    /// The sandbox, or real Discord ([`DiscordMode::from_env`]).
    pub discord: DiscordMode,
}

/// Runs until `shutdown` resolves, then stops everything cleanly.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()>,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let running = start(&settings, progress).await?;
    progress(&running.banner(&settings.data_dir));
    shutdown.await;
    progress("stopping");
    running.stop().await?;
    progress("stopped cleanly");
    Ok(())
}

#[cfg(test)]
mod plan_tests {
    use g3_core::{entitlements::PlanConfig, plans::PlanRoles};

    #[test]
    fn the_demo_plans_unlock_different_routes_and_carry_the_roles() {
        let roles = PlanRoles::parse(crate::sandbox::PLAN_ROLES).unwrap();
        let text = crate::demo_plans_file("http://127.0.0.1:1/store", &roles);
        let plans = PlanConfig::from_toml(&text).unwrap();
        let vip = plans.entitlement(["vip"]);
        let basic = plans.entitlement(["basic"]);
        assert!(vip.allows("vip-calls") && vip.allows("scalps"));
        assert!(basic.allows("scalps") && !basic.allows("vip-calls"));
        assert_eq!(plans.roles().managed(), roles.managed());
        assert_eq!(plans.roles().roles_for(["vip"]), roles.roles_for(["vip"]));
        let buy = plans.get("basic").unwrap().buy_url.as_ref().unwrap();
        assert_eq!(
            buy.for_email(Some("a@b.c")),
            "http://127.0.0.1:1/store?email=a%40b.c"
        );
        let parsed = PlanConfig::from_specs(crate::DEMO_PLANS, "").unwrap();
        assert_eq!(
            plans.catalog(),
            parsed.catalog(),
            "DEMO_PLANS says the same"
        );
    }
}
