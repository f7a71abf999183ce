//! The band of prices that decide nothing ([`Tracker::band`]): its edges for each state, and
//! the property the live tracker relies on to cut bars at decisive trades — an item inside the
//! band never changes an event and is never an ambiguous bar, whatever came before.

mod common;

use common::*;
use g3_outcomes::{Band, Bar, Market, Outcome, Rules, Tick, Tracker};
use proptest::prelude::*;
use time::Duration;

fn band_after(h: &g3_outcomes::History, items: &[Market]) -> Band {
    let mut t = Tracker::new(h.clone(), Rules::default());
    t.push_all(items).expect("valid stream");
    t.band()
}

#[test]
fn before_any_price_only_the_post_matters() {
    let b = band_after(&simple(long(&[100.0], &[110.0], Some(90.0))), &[]);
    assert_eq!((b.low, b.high), (f64::NEG_INFINITY, f64::INFINITY));
    assert_eq!(b.until, Some(POSTED));
    assert!(b.holds(POSTED - Duration::SECOND, 100.0));
    assert!(!b.holds(POSTED, 120.0));
}

#[test]
fn waiting_below_the_zone_the_stop_and_the_zone_bound_it() {
    let h = simple(long(&[100.0, 104.0], &[110.0], Some(90.0)));
    let b = band_after(&h, &[tick(1, 95.0)]);
    assert_eq!((b.low, b.high), (90.0, 100.0));
    assert_eq!(b.until, Some(POSTED + Duration::days(7)));
    // Above the zone: only the zone's top matters (falling into it fills there).
    let b = band_after(&h, &[tick(1, 107.0)]);
    assert_eq!((b.low, b.high), (104.0, f64::INFINITY));
}

#[test]
fn entered_the_stop_and_the_next_target_bound_it_and_a_short_is_mirrored() {
    let h = simple(long(&[100.0], &[110.0, 120.0], Some(90.0)));
    let b = band_after(&h, &[tick(1, 100.0), tick(2, 111.0)]);
    assert_eq!((b.low, b.high), (90.0, 120.0));
    let h = simple(short(&[100.0], &[90.0, 80.0], Some(110.0)));
    let b = band_after(&h, &[tick(1, 100.0)]);
    assert_eq!((b.low, b.high), (90.0, 110.0));
}

#[test]
fn an_edit_or_a_deletion_ahead_ends_it_in_time_and_a_final_outcome_has_no_edges() {
    let first = long(&[100.0], &[110.0], Some(90.0));
    let h = history(
        first.clone(),
        vec![(5, long(&[100.0], &[110.0], Some(95.0)))],
        None,
    );
    assert_eq!(band_after(&h, &[tick(1, 95.0)]).until, Some(at(5)));
    let h = history(first.clone(), Vec::new(), Some(3));
    assert_eq!(band_after(&h, &[tick(1, 95.0)]).until, Some(at(3)));
    let done = band_after(&simple(first), &[tick(1, 100.0), tick(2, 111.0)]);
    assert_eq!(done, Band::ALL);
    let several = Band {
        low: 90.0,
        high: 120.0,
        until: Some(at(9)),
    }
    .meet(Band {
        low: 95.0,
        high: 130.0,
        until: None,
    });
    assert_eq!(
        (several.low, several.high, several.until),
        (95.0, 120.0, Some(at(9)))
    );
}

/// What a reader acts on, and whether a bar was ambiguous.
fn events(o: &Outcome) -> impl PartialEq + std::fmt::Debug + use<> {
    (
        o.status,
        o.revision,
        o.entry.clone(),
        o.targets_hit.clone(),
        o.exit.clone(),
        o.stop_before_entry.clone(),
        o.ended_at,
        o.revisions.clone(),
        o.quality.ambiguous_bars,
    )
}

/// Prices on a quarter-unit grid strictly inside `(low, high)`, within 60..=140.
fn inside(band: &Band) -> Vec<f64> {
    (240..=560)
        .map(|q| f64::from(q) / 4.0)
        .filter(|p| band.low < *p && *p < band.high)
        .collect()
}

fn price() -> impl Strategy<Value = f64> {
    (120u32..=280).prop_map(|h| f64::from(h) / 2.0)
}

fn trade_strategy() -> impl Strategy<Value = g3_outcomes::Trade> {
    (
        prop::bool::ANY,
        prop::collection::vec(price(), 0..=2),
        prop::collection::vec(price(), 0..=3),
        prop::option::weighted(0.85, price()),
    )
        .prop_map(|(is_long, entries, targets, stop)| {
            if is_long {
                long(&entries, &targets, stop)
            } else {
                short(&entries, &targets, stop)
            }
        })
}

fn history_strategy() -> impl Strategy<Value = g3_outcomes::History> {
    (
        trade_strategy(),
        prop::option::weighted(0.4, (1i64..60, trade_strategy())),
        prop::option::weighted(0.2, 0i64..90),
    )
        .prop_map(|(first, edit, deleted)| history(first, edit.into_iter().collect(), deleted))
}

/// Ticks and one-minute bars of a random walk, from a little before the post.
fn stream_strategy() -> impl Strategy<Value = Vec<Market>> {
    (
        price(),
        prop::collection::vec((prop::bool::ANY, -8i32..=8, 0u8..6, 0u8..6), 1..40),
    )
        .prop_map(|(start, steps)| {
            let mut level = (start * 2.0) as i32;
            let p = |h: i32| f64::from(h.clamp(120, 280)) / 2.0;
            steps
                .into_iter()
                .enumerate()
                .map(|(m, (is_tick, d, up, down))| {
                    let m = m as i64 - 2;
                    let open = level;
                    level = (level + d).clamp(120, 280);
                    if is_tick {
                        tick(m, p(level))
                    } else {
                        let high = open.max(level) + i32::from(up);
                        let low = open.min(level) - i32::from(down);
                        bar(m, p(open), p(high), p(low), p(level))
                    }
                })
                .collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn an_item_inside_the_band_decides_nothing(
        h in history_strategy(),
        items in stream_strategy(),
        split in 0usize..40,
        picks in (0usize..1000, 0usize..1000, 0usize..1000, 0usize..1000),
        as_bar in prop::bool::ANY,
    ) {
        let split = split % (items.len() + 1);
        let mut tracker = Tracker::new(h, Rules::default());
        tracker.push_all(&items[..split]).expect("valid stream");
        let band = tracker.band();
        let start = items
            .get(split)
            .map_or_else(|| items[items.len() - 1].end() + Duration::SECOND, Market::start);
        let prices = inside(&band);
        prop_assume!(!prices.is_empty() && band.until.is_none_or(|u| start < u));
        let pick = |i: usize| prices[i % prices.len()];
        let probe = if as_bar {
            let mut four = [pick(picks.0), pick(picks.1), pick(picks.2), pick(picks.3)];
            four.sort_by(f64::total_cmp);
            Market::Bar(Bar {
                open_time: start,
                close_time: start + Duration::milliseconds(999),
                open: four[1],
                high: four[3],
                low: four[0],
                close: four[2],
                backfilled: false,
            })
        } else {
            Market::Tick(Tick { time: start, price: pick(picks.0) })
        };
        let before = events(tracker.outcome());
        tracker.push(&probe).expect("in order");
        prop_assert_eq!(events(tracker.outcome()), before);
        // ... and the band is the same afterwards, so a run of such items needs one look-up.
        prop_assert_eq!(tracker.band(), band);
    }
}
