//! The engine's rules, one example each: fills, targets, stops, both-touched bars, data
//! quality, edits, deletes, expiry, and the stream's contract.

mod common;

use common::*;
use g3_core::signal::Side;
use g3_outcomes::{
    ExitReason, History, Judged, Market, Outcome, Revision, Rules, Source, Status, StreamError,
    Tracker, evaluate,
};
use time::Duration;

fn run(h: &History, prices: &[Market]) -> Outcome {
    evaluate(h, Rules::default(), prices, None).expect("a valid stream")
}

#[test]
fn a_single_entry_fills_when_price_reaches_it_and_targets_close_equal_shares() {
    let h = simple(long(&[100.0], &[110.0, 120.0], Some(95.0)));
    let o = run(&h, &[tick(1, 105.0), tick(2, 100.5)]);
    assert_eq!(o.status, Status::WaitingForEntry);
    assert_eq!(o.last_price, Some(100.5));

    let o = run(
        &h,
        &[
            tick(1, 105.0),
            tick(2, 100.5),
            tick(3, 99.8),
            tick(4, 111.0),
            tick(5, 121.0),
        ],
    );
    let entry = o.entry.as_ref().expect("entered");
    assert_eq!(
        (entry.price, entry.at, entry.source),
        (100.0, at(3), Source::Tick)
    );
    assert_eq!(o.risk, Some(5.0));
    assert_eq!(o.status, Status::TargetsHit);
    let hits: Vec<_> = o
        .targets_hit
        .iter()
        .map(|t| (t.index, t.touch.price, t.touch.at, t.share, t.r, t.pct))
        .collect();
    assert_eq!(
        hits,
        vec![
            (0, 110.0, at(4), 0.5, Some(2.0), 10.0),
            (1, 120.0, at(5), 0.5, Some(4.0), 20.0)
        ]
    );
    assert_eq!(o.result_r(), Some(3.0));
    assert_eq!(o.result_pct(), Some(15.0));
    assert_eq!(o.ended_at, Some(at(5)));
    assert_eq!(o.open_share, 0.0);
    assert_eq!(o.leverage, Some(10.0), "leverage shown, results unlevered");
}

#[test]
fn a_long_below_its_entry_waits_for_the_price_to_rise_to_it() {
    let h = simple(long(&[100.0], &[110.0], Some(90.0)));
    let o = run(&h, &[tick(1, 95.0), tick(2, 99.0)]);
    assert_eq!(o.status, Status::WaitingForEntry);
    let o = run(&h, &[tick(1, 95.0), tick(2, 101.0)]);
    assert_eq!(o.entry.map(|e| e.price), Some(100.0));
}

#[test]
fn a_zone_fills_at_the_first_edge_touched() {
    // Falling into a long's zone: the top edge.
    let h = simple(long(&[100.0, 105.0], &[120.0], Some(90.0)));
    let o = run(&h, &[tick(1, 108.0), tick(2, 103.0), tick(3, 101.0)]);
    assert_eq!(
        o.entry.as_ref().map(|e| (e.price, e.at)),
        Some((105.0, at(2)))
    );
    // Rising into it from below: the bottom edge.
    let o = run(&h, &[tick(1, 95.0), tick(2, 102.0)]);
    assert_eq!(o.entry.map(|e| e.price), Some(100.0));
    // Gapping through the whole zone still fills at the edge first crossed, never better.
    let o = run(&h, &[tick(1, 110.0), tick(2, 98.0)]);
    assert_eq!(o.entry.map(|e| e.price), Some(105.0));
    // The first price already inside the zone: filled at that price.
    let o = run(&h, &[tick(1, 102.5)]);
    assert_eq!(o.entry.map(|e| e.price), Some(102.5));
    // Entries in any order name the same zone.
    let h2 = simple(long(&[105.0, 100.0, 102.0], &[120.0], Some(90.0)));
    let o2 = run(&h2, &[tick(1, 108.0), tick(2, 103.0)]);
    assert_eq!(o2.entry.map(|e| e.price), Some(105.0));
    assert_eq!(o2.entry_zone, Some((100.0, 105.0)));
}

