//! Small helpers shared by every route: Appwrite ids, timestamps, secrets, HTML escaping.

use rand::Rng;
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, format_description::FormatItem, macros::format_description};

use crate::error::ApiError;

const APPWRITE_DATE: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+00:00");

/// Appwrite's datetime format: `2024-05-01T12:34:56.789+00:00`, always UTC.
pub fn format_time(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(APPWRITE_DATE)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000+00:00".to_owned())
}

pub fn now() -> String {
    format_time(OffsetDateTime::now_utc())
}

/// Parses any RFC 3339 datetime (what clients send) into Appwrite's stored format.
pub fn normalize_time(value: &str) -> Option<String> {
    OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(format_time)
}

/// `ID.unique()`: 13 hex digits of time then 7 random hex digits, like Appwrite's `uniqid`-based ids,
/// so ids created later sort later.
pub fn unique_id() -> String {
    let now = OffsetDateTime::now_utc();
    let micros = now.unix_timestamp_nanos() / 1_000;
    let secs = micros / 1_000_000;
    let usec = micros % 1_000_000;
    let suffix: u32 = rand::rng().random_range(0..0x1000_0000);
    format!("{secs:08x}{usec:05x}{suffix:07x}")
}

/// Resolves a client-supplied id: `unique()` asks for a fresh one; anything else must be a valid
/// custom id (`a-z A-Z 0-9 . - _`, at most 36 chars, not starting with a special char).
pub fn resolve_id(param: &str, raw: &str) -> Result<String, ApiError> {
    if raw == "unique()" {
        return Ok(unique_id());
    }
    if is_valid_custom_id(raw) {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::argument_invalid(format!(
            "Invalid `{param}` param: Parameter must contain at most 36 chars. Valid chars are a-z, A-Z, 0-9, period, hyphen, and underscore. Can't start with a special char"
        )))
    }
}

pub fn is_valid_custom_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 36
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// A random secret of `bytes` bytes, hex-encoded (sessions, tokens).
pub fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(buf.as_mut_slice());
    hex::encode(buf)
}

/// Secrets are stored hashed: a leaked database file does not hand out sessions.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Emulator-only password hashing (salted SHA-256). The emulator is a development and test
/// backend, never a store of real customers' passwords; production uses real Appwrite (argon2).
pub fn hash_password(password: &str, salt: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0u8]);
    h.update(password.as_bytes());
    hex::encode(h.finalize())
}

/// A six-digit one-time code, as Appwrite mails for email sign-in.
pub fn otp_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// HTML-escapes text for element content and double- or single-quoted attributes (also used
/// by the test kit's and devstack's small HTML pages).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_are_valid_and_distinct() {
        let a = unique_id();
        let b = unique_id();
        assert_eq!(a.len(), 20);
        assert!(is_valid_custom_id(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn custom_id_rules() {
        assert!(is_valid_custom_id("signals"));
        assert!(is_valid_custom_id("a.b-c_d"));
        assert!(!is_valid_custom_id("_leading"));
        assert!(!is_valid_custom_id(""));
        assert!(!is_valid_custom_id(&"x".repeat(37)));
        assert!(!is_valid_custom_id("has space"));
    }

    #[test]
    fn time_format_matches_appwrite() {
        let t = time::macros::datetime!(2024-05-01 12:34:56.789 UTC);
        assert_eq!(format_time(t), "2024-05-01T12:34:56.789+00:00");
        assert_eq!(
            normalize_time("2024-05-01T14:34:56.789+02:00").as_deref(),
            Some("2024-05-01T12:34:56.789+00:00")
        );
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape_html("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
    }
}
