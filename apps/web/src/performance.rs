//! Results pages: `/performance` for members (overall and per route, only the routes their
//! plans unlock; staff see all), `/results` for anyone (the overall numbers and curve only: no
//! route, no signal), the landing page's headline and `/rules` (the rules in words, rendered
//! from `docs/outcomes.md`). Every number comes from `g3_outcomes::stats` over the outcome book
//! ([`crate::outcomes::OutcomeBook`]), the curves from `g3_outcomes::svg`.

use std::{collections::HashMap, sync::OnceLock};

use askama::Template;
use axum::{
    Extension,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use g3_core::entitlements::Entitlement;
use g3_outcomes::{
    Rules,
    stats::{Report, Stats, Window},
    svg::{Chart, equity_curve},
};
use serde::Deserialize;
use time::{OffsetDateTime, UtcOffset, macros::format_description};

use crate::{
    AppState,
    error::AppError,
    feed,
    outcomes::status::{pct_text, r_text},
    security::CsrfToken,
    session::{self, MaybeViewer, Standing, Viewer},
    templates::{
        Count, Headline, Layout, PerformancePage, ResultsPage, RouteStats, RulesPage, StatsView,
        SummaryRow, TargetRow, WindowTab,
    },
};

/// The window shown when none is asked for.
const DEFAULT_WINDOW: Window = Window::Days30;

#[derive(Deserialize, Default)]
pub struct WindowQuery {
    /// `7d`, `30d`, `90d` or `all`; anything else is the default.
    window: Option<String>,
}

fn window_key(w: Window) -> &'static str {
    match w {
        Window::Days7 => "7d",
        Window::Days30 => "30d",
        Window::Days90 => "90d",
        Window::AllTime => "all",
    }
}

fn parse_window(q: &WindowQuery) -> Window {
    Window::ALL
        .into_iter()
        .find(|w| q.window.as_deref() == Some(window_key(*w)))
        .unwrap_or(DEFAULT_WINDOW)
}

fn tabs(path: &str, current: Window) -> Vec<WindowTab> {
    Window::ALL
        .into_iter()
        .map(|w| WindowTab {
            label: w.label(),
            href: format!("{path}?window={}", window_key(w)),
            current: w == current,
        })
        .collect()
}

/// A share as a percentage with one decimal, or a dash when there is nothing to divide by.
fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "–".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

fn of(n: u32, total: u32) -> String {
    format!("{n} of {total}")
}

/// A drawdown: a fall, written as its size.
fn drawdown(r: f64) -> String {
    r_text(r).trim_start_matches('+').to_owned()
}

fn when(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default()
}

/// A time limit in words: "7 days", "36 hours".
fn duration_words(d: time::Duration) -> String {
    let hours = d.whole_hours();
    match (d.whole_days(), hours % 24) {
        (1, 0) => "1 day".to_owned(),
        (days, 0) if days > 1 => format!("{days} days"),
        _ if hours == 1 => "1 hour".to_owned(),
        _ if hours > 1 => format!("{hours} hours"),
        _ => format!("{} minutes", d.whole_minutes()),
    }
}