#[test]
fn a_short_zone_fills_at_its_bottom_when_rising_into_it() {
    let h = simple(short(&[100.0, 105.0], &[90.0], Some(110.0)));
    let o = run(&h, &[tick(1, 97.0), tick(2, 103.0)]);
    assert_eq!(o.entry.map(|e| e.price), Some(100.0));
    let o = run(&h, &[tick(1, 108.0), tick(2, 103.0)]);
    assert_eq!(
        o.entry.map(|e| e.price),
        Some(105.0),
        "falling into it: top edge"
    );
}

#[test]
fn a_short_is_a_mirrored_long() {
    let h = simple(short(&[100.0], &[90.0, 80.0], Some(105.0)));
    let o = run(
        &h,
        &[tick(1, 99.0), tick(2, 101.0), tick(3, 89.0), tick(4, 106.0)],
    );
    assert_eq!(o.side, Side::Short);
    assert_eq!(o.entry.as_ref().map(|e| e.price), Some(100.0));
    assert_eq!(o.risk, Some(5.0));
    let t1 = &o.targets_hit[0];
    assert_eq!(
        (t1.index, t1.touch.price, t1.r, t1.pct),
        (0, 90.0, Some(2.0), 10.0)
    );
    let exit = o.exit.as_ref().expect("stopped");
    // Jumped from 89 to 106 across the stop: filled at the observed 106, not at 105.
    assert_eq!(
        (exit.reason, exit.touch.price, exit.share),
        (ExitReason::Stop, 106.0, 0.5)
    );
    assert!(close(exit.r.unwrap_or_default(), -1.2));
    assert_eq!(o.status, Status::Stopped);
    assert!(close(o.result_r().unwrap_or_default(), 0.4));
    assert!(close(o.result_pct().unwrap_or_default(), 2.0));
}

#[test]
fn targets_are_hit_in_price_order_even_in_one_jump() {
    let h = simple(long(&[100.0], &[120.0, 110.0, 130.0], Some(95.0)));
    let o = run(&h, &[tick(1, 100.0), tick(2, 125.0)]);
    let order: Vec<_> = o
        .targets_hit
        .iter()
        .map(|t| (t.index, t.touch.price))
        .collect();
    assert_eq!(order, vec![(1, 110.0), (0, 120.0)]);
    let shares: Vec<_> = o.targets_hit.iter().map(|t| t.share).collect();
    assert!(close(shares[0], 1.0 / 3.0) && close(shares[1], 1.0 / 3.0));
    assert!(close(o.open_share, 1.0 / 3.0));
    assert_eq!(o.status, Status::Entered);
    assert_eq!(o.next_target(), Some((2, 130.0)));
}

#[test]
fn a_stop_after_some_targets_closes_the_rest_at_the_stop() {
    let h = simple(long(&[100.0], &[110.0, 120.0, 130.0], Some(90.0)));
    // 111 then a bar that trades down through the stop (inside a bar: filled at the stop).
    let o = run(
        &h,
        &[
            tick(1, 100.0),
            tick(2, 111.0),
            bar(3, 111.0, 112.0, 85.0, 86.0),
        ],
    );
    assert_eq!(o.status, Status::Stopped);
    let exit = o.exit.as_ref().expect("exit");
    assert_eq!(exit.touch.price, 90.0);
    assert!(close(exit.share, 2.0 / 3.0));
    // 1/3 × 1R + 2/3 × -1R.
    assert!(close(o.result_r().unwrap_or_default(), -1.0 / 3.0));
    assert!(
        !exit.touch.ambiguous,
        "only the stop was in reach of this bar"
    );
}

#[test]
fn the_stop_before_the_entry_means_no_trade() {
    let h = simple(long(&[100.0], &[110.0], Some(95.0)));
    let o = run(
        &h,
        &[tick(1, 97.0), tick(2, 94.0), tick(3, 100.0), tick(4, 111.0)],
    );
    assert_eq!(o.status, Status::StoppedBeforeEntry);
    assert!(o.entry.is_none());
    assert_eq!(o.result_r(), None);
    assert_eq!(o.stop_before_entry.as_ref().map(|t| t.at), Some(at(2)));
    assert_eq!(o.ended_at, Some(at(2)));
    // Nothing after the end is judged.
    assert_eq!(o.quality.ticks, 2);
    // A first price already past the stop.
    let o = run(&h, &[tick(1, 94.0)]);
    assert_eq!(o.status, Status::StoppedBeforeEntry);
}

