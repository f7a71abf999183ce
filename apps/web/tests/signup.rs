//! Sign-up tells nobody which emails have accounts: a new and an existing email get the same
//! code page. The code finishes the sign-up, keeping the chosen password only in the browser
//! that created the account (its proof cookie); anywhere else it claims the account.

mod common;

use common::{Browser, PASSWORD, Resp, TestApp};
use time::{Duration, OffsetDateTime};
use web::security::SignUpKey;

const THEIR_PASSWORD: &str = "somebody else's password";

async fn is_verified(app: &TestApp, email: &str) -> bool {
    let id = app.user_id(email).await;
    app.backend
        .client
        .users()
        .get(&id)
        .await
        .unwrap()
        .email_verification
}

/// The page with what must differ between two answers blanked: the email, the user id in the
/// hidden field and the CSRF token (each browser has its own).
fn blanked(r: &Resp, b: &Browser, email: &str, user_id: &str) -> String {
    let csrf = b.cookie("g3_csrf").unwrap();
    r.body
        .replace(email, "EMAIL")
        .replace(user_id, "USER_ID")
        .replace(csrf.as_str(), "CSRF")
}

/// `Set-Cookie` headers with their values blanked: names and attributes only.
fn cookie_shapes(r: &Resp) -> Vec<String> {
    let mut shapes: Vec<String> = r
        .set_cookies()
        .iter()
        .map(|c| {
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let name = pair.split_once('=').map_or(pair, |(n, _)| n);
            format!("{name}=…;{attrs}")
        })
        .collect();
    shapes.sort();
    shapes
}

#[tokio::test]
async fn a_new_and_an_existing_email_get_the_same_answer() {
    let app = TestApp::spawn().await;
    // One account bought without signing up, one signed up with a password.
    app.grant("buyer@example.com").await;
    app.backend
        .client
        .users()
        .create(
            "signed-up-before",
            "member@example.com",
            Some(PASSWORD),
            None,
        )
        .await
        .unwrap();

    let mut answers = Vec::new();
    for email in ["new@example.com", "buyer@example.com", "member@example.com"] {
        let mut b = app.browser();
        b.csrf().await;
        let r = b
            .post("/signup", &[("email", email), ("password", PASSWORD)])
            .await;
        assert!(!b.signed_in(), "{email}: nobody is signed in by the form");
        let (user_id, _) = app.latest(email, "email_otp").await;
        assert!(r.body.contains(&user_id), "{email}: the code page names it");
        answers.push((
            email,
            r.status,
            blanked(&r, &b, email, &user_id),
            cookie_shapes(&r),
        ));
    }
    let (_, status, page, cookies) = &answers[0];
    assert_eq!(*status, 200);
    assert!(
        page.contains("One step left: enter the code from the email"),
        "{page}"
    );
    assert!(!page.to_lowercase().contains("already"), "{page}");
    assert!(
        cookies.iter().any(|c| c.starts_with("g3_signup=")),
        "{cookies:?}"
    );
    for (email, s, p, c) in &answers[1..] {
        assert_eq!(s, status, "{email}");
        assert_eq!(p, page, "{email}: the page differs");
        assert_eq!(c, cookies, "{email}: the cookies differ");
    }
    // The new email has an account now, unverified, with the chosen password.
    assert!(!is_verified(&app, "new@example.com").await);
}

#[tokio::test]
async fn a_new_sign_up_finishes_with_the_code_and_keeps_its_password() {
    let app = TestApp::spawn().await;
    let mut b = app.browser();
    let r = b.sign_up("Fresh@Example.com", PASSWORD).await;
    let proof = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("g3_signup="))
        .expect("a sign-up proof cookie");
    assert!(
        proof.contains("HttpOnly") && proof.contains("Max-Age=1800"),
        "{proof}"
    );
    assert!(!is_verified(&app, "fresh@example.com").await);

    let r = app.enter_code(&mut b, "fresh@example.com").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/feed");
    assert!(b.signed_in());
    assert!(b.cookie("g3_signup").is_none(), "the proof is spent");
    assert!(is_verified(&app, "fresh@example.com").await);
    // Verified, no plan yet: the paywall with the store, not "verify your email".
    let feed = b.get("/feed").await;
    assert_eq!(feed.status, 403);
    assert!(feed.body.contains("No active plan"), "{}", feed.body);

    // The chosen password still works, and is a known one on the account page.
    let mut later = app.browser();
    assert_eq!(
        later.sign_in("fresh@example.com", PASSWORD).await.status,
        303
    );
    assert!(
        later
            .get("/account")
            .await
            .body
            .contains("name=\"current\"")
    );
    assert_eq!(b.get("/account").await.status, 200, "still signed in");
}

