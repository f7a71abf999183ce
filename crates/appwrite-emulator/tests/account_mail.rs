//! Account mail reads like the product's: each mail comes from the templates in `docs/mail`
//! (the ones installed in Appwrite), says what it is for and what to do if it was not asked
//! for, and still carries the code or link the tests and people use.

#[path = "account_support/mod.rs"]
mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;

/// The subject and the text of a mail, and its HTML as sent.
fn parts(mail: &Value) -> (&str, &str, &str) {
    (
        mail["subject"].as_str().expect("subject"),
        mail["text"].as_str().expect("text"),
        mail["body"].as_str().expect("body"),
    )
}

fn reads_like_the_product(mail: &Value, secret: &str, purpose: &str, not_asked: &str) {
    let (subject, text, html) = parts(mail);
    assert!(subject.contains("G3netic Signals"), "subject: {subject}");
    assert!(text.starts_with("Hello,"), "greeting: {text}");
    assert!(text.contains(purpose), "purpose {purpose:?}: {text}");
    assert!(text.contains(not_asked), "if not asked: {text}");
    assert!(
        text.ends_with("The G3netic Signals team"),
        "signature: {text}"
    );
    assert!(
        text.contains(secret),
        "the code or link in the text: {text}"
    );
    assert!(
        html.contains(secret),
        "the code or link in the HTML: {html}"
    );
    assert!(!html.contains("{{"), "every placeholder filled: {html}");
}

#[tokio::test]
async fn code_verification_and_recovery_mails_carry_the_product_wording_and_the_secret() {
    let app = TestApp::spawn().await;
    let (s, _) = send(app.key(Method::POST, "/users").json(&json!({
        "userId": "ivy", "email": "ivy@example.com", "password": "password123", "name": "Ivy"
    })))
    .await;
    assert_eq!(s, StatusCode::CREATED);

    // Sign-up and sign-in by code.
    let (s, _) = send(
        app.guest(Method::POST, "/account/tokens/email")
            .json(&json!({"userId": "unique()", "email": "ivy@example.com"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let mail = app.last_mail("ivy@example.com", "email_otp").await;
    let code = mail["data"]["secret"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    reads_like_the_product(
        &mail,
        &code,
        "Enter it on the page that asked for it",
        "Did not ask for a code? You can ignore this email",
    );
    assert!(parts(&mail).1.contains("expires in 15 minutes"));

    // The verification link.
    let secret = app.sign_in("ivy@example.com", "password123").await;
    let (s, _) = send(
        app.session(Method::POST, "/account/verification", &secret)
            .json(&json!({"url": "http://localhost:3000/verify"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let mail = app.last_mail("ivy@example.com", "verification").await;
    let link = mail["data"]["url"].as_str().unwrap().to_owned();
    assert!(link.starts_with("http://localhost:3000/verify?userId=ivy&secret="));
    reads_like_the_product(
        &mail,
        &link,
        "confirm that this is the email address of your G3netic Signals account",
        "Did not create a G3netic Signals account? You can ignore this email",
    );
    // As Appwrite does, the link goes in unescaped, so it can be followed from the HTML too.
    assert!(parts(&mail).2.contains(&format!("href=\"{link}\"")));

    // The password reset link.
    let (s, _) = send(app.guest(Method::POST, "/account/recovery").json(&json!({
        "email": "ivy@example.com", "url": "http://localhost:3000/recover/confirm"
    })))
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let mail = app.last_mail("ivy@example.com", "recovery").await;
    let link = mail["data"]["url"].as_str().unwrap().to_owned();
    reads_like_the_product(
        &mail,
        &link,
        "reset the password of your G3netic Signals account",
        "Did not ask for this? You can ignore this email",
    );
    assert_eq!(
        mail["data"]["toName"], "Ivy",
        "the name goes in the To header"
    );
}
