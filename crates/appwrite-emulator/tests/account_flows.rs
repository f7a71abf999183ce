//! Account over HTTP: sign-up and password sessions, the email-code flow through the mailbox,
//! verification and recovery links, single-use and expiring tokens, and session management.

#[path = "account_support/mod.rs"]
mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;

/// The `userId` and `secret` query parameters of a mailed link.
fn link_params(mail: &Value) -> (String, String, url::Url) {
    let link = url::Url::parse(mail["data"]["url"].as_str().expect("url")).expect("valid link");
    let get = |k: &str| {
        link.query_pairs()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("link lacks {k}: {link}"))
    };
    (get("userId"), get("secret"), link)
}

#[tokio::test]
async fn sign_up_then_password_session_then_account() {
    let app = TestApp::spawn().await;
    let (s, user) = send(app.guest(Method::POST, "/account").json(&json!({
        "userId": "unique()", "email": "Carol@Example.com", "password": "password123", "name": "Carol"
    })))
    .await;
    assert_eq!(s, StatusCode::CREATED, "{user}");
    assert_fields(&user, USER_FIELDS);
    assert_eq!(user["email"], "carol@example.com");
    let (s, b) = send(app.guest(Method::POST, "/account").json(&json!({
        "userId": "unique()", "email": "carol@example.com", "password": "password123"
    })))
    .await;
    assert_error(s, &b, 409, "user_already_exists");

    let (s, session) = send(
        app.key(Method::POST, "/account/sessions/email")
            .json(&json!({
                "email": "CAROL@example.com", "password": "password123"
            })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{session}");
    assert_fields(&session, SESSION_FIELDS);
    assert_eq!(session["userId"], user["$id"]);
    assert_eq!(session["provider"], "email");
    let secret = session["secret"].as_str().unwrap();
    assert!(!secret.is_empty());

    let (s, me) = send(app.session(Method::GET, "/account", secret)).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["$id"], user["$id"]);
    assert_fields(&me, USER_FIELDS);

    // Key and session together are refused outright.
    let (s, b) = send(
        app.key(Method::GET, "/account")
            .header("x-appwrite-session", secret),
    )
    .await;
    assert_error(s, &b, 403, "user_key_and_session_set");
    // The key is not a user.
    let (s, b) = send(app.key(Method::GET, "/account")).await;
    assert_error(s, &b, 401, "general_unauthorized_scope");

    let (s, b) = send(
        app.key(Method::POST, "/account/sessions/email")
            .json(&json!({
                "email": "carol@example.com", "password": "wrong-password"
            })),
    )
    .await;
    assert_error(s, &b, 401, "user_invalid_credentials");
    let (s, b) = send(
        app.key(Method::POST, "/account/sessions/email")
            .json(&json!({
                "email": "nobody@example.com", "password": "password123"
            })),
    )
    .await;
    assert_error(s, &b, 401, "user_invalid_credentials");

    // A guest gets the session as a cookie, not in the body.
    let resp = app
        .guest(Method::POST, "/account/sessions/email")
        .json(&json!({"email": "carol@example.com", "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(resp.headers().get("set-cookie").is_some());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["secret"], "");
}

#[tokio::test]
async fn sessions_list_and_delete() {
    let app = TestApp::spawn().await;
    app.create_user("dave", "dave@example.com", "password123")
        .await;
    let first = app.sign_in("dave@example.com", "password123").await;
    let second = app.sign_in("dave@example.com", "password123").await;

    let (s, list) = send(app.session(Method::GET, "/account/sessions", &first)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["total"], 2);
    let current: Vec<bool> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["current"].as_bool().unwrap())
        .collect();
    assert_eq!(current, [true, false]);
    assert!(
        list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["secret"] == "")
    );

    let (s, cur) = send(app.session(Method::GET, "/account/sessions/current", &second)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(cur["current"], true);

    let (s, _) = send(app.session(Method::DELETE, "/account/sessions/current", &first)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = send(app.session(Method::GET, "/account", &first)).await;
    assert_error(s, &b, 401, "general_unauthorized_scope");
    let (s, _) = send(app.session(Method::GET, "/account", &second)).await;
    assert_eq!(s, StatusCode::OK);

    let sid = cur["$id"].as_str().unwrap();
    let third = app.sign_in("dave@example.com", "password123").await;
    let (s, _) =
        send(app.session(Method::DELETE, &format!("/account/sessions/{sid}"), &third)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = send(app.session(Method::GET, "/account", &second)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, b) = send(app.session(Method::DELETE, "/account/sessions/nope", &third)).await;
    assert_error(s, &b, 404, "user_session_not_found");

    app.sign_in("dave@example.com", "password123").await;
    let (s, _) = send(app.session(Method::DELETE, "/account/sessions", &third)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, list) = send(app.key(Method::GET, "/users/dave/sessions")).await;
    assert_eq!(list["total"], 0);
}

#[tokio::test]
async fn email_code_flow_creates_user_verifies_and_is_single_use() {
    let app = TestApp::spawn().await;
    let (s, token) = send(
        app.guest(Method::POST, "/account/tokens/email")
            .json(&json!({
                "userId": "unique()", "email": "Erin@Example.com"
            })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{token}");
    assert_fields(&token, TOKEN_FIELDS);
    assert_eq!(token["secret"], "", "guests never see the code");
    let user_id = token["userId"].as_str().unwrap().to_owned();

    let (s, user) = send(app.key(Method::GET, &format!("/users/{user_id}"))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(user["email"], "erin@example.com");
    assert_eq!(user["emailVerification"], false);

    let mail = app.last_mail("erin@example.com", "email_otp").await;
    let code = mail["data"]["secret"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    assert!(code.chars().all(|c| c.is_ascii_digit()));
    assert!(mail["body"].as_str().unwrap().contains(&code));
    assert_eq!(mail["data"]["userId"], user_id);

    let (s, b) = send(
        app.key(Method::POST, "/account/sessions/token")
            .json(&json!({"userId": user_id, "secret": "000000x"})),
    )
    .await;
    assert_error(s, &b, 401, "user_invalid_token");

    let (s, session) = send(
        app.key(Method::POST, "/account/sessions/token")
            .json(&json!({"userId": user_id, "secret": code})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{session}");
    assert_fields(&session, SESSION_FIELDS);
    let secret = session["secret"].as_str().unwrap();
    let (_, me) = send(app.session(Method::GET, "/account", secret)).await;
    assert_eq!(me["$id"], user_id);
    assert_eq!(me["emailVerification"], true);

    let (s, b) = send(
        app.key(Method::POST, "/account/sessions/token")
            .json(&json!({"userId": user_id, "secret": code})),
    )
    .await;
    assert_error(s, &b, 401, "user_invalid_token");

    // A second code for a known address goes to the same user, whatever id is asked for.
    let (_, again) = send(
        app.key(Method::POST, "/account/tokens/email")
            .json(&json!({"userId": "unique()", "email": "erin@example.com"})),
    )
    .await;
    assert_eq!(again["userId"], user_id);
    assert_eq!(
        again["secret"].as_str().unwrap().len(),
        6,
        "the key sees the code"
    );
    assert_eq!(app.mail_for("erin@example.com").await.len(), 2);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let app = TestApp::with_state().await;
    let (_, token) = send(
        app.key(Method::POST, "/account/tokens/email")
            .json(&json!({"userId": "frank", "email": "frank@example.com"})),
    )
    .await;
    assert_eq!(token["userId"], "frank");
    let code = app.last_mail("frank@example.com", "email_otp").await["data"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();

    let state = app.state.as_ref().unwrap();
    state
        .store
        .call(|conn| {
            conn.execute(
                "UPDATE tokens SET expire = '2000-01-01T00:00:00.000+00:00'",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let (s, b) = send(
        app.key(Method::POST, "/account/sessions/token")
            .json(&json!({"userId": "frank", "secret": code})),
    )
    .await;
    assert_error(s, &b, 401, "user_invalid_token");

    // Expired sessions stop authenticating too.
    let (_, session) = send(app.key(Method::POST, "/users/frank/sessions")).await;
    let secret = session["secret"].as_str().unwrap().to_owned();
    let (s, _) = send(app.session(Method::GET, "/account", &secret)).await;
    assert_eq!(s, StatusCode::OK);
    state
        .store
        .call(|conn| {
            conn.execute(
                "UPDATE sessions SET expire = '2000-01-01T00:00:00.000+00:00'",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let (s, b) = send(app.session(Method::GET, "/account", &secret)).await;
    assert_error(s, &b, 401, "general_unauthorized_scope");
}

#[tokio::test]
async fn verification_flow_on_both_paths() {
    let app = TestApp::spawn().await;
    app.create_user("gina", "gina@example.com", "password123")
        .await;
    let secret = app.sign_in("gina@example.com", "password123").await;

    for path in ["/account/verification", "/account/verifications/email"] {
        let (s, token) = send(
            app.session(Method::POST, path, &secret)
                .json(&json!({"url": "http://localhost:3000/verify?from=mail"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{token}");
        assert_fields(&token, TOKEN_FIELDS);
        assert_eq!(token["secret"], "");
        let mail = app.last_mail("gina@example.com", "verification").await;
        let (user_id, link_secret, link) = link_params(&mail);
        assert_eq!(user_id, "gina");
        assert_eq!(link.path(), "/verify");
        assert!(link.query_pairs().any(|(k, v)| k == "from" && v == "mail"));
        assert!(link.query_pairs().any(|(k, _)| k == "expire"));
        assert!(mail["body"].as_str().unwrap().contains(link.as_str()));

        let (s, b) = send(
            app.guest(Method::PUT, path)
                .json(&json!({"userId": "gina", "secret": "wrong"})),
        )
        .await;
        assert_error(s, &b, 401, "user_invalid_token");
        let (s, b) = send(
            app.guest(Method::PUT, path)
                .json(&json!({"userId": user_id, "secret": link_secret})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_fields(&b, TOKEN_FIELDS);
        let (_, me) = send(app.session(Method::GET, "/account", &secret)).await;
        assert_eq!(me["emailVerification"], true);
        let (s, b) = send(
            app.guest(Method::PUT, path)
                .json(&json!({"userId": user_id, "secret": link_secret})),
        )
        .await;
        assert_error(s, &b, 401, "user_invalid_token");
        // Reset for the second path.
        send(
            app.key(Method::PATCH, "/users/gina/verification")
                .json(&json!({"emailVerification": false})),
        )
        .await;
    }

    let (s, b) = send(
        app.session(Method::POST, "/account/verification", &secret)
            .json(&json!({"url": "not a url"})),
    )
    .await;
    assert_error(s, &b, 400, "general_argument_invalid");
    let (s, b) = send(
        app.guest(Method::POST, "/account/verification")
            .json(&json!({"url": "http://localhost/"})),
    )
    .await;
    assert_error(s, &b, 401, "general_unauthorized_scope");
}

#[tokio::test]
async fn recovery_flow() {
    let app = TestApp::spawn().await;
    app.create_user("hank", "hank@example.com", "password123")
        .await;
    let (s, token) = send(
        app.guest(Method::POST, "/account/recovery")
            .json(&json!({"email": "hank@example.com", "url": "https://app.example/reset"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{token}");
    assert_eq!(token["secret"], "");
    let (s, b) = send(
        app.guest(Method::POST, "/account/recovery")
            .json(&json!({"email": "nobody@example.com", "url": "https://app.example/reset"})),
    )
    .await;
    assert_error(s, &b, 404, "user_not_found");

    let mail = app.last_mail("hank@example.com", "recovery").await;
    let (user_id, secret, link) = link_params(&mail);
    assert_eq!(link.host_str(), Some("app.example"));

    let (s, b) = send(
        app.guest(Method::PUT, "/account/recovery")
            .json(&json!({"userId": user_id, "secret": secret, "password": "short"})),
    )
    .await;
    assert_error(s, &b, 400, "general_argument_invalid");
    let (s, b) = send(
        app.guest(Method::PUT, "/account/recovery")
            .json(&json!({"userId": user_id, "secret": secret, "password": "brand-new-pass"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = send(
        app.guest(Method::PUT, "/account/recovery")
            .json(&json!({"userId": user_id, "secret": secret, "password": "brand-new-pass2"})),
    )
    .await;
    assert_error(s, &b, 401, "user_invalid_token");

    app.sign_in("hank@example.com", "brand-new-pass").await;
    let (s, b) = send(
        app.key(Method::POST, "/account/sessions/email")
            .json(&json!({"email": "hank@example.com", "password": "password123"})),
    )
    .await;
    assert_error(s, &b, 401, "user_invalid_credentials");
}

#[tokio::test]
async fn password_prefs_and_name() {
    let app = TestApp::spawn().await;
    app.create_user("ivy", "ivy@example.com", "password123")
        .await;
    let secret = app.sign_in("ivy@example.com", "password123").await;

    let (s, b) = send(
        app.session(Method::PATCH, "/account/password", &secret)
            .json(&json!({"password": "next-password", "oldPassword": "wrong-one"})),
    )
    .await;
    assert_error(s, &b, 401, "user_invalid_credentials");
    let (s, b) = send(
        app.session(Method::PATCH, "/account/password", &secret)
            .json(&json!({"password": "next-password", "oldPassword": "password123"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_fields(&b, USER_FIELDS);
    app.sign_in("ivy@example.com", "next-password").await;

    let (s, b) = send(
        app.session(Method::PATCH, "/account/prefs", &secret)
            .json(&json!({"prefs": {"lang": "en"}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["prefs"], json!({"lang": "en"}));
    let (_, b) = send(app.session(Method::GET, "/account/prefs", &secret)).await;
    assert_eq!(b, json!({"lang": "en"}));
    let (_, b) = send(
        app.session(Method::PATCH, "/account/name", &secret)
            .json(&json!({"name": "Ivy"})),
    )
    .await;
    assert_eq!(b["name"], "Ivy");
}

#[tokio::test]
async fn email_change_needs_the_password_and_unverifies() {
    let app = TestApp::spawn().await;
    app.create_user("jane", "jane@example.com", "password123")
        .await;
    app.create_user("kim", "kim@example.com", "password123")
        .await;
    send(
        app.key(Method::PATCH, "/users/jane/verification")
            .json(&json!({"emailVerification": true})),
    )
    .await;
    let secret = app.sign_in("jane@example.com", "password123").await;
    let (s, b) = send(
        app.session(Method::PATCH, "/account/email", &secret)
            .json(&json!({"email": "j@example.com", "password": "nope-nope"})),
    )
    .await;
    assert_error(s, &b, 401, "user_invalid_credentials");
    let (s, b) = send(
        app.session(Method::PATCH, "/account/email", &secret)
            .json(&json!({"email": "kim@example.com", "password": "password123"})),
    )
    .await;
    assert_error(s, &b, 409, "user_email_already_exists");
    let (s, b) = send(
        app.session(Method::PATCH, "/account/email", &secret)
            .json(&json!({"email": "J@Example.com", "password": "password123"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["email"], "j@example.com");
    assert_eq!(b["emailVerification"], false);
}
