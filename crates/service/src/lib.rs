//! What every service binary shares, so each `main.rs` stays a few lines: `.env` loading and
//! settings checks that name every problem at once ([`config`]), tracing ([`init_tracing`]),
//! SIGTERM/SIGINT ([`shutdown_signal`]), secrets that never print ([`Secret`]), the HTTP/1
//! server with read timeouts and graceful drain ([`http`]), and the `/metrics` text format
//! ([`prometheus`]).

pub mod config;
pub mod http;
pub mod prometheus;

use std::fmt;

/// A secret (API key, token, password) that never prints: `Debug` shows `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`); `LOG_FORMAT=json` writes one JSON
/// object per line for log collectors. Call once, first thing in `main`.
pub fn init_tracing() {
    init_tracing_with("info");
}

/// [`init_tracing`] with another filter for when `RUST_LOG` is unset or unreadable, such as
/// `"warn"` for a CLI whose results go to stdout or `"warn,devstack=info"` for a tool that
/// embeds the services.
pub fn init_tracing_with(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on the first SIGTERM (`docker stop`, systemd, Kubernetes) or SIGINT (Ctrl-C), and
/// logs which arrived. Services pass it to their `run` as the shutdown future.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received: draining"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received: draining"),
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("SIGINT received: draining");
}

/// Compares two secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
