//! Stats on a hand-computed book of signals: windows, routes, win rate, net and average R,
//! drawdown over the equity curve, target hit rates, and every no-trade in its own column.

mod common;

use common::{close, long};
use g3_outcomes::stats::{Tracked, Window, report};
use g3_outcomes::{History, Market, Outcome, Revision, Rules, Tick, Trade, evaluate};
use time::{Duration, OffsetDateTime, macros::datetime};

const AS_OF: OffsetDateTime = datetime!(2025-06-01 00:00 UTC);

fn days_ago(d: i64) -> OffsetDateTime {
    AS_OF - Duration::days(d)
}

fn tick(t: OffsetDateTime, minutes: i64, price: f64) -> Market {
    Market::Tick(Tick {
        time: t + Duration::minutes(minutes),
        price,
    })
}

fn hist(posted: OffsetDateTime, revs: Vec<(i64, Trade)>, deleted: Option<i64>) -> History {
    let revisions = revs
        .into_iter()
        .enumerate()
        .map(|(n, (m, trade))| Revision {
            revision: n as i64 + 1,
            effective_at: posted + Duration::minutes(m),
            trade,
        })
        .collect();
    History::new(revisions, deleted.map(|m| posted + Duration::minutes(m))).expect("history")
}

fn judge(h: &History, prices: &[Market]) -> Outcome {
    evaluate(h, Rules::default(), prices, Some(AS_OF)).expect("stream")
}

/// Long at 100, stop 90 (risk 10): a win of `r` R at its only target an hour after posting.
fn winner(posted: OffsetDateTime, r: f64) -> Outcome {
    let target = 100.0 + 10.0 * r;
    let h = hist(
        posted,
        vec![(0, long(&[100.0], &[target], Some(90.0)))],
        None,
    );
    judge(
        &h,
        &[tick(posted, 1, 100.0), tick(posted, 60, target + 1.0)],
    )
}

/// Long at 100, stop 90: stopped an hour after posting, filled at `exit` (a jump past the stop).
fn loser(posted: OffsetDateTime, exit: f64) -> Outcome {
    let h = hist(
        posted,
        vec![(0, long(&[100.0], &[130.0], Some(90.0)))],
        None,
    );
    judge(&h, &[tick(posted, 1, 100.0), tick(posted, 60, exit)])
}

struct Book {
    outcomes: Vec<(String, &'static str, Outcome)>,
}

fn book() -> Book {
    let t = long(&[100.0], &[130.0], Some(90.0));
    let cancelled = {
        let p = days_ago(2);
        judge(
            &hist(p, vec![(0, t.clone())], Some(30)),
            &[tick(p, 1, 105.0)],
        )
    };
    let stopped_first = {
        let p = days_ago(4);
        judge(
            &hist(p, vec![(0, t.clone())], None),
            &[tick(p, 1, 95.0), tick(p, 2, 89.0)],
        )
    };
    let waiting_edited_no_stop = {
        let p = days_ago(6);
        let edits = vec![
            (0, long(&[100.0], &[130.0], None)),
            (10, long(&[99.0], &[130.0], None)),
        ];
        judge(&hist(p, edits, None), &[tick(p, 1, 105.0)])
    };
    let open_deleted = {
        let p = days_ago(2);
        judge(
            &hist(p, vec![(0, t.clone())], Some(30)),
            &[tick(p, 1, 100.0), tick(p, 40, 101.0)],
        )
    };
    let untrackable = Outcome::untrackable(
        &hist(days_ago(10), vec![(0, t)], None),
        Duration::days(7),
        "pair not listed",
    );
    let rows: Vec<(&'static str, &'static str, Outcome)> = vec![
        ("s01", "a", winner(days_ago(100), 2.0)),
        ("s02", "b", loser(days_ago(60), 90.0)),
        ("s03", "a", loser(days_ago(20), 90.0)),
        ("s04", "b", winner(days_ago(5), 3.0)),
        ("s05", "a", loser(days_ago(3), 85.0)),
        ("s06", "a", loser(days_ago(1), 90.0)),
        ("s07", "b", cancelled),
        ("s08", "a", stopped_first),
        ("s09", "b", waiting_edited_no_stop),
        ("s10", "a", untrackable),
        ("s11", "a", open_deleted),
    ];
    Book {
        outcomes: rows
            .into_iter()
            .map(|(id, route, o)| (id.to_owned(), route, o))
            .collect(),
    }
}

impl Book {
    fn tracked(&self) -> Vec<Tracked<'_>> {
        self.outcomes
            .iter()
            .map(|(id, route, o)| Tracked {
                signal_id: id,
                route,
                outcome: o,
            })
            .collect()
    }
}

