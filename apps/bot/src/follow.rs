//! Following signals: a Realtime subscription (as the `staff` service user) plus catch-up from a
//! cursor on every (re)connect, and a periodic full reconciliation, all feeding one queue of
//! signal ids that a single worker mirrors in order. Mirroring reads the signal afresh, so a
//! queued id always gets the latest state; a failed one is queued again after a pause.
//!
//! The cursor is durable (`bot_state`, see [`Progress`]): a restart catches up on the changes
//! made since the last run instead of reconciling the whole history at once (the full pass then
//! waits for its period; mirrors the last run left pending or failed are queued at start).
//! Reconciliation also removes mirrors from channels their route no longer names.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use g3_appwrite::{Client, Credentials, Document, Follow, Follower, Query, RealtimeEvent};
use g3_store::{
    Collection,
    models::{Mirror, Route, Signal},
};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::{
    Order, Settings,
    mirror::{self, MirrorError, Mirrorer},
    mirror_signal,
};

/// Signal ids waiting to be mirrored, each at most once. Changes as they happen go first;
/// reconciliation passes and retries wait behind them. `verify` (check that the mirror still
/// exists in Discord) sticks if any push of the id asked for it.
#[derive(Default)]
pub struct WorkQueue {
    inner: Mutex<Queues>,
    notify: Notify,
}

#[derive(Default)]
struct Queues {
    urgent: VecDeque<String>,
    background: VecDeque<String>,
    /// Queued ids and their `verify`; an id may sit in both deques, it is handled once.
    queued: HashMap<String, bool>,
}

impl WorkQueue {
    pub fn push(&self, id: String, verify: bool, urgent: bool) {
        let mut q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let known = match q.queued.get_mut(&id) {
            Some(v) => {
                *v |= verify;
                true
            }
            None => {
                q.queued.insert(id.clone(), verify);
                false
            }
        };
        if urgent {
            q.urgent.push_back(id);
        } else if !known {
            q.background.push_back(id);
        }
        drop(q);
        self.notify.notify_one();
    }

    pub async fn pop(&self) -> (String, bool) {
        loop {
            {
                let mut q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                while let Some(id) = q.urgent.pop_front().or_else(|| q.background.pop_front()) {
                    if let Some(verify) = q.queued.remove(&id) {
                        return (id, verify);
                    }
                }
            }
            self.notify.notified().await;
        }
    }

