//! From `signals` documents to what the outcome engine judges, and from its outcome to the
//! `signal_outcomes` document. A signal keeps only its latest text, so the revisions are
//! recorded here as the tracker hears them ([`Heard`]) and stored with the outcome.

use g3_appwrite::Document;
use g3_core::signal::Side;
use g3_market::{Symbol, Venue};
use g3_outcomes::{History, HistoryError, Outcome, Revision, Trade};
use g3_store::models::{Side as StoredSide, Signal, SignalOutcome, SignalStatus};
use time::OffsetDateTime;

/// The trade a signal describes, when the parser found a pair and a side.
pub fn trade_of(s: &Signal) -> Option<Trade> {
    let side = match s.side? {
        StoredSide::Long => Side::Long,
        StoredSide::Short => Side::Short,
    };
    Some(Trade {
        pair: s.pair.clone().filter(|p| !p.trim().is_empty())?,
        side,
        entries: s.entries.clone(),
        targets: s.targets.clone(),
        stop: s.stop,
        leverage: s.leverage,
    })
}

/// When a signal was deleted: its tombstone's time (the document's change when unset), or
/// `removed_at` when the document itself was removed.
fn deletion(doc: &Document<Signal>, removed_at: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    match (doc.data.status, removed_at) {
        (SignalStatus::Deleted, _) => Some(doc.data.deleted_at.unwrap_or(doc.updated_at)),
        (SignalStatus::Live, removed) => removed,
    }
}

/// A signal's revisions and deletion as heard, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Heard {
    pub revisions: Vec<Revision>,
    pub deleted_at: Option<OffsetDateTime>,
}

impl Heard {
    /// The first time a signal is heard of. Its revision takes effect at the post even when it
    /// is not the first (edits made before the tracker heard of the signal are not known).
    pub fn first(doc: &Document<Signal>, removed_at: Option<OffsetDateTime>) -> Option<Heard> {
        let trade = trade_of(&doc.data)?;
        Some(Heard {
            revisions: vec![Revision {
                revision: doc.data.revision,
                effective_at: doc.data.posted_at,
                trade,
            }],
            deleted_at: deletion(doc, removed_at),
        })
    }

    /// What the tracker stored with the outcome.
    pub fn stored(doc: &SignalOutcome) -> Option<Heard> {
        let revisions: Vec<Revision> = serde_json::from_str(&doc.revisions).ok()?;
        (!revisions.is_empty()).then_some(Heard {
            revisions,
            deleted_at: doc.deleted_at,
        })
    }

    /// Takes a newer view of the signal: a higher revision (effective at its edit time, never
    /// before the revision it follows) and a deletion. Returns whether anything changed.
    pub fn hear(&mut self, doc: &Document<Signal>, removed_at: Option<OffsetDateTime>) -> bool {
        let mut changed = false;
        let last = self.revisions.last().cloned();
        if let (Some(last), Some(trade)) = (last, trade_of(&doc.data))
            && doc.data.revision > last.revision
        {
            let at = doc.data.edited_at.unwrap_or(doc.updated_at);
            self.revisions.push(Revision {
                revision: doc.data.revision,
                effective_at: at.max(last.effective_at),
                trade,
            });
            changed = true;
        }
        if self.deleted_at.is_none()
            && let Some(d) = deletion(doc, removed_at)
        {
            self.deleted_at = Some(d.max(self.posted_at()));
            changed = true;
        }
        changed
    }

    pub fn posted_at(&self) -> OffsetDateTime {
        self.revisions
            .first()
            .map_or(OffsetDateTime::UNIX_EPOCH, |r| r.effective_at)
    }

    pub fn history(&self) -> Result<History, HistoryError> {
        History::new(self.revisions.clone(), self.deleted_at)
    }
}

/// Where a signal is followed: a venue and its symbol, or why it cannot be.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Market {
    On(Venue, Symbol),
    Untrackable(String),
}

/// The `signal_outcomes` document of an outcome. Every field comes from the inputs and the
/// outcome, never from the clock, so a recompute writes the same document.
pub fn document(
    route_key: &str,
    market: &Market,
    heard: &Heard,
    outcome: &Outcome,
) -> SignalOutcome {
    let (venue, symbol) = match market {
        Market::On(v, s) => (Some(v.as_str().to_owned()), Some(s.as_str().to_owned())),
        Market::Untrackable(_) => (None, None),
    };
    SignalOutcome {
        route_key: route_key.to_owned(),
        status: outcome.status.as_str().to_owned(),
        posted_at: outcome.posted_at,
        venue,
        symbol,
        outcome: serde_json::to_string(outcome).unwrap_or_default(),
        revisions: serde_json::to_string(&heard.revisions).unwrap_or_default(),
        deleted_at: heard.deleted_at,
        updated: outcome
            .ended_at
            .or(outcome.judged_until)
            .unwrap_or(outcome.posted_at),
    }
}

/// The market a stored outcome was followed on.
pub fn stored_market(doc: &SignalOutcome) -> Option<Market> {
    match (&doc.venue, &doc.symbol) {
        (Some(v), Some(s)) => Some(Market::On(Venue::parse(v)?, Symbol::from_exchange(s)?)),
        _ => {
            let outcome: Outcome = serde_json::from_str(&doc.outcome).ok()?;
            Some(Market::Untrackable(outcome.untrackable.unwrap_or_default()))
        }
    }
}

/// Whether two outcomes differ in what a reader acts on (status, fills, exits, revisions,
/// edits, deletion), as opposed to progress (last price, prices judged).
pub fn same_events(a: &Outcome, b: &Outcome) -> bool {
    a.status == b.status
        && a.revision == b.revision
        && a.entry == b.entry
        && a.targets_hit == b.targets_hit
        && a.exit == b.exit
        && a.stop_before_entry == b.stop_before_entry
        && a.revisions == b.revisions
        && a.edits == b.edits
        && a.deleted_at == b.deleted_at
        && a.ended_at == b.ended_at
}
