//! Account upkeep: verification links (bad and resent), password reset, sign-out of one device,
//! the emailed code's own rate limit.

mod common;

use std::time::Duration;

use common::{PASSWORD, TestApp};
use web::Limits;

#[tokio::test]
async fn bad_verification_links_fail_and_a_new_link_can_be_sent() {
    let app = TestApp::spawn().await;
    // Signed up, never entered the code, signed in with the password: asks for a link.
    let mut b = app.unverified("late@example.com", PASSWORD).await;
    assert_eq!(b.post("/verify/resend", &[]).await.status, 303);
    let (user_id, _) = app.latest("late@example.com", "verification").await;

    let r = b
        .get(&format!("/verify?userId={user_id}&secret=wrong"))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("did not work"));
    assert_eq!(b.get("/verify").await.status, 400);

    let before = app.mail("late@example.com").await.len();
    let r = b.post("/verify/resend", &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/account?notice=verification-sent");
    assert!(
        b.get("/account?notice=verification-sent")
            .await
            .body
            .contains("new verification link")
    );
    assert_eq!(app.mail("late@example.com").await.len(), before + 1);
    let (user_id, secret) = app.latest("late@example.com", "verification").await;
    // Another browser, signed out, is asked for an emailed code instead.
    let mut other = app.browser();
    let r = other
        .get(&format!("/verify?userId={user_id}&secret={secret}"))
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .contains("sign in with an emailed code to confirm this address")
    );
    // The signed-up browser itself confirms it.
    let r = b
        .get(&format!("/verify?userId={user_id}&secret={secret}"))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Email verified"));
    assert!(
        b.get("/account")
            .await
            .body
            .contains("<dd id=\"standing\">No active plan</dd>")
    );
}

#[tokio::test]
async fn password_reset_sets_a_new_password_and_ends_sessions() {
    let app = TestApp::spawn().await;
    let mut old = app.verified("forgetful@example.com").await;

    let mut b = app.browser();
    // Unknown accounts get the same answer.
    let r = b.post("/recover", &[("email", "nobody@example.com")]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("If there is an account"));
    let r = b
        .post("/recover", &[("email", "forgetful@example.com")])
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("If there is an account"));

    let (user_id, secret) = app.latest("forgetful@example.com", "recovery").await;
    let r = b
        .get(&format!(
            "/recover/confirm?userId={user_id}&secret={secret}"
        ))
        .await;
    assert_eq!(r.status, 200);
    let r = b
        .post(
            "/recover/confirm",
            &[
                ("user_id", &user_id),
                ("secret", "bad"),
                ("password", "new password 1"),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    let r = b
        .post(
            "/recover/confirm",
            &[
                ("user_id", &user_id),
                ("secret", &secret),
                ("password", "new password 1"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/signin?notice=password-changed");

    assert_eq!(old.get("/account").await.status, 303, "old sessions ended");
    assert_eq!(
        b.sign_in("forgetful@example.com", PASSWORD).await.status,
        401
    );
    assert_eq!(
        b.sign_in("forgetful@example.com", "new password 1")
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn signing_out_one_device_keeps_the_others() {
    let app = TestApp::spawn().await;
    let mut phone = app.verified("two@example.com").await;
    let mut laptop = app.browser();
    assert_eq!(
        laptop.sign_in("two@example.com", PASSWORD).await.status,
        303
    );
    let r = phone.post("/signout", &[]).await;
    assert_eq!(r.location(), "/signin?notice=signed-out");
    assert!(
        phone
            .get("/signin?notice=signed-out")
            .await
            .body
            .contains("You are signed out.")
    );
    assert_eq!(phone.get("/account").await.status, 303);
    assert_eq!(laptop.get("/account").await.status, 200);
}

#[tokio::test]
async fn code_sign_in_is_rate_limited() {
    let app = TestApp::spawn_with(Limits {
        per_ip: 100,
        per_email: 3,
        window: Duration::from_secs(600),
    })
    .await;
    let mut b = app.browser();
    let r = b
        .post("/signin/code", &[("email", "otp@example.com")])
        .await;
    assert_eq!(r.status, 200);
    let (user_id, _) = app.latest("otp@example.com", "email_otp").await;
    let guess = [
        ("email", "otp@example.com"),
        ("user_id", user_id.as_str()),
        ("code", "123456"),
    ];
    assert_eq!(b.post("/signin/code/verify", &guess).await.status, 401);
    assert_eq!(b.post("/signin/code/verify", &guess).await.status, 401);
    let r = b.post("/signin/code/verify", &guess).await;
    assert_eq!(r.status, 429);
    assert!(!b.signed_in());
}
