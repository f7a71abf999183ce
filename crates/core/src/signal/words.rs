//! The vocabulary of signals: which words are labels (entry, targets, stop, leverage), sides,
//! harmless fillers or follow-up news, and how pairs are written ("BTCUSDT", "BTC/USDT").
//! Words are compared lower-cased in a stack buffer: no allocation per word.

use super::Side;

/// The part of a signal that the numbers after a label belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sec {
    Entry,
    Target,
    Stop,
    Leverage,
    /// "Buy: ..." and "Sell: ...": entries or targets depending on the side, decided at the end.
    Buy,
    Sell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kw {
    Label(Sec),
    /// "target(s)" as a label; after another label ("Entry Targets", "Stop Targets") it is filler.
    TargetsWord,
    /// "take", a target label only when followed by "profit".
    Take,
    Side(Side),
    PairLabel,
    /// Words that never change the meaning of the numbers around them.
    Filler,
    /// Words of follow-up posts ("TP1 hit", "stopped out"): a message using them is not a new
    /// signal unless it is complete.
    FollowUp,
    Unknown,
}

const MAX_WORD: usize = 16;

pub(crate) fn classify(word: &str) -> Kw {
    let mut buf = [0u8; MAX_WORD];
    let Some(lower) = lower(word, &mut buf) else {
        return Kw::Unknown;
    };
    match lower {
        "entry" | "entries" | "enter" | "entering" | "ep" | "dca" => Kw::Label(Sec::Entry),
        "target" | "targets" | "tgt" | "tgts" => Kw::TargetsWord,
        "tp" | "tps" | "tp:" => Kw::Label(Sec::Target),
        "take" => Kw::Take,
        "stop" | "stoploss" | "stops" | "sl" | "invalidation" | "invalid" => Kw::Label(Sec::Stop),
        "leverage" | "lev" | "lvg" | "cross" | "isolated" | "isolate" | "margin" => {
            Kw::Label(Sec::Leverage)
        }
        "buy" | "buying" => Kw::Label(Sec::Buy),
        "sell" | "selling" => Kw::Label(Sec::Sell),
        "long" | "longs" | "longing" => Kw::Side(Side::Long),
        "short" | "shorts" | "shorting" => Kw::Side(Side::Short),
        "pair" | "coin" | "symbol" | "ticker" | "asset" | "token" | "contract" => Kw::PairLabel,
        "hit" | "hits" | "reached" | "achieved" | "smashed" | "booked" | "secured" | "closed"
        | "cancelled" | "canceled" | "cancel" | "stopped" | "liquidated" | "triggered"
        | "filled" | "activated" | "done" | "profit" | "profits" | "congrats"
        | "congratulations" | "update" | "updated" | "completed" => Kw::FollowUp,
        "to" | "and" | "or" | "at" | "between" | "from" | "around" | "near" | "zone" | "zones"
        | "area" | "range" | "price" | "prices" | "level" | "levels" | "loss" | "order"
        | "orders" | "limit" | "market" | "cmp" | "now" | "then" | "usdt" | "usdc" | "usd"
        | "busd" | "mode" | "only" | "first" | "second" | "third" | "last" | "final" | "all"
        | "max" | "min" | "maximum" | "minimum" | "below" | "above" | "under" | "over"
        | "close" | "on" | "if" | "the" | "a" | "in" | "of" | "for" | "with" | "by" | "after"
        | "upto" | "up" | "avg" | "average" | "point" | "points" | "position" | "pos" | "side"
        | "direction" | "type" | "trade" | "setup" | "signal" | "futures" | "spot" | "perp"
        | "perpetual" | "exchange" | "exchanges" | "binance" | "bybit" | "okx" | "bitget"
        | "mexc" | "kucoin" | "new" | "vip" | "free" | "premium" | "use" | "set" | "regular"
        | "mid" | "term" | "targets:" | "x" | "lever" | "low" | "medium" | "high" | "scalp"
        | "swing" | "daily" | "alert" | "call" => Kw::Filler,
        _ => {
            // "TP1", "T2", "Target3", "Entry2", "SL1": a label with its index glued on.
            let trimmed = lower.trim_end_matches(|c: char| c.is_ascii_digit());
            if trimmed.len() < lower.len() {
                match trimmed {
                    "tp" | "t" | "target" | "tgt" => return Kw::Label(Sec::Target),
                    "entry" | "e" => return Kw::Label(Sec::Entry),
                    "sl" => return Kw::Label(Sec::Stop),
                    _ => {}
                }
            }
            // Timeframes and other digit-led words ("4h", "15m", "2nd") are harmless.
            if lower.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                return Kw::Filler;
            }
            Kw::Unknown
        }
    }
}

