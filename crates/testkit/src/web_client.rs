//! Signing in to web as a browser does, for tests and benches that drive the real server over
//! HTTP: fetch the form (CSRF cookie), post it, keep the session cookie.

use anyhow::Context as _;

/// The cookie names web uses (`web::cookies::{CSRF, SESSION}`; passed in so this crate need not
/// depend on web).
#[derive(Debug, Clone, Copy)]
pub struct Cookies<'a> {
    pub csrf: &'a str,
    pub session: &'a str,
}

/// The value of cookie `name` in one `Set-Cookie` header, if it sets a non-empty one.
pub fn cookie_value<'a>(set_cookie: &'a str, name: &str) -> Option<&'a str> {
    let pair = set_cookie.split(';').next()?;
    let (k, v) = pair.split_once('=')?;
    (k.trim() == name && !v.is_empty()).then_some(v)
}

fn set_cookie<'r>(r: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookie_value(v, name))
}

/// Signs `email` in through the sign-in form at `base` and returns the `cookie` header a
/// browser would send afterwards.
pub async fn sign_in(
    base: &str,
    email: &str,
    password: &str,
    cookies: Cookies<'_>,
) -> anyhow::Result<String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let r = http.get(format!("{base}/signin")).send().await?;
    let csrf = set_cookie(&r, cookies.csrf)
        .context("no CSRF cookie on the sign-in page")?
        .to_owned();
    let r = http
        .post(format!("{base}/signin"))
        .header("cookie", format!("{}={csrf}", cookies.csrf))
        .form(&[("email", email), ("password", password), ("csrf", &csrf)])
        .send()
        .await?;
    let session = set_cookie(&r, cookies.session)
        .with_context(|| format!("sign-in gave no session ({})", r.status()))?
        .to_owned();
    Ok(format!(
        "{}={csrf}; {}={session}",
        cookies.csrf, cookies.session
    ))
}

#[cfg(test)]
mod tests {
    use super::cookie_value;

    #[test]
    fn reads_one_cookie_of_a_set_cookie_header() {
        assert_eq!(
            cookie_value("g3_csrf=abc; Path=/; HttpOnly", "g3_csrf"),
            Some("abc")
        );
        assert_eq!(cookie_value("g3_csrf=; Max-Age=0", "g3_csrf"), None);
        assert_eq!(cookie_value("other=abc", "g3_csrf"), None);
    }
}
