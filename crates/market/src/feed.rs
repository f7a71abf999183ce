//! The price feed of one venue: a background task owns the WebSocket, keeps it subscribed to
//! the caller's set of symbols (changed at runtime with [`Feed::subscribe`] and
//! [`Feed::unsubscribe`]), answers heartbeats, reconnects with jittered exponential backoff,
//! resubscribes everything on each new connection, and backfills from REST klines every
//! interval the stream missed ([`crate::gaps`] decides which) before delivering the trade that
//! revealed it.
//!
//! Malformed frames are counted, logged and skipped; they never end the connection.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::SinkExt;
use futures_util::stream::{SplitSink, SplitStream, StreamExt};
use time::OffsetDateTime;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval as Ticker};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{Instrument as _, debug, info, info_span, warn};

use crate::gaps::{Gaps, Verdict};
use crate::model::{Gap, GapCause, MarketEvent, Tick};
use crate::rest::Rest;
use crate::symbol::Symbol;
use crate::venue::{Endpoints, Venue};
use crate::wire::{self, Incoming, Op};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Sink = SplitSink<Socket, Message>;
type Source = SplitStream<Socket>;

/// Attempts at reading klines for one gap before reporting it unfilled.
const BACKFILL_ATTEMPTS: u32 = 3;

/// Delay before reconnect attempt `n` (from 0): `first · 2ⁿ`, at most `max`, each drawn
/// between half and all of it so that many feeds do not reconnect in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    fn delay(&self, attempt: u32) -> Duration {
        let full = self
            .first
            .saturating_mul(2u32.saturating_pow(attempt.min(16)))
            .min(self.max);
        full.mul_f64(0.5 + rand::random::<f64>() / 2.0)
    }
}

/// How a feed connects and behaves.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub venue: Venue,
    pub endpoints: Endpoints,
    pub backoff: Backoff,
    /// Our own heartbeat period (Bybit's `{"op":"ping"}`); `None` where the server pings.
    pub client_ping: Option<Duration>,
    /// A connection silent for this long is presumed dead and replaced.
    pub idle_timeout: Duration,
    /// Bound on the TCP, TLS and WebSocket handshakes together.
    pub connect_timeout: Duration,
    /// Events buffered for a slow receiver before the socket reader waits.
    pub buffer: usize,
}

impl FeedConfig {
    /// The venue's production endpoints and heartbeat; backoff from 1 s to 30 s.
    pub fn new(venue: Venue) -> FeedConfig {
        FeedConfig::with_endpoints(venue, Endpoints::production(venue))
    }

    pub fn with_endpoints(venue: Venue, endpoints: Endpoints) -> FeedConfig {
        FeedConfig {
            venue,
            endpoints,
            backoff: Backoff {
                first: Duration::from_secs(1),
                max: Duration::from_secs(30),
            },
            client_ping: venue.client_ping(),
            idle_timeout: venue.idle_timeout(),
            connect_timeout: Duration::from_secs(10),
            buffer: 4096,
        }
    }
}

/// Counters since the feed started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedStats {
    /// Connections established (and subscribed).
    pub connections: u64,
    /// Connect attempts that failed (refused, timed out, handshake rejected).
    pub failed_connects: u64,
    /// Established connections that ended.
    pub disconnects: u64,
    /// Frames skipped because they could not be read.
    pub malformed: u64,
    /// Subscribe/unsubscribe requests the venue refused.
    pub refused_requests: u64,
    /// Our pings the venue answered.
    pub pongs: u64,
    /// Trades dropped as already delivered.
    pub duplicates: u64,
    pub gaps: u64,
    pub backfilled_bars: u64,
}

#[derive(Debug, Default)]
struct Shared {
    subscribed: Mutex<BTreeSet<Symbol>>,
    stats: Mutex<FeedStats>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
enum Nudge {
    /// The subscribed set changed.
    Sync,
    Stop,
}

/// A running feed. Dropping it stops the task; so does dropping the event receiver (noticed
/// at the next event or reconnect).
#[derive(Debug)]
pub struct Feed {
    venue: Venue,
    shared: Arc<Shared>,
    nudge: mpsc::UnboundedSender<Nudge>,
    task: JoinHandle<()>,
}

impl Feed {
    /// Starts the feed (its REST client at `config.endpoints.rest`); events arrive on the
    /// returned receiver. It connects at once, with whatever is subscribed by then.
    pub fn spawn(config: FeedConfig) -> (Feed, mpsc::Receiver<MarketEvent>) {
        let rest = Rest::new(config.venue, config.endpoints.rest.clone());
        Feed::spawn_with(config, rest)
    }

