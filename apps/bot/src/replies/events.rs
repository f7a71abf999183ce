//! Pure: which events of a signal's outcome get a reply in Discord, when one is due, and its
//! text ("TP1 hit +2.4% (+1.2R)", "Stopped −1R (−3.1%)"). Takes what the caller already read.
//!
//! An entry fill gets no reply, on purpose. The traders who act on a signal placed their own
//! order at their own price: their exchange already tells them whether and where it filled,
//! and our fill (the zone edge the market reached first) need not match theirs, so a reply
//! would be redundant at best and contradict what they see at worst. It would also be the
//! most common event by far (every zone and market entry fills), doubling the replies a
//! channel's rate limit has to carry for no decision a trader still has to make. Targets and
//! the stop are different: they are where a trader takes profit or cuts the loss, and where
//! the result is decided.

use g3_outcomes::{ExitReason, Outcome, Status};
use time::{Duration, OffsetDateTime};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Target `index` (0 = TP1) was hit; `last` when it closed the trade (every target hit).
    Target { index: usize, last: bool },
    /// The stop closed what was still open.
    Stop,
    /// The stop was reached before the entry: no trade.
    StopBeforeEntry,
    /// The time limit closed what was still open.
    Expired,
}

impl Kind {
    /// The event's part of its reply's id: one reply per mirror and key, whatever a later
    /// judgement says (an edit that moves TP1 does not bring a second "TP1 hit").
    pub fn key(&self) -> String {
        match self {
            Kind::Target { index, .. } => format!("tp{}", index + 1),
            Kind::Stop => "stop".into(),
            Kind::StopBeforeEntry => "stop_before_entry".into(),
            Kind::Expired => "expired".into(),
        }
    }
}

/// One event that gets a reply, with its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: Kind,
    /// When it happened (market time: the tick, or the open of the bar it happened in).
    pub at: OffsetDateTime,
    pub text: String,
}

impl Event {
    pub fn key(&self) -> String {
        self.kind.key()
    }
}

/// Whether a reply to an event is due now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Yes,
    /// It happened before the signal was mirrored: the mirror already showed a later state.
    BeforeMirror,
    /// It happened longer ago than the age limit: a late reply would be noise.
    TooOld,
}

/// The rule: a reply is due for an event that happened at or after the mirror was first
/// written and at most `max_age` before `now`. So a bot that was down replies to what it
/// missed within `max_age` when it is back, and never to older events.
pub fn due(
    event_at: OffsetDateTime,
    mirrored_at: OffsetDateTime,
    now: OffsetDateTime,
    max_age: Duration,
) -> Due {
    if event_at < mirrored_at {
        Due::BeforeMirror
    } else if now - event_at > max_age {
        Due::TooOld
    } else {
        Due::Yes
    }
}

/// Every event of `outcome` that gets a reply, in the order they happened.
pub fn events(outcome: &Outcome) -> Vec<Event> {
    let mut out = Vec::new();
    let count = outcome.targets_hit.len();
    for (i, hit) in outcome.targets_hit.iter().enumerate() {
        let last = outcome.status == Status::TargetsHit && i + 1 == count;
        let kind = Kind::Target {
            index: hit.index,
            last,
        };
        out.push(Event {
            kind,
            at: hit.touch.at,
            text: target_text(outcome, i, last),
        });
    }
    if let Some(exit) = &outcome.exit {
        let kind = match exit.reason {
            ExitReason::Stop => Kind::Stop,
            ExitReason::TimeLimit => Kind::Expired,
        };
        out.push(Event {
            kind,
            at: exit.touch.at,
            text: exit_text(outcome),
        });
    }
    if let Some(touch) = &outcome.stop_before_entry {
        let mut text = String::from("Stop hit before entry: no trade");
        if touch.ambiguous {
            text.push_str(AMBIGUOUS);
        }
        out.push(Event {
            kind: Kind::StopBeforeEntry,
            at: touch.at,
            text,
        });
    }
    out.sort_by_key(|e| e.at);
    out
}

/// Appended when the bar that decided an event also touched another level.
const AMBIGUOUS: &str = " (stop and another level in one bar: the stop counted first)";

/// `TP1 hit +2.4% (+1.2R)`; the hit that closes the trade says so with the trade's result.
fn target_text(outcome: &Outcome, i: usize, last: bool) -> String {
    let hit = &outcome.targets_hit[i];
    let tp = format!("TP{}", hit.index + 1);
    let this = pct_then_r(hit.pct, hit.r);
    if !last {
        return format!("{tp} hit {this}");
    }
    if outcome.targets_hit.len() == 1 {
        return format!("All targets hit: {tp} {this}");
    }
    format!(
        "All targets hit: {tp} {this}, trade {}",
        pct_then_r(outcome.realized_pct, outcome.realized_r)
    )
}