    /// Ids waiting.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .queued
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Signal changes (from Realtime, catch-up or a first reconciliation) not yet mirrored, so that
/// the cursor kept in `bot_state` only ever passes changes that were handled: everything
/// updated before [`Progress::cursor`] is mirrored (or recorded as failed on its mapping).
#[derive(Default)]
pub struct Progress {
    inner: Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    /// id → (oldest unhandled `$updatedAt`, generation of the latest change).
    pending: HashMap<String, (OffsetDateTime, u64)>,
    /// The newest `$updatedAt` seen (or the cursor a run started from).
    high: Option<OffsetDateTime>,
    generation: u64,
}

impl Progress {
    /// Starts from a stored cursor (`None`: nothing known yet).
    pub fn starting_at(cursor: Option<OffsetDateTime>) -> Self {
        Self {
            inner: Mutex::new(ProgressState {
                high: cursor,
                ..ProgressState::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A change of signal `id` made at `at` waits to be mirrored.
    pub fn seen(&self, id: &str, at: OffsetDateTime) {
        let mut p = self.lock();
        p.generation += 1;
        let generation = p.generation;
        let entry = p.pending.entry(id.to_owned()).or_insert((at, generation));
        entry.0 = entry.0.min(at);
        entry.1 = generation;
        p.high = Some(p.high.map_or(at, |h| h.max(at)));
    }

    /// The worker takes `id`: the generation it will have handled.
    pub fn begin(&self, id: &str) -> Option<u64> {
        self.lock().pending.get(id).map(|(_, g)| *g)
    }

    /// The worker mirrored `id` as of `generation`; a change seen since keeps it pending.
    pub fn done(&self, id: &str, generation: Option<u64>) {
        let mut p = self.lock();
        if generation.is_some() && p.pending.get(id).map(|(_, g)| *g) == generation {
            p.pending.remove(id);
        }
    }

    /// Everything updated before this was mirrored.
    pub fn cursor(&self) -> Option<OffsetDateTime> {
        let p = self.lock();
        p.pending.values().map(|(at, _)| *at).min().or(p.high)
    }
}

/// The `bot_state` key of the Realtime catch-up cursor.
pub const CURSOR_KEY: &str = "follow-cursor";

/// The cursor the last run stored, if any.
pub async fn load_cursor(appwrite: &Client) -> Result<Option<OffsetDateTime>, g3_appwrite::Error> {
    load_cursor_at(appwrite, CURSOR_KEY).await
}

/// The cursor stored under `key` in `bot_state`, if any.
pub async fn load_cursor_at(
    appwrite: &Client,
    key: &str,
) -> Result<Option<OffsetDateTime>, g3_appwrite::Error> {
    Ok(crate::state::load(appwrite, key).await?.and_then(|v| {
        OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339).ok()
    }))
}

/// Stores the cursor now (if there is one) under the lease's generation; returns what was
/// stored. Nothing is stored once the lease is lost or a newer generation wrote the cursor.
pub async fn store_cursor(
    appwrite: &Client,
    progress: &Progress,
    fence: &g3_store::lease::Fence,
) -> Result<Option<OffsetDateTime>, g3_appwrite::Error> {
    store_cursor_at(appwrite, CURSOR_KEY, progress, fence).await
}

/// [`store_cursor`] for the cursor under `key`.
pub async fn store_cursor_at(
    appwrite: &Client,
    key: &str,
    progress: &Progress,
    fence: &g3_store::lease::Fence,
) -> Result<Option<OffsetDateTime>, g3_appwrite::Error> {
    let Some(cursor) = progress.cursor() else {
        return Ok(None);
    };
    let stored =
        crate::state::save_fenced(appwrite, key, &g3_appwrite::format_datetime(cursor), fence)
            .await?;
    Ok(stored.then_some(cursor))
}

/// Stores the cursor under `key` whenever it moved, checking every `every`.
pub async fn keep_cursor(
    appwrite: Client,
    key: &'static str,
    progress: Arc<Progress>,
    every: Duration,
    fence: g3_store::lease::Fence,
) {
    let mut saved: Option<OffsetDateTime> = None;
    loop {
        tokio::time::sleep(every).await;
        if progress.cursor() == saved {
            continue;
        }
        match store_cursor_at(&appwrite, key, &progress, &fence).await {
            Ok(Some(c)) => saved = Some(c),
            Ok(None) => {}
            Err(e) => tracing::warn!(key, error = %e, "catch-up cursor not stored; tried again"),
        }
    }
}

/// Why signals are queued.
#[derive(Debug, Clone, Copy)]
pub enum Pass {
    /// Changes missed while disconnected: urgent, no Discord check.
    CatchUp,
    /// A full pass: behind live changes; mirrors of signals posted within `verify_window` are
    /// checked to still exist (one request per message, so not for the whole history).
    Reconcile { verify_window: Duration },
}

/// Every signal updated at or after `since` (all of them with `None`), oldest change first.
pub async fn list_since(
    appwrite: &Client,
    since: Option<OffsetDateTime>,
) -> Result<Vec<Document<Signal>>, g3_appwrite::Error> {
    let mut queries = vec![Query::order_asc("$updatedAt")];
    if let Some(since) = since {
        queries.push(Query::greater_than_equal(
            "$updatedAt",
            g3_appwrite::format_datetime(since).as_str(),
        ));
    }
    Collection::<Signal>::new(appwrite)
        .list_all(&queries, 100)
        .await
}

/// Queues `signals` in `order` of posting; changes at or after the progress cursor are tracked
/// as waiting. Returns the newest `$updatedAt` among them.
pub fn enqueue(
    queue: &WorkQueue,
    progress: &Progress,
    signals: &[Document<Signal>],
    order: Order,
    pass: Pass,
) -> Option<OffsetDateTime> {
    let newest = signals.iter().map(|d| d.updated_at).max();
    let floor = progress.cursor();
    let mut sorted: Vec<&Document<Signal>> = signals.iter().collect();
    match order {
        Order::OldestFirst => sorted.sort_by_key(|s| s.data.posted_at),
        Order::NewestFirst => sorted.sort_by_key(|s| std::cmp::Reverse(s.data.posted_at)),
    }
    let now = OffsetDateTime::now_utc();
    for s in sorted {
        if floor.is_none_or(|f| s.updated_at >= f) {
            progress.seen(&s.id, s.updated_at);
        }
        match pass {
            Pass::CatchUp => queue.push(s.id.clone(), false, true),
            Pass::Reconcile { verify_window } => {
                let recent = s.data.posted_at >= now - verify_window;
                queue.push(s.id.clone(), recent, false);
            }
        }
    }
    newest
}

/// Queues every signal updated at or after `since` (see [`list_since`] and [`enqueue`]).
pub async fn enqueue_since(
    appwrite: &Client,
    queue: &WorkQueue,
    progress: &Progress,
    since: Option<OffsetDateTime>,
    order: Order,
    pass: Pass,
) -> Result<Option<OffsetDateTime>, g3_appwrite::Error> {
    let signals = list_since(appwrite, since).await?;
    Ok(enqueue(queue, progress, &signals, order, pass))
}

/// Mirrors queued signals one at a time, for ever. `turn` is held while one signal is worked
/// on, so reconciliation's clean-up never runs in the middle of it.
pub async fn work(
    mirrorer: Arc<Mirrorer>,
    appwrite: Client,
    queue: Arc<WorkQueue>,
    progress: Arc<Progress>,
    retry_after: Duration,
    turn: Arc<tokio::sync::Mutex<()>>,
) {
    let worker = Worker {
        docs: Collection::<Signal>::new(&appwrite),
        what: "signal",
        queue,
        progress,
        retry_after,
        turn,
    };
    worker
        .run(|signal, verify| {
            let (mirrorer, appwrite) = (mirrorer.clone(), appwrite.clone());
            async move {
                match mirror_signal(&mirrorer, &appwrite, &signal, verify).await {
                    Ok(_) => Handled::Done,
                    Err(e) => {
                        tracing::warn!(signal = %signal.id, error = %e, "mirror failed; retried later");
                        if matches!(e, MirrorError::ChannelUnavailable { .. }) {
                            // Recorded as `failed` on its mapping, which reconciliation finds again.
                            Handled::DoneRetry
                        } else {
                            Handled::Retry
                        }
                    }
                }
            }
        })
        .await;
}

/// What became of a queued document.
pub(crate) enum Handled {
    /// Settled: the cursor may pass it.
    Done,
    /// Not settled: queued again after the pause.
    Retry,
    /// Settled for the cursor (a record says what is left to do), and still queued again.
    DoneRetry,
    /// Neither: the work is no longer this process's (the lease is gone).
    Dropped,
}

/// The single worker of a [`WorkQueue`]: takes one id at a time, in turn with the other
/// workers (`turn`), reads its document afresh and hands it on. An unreadable document is
/// queued again after `retry_after`; a deleted one is settled.
pub(crate) struct Worker<M> {
    pub docs: Collection<M>,
    /// What the documents are, for logs.
    pub what: &'static str,
    pub queue: Arc<WorkQueue>,
    pub progress: Arc<Progress>,
    pub retry_after: Duration,
    pub turn: Arc<tokio::sync::Mutex<()>>,
}

impl<M: g3_store::Model> Worker<M> {
    pub(crate) async fn run<F, Fut>(self, mut handle: F)
    where
        F: FnMut(Document<M>, bool) -> Fut,
        Fut: std::future::Future<Output = Handled>,
    {
        let what = self.what;
        loop {
            let (id, verify) = self.queue.pop().await;
            let _turn = self.turn.lock().await;
            let generation = self.progress.begin(&id);
            let doc = match self.docs.get_optional(&id).await {
                Ok(Some(doc)) => doc,
                Ok(None) => {
                    self.progress.done(&id, generation);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(id = %id, error = %e, "{what} unreadable; retried later");
                    self.requeue(id, verify);
                    continue;
                }
            };
            match handle(doc, verify).await {
                Handled::Done => self.progress.done(&id, generation),
                Handled::Retry => self.requeue(id, verify),
                Handled::DoneRetry => {
                    self.progress.done(&id, generation);
                    self.requeue(id, verify);
                }
                Handled::Dropped => {}
            }
        }
    }

    fn requeue(&self, id: String, verify: bool) {
        let (queue, after) = (self.queue.clone(), self.retry_after);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            queue.push(id, verify, false);
        });
    }
}

/// What reconciliation works with.
pub struct Reconciler {
    pub appwrite: Client,
    pub mirrorer: Arc<Mirrorer>,
    pub queue: Arc<WorkQueue>,
    pub progress: Arc<Progress>,
    pub order: Order,
    pub every: Duration,
    pub verify_window: Duration,
    /// Run the first pass at once (no stored cursor); otherwise after `every`, and only
    /// mirrors left pending or failed by the last run are queued at start.
    pub at_start: bool,
    pub turn: Arc<tokio::sync::Mutex<()>>,
}

/// Reconciles everything (see [`Pass::Reconcile`]) and removes mirrors from channels their
/// route no longer names, at start (see [`Reconciler::at_start`]) and then every `every`.
pub async fn reconcile(r: Reconciler) {
    let first = if r.at_start {
        tokio::time::Instant::now()
    } else {
        if let Err(e) = queue_unsettled(&r.appwrite, &r.queue).await {
            tracing::warn!(error = %e, "could not list unsettled mirrors; the next reconciliation covers them");
        }
        tokio::time::Instant::now() + r.every
    };
    let mut tick = tokio::time::interval_at(first, r.every);
    loop {
        tick.tick().await;
        let signals = match list_since(&r.appwrite, None).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "reconciliation pass failed");
                continue;
            }
        };
        enqueue(
            &r.queue,
            &r.progress,
            &signals,
            r.order,
            Pass::Reconcile {
                verify_window: r.verify_window,
            },
        );
        match sweep_strays(&r.appwrite, &r.mirrorer, &signals, &r.turn).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                removed = n,
                "mirrors removed from channels their route no longer names"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "stray mirrors not removed; the next pass tries again")
            }
        }
    }
}

