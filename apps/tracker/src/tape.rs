//! One symbol's price tape: the exact sequence of price items the tracker judges and stores.
//! Trades become 1-second bars (closed by the next second's trade or by the clock), except that
//! a decisive trade is judged at once (see below); bars backfilled after a gap are kept when
//! they fit between what was judged and the trade that revealed the gap (else the hole is a
//! declared gap), and every item is kept with its minute until the minute is written. Pure:
//! the caller brings the events, the time and the band.
//!
//! **Decisive trades.** The caller sets the [`Band`] of prices that decide nothing for any open
//! signal on the symbol (`g3_outcomes::Tracker::band`, met over the signals). A trade outside
//! it (or at or after its `until`) ends the open bar just before itself: the bar of the trades
//! before it (if any) is emitted, closing at the trade's time, and the trade itself follows as
//! a tick, so it is judged as it arrives instead of when its second closes. Every bar then
//! holds only prices that decide nothing and is never ambiguous; a whole-second bar holding a
//! stop and a target would have been. The rest of the second continues in a new bar opening at
//! the decisive trade's time (trades of the same millisecond that arrive after it belong
//! there). When the band narrows while a bar is open (a signal heard, an edit, a deletion),
//! [`Tape::set_band`] cuts the open bar at its first trade outside the new band in the same
//! way, so the result does not depend on when the band was learnt.
//!
//! **Late trades.** A trade timed before what was already emitted cannot be judged in order:
//! it is dropped and counted ([`Tape::late`]). That is a trade of a second already closed, or,
//! after a cut, of the same second but before the decisive trade. Exchanges send each
//! symbol's trades in order, so this is rare; the written outcome and the stored items stay
//! what was judged, and a recompute meets the same items.
//!
//! Times are kept to the millisecond, as `price_minutes` stores them. Live trackers are fed
//! only what the tape emits and `price_minutes` stores exactly that, so a recompute from
//! storage meets the same items in the same order.

use g3_market::{Bar as MarketBar, Gap as MarketGap};
use g3_outcomes::{Band, Bar, Market, Tick};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

const SECOND: Duration = Duration::SECOND;
const MINUTE: Duration = Duration::MINUTE;
const MILLISECOND: Duration = Duration::MILLISECOND;

/// `t` rounded down to the whole second.
pub fn floor_sec(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// `t` rounded down to the whole minute.
pub fn floor_min(t: OffsetDateTime) -> OffsetDateTime {
    floor_sec(t).replace_second(0).unwrap_or(t)
}

/// `t` rounded down to the millisecond (what `price_minutes` keeps).
pub fn floor_ms(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_millisecond(t.millisecond()).unwrap_or(t)
}

/// A minute of items ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Minute {
    pub start: OffsetDateTime,
    /// Everything before this was seen (`start` + 1 min, or earlier when the tape stopped).
    pub until: OffsetDateTime,
    pub items: Vec<Market>,
}

/// What one call produced, in order: items to judge, then how far time is known complete, and
/// the minutes to store.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Emitted {
    pub items: Vec<Market>,
    pub advance: Option<OffsetDateTime>,
    pub minutes: Vec<Minute>,
}

impl Emitted {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.advance.is_none() && self.minutes.is_empty()
    }
}

/// The bar being built: the trades of one second (from its start, or from the decisive trade
/// it follows), in arrival order, every one inside the band.
#[derive(Debug, Clone)]
struct OpenBar {
    second: OffsetDateTime,
    open_time: OffsetDateTime,
    trades: Vec<(OffsetDateTime, f64)>,
}

impl OpenBar {
    fn bar(&self, trades: &[(OffsetDateTime, f64)], close_time: OffsetDateTime) -> Option<Bar> {
        let (first, last) = (trades.first()?, trades.last()?);
        let (mut high, mut low) = (first.1, first.1);
        for (_, p) in trades {
            high = high.max(*p);
            low = low.min(*p);
        }
        Some(Bar {
            open_time: self.open_time,
            close_time,
            open: first.1,
            high,
            low,
            close: last.1,
            backfilled: false,
        })
    }
}