/// `Stopped −1R (−3.1%)` or `Time limit (7 days) reached: closed +0.4% (+0.2R)`, with the
/// trade's result when targets closed part of it before.
fn exit_text(outcome: &Outcome) -> String {
    let Some(exit) = &outcome.exit else {
        return String::new();
    };
    let earlier: Vec<String> = outcome
        .targets_hit
        .iter()
        .map(|h| format!("TP{}", h.index + 1))
        .collect();
    let mut text = match exit.reason {
        ExitReason::Stop => format!("Stopped {}", r_then_pct(exit.r, exit.pct)),
        ExitReason::TimeLimit => format!(
            "Time limit ({}) reached: closed {}",
            limit(outcome.expires_at - outcome.posted_at),
            pct_then_r(exit.pct, exit.r)
        ),
    };
    if !earlier.is_empty() {
        let trade = match exit.reason {
            ExitReason::Stop => r_then_pct(outcome.realized_r, outcome.realized_pct),
            ExitReason::TimeLimit => pct_then_r(outcome.realized_pct, outcome.realized_r),
        };
        text.push_str(&format!(" after {}, trade {trade}", and_list(&earlier)));
    }
    if exit.touch.ambiguous {
        text.push_str(AMBIGUOUS);
    }
    text
}

/// `+2.4% (+1.2R)`, or `+2.4%` without R.
fn pct_then_r(pct: f64, r: Option<f64>) -> String {
    match r {
        Some(r) => format!("{} ({})", signed(pct, "%"), signed(r, "R")),
        None => signed(pct, "%"),
    }
}

/// `−1R (−3.1%)`, or `−3.1%` without R.
fn r_then_pct(r: Option<f64>, pct: f64) -> String {
    match r {
        Some(r) => format!("{} ({})", signed(r, "R"), signed(pct, "%")),
        None => signed(pct, "%"),
    }
}

/// `+2.4%`, `−1R`, `+0.35R`, `0%`: a sign (a real minus), one decimal from 1 up and two below,
/// trailing zeros dropped.
pub fn signed(value: f64, unit: &str) -> String {
    if !value.is_finite() {
        return format!("?{unit}");
    }
    let decimals = if value.abs() < 0.995 { 2 } else { 1 };
    let fixed = format!("{:.*}", decimals, value.abs());
    let digits = fixed.trim_end_matches('0').trim_end_matches('.');
    if digits == "0" {
        return format!("0{unit}");
    }
    let sign = if value < 0.0 { "\u{2212}" } else { "+" };
    format!("{sign}{digits}{unit}")
}

/// `7 days`, `1 day`, `36 h`: the time limit as people say it.
fn limit(d: Duration) -> String {
    let hours = d.whole_hours();
    if hours > 0 && hours % 24 == 0 {
        let days = hours / 24;
        format!("{days} day{}", if days == 1 { "" } else { "s" })
    } else if hours > 0 {
        format!("{hours} h")
    } else {
        format!("{} min", d.whole_minutes().max(1))
    }
}

