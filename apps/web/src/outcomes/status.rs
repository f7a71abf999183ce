//! A signal's outcome as its card shows it: the status in words ("TP1 hit +2.4%", "Stopped
//! −1R"), the last price judged with its time and the distance to the next level. Rendered as a
//! small fragment of its own (`templates/outcome.html`), so an outcome update never renders the
//! card again (see [`crate::card::Placed`]).

use askama::Template;
use g3_outcomes::{Outcome, Status};
use time::{
    OffsetDateTime, UtcOffset, format_description::well_known::Rfc3339, macros::format_description,
};

use crate::templates::OutcomeFragment;

/// One outcome, every number already written out.
pub struct StatusView {
    /// The signal id: the fragment is `#outcome-{id}`.
    pub id: String,
    /// How the status looks: `open` (waiting or in the trade), `win`, `loss`, `flat` (closed at
    /// zero) or `none` (no trade).
    pub tone: &'static str,
    pub headline: String,
    pub detail: Option<String>,
    /// The last price judged, while the signal is still followed.
    pub price: Option<String>,
    /// When that price was seen: UTC for readers without scripts, and ISO for `app.js`.
    pub as_of: Option<(String, String)>,
    /// The next level and how far the price is from it: "TP2 64000, 2.4% away".
    pub next: Option<String>,
    /// Caveats a careful reader wants: ambiguous bars, lower precision, deleted after entry.
    pub notes: Vec<&'static str>,
}

/// `−` (U+2212) for negatives, `+` for positives, nothing for zero.
fn signed(v: f64, decimals: usize) -> String {
    let scale = 10f64.powi(i32::try_from(decimals).unwrap_or(2));
    let v = (v * scale).round() / scale + 0.0;
    let text = format!("{:.*}", decimals, v.abs());
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    };
    if v > 0.0 {
        format!("+{text}")
    } else if v < 0.0 {
        format!("\u{2212}{text}")
    } else {
        text
    }
}

/// An R multiple as a trader writes it: `+2.5R`, `−1R`, `+0.33R`.
pub fn r_text(r: f64) -> String {
    format!("{}R", signed(r, 2))
}

/// An unlevered percent move: `+2.4%`, `−5%`.
pub fn pct_text(pct: f64) -> String {
    format!("{}%", signed(pct, 1))
}

/// A price as the signal wrote it (no rounding: prices of small coins have many digits).
fn price(v: f64) -> String {
    format!("{v}")
}

fn when(t: OffsetDateTime) -> (String, String) {
    (
        t.to_offset(UtcOffset::UTC)
            .format(format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .unwrap_or_default(),
        t.format(&Rfc3339).unwrap_or_default(),
    )
}

/// The whole trade's result in words: R when it has one, else percent.
fn result(o: &Outcome) -> String {
    match o.realized_r {
        Some(r) => r_text(r),
        None => pct_text(o.realized_pct),
    }
}

fn tone(o: &Outcome) -> &'static str {
    match o.status {
        Status::WaitingForEntry | Status::Entered => "open",
        s if s.is_closed_trade() => {
            let v = o.result_r().unwrap_or(o.realized_pct);
            if v > 0.0 {
                "win"
            } else if v < 0.0 {
                "loss"
            } else {
                "flat"
            }
        }
        _ => "none",
    }
}

/// "entry 61500 – 62000" or "entry 62000"; "at market" without an entry price.
fn zone_text(o: &Outcome) -> String {
    match o.entry_zone {
        Some((lo, hi)) if lo < hi => format!("entry {} – {}", price(lo), price(hi)),
        Some((lo, _)) => format!("entry {}", price(lo)),
        None => "entry at market".to_owned(),
    }
}

/// How far `to` is from `from`, in percent of `from`, unsigned.
fn distance(from: f64, to: f64) -> String {
    format!("{:.1}% away", ((to - from) / from * 100.0).abs())
}