    pub fn spawn_with(config: FeedConfig, rest: Rest) -> (Feed, mpsc::Receiver<MarketEvent>) {
        let (events, receiver) = mpsc::channel(config.buffer.max(1));
        let (nudge, nudges) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let venue = config.venue;
        let worker = Worker {
            config,
            rest,
            shared: shared.clone(),
            nudges,
            events,
            gaps: Gaps::default(),
            live: BTreeSet::new(),
            next_request: 0,
            connection: 0,
        };
        let task = tokio::spawn(worker.run().instrument(info_span!("market_feed", %venue)));
        (
            Feed {
                venue,
                shared,
                nudge,
                task,
            },
            receiver,
        )
    }

    pub fn venue(&self) -> Venue {
        self.venue
    }

    /// Adds a symbol; on a live connection it is subscribed at once, otherwise on connect.
    pub fn subscribe(&self, symbol: Symbol) {
        if lock(&self.shared.subscribed).insert(symbol) {
            let _ = self.nudge.send(Nudge::Sync);
        }
    }

    /// Removes a symbol. From the moment this returns the feed emits nothing more for it
    /// (events already in the channel stay there).
    pub fn unsubscribe(&self, symbol: &Symbol) {
        if lock(&self.shared.subscribed).remove(symbol) {
            let _ = self.nudge.send(Nudge::Sync);
        }
    }

    pub fn subscriptions(&self) -> BTreeSet<Symbol> {
        lock(&self.shared.subscribed).clone()
    }

    pub fn stats(&self) -> FeedStats {
        *lock(&self.shared.stats)
    }

    /// Closes the connection and waits for the task to end.
    pub async fn shutdown(self) {
        let _ = self.nudge.send(Nudge::Stop);
        let _ = self.task.await;
    }
}

/// Why a connection ended.
enum End {
    /// Shut down, or nobody listens any more.
    Stop,
    Reconnect(String),
}

struct Worker {
    config: FeedConfig,
    rest: Rest,
    shared: Arc<Shared>,
    nudges: mpsc::UnboundedReceiver<Nudge>,
    events: mpsc::Sender<MarketEvent>,
    gaps: Gaps,
    /// What the current connection is subscribed to.
    live: BTreeSet<Symbol>,
    next_request: u64,
    connection: u64,
}

impl Worker {
    async fn run(mut self) {
        let mut failures: u32 = 0;
        loop {
            match self.connect().await {
                Ok(Some((sink, stream))) => {
                    failures = 0;
                    match self.serve(sink, stream).await {
                        End::Stop => return,
                        End::Reconnect(reason) => {
                            info!(%reason, "disconnected; reconnecting");
                            self.gaps.disconnected();
                            self.stats(|s| s.disconnects += 1);
                            if self
                                .emit(MarketEvent::Disconnected { reason })
                                .await
                                .is_some()
                            {
                                return;
                            }
                        }
                    }
                }
                Ok(None) => return,
                Err(reason) => {
                    warn!(%reason, attempt = failures + 1, "connect failed");
                    self.stats(|s| s.failed_connects += 1);
                    failures = failures.saturating_add(1);
                }
            }
            let delay = self.config.backoff.delay(failures);
            if self.pause(delay).await.is_some() {
                return;
            }
        }
    }

