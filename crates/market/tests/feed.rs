//! The feed against the fake exchange: normalized ticks on every venue, runtime subscription
//! changes, reconnects with resubscription and exactly one backfill of the down time, trade-id
//! gaps, heartbeats both ways, and malformed frames skipped.

mod common;

use std::time::Duration;

use common::*;
use g3_market::{GapCause, Interval, MarketEvent, TradeId, Venue};
use serde_json::json;
use testkit::exchange::{FakeExchange, FakeVenue, Recording};

#[tokio::test]
async fn ticks_arrive_normalized_on_every_venue() {
    init_tracing();
    let fake = FakeExchange::spawn().await;
    for venue in Venue::ALL {
        let fv = fake_venue(venue);
        let (feed, mut events) = started(&fake, config(&fake, venue), &["BTC/USDT"]).await;
        fake.load(fv, "BTCUSDT", Recording::CalmBtcHour);
        let played = fake.publish(fv, "BTCUSDT", 3);
        for trade in &played {
            let tick = next_tick(&mut events).await;
            assert_eq!((tick.venue, tick.symbol.as_str()), (venue, "BTCUSDT"));
            assert_eq!(tick.price, trade.price.parse::<f64>().unwrap(), "{venue}");
            assert_eq!(
                millis(tick.time),
                trade.time_ms,
                "exchange trade time on {venue}"
            );
            match (&tick.trade_id, venue) {
                (TradeId::Sequential(id), Venue::BinanceSpot | Venue::BinanceFutures) => {
                    assert_eq!(*id, trade.id)
                }
                (TradeId::Opaque { id, seq }, Venue::BybitSpot) => {
                    assert_eq!((id.clone(), seq.is_some()), (trade.id.to_string(), true))
                }
                (TradeId::Opaque { id, .. }, Venue::BybitLinear) => assert_eq!(id.len(), 36),
                other => panic!("unexpected trade id {other:?}"),
            }
        }
        // What went over the wire is each venue's documented subscribe request.
        let request = fake.connections(fv)[0].requests[0].clone();
        let expected = match venue {
            Venue::BinanceSpot => json!({"method": "SUBSCRIBE", "params": ["btcusdt@trade"]}),
            Venue::BinanceFutures => {
                json!({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"]})
            }
            Venue::BybitSpot | Venue::BybitLinear => {
                json!({"op": "subscribe", "args": ["publicTrade.BTCUSDT"]})
            }
        };
        for (key, value) in expected.as_object().unwrap() {
            assert_eq!(&request[key], value, "{venue}: {request}");
        }
        feed.shutdown().await;
    }
}

#[tokio::test]
async fn symbols_are_subscribed_and_unsubscribed_at_runtime() {
    init_tracing();
    let fake = FakeExchange::spawn().await;
    for venue in [Venue::BinanceSpot, Venue::BybitLinear] {
        let fv = fake_venue(venue);
        fake.load(fv, "BTCUSDT", Recording::CalmBtcHour);
        fake.load(fv, "ETHUSDT", Recording::FastEthMove);
        let (feed, mut events) = started(&fake, config(&fake, venue), &["BTC/USDT"]).await;

        feed.subscribe(sym("ETH/USDT"));
        wait_subscribed(&fake, venue, "ETHUSDT").await;
        fake.publish(fv, "ETHUSDT", 1);
        assert_eq!(next_tick(&mut events).await.symbol.as_str(), "ETHUSDT");
        fake.publish(fv, "BTCUSDT", 1);
        assert_eq!(next_tick(&mut events).await.symbol.as_str(), "BTCUSDT");

        feed.unsubscribe(&sym("BTC/USDT"));
        testkit::wait::eventually("BTCUSDT unsubscribed", LIMIT, || async {
            !fake.subscribed(fv, "BTCUSDT")
        })
        .await;
        fake.publish(fv, "BTCUSDT", 3);
        let eth = fake.publish(fv, "ETHUSDT", 2);
        for trade in &eth {
            let tick = next_tick(&mut events).await;
            assert_eq!(
                tick.symbol.as_str(),
                "ETHUSDT",
                "{venue}: nothing more for BTCUSDT"
            );
            assert_eq!(millis(tick.time), trade.time_ms);
        }
        // All on the one connection, with the changes sent on it.
        let conns = fake.connections(fv);
        assert_eq!(conns.len(), 1, "{venue}");
        let ops: Vec<String> = conns[0]
            .requests
            .iter()
            .map(|r| {
                r.get("method")
                    .or(r.get("op"))
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_lowercase()
            })
            .collect();
        assert_eq!(ops, ["subscribe", "subscribe", "unsubscribe"], "{venue}");
        assert_eq!(
            feed.subscriptions()
                .into_iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
            ["ETHUSDT"]
        );
        feed.shutdown().await;
    }
}

#[tokio::test]
async fn a_reconnect_resubscribes_and_backfills_the_down_time_exactly_once() {
    init_tracing();
    let fake = FakeExchange::spawn().await;
    let fv = FakeVenue::BinanceSpot;
    fake.load(fv, "BTCUSDT", Recording::CalmBtcHour);
    fake.load(fv, "ETHUSDT", Recording::FastEthMove);
    let (feed, mut events) = started(
        &fake,
        config(&fake, Venue::BinanceSpot),
        &["BTC/USDT", "ETH/USDT"],
    )
    .await;
    connected(&mut events, 1).await;
    let before = fake.publish(fv, "BTCUSDT", 3);
    fake.publish(fv, "ETHUSDT", 1);
    for _ in 0..4 {
        next_tick(&mut events).await;
    }

    // Down: the connection drops and new ones are refused while BTC trades on.
    fake.refuse_connections(fv, true);
    assert_eq!(fake.drop_connections(fv), 1);
    let missed = fake.skip(fv, "BTCUSDT", 4);
    testkit::wait::eventually("reconnects refused", LIMIT, || async {
        fake.refused(fv) >= 2
    })
    .await;
    fake.refuse_connections(fv, false);
    connected(&mut events, 2).await;
    wait_subscribed(&fake, Venue::BinanceSpot, "BTCUSDT").await;
    wait_subscribed(&fake, Venue::BinanceSpot, "ETHUSDT").await;
    let resubscribe = &fake.connections(fv)[1].requests[0];
    assert_eq!(
        resubscribe["params"],
        json!(["btcusdt@trade", "ethusdt@trade"])
    );

    let after = fake.publish(fv, "BTCUSDT", 2);
    let mut bars = Vec::new();
    let gap = loop {
        match next_market(&mut events).await {
            MarketEvent::Bar(bar) => bars.push(bar),
            MarketEvent::Gap(gap) => break gap,
            other => panic!("expected bars then the gap, got {other:?}"),
        }
    };
    assert_eq!(gap.cause, GapCause::Reconnect);
    assert_eq!(millis(gap.from), before[2].time_ms);
    assert_eq!(millis(gap.to), after[0].time_ms);
    assert_eq!(
        (gap.interval, gap.bars, gap.error.clone()),
        (Interval::Second1, bars.len(), None)
    );
    assert!(
        bars.iter()
            .all(|b| b.backfilled && b.interval == Interval::Second1)
    );
    // Every missed trade lies within a backfilled bar.
    for trade in &missed {
        let p: f64 = trade.price.parse().unwrap();
        assert!(
            bars.iter()
                .any(|b| millis(b.open_time) == trade.time_ms / 1000 * 1000
                    && b.low <= p
                    && p <= b.high),
            "missed trade {} not covered",
            trade.id
        );
    }
    for trade in &after {
        let tick = next_tick(&mut events).await;
        assert_eq!(tick.trade_id, TradeId::Sequential(trade.id));
    }

    // ETH lost nothing (its next id follows on), so it needs no backfill; BTC was backfilled
    // once and goes on without another.
    fake.publish(fv, "ETHUSDT", 1);
    fake.publish(fv, "BTCUSDT", 2);
    for _ in 0..3 {
        next_tick(&mut events).await;
    }
    let requests = fake.kline_requests(fv);
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        (requests[0].symbol.as_str(), requests[0].interval.as_str()),
        ("BTCUSDT", "1s")
    );
    let stats = feed.stats();
    assert_eq!(
        (stats.connections, stats.disconnects, stats.gaps),
        (2, 1, 1)
    );
    assert!(stats.failed_connects >= 2);
    feed.shutdown().await;
}

#[tokio::test]
async fn bybit_backfills_the_down_time_from_minute_klines() {
    init_tracing();
    let fake = FakeExchange::spawn().await;
    let fv = FakeVenue::BybitLinear;
    fake.load(fv, "ETHUSDT", Recording::FastEthMove);
    let (feed, mut events) = started(&fake, config(&fake, Venue::BybitLinear), &["ETH/USDT"]).await;
    let before = fake.publish(fv, "ETHUSDT", 5);
    for _ in 0..5 {
        next_tick(&mut events).await;
    }
    fake.refuse_connections(fv, true);
    fake.drop_connections(fv);
    let missed = fake.skip(fv, "ETHUSDT", 40);
    testkit::wait::eventually("a reconnect refused", LIMIT, || async {
        fake.refused(fv) >= 1
    })
    .await;
    fake.refuse_connections(fv, false);
    connected(&mut events, 2).await;
    wait_subscribed(&fake, Venue::BybitLinear, "ETHUSDT").await;
    let after = fake.publish(fv, "ETHUSDT", 1);

    let mut bars = Vec::new();
    let gap = loop {
        match next_market(&mut events).await {
            MarketEvent::Bar(bar) => bars.push(bar),
            MarketEvent::Gap(gap) => break gap,
            other => panic!("expected bars then the gap, got {other:?}"),
        }
    };
    assert_eq!(
        (gap.cause, gap.interval),
        (GapCause::Reconnect, Interval::Minute1)
    );
    assert_eq!(
        (millis(gap.from), millis(gap.to)),
        (before[4].time_ms, after[0].time_ms)
    );
    assert!(
        bars.windows(2).all(|w| w[0].open_time < w[1].open_time),
        "oldest first"
    );
    let top = missed
        .iter()
        .map(|t| t.price.parse::<f64>().unwrap())
        .fold(0.0, f64::max);
    assert!(
        bars.iter().any(|b| b.high >= top),
        "the move while down is in the bars"
    );
    assert_eq!(next_tick(&mut events).await.time, gap.to);
    let requests = fake.kline_requests(fv);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].interval, "1");
    feed.shutdown().await;
}

