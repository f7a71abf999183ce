//! What a signal said and when: each revision's trade with the time it took effect, and the
//! deletion time. Built only through [`History::new`], which checks order and prices, so the
//! engine never meets a NaN level or a revision out of time order.

use g3_core::signal::{ParsedSignal, Side};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The trade a revision of a signal describes, as the parser read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    /// `BASE/QUOTE` as the parser writes it. Prices are those of this pair.
    pub pair: String,
    pub side: Side,
    /// Empty: enter at market. One price: a single entry. Several: a zone from the lowest to
    /// the highest (order and count do not matter).
    pub entries: Vec<f64>,
    /// In the order written; index 0 is TP1.
    pub targets: Vec<f64>,
    pub stop: Option<f64>,
    /// Shown beside results, never applied to them.
    pub leverage: Option<f64>,
}

impl From<&ParsedSignal> for Trade {
    fn from(p: &ParsedSignal) -> Self {
        Trade {
            pair: p.pair.clone(),
            side: p.side,
            entries: p.entries.clone(),
            targets: p.targets.clone(),
            stop: p.stop,
            leverage: p.leverage,
        }
    }
}

/// One revision of a signal: the trade as of that revision and the time it took effect (the
/// posting time for the first, the edit time for later ones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    pub revision: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub effective_at: OffsetDateTime,
    pub trade: Trade,
}

/// Why a history was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HistoryError {
    #[error("a signal history needs at least one revision")]
    Empty,
    #[error("revision {revision} is not after the one before it (numbers and times must increase)")]
    OutOfOrder { revision: i64 },
    #[error("revision {revision} has a {what} that is not a finite positive number")]
    InvalidNumber { revision: i64, what: &'static str },
    #[error("the deletion time is before the signal was posted")]
    DeletedBeforePosted,
}

/// A signal's revisions in time order, and when it was deleted, if it was. The first
/// revision's time is the posting time.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    revisions: Vec<Revision>,
    deleted_at: Option<OffsetDateTime>,
}

impl History {
    /// Checks that revision numbers strictly increase, effective times never go back, every
    /// price and leverage is finite and positive, and a deletion is not before the post.
    pub fn new(
        revisions: Vec<Revision>,
        deleted_at: Option<OffsetDateTime>,
    ) -> Result<History, HistoryError> {
        let first = revisions.first().ok_or(HistoryError::Empty)?;
        if deleted_at.is_some_and(|d| d < first.effective_at) {
            return Err(HistoryError::DeletedBeforePosted);
        }
        for pair in revisions.windows(2) {
            if let [a, b] = pair
                && (b.revision <= a.revision || b.effective_at < a.effective_at)
            {
                return Err(HistoryError::OutOfOrder {
                    revision: b.revision,
                });
            }
        }
        for r in &revisions {
            check_numbers(r)?;
        }
        Ok(History {
            revisions,
            deleted_at,
        })
    }

    /// When the signal was posted: the first revision's effective time.
    pub fn posted_at(&self) -> OffsetDateTime {
        self.first().effective_at
    }

    pub fn revisions(&self) -> &[Revision] {
        &self.revisions
    }

    pub fn deleted_at(&self) -> Option<OffsetDateTime> {
        self.deleted_at
    }

    /// Edits after the post.
    pub fn edits(&self) -> u32 {
        u32::try_from(self.revisions.len().saturating_sub(1)).unwrap_or(u32::MAX)
    }

    pub(crate) fn first(&self) -> &Revision {
        // Never empty: `new` refuses an empty list and nothing removes revisions.
        &self.revisions[0]
    }

    /// Index of the revision in force at `t`: the last one that took effect at or before it.
    pub(crate) fn index_at(&self, t: OffsetDateTime) -> usize {
        self.revisions
            .partition_point(|r| r.effective_at <= t)
            .saturating_sub(1)
    }
}

fn check_numbers(r: &Revision) -> Result<(), HistoryError> {
    let ok = |v: &f64| v.is_finite() && *v > 0.0;
    let bad = |what| HistoryError::InvalidNumber {
        revision: r.revision,
        what,
    };
    let t = &r.trade;
    if !t.entries.iter().all(ok) {
        return Err(bad("entry"));
    }
    if !t.targets.iter().all(ok) {
        return Err(bad("target"));
    }
    if !t.stop.iter().all(ok) {
        return Err(bad("stop"));
    }
    if !t.leverage.iter().all(ok) {
        return Err(bad("leverage"));
    }
    Ok(())
}
