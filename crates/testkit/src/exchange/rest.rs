//! The fake's REST side: instrument lists (Binance `GET /api/v3/exchangeInfo`,
//! `GET /fapi/v1/exchangeInfo`; Bybit `GET /v5/market/instruments-info`) and klines (Binance
//! `GET /api/v3/klines`, `GET /fapi/v1/klines`; Bybit `GET /v5/market/kline`) computed from the
//! trades of each tape that have happened, in the documented shapes and errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::{
    Json, Router,
    extract::{Query, State as AxState},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};

use super::{FakeVenue, KlineRequest, State, now_ms, tape};

type Shared = Arc<Mutex<State>>;
type Params = Query<HashMap<String, String>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn routes(state: Shared) -> Router {
    Router::new()
        .route(
            "/binance-spot/api/v3/exchangeInfo",
            get(|st: AxState<Shared>| binance_info(st, FakeVenue::BinanceSpot)),
        )
        .route(
            "/binance-futures/fapi/v1/exchangeInfo",
            get(|st: AxState<Shared>| binance_info(st, FakeVenue::BinanceFutures)),
        )
        .route(
            "/binance-spot/api/v3/klines",
            get(|st: AxState<Shared>, q: Params| binance_klines(st, q, FakeVenue::BinanceSpot)),
        )
        .route(
            "/binance-futures/fapi/v1/klines",
            get(|st: AxState<Shared>, q: Params| binance_klines(st, q, FakeVenue::BinanceFutures)),
        )
        .route("/bybit/v5/market/instruments-info", get(bybit_instruments))
        .route("/bybit/v5/market/kline", get(bybit_klines))
        .with_state(state)
}

/// A venue that is down, as a load balancer in front of it answers.
fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "service unavailable").into_response()
}

fn binance_error(code: i64, msg: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"code": code, "msg": msg})),
    )
        .into_response()
}

async fn binance_info(AxState(state): AxState<Shared>, venue: FakeVenue) -> Response {
    let mut s = lock(&state);
    let v = s.venue(venue);
    v.info_requests += 1;
    if v.info_failing {
        return unavailable();
    }
    let symbols: Vec<Value> = v
        .listings
        .iter()
        .map(|(symbol, status)| {
            let (base, quote) = split_symbol(symbol);
            let mut info = json!({"symbol": symbol, "status": status, "baseAsset": base,
                "quoteAsset": quote, "filters": []});
            if venue == FakeVenue::BinanceFutures {
                info["pair"] = json!(symbol.split('_').next().unwrap_or(symbol));
                info["contractType"] = json!(if symbol.contains('_') {
                    "CURRENT_QUARTER"
                } else {
                    "PERPETUAL"
                });
                info["marginAsset"] = json!(quote);
            } else {
                info["permissionSets"] = json!([["SPOT"]]);
            }
            info
        })
        .collect();
    Json(
        json!({"timezone": "UTC", "serverTime": now_ms(), "rateLimits": [],
        "exchangeFilters": [], "symbols": symbols}),
    )
    .into_response()
}

async fn binance_klines(
    AxState(state): AxState<Shared>,
    Query(q): Params,
    venue: FakeVenue,
) -> Response {
    let int = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
    let symbol = q.get("symbol").cloned().unwrap_or_default();
    let interval = q.get("interval").cloned().unwrap_or_default();
    let mut s = lock(&state);
    let v = s.venue(venue);
    v.kline_requests.push(KlineRequest {
        symbol: symbol.clone(),
        interval: interval.clone(),
        start_ms: int("startTime"),
        end_ms: int("endTime"),
        limit: int("limit").and_then(|l| u32::try_from(l).ok()),
    });
    if !v.listings.contains_key(&symbol) {
        return binance_error(-1121, "Invalid symbol.");
    }
    let step = match (interval.as_str(), venue) {
        ("1s", FakeVenue::BinanceSpot) => 1_000,
        ("1m", _) => 60_000,
        ("3m", _) => 180_000,
        ("5m", _) => 300_000,
        ("15m", _) => 900_000,
        ("1h", _) => 3_600_000,
        _ => return binance_error(-1120, "Invalid interval."),
    };
    let max = if venue == FakeVenue::BinanceFutures {
        1500
    } else {
        1000
    };
    let limit = int("limit").unwrap_or(500).clamp(1, max) as usize;
    let trades = v.tapes.get(&symbol).map(|t| t.happened()).unwrap_or(&[]);
    let (start, end) = window(int("startTime"), int("endTime"), step, limit);
    let rows: Vec<Value> = tape::klines(trades, step, start, end, limit)
        .into_iter()
        .map(|b| {
            json!([
                b.open_ms,
                b.open,
                b.high,
                b.low,
                b.close,
                decimal(b.volume),
                b.close_ms,
                decimal(b.quote_volume),
                b.trades,
                "0",
                "0",
                "0"
            ])
        })
        .collect();
    Json(Value::Array(rows)).into_response()
}

