//! Request-level protections: security headers on every response, the body limit and CSRF check
//! on every state-changing request, and the client address used by the sign-in rate limits.

use std::net::SocketAddr;

use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{HeaderName, HeaderValue, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use crate::{AppState, cookies, error::AppError};

pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Largest form body read for the CSRF check; sign-in forms are tiny.
pub const FORM_LIMIT: usize = 16 * 1024;

/// [`CSP`], letting forms also lead to `form_origin`: browsers hold the redirects that follow
/// a form post to `form-action`, and the Discord link form's redirect goes to Discord.
pub fn csp(form_origin: Option<&str>) -> HeaderValue {
    form_origin
        .filter(|o| {
            !o.is_empty()
                && o.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        })
        .and_then(|o| {
            HeaderValue::from_str(
                &CSP.replace("form-action 'self'", &format!("form-action 'self' {o}")),
            )
            .ok()
        })
        .unwrap_or(HeaderValue::from_static(CSP))
}

/// Browser features no page here uses, denied to every page (and anything it might embed).
pub const PERMISSIONS_POLICY: &str = "camera=(), microphone=(), geolocation=(), payment=(), \
usb=(), interest-cohort=(), browsing-topics=()";

/// Headers every response carries.
pub fn headers(form_origin: Option<&str>) -> [(HeaderName, HeaderValue); 6] {
    [
        (header::CONTENT_SECURITY_POLICY, csp(form_origin)),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static(PERMISSIONS_POLICY),
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ]
}

/// The CSRF token of this request, for forms to echo in their hidden `csrf` field.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

/// The client's address: the peer, or with `trust_proxy` the last `X-Forwarded-For` hop.
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

/// 32 random bytes as 64 hex digits.
pub(crate) fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Equal length and content, compared without an early exit.
pub use g3_service::constant_time_eq;

/// HMAC-SHA256 (RFC 2104) over `sha2`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Binds CSRF tokens to sessions: a signed-in user's token is
/// `HMAC-SHA256(key, SHA-256(session secret))`. Replicas share no state but Appwrite, so the
/// key is derived from the Appwrite server key they all hold (`HMAC(api_key, "g3 csrf")`):
/// every replica computes the same token, and nobody without that key or the HttpOnly session
/// cookie can. Rotating the server key makes open forms ask for a reload, nothing more.
#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

impl CsrfKey {
    pub fn derive(api_key: &str) -> Self {
        Self(hmac_sha256(api_key.as_bytes(), b"g3 csrf"))
    }

    /// The token forms of the session holding `session_secret` must carry (64 hex digits).
    pub fn token_for(&self, session_secret: &str) -> String {
        hex::encode(hmac_sha256(
            &self.0,
            &Sha256::digest(session_secret.as_bytes()),
        ))
    }
}

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(..)")
    }
}

/// Proves, for a short while, that this browser created an account in its own sign-up: the
/// `g3_signup` cookie holds `expires.HMAC(key, user id, email, expires)`, the key derived from
/// the Appwrite server key like [`CsrfKey`] (`HMAC(api_key, "g3 signup")`), so any replica can
/// check it. With it, the emailed code keeps the password chosen at sign-up; without it the
/// code claims the account (see `auth::claim`).
#[derive(Clone)]
pub struct SignUpKey([u8; 32]);

impl SignUpKey {
    pub fn derive(api_key: &str) -> Self {
        Self(hmac_sha256(api_key.as_bytes(), b"g3 signup"))
    }

    fn mac(&self, user_id: &str, email: &str, expires: i64) -> [u8; 32] {
        // NUL cannot occur in an id or an address, so the fields cannot run into each other.
        let message = format!("{user_id}\0{email}\0{expires}");
        hmac_sha256(&self.0, message.as_bytes())
    }

    /// The cookie value proving the sign-up of `user_id` with `email`, good until `expires`.
    pub fn proof(&self, user_id: &str, email: &str, expires: OffsetDateTime) -> String {
        let expires = expires.unix_timestamp();
        format!(
            "{expires}.{}",
            hex::encode(self.mac(user_id, email, expires))
        )
    }

    /// A value shaped like [`SignUpKey::proof`] that proves nothing: an existing email's
    /// sign-up gets one, so the cookies do not tell which emails have accounts.
    pub fn decoy(expires: OffsetDateTime) -> String {
        format!("{}.{}", expires.unix_timestamp(), new_token())
    }

    /// Does `value` prove the sign-up of `user_id` with `email`, unexpired at `now`?
    pub fn verify(&self, value: &str, user_id: &str, email: &str, now: OffsetDateTime) -> bool {
        let Some((expires, mac)) = value.split_once('.') else {
            return false;
        };
        let Ok(expires) = expires.parse::<i64>() else {
            return false;
        };
        let expected = hex::encode(self.mac(user_id, email, expires));
        constant_time_eq(mac.as_bytes(), expected.as_bytes()) && now.unix_timestamp() < expires
    }
}

impl std::fmt::Debug for SignUpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignUpKey(..)")
    }
}

