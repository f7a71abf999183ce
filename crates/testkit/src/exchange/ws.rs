//! The fake's WebSocket side, speaking each venue's documented public-stream protocol:
//! Binance combined streams (`{"stream", "data"}` frames; `SUBSCRIBE`, `UNSUBSCRIBE`,
//! `LIST_SUBSCRIPTIONS` answered `{"result", "id"}`, bad requests `{"code", "msg"}`; pings are
//! WebSocket frames sent by the server) and Bybit v5 public streams (`op` subscribe,
//! unsubscribe and ping answered with `success`/`ret_msg` as each category does).

use std::sync::{Arc, Mutex};

use axum::{
    Router,
    body::Bytes,
    extract::{
        State as AxState,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Conn, ConnectionInfo, FakeVenue, Out, RecordedTrade, State};

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn routes(state: Shared) -> Router {
    let mut router = Router::new();
    for venue in FakeVenue::ALL {
        router = router.route(
            venue.ws_path(),
            get(move |st: AxState<Shared>, ws: WebSocketUpgrade| upgrade(st, ws, venue)),
        );
    }
    router.with_state(state)
}

async fn upgrade(
    AxState(state): AxState<Shared>,
    ws: WebSocketUpgrade,
    venue: FakeVenue,
) -> Response {
    {
        let mut s = lock(&state);
        let v = s.venue(venue);
        if v.refusing {
            v.refused += 1;
            return (StatusCode::SERVICE_UNAVAILABLE, "refusing connections").into_response();
        }
    }
    ws.on_upgrade(move |socket| serve(state, socket, venue))
}

async fn serve(state: Shared, mut socket: WebSocket, venue: FakeVenue) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let id = {
        let mut s = lock(&state);
        s.next_conn += 1;
        let id = s.next_conn;
        s.conns.insert(
            id,
            Conn {
                info: ConnectionInfo {
                    id,
                    venue,
                    open: true,
                    requests: Vec::new(),
                    streams: Default::default(),
                },
                tx,
            },
        );
        id
    };
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Some(answer) = receive(&state, id, venue, text.as_str())
                        && socket.send(Message::Text(answer.into())).await.is_err()
                    {
                        break;
                    }
                }
                Some(Ok(Message::Pong(payload))) => {
                    lock(&state).venue(venue).pongs.push(payload.to_vec());
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            out = rx.recv() => match out {
                Some(Out::Text(text)) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Ping(payload)) => {
                    if socket.send(Message::Ping(Bytes::from(payload))).await.is_err() {
                        break;
                    }
                }
                Some(Out::Drop) | None => break,
            },
        }
    }
    if let Some(conn) = lock(&state).conns.get_mut(&id) {
        conn.info.open = false;
    }
    // Dropping the socket here ends the TCP connection without a close frame.
}

