//! A short-lived memory of who a session belongs to, so a page and the requests it causes
//! (stream, assets, the next page) do not each ask Appwrite `GET /account` again.
//!
//! What may be reused, and for how long, is deliberately narrow:
//! - only the session -> user lookup; what the user may see (team membership) is read on
//!   every request, so a revoked plan takes effect at once;
//! - only for `GET` requests: every form post checks the session with Appwrite afresh;
//! - for at most the TTL (2 s by default, `WEB_AUTH_CACHE_MS`; 0 turns it off), so a session
//!   ended elsewhere (another service, the Appwrite console) stops working within it;
//! - whatever this service itself changes about a user (sign-out, sign-out everywhere,
//!   verification, password changes) forgets them at once.
//!
//! Keys are SHA-256 digests of session secrets, never the secrets themselves.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use g3_appwrite::User;
use sha2::{Digest as _, Sha256};

/// Entries kept at most; past it, expired ones are swept, and if that is not enough, all.
const MAX_ENTRIES: usize = 50_000;

/// A session's digest: how the cache (and the pending Discord links) name a session without
/// keeping its secret.
pub type Key = [u8; 32];

#[derive(Debug)]
pub struct AuthCache {
    ttl: Duration,
    sessions: Mutex<HashMap<Key, (User, Instant)>>,
}

pub fn key(secret: &str) -> Key {
    Sha256::digest(secret.as_bytes()).into()
}

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            sessions: Mutex::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    fn fresh(&self, at: Instant) -> bool {
        at.elapsed() < self.ttl
    }

    /// The user behind a session secret, if Appwrite vouched for it within the TTL.
    pub fn user(&self, secret: &str) -> Option<User> {
        if !self.enabled() {
            return None;
        }
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        match sessions.get(&key(secret)) {
            Some((user, at)) if self.fresh(*at) => Some(user.clone()),
            _ => None,
        }
    }

    pub fn remember_user(&self, secret: &str, user: &User) {
        if !self.enabled() {
            return;
        }
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if sessions.len() >= MAX_ENTRIES {
            sessions.retain(|_, (_, at)| now.duration_since(*at) < self.ttl);
            if sessions.len() >= MAX_ENTRIES {
                sessions.clear();
            }
        }
        sessions.insert(key(secret), (user.clone(), now));
    }

    pub fn forget_session(&self, secret: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(&key(secret));
    }

    /// Forgets every session of a user.
    pub fn forget_user(&self, user_id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (u, _)| u.id != user_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> User {
        serde_json::from_value(serde_json::json!({
            "$id": id, "name": "", "email": format!("{id}@x.io"), "emailVerification": true,
            "status": true, "labels": [], "prefs": {}
        }))
        .unwrap()
    }

    #[test]
    fn remembers_within_the_ttl_only_and_forgets_on_request() {
        let cache = AuthCache::new(Duration::from_millis(80));
        cache.remember_user("secret-a", &user("a"));
        cache.remember_user("secret-a2", &user("a"));
        cache.remember_user("secret-b", &user("b"));
        assert_eq!(cache.user("secret-a").map(|u| u.id), Some("a".into()));
        assert_eq!(cache.user("secret-c"), None);
        cache.forget_user("a");
        assert_eq!(cache.user("secret-a"), None);
        assert_eq!(cache.user("secret-a2"), None, "every session of the user");
        assert_eq!(cache.user("secret-b").map(|u| u.id), Some("b".into()));

        cache.remember_user("secret-a", &user("a"));
        cache.forget_session("secret-a");
        assert_eq!(cache.user("secret-a"), None);

        cache.remember_user("secret-a", &user("a"));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(cache.user("secret-a"), None, "expired");
    }

    #[test]
    fn a_zero_ttl_turns_it_off() {
        let cache = AuthCache::new(Duration::ZERO);
        cache.remember_user("s", &user("a"));
        assert_eq!(cache.user("s"), None);
    }

    #[test]
    fn stays_bounded() {
        let cache = AuthCache::new(Duration::from_secs(60));
        let u = user("a");
        for i in 0..MAX_ENTRIES + 10 {
            cache.remember_user(&format!("secret-{i}"), &u);
        }
        assert!(cache.sessions.lock().unwrap().len() <= MAX_ENTRIES);
        assert!(cache.user("secret-50009").is_some(), "the newest is kept");
    }
}
