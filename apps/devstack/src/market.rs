//! devstack's simulated market: testkit's fake exchange on 127.0.0.1, listing the demo pairs on
//! Binance spot and trading each as a seeded random walk around a realistic price, so the
//! tracker follows demo signals through entries, targets and stops while you watch. Nothing
//! here is a real price.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use g3_market::{Endpoints, Venue};
use testkit::exchange::{FakeExchange, FakeVenue, Live, LiveMarket, LiveSymbol};

/// The venue the simulated market speaks (Binance spot: it serves 1-second klines, so a
/// backfill after a reconnect is as fine as the stream).
pub const VENUE: Venue = Venue::BinanceSpot;
const FAKE_VENUE: FakeVenue = FakeVenue::BinanceSpot;

/// A pair the simulated market trades.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemoPair {
    /// As signals write it.
    pub pair: &'static str,
    /// As the exchange lists it.
    pub symbol: &'static str,
    /// Where its walk starts and drifts back to: near the levels of the seeded signals.
    pub price: f64,
    /// Decimal places of its prices (Binance's tick size for the pair).
    pub decimals: u32,
}

/// Every pair a demo signal uses, seeded or posted by the demo collector.
pub const DEMO_PAIRS: &[DemoPair] = &[
    DemoPair {
        pair: "BTC/USDT",
        symbol: "BTCUSDT",
        price: 64_000.0,
        decimals: 2,
    },
    DemoPair {
        pair: "ETH/USDT",
        symbol: "ETHUSDT",
        price: 3_160.0,
        decimals: 2,
    },
    DemoPair {
        pair: "SOL/USDT",
        symbol: "SOLUSDT",
        price: 140.0,
        decimals: 2,
    },
    DemoPair {
        pair: "XRP/USDT",
        symbol: "XRPUSDT",
        price: 0.61,
        decimals: 4,
    },
    DemoPair {
        pair: "DOGE/USDT",
        symbol: "DOGEUSDT",
        price: 0.162,
        decimals: 5,
    },
    DemoPair {
        pair: "LINK/USDT",
        symbol: "LINKUSDT",
        price: 18.6,
        decimals: 2,
    },
    DemoPair {
        pair: "AVAX/USDT",
        symbol: "AVAXUSDT",
        price: 35.8,
        decimals: 2,
    },
    DemoPair {
        pair: "BNB/USDT",
        symbol: "BNBUSDT",
        price: 600.0,
        decimals: 2,
    },
    DemoPair {
        pair: "ARB/USDT",
        symbol: "ARBUSDT",
        price: 1.09,
        decimals: 4,
    },
];

/// How the simulated market moves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarketSettings {
    /// Standard deviation of a minute's move, as a fraction (0.004: about 0.4 % a minute).
    /// The demo collector sizes its signals' levels by it, so signals resolve in minutes.
    pub volatility: f64,
    /// Trades per second of each pair.
    pub trades_per_sec: f64,
    /// The walks' seed.
    pub seed: u64,
    /// The demo collector sizes its signals' levels so that they are typically reached within
    /// about this long (a target and the stop a few times the expected move apart).
    pub signal_horizon: Duration,
}

impl MarketSettings {
    /// The expected move over [`MarketSettings::signal_horizon`], as a fraction: the unit of
    /// the demo signals' distances from entry to targets and stop.
    pub fn signal_step(&self) -> f64 {
        self.volatility * (self.signal_horizon.as_secs_f64() / 60.0).sqrt()
    }
}

impl Default for MarketSettings {
    /// About 0.4 % a minute at four trades a second: a demo signal usually enters at once and
    /// reaches a target or its stop within one to three minutes.
    fn default() -> Self {
        MarketSettings {
            volatility: 0.004,
            trades_per_sec: 4.0,
            seed: 16,
            signal_horizon: Duration::from_secs(90),
        }
    }
}

/// The running simulated market; cheap to clone (every clone is the same market).
#[derive(Clone)]
pub struct Market {
    pub fake: FakeExchange,
    pub settings: MarketSettings,
}

/// The simulated market's trading, stopped by [`Trading::stop`].
pub struct Trading(Live);

impl Trading {
    pub async fn stop(self) {
        self.0.stop().await;
    }
}

impl Market {
    /// Starts the fake exchange on `addr` (a loopback address) and trades every demo pair.
    pub async fn start(
        addr: SocketAddr,
        settings: MarketSettings,
    ) -> anyhow::Result<(Market, Trading)> {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} for the simulated market (set DEVSTACK_MARKET_ADDR)")
        })?;
        let fake = FakeExchange::spawn_on(listener);
        let symbols = DEMO_PAIRS
            .iter()
            .map(|p| LiveSymbol {
                venue: FAKE_VENUE,
                symbol: p.symbol.to_owned(),
                price: p.price,
                decimals: p.decimals,
                volatility: settings.volatility,
            })
            .collect();
        let mut live = LiveMarket::new(symbols, settings.seed);
        live.trades_per_sec = settings.trades_per_sec;
        // Drifts back toward the reference within half an hour, so the seeded signals' levels
        // stay within reach however long devstack runs.
        live.half_life = Duration::from_secs(30 * 60);
        let trading = Trading(fake.go_live(live));
        Ok((Market { fake, settings }, trading))
    }

    /// The address the fake exchange listens on.
    pub fn addr(&self) -> SocketAddr {
        self.fake.addr
    }

    /// The latest price of a demo pair (`BTC/USDT`), once it has traded.
    pub fn price(&self, pair: &str) -> Option<f64> {
        let p = DEMO_PAIRS.iter().find(|p| p.pair == pair)?;
        self.fake.last_price(FAKE_VENUE, p.symbol)
    }

    /// The REST base of the venue (documented paths such as `/api/v3/klines` follow it).
    pub fn rest_url(&self) -> String {
        self.fake.rest_url(FAKE_VENUE)
    }

    /// The venue's combined-stream WebSocket URL.
    pub fn ws_url(&self) -> String {
        self.fake.ws_url(FAKE_VENUE)
    }

    /// Where the tracker reaches the market.
    pub fn endpoints(&self) -> anyhow::Result<BTreeMap<Venue, Endpoints>> {
        Ok(BTreeMap::from([(
            VENUE,
            Endpoints {
                ws: self.ws_url().parse()?,
                rest: self.rest_url().parse()?,
            },
        )]))
    }

    /// Ends every connection and stops listening.
    pub fn close(&self) {
        self.fake.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_pairs_match_the_seeded_signals_and_the_exchange_symbols() {
        for p in DEMO_PAIRS {
            assert_eq!(p.pair.replace('/', ""), p.symbol);
            assert!(p.price > 0.0);
        }
        // Every seeded signal trades on a listed pair whose price starts near its entry and
        // stop (within two or three of the walk's typical half-hour moves), so it can resolve.
        for (seeded, levels) in crate::seed::demo_signal_levels() {
            let pair = DEMO_PAIRS
                .iter()
                .find(|p| p.pair == seeded)
                .unwrap_or_else(|| panic!("{seeded} is seeded but not traded"));
            for level in levels {
                let away = (level / pair.price).ln().abs();
                assert!(
                    away < 0.05,
                    "{seeded} {level} is {away} from {}",
                    pair.price
                );
            }
        }
        let step = MarketSettings::default().signal_step();
        assert!((0.003..0.008).contains(&step), "{step}");
    }
}
