//! Properties over random signals and price streams: any chunking of the stream (with or
//! without time declared between chunks) gives the same outcome as one pass and as a replay;
//! a short judged on mirrored prices is the long's twin; shares, states and flags stay sane.

mod common;

use common::*;
use g3_core::signal::Side;
use g3_outcomes::{
    Bar, History, Market, Outcome, Revision, Rules, Source, Status, Tick, Tracker, Trade, evaluate,
};
use proptest::prelude::*;
use time::Duration;

/// Prices on a half-unit grid between 60 and 140, so that mirroring (`200 - p`) is exact.
fn price() -> impl Strategy<Value = f64> {
    (120u32..=280).prop_map(|h| f64::from(h) / 2.0)
}

fn trade_strategy() -> impl Strategy<Value = Trade> {
    (
        prop::bool::ANY,
        prop::collection::vec(price(), 0..=3),
        prop::collection::vec(price(), 0..=3),
        prop::option::weighted(0.85, price()),
    )
        .prop_map(|(is_long, entries, targets, stop)| {
            trade(
                if is_long { Side::Long } else { Side::Short },
                &entries,
                &targets,
                stop,
            )
        })
}

fn history_strategy() -> impl Strategy<Value = History> {
    (
        trade_strategy(),
        prop::collection::vec((1i64..120, trade_strategy()), 0..=2),
        prop::option::weighted(0.3, 0i64..240),
    )
        .prop_map(|(first, mut edits, deleted)| {
            edits.sort_by_key(|(m, _)| *m);
            edits.dedup_by_key(|(m, _)| *m);
            history(first, edits, deleted)
        })
}

#[derive(Debug, Clone)]
enum Step {
    Tick(i32),
    Bar(i32, u8, u8, i32),
    Gap(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (-8i32..=8).prop_map(Step::Tick),
        3 => (-6i32..=6, 0u8..8, 0u8..8, -6i32..=6).prop_map(|(o, u, d, c)| Step::Bar(o, u, d, c)),
        1 => (1u8..20).prop_map(Step::Gap),
    ]
}

/// A time-ordered stream from a random walk, starting a little before the post.
fn stream_strategy() -> impl Strategy<Value = Vec<Market>> {
    (
        price(),
        -3i64..3,
        prop::collection::vec((step(), 1i64..4), 1..60),
    )
        .prop_map(|(start, first_minute, steps)| {
            let clamp = |h: i32| h.clamp(120, 280);
            let mut level = (start * 2.0) as i32;
            let mut minute = first_minute;
            let mut items = Vec::new();
            for (s, advance) in steps {
                let p = |h: i32| f64::from(h) / 2.0;
                match s {
                    Step::Tick(d) => {
                        level = clamp(level + d);
                        items.push(tick(minute, p(level)));
                        minute += advance;
                    }
                    Step::Bar(o, up, down, c) => {
                        let open = clamp(level + o);
                        let close = clamp(open + c);
                        let high = clamp(open.max(close) + i32::from(up));
                        let low = clamp(open.min(close) - i32::from(down));
                        let b = Bar {
                            open_time: at(minute),
                            close_time: at(minute) + Duration::seconds(59),
                            open: p(open),
                            high: p(high),
                            low: p(low),
                            close: p(close),
                            backfilled: advance == 3,
                        };
                        items.push(Market::Bar(b));
                        level = close;
                        minute += advance;
                    }
                    Step::Gap(len) => {
                        let to = minute + i64::from(len);
                        items.push(Market::Gap {
                            from: at(minute),
                            to: at(to),
                        });
                        minute = to;
                    }
                }
            }
            items
        })
}

fn rules_strategy() -> impl Strategy<Value = Rules> {
    (20i64..200).prop_map(|m| Rules {
        time_limit: Duration::minutes(m),
    })
}

fn mirror_price(p: f64) -> f64 {
    200.0 - p
}

fn mirror_trade(t: &Trade) -> Trade {
    Trade {
        side: match t.side {
            Side::Long => Side::Short,
            Side::Short => Side::Long,
        },
        entries: t.entries.iter().copied().map(mirror_price).collect(),
        targets: t.targets.iter().copied().map(mirror_price).collect(),
        stop: t.stop.map(mirror_price),
        ..t.clone()
    }
}

fn mirror_history(h: &History) -> History {
    let revisions = h
        .revisions()
        .iter()
        .map(|r| Revision {
            trade: mirror_trade(&r.trade),
            ..r.clone()
        })
        .collect();
    History::new(revisions, h.deleted_at()).expect("mirrored history")
}

fn mirror_item(m: &Market) -> Market {
    match m {
        Market::Tick(t) => Market::Tick(Tick {
            price: mirror_price(t.price),
            ..*t
        }),
        Market::Bar(b) => Market::Bar(Bar {
            open: mirror_price(b.open),
            high: mirror_price(b.low),
            low: mirror_price(b.high),
            close: mirror_price(b.close),
            ..*b
        }),
        gap => *gap,
    }
}

