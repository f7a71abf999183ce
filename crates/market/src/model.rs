//! What a feed emits, the same for every venue: trades as [`Tick`]s, REST klines as [`Bar`]s
//! (marked `backfilled`), a [`Gap`] summary for every interval the stream missed, and the
//! connection's state changes.

use time::OffsetDateTime;

use crate::symbol::Symbol;
use crate::venue::{Interval, Venue};

/// The exchange's identity of a trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TradeId {
    /// Binance: the per-symbol trade id (`t` of `@trade`) or aggregate trade id (`a` of
    /// `@aggTrade`); consecutive trades have consecutive ids.
    Sequential(u64),
    /// Bybit: the trade id `i` (a number on spot, a UUID on linear) and the cross sequence
    /// `seq` when sent; neither is contiguous per symbol.
    Opaque { id: String, seq: Option<u64> },
}

/// One trade, normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub venue: Venue,
    pub symbol: Symbol,
    /// Finite and positive (anything else is rejected as malformed).
    pub price: f64,
    /// When the exchange matched the trade (Binance `T`, Bybit `T`), by the exchange's clock;
    /// never our receive time.
    pub time: OffsetDateTime,
    pub trade_id: TradeId,
}

/// An OHLC bar from REST klines.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub venue: Venue,
    pub symbol: Symbol,
    pub interval: Interval,
    /// Start of the bar (inclusive); the bar covers `open_time .. open_time + interval`.
    pub open_time: OffsetDateTime,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// True for bars fetched to cover a gap: they say a price range was touched within the
    /// interval but not in which order, so they are less precise than ticks.
    pub backfilled: bool,
}

impl Bar {
    /// The last millisecond the bar covers (Binance's kline close time).
    pub fn close_time(&self) -> OffsetDateTime {
        self.open_time + time::Duration::milliseconds(self.interval.millis() - 1)
    }
}

/// Why the stream missed trades.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GapCause {
    /// The connection was down (dropped, refused, idle) between these trades.
    Reconnect,
    /// Trade ids jumped on a live connection: `after` was delivered, `next` arrived.
    TradeIdJump { after: u64, next: u64 },
}

/// An interval the stream missed for one symbol, and what was done about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    pub venue: Venue,
    pub symbol: Symbol,
    /// Time of the last trade delivered before the gap.
    pub from: OffsetDateTime,
    /// Time of the first trade delivered after it.
    pub to: OffsetDateTime,
    pub cause: GapCause,
    pub interval: Interval,
    /// How many backfilled bars were emitted just before this event.
    pub bars: usize,
    /// Why backfilling failed, if it did (then `bars` is 0 and the interval stays unknown).
    pub error: Option<String>,
}

/// Everything a [`crate::Feed`] emits, in order: within one symbol, backfilled bars and their
/// [`Gap`] come before the tick that revealed the gap.
#[derive(Debug, Clone, PartialEq)]
pub enum MarketEvent {
    Tick(Tick),
    Bar(Bar),
    Gap(Gap),
    /// A connection is up and every subscribed symbol was (re)subscribed on it.
    /// `connection` counts from 1.
    Connected {
        connection: u64,
    },
    /// The connection ended; the feed reconnects with backoff.
    Disconnected {
        reason: String,
    },
}

/// Milliseconds since the Unix epoch (the exchanges' timestamps) as a time.
pub(crate) fn from_millis(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

pub(crate) fn to_millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A price as the exchanges send it (a decimal string); finite and positive or nothing.
pub(crate) fn price(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|p| p.is_finite() && *p > 0.0)
}
