//! `ops outcomes recompute` against stored revisions and price minutes.

use g3_core::signal::Side;
use g3_market::{Symbol, Venue};
use g3_outcomes::{Bar, History, Market, Revision, Rules, Trade};
use g3_store::{Collection, models::SignalOutcome};
use ops::outcomes::{Scope, recompute};
use time::macros::datetime;
use tracker::signals::{self, Heard};
use tracker::tape::Minute;

#[tokio::test]
async fn a_stale_outcome_is_recomputed_from_stored_prices_once() {
    let backend = testkit::backend::backend().await;
    let client = &backend.client;
    let posted = datetime!(2026-03-02 14:00:05 UTC);
    let heard = Heard {
        revisions: vec![Revision {
            revision: 1,
            effective_at: posted,
            trade: Trade {
                pair: "ETH/USDT".into(),
                side: Side::Long,
                entries: vec![100.0],
                targets: vec![110.0],
                stop: Some(90.0),
                leverage: None,
            },
        }],
        deleted_at: None,
    };
    let history: History = heard.history().unwrap();
    let market = signals::Market::On(Venue::BinanceSpot, Symbol::from_pair("ETH/USDT").unwrap());
    // Stored as the tracker left it: still waiting.
    let stale = g3_outcomes::Tracker::new(history.clone(), Rules::default()).into_outcome();
    let doc = signals::document("main", &market, &heard, &stale);
    Collection::<SignalOutcome>::new(client)
        .upsert("7001", &doc, None)
        .await
        .unwrap();
    let bar = |s: i64, low: f64, high: f64| {
        Market::Bar(Bar {
            open_time: posted + time::Duration::seconds(s),
            close_time: posted + time::Duration::seconds(s) + time::Duration::milliseconds(999),
            open: low,
            high,
            low,
            close: high,
            backfilled: false,
        })
    };
    let minute = Minute {
        start: datetime!(2026-03-02 14:00 UTC),
        until: datetime!(2026-03-02 14:01 UTC),
        items: vec![bar(1, 99.0, 101.0), bar(3, 105.0, 111.0)],
    };
    tracker::prices::store(
        client,
        Venue::BinanceSpot,
        &Symbol::from_pair("ETH/USDT").unwrap(),
        &minute,
    )
    .await
    .unwrap();

    let dry = recompute(client, &Scope::All, true).await.unwrap();
    assert!(
        dry.contains("7001: would change (waiting_for_entry -> targets_hit)"),
        "{dry}"
    );
    let out = recompute(client, &Scope::Signal("7001".into()), false)
        .await
        .unwrap();
    assert!(
        out.contains("7001: rewritten (waiting_for_entry -> targets_hit)"),
        "{out}"
    );
    let stored = Collection::<SignalOutcome>::new(client)
        .get("7001")
        .await
        .unwrap();
    assert_eq!(stored.data.status, "targets_hit");
    let again = recompute(client, &Scope::All, false).await.unwrap();
    assert!(again.contains("7001: unchanged (targets_hit)"), "{again}");
    assert!(
        again.ends_with("1 outcome(s) recomputed, 0 rewritten"),
        "{again}"
    );
    assert!(
        recompute(client, &Scope::Signal("nope".into()), false)
            .await
            .is_err()
    );
}