/// See the module doc.
#[derive(Debug, Clone)]
pub struct Tape {
    open: Option<OpenBar>,
    /// The end of what was emitted or declared complete: nothing may start before it.
    end: OffsetDateTime,
    /// The earliest time a trade may have and still be judged.
    from: OffsetDateTime,
    band: Band,
    /// The minute `items` belong to.
    minute: OffsetDateTime,
    items: Vec<Market>,
    /// Backfilled bars waiting for the gap summary that follows them.
    pending: Vec<MarketBar>,
    /// The stream was interrupted: time is not declared complete until it resumes, so that
    /// its backfill still fits.
    frozen: bool,
    /// Trades that came too late to be judged (timed before what was already emitted).
    pub late: u64,
    /// Decisive trades judged as they came (each a cut of its second's bar).
    pub cuts: u64,
}

impl Tape {
    /// A tape that judges from `start` on, with no band (whole-second bars) until
    /// [`Tape::set_band`].
    pub fn new(start: OffsetDateTime) -> Tape {
        let start = floor_ms(start);
        Tape {
            open: None,
            end: start,
            from: start,
            band: Band::ALL,
            minute: floor_min(start),
            items: Vec::new(),
            pending: Vec::new(),
            frozen: false,
            late: 0,
            cuts: 0,
        }
    }

    /// Everything before this has been emitted.
    pub fn end(&self) -> OffsetDateTime {
        self.end
    }

