//! Whether a venue lists a pair, from its documented instrument list (Binance `exchangeInfo`,
//! Bybit `instruments-info`), read once per `ttl` and shared by every caller. A pair the venue
//! does not list, or lists but does not trade, is [`Listing::Untrackable`]: never guessed.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::warn;

use crate::error::MarketError;
use crate::rest::{Instrument, Rest};
use crate::symbol::Symbol;
use crate::venue::Venue;

/// What a venue says about a pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// Listed and trading: subscribe to this symbol.
    Trackable(Symbol),
    Untrackable(Untrackable),
}

/// Why a pair cannot be tracked on a venue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untrackable {
    /// The text is not a `BASE/QUOTE` pair.
    NotAPair(String),
    /// The venue does not list the symbol.
    NotListed(Symbol),
    /// Listed, but not trading (`BREAK`, `HALT`, `PreLaunch`, `Delivering`, ...).
    NotTrading { symbol: Symbol, status: String },
}

/// The cached instrument list of one venue.
#[derive(Debug)]
pub struct Listings {
    rest: Rest,
    ttl: Duration,
    cache: Mutex<Option<(Instant, HashMap<Symbol, Instrument>)>>,
}

impl Listings {
    /// `ttl`: how long a read list is trusted (listings change a few times a week).
    pub fn new(rest: Rest, ttl: Duration) -> Listings {
        Listings {
            rest,
            ttl,
            cache: Mutex::new(None),
        }
    }

    pub fn venue(&self) -> Venue {
        self.rest.venue()
    }

    /// Looks a parsed pair (`BTC/USDT`) up. Reads the list when it is missing or older than
    /// `ttl`; if that read fails, an older list is used (and the failure logged) rather than
    /// calling every pair untrackable; with no list at all the error is returned.
    pub async fn check(&self, pair: &str) -> Result<Listing, MarketError> {
        let symbol = match Symbol::from_pair(pair) {
            Ok(s) => s,
            Err(_) => return Ok(Listing::Untrackable(Untrackable::NotAPair(pair.to_owned()))),
        };
        let mut cache = self.cache.lock().await;
        let (read_at, map) = match cache.take() {
            Some((read_at, map)) if read_at.elapsed() < self.ttl => (read_at, map),
            previous => match self.rest.instruments().await {
                Ok(list) => (
                    Instant::now(),
                    list.into_iter().map(|i| (i.symbol.clone(), i)).collect(),
                ),
                Err(e) => match previous {
                    Some(previous) => {
                        warn!(venue = %self.venue(), error = %e, "instrument list not refreshed; using the previous one");
                        previous
                    }
                    None => return Err(e),
                },
            },
        };
        let listing = match map.get(&symbol) {
            Some(i) if i.trading => Listing::Trackable(symbol),
            Some(i) => Listing::Untrackable(Untrackable::NotTrading {
                symbol,
                status: i.status.clone(),
            }),
            None => Listing::Untrackable(Untrackable::NotListed(symbol)),
        };
        *cache = Some((read_at, map));
        Ok(listing)
    }
}
