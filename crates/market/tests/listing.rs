//! Which pairs a venue can track, from its documented instrument list, cached.

mod common;

use std::time::Duration;

use common::*;
use g3_market::{Listing, Listings, Rest, Untrackable, Venue};
use testkit::exchange::{FakeExchange, FakeVenue};

fn listings(fake: &FakeExchange, venue: Venue, ttl: Duration) -> Listings {
    Listings::new(Rest::new(venue, endpoints(fake, venue).rest), ttl)
}

#[tokio::test]
async fn a_pair_is_trackable_only_where_it_is_listed_and_trading() {
    let fake = FakeExchange::spawn().await;
    let spot = listings(&fake, Venue::BinanceSpot, Duration::from_secs(3600));
    assert_eq!(
        spot.check("BTC/USDT").await.unwrap(),
        Listing::Trackable(sym("BTC/USDT"))
    );
    assert_eq!(
        spot.check("DOGE/USDT").await.unwrap(),
        Listing::Untrackable(Untrackable::NotListed(sym("DOGE/USDT")))
    );
    assert_eq!(
        spot.check("LUNA/USDT").await.unwrap(),
        Listing::Untrackable(Untrackable::NotTrading {
            symbol: sym("LUNA/USDT"),
            status: "BREAK".into()
        })
    );
    assert_eq!(
        spot.check("BTCUSDT").await.unwrap(),
        Listing::Untrackable(Untrackable::NotAPair("BTCUSDT".into()))
    );
    assert_eq!(
        fake.info_requests(FakeVenue::BinanceSpot),
        1,
        "the list is read once"
    );

    // Futures: the perpetual is the pair's symbol; a dated contract is not.
    let futures = listings(&fake, Venue::BinanceFutures, Duration::from_secs(3600));
    assert!(matches!(
        futures.check("BTC/USDT").await.unwrap(),
        Listing::Trackable(_)
    ));

    let linear = listings(&fake, Venue::BybitLinear, Duration::from_secs(3600));
    assert_eq!(
        linear.check("NEW/USDT").await.unwrap(),
        Listing::Untrackable(Untrackable::NotTrading {
            symbol: sym("NEW/USDT"),
            status: "PreLaunch".into()
        })
    );
    assert!(matches!(
        linear.check("ETH/USDT").await.unwrap(),
        Listing::Trackable(_)
    ));
}

#[tokio::test]
async fn bybit_linear_instruments_are_read_across_pages() {
    let fake = FakeExchange::spawn().await;
    for i in 0..1200 {
        fake.list(
            FakeVenue::BybitLinear,
            &format!("COIN{i:04}USDT"),
            "Trading",
        );
    }
    let linear = listings(&fake, Venue::BybitLinear, Duration::from_secs(3600));
    // Sorted by symbol, ZZZ comes after every COIN on the second page.
    fake.list(FakeVenue::BybitLinear, "ZZZUSDT", "Trading");
    assert!(matches!(
        linear.check("ZZZ/USDT").await.unwrap(),
        Listing::Trackable(_)
    ));
    assert_eq!(fake.info_requests(FakeVenue::BybitLinear), 2);
}

#[tokio::test]
async fn a_stale_list_is_read_again_and_a_listing_change_seen() {
    let fake = FakeExchange::spawn().await;
    let spot = listings(&fake, Venue::BybitSpot, Duration::ZERO);
    assert!(matches!(
        spot.check("PEPE/USDT").await.unwrap(),
        Listing::Untrackable(Untrackable::NotListed(_))
    ));
    fake.list(FakeVenue::BybitSpot, "PEPEUSDT", "Trading");
    assert!(matches!(
        spot.check("PEPE/USDT").await.unwrap(),
        Listing::Trackable(_)
    ));
    assert_eq!(fake.info_requests(FakeVenue::BybitSpot), 2);
}

#[tokio::test]
async fn a_venue_that_is_down_is_asked_once_per_pause_not_at_every_look_up() {
    let fake = FakeExchange::spawn().await;
    let venue = FakeVenue::BybitSpot;
    let spot = listings(&fake, Venue::BybitSpot, Duration::from_secs(3600))
        .retry_after(Duration::from_millis(300));
    fake.fail_instrument_lists(venue, true);

    let first = spot.check("BTC/USDT").await.unwrap_err().to_string();
    assert!(first.contains("HTTP 503"), "{first}");
    let again = spot.check("ETH/USDT").await.unwrap_err().to_string();
    assert!(
        again.contains("not asked again for 1s") && again.contains("HTTP 503"),
        "{again}"
    );
    assert_eq!(fake.info_requests(venue), 1, "no request within the pause");

    // Back up: the next look-up after the pause reads the list.
    fake.fail_instrument_lists(venue, false);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        spot.check("BTC/USDT").await.unwrap(),
        Listing::Trackable(sym("BTC/USDT"))
    );
    assert_eq!(fake.info_requests(venue), 2);
}

#[tokio::test]
async fn a_stale_list_is_used_while_the_venue_is_down_and_read_again_after_the_pause() {
    let fake = FakeExchange::spawn().await;
    let venue = FakeVenue::BybitSpot;
    let spot =
        listings(&fake, Venue::BybitSpot, Duration::ZERO).retry_after(Duration::from_millis(300));
    assert!(matches!(
        spot.check("BTC/USDT").await.unwrap(),
        Listing::Trackable(_)
    ));
    fake.fail_instrument_lists(venue, true);
    for _ in 0..5 {
        assert!(matches!(
            spot.check("BTC/USDT").await.unwrap(),
            Listing::Trackable(_)
        ));
    }
    assert_eq!(
        fake.info_requests(venue),
        2,
        "one failed read, then the previous list without asking"
    );
    fake.fail_instrument_lists(venue, false);
    fake.list(venue, "PEPEUSDT", "Trading");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(matches!(
        spot.check("PEPE/USDT").await.unwrap(),
        Listing::Trackable(_)
    ));
    assert_eq!(fake.info_requests(venue), 3);
}
