//! Property tests for the signal parser: it is total (never panics on any text or embeds),
//! deterministic, blind to trailing whitespace, and every signal it returns is well-formed.

use g3_core::signal::{Embed, Parsed, parse};
use proptest::prelude::*;

/// Fragments signal text is made of, so generated strings reach deep into the parser instead
/// of being rejected as plain chat on the first byte.
const TOKENS: &[&str] = &[
    "0",
    "1",
    "2",
    "9",
    "20",
    "100",
    "43000",
    "0.0001",
    ".",
    ",",
    "-",
    " - ",
    "–",
    "/",
    ":",
    ")",
    "(",
    "%",
    "#",
    "$",
    "@",
    "<@",
    "<t:",
    ">",
    "*",
    "**",
    "_",
    "`",
    "~",
    "|",
    " ",
    "\u{a0}",
    "\u{202f}",
    "\n",
    "\r\n",
    "\t",
    "TP",
    "TP1",
    "tp2",
    "T1",
    "SL",
    "Stop",
    "stop loss",
    "Entry",
    "Entry 1:",
    "Targets:",
    "Target 2:",
    "Take-Profit",
    "Buy",
    "Sell",
    "zone",
    "to",
    "x",
    "x10",
    "10x",
    "k",
    "K",
    "Leverage",
    "Cross",
    "Isolated",
    "Long",
    "SHORT",
    "long",
    "hit",
    "BTC",
    "USDT",
    "BTCUSDT",
    "BTC/USDT",
    "ETH-USDT",
    "1000PEPEUSDT",
    "PERP",
    "Pair:",
    "🟢",
    "🔴",
    "🎯",
    "⛔",
    "🛑",
    "📈",
    "✅",
    "•",
    "1️⃣",
    "\u{fe0f}",
    "\u{20e3}",
    "é",
    "Вход",
    "中文",
    "\u{200b}",
    "https://x.y/1",
    "www.",
    "<:e:123>",
    "1,234.5",
    "1 234.5",
    "0,5",
    ".5",
];

/// Everyday words traders put between a side or label and its price, in several languages.
const FILLERS: &[&str] = &[
    "now",
    "here",
    "guys",
    "maybe",
    "right",
    "around",
    "at",
    "zone",
    "please",
    "🙏",
    "👉",
    "ahora",
    "entrada en",
    "agora",
    "jetzt",
    "maintenant",
    "şimdi",
    "сейчас",
    "bây giờ",
    "sekarang",
    "现在",
    "right here guys",
];

fn signalish() -> BoxedStrategy<String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..60)
        .prop_map(|parts| parts.concat())
        .boxed()
}

fn any_embed(text: BoxedStrategy<String>) -> impl Strategy<Value = Embed> {
    (
        prop::option::of(text.clone()),
        prop::option::of(text.clone()),
        prop::collection::vec((text.clone(), text.clone()), 0..4),
        prop::option::of(text),
    )
        .prop_map(|(title, description, fields, footer)| Embed {
            title,
            description,
            fields,
            footer,
        })
}

