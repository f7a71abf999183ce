//! Performance from a set of outcomes: per route and overall, over the last 7, 30 and 90 days
//! and all time. Every signal counts somewhere: trades in the results, no-trades (cancelled,
//! stopped before entry, expired unfilled, untrackable) in their own columns.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::outcome::{Outcome, Status};

/// One signal's outcome with what groups it.
#[derive(Debug, Clone, Copy)]
pub struct Tracked<'a> {
    /// Breaks ties in time order, so the equity curve does not depend on input order.
    pub signal_id: &'a str,
    pub route: &'a str,
    pub outcome: &'a Outcome,
}

/// Which signals a row covers, by posting time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Days7,
    Days30,
    Days90,
    AllTime,
}

impl Window {
    pub const ALL: [Window; 4] = [
        Window::Days7,
        Window::Days30,
        Window::Days90,
        Window::AllTime,
    ];

    pub fn days(&self) -> Option<i64> {
        match self {
            Window::Days7 => Some(7),
            Window::Days30 => Some(30),
            Window::Days90 => Some(90),
            Window::AllTime => None,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Window::Days7 => "7 days",
            Window::Days30 => "30 days",
            Window::Days90 => "90 days",
            Window::AllTime => "All time",
        }
    }

    /// Where the window starts for a report made at `as_of`; `None` for all time.
    pub fn since(&self, as_of: OffsetDateTime) -> Option<OffsetDateTime> {
        self.days().map(|d| as_of - Duration::days(d))
    }

    /// Posted after the window's start (exclusive) and not after `as_of`.
    pub fn contains(&self, as_of: OffsetDateTime, posted_at: OffsetDateTime) -> bool {
        posted_at <= as_of && self.since(as_of).is_none_or(|s| posted_at > s)
    }
}

/// A point of the equity curve: cumulative R after the trade that closed at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EquityPoint {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub cumulative_r: f64,
}

/// How often target `index` (0 = TP1) was hit by closed trades that had it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetRate {
    pub index: usize,
    pub hit: u32,
    pub of: u32,
    pub rate: Option<f64>,
}

/// The numbers of one group of signals. Rates are `None` when nothing is there to divide by.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Every signal, whatever happened to it.
    pub signals: u32,
    pub waiting: u32,
    /// Entered and still open.
    pub open: u32,
    /// Entered and over: `stopped + targets_hit + expired`.
    pub closed: u32,
    pub stopped: u32,
    pub targets_hit: u32,
    pub expired: u32,
    /// Closed with a positive result (R, or percent when R is undefined).
    pub wins: u32,
    pub losses: u32,
    pub breakeven: u32,
    /// `wins / closed`.
    pub win_rate: Option<f64>,
    pub stopped_before_entry: u32,
    pub expired_unfilled: u32,
    pub cancelled: u32,
    pub untrackable: u32,
    /// Closed trades with an R result (a stop on the losing side of the fill at entry).
    pub with_r: u32,
    pub net_r: f64,
    pub average_r: Option<f64>,
    /// Largest fall of cumulative R from a running peak (the start counts as a peak at 0).
    pub max_drawdown_r: f64,
    /// Unlevered percent over every closed trade, R or not.
    pub net_pct: f64,
    pub average_pct: Option<f64>,
    pub target_rates: Vec<TargetRate>,
    /// Judged without a stop (the stop at entry, or in force for a signal never entered).
    pub no_stop: u32,
    pub no_stop_share: Option<f64>,
    pub edited: u32,
    pub edit_rate: Option<f64>,
    pub deleted: u32,
    pub delete_rate: Option<f64>,
    /// Deleted after entry: still tracked and counted.
    pub deleted_after_entry: u32,
    pub ambiguous_bars: u32,
    /// Signals with at least one event decided on an ambiguous bar.
    pub ambiguous_signals: u32,
    /// Signals with an event resting on backfilled bars or a gap in the data.
    pub lower_precision: u32,
    /// Cumulative R in closing order, starting at 0 at `curve_start`.
    pub curve: Vec<EquityPoint>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub curve_start: Option<OffsetDateTime>,
}

/// Overall and per-route numbers of one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    pub window: Window,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub since: Option<OffsetDateTime>,
    pub overall: Stats,
    pub routes: BTreeMap<String, Stats>,
}

/// Every window, made at `as_of`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
    pub windows: Vec<WindowStats>,
}

