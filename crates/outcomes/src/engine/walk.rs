//! The price path against a signal's levels. Prices are mirrored for a short (`-p`), so every
//! rule is written once, for a long: the stop is below, targets above, adverse means down.
//! Between two observed prices the price is assumed to pass through every level in between,
//! in order; inside a bar both orders of high and low are tried and the worse one is kept.

use crate::history::Trade;
use crate::outcome::{
    Exit, ExitReason, Judged, Outcome, Source, Status, TargetHit, Touch, round, side_sign, zone,
};

/// A signal's levels in mirrored prices (for a short, every price negated).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Levels {
    /// `(low, high)` of the entry zone; `None` enters at market.
    zone: Option<(f64, f64)>,
    stop: Option<f64>,
    targets: Vec<f64>,
}

impl Levels {
    fn of(trade: &Trade) -> Levels {
        let sign = side_sign(trade.side);
        Levels {
            zone: zone(&trade.entries).map(
                |(lo, hi)| {
                    if sign > 0.0 { (lo, hi) } else { (-hi, -lo) }
                },
            ),
            stop: trade.stop.map(|s| sign * s),
            targets: trade.targets.iter().map(|t| sign * t).collect(),
        }
    }
}

/// How one stretch of the path is read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ctx {
    pub at: time::OffsetDateTime,
    pub until: Option<time::OffsetDateTime>,
    pub source: Source,
    /// The stretch is between two observations (tick to tick, bar to bar): a stop crossed on
    /// it fills at the observed price after it, not at the stop.
    pub jump: bool,
}

#[derive(Debug, Clone, Copy)]
enum Level {
    Stop,
    Entry,
    Target,
}

/// Everything that changes as prices are judged. Cloned to try both orders inside a bar.
#[derive(Debug, Clone)]
pub(super) struct State {
    pub out: Outcome,
    levels: Levels,
    sign: f64,
    /// Per target index ever in force: hit already. Never shrinks, so an index hit once is
    /// never hit twice.
    hit: Vec<bool>,
    /// The fill, mirrored; the risk at entry; the open part and the realized sums, unrounded
    /// (the outcome holds them rounded, see [`round`]).
    fill: f64,
    risk: Option<f64>,
    open: f64,
    sum_pct: f64,
    sum_r: Option<f64>,
    /// The last observed price, mirrored; `None` at a fresh start (first price, or first price
    /// after the levels changed), where only that price itself is judged.
    pub prev: Option<f64>,
    pub last_source: Source,
}

impl State {
    pub(super) fn new(out: Outcome, first: &Trade) -> State {
        State {
            out,
            levels: Levels::of(first),
            sign: side_sign(first.side),
            hit: vec![false; first.targets.len()],
            fill: 0.0,
            risk: None,
            open: 0.0,
            sum_pct: 0.0,
            sum_r: None,
            prev: None,
            last_source: Source::Tick,
        }
    }

    pub(super) fn sign(&self) -> f64 {
        self.sign
    }

    fn is_final(&self) -> bool {
        self.out.status.is_final()
    }

    /// Brings `trade` (revision `revision`) into force; see [`Judged`] for what applies when.
    pub(super) fn apply(&mut self, revision: i64, trade: &Trade) -> Judged {
        if trade.pair != self.out.pair {
            return Judged::IgnoredPairChanged;
        }
        let new = Levels::of(trade);
        let sign = side_sign(trade.side);
        let judged = match self.out.status {
            Status::WaitingForEntry => {
                self.out.side = trade.side;
                self.out.entry_zone = zone(&trade.entries);
                self.out.leverage = trade.leverage;
                Judged::Applied
            }
            _ if trade.side != self.out.side => return Judged::IgnoredSideChanged,
            _ => Judged::LevelsOnly,
        };
        let kept = Levels {
            zone: if judged == Judged::Applied {
                new.zone
            } else {
                self.levels.zone
            },
            ..new
        };
        if kept != self.levels || sign != self.sign {
            self.prev = None;
        }
        self.levels = kept;
        self.sign = sign;
        if self.hit.len() < trade.targets.len() {
            self.hit.resize(trade.targets.len(), false);
        }
        self.out.revision = revision;
        self.out.targets = trade.targets.clone();
        self.out.stop = trade.stop;
        judged
    }

