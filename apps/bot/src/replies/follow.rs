//! Following `signal_outcomes` for replies, the way [`crate::follow`] follows signals: a Realtime
//! subscription (as the `staff` service user) with catch-up from a durable cursor on every
//! (re)connect, feeding a queue of signal ids that one worker hands to the [`Replier`]. The
//! cursor (`bot_state` key [`CURSOR_KEY`]) only passes outcomes whose replies are settled, and
//! catch-up never starts before [`MAX_AGE`] ago: older events get no reply anyway.

use std::{sync::Arc, time::Duration};

use g3_appwrite::{Client, Credentials, Document, Follow, Follower, Query, RealtimeEvent};
use g3_store::{
    Collection,
    models::{OutcomeReply, SignalOutcome},
};
use time::OffsetDateTime;

use super::{MAX_AGE, Replier, ReplyError};
use crate::{
    Settings,
    follow::{Handled, Progress, WorkQueue, Worker, resubscribe_policy},
};

/// The `bot_state` key of the outcome catch-up cursor.
pub const CURSOR_KEY: &str = "outcome-reply-cursor";

/// Where catch-up starts: the stored cursor, but never before `now - MAX_AGE`.
pub fn start_cursor(stored: Option<OffsetDateTime>, now: OffsetDateTime) -> OffsetDateTime {
    let floor = now - MAX_AGE;
    stored.map_or(floor, |s| s.max(floor))
}

/// Every outcome updated at or after `since`, oldest change first.
async fn list_since(
    appwrite: &Client,
    since: OffsetDateTime,
) -> Result<Vec<Document<SignalOutcome>>, g3_appwrite::Error> {
    Collection::<SignalOutcome>::new(appwrite)
        .list_all(
            &[
                Query::order_asc("$updatedAt"),
                Query::greater_than_equal(
                    "$updatedAt",
                    g3_appwrite::format_datetime(since).as_str(),
                ),
            ],
            100,
        )
        .await
}

/// Queues the signals whose reply records a previous run left `pending` or `failed`, and tells
/// the replier to settle those records whatever their events' age.
pub async fn queue_unsettled(
    appwrite: &Client,
    replier: &Replier,
    queue: &WorkQueue,
) -> Result<usize, g3_appwrite::Error> {
    let records = Collection::<OutcomeReply>::new(appwrite)
        .list_all(&[Query::equal("state", ["pending", "failed"])], 100)
        .await?;
    for r in &records {
        replier.note_unsettled(&r.data.signal_id);
        queue.push(r.data.signal_id.clone(), false, false);
    }
    Ok(records.len())
}

/// Follows outcome changes through Realtime (as the `staff` service user), catching up from
/// `cursor` on every connect.
pub async fn follow(
    appwrite: Client,
    settings: Settings,
    replier: Arc<Replier>,
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
        replier,
        queue,
        progress,
        cursor,
    };
    Follower::new(
        appwrite,
        credentials,
        [Collection::<SignalOutcome>::channel()],
    )
    .resubscribe(resubscribe_policy(&settings.retry))
    .run(&mut changes)
    .await;
}

/// Outcome changes as Realtime reports them, and the catch-up cursor.
struct Changes {
    appwrite: Client,
    replier: Arc<Replier>,
    queue: Arc<WorkQueue>,
    progress: Arc<Progress>,
    cursor: OffsetDateTime,
}

impl Changes {
    /// Queues an outcome with something to reply to; one without (most of the tracker's
    /// writes: progress, or events already replied to) is handled on the spot.
    fn seen(&mut self, doc: Document<SignalOutcome>) {
        self.cursor = self.cursor.max(doc.updated_at);
        self.progress.seen(&doc.id, doc.updated_at);
        if self.replier.has_news(&doc, OffsetDateTime::now_utc()) {
            self.queue.push(doc.id, false, true);
        } else {
            let generation = self.progress.begin(&doc.id);
            self.progress.done(&doc.id, generation);
        }
    }
}

impl Follow for Changes {
    async fn connected(&mut self, _reconnected: bool) {
        // Never further back than the age limit, however long this process has run.
        let since = self.cursor.max(OffsetDateTime::now_utc() - MAX_AGE);
        match list_since(&self.appwrite, since).await {
            Ok(outcomes) => {
                for o in outcomes {
                    self.seen(o);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "outcome catch-up failed; the next connect tries again")
            }
        }
    }

    async fn event(&mut self, event: RealtimeEvent) {
        match event.document::<SignalOutcome>() {
            Ok(doc) => self.seen(doc),
            // Not a whole outcome (a delete, a partial payload): the worker reads it afresh.
            Err(_) => {
                if let Ok(doc) = event.document::<serde_json::Value>() {
                    self.cursor = self.cursor.max(doc.updated_at);
                    self.progress.seen(&doc.id, doc.updated_at);
                    self.queue.push(doc.id, false, true);
                }
            }
        }
    }
}

/// Handles queued outcomes one at a time, for ever. `turn` is the mirror worker's: a reply is
/// never sent while a mirror is being written, and shutdown waits for either.
pub async fn work(
    replier: Arc<Replier>,
    appwrite: Client,
    queue: Arc<WorkQueue>,
    progress: Arc<Progress>,
    retry_after: Duration,
    turn: Arc<tokio::sync::Mutex<()>>,
) {
    match queue_unsettled(&appwrite, &replier, &queue).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(records = n, "settling outcome replies left unsettled"),
        Err(e) => tracing::warn!(error = %e, "could not list unsettled outcome replies"),
    }
    let worker = Worker {
        docs: Collection::<SignalOutcome>::new(&appwrite),
        what: "outcome",
        queue,
        progress,
        retry_after,
        turn,
    };
    worker
        .run(|doc, _| {
            let replier = replier.clone();
            async move {
                match replier.handle(&doc, OffsetDateTime::now_utc()).await {
                    Ok(pass) if !pass.retry => Handled::Done,
                    Ok(_) => Handled::Retry,
                    Err(ReplyError::Fenced(e)) => {
                        tracing::warn!(signal = %doc.id, error = %e, "not the leader: replies stop");
                        Handled::Dropped
                    }
                    Err(e) => {
                        tracing::warn!(signal = %doc.id, error = %e, "outcome replies failed; retried later");
                        Handled::Retry
                    }
                }
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn catch_up_starts_at_the_cursor_but_never_before_the_age_limit() {
        let now = datetime!(2026-03-10 12:00 UTC);
        assert_eq!(start_cursor(None, now), now - MAX_AGE);
        let recent = now - time::Duration::hours(2);
        assert_eq!(start_cursor(Some(recent), now), recent);
        let ancient = now - time::Duration::days(30);
        assert_eq!(start_cursor(Some(ancient), now), now - MAX_AGE);
    }
}
