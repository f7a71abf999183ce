//! Sign-in throttling: an in-memory sliding window per key. Refusals are per client address
//! and per (email, address), so nobody can lock an owner out from elsewhere; an email's failures
//! from all addresses together only slow its attempts down ([`slowdown`]), never refuse them.
//! Password and code sign-ins count failures only; the other throttled forms (mailed codes,
//! resets, sign-ups, password changes) count every request.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

/// How many attempts a key may make within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Per client address, whatever the email (`WEB_SIGNIN_PER_IP`).
    pub per_ip: usize,
    /// Per (email, client address) (`WEB_SIGNIN_PER_EMAIL`); past this many failures for an
    /// email from all addresses together, its attempts are slowed down instead.
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

/// The longest an email's attempts are held back, however many failures it had.
pub const MAX_SLOWDOWN: Duration = Duration::from_secs(4);

/// How long an attempt for an email waits after `failures` recent failures for it from
/// anywhere: nothing up to `limit`, then half a second doubling per failure, at most
/// [`MAX_SLOWDOWN`]. A slowdown, not a lock: the owner still gets in.
pub fn slowdown(failures: usize, limit: usize) -> Duration {
    if failures < limit.max(1) {
        return Duration::ZERO;
    }
    let doublings = u32::try_from(failures - limit.max(1))
        .unwrap_or(u32::MAX)
        .min(8);
    (Duration::from_millis(500) * 2u32.pow(doublings)).min(MAX_SLOWDOWN)
}

impl SlidingWindow {
    /// Refuses (with the time until it would be allowed) when `key` already made `limit`
    /// attempts within `window`, without recording one.
    pub fn peek(&self, key: &str, limit: usize, window: Duration) -> Result<(), Duration> {
        let now = Instant::now();
        let hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        let Some(q) = hits.get(key) else {
            return Ok(());
        };
        let recent: Vec<Instant> = q
            .iter()
            .copied()
            .filter(|t| now.duration_since(*t) < window)
            .collect();
        if recent.len() >= limit {
            let oldest = recent.first().copied().unwrap_or(now);
            return Err(window.saturating_sub(now.duration_since(oldest)));
        }
        Ok(())
    }

    /// How many attempts `key` made within `window`.
    pub fn count(&self, key: &str, window: Duration) -> usize {
        let now = Instant::now();
        let hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        hits.get(key).map_or(0, |q| {
            q.iter()
                .filter(|t| now.duration_since(**t) < window)
                .count()
        })
    }

    /// Records an attempt for `key` (a failure, for the keys that count failures only).
    pub fn record(&self, key: &str, window: Duration) {
        let now = Instant::now();
        self.recent(key, window, now, |q| q.push_back(now));
    }

    /// Records an attempt for `key` unless it already made `limit` within `window`. Returns how
    /// long until the next attempt is allowed when refused.
    pub fn check(&self, key: &str, limit: usize, window: Duration) -> Result<(), Duration> {
        let now = Instant::now();
        self.recent(key, window, now, |q| {
            if q.len() >= limit {
                let oldest = q.front().copied().unwrap_or(now);
                return Err(window.saturating_sub(now.duration_since(oldest)));
            }
            q.push_back(now);
            Ok(())
        })
    }

    /// Runs `f` on `key`'s attempts within `window` (older ones dropped), under the lock; every
    /// so often keys with nothing recent are swept so the map stays small.
    fn recent<T>(
        &self,
        key: &str,
        window: Duration,
        now: Instant,
        f: impl FnOnce(&mut VecDeque<Instant>) -> T,
    ) -> T {
        let mut hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        if hits.len() >= SWEEP_AT {
            hits.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let q = hits.entry(key.to_owned()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        f(q)
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
    fn peeking_records_nothing() {
        let w = SlidingWindow::default();
        let win = Duration::from_secs(60);
        assert!(w.peek("a", 1, win).is_ok());
        assert!(w.peek("a", 1, win).is_ok());
        w.record("a", win);
        assert!(w.peek("a", 1, win).is_err());
        assert_eq!(w.count("a", win), 1);
        assert_eq!(w.count("b", win), 0);
    }

    #[test]
    fn an_email_is_slowed_down_never_refused() {
        assert_eq!(slowdown(0, 10), Duration::ZERO);
        assert_eq!(slowdown(9, 10), Duration::ZERO);
        assert_eq!(slowdown(10, 10), Duration::from_millis(500));
        assert_eq!(slowdown(11, 10), Duration::from_secs(1));
        assert_eq!(slowdown(10_000, 10), MAX_SLOWDOWN);
        assert_eq!(slowdown(usize::MAX, 0), MAX_SLOWDOWN);
    }

    #[test]
    fn forgets_old_attempts() {
        let w = SlidingWindow::default();
        assert!(w.check("a", 1, Duration::ZERO).is_ok());
        assert!(w.check("a", 1, Duration::ZERO).is_ok());
    }
}
