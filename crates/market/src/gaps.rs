//! Gap detection, pure: given each symbol's last delivered trade and whether the connection
//! went down since, decides for every arriving trade whether to deliver it, drop it as a
//! duplicate, or first backfill the interval between the two trades.
//!
//! One gap is reported once: after a reconnect the first trade of each symbol closes the gap
//! (however many reconnects happened before it), and the last trade moves on. On Binance,
//! whose trade ids are consecutive, a reconnect that lost nothing (next id = last id + 1) is no
//! gap at all, and an id at or below the last one is a duplicate.

use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;

use crate::model::{GapCause, Tick, TradeId};
use crate::symbol::Symbol;

/// What to do with an arriving trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Deliver,
    Duplicate,
    /// Backfill `from ..= to`, then deliver.
    Gap {
        from: OffsetDateTime,
        to: OffsetDateTime,
        cause: GapCause,
    },
}

#[derive(Debug, Clone)]
struct Last {
    id: TradeId,
    time: OffsetDateTime,
}

#[derive(Debug, Default)]
pub(crate) struct Gaps {
    last: HashMap<Symbol, Last>,
    /// Symbols whose stream was interrupted since their last trade.
    interrupted: HashSet<Symbol>,
}

impl Gaps {
    /// The connection went down: every symbol seen so far may have missed trades.
    pub(crate) fn disconnected(&mut self) {
        self.interrupted.extend(self.last.keys().cloned());
    }

    /// The symbol was unsubscribed: a later subscription starts afresh, without backfilling
    /// the time nobody asked for.
    pub(crate) fn forget(&mut self, symbol: &Symbol) {
        self.last.remove(symbol);
        self.interrupted.remove(symbol);
    }

    pub(crate) fn on_tick(&mut self, tick: &Tick) -> Verdict {
        let interrupted = self.interrupted.contains(&tick.symbol);
        let verdict = match self.last.get(&tick.symbol) {
            None => Verdict::Deliver,
            Some(last) => match (&last.id, &tick.trade_id) {
                (TradeId::Sequential(prev), TradeId::Sequential(next)) => {
                    if next <= prev {
                        Verdict::Duplicate
                    } else if *next == prev + 1 {
                        Verdict::Deliver
                    } else {
                        Verdict::Gap {
                            from: last.time,
                            to: tick.time,
                            cause: if interrupted {
                                GapCause::Reconnect
                            } else {
                                GapCause::TradeIdJump {
                                    after: *prev,
                                    next: *next,
                                }
                            },
                        }
                    }
                }
                (
                    TradeId::Opaque {
                        seq: Some(prev), ..
                    },
                    TradeId::Opaque {
                        seq: Some(next), ..
                    },
                ) if next < prev => Verdict::Duplicate,
                _ if interrupted => Verdict::Gap {
                    from: last.time,
                    to: tick.time,
                    cause: GapCause::Reconnect,
                },
                _ => Verdict::Deliver,
            },
        };
        if verdict != Verdict::Duplicate {
            self.interrupted.remove(&tick.symbol);
            self.last.insert(
                tick.symbol.clone(),
                Last {
                    id: tick.trade_id.clone(),
                    time: tick.time,
                },
            );
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::from_millis;
    use crate::venue::Venue;

    fn binance(id: u64, ms: i64) -> Tick {
        Tick {
            venue: Venue::BinanceSpot,
            symbol: Symbol::from_pair("BTC/USDT").unwrap(),
            price: 1.0,
            time: from_millis(ms).unwrap(),
            trade_id: TradeId::Sequential(id),
        }
    }

    fn bybit(seq: u64, ms: i64) -> Tick {
        Tick {
            trade_id: TradeId::Opaque {
                id: format!("t{seq}"),
                seq: Some(seq),
            },
            venue: Venue::BybitLinear,
            ..binance(0, ms)
        }
    }

    #[test]
    fn consecutive_ids_deliver_and_older_ids_are_duplicates() {
        let mut g = Gaps::default();
        assert_eq!(g.on_tick(&binance(10, 1_000)), Verdict::Deliver);
        assert_eq!(g.on_tick(&binance(11, 1_500)), Verdict::Deliver);
        assert_eq!(g.on_tick(&binance(11, 1_500)), Verdict::Duplicate);
        assert_eq!(g.on_tick(&binance(9, 900)), Verdict::Duplicate);
    }

    #[test]
    fn an_id_jump_is_a_gap_between_the_two_trades() {
        let mut g = Gaps::default();
        g.on_tick(&binance(10, 1_000));
        let v = g.on_tick(&binance(15, 9_000));
        assert_eq!(
            v,
            Verdict::Gap {
                from: from_millis(1_000).unwrap(),
                to: from_millis(9_000).unwrap(),
                cause: GapCause::TradeIdJump {
                    after: 10,
                    next: 15
                }
            }
        );
        assert_eq!(g.on_tick(&binance(16, 9_100)), Verdict::Deliver);
    }

    #[test]
    fn a_reconnect_that_lost_nothing_on_binance_is_no_gap() {
        let mut g = Gaps::default();
        g.on_tick(&binance(10, 1_000));
        g.disconnected();
        assert_eq!(g.on_tick(&binance(11, 5_000)), Verdict::Deliver);
    }

    #[test]
    fn on_bybit_the_first_trade_after_reconnects_closes_one_gap() {
        let mut g = Gaps::default();
        g.on_tick(&bybit(100, 1_000));
        g.disconnected();
        g.disconnected();
        assert!(matches!(
            g.on_tick(&bybit(180, 7_000)),
            Verdict::Gap {
                cause: GapCause::Reconnect,
                ..
            }
        ));
        assert_eq!(g.on_tick(&bybit(181, 7_001)), Verdict::Deliver);
    }

    #[test]
    fn a_forgotten_symbol_starts_afresh() {
        let mut g = Gaps::default();
        g.on_tick(&binance(10, 1_000));
        g.forget(&Symbol::from_pair("BTC/USDT").unwrap());
        assert_eq!(g.on_tick(&binance(500, 60_000)), Verdict::Deliver);
    }
}
