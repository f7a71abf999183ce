//! The equity-curve SVG: exact geometry on a small example, escaping, accessibility, no
//! scripts, and identical bytes for identical input.

use g3_outcomes::stats::EquityPoint;
use g3_outcomes::svg::{Chart, equity_curve, escape};
use time::{Duration, macros::datetime};

fn points() -> (time::OffsetDateTime, Vec<EquityPoint>) {
    let t0 = datetime!(2025-03-01 00:00 UTC);
    let pts = vec![
        EquityPoint {
            at: t0 + Duration::days(1),
            cumulative_r: 2.0,
        },
        EquityPoint {
            at: t0 + Duration::days(2),
            cumulative_r: -1.0,
        },
    ];
    (t0, pts)
}

#[test]
fn the_curve_is_a_step_line_scaled_into_the_frame() {
    let (t0, pts) = points();
    let svg = equity_curve(&pts, Some(t0), &Chart::default());
    // Frame 64..624 × 16..212; R from -1 to 2: zero at y = 212 - 196/3.
    assert!(
        svg.contains("points=\"64.0,146.7 344.0,146.7 344.0,16.0 624.0,16.0 624.0,212.0\""),
        "{svg}"
    );
    assert!(svg.contains("viewBox=\"0 0 640 240\""));
    assert!(svg.contains(">+2.0 R</text>") && svg.contains(">-1.0 R</text>"));
    assert!(svg.contains(">2025-03-01</text>") && svg.contains(">2025-03-03</text>"));
    assert!(!svg.contains("-0.0"));
}

#[test]
fn it_is_accessible_static_and_escaped() {
    let (t0, pts) = points();
    let chart = Chart {
        id: "route \"a\"<1>",
        title: "Route <b>&'s\" results",
        ..Chart::default()
    };
    let svg = equity_curve(&pts, Some(t0), &chart);
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.ends_with("</svg>"));
    assert!(svg.contains("role=\"img\""));
    assert!(svg.contains("aria-labelledby=\"route--a--1--title route--a--1--desc\""));
    assert!(svg.contains(
        "<title id=\"route--a--1--title\">Route &lt;b&gt;&amp;&#39;s&quot; results</title>"
    ));
    assert!(svg.contains(
        "<desc id=\"route--a--1--desc\">Cumulative result in R of 2 closed trades from \
         2025-03-01 to 2025-03-03: ends at -1.0 R; lowest -1.0 R, highest +2.0 R.</desc>"
    ));
    for banned in ["<script", "onload", "href", "javascript:", "<foreignObject"] {
        assert!(!svg.contains(banned), "{banned}");
    }
    assert_eq!(escape("<>&\"'x"), "&lt;&gt;&amp;&quot;&#39;x");
}

#[test]
fn the_same_input_gives_the_same_bytes() {
    let (t0, pts) = points();
    let a = equity_curve(&pts, Some(t0), &Chart::default());
    let b = equity_curve(&pts.clone(), Some(t0), &Chart::default());
    assert_eq!(a, b);
}

#[test]
fn an_empty_curve_says_so() {
    let svg = equity_curve(&[], None, &Chart::default());
    assert!(svg.contains("No closed trades yet"));
    assert!(svg.contains("<desc id=\"equity-desc\">No closed trades with a stop yet"));
    assert!(!svg.contains("polyline"));
}

#[test]
fn a_flat_or_single_point_curve_still_draws() {
    let t0 = datetime!(2025-03-01 00:00 UTC);
    let one = [EquityPoint {
        at: t0,
        cumulative_r: 0.0,
    }];
    let svg = equity_curve(&one, None, &Chart::default());
    assert!(svg.contains("polyline"));
    assert!(!svg.contains("NaN") && !svg.contains("inf"));
    assert!(svg.contains("of 1 closed trade from"));
}
