//! Hearing about signals: a Realtime follower on `signals` whose catch-up lists, on the first
//! connect, every signal posted within the time limit and, on later connects, every signal
//! changed since the newest change heard. Everything goes to the work loop in order.

use g3_appwrite::{Client, Document, EventAction, Follow, Query, RealtimeEvent};
use g3_store::{Collection, models::Signal};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::work::Msg;

pub(crate) struct Signals {
    pub client: Client,
    pub to_work: mpsc::Sender<Msg>,
    pub clock: Clock,
    pub time_limit: time::Duration,
    /// The newest `$updatedAt` heard.
    pub cursor: Option<OffsetDateTime>,
}

impl Signals {
    async fn send(&mut self, doc: Document<Signal>, removed_at: Option<OffsetDateTime>) {
        self.cursor = Some(
            self.cursor
                .map_or(doc.updated_at, |c| c.max(doc.updated_at)),
        );
        let _ = self
            .to_work
            .send(Msg::Signal {
                doc: Box::new(doc),
                removed_at,
            })
            .await;
    }

    async fn catch_up(&mut self) -> Result<(), g3_appwrite::Error> {
        let signals = Collection::<Signal>::new(&self.client);
        let docs = match self.cursor {
            // Anything posted within the time limit may still be open.
            None => {
                let since = self.clock.now() - self.time_limit;
                let mut docs = signals
                    .list_all(
                        &[
                            Query::greater_than_equal(
                                "posted_at",
                                g3_appwrite::format_datetime(since).as_str(),
                            ),
                            Query::order_desc("posted_at"),
                        ],
                        100,
                    )
                    .await?;
                docs.reverse();
                docs
            }
            Some(cursor) => {
                signals
                    .list_all(
                        &[
                            Query::greater_than_equal(
                                "$updatedAt",
                                g3_appwrite::format_datetime(cursor).as_str(),
                            ),
                            Query::order_asc("$updatedAt"),
                        ],
                        100,
                    )
                    .await?
            }
        };
        tracing::info!(signals = docs.len(), "caught up on signals");
        for doc in docs {
            self.send(doc, None).await;
        }
        Ok(())
    }
}

impl Follow for Signals {
    async fn connected(&mut self, _reconnected: bool) {
        // A failed catch-up is retried on the next connect; the events still flow meanwhile.
        if let Err(e) = self.catch_up().await {
            tracing::warn!(error = %e, "signal catch-up failed");
        }
    }

    async fn event(&mut self, event: RealtimeEvent) {
        let doc = match event.document::<Signal>() {
            Ok(doc) => doc,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable signal event skipped");
                return;
            }
        };
        let removed_at = (event.action() == Some(EventAction::Delete)).then_some(doc.updated_at);
        self.send(doc, removed_at).await;
    }
}
