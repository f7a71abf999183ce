//! Builders shared by the outcome tests: times in minutes after a fixed post, ticks, bars and
//! histories written in one line each.
#![allow(dead_code)]

use g3_core::signal::Side;
use g3_outcomes::{Bar, History, Market, Revision, Tick, Trade};
use time::{Duration, OffsetDateTime, macros::datetime};

pub const POSTED: OffsetDateTime = datetime!(2025-03-01 12:00 UTC);

/// `m` minutes after the post.
pub fn at(m: i64) -> OffsetDateTime {
    POSTED + Duration::minutes(m)
}

pub fn tick(m: i64, price: f64) -> Market {
    Market::Tick(Tick { time: at(m), price })
}

/// A one-minute bar opening `m` minutes after the post.
pub fn bar(m: i64, open: f64, high: f64, low: f64, close: f64) -> Market {
    Market::Bar(Bar {
        open_time: at(m),
        close_time: at(m) + Duration::seconds(59),
        open,
        high,
        low,
        close,
        backfilled: false,
    })
}

pub fn backfilled(m: i64, open: f64, high: f64, low: f64, close: f64) -> Market {
    match bar(m, open, high, low, close) {
        Market::Bar(b) => Market::Bar(Bar {
            backfilled: true,
            ..b
        }),
        other => other,
    }
}

pub fn trade(side: Side, entries: &[f64], targets: &[f64], stop: Option<f64>) -> Trade {
    Trade {
        pair: "BTC/USDT".into(),
        side,
        entries: entries.to_vec(),
        targets: targets.to_vec(),
        stop,
        leverage: Some(10.0),
    }
}

pub fn long(entries: &[f64], targets: &[f64], stop: Option<f64>) -> Trade {
    trade(Side::Long, entries, targets, stop)
}

pub fn short(entries: &[f64], targets: &[f64], stop: Option<f64>) -> Trade {
    trade(Side::Short, entries, targets, stop)
}

/// A history posted at [`POSTED`]; each edit is `(minutes after the post, trade)`.
pub fn history(first: Trade, edits: Vec<(i64, Trade)>, deleted: Option<i64>) -> History {
    let mut revisions = vec![Revision {
        revision: 1,
        effective_at: POSTED,
        trade: first,
    }];
    for (n, (m, trade)) in edits.into_iter().enumerate() {
        revisions.push(Revision {
            revision: n as i64 + 2,
            effective_at: at(m),
            trade,
        });
    }
    History::new(revisions, deleted.map(at)).expect("a valid history")
}

pub fn simple(first: Trade) -> History {
    history(first, Vec::new(), None)
}

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}
