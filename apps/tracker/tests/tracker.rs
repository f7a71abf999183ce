//! The tracker end to end: signals posted in the emulator, prices from the fake exchange, the
//! `signal_outcomes` documents it writes, and a recompute from storage that gives the same.

mod support;

use g3_outcomes::{ExitReason, Judged, Source};
use g3_store::{
    Collection,
    models::{Signal, SignalStatus},
};
use support::{SYMBOL, TestTracker, http_get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_is_entered_hits_both_targets_another_is_stopped_and_recompute_agrees() {
    let mut t = TestTracker::start().await;
    t.post(
        "5001",
        &t.signal("ETH/USDT", &[100.0], &[110.0, 120.0], 90.0),
    )
    .await;
    t.post("5002", &t.signal("ETH/USDT", &[100.0], &[130.0], 95.0))
        .await;
    t.wait_subscribed(true).await;
    t.status_is("5001", "waiting_for_entry").await;
    t.status_is("5002", "waiting_for_entry").await;

    t.trade(3.0, 105.0).await;
    t.trade(4.0, 100.0).await;
    t.clock_to(5.5);
    let a = t.status_is("5001", "entered").await;
    assert_eq!(a.entry.as_ref().unwrap().price, 100.0);
    assert_eq!(a.entry.as_ref().unwrap().at, t.at(4.0));
    t.status_is("5002", "entered").await;

    t.trade(6.0, 111.0).await;
    t.clock_to(7.5);
    let a = t
        .outcome_when("5001", "TP1 hit", |o| o.targets_hit.len() == 1)
        .await;
    assert_eq!(a.targets_hit[0].touch.price, 110.0);
    assert_eq!(a.status.as_str(), "entered");
    t.trade(7.0, 121.0).await;
    t.clock_to(8.5);
    let a = t.status_is("5001", "targets_hit").await;
    assert_eq!(a.targets_hit.len(), 2);
    assert_eq!(a.realized_r, Some(1.5));
    assert_eq!(a.result_r(), Some(1.5));

    // In the next minute: the first one is stored when it closes, this one when released.
    t.trade(65.0, 94.0).await;
    t.clock_to(66.5);
    let b = t.status_is("5002", "stopped").await;
    let exit = b.exit.as_ref().unwrap();
    assert_eq!(exit.reason, ExitReason::Stop);
    // The price jumped past the stop: it fills at the first price beyond it.
    assert_eq!(exit.touch.price, 94.0);
    assert_eq!(b.realized_r, Some(-1.2));

    // Nothing open on the symbol: unsubscribed, and its minute stored.
    t.wait_subscribed(false).await;
    t.assert_recompute_equals_live("5001").await;
    t.assert_recompute_equals_live("5002").await;
    let writes = g3_store_writes(&t);
    t.shutdown().await;
    assert!(writes > 0);
}

fn g3_store_writes(t: &TestTracker) -> u64 {
    tracker::Stats::get(&t.stats.outcome_writes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_deleted_before_entry_is_cancelled() {
    let mut t = TestTracker::start().await;
    let mut signal = t.signal("ETH/USDT", &[100.0], &[110.0], 90.0);
    t.post("5101", &signal).await;
    t.wait_subscribed(true).await;
    t.status_is("5101", "waiting_for_entry").await;
    t.trade(3.0, 105.0).await;
    signal.status = SignalStatus::Deleted;
    signal.deleted_at = Some(t.at(4.0));
    t.post("5101", &signal).await;
    t.clock_to(5.5);
    let o = t.status_is("5101", "cancelled").await;
    assert_eq!(o.ended_at, Some(t.at(4.0)));
    assert_eq!(o.deleted_at, Some(t.at(4.0)));
    assert!(o.entry.is_none());
    let doc = t.document("5101").await.unwrap();
    assert_eq!(doc.data.deleted_at, Some(t.at(4.0)));
    t.wait_subscribed(false).await;
    t.assert_recompute_equals_live("5101").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_after_entry_moves_the_stop_only_from_its_time() {
    let mut t = TestTracker::start().await;
    let mut signal = t.signal("ETH/USDT", &[100.0], &[120.0], 90.0);
    t.post("5201", &signal).await;
    t.wait_subscribed(true).await;
    t.status_is("5201", "waiting_for_entry").await;
    t.trade(3.0, 100.0).await;
    t.clock_to(4.5);
    t.status_is("5201", "entered").await;
    // Below the stop the edit will set, before the edit: nothing happens.
    t.trade(5.0, 96.0).await;
    t.trade(6.0, 98.0).await;
    t.clock_to(6.9);
    signal.revision = 2;
    signal.stop = Some(97.0);
    signal.edited_at = Some(t.at(7.0));
    t.post("5201", &signal).await;
    t.outcome_when("5201", "revision 2 heard", |o| o.edits == 1)
        .await;
    t.trade(8.0, 96.5).await;
    t.clock_to(9.5);
    let o = t.status_is("5201", "stopped").await;
    let exit = o.exit.as_ref().unwrap();
    assert_eq!(exit.touch.revision, 2);
    assert_eq!(exit.touch.price, 96.5);
    assert!(exit.touch.at >= t.at(7.0));
    // R stays measured against the stop in force at entry.
    assert_eq!(o.stop_at_entry, Some(90.0));
    assert_eq!(o.realized_r, Some(-0.35));
    assert!(
        o.revisions.iter().any(|r| r.revision == 2
            && r.judged == Judged::LevelsOnly
            && r.effective_at == t.at(7.0))
    );
    let doc = t.document("5201").await.unwrap();
    assert!(doc.data.revisions.contains("\"revision\":2"));
    t.wait_subscribed(false).await;
    t.assert_recompute_equals_live("5201").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_the_venue_does_not_list_is_untrackable() {
    let mut t = TestTracker::start().await;
    t.post("5301", &t.signal("DOGE/USDT", &[0.1], &[0.2], 0.05))
        .await;
    let o = t.status_is("5301", "untrackable").await;
    assert!(
        o.untrackable
            .as_deref()
            .unwrap_or_default()
            .contains("DOGEUSDT"),
        "{o:?}"
    );
    let doc = t.document("5301").await.unwrap();
    assert_eq!(doc.data.venue, None);
    assert!(!t.fake.subscribed(support::VENUE, "DOGEUSDT"));
    t.assert_recompute_equals_live("5301").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_hit_while_disconnected_is_found_in_the_backfill() {
    let mut t = TestTracker::start().await;
    t.post("5401", &t.signal("ETH/USDT", &[100.0], &[110.0], 90.0))
        .await;
    t.wait_subscribed(true).await;
    t.status_is("5401", "waiting_for_entry").await;
    t.trade(3.0, 100.0).await;
    t.clock_to(4.5);
    t.status_is("5401", "entered").await;

    let connections = t.fake.connections(support::VENUE).len();
    assert_eq!(t.fake.drop_connections(support::VENUE), 1);
    testkit::wait::eventually("the feed reconnected", support::LIMIT, || async {
        let conns = t.fake.connections(support::VENUE);
        conns.len() > connections && t.fake.subscribed(support::VENUE, SYMBOL)
    })
    .await;
    // While nobody listened: the target was reached and left.
    t.unseen_trade(5.0, 105.0);
    t.unseen_trade(6.0, 111.0);
    t.unseen_trade(7.0, 104.0);
    t.trade(8.0, 103.0).await;
    let o = t.status_is("5401", "targets_hit").await;
    let hit = &o.targets_hit[0].touch;
    assert_eq!(hit.source, Source::Backfill);
    assert_eq!(hit.at, t.at(6.0));
    assert_eq!(hit.price, 110.0);
    assert!(o.lower_precision());
    assert!(!t.fake.kline_requests(support::VENUE).is_empty());
    t.wait_subscribed(false).await;
    t.assert_recompute_equals_live("5401").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_answer_and_a_signal_without_a_pair_is_not_judged() {
    let mut t = TestTracker::start().await;
    let mut chat = t.signal("ETH/USDT", &[], &[], 1.0);
    chat.pair = None;
    t.post("5501", &chat).await;
    t.post("5502", &t.signal("ETH/USDT", &[100.0], &[110.0], 90.0))
        .await;
    t.status_is("5502", "waiting_for_entry").await;
    assert!(t.document("5501").await.is_none());
    let http = http_get(t.addr, "/healthz", None).await;
    assert!(
        http.contains("200 OK") && http.contains("\"role\":\"leader\""),
        "{http}"
    );
    assert!(http_get(t.addr, "/metrics", None).await.contains("404"));
    let metrics = http_get(t.addr, "/metrics", Some("metrics-token")).await;
    assert!(metrics.contains("tracker_open_signals 1"), "{metrics}");
    assert!(metrics.contains("tracker_leader 1"), "{metrics}");
    // The document the tracker wrote is not rewritten when nothing changed.
    let writes = tracker::Stats::get(&t.stats.outcome_writes);
    t.post("5502", &t.signal("ETH/USDT", &[100.0], &[110.0], 90.0))
        .await;
    let _ = Collection::<Signal>::new(&t.backend.client)
        .get("5502")
        .await
        .unwrap();
    t.clock_to(3.5);
    testkit::wait::eventually("the repeat was heard", support::LIMIT, || async {
        tracker::Stats::get(&t.stats.signals_heard) >= 3
    })
    .await;
    assert_eq!(tracker::Stats::get(&t.stats.outcome_writes), writes);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_an_entered_signal_and_finishes_it() {
    let mut t = TestTracker::start().await;
    t.post("5601", &t.signal("ETH/USDT", &[100.0], &[110.0], 90.0))
        .await;
    t.wait_subscribed(true).await;
    t.status_is("5601", "waiting_for_entry").await;
    let standby = t.spawn_another().await;
    let addr = t.instances[standby].addr;
    testkit::wait::eventually("the second tracker stands by", support::LIMIT, || async {
        http_get(addr, "/healthz", None)
            .await
            .contains("\"role\":\"standby\"")
    })
    .await;
    t.trade(3.0, 100.0).await;
    t.clock_to(4.5);
    t.status_is("5601", "entered").await;
    // The leader stops cleanly: it stores its unfinished minute and releases the lease.
    t.instances[0].shutdown().await;
    testkit::wait::eventually("the standby leads", support::LIMIT, || async {
        http_get(addr, "/healthz", None)
            .await
            .contains("\"role\":\"leader\"")
    })
    .await;
    t.wait_subscribed(true).await;
    t.trade(6.0, 111.0).await;
    t.clock_to(7.5);
    let o = t.status_is("5601", "targets_hit").await;
    assert_eq!(o.entry.as_ref().unwrap().at, t.at(3.0));
    assert_eq!(o.targets_hit[0].touch.at, t.at(6.0));
    t.wait_subscribed(false).await;
    t.assert_recompute_equals_live("5601").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_trade_expires_at_the_time_limit_at_its_last_price() {
    let mut t = TestTracker::start().await;
    t.post("5701", &t.signal("ETH/USDT", &[100.0], &[110.0], 90.0))
        .await;
    t.wait_subscribed(true).await;
    t.status_is("5701", "waiting_for_entry").await;
    t.trade(3.0, 100.0).await;
    t.trade(5.0, 105.0).await;
    t.clock_to(6.5);
    t.status_is("5701", "entered").await;
    // No price for a week: the timer alone closes it at the limit.
    let week = 7.0 * 24.0 * 3600.0;
    t.clock_to(week + 10.0);
    let o = t.status_is("5701", "expired").await;
    assert_eq!(o.ended_at, Some(t.at(1.0 + week)));
    let exit = o.exit.as_ref().unwrap();
    assert_eq!(exit.reason, ExitReason::TimeLimit);
    assert_eq!(exit.touch.price, 105.0);
    assert_eq!(o.realized_r, Some(0.5));
    t.wait_subscribed(false).await;
    t.assert_recompute_equals_live("5701").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_heard_late_is_judged_from_its_own_time_by_replaying_the_prices() {
    let mut t = TestTracker::start().await;
    let mut signal = t.signal("ETH/USDT", &[100.0], &[120.0], 90.0);
    t.post("5801", &signal).await;
    t.wait_subscribed(true).await;
    t.status_is("5801", "waiting_for_entry").await;
    t.trade(3.0, 100.0).await;
    t.trade(5.0, 96.0).await;
    t.clock_to(8.5);
    let before = t.status_is("5801", "entered").await;
    assert!(before.exit.is_none());
    testkit::wait::eventually("both seconds judged", support::LIMIT, || async {
        tracker::Stats::get(&t.stats.items) >= 2
    })
    .await;
    let replays = tracker::Stats::get(&t.stats.replays);
    // Made at 4 s, heard after 8 s were judged: the 96 at 5 s is below the new stop.
    signal.revision = 2;
    signal.stop = Some(97.0);
    signal.edited_at = Some(t.at(4.0));
    t.post("5801", &signal).await;
    let o = t.status_is("5801", "stopped").await;
    let exit = o.exit.as_ref().unwrap();
    assert_eq!(exit.touch.revision, 2);
    assert_eq!(exit.touch.at, t.at(5.0));
    assert_eq!(exit.touch.price, 96.0);
    assert_eq!(o.realized_r, Some(-0.4));
    assert!(tracker::Stats::get(&t.stats.replays) > replays);
    t.wait_subscribed(false).await;
    t.assert_recompute_equals_live("5801").await;
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trade_at_a_level_is_judged_at_once_a_late_one_is_left_out_and_recompute_agrees() {
    let mut t = TestTracker::start().await;
    t.post("5901", &t.signal("ETH/USDT", &[100.0], &[110.0], 90.0))
        .await;
    t.post("5902", &t.signal("ETH/USDT", &[100.0], &[130.0], 85.0))
        .await;
    t.wait_subscribed(true).await;
    t.status_is("5901", "waiting_for_entry").await;
    t.status_is("5902", "waiting_for_entry").await;
    // The clock stays at 2 s throughout: no second closes, no grace passes.
    t.trade(3.0, 105.0).await;
    t.trade(3.2, 103.0).await;
    t.trade(3.5, 100.0).await;
    let a = t.status_is("5901", "entered").await;
    let entry = a.entry.as_ref().unwrap();
    assert_eq!(
        (entry.price, entry.at, entry.source),
        (100.0, t.at(3.5), Source::Tick)
    );
    t.status_is("5902", "entered").await;
    // In the same second: the target. A whole-second bar would hold entry and target, count
    // the target only if a later price reached it again, and be ambiguous.
    t.trade(3.6, 111.0).await;
    let a = t.status_is("5901", "targets_hit").await;
    assert_eq!(a.targets_hit[0].touch.at, t.at(3.6));
    assert_eq!(a.targets_hit[0].touch.source, Source::Tick);
    assert_eq!(a.quality.ambiguous_bars, 0);
    assert!(a.realized_r.is_some_and(|r| r > 0.0));

    // Timed before the trade just judged: left out, though it is below 5902's stop.
    let late = tracker::Stats::get(&t.stats.late_trades);
    t.trade(3.55, 84.0).await;
    assert_eq!(tracker::Stats::get(&t.stats.late_trades), late + 1);
    // Same millisecond as the decisive trade: in the rest of its second, and judged there.
    t.trade(3.6, 120.0).await;
    t.trade(3.9, 131.0).await;
    let b = t.status_is("5902", "targets_hit").await;
    assert!(b.exit.is_none());
    assert_eq!(b.targets_hit[0].touch.at, t.at(3.9));
    assert_eq!(b.quality.ambiguous_bars, 0);
    assert!(
        b.quality.bars >= 1,
        "the in-between trades were judged as a bar: {b:?}"
    );
    assert!(tracker::Stats::get(&t.stats.decisive_trades) >= 3);

    t.wait_subscribed(false).await;
    t.assert_recompute_equals_live("5901").await;
    t.assert_recompute_equals_live("5902").await;
    // `ops outcomes recompute --all` reads the market's minutes once for both: the same.
    let all = tracker::recompute::all(&t.backend.client, false)
        .await
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(all.iter().all(|r| !r.changed()), "{all:#?}");
    t.shutdown().await;
}