#[tokio::test]
async fn sending_the_form_twice_keeps_the_proof() {
    let app = TestApp::spawn().await;
    let mut b = app.browser();
    b.sign_up("twice@example.com", PASSWORD).await;
    let first = b.cookie("g3_signup").unwrap().clone();
    b.sign_up("twice@example.com", PASSWORD).await;
    assert_eq!(b.cookie("g3_signup"), Some(&first));
    let r = app.enter_code(&mut b, "twice@example.com").await;
    assert_eq!(r.location(), "/feed");
    let mut later = app.browser();
    assert_eq!(
        later.sign_in("twice@example.com", PASSWORD).await.status,
        303
    );
}

#[tokio::test]
async fn a_pre_registered_account_is_claimed_by_the_code_elsewhere() {
    let app = TestApp::spawn().await;
    // Somebody registers the owner's email with their own password and keeps a session.
    let mut squatter = app.unverified("owner@example.com", THEIR_PASSWORD).await;
    assert_eq!(squatter.get("/account").await.status, 200);

    // The owner signs up in their own browser and enters the code from their inbox.
    let mut owner = app.browser();
    owner.sign_up("owner@example.com", PASSWORD).await;
    let r = app.enter_code(&mut owner, "owner@example.com").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/account?notice=address-confirmed");
    assert!(is_verified(&app, "owner@example.com").await);
    let page = owner.get("/account?notice=address-confirmed").await;
    assert!(
        page.body.contains("choose a password below"),
        "{}",
        page.body
    );

    // The squatter's session and password are gone; so is the password typed at the owner's
    // sign-up, which was never set on the existing account.
    let r = squatter.get("/account").await;
    assert_eq!(r.location(), "/signin?notice=session-ended");
    for password in [THEIR_PASSWORD, PASSWORD] {
        let mut b = app.browser();
        assert_eq!(
            b.sign_in("owner@example.com", password).await.status,
            401,
            "{password}"
        );
    }
}

#[tokio::test]
async fn the_sign_up_browsers_proof_does_not_help_another_browser() {
    let app = TestApp::spawn().await;
    let mut squatter = app.browser();
    squatter.sign_up("target@example.com", THEIR_PASSWORD).await;
    assert!(squatter.cookie("g3_signup").is_some());
    // The owner, in another browser, asks for a sign-in code and uses it.
    let mut owner = app.browser();
    let r = owner
        .post("/signin/code", &[("email", "target@example.com")])
        .await;
    assert_eq!(r.status, 200);
    let r = app.enter_code(&mut owner, "target@example.com").await;
    assert_eq!(r.location(), "/account?notice=address-confirmed");
    let mut b = app.browser();
    assert_eq!(
        b.sign_in("target@example.com", THEIR_PASSWORD).await.status,
        401
    );
}

#[tokio::test]
async fn a_forged_or_expired_proof_is_no_proof() {
    let app = TestApp::spawn().await;
    let api_key = app.settings.appwrite.api_key.as_ref().unwrap().expose();
    let key = SignUpKey::derive(api_key);
    let soon = OffsetDateTime::now_utc() + Duration::minutes(30);

    for (case, email) in [
        ("tampered", "tampered@example.com"),
        ("expired", "expired@example.com"),
        ("other account", "other@example.com"),
        ("other key", "otherkey@example.com"),
    ] {
        let mut b = app.browser();
        b.sign_up(email, PASSWORD).await;
        let user_id = app.user_id(email).await;
        let good = b.cookie("g3_signup").unwrap().clone();
        let forged = match case {
            "tampered" => {
                let (expires, _) = good.split_once('.').unwrap();
                format!("{expires}.{}", "0".repeat(64))
            }
            "expired" => key.proof(
                &user_id,
                email,
                OffsetDateTime::now_utc() - Duration::seconds(1),
            ),
            "other account" => key.proof("someone-else", email, soon),
            _ => SignUpKey::derive("not the server key").proof(&user_id, email, soon),
        };
        b.jar.insert("g3_signup".into(), forged);
        let r = app.enter_code(&mut b, email).await;
        assert_eq!(r.status, 303, "{case}: {}", r.body);
        assert_eq!(
            r.location(),
            "/account?notice=address-confirmed",
            "{case}: claimed as without proof"
        );
        let mut other = app.browser();
        assert_eq!(
            other.sign_in(email, PASSWORD).await.status,
            401,
            "{case}: the password was replaced"
        );
    }
}

#[tokio::test]
async fn over_https_the_proof_cookie_is_host_prefixed() {
    let app = TestApp::spawn_custom(web::Limits::default(), Some("https://app.example")).await;
    let mut b = app.browser();
    let r = b.sign_up("secure-signup@example.com", PASSWORD).await;
    let proof = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-g3_signup="))
        .expect("a __Host- proof cookie");
    assert!(
        proof.contains("Secure")
            && proof.contains("Path=/")
            && !proof.contains("Domain")
            && proof.contains("HttpOnly")
            && proof.contains("SameSite=Strict"),
        "{proof}"
    );
    let r = app.enter_code(&mut b, "secure-signup@example.com").await;
    assert_eq!(r.location(), "/feed");
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with("__Host-g3_signup=;") && c.contains("Max-Age=0"))
    );
}
