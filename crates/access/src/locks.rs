//! Per-key locks that hold across processes, so any number of webhook (and web) replicas can
//! apply changes to one customer one after the other. Appwrite is the only shared state.
//!
//! Appwrite's documents API has no conditional update or delete; its one atomic primitive is
//! *create with a chosen id* (409 when the id exists). A lock is therefore a chain of generation
//! documents per key in collection `locks` ([`LockRecord`]), id = hash(key, generation):
//!
//! - **Acquire** = create generation `g + 1`, where `g` is the newest generation and is
//!   `released`. Exactly one process wins a generation. A process tries without reading first:
//!   generation 1 for a key it knows nothing about (generation 1 is never deleted, so winning it
//!   means nobody ever locked the key), or the one after the generation it saw released less than
//!   [`REMEMBER_RELEASED`] ago. On 409 it reads the newest generation (one indexed list) and waits
//!   while that one is held. Uncontended: one create, then one update to release.
//! - **Release** = mark our generation `released`. The newest generation is never deleted: a
//!   process that read the chain a moment earlier would otherwise create a lower generation and
//!   hold the lock beside the real holder. [`Locks::sweep`] deletes old generations that are not
//!   the newest, only once they are far older ([`SWEEP_AFTER`]) than anything a process still
//!   remembers, so nobody's remembered "next generation" can fall into a hole the sweep made.
//! - **A holder that died** leaves its generation unreleased. A waiter breaks it by creating the
//!   next generation once it has seen that same generation, unreleased, for `ttl` on its *own*
//!   monotonic clock (remembered per process across waits). It never deletes the stale document.
//!
//! The break-a-stale-lock race, and why there is none here: with one document per key deleted
//! when stale, two waiters can both see it stale; the first deletes and re-creates it, and the
//! second's delete removes the *fresh* lock. Here breaking deletes nothing: it is a create of
//! the next generation, which exactly one waiter wins, and the stale holder's late release only
//! marks its own old document. What remains is a holder that is alive but slow: it counts its
//! lease from the moment it *sent* its create and stops `ttl / 4` short of `ttl`
//! ([`LockGuard::ensure_held`], checked before every write); a waiter first saw that generation
//! after it landed, so it breaks the lock later than the holder stops. Clocks of different
//! machines are never compared to decide who holds a lock (only the sweep reads wall-clock
//! times, with an hour of slack). A pause between the check and the write landing is not covered
//! (Appwrite has no fencing); the writes under the lock are idempotent and recomputed from stored
//! state, so a retry repairs what such an overlap could leave.
//!
//! Within one process, waiters for one key queue on an in-process mutex first ([`KeyedLocks`]),
//! so only one of them talks to Appwrite.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use g3_appwrite::{Client, Query};
use g3_core::ids;
use g3_store::{Collection, Model, schema};
use serde::{Deserialize, Serialize};
use tokio::sync::OwnedMutexGuard;
use tracing::{debug, warn};

/// Keys remembered per process (last released generation, stale sightings) before the memory
/// is dropped and rebuilt from Appwrite.
const REMEMBERED_KEYS: usize = 10_000;
/// How long a generation seen released is trusted to still be the newest one's predecessor.
pub const REMEMBER_RELEASED: Duration = Duration::from_secs(5 * 60);
/// Generations older than this (and not the newest of their key) are deleted by [`Locks::sweep`].
pub const SWEEP_AFTER: Duration = Duration::from_secs(60 * 60);

/// How long locks live and how long callers wait for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockTiming {
    /// A generation seen unreleased and unchanged for this long is broken; a holder stops
    /// `ttl / 4` earlier.
    pub ttl: Duration,
    /// How long [`Locks::acquire`] waits for a held key before giving up with
    /// [`LockError::Busy`] (the caller retries later).
    pub wait: Duration,
    /// First pause between looks at a held key; doubles up to 8×.
    pub poll: Duration,
}

impl Default for LockTiming {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            wait: Duration::from_secs(10),
            poll: Duration::from_millis(40),
        }
    }
}

/// Why a lock was not had.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("lock backend error: {0}")]
    Backend(#[from] g3_appwrite::Error),
    /// Another process holds the key longer than we wait.
    #[error("{key} is busy (held by another process); try again later")]
    Busy { key: String },
    /// Our lease ran out before the work was done; the work must not write any more.
    #[error("the lock on {key} expired before the work was done")]
    Expired { key: String },
}

/// One generation of a lock, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    pub key: String,
    pub generation: i64,
    /// Random token of the acquisition.
    pub holder: String,
    #[serde(default)]
    pub released: Option<bool>,
    /// For operators only (never used to decide).
    #[serde(default)]
    pub acquired_at: Option<String>,
}

impl Model for LockRecord {
    const COLLECTION: &'static str = schema::LOCKS;
}

/// The document id of one generation of a key.
pub fn lock_id(key: &str, generation: i64) -> String {
    ids::derive("lock", &[key, &generation.to_string()])
}

