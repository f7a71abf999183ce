//! Users API over HTTP: CRUD, conflicts, validation, list queries, prefs/labels/status, and
//! server-side sessions.

#[path = "account_support/mod.rs"]
mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::*;

#[tokio::test]
async fn create_get_delete_and_conflicts() {
    let app = TestApp::spawn().await;
    let user = app
        .create_user("alice", "Alice@Example.COM", "password123")
        .await;
    assert_fields(&user, USER_FIELDS);
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["status"], true);
    assert_eq!(user["emailVerification"], false);
    assert!(user.get("password").is_none());

    let (s, b) = send(
        app.key(Method::POST, "/users")
            .json(&json!({"userId": "alice", "email": "other@example.com"})),
    )
    .await;
    assert_error(s, &b, 409, "user_already_exists");
    let (s, b) = send(
        app.key(Method::POST, "/users")
            .json(&json!({"userId": "alice2", "email": "ALICE@example.com"})),
    )
    .await;
    assert_error(s, &b, 409, "user_already_exists");
    let (s, b) = send(
        app.key(Method::POST, "/users")
            .json(&json!({"userId": "bob", "email": "bob@example.com", "password": "short"})),
    )
    .await;
    assert_error(s, &b, 400, "general_argument_invalid");
    let (s, b) = send(
        app.key(Method::POST, "/users")
            .json(&json!({"userId": "bob", "email": "not-an-email"})),
    )
    .await;
    assert_error(s, &b, 400, "general_argument_invalid");
    let (s, b) = send(
        app.key(Method::POST, "/users")
            .json(&json!({"userId": "_bad"})),
    )
    .await;
    assert_error(s, &b, 400, "general_argument_invalid");
    let (s, b) = send(
        app.key(Method::POST, "/users")
            .json(&json!({"email": "x@y.io"})),
    )
    .await;
    assert_error(s, &b, 400, "general_argument_invalid");
    let (s, b) = send(app.key(Method::POST, "/users").body("{not json")).await;
    assert_error(s, &b, 400, "general_argument_invalid");

    let (s, b) = send(
        app.key(Method::POST, "/users")
            .json(&json!({"userId": "unique()", "name": "anon"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["email"], "");
    assert_eq!(b["$id"].as_str().unwrap().len(), 20);

    let (s, b) = send(app.key(Method::GET, "/users/alice")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["$id"], "alice");
    let (s, b) = send(app.key(Method::GET, "/users/nobody")).await;
    assert_error(s, &b, 404, "user_not_found");

    let (s, _) = send(app.key(Method::DELETE, "/users/alice")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = send(app.key(Method::GET, "/users/alice")).await;
    assert_error(s, &b, 404, "user_not_found");
    let (s, b) = send(app.key(Method::DELETE, "/users/alice")).await;
    assert_error(s, &b, 404, "user_not_found");
}

#[tokio::test]
async fn users_routes_need_the_key() {
    let app = TestApp::spawn().await;
    app.create_user("alice", "alice@example.com", "password123")
        .await;
    let (s, b) = send(app.guest(Method::GET, "/users")).await;
    assert_error(s, &b, 401, "general_unauthorized_scope");
    let secret = app.sign_in("alice@example.com", "password123").await;
    let (s, b) = send(app.session(Method::GET, "/users/alice", &secret)).await;
    assert_error(s, &b, 401, "general_unauthorized_scope");
    let (s, b) = send(
        app.session(Method::POST, "/users", &secret)
            .json(&json!({"userId": "x"})),
    )
    .await;
    assert_error(s, &b, 401, "general_unauthorized_scope");
    let (s, b) = send(
        app.guest(Method::GET, "/users")
            .header("x-appwrite-key", "wrong"),
    )
    .await;
    // The error type for a bad key is the auth extractor's business; the status is ours.
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
}

#[tokio::test]
async fn list_queries() {
    let app = TestApp::spawn().await;
    for (id, email) in [
        ("u1", "ann@a.io"),
        ("u2", "bob@b.io"),
        ("u3", "cat@c.io"),
        ("u4", "dan@d.io"),
    ] {
        app.create_user(id, email, "password123").await;
    }
    let (s, _) = send(
        app.key(Method::PUT, "/users/u2/labels")
            .json(&json!({"labels": ["admin", "vip"]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = send(
        app.key(Method::PATCH, "/users/u3/verification")
            .json(&json!({"emailVerification": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    let list = |qs: Vec<serde_json::Value>| {
        let req = app.key(Method::GET, "/users").query(&queries(&qs));
        async move { send(req).await }
    };
    let ids = |b: &serde_json::Value| -> Vec<String> {
        b["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["$id"].as_str().unwrap().to_owned())
            .collect()
    };

    let (s, b) = list(vec![]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["total"], 4);
    assert_eq!(ids(&b), ["u1", "u2", "u3", "u4"]);

    let (_, b) = list(vec![
        json!({"method": "equal", "attribute": "email", "values": ["BOB@b.io".to_lowercase()]}),
    ])
    .await;
    assert_eq!(ids(&b), ["u2"]);
    let (_, b) = list(vec![
        json!({"method": "equal", "attribute": "labels", "values": ["admin"]}),
    ])
    .await;
    assert_eq!(ids(&b), ["u2"]);
    let (_, b) = list(vec![
        json!({"method": "equal", "attribute": "emailVerification", "values": [true]}),
    ])
    .await;
    assert_eq!(ids(&b), ["u3"]);
    let (_, b) = list(vec![
        json!({"method": "equal", "attribute": "$id", "values": ["u1", "u4"]}),
    ])
    .await;
    assert_eq!(ids(&b), ["u1", "u4"]);
    let (_, b) = list(vec![
        json!({"method": "search", "attribute": "email", "values": ["cat"]}),
    ])
    .await;
    assert_eq!(ids(&b), ["u3"]);
    let (_, b) = list(vec![
        json!({"method": "orderDesc", "attribute": "email"}),
        json!({"method": "limit", "values": [2]}),
    ])
    .await;
    assert_eq!(ids(&b), ["u4", "u3"]);
    assert_eq!(b["total"], 4);
    let (_, b) = list(vec![
        json!({"method": "limit", "values": [2]}),
        json!({"method": "offset", "values": [1]}),
    ])
    .await;
    assert_eq!(ids(&b), ["u2", "u3"]);
    let (_, b) = list(vec![
        json!({"method": "cursorAfter", "values": ["u2"]}),
        json!({"method": "limit", "values": [1]}),
    ])
    .await;
    assert_eq!(ids(&b), ["u3"]);
    let (_, b) = list(vec![
        json!({"method": "equal", "attribute": "name", "values": ["u4"]}),
    ])
    .await;
    assert_eq!(ids(&b), ["u4"]);
    let (s, b) = send(app.key(Method::GET, "/users").query(&[("search", "dan")])).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ids(&b), ["u4"]);

    for bad in [
        json!({"method": "equal", "attribute": "password", "values": ["x"]}),
        json!({"method": "nope", "attribute": "email", "values": ["x"]}),
        json!({"method": "limit", "values": ["x"]}),
    ] {
        let (s, b) = list(vec![bad]).await;
        assert_error(s, &b, 400, "general_query_invalid");
    }
    let (s, b) = send(
        app.key(Method::GET, "/users")
            .query(&[("queries[]", "{broken")]),
    )
    .await;
    assert_error(s, &b, 400, "general_query_invalid");
}

#[tokio::test]
async fn updates_prefs_labels_status_and_credentials() {
    let app = TestApp::spawn().await;
    app.create_user("alice", "alice@example.com", "password123")
        .await;

    let (s, b) = send(
        app.key(Method::PATCH, "/users/alice/prefs")
            .json(&json!({"prefs": {"theme": "dark"}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b, json!({"theme": "dark"}));
    let (_, b) = send(app.key(Method::GET, "/users/alice/prefs")).await;
    assert_eq!(b, json!({"theme": "dark"}));
    let (s, b) = send(
        app.key(Method::PATCH, "/users/alice/prefs")
            .json(&json!({"prefs": [1]})),
    )
    .await;
    assert_error(s, &b, 400, "general_argument_invalid");

    let (_, b) = send(
        app.key(Method::PUT, "/users/alice/labels")
            .json(&json!({"labels": ["staff", "staff"]})),
    )
    .await;
    assert_eq!(b["labels"], json!(["staff"]));
    let (s, b) = send(
        app.key(Method::PUT, "/users/alice/labels")
            .json(&json!({"labels": ["no spaces"]})),
    )
    .await;
    assert_error(s, &b, 400, "general_argument_invalid");

    let (_, b) = send(
        app.key(Method::PATCH, "/users/alice/name")
            .json(&json!({"name": "Alice A"})),
    )
    .await;
    assert_eq!(b["name"], "Alice A");

    let (_, b) = send(
        app.key(Method::PATCH, "/users/alice/verification")
            .json(&json!({"emailVerification": true})),
    )
    .await;
    assert_eq!(b["emailVerification"], true);
    let (_, b) = send(
        app.key(Method::PATCH, "/users/alice/email")
            .json(&json!({"email": "New@Example.com"})),
    )
    .await;
    assert_eq!(b["email"], "new@example.com");
    assert_eq!(b["emailVerification"], false);
    app.create_user("bob", "bob@example.com", "password123")
        .await;
    let (s, b) = send(
        app.key(Method::PATCH, "/users/alice/email")
            .json(&json!({"email": "bob@example.com"})),
    )
    .await;
    assert_error(s, &b, 409, "user_email_already_exists");

    let (s, b) = send(
        app.key(Method::PATCH, "/users/alice/password")
            .json(&json!({"password": "another-pass"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    app.sign_in("new@example.com", "another-pass").await;

    // Blocking: existing sessions stop working and new sign-ins are refused.
    let secret = app.sign_in("new@example.com", "another-pass").await;
    let (_, b) = send(
        app.key(Method::PATCH, "/users/alice/status")
            .json(&json!({"status": false})),
    )
    .await;
    assert_eq!(b["status"], false);
    let (s, b) = send(app.session(Method::GET, "/account", &secret)).await;
    assert_error(s, &b, 401, "general_unauthorized_scope");
    let (s, b) = send(
        app.key(Method::POST, "/account/sessions/email")
            .json(&json!({"email": "new@example.com", "password": "another-pass"})),
    )
    .await;
    assert_error(s, &b, 401, "user_blocked");

    let (s, b) = send(
        app.key(Method::PATCH, "/users/ghost/name")
            .json(&json!({"name": "x"})),
    )
    .await;
    assert_error(s, &b, 404, "user_not_found");
}

#[tokio::test]
async fn server_sessions_and_memberships() {
    let app = TestApp::spawn().await;
    app.create_user("alice", "alice@example.com", "password123")
        .await;

    let (s, session) = send(app.key(Method::POST, "/users/alice/sessions")).await;
    assert_eq!(s, StatusCode::CREATED, "{session}");
    assert_fields(&session, SESSION_FIELDS);
    let secret = session["secret"].as_str().unwrap().to_owned();
    assert!(!secret.is_empty());
    let (s, me) = send(app.session(Method::GET, "/account", &secret)).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["$id"], "alice");

    let (_, list) = send(app.key(Method::GET, "/users/alice/sessions")).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["sessions"][0]["secret"], "");
    let sid = session["$id"].as_str().unwrap();
    let (s, _) = send(app.key(Method::DELETE, &format!("/users/alice/sessions/{sid}"))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = send(app.session(Method::GET, "/account", &secret)).await;
    assert_error(s, &b, 401, "general_unauthorized_scope");
    let (s, b) = send(app.key(Method::DELETE, &format!("/users/alice/sessions/{sid}"))).await;
    assert_error(s, &b, 404, "user_session_not_found");

    app.sign_in("alice@example.com", "password123").await;
    app.sign_in("alice@example.com", "password123").await;
    let (s, _) = send(app.key(Method::DELETE, "/users/alice/sessions")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, list) = send(app.key(Method::GET, "/users/alice/sessions")).await;
    assert_eq!(list["total"], 0);

    let (s, _) = send(
        app.key(Method::POST, "/teams")
            .json(&json!({"teamId": "paid", "name": "Paid"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = send(
        app.key(Method::POST, "/teams/paid/memberships")
            .json(&json!({"userId": "alice", "roles": []})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = send(app.key(Method::GET, "/users/alice/memberships")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["total"], 1);
    assert_eq!(b["memberships"][0]["teamId"], "paid");
    assert_fields(&b["memberships"][0], MEMBERSHIP_FIELDS);
    let (s, b) = send(app.key(Method::GET, "/users/ghost/memberships")).await;
    assert_error(s, &b, 404, "user_not_found");
}

#[tokio::test]
async fn server_tokens_open_sessions_once() {
    let app = TestApp::spawn().await;
    app.create_user("tom", "tom@example.com", "password123")
        .await;
    let (s, token) = send(
        app.key(Method::POST, "/users/tom/tokens")
            .json(&json!({"length": 12, "expire": 120})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{token}");
    assert_fields(&token, TOKEN_FIELDS);
    let secret = token["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 12);
    let body = json!({"userId": "tom", "secret": secret});
    let (s, session) = send(app.key(Method::POST, "/account/sessions/token").json(&body)).await;
    assert_eq!(s, StatusCode::CREATED, "{session}");
    let (s, b) = send(app.key(Method::POST, "/account/sessions/token").json(&body)).await;
    assert_error(s, &b, 401, "user_invalid_token");
    let (s, b) = send(
        app.key(Method::POST, "/users/tom/tokens")
            .json(&json!({"length": 2})),
    )
    .await;
    assert_error(s, &b, 400, "general_argument_invalid");
    let (s, b) = send(app.key(Method::GET, "/users").query(&[("total", "false")])).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["total"], 0);
    assert_eq!(b["users"].as_array().unwrap().len(), 1);
}