/// Handles one client frame; returns the answer to send, if any.
fn receive(state: &Shared, id: u64, venue: FakeVenue, text: &str) -> Option<String> {
    let Ok(request) = serde_json::from_str::<Value>(text) else {
        return Some(if venue.is_binance() {
            json!({"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}).to_string()
        } else {
            json!({"success": false, "ret_msg": "error:invalid json", "op": ""}).to_string()
        });
    };
    let mut s = lock(state);
    if !venue.is_binance() && request.get("op").and_then(Value::as_str) == Some("ping") {
        let v = s.venue(venue);
        v.client_pings += 1;
        let answer = v.answer_pings;
        if let Some(conn) = s.conns.get_mut(&id) {
            conn.info.requests.push(request.clone());
        }
        return answer.then(|| bybit_answer(venue, id, &request, "ping", "pong"));
    }
    let conn = s.conns.get_mut(&id)?;
    conn.info.requests.push(request.clone());
    let streams = &mut conn.info.streams;
    Some(if venue.is_binance() {
        binance_request(streams, &request)
    } else {
        bybit_request(venue, id, streams, &request)
    })
}

/// "Live Subscribing/Unsubscribing to streams".
fn binance_request(streams: &mut std::collections::BTreeSet<String>, request: &Value) -> String {
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let params: Vec<String> = request
        .get("params")
        .and_then(Value::as_array)
        .map(|p| {
            p.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    match request.get("method").and_then(Value::as_str) {
        Some("SUBSCRIBE") => {
            streams.extend(params);
            json!({"result": null, "id": id})
        }
        Some("UNSUBSCRIBE") => {
            for p in &params {
                streams.remove(p);
            }
            json!({"result": null, "id": id})
        }
        Some("LIST_SUBSCRIPTIONS") => json!({"result": streams.iter().collect::<Vec<_>>(), "id": id}),
        Some(other) => json!({"code": 2, "msg": format!(
            "Invalid request: unknown variant `{other}`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY` at line 1 column 28"), "id": id}),
        None => json!({"code": 2, "msg": "Invalid request: missing field `method` at line 1 column 73", "id": id}),
    }
    .to_string()
}

/// "Connect": subscribe / unsubscribe.
fn bybit_request(
    venue: FakeVenue,
    id: u64,
    streams: &mut std::collections::BTreeSet<String>,
    request: &Value,
) -> String {
    let args: Vec<String> = request
        .get("args")
        .and_then(Value::as_array)
        .map(|p| {
            p.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    match request.get("op").and_then(Value::as_str) {
        Some("subscribe") => {
            streams.extend(args);
            let ret_msg = if venue == FakeVenue::BybitSpot {
                "subscribe"
            } else {
                ""
            };
            bybit_answer(venue, id, request, "subscribe", ret_msg)
        }
        Some("unsubscribe") => {
            for a in &args {
                streams.remove(a);
            }
            let ret_msg = if venue == FakeVenue::BybitSpot {
                "unsubscribe"
            } else {
                ""
            };
            bybit_answer(venue, id, request, "unsubscribe", ret_msg)
        }
        other => json!({"success": false, "ret_msg": format!("error:unknown op {other:?}"),
            "conn_id": conn_id(id), "op": other})
        .to_string(),
    }
}

/// An operation's answer: spot omits `req_id` from pongs, linear always carries it.
fn bybit_answer(venue: FakeVenue, id: u64, request: &Value, op: &str, ret_msg: &str) -> String {
    let req_id = request.get("req_id").and_then(Value::as_str).unwrap_or("");
    let mut answer = json!({"success": true, "ret_msg": ret_msg, "conn_id": conn_id(id), "op": op});
    if venue == FakeVenue::BybitLinear || op != "ping" {
        answer["req_id"] = json!(req_id);
    }
    answer.to_string()
}

fn conn_id(id: u64) -> String {
    format!("fake-{id:08x}")
}

/// A trade as the venue pushes it: Binance spot "Trade Streams" / futures "Aggregate Trade
/// Streams" payloads wrapped as combined streams; Bybit "Trade" pushes.
pub(super) fn trade_frame(venue: FakeVenue, symbol: &str, t: &RecordedTrade) -> String {
    let stream = venue.trade_stream(symbol);
    match venue {
        FakeVenue::BinanceSpot => json!({"stream": stream, "data": {
            "e": "trade", "E": t.time_ms + 2, "s": symbol, "t": t.id, "p": t.price, "q": t.qty,
            "T": t.time_ms, "m": !t.taker_buys, "M": true }}),
        FakeVenue::BinanceFutures => json!({"stream": stream, "data": {
            "e": "aggTrade", "E": t.time_ms + 3, "s": symbol, "a": t.id, "p": t.price,
            "q": t.qty, "f": t.id * 3, "l": t.id * 3 + 2, "T": t.time_ms, "m": !t.taker_buys }}),
        FakeVenue::BybitSpot | FakeVenue::BybitLinear => {
            let mut trade = json!({"T": t.time_ms, "s": symbol,
                "S": if t.taker_buys { "Buy" } else { "Sell" }, "v": t.qty, "p": t.price,
                "i": t.id.to_string(), "BT": false, "RPI": false, "seq": t.id * 7 + 1_000_000});
            if venue == FakeVenue::BybitLinear {
                // Linear trade ids are UUIDs and pushes carry the tick direction.
                trade["i"] = json!(format!("{:08x}-d8dd-5b31-9112-{:012x}", t.id >> 16, t.id));
                trade["L"] = json!("PlusTick");
            }
            json!({"topic": stream, "type": "snapshot", "ts": t.time_ms + 4, "data": [trade]})
        }
    }
    .to_string()
}