/// What this process knows about one key.
#[derive(Default)]
struct Known {
    /// The newest generation seen released, and when: the next acquire tries the one after it.
    released: Option<(i64, Instant)>,
    /// A held generation (document id) and when this process first saw it.
    seen: Option<(String, Instant)>,
}

/// Locks over Appwrite. Cheap to share (`Arc`).
pub struct Locks {
    client: Client,
    timing: LockTiming,
    local: Arc<KeyedLocks>,
    known: Mutex<HashMap<String, Known>>,
}

/// A held lock. Release it with [`LockGuard::release`]; dropping it releases in the background.
pub struct LockGuard {
    locks: Arc<Locks>,
    key: String,
    generation: i64,
    valid_until: Instant,
    released: bool,
    _local: KeyGuard,
}

impl Locks {
    pub fn new(client: Client, timing: LockTiming) -> Self {
        Self {
            client,
            timing,
            local: Arc::new(KeyedLocks::default()),
            known: Mutex::new(HashMap::new()),
        }
    }

    pub fn timing(&self) -> LockTiming {
        self.timing
    }

    fn docs(&self) -> Collection<LockRecord> {
        Collection::new(&self.client)
    }

    fn with_known<R>(&self, key: &str, f: impl FnOnce(&mut Known) -> R) -> R {
        let mut map = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= REMEMBERED_KEYS && !map.contains_key(key) {
            map.clear();
        }
        f(map.entry(key.to_owned()).or_default())
    }

