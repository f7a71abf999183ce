//! Leader election with fencing over Appwrite documents: any number of processes run, one
//! holds the lease and works, the others stand by and take over when it dies or lets go.
//!
//! Appwrite's documents API has no conditional update; its one atomic primitive is *create with
//! a chosen id* (409 when the id exists). So a lease is a chain of generation documents in
//! collection `leases`, id `<name>.<generation>`:
//!
//! - **Acquire.** Create the next generation's document. Exactly one process wins a generation;
//!   a 409 means someone else did, and the loser reads again. The generation is the **fencing
//!   token**: writes that matter carry it, and a writer refuses to overwrite a higher one.
//! - **Renew.** The holder bumps `renewals` on its own document every `renew_every`. It counts a
//!   renewal only if the answer came within `renew_timeout` (< `margin`) and the lease was still
//!   valid when the renewal was sent; it then holds the lease until *send time + ttl − margin*
//!   on its own monotonic clock. A lease that lapsed is never revived: the holder stops all work
//!   and goes back to standing by. After each renewal it also looks for a newer generation and
//!   stops at once if there is one.
//! - **Take over.** A standby polls the newest generation every `poll_every`. It creates the next
//!   one when the newest is marked `released` (a graceful stop: at once), when there is none, or
//!   when the newest has not changed for `ttl` as measured on the standby's *own* monotonic clock
//!   from the moment it first saw that version. Clocks of different machines are never compared.
//!
//! Why two leaders do not overlap: the standby's takeover needs `ttl` without any change landing,
//! so the holder's last counted renewal landed (and was sent) before the standby first saw that
//! version; the holder's validity ends `margin` before the standby acts. A renewal still in flight
//! can land later, but it was sent after the holder's lease had already lapsed (it took longer
//! than `renew_timeout` < `margin` otherwise), so it is not counted. What remains is a task paused
//! between checking [`Fence::is_valid`] and its write landing: the generation stored with the
//! write lets the next writer refuse older tokens.
//!
//! Old generations are pruned when a new one is taken (the last few are kept for inspection).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use g3_appwrite::{Client, Document, Query};
use serde::{Deserialize, Serialize};
use tokio::{sync::watch, task::JoinHandle};

use crate::{Collection, Model, schema};

/// Generations older than the newest minus this are deleted when a new one is taken.
const KEEP_GENERATIONS: i64 = 3;

/// One generation of a lease, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    pub generation: i64,
    /// Who took this generation (process identity, for operators).
    pub holder: String,
    /// Bumped by every renewal: what a standby watches change.
    pub renewals: i64,
    /// Wall-clock time of the last renewal, for operators only (never used to decide).
    #[serde(default)]
    pub renewed_at: Option<String>,
    /// Let go on a graceful stop: a standby takes over at once.
    #[serde(default)]
    pub released: bool,
}

impl Model for Record {
    const COLLECTION: &'static str = schema::LEASES;
}

/// The document id of a generation.
pub fn document_id(name: &str, generation: i64) -> String {
    format!("{name}.{generation}")
}

/// How long a lease lives without renewal and how often it is renewed and watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// A standby takes over when the newest generation has not changed for this long.
    pub ttl: Duration,
    /// The holder renews this often.
    pub renew_every: Duration,
    /// A standby reads the newest generation this often.
    pub poll_every: Duration,
    /// The holder stops this long before a standby could take over (send time + ttl − margin).
    pub margin: Duration,
    /// A renewal answered later than this does not count (must be below `margin`).
    pub renew_timeout: Duration,
}

impl Timing {
    /// Timings derived from `ttl` and `renew_every`: margin 2/5 of ttl, a renewal counted when
    /// answered within 3/4 of the margin, standbys polling ten times per ttl.
    pub fn new(ttl: Duration, renew_every: Duration) -> Result<Self, String> {
        let margin = ttl.mul_f64(0.4);
        let timing = Timing {
            ttl,
            renew_every,
            poll_every: (ttl / 10).max(Duration::from_millis(20)),
            margin,
            renew_timeout: margin.mul_f64(0.75),
        };
        timing.check()?;
        Ok(timing)
    }

