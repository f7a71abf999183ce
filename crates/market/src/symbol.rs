//! An exchange symbol (`BTCUSDT`) built only from a parsed pair (`BTC/USDT`). Whether a venue
//! lists it is a separate question answered by [`crate::Listings`]; nothing here guesses.

use std::fmt;

/// A symbol as Binance and Bybit spell it: base and quote glued, upper-case ASCII.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(String);

/// A pair that does not read as `BASE/QUOTE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a BASE/QUOTE pair: {0:?}")]
pub struct PairError(pub String);

impl Symbol {
    /// `BTC/USDT` → `BTCUSDT`. The signal parser (`ParsedSignal::pair` in g3-core) writes
    /// pairs as upper-case `BASE/QUOTE`. Both sides must be ASCII letters and digits; case is
    /// normalised. Anything else (no slash, empty side, `BTC/USDT/X`) is an error, never a
    /// guess.
    pub fn from_pair(pair: &str) -> Result<Symbol, PairError> {
        let bad = || PairError(pair.to_owned());
        let (base, quote) = pair.trim().split_once('/').ok_or_else(bad)?;
        let ok = |s: &str| {
            !s.is_empty() && s.len() <= 20 && s.bytes().all(|c| c.is_ascii_alphanumeric())
        };
        if !ok(base) || !ok(quote) {
            return Err(bad());
        }
        Ok(Symbol(format!("{base}{quote}").to_ascii_uppercase()))
    }

    /// A symbol exactly as an exchange wrote it (upper-cased); `None` unless ASCII
    /// alphanumeric. For reading exchange payloads and listings, not user input.
    pub fn from_exchange(raw: &str) -> Option<Symbol> {
        (!raw.is_empty() && raw.len() <= 40 && raw.bytes().all(|c| c.is_ascii_alphanumeric()))
            .then(|| Symbol(raw.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Binance stream names use the lower-case symbol (`btcusdt@trade`).
    pub(crate) fn lower(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glues_a_parsed_pair() {
        assert_eq!(Symbol::from_pair("BTC/USDT").unwrap().as_str(), "BTCUSDT");
        assert_eq!(Symbol::from_pair(" eth/usdc ").unwrap().as_str(), "ETHUSDC");
        assert_eq!(
            Symbol::from_pair("1000PEPE/USDT").unwrap().as_str(),
            "1000PEPEUSDT"
        );
    }

    #[test]
    fn refuses_what_is_not_a_pair() {
        for bad in [
            "BTCUSDT",
            "BTC/",
            "/USDT",
            "BTC/USDT/X",
            "BTC-USDT",
            "BT C/USDT",
            "",
        ] {
            assert!(Symbol::from_pair(bad).is_err(), "{bad:?}");
        }
    }
}