#[test]
fn a_jump_through_entry_and_stop_is_a_loss_at_the_observed_price() {
    let h = simple(long(&[100.0], &[110.0], Some(95.0)));
    let o = run(&h, &[tick(1, 110.0 - 5.0), tick(2, 90.0)]);
    assert_eq!(o.status, Status::Stopped);
    assert_eq!(o.entry.as_ref().map(|e| e.price), Some(100.0));
    assert_eq!(o.exit.as_ref().map(|e| e.touch.price), Some(90.0));
    assert_eq!(o.result_r(), Some(-2.0));
    assert_eq!(o.quality.ambiguous_bars, 0, "ticks are never ambiguous");
    assert!(!o.ambiguous());
}

#[test]
fn a_bar_touching_stop_and_target_counts_the_stop_and_is_flagged() {
    for side in [Side::Long, Side::Short] {
        let (t, b) = match side {
            Side::Long => (
                long(&[100.0], &[110.0], Some(95.0)),
                bar(2, 100.0, 111.0, 94.0, 105.0),
            ),
            Side::Short => (
                short(&[100.0], &[90.0], Some(105.0)),
                bar(2, 100.0, 106.0, 89.0, 95.0),
            ),
        };
        let o = run(&simple(t), &[tick(1, 100.0), b]);
        assert_eq!(o.status, Status::Stopped, "{side:?}");
        assert!(o.targets_hit.is_empty(), "{side:?}");
        let exit = o.exit.as_ref().expect("exit");
        assert_eq!(
            exit.touch.price,
            if side == Side::Long { 95.0 } else { 105.0 }
        );
        assert!(exit.touch.ambiguous);
        assert_eq!(exit.touch.until, Some(at(2) + Duration::seconds(59)));
        assert_eq!(o.result_r(), Some(-1.0));
        assert_eq!(o.quality.ambiguous_bars, 1);
        assert!(o.ambiguous());
        assert!(
            !o.entry.as_ref().is_some_and(|e| e.ambiguous),
            "entry was a tick"
        );
    }
}

#[test]
fn a_bar_touching_entry_and_stop_counts_a_loss_not_a_missed_trade() {
    // Opens between stop and entry: up to the entry first, or down to the stop first. The
    // worse order (entered, then stopped) counts.
    let h = simple(long(&[100.0], &[110.0], Some(95.0)));
    let o = run(&h, &[bar(1, 97.0, 101.0, 94.0, 98.0)]);
    assert_eq!(o.status, Status::Stopped);
    assert_eq!(o.result_r(), Some(-1.0));
    assert!(o.entry.as_ref().is_some_and(|e| e.ambiguous));
    assert!(o.exit.as_ref().is_some_and(|e| e.touch.ambiguous));
    assert_eq!(o.quality.ambiguous_bars, 1);
}

#[test]
fn a_bar_that_can_only_go_one_way_is_not_ambiguous() {
    // From 101 every path to 94 crosses the entry (100) before the stop (95).
    let h = simple(long(&[100.0], &[110.0], Some(95.0)));
    let o = run(&h, &[bar(1, 101.0, 102.0, 94.0, 98.0)]);
    assert_eq!(o.status, Status::Stopped);
    assert_eq!(o.quality.ambiguous_bars, 0);
    assert!(!o.ambiguous());
    // A bar reaching only a target.
    let o = run(&h, &[tick(1, 100.0), bar(2, 100.0, 112.0, 99.0, 111.0)]);
    assert_eq!(o.status, Status::TargetsHit);
    assert!(!o.ambiguous());
}

#[test]
fn a_bar_touching_entry_and_target_does_not_count_the_target() {
    let h = simple(long(&[100.0, 105.0], &[115.0, 130.0], Some(90.0)));
    let o = run(&h, &[bar(1, 110.0, 120.0, 101.0, 112.0)]);
    assert_eq!(o.status, Status::Entered);
    assert_eq!(
        o.entry.as_ref().map(|e| (e.price, e.ambiguous)),
        Some((105.0, true))
    );
    assert!(o.targets_hit.is_empty());
    assert_eq!(o.quality.ambiguous_bars, 1);
}