    /// Connects and subscribes everything wanted. `Ok(None)`: stopped meanwhile.
    async fn connect(&mut self) -> Result<Option<(Sink, Source)>, String> {
        let url = self.config.endpoints.ws.as_str();
        let (socket, _) = tokio::time::timeout(
            self.config.connect_timeout,
            tokio_tungstenite::connect_async(url),
        )
        .await
        .map_err(|_| format!("no handshake within {:?}", self.config.connect_timeout))?
        .map_err(|e| e.to_string())?;
        let (mut sink, stream) = socket.split();
        let wanted = lock(&self.shared.subscribed).clone();
        for gone in self.live.difference(&wanted) {
            self.gaps.forget(gone);
        }
        let symbols: Vec<Symbol> = wanted.iter().cloned().collect();
        for frame in self.requests(Op::Subscribe, &symbols) {
            sink.send(Message::text(frame))
                .await
                .map_err(|e| format!("subscribing: {e}"))?;
        }
        self.live = wanted;
        self.connection += 1;
        self.stats(|s| s.connections += 1);
        info!(
            connection = self.connection,
            symbols = symbols.len(),
            "connected"
        );
        let connection = self.connection;
        if self
            .emit(MarketEvent::Connected { connection })
            .await
            .is_some()
        {
            return Ok(None);
        }
        Ok(Some((sink, stream)))
    }