    /// Whether these timings keep the guarantees in the module doc.
    pub fn check(&self) -> Result<(), String> {
        if self.ttl.is_zero() || self.renew_every.is_zero() || self.poll_every.is_zero() {
            return Err("lease timings must be positive".into());
        }
        if self.margin >= self.ttl {
            return Err("the margin must be below the ttl".into());
        }
        if self.renew_timeout >= self.margin {
            return Err("the renewal timeout must be below the margin".into());
        }
        let window = self.ttl - self.margin;
        if self.renew_every + self.renew_timeout >= window {
            return Err(format!(
                "renewing every {:?} cannot keep a lease of ttl {:?} (the holder's window is {:?}): renew at least every {:?}",
                self.renew_every,
                self.ttl,
                window,
                window.saturating_sub(self.renew_timeout) / 2
            ));
        }
        Ok(())
    }
}

impl Default for Timing {
    /// ttl 10 s, renewed every 2 s: a dead holder is replaced within about 12 s.
    fn default() -> Self {
        Timing {
            ttl: Duration::from_secs(10),
            renew_every: Duration::from_secs(2),
            poll_every: Duration::from_secs(1),
            margin: Duration::from_secs(4),
            renew_timeout: Duration::from_secs(3),
        }
    }
}

/// What a standby compares between polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub generation: i64,
    pub renewals: i64,
    pub released: bool,
}

impl From<&Record> for Version {
    fn from(r: &Record) -> Self {
        Version {
            generation: r.generation,
            renewals: r.renewals,
            released: r.released,
        }
    }
}

/// A standby's decision after one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try to create this generation.
    Acquire(i64),
    Wait,
}

/// A standby's memory: the newest version seen and when (its own clock) it was first seen.
#[derive(Debug, Default, Clone)]
pub struct Standby {
    seen: Option<(Version, Instant)>,
}

impl Standby {
    /// Decides after reading `newest` at `now`.
    pub fn observe(&mut self, newest: Option<Version>, now: Instant, ttl: Duration) -> Next {
        let Some(v) = newest else {
            self.seen = None;
            return Next::Acquire(1);
        };
        if v.released {
            return Next::Acquire(v.generation + 1);
        }
        match self.seen {
            Some((seen, since)) if seen == v => {
                if now.saturating_duration_since(since) >= ttl {
                    Next::Acquire(v.generation + 1)
                } else {
                    Next::Wait
                }
            }
            _ => {
                self.seen = Some((v, now));
                Next::Wait
            }
        }
    }

    /// Starts over (after losing a race for a generation).
    pub fn forget(&mut self) {
        self.seen = None;
    }
}

/// The holder's view of its own lease: valid until a point on its monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    until: Instant,
    lost: bool,
}

impl Validity {
    /// Taken with a create sent at `sent`.
    pub fn taken(sent: Instant, timing: &Timing) -> Self {
        Validity {
            until: sent + (timing.ttl - timing.margin),
            lost: false,
        }
    }

    pub fn is_valid(&self, now: Instant) -> bool {
        !self.lost && now < self.until
    }

    /// A renewal sent at `sent` was answered at `answered`. Counts (and returns true) only when
    /// the lease was valid at both times and the answer came within `renew_timeout`.
    pub fn renewed(&mut self, sent: Instant, answered: Instant, timing: &Timing) -> bool {
        let counts = self.is_valid(sent)
            && self.is_valid(answered)
            && answered.saturating_duration_since(sent) <= timing.renew_timeout;
        if counts {
            self.until = self.until.max(sent + (timing.ttl - timing.margin));
        }
        counts
    }

    pub fn lose(&mut self) {
        self.lost = true;
    }

    pub fn until(&self) -> Instant {
        self.until
    }
}

