//! Trading signals: the model stored for every captured message and the parser that reads a
//! Discord message's content and embeds into pair, side, entries, targets, stop and leverage.
//! Parsing never fails: anything that is not clearly a signal is kept as a plain [`Parsed::Post`].

mod lex;
mod numbers;
mod parse;
mod reading;
mod words;

pub use reading::{
    SIDE_INFERRED, Severity, is_invisible, only_repeats_trade, pair_label, reward_risk,
    strip_invisible, warning_text,
};

use serde::{Deserialize, Serialize};

/// The text of one Discord embed, as far as signals care. Built from the raw embed JSON by
/// [`Embed::from_discord_json`]; images, colours and URLs are irrelevant to parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Embed {
    pub title: Option<String>,
    pub description: Option<String>,
    /// `(name, value)` of each field, in order.
    pub fields: Vec<(String, String)>,
    pub footer: Option<String>,
}

impl Embed {
    /// Reads an array of raw Discord embeds (a single embed object is accepted too). Lenient:
    /// missing or mistyped parts are skipped, never an error, because embeds come from bots we
    /// do not control.
    pub fn from_discord_json(value: &serde_json::Value) -> Vec<Embed> {
        match value {
            serde_json::Value::Array(items) => items.iter().filter_map(Self::from_one).collect(),
            serde_json::Value::Object(_) => Self::from_one(value).into_iter().collect(),
            _ => Vec::new(),
        }
    }

    fn from_one(value: &serde_json::Value) -> Option<Embed> {
        let obj = value.as_object()?;
        let text = |v: Option<&serde_json::Value>| {
            v.and_then(serde_json::Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let fields = obj
            .get("fields")
            .and_then(serde_json::Value::as_array)
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|f| {
                        let name = text(f.get("name")).unwrap_or_default();
                        let value = text(f.get("value")).unwrap_or_default();
                        (!name.is_empty() || !value.is_empty()).then_some((name, value))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Embed {
            title: text(obj.get("title")),
            description: text(obj.get("description")),
            fields,
            footer: text(obj.get("footer").and_then(|f| f.get("text"))),
        })
    }
}

/// Direction of a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Long,
    Short,
}

impl Side {
    pub fn as_str(&self) -> &'static str {
        match self {
            Side::Long => "long",
            Side::Short => "short",
        }
    }
}

/// Something odd about a signal. Odd signals are kept (the author meant something) and shown
/// with their flags, so a customer can judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// The stop is not beyond the entries (below them for a long, above for a short).
    StopWrongSide,
    /// Targets do not move steadily away from the entry (ascending for a long).
    TargetsOutOfOrder,
    /// A target is on the losing side of the entries.
    TargetsWrongSide,
    /// A target more than 10x (or under 1/10 of) the entry, a stop 50% or more away, or
    /// entries more than 2x apart: usually a typo such as a missing decimal point.
    AbsurdRatio,
    /// Leverage below 1x or above 125x (no venue offers more).
    AbsurdLeverage,
    /// The text says both long and short; the first one written was used.
    ConflictingSides,
    /// No side was written and the prices do not tell; long was assumed.
    SideUnclear,
}

impl Flag {
    /// The stored form: snake_case, stable, at most 64 chars.
    pub fn as_str(&self) -> &'static str {
        match self {
            Flag::StopWrongSide => "stop_wrong_side",
            Flag::TargetsOutOfOrder => "targets_out_of_order",
            Flag::TargetsWrongSide => "targets_wrong_side",
            Flag::AbsurdRatio => "absurd_ratio",
            Flag::AbsurdLeverage => "absurd_leverage",
            Flag::ConflictingSides => "conflicting_sides",
            Flag::SideUnclear => "side_unclear",
        }
    }

    /// Every flag, for stores that validate stored strings.
    pub const ALL: [Flag; 7] = [
        Flag::StopWrongSide,
        Flag::TargetsOutOfOrder,
        Flag::TargetsWrongSide,
        Flag::AbsurdRatio,
        Flag::AbsurdLeverage,
        Flag::ConflictingSides,
        Flag::SideUnclear,
    ];

    /// The inverse of [`Flag::as_str`].
    pub fn parse(s: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// A message recognised as a trade signal. Prices are finite and positive; entries, targets
/// and flags keep the order in which they were written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedSignal {
    /// Normalised `BASE/QUOTE`, upper-case, e.g. `BTC/USDT`; USDT when only the base was given.
    pub pair: String,
    pub side: Side,
    pub entries: Vec<f64>,
    pub targets: Vec<f64>,
    pub stop: Option<f64>,
    pub leverage: Option<f64>,
    /// True when no side was written and it was read from the prices.
    pub side_inferred: bool,
    pub flags: Vec<Flag>,
}