fn lower<'b>(word: &str, buf: &'b mut [u8; MAX_WORD]) -> Option<&'b str> {
    mapped(word, buf, u8::to_ascii_lowercase)
}

fn upper<'b>(word: &str, buf: &'b mut [u8; MAX_WORD]) -> Option<&'b str> {
    mapped(word, buf, u8::to_ascii_uppercase)
}

fn mapped<'b>(word: &str, buf: &'b mut [u8; MAX_WORD], f: fn(&u8) -> u8) -> Option<&'b str> {
    let src = word.as_bytes();
    let dst = buf.get_mut(..src.len())?;
    for (d, s) in dst.iter_mut().zip(src) {
        *d = f(s);
    }
    std::str::from_utf8(dst).ok()
}

/// Quotes recognised glued to a base ("BTCUSDT"). Longest first, so "FDUSD" wins over "USD".
const GLUED_QUOTES: [&str; 6] = ["FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD"];

/// Quotes recognised after a separator ("ETH/BTC", "BTC-PERP").
pub(crate) const QUOTES: [&str; 12] = [
    "USDT", "USDC", "USD", "BUSD", "FDUSD", "TUSD", "DAI", "BTC", "ETH", "BNB", "EUR", "TRY",
];

/// Quotes recognised after a separator ("ETH/BTC", "BTC-PERP").
pub(crate) fn separated_quote(word: &str) -> Option<&'static str> {
    if word.eq_ignore_ascii_case("PERP") || word.eq_ignore_ascii_case("USDTPERP") {
        return Some("USDT");
    }
    QUOTES.into_iter().find(|q| word.eq_ignore_ascii_case(q))
}

/// "BTCUSDT", "1000PEPEUSDT", "BTCUSDTPERP", "BTCPERP": (base, quote).
pub(crate) fn glued_pair(word: &str) -> Option<(&str, &'static str)> {
    let (word, perp) = match strip_suffix_ci(word, "PERP") {
        Some(rest) => (rest, true),
        None => (word, false),
    };
    for quote in GLUED_QUOTES {
        if let Some(base) = strip_suffix_ci(word, quote) {
            return (base.len() >= 2 && valid_base(base)).then_some((base, quote));
        }
    }
    (perp && word.len() >= 2 && valid_base(word)).then_some((word, "USDT"))
}

fn strip_suffix_ci<'w>(word: &'w str, suffix: &str) -> Option<&'w str> {
    let cut = word.len().checked_sub(suffix.len())?;
    let (head, tail) = (word.get(..cut)?, word.get(cut..)?);
    tail.eq_ignore_ascii_case(suffix).then_some(head)
}

/// A base asset: ASCII letters and digits with at least one letter, at most 15 chars.
pub(crate) fn valid_base(base: &str) -> bool {
    (1..=15).contains(&base.len())
        && base.bytes().all(|c| c.is_ascii_alphanumeric())
        && base.bytes().any(|c| c.is_ascii_alphabetic())
}

/// Words that name nothing a pair may be built from, even when explicit ("#long", "$tp").
pub(crate) fn reserved(kw: Kw) -> bool {
    !matches!(kw, Kw::Unknown | Kw::Filler)
}

/// A bare upper-case ticker ("BTC", "1000PEPE") that may stand for `<it>/USDT` when the rest
/// of the message is a signal. Common upper-case words of trading chat are excluded.
pub(crate) fn bare_ticker(word: &str) -> bool {
    let letters = word.bytes().filter(u8::is_ascii_uppercase).count();
    if !(2..=10).contains(&word.len())
        || letters < 2
        || !word
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        || classify(word) != Kw::Unknown
    {
        return false;
    }
    !common_word(word)
}

