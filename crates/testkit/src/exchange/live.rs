//! The fake exchange's live mode: instead of a test stepping a recording forward, a task
//! generates trades continuously, a seeded random walk per listed symbol ([`Walk`]). Every
//! trade joins its symbol's tape the moment it is made, so REST klines (and a backfill after a
//! reconnect) describe exactly what was streamed, and goes to every subscribed connection.
//!
//! The walk is a mean-reverting one (Ornstein–Uhlenbeck on the log price): it moves by
//! `volatility` a minute and drifts back toward the symbol's reference price with `half_life`,
//! so a demo that runs for hours still shows realistic prices.

use std::time::Duration;

use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use tokio::sync::oneshot;

use super::{FakeExchange, FakeVenue, RecordedTrade};

/// One symbol the live market trades.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSymbol {
    pub venue: FakeVenue,
    /// As the venue spells it (`BTCUSDT`); listed as trading when the market starts.
    pub symbol: String,
    /// Where the walk starts and what it drifts back toward. Positive.
    pub price: f64,
    /// Decimal places of its prices: the tick size is 10^-decimals.
    pub decimals: u32,
    /// Standard deviation of one minute's log return (0.004: moves of about 0.4 % a minute).
    pub volatility: f64,
}

/// What the live market trades and how fast.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveMarket {
    pub symbols: Vec<LiveSymbol>,
    /// Trades per second of each symbol. Positive.
    pub trades_per_sec: f64,
    /// The same seed and the same trade times give the same prices.
    pub seed: u64,
    /// How fast a price drifts back toward its reference (half the distance in this long);
    /// zero for a plain random walk.
    pub half_life: Duration,
    /// Trades older than this are forgotten: REST klines reach back this far.
    pub retention: Duration,
}

impl LiveMarket {
    /// Four trades a second, drifting back over 20 minutes, two hours of klines.
    pub fn new(symbols: Vec<LiveSymbol>, seed: u64) -> LiveMarket {
        LiveMarket {
            symbols,
            trades_per_sec: 4.0,
            seed,
            half_life: Duration::from_secs(20 * 60),
            retention: Duration::from_secs(2 * 3600),
        }
    }
}

/// A seeded, mean-reverting random walk of one symbol's price. Pure: the caller brings the
/// time of each trade, so a test gets the same prices for the same seed and times.
#[derive(Debug, Clone)]
pub struct Walk {
    reference: f64,
    /// ln(price / reference) before rounding.
    deviation: f64,
    /// Volatility per square root of a second.
    sigma: f64,
    /// Reversion rate per second (ln 2 / half-life); zero for a plain walk.
    theta: f64,
    tick: f64,
    last_ms: Option<i64>,
    rng: StdRng,
}

/// A walk never strays further than this from its reference (a factor of about 1.65).
const MAX_DEVIATION: f64 = 0.5;

impl Walk {
    /// The walk of `symbol`, its own stream of randomness derived from `seed` and the
    /// symbol's venue and name.
    pub fn new(symbol: &LiveSymbol, half_life: Duration, seed: u64) -> Walk {
        let theta = if half_life.is_zero() {
            0.0
        } else {
            std::f64::consts::LN_2 / half_life.as_secs_f64()
        };
        Walk {
            reference: symbol.price,
            deviation: 0.0,
            sigma: symbol.volatility.max(0.0) / 60f64.sqrt(),
            theta,
            tick: 10f64.powi(-(symbol.decimals.min(12) as i32)),
            last_ms: None,
            rng: StdRng::seed_from_u64(seed ^ fnv1a(symbol.venue, &symbol.symbol)),
        }
    }

    /// The price of a trade at `time_ms` (the first trade is at the reference price), on the
    /// tick grid and at least one tick. Times before the previous trade count as the same time.
    pub fn price_at(&mut self, time_ms: i64) -> f64 {
        let dt = match self.last_ms {
            Some(last) => (time_ms - last).max(0) as f64 / 1000.0,
            None => 0.0,
        };
        self.last_ms = Some(self.last_ms.map_or(time_ms, |l| l.max(time_ms)));
        if dt > 0.0 {
            let z = self.normal();
            let (decay, spread) = if self.theta > 0.0 {
                let decay = (-self.theta * dt).exp();
                let variance = (1.0 - decay * decay) / (2.0 * self.theta);
                (decay, self.sigma * variance.sqrt())
            } else {
                (1.0, self.sigma * dt.sqrt())
            };
            self.deviation =
                (self.deviation * decay + spread * z).clamp(-MAX_DEVIATION, MAX_DEVIATION);
        }
        let price = self.reference * self.deviation.exp();
        ((price / self.tick).round() * self.tick).max(self.tick)
    }