/// What a message is: a signal, or a plain post (chat, news, follow-ups such as "TP1 hit").
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Signal(ParsedSignal),
    Post,
}

/// The stored pairs a reader's pair filter means: "BTC/USDT", "btc-usdt", "btcusdt" and
/// "btcusdtperp" name one pair; a bare base ("btc", "ETH") names that base against every quote
/// the parser knows. Pairs come in the form [`parse`] stores (`BTC/USDT`), the only one in the
/// store: `ops signals normalize-pairs` rewrites pairs other tools wrote glued, with
/// [`stored_pair`]. One pair is one value, so a feed filtered by it reads its index in order.
/// Empty when the input names no pair.
pub fn pairs_matching(input: &str) -> Vec<String> {
    match named(input) {
        Named::Pair(pair) => vec![pair],
        Named::Base(base) => words::QUOTES
            .iter()
            .filter(|q| **q != base)
            .map(|q| format!("{base}/{q}"))
            .collect(),
        Named::Nothing => Vec::new(),
    }
}

/// The form [`parse`] stores a pair in, for a pair written another way ("BTCUSDT",
/// "btc-usdt", "BTC_USDT", as other tools store them); `None` for anything that is not one
/// pair the parser knows (a bare base, an unknown quote, free text).
pub fn stored_pair(written: &str) -> Option<String> {
    match named(written) {
        Named::Pair(pair) => Some(pair),
        Named::Base(_) | Named::Nothing => None,
    }
}

/// What a pair filter or a stored pair names.
enum Named {
    /// One pair, `BASE/QUOTE`.
    Pair(String),
    /// A base alone, upper-case.
    Base(String),
    Nothing,
}

fn named(input: &str) -> Named {
    let cleaned: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && !is_invisible(*c))
        .collect::<String>()
        .to_ascii_uppercase();
    if let Some((base, quote)) = cleaned.split_once(['/', '-', '_', ':']) {
        return match words::separated_quote(quote) {
            Some(quote) if words::valid_base(base) => Named::Pair(format!("{base}/{quote}")),
            _ => Named::Nothing,
        };
    }
    if let Some((base, quote)) = words::glued_pair(&cleaned) {
        return Named::Pair(format!("{base}/{quote}"));
    }
    if words::valid_base(&cleaned) {
        return Named::Base(cleaned);
    }
    Named::Nothing
}