/// The report of `items` at `as_of`; signals posted after `as_of` are left out of every
/// window. Input order does not matter.
pub fn report(items: &[Tracked<'_>], as_of: OffsetDateTime) -> Report {
    let windows = Window::ALL
        .into_iter()
        .map(|window| {
            let since = window.since(as_of);
            let inside: Vec<Tracked<'_>> = items
                .iter()
                .filter(|t| window.contains(as_of, t.outcome.posted_at))
                .copied()
                .collect();
            let mut by_route: BTreeMap<&str, Vec<Tracked<'_>>> = BTreeMap::new();
            for t in &inside {
                by_route.entry(t.route).or_default().push(*t);
            }
            WindowStats {
                window,
                since,
                overall: summarize(&inside, since),
                routes: by_route
                    .into_iter()
                    .map(|(route, ts)| (route.to_owned(), summarize(&ts, since)))
                    .collect(),
            }
        })
        .collect();
    Report { as_of, windows }
}

fn rate(n: u32, of: u32) -> Option<f64> {
    (of > 0).then(|| f64::from(n) / f64::from(of))
}

/// The numbers of one group. The curve starts at `since`, or at the earliest post.
pub fn summarize(items: &[Tracked<'_>], since: Option<OffsetDateTime>) -> Stats {
    let mut s = Stats::default();
    let mut curve: Vec<(OffsetDateTime, OffsetDateTime, &str, f64)> = Vec::new();
    let mut pct_sum = 0.0;
    for t in items {
        let o = t.outcome;
        s.signals += 1;
        match o.status {
            Status::WaitingForEntry => s.waiting += 1,
            Status::Entered => s.open += 1,
            Status::Stopped => s.stopped += 1,
            Status::TargetsHit => s.targets_hit += 1,
            Status::Expired => s.expired += 1,
            Status::ExpiredUnfilled => s.expired_unfilled += 1,
            Status::StoppedBeforeEntry => s.stopped_before_entry += 1,
            Status::Cancelled => s.cancelled += 1,
            Status::Untrackable => s.untrackable += 1,
        }
        let stop = if o.entry.is_some() {
            o.stop_at_entry
        } else {
            o.stop
        };
        s.no_stop += u32::from(stop.is_none());
        s.edited += u32::from(o.edits > 0);
        s.deleted += u32::from(o.deleted_at.is_some());
        s.deleted_after_entry += u32::from(o.deleted_after_entry());
        s.ambiguous_bars += o.quality.ambiguous_bars;
        s.ambiguous_signals += u32::from(o.ambiguous());
        s.lower_precision += u32::from(o.lower_precision());
        let Some(pct) = o.result_pct() else {
            continue;
        };
        s.closed += 1;
        pct_sum += pct;
        let result = o.result_r().unwrap_or(pct);
        if result > 0.0 {
            s.wins += 1;
        } else if result < 0.0 {
            s.losses += 1;
        } else {
            s.breakeven += 1;
        }
        if let (Some(r), Some(ended)) = (o.result_r(), o.ended_at) {
            curve.push((ended, o.posted_at, t.signal_id, r));
        }
    }
    s.win_rate = rate(s.wins, s.closed);
    s.net_pct = pct_sum;
    s.average_pct = (s.closed > 0).then(|| pct_sum / f64::from(s.closed));
    s.no_stop_share = rate(s.no_stop, s.signals);
    s.edit_rate = rate(s.edited, s.signals);
    s.delete_rate = rate(s.deleted, s.signals);
    s.target_rates = target_rates(items);

    curve.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    let (mut cum, mut peak, mut dd) = (0.0_f64, 0.0_f64, 0.0_f64);
    for (at, _, _, r) in &curve {
        cum += r;
        peak = peak.max(cum);
        dd = dd.max(peak - cum);
        s.curve.push(EquityPoint {
            at: *at,
            cumulative_r: cum,
        });
    }
    s.with_r = u32::try_from(curve.len()).unwrap_or(u32::MAX);
    s.net_r = cum;
    s.average_r = (s.with_r > 0).then(|| cum / f64::from(s.with_r));
    s.max_drawdown_r = dd;
    s.curve_start = since.or_else(|| items.iter().map(|t| t.outcome.posted_at).min());
    s
}

fn target_rates(items: &[Tracked<'_>]) -> Vec<TargetRate> {
    let closed: Vec<&Outcome> = items
        .iter()
        .map(|t| t.outcome)
        .filter(|o| o.status.is_closed_trade())
        .collect();
    let most = closed
        .iter()
        .map(|o| {
            let hit = o.targets_hit.iter().map(|h| h.index + 1).max().unwrap_or(0);
            o.targets.len().max(hit)
        })
        .max()
        .unwrap_or(0);
    (0..most)
        .map(|index| {
            let had = |o: &&&Outcome| o.targets.len() > index || o.target_hit(index);
            let of = closed.iter().filter(had).count();
            let hit = closed.iter().filter(|o| o.target_hit(index)).count();
            let (hit, of) = (
                u32::try_from(hit).unwrap_or(u32::MAX),
                u32::try_from(of).unwrap_or(u32::MAX),
            );
            TargetRate {
                index,
                hit,
                of,
                rate: rate(hit, of),
            }
        })
        .collect()
}
