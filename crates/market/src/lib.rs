//! Market data for G3netic Signals: prices from the public streams of Binance (spot and
//! USDⓈ-M futures) and Bybit (v5 spot and linear), with no API key.
//!
//! - [`Symbol::from_pair`] turns a parsed pair (`BTC/USDT`) into the exchanges' symbol
//!   (`BTCUSDT`); [`Listings`] says whether a [`Venue`] lists and trades it, from the venue's
//!   documented instrument list, cached. A pair it does not list is
//!   [`Listing::Untrackable`], never guessed.
//! - [`Feed`] keeps one WebSocket per venue subscribed to a runtime set of symbols and emits
//!   [`MarketEvent`]s: a normalized [`Tick`] per trade (exchange trade time, trade id), and,
//!   for every interval the stream missed (the connection was down, or Binance trade ids
//!   jumped), REST klines as [`Bar`]s marked `backfilled` followed by a [`Gap`] summary, all
//!   before the trade that revealed the gap. It reconnects with backoff, resubscribes, answers
//!   Binance's server pings and sends Bybit's client pings, and skips malformed frames.
//! - [`Rest`] reads klines and instrument lists.
//!
//! Wire formats live in `binance.rs` and `bybit.rs` only, each citing the documentation it
//! models. Endpoints default to production ([`Endpoints::production`]) and are configurable:
//! tests point them at `testkit::exchange::FakeExchange`.

mod binance;
mod bybit;
mod error;
mod feed;
mod gaps;
mod listing;
mod model;
mod rest;
mod symbol;
mod venue;
mod wire;

pub use error::MarketError;
pub use feed::{Backoff, Feed, FeedConfig, FeedStats};
pub use listing::{Listing, Listings, Untrackable};
pub use model::{Bar, Gap, GapCause, MarketEvent, Tick, TradeId};
pub use rest::{Instrument, Rest};
pub use symbol::{PairError, Symbol};
pub use venue::{Endpoints, Interval, Venue};