    /// Takes the lock on `key`, waiting up to [`LockTiming::wait`] while another process holds it.
    pub async fn acquire(self: &Arc<Self>, key: &str) -> Result<LockGuard, LockError> {
        let local = self.local.lock_owned(key).await;
        let started = Instant::now();
        let token = format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let mut next = Some(self.with_known(key, |k| match k.released {
            Some((g, at)) if at.elapsed() < REMEMBER_RELEASED => g + 1,
            _ => 1,
        }));
        let mut sent = started;
        let mut pause = self.timing.poll;
        loop {
            if let Some(generation) = next.take() {
                sent = Instant::now();
                let record = LockRecord {
                    key: key.to_owned(),
                    generation,
                    holder: token.clone(),
                    released: Some(false),
                    acquired_at: Some(
                        g3_appwrite::format_datetime(time::OffsetDateTime::now_utc()),
                    ),
                };
                match self
                    .docs()
                    .create(lock_id(key, generation).as_str(), &record, None)
                    .await
                {
                    Ok(_) => return Ok(self.guard(key, generation, sent, local)),
                    Err(e) if e.is_conflict() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let newest = self.newest(key).await?;
            let Some((id, newest)) = newest else {
                // Generation 1 is never deleted, so an empty chain means nobody ever locked; a
                // 409 with nothing listed (an index lagging behind) is waited out, not spun on.
                if started.elapsed() >= self.timing.wait {
                    return Err(LockError::Busy {
                        key: key.to_owned(),
                    });
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(self.timing.poll * 8);
                next = Some(1);
                continue;
            };
            if newest.holder == token {
                // Our create landed though its answer was lost (the client retried it).
                return Ok(self.guard(key, newest.generation, sent, local));
            }
            if newest.released == Some(true) {
                self.with_known(key, |k| {
                    k.released = Some((newest.generation, Instant::now()));
                    k.seen = None;
                });
                next = Some(newest.generation + 1);
                continue;
            }
            let first_seen = self.with_known(key, |k| match &k.seen {
                Some((seen_id, at)) if *seen_id == id => *at,
                _ => {
                    let now = Instant::now();
                    k.seen = Some((id.clone(), now));
                    now
                }
            });
            if first_seen.elapsed() >= self.timing.ttl {
                warn!(
                    key,
                    generation = newest.generation,
                    "breaking a lock whose holder went silent"
                );
                next = Some(newest.generation + 1);
                continue;
            }
            if started.elapsed() >= self.timing.wait {
                return Err(LockError::Busy {
                    key: key.to_owned(),
                });
            }
            let until_stale = self.timing.ttl.saturating_sub(first_seen.elapsed());
            let until_give_up = self.timing.wait.saturating_sub(started.elapsed());
            let jitter = 0.75 + rand::random::<f64>() * 0.5;
            let nap = pause
                .mul_f64(jitter)
                .min(until_stale)
                .min(until_give_up)
                .max(Duration::from_millis(1));
            tokio::time::sleep(nap).await;
            pause = (pause * 2).min(self.timing.poll * 8);
        }
    }

    fn guard(
        self: &Arc<Self>,
        key: &str,
        generation: i64,
        sent: Instant,
        local: KeyGuard,
    ) -> LockGuard {
        debug!(key, generation, "lock acquired");
        LockGuard {
            locks: Arc::clone(self),
            key: key.to_owned(),
            generation,
            valid_until: sent + self.timing.ttl - self.timing.ttl / 4,
            released: false,
            _local: local,
        }
    }

    /// The newest generation of `key` and its document id.
    async fn newest(&self, key: &str) -> Result<Option<(String, LockRecord)>, LockError> {
        Ok(self
            .docs()
            .list(&[
                Query::equal("key", key),
                Query::order_desc("generation"),
                Query::limit(1),
            ])
            .await?
            .documents
            .into_iter()
            .next()
            .map(|d| (d.id, d.data)))
    }

    async fn release(&self, key: &str, generation: i64) -> Result<(), LockError> {
        let marked = self
            .docs()
            .update(
                &lock_id(key, generation),
                &serde_json::json!({ "released": true }),
                None,
            )
            .await;
        match marked {
            Ok(_) => {
                self.with_known(key, |k| {
                    k.released = Some((generation, Instant::now()));
                    k.seen = None;
                });
                Ok(())
            }
            // Already swept (a lease that ran out long ago): nothing left to do.
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes generations acquired more than [`SWEEP_AFTER`] before `now` that are neither
    /// generation 1 nor the newest of their key. Returns how many were deleted. Any replica may
    /// run it, concurrently: deletes are idempotent.
    pub async fn sweep(&self, now: time::OffsetDateTime) -> Result<usize, LockError> {
        let cutoff = now - SWEEP_AFTER;
        let old = self
            .docs()
            .list(&[
                Query::less_than("acquired_at", g3_appwrite::format_datetime(cutoff)),
                Query::greater_than("generation", 1),
                Query::order_asc("key"),
                Query::order_desc("generation"),
                Query::limit(100),
            ])
            .await?
            .documents;
        let mut deleted = 0;
        let mut previous_key: Option<&str> = None;
        for doc in &old {
            // The highest old generation of a key may be its newest: keep it (the first of its
            // key in this order). Lower ones have a higher generation above them.
            let first_of_key = previous_key != Some(doc.data.key.as_str());
            previous_key = Some(doc.data.key.as_str());
            if first_of_key {
                continue;
            }
            if self.docs().delete_if_exists(&doc.id).await? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

impl LockGuard {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn generation(&self) -> i64 {
        self.generation
    }

    /// Whether this is the key's first generation: nobody ever held this key before (generation
    /// 1 is never deleted, so creating it proves the chain was empty).
    pub fn is_first(&self) -> bool {
        self.generation == 1
    }

    /// `Err` once the lease is over: the caller must stop writing (and fail retryably).
    pub fn ensure_held(&self) -> Result<(), LockError> {
        if Instant::now() < self.valid_until {
            Ok(())
        } else {
            Err(LockError::Expired {
                key: self.key.clone(),
            })
        }
    }

    /// Lets the lock go. A failure leaves it to expire after the TTL; it is only logged.
    pub async fn release(mut self) {
        self.released = true;
        if let Err(e) = self.locks.release(&self.key, self.generation).await {
            warn!(key = %self.key, error = %e, "lock not released; it expires after its TTL");
        }
    }

    /// Drops the guard without releasing: what a crashed holder leaves behind (tests).
    pub fn abandon(mut self) {
        self.released = true;
    }
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("key", &self.key)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // An error or a cancelled request dropped the guard: release in the background.
        let (locks, key, generation) = (Arc::clone(&self.locks), self.key.clone(), self.generation);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = locks.release(&key, generation).await {
                    warn!(key, error = %e, "lock not released; it expires after its TTL");
                }
            });
        }
    }
}

/// Per-key async mutexes within one process: waiters for one key queue here before any of them
/// asks Appwrite; the map entry goes away with the last holder or waiter.
#[derive(Default)]
pub struct KeyedLocks {
    inner: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Holds the in-process lock for one key.
pub struct KeyGuard {
    locks: Arc<KeyedLocks>,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    pub async fn lock_owned(self: &Arc<Self>, key: &str) -> KeyGuard {
        let mutex = {
            let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(map.entry(key.to_owned()).or_default())
        };
        let guard = mutex.lock_owned().await;
        KeyGuard {
            locks: Arc::clone(self),
            key: key.to_owned(),
            guard: Some(guard),
        }
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map's own reference left: nobody holds or waits for this key.
        if map
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn same_key_serialises_and_map_empties() {
        let locks = Arc::new(KeyedLocks::default());
        let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (locks, counter) = (Arc::clone(&locks), Arc::clone(&counter));
            tasks.push(tokio::spawn(async move {
                let _g = locks.lock_owned("k").await;
                let before = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::task::yield_now().await;
                // Nobody else entered while we held the lock.
                assert_eq!(
                    counter.load(std::sync::atomic::Ordering::SeqCst),
                    before + 1
                );
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert!(locks.inner.lock().unwrap().is_empty());
    }

    #[test]
    fn generations_have_distinct_valid_ids() {
        let a = lock_id("customer:a@b.c", 1);
        assert_ne!(a, lock_id("customer:a@b.c", 2));
        assert_ne!(a, lock_id("customer:a@b.d", 1));
        assert!(a.len() <= 36);
    }
}