/// `TP1`, `TP1 and TP2`, `TP1, TP2 and TP3`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use g3_core::signal::Side;
    use g3_outcomes::{History, Market, Revision, Rules, Tick, Trade};
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    /// A long from 100 with a stop at 95 (risk 5) and the given targets.
    fn history(targets: &[f64]) -> History {
        History::new(
            vec![Revision {
                revision: 1,
                effective_at: T0,
                trade: Trade {
                    pair: "BTC/USDT".into(),
                    side: Side::Long,
                    entries: vec![100.0],
                    targets: targets.to_vec(),
                    stop: Some(95.0),
                    leverage: None,
                },
            }],
            None,
        )
        .unwrap()
    }

    /// Trades at `prices`, one minute apart from a minute after posting.
    fn ticks(prices: &[f64]) -> Vec<Market> {
        prices
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Market::Tick(Tick {
                    time: T0 + Duration::minutes(i as i64 + 1),
                    price: *p,
                })
            })
            .collect()
    }

    fn judged(targets: &[f64], prices: &[f64]) -> Outcome {
        g3_outcomes::evaluate(&history(targets), Rules::default(), &ticks(prices), None).unwrap()
    }

    fn texts(outcome: &Outcome) -> Vec<(String, String)> {
        events(outcome)
            .into_iter()
            .map(|e| (e.key(), e.text))
            .collect()
    }

    #[test]
    fn numbers_read_like_a_trader_writes_them() {
        assert_eq!(signed(2.4, "%"), "+2.4%");
        assert_eq!(signed(-1.0, "R"), "\u{2212}1R");
        assert_eq!(signed(-3.125, "%"), "\u{2212}3.1%");
        assert_eq!(signed(0.35, "R"), "+0.35R");
        assert_eq!(signed(0.999, "R"), "+1R");
        assert_eq!(signed(12.0, "%"), "+12%");
        assert_eq!(signed(0.001, "%"), "0%");
        assert_eq!(signed(-0.001, "R"), "0R");
        assert_eq!(signed(f64::NAN, "R"), "?R");
        assert_eq!(limit(Duration::days(7)), "7 days");
        assert_eq!(limit(Duration::days(1)), "1 day");
        assert_eq!(limit(Duration::hours(36)), "36 h");
        assert_eq!(
            and_list(&["TP1".into(), "TP2".into(), "TP3".into()]),
            "TP1, TP2 and TP3"
        );
    }

    #[test]
    fn waiting_and_entered_say_nothing() {
        assert!(events(&judged(&[110.0], &[101.0])).is_empty());
        let entered = judged(&[110.0], &[101.0, 100.0, 103.0]);
        assert_eq!(entered.status, Status::Entered);
        assert!(events(&entered).is_empty(), "no reply for the entry");
    }

    #[test]
    fn each_target_hit_is_one_event_and_the_last_says_all() {
        let o = judged(&[105.0, 110.0], &[100.0, 105.0, 110.0]);
        assert_eq!(
            texts(&o),
            vec![
                ("tp1".into(), "TP1 hit +5% (+1R)".into()),
                (
                    "tp2".into(),
                    "All targets hit: TP2 +10% (+2R), trade +7.5% (+1.5R)".into()
                ),
            ]
        );
        let e = events(&o);
        assert_eq!(e[0].at, T0 + Duration::minutes(2));
        assert_eq!(
            e[1].kind,
            Kind::Target {
                index: 1,
                last: true
            }
        );
        let single = judged(&[107.0], &[100.0, 107.0]);
        assert_eq!(texts(&single)[0].1, "All targets hit: TP1 +7% (+1.4R)");
    }

    #[test]
    fn a_stop_says_r_first_and_the_trade_after_targets() {
        let o = judged(&[110.0], &[100.0, 95.0]);
        assert_eq!(
            texts(&o),
            vec![("stop".into(), "Stopped \u{2212}1R (\u{2212}5%)".into())]
        );
        let after = judged(&[105.0, 110.0], &[100.0, 105.0, 95.0]);
        assert_eq!(
            texts(&after)[1],
            (
                "stop".into(),
                "Stopped \u{2212}1R (\u{2212}5%) after TP1, trade 0R (0%)".into()
            )
        );
    }

    #[test]
    fn a_stop_before_entry_is_no_trade() {
        // Below the entry, waiting for the price to rise to it, then down through the stop.
        let o = judged(&[110.0], &[97.0, 94.0]);
        assert_eq!(o.status, Status::StoppedBeforeEntry);
        assert_eq!(
            texts(&o),
            vec![(
                "stop_before_entry".into(),
                "Stop hit before entry: no trade".into()
            )]
        );
    }

    #[test]
    fn the_time_limit_closes_with_its_length() {
        let o = g3_outcomes::evaluate(
            &history(&[120.0]),
            Rules::default(),
            &ticks(&[100.0, 102.0]),
            Some(T0 + Duration::days(8)),
        )
        .unwrap();
        assert_eq!(o.status, Status::Expired);
        assert_eq!(
            texts(&o),
            vec![(
                "expired".into(),
                "Time limit (7 days) reached: closed +2% (+0.4R)".into()
            )]
        );
    }

    #[test]
    fn replies_are_due_after_the_mirror_and_within_the_age_limit() {
        let day = Duration::hours(24);
        let mirrored = T0;
        let now = T0 + Duration::hours(30);
        assert_eq!(due(T0 + Duration::hours(10), mirrored, now, day), Due::Yes);
        assert_eq!(due(now - day, mirrored, now, day), Due::Yes);
        assert_eq!(
            due(T0 + Duration::hours(5), mirrored, now, day),
            Due::TooOld
        );
        assert_eq!(
            due(T0 - Duration::seconds(1), mirrored, now, day),
            Due::BeforeMirror
        );
    }
}
