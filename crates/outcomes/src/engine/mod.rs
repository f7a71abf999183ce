//! The tracker: feeds a time-ordered price stream through one signal's history and keeps its
//! [`Outcome`]. Pure and incremental: the same history and prices give the same outcome
//! however the stream is cut into pushes, and a replay from scratch gives it again.

mod walk;

use time::{Duration, OffsetDateTime};

use crate::history::History;
use crate::market::{Market, StreamError};
use crate::outcome::{Outcome, RevisionUse, Source, Status};
use walk::{Ctx, State};

/// The configurable parts of the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// How long after posting a signal is followed. Unfilled by then: expired without a
    /// trade; entered: closed at the last price judged.
    pub time_limit: Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            time_limit: Duration::days(7),
        }
    }
}

/// A new history would change what was already judged: replay the prices from `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the new history changes what was already judged; replay the prices from {from}")]
pub struct Replay {
    pub from: OffsetDateTime,
}

/// The prices that decide nothing for a signal: a price item that starts before `until` and
/// whose prices all lie strictly between `low` and `high` leaves its events (status, entry,
/// targets, exit, revision in force) as they are, and is never an ambiguous bar. A trade
/// outside it, or at or after `until`, may decide something. See [`Tracker::band`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    /// Exclusive; `-∞` when nothing below matters.
    pub low: f64,
    /// Exclusive; `+∞` when nothing above matters.
    pub high: f64,
    /// The first instant at which time alone may decide (a revision taking effect, a deletion
    /// before entry, the time limit, the post of a signal not yet judged); `None`: never.
    pub until: Option<OffsetDateTime>,
}

impl Band {
    /// Nothing decides anything (a final outcome).
    pub const ALL: Band = Band {
        low: f64::NEG_INFINITY,
        high: f64::INFINITY,
        until: None,
    };

    /// Whether a trade of `price` at `at` decides nothing.
    pub fn holds(&self, at: OffsetDateTime, price: f64) -> bool {
        self.low < price && price < self.high && self.until.is_none_or(|u| at < u)
    }

