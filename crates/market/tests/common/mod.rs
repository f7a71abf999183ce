//! A feed pointed at `testkit`'s fake exchange, and bounded waits on what it emits.

#![allow(dead_code)]

use std::time::Duration;

use g3_market::{Backoff, Endpoints, Feed, FeedConfig, MarketEvent, Symbol, Tick, Venue};
use testkit::exchange::{FakeExchange, FakeVenue};
use tokio::sync::mpsc::Receiver;
use url::Url;

/// Bound on every wait in these tests.
pub const LIMIT: Duration = Duration::from_secs(10);

pub fn fake_venue(venue: Venue) -> FakeVenue {
    match venue {
        Venue::BinanceSpot => FakeVenue::BinanceSpot,
        Venue::BinanceFutures => FakeVenue::BinanceFutures,
        Venue::BybitSpot => FakeVenue::BybitSpot,
        Venue::BybitLinear => FakeVenue::BybitLinear,
    }
}

pub fn endpoints(fake: &FakeExchange, venue: Venue) -> Endpoints {
    let fv = fake_venue(venue);
    Endpoints {
        ws: Url::parse(&fake.ws_url(fv)).expect("ws url"),
        rest: Url::parse(&fake.rest_url(fv)).expect("rest url"),
    }
}

/// The venue's defaults with the fake's endpoints and a fast backoff.
pub fn config(fake: &FakeExchange, venue: Venue) -> FeedConfig {
    let mut config = FeedConfig::with_endpoints(venue, endpoints(fake, venue));
    config.backoff = Backoff {
        first: Duration::from_millis(20),
        max: Duration::from_millis(200),
    };
    config.connect_timeout = Duration::from_secs(2);
    config
}

pub fn sym(pair: &str) -> Symbol {
    Symbol::from_pair(pair).expect("pair")
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("g3_market=debug")
        .try_init();
}

/// Starts a feed subscribed to `pairs` and waits until the fake sees every subscription.
pub async fn started(
    fake: &FakeExchange,
    config: FeedConfig,
    pairs: &[&str],
) -> (Feed, Receiver<MarketEvent>) {
    let venue = config.venue;
    let (feed, events) = Feed::spawn(config);
    for pair in pairs {
        feed.subscribe(sym(pair));
    }
    for pair in pairs {
        wait_subscribed(fake, venue, &sym(pair).to_string()).await;
    }
    (feed, events)
}

pub async fn wait_subscribed(fake: &FakeExchange, venue: Venue, symbol: &str) {
    let fv = fake_venue(venue);
    testkit::wait::eventually(
        &format!("{symbol} subscribed on {venue}"),
        LIMIT,
        || async { fake.subscribed(fv, symbol) },
    )
    .await;
}

/// The next event, whatever it is.
pub async fn next(events: &mut Receiver<MarketEvent>) -> MarketEvent {
    tokio::time::timeout(LIMIT, events.recv())
        .await
        .expect("an event in time")
        .expect("the feed is running")
}

/// The next event other than a connection change.
pub async fn next_market(events: &mut Receiver<MarketEvent>) -> MarketEvent {
    loop {
        match next(events).await {
            MarketEvent::Connected { .. } | MarketEvent::Disconnected { .. } => {}
            other => return other,
        }
    }
}

/// The next tick; panics on a bar or gap.
pub async fn next_tick(events: &mut Receiver<MarketEvent>) -> Tick {
    match next_market(events).await {
        MarketEvent::Tick(tick) => tick,
        other => panic!("expected a tick, got {other:?}"),
    }
}

/// Skips events until `Connected { connection: n }`.
pub async fn connected(events: &mut Receiver<MarketEvent>, n: u64) {
    loop {
        if let MarketEvent::Connected { connection } = next(events).await
            && connection == n
        {
            return;
        }
    }
}

pub fn millis(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}