/// Who asks for the lease, and how.
#[derive(Debug, Clone)]
pub struct Config {
    /// The lease's name: one holder per name (e.g. `bot`, or one per guild).
    pub name: String,
    /// This process, as recorded in the documents it creates.
    pub holder: String,
    pub timing: Timing,
    /// Tests: while set, the holder sends no renewals (a stalled leader).
    pub hold_renewals: Option<Arc<AtomicBool>>,
}

/// Why a lease ends when its holder gives it up ([`Held::release`]).
const RELEASED: &str = "released";

#[derive(Debug)]
struct Shared {
    generation: i64,
    validity: Mutex<Validity>,
    lost: watch::Sender<bool>,
}

impl Shared {
    fn validity(&self) -> std::sync::MutexGuard<'_, Validity> {
        self.validity.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lose(&self, why: &str) {
        let first = {
            let mut v = self.validity();
            let first = !v.lost;
            v.lose();
            first
        };
        if first && why == RELEASED {
            // Our own graceful stop: expected, not a warning.
            tracing::info!(generation = self.generation, "lease released");
        } else if first {
            tracing::warn!(generation = self.generation, "lease lost: {why}");
        }
        self.lost.send_replace(true);
    }
}

/// A cheap handle on a held lease: check it before every side effect, store its generation with
/// every write that matters.
#[derive(Debug, Clone)]
pub struct Fence {
    shared: Arc<Shared>,
}

impl Fence {
    /// The fencing token.
    pub fn generation(&self) -> i64 {
        self.shared.generation
    }

    /// Whether this process may still act as the holder, right now.
    pub fn is_valid(&self) -> bool {
        self.shared.validity().is_valid(Instant::now())
    }

    /// Resolves once the lease is lost (lapsed, superseded or released).
    pub async fn lost(&self) {
        let mut rx = self.shared.lost.subscribe();
        let _ = rx.wait_for(|lost| *lost).await;
    }

    /// A fence that is always valid (a single process without a lease: tools and tests).
    pub fn unfenced(generation: i64) -> Fence {
        let (lost, _) = watch::channel(false);
        Fence {
            shared: Arc::new(Shared {
                generation,
                validity: Mutex::new(Validity {
                    until: Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600),
                    lost: false,
                }),
                lost,
            }),
        }
    }
}

/// Errors of lease operations that are not retried internally.
pub type Error = g3_appwrite::Error;

/// Elects one holder among the processes sharing a lease name.
#[derive(Debug, Clone)]
pub struct Lease {
    docs: Collection<Record>,
    config: Config,
}

impl Lease {
    pub fn new(client: &Client, config: Config) -> Self {
        Lease {
            docs: Collection::new(client),
            config,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The newest generation of this lease, if any.
    pub async fn newest(&self) -> Result<Option<Document<Record>>, Error> {
        let page = self
            .docs
            .list_page(&[
                Query::equal("name", [self.config.name.as_str()]),
                Query::order_desc("generation"),
                Query::limit(1),
            ])
            .await?;
        Ok(page.documents.into_iter().next())
    }

    /// Stands by until this process holds the lease, then returns it (renewed in the
    /// background). Read errors are logged and retried. Dropping the future while it creates a
    /// generation may leave that generation unheld: standbys then wait one ttl.
    pub async fn acquire(&self) -> Held {
        let timing = self.config.timing;
        let mut standby = Standby::default();
        let mut failures = 0u32;
        loop {
            let next = match self.newest().await {
                Ok(newest) => {
                    failures = 0;
                    let version = newest.as_ref().map(|d| Version::from(&d.data));
                    standby.observe(version, Instant::now(), timing.ttl)
                }
                Err(e) if e.is_not_found() => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(30) {
                        tracing::error!(error = %e, "collection `{}` is missing: run `ops bootstrap`; standing by until it exists", schema::LEASES);
                    }
                    Next::Wait
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(30) {
                        tracing::warn!(error = %e, lease = %self.config.name, "lease unreadable; standing by");
                    }
                    Next::Wait
                }
            };
            if let Next::Acquire(generation) = next {
                match self.try_take(generation).await {
                    Ok(Some(held)) => return held,
                    Ok(None) => standby.forget(),
                    Err(e) => {
                        tracing::warn!(error = %e, lease = %self.config.name, generation, "lease not taken");
                        standby.forget();
                    }
                }
            }
            tokio::time::sleep(timing.poll_every).await;
        }
    }

    /// Creates `generation`; `None` when another process created it first.
    pub async fn try_take(&self, generation: i64) -> Result<Option<Held>, Error> {
        let record = Record {
            name: self.config.name.clone(),
            generation,
            holder: self.config.holder.clone(),
            renewals: 0,
            renewed_at: Some(g3_appwrite::format_datetime(time::OffsetDateTime::now_utc())),
            released: false,
        };
        let id = document_id(&self.config.name, generation);
        let sent = Instant::now();
        match self.docs.create(id.as_str(), &record, None).await {
            Ok(_) => {}
            // A retried create whose first attempt landed answers 409 too: ours if it names us.
            Err(e) if e.is_conflict() => match self.docs.get_optional(&id).await? {
                Some(d) if d.data.holder == self.config.holder && d.data.renewals == 0 => {}
                _ => return Ok(None),
            },
            Err(e) => return Err(e),
        }
        let (lost, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            generation,
            validity: Mutex::new(Validity::taken(sent, &self.config.timing)),
            lost,
        });
        tracing::info!(lease = %self.config.name, generation, holder = %self.config.holder, "lease taken");
        self.prune(generation).await;
        let renewer = tokio::spawn(renew(self.clone(), id.clone(), shared.clone()));
        Ok(Some(Held {
            lease: self.clone(),
            id,
            fence: Fence { shared },
            renewer,
        }))
    }