#[tokio::test]
async fn a_trade_id_gap_on_a_live_stream_is_backfilled() {
    init_tracing();
    let fake = FakeExchange::spawn().await;
    let fv = FakeVenue::BinanceFutures;
    // The recording itself lost ids 901220023..=901220030 on the stream.
    fake.load(fv, "SOLUSDT", Recording::SolWithGaps);
    let (feed, mut events) =
        started(&fake, config(&fake, Venue::BinanceFutures), &["SOL/USDT"]).await;
    let played = fake.publish(fv, "SOLUSDT", 31);
    let streamed: Vec<_> = played.iter().filter(|t| t.on_stream).collect();
    for trade in &streamed[..22] {
        assert_eq!(
            next_tick(&mut events).await.trade_id,
            TradeId::Sequential(trade.id)
        );
    }
    let mut bars = Vec::new();
    let gap = loop {
        match next_market(&mut events).await {
            MarketEvent::Bar(bar) => bars.push(bar),
            MarketEvent::Gap(gap) => break gap,
            other => panic!("expected bars then the gap, got {other:?}"),
        }
    };
    assert_eq!(
        gap.cause,
        GapCause::TradeIdJump {
            after: 901220022,
            next: 901220031
        }
    );
    assert_eq!(
        gap.interval,
        Interval::Minute1,
        "futures klines start at 1m"
    );
    // The spike the stream missed shows in the bars.
    let spike = played[22..30]
        .iter()
        .map(|t| t.price.parse::<f64>().unwrap())
        .fold(0.0, f64::max);
    assert!(
        bars.iter().any(|b| b.high >= spike),
        "bars {bars:?} miss {spike}"
    );
    assert_eq!(
        next_tick(&mut events).await.trade_id,
        TradeId::Sequential(901220031)
    );
    assert_eq!(fake.kline_requests(fv).len(), 1);
    assert_eq!(
        fake.connections(fv).len(),
        1,
        "a gap is no reason to reconnect"
    );
    feed.shutdown().await;
}

