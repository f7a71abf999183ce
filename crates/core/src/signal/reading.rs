//! What a reader is shown of a signal, as pure functions: text without invisible characters, each
//! stored parser warning in plain language, the reward-to-risk of each target, and whether the
//! author's text says more than the numbers already shown.

use std::borrow::Cow;

use super::Side;
use super::lex::{Tok, lex_line};
use super::words::{self, Kw};

/// Characters that change how text reads without being seen: zero-width spaces and joiners, the
/// word joiner and invisible operators, the byte-order mark, and every bidi mark, embedding,
/// override and isolate. A reader never sees them, so neither does the parser or the card.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{061C}'
            | '\u{FEFF}'
    )
}

/// `s` without [`is_invisible`] characters; borrowed (no copy) when there are none.
pub fn strip_invisible(s: &str) -> Cow<'_, str> {
    if s.is_ascii() || !s.chars().any(is_invisible) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().filter(|&c| !is_invisible(c)).collect())
    }
}

/// A stored pair as a title: invisible characters dropped, and a pair written another way
/// in the form the parser stores ([`super::stored_pair`]: "BTCUSDT" -> "BTC/USDT"), so one
/// asset reads one way everywhere.
pub fn pair_label(pair: &str) -> String {
    if let Some(stored) = super::stored_pair(pair) {
        return stored;
    }
    let pair = strip_invisible(pair);
    let pair = pair.trim();
    let slashed = pair.split_once('/').is_some_and(|(b, q)| {
        words::valid_base(b) && q.bytes().all(|c| c.is_ascii_alphanumeric()) && !q.is_empty()
    });
    if slashed {
        pair.to_ascii_uppercase()
    } else {
        pair.to_owned()
    }
}

/// The code stored when no side was written and it was read from the prices (`side_inferred`
/// is a [`super::ParsedSignal`] field, stored beside the [`super::Flag`]s).
pub const SIDE_INFERRED: &str = "side_inferred";

/// How much a warning matters to someone about to trade the signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Worth knowing; nothing looks wrong.
    Note,
    /// Check the signal before trading it.
    Check,
}

/// A stored warning code (a [`super::Flag`] or [`SIDE_INFERRED`]) in words a customer reads,
/// for a signal of `side`. Unknown codes get a general sentence: codes never reach customers.
pub fn warning_text(code: &str, side: Option<Side>) -> (Severity, &'static str) {
    use super::Flag;
    let long = side != Some(Side::Short);
    let text = match Flag::parse(code) {
        Some(Flag::StopWrongSide) if long => "The stop is above the entry for a long.",
        Some(Flag::StopWrongSide) => "The stop is below the entry for a short.",
        Some(Flag::TargetsOutOfOrder) if long => "The targets do not rise steadily from the entry.",
        Some(Flag::TargetsOutOfOrder) => "The targets do not fall steadily from the entry.",
        Some(Flag::TargetsWrongSide) if long => "A target is below the entry for a long.",
        Some(Flag::TargetsWrongSide) => "A target is above the entry for a short.",
        Some(Flag::AbsurdRatio) => {
            "A price is far from the others: possibly a typo, such as a missing decimal point."
        }
        Some(Flag::AbsurdLeverage) => "The leverage is outside what exchanges offer (1× to 125×).",
        Some(Flag::ConflictingSides) => {
            "The message says both long and short; the first one written is shown."
        }
        Some(Flag::SideUnclear) => {
            "The message does not say long or short and the prices do not tell; long is assumed."
        }
        None if code == SIDE_INFERRED => {
            return (
                Severity::Note,
                "The side is not written in the message; it is read from the prices.",
            );
        }
        None => "Something about this signal looks unusual; read the message before trading.",
    };
    (Severity::Check, text)
}

/// Reward over risk for each target, from the middle of the entry zone to the stop: `2.0` means
/// the target is twice as far from the entry as the stop. `None` for a target on the losing
/// side, and for every target when the stop is missing or not beyond the entry.
pub fn reward_risk(
    side: Side,
    entries: &[f64],
    targets: &[f64],
    stop: Option<f64>,
) -> Vec<Option<f64>> {
    let finite = |v: &f64| v.is_finite() && *v > 0.0;
    let entry = (!entries.is_empty() && entries.iter().all(finite))
        .then(|| entries.iter().sum::<f64>() / entries.len() as f64);
    let sign = match side {
        Side::Long => 1.0,
        Side::Short => -1.0,
    };
    let risk = entry
        .zip(stop.filter(finite))
        .map(|(e, s)| (e - s) * sign)
        .filter(|r| *r > 0.0);
    targets
        .iter()
        .map(|&t| {
            let (e, r) = (entry?, risk?);
            let reward = (t - e) * sign;
            (finite(&t) && reward > 0.0).then(|| reward / r)
        })
        .collect()
}

/// Words a message can hold beyond the trade and still only repeat it ("Good luck", a ticker
/// written twice, an exchange name).
const REPEAT_ALLOWANCE: usize = 3;

