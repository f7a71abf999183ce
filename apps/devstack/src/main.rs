//! `cargo run -p devstack`: the whole stack locally, seeded. See README.md.

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;

/// Runs G3netic Signals locally on an embedded Appwrite emulator, with demo data.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Where to keep the emulator's database and files.
    #[arg(long, env = "DEVSTACK_DATA_DIR", default_value = ".devstack")]
    data_dir: PathBuf,
    /// Address of the Appwrite emulator.
    #[arg(long, env = "DEVSTACK_EMULATOR_ADDR", default_value = "127.0.0.1:8090")]
    emulator_addr: SocketAddr,
    /// Address of the Sell.app webhook receiver.
    #[arg(long, env = "DEVSTACK_WEBHOOK_ADDR", default_value = "127.0.0.1:8091")]
    webhook_addr: SocketAddr,
    /// Address of the web dashboard.
    #[arg(long, env = "DEVSTACK_WEB_ADDR", default_value = "127.0.0.1:8092")]
    web_addr: SocketAddr,
    /// Address of devstack's pages: the Discord sandbox and the demo store (port 0: a free one,
    /// printed in the banner).
    #[arg(long, env = "DEVSTACK_SANDBOX_ADDR", default_value = "127.0.0.1:0")]
    sandbox_addr: SocketAddr,
    /// Seconds between the demo collector's signals (0 turns it off).
    #[arg(long, env = "DEVSTACK_DEMO_INTERVAL_SECS", default_value_t = 8)]
    demo_interval_secs: u64,
    /// Address of the simulated market, a fake exchange speaking Binance spot's API (port 0:
    /// a free one, printed in the banner).
    #[arg(long, env = "DEVSTACK_MARKET_ADDR", default_value = "127.0.0.1:0")]
    market_addr: SocketAddr,
    /// How much the simulated prices move in a minute, in percent (one standard deviation).
    #[arg(long, env = "DEVSTACK_MARKET_VOLATILITY", default_value_t = 0.4)]
    market_volatility: f64,
    /// Seed of the simulated market's random walks.
    #[arg(long, env = "DEVSTACK_MARKET_SEED", default_value_t = 16)]
    market_seed: u64,
}

/// mimalloc rather than glibc's allocator: pages, Appwrite answers and their JSON are built and
/// dropped across threads, where glibc's arenas, their locks and consolidation took about a
/// fifth of the CPU (perf, `./scripts/bench.sh --only web-filters`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    g3_service::init_tracing_with("warn,devstack=info");
    let args = Args::parse();
    for addr in [
        args.emulator_addr,
        args.webhook_addr,
        args.web_addr,
        args.sandbox_addr,
        args.market_addr,
    ] {
        if !addr.ip().is_loopback() {
            anyhow::bail!("devstack only listens on loopback addresses, not {addr}");
        }
    }
    if !(args.market_volatility.is_finite()
        && args.market_volatility > 0.0
        && args.market_volatility <= 10.0)
    {
        anyhow::bail!(
            "DEVSTACK_MARKET_VOLATILITY must be a percentage above 0 and at most 10, not {}",
            args.market_volatility
        );
    }
    // DISCORD_BOT_TOKEN (and the rest) choose real Discord over the sandbox.
    let discord = devstack::DiscordMode::from_env(|name| std::env::var(name).ok())?;
    let settings = devstack::Settings {
        data_dir: args.data_dir,
        emulator_addr: args.emulator_addr,
        webhook_addr: args.webhook_addr,
        web_addr: args.web_addr,
        sandbox_addr: args.sandbox_addr,
        market_addr: args.market_addr,
        market: devstack::MarketSettings {
            volatility: args.market_volatility / 100.0,
            seed: args.market_seed,
            ..Default::default()
        },
        project_id: "g3".to_owned(),
        api_key: "devstack-server-key".to_owned(),
        demo_interval: (args.demo_interval_secs > 0)
            .then(|| std::time::Duration::from_secs(args.demo_interval_secs)),
        discord,
    };
    // Ctrl-C or SIGTERM stops every service cleanly.
    let shutdown = g3_service::shutdown_signal();
    devstack::run(settings, shutdown, &mut |line| println!("{line}")).await
}