#[tokio::test]
async fn bybit_is_pinged_and_a_silent_connection_is_replaced() {
    init_tracing();
    let fake = FakeExchange::spawn().await;
    let fv = FakeVenue::BybitSpot;
    let mut config = config(&fake, Venue::BybitSpot);
    config.client_ping = Some(Duration::from_millis(50));
    config.idle_timeout = Duration::from_millis(600);
    let (feed, mut events) = started(&fake, config, &["BTC/USDT"]).await;
    testkit::wait::eventually("three pings answered", LIMIT, || async {
        fake.client_pings(fv) >= 3 && feed.stats().pongs >= 3
    })
    .await;
    let ping = fake.connections(fv)[0]
        .requests
        .iter()
        .find(|r| r["op"] == "ping")
        .cloned()
        .unwrap();
    assert!(ping["req_id"].is_string(), "{ping}");
    assert_eq!(feed.stats().disconnects, 0, "answered pings keep it up");

    // Pongs stop: the connection is presumed dead and replaced.
    fake.answer_pings(fv, false);
    let reason = loop {
        if let MarketEvent::Disconnected { reason } = next(&mut events).await {
            break reason;
        }
    };
    assert!(reason.contains("nothing received"), "{reason}");
    fake.answer_pings(fv, true);
    connected(&mut events, 2).await;
    wait_subscribed(&fake, Venue::BybitSpot, "BTCUSDT").await;
    feed.shutdown().await;
}

