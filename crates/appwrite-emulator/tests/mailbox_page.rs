//! The mailbox: the HTML page escapes what it shows and links mailed URLs; the JSON API lists
//! newest first, filters by recipient, and clears.

#[path = "account_support/mod.rs"]
mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn page_escapes_and_api_lists_newest_first() {
    let app = TestApp::spawn().await;
    let (s, _) = send(app.key(Method::POST, "/users").json(&json!({
        "userId": "mallory", "email": "mallory@example.com", "password": "password123",
        "name": "<script>alert(1)</script>"
    })))
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let secret = app.sign_in("mallory@example.com", "password123").await;
    let (s, _) = send(
        app.session(Method::POST, "/account/verification", &secret)
            .json(&json!({"url": "http://localhost:3000/verify"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = send(
        app.guest(Method::POST, "/account/tokens/email")
            .json(&json!({"userId": "unique()", "email": "mallory@example.com"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    send(
        app.guest(Method::POST, "/account/tokens/email")
            .json(&json!({"userId": "unique()", "email": "other@example.com"})),
    )
    .await;

    let resp = app.http.get(app.url("/mailbox")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = resp.text().await.unwrap();
    assert!(
        !html.contains("<script>alert"),
        "unescaped markup in {html}"
    );
    // The name, as Appwrite puts it in the `To` header.
    assert!(html.contains("To &lt;script&gt;alert(1)&lt;/script&gt; &lt;mallory@example.com&gt;"));
    assert!(html.contains("<a href=\"http://localhost:3000/verify?userId=mallory&amp;secret="));
    // Newest first on the page too.
    let other = html.find("other@example.com").unwrap();
    let verification = html.find("Confirm your email address").unwrap();
    assert!(other < verification);

    let mails = app.mail_for("MALLORY@example.com").await;
    let kinds: Vec<&str> = mails.iter().map(|m| m["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["email_otp", "verification"]);
    for m in &mails {
        for k in [
            "id",
            "to",
            "kind",
            "subject",
            "body",
            "text",
            "createdAt",
            "data",
        ] {
            assert!(m.get(k).is_some(), "{k} missing in {m}");
        }
        assert_eq!(m["data"]["userId"], "mallory");
    }

    let resp = app
        .http
        .get(app.url("/mailbox/api/messages"))
        .send()
        .await
        .unwrap();
    let all: Value = resp.json().await.unwrap();
    assert_eq!(all["messages"].as_array().unwrap().len(), 3);

    let resp = app
        .http
        .delete(app.url("/mailbox/api/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(app.mail_for("mallory@example.com").await.is_empty());
    let html = app
        .http
        .get(app.url("/mailbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("No messages yet."));
}
