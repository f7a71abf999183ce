//! Account pre-hijacking: someone signs up first with another person's email and keeps a
//! password or a session. The verification link only works in the signing-up browser, and
//! proving the inbox with an emailed code wipes whatever the first sign-up left behind.

mod common;

use common::{Browser, PASSWORD, TestApp};

const VICTIM: &str = "victim@example.com";
const ATTACKER_PASSWORD: &str = "attacker knows this one";

/// Sends a code to `email` in `b` and signs in with it.
async fn code_sign_in(app: &TestApp, b: &mut Browser, email: &str) -> common::Resp {
    let r = b.post("/signin/code", &[("email", email)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (user_id, code) = app.latest(email, "email_otp").await;
    b.post(
        "/signin/code/verify",
        &[("email", email), ("user_id", &user_id), ("code", &code)],
    )
    .await
}

async fn verified(app: &TestApp, email: &str) -> bool {
    let id = app.user_id(email).await;
    app.backend
        .client
        .users()
        .get(&id)
        .await
        .unwrap()
        .email_verification
}

#[tokio::test]
async fn verification_link_opened_by_the_owner_elsewhere_does_not_verify_the_attackers_account() {
    let app = TestApp::spawn().await;
    // The attacker signs up (the code goes to the victim) and signs in with their password.
    let mut attacker = app.unverified(VICTIM, ATTACKER_PASSWORD).await;
    assert_eq!(attacker.post("/verify/resend", &[]).await.status, 303);
    // The mail reaches the real owner, who opens the link in their own browser.
    let (user_id, secret) = app.latest(VICTIM, "verification").await;
    let link = format!("/verify?userId={user_id}&secret={secret}");
    let mut owner = app.browser();
    let r = owner.get(&link).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .contains("sign in with an emailed code to confirm this address")
    );
    assert!(r.body.contains("action=\"/signin/code\""));
    assert!(!verified(&app, VICTIM).await);

    // Signed in as somebody else is no better.
    let mut other = app.verified("other@example.com").await;
    let r = other.get(&link).await;
    assert!(
        r.body
            .contains("sign in with an emailed code to confirm this address")
    );
    assert!(!verified(&app, VICTIM).await);

    // The attacker's session stays unverified, so a purchase with this email gives it nothing.
    app.grant(VICTIM).await;
    assert_eq!(attacker.get("/feed").await.status, 403);
}

#[tokio::test]
async fn proving_the_inbox_with_a_code_ends_the_attackers_password_and_sessions() {
    let app = TestApp::spawn().await;
    app.seed_signal("9101", |s| s["content"] = "owner only".into())
        .await;
    let mut attacker = app.unverified(VICTIM, ATTACKER_PASSWORD).await;
    let mut attacker_again = app.browser();
    assert_eq!(
        attacker_again
            .sign_in(VICTIM, ATTACKER_PASSWORD)
            .await
            .status,
        303
    );

    // The owner buys, then signs in with an emailed code (the sign-up page sends one too).
    app.grant(VICTIM).await;
    let mut owner = app.browser();
    let r = code_sign_in(&app, &mut owner, VICTIM).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/account?notice=address-confirmed");
    assert!(verified(&app, VICTIM).await);
    let r = owner.get("/account?notice=address-confirmed").await;
    assert!(r.body.contains("choose a password below"), "{}", r.body);
    assert!(
        !r.body.contains("name=\"current\""),
        "no current password to give"
    );
    assert_eq!(owner.get("/feed").await.status, 200);

    // Every session the attacker held is gone, and so is their password.
    for b in [&mut attacker, &mut attacker_again] {
        let r = b.get("/feed").await;
        assert_eq!(r.status, 303);
        assert_eq!(r.location(), "/signin?notice=session-ended");
    }
    let mut attacker_later = app.browser();
    assert_eq!(
        attacker_later
            .sign_in(VICTIM, ATTACKER_PASSWORD)
            .await
            .status,
        401
    );

    // The owner sets a password and uses it.
    let r = owner
        .post("/account/password", &[("password", "short")])
        .await;
    assert_eq!(r.location(), "/account?notice=password-refused");
    let r = owner
        .post("/account/password", &[("password", PASSWORD)])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/account?notice=password-set");
    let mut owner_elsewhere = app.browser();
    assert_eq!(owner_elsewhere.sign_in(VICTIM, PASSWORD).await.status, 303);
    assert_eq!(owner_elsewhere.get("/feed").await.status, 200);
    // The owner's code session survived setting the password, which is now a known one.
    assert_eq!(owner.get("/feed").await.status, 200);
    assert!(
        owner
            .get("/account")
            .await
            .body
            .contains("name=\"current\"")
    );

    // A second code sign-in on a verified account takes nothing away.
    let mut owner_phone = app.browser();
    let r = code_sign_in(&app, &mut owner_phone, VICTIM).await;
    assert_eq!(r.location(), "/feed");
    assert_eq!(owner.get("/feed").await.status, 200);
    assert_eq!(owner_phone.get("/feed").await.status, 200);
}

#[tokio::test]
async fn normal_sign_up_then_verify_by_link_still_works() {
    let app = TestApp::spawn().await;
    // Signed up, left before entering the code, back with the password: a link verifies too.
    let mut b = app.unverified("normal@example.com", PASSWORD).await;
    assert_eq!(b.post("/verify/resend", &[]).await.status, 303);
    let (user_id, secret) = app.latest("normal@example.com", "verification").await;
    let r = b
        .get(&format!("/verify?userId={user_id}&secret={secret}"))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Email verified"));
    assert!(verified(&app, "normal@example.com").await);
    // The password chosen at sign-up keeps working.
    let mut other = app.browser();
    assert_eq!(
        other.sign_in("normal@example.com", PASSWORD).await.status,
        303
    );
    app.grant("normal@example.com").await;
    assert_eq!(b.get("/feed").await.status, 200);
}

#[tokio::test]
async fn setting_a_password_needs_csrf_and_a_session() {
    let app = TestApp::spawn().await;
    let mut anon = app.browser();
    let r = anon
        .post("/account/password", &[("password", PASSWORD)])
        .await;
    assert_eq!(r.location(), "/signin");
    let mut b = app.verified("csrf@example.com").await;
    let r = b
        .post_raw("/account/password", &[("password", "new password 123")])
        .await;
    assert_eq!(r.status, 403);
    let mut other = app.browser();
    assert_eq!(
        other
            .sign_in("csrf@example.com", "new password 123")
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn changing_a_known_password_needs_the_current_one() {
    let app = TestApp::spawn().await;
    let mut b = app.verified("known@example.com").await;
    let page = b.get("/account").await;
    assert!(page.body.contains("name=\"current\""));
    let r = b
        .post("/account/password", &[("password", "stolen session pw")])
        .await;
    assert_eq!(r.location(), "/account?notice=current-password-wrong");
    let r = b
        .post(
            "/account/password",
            &[
                ("password", "stolen session pw"),
                ("current", "not it at all"),
            ],
        )
        .await;
    assert_eq!(r.location(), "/account?notice=current-password-wrong");
    let mut other = app.browser();
    assert_eq!(
        other
            .sign_in("known@example.com", "stolen session pw")
            .await
            .status,
        401
    );
    let r = b
        .post(
            "/account/password",
            &[("password", "a fresh password"), ("current", PASSWORD)],
        )
        .await;
    assert_eq!(r.location(), "/account?notice=password-set");
    assert_eq!(
        other
            .sign_in("known@example.com", "a fresh password")
            .await
            .status,
        303
    );
}