/// Whether `text` says nothing beyond a trade's numbers: labels, sides, pairs, prices,
/// leverage, emoji and at most a few other words. Such text is shown collapsed under the card.
/// Text with no price at all is never "only the numbers".
pub fn only_repeats_trade(text: &str) -> bool {
    let text = strip_invisible(text);
    let mut toks = Vec::new();
    let mut prose = 0usize;
    let mut priced = false;
    for line in text.split('\n') {
        toks.clear();
        lex_line(line, &mut toks);
        for tok in &toks {
            match tok {
                Tok::Num { .. } | Tok::Lev(_) => priced = true,
                Tok::Word(w) => {
                    let kw = words::classify(w);
                    let trade_word = kw != Kw::Unknown
                        || words::glued_pair(w).is_some()
                        || words::bare_ticker(w)
                        || words::separated_quote(w).is_some();
                    if !trade_word {
                        prose += 1;
                    }
                }
                Tok::Foreign => prose += 1,
                _ => {}
            }
            if prose > REPEAT_ALLOWANCE {
                return false;
            }
        }
    }
    priced
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::Flag;

    #[test]
    fn invisible_characters_are_stripped_and_plain_text_is_not_copied() {
        assert_eq!(strip_invisible("6\u{200B}4000"), "64000");
        assert_eq!(
            strip_invisible("\u{202E}BTC/USDT\u{2066}\u{FEFF}\u{200D}\u{2060}"),
            "BTC/USDT"
        );
        assert!(matches!(strip_invisible("BTC/USDT"), Cow::Borrowed(_)));
        assert!(matches!(strip_invisible("Вход 100"), Cow::Borrowed(_)));
        assert_eq!(
            strip_invisible("שלום 1"),
            "שלום 1",
            "visible RTL text stays"
        );
    }

    #[test]
    fn pairs_read_one_way() {
        assert_eq!(pair_label("BTCUSDT"), "BTC/USDT");
        assert_eq!(pair_label("btc-usdt"), "BTC/USDT");
        assert_eq!(
            pair_label("eth/xyz"),
            "ETH/XYZ",
            "an unknown quote, still upper-cased"
        );
        assert_eq!(pair_label("btc/usdt"), "BTC/USDT");
        assert_eq!(pair_label("1000PEPEUSDTPERP"), "1000PEPE/USDT");
        assert_eq!(pair_label("\u{202E}BTC\u{200B}USDT "), "BTC/USDT");
        assert_eq!(
            pair_label("<svg/onload=1>"),
            "<svg/onload=1>",
            "not a pair: left as is"
        );
    }

    #[test]
    fn every_code_reads_as_a_sentence() {
        let codes = Flag::ALL
            .iter()
            .map(Flag::as_str)
            .chain([SIDE_INFERRED, "some_future_code"]);
        for code in codes {
            for side in [None, Some(Side::Long), Some(Side::Short)] {
                let (_, text) = warning_text(code, side);
                assert!(!text.contains('_'), "{code}: {text}");
                assert!(text.ends_with('.') && text.len() > 20, "{code}: {text}");
            }
        }
        assert_eq!(
            warning_text("stop_wrong_side", Some(Side::Long)).1,
            "The stop is above the entry for a long."
        );
        assert_eq!(
            warning_text("stop_wrong_side", Some(Side::Short)).1,
            "The stop is below the entry for a short."
        );
        assert_eq!(warning_text(SIDE_INFERRED, None).0, Severity::Note);
        assert_eq!(warning_text("absurd_ratio", None).0, Severity::Check);
    }

    #[test]
    fn reward_risk_per_target() {
        let rr = reward_risk(
            Side::Long,
            &[100.0, 90.0],
            &[110.0, 125.0, 80.0],
            Some(90.0),
        );
        assert_eq!(rr, vec![Some(3.0), Some(6.0), None]);
        let rr = reward_risk(Side::Short, &[100.0], &[90.0, 105.0], Some(105.0));
        assert_eq!(rr, vec![Some(2.0), None]);
        // No stop, or a stop on the wrong side: no risk to measure against.
        assert_eq!(
            reward_risk(Side::Long, &[100.0], &[110.0], None),
            vec![None]
        );
        assert_eq!(
            reward_risk(Side::Long, &[100.0], &[110.0], Some(101.0)),
            vec![None]
        );
        assert_eq!(
            reward_risk(Side::Long, &[], &[110.0], Some(90.0)),
            vec![None]
        );
    }

    #[test]
    fn text_that_only_repeats_the_numbers() {
        for repeat in [
            "#BTC/USDT LONG\nEntry: 62000 - 61500\nTargets: 63000, 64000\nStop: 60000\nLeverage: 10x",
            "🟢 **ETHUSDT** long 3100-3050 🎯 3200 / 3300 ⛔ 2990 good luck",
            "SOL short\nentry 150\ntp1 140 tp2 130\nsl 160\nBinance futures",
        ] {
            assert!(only_repeats_trade(repeat), "{repeat}");
        }
        for says_more in [
            "BTC long 62000, tp 64000, sl 60000. I expect a retest of the range low before \
             the move, so scale in slowly.",
            "just chatting",
            "",
        ] {
            assert!(!only_repeats_trade(says_more), "{says_more}");
        }
    }
}
