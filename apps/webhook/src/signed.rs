//! The signed-body check both endpoints share, so a request is trusted the same way wherever it
//! arrives: declared JSON (else 415, unread), read whole within the route's body limit (else
//! 413), then an HMAC over the raw bytes by any accepted secret, the current one first and then
//! one being rotated out, compared in constant time by `g3_core::signing`. Nothing is parsed
//! before it passes.

use axum::{
    body::Bytes,
    extract::{FromRequest as _, Request},
    http::{HeaderMap, header},
};
use g3_core::signing::{self, SignatureError, StandardHeaders};

use crate::{AppState, Secret, error::WebhookError, metrics::Endpoint};

/// How an endpoint's senders sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// Standard Webhooks headers only (the collector).
    Standard,
    /// Standard Webhooks when all three of its headers are present, else Sell.app's
    /// `signature` header.
    StandardOrSellapp,
}

/// A body that one of the endpoint's secrets signed, with the request's headers.
pub(crate) struct SignedBody {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl SignedBody {
    /// Checks and reads `request`; refusals are counted per endpoint.
    pub(crate) async fn read(
        request: Request,
        state: &AppState,
        endpoint: Endpoint,
        scheme: Scheme,
        secrets: &[Secret],
    ) -> Result<Self, WebhookError> {
        if !is_json(request.headers()) {
            state.metrics.unsupported_media_type(endpoint);
            return Err(WebhookError::NotJson);
        }
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, state).await?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Err(e) = verify_any(secrets, scheme, &headers, &body, now) {
            state.metrics.rejected(endpoint, &e);
            return Err(match (scheme, e) {
                (Scheme::Standard, SignatureError::Missing) => WebhookError::Unsigned(
                    "the request is not signed (webhook-id, webhook-timestamp, webhook-signature)",
                ),
                (_, e) => WebhookError::Signature(e),
            });
        }
        Ok(Self { headers, body })
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        header_str(&self.headers, name)
    }
}

/// Whether the request says its body is JSON: `application/json`, parameters such as
/// `; charset=utf-8` allowed.
fn is_json(headers: &HeaderMap) -> bool {
    header_str(headers, header::CONTENT_TYPE.as_str())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether any of `secrets` signed the request; the current (first) secret's error otherwise.
fn verify_any(
    secrets: &[Secret],
    scheme: Scheme,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let mut first_error = None;
    for secret in secrets {
        match verify(secret.expose(), scheme, headers, body, now) {
            Ok(()) => return Ok(()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(SignatureError::Missing))
}

fn verify(
    secret: &str,
    scheme: Scheme,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let standard = match (
        header_str(headers, "webhook-id"),
        header_str(headers, "webhook-timestamp"),
        header_str(headers, "webhook-signature"),
    ) {
        (Some(id), Some(timestamp), Some(signature)) => Some(StandardHeaders {
            id,
            timestamp,
            signature,
        }),
        _ => None,
    };
    match (standard, scheme) {
        (Some(standard), _) => signing::verify_standard(secret, standard, body, now),
        (None, Scheme::Standard) => Err(SignatureError::Missing),
        (None, Scheme::StandardOrSellapp) => {
            signing::verify_sellapp(secret, body, header_str(headers, "signature"))
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const NOW: i64 = 1_767_225_600;

    fn standard(secret: &str, body: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let signature = signing::standard_signature(secret, "msg_1", NOW, body);
        headers.insert("webhook-id", HeaderValue::from_static("msg_1"));
        headers.insert("webhook-timestamp", NOW.to_string().parse().unwrap());
        headers.insert("webhook-signature", signature.parse().unwrap());
        headers
    }

    #[test]
    fn a_previous_secret_still_verifies_and_the_current_ones_error_is_reported() {
        let body = b"{}";
        let secrets = [Secret::new("current"), Secret::new("previous")];
        let by_previous = standard("previous", body);
        assert_eq!(
            verify_any(&secrets, Scheme::Standard, &by_previous, body, NOW),
            Ok(())
        );
        let by_nobody = standard("nobody", body);
        assert_eq!(
            verify_any(&secrets, Scheme::Standard, &by_nobody, body, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_any(&secrets, Scheme::Standard, &by_previous, body, NOW + 301),
            Err(SignatureError::StaleTimestamp)
        );
    }

    #[test]
    fn only_sellapp_accepts_its_signature_header() {
        let body = b"{}";
        let secrets = [Secret::new("current")];
        let mut headers = HeaderMap::new();
        let signature = signing::sellapp_signature("current", body);
        headers.insert("signature", signature.parse().unwrap());
        assert_eq!(
            verify_any(&secrets, Scheme::StandardOrSellapp, &headers, body, NOW),
            Ok(())
        );
        assert_eq!(
            verify_any(&secrets, Scheme::Standard, &headers, body, NOW),
            Err(SignatureError::Missing)
        );
    }
}
