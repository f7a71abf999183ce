//! The signal parser against a corpus of real-looking messages with their expected results.
//! The corpus (`tests/corpus/signals.json`) documents its format in its `format` key; the
//! benchmark reads the same file. Every mismatch is reported, not just the first.

use std::path::Path;

use g3_core::signal::{Embed, Parsed, ParsedSignal, parse};
use serde_json::Value;

fn corpus() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/signals.json");
    let text = std::fs::read_to_string(&path).expect("corpus file is readable");
    let doc: Value = serde_json::from_str(&text).expect("corpus is JSON");
    doc["cases"].as_array().expect("corpus has cases").clone()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

/// Differences between a parsed signal and the expected JSON, as readable lines.
fn diff(got: &ParsedSignal, want: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |what: &str, ok: bool, got: String, want: String| {
        if !ok {
            out.push(format!("{what}: got {got}, want {want}"));
        }
    };
    let list_eq =
        |a: &[f64], b: &[f64]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| close(*x, *y));
    let opt_eq = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(x), Some(y)) => close(x, y),
        (None, None) => true,
        _ => false,
    };

    let pair = want["pair"].as_str().unwrap_or_default();
    check("pair", got.pair == pair, got.pair.clone(), pair.to_owned());
    let side = want["side"].as_str().unwrap_or_default();
    check(
        "side",
        got.side.as_str() == side,
        got.side.as_str().to_owned(),
        side.to_owned(),
    );
    let inferred = want["side_inferred"].as_bool().unwrap_or(false);
    check(
        "side_inferred",
        got.side_inferred == inferred,
        got.side_inferred.to_string(),
        inferred.to_string(),
    );
    let entries = nums(&want["entries"]);
    check(
        "entries",
        list_eq(&got.entries, &entries),
        format!("{:?}", got.entries),
        format!("{entries:?}"),
    );
    let targets = nums(&want["targets"]);
    check(
        "targets",
        list_eq(&got.targets, &targets),
        format!("{:?}", got.targets),
        format!("{targets:?}"),
    );
    let stop = want["stop"].as_f64();
    check(
        "stop",
        opt_eq(got.stop, stop),
        format!("{:?}", got.stop),
        format!("{stop:?}"),
    );
    let leverage = want["leverage"].as_f64();
    check(
        "leverage",
        opt_eq(got.leverage, leverage),
        format!("{:?}", got.leverage),
        format!("{leverage:?}"),
    );
    let flags: Vec<&str> = want["flags"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let got_flags: Vec<&str> = got.flags.iter().map(|f| f.as_str()).collect();
    check(
        "flags",
        got_flags == flags,
        format!("{got_flags:?}"),
        format!("{flags:?}"),
    );
    out
}

#[test]
fn corpus_parses_as_expected() {
    let cases = corpus();
    assert!(
        cases.len() >= 60,
        "corpus has {} cases, want at least 60",
        cases.len()
    );
    let posts = cases.iter().filter(|c| c["expect"] == "post").count();
    assert!(posts >= 15, "corpus has {posts} posts, want at least 15");

    let mut failures = Vec::new();
    let mut names = std::collections::HashSet::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap_or("<unnamed>");
        assert!(names.insert(name.to_owned()), "duplicate case name {name}");
        let content = case["content"].as_str().unwrap_or_default();
        let embeds = Embed::from_discord_json(&case["embeds"]);
        let got = parse(content, &embeds);
        let want = &case["expect"];
        let problems = match (&got, want.as_str()) {
            (Parsed::Post, Some("post")) => Vec::new(),
            (Parsed::Signal(s), Some("post")) => vec![format!("got a signal, want a post: {s:?}")],
            (Parsed::Post, None) => vec!["got a post, want a signal".to_owned()],
            (Parsed::Signal(s), None) => diff(s, want),
            (_, Some(other)) => vec![format!("unknown expectation {other:?}")],
        };
        for p in problems {
            failures.push(format!("{name}: {p}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_signals_are_sane() {
    // Whatever the expectations say, every signal the parser returns holds finite positive
    // prices and a normalised pair.
    for case in corpus() {
        let content = case["content"].as_str().unwrap_or_default();
        let embeds = Embed::from_discord_json(&case["embeds"]);
        if let Parsed::Signal(s) = parse(content, &embeds) {
            let prices = s.entries.iter().chain(&s.targets).chain(s.stop.iter());
            assert!(prices.clone().all(|p| p.is_finite() && *p > 0.0), "{s:?}");
            assert!(!s.entries.is_empty() && (!s.targets.is_empty() || s.stop.is_some()));
            assert!(
                s.pair.contains('/') && s.pair == s.pair.to_uppercase(),
                "{}",
                s.pair
            );
        }
    }
}