    /// Deletes generations well below `generation` (best effort).
    async fn prune(&self, generation: i64) {
        let old = self
            .docs
            .list_page(&[
                Query::equal("name", [self.config.name.as_str()]),
                Query::less_than("generation", generation - KEEP_GENERATIONS + 1),
                Query::limit(100),
            ])
            .await;
        match old {
            Ok(page) => {
                for d in page.documents {
                    if let Err(e) = self.docs.delete_if_exists(&d.id).await {
                        tracing::debug!(error = %e, id = %d.id, "old lease generation not pruned");
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "old lease generations not listed"),
        }
    }
}

/// Keeps a held lease renewed until it is lost.
async fn renew(lease: Lease, id: String, shared: Arc<Shared>) {
    let timing = lease.config.timing;
    let mut renewals: i64 = 0;
    let mut next_send = Instant::now() + timing.renew_every;
    loop {
        let until = shared.validity().until();
        let wake = next_send.min(until);
        tokio::time::sleep_until(tokio::time::Instant::from_std(wake)).await;
        let now = Instant::now();
        if !shared.validity().is_valid(now) {
            shared.lose("no renewal was answered in time: the lease lapsed");
            return;
        }
        if now < next_send {
            continue;
        }
        next_send = now + timing.renew_every;
        if lease
            .config
            .hold_renewals
            .as_ref()
            .is_some_and(|h| h.load(Ordering::SeqCst))
        {
            continue;
        }
        renewals += 1;
        let patch = serde_json::json!({
            "renewals": renewals,
            "renewed_at": g3_appwrite::format_datetime(time::OffsetDateTime::now_utc()),
        });
        let sent = Instant::now();
        let result =
            tokio::time::timeout(timing.renew_timeout, lease.docs.update(&id, &patch, None)).await;
        let answered = Instant::now();
        match result {
            Ok(Ok(_)) => {
                if !shared.validity().renewed(sent, answered, &timing) {
                    tracing::warn!(
                        generation = shared.generation,
                        took = ?answered - sent,
                        "lease renewal answered too late: not counted"
                    );
                }
            }
            Ok(Err(e)) if e.is_not_found() => {
                shared.lose("its document is gone");
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, generation = shared.generation, "lease renewal failed")
            }
            Err(_) => tracing::warn!(
                generation = shared.generation,
                timeout = ?timing.renew_timeout,
                "lease renewal timed out"
            ),
        }
        // Someone may have taken a newer generation (after our lease looked stale to them).
        if let Ok(Ok(Some(newest))) =
            tokio::time::timeout(timing.renew_timeout, lease.newest()).await
            && newest.data.generation > shared.generation
        {
            shared.lose(&format!(
                "generation {} was taken by {}",
                newest.data.generation, newest.data.holder
            ));
            return;
        }
    }
}

/// A lease this process holds. Dropping it stops renewing without releasing (like a crash:
/// standbys take over after one ttl); [`Held::release`] hands over at once.
#[derive(Debug)]
pub struct Held {
    lease: Lease,
    id: String,
    fence: Fence,
    renewer: JoinHandle<()>,
}

impl Held {
    pub fn generation(&self) -> i64 {
        self.fence.generation()
    }

    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    pub fn is_valid(&self) -> bool {
        self.fence.is_valid()
    }