/// Queues the signals whose mirrors a previous run left `pending` or `failed`.
async fn queue_unsettled(appwrite: &Client, queue: &WorkQueue) -> Result<(), g3_appwrite::Error> {
    let mirrors = Collection::<Mirror>::new(appwrite)
        .list_all(&[Query::equal("state", ["pending", "failed"])], 100)
        .await?;
    for m in mirrors {
        queue.push(m.data.signal_id, false, false);
    }
    Ok(())
}

/// Deletes the mirrors (messages and mappings) of `signals` in channels that their route, when
/// it exists and is enabled, no longer names. Returns how many were removed; a mirror that could
/// not be removed is left for the next pass.
pub async fn sweep_strays(
    appwrite: &Client,
    mirrorer: &Mirrorer,
    signals: &[Document<Signal>],
    turn: &tokio::sync::Mutex<()>,
) -> Result<usize, g3_appwrite::Error> {
    let routes: HashMap<String, Route> = Collection::<Route>::new(appwrite)
        .list_all(&[], 100)
        .await?
        .into_iter()
        .map(|d| (d.id, d.data))
        .collect();
    let route_of: HashMap<&str, &str> = signals
        .iter()
        .map(|s| (s.id.as_str(), s.data.route_key.as_str()))
        .collect();
    let mirrors = Collection::<Mirror>::new(appwrite)
        .list_all(&[], 100)
        .await?;
    let mut removed = 0;
    for m in mirrors {
        let Some(route) = route_of
            .get(m.data.signal_id.as_str())
            .and_then(|key| routes.get(*key))
        else {
            continue;
        };
        if route.enabled == Some(false)
            || route
                .customer_channel_ids
                .iter()
                .any(|c| c == &m.data.target_channel_id)
        {
            continue;
        }
        let _turn = turn.lock().await;
        match mirrorer.remove(&m).await {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(mirror = %m.id, channel = %m.data.target_channel_id, error = %e, "stray mirror not removed")
            }
        }
    }
    Ok(removed)
}

