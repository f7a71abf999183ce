//! The prices a signal is judged against: trades (ticks), bars (klines, live or backfilled after
//! an outage) and declared gaps, delivered in time order. Checked one by one as they arrive.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One traded price.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub price: f64,
}

/// Open, high, low and close over `[open_time, close_time]`. Inside a bar the order of the high
/// and the low is unknown, which is why bars can be ambiguous and ticks never are.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    #[serde(with = "time::serde::rfc3339")]
    pub open_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub close_time: OffsetDateTime,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// Fetched after the fact to fill a hole in the live stream (usually coarser bars).
    pub backfilled: bool,
}

/// One item of the price stream.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Market {
    Tick(Tick),
    Bar(Bar),
    /// The feed had no data from `from` to `to` and none could be backfilled. The price is
    /// assumed to have moved straight from the last price before to the first one after;
    /// whatever that decides is marked [`crate::Source::Gap`].
    Gap {
        #[serde(with = "time::serde::rfc3339")]
        from: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        to: OffsetDateTime,
    },
}

impl Market {
    /// Where the item starts in time: the tick's time, the bar's open, the gap's start.
    pub fn start(&self) -> OffsetDateTime {
        match self {
            Market::Tick(t) => t.time,
            Market::Bar(b) => b.open_time,
            Market::Gap { from, .. } => *from,
        }
    }

    /// Where it ends; the next item may not start before it.
    pub fn end(&self) -> OffsetDateTime {
        match self {
            Market::Tick(t) => t.time,
            Market::Bar(b) => b.close_time,
            Market::Gap { to, .. } => *to,
        }
    }

    pub(crate) fn check(&self) -> Result<(), StreamError> {
        let ok = |v: f64| v.is_finite() && v > 0.0;
        match self {
            Market::Tick(t) if !ok(t.price) => Err(StreamError::InvalidPrice { at: t.time }),
            Market::Bar(b) => {
                let prices = [b.open, b.high, b.low, b.close].into_iter().all(ok);
                let shaped = b.low <= b.open.min(b.close)
                    && b.high >= b.open.max(b.close)
                    && b.open_time <= b.close_time;
                if prices && shaped {
                    Ok(())
                } else {
                    Err(StreamError::InvalidBar { at: b.open_time })
                }
            }
            Market::Gap { from, to } if to < from => Err(StreamError::InvalidGap { at: *from }),
            _ => Ok(()),
        }
    }
}

/// A price item the engine refused; its state is unchanged, so the caller may skip the item
/// and go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("price item at {start} is before {after}, which was already judged")]
    OutOfOrder {
        start: OffsetDateTime,
        after: OffsetDateTime,
    },
    #[error("tick at {at} has a price that is not a finite positive number")]
    InvalidPrice { at: OffsetDateTime },
    #[error(
        "bar opening at {at} is malformed (low above open/close, high below, or times reversed)"
    )]
    InvalidBar { at: OffsetDateTime },
    #[error("gap starting at {at} ends before it starts")]
    InvalidGap { at: OffsetDateTime },
}