    /// Resolves once the lease is lost.
    pub async fn lost(&self) {
        self.fence.lost().await;
    }

    /// Stops renewing and marks the generation released, so a standby takes over at once.
    pub async fn release(self) {
        self.renewer.abort();
        self.fence.shared.lose(RELEASED);
        let patch = serde_json::json!({ "released": true });
        match self.lease.docs.update(&self.id, &patch, None).await {
            Ok(_) => {
                tracing::info!(lease = %self.lease.config.name, generation = self.generation(), "lease released")
            }
            Err(e) => {
                tracing::warn!(error = %e, "lease not released: standbys take over after its ttl")
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.renewer.abort();
        self.fence.shared.lost.send_replace(true);
        self.fence.shared.validity().lose();
    }
}

/// What a process does while it holds its lease; [`lead`] starts it, and ends it one of two ways.
pub trait Leading {
    /// Shutdown: finish what is in flight and store what the next leader needs, while the lease
    /// still holds. [`lead`] releases the lease afterwards.
    fn drain(self) -> impl std::future::Future<Output = ()>;
    /// The lease is lost: stop every task at once, before another leader starts its own.
    fn abort(self) -> impl std::future::Future<Output = ()>;
}

/// Where a leading process stands; [`lead`] reports each change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Waiting for the lease.
    Standby,
    /// Holding the lease and working.
    Leader,
    /// Shutting down: draining, then releasing the lease.
    Stopping,
}

impl Standing {
    /// As health checks and logs show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Standby => "standby",
            Standing::Leader => "leader",
            Standing::Stopping => "stopping",
        }
    }
}

/// The loop of a process that works only while it holds `lease`: stand by until the lease is
/// held, then run what `start` returns until the lease is lost (abort it and stand by again)
/// or `shutdown` completes (drain it, release the lease so a standby takes over at once, and
/// return). If `start` fails, the lease is released and its error returned. `stands` hears
/// every change of [`Standing`].
pub async fn lead<W, E, F>(
    lease: &Lease,
    mut stands: impl FnMut(Standing),
    mut start: impl FnMut(Fence) -> F,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), E>