#[test]
fn backfilled_bars_and_gaps_are_lower_precision() {
    let h = simple(long(&[100.0], &[110.0, 120.0], Some(95.0)));
    let o = run(
        &h,
        &[tick(1, 100.0), backfilled(2, 100.0, 111.0, 99.0, 108.0)],
    );
    assert_eq!(o.targets_hit[0].touch.source, Source::Backfill);
    assert_eq!(o.quality.backfilled_bars, 1);
    assert!(o.lower_precision());

    let o = run(
        &h,
        &[
            tick(1, 100.0),
            Market::Gap {
                from: at(2),
                to: at(30),
            },
            tick(30, 112.0),
            tick(31, 113.0),
        ],
    );
    assert_eq!(o.quality.gaps, 1);
    assert_eq!(o.targets_hit[0].touch.source, Source::Gap);
    assert!(o.lower_precision());

    let o = run(&h, &[tick(1, 100.0), tick(2, 112.0)]);
    assert!(!o.lower_precision());
}

#[test]
fn an_edit_after_entry_moves_the_stop_only_for_later_prices() {
    let first = long(&[100.0], &[120.0], Some(90.0));
    let moved = long(&[100.0], &[120.0], Some(95.0));
    let h = history(first, vec![(10, moved)], None);
    // 93 before the edit is above the old stop; after the edit 96 is above the new one.
    let o = run(&h, &[tick(1, 100.0), tick(5, 93.0), tick(11, 96.0)]);
    assert_eq!(o.status, Status::Entered);
    assert_eq!(
        (o.revision, o.stop, o.stop_at_entry),
        (2, Some(95.0), Some(90.0))
    );
    assert_eq!(
        o.revisions
            .iter()
            .map(|r| (r.revision, r.judged))
            .collect::<Vec<_>>(),
        vec![(1, Judged::Applied), (2, Judged::LevelsOnly)]
    );
    let o = run(
        &h,
        &[
            tick(1, 100.0),
            tick(5, 93.0),
            tick(11, 96.0),
            tick(12, 94.5),
        ],
    );
    let exit = o.exit.as_ref().expect("stopped");
    assert_eq!((exit.touch.price, exit.touch.revision), (94.5, 2));
    assert_eq!(o.entry.as_ref().map(|e| e.revision), Some(1));
    // R stays measured against the stop at entry (risk 10).
    assert!(close(o.result_r().unwrap_or_default(), -0.55));
    // The edit does not reach back: 93 at minute 5 is not a stop at 95.
    assert_eq!(exit.touch.at, at(12));
}

#[test]
fn an_edit_that_tightens_the_stop_past_the_price_stops_at_the_next_price() {
    let h = history(
        long(&[100.0], &[120.0], Some(90.0)),
        vec![(10, long(&[100.0], &[120.0], Some(95.0)))],
        None,
    );
    let o = run(&h, &[tick(1, 100.0), tick(5, 93.0), tick(11, 93.5)]);
    let exit = o.exit.as_ref().expect("stopped");
    assert_eq!(
        (exit.touch.price, exit.touch.at, exit.touch.revision),
        (93.5, at(11), 2)
    );
}

#[test]
fn edits_after_entry_keep_the_fill_and_side_and_pair_changes_are_ignored() {
    let h = history(
        long(&[100.0], &[120.0], Some(90.0)),
        vec![
            (10, long(&[80.0], &[130.0], Some(90.0))),
            (20, short(&[100.0], &[80.0], Some(110.0))),
            (
                30,
                g3_outcomes::Trade {
                    pair: "ETH/USDT".into(),
                    ..long(&[100.0], &[101.0], Some(99.0))
                },
            ),
        ],
        None,
    );
    let o = run(
        &h,
        &[
            tick(1, 100.0),
            tick(11, 105.0),
            tick(21, 106.0),
            tick(31, 107.0),
        ],
    );
    assert_eq!(o.entry.as_ref().map(|e| e.price), Some(100.0));
    assert_eq!(o.entry_zone, Some((100.0, 100.0)));
    assert_eq!(
        (o.side, o.targets.clone(), o.revision),
        (Side::Long, vec![130.0], 2)
    );
    assert_eq!(
        o.revisions.iter().map(|r| r.judged).collect::<Vec<_>>(),
        vec![
            Judged::Applied,
            Judged::LevelsOnly,
            Judged::IgnoredSideChanged,
            Judged::IgnoredPairChanged
        ]
    );
    assert_eq!(o.edits, 3);
}

