//! The result of judging one signal: a plain serde value holding every event with its time,
//! price, the revision it was judged against and how precise the data behind it was. Equal
//! inputs give equal values (see `docs/outcomes.md` for the rules in words).

use g3_core::signal::Side;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::history::History;

/// Where a signal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Posted; the entry has not been reached.
    WaitingForEntry,
    /// In the trade; no stop and not every target yet.
    Entered,
    /// Closed by the stop (possibly after some targets).
    Stopped,
    /// Every target in force was hit.
    TargetsHit,
    /// Entered, and still open at the time limit: closed at the last price judged.
    Expired,
    /// The time limit passed before the entry was reached: no trade.
    ExpiredUnfilled,
    /// The stop was reached before the entry: no trade.
    StoppedBeforeEntry,
    /// Deleted by its author before the entry was reached: no trade.
    Cancelled,
    /// Not judged at all, for a reason the caller gives (e.g. the pair is not listed).
    Untrackable,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::WaitingForEntry => "waiting_for_entry",
            Status::Entered => "entered",
            Status::Stopped => "stopped",
            Status::TargetsHit => "targets_hit",
            Status::Expired => "expired",
            Status::ExpiredUnfilled => "expired_unfilled",
            Status::StoppedBeforeEntry => "stopped_before_entry",
            Status::Cancelled => "cancelled",
            Status::Untrackable => "untrackable",
        }
    }

    /// No further price can change the outcome.
    pub fn is_final(&self) -> bool {
        !matches!(self, Status::WaitingForEntry | Status::Entered)
    }

    /// A trade that was entered and is over: it has a result.
    pub fn is_closed_trade(&self) -> bool {
        matches!(self, Status::Stopped | Status::TargetsHit | Status::Expired)
    }
}

/// What kind of price decided an event. Anything but `Tick` and `Bar` is lower precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Tick,
    Bar,
    /// A bar fetched after an outage of the live stream.
    Backfill,
    /// Decided across a declared hole in the data (straight-line assumption).
    Gap,
}

/// When and at what price something happened, and what it was judged on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Touch {
    pub price: f64,
    /// The tick's time, or the open of the bar it happened in.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// For a bar: its close. The event happened between `at` and this.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub until: Option<OffsetDateTime>,
    /// The revision whose levels were in force.
    pub revision: i64,
    pub source: Source,
    /// The bar touched levels whose order it cannot tell; the worse order was counted.
    pub ambiguous: bool,
}

/// A target reached after entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetHit {
    /// 0 for TP1.
    pub index: usize,
    pub touch: Touch,
    /// Part of the position closed here (the open part divided by the targets not yet hit).
    pub share: f64,
    /// This exit's R multiple (not weighted by `share`); `None` without a usable stop.
    pub r: Option<f64>,
    /// This exit's unlevered percent move from the fill.
    pub pct: f64,
}

/// Why the rest of a position was closed (targets close their own shares).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    Stop,
    TimeLimit,
}

/// The close of whatever was still open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exit {
    pub reason: ExitReason,
    pub touch: Touch,
    pub share: f64,
    pub r: Option<f64>,
    pub pct: f64,
}

/// How a revision was used when it came into force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Judged {
    /// Every level applies from its time on.
    Applied,
    /// After entry: stop and targets apply; the entry (already filled) and leverage do not.
    LevelsOnly,
    /// A different pair: not applied, the earlier levels stay.
    IgnoredPairChanged,
    /// After entry, a different side: not applied, the earlier levels stay.
    IgnoredSideChanged,
}

/// One revision as it came into force while prices were judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionUse {
    pub revision: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub effective_at: OffsetDateTime,
    pub judged: Judged,
}

/// How much data was judged, and how good it was.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quality {
    pub ticks: u64,
    pub bars: u64,
    pub backfilled_bars: u64,
    pub gaps: u32,
    pub ambiguous_bars: u32,
}

