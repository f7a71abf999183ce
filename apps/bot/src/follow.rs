//! Following signals: a Realtime subscription (as the `staff` service user) plus catch-up from a
//! cursor on every (re)connect, and a periodic full reconciliation, all feeding one queue of
//! signal ids that a single worker mirrors in order. Mirroring reads the signal afresh, so a
//! queued id always gets the latest state; a failed one is queued again after a pause.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use g3_appwrite::{Client, Query, RealtimeMessage, RealtimeOptions, SessionSecret};
use g3_store::{models::Signal, schema::DATABASE_ID};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::{Order, Settings, mirror::Mirrorer, mirror_signal};

/// The Realtime channel of signal documents.
pub const CHANNEL: &str = "databases.g3.collections.signals.documents";

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

/// Why signals are queued.
#[derive(Debug, Clone, Copy)]
pub enum Pass {
    /// Changes missed while disconnected: urgent, no Discord check.
    CatchUp,
    /// A full pass: behind live changes; mirrors of signals posted within `verify_window` are
    /// checked to still exist (one request per message, so not for the whole history).
    Reconcile { verify_window: Duration },
}

/// Queues every signal updated at or after `since` (all of them with `None`), in `order` of
/// posting. Returns the newest `$updatedAt` seen.
pub async fn enqueue_since(
    appwrite: &Client,
    queue: &WorkQueue,
    since: Option<OffsetDateTime>,
    order: Order,
    pass: Pass,
) -> Result<Option<OffsetDateTime>, g3_appwrite::Error> {
    let mut queries = vec![Query::order_asc("$updatedAt")];
    if let Some(since) = since {
        queries.push(Query::greater_than_equal(
            "$updatedAt",
            g3_appwrite::format_datetime(since).as_str(),
        ));
    }
    let mut signals = appwrite
        .documents(DATABASE_ID, "signals")
        .list_all::<Signal>(&queries, 100)
        .await?;
    let newest = signals.iter().map(|d| d.updated_at).max();
    match order {
        Order::OldestFirst => signals.sort_by_key(|s| s.data.posted_at),
        Order::NewestFirst => signals.sort_by_key(|s| std::cmp::Reverse(s.data.posted_at)),
    }
    let now = OffsetDateTime::now_utc();
    for s in signals {
        match pass {
            Pass::CatchUp => queue.push(s.id, false, true),
            Pass::Reconcile { verify_window } => {
                let recent = s.data.posted_at >= now - verify_window;
                queue.push(s.id, recent, false);
            }
        }
    }
    Ok(newest)
}

/// Mirrors queued signals one at a time, for ever.
pub async fn work(
    mirrorer: Arc<Mirrorer>,
    appwrite: Client,
    queue: Arc<WorkQueue>,
    retry_after: Duration,
) {
    loop {
        let (id, verify) = queue.pop().await;
        let signal = match appwrite
            .documents(DATABASE_ID, "signals")
            .get_optional::<Signal>(&id)
            .await
        {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(signal = %id, error = %e, "signal unreadable; retried later");
                requeue(&queue, id, verify, retry_after);
                continue;
            }
        };
        if let Err(e) = mirror_signal(&mirrorer, &appwrite, &signal, verify).await {
            tracing::warn!(signal = %id, error = %e, "mirror failed; retried later");
            requeue(&queue, id, verify, retry_after);
        }
    }
}

fn requeue(queue: &Arc<WorkQueue>, id: String, verify: bool, after: Duration) {
    let queue = queue.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        queue.push(id, verify, false);
    });
}

/// Reconciles everything now and then every `every` (see [`Pass::Reconcile`]).
pub async fn reconcile(
    appwrite: Client,
    queue: Arc<WorkQueue>,
    order: Order,
    every: Duration,
    verify_window: Duration,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Err(e) = enqueue_since(
            &appwrite,
            &queue,
            None,
            order,
            Pass::Reconcile { verify_window },
        )
        .await
        {
            tracing::warn!(error = %e, "reconciliation pass failed");
        }
    }
}

/// Follows signal changes through Realtime, catching up from the cursor on every connect.
pub async fn follow(
    appwrite: Client,
    settings: Settings,
    queue: Arc<WorkQueue>,
    start: OffsetDateTime,
) {
    // The reconciliation pass at start covers everything before `start`.
    let mut cursor = start - time::Duration::seconds(5);
    let mut failures: u32 = 0;
    loop {
        match subscribe(&appwrite, &settings).await {
            Ok(mut realtime) => {
                while let Some(msg) = realtime.recv().await {
                    match msg {
                        RealtimeMessage::Connected { .. } => {
                            failures = 0;
                            match enqueue_since(
                                &appwrite,
                                &queue,
                                Some(cursor),
                                settings.order,
                                Pass::CatchUp,
                            )
                            .await
                            {
                                Ok(Some(newest)) => cursor = cursor.max(newest),
                                Ok(None) => {}
                                Err(e) => {
                                    tracing::warn!(error = %e, "catch-up failed; the next reconciliation covers it")
                                }
                            }
                        }
                        RealtimeMessage::Event(event) => {
                            if let Ok(doc) = event.document::<serde_json::Value>() {
                                cursor = cursor.max(doc.updated_at);
                                queue.push(doc.id, false, true);
                            }
                        }
                        RealtimeMessage::Disconnected { reason } => {
                            tracing::info!(%reason, "signal subscription disconnected");
                        }
                        RealtimeMessage::AuthFailed { message } => {
                            tracing::warn!(%message, "service session refused; signing in again");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "service user could not subscribe to signals"),
        }
        failures = failures.saturating_add(1);
        tokio::time::sleep(settings.retry.delay_for(failures)).await;
    }
}

async fn subscribe(
    appwrite: &Client,
    settings: &Settings,
) -> Result<g3_appwrite::Realtime, g3_appwrite::Error> {
    let session = appwrite
        .account()
        .create_email_password_session(&settings.staff_email, settings.staff_password.expose())
        .await?;
    appwrite.realtime(
        &SessionSecret::new(session.secret.expose()),
        RealtimeOptions::new([CHANNEL]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
