//! Where prices come from: the four public markets we read ([`Venue`]), their documented
//! production endpoints ([`Endpoints`], overridable so tests reach a fake), and the bar
//! intervals their REST klines offer ([`Interval`]).

use std::fmt;
use std::time::Duration;

use url::Url;

/// A public market: an exchange and one of its product lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Venue {
    /// Binance spot.
    BinanceSpot,
    /// Binance USDⓈ-M futures (perpetuals are named like the spot pair, `BTCUSDT`).
    BinanceFutures,
    /// Bybit v5 spot (`category=spot`).
    BybitSpot,
    /// Bybit v5 USDT/USDC perpetuals and futures (`category=linear`).
    BybitLinear,
}

impl Venue {
    pub const ALL: [Venue; 4] = [
        Venue::BinanceSpot,
        Venue::BinanceFutures,
        Venue::BybitSpot,
        Venue::BybitLinear,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Venue::BinanceSpot => "binance_spot",
            Venue::BinanceFutures => "binance_futures",
            Venue::BybitSpot => "bybit_spot",
            Venue::BybitLinear => "bybit_linear",
        }
    }

    /// The inverse of [`Venue::as_str`].
    pub fn parse(s: &str) -> Option<Venue> {
        Venue::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub(crate) fn is_binance(&self) -> bool {
        matches!(self, Venue::BinanceSpot | Venue::BinanceFutures)
    }

    /// Bybit's `category` parameter.
    pub(crate) fn bybit_category(&self) -> &'static str {
        match self {
            Venue::BybitSpot => "spot",
            _ => "linear",
        }
    }

    /// Whether consecutive trades of a symbol carry consecutive ids, so a jump is a gap.
    /// Binance numbers `@trade` ids (spot) and `@aggTrade` ids (futures) per symbol; Bybit's
    /// `i` is a UUID on linear and its `seq` is a cross sequence shared with other events, so a
    /// Bybit gap is only known from the connection having been down.
    pub fn sequential_trade_ids(&self) -> bool {
        self.is_binance()
    }

    /// The finest interval of the venue's REST klines: only Binance spot serves `1s`.
    pub fn finest_interval(&self) -> Interval {
        match self {
            Venue::BinanceSpot => Interval::Second1,
            _ => Interval::Minute1,
        }
    }

    /// How often the client itself must ping. Binance's servers ping us (a WebSocket ping
    /// frame every 20 s on spot, every 3 min on futures) and the pong is automatic; Bybit
    /// recommends a `{"op":"ping"}` every 20 s ("Connect", How to Send the Heartbeat Packet).
    pub fn client_ping(&self) -> Option<Duration> {
        match self {
            Venue::BybitSpot | Venue::BybitLinear => Some(Duration::from_secs(20)),
            _ => None,
        }
    }

    /// How long a connection may stay silent (no data, ping or pong) before it is presumed
    /// dead: a few of the venue's heartbeat periods.
    pub fn idle_timeout(&self) -> Duration {
        match self {
            Venue::BinanceSpot => Duration::from_secs(70),
            Venue::BinanceFutures => Duration::from_secs(400),
            Venue::BybitSpot | Venue::BybitLinear => Duration::from_secs(70),
        }
    }

    /// Most stream names one subscribe request carries. Bybit spot takes at most 10 args per
    /// request ("Connect", Public channel - Args limits); Binance has no per-request limit but
    /// counts each request against 5 (spot) / 10 (futures) incoming messages a second.
    pub(crate) fn subscribe_chunk(&self) -> usize {
        match self {
            Venue::BybitSpot | Venue::BybitLinear => 10,
            _ => 100,
        }
    }

    /// Most klines one REST request returns (`limit` maximum in each venue's docs).
    pub(crate) fn kline_page(&self) -> u32 {
        match self {
            Venue::BinanceFutures => 1500,
            _ => 1000,
        }
    }
}

impl fmt::Display for Venue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a venue is reached: the WebSocket URL connected to as is, and the REST base to which
/// documented paths (`/api/v3/klines`, `/v5/market/kline`, ...) are appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub ws: Url,
    pub rest: Url,
}

impl Endpoints {
    /// The documented public production endpoints:
    /// - Binance spot: the market-data-only hosts `wss://data-stream.binance.vision` (combined
    ///   streams at `/stream`) and `https://data-api.binance.vision` (spot "WebSocket Streams",
    ///   General WSS information; "Public Rest API", General API Information).
    /// - Binance USDⓈ-M futures: `wss://fstream.binance.com/market/stream` (the routed
    ///   `/market` endpoint carries trade streams) and `https://fapi.binance.com`.
    /// - Bybit v5: `wss://stream.bybit.com/v5/public/spot` and `.../v5/public/linear`
    ///   ("Connect"), REST `https://api.bybit.com`.
    pub fn production(venue: Venue) -> Endpoints {
        let (ws, rest) = match venue {
            Venue::BinanceSpot => (
                "wss://data-stream.binance.vision/stream",
                "https://data-api.binance.vision",
            ),
            Venue::BinanceFutures => (
                "wss://fstream.binance.com/market/stream",
                "https://fapi.binance.com",
            ),
            Venue::BybitSpot => (
                "wss://stream.bybit.com/v5/public/spot",
                "https://api.bybit.com",
            ),
            Venue::BybitLinear => (
                "wss://stream.bybit.com/v5/public/linear",
                "https://api.bybit.com",
            ),
        };
        Endpoints {
            ws: Url::parse(ws).expect("static URL"),
            rest: Url::parse(rest).expect("static URL"),
        }
    }
}

/// A bar length offered by REST klines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Interval {
    Second1,
    Minute1,
}

impl Interval {
    pub fn millis(&self) -> i64 {
        match self {
            Interval::Second1 => 1_000,
            Interval::Minute1 => 60_000,
        }
    }

    /// Binance's `interval` value (case-sensitive: `1s`, `1m`).
    pub(crate) fn binance(&self) -> &'static str {
        match self {
            Interval::Second1 => "1s",
            Interval::Minute1 => "1m",
        }
    }

    /// Bybit's `interval` value: minutes as a number; Bybit has no seconds.
    pub(crate) fn bybit(&self) -> Option<&'static str> {
        match self {
            Interval::Second1 => None,
            Interval::Minute1 => Some("1"),
        }
    }
}