/// The outcome of one signal. Prices are the pair's; results are unlevered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub status: Status,
    pub pair: String,
    /// The side of the levels in force (fixed once entered).
    pub side: Side,
    #[serde(with = "time::serde::rfc3339")]
    pub posted_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The levels in force now (revision `revision`): entry zone `(low, high)`, `None` for
    /// market; targets; stop.
    pub revision: i64,
    pub entry_zone: Option<(f64, f64)>,
    pub targets: Vec<f64>,
    pub stop: Option<f64>,
    /// Leverage of the revision in force at entry (or now, before entry). Never applied.
    pub leverage: Option<f64>,
    pub entry: Option<Touch>,
    /// The stop as it stood at entry; R is measured against it.
    pub stop_at_entry: Option<f64>,
    /// Distance from the fill to `stop_at_entry`, in price; `None` without a stop on the
    /// losing side of the fill.
    pub risk: Option<f64>,
    pub targets_hit: Vec<TargetHit>,
    pub exit: Option<Exit>,
    /// The touch of the stop that ended the signal before entry.
    pub stop_before_entry: Option<Touch>,
    /// When the outcome became final.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub ended_at: Option<OffsetDateTime>,
    /// Part of the position still open (1 at entry, 0 when closed).
    pub open_share: f64,
    /// Sum of share × R over exits so far; `None` when R is undefined (no usable stop).
    pub realized_r: Option<f64>,
    /// Sum of share × percent over exits so far.
    pub realized_pct: f64,
    pub edits: u32,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub deleted_at: Option<OffsetDateTime>,
    pub revisions: Vec<RevisionUse>,
    pub quality: Quality,
    /// The last price judged (before the outcome became final).
    pub last_price: Option<f64>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub judged_until: Option<OffsetDateTime>,
    /// Why the signal is [`Status::Untrackable`].
    pub untrackable: Option<String>,
}

impl Outcome {
    /// The outcome of a signal that cannot be judged (the pair is not listed, no price
    /// history exists): counted in its own column, never dropped.
    pub fn untrackable(history: &History, time_limit: time::Duration, reason: &str) -> Outcome {
        let mut out = Outcome::initial(history, time_limit);
        out.status = Status::Untrackable;
        out.untrackable = Some(reason.to_owned());
        out
    }

    pub(crate) fn initial(history: &History, time_limit: time::Duration) -> Outcome {
        let first = history.first();
        let t = &first.trade;
        Outcome {
            status: Status::WaitingForEntry,
            pair: t.pair.clone(),
            side: t.side,
            posted_at: first.effective_at,
            expires_at: first.effective_at + time_limit,
            revision: first.revision,
            entry_zone: zone(&t.entries),
            targets: t.targets.clone(),
            stop: t.stop,
            leverage: t.leverage,
            entry: None,
            stop_at_entry: None,
            risk: None,
            targets_hit: Vec::new(),
            exit: None,
            stop_before_entry: None,
            ended_at: None,
            open_share: 0.0,
            realized_r: None,
            realized_pct: 0.0,
            edits: history.edits(),
            deleted_at: history.deleted_at(),
            revisions: vec![RevisionUse {
                revision: first.revision,
                effective_at: first.effective_at,
                judged: Judged::Applied,
            }],
            quality: Quality::default(),
            last_price: None,
            judged_until: None,
            untrackable: None,
        }
    }

    /// The whole trade's R when it is closed; `None` while open, for no-trades and without a
    /// usable stop.
    pub fn result_r(&self) -> Option<f64> {
        self.status
            .is_closed_trade()
            .then_some(self.realized_r)
            .flatten()
    }

    /// The whole trade's unlevered percent result when it is closed.
    pub fn result_pct(&self) -> Option<f64> {
        self.status.is_closed_trade().then_some(self.realized_pct)
    }

    /// Whether target `index` (0 = TP1) was hit.
    pub fn target_hit(&self, index: usize) -> bool {
        self.targets_hit.iter().any(|h| h.index == index)
    }

