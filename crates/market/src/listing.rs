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

/// How long after a failed read of the list it is not asked for again, by default.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The cached instrument list of one venue.
#[derive(Debug)]
pub struct Listings {
    rest: Rest,
    ttl: Duration,
    retry_after: Duration,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    /// The last list read, and when.
    list: Option<(Instant, HashMap<Symbol, Instrument>)>,
    /// The last read failed: when, and why. No read is tried again for `retry_after`.
    failed: Option<(Instant, String)>,
}

impl Listings {
    /// `ttl`: how long a read list is trusted (listings change a few times a week).
    pub fn new(rest: Rest, ttl: Duration) -> Listings {
        Listings {
            rest,
            ttl,
            retry_after: RETRY_AFTER,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// How long after a failed read the list is not asked for again ([`RETRY_AFTER`] unless
    /// set): a venue that is down costs one request timeout per pause, not one per look-up.
    pub fn retry_after(mut self, pause: Duration) -> Listings {
        self.retry_after = pause;
        self
    }

    pub fn venue(&self) -> Venue {
        self.rest.venue()
    }

    /// Looks a parsed pair (`BTC/USDT`) up. Reads the list when it is missing or older than
    /// `ttl`. If that read fails, an older list is used (and the failure logged) rather than
    /// calling every pair untrackable; with no list at all the error is returned. Either way
    /// the list is not asked for again for `retry_after`: meanwhile the older list is used,
    /// or, with none, [`MarketError::Unavailable`] is returned at once.
    pub async fn check(&self, pair: &str) -> Result<Listing, MarketError> {
        let symbol = match Symbol::from_pair(pair) {
            Ok(s) => s,
            Err(_) => return Ok(Listing::Untrackable(Untrackable::NotAPair(pair.to_owned()))),
        };
        let mut cache = self.cache.lock().await;
        let fresh = (cache.list.as_ref()).is_some_and(|(read_at, _)| read_at.elapsed() < self.ttl);
        let pausing =
            (cache.failed.as_ref()).is_some_and(|(at, _)| at.elapsed() < self.retry_after);
        if !fresh && !pausing {
            match self.rest.instruments().await {
                Ok(list) => {
                    let map = list.into_iter().map(|i| (i.symbol.clone(), i)).collect();
                    cache.list = Some((Instant::now(), map));
                    cache.failed = None;
                }
                Err(e) => {
                    cache.failed = Some((Instant::now(), e.to_string()));
                    if cache.list.is_none() {
                        return Err(e);
                    }
                    warn!(venue = %self.venue(), error = %e, retry_in = ?self.retry_after, "instrument list not refreshed; using the previous one");
                }
            }
        }
        let Some((_, map)) = &cache.list else {
            let (at, last) = cache
                .failed
                .clone()
                .unwrap_or_else(|| (Instant::now(), String::new()));
            return Err(MarketError::Unavailable {
                venue: self.venue(),
                call: "instrument list",
                last,
                // Whole seconds, rounded up: what a log reader wants.
                retry_in: Duration::from_secs(
                    self.retry_after
                        .saturating_sub(at.elapsed())
                        .as_secs_f64()
                        .ceil() as u64,
                ),
            });
        };
        Ok(match map.get(&symbol) {
            Some(i) if i.trading => Listing::Trackable(symbol),
            Some(i) => Listing::Untrackable(Untrackable::NotTrading {
                symbol,
                status: i.status.clone(),
            }),
            None => Listing::Untrackable(Untrackable::NotListed(symbol)),
        })
    }
}
