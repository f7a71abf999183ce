//! The live feed's side of signal outcomes: the [`Publisher`] loads every `signal_outcomes`
//! document into [`crate::outcomes::OutcomeBook`] on its first connect, catches up on later
//! ones, and turns each change it hears into an `outcome` event for the browsers that may see
//! the signal's route.

use g3_appwrite::{Document, Query as Q, RealtimeEvent};
use g3_store::{Collection, Model, models::SignalOutcome};
use serde_json::Value;
use time::OffsetDateTime;

use super::{EventKind, Publisher};
use crate::feed;

/// Outcomes listed per call while loading or catching up.
const OUTCOME_PAGE: u32 = 500;

impl Publisher {
    /// Loads every outcome on the first connect (the book is complete from then on), and on
    /// later ones lists those updated since the cursor and publishes each that changed.
    pub(super) async fn catch_up_outcomes(&mut self) -> Result<(), g3_appwrite::Error> {
        let client = self.state.appwrite().clone();
        let outcomes = Collection::<SignalOutcome>::new(&client);
        let first = self.outcome_cursor.is_none();
        let since = self.outcome_cursor.map(g3_appwrite::format_datetime);
        let mut after: Option<String> = None;
        let (mut heard, mut published) = (0usize, 0usize);
        // Moved as documents are taken in; a first load that fails halfway sets nothing, so
        // the next connect loads everything again.
        let mut cursor = self.outcome_cursor;
        loop {
            let mut queries = match &since {
                // The whole collection by its primary key (no order: Appwrite's `$sequence`).
                None => vec![Q::limit(OUTCOME_PAGE)],
                // `>=`: several changes can share a millisecond; the book drops repeats.
                Some(since) => vec![
                    Q::greater_than_equal("$updatedAt", since.as_str()),
                    Q::order_asc("$updatedAt"),
                    Q::limit(OUTCOME_PAGE),
                ],
            };
            if let Some(a) = &after {
                queries.push(Q::cursor_after(a));
            }
            let page = outcomes.raw().list_page::<Value>(&queries).await?;
            let n = page.documents.len();
            after = page.documents.last().map(|d| d.id.clone());
            for doc in page.documents {
                heard += 1;
                let updated = doc.updated_at;
                if let Some(doc) = feed::decode::<SignalOutcome>(doc) {
                    // Nobody can have missed an outcome of the first load: pages rendered
                    // before it read their outcomes themselves.
                    if first {
                        self.state.outcomes().apply(&doc);
                    } else {
                        published += usize::from(self.publish_outcome(&doc));
                    }
                }
                cursor = Some(cursor.map_or(updated, |c| c.max(updated)));
                if !first {
                    self.outcome_cursor = cursor;
                }
            }
            if n < OUTCOME_PAGE as usize {
                break;
            }
        }
        if first {
            self.outcome_cursor = Some(cursor.unwrap_or(OffsetDateTime::UNIX_EPOCH));
            self.state.outcomes().set_ready();
        }
        self.state.metrics().set_outcomes(
            self.state.outcomes().len(),
            self.state.outcomes().is_ready(),
        );
        tracing::info!(heard, published, first, "outcomes caught up");
        Ok(())
    }

    /// Takes one outcome into the book and tells the browsers that may see its route; an
    /// update of the last price alone is not kept for browsers that resume later.
    fn publish_outcome(&mut self, doc: &Document<SignalOutcome>) -> bool {
        let Some(applied) = self.state.outcomes().apply(doc) else {
            return false;
        };
        let data = serde_json::json!({ "id": doc.id, "html": &*applied.html }).to_string();
        let hub = self.state.hub();
        if applied.news {
            hub.publish_kind(EventKind::Outcome, &applied.route, data);
        } else {
            hub.publish_transient(EventKind::Outcome, &applied.route, data);
        }
        self.state.metrics().published();
        true
    }

    /// One outcome change heard over Realtime: the document as it is now, or `removed`.
    pub(super) fn outcome_event(&mut self, event: &RealtimeEvent, removed: bool) {
        let doc = match event.document::<Value>() {
            Ok(doc) => doc,
            Err(e) => {
                tracing::warn!(error = %e, "realtime outcome skipped");
                return;
            }
        };
        if !self.outcomes_behind && self.outcome_cursor.is_some() {
            self.outcome_cursor = self.outcome_cursor.map(|c| c.max(doc.updated_at));
        }
        if removed {
            if let Some(route) = self.state.outcomes().remove(&doc.id) {
                let data = serde_json::json!({ "id": doc.id, "html": "" }).to_string();
                self.state
                    .hub()
                    .publish_kind(EventKind::Outcome, &route, data);
                self.state.metrics().published();
            }
        } else if let Some(doc) = feed::decode::<SignalOutcome>(doc) {
            self.publish_outcome(&doc);
        }
        let book = self.state.outcomes();
        self.state
            .metrics()
            .set_outcomes(book.len(), book.is_ready());
    }
}

/// Whether an event is about a `signal_outcomes` document.
pub(super) fn is_outcome(event: &RealtimeEvent) -> bool {
    event.payload.get("$collectionId").and_then(Value::as_str)
        == Some(<SignalOutcome as Model>::COLLECTION)
}
