//! Binance's wire formats, as documented in binance/binance-spot-api-docs
//! (`web-socket-streams.md`, `rest-api.md`) and the USDⓈ-M futures pages of
//! developers.binance.com ("Websocket Market Streams", "Aggregate Trade Streams",
//! "Kline/Candlestick Data", "Exchange Information"). Only this file knows them.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::{Bar, Tick, TradeId, from_millis, price};
use crate::symbol::Symbol;
use crate::venue::{Interval, Venue};
use crate::wire::{Incoming, Op};

/// Spot reads `<symbol>@trade` (every trade, ids per symbol); futures read
/// `<symbol>@aggTrade` (the documented trade stream of USDⓈ-M futures). Names are lower-case.
pub(crate) fn stream_name(venue: Venue, symbol: &Symbol) -> String {
    match venue {
        Venue::BinanceFutures => format!("{}@aggTrade", symbol.lower()),
        _ => format!("{}@trade", symbol.lower()),
    }
}

/// "Live Subscribing/Unsubscribing to streams":
/// `{"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 1}`.
pub(crate) fn request(op: Op, streams: &[String], id: u64) -> String {
    let method = match op {
        Op::Subscribe => "SUBSCRIBE",
        Op::Unsubscribe => "UNSUBSCRIBE",
    };
    json!({ "method": method, "params": streams, "id": id }).to_string()
}

/// "Trade Streams" (spot `<symbol>@trade`) payload.
#[derive(Deserialize)]
struct TradeEvent {
    #[serde(rename = "s")]
    symbol: String,
    #[serde(rename = "t")]
    id: u64,
    #[serde(rename = "p")]
    price: String,
    /// Trade time (`E` is when the event was pushed).
    #[serde(rename = "T")]
    time: i64,
}

/// "Aggregate Trade Streams" (`<symbol>@aggTrade`, spot and futures) payload.
#[derive(Deserialize)]
struct AggTradeEvent {
    #[serde(rename = "s")]
    symbol: String,
    #[serde(rename = "a")]
    id: u64,
    #[serde(rename = "p")]
    price: String,
    #[serde(rename = "T")]
    time: i64,
}

/// A frame on a combined stream (`{"stream": ..., "data": ...}`), a raw stream's payload, a
/// request's answer (`{"result": null, "id": 1}`) or error (`{"code": 2, "msg": ..., "id": 1}`).
pub(crate) fn parse(venue: Venue, value: Value) -> Result<Incoming, String> {
    let Value::Object(obj) = &value else {
        return Err("not a JSON object".into());
    };
    if obj.contains_key("result") && obj.contains_key("id") {
        return Ok(Incoming::Ack {
            ok: true,
            detail: value.to_string(),
        });
    }
    if obj.contains_key("code") && obj.contains_key("msg") {
        return Ok(Incoming::Ack {
            ok: false,
            detail: value.to_string(),
        });
    }
    let payload = match (obj.get("stream"), obj.get("data")) {
        (Some(_), Some(data)) => data,
        _ => &value,
    };
    let event = payload
        .get("e")
        .and_then(Value::as_str)
        .ok_or("no event type `e`")?;
    let tick = |symbol: &str, id: u64, p: &str, time: i64| -> Result<Tick, String> {
        Ok(Tick {
            venue,
            symbol: Symbol::from_exchange(symbol).ok_or("bad symbol")?,
            price: price(p).ok_or_else(|| format!("bad price {p:?}"))?,
            time: from_millis(time).ok_or("bad trade time")?,
            trade_id: TradeId::Sequential(id),
        })
    };
    match event {
        "trade" => {
            let t = TradeEvent::deserialize(payload).map_err(|e| format!("trade: {e}"))?;
            Ok(Incoming::Ticks(vec![tick(
                &t.symbol, t.id, &t.price, t.time,
            )?]))
        }
        "aggTrade" => {
            let t = AggTradeEvent::deserialize(payload).map_err(|e| format!("aggTrade: {e}"))?;
            Ok(Incoming::Ticks(vec![tick(
                &t.symbol, t.id, &t.price, t.time,
            )?]))
        }
        // "Server Shutdown": sent before the server closes; reconnect at once.
        "serverShutdown" => Ok(Incoming::Shutdown),
        _ => Ok(Incoming::Other),
    }
}

/// `GET /api/v3/klines` (spot) or `GET /fapi/v1/klines` (futures).
pub(crate) fn klines_path(venue: Venue) -> &'static str {
    match venue {
        Venue::BinanceFutures => "/fapi/v1/klines",
        _ => "/api/v3/klines",
    }
}

/// The query of a klines request: `symbol`, `interval`, `startTime`, `endTime` (ms, UTC), `limit`.
pub(crate) fn klines_query(
    symbol: &Symbol,
    interval: Interval,
    start_ms: i64,
    end_ms: i64,
    limit: u32,
) -> Vec<(&'static str, String)> {
    vec![
        ("symbol", symbol.as_str().to_owned()),
        ("interval", interval.binance().to_owned()),
        ("startTime", start_ms.to_string()),
        ("endTime", end_ms.to_string()),
        ("limit", limit.to_string()),
    ]
}

