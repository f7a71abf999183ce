//! `bot`: settings from flags, the environment and `.env` (`bot --help`), all checked at once;
//! then [`bot::run`] until SIGTERM or SIGINT. Exit 0 on a clean stop, 2 on bad settings.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = g3_service::config::parse_args::<bot::config::Args>();
    g3_service::init_tracing();
    g3_service::config::exit(run(args).await)
}

async fn run(args: bot::config::Args) -> anyhow::Result<()> {
    let settings = args.settings()?;
    bot::run(settings, g3_service::shutdown_signal()).await
}