#[test]
fn all_time_counts_every_signal_and_computes_the_drawdown_by_hand() {
    let b = book();
    let r = report(&b.tracked(), AS_OF);
    let all = &r
        .windows
        .iter()
        .find(|w| w.window == Window::AllTime)
        .expect("all")
        .overall;
    assert_eq!(all.signals, 11);
    assert_eq!(
        (all.closed, all.stopped, all.targets_hit, all.expired),
        (6, 4, 2, 0)
    );
    assert_eq!((all.wins, all.losses, all.breakeven), (2, 4, 0));
    assert!(close(all.win_rate.unwrap_or_default(), 2.0 / 6.0));
    assert_eq!(
        (
            all.cancelled,
            all.stopped_before_entry,
            all.waiting,
            all.open,
            all.untrackable
        ),
        (1, 1, 1, 1, 1)
    );
    // R in closing order: +2, -1, -1, +3, -1.5, -1 → 2, 1, 0, 3, 1.5, 0.5.
    let curve: Vec<f64> = all.curve.iter().map(|p| p.cumulative_r).collect();
    assert_eq!(curve, vec![2.0, 1.0, 0.0, 3.0, 1.5, 0.5]);
    assert_eq!(all.with_r, 6);
    assert!(close(all.net_r, 0.5));
    assert!(close(all.average_r.unwrap_or_default(), 0.5 / 6.0));
    // Peak 3 down to 0.5.
    assert!(close(all.max_drawdown_r, 2.5));
    assert!(close(all.net_pct, 5.0));
    assert_eq!(all.curve_start, Some(days_ago(100)));
    assert_eq!(all.curve[0].at, days_ago(100) + Duration::minutes(60));
    // TP1 of the six closed trades: the two winners.
    assert_eq!(all.target_rates.len(), 1);
    assert_eq!((all.target_rates[0].hit, all.target_rates[0].of), (2, 6));
    assert_eq!(
        (
            all.no_stop,
            all.edited,
            all.deleted,
            all.deleted_after_entry
        ),
        (1, 1, 2, 1)
    );
    assert!(close(all.no_stop_share.unwrap_or_default(), 1.0 / 11.0));
    assert!(close(all.delete_rate.unwrap_or_default(), 2.0 / 11.0));
    assert_eq!(all.ambiguous_bars, 0);
}

#[test]
fn windows_cover_the_signals_posted_in_them() {
    let b = book();
    let r = report(&b.tracked(), AS_OF);
    let w = |window: Window| {
        &r.windows
            .iter()
            .find(|w| w.window == window)
            .expect("w")
            .overall
    };
    // 90 days: -1, -1, +3, -1.5, -1 → -1, -2, 1, -0.5, -1.5: the fall from 1 to -1.5.
    let d90 = w(Window::Days90);
    assert_eq!((d90.signals, d90.closed), (10, 5));
    assert!(close(d90.net_r, -1.5));
    assert!(close(d90.max_drawdown_r, 2.5));
    // 30 days: -1, +3, -1.5, -1 → -1, 2, 0.5, -0.5.
    let d30 = w(Window::Days30);
    assert_eq!((d30.signals, d30.closed), (9, 4));
    assert!(close(d30.net_r, -0.5));
    assert!(close(d30.max_drawdown_r, 2.5));
    assert_eq!(d30.curve_start, Some(days_ago(30)));
    // 7 days: +3, -1.5, -1 → 3, 1.5, 0.5.
    let d7 = w(Window::Days7);
    assert_eq!((d7.signals, d7.closed, d7.wins), (7, 3, 1));
    assert!(close(d7.net_r, 0.5));
    assert!(close(d7.max_drawdown_r, 2.5));
    assert_eq!(
        r.windows
            .iter()
            .map(|w| w.window.label())
            .collect::<Vec<_>>(),
        vec!["7 days", "30 days", "90 days", "All time"]
    );
}

#[test]
fn routes_are_summed_apart() {
    let b = book();
    let r = report(&b.tracked(), AS_OF);
    let all = r
        .windows
        .iter()
        .find(|w| w.window == Window::AllTime)
        .expect("all");
    assert_eq!(all.routes.keys().collect::<Vec<_>>(), vec!["a", "b"]);
    // a: +2, -1, -1.5, -1 → 2, 1, -0.5, -1.5.
    let a = &all.routes["a"];
    assert_eq!((a.signals, a.closed), (7, 4));
    assert!(close(a.net_r, -1.5));
    assert!(close(a.max_drawdown_r, 3.5));
    // b: -1, +3 → -1, 2.
    let b_ = &all.routes["b"];
    assert_eq!((b_.signals, b_.closed), (4, 2));
    assert!(close(b_.net_r, 2.0));
    assert!(close(b_.max_drawdown_r, 1.0));
    assert_eq!(a.signals + b_.signals, all.overall.signals);
}

#[test]
fn input_order_does_not_matter_and_later_posts_are_left_out() {
    let b = book();
    let mut tracked = b.tracked();
    let forward = report(&tracked, AS_OF);
    tracked.reverse();
    assert_eq!(report(&tracked, AS_OF), forward);
    let earlier = report(&tracked, days_ago(50));
    let all = &earlier.windows[3].overall;
    assert_eq!(
        all.signals, 2,
        "only the posts 100 and 60 days before AS_OF"
    );
}

#[test]
fn no_signals_give_empty_rates_not_zeros() {
    let r = report(&[], AS_OF);
    let all = &r.windows[3].overall;
    assert_eq!(all.signals, 0);
    assert_eq!(
        (all.win_rate, all.average_r, all.no_stop_share),
        (None, None, None)
    );
    assert!(all.curve.is_empty());
}
