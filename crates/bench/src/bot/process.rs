//! The real bot binary as a child process (so its memory is its own, not the bench's), set up
//! through its environment as deployed: the bench's emulator, the fake Discord as
//! `DISCORD_API_URL` over plain http, no gateway. Its output goes to a log file whose tail is
//! shown when it fails.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tokio::process::{Child, Command};

use super::{STAFF_EMAIL, STAFF_PASSWORD, Stack};

/// The bot binary built next to this one (`target/<profile>/bot`).
pub fn default_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    Ok(exe
        .parent()
        .context("the bench binary has no directory")?
        .join("bot"))
}

pub struct BotProcess {
    child: Child,
    pid: u32,
    log: PathBuf,
}

/// Resident memory of a process, from `/proc/<pid>/status`.
pub struct Memory {
    /// `VmRSS`: resident now, KB.
    pub rss_kb: u64,
    /// `VmHWM`: the most it was ever resident, KB.
    pub peak_kb: u64,
}

impl BotProcess {
    pub fn spawn(bin: &Path, stack: &Stack) -> anyhow::Result<Self> {
        anyhow::ensure!(
            bin.exists(),
            "{} is missing: build it in the bench's profile (`cargo build -p bot`; \
             ./scripts/bench.sh builds it) or pass --bot-bin",
            bin.display()
        );
        let dir = stack.dir.path();
        let log = dir.join("bot.log");
        let out = std::fs::File::create(&log)?;
        let config = stack.backend.client_config();
        let key = config
            .api_key
            .as_ref()
            .context("the backend has no server key")?;
        let child = Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("APPWRITE_ENDPOINT", &config.endpoint)
            .env("APPWRITE_PROJECT_ID", &config.project_id)
            .env("APPWRITE_API_KEY", key.expose())
            .env("DISCORD_BOT_TOKEN", "bench-token")
            .env("DISCORD_API_URL", stack.fake.base_url())
            .env("BOT_STAFF_EMAIL", STAFF_EMAIL)
            .env("BOT_STAFF_PASSWORD", STAFF_PASSWORD)
            .env("BOT_GATEWAY", "off")
            .env("MIRROR_ORDER", "oldest-first")
            // No `.env` of the checkout is read: the bot runs in the stack's own directory.
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("the bot exited at once")?;
        Ok(Self { child, pid, log })
    }

    pub fn memory(&self) -> anyhow::Result<Memory> {
        memory_of(self.pid)
    }

    /// What went wrong, for an error message: the exit status if it ended, the log's end.
    pub fn trouble(&mut self) -> String {
        trouble_of("bot", &mut self.child, &self.log)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// What went wrong with child process `name`, for an error message: its exit status if it
/// ended, and the end of its log.
pub fn trouble_of(name: &str, child: &mut tokio::process::Child, log: &std::path::Path) -> String {
    let exited = match child.try_wait() {
        Ok(Some(status)) => format!("the {name} exited ({status})"),
        _ => format!("the {name} is running"),
    };
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!("{exited}; end of {}:\n{tail}", log.display())
}

/// Resident memory of process `pid`, from `/proc/<pid>/status`.
pub fn memory_of(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {name} in {path}"))
    };
    Ok(Memory {
        rss_kb: field("VmRSS:")?,
        peak_kb: field("VmHWM:")?,
    })
}
