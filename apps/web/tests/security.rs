//! The security properties of issue 4: who sees what, CSRF, revoked sessions, hostile content,
//! security headers, sign-in rate limits.

mod common;

use std::time::Duration;

use common::{Browser, PASSWORD, TestApp};
use reqwest::StatusCode;
use web::Limits;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Anonymous,
    Unverified,
    VerifiedUnpaid,
    Paid,
    Staff,
}

async fn as_who(app: &TestApp, who: Who) -> Browser {
    match who {
        Who::Anonymous => app.browser(),
        Who::Unverified => app.unverified("unverified@example.com", PASSWORD).await,
        Who::VerifiedUnpaid => app.verified("unpaid@example.com").await,
        Who::Paid => {
            let b = app.verified("paid@example.com").await;
            app.grant("paid@example.com").await;
            b
        }
        Who::Staff => {
            let b = app.verified("staff@example.com").await;
            app.make_staff("staff@example.com").await;
            b
        }
    }
}

#[tokio::test]
async fn authorization_matrix() {
    let app = TestApp::spawn().await;
    app.seed_signal("3001", |s| s["content"] = "members only text".into())
        .await;
    for who in [
        Who::Anonymous,
        Who::Unverified,
        Who::VerifiedUnpaid,
        Who::Paid,
        Who::Staff,
    ] {
        let mut b = as_who(&app, who).await;

        let feed = b.get("/feed").await;
        match who {
            Who::Anonymous => {
                assert_eq!(feed.status, StatusCode::SEE_OTHER, "{who:?}");
                assert_eq!(feed.location(), "/signin");
            }
            Who::Unverified => {
                assert_eq!(feed.status, StatusCode::FORBIDDEN, "{who:?}");
                assert!(feed.body.contains("Verify your email"));
            }
            Who::VerifiedUnpaid => {
                assert_eq!(feed.status, StatusCode::FORBIDDEN, "{who:?}");
                assert!(feed.body.contains("No active plan"));
            }
            Who::Paid | Who::Staff => {
                assert_eq!(feed.status, StatusCode::OK, "{who:?}: {}", feed.body);
            }
        }
        assert_eq!(
            feed.body.contains("members only text"),
            matches!(who, Who::Paid | Who::Staff),
            "{who:?} signal visibility"
        );

        let account = b.get("/account").await;
        if who == Who::Anonymous {
            assert_eq!(account.status, StatusCode::SEE_OTHER);
            assert_eq!(account.location(), "/signin");
        } else {
            assert_eq!(account.status, StatusCode::OK, "{who:?}");
            let label = match who {
                Who::Unverified => "Verify your email to continue",
                Who::VerifiedUnpaid => "No active plan",
                Who::Paid => "Member: the signal feed is open to you",
                _ => "Staff: every route and the admin console",
            };
            assert!(
                account
                    .body
                    .contains(&format!("<dd id=\"standing\">{label}</dd>")),
                "{who:?}: {}",
                account.body
            );
        }

        let ping = b.get("/api/appwrite/ping").await;
        let json: serde_json::Value = serde_json::from_str(&ping.body).unwrap();
        if who == Who::Anonymous {
            assert_eq!(ping.status, StatusCode::UNAUTHORIZED);
            assert_eq!(json["status"], "unauthorized");
        } else {
            assert_eq!(ping.status, StatusCode::OK, "{who:?}");
            assert_eq!(json["status"], "ok");
            assert!(json["latency_ms"].is_u64());
        }
    }
}

