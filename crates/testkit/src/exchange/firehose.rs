//! Trades sent straight to subscribers without joining a tape, for load: a benchmark that
//! publishes thousands of trades a second never asks for klines, and keeping every trade
//! would only grow the fake's memory.

use super::{FakeExchange, FakeVenue, RecordedTrade};

impl FakeExchange {
    /// Sends each `(symbol, trade)` in order to every open connection of `venue` subscribed to
    /// that symbol's trades, as [`FakeExchange::publish`] would, under one lock. The trades are
    /// not kept: REST klines never include them.
    pub fn stream_trades<'a>(
        &self,
        venue: FakeVenue,
        trades: impl IntoIterator<Item = (&'a str, &'a RecordedTrade)>,
    ) {
        let state = self.lock();
        for (symbol, trade) in trades {
            state.stream(venue, symbol, trade);
        }
    }
}