/// Reads a message's content and embeds. Pure, total and linear in the input: any text at all
/// gives a result, and a signal needs a pair, an entry, and a target or a stop.
///
/// Invisible characters ([`is_invisible`]) are read as absent, as a reader sees the text: a
/// zero-width space inside "64000" must not split it into "6" and "4000".
pub fn parse(content: &str, embeds: &[Embed]) -> Parsed {
    let hidden = |s: &str| matches!(strip_invisible(s), std::borrow::Cow::Owned(_));
    let opt_hidden = |s: &Option<String>| s.as_deref().is_some_and(hidden);
    let embeds_hidden = embeds.iter().any(|e| {
        opt_hidden(&e.title)
            || opt_hidden(&e.description)
            || e.fields.iter().any(|(n, v)| hidden(n) || hidden(v))
    });
    if !hidden(content) && !embeds_hidden {
        return parse::parse(content, embeds);
    }
    let clean = |s: &str| strip_invisible(s).into_owned();
    let embeds: Vec<Embed> = embeds
        .iter()
        .map(|e| Embed {
            title: e.title.as_deref().map(clean),
            description: e.description.as_deref().map(clean),
            fields: e.fields.iter().map(|(n, v)| (clean(n), clean(v))).collect(),
            footer: e.footer.clone(),
        })
        .collect();
    parse::parse(&clean(content), &embeds)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_pair_filter_means_what_a_trader_types() {
        for typed in [
            "BTC/USDT",
            "btc/usdt",
            "btcusdt",
            "BTCUSDT",
            " btc-usdt ",
            "btcusdtperp",
        ] {
            assert_eq!(super::pairs_matching(typed), ["BTC/USDT"], "{typed}");
        }
        let btc = super::pairs_matching("btc");
        for pair in ["BTC/USDT", "BTC/USDC", "ETH/BTC"] {
            assert_eq!(btc.contains(&pair.to_owned()), pair != "ETH/BTC", "{pair}");
        }
        assert!(!btc.contains(&"BTC/BTC".to_owned()));
        assert!(btc.iter().all(|p| p.starts_with("BTC/")), "{btc:?}");
        assert_eq!(super::pairs_matching("ETH/BTC"), ["ETH/BTC"]);
        assert!(super::pairs_matching("").is_empty());
        assert!(super::pairs_matching("BTC/NOPE").is_empty());
        assert!(super::pairs_matching("<script>").is_empty());
    }

    #[test]
    fn pairs_other_tools_store_are_read_in_the_parsers_form() {
        for (written, stored) in [
            ("BTCUSDT", Some("BTC/USDT")),
            ("BTC/USDT", Some("BTC/USDT")),
            ("eth-btc", Some("ETH/BTC")),
            ("SOL_USDC", Some("SOL/USDC")),
            ("BTCUSDTPERP", Some("BTC/USDT")),
            ("\u{202E}BTC\u{200B}USDT ", Some("BTC/USDT")),
            ("BTC", None),
            ("BTC/NOPE", None),
            ("", None),
            ("not a pair", None),
        ] {
            assert_eq!(super::stored_pair(written).as_deref(), stored, "{written}");
        }
        // What the parser stores is already in that form.
        let Parsed::Signal(s) = parse("BTCUSDT long entry 100 tp 110 sl 95", &[]) else {
            panic!("not read as a signal");
        };
        assert_eq!(super::stored_pair(&s.pair), Some(s.pair));
    }

    use super::*;

    #[test]
    fn flags_round_trip_and_fit_storage() {
        for f in Flag::ALL {
            assert_eq!(Flag::parse(f.as_str()), Some(f));
            assert!(f.as_str().len() <= 64);
        }
    }

    #[test]
    fn invisible_characters_do_not_split_numbers_or_pairs() {
        let clean = parse(
            "BTC/USDT LONG\nEntry: 64000\nTarget: 65000\nStop: 63000",
            &[],
        );
        let hidden = parse(
            "\u{202E}BTC\u{200B}/USDT LONG\nEntry: 6\u{200B}4000\nTarget: 65\u{FEFF}000\n\
             Stop: 63\u{2060}000\u{2069}",
            &[],
        );
        assert_eq!(hidden, clean);
        let Parsed::Signal(s) = hidden else {
            panic!("a signal");
        };
        assert_eq!(s.entries, vec![64000.0]);
        assert_eq!(s.pair, "BTC/USDT");
        let in_embed = parse(
            "",
            &[Embed {
                title: Some("ETH\u{200C}USDT long".into()),
                fields: vec![
                    ("Entry".into(), "3\u{200B}100".into()),
                    ("SL".into(), "3000".into()),
                ],
                ..Embed::default()
            }],
        );
        let Parsed::Signal(e) = in_embed else {
            panic!("a signal from the embed");
        };
        assert_eq!(
            (e.pair.as_str(), e.entries.as_slice()),
            ("ETH/USDT", &[3100.0][..])
        );
    }

    #[test]
    fn embeds_are_read_leniently() {
        let v = serde_json::json!([
            {"title": "BTC", "fields": [{"name": "Entry", "value": "1"}, {"name": 3}, "x"],
             "footer": {"text": "f"}},
            "not an embed",
            {"description": 5}
        ]);
        let e = Embed::from_discord_json(&v);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].title.as_deref(), Some("BTC"));
        assert_eq!(e[0].fields, vec![("Entry".to_owned(), "1".to_owned())]);
        assert_eq!(e[0].footer.as_deref(), Some("f"));
        assert_eq!(e[1], Embed::default());
        assert!(Embed::from_discord_json(&serde_json::json!(null)).is_empty());
    }
}