/// How askama escapes text.
fn escaped(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

#[tokio::test]
async fn hostile_content_renders_inert() {
    let app = TestApp::spawn().await;
    app.seed_route("vip-calls", "<img src=x onerror=alert(1)>")
        .await;
    let long = "A".repeat(7_900);
    app.seed_signal("4001", |s| {
        s["content"] = "<script>alert(1)</script> [click](javascript:alert(2)) <a href=\"javascript:alert(3)\">x</a>".into();
        s["author_name"] = "<b onmouseover=alert(4)>mallory</b>".into();
        s["pair"] = "<svg/onload=alert(5)>".into();
        s["embeds"] = serde_json::json!([{
            "title": "<iframe src=javascript:alert(6)>",
            "description": "<img src=x onerror=alert(7)>",
            "url": "javascript:alert(8)",
            "fields": [{ "name": "<script>", "value": "</div><script>alert(9)</script>" }]
        }])
        .to_string()
        .into();
    })
    .await;
    app.seed_signal("4002", |s| s["content"] = long.clone().into())
        .await;
    let mut b = app.verified("paid@example.com").await;
    app.grant("paid@example.com").await;
    let r = b.get("/feed").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = &r.body;
    for needle in [
        "<script>alert",
        "<script>",
        "<img src=x",
        "<iframe",
        "<svg",
        "<b onmouseover",
        "href=\"javascript:",
        "<a href=\"javascript",
    ] {
        assert!(!body.contains(needle), "raw {needle:?} in the page");
    }
    for shown in [
        "<script>alert(1)</script>",
        "<a href=\"javascript:alert(3)\">x</a>",
        "<iframe src=javascript:alert(6)>",
        "<b onmouseover=alert(4)>mallory</b>",
        "<img src=x onerror=alert(1)>",
        "</div><script>alert(9)</script>",
    ] {
        assert!(body.contains(&escaped(shown)), "{shown:?} shown escaped");
    }
    assert!(!body.contains("alert(8)"), "embed URLs are not rendered");
    assert!(body.contains(&long), "long text shown whole");
    // The only scripts are our own file.
    assert_eq!(body.matches("<script").count(), 1);
    assert!(body.contains("<script src=\"/static/app.js\" defer></script>"));
}

#[tokio::test]
async fn forged_or_missing_csrf_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let mut b = app.browser();
    let token = b.csrf().await;

    // Sign-up without a token, with a wrong one, and with no cookie at all: no user appears.
    let form = [("email", "victim@example.com"), ("password", PASSWORD)];
    let r = b.post_raw("/signup", &form).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("Request refused"));
    let mut forged = form.to_vec();
    let wrong = "0".repeat(64);
    forged.push(("csrf", &wrong));
    assert_eq!(b.post_raw("/signup", &forged).await.status, 403);
    let mut fresh = app.browser();
    let mut with_token = form.to_vec();
    with_token.push(("csrf", &token));
    assert_eq!(
        fresh.post_raw("/signup", &with_token).await.status,
        403,
        "a token without its cookie (another browser) is refused"
    );
    let users = app.backend.client.users();
    assert!(
        users
            .find_by_email("victim@example.com")
            .await
            .unwrap()
            .is_none()
    );

    // A signed-in user is not signed out by a forged form.
    let mut b = app.verified("user@example.com").await;
    assert_eq!(b.post_raw("/signout", &[]).await.status, 403);
    assert_eq!(
        b.post_raw("/signout/all", &[("csrf", "nope")]).await.status,
        403
    );
    assert_eq!(b.get("/account").await.status, 200, "still signed in");

    // A foreign Origin is refused even with a valid token pair.
    let token = b.csrf().await;
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/signout", app.url))
        .header("origin", "https://evil.example")
        .header(
            "cookie",
            format!("g3_csrf={token}; g3_session={}", b.jar["g3_session"]),
        )
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(b.get("/account").await.status, 200, "still signed in");
}