where
    W: Leading,
    F: std::future::Future<Output = Result<W, E>>,
{
    let mut shutdown = std::pin::pin!(shutdown);
    let (name, holder) = (&lease.config.name, &lease.config.holder);
    loop {
        stands(Standing::Standby);
        tracing::info!(lease = %name, holder = %holder, "standing by for the lease");
        let held = tokio::select! {
            held = lease.acquire() => held,
            () = &mut shutdown => return Ok(()),
        };
        stands(Standing::Leader);
        tracing::info!(lease = %name, generation = held.generation(), "leading: work starts");
        let work = match start(held.fence()).await {
            Ok(work) => work,
            Err(e) => {
                held.release().await;
                return Err(e);
            }
        };
        let stopping = tokio::select! {
            () = held.lost() => false,
            () = &mut shutdown => true,
        };
        if stopping {
            stands(Standing::Stopping);
            work.drain().await;
            held.release().await;
            return Ok(());
        }
        tracing::warn!(
            lease = %name,
            generation = held.generation(),
            "lease lost: all work stopped; standing by"
        );
        work.abort().await;
        drop(held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(generation: i64, renewals: i64) -> Option<Version> {
        Some(Version {
            generation,
            renewals,
            released: false,
        })
    }

    #[test]
    fn a_standby_takes_over_after_a_ttl_without_change_on_its_own_clock() {
        let ttl = Duration::from_secs(10);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut s = Standby::default();
        assert_eq!(s.observe(v(4, 0), at(0), ttl), Next::Wait);
        assert_eq!(s.observe(v(4, 0), at(9), ttl), Next::Wait);
        // A renewal landed: the clock starts again from when it was first seen.
        assert_eq!(s.observe(v(4, 1), at(9), ttl), Next::Wait);
        assert_eq!(s.observe(v(4, 1), at(18), ttl), Next::Wait);
        assert_eq!(s.observe(v(4, 1), at(19), ttl), Next::Acquire(5));
        // Lost the race: someone else's generation 5 is watched from scratch.
        s.forget();
        assert_eq!(s.observe(v(5, 0), at(19), ttl), Next::Wait);
        assert_eq!(s.observe(v(5, 0), at(28), ttl), Next::Wait);
    }

    #[test]
    fn nothing_or_a_released_lease_is_taken_at_once() {
        let ttl = Duration::from_secs(10);
        let now = Instant::now();
        let mut s = Standby::default();
        assert_eq!(s.observe(None, now, ttl), Next::Acquire(1));
        let released = Some(Version {
            generation: 7,
            renewals: 3,
            released: true,
        });
        assert_eq!(s.observe(released, now, ttl), Next::Acquire(8));
    }

    #[test]
    fn the_holder_is_valid_until_send_plus_ttl_minus_margin() {
        let timing = Timing::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut v = Validity::taken(t0, &timing);
        assert!(v.is_valid(at(5_999)));
        assert!(!v.is_valid(at(6_000)));
        // Renewed at 2 s, answered at 2.1 s: valid until 8 s.
        assert!(v.renewed(at(2_000), at(2_100), &timing));
        assert!(v.is_valid(at(7_999)));
        assert!(!v.is_valid(at(8_000)));
        // An answer slower than renew_timeout does not count.
        assert!(!v.renewed(at(4_000), at(7_100), &timing));
        assert!(!v.is_valid(at(8_000)));
    }

    #[test]
    fn a_lapsed_lease_is_never_revived() {
        let timing = Timing::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut v = Validity::taken(t0, &timing);
        // Sent after the lapse (6 s): not counted however fast.
        assert!(!v.renewed(at(6_500), at(6_600), &timing));
        assert!(!v.is_valid(at(6_600)));
        // Sent before, answered after the lapse: not counted either.
        let mut v = Validity::taken(t0, &timing);
        assert!(!v.renewed(at(5_000), at(6_100), &timing));
        let mut v = Validity::taken(t0, &timing);
        v.lose();
        assert!(!v.renewed(at(1_000), at(1_010), &timing));
        assert!(!v.is_valid(at(1_010)));
    }

    #[test]
    fn timings_are_checked() {
        assert!(Timing::default().check().is_ok());
        let t = Timing::new(Duration::from_secs(10), Duration::from_secs(2)).unwrap();
        assert_eq!(t.margin, Duration::from_secs(4));
        assert_eq!(t.renew_timeout, Duration::from_secs(3));
        assert_eq!(t.poll_every, Duration::from_secs(1));
        let err = Timing::new(Duration::from_secs(10), Duration::from_secs(5)).unwrap_err();
        assert!(err.contains("renew at least every"), "{err}");
        assert!(Timing::new(Duration::from_millis(1500), Duration::from_millis(200)).is_ok());
    }

    #[test]
    fn the_worst_case_takeover_is_within_15_seconds() {
        // The holder dies right after a renewal landed; the standby sees it at most one poll
        // later and acts one ttl and one poll after that.
        let t = Timing::default();
        assert!(t.poll_every + t.ttl + t.poll_every <= Duration::from_secs(15));
    }
}
