//! Email addresses as the product keys customers by: trimmed and lower-cased, so a purchase made
//! as `Trader.Joe@Example.com` belongs to the account `trader.joe@example.com`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A syntactically plausible, normalised email address.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email address is empty")]
    Empty,
    #[error("email address is longer than 320 characters")]
    TooLong,
    #[error("`{0}` is not an email address")]
    Invalid(String),
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        // Lower-case first and check what is kept: lower-casing can change the length and the
        // characters (`İ` becomes `i` + U+0307), and a stored address must parse again.
        let lowered = raw.trim().to_lowercase();
        let s = lowered.as_str();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.len() > 320 {
            return Err(EmailError::TooLong);
        }
        let invalid = || EmailError::Invalid(s.to_owned());
        let (local, domain) = s.rsplit_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '@');
        if !(domain_ok && local_ok) {
            return Err(invalid());
        }
        Ok(Self(lowered))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Email::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let e = Email::parse("  Trader.Joe@Example.com ").unwrap();
        assert_eq!(e.as_str(), "trader.joe@example.com");
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in [
            "",
            "   ",
            "joe",
            "joe@",
            "@example.com",
            "joe@example",
            "jo e@example.com",
            "joe@exa..mple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            Email::parse(&format!("{}@example.com", "a".repeat(400))),
            Err(EmailError::TooLong)
        );
    }

    /// Found by fuzzing: `İ` lower-cases to two characters, so a checked-then-lowered address
    /// could be stored in a form that no longer parses (and no longer loads from Appwrite).
    #[test]
    fn what_is_accepted_parses_again_unchanged() {
        for raw in [
            "a@İ.com",
            "İİ@example.com",
            &format!("{}@example.com", "İ".repeat(32)),
            "ÅSA@Example.COM",
            "KELVIN\u{212A}@example.com",
        ] {
            if let Ok(e) = Email::parse(raw) {
                assert_eq!(Email::parse(e.as_str()), Ok(e.clone()), "{raw:?} -> {e:?}");
                assert!(e.as_str().split('@').next().unwrap().len() <= 64, "{e:?}");
            }
        }
        assert!(
            Email::parse("a@İ.com").is_err(),
            "U+0307 is not a domain character"
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_is_idempotent(raw in "\\PC{0,40}@\\PC{0,20}") {
            if let Ok(e) = Email::parse(&raw) {
                proptest::prop_assert_eq!(Email::parse(e.as_str()), Ok(e.clone()));
            }
        }
    }
}