/// Klines are arrays: `[open time, "open", "high", "low", "close", "volume", close time, ...]`,
/// oldest first.
pub(crate) fn parse_klines(
    venue: Venue,
    symbol: &Symbol,
    interval: Interval,
    body: &Value,
) -> Result<Vec<Bar>, String> {
    let rows = body.as_array().ok_or("klines: not an array")?;
    rows.iter()
        .map(|row| {
            let cell = |i: usize| {
                row.get(i)
                    .ok_or_else(|| format!("kline row too short: {row}"))
            };
            let open_ms = cell(0)?.as_i64().ok_or("kline open time")?;
            let num = |i: usize| -> Result<f64, String> {
                let c = cell(i)?;
                c.as_str()
                    .and_then(price)
                    .ok_or_else(|| format!("kline price {c}"))
            };
            Ok(Bar {
                venue,
                symbol: symbol.clone(),
                interval,
                open_time: from_millis(open_ms).ok_or("kline open time")?,
                open: num(1)?,
                high: num(2)?,
                low: num(3)?,
                close: num(4)?,
                backfilled: true,
            })
        })
        .collect()
}

/// `GET /api/v3/exchangeInfo` or `GET /fapi/v1/exchangeInfo`.
pub(crate) fn exchange_info_path(venue: Venue) -> &'static str {
    match venue {
        Venue::BinanceFutures => "/fapi/v1/exchangeInfo",
        _ => "/api/v3/exchangeInfo",
    }
}

#[derive(Deserialize)]
struct ExchangeInfo {
    symbols: Vec<SymbolInfo>,
}

#[derive(Deserialize)]
struct SymbolInfo {
    symbol: String,
    /// `TRADING`, `BREAK`, `HALT`, ... (futures also `PENDING_TRADING`, `SETTLING`, ...).
    status: String,
    /// Futures only: `PERPETUAL`, `CURRENT_QUARTER`, ...
    #[serde(rename = "contractType", default)]
    contract_type: Option<String>,
}

/// `(symbol, status)` of every listed symbol. On futures only perpetuals count: a dated
/// contract has its own symbol (`BTCUSDT_240329`), so the pair's symbol is the perpetual.
pub(crate) fn parse_exchange_info(
    venue: Venue,
    body: Value,
) -> Result<Vec<(String, String)>, String> {
    let info: ExchangeInfo =
        serde_json::from_value(body).map_err(|e| format!("exchangeInfo: {e}"))?;
    Ok(info
        .symbols
        .into_iter()
        .filter(|s| {
            venue != Venue::BinanceFutures || s.contract_type.as_deref() == Some("PERPETUAL")
        })
        .map(|s| (s.symbol, s.status))
        .collect())
}

/// The status meaning "trades now".
pub(crate) const TRADING: &str = "TRADING";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_trade_payload_on_a_combined_stream() {
        // The example of "Trade Streams", wrapped as combined streams are.
        let frame = json!({"stream": "bnbbtc@trade", "data": {
            "e": "trade", "E": 1672515782136u64, "s": "BNBBTC", "t": 12345, "p": "0.001",
            "q": "100", "T": 1672515782136u64, "m": true, "M": true }});
        let Incoming::Ticks(ticks) = parse(Venue::BinanceSpot, frame).unwrap() else {
            panic!("no ticks");
        };
        assert_eq!(ticks[0].symbol.as_str(), "BNBBTC");
        assert_eq!(ticks[0].trade_id, TradeId::Sequential(12345));
        assert_eq!(ticks[0].price, 0.001);
        assert_eq!(crate::model::to_millis(ticks[0].time), 1672515782136);
    }

    #[test]
    fn reads_the_documented_agg_trade_payload_raw() {
        let frame = json!({"e": "aggTrade", "E": 123456789, "s": "BTCUSDT", "a": 5933014,
            "p": "0.001", "q": "100", "f": 100, "l": 105, "T": 123456785, "m": true});
        let Incoming::Ticks(ticks) = parse(Venue::BinanceFutures, frame).unwrap() else {
            panic!("no ticks");
        };
        assert_eq!(ticks[0].trade_id, TradeId::Sequential(5933014));
    }

    #[test]
    fn tells_answers_errors_and_shutdowns_apart() {
        let ack = parse(Venue::BinanceSpot, json!({"result": null, "id": 1})).unwrap();
        assert!(matches!(ack, Incoming::Ack { ok: true, .. }));
        let err = parse(
            Venue::BinanceSpot,
            json!({"code": 2, "msg": "Invalid request", "id": 1}),
        );
        assert!(matches!(err.unwrap(), Incoming::Ack { ok: false, .. }));
        let bye = json!({"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": 1}});
        assert_eq!(parse(Venue::BinanceSpot, bye).unwrap(), Incoming::Shutdown);
        assert!(parse(Venue::BinanceSpot, json!({"e": "trade", "p": "x"})).is_err());
    }

    #[test]
    fn reads_the_documented_kline_rows() {
        let body = json!([[
            1499040000000u64,
            "0.01634790",
            "0.80000000",
            "0.01575800",
            "0.01577100",
            "148976.11427815",
            1499644799999u64,
            "2434.19055334",
            308,
            "1756.87402397",
            "28.46694368",
            "0"
        ]]);
        let s = Symbol::from_pair("BNB/BTC").unwrap();
        let bars = parse_klines(Venue::BinanceSpot, &s, Interval::Minute1, &body).unwrap();
        assert_eq!(
            (bars[0].high, bars[0].low, bars[0].backfilled),
            (0.8, 0.015758, true)
        );
    }
}