    async fn serve(&mut self, mut sink: Sink, mut stream: Source) -> End {
        let idle = self.config.idle_timeout;
        let mut deadline = Instant::now() + idle;
        let mut ping = self
            .config
            .client_ping
            .map(|every| tokio::time::interval_at(Instant::now() + every, every));
        loop {
            tokio::select! {
                frame = stream.next() => {
                    let frame = match frame {
                        None => return End::Reconnect("closed by the server".into()),
                        Some(Err(e)) => return End::Reconnect(e.to_string()),
                        Some(Ok(frame)) => frame,
                    };
                    deadline = Instant::now() + idle;
                    match frame {
                        Message::Text(text) => {
                            if let Some(end) = self.on_text(text.as_str()).await {
                                return end;
                            }
                        }
                        // tungstenite queued the pong (with the ping's payload, as Binance
                        // requires); send it now rather than with the next read.
                        Message::Ping(_) => {
                            if let Err(e) = sink.flush().await {
                                return End::Reconnect(format!("answering a ping: {e}"));
                            }
                        }
                        Message::Close(frame) => {
                            return End::Reconnect(format!("closed by the server: {frame:?}"));
                        }
                        Message::Binary(_) => self.malformed("binary frame", "<binary>"),
                        Message::Pong(_) | Message::Frame(_) => {}
                    }
                }
                nudge = self.nudges.recv() => match nudge {
                    Some(Nudge::Sync) => {
                        if let Err(e) = self.sync(&mut sink).await {
                            return End::Reconnect(e);
                        }
                    }
                    Some(Nudge::Stop) | None => {
                        let _ = sink.send(Message::Close(None)).await;
                        return End::Stop;
                    }
                },
                _ = next_ping(&mut ping) => {
                    self.next_request += 1;
                    if let Some(frame) = wire::ping(self.config.venue, self.next_request)
                        && let Err(e) = sink.send(Message::text(frame)).await
                    {
                        return End::Reconnect(format!("pinging: {e}"));
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    return End::Reconnect(format!("nothing received for {idle:?}"));
                }
            }
        }
    }

    /// Brings the connection's subscriptions to the wanted set.
    async fn sync(&mut self, sink: &mut Sink) -> Result<(), String> {
        let wanted = lock(&self.shared.subscribed).clone();
        let add: Vec<Symbol> = wanted.difference(&self.live).cloned().collect();
        let remove: Vec<Symbol> = self.live.difference(&wanted).cloned().collect();
        for symbol in &remove {
            self.gaps.forget(symbol);
        }
        let mut frames = self.requests(Op::Unsubscribe, &remove);
        frames.extend(self.requests(Op::Subscribe, &add));
        for frame in frames {
            sink.send(Message::text(frame))
                .await
                .map_err(|e| format!("changing subscriptions: {e}"))?;
        }
        debug!(
            added = add.len(),
            removed = remove.len(),
            "subscriptions changed"
        );
        self.live = wanted;
        Ok(())
    }

    fn requests(&mut self, op: Op, symbols: &[Symbol]) -> Vec<String> {
        let next = &mut self.next_request;
        wire::requests(self.config.venue, op, symbols, || {
            *next += 1;
            *next
        })
    }

    async fn on_text(&mut self, text: &str) -> Option<End> {
        match wire::parse(self.config.venue, text) {
            Err(why) => {
                self.malformed(&why, text);
                None
            }
            Ok(Incoming::Ticks(ticks)) => {
                for tick in ticks {
                    if let Some(end) = self.on_tick(tick).await {
                        return Some(end);
                    }
                }
                None
            }
            Ok(Incoming::Ack { ok: true, detail }) => {
                debug!(%detail, "request accepted");
                None
            }
            Ok(Incoming::Ack { ok: false, detail }) => {
                warn!(%detail, "request refused");
                self.stats(|s| s.refused_requests += 1);
                None
            }
            Ok(Incoming::Pong) => {
                self.stats(|s| s.pongs += 1);
                None
            }
            Ok(Incoming::Shutdown) => Some(End::Reconnect("server shutdown announced".into())),
            Ok(Incoming::Other) => None,
        }
    }

    async fn on_tick(&mut self, tick: Tick) -> Option<End> {
        if !lock(&self.shared.subscribed).contains(&tick.symbol) {
            return None;
        }
        match self.gaps.on_tick(&tick) {
            Verdict::Duplicate => {
                debug!(symbol = %tick.symbol, id = ?tick.trade_id, "duplicate trade dropped");
                self.stats(|s| s.duplicates += 1);
                None
            }
            Verdict::Deliver => self.emit(MarketEvent::Tick(tick)).await,
            Verdict::Gap { from, to, cause } => {
                if let Some(end) = self.backfill(&tick.symbol, from, to, cause).await {
                    return Some(end);
                }
                self.emit(MarketEvent::Tick(tick)).await
            }
        }
    }

    /// Reads the klines of `from ..= to`, emits them, then the [`Gap`] that sums them up.
    async fn backfill(
        &mut self,
        symbol: &Symbol,
        from: OffsetDateTime,
        to: OffsetDateTime,
        cause: GapCause,
    ) -> Option<End> {
        let interval = self.rest.backfill_interval(to - from);
        let mut outcome = Ok(Vec::new());
        for attempt in 0..BACKFILL_ATTEMPTS {
            outcome = self.rest.klines(symbol, interval, from, to).await;
            match &outcome {
                Ok(_) => break,
                Err(e) => {
                    warn!(%symbol, error = %e, attempt = attempt + 1, "backfill failed");
                    if attempt + 1 < BACKFILL_ATTEMPTS {
                        tokio::time::sleep(self.config.backoff.delay(attempt)).await;
                    }
                }
            }
        }
        let (bars, error) = match outcome {
            Ok(bars) => (bars, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let count = bars.len();
        info!(%symbol, ?cause, %from, %to, bars = count, "gap backfilled");
        self.stats(|s| {
            s.gaps += 1;
            s.backfilled_bars += count as u64;
        });
        for bar in bars {
            if let Some(end) = self.emit(MarketEvent::Bar(bar)).await {
                return Some(end);
            }
        }
        self.emit(MarketEvent::Gap(Gap {
            venue: self.config.venue,
            symbol: symbol.clone(),
            from,
            to,
            cause,
            interval,
            bars: count,
            error,
        }))
        .await
    }

    fn malformed(&self, why: &str, text: &str) {
        let shown: String = text.chars().take(200).collect();
        warn!(%why, frame = %shown, "malformed message skipped");
        self.stats(|s| s.malformed += 1);
    }

    /// Sends an event; `Some(End::Stop)` when nobody receives any more.
    async fn emit(&self, event: MarketEvent) -> Option<End> {
        self.events.send(event).await.err().map(|_| End::Stop)
    }

    /// Sleeps `delay`, following subscription changes meanwhile; `Some` when stopped.
    async fn pause(&mut self, delay: Duration) -> Option<End> {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => return None,
                nudge = self.nudges.recv() => match nudge {
                    Some(Nudge::Sync) => {}
                    Some(Nudge::Stop) | None => return Some(End::Stop),
                },
                () = self.events.closed() => return Some(End::Stop),
            }
        }
    }

    fn stats(&self, change: impl FnOnce(&mut FeedStats)) {
        change(&mut lock(&self.shared.stats));
    }
}

async fn next_ping(ping: &mut Option<Ticker>) {
    match ping {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}