    fn touch(&self, m: f64, ctx: &Ctx) -> Touch {
        Touch {
            price: self.sign * m,
            at: ctx.at,
            until: ctx.until,
            revision: self.out.revision,
            source: ctx.source,
            ambiguous: false,
        }
    }

    fn pct(&self, m: f64) -> f64 {
        (m - self.fill) / self.fill.abs() * 100.0
    }

    fn r(&self, m: f64) -> Option<f64> {
        self.risk.map(|risk| (m - self.fill) / risk)
    }

    fn enter(&mut self, m: f64, ctx: &Ctx) {
        self.fill = m;
        let risk = self.levels.stop.map(|s| m - s).filter(|r| *r > 0.0);
        self.out.status = Status::Entered;
        self.out.entry = Some(self.touch(m, ctx));
        self.out.stop_at_entry = self.out.stop;
        self.risk = risk;
        self.open = 1.0;
        self.sum_pct = 0.0;
        self.sum_r = risk.map(|_| 0.0);
        self.out.risk = risk.map(round);
        self.out.open_share = 1.0;
        self.out.realized_r = self.sum_r;
        self.out.realized_pct = 0.0;
    }

    fn realize(&mut self, share: f64, m: f64) {
        self.sum_pct += share * self.pct(m);
        let r = self.r(m);
        self.sum_r = self.sum_r.zip(r).map(|(sum, r)| sum + share * r);
        self.open -= share;
        self.out.realized_pct = round(self.sum_pct);
        self.out.realized_r = self.sum_r.map(round);
        self.out.open_share = round(self.open);
    }

    fn end(&mut self, status: Status, at: time::OffsetDateTime) {
        self.out.status = status;
        self.out.ended_at = Some(at);
        if status.is_closed_trade() {
            self.open = 0.0;
            self.out.open_share = 0.0;
        }
    }

    fn target(&mut self, index: usize, ctx: &Ctx) {
        let Some(&m) = self.levels.targets.get(index) else {
            return;
        };
        let unhit = (0..self.levels.targets.len())
            .filter(|i| !self.hit[*i])
            .count();
        let last = unhit <= 1;
        let share = if last {
            self.open
        } else {
            self.open / unhit as f64
        };
        let hit = TargetHit {
            index,
            touch: self.touch(m, ctx),
            share: round(share),
            r: self.r(m).map(round),
            pct: round(self.pct(m)),
        };
        self.out.targets_hit.push(hit);
        self.realize(share, m);
        self.hit[index] = true;
        if last {
            self.end(Status::TargetsHit, ctx.at);
        }
    }

    fn exit(&mut self, reason: ExitReason, m: f64, ctx: &Ctx) {
        let share = self.open;
        let exit = Exit {
            reason,
            touch: self.touch(m, ctx),
            share: round(share),
            r: self.r(m).map(round),
            pct: round(self.pct(m)),
        };
        self.out.exit = Some(exit);
        self.realize(share, m);
        let status = match reason {
            ExitReason::Stop => Status::Stopped,
            ExitReason::TimeLimit => Status::Expired,
        };
        self.end(status, ctx.at);
    }

    fn stop_before_entry(&mut self, m: f64, ctx: &Ctx) {
        self.out.stop_before_entry = Some(self.touch(m, ctx));
        self.end(Status::StoppedBeforeEntry, ctx.at);
    }