#[tokio::test]
async fn revoked_session_cookie_gets_nothing() {
    let app = TestApp::spawn().await;
    app.seed_signal("5001", |s| s["content"] = "secret call".into())
        .await;
    let mut phone = app.verified("multi@example.com").await;
    app.grant("multi@example.com").await;
    let mut laptop = app.browser();
    assert_eq!(
        laptop.sign_in("multi@example.com", PASSWORD).await.status,
        303
    );
    assert_eq!(laptop.get("/feed").await.status, 200);
    let stolen = phone.jar["g3_session"].clone();

    let r = laptop.post("/signout/all", &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/signin?notice=signed-out-all");

    // The phone's cookie (or a copy of it) no longer works: cleared and sent to sign in.
    let r = phone.get("/feed").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/signin?notice=session-ended");
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with("g3_session=;") && c.contains("Max-Age=0"))
    );
    assert!(!phone.signed_in());
    let mut thief = app.browser();
    thief.jar.insert("g3_session".into(), stolen);
    for path in ["/feed", "/account"] {
        let r = thief.get(path).await;
        assert_eq!(r.status, 303, "{path}");
        assert!(!r.body.contains("secret call"));
    }
    let r = thief.get("/api/appwrite/ping").await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let app = TestApp::spawn().await;
    let mut b = app.verified("h@example.com").await;
    app.grant("h@example.com").await;
    let mut anon = app.browser();
    let mut responses = Vec::new();
    for path in [
        "/signin",
        "/signup",
        "/signin/code",
        "/verify?userId=x&secret=y",
        "/healthz",
        "/static/app.css",
        "/static/app.js",
        "/no/such/page",
        "/feed",
        "/api/appwrite/ping",
    ] {
        responses.push((path, anon.get(path).await));
    }
    for path in ["/feed", "/account", "/api/appwrite/ping", "/"] {
        responses.push((path, b.get(path).await));
    }
    responses.push((
        "POST /signout (no token)",
        anon.post_raw("/signout", &[]).await,
    ));
    for (path, r) in &responses {
        let h = |name: &str| {
            r.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(h("content-security-policy"), web::security::CSP, "{path}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(h("referrer-policy"), "same-origin", "{path}");
        assert_eq!(h("cross-origin-opener-policy"), "same-origin", "{path}");
        let permissions = h("permissions-policy");
        for feature in [
            "camera=()",
            "microphone=()",
            "geolocation=()",
            "payment=()",
            "usb=()",
            "interest-cohort=()",
            "browsing-topics=()",
        ] {
            assert!(permissions.contains(feature), "{path}: {permissions}");
        }
    }
    let css = &responses[5].1;
    assert_eq!(css.status, 200);
    assert!(
        css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert_eq!(responses[7].1.status, 404);
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_email_and_per_ip() {
    let app = TestApp::spawn_with(Limits {
        per_ip: 5,
        per_email: 3,
        window: Duration::from_secs(600),
    })
    .await;
    let mut b = app.browser();
    for _ in 0..3 {
        let r = b.sign_in("target@example.com", "guess").await;
        assert_eq!(r.status, 401);
    }
    let r = b.sign_in("target@example.com", "guess").await;
    assert_eq!(r.status, 429);
    assert!(r.body.contains("Too many sign-in attempts"));
    assert!(r.headers.contains_key("retry-after"));
    // Other emails from the same address still work until the per-IP limit.
    assert_eq!(b.sign_in("other1@example.com", "guess").await.status, 401);
    assert_eq!(b.sign_in("other2@example.com", "guess").await.status, 401);
    assert_eq!(b.sign_in("other3@example.com", "guess").await.status, 429);
}

#[tokio::test]
async fn cookies_are_secure_behind_https() {
    let app = TestApp::spawn_custom(Limits::default(), Some("https://app.example")).await;
    let mut b = app.browser();
    let r = b.get("/signin").await;
    let csrf = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-g3_csrf="))
        .unwrap();
    assert!(
        csrf.contains("SameSite=Strict") && csrf.contains("HttpOnly") && csrf.contains("Secure")
    );
    let r = app.sign_up(&mut b, "secure@example.com", PASSWORD).await;
    let session = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-g3_session="))
        .unwrap();
    assert!(
        session.contains("Secure")
            && session.contains("Path=/")
            && !session.contains("Domain")
            && session.contains("SameSite=Lax")
            && session.contains("HttpOnly")
    );
    // A mailed link points at the public URL.
    let mut unverified = app.unverified("link@example.com", PASSWORD).await;
    assert_eq!(unverified.post("/verify/resend", &[]).await.status, 303);
    let mail = app.mail("link@example.com").await;
    let url = mail[0].1["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://app.example/verify?userId="),
        "{url}"
    );
}

/// No debug or introspection endpoints exist in any build (the router has none, so release
/// builds have none either); `/metrics` exposes counters only.
#[tokio::test]
async fn no_debug_endpoints_and_metrics_count_routes() {
    let app = TestApp::spawn().await;
    let mut b = app.browser();
    for path in [
        "/debug",
        "/_debug",
        "/api/auth/debug",
        "/debug/pprof",
        "/api/debug",
        "/.env",
        "/feed/debug",
    ] {
        let r = b.get(path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    b.get("/healthz").await;
    let text = app.metrics().await;
    assert!(text.contains("g3_web_requests_total{route=\"/healthz\",status=\"200\"} 1"));
    assert!(
        text.contains("g3_web_requests_total{route=\"unmatched\",status=\"404\"} 7"),
        "{text}"
    );
    for family in [
        "g3_web_sse_clients ",
        "g3_web_upstream_connected ",
        "g3_web_upstream_reconnects_total ",
        "g3_web_events_fanned_out_total ",
    ] {
        assert!(text.contains(family), "{family}");
    }
    assert!(!text.contains("secret") && !text.contains("@"), "{text}");
}

/// Limits for the sign-in tests: three failures per (email, address) within ten minutes.
fn tight_limits(per_ip: usize) -> Limits {
    Limits {
        per_ip,
        per_email: 3,
        window: Duration::from_secs(600),
    }
}

async fn spawn_behind_proxy(limits: Limits) -> TestApp {
    TestApp::spawn_configured(|s| {
        s.limits = limits;
        s.trust_proxy = true;
    })
    .await
}

#[tokio::test]
async fn wrong_passwords_from_one_address_do_not_lock_the_owner_out() {
    let app = spawn_behind_proxy(tight_limits(100)).await;
    let email = "owner@example.com";
    app.verified(email).await;

    let mut attacker = app.browser().at_ip("10.0.0.1");
    for _ in 0..3 {
        assert_eq!(attacker.sign_in(email, "guess").await.status, 401);
    }
    for _ in 0..9 {
        assert_eq!(attacker.sign_in(email, "guess").await.status, 429);
    }
    // The limit is per (email, address): the attacker's own address is stopped, even with
    // the right password, while the owner elsewhere signs in and can ask for a code or a reset.
    assert_eq!(attacker.sign_in(email, PASSWORD).await.status, 429);

    let mut owner = app.browser().at_ip("10.0.0.2");
    let r = owner.sign_in(email, PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let mut owner = app.browser().at_ip("10.0.0.2");
    let r = owner.post("/signin/code", &[("email", email)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = owner.post("/recover", &[("email", email)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn good_sign_ins_never_count_toward_the_limit() {
    let app = spawn_behind_proxy(tight_limits(100)).await;
    let email = "regular@example.com";
    app.verified(email).await;
    for i in 0..20 {
        let mut b = app.browser().at_ip("10.0.0.3");
        let r = b.sign_in(email, PASSWORD).await;
        assert_eq!(r.status, 303, "sign-in {i}: {}", r.body);
    }
}

#[tokio::test]
async fn the_per_address_limit_still_holds_across_emails() {
    let app = spawn_behind_proxy(tight_limits(4)).await;
    let mut b = app.browser().at_ip("10.0.0.4");
    for i in 0..4 {
        let r = b.sign_in(&format!("nobody{i}@example.com"), "guess").await;
        assert_eq!(r.status, 401);
    }
    let r = b.sign_in("nobody9@example.com", "guess").await;
    assert_eq!(r.status, 429);
    assert!(r.headers.contains_key("retry-after"));
    // Another address is unaffected.
    let mut other = app.browser().at_ip("10.0.0.5");
    assert_eq!(
        other.sign_in("nobody9@example.com", "guess").await.status,
        401
    );
}

#[tokio::test]
async fn a_planted_csrf_token_is_refused_on_an_admin_action() {
    let app = TestApp::spawn().await;
    let mut staff = app.verified("boss@g3.io").await;
    app.make_staff("boss@g3.io").await;
    app.grant("customer@x.io").await;

    let planted = "a".repeat(64);
    staff.jar.insert("g3_csrf".into(), planted.clone());
    let r = staff
        .post_raw(
            "/admin/customers/customer%40x.io",
            &[
                ("action", "revoke"),
                ("reason", "forged"),
                ("csrf", planted.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let page = staff.get("/admin/customers/customer%40x.io").await;
    assert!(page.body.contains("id=\"paid\">member"), "unchanged");
}

#[tokio::test]
async fn a_csrf_token_of_another_session_is_refused() {
    let app = TestApp::spawn().await;
    let mut mallory = app.verified("mallory@example.com").await;
    let mut victim = app.verified("victim2@example.com").await;
    let theirs = mallory.csrf().await;
    victim.jar.insert("g3_csrf".into(), theirs.clone());
    let r = victim
        .post_raw("/signout/all", &[("csrf", theirs.as_str())])
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(victim.get("/account").await.status, 200, "still signed in");
    // Its own page's token works.
    let r = victim.get("/account").await;
    let own = victim.csrf().await;
    assert!(
        r.body.contains(&own),
        "the page carries the session's token"
    );
    assert_eq!(victim.post("/signout/all", &[]).await.status, 303);
}

#[tokio::test]
async fn cacheable_responses_set_no_cookie() {
    let app = TestApp::spawn().await;
    for path in ["/static/app.css", "/static/app.js"] {
        let r = app.browser().get(path).await;
        assert_eq!(r.status, 200);
        assert!(r.set_cookies().is_empty(), "{path}: {:?}", r.set_cookies());
    }
}

#[tokio::test]
async fn an_oversized_post_is_refused_as_too_large() {
    let app = TestApp::spawn().await;
    let mut b = app.browser();
    let big = "x".repeat(10 * 1024 * 1024);
    for path in ["/signin", "/signup", "/no/such/page"] {
        let r = b.post(path, &[("email", big.as_str())]).await;
        assert_eq!(r.status, 413, "{path}");
        assert!(r.body.contains("too large"), "{}", r.body);
    }
    // Without any token at all, too.
    let r = app
        .browser()
        .post_raw("/signin", &[("email", big.as_str())])
        .await;
    assert_eq!(r.status, 413);
}