/// The rule in force, as the page states it: the time limit of the newest outcome (older
/// limits still in the numbers are named too), or the engine's default before any outcome.
fn time_limit_text(state: &AppState) -> String {
    let limits = state.outcomes().time_limits();
    match limits.split_first() {
        None => duration_words(Rules::default().time_limit),
        Some((now, [])) => duration_words(*now),
        Some((now, older)) => format!(
            "{} (older signals in these numbers: {})",
            duration_words(*now),
            older
                .iter()
                .map(|d| duration_words(*d))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// One group's numbers written out, with its curve drawn.
fn stats_view(s: &Stats, chart_id: &str, chart_title: &str) -> StatsView {
    let chart = Chart {
        id: chart_id,
        title: chart_title,
        ..Chart::default()
    };
    StatsView {
        signals: s.signals,
        closed: s.closed,
        win_rate: rate(s.win_rate),
        wins: of(s.wins, s.closed),
        net_r: r_text(s.net_r),
        average_r: s.average_r.map_or_else(|| "–".to_owned(), r_text),
        with_r: s.with_r,
        net_pct: pct_text(s.net_pct),
        average_pct: s.average_pct.map_or_else(|| "–".to_owned(), pct_text),
        max_drawdown: drawdown(s.max_drawdown_r),
        targets: s
            .target_rates
            .iter()
            .map(|t| TargetRow {
                label: format!("TP{}", t.index + 1),
                rate: rate(t.rate),
                of: of(t.hit, t.of),
            })
            .collect(),
        columns: vec![
            Count::new("Waiting for entry", s.waiting),
            Count::new("Open", s.open),
            Count::new("Stopped", s.stopped),
            Count::new("All targets hit", s.targets_hit),
            Count::new("Expired", s.expired),
            Count::new("Stopped before entry", s.stopped_before_entry),
            Count::new("Expired unfilled", s.expired_unfilled),
            Count::new("Cancelled", s.cancelled),
            Count::new("Untrackable", s.untrackable),
        ],
        edit_rate: rate(s.edit_rate),
        edited: of(s.edited, s.signals),
        delete_rate: rate(s.delete_rate),
        deleted: of(s.deleted, s.signals),
        deleted_after_entry: s.deleted_after_entry,
        no_stop_share: rate(s.no_stop_share),
        no_stop: of(s.no_stop, s.signals),
        ambiguous_bars: s.ambiguous_bars,
        ambiguous_signals: s.ambiguous_signals,
        lower_precision: s.lower_precision,
        curve_svg: equity_curve(&s.curve, s.curve_start, &chart),
    }
}

/// The headline numbers of every window, for the comparison table.
fn summary(report: &Report) -> Vec<SummaryRow> {
    report
        .windows
        .iter()
        .map(|w| SummaryRow {
            label: w.window.label(),
            signals: w.overall.signals,
            closed: w.overall.closed,
            win_rate: rate(w.overall.win_rate),
            net_r: r_text(w.overall.net_r),
            max_drawdown: drawdown(w.overall.max_drawdown_r),
        })
        .collect()
}

/// A rendered outcomes page: as it is once the outcomes are loaded, else a 503 that asks to
/// come back shortly (the upstream is not connected yet; the page says so).
fn outcomes_page(ready: bool, html: String) -> Response {
    if ready {
        return Html(html).into_response();
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "10")],
        Html(html),
    )
        .into_response()
}

/// `GET /performance`: the member's results, overall and per route they may see.
pub async fn performance(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    viewer: Viewer,
    Query(q): Query<WindowQuery>,
) -> Result<Response, AppError> {
    let entitled = session::entitled(&state, &viewer.user).await?;
    if !entitled.has_feed() {
        return feed::paywall(&state, &csrf, &viewer, &entitled, None).await;
    }
    let window = parse_window(&q);
    let staff = entitled.standing == Standing::Staff;
    let everything = entitled.sees == Entitlement::Everything;
    let layout = Layout::new("Performance", &csrf.0, true).staff(staff);
    let ready = state.outcomes().is_ready();
    let report = state
        .outcomes()
        .report(&entitled.sees, OffsetDateTime::now_utc());
    let names = if ready {
        // The server key: names are shown only for routes the viewer may see.
        state.route_names_cached(state.appwrite()).await?
    } else {
        std::sync::Arc::new(HashMap::new())
    };
    let chosen = report.windows.iter().find(|w| w.window == window);
    let scope = if everything {
        "All channels"
    } else {
        "All your channels"
    };
    let overall = chosen.map(|w| {
        stats_view(
            &w.overall,
            "equity-overall",
            &format!("Equity curve, {}, {}", scope.to_lowercase(), window.label()),
        )
    });
    let mut routes: Vec<RouteStats> = chosen
        .map(|w| {
            w.routes
                .iter()
                .filter(|(key, _)| entitled.sees.allows(key))
                .map(|(key, s)| {
                    let name = names.get(key).cloned().unwrap_or_else(|| key.clone());
                    (name, s)
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, (name, s))| RouteStats {
            stats: stats_view(
                s,
                &format!("equity-route-{i}"),
                &format!("Equity curve, {name}, {}", window.label()),
            ),
            name,
        })
        .collect();
    routes.sort_by(|a, b| a.name.cmp(&b.name));
    let html = PerformancePage {
        layout,
        tabs: tabs("/performance", window),
        window: window.label(),
        scope,
        overall,
        routes,
        summary: summary(&report),
        time_limit: time_limit_text(&state),
        as_of: when(report.as_of),
        loading: !ready,
    }
    .render()?;
    Ok(outcomes_page(ready, html))
}

/// `GET /results`: the overall numbers and curve for anyone, no sign-in. Sellers link it: it
/// names no route and no signal.
pub async fn results(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    MaybeViewer(viewer): MaybeViewer,
    Query(q): Query<WindowQuery>,
) -> Result<Response, AppError> {
    let window = parse_window(&q);
    let layout = Layout::new("Results", &csrf.0, viewer.is_some());
    let ready = state.outcomes().is_ready();
    let report = state
        .outcomes()
        .report(&Entitlement::Everything, OffsetDateTime::now_utc());
    let overall = report.windows.iter().find(|w| w.window == window).map(|w| {
        stats_view(
            &w.overall,
            "equity-results",
            &format!("Equity curve, every signal, {}", window.label()),
        )
    });
    let html = ResultsPage {
        layout,
        tabs: tabs("/results", window),
        window: window.label(),
        overall,
        summary: summary(&report),
        time_limit: time_limit_text(&state),
        as_of: when(report.as_of),
        loading: !ready,
    }
    .render()?;
    Ok(outcomes_page(ready, html))
}

/// The landing page's headline: the last 30 days over every signal, once outcomes are loaded
/// and there is something to show.
pub fn headline(state: &AppState) -> Option<Headline> {
    let book = state.outcomes();
    if !book.is_ready() {
        return None;
    }
    let report = book.report(&Entitlement::Everything, OffsetDateTime::now_utc());
    let w = report.windows.iter().find(|w| w.window == Window::Days30)?;
    (w.overall.signals > 0).then(|| Headline {
        win_rate: rate(w.overall.win_rate),
        net_r: r_text(w.overall.net_r),
        signals: w.overall.signals,
        closed: w.overall.closed,
    })
}

/// `GET /rules`: how outcomes are judged and added up, from `docs/outcomes.md`.
pub async fn rules(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    MaybeViewer(viewer): MaybeViewer,
) -> Result<Response, AppError> {
    let html = RulesPage {
        layout: Layout::new("Outcome rules", &csrf.0, viewer.is_some()),
        time_limit: time_limit_text(&state),
        rules_html: rules_html(),
    }
    .render()?;
    Ok(Html(html).into_response())
}

/// The rules document, the one customers and the code review read.
const RULES: &str = include_str!("../../../docs/outcomes.md");

/// [`RULES`] as HTML, converted once.
fn rules_html() -> &'static str {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(|| markdown_doc(RULES))
}

/// Text safe in an element.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `**strong**`, `*em*` and `` `code` `` in escaped text.
fn inline(text: &str) -> String {
    let mut rest = escape(text);
    for (mark, open, close) in [
        ("**", "<strong>", "</strong>"),
        ("*", "<em>", "</em>"),
        ("`", "<code>", "</code>"),
    ] {
        let mut done = String::new();
        while let Some(start) = rest.find(mark) {
            let after = &rest[start + mark.len()..];
            let Some(end) = after.find(mark) else {
                break;
            };
            done.push_str(&rest[..start]);
            done.push_str(open);
            done.push_str(&after[..end]);
            done.push_str(close);
            rest = after[end + mark.len()..].to_owned();
        }
        done.push_str(&rest);
        rest = done;
    }
    rest
}

/// The subset of Markdown `docs/outcomes.md` is written in: `#` headings, paragraphs and `-`
/// lists whose items continue on indented lines. The top heading is left out (the page has
/// its own) and every other heading moves one level down.
fn markdown_doc(src: &str) -> String {
    enum Block {
        None,
        Para(String),
        List(Vec<String>),
    }
    fn flush(block: &mut Block, out: &mut String) {
        match std::mem::replace(block, Block::None) {
            Block::None => {}
            Block::Para(p) => out.push_str(&format!("<p>{}</p>\n", inline(&p))),
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    out.push_str(&format!("<li>{}</li>\n", inline(&item)));
                }
                out.push_str("</ul>\n");
            }
        }
    }
    let mut out = String::new();
    let mut block = Block::None;
    for line in src.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("# ") {
            flush(&mut block, &mut out);
        } else if let Some(h) = trimmed.strip_prefix("## ") {
            flush(&mut block, &mut out);
            out.push_str(&format!("<h2>{}</h2>\n", inline(h)));
        } else if let Some(item) = trimmed.strip_prefix("- ") {
            if !matches!(block, Block::List(_)) {
                flush(&mut block, &mut out);
                block = Block::List(Vec::new());
            }
            if let Block::List(items) = &mut block {
                items.push(item.to_owned());
            }
        } else {
            match &mut block {
                Block::List(items) if line.starts_with(' ') => {
                    if let Some(last) = items.last_mut() {
                        last.push(' ');
                        last.push_str(trimmed);
                    }
                }
                Block::Para(p) => {
                    p.push(' ');
                    p.push_str(trimmed);
                }
                _ => {
                    flush(&mut block, &mut out);
                    block = Block::Para(trimmed.to_owned());
                }
            }
        }
    }
    flush(&mut block, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_document_becomes_headings_paragraphs_and_lists() {
        let html = markdown_doc(
            "# Title\n\nOne *two*\nthree `x<y`.\n\n## Entry\n\n- **A zone** fills\n  at the edge.\n- Second.\n",
        );
        assert_eq!(
            html,
            "<p>One <em>two</em> three <code>x&lt;y</code>.</p>\n<h2>Entry</h2>\n<ul>\n\
             <li><strong>A zone</strong> fills at the edge.</li>\n<li>Second.</li>\n</ul>\n"
        );
        let real = rules_html();
        assert!(real.contains("<h2>Time limit</h2>") && real.contains("<strong>7 days</strong>"));
        assert!(!real.contains("**") && !real.contains("<script"));
    }

    #[test]
    fn windows_and_limits_read_as_words() {
        let q = |w: &str| WindowQuery {
            window: Some(w.to_owned()),
        };
        assert_eq!(parse_window(&q("7d")), Window::Days7);
        assert_eq!(parse_window(&q("all")), Window::AllTime);
        assert_eq!(parse_window(&q("bogus")), DEFAULT_WINDOW);
        assert_eq!(duration_words(time::Duration::days(7)), "7 days");
        assert_eq!(duration_words(time::Duration::hours(36)), "36 hours");
        assert_eq!(duration_words(time::Duration::days(1)), "1 day");
        assert_eq!(rate(Some(2.0 / 3.0)), "66.7%");
        assert_eq!(rate(None), "–");
        assert_eq!(drawdown(1.0), "1R");
    }
}
