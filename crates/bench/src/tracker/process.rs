//! The real tracker binary as a child process (so its memory is its own, not the bench's), set
//! up through its environment as deployed: the bench's emulator, the fake exchange as Binance
//! spot (`TRACKER_BINANCE_SPOT_WS_URL` and `_REST_URL`). Its output goes to a log file whose
//! tail is shown when it fails.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use testkit::backend::Backend;
use testkit::exchange::{FakeExchange, FakeVenue};
use tokio::process::{Child, Command};

use crate::bot::{Memory, memory_of, trouble_of};

/// The tracker binary built next to this one (`target/<profile>/tracker`).
pub fn default_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    Ok(exe
        .parent()
        .context("the bench binary has no directory")?
        .join("tracker"))
}

pub struct TrackerProcess {
    child: Child,
    pid: u32,
    log: PathBuf,
    /// Where its `/healthz` and `/metrics` answer.
    bind: std::net::SocketAddr,
}

/// The bearer token of the tracker's `/metrics`.
const METRICS_TOKEN: &str = "bench-metrics";

/// Where the tracker finds its backend, its service user and its exchange.
pub struct Env<'a> {
    pub backend: &'a Backend,
    pub fake: &'a FakeExchange,
    pub staff_email: &'a str,
    pub staff_password: &'a str,
    pub dir: &'a Path,
}

impl TrackerProcess {
    pub fn spawn(bin: &Path, env: &Env<'_>) -> anyhow::Result<Self> {
        anyhow::ensure!(
            bin.exists(),
            "{} is missing: build it in the bench's profile (`cargo build -p tracker`; \
             ./scripts/bench.sh builds it) or pass --tracker-bin",
            bin.display()
        );
        let log = env.dir.join("tracker.log");
        let out = std::fs::File::create(&log)?;
        let config = env.backend.client_config();
        let key = config
            .api_key
            .as_ref()
            .context("the backend has no server key")?;
        // A free port for /healthz, taken and released at once.
        let bind = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let child = Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("APPWRITE_ENDPOINT", &config.endpoint)
            .env("APPWRITE_PROJECT_ID", &config.project_id)
            .env("APPWRITE_API_KEY", key.expose())
            .env("TRACKER_STAFF_EMAIL", env.staff_email)
            .env("TRACKER_STAFF_PASSWORD", env.staff_password)
            .env("TRACKER_VENUES", "binance-spot")
            .env(
                "TRACKER_BINANCE_SPOT_WS_URL",
                env.fake.ws_url(FakeVenue::BinanceSpot),
            )
            .env(
                "TRACKER_BINANCE_SPOT_REST_URL",
                env.fake.rest_url(FakeVenue::BinanceSpot),
            )
            .env("TRACKER_BIND", bind.to_string())
            .env("TRACKER_INSTANCE_ID", "bench")
            .env("METRICS_TOKEN", METRICS_TOKEN)
            // No `.env` of the checkout is read: the tracker runs in the bench's own directory.
            .current_dir(env.dir)
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("the tracker exited at once")?;
        Ok(Self {
            child,
            pid,
            log,
            bind,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn memory(&self) -> anyhow::Result<Memory> {
        memory_of(self.pid)
    }

    /// The tracker's counters (`/metrics`), the `tracker_*` lines that are not comments.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let text = reqwest::Client::new()
            .get(format!("http://{}/metrics", self.bind))
            .bearer_auth(METRICS_TOKEN)
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with("tracker_"))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// What went wrong, for an error message: the exit status if it ended, the log's end.
    pub fn trouble(&mut self) -> String {
        trouble_of("tracker", &mut self.child, &self.log)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
