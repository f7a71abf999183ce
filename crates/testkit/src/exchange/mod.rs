//! A fake crypto exchange for market-data tests: Binance (spot and USDⓈ-M futures) and Bybit v5
//! (spot and linear) public WebSocket streams and the REST endpoints a price feed reads
//! (instrument lists, klines), on one axum server at 127.0.0.1:0. It replays recorded trade
//! sequences ([`Recording`], `data/ticks/*.csv`) as a test steps them forward, and can drop
//! connections, refuse new ones, leave a range of trade ids off the stream (while REST klines
//! still include them), send any raw frame, ping, and report what each connection subscribed
//! to and every klines request.
//!
//! Live mode ([`FakeExchange::go_live`], `live.rs`) instead generates trades continuously, a
//! seeded random walk per symbol ([`Walk`]), for devstack's simulated market: each trade joins
//! its tape as it happens, so klines agree with what was streamed.
//!
//! Layering, one way only: `tape.rs` holds recordings and computes klines; `live.rs` generates
//! trades into the tapes; `ws.rs` and `rest.rs` serve the state kept here behind
//! [`FakeExchange`].
//!
//! Routes (each venue under its own prefix, so one server is all four venues):
//! - Binance spot: WS `/binance-spot/stream`; REST base `/binance-spot` (`/api/v3/...`).
//! - Binance futures: WS `/binance-futures/market/stream`; REST base `/binance-futures`
//!   (`/fapi/v1/...`).
//! - Bybit: WS `/bybit/v5/public/spot` and `/bybit/v5/public/linear`; REST base `/bybit`
//!   (`/v5/market/...`).

mod firehose;
mod live;
mod rest;
mod tape;
mod ws;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::mpsc;

pub use live::{Live, LiveMarket, LiveSymbol, Walk};
pub use tape::{FakeBar, RecordedTrade, Recording, klines, parse_csv};