/// Follows signal changes through Realtime (as the `staff` service user), catching up from
/// `cursor` on every connect.
pub async fn follow(
    appwrite: Client,
    settings: Settings,
    queue: Arc<WorkQueue>,
    progress: Arc<Progress>,
    cursor: OffsetDateTime,
) {
    let credentials = Credentials::new(
        settings.staff_email.clone(),
        settings.staff_password.expose(),
    );
    let mut changes = Changes {
        appwrite: appwrite.clone(),
        queue,
        progress,
        order: settings.order,
        cursor,
    };
    Follower::new(appwrite, credentials, [Collection::<Signal>::channel()])
        .resubscribe(resubscribe_policy(&settings.retry))
        .run(&mut changes)
        .await;
}

/// The pause between sign-ins of a Realtime follower: the bot's own retry schedule.
pub(crate) fn resubscribe_policy(retry: &mirror::RetryPolicy) -> g3_appwrite::RetryPolicy {
    g3_appwrite::RetryPolicy {
        max_attempts: u32::MAX,
        base_delay: retry.base,
        max_delay: retry.max,
    }
}

/// Signal changes as Realtime reports them, and the catch-up cursor.
struct Changes {
    appwrite: Client,
    queue: Arc<WorkQueue>,
    progress: Arc<Progress>,
    order: Order,
    cursor: OffsetDateTime,
}