/// What must match between a signal and its mirror: everything but prices and percents.
fn shape(o: &Outcome) -> impl PartialEq + std::fmt::Debug {
    (
        o.status,
        o.entry
            .as_ref()
            .map(|e| (e.at, e.revision, e.source, e.ambiguous)),
        o.targets_hit
            .iter()
            .map(|h| (h.index, h.touch.at, h.touch.ambiguous, h.r, h.share))
            .collect::<Vec<_>>(),
        o.exit
            .as_ref()
            .map(|e| (e.reason, e.touch.at, e.touch.ambiguous, e.r, e.share)),
        o.stop_before_entry.as_ref().map(|t| t.at),
        o.realized_r,
        o.risk,
        o.ended_at,
        o.quality.clone(),
        o.revisions.iter().map(|r| r.judged).collect::<Vec<_>>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn chunking_and_replay_do_not_change_the_outcome(
        h in history_strategy(),
        items in stream_strategy(),
        rules in rules_strategy(),
        cuts in prop::collection::vec(0usize..64, 0..6),
        declare_time in prop::bool::ANY,
    ) {
        let whole = evaluate(&h, rules, &items, None).expect("valid stream");
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (items.len() + 1)).collect();
        cuts.sort_unstable();
        let mut tracker = Tracker::new(h.clone(), rules);
        let mut from = 0;
        for cut in cuts.into_iter().chain([items.len()]) {
            tracker.push_all(&items[from..cut]).expect("valid stream");
            if declare_time && let Some(next) = items.get(cut) {
                tracker.advance_to(next.start());
            }
            from = cut;
        }
        prop_assert_eq!(tracker.outcome(), &whole);
        let again = evaluate(&h, rules, &items, None).expect("valid stream");
        prop_assert_eq!(&again, &whole);
        let json = serde_json::to_string(&whole).expect("serialize");
        let back: Outcome = serde_json::from_str(&json).expect("deserialize");
        prop_assert_eq!(&back, &whole);
    }

    #[test]
    fn a_short_on_mirrored_prices_is_the_long_twin(
        h in history_strategy(),
        items in stream_strategy(),
        rules in rules_strategy(),
    ) {
        let o = evaluate(&h, rules, &items, None).expect("valid stream");
        let mirrored: Vec<Market> = items.iter().map(mirror_item).collect();
        let m = evaluate(&mirror_history(&h), rules, &mirrored, None).expect("valid stream");
        prop_assert_eq!(shape(&o), shape(&m));
        if let (Some(a), Some(b)) = (&o.entry, &m.entry) {
            prop_assert_eq!(a.price, mirror_price(b.price));
        }
    }

    #[test]
    fn outcomes_stay_consistent(
        h in history_strategy(),
        items in stream_strategy(),
        rules in rules_strategy(),
    ) {
        let o = evaluate(&h, rules, &items, None).expect("valid stream");
        prop_assert_eq!(o.status.is_final(), o.ended_at.is_some());
        prop_assert!((0.0..=1.0).contains(&o.open_share));
        let closed: f64 = o.targets_hit.iter().map(|t| t.share).sum::<f64>()
            + o.exit.iter().map(|e| e.share).sum::<f64>();
        let position = if o.entry.is_some() { 1.0 } else { 0.0 };
        let unaccounted = (closed + o.open_share - position).abs();
        prop_assert!(unaccounted < 1e-6);
        if o.status.is_closed_trade() {
            prop_assert_eq!(o.open_share, 0.0);
            prop_assert!(o.result_pct().is_some());
        }
        if let (Some(e), Some((lo, hi))) = (&o.entry, o.entry_zone) {
            prop_assert!(lo <= e.price && e.price <= hi, "{} outside {lo}..{hi}", e.price);
        }
        let mut indices: Vec<usize> = o.targets_hit.iter().map(|t| t.index).collect();
        indices.sort_unstable();
        indices.dedup();
        prop_assert_eq!(indices.len(), o.targets_hit.len());
        let touches = o.entry.iter()
            .chain(o.targets_hit.iter().map(|t| &t.touch))
            .chain(o.exit.iter().map(|e| &e.touch))
            .chain(o.stop_before_entry.iter());
        for t in touches {
            prop_assert!(!t.ambiguous || matches!(t.source, Source::Bar | Source::Backfill));
            prop_assert!(t.at >= o.posted_at);
        }
        if !items.iter().any(|i| matches!(i, Market::Bar(_))) {
            prop_assert_eq!(o.quality.ambiguous_bars, 0);
        }
        if o.status == Status::Cancelled {
            prop_assert!(o.entry.is_none());
        }
        // Nothing after the end changes the outcome.
        if o.status.is_final() {
            let last = items.last().map_or(o.posted_at, Market::end);
            let mut more = items.clone();
            more.push(tick_at(last + Duration::minutes(1), 61.0));
            more.push(tick_at(last + Duration::minutes(2), 139.0));
            let after = evaluate(&h, rules, &more, None).expect("valid stream");
            prop_assert_eq!(after, o);
        }
    }
}

fn tick_at(time: time::OffsetDateTime, price: f64) -> Market {
    Market::Tick(Tick { time, price })
}