    /// Judges the single price `x` with no path leading to it: the first price, or the first
    /// after a change of levels. A price at or beyond a level has reached it.
    pub(super) fn settle(&mut self, x: f64, ctx: &Ctx) {
        if self.out.status == Status::WaitingForEntry {
            if self.levels.stop.is_some_and(|s| x <= s) {
                self.stop_before_entry(x, ctx);
                return;
            }
            let inside = self.levels.zone.is_none_or(|(lo, hi)| lo <= x && x <= hi);
            if !inside {
                return;
            }
            self.enter(x, ctx);
        }
        if self.out.status == Status::Entered {
            self.settle_entered(x, ctx);
        }
    }

    /// In the trade at price `x`: the stop first (filled at `x`), then every target at or
    /// below `x` by index (each filled at its own price).
    fn settle_entered(&mut self, x: f64, ctx: &Ctx) {
        if self.levels.stop.is_some_and(|s| x <= s) {
            self.exit(ExitReason::Stop, x, ctx);
            return;
        }
        for i in 0..self.levels.targets.len() {
            if self.is_final() {
                return;
            }
            if !self.hit[i] && self.levels.targets[i] <= x {
                self.target(i, ctx);
            }
        }
    }

    /// The first level met going from `pos` to `b`: the nearest; on a tie the stop, then the
    /// entry, then targets by index.
    fn next_level(&self, pos: f64, b: f64) -> Option<(f64, Level)> {
        let mut best: Option<(f64, Level)> = None;
        let mut consider = |l: f64, what: Level| {
            let on_way = (b < pos && b <= l && l < pos) || (b > pos && pos < l && l <= b);
            if on_way && best.is_none_or(|(bl, _)| (l - pos).abs() < (bl - pos).abs()) {
                best = Some((l, what));
            }
        };
        if let Some(s) = self.levels.stop {
            consider(s, Level::Stop);
        }
        match self.out.status {
            Status::WaitingForEntry => {
                if let Some((lo, hi)) = self.levels.zone {
                    consider(if hi < pos { hi } else { lo }, Level::Entry);
                }
            }
            Status::Entered => {
                for (i, t) in self.levels.targets.iter().enumerate() {
                    if !self.hit[i] {
                        consider(*t, Level::Target);
                    }
                }
            }
            _ => {}
        }
        best
    }

    /// Follows the path from `a` (already judged) to `b`, meeting levels in order.
    pub(super) fn walk(&mut self, a: f64, b: f64, ctx: &Ctx) {
        if self.out.status == Status::WaitingForEntry && self.levels.zone.is_none() {
            self.settle(a, ctx);
        }
        let mut pos = a;
        while !self.is_final() {
            let Some((l, level)) = self.next_level(pos, b) else {
                return;
            };
            match level {
                Level::Stop => {
                    let px = if ctx.jump { b } else { l };
                    if self.out.status == Status::WaitingForEntry {
                        self.stop_before_entry(px, ctx);
                    } else {
                        self.exit(ExitReason::Stop, px, ctx);
                    }
                    return;
                }
                Level::Entry => {
                    self.enter(l, ctx);
                    self.settle_entered(l, ctx);
                }
                Level::Target => self.settle_entered(l, ctx),
            }
            pos = l;
        }
    }

