//! Bybit v5's wire formats, as documented in bybit-exchange/docs (`docs/v5/`): "Connect"
//! (`websocket/wss-authentication.mdx`: subscribe, unsubscribe, ping/pong and their answers),
//! "Trade" (`websocket/public/trade.mdx`: topic `publicTrade.{symbol}`), "Get Kline"
//! (`market/kline.mdx`: `GET /v5/market/kline`) and "Get Instruments Info"
//! (`market/instrument.mdx`: `GET /v5/market/instruments-info`). Only this file knows them.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::{Bar, Tick, TradeId, from_millis, price};
use crate::symbol::Symbol;
use crate::venue::{Interval, Venue};
use crate::wire::{Incoming, Op};

pub(crate) fn topic(symbol: &Symbol) -> String {
    format!("publicTrade.{symbol}")
}

/// `{"req_id": "7", "op": "subscribe", "args": ["publicTrade.BTCUSDT"]}` (or `unsubscribe`).
pub(crate) fn request(op: Op, topics: &[String], id: u64) -> String {
    let op = match op {
        Op::Subscribe => "subscribe",
        Op::Unsubscribe => "unsubscribe",
    };
    json!({ "req_id": id.to_string(), "op": op, "args": topics }).to_string()
}

/// `{"req_id": "8", "op": "ping"}`.
pub(crate) fn ping(id: u64) -> String {
    json!({ "req_id": id.to_string(), "op": "ping" }).to_string()
}

/// One element of a `publicTrade` message's `data`.
#[derive(Deserialize)]
struct Trade {
    /// Fill time (ms).
    #[serde(rename = "T")]
    time: i64,
    #[serde(rename = "s")]
    symbol: String,
    #[serde(rename = "p")]
    price: String,
    #[serde(rename = "i")]
    id: String,
    /// Cross sequence (newer messages carry it).
    #[serde(default)]
    seq: Option<u64>,
}

/// A topic push (`{"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts": ..., "data": [...]}`)
/// or an operation's answer. Answers differ by category: spot pongs
/// `{"success": true, "ret_msg": "pong", "op": "ping", ...}`, linear the same with `req_id`;
/// option/spread pong with `{"op": "pong", "args": [...]}`. Subscribe answers carry `success`.
pub(crate) fn parse(venue: Venue, value: Value) -> Result<Incoming, String> {
    let Value::Object(obj) = &value else {
        return Err("not a JSON object".into());
    };
    if let Some(topic) = obj.get("topic").and_then(Value::as_str) {
        if !topic.starts_with("publicTrade.") {
            return Ok(Incoming::Other);
        }
        let data = obj.get("data").ok_or("publicTrade without data")?;
        let trades: Vec<Trade> =
            serde_json::from_value(data.clone()).map_err(|e| format!("publicTrade data: {e}"))?;
        let ticks = trades
            .into_iter()
            .map(|t| {
                Ok(Tick {
                    venue,
                    symbol: Symbol::from_exchange(&t.symbol).ok_or("bad symbol")?,
                    price: price(&t.price).ok_or_else(|| format!("bad price {:?}", t.price))?,
                    time: from_millis(t.time).ok_or("bad trade time")?,
                    trade_id: TradeId::Opaque {
                        id: t.id,
                        seq: t.seq,
                    },
                })
            })
            .collect::<Result<Vec<Tick>, String>>()?;
        return Ok(Incoming::Ticks(ticks));
    }
    match obj.get("op").and_then(Value::as_str) {
        Some("pong") => Ok(Incoming::Pong),
        Some("ping") if obj.get("ret_msg").and_then(Value::as_str) == Some("pong") => {
            Ok(Incoming::Pong)
        }
        Some("subscribe" | "unsubscribe") => Ok(Incoming::Ack {
            ok: obj.get("success").and_then(Value::as_bool) == Some(true),
            detail: value.to_string(),
        }),
        Some(_) => Ok(Incoming::Other),
        None => Err("neither a topic push nor an operation answer".into()),
    }
}

pub(crate) const KLINES_PATH: &str = "/v5/market/kline";
pub(crate) const INSTRUMENTS_PATH: &str = "/v5/market/instruments-info";

/// `category`, `symbol`, `interval` (minutes), `start`, `end` (ms), `limit` (max 1000).
pub(crate) fn klines_query(
    venue: Venue,
    symbol: &Symbol,
    interval: &'static str,
    start_ms: i64,
    end_ms: i64,
    limit: u32,
) -> Vec<(&'static str, String)> {
    vec![
        ("category", venue.bybit_category().to_owned()),
        ("symbol", symbol.as_str().to_owned()),
        ("interval", interval.to_owned()),
        ("start", start_ms.to_string()),
        ("end", end_ms.to_string()),
        ("limit", limit.to_string()),
    ]
}

/// Every v5 REST answer: `{"retCode": 0, "retMsg": "OK", "result": {...}, ...}`.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "retCode")]
    ret_code: i64,
    #[serde(rename = "retMsg", default)]
    ret_msg: String,
    #[serde(default)]
    result: Value,
}