#[test]
fn an_edit_before_entry_changes_everything_from_its_time() {
    let h = history(
        long(&[100.0], &[120.0], Some(90.0)),
        vec![(10, short(&[110.0], &[100.0], Some(115.0)))],
        None,
    );
    // Before the edit 100 would have filled the long; it never came.
    let o = run(
        &h,
        &[
            tick(1, 105.0),
            tick(11, 108.0),
            tick(12, 111.0),
            tick(13, 99.0),
        ],
    );
    assert_eq!(o.side, Side::Short);
    let entry = o.entry.as_ref().expect("entered");
    assert_eq!((entry.price, entry.revision), (110.0, 2));
    assert_eq!(o.status, Status::TargetsHit);
    assert!(close(o.result_r().unwrap_or_default(), 2.0));
}

#[test]
fn a_delete_before_entry_cancels_and_after_entry_changes_nothing() {
    let t = long(&[100.0], &[110.0], Some(95.0));
    let before = history(t.clone(), Vec::new(), Some(5));
    let o = run(&before, &[tick(1, 103.0), tick(6, 100.0)]);
    assert_eq!(o.status, Status::Cancelled);
    assert_eq!(o.ended_at, Some(at(5)));
    assert!(o.entry.is_none());
    // Known without a later price once the caller says time has passed.
    let o = evaluate(&before, Rules::default(), &[tick(1, 103.0)], Some(at(5))).expect("ok");
    assert_eq!(o.status, Status::Cancelled);

    let after = history(t, Vec::new(), Some(5));
    let o = run(&after, &[tick(1, 100.0), tick(6, 111.0)]);
    assert_eq!(o.status, Status::TargetsHit);
    assert!(o.deleted_after_entry());
    assert_eq!(o.deleted_at, Some(at(5)));
}

#[test]
fn the_time_limit_expires_unfilled_signals_and_closes_open_ones_at_the_last_price() {
    let h = simple(long(&[100.0], &[120.0], Some(90.0)));
    let week = 7 * 24 * 60;
    let o = run(&h, &[tick(1, 105.0), tick(week + 1, 100.0)]);
    assert_eq!(o.status, Status::ExpiredUnfilled);
    assert_eq!(o.ended_at, Some(at(week)));
    assert!(o.entry.is_none());

    let o = run(&h, &[tick(1, 100.0), tick(2, 104.0), tick(week, 130.0)]);
    assert_eq!(o.status, Status::Expired);
    let exit = o.exit.as_ref().expect("closed");
    assert_eq!(
        (exit.reason, exit.touch.price, exit.touch.at),
        (ExitReason::TimeLimit, 104.0, at(week))
    );
    assert!(close(o.result_r().unwrap_or_default(), 0.4));

    let rules = Rules {
        time_limit: Duration::hours(1),
    };
    let o = evaluate(&h, rules, &[tick(1, 100.0), tick(2, 103.0)], Some(at(60))).expect("ok");
    assert_eq!((o.status, o.expires_at), (Status::Expired, at(60)));
}

#[test]
fn no_entry_price_enters_at_the_first_price_after_the_post() {
    let h = simple(long(&[], &[110.0], Some(95.0)));
    let o = run(&h, &[tick(-1, 90.0), tick(1, 101.0), tick(2, 111.0)]);
    let entry = o.entry.as_ref().expect("entered");
    assert_eq!((entry.price, entry.at), (101.0, at(1)));
    assert_eq!(o.entry_zone, None);
    assert_eq!(o.status, Status::TargetsHit);
    assert_eq!(
        o.quality.ticks, 2,
        "the price before the post is not judged"
    );
}

#[test]
fn no_stop_means_no_r_but_a_percent_result() {
    let h = simple(long(&[100.0], &[110.0], None));
    let o = run(&h, &[tick(1, 100.0), tick(2, 111.0)]);
    assert_eq!(o.status, Status::TargetsHit);
    assert_eq!(
        (o.risk, o.result_r(), o.result_pct()),
        (None, None, Some(10.0))
    );
    // A stop above a long's entry is met before the entry from any side: never a trade.
    let h = simple(long(&[100.0], &[130.0], Some(105.0)));
    for path in [
        [tick(1, 110.0), tick(2, 99.0)],
        [tick(1, 95.0), tick(2, 101.0)],
    ] {
        assert_eq!(run(&h, &path).status, Status::StoppedBeforeEntry);
    }
}