    /// A trade's size and whether its taker bought.
    fn size(&mut self) -> (f64, bool) {
        (self.rng.random_range(0.001..2.0), self.rng.random_bool(0.5))
    }

    /// A standard normal draw (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let v: f64 = self.rng.random();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// FNV-1a of the venue and symbol: each symbol's walk gets its own seed.
fn fnv1a(venue: FakeVenue, symbol: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in [venue as u8].iter().chain(symbol.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The live market running on a [`FakeExchange`]; [`Live::stop`] ends it (the exchange keeps
/// serving what happened).
pub struct Live {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Live {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

impl FakeExchange {
    /// Lists every symbol of `market` as trading and starts trading them: each symbol trades
    /// `trades_per_sec` times a second at the wall clock's time, on its own walk.
    pub fn go_live(&self, market: LiveMarket) -> Live {
        for s in &market.symbols {
            let status = if s.venue.is_binance() {
                "TRADING"
            } else {
                "Trading"
            };
            self.list(s.venue, &s.symbol, status);
        }
        let mut walks: Vec<(LiveSymbol, Walk)> = market
            .symbols
            .iter()
            .map(|s| (s.clone(), Walk::new(s, market.half_life, market.seed)))
            .collect();
        let period = Duration::from_secs_f64(1.0 / market.trades_per_sec.clamp(0.01, 1000.0));
        let retention_ms = i64::try_from(market.retention.as_millis()).unwrap_or(i64::MAX);
        let exchange = self.clone();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = every.tick() => {}
                }
                let now = super::now_ms();
                for (symbol, walk) in &mut walks {
                    let price = walk.price_at(now);
                    let (qty, taker_buys) = walk.size();
                    exchange.trade_now(
                        symbol.venue,
                        &symbol.symbol,
                        RecordedTrade {
                            id: 0,
                            time_ms: now,
                            price: format!("{price:.*}", symbol.decimals as usize),
                            qty: format!("{qty:.3}"),
                            taker_buys,
                            on_stream: true,
                        },
                        now.saturating_sub(retention_ms),
                    );
                }
            }
        });
        Live { stop, task }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btc(volatility: f64) -> LiveSymbol {
        LiveSymbol {
            venue: FakeVenue::BinanceSpot,
            symbol: "BTCUSDT".into(),
            price: 64_000.0,
            decimals: 2,
            volatility,
        }
    }

    fn prices(walk: &mut Walk, n: i64, every_ms: i64) -> Vec<f64> {
        (0..n).map(|i| walk.price_at(i * every_ms)).collect()
    }

    #[test]
    fn the_same_seed_and_times_give_the_same_prices() {
        let half = Duration::from_secs(600);
        let a = prices(&mut Walk::new(&btc(0.004), half, 7), 500, 250);
        let b = prices(&mut Walk::new(&btc(0.004), half, 7), 500, 250);
        let c = prices(&mut Walk::new(&btc(0.004), half, 8), 500, 250);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a[0], 64_000.0, "the first trade is at the reference price");
        // Another symbol on the same seed walks its own way.
        let mut eth = btc(0.004);
        eth.symbol = "ETHUSDT".into();
        let d = prices(&mut Walk::new(&eth, half, 7), 500, 250);
        assert_ne!(a, d);
    }

    #[test]
    fn prices_stay_positive_on_the_tick_grid_even_when_wild() {
        let mut doge = btc(0.5);
        doge.price = 0.0002;
        doge.decimals = 5;
        let mut walk = Walk::new(&doge, Duration::ZERO, 1);
        for p in prices(&mut walk, 5_000, 1_000) {
            assert!(p >= 0.00001, "{p}");
            let ticks = p / 0.00001;
            assert!((ticks - ticks.round()).abs() < 1e-6, "{p} is off the grid");
        }
    }

    #[test]
    fn a_minute_moves_about_the_volatility() {
        // 2,000 one-minute steps of a plain walk at 1 % a minute: the standard deviation of
        // the log returns is close to 0.01.
        let mut walk = Walk::new(&btc(0.01), Duration::ZERO, 3);
        let p = prices(&mut walk, 2_001, 60_000);
        let returns: Vec<f64> = p.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
        let mean = returns.iter().sum::<f64>() / returns.len() as f64;
        let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / returns.len() as f64;
        let sd = var.sqrt();
        assert!((0.009..0.011).contains(&sd), "sd {sd}");
    }

    /// Waits (bounded) until `symbol` has traded `n` times.
    async fn traded(fake: &FakeExchange, symbol: &str, n: usize) -> Vec<RecordedTrade> {
        crate::wait::wait_for(
            "live trades",
            std::time::Duration::from_secs(20),
            || async {
                let trades = fake.trades(FakeVenue::BinanceSpot, symbol);
                (trades.len() >= n).then_some(trades)
            },
        )
        .await
        .expect("the live market trades")
    }

    #[tokio::test]
    async fn live_trades_move_and_rest_klines_are_made_of_them() {
        let fake = FakeExchange::spawn().await;
        let mut market = LiveMarket::new(vec![btc(0.05)], 42);
        market.trades_per_sec = 200.0;
        let live = fake.go_live(market);
        traded(&fake, "BTCUSDT", 300).await;
        live.stop().await;
        let trades = fake.trades(FakeVenue::BinanceSpot, "BTCUSDT");
        assert!(trades.windows(2).all(|w| w[1].id == w[0].id + 1));
        assert!(trades.iter().all(|t| t.price_f64() > 0.0 && t.on_stream));
        assert!(
            trades.iter().any(|t| t.price != trades[0].price),
            "the price moved"
        );
        assert_eq!(
            fake.last_price(FakeVenue::BinanceSpot, "BTCUSDT"),
            trades.last().map(RecordedTrade::price_f64)
        );

        // The 1 s klines a backfill reads are exactly the bars of the trades streamed.
        // From the open of the first trade's second (klines start at or after `startTime`).
        let first = trades[0].time_ms.div_euclid(1_000) * 1_000;
        let last = trades[trades.len() - 1].time_ms;
        let url = format!(
            "{}/api/v3/klines?symbol=BTCUSDT&interval=1s&startTime={first}&endTime={last}&limit=1000",
            fake.rest_url(FakeVenue::BinanceSpot)
        );
        let rows: Vec<serde_json::Value> = reqwest::get(&url).await.unwrap().json().await.unwrap();
        let bars = crate::exchange::klines(&trades, 1_000, first, last, 1_000);
        assert!(bars.len() >= 2, "{} bars", bars.len());
        assert_eq!(rows.len(), bars.len());
        for (row, bar) in rows.iter().zip(&bars) {
            assert_eq!(row[0], bar.open_ms);
            assert_eq!(
                [&row[1], &row[2], &row[3], &row[4]].map(Clone::clone),
                [&bar.open, &bar.high, &bar.low, &bar.close].map(|p| serde_json::json!(p))
            );
            let inside: Vec<f64> = trades
                .iter()
                .filter(|t| t.time_ms.div_euclid(1_000) * 1_000 == bar.open_ms)
                .map(RecordedTrade::price_f64)
                .collect();
            assert_eq!(bar.trades, inside.len() as u64);
            assert_eq!(
                bar.high.parse::<f64>().unwrap(),
                inside.iter().copied().fold(f64::MIN, f64::max)
            );
            assert_eq!(
                bar.low.parse::<f64>().unwrap(),
                inside.iter().copied().fold(f64::MAX, f64::min)
            );
        }
    }

    #[tokio::test]
    async fn live_trades_older_than_the_retention_are_forgotten() {
        let fake = FakeExchange::spawn().await;
        let mut market = LiveMarket::new(vec![btc(0.004)], 1);
        market.trades_per_sec = 200.0;
        market.retention = Duration::from_millis(300);
        let live = fake.go_live(market);
        crate::wait::wait_for(
            "the first trades forgotten",
            Duration::from_secs(20),
            || {
                let trades = fake.trades(FakeVenue::BinanceSpot, "BTCUSDT");
                async move {
                    trades
                        .first()
                        .is_some_and(|t| t.id > 1_000_100)
                        .then_some(())
                }
            },
        )
        .await
        .expect("old trades are forgotten");
        live.stop().await;
        let trades = fake.trades(FakeVenue::BinanceSpot, "BTCUSDT");
        let span = trades[trades.len() - 1].time_ms - trades[0].time_ms;
        assert!(span <= 300, "kept {span} ms of trades");
    }

    #[test]
    fn reversion_keeps_prices_near_the_reference() {
        // A day at 1 % a minute with a 10-minute half-life stays within a few percent.
        let mut walk = Walk::new(&btc(0.01), Duration::from_secs(600), 5);
        let p = prices(&mut walk, 24 * 60 * 4, 15_000);
        let worst = p
            .iter()
            .map(|x| (x / 64_000.0).ln().abs())
            .fold(0.0, f64::max);
        assert!(worst < 0.2, "strayed {worst}");
        assert!(worst > 0.01, "did not move: {worst}");
    }
}
