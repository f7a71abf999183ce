//! What a venue's socket can say, once read ([`Incoming`]), and the per-venue dispatch of
//! stream names, subscribe frames and parsing to [`crate::binance`] and [`crate::bybit`].

use serde_json::Value;

use crate::model::Tick;
use crate::symbol::Symbol;
use crate::venue::Venue;
use crate::{binance, bybit};

/// One text frame from a venue, read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Incoming {
    /// Trades, oldest first.
    Ticks(Vec<Tick>),
    /// The answer to a subscribe/unsubscribe request.
    Ack { ok: bool, detail: String },
    /// The answer to our application-level ping (Bybit).
    Pong,
    /// The server announced it is about to close (Binance `serverShutdown`).
    Shutdown,
    /// Well-formed but of no interest (other events, list answers).
    Other,
}

/// Subscribe (`true`) or unsubscribe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Subscribe,
    Unsubscribe,
}

/// The stream a venue names for a symbol's trades.
pub(crate) fn stream_name(venue: Venue, symbol: &Symbol) -> String {
    if venue.is_binance() {
        binance::stream_name(venue, symbol)
    } else {
        bybit::topic(symbol)
    }
}

/// The request frames for `op` on `symbols`, chunked as the venue allows; `next_id` numbers
/// each request.
pub(crate) fn requests(
    venue: Venue,
    op: Op,
    symbols: &[Symbol],
    mut next_id: impl FnMut() -> u64,
) -> Vec<String> {
    symbols
        .chunks(venue.subscribe_chunk())
        .map(|chunk| {
            let names: Vec<String> = chunk.iter().map(|s| stream_name(venue, s)).collect();
            if venue.is_binance() {
                binance::request(op, &names, next_id())
            } else {
                bybit::request(op, &names, next_id())
            }
        })
        .collect()
}

/// Bybit's heartbeat frame (`None` for venues whose server pings).
pub(crate) fn ping(venue: Venue, id: u64) -> Option<String> {
    venue.client_ping().map(|_| bybit::ping(id))
}

/// Reads one text frame; `Err` names what was wrong with it.
pub(crate) fn parse(venue: Venue, text: &str) -> Result<Incoming, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if venue.is_binance() {
        binance::parse(venue, value)
    } else {
        bybit::parse(venue, value)
    }
}