fn bybit_envelope(result: Value) -> Response {
    Json(
        json!({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now_ms()}),
    )
    .into_response()
}

fn bybit_error(code: i64, msg: &str) -> Response {
    Json(json!({"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": now_ms()}))
        .into_response()
}

fn bybit_venue(q: &HashMap<String, String>) -> Option<FakeVenue> {
    match q.get("category").map(String::as_str) {
        Some("spot") => Some(FakeVenue::BybitSpot),
        // "When category is not passed, use linear by default" (klines).
        Some("linear") | None => Some(FakeVenue::BybitLinear),
        _ => None,
    }
}

/// Spot has no paging; linear pages by `limit` with `cursor` (here the next index).
async fn bybit_instruments(AxState(state): AxState<Shared>, Query(q): Params) -> Response {
    let Some(venue) = bybit_venue(&q) else {
        return bybit_error(10001, "params error: category invalid");
    };
    let mut s = lock(&state);
    let v = s.venue(venue);
    v.info_requests += 1;
    if v.info_failing {
        return unavailable();
    }
    let all: Vec<(&String, &String)> = v.listings.iter().collect();
    let (from, limit) = if venue == FakeVenue::BybitSpot {
        (0, all.len())
    } else {
        let from = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
        let limit = q
            .get("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(500usize);
        (from, limit.clamp(1, 1000))
    };
    let page: Vec<Value> = all
        .iter()
        .skip(from)
        .take(limit)
        .map(|(symbol, status)| {
            let (base, quote) = split_symbol(symbol);
            json!({"symbol": symbol, "status": status, "baseCoin": base, "quoteCoin": quote})
        })
        .collect();
    let next = if from + limit < all.len() {
        (from + limit).to_string()
    } else {
        String::new()
    };
    let category = if venue == FakeVenue::BybitSpot {
        "spot"
    } else {
        "linear"
    };
    bybit_envelope(json!({"category": category, "list": page, "nextPageCursor": next}))
}

async fn bybit_klines(AxState(state): AxState<Shared>, Query(q): Params) -> Response {
    let Some(venue) = bybit_venue(&q) else {
        return bybit_error(10001, "params error: category invalid");
    };
    let int = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
    let symbol = q.get("symbol").cloned().unwrap_or_default();
    let interval = q.get("interval").cloned().unwrap_or_default();
    let mut s = lock(&state);
    let v = s.venue(venue);
    v.kline_requests.push(KlineRequest {
        symbol: symbol.clone(),
        interval: interval.clone(),
        start_ms: int("start"),
        end_ms: int("end"),
        limit: int("limit").and_then(|l| u32::try_from(l).ok()),
    });
    if !v.listings.contains_key(&symbol) {
        return bybit_error(10001, "Not supported symbols");
    }
    let step = match interval.as_str() {
        "1" => 60_000,
        "3" => 180_000,
        "5" => 300_000,
        "15" => 900_000,
        "60" => 3_600_000,
        _ => return bybit_error(10001, "Invalid period!"),
    };
    let limit = int("limit").unwrap_or(200).clamp(1, 1000) as usize;
    let trades = v.tapes.get(&symbol).map(|t| t.happened()).unwrap_or(&[]);
    let (start, end) = window(int("start"), int("end"), step, limit);
    let mut rows: Vec<Value> = tape::klines(trades, step, start, end, limit)
        .into_iter()
        .map(|b| {
            json!([
                b.open_ms.to_string(),
                b.open,
                b.high,
                b.low,
                b.close,
                decimal(b.volume),
                decimal(b.quote_volume)
            ])
        })
        .collect();
    // "Sort in reverse by startTime".
    rows.reverse();
    let category = if venue == FakeVenue::BybitSpot {
        "spot"
    } else {
        "linear"
    };
    bybit_envelope(json!({"symbol": symbol, "category": category, "list": rows}))
}

/// `[start, end]` of open times: both given, or one side derived from the limit, or the most
/// recent `limit` bars.
fn window(start: Option<i64>, end: Option<i64>, step: i64, limit: usize) -> (i64, i64) {
    let span = step * limit as i64;
    match (start, end) {
        (Some(s), Some(e)) => (s, e),
        (Some(s), None) => (s, s + span),
        (None, Some(e)) => (e - span, e),
        (None, None) => (now_ms() - span, now_ms()),
    }
}

fn decimal(x: f64) -> String {
    format!("{x:.8}")
}

/// `BTCUSDT` → (`BTC`, `USDT`) by the quotes the fake lists against.
fn split_symbol(symbol: &str) -> (String, String) {
    let symbol = symbol.split('_').next().unwrap_or(symbol);
    for quote in ["USDT", "USDC", "BTC"] {
        if let Some(base) = symbol.strip_suffix(quote) {
            return (base.to_owned(), quote.to_owned());
        }
    }
    (symbol.to_owned(), String::new())
}
