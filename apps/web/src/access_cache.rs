//! What each user may see ([`Entitled`]), remembered between requests for as long as Realtime
//! says nothing changed. Without it every feed page, stream and asset costs one membership read.
//!
//! The rule that keeps revocation immediate: an entry is used only while the live upstream
//! (see [`crate::live`]) is connected and hears every membership change of teams `paid` and
//! `staff`. Its service user must be a member of both, because Appwrite delivers a team's
//! membership events to that team's members only (`ops service-user create` makes it so; when
//! it is not, the cache stays off and says why once).
//! - A membership event forgets its user and moves the epoch: a read that began before the
//!   event is not stored, so an answer that may predate a revocation is never kept.
//! - A (re)connect or a disconnect forgets everything.
//! - An entry is kept at most [`MAX_AGE`], a bound in case an event is ever lost.
//!
//! Unverified users are decided from the session's user and never stored here.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::session::Entitled;

/// How long an entry is trusted even when no event says otherwise.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// Entries kept at most; past it the cache starts over (it only costs one read per user).
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct AccessCache {
    entries: Mutex<HashMap<String, (Instant, Entitled)>>,
    /// Moved by every membership event and every upstream connect or disconnect.
    epoch: AtomicU64,
    /// Whether the upstream is connected and hears both teams' membership events.
    live: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Membership events heard.
    events: AtomicU64,
}

/// Where a read began, for [`AccessCache::put`]; `None` when the cache is off.
#[derive(Debug, Clone, Copy)]
pub struct Epoch(u64);

impl AccessCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Entitled)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What `user_id` may see, if known and still current.
    pub fn get(&self, user_id: &str) -> Option<Entitled> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        let found = match self.lock().get(user_id) {
            Some((at, entitled)) if at.elapsed() < MAX_AGE => Some(entitled.clone()),
            _ => None,
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Call before reading a user's memberships; pass the result to [`Self::put`].
    pub fn begin(&self) -> Option<Epoch> {
        self.live
            .load(Ordering::Acquire)
            .then(|| Epoch(self.epoch.load(Ordering::Acquire)))
    }

    /// Stores what a read that began at `epoch` found, unless anything changed meanwhile.
    pub fn put(&self, user_id: &str, epoch: Option<Epoch>, entitled: &Entitled) {
        let Some(Epoch(began)) = epoch else { return };
        let mut entries = self.lock();
        // Checked under the lock that `forget` takes too: an event either comes before this
        // check (and the answer is dropped) or after the insert (and removes it).
        if !self.live.load(Ordering::Acquire) || self.epoch.load(Ordering::Acquire) != began {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(user_id.to_owned(), (Instant::now(), entitled.clone()));
    }

    /// A membership of `user_id` changed (created, updated, deleted).
    pub fn forget(&self, user_id: &str) {
        self.events.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.remove(user_id);
    }

    /// A membership changed and it is not known whose: forget everyone. Leaves `live` as it
    /// is (a disconnect may set it meanwhile, from another task).
    pub fn forget_all(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    /// The upstream (re)connected hearing every membership event (`true`), or did not or went
    /// away (`false`): either way nothing stored so far can be trusted.
    pub fn set_live(&self, live: bool) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.clear();
        self.live.store(live, Ordering::Release);
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// `(hits, misses)` so far (lookups while live).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Membership events heard so far.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use g3_core::entitlements::Entitlement;

    use super::*;
    use crate::session::Standing;

    fn paid() -> Entitled {
        Entitled {
            standing: Standing::Paid,
            sees: Entitlement::Everything,
        }
    }

    #[test]
    fn off_until_live_and_cleared_by_every_connect() {
        let cache = AccessCache::default();
        let epoch = cache.begin();
        assert!(epoch.is_none(), "not live: nothing is stored");
        cache.put("u", epoch, &paid());
        assert_eq!(cache.get("u"), None);

        cache.set_live(true);
        let epoch = cache.begin();
        cache.put("u", epoch, &paid());
        assert_eq!(cache.get("u"), Some(paid()));

        cache.set_live(true);
        assert_eq!(cache.get("u"), None, "a reconnect forgets everything");
        let epoch = cache.begin();
        cache.put("u", epoch, &paid());
        cache.set_live(false);
        assert_eq!(cache.get("u"), None, "disconnected: nothing is trusted");
    }

    #[test]
    fn an_event_forgets_its_user_and_drops_reads_it_overtook() {
        let cache = AccessCache::default();
        cache.set_live(true);
        for user in ["a", "b"] {
            let epoch = cache.begin();
            cache.put(user, epoch, &paid());
        }
        cache.forget("a");
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.get("b"), Some(paid()), "other users stay");

        // A read began, then an event arrived before its answer was stored.
        let epoch = cache.begin();
        cache.forget("a");
        cache.put("a", epoch, &paid());
        assert_eq!(
            cache.get("a"),
            None,
            "an answer older than an event is not kept"
        );
        assert_eq!(cache.counts(), (1, 2));
    }

    #[test]
    fn forgetting_everyone_drops_entries_and_reads_it_overtook() {
        let cache = AccessCache::default();
        cache.set_live(true);
        let epoch = cache.begin();
        cache.put("u", epoch, &paid());
        let overtaken = cache.begin();
        cache.forget_all();
        assert_eq!(cache.get("u"), None);
        cache.put("v", overtaken, &paid());
        assert_eq!(cache.get("v"), None);
        assert!(cache.is_live());
        assert_eq!(cache.events(), 1);
    }
}