    /// The nearest target not yet hit, with its index, while the trade can still reach it.
    pub fn next_target(&self) -> Option<(usize, f64)> {
        if self.status.is_final() {
            return None;
        }
        let sign = side_sign(self.side);
        self.targets
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.target_hit(*i))
            .min_by(|a, b| (sign * a.1).total_cmp(&(sign * b.1)))
            .map(|(i, p)| (i, *p))
    }

    /// Whether the signal was deleted after it was entered (it still counts).
    pub fn deleted_after_entry(&self) -> bool {
        self.deleted_at.is_some() && self.entry.is_some()
    }

    /// Whether any event rests on backfilled bars or crosses a hole in the data.
    pub fn lower_precision(&self) -> bool {
        let low = |t: &Touch| matches!(t.source, Source::Backfill | Source::Gap);
        self.quality.gaps > 0
            || self.entry.iter().any(low)
            || self.targets_hit.iter().any(|h| low(&h.touch))
            || self.exit.iter().any(|e| low(&e.touch))
            || self.stop_before_entry.iter().any(low)
    }

    /// Whether any event was decided on an ambiguous bar.
    pub fn ambiguous(&self) -> bool {
        self.entry.iter().any(|t| t.ambiguous)
            || self.targets_hit.iter().any(|h| h.touch.ambiguous)
            || self.exit.iter().any(|e| e.touch.ambiguous)
            || self.stop_before_entry.iter().any(|t| t.ambiguous)
    }
}

pub(crate) fn side_sign(side: Side) -> f64 {
    match side {
        Side::Long => 1.0,
        Side::Short => -1.0,
    }
}

/// The entry zone of a list of entries: lowest to highest; `None` (market) when empty.
pub(crate) fn zone(entries: &[f64]) -> Option<(f64, f64)> {
    let lo = entries.iter().copied().reduce(f64::min)?;
    let hi = entries.iter().copied().reduce(f64::max)?;
    Some((lo, hi))
}

/// Powers of ten that are exact in an `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Significant digits kept in computed results (R, percent, shares).
const DIGITS: i32 = 10;

/// `x` rounded to [`DIGITS`] significant digits, as `integer / 10^k` correctly rounded: the
/// value a JSON reader (serde_json, or any correct parser) gets back from its shortest
/// printing, so a stored outcome reads back equal and a recompute compares equal to it.
/// Magnitudes below 1e-13 are zero (see the match below).
pub(crate) fn round(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    if !x.is_finite() {
        return x;
    }
    let k = DIGITS - 1 - x.abs().log10().floor() as i32;
    let pow = |k: i32| POW10.get(k.unsigned_abs() as usize).copied();
    let rounded = match (k >= 0, pow(k)) {
        (true, Some(p)) => (x * p).round() / p,
        (false, Some(p)) => (x / p).round() * p,
        // Below 1e-13: no result, share or price distance is that small, only the leftover of
        // sums that cancel (three thirds of a position closed at +1R, -1R and 0R). Kept, it
        // would count as a win and not read back equal from JSON, so it is zero.
        (true, None) => 0.0,
        (false, None) => x,
    };
    rounded + 0.0
}

#[cfg(test)]
mod tests {
    use super::round;

    #[test]
    fn the_leftover_of_cancelling_sums_is_zero() {
        let sum: f64 = 0.1 + 0.2 - 0.3;
        assert!(sum != 0.0 && sum.abs() < 1e-13, "{sum}");
        assert_eq!(round(sum), 0.0);
        assert_eq!(round(1.1102230246251565e-16), 0.0);
        assert_eq!(round(-2.2e-16), 0.0);
        assert_eq!(round(2.5e-12), 2.5e-12);
    }

    #[test]
    fn results_keep_ten_significant_digits() {
        assert_eq!(round(1.0 / 3.0), 0.3333333333);
        assert_eq!(round(-2.0 / 3.0), -0.6666666667);
        assert_eq!(round(7.84313725490196), 7.843137255);
        assert_eq!(round(0.000012345678912345), 0.00001234567891);
        assert_eq!(round(123456.789012345), 123456.789);
        assert_eq!(round(0.0), 0.0);
        assert_eq!(round(-0.0).to_bits(), 0.0f64.to_bits());
        assert!(round(f64::NAN).is_nan());
    }
}
