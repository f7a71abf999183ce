//! Discord ids ("snowflakes"): a 64-bit number Discord sends as a decimal string. Parsed once
//! at the edge, so a guild, channel, role or user id inside the product is always well formed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Discord id: 1 to 20 ASCII digits that fit in a `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Snowflake(u64);

/// Why a text is not a Discord id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Discord id (expected 1 to 20 digits)")]
pub struct NotASnowflake(pub String);

impl Snowflake {
    pub fn parse(s: &str) -> Result<Self, NotASnowflake> {
        let digits = !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        digits
            .then(|| s.parse::<u64>().ok())
            .flatten()
            .map(Self)
            .ok_or_else(|| NotASnowflake(s.to_owned()))
    }

    /// Whether `s` is a well-formed Discord id.
    pub fn is_valid(s: &str) -> bool {
        Self::parse(s).is_ok()
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for Snowflake {
    fn from(v: u64) -> Self {
        Self(v)
    }
}

impl FromStr for Snowflake {
    type Err = NotASnowflake;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Snowflake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// On the wire a snowflake is a string, as Discord and our documents write it.
impl Serialize for Snowflake {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// Accepts the string form and, for lenient sources, a JSON number.
impl<'de> Deserialize<'de> for Snowflake {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Text(String),
            Number(u64),
        }
        match Wire::deserialize(d)? {
            Wire::Text(s) => Self::parse(&s).map_err(serde::de::Error::custom),
            Wire::Number(n) => Ok(Self(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_discord_ids_and_refuses_the_rest() {
        assert_eq!(
            Snowflake::parse("1234567890123456789").unwrap().get(),
            1_234_567_890_123_456_789
        );
        for bad in [
            "",
            "12a",
            "-1",
            " 1",
            "123456789012345678901",
            "99999999999999999999",
        ] {
            assert!(Snowflake::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn round_trips_as_a_string() {
        let id: Snowflake = serde_json::from_str("\"42\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"42\"");
        let id: Snowflake = serde_json::from_str("42").unwrap();
        assert_eq!(id.to_string(), "42");
        assert!(serde_json::from_str::<Snowflake>("\"x\"").is_err());
    }
}
