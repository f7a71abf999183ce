//! `appwrite-emulator`: run the emulator as a standalone server.

use std::path::PathBuf;

/// A local Appwrite 1.8-compatible server backed by SQLite.
#[derive(clap::Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "EMULATOR_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
    /// Project id clients must send in `X-Appwrite-Project`.
    #[arg(long, env = "APPWRITE_PROJECT_ID", default_value = "g3")]
    project: String,
    /// Server API key clients send in `X-Appwrite-Key`.
    #[arg(long, env = "APPWRITE_API_KEY", default_value = "dev-server-key")]
    key: String,
    /// SQLite database file; omit to keep everything in memory.
    #[arg(long, env = "EMULATOR_DB")]
    db: Option<PathBuf>,
    /// Directory for uploaded files (defaults to `<db>.files` next to the database file).
    #[arg(long, env = "EMULATOR_STORAGE_DIR")]
    storage_dir: Option<PathBuf>,
}

/// mimalloc rather than glibc's allocator: pages, Appwrite answers and their JSON are built and
/// dropped across threads, where glibc's arenas, their locks and consolidation took about a
/// fifth of the CPU (perf, `./scripts/bench.sh --only web-filters`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr; stdout carries only the address line below.
    g3_service::init_tracing_with("info,tower_http=warn");
    // A `.env` beside it (as in the compose file's local profile) gives the same project id
    // and key the services read.
    let args: Args = g3_service::config::parse_args();
    let storage_dir = args
        .storage_dir
        .or_else(|| args.db.as_ref().map(|db| db.with_extension("files")));
    let listener = tokio::net::TcpListener::bind(&args.bind).await?;
    // Tools and tests that start the binary on port 0 read the address from this line.
    println!(
        "appwrite emulator listening on http://{}",
        listener.local_addr()?
    );
    let config = appwrite_emulator::Config {
        project_id: args.project,
        api_key: args.key,
        database_path: args.db,
        storage_dir,
        public_url: String::new(),
        require_indexes: false,
    };
    // SIGTERM (`docker stop`) and SIGINT both stop it cleanly.
    appwrite_emulator::run(config, listener, g3_service::shutdown_signal()).await
}
