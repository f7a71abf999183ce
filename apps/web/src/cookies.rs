//! The cookies the dashboard sets: the Appwrite session secret (HttpOnly, SameSite=Lax), the CSRF
//! token (SameSite=Strict) and the short-lived sign-up proof (SameSite=Strict). Parsing and
//! `Set-Cookie` building, with no cookie framework. Over https all carry the `__Host-` prefix,
//! so no sibling subdomain can plant or shadow them.

use axum::http::{HeaderMap, HeaderValue, header};

/// Holds the user's Appwrite session secret.
pub const SESSION: &str = "g3_session";
/// Holds the double-submit CSRF token.
pub const CSRF: &str = "g3_csrf";
/// Holds the proof that this browser just created an account ([`crate::security::SignUpKey`]).
pub const SIGNUP: &str = "g3_signup";

/// [`SESSION`] as named on the wire: `__Host-` prefixed when cookies are `Secure`.
pub fn session_name(secure: bool) -> &'static str {
    if secure { "__Host-g3_session" } else { SESSION }
}

/// [`CSRF`] as named on the wire: `__Host-` prefixed when cookies are `Secure`.
pub fn csrf_name(secure: bool) -> &'static str {
    if secure { "__Host-g3_csrf" } else { CSRF }
}

/// [`SIGNUP`] as named on the wire: `__Host-` prefixed when cookies are `Secure`.
pub fn signup_name(secure: bool) -> &'static str {
    if secure { "__Host-g3_signup" } else { SIGNUP }
}

/// The value of cookie `name` from the request's `Cookie` headers.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    Strict,
}

/// A `Set-Cookie` value. `max_age` of `None` makes a browser-session cookie; `Some(0)` deletes.
pub fn set(
    name: &str,
    value: &str,
    same_site: SameSite,
    secure: bool,
    max_age: Option<i64>,
) -> Option<HeaderValue> {
    let same_site = match same_site {
        SameSite::Lax => "Lax",
        SameSite::Strict => "Strict",
    };
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={}", age.max(0)));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    let mut v = HeaderValue::from_str(&cookie).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// A cookie value is safe to echo only if it is plain token characters.
pub fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 512
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cookies_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; g3_session=abc; b=2"),
        );
        assert_eq!(get(&h, SESSION), Some("abc"));
        assert_eq!(get(&h, CSRF), None);
    }

    #[test]
    fn builds_attributes() {
        let v = set(SESSION, "x", SameSite::Lax, true, Some(60)).unwrap();
        assert_eq!(
            v.to_str().unwrap(),
            "g3_session=x; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        assert!(is_token("abc-DEF_1.2"));
        assert_eq!(session_name(true), "__Host-g3_session");
        assert_eq!(csrf_name(false), "g3_csrf");
        assert_eq!(signup_name(true), "__Host-g3_signup");
        assert_eq!(signup_name(false), "g3_signup");
        assert!(!is_token("a;b"));
    }
}