    /// The band of several signals judged on the same prices: what decides nothing for any.
    pub fn meet(self, other: Band) -> Band {
        Band {
            low: self.low.max(other.low),
            high: self.high.min(other.high),
            until: match (self.until, other.until) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

/// Judges one signal against a price stream, item by item.
#[derive(Debug, Clone)]
pub struct Tracker {
    history: History,
    rules: Rules,
    state: State,
    /// Index in `history` of the revision prices are being judged under.
    rev_index: usize,
    /// End of the last item pushed, and the time given to [`Tracker::advance_to`].
    last_end: Option<OffsetDateTime>,
    watermark: Option<OffsetDateTime>,
    /// A declared gap since the last price judged.
    gap_pending: bool,
}

impl Tracker {
    pub fn new(history: History, rules: Rules) -> Tracker {
        let out = Outcome::initial(&history, rules.time_limit);
        let state = State::new(out, &history.first().trade);
        Tracker {
            history,
            rules,
            state,
            rev_index: 0,
            last_end: None,
            watermark: None,
            gap_pending: false,
        }
    }

    pub fn outcome(&self) -> &Outcome {
        &self.state.out
    }

    pub fn into_outcome(self) -> Outcome {
        self.state.out
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// Judges the next item of the stream. Items must not start before the end of the one
    /// before (nor before a time given to [`Tracker::advance_to`]); a refused item changes
    /// nothing. Items before the post, and every item once the outcome is final, are skipped.
    pub fn push(&mut self, item: &Market) -> Result<(), StreamError> {
        item.check()?;
        if let Some(after) = self.seen()
            && item.start() < after
        {
            return Err(StreamError::OutOfOrder {
                start: item.start(),
                after,
            });
        }
        self.last_end = Some(self.last_end.map_or(item.end(), |e| e.max(item.end())));
        if self.state.out.status.is_final() {
            return Ok(());
        }
        let posted = self.history.posted_at();
        match item {
            Market::Gap { from, to } => {
                self.deadlines(*from);
                if *to > posted && !self.state.out.status.is_final() {
                    self.gap_pending = true;
                    self.state.out.quality.gaps += 1;
                }
            }
            Market::Tick(t) if t.time >= posted => {
                self.deadlines(t.time);
                if self.state.out.status.is_final() {
                    return Ok(());
                }
                self.switch_revision(t.time);
                let m = self.state.sign() * t.price;
                let ctx = Ctx {
                    at: t.time,
                    until: None,
                    source: if self.gap_pending && self.state.prev.is_some() {
                        Source::Gap
                    } else {
                        Source::Tick
                    },
                    jump: true,
                };
                match self.state.prev {
                    Some(p) => self.state.walk(p, m, &ctx),
                    None => self.state.settle(m, &ctx),
                }
                self.state.out.quality.ticks += 1;
                self.observed(m, t.price, Source::Tick, t.time);
            }
            Market::Bar(b) if b.open_time >= posted => {
                self.deadlines(b.open_time);
                if self.state.out.status.is_final() {
                    return Ok(());
                }
                self.switch_revision(b.open_time);
                let sign = self.state.sign();
                let (o, c) = (sign * b.open, sign * b.close);
                let (h, l) = if sign > 0.0 {
                    (b.high, b.low)
                } else {
                    (-b.low, -b.high)
                };
                let source = if b.backfilled {
                    Source::Backfill
                } else {
                    Source::Bar
                };
                let ctx = Ctx {
                    at: b.open_time,
                    until: Some(b.close_time),
                    source,
                    jump: false,
                };
                match self.state.prev {
                    Some(p) => {
                        let gap = Ctx {
                            jump: true,
                            source: if self.gap_pending {
                                Source::Gap
                            } else {
                                source
                            },
                            ..ctx
                        };
                        self.state.walk(p, o, &gap);
                    }
                    None => self.state.settle(o, &ctx),
                }
                if self.state.inside_bar(o, h, l, c, &ctx) {
                    self.state.out.quality.ambiguous_bars += 1;
                }
                let q = &mut self.state.out.quality;
                q.bars += 1;
                q.backfilled_bars += u64::from(b.backfilled);
                self.observed(c, b.close, source, b.close_time);
            }
            // Before the post: not judged.
            Market::Tick(_) | Market::Bar(_) => {}
        }
        Ok(())
    }

    /// Pushes every item in order; stops at the first refused one.
    pub fn push_all<'a>(
        &mut self,
        items: impl IntoIterator<Item = &'a Market>,
    ) -> Result<(), StreamError> {
        items.into_iter().try_for_each(|item| self.push(item))
    }

    /// Declares that every price before `t` has been pushed, so deadlines up to `t` (the time
    /// limit, a deletion before entry) take effect without waiting for the next price. Later
    /// items must not start before `t`.
    pub fn advance_to(&mut self, t: OffsetDateTime) {
        if self.watermark.is_some_and(|w| w >= t) {
            return;
        }
        self.watermark = Some(t);
        self.deadlines(t);
    }

    /// The prices that decide nothing from here on (see [`Band`]). A caller that groups
    /// trades into bars can end a bar just before a trade outside it and push that trade as a
    /// [`Market::Tick`]: every bar then holds only prices that decide nothing, so none is
    /// ambiguous, and the decisive trade is judged as it arrives. The band stays valid while
    /// only items inside it are pushed; after any other item, a revision or
    /// [`Tracker::advance_to`], ask again.
    pub fn band(&self) -> Band {
        let out = &self.state.out;
        if out.status.is_final() {
            return Band::ALL;
        }
        let mut until = out.expires_at;
        if out.status == Status::WaitingForEntry
            && let Some(d) = out.deleted_at
        {
            until = until.min(d);
        }
        if let Some(next) = self.history.revisions().get(self.rev_index + 1) {
            until = until.min(next.effective_at);
        }
        match self.state.quiet() {
            Some((lo, hi)) => {
                let (low, high) = if self.state.sign() > 0.0 {
                    (lo, hi)
                } else {
                    (-hi, -lo)
                };
                Band {
                    low,
                    high,
                    until: Some(until),
                }
            }
            // No price judged yet (or the levels just changed): prices before the post are
            // not judged; the first one at or after it is settled on its own and may decide.
            None => Band {
                until: Some(until.min(self.history.posted_at())),
                ..Band::ALL
            },
        }
    }

    /// Takes a newer history of the same signal (a later edit, a deletion). Accepted when it
    /// only adds revisions and a deletion after everything judged so far; otherwise nothing
    /// changes and the caller replays the prices into a new tracker.
    pub fn revise(&mut self, history: History) -> Result<(), Replay> {
        let Some(seen) = self.seen() else {
            *self = Tracker::new(history, self.rules);
            return Ok(());
        };
        let old = self.history.revisions();
        let new = history.revisions();
        let extends = new.len() >= old.len()
            && new[..old.len()] == *old
            && new[old.len()..].iter().all(|r| r.effective_at > seen);
        let deletion = match (self.history.deleted_at(), history.deleted_at()) {
            (a, b) if a == b => true,
            (None, Some(d)) => d > seen,
            _ => false,
        };
        if !(extends && deletion) {
            return Err(Replay {
                from: self.history.posted_at(),
            });
        }
        self.state.out.edits = history.edits();
        self.state.out.deleted_at = history.deleted_at();
        self.history = history;
        Ok(())
    }

    fn seen(&self) -> Option<OffsetDateTime> {
        match (self.last_end, self.watermark) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    fn observed(&mut self, m: f64, price: f64, source: Source, until: OffsetDateTime) {
        self.state.prev = Some(m);
        self.state.last_source = source;
        self.gap_pending = false;
        self.state.out.last_price = Some(price);
        self.state.out.judged_until = Some(until);
    }

    /// Brings into force the revision in force at `t`, if it is not already.
    fn switch_revision(&mut self, t: OffsetDateTime) {
        let index = self.history.index_at(t);
        if index == self.rev_index {
            return;
        }
        self.rev_index = index;
        let rev = &self.history.revisions()[index];
        let judged = self.state.apply(rev.revision, &rev.trade);
        self.state.out.revisions.push(RevisionUse {
            revision: rev.revision,
            effective_at: rev.effective_at,
            judged,
        });
    }

    /// The time limit and a deletion before entry, once time `t` is reached. Of the two, the
    /// earlier counts; at the same instant, the deletion.
    fn deadlines(&mut self, t: OffsetDateTime) {
        let out = &self.state.out;
        let expiry = (out.expires_at <= t).then_some(out.expires_at);
        match out.status {
            Status::WaitingForEntry => {
                let deleted = out.deleted_at.filter(|d| *d <= t);
                match (deleted, expiry) {
                    (Some(d), Some(e)) if e < d => {
                        walk::end_unfilled(&mut self.state, Status::ExpiredUnfilled, e)
                    }
                    (Some(d), _) => walk::end_unfilled(&mut self.state, Status::Cancelled, d),
                    (None, Some(e)) => {
                        walk::end_unfilled(&mut self.state, Status::ExpiredUnfilled, e)
                    }
                    (None, None) => {}
                }
            }
            Status::Entered => {
                if let Some(e) = expiry {
                    walk::expire_open(&mut self.state, e);
                }
            }
            _ => {}
        }
    }
}

/// Judges `history` against a whole price stream; `as_of` (when given) is the time up to
/// which the stream is known complete, so deadlines before it take effect.
pub fn evaluate(
    history: &History,
    rules: Rules,
    prices: &[Market],
    as_of: Option<OffsetDateTime>,
) -> Result<Outcome, StreamError> {
    let mut tracker = Tracker::new(history.clone(), rules);
    tracker.push_all(prices)?;
    if let Some(t) = as_of {
        tracker.advance_to(t);
    }
    Ok(tracker.into_outcome())
}
