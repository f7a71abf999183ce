//! The equity curve as a small, static SVG built on the server: a step line of cumulative R,
//! the zero line, the extremes and the dates, with a `<title>` and `<desc>` for screen readers.
//! No script, no external reference; text escaped; the same input gives the same bytes.

use std::fmt::Write;

use time::OffsetDateTime;
use time::macros::format_description;

use crate::stats::EquityPoint;

/// Size, labels and the id prefix (unique on the page) of one chart.
#[derive(Debug, Clone, Copy)]
pub struct Chart<'a> {
    /// Prefix of the `<title>`/`<desc>` ids; characters other than ASCII letters, digits,
    /// `-` and `_` are replaced.
    pub id: &'a str,
    pub title: &'a str,
    pub width: u32,
    pub height: u32,
}

impl Default for Chart<'_> {
    fn default() -> Self {
        Chart {
            id: "equity",
            title: "Equity curve",
            width: 640,
            height: 240,
        }
    }
}

const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 28.0;

/// Text safe inside an element or a double- or single-quoted attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn safe_id(id: &str) -> String {
    let id: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if id.is_empty() { "equity".into() } else { id }
}

/// One decimal, never `-0.0`.
fn num(v: f64) -> String {
    format!("{:.1}", v + 0.0)
}

/// An R value as a reader sees it: `+2.5 R`, `-1.0 R`, `0.0 R`.
fn r_label(v: f64) -> String {
    let v = (v * 10.0).round() / 10.0 + 0.0;
    if v > 0.0 {
        format!("+{v:.1} R")
    } else {
        format!("{v:.1} R")
    }
}

fn date(t: OffsetDateTime) -> String {
    t.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// Renders `points` (cumulative R in time order), starting from 0 at `start` (the first point's
/// time when `None`).
pub fn equity_curve(
    points: &[EquityPoint],
    start: Option<OffsetDateTime>,
    chart: &Chart,
) -> String {
    let id = safe_id(chart.id);
    let (w, h) = (
        f64::from(chart.width.max(120)),
        f64::from(chart.height.max(80)),
    );
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" \
         height=\"{h}\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" \
         class=\"equity-curve\">"
    );
    let _ = write!(
        svg,
        "<title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>",
        escape(chart.title),
        escape(&describe(points, start))
    );
    let (x0, x1, y0, y1) = (LEFT, w - RIGHT, TOP, h - BOTTOM);
    let _ = write!(
        svg,
        "<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" \
         stroke=\"currentColor\" stroke-opacity=\"0.2\"/>",
        num(x0),
        num(y0),
        num(x1 - x0),
        num(y1 - y0)
    );
    let Some(last) = points.last() else {
        let _ = write!(
            svg,
            "<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" \
             fill=\"currentColor\">No closed trades yet</text></svg>",
            num((x0 + x1) / 2.0),
            num((y0 + y1) / 2.0)
        );
        return svg;
    };
    let start = start.unwrap_or(points[0].at).min(points[0].at);
    let span = (last.at - start).as_seconds_f64().max(1.0);
    let lo = points.iter().map(|p| p.cumulative_r).fold(0.0, f64::min);
    let hi = points.iter().map(|p| p.cumulative_r).fold(0.0, f64::max);
    let (lo, hi) = if hi - lo < 1e-9 {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo, hi)
    };
    let x = |t: OffsetDateTime| x0 + (t - start).as_seconds_f64() / span * (x1 - x0);
    let y = |r: f64| y1 - (r - lo) / (hi - lo) * (y1 - y0);

    let _ = write!(
        svg,
        "<line class=\"zero\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"currentColor\" \
         stroke-opacity=\"0.4\" stroke-dasharray=\"4 4\"/>",
        num(x0),
        num(y(0.0)),
        num(x1),
        num(y(0.0))
    );
    let mut path = format!("{},{}", num(x(start)), num(y(0.0)));
    let mut level = 0.0;
    for p in points {
        let px = num(x(p.at));
        let _ = write!(
            path,
            " {px},{} {px},{}",
            num(y(level)),
            num(y(p.cumulative_r))
        );
        level = p.cumulative_r;
    }
    let _ = write!(
        svg,
        "<polyline class=\"curve\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"2\" \
         stroke-linejoin=\"round\" points=\"{path}\"/>"
    );
    let label = |svg: &mut String, class: &str, x: f64, y: f64, anchor: &str, text: &str| {
        let _ = write!(
            svg,
            "<text class=\"{class}\" x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\" \
             font-size=\"12\" fill=\"currentColor\">{}</text>",
            num(x),
            num(y),
            escape(text)
        );
    };
    label(&mut svg, "max", x0 - 6.0, y(hi) + 4.0, "end", &r_label(hi));
    label(&mut svg, "min", x0 - 6.0, y(lo) + 4.0, "end", &r_label(lo));
    label(&mut svg, "start", x0, h - 8.0, "start", &date(start));
    label(&mut svg, "end", x1, h - 8.0, "end", &date(last.at));
    svg.push_str("</svg>");
    svg
}

/// The chart in one sentence, for the `<desc>`.
fn describe(points: &[EquityPoint], start: Option<OffsetDateTime>) -> String {
    let Some(last) = points.last() else {
        return "No closed trades with a stop yet, so there is no result in R to draw.".into();
    };
    let from = start.unwrap_or(points[0].at).min(points[0].at);
    let lo = points.iter().map(|p| p.cumulative_r).fold(0.0, f64::min);
    let hi = points.iter().map(|p| p.cumulative_r).fold(0.0, f64::max);
    let trades = if points.len() == 1 { "trade" } else { "trades" };
    format!(
        "Cumulative result in R of {} closed {trades} from {} to {}: ends at {}; lowest {}, \
         highest {}.",
        points.len(),
        date(from),
        date(last.at),
        r_label(last.cumulative_r),
        r_label(lo),
        r_label(hi)
    )
}