/// The wall clock in Unix milliseconds, as the exchanges stamp things.
pub(crate) fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The venues the fake serves (the same four as `g3_market::Venue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FakeVenue {
    BinanceSpot,
    BinanceFutures,
    BybitSpot,
    BybitLinear,
}

impl FakeVenue {
    pub const ALL: [FakeVenue; 4] = [
        FakeVenue::BinanceSpot,
        FakeVenue::BinanceFutures,
        FakeVenue::BybitSpot,
        FakeVenue::BybitLinear,
    ];

    pub fn is_binance(&self) -> bool {
        matches!(self, FakeVenue::BinanceSpot | FakeVenue::BinanceFutures)
    }

    /// The stream (Binance) or topic (Bybit) carrying a symbol's trades.
    pub fn trade_stream(&self, symbol: &str) -> String {
        match self {
            FakeVenue::BinanceSpot => format!("{}@trade", symbol.to_ascii_lowercase()),
            FakeVenue::BinanceFutures => format!("{}@aggTrade", symbol.to_ascii_lowercase()),
            FakeVenue::BybitSpot | FakeVenue::BybitLinear => format!("publicTrade.{symbol}"),
        }
    }

    fn ws_path(&self) -> &'static str {
        match self {
            FakeVenue::BinanceSpot => "/binance-spot/stream",
            FakeVenue::BinanceFutures => "/binance-futures/market/stream",
            FakeVenue::BybitSpot => "/bybit/v5/public/spot",
            FakeVenue::BybitLinear => "/bybit/v5/public/linear",
        }
    }

    fn rest_prefix(&self) -> &'static str {
        match self {
            FakeVenue::BinanceSpot => "/binance-spot",
            FakeVenue::BinanceFutures => "/binance-futures",
            FakeVenue::BybitSpot | FakeVenue::BybitLinear => "/bybit",
        }
    }
}

/// What a connection did, as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionInfo {
    pub id: u64,
    pub venue: FakeVenue,
    /// False once it ended (either side).
    pub open: bool,
    /// Every JSON request it sent (subscribe, unsubscribe, ping), in order.
    pub requests: Vec<Value>,
    /// What it is subscribed to now (stream names or topics).
    pub streams: BTreeSet<String>,
}

/// A klines request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KlineRequest {
    pub symbol: String,
    pub interval: String,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub limit: Option<u32>,
}

/// A played-forward recording: trades before `next` have happened.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tape {
    pub(crate) trades: Vec<RecordedTrade>,
    pub(crate) next: usize,
}

impl Tape {
    pub(crate) fn happened(&self) -> &[RecordedTrade] {
        &self.trades[..self.next]
    }
}

pub(crate) enum Out {
    Text(String),
    Ping(Vec<u8>),
    /// End the connection abruptly: no close frame.
    Drop,
}

pub(crate) struct Conn {
    pub(crate) info: ConnectionInfo,
    pub(crate) tx: mpsc::UnboundedSender<Out>,
}

#[derive(Default)]
pub(crate) struct VenueState {
    /// symbol → status, in the venue's own words.
    pub(crate) listings: BTreeMap<String, String>,
    pub(crate) tapes: HashMap<String, Tape>,
    pub(crate) refusing: bool,
    pub(crate) refused: u64,
    /// Whether Bybit `{"op":"ping"}` gets its pong.
    pub(crate) answer_pings: bool,
    pub(crate) client_pings: u64,
    pub(crate) pongs: Vec<Vec<u8>>,
    pub(crate) kline_requests: Vec<KlineRequest>,
    pub(crate) info_requests: u64,
    /// While true, instrument-list requests are answered 503 (still counted).
    pub(crate) info_failing: bool,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) venues: HashMap<FakeVenue, VenueState>,
    pub(crate) conns: BTreeMap<u64, Conn>,
    pub(crate) next_conn: u64,
}

impl State {
    pub(crate) fn venue(&mut self, venue: FakeVenue) -> &mut VenueState {
        self.venues.entry(venue).or_default()
    }

    /// Sends a trade to every open connection of `venue` subscribed to `symbol`'s trades.
    fn stream(&self, venue: FakeVenue, symbol: &str, trade: &RecordedTrade) {
        let stream = venue.trade_stream(symbol);
        let frame = ws::trade_frame(venue, symbol, trade);
        for conn in self.conns.values() {
            let info = &conn.info;
            if info.venue == venue && info.open && info.streams.contains(&stream) {
                let _ = conn.tx.send(Out::Text(frame.clone()));
            }
        }
    }
}

/// The fake itself: cheap to clone, every clone sees the same state.
#[derive(Clone)]
pub struct FakeExchange {
    state: Arc<Mutex<State>>,
    pub addr: SocketAddr,
    server: tokio::task::AbortHandle,
}

impl FakeExchange {
    /// Starts on 127.0.0.1:0. Every venue lists BTCUSDT, ETHUSDT and SOLUSDT as trading;
    /// Binance spot also lists LUNAUSDT in `BREAK`, Binance futures a dated BTCUSDT_260327,
    /// Bybit linear NEWUSDT in `PreLaunch`. Pings are answered.
    pub async fn spawn() -> FakeExchange {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake exchange");
        FakeExchange::spawn_on(listener)
    }

    /// [`FakeExchange::spawn`] on a listener the caller bound.
    pub fn spawn_on(listener: tokio::net::TcpListener) -> FakeExchange {
        let mut state = State::default();
        for venue in FakeVenue::ALL {
            let trading = if venue.is_binance() {
                "TRADING"
            } else {
                "Trading"
            };
            let v = state.venue(venue);
            v.answer_pings = true;
            for symbol in ["BTCUSDT", "ETHUSDT", "SOLUSDT"] {
                v.listings.insert(symbol.into(), trading.into());
            }
        }
        state
            .venue(FakeVenue::BinanceSpot)
            .listings
            .insert("LUNAUSDT".into(), "BREAK".into());
        state
            .venue(FakeVenue::BinanceFutures)
            .listings
            .insert("BTCUSDT_260327".into(), "TRADING".into());
        state
            .venue(FakeVenue::BybitLinear)
            .listings
            .insert("NEWUSDT".into(), "PreLaunch".into());
        let state = Arc::new(Mutex::new(state));
        let app = ws::routes(state.clone()).merge(rest::routes(state.clone()));
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        })
        .abort_handle();
        FakeExchange {
            state,
            addr,
            server,
        }
    }

    /// Stops serving: no new connections, and every open one ends abruptly.
    pub fn close(&self) {
        self.server.abort();
        for venue in FakeVenue::ALL {
            self.drop_connections(venue);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The WebSocket URL of a venue (`ws://127.0.0.1:P/...`).
    pub fn ws_url(&self, venue: FakeVenue) -> String {
        format!("ws://{}{}", self.addr, venue.ws_path())
    }

    /// The REST base of a venue, to which documented paths are appended.
    pub fn rest_url(&self, venue: FakeVenue) -> String {
        format!("http://{}{}", self.addr, venue.rest_prefix())
    }

    /// Lists (or relists) a symbol with a status in the venue's words (`TRADING`, `Trading`, ...).
    pub fn list(&self, venue: FakeVenue, symbol: &str, status: &str) {
        self.lock()
            .venue(venue)
            .listings
            .insert(symbol.into(), status.into());
    }

    pub fn delist(&self, venue: FakeVenue, symbol: &str) {
        self.lock().venue(venue).listings.remove(symbol);
    }

    /// Loads a recording as `symbol`'s tape on `venue`, from its start (a recording has no
    /// symbol of its own: one can play on any symbol or venue).
    pub fn load(&self, venue: FakeVenue, symbol: &str, recording: Recording) {
        self.load_trades(venue, symbol, recording.trades());
    }

    pub fn load_trades(&self, venue: FakeVenue, symbol: &str, trades: Vec<RecordedTrade>) {
        self.lock()
            .venue(venue)
            .tapes
            .insert(symbol.into(), Tape { trades, next: 0 });
    }

    /// Plays the next `n` trades of `symbol`'s tape: each one marked `on_stream` goes to every
    /// open connection subscribed to its trade stream. Returns the trades that happened.
    pub fn publish(&self, venue: FakeVenue, symbol: &str, n: usize) -> Vec<RecordedTrade> {
        self.advance(venue, symbol, n, true)
    }

    /// Lets the next `n` trades happen without sending any (a gap in trade ids; REST klines
    /// include them).
    pub fn skip(&self, venue: FakeVenue, symbol: &str, n: usize) -> Vec<RecordedTrade> {
        self.advance(venue, symbol, n, false)
    }

    /// Trades of `symbol`'s tape not played yet.
    pub fn remaining(&self, venue: FakeVenue, symbol: &str) -> usize {
        self.lock()
            .venue(venue)
            .tapes
            .get(symbol)
            .map_or(0, |t| t.trades.len() - t.next)
    }

    fn advance(&self, venue: FakeVenue, symbol: &str, n: usize, send: bool) -> Vec<RecordedTrade> {
        let mut s = self.lock();
        let Some(tape) = s.venue(venue).tapes.get_mut(symbol) else {
            panic!("no tape loaded for {symbol} on {venue:?}");
        };
        let end = (tape.next + n).min(tape.trades.len());
        let played = tape.trades[tape.next..end].to_vec();
        tape.next = end;
        if send {
            for trade in played.iter().filter(|t| t.on_stream) {
                s.stream(venue, symbol, trade);
            }
        }
        played
    }

    /// Live mode: `trade` happens now as the next trade of `symbol`'s tape (its id follows
    /// the tape's last, from 1,000,000), goes to every subscriber, and trades before
    /// `forget_before_ms` are forgotten.
    pub(crate) fn trade_now(
        &self,
        venue: FakeVenue,
        symbol: &str,
        mut trade: RecordedTrade,
        forget_before_ms: i64,
    ) {
        let mut s = self.lock();
        let tape = s.venue(venue).tapes.entry(symbol.to_owned()).or_default();
        trade.id = tape.trades.last().map_or(1_000_000, |t| t.id + 1);
        tape.trades.push(trade.clone());
        tape.next = tape.trades.len();
        let old = tape
            .trades
            .iter()
            .take_while(|t| t.time_ms < forget_before_ms)
            .count();
        if old > 0 {
            tape.trades.drain(..old);
            tape.next -= old;
        }
        if trade.on_stream {
            s.stream(venue, symbol, &trade);
        }
    }

    /// The trades of `symbol`'s tape that have happened, oldest first.
    pub fn trades(&self, venue: FakeVenue, symbol: &str) -> Vec<RecordedTrade> {
        self.lock()
            .venue(venue)
            .tapes
            .get(symbol)
            .map(|t| t.happened().to_vec())
            .unwrap_or_default()
    }

    /// The price of `symbol`'s last trade that happened.
    pub fn last_price(&self, venue: FakeVenue, symbol: &str) -> Option<f64> {
        self.lock()
            .venue(venue)
            .tapes
            .get(symbol)
            .and_then(|t| t.happened().last().map(RecordedTrade::price_f64))
            .filter(|p| p.is_finite())
    }

    /// Sends a text frame as is to every open connection of the venue (malformed input).
    pub fn send_raw(&self, venue: FakeVenue, text: &str) -> usize {
        self.each_open(venue, |tx| tx.send(Out::Text(text.to_owned())).is_ok())
    }

    /// Sends a WebSocket ping frame (as Binance's servers do) to every open connection.
    pub fn ping(&self, venue: FakeVenue, payload: &[u8]) -> usize {
        self.each_open(venue, |tx| tx.send(Out::Ping(payload.to_vec())).is_ok())
    }

    /// Ends every open connection of the venue abruptly (no close frame).
    pub fn drop_connections(&self, venue: FakeVenue) -> usize {
        self.each_open(venue, |tx| tx.send(Out::Drop).is_ok())
    }

    /// While true, WebSocket handshakes to the venue are answered 503.
    pub fn refuse_connections(&self, venue: FakeVenue, refuse: bool) {
        self.lock().venue(venue).refusing = refuse;
    }

    /// While true, the venue's instrument list is answered 503 (the requests still count in
    /// [`FakeExchange::info_requests`]).
    pub fn fail_instrument_lists(&self, venue: FakeVenue, fail: bool) {
        self.lock().venue(venue).info_failing = fail;
    }

    /// Handshakes refused so far.
    pub fn refused(&self, venue: FakeVenue) -> u64 {
        self.lock().venue(venue).refused
    }

    /// Whether Bybit `{"op":"ping"}` requests get their pong.
    pub fn answer_pings(&self, venue: FakeVenue, answer: bool) {
        self.lock().venue(venue).answer_pings = answer;
    }

    /// Bybit `{"op":"ping"}` requests received.
    pub fn client_pings(&self, venue: FakeVenue) -> u64 {
        self.lock().venue(venue).client_pings
    }

    /// Payloads of the pong frames clients sent back.
    pub fn pongs(&self, venue: FakeVenue) -> Vec<Vec<u8>> {
        self.lock().venue(venue).pongs.clone()
    }

    /// Every connection the venue accepted, oldest first.
    pub fn connections(&self, venue: FakeVenue) -> Vec<ConnectionInfo> {
        self.lock()
            .conns
            .values()
            .filter(|c| c.info.venue == venue)
            .map(|c| c.info.clone())
            .collect()
    }

    /// Whether an open connection of the venue is subscribed to `symbol`'s trades.
    pub fn subscribed(&self, venue: FakeVenue, symbol: &str) -> bool {
        let stream = venue.trade_stream(symbol);
        self.connections(venue)
            .iter()
            .any(|c| c.open && c.streams.contains(&stream))
    }

    pub fn kline_requests(&self, venue: FakeVenue) -> Vec<KlineRequest> {
        self.lock().venue(venue).kline_requests.clone()
    }

    /// Instrument-list requests (`exchangeInfo`, `instruments-info`) received.
    pub fn info_requests(&self, venue: FakeVenue) -> u64 {
        self.lock().venue(venue).info_requests
    }

    fn each_open(
        &self,
        venue: FakeVenue,
        send: impl Fn(&mpsc::UnboundedSender<Out>) -> bool,
    ) -> usize {
        self.lock()
            .conns
            .values()
            .filter(|c| c.info.venue == venue && c.info.open)
            .filter(|c| send(&c.tx))
            .count()
    }
}
