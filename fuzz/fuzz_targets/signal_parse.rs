//! The signal parser (`g3_core::signal::parse`) on arbitrary message text and embeds.
//!
//! Input: the message content, optionally followed by a NUL byte and the raw Discord embeds
//! JSON (read with `Embed::from_discord_json`, as ingest does). Checks what the parser and its
//! property tests (crates/core/tests/signal_props.rs) promise: it is total, deterministic,
//! blind to trailing whitespace, reads content moved into an embed description the same, and
//! every signal it returns is well formed (finite positive prices, an entry, a target or a
//! stop, an upper-case `BASE/QUOTE` pair).
#![no_main]

use g3_core::signal::{Embed, Parsed, parse};
use libfuzzer_sys::fuzz_target;

fn assert_well_formed(parsed: &Parsed) {
    let Parsed::Signal(s) = parsed else { return };
    let numbers = s
        .entries
        .iter()
        .chain(&s.targets)
        .chain(s.stop.iter())
        .chain(s.leverage.iter());
    for n in numbers {
        assert!(n.is_finite() && *n > 0.0, "bad number {n} in {s:?}");
    }
    assert!(!s.entries.is_empty(), "no entry: {s:?}");
    assert!(!s.targets.is_empty() || s.stop.is_some(), "neither target nor stop: {s:?}");
    let (base, quote) = s.pair.split_once('/').expect("pair has a slash");
    assert!(!base.is_empty() && !quote.is_empty(), "pair {}", s.pair);
    assert!(
        s.pair.bytes().all(|c| c == b'/' || c.is_ascii_uppercase() || c.is_ascii_digit()),
        "pair {}",
        s.pair
    );
    for f in &s.flags {
        assert!(f.as_str().len() <= 64);
    }
}

fuzz_target!(|data: &[u8]| {
    let (content, embeds_json) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let content = String::from_utf8_lossy(content);
    let embeds: Vec<Embed> = embeds_json
        .and_then(|j| serde_json::from_slice::<serde_json::Value>(j).ok())
        .map(|v| Embed::from_discord_json(&v))
        .unwrap_or_default();

    let parsed = parse(&content, &embeds);
    assert_well_formed(&parsed);
    assert_eq!(parse(&content, &embeds), parsed, "not deterministic");

    if embeds.is_empty() {
        let padded = format!("{content} \n\t");
        assert_eq!(parse(&padded, &[]), parsed, "trailing whitespace changed the result");
        let moved = Embed {
            description: Some(content.clone().into_owned()),
            ..Embed::default()
        };
        assert_eq!(parse("", &[moved]), parsed, "content moved into an embed reads differently");
    }
});