/// CSRF, after the body limit (a body past [`FORM_LIMIT`] is a 413, whatever else is wrong).
/// With a session cookie the form must carry that session's token ([`CsrfKey::token_for`]),
/// so a planted cookie or another session's token is refused; signed out (the sign-in and
/// sign-up forms) it is double-submit: a random token in a SameSite=Strict cookie echoed by
/// the form. Either way the cookie holds the token expected, and a foreign `Origin` is refused.
/// Safe requests get the token, and the cookie when it is missing or stale, except on
/// publicly cacheable responses (a shared cache would hand one token to everyone).
pub async fn csrf(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let secure = state.secure_cookies();
    let bound = cookies::get(req.headers(), cookies::session_name(secure))
        .filter(|v| cookies::is_token(v))
        .map(|secret| state.csrf_key().token_for(secret));
    let cookie = cookies::get(req.headers(), cookies::csrf_name(secure))
        .filter(|v| v.len() == 64 && cookies::is_token(v))
        .map(str::to_owned);
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > FORM_LIMIT as u64) {
            return AppError::TooLarge.into_response();
        }
        let (parts, body) = req.into_parts();
        // Past the limit without a length given (chunked), or cut short: refused unread.
        let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
            return AppError::TooLarge.into_response();
        };
        if let Some(origin) = parts.headers.get(header::ORIGIN)
            && origin.as_bytes() != state.origin().as_bytes()
        {
            return AppError::Csrf.into_response();
        }
        let Some(expected) = bound.or(cookie) else {
            return AppError::Csrf.into_response();
        };
        let given = url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned());
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), expected.as_bytes())) {
            return AppError::Csrf.into_response();
        }
        let mut req = Request::from_parts(parts, Body::from(bytes));
        req.extensions_mut().insert(CsrfToken(expected));
        return next.run(req).await;
    }
    let token = bound
        .clone()
        .or_else(|| cookie.clone())
        .unwrap_or_else(new_token);
    let stale = cookie.as_deref() != Some(token.as_str());
    req.extensions_mut().insert(CsrfToken(token.clone()));
    let mut resp = next.run(req).await;
    let cacheable = resp
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("public"));
    if stale
        && !cacheable
        && let Some(v) = cookies::set(
            cookies::csrf_name(secure),
            &token,
            cookies::SameSite::Strict,
            secure,
            None,
        )
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// Works out [`ClientIp`] once per request.
pub async fn client_ip(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let forwarded = state
        .trust_proxy()
        .then(|| {
            req.headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        })
        .flatten();
    let ip = forwarded.or(peer).unwrap_or_else(|| "unknown".into());
    req.extensions_mut().insert(ClientIp(ip));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_tokens() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert_eq!(new_token().len(), 64);
    }

    #[test]
    fn hmac_matches_the_standard_construction() {
        // RFC 4231 test case 2, and a key longer than a block.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let long = "k".repeat(100);
        assert_eq!(
            hex::encode(hmac_sha256(long.as_bytes(), b"body")),
            g3_core::signing::sellapp_signature(&long, b"body")
        );
    }

    #[test]
    fn session_tokens_differ_per_session_and_agree_across_replicas() {
        let a = CsrfKey::derive("server key");
        let b = CsrfKey::derive("server key");
        assert_eq!(a.token_for("s1"), b.token_for("s1"));
        assert_ne!(a.token_for("s1"), a.token_for("s2"));
        assert_ne!(a.token_for("s1"), CsrfKey::derive("other").token_for("s1"));
        assert_eq!(a.token_for("s1").len(), 64);
        assert_eq!(format!("{a:?}"), "CsrfKey(..)");
    }

    #[test]
    fn sign_up_proofs_bind_user_email_and_expiry() {
        let now = OffsetDateTime::now_utc();
        let later = now + time::Duration::minutes(30);
        let key = SignUpKey::derive("server key");
        let proof = key.proof("u1", "a@example.com", later);
        assert!(crate::cookies::is_token(&proof));
        assert!(SignUpKey::derive("server key").verify(&proof, "u1", "a@example.com", now));
        assert!(!key.verify(&proof, "u2", "a@example.com", now));
        assert!(!key.verify(&proof, "u1", "b@example.com", now));
        assert!(!key.verify(&proof, "u1", "a@example.com", later));
        assert!(!SignUpKey::derive("other").verify(&proof, "u1", "a@example.com", now));
        let (_, mac) = proof.split_once('.').unwrap();
        let stretched = format!(
            "{}.{mac}",
            (later + time::Duration::days(1)).unix_timestamp()
        );
        assert!(!key.verify(&stretched, "u1", "a@example.com", now));
        let decoy = SignUpKey::decoy(later);
        assert_eq!(decoy.len(), proof.len());
        assert!(!key.verify(&decoy, "u1", "a@example.com", now));
        for junk in ["", ".", "x.y", "1", "abc.def"] {
            assert!(!key.verify(junk, "u1", "a@example.com", now), "{junk:?}");
        }
        assert_eq!(format!("{key:?}"), "SignUpKey(..)");
    }

    #[test]
    fn the_policy_names_the_discord_origin_only_when_given() {
        assert_eq!(csp(None), CSP);
        let with = csp(Some("https://discord.com"));
        let with = with.to_str().unwrap();
        assert!(
            with.contains("form-action 'self' https://discord.com"),
            "{with}"
        );
        assert_eq!(csp(Some("x; script-src *")), CSP);
    }
}