/// The next level to watch from the last price: the nearest edge of the entry zone before
/// entry, the next target after.
fn next_level(o: &Outcome, last: f64) -> Option<String> {
    match o.status {
        Status::WaitingForEntry => {
            let (lo, hi) = o.entry_zone?;
            if (lo..=hi).contains(&last) {
                return None;
            }
            let edge = if (last - lo).abs() < (last - hi).abs() {
                lo
            } else {
                hi
            };
            Some(format!("Entry {}, {}", price(edge), distance(last, edge)))
        }
        Status::Entered => {
            let (index, target) = o.next_target()?;
            Some(format!(
                "TP{} {}, {}",
                index + 1,
                price(target),
                distance(last, target)
            ))
        }
        _ => None,
    }
}

/// What the card says about `outcome`.
pub fn view(id: &str, o: &Outcome) -> StatusView {
    let fill = o.entry.as_ref().map(|t| price(t.price));
    let entered_at = fill.as_ref().map(|f| format!("entered at {f}"));
    let last_hit = o.targets_hit.last();
    let (headline, detail) = match o.status {
        Status::WaitingForEntry => ("Waiting for entry".to_owned(), Some(zone_text(o))),
        Status::Entered => match last_hit {
            Some(hit) => (
                format!("TP{} hit {}", hit.index + 1, pct_text(hit.pct)),
                entered_at,
            ),
            None => (
                format!("Entered at {}", fill.clone().unwrap_or_default()),
                None,
            ),
        },
        Status::Stopped => {
            let hits: Vec<String> = o
                .targets_hit
                .iter()
                .map(|h| format!("TP{}", h.index + 1))
                .collect();
            let after = if hits.is_empty() {
                String::new()
            } else {
                format!("after {} · ", hits.join(", "))
            };
            (
                format!("Stopped {}", result(o)),
                entered_at.map(|e| format!("{after}{e}")),
            )
        }
        Status::TargetsHit => (format!("All targets hit {}", result(o)), entered_at),
        Status::Expired => (
            format!("Expired {}", result(o)),
            Some("closed at the time limit".to_owned()),
        ),
        Status::ExpiredUnfilled => (
            "Expired unfilled".to_owned(),
            Some("not entered in time · no trade".to_owned()),
        ),
        Status::StoppedBeforeEntry => (
            "Stopped before entry".to_owned(),
            Some("the stop came first · no trade".to_owned()),
        ),
        Status::Cancelled => (
            "Cancelled".to_owned(),
            Some("deleted before entry · no trade".to_owned()),
        ),
        Status::Untrackable => (
            "Untrackable".to_owned(),
            Some(
                o.untrackable
                    .clone()
                    .filter(|r| !r.trim().is_empty())
                    .unwrap_or_else(|| "no market data for this pair".to_owned()),
            ),
        ),
    };
    let followed = !o.status.is_final();
    let last = o.last_price.filter(|_| followed);
    let mut notes = Vec::new();
    if o.ambiguous() {
        notes.push("Decided on an ambiguous bar: the worse order was counted.");
    }
    if o.lower_precision() {
        notes.push("Lower precision: backfilled prices or a gap in the data.");
    }
    if o.deleted_after_entry() {
        notes.push("Deleted after entry: still followed and counted.");
    }
    StatusView {
        id: id.to_owned(),
        tone: tone(o),
        headline,
        detail,
        price: last.map(price),
        as_of: last.and(o.judged_until).map(when),
        next: last.and_then(|p| next_level(o, p)),
        notes,
    }
}

/// The card's status fragment for `outcome`.
pub fn render(id: &str, outcome: &Outcome) -> askama::Result<String> {
    OutcomeFragment {
        s: view(id, outcome),
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_written_as_traders_write_them() {
        assert_eq!(r_text(-1.0), "\u{2212}1R");
        assert_eq!(r_text(2.5), "+2.5R");
        assert_eq!(r_text(1.0 / 3.0), "+0.33R");
        assert_eq!(r_text(0.0), "0R");
        assert_eq!(r_text(-0.0001), "0R");
        assert_eq!(pct_text(2.4390243), "+2.4%");
        assert_eq!(pct_text(-5.0), "\u{2212}5%");
        assert_eq!(pct_text(10.0), "+10%");
    }
}