#[test]
fn the_stream_is_checked_and_a_refused_item_changes_nothing() {
    let h = simple(long(&[100.0], &[110.0], Some(95.0)));
    let mut t = Tracker::new(h, Rules::default());
    t.push(&tick(5, 100.0)).expect("ok");
    let before = t.outcome().clone();
    assert!(matches!(
        t.push(&tick(4, 111.0)),
        Err(StreamError::OutOfOrder { .. })
    ));
    assert!(matches!(
        t.push(&tick(6, f64::NAN)),
        Err(StreamError::InvalidPrice { .. })
    ));
    assert!(matches!(
        t.push(&bar(6, 100.0, 99.0, 98.0, 100.0)),
        Err(StreamError::InvalidBar { .. })
    ));
    assert_eq!(t.outcome(), &before);
    t.advance_to(at(10));
    assert!(matches!(
        t.push(&tick(9, 111.0)),
        Err(StreamError::OutOfOrder { .. })
    ));
    t.push(&tick(10, 111.0)).expect("ok at the watermark");
    assert_eq!(t.outcome().status, Status::TargetsHit);
}

#[test]
fn a_later_history_is_taken_only_if_it_does_not_rewrite_what_was_judged() {
    let first = long(&[100.0], &[120.0], Some(90.0));
    let h = simple(first.clone());
    let mut t = Tracker::new(h.clone(), Rules::default());
    t.push_all(&[tick(1, 100.0), tick(5, 105.0)]).expect("ok");
    let later = history(
        first.clone(),
        vec![(6, long(&[100.0], &[120.0], Some(99.0)))],
        None,
    );
    t.revise(later.clone())
        .expect("an edit after the last price");
    t.push(&tick(7, 98.0)).expect("ok");
    assert_eq!(t.outcome().status, Status::Stopped);
    // The same as judging the whole history at once.
    let whole = run(&later, &[tick(1, 100.0), tick(5, 105.0), tick(7, 98.0)]);
    assert_eq!(t.outcome(), &whole);

    let mut t = Tracker::new(h, Rules::default());
    t.push_all(&[tick(1, 100.0), tick(5, 105.0)]).expect("ok");
    let past = history(
        first,
        vec![(3, long(&[100.0], &[120.0], Some(99.0)))],
        Some(4),
    );
    let replay = t.revise(past).expect_err("rewrites minute 3");
    assert_eq!(replay.from, POSTED);
}

#[test]
fn histories_are_validated() {
    let rev = |n: i64, m: i64| Revision {
        revision: n,
        effective_at: at(m),
        trade: long(&[100.0], &[110.0], Some(95.0)),
    };
    assert!(History::new(Vec::new(), None).is_err());
    assert!(History::new(vec![rev(1, 0), rev(1, 1)], None).is_err());
    assert!(History::new(vec![rev(1, 5), rev(2, 1)], None).is_err());
    assert!(History::new(vec![rev(1, 5)], Some(at(4))).is_err());
    let mut bad = rev(1, 0);
    bad.trade.stop = Some(-1.0);
    assert!(History::new(vec![bad], None).is_err());
}

#[test]
fn untrackable_signals_are_an_outcome_too() {
    let h = simple(long(&[100.0], &[110.0], Some(95.0)));
    let o = Outcome::untrackable(&h, Duration::days(7), "pair not listed on Binance");
    assert_eq!(o.status, Status::Untrackable);
    assert!(o.status.is_final());
    assert_eq!(o.untrackable.as_deref(), Some("pair not listed on Binance"));
}

#[test]
fn the_outcome_round_trips_through_json() {
    let h = history(
        long(&[100.0, 102.0], &[110.0, 120.0], Some(95.0)),
        vec![(10, long(&[100.0, 102.0], &[110.0, 125.0], Some(97.0)))],
        Some(40),
    );
    let o = run(
        &h,
        &[
            tick(1, 103.0),
            tick(2, 101.0),
            bar(5, 101.0, 111.0, 100.5, 110.0),
            tick(11, 112.0),
            backfilled(20, 112.0, 126.0, 96.0, 120.0),
        ],
    );
    let json = serde_json::to_string(&o).expect("serialize");
    let back: Outcome = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, o);
    assert!(json.contains("\"status\":\"stopped\""), "{json}");
}