    /// The mirrored prices strictly between which a path from the last observed price meets
    /// no level: the nearest level below it and the nearest above (infinite where there is
    /// none). `None` when there is no last price (the next one is settled on its own, so any
    /// price may decide) or when a level sits on it.
    pub(super) fn quiet(&self) -> Option<(f64, f64)> {
        let prev = self.prev?;
        let mut levels: Vec<f64> = self.levels.stop.into_iter().collect();
        match self.out.status {
            Status::WaitingForEntry => {
                // A market entry fills at the next price: nothing is quiet.
                let (lo, hi) = self.levels.zone?;
                levels.extend([lo, hi]);
            }
            Status::Entered => levels.extend(
                self.levels
                    .targets
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !self.hit[*i])
                    .map(|(_, t)| *t),
            ),
            _ => return Some((f64::NEG_INFINITY, f64::INFINITY)),
        }
        let mut band = (f64::NEG_INFINITY, f64::INFINITY);
        for l in levels {
            if l < prev {
                band.0 = band.0.max(l);
            } else if l > prev {
                band.1 = band.1.min(l);
            } else {
                return None;
            }
        }
        Some(band)
    }

    /// Whether some level could be met inside a bar spanning `[lo, hi]` (mirrored).
    fn reachable(&self, lo: f64, hi: f64) -> bool {
        let stop = self.levels.stop.is_some_and(|s| s >= lo);
        match self.out.status {
            Status::WaitingForEntry => {
                stop || self.levels.zone.is_none_or(|(zl, zh)| zl <= hi && zh >= lo)
            }
            Status::Entered => {
                stop || self
                    .levels
                    .targets
                    .iter()
                    .enumerate()
                    .any(|(i, t)| !self.hit[i] && *t <= hi)
            }
            _ => false,
        }
    }

    /// What the trade is worth at mirrored price `close`, in percent: realized plus the open
    /// part marked there. Zero when never entered.
    fn value(&self, close: f64) -> f64 {
        if self.out.entry.is_none() {
            return 0.0;
        }
        self.sum_pct + self.open * self.pct(close)
    }

    /// Judges the inside of a bar (mirrored open, high, low, close) whose open was already
    /// judged. Tries open→high→low→close and open→low→high→close; if they differ the bar is
    /// ambiguous and the one worth less at the close is kept (adverse-first on a tie), which
    /// is always the one that meets the stop when either does. Returns whether it was
    /// ambiguous.
    pub(super) fn inside_bar(&mut self, o: f64, h: f64, l: f64, c: f64, ctx: &Ctx) -> bool {
        if self.is_final() || !self.reachable(l, h) {
            return false;
        }
        let mut favourable = self.clone();
        for (a, b) in [(o, h), (h, l), (l, c)] {
            favourable.walk(a, b, ctx);
        }
        let mut adverse = self.clone();
        for (a, b) in [(o, l), (l, h), (h, c)] {
            adverse.walk(a, b, ctx);
        }
        if favourable.out == adverse.out {
            *self = adverse;
            return false;
        }
        let before = Marks::of(&self.out);
        *self = if favourable.value(c) < adverse.value(c) {
            favourable
        } else {
            adverse
        };
        before.flag_new(&mut self.out);
        true
    }
}

/// What existed before a bar, to flag what the bar added.
struct Marks {
    entry: bool,
    targets: usize,
    exit: bool,
    stop_before_entry: bool,
}

impl Marks {
    fn of(out: &Outcome) -> Marks {
        Marks {
            entry: out.entry.is_some(),
            targets: out.targets_hit.len(),
            exit: out.exit.is_some(),
            stop_before_entry: out.stop_before_entry.is_some(),
        }
    }

    fn flag_new(&self, out: &mut Outcome) {
        if !self.entry
            && let Some(t) = &mut out.entry
        {
            t.ambiguous = true;
        }
        for h in out.targets_hit.iter_mut().skip(self.targets) {
            h.touch.ambiguous = true;
        }
        if !self.exit
            && let Some(e) = &mut out.exit
        {
            e.touch.ambiguous = true;
        }
        if !self.stop_before_entry
            && let Some(t) = &mut out.stop_before_entry
        {
            t.ambiguous = true;
        }
    }
}

/// The expiry of an entered trade: the open part closes at the last price judged.
pub(super) fn expire_open(state: &mut State, at: time::OffsetDateTime) {
    let last = state.out.last_price.map_or(state.fill, |p| state.sign * p);
    let ctx = Ctx {
        at,
        until: None,
        source: state.last_source,
        jump: false,
    };
    state.exit(ExitReason::TimeLimit, last, &ctx);
}

/// Ends a signal that never entered: deleted (cancelled) or out of time.
pub(super) fn end_unfilled(state: &mut State, status: Status, at: time::OffsetDateTime) {
    state.end(status, at);
}