fn assert_well_formed(parsed: &Parsed) {
    if let Parsed::Signal(s) = parsed {
        let prices = s
            .entries
            .iter()
            .chain(&s.targets)
            .chain(s.stop.iter())
            .chain(s.leverage.iter());
        for p in prices {
            assert!(p.is_finite() && *p > 0.0, "bad number {p} in {s:?}");
        }
        assert!(!s.entries.is_empty(), "no entry: {s:?}");
        assert!(
            !s.targets.is_empty() || s.stop.is_some(),
            "neither target nor stop: {s:?}"
        );
        let (base, quote) = s.pair.split_once('/').expect("pair has a slash");
        assert!(!base.is_empty() && !quote.is_empty(), "{}", s.pair);
        assert!(
            s.pair
                .bytes()
                .all(|c| c == b'/' || c.is_ascii_uppercase() || c.is_ascii_digit())
        );
        for f in &s.flags {
            assert!(f.as_str().len() <= 64);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_any_string(s in any::<String>()) {
        assert_well_formed(&parse(&s, &[]));
    }

    #[test]
    fn never_panics_on_signal_like_strings(s in signalish()) {
        assert_well_formed(&parse(&s, &[]));
    }

    #[test]
    fn never_panics_with_embeds(
        s in signalish(),
        embeds in prop::collection::vec(any_embed(signalish()), 0..3),
        wild in prop::collection::vec(any_embed(any::<String>().boxed()), 0..2),
    ) {
        let all: Vec<Embed> = embeds.into_iter().chain(wild).collect();
        assert_well_formed(&parse(&s, &all));
    }

    #[test]
    fn is_deterministic(s in signalish(), embeds in prop::collection::vec(any_embed(signalish()), 0..2)) {
        prop_assert_eq!(parse(&s, &embeds), parse(&s, &embeds));
    }

    #[test]
    fn trailing_whitespace_changes_nothing(s in signalish(), pad in "[ \t\r\n]{1,8}") {
        let padded = format!("{s}{pad}");
        prop_assert_eq!(parse(&s, &[]), parse(&padded, &[]));
    }

    #[test]
    fn content_may_move_into_an_embed_description(s in signalish()) {
        // A bot that reposts a message as an embed should not change what it means.
        let embed = Embed { description: Some(s.clone()), ..Embed::default() };
        prop_assert_eq!(parse(&s, &[]), parse("", &[embed]));
    }

    #[test]
    fn written_signals_round_trip(
        base in "[A-Z]{2,6}",
        long in any::<bool>(),
        entry in 1u32..100_000,
        steps in prop::collection::vec(1u32..50, 1..5),
        stop_step in 1u32..40,
        lev in prop::option::of(1u32..100),
    ) {
        // A well-formed Cornix-style signal built from random numbers reads back exactly.
        let entry = f64::from(entry) / 100.0;
        let dir = if long { 1.0 } else { -1.0 };
        let mut targets = Vec::new();
        let mut acc = 0.0;
        for s in &steps {
            acc += f64::from(*s) / 1000.0;
            targets.push(((entry * (1.0 + dir * acc)) * 1e6).round() / 1e6);
        }
        let stop = ((entry * (1.0 - dir * f64::from(stop_step) / 100.0)) * 1e6).round() / 1e6;
        let side = if long { "LONG" } else { "SHORT" };
        let mut text = format!("#{base}USDT {side}\nEntry: {entry}\n");
        for (i, t) in targets.iter().enumerate() {
            text.push_str(&format!("TP{}: {t}\n", i + 1));
        }
        text.push_str(&format!("SL: {stop}\n"));
        if let Some(l) = lev {
            text.push_str(&format!("Leverage: {l}x\n"));
        }
        let Parsed::Signal(s) = parse(&text, &[]) else {
            return Err(TestCaseError::fail(format!("not a signal: {text}")));
        };
        prop_assert_eq!(s.pair, format!("{base}/USDT"));
        prop_assert_eq!(s.side.as_str(), side.to_lowercase());
        prop_assert_eq!(s.entries, vec![entry]);
        prop_assert_eq!(s.stop, Some(stop));
        prop_assert_eq!(s.leverage, lev.map(f64::from));
        prop_assert!(!s.side_inferred);
        // Distinct steps are strictly ordered, so the only possible flag is a rounding tie.
        if targets.windows(2).all(|w| w[0] != w[1]) {
            prop_assert!(s.flags.is_empty(), "{:?} for {}", s.flags, text);
        }
        prop_assert_eq!(s.targets, targets);
    }

    #[test]
    fn fillers_before_prices_change_nothing(
        base in "[A-Z]{2,6}",
        long in any::<bool>(),
        entry in 100u32..100_000,
        fillers in prop::collection::vec(prop::sample::select(FILLERS), 3),
    ) {
        // "long guys 3120, tp ahora 3200, sl jetzt 3000" reads like its plain form.
        let entry = f64::from(entry) / 100.0;
        let dir = if long { 1.0 } else { -1.0 };
        let target = ((entry * (1.0 + dir * 0.05)) * 1e6).round() / 1e6;
        let stop = ((entry * (1.0 - dir * 0.03)) * 1e6).round() / 1e6;
        let side = if long { "long" } else { "short" };
        let plain = format!("#{base}USDT {side} {entry}, tp {target}, sl {stop}");
        let filled = format!(
            "#{base}USDT {side} {} {entry}, tp {} {target}, sl {} {stop}",
            fillers[0], fillers[1], fillers[2]
        );
        let want = parse(&plain, &[]);
        prop_assert!(matches!(want, Parsed::Signal(_)), "not a signal: {}", plain);
        prop_assert_eq!(parse(&filled, &[]), want, "{}", filled);
    }
}
