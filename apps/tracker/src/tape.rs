//! One symbol's price tape: the exact sequence of price items the tracker judges and stores.
//! Trades become 1-second bars (closed by the next second's trade or by the clock), bars
//! backfilled after a gap are kept when they fit between what was judged and the trade that
//! revealed the gap (else the hole is a declared gap), and every item is kept with its minute
//! until the minute is written. Pure: the caller brings the events and the time.
//!
//! Live trackers are fed only what the tape emits and `price_minutes` stores exactly that, so a
//! recompute from storage meets the same items in the same order.

use g3_market::{Bar as MarketBar, Gap as MarketGap};
use g3_outcomes::{Bar, Market};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

const SECOND: Duration = Duration::SECOND;
const MINUTE: Duration = Duration::MINUTE;

/// `t` rounded down to the whole second.
pub fn floor_sec(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// `t` rounded down to the whole minute.
pub fn floor_min(t: OffsetDateTime) -> OffsetDateTime {
    floor_sec(t).replace_second(0).unwrap_or(t)
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

#[derive(Debug, Clone, Copy)]
struct OpenBar {
    second: OffsetDateTime,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
}

/// See the module doc.
#[derive(Debug, Clone)]
pub struct Tape {
    open: Option<OpenBar>,
    /// The end of what was emitted or declared complete: nothing may start before it.
    end: OffsetDateTime,
    /// The minute `items` belong to.
    minute: OffsetDateTime,
    items: Vec<Market>,
    /// Backfilled bars waiting for the gap summary that follows them.
    pending: Vec<MarketBar>,
    /// The stream was interrupted: time is not declared complete until it resumes, so that
    /// its backfill still fits.
    frozen: bool,
    /// Trades that came too late to be judged (their second was already closed).
    pub late: u64,
}

impl Tape {
    /// A tape that judges from `start` on.
    pub fn new(start: OffsetDateTime) -> Tape {
        Tape {
            open: None,
            end: start,
            minute: floor_min(start),
            items: Vec::new(),
            pending: Vec::new(),
            frozen: false,
            late: 0,
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

    /// A trade.
    pub fn tick(&mut self, time: OffsetDateTime, price: f64) -> Emitted {
        let mut out = Emitted::default();
        self.frozen = false;
        let second = floor_sec(time);
        match &mut self.open {
            Some(bar) if bar.second == second => {
                bar.high = bar.high.max(price);
                bar.low = bar.low.min(price);
                bar.close = price;
                return out;
            }
            Some(bar) if bar.second > second => {
                self.late += 1;
                return out;
            }
            _ => {}
        }
        self.close_open(&mut out);
        if second < self.end {
            self.late += 1;
            return out;
        }
        self.open = Some(OpenBar {
            second,
            open: price,
            high: price,
            low: price,
            close: price,
        });
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
        if self.open.is_some_and(|b| b.second < until) {
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
        if self.open.is_some_and(|b| b.second + SECOND <= w) {
            self.close_open(&mut out);
        }
        let w = match self.open {
            Some(b) => w.min(b.second),
            None => w,
        };
        if w > self.end {
            self.end = w;
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

    fn close_open(&mut self, out: &mut Emitted) {
        if let Some(b) = self.open.take() {
            self.emit(
                Market::Bar(Bar {
                    open_time: b.second,
                    close_time: b.second + SECOND - Duration::MILLISECOND,
                    open: b.open,
                    high: b.high,
                    low: b.low,
                    close: b.close,
                    backfilled: false,
                }),
                out,
            );
        }
    }

    fn emit(&mut self, item: Market, out: &mut Emitted) {
        self.roll_minutes(item.start(), out);
        self.end = self.end.max(item.end());
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
/// per bar, `[offset_ms, length_ms]` per gap, `[offset_ms, price, 0]` per tick (unused today);
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