/// Upper-case words of trading chat that are not tickers ("NFA", "ATH", "ETF"), any case.
pub(crate) fn common_word(word: &str) -> bool {
    let mut buf = [0u8; MAX_WORD];
    let Some(upper) = upper(word, &mut buf) else {
        return false;
    };
    matches!(
        upper,
        "NFA"
            | "DYOR"
            | "ATH"
            | "ATL"
            | "UTC"
            | "GMT"
            | "EST"
            | "BE"
            | "RR"
            | "ROI"
            | "PNL"
            | "ETF"
            | "SEC"
            | "FOMC"
            | "CPI"
            | "FED"
            | "GDP"
            | "USA"
            | "US"
            | "UK"
            | "EU"
            | "OK"
            | "LFG"
            | "GM"
            | "GN"
            | "IMO"
            | "TA"
            | "FA"
            | "HODL"
            | "FOMO"
            | "FUD"
            | "PUMP"
            | "DUMP"
            | "BULLISH"
            | "BEARISH"
            | "IS"
            | "IT"
            | "MY"
            | "WE"
            | "NO"
            | "SO"
            | "DO"
            | "GO"
            | "BUT"
            | "ARE"
            | "WAS"
            | "YOU"
            | "YES"
            | "WOW"
            | "NEWS"
            | "BREAKING"
            | "DM"
            | "PM"
            | "AM"
            | "ID"
            | "TF"
            | "SIGNALS"
            | "TRADES"
            | "TRADING"
            | "CRYPTO"
            | "WARNING"
            | "NOTE"
            | "IMPORTANT"
            | "GOOD"
            | "LUCK"
            | "HOT"
            | "TOP"
            | "BTCD"
            | "DXY"
            | "SPX"
            | "CEO"
            | "API"
            | "KYC"
            | "OTC"
            | "ICO"
            | "IDO"
            | "NFT"
            | "DEFI"
            | "RSI"
            | "MACD"
            | "EMA"
            | "SMA"
            | "VWAP"
            | "OB"
            | "FVG"
            | "BOS"
            | "CHOCH"
            | "HTF"
            | "LTF"
            | "SR"
            | "TBA"
            | "TBD"
            | "ASAP"
            | "FYI"
            | "LOL"
            | "GG"
            | "RIP"
            | "WTF"
            | "STILL"
            | "WAIT"
            | "HOLD"
            | "EASY"
            | "BOOM"
            | "NEXT"
            | "VERY"
            | "THIS"
            | "THAT"
            | "WILL"
            | "CAN"
            | "NOT"
            | "JUST"
            | "GET"
            | "GOT"
            | "OUT"
            | "OFF"
            | "ONE"
            | "TWO"
            | "TP"
            | "SL"
            | "BREAKOUT"
            | "RETEST"
            | "REVERSAL"
            | "BOUNCE"
            | "TREND"
            | "WHALE"
            | "MOON"
            | "BULL"
            | "BEAR"
            | "GEM"
            | "DEGEN"
            | "SAFE"
            | "RISKY"
            | "INFO"
            | "ANALYSIS"
            | "CHART"
            | "DAY"
            | "WEEK"
            | "TODAY"
            | "BITCOIN"
            | "ETHEREUM"
            | "ALTS"
            | "ALTCOINS"
            | "ALTSEASON"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary() {
        assert_eq!(classify("TP3"), Kw::Label(Sec::Target));
        assert_eq!(classify("Entry"), Kw::Label(Sec::Entry));
        assert_eq!(classify("SHORT"), Kw::Side(Side::Short));
        assert_eq!(classify("4h"), Kw::Filler);
        assert_eq!(classify("averyveryverylongword"), Kw::Unknown);
        assert_eq!(glued_pair("1000PEPEUSDT"), Some(("1000PEPE", "USDT")));
        assert_eq!(glued_pair("btcusdtperp"), Some(("btc", "USDT")));
        assert_eq!(glued_pair("BTCPERP"), Some(("BTC", "USDT")));
        assert_eq!(glued_pair("FDUSD"), None);
        assert_eq!(glued_pair("USDT"), None);
        assert!(bare_ticker("BTC"));
        assert!(!bare_ticker("NFA"));
        assert!(!bare_ticker("Btc"));
        assert!(!bare_ticker("LONG"));
    }
}