impl Follow for Changes {
    async fn connected(&mut self, _reconnected: bool) {
        match enqueue_since(
            &self.appwrite,
            &self.queue,
            &self.progress,
            Some(self.cursor),
            self.order,
            Pass::CatchUp,
        )
        .await
        {
            Ok(Some(newest)) => self.cursor = self.cursor.max(newest),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "catch-up failed; the next reconciliation covers it")
            }
        }
    }

    async fn event(&mut self, event: RealtimeEvent) {
        if let Ok(doc) = event.document::<serde_json::Value>() {
            self.cursor = self.cursor.max(doc.updated_at);
            self.progress.seen(&doc.id, doc.updated_at);
            self.queue.push(doc.id, false, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_only_passes_handled_changes() {
        let t = |s: i64| OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(s);
        let p = Progress::starting_at(Some(t(5)));
        assert_eq!(p.cursor(), Some(t(5)));
        p.seen("a", t(10));
        p.seen("b", t(20));
        assert_eq!(p.cursor(), Some(t(10)));
        let a = p.begin("a");
        // Changed again while being mirrored: still waiting after this pass.
        p.seen("a", t(30));
        p.done("a", a);
        assert_eq!(p.cursor(), Some(t(10)));
        let a = p.begin("a");
        p.done("a", a);
        assert_eq!(p.cursor(), Some(t(20)));
        // An id nobody is waiting for (an old signal in a full pass) changes nothing.
        let old = p.begin("old");
        p.done("old", old);
        let b = p.begin("b");
        p.done("b", b);
        assert_eq!(p.cursor(), Some(t(30)));
    }

    #[tokio::test]
    async fn live_changes_go_first_and_each_id_is_handled_once() {
        let q = WorkQueue::default();
        q.push("a".into(), false, false);
        q.push("b".into(), true, false);
        q.push("c".into(), false, true);
        q.push("a".into(), true, true);
        q.push("b".into(), false, false);
        assert_eq!(q.len(), 3);
        assert_eq!(q.pop().await, ("c".into(), false));
        assert_eq!(q.pop().await, ("a".into(), true));
        assert_eq!(q.pop().await, ("b".into(), true));
        assert!(q.is_empty());
    }
}
