//! Recorded trade sequences (`crates/testkit/data/ticks/*.csv`) and the klines an exchange
//! would compute from them. A tape is played forward by the fake: trades before its cursor
//! have happened (REST klines include them), trades after it have not.

/// One recorded trade.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedTrade {
    pub id: u64,
    pub time_ms: i64,
    /// As the exchange writes it (a decimal string).
    pub price: String,
    pub qty: String,
    /// The taker bought (Binance `m` = false, Bybit `S` = `Buy`).
    pub taker_buys: bool,
    /// False when the recording shows the trade never came on the stream (REST still has it).
    pub on_stream: bool,
}

impl RecordedTrade {
    pub fn price_f64(&self) -> f64 {
        self.price.parse().unwrap_or(f64::NAN)
    }
}

/// The recorded sequences shipped with testkit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    /// BTCUSDT, a calm hour: 100 trades, prices within 0.5 %, consecutive ids.
    CalmBtcHour,
    /// ETHUSDT, about +3 % in two minutes then a pullback: 110 trades.
    FastEthMove,
    /// SOLUSDT with ids 901220023..=901220030 missing from the stream (`on_stream` false) and a
    /// 90 s quiet hole before id 901220041.
    SolWithGaps,
}

impl Recording {
    pub fn csv(&self) -> &'static str {
        match self {
            Recording::CalmBtcHour => include_str!("../../data/ticks/btcusdt_calm_hour.csv"),
            Recording::FastEthMove => include_str!("../../data/ticks/ethusdt_fast_move.csv"),
            Recording::SolWithGaps => include_str!("../../data/ticks/solusdt_with_gaps.csv"),
        }
    }

    pub fn trades(&self) -> Vec<RecordedTrade> {
        parse_csv(self.csv()).expect("shipped recordings parse")
    }
}

/// Reads `trade_id,time_ms,price,qty,taker,on_stream` rows; `#` lines are comments and the
/// header is skipped.
pub fn parse_csv(text: &str) -> Result<Vec<RecordedTrade>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("trade_id"))
        .map(|line| {
            let cols: Vec<&str> = line.split(',').collect();
            let [id, time, price, qty, taker, on_stream] = cols[..] else {
                return Err(format!("expected 6 columns: {line}"));
            };
            let bad = |what: &str| format!("bad {what} in {line}");
            Ok(RecordedTrade {
                id: id.parse().map_err(|_| bad("trade_id"))?,
                time_ms: time.parse().map_err(|_| bad("time_ms"))?,
                price: price
                    .parse::<f64>()
                    .ok()
                    .filter(|p| *p > 0.0)
                    .map(|_| price.to_owned())
                    .ok_or_else(|| bad("price"))?,
                qty: qty.to_owned(),
                taker_buys: match taker {
                    "buy" => true,
                    "sell" => false,
                    _ => return Err(bad("taker")),
                },
                on_stream: on_stream == "1",
            })
        })
        .collect()
}

/// One kline computed from trades.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeBar {
    pub open_ms: i64,
    pub close_ms: i64,
    pub open: String,
    pub high: String,
    pub low: String,
    pub close: String,
    pub volume: f64,
    pub quote_volume: f64,
    pub trades: u64,
}

/// Klines of `interval_ms` over `trades` (in time order) whose open time lies in
/// `[start_ms, end_ms]`, oldest first, at most `limit`.
pub fn klines(
    trades: &[RecordedTrade],
    interval_ms: i64,
    start_ms: i64,
    end_ms: i64,
    limit: usize,
) -> Vec<FakeBar> {
    let mut bars: Vec<FakeBar> = Vec::new();
    for t in trades {
        let open_ms = t.time_ms.div_euclid(interval_ms) * interval_ms;
        if open_ms < start_ms || open_ms > end_ms {
            continue;
        }
        let qty: f64 = t.qty.parse().unwrap_or(0.0);
        match bars.last_mut() {
            Some(bar) if bar.open_ms == open_ms => {
                if t.price_f64() > bar.high.parse().unwrap_or(f64::MIN) {
                    bar.high = t.price.clone();
                }
                if t.price_f64() < bar.low.parse().unwrap_or(f64::MAX) {
                    bar.low = t.price.clone();
                }
                bar.close = t.price.clone();
                bar.volume += qty;
                bar.quote_volume += qty * t.price_f64();
                bar.trades += 1;
            }
            _ => bars.push(FakeBar {
                open_ms,
                close_ms: open_ms + interval_ms - 1,
                open: t.price.clone(),
                high: t.price.clone(),
                low: t.price.clone(),
                close: t.price.clone(),
                volume: qty,
                quote_volume: qty * t.price_f64(),
                trades: 1,
            }),
        }
    }
    bars.truncate(limit);
    bars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_recordings_parse_with_consecutive_ids() {
        for rec in [
            Recording::CalmBtcHour,
            Recording::FastEthMove,
            Recording::SolWithGaps,
        ] {
            let trades = rec.trades();
            assert!(trades.len() >= 60, "{rec:?}");
            assert!(
                trades
                    .windows(2)
                    .all(|w| w[1].id == w[0].id + 1 && w[1].time_ms >= w[0].time_ms)
            );
        }
        let missed = Recording::SolWithGaps
            .trades()
            .iter()
            .filter(|t| !t.on_stream)
            .map(|t| t.id)
            .collect::<Vec<_>>();
        assert_eq!(missed, (901220023..=901220030).collect::<Vec<_>>());
    }

    #[test]
    fn klines_bucket_trades_by_open_time() {
        let t = |id, ms, p: &str| RecordedTrade {
            id,
            time_ms: ms,
            price: p.into(),
            qty: "1".into(),
            taker_buys: true,
            on_stream: true,
        };
        let trades = [
            t(1, 1_000, "10"),
            t(2, 1_500, "12"),
            t(3, 1_900, "9"),
            t(4, 3_100, "11"),
        ];
        let bars = klines(&trades, 1_000, 0, 10_000, 10);
        assert_eq!(bars.len(), 2);
        assert_eq!((bars[0].open.as_str(), bars[0].high.as_str()), ("10", "12"));
        assert_eq!((bars[0].low.as_str(), bars[0].close.as_str()), ("9", "9"));
        assert_eq!(bars[1].open_ms, 3_000);
        assert_eq!(klines(&trades, 1_000, 2_000, 10_000, 10).len(), 1);
    }
}