/// The `result` of a successful answer, or the exchange's error as `(code, message)`.
pub(crate) fn result(body: Value) -> Result<Result<Value, (i64, String)>, String> {
    let env: Envelope = serde_json::from_value(body).map_err(|e| format!("envelope: {e}"))?;
    Ok(if env.ret_code == 0 {
        Ok(env.result)
    } else {
        Err((env.ret_code, env.ret_msg))
    })
}

/// `result.list`: `[startTime, open, high, low, close, volume, turnover]`, all strings,
/// newest first (returned oldest first).
pub(crate) fn parse_klines(
    venue: Venue,
    symbol: &Symbol,
    interval: Interval,
    result: &Value,
) -> Result<Vec<Bar>, String> {
    let rows = result
        .get("list")
        .and_then(Value::as_array)
        .ok_or("kline: no list")?;
    let mut bars = rows
        .iter()
        .map(|row| {
            let cell = |i: usize| {
                row.get(i)
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("kline row: {row}"))
            };
            let open_ms: i64 = cell(0)?.parse().map_err(|_| "kline start time")?;
            let num = |i: usize| -> Result<f64, String> {
                let c = cell(i)?;
                price(c).ok_or_else(|| format!("kline price {c:?}"))
            };
            Ok(Bar {
                venue,
                symbol: symbol.clone(),
                interval,
                open_time: from_millis(open_ms).ok_or("kline start time")?,
                open: num(1)?,
                high: num(2)?,
                low: num(3)?,
                close: num(4)?,
                backfilled: true,
            })
        })
        .collect::<Result<Vec<Bar>, String>>()?;
    bars.sort_by_key(|b| b.open_time);
    Ok(bars)
}

#[derive(Deserialize)]
struct Instruments {
    list: Vec<Instrument>,
    #[serde(rename = "nextPageCursor", default)]
    next_page_cursor: String,
}

#[derive(Deserialize)]
struct Instrument {
    symbol: String,
    /// `Trading`, `PreLaunch`, `Delivering`, `Closed`.
    status: String,
}

/// `(symbol, status)` pairs as listed.
pub(crate) type Listed = Vec<(String, String)>;

/// `(symbol, status)` of one page, and the cursor of the next one (spot has no paging).
pub(crate) fn parse_instruments(result: Value) -> Result<(Listed, Option<String>), String> {
    let page: Instruments =
        serde_json::from_value(result).map_err(|e| format!("instruments-info: {e}"))?;
    let next = (!page.next_page_cursor.is_empty()).then_some(page.next_page_cursor);
    Ok((
        page.list
            .into_iter()
            .map(|i| (i.symbol, i.status))
            .collect(),
        next,
    ))
}

/// The status meaning "trades now".
pub(crate) const TRADING: &str = "Trading";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_public_trade_push() {
        let frame = json!({"topic": "publicTrade.BTCUSDT", "type": "snapshot",
            "ts": 1672304486868u64, "data": [{"T": 1672304486865u64, "s": "BTCUSDT", "S": "Buy",
            "v": "0.001", "p": "16578.50", "L": "PlusTick",
            "i": "20f43950-d8dd-5b31-9112-a178eb6023af", "BT": false, "seq": 1783284617}]});
        let Incoming::Ticks(ticks) = parse(Venue::BybitLinear, frame).unwrap() else {
            panic!("no ticks");
        };
        assert_eq!(ticks[0].price, 16578.5);
        assert_eq!(
            ticks[0].trade_id,
            TradeId::Opaque {
                id: "20f43950-d8dd-5b31-9112-a178eb6023af".into(),
                seq: Some(1783284617)
            }
        );
    }

    #[test]
    fn reads_the_documented_answers() {
        let spot_pong = json!({"success": true, "ret_msg": "pong",
            "conn_id": "0970e817-426e-429a-a679-ff7f55e0b16a", "op": "ping"});
        assert_eq!(parse(Venue::BybitSpot, spot_pong).unwrap(), Incoming::Pong);
        let sub = json!({"success": true, "ret_msg": "", "conn_id": "3cd84cb1", "req_id": "",
            "op": "subscribe"});
        assert!(matches!(
            parse(Venue::BybitLinear, sub).unwrap(),
            Incoming::Ack { ok: true, .. }
        ));
        assert!(parse(Venue::BybitSpot, json!({"hello": 1})).is_err());
    }

    #[test]
    fn reads_the_documented_klines_newest_first() {
        let result = json!({"symbol": "BTCUSD", "category": "inverse", "list": [
            ["1670608800000", "17071", "17073", "17027", "17055.5", "268611", "15.74462667"],
            ["1670605200000", "17071.5", "17071.5", "17061", "17071", "4177", "0.24469757"]]});
        let s = Symbol::from_pair("BTC/USD").unwrap();
        let bars = parse_klines(Venue::BybitLinear, &s, Interval::Minute1, &result).unwrap();
        assert!(bars[0].open_time < bars[1].open_time);
        assert_eq!(bars[1].high, 17073.0);
    }
}
