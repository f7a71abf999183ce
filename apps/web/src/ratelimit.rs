//! Sign-in throttling: an in-memory sliding window per key (`ip:…`, `email:…`). Every attempt
//! counts, successful or not; the window forgets attempts older than its length.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

/// How many attempts a key may make within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_ip: usize,
    pub per_email: usize,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_ip: 30,
            per_email: 10,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Above this many keys, idle ones are swept so memory stays bounded under a spray of addresses.
const SWEEP_AT: usize = 10_000;

#[derive(Debug, Default)]
pub struct SlidingWindow {
    hits: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl SlidingWindow {
    /// Records an attempt for `key` unless it already made `limit` within `window`. Returns how
    /// long until the next attempt is allowed when refused.
    pub fn check(&self, key: &str, limit: usize, window: Duration) -> Result<(), Duration> {
        let now = Instant::now();
        let mut hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        if hits.len() >= SWEEP_AT {
            hits.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let q = hits.entry(key.to_owned()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        if q.len() >= limit {
            let oldest = q.front().copied().unwrap_or(now);
            return Err(window.saturating_sub(now.duration_since(oldest)));
        }
        q.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_per_key() {
        let w = SlidingWindow::default();
        let win = Duration::from_secs(60);
        assert!(w.check("a", 2, win).is_ok());
        assert!(w.check("a", 2, win).is_ok());
        let wait = w.check("a", 2, win).unwrap_err();
        assert!(wait <= win && wait > Duration::from_secs(50));
        assert!(w.check("b", 2, win).is_ok());
    }

    #[test]
    fn forgets_old_attempts() {
        let w = SlidingWindow::default();
        assert!(w.check("a", 1, Duration::ZERO).is_ok());
        assert!(w.check("a", 1, Duration::ZERO).is_ok());
    }
}
