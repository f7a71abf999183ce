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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    g3_service::init_tracing_with("warn,devstack=info");
    let args = Args::parse();
    for addr in [
        args.emulator_addr,
        args.webhook_addr,
        args.web_addr,
        args.sandbox_addr,
    ] {
        if !addr.ip().is_loopback() {
            anyhow::bail!("devstack only listens on loopback addresses, not {addr}");
        }
    }
    // DISCORD_BOT_TOKEN (and the rest) choose real Discord over the sandbox.
    let discord = devstack::DiscordMode::from_env(|name| std::env::var(name).ok())?;
    let settings = devstack::Settings {
        data_dir: args.data_dir,
        emulator_addr: args.emulator_addr,
        webhook_addr: args.webhook_addr,
        web_addr: args.web_addr,
        sandbox_addr: args.sandbox_addr,
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
