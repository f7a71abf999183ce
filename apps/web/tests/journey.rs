//! The customer's way in: sign up, enter the code from the mailbox, meet the paywall, get
//! access, read the feed, sign out.

mod common;

use common::{PASSWORD, STORE_URL, TestApp, minutes_ago};

#[tokio::test]
async fn sign_up_enter_code_pay_read_sign_out() {
    let app = TestApp::spawn().await;
    app.seed_route("vip-calls", "VIP Calls").await;
    app.seed_signal("1001", |s| {
        s["posted_at"] = minutes_ago(10).into();
        s["content"] = "older call".into();
    })
    .await;
    app.seed_signal("1002", |s| s["content"] = "newer call".into())
        .await;

    let mut b = app.browser();
    let r = b.sign_up("New.Customer@Example.com", PASSWORD).await;
    assert!(r.body.contains("Enter your sign-in code"), "{}", r.body);
    assert!(r.body.contains("new.customer@example.com"));
    // Nothing is open before the code.
    assert_eq!(b.get("/feed").await.location(), "/signin");

    let email = "new.customer@example.com";
    let r = app.enter_code(&mut b, email).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/feed");
    let session_cookie = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("g3_session="))
        .unwrap();
    assert!(session_cookie.contains("HttpOnly"));
    assert!(session_cookie.contains("SameSite=Lax"));
    assert!(
        !session_cookie.contains("Secure"),
        "http base URL: no Secure"
    );

    // The code verified the address. Verified, unpaid: no plan, a link to the store.
    let r = b.get("/feed").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("No active plan"));
    assert!(r.body.contains(STORE_URL));
    assert!(!r.body.contains("newer call"));

    app.grant(email).await;
    let r = b.get("/feed").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let newer = r.body.find("newer call").expect("newer signal shown");
    let older = r.body.find("older call").expect("older signal shown");
    assert!(newer < older, "newest first");
    assert!(r.body.contains("VIP Calls"));
    assert!(r.body.contains("BTC/USDT"));
    assert!(r.body.contains("62000 – 61500.5"));

    let r = b.get("/account").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("vip"));
    assert!(r.body.contains("active"));
    assert!(r.body.contains("ends "));

    let r = b.post("/signout", &[]).await;
    assert_eq!(r.status, 303);
    assert!(!b.signed_in());
    let r = b.get("/feed").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/signin");

    // And back in with the password.
    let r = b.sign_in(email, PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(b.get("/feed").await.status, 200);
}

#[tokio::test]
async fn wrong_password_is_refused_with_a_hint() {
    let app = TestApp::spawn().await;
    let mut b = app.verified("joe@example.com").await;
    b.post("/signout", &[]).await;
    let r = b.sign_in("joe@example.com", "not the password").await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("Wrong email or password"));
    assert!(!b.signed_in());
}

#[tokio::test]
async fn buyer_without_account_is_led_to_code_sign_in() {
    let app = TestApp::spawn().await;
    app.seed_signal("2001", |s| s["content"] = "paid content".into())
        .await;
    // The payments service created the user (no password) and granted the plan.
    app.grant("buyer@example.com").await;

    let mut b = app.browser();
    let r = b
        .post(
            "/signup",
            &[("email", "Buyer@Example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("One step left: enter the code from the email"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("already"));
    assert!(r.body.contains("Enter your sign-in code"));
    assert!(!b.signed_in());

    let (user_id, code) = app.latest("buyer@example.com", "email_otp").await;
    assert!(r.body.contains(&user_id));
    let r = b
        .post(
            "/signin/code/verify",
            &[
                ("email", "buyer@example.com"),
                ("user_id", &user_id),
                ("code", "000000x"),
            ],
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("wrong or has expired"));

    // The failed attempt spent nothing but itself; ask for a fresh code and use it.
    let r = b
        .post("/signin/code", &[("email", "buyer@example.com")])
        .await;
    assert_eq!(r.status, 200);
    let (user_id2, code2) = app.latest("buyer@example.com", "email_otp").await;
    assert_eq!(user_id, user_id2);
    assert_ne!(code, "");
    let r = b
        .post(
            "/signin/code/verify",
            &[
                ("email", "buyer@example.com"),
                ("user_id", &user_id2),
                ("code", &code2),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // The code proved the inbox: verified, and the earlier purchase counts.
    let r = b.get("/feed").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("paid content"));
}

#[tokio::test]
async fn revoked_plan_closes_the_feed_and_shows_why() {
    let app = TestApp::spawn().await;
    let mut b = app.verified("ex@example.com").await;
    app.grant("ex@example.com").await;
    assert_eq!(b.get("/feed").await.status, 200);
    // The second page view is decided by the access cache (no membership read).
    let hits = app.metric("g3_web_access_cache_hits_total").await;
    assert_eq!(b.get("/feed").await.status, 200);
    assert!(app.metric("g3_web_access_cache_hits_total").await > hits);
    // The revocation (another process: the webhook, ops) reaches web as a membership event;
    // the next request after it is refused.
    app.membership_change(app.access().revoke(
        &g3_core::Email::parse("ex@example.com").unwrap(),
        None,
        &g3_access::Cause::Admin {
            actor: "test".into(),
            reason: "chargeback".into(),
        },
    ))
    .await
    .unwrap();
    let r = b.get("/feed").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("No active plan"));
    assert!(
        r.body
            .contains("<td>vip</td><td><span class=\"status ended\">Revoked</span></td>"),
        "{}",
        r.body
    );
}