    /// The items of the minute not stored yet.
    pub fn unstored(&self) -> &[Market] {
        &self.items
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// The connection dropped: hold time still until the stream resumes (see [`Tape::thaw`]).
    pub fn freeze(&mut self) {
        self.frozen = true;
    }

    pub fn thaw(&mut self) {
        self.frozen = false;
    }

    /// The prices that decide nothing for the symbol's open signals. If a trade of the open bar
    /// lies outside it, the bar is cut there (see the module doc); the caller judges what is
    /// emitted and sets the band again, until nothing more is emitted.
    pub fn set_band(&mut self, band: Band) -> Emitted {
        let mut out = Emitted::default();
        self.band = band;
        if let Some(i) = self
            .open
            .as_ref()
            .and_then(|bar| bar.trades.iter().position(|(t, p)| !band.holds(*t, *p)))
        {
            self.cut(i, &mut out);
        }
        out
    }

    /// A trade.
    pub fn tick(&mut self, time: OffsetDateTime, price: f64) -> Emitted {
        let mut out = Emitted::default();
        self.frozen = false;
        let time = floor_ms(time);
        let second = floor_sec(time);
        if self.open.as_ref().is_some_and(|b| b.second < second) {
            self.close_open(&mut out);
        }
        let floor = self.open.as_ref().map_or(self.from, |b| b.open_time);
        if time < floor {
            self.late += 1;
            return out;
        }
        let from = self.from;
        let bar = self.open.get_or_insert_with(|| OpenBar {
            second,
            open_time: second.max(from),
            trades: Vec::new(),
        });
        bar.trades.push((time, price));
        if !self.band.holds(time, price) {
            let last = bar.trades.len() - 1;
            self.cut(last, &mut out);
        }
        out
    }

    /// A bar from REST klines; held until its gap summary arrives.
    pub fn backfilled(&mut self, bar: MarketBar) {
        self.pending.push(bar);
    }

    /// The summary of a gap: its backfilled bars are emitted if they fit strictly between what
    /// was emitted and the second of the trade that revealed the gap; if none fits (or the
    /// backfill failed), the hole is declared a gap.
    pub fn gap(&mut self, gap: &MarketGap) -> Emitted {
        let mut out = Emitted::default();
        self.frozen = false;
        let until = floor_sec(gap.to);
        if self.open.as_ref().is_some_and(|b| b.second < until) {
            self.close_open(&mut out);
        }
        let from = self.end;
        let kept: Vec<Market> = std::mem::take(&mut self.pending)
            .into_iter()
            .filter(|b| b.open_time > from && b.close_time() < until)
            .map(|b| {
                Market::Bar(Bar {
                    open_time: b.open_time,
                    close_time: b.close_time(),
                    open: b.open,
                    high: b.high,
                    low: b.low,
                    close: b.close,
                    backfilled: true,
                })
            })
            .collect();
        if gap.error.is_some() || kept.is_empty() {
            if until > from {
                self.emit(Market::Gap { from, to: until }, &mut out);
            }
        } else {
            for item in kept {
                self.emit(item, &mut out);
            }
        }
        out
    }

    /// The clock reached `now`: the open bar closes once its second plus `grace` has passed,
    /// time before `now - grace` (whole seconds) is declared complete and whole minutes before
    /// it are handed over for storage. Nothing happens while frozen.
    pub fn advance(&mut self, now: OffsetDateTime, grace: Duration) -> Emitted {
        let mut out = Emitted::default();
        if self.frozen {
            return out;
        }
        let w = floor_sec(now - grace);
        if self.open.as_ref().is_some_and(|b| b.second + SECOND <= w) {
            self.close_open(&mut out);
        }
        let w = match &self.open {
            Some(b) => w.min(b.open_time),
            None => w,
        };
        if w > self.end {
            self.end = w;
            self.from = self.from.max(w);
            out.advance = Some(w);
        }
        self.roll_minutes(self.end, &mut out);
        out
    }

    /// The tape stops (no open signal on the symbol): the unfinished minute is handed over,
    /// with what was seen so far. The open bar is dropped unjudged.
    pub fn stop(mut self) -> Minute {
        Minute {
            start: self.minute,
            until: self.end.max(self.minute),
            items: std::mem::take(&mut self.items),
        }
    }

    /// The open bar's whole second is over: it is emitted as a 1-second bar.
    fn close_open(&mut self, out: &mut Emitted) {
        if let Some(open) = self.open.take() {
            let close = open.second + SECOND - MILLISECOND;
            if let Some(bar) = open.bar(&open.trades, close) {
                self.emit(Market::Bar(bar), out);
            }
            self.from = self.from.max(open.second + SECOND);
        }
    }

    /// Trade `i` of the open bar is decisive: the trades before it as a bar closing at its
    /// time, then it as a tick; the trades after it stay in a bar opening at its time.
    fn cut(&mut self, i: usize, out: &mut Emitted) {
        let Some(mut open) = self.open.take() else {
            return;
        };
        let (at, price) = open.trades[i];
        if let Some(bar) = open.bar(&open.trades[..i], at) {
            self.emit(Market::Bar(bar), out);
        }
        self.emit(Market::Tick(Tick { time: at, price }), out);
        self.cuts += 1;
        self.from = at;
        let rest = open.trades.split_off(i + 1);
        if !rest.is_empty() {
            open.open_time = at;
            open.trades = rest;
            self.open = Some(open);
        }
    }

    fn emit(&mut self, item: Market, out: &mut Emitted) {
        self.roll_minutes(item.start(), out);
        self.end = self.end.max(item.end());
        self.from = self.from.max(match item {
            Market::Bar(b) => b.close_time + MILLISECOND,
            other => other.end(),
        });
        self.items.push(item);
        out.items.push(item);
    }

    /// Hands over every whole minute that ends at or before `t`. Minutes with nothing in them
    /// are skipped (a quiet symbol writes nothing); the minute a tape stops in is always kept.
    fn roll_minutes(&mut self, t: OffsetDateTime, out: &mut Emitted) {
        while self.minute + MINUTE <= t {
            if self.items.is_empty() {
                self.minute = floor_min(t);
                break;
            }
            out.minutes.push(Minute {
                start: self.minute,
                until: self.minute + MINUTE,
                items: std::mem::take(&mut self.items),
            });
            self.minute += MINUTE;
        }
    }
}

/// `later` after `earlier`, keeping only items that start at or after the end of the last one
/// kept (a stored partial minute followed by what was seen after it).
pub fn append_after(earlier: &mut Vec<Market>, later: impl IntoIterator<Item = Market>) {
    for item in later {
        if earlier.last().is_none_or(|last| item.start() >= last.end()) {
            earlier.push(item);
        }
    }
}

fn millis(d: Duration) -> i64 {
    d.whole_milliseconds() as i64
}

/// Items as stored in `price_minutes.items`: `[offset_ms, length_ms, o, h, l, c, backfilled]`
/// per bar, `[offset_ms, length_ms]` per gap, `[offset_ms, price, 0]` per decisive trade (tick);
/// offsets from `minute`.
pub fn encode(minute: OffsetDateTime, items: &[Market]) -> String {
    let rows: Vec<Value> = items
        .iter()
        .map(|item| match item {
            Market::Bar(b) => json!([
                millis(b.open_time - minute),
                millis(b.close_time - b.open_time),
                b.open,
                b.high,
                b.low,
                b.close,
                u8::from(b.backfilled)
            ]),
            Market::Gap { from, to } => json!([millis(*from - minute), millis(*to - *from)]),
            Market::Tick(t) => json!([millis(t.time - minute), t.price, 0]),
        })
        .collect();
    Value::Array(rows).to_string()
}

/// The inverse of [`encode`].
pub fn decode(minute: OffsetDateTime, text: &str) -> Result<Vec<Market>, String> {
    let rows: Vec<Vec<Value>> =
        serde_json::from_str(text).map_err(|e| format!("price items unreadable: {e}"))?;
    let int = |v: &Value| v.as_i64().ok_or_else(|| format!("not an integer: {v}"));
    let num = |v: &Value| v.as_f64().ok_or_else(|| format!("not a number: {v}"));
    let at = |ms: i64| minute + Duration::milliseconds(ms);
    rows.iter()
        .map(|row| match row.as_slice() {
            [off, len, o, h, l, c, flag] => {
                let open_time = at(int(off)?);
                Ok(Market::Bar(Bar {
                    open_time,
                    close_time: open_time + Duration::milliseconds(int(len)?),
                    open: num(o)?,
                    high: num(h)?,
                    low: num(l)?,
                    close: num(c)?,
                    backfilled: int(flag)? != 0,
                }))
            }
            [off, len] => {
                let from = at(int(off)?);
                Ok(Market::Gap {
                    from,
                    to: from + Duration::milliseconds(int(len)?),
                })
            }
            [off, price, _] => Ok(Market::Tick(g3_outcomes::Tick {
                time: at(int(off)?),
                price: num(price)?,
            })),
            _ => Err(format!("price item of {} fields", row.len())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use g3_market::{GapCause, Interval, Symbol, Venue};
    use time::macros::datetime;

    const GRACE: Duration = Duration::milliseconds(500);

    fn bar_of(out: &Emitted) -> Vec<(OffsetDateTime, f64, f64)> {
        out.items
            .iter()
            .filter_map(|i| match i {
                Market::Bar(b) => Some((b.open_time, b.high, b.low)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn trades_become_one_second_bars_closed_by_the_next_second_or_the_clock() {
        let t0 = datetime!(2026-03-02 14:00:10 UTC);
        let mut tape = Tape::new(t0);
        assert!(
            tape.tick(t0 + Duration::milliseconds(100), 10.0)
                .items
                .is_empty()
        );
        assert!(
            tape.tick(t0 + Duration::milliseconds(900), 12.0)
                .items
                .is_empty()
        );
        let out = tape.tick(t0 + Duration::milliseconds(1_200), 11.0);
        assert_eq!(bar_of(&out), vec![(t0, 12.0, 10.0)]);
        // Not yet: the second plus the grace has not passed.
        assert!(
            tape.advance(t0 + Duration::milliseconds(2_400), GRACE)
                .items
                .is_empty()
        );
        let out = tape.advance(t0 + Duration::milliseconds(2_600), GRACE);
        assert_eq!(bar_of(&out), vec![(t0 + SECOND, 11.0, 11.0)]);
        assert_eq!(out.advance, Some(t0 + 2 * SECOND));
        // A trade of a second already closed is late.
        assert!(
            tape.tick(t0 + Duration::milliseconds(1_500), 99.0)
                .items
                .is_empty()
        );
        assert_eq!(tape.late, 1);
    }

    #[test]
    fn whole_minutes_are_handed_over_and_encode_both_ways() {
        let t0 = datetime!(2026-03-02 14:00:58 UTC);
        let mut tape = Tape::new(t0);
        tape.tick(t0, 10.0);
        tape.tick(t0 + SECOND, 10.5);
        let out = tape.advance(t0 + 3 * SECOND, GRACE);
        assert_eq!(out.minutes.len(), 1);
        let minute = &out.minutes[0];
        assert_eq!(minute.start, datetime!(2026-03-02 14:00 UTC));
        assert_eq!(minute.items.len(), 2);
        let text = encode(minute.start, &minute.items);
        assert_eq!(decode(minute.start, &text).unwrap(), minute.items);
        let rest = tape.stop();
        assert_eq!(rest.start, datetime!(2026-03-02 14:01 UTC));
        assert!(rest.items.is_empty());
    }

    fn mbar(open_time: OffsetDateTime, high: f64) -> MarketBar {
        MarketBar {
            venue: Venue::BinanceSpot,
            symbol: Symbol::from_pair("ETH/USDT").unwrap(),
            interval: Interval::Second1,
            open_time,
            open: 10.0,
            high,
            low: 10.0,
            close: 10.0,
            backfilled: true,
        }
    }

    fn gap(from: OffsetDateTime, to: OffsetDateTime, error: Option<&str>) -> MarketGap {
        MarketGap {
            venue: Venue::BinanceSpot,
            symbol: Symbol::from_pair("ETH/USDT").unwrap(),
            from,
            to,
            cause: GapCause::Reconnect,
            interval: Interval::Second1,
            bars: 0,
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn backfill_keeps_the_bars_that_fit_and_declares_a_gap_otherwise() {
        let t0 = datetime!(2026-03-02 14:00:10 UTC);
        let mut tape = Tape::new(t0);
        tape.tick(t0 + Duration::milliseconds(10), 10.0);
        tape.freeze();
        assert_eq!(tape.advance(t0 + 10 * SECOND, GRACE), Emitted::default());
        for s in 0..5 {
            tape.backfilled(mbar(t0 + s * SECOND, 10.0 + s as f64));
        }
        let out = tape.gap(&gap(t0, t0 + Duration::milliseconds(4_300), None));
        // The open bar of t0 closes; bars of t0 (already judged) and t0+4 (the revealing
        // trade's second) are dropped.
        let opens: Vec<_> = bar_of(&out).iter().map(|b| b.0).collect();
        assert_eq!(
            opens,
            vec![t0, t0 + SECOND, t0 + 2 * SECOND, t0 + 3 * SECOND]
        );
        assert!(!tape.is_frozen());

        let mut tape = Tape::new(t0);
        tape.tick(t0, 10.0);
        let out = tape.gap(&gap(t0, t0 + 5 * SECOND, Some("refused")));
        assert!(matches!(
            out.items.last(),
            Some(Market::Gap { from, to }) if *from == t0 + SECOND - Duration::MILLISECOND && *to == t0 + 5 * SECOND
        ));
    }

    fn ms(n: i64) -> Duration {
        Duration::milliseconds(n)
    }

    fn band(low: f64, high: f64) -> Band {
        Band {
            low,
            high,
            until: None,
        }
    }

    #[test]
    fn a_decisive_trade_is_emitted_at_once_after_the_bar_of_the_trades_before_it() {
        let t0 = datetime!(2026-03-02 14:00:10 UTC);
        let mut tape = Tape::new(t0);
        assert!(tape.set_band(band(90.0, 110.0)).is_empty());
        assert!(tape.tick(t0 + ms(100), 100.0).is_empty());
        assert!(tape.tick(t0 + ms(200), 105.0).is_empty());
        // Sub-millisecond time is dropped, as storage would.
        let out = tape.tick(t0 + ms(300) + Duration::microseconds(400), 111.0);
        assert_eq!(
            out.items,
            vec![
                Market::Bar(Bar {
                    open_time: t0,
                    close_time: t0 + ms(300),
                    open: 100.0,
                    high: 105.0,
                    low: 100.0,
                    close: 105.0,
                    backfilled: false,
                }),
                Market::Tick(Tick {
                    time: t0 + ms(300),
                    price: 111.0,
                }),
            ]
        );
        assert_eq!(tape.cuts, 1);
        // The same millisecond after the cut belongs to the rest of the second; earlier is late.
        assert!(tape.tick(t0 + ms(300), 108.0).is_empty());
        assert!(tape.tick(t0 + ms(250), 80.0).is_empty());
        assert_eq!(tape.late, 1);
        let out = tape.tick(t0 + ms(1_100), 107.0);
        assert_eq!(
            out.items,
            vec![Market::Bar(Bar {
                open_time: t0 + ms(300),
                close_time: t0 + ms(999),
                open: 108.0,
                high: 108.0,
                low: 108.0,
                close: 108.0,
                backfilled: false,
            })]
        );
        // A decisive first trade of a second is a tick alone; so is a trade at a level.
        let out = tape.tick(t0 + ms(1_200), 90.0);
        assert_eq!(bar_of(&out), vec![(t0 + SECOND, 107.0, 107.0)]);
        assert!(matches!(out.items.last(), Some(Market::Tick(t)) if t.price == 90.0));
        let text = encode(floor_min(t0), &tape.items);
        assert_eq!(decode(floor_min(t0), &text).unwrap(), tape.items);
    }

    #[test]
    fn a_narrower_band_cuts_the_open_bar_at_its_first_trade_outside_it() {
        let t0 = datetime!(2026-03-02 14:00:10 UTC);
        let mut tape = Tape::new(t0);
        for (n, p) in [(100, 100.0), (200, 95.0), (300, 104.0), (400, 99.0)] {
            assert!(tape.tick(t0 + ms(n), p).is_empty());
        }
        // A signal heard now: 95 reaches its stop. The rest waits for the band after the tick.
        let out = tape.set_band(band(96.0, 103.0));
        assert_eq!(bar_of(&out), vec![(t0, 100.0, 100.0)]);
        assert_eq!(
            out.items.last(),
            Some(&Market::Tick(Tick {
                time: t0 + ms(200),
                price: 95.0
            }))
        );
        let out = tape.set_band(band(90.0, 103.0));
        assert!(matches!(out.items.as_slice(), [Market::Tick(t)] if t.price == 104.0));
        assert!(tape.set_band(band(90.0, 110.0)).is_empty());
        // Time alone: a trade at or after `until` (an edit taking effect) is decisive.
        let until = t0 + ms(600);
        assert!(
            tape.set_band(Band {
                until: Some(until),
                ..band(90.0, 110.0)
            })
            .is_empty()
        );
        assert!(tape.tick(t0 + ms(500), 100.0).is_empty());
        let out = tape.tick(until, 100.0);
        assert_eq!(bar_of(&out), vec![(t0 + ms(300), 100.0, 99.0)]);
        assert!(matches!(out.items.last(), Some(Market::Tick(t)) if t.time == until));
        assert_eq!(tape.cuts, 3);
    }

    #[test]
    fn append_after_skips_what_was_already_stored() {
        let t0 = datetime!(2026-03-02 14:00:10 UTC);
        let mut tape = Tape::new(t0);
        let mut all = Vec::new();
        for s in 0..4 {
            all.extend(tape.tick(t0 + s * SECOND, 10.0).items);
        }
        let mut stored = all[..2].to_vec();
        append_after(&mut stored, all.clone());
        assert_eq!(stored, all);
    }
}
