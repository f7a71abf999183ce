//! Webhook signatures, verified over the raw body bytes before anything is parsed.
//!
//! Two schemes: Sell.app's `signature` header (lower-case hex HMAC-SHA256 of the body, keyed
//! with the webhook secret's UTF-8 bytes) and Standard Webhooks (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64>` over `{id}.{timestamp}.{body}`), which
//! Sell.app's newer channels and our own collector use. Comparisons are constant-time (the
//! `hmac` crate's `verify_slice`).

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far a Standard Webhooks timestamp may be from now, either way.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 5 * 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request is not signed")]
    Missing,
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the signature timestamp is outside the allowed window")]
    StaleTimestamp,
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// Sell.app's `signature` header value for `body`.
pub fn sellapp_signature(secret: &str, body: &[u8]) -> String {
    let mut m = mac(secret.as_bytes());
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

/// Checks Sell.app's `signature` header (hex, either case) against `body`.
pub fn verify_sellapp(
    secret: &str,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(SignatureError::Missing)?;
    let given = hex::decode(header).map_err(|_| SignatureError::Malformed)?;
    let mut m = mac(secret.as_bytes());
    m.update(body);
    m.verify_slice(&given).map_err(|_| SignatureError::Mismatch)
}

/// The key bytes of a Standard Webhooks secret: `whsec_<base64>` is decoded, as the spec says;
/// any other secret is used as its UTF-8 bytes (Sell.app store secrets).
fn standard_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| BASE64.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// The `webhook-signature` value (`v1,<base64>`) for a message.
pub fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut m = mac(&standard_key(secret));
    m.update(format!("{id}.{timestamp}.").as_bytes());
    m.update(body);
    format!("v1,{}", BASE64.encode(m.finalize().into_bytes()))
}

/// The three Standard Webhooks headers of one request.
#[derive(Debug, Clone, Copy)]
pub struct StandardHeaders<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
}

/// Checks a Standard Webhooks request: timestamp within the window of `now` (Unix seconds),
/// and any one of the space-separated `v1,` signatures matching.
pub fn verify_standard(
    secret: &str,
    headers: StandardHeaders<'_>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let timestamp: i64 = headers
        .timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed)?;
    if (now - timestamp).abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err(SignatureError::StaleTimestamp);
    }
    let mut any_v1 = false;
    for candidate in headers.signature.split_whitespace() {
        let Some(b64) = candidate.strip_prefix("v1,") else {
            continue;
        };
        any_v1 = true;
        let Ok(given) = BASE64.decode(b64) else {
            continue;
        };
        let mut m = mac(&standard_key(secret));
        m.update(format!("{}.{timestamp}.", headers.id).as_bytes());
        m.update(body);
        if m.verify_slice(&given).is_ok() {
            return Ok(());
        }
    }
    if any_v1 {
        Err(SignatureError::Mismatch)
    } else {
        Err(SignatureError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2: the HMAC-SHA256 of "what do ya want for nothing?" keyed "Jefe".
    #[test]
    fn known_hmac_vector() {
        assert_eq!(
            sellapp_signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sellapp_signature_round_trip_and_failures() {
        let body = br#"{"event":"order.completed"}"#;
        let sig = sellapp_signature("s3cret", body);
        assert_eq!(verify_sellapp("s3cret", body, Some(&sig)), Ok(()));
        assert_eq!(
            verify_sellapp("s3cret", body, Some(&sig.to_uppercase())),
            Ok(())
        );
        assert_eq!(
            verify_sellapp("other", body, Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_sellapp("s3cret", br#"{"event":"order.completeD"}"#, Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_sellapp("s3cret", body, None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_sellapp("s3cret", body, Some("")),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_sellapp("s3cret", body, Some("zz")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_sellapp("s3cret", body, Some(&sig[..10])),
            Err(SignatureError::Mismatch)
        );
    }

    /// The example from the Standard Webhooks specification.
    #[test]
    fn standard_webhooks_spec_vector() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        let sig = standard_signature(secret, id, 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let headers = StandardHeaders {
            id,
            timestamp: "1614265330",
            signature: &sig,
        };
        assert_eq!(
            verify_standard(secret, headers, body, 1614265330 + 10),
            Ok(())
        );
    }

    #[test]
    fn standard_webhooks_failures() {
        let secret = "store-secret";
        let body = b"{}";
        let sig = standard_signature(secret, "evt_1", 1_000_000, body);
        let ok = StandardHeaders {
            id: "evt_1",
            timestamp: "1000000",
            signature: &sig,
        };
        assert_eq!(verify_standard(secret, ok, body, 1_000_000 + 299), Ok(()));
        assert_eq!(
            verify_standard(secret, ok, body, 1_000_000 + 301),
            Err(SignatureError::StaleTimestamp)
        );
        assert_eq!(
            verify_standard(secret, ok, body, 1_000_000 - 301),
            Err(SignatureError::StaleTimestamp)
        );
        let other_id = StandardHeaders { id: "evt_2", ..ok };
        assert_eq!(
            verify_standard(secret, other_id, body, 1_000_000),
            Err(SignatureError::Mismatch)
        );
        let several = format!("v1,bm90LWl0 {sig}");
        let rotated = StandardHeaders {
            signature: &several,
            ..ok
        };
        assert_eq!(verify_standard(secret, rotated, body, 1_000_000), Ok(()));
        let no_v1 = StandardHeaders {
            signature: "v2,abc",
            ..ok
        };
        assert_eq!(
            verify_standard(secret, no_v1, body, 1_000_000),
            Err(SignatureError::Malformed)
        );
        let bad_ts = StandardHeaders {
            timestamp: "soon",
            ..ok
        };
        assert_eq!(
            verify_standard(secret, bad_ts, body, 1_000_000),
            Err(SignatureError::Malformed)
        );
    }
}
