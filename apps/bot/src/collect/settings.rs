//! What an operator sets for the collector, and the checks `main` runs on it.

use std::{path::PathBuf, time::Duration};

use crate::Secret;

/// What the collector needs; `None` in the bot's settings turns it off.
#[derive(Clone, Debug)]
pub struct CollectorSettings {
    pub source_guild: u64,
    /// Channels collected; empty collects every channel of the source guild.
    pub channels: Vec<u64>,
    /// The full URL of ingest's events endpoint (`.../ingest/v1/events`).
    pub ingest_url: String,
    pub ingest_secret: Secret,
    /// Most events held while ingest is unreachable.
    pub queue_capacity: usize,
    /// Where the queue is kept across restarts; `None` keeps it in memory only.
    pub spool_dir: Option<PathBuf>,
    /// Back-off between failed deliveries: doubles from `base` up to `max` (half of it random).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Pause between history pages during backfill.
    pub page_delay: Duration,
    /// Timeout of one ingest request.
    pub request_timeout: Duration,
}

impl CollectorSettings {
    /// Production defaults around the four values an operator sets.
    pub fn new(
        source_guild: u64,
        channels: Vec<u64>,
        ingest_url: String,
        ingest_secret: Secret,
    ) -> Self {
        Self {
            source_guild,
            channels,
            ingest_url,
            ingest_secret,
            queue_capacity: 10_000,
            spool_dir: None,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            page_delay: Duration::from_millis(250),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A Discord id (snowflake): 1 to 20 digits, not zero.
pub fn parse_snowflake(text: &str) -> Result<u64, String> {
    let t = text.trim();
    crate::snowflake(t).ok_or_else(|| format!("{t:?} is not a Discord id"))
}

/// A channel list: ids separated by commas, spaces or newlines.
pub fn parse_channel_ids(text: &str) -> Result<Vec<u64>, String> {
    let mut ids = Vec::new();
    for part in text.split(|c: char| c == ',' || c == ';' || c.is_whitespace()) {
        if part.is_empty() {
            continue;
        }
        let id = parse_snowflake(part)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Checks an ingest URL: absolute http(s).
pub fn check_ingest_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(u) => Err(format!(
            "{url:?} is not an http(s) URL (scheme {})",
            u.scheme()
        )),
        Err(e) => Err(format!("{url:?} is not a URL: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_values_are_checked() {
        assert_eq!(parse_channel_ids("1, 2;3\n2").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_channel_ids("").unwrap(), Vec::<u64>::new());
        assert!(parse_channel_ids("12,abc").is_err());
        assert!(parse_snowflake("0").is_err());
        assert!(parse_snowflake("123456789012345678901").is_err());
        assert_eq!(parse_snowflake(" 42 ").unwrap(), 42);
        assert!(check_ingest_url("http://127.0.0.1:8091/ingest/v1/events").is_ok());
        assert!(check_ingest_url("ftp://x/y").is_err());
        assert!(check_ingest_url("/ingest/v1/events").is_err());
    }
}