#[tokio::test]
async fn binance_server_pings_get_their_payload_back() {
    init_tracing();
    let fake = FakeExchange::spawn().await;
    let fv = FakeVenue::BinanceSpot;
    let (feed, _events) = started(&fake, config(&fake, Venue::BinanceSpot), &["BTC/USDT"]).await;
    assert_eq!(fake.ping(fv, b"1700000000123"), 1);
    testkit::wait::eventually("the pong", LIMIT, || async {
        fake.pongs(fv).contains(&b"1700000000123".to_vec())
    })
    .await;
    feed.shutdown().await;
}

#[tokio::test]
async fn malformed_frames_are_skipped_not_fatal() {
    init_tracing();
    let fake = FakeExchange::spawn().await;
    for (venue, junk) in [
        (
            Venue::BinanceSpot,
            vec![
                "{not json".to_owned(),
                json!({"stream": "btcusdt@trade", "data": {"e": "trade", "E": 1, "s": "BTCUSDT",
                    "t": 1, "p": "abc", "q": "1", "T": 1}})
                .to_string(),
                json!({"stream": "btcusdt@trade", "data": {"no": "event"}}).to_string(),
                "[1, 2]".to_owned(),
            ],
        ),
        (
            Venue::BybitLinear,
            vec![
                "".to_owned(),
                json!({"topic": "publicTrade.BTCUSDT", "data": [{"p": "1"}]}).to_string(),
                json!({"topic": "publicTrade.BTCUSDT", "data": [{"T": 1, "s": "BTCUSDT",
                    "p": "-5", "i": "x"}]})
                .to_string(),
                json!({"hello": "world"}).to_string(),
            ],
        ),
    ] {
        let fv = fake_venue(venue);
        fake.load(fv, "BTCUSDT", Recording::CalmBtcHour);
        let (feed, mut events) = started(&fake, config(&fake, venue), &["BTC/USDT"]).await;
        for frame in &junk {
            assert_eq!(fake.send_raw(fv, frame), 1);
        }
        let played = fake.publish(fv, "BTCUSDT", 1);
        assert_eq!(millis(next_tick(&mut events).await.time), played[0].time_ms);
        assert_eq!(feed.stats().malformed, junk.len() as u64, "{venue}");
        assert_eq!(
            fake.connections(fv).len(),
            1,
            "{venue}: still the first connection"
        );
        assert_eq!(feed.stats().disconnects, 0);
        feed.shutdown().await;
    }
}
