//! `tracker`: settings from flags, the environment and `.env` (`tracker --help`), all checked at
//! once; then [`tracker::run`] until SIGTERM or SIGINT. Exit 0 on a clean stop, 2 on bad settings.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = g3_service::config::parse_args::<tracker::config::Args>();
    g3_service::init_tracing();
    g3_service::config::exit(run(args).await)
}

async fn run(args: tracker::config::Args) -> anyhow::Result<()> {
    let (settings, bind) = args.settings()?;
    let listener = g3_service::http::bind(bind, "TRACKER_BIND").await?;
    tracker::run(settings, listener, g3_service::shutdown_signal()).await
}
