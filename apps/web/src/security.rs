//! Request-level protections: security headers on every response, the double-submit CSRF check
//! on every state-changing request, and the client address used by the sign-in rate limits.

use std::net::SocketAddr;

use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{HeaderName, HeaderValue, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

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

/// Headers every response carries.
pub fn headers(form_origin: Option<&str>) -> [(HeaderName, HeaderValue); 4] {
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
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Double-submit CSRF: a random token lives in a SameSite=Strict cookie and is echoed in each
/// form; a state-changing request must carry both, equal. Safe requests get a token (and the
/// cookie, if it was missing). A foreign `Origin` is refused as well.
pub async fn csrf(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let cookie = cookies::get(req.headers(), cookies::CSRF)
        .filter(|v| v.len() == 64 && cookies::is_token(v))
        .map(str::to_owned);
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        if let Some(origin) = req.headers().get(header::ORIGIN)
            && origin.as_bytes() != state.origin().as_bytes()
        {
            return AppError::Csrf.into_response();
        }
        let Some(expected) = cookie else {
            return AppError::Csrf.into_response();
        };
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
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
    let (token, fresh) = match cookie {
        Some(t) => (t, false),
        None => (new_token(), true),
    };
    req.extensions_mut().insert(CsrfToken(token.clone()));
    let mut resp = next.run(req).await;
    if fresh
        && let Some(v) = cookies::set(
            cookies::CSRF,
            &token,
            cookies::SameSite::Strict,
            state.secure_cookies(),
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
