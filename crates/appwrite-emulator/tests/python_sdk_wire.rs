//! Wire details Appwrite's official Python SDK (PyPI `appwrite` 15.x, for Appwrite 1.8) depends
//! on, found by the conformance suite in tests/conformance-python: each test here failed before
//! the emulator was fixed.

#[path = "account_support/mod.rs"]
mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::*;

/// Appwrite's HTTP server (Swoole) sends `Content-Type: text/html` on responses whose handler set
/// none, 204s included; the Python SDK reads `response.headers['Content-Type']` on every response
/// and raised `KeyError('content-type')` on each delete.
#[tokio::test]
async fn no_content_responses_carry_a_content_type() {
    let app = TestApp::spawn().await;
    app.create_user("carol", "carol@example.com", "password123")
        .await;
    let resp = app
        .key(Method::DELETE, "/users/carol")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("delete user");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/html"),
        "a 204 names a content type, as Appwrite's does"
    );
    assert!(resp.bytes().await.expect("body").is_empty());

    // Every other 204 goes through the same path: a membership delete, for one.
    let (s, _) = send(
        app.key(Method::POST, "/teams")
            .json(&json!({"teamId": "t", "name": "T"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let resp = app
        .key(Method::DELETE, "/teams/t")
        .send()
        .await
        .expect("delete team");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.headers().contains_key("content-type"));

    // JSON answers keep their own type.
    let resp = app.key(Method::GET, "/users").send().await.expect("list");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ct.starts_with("application/json"), "{ct}");
}

/// Appwrite validates `total` as a loose boolean (`true`, `false`, `1`, `0`). The Python SDK puts
/// `total=False` in the query string (Python's spelling), which Appwrite refuses with 400; the
/// emulator used to take anything but `false`/`0` as "count".
#[tokio::test]
async fn total_is_a_loose_boolean() {
    let app = TestApp::spawn().await;
    app.create_user("alice", "alice@example.com", "password123")
        .await;
    for (value, total) in [("false", 0), ("0", 0), ("true", 1), ("1", 1)] {
        let (s, b) = send(app.key(Method::GET, &format!("/users?total={value}"))).await;
        assert_eq!(s, StatusCode::OK, "total={value}: {b}");
        assert_eq!(b["total"], total, "total={value}");
        assert_eq!(b["users"].as_array().map(Vec::len), Some(1));
    }
    for value in ["False", "True", "yes", ""] {
        let (s, b) = send(app.key(Method::GET, &format!("/users?total={value}"))).await;
        assert_error(s, &b, 400, "general_argument_invalid");
        assert!(
            b["message"]
                .as_str()
                .unwrap_or_default()
                .contains("`total`"),
            "{b}"
        );
    }

    // The documents list validates it the same way.
    let (s, b) = send(
        app.key(Method::POST, "/databases")
            .json(&json!({"databaseId": "d", "name": "D"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = send(
        app.key(Method::POST, "/databases/d/collections")
            .json(&json!({"collectionId": "c", "name": "C"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = send(app.key(
        Method::GET,
        "/databases/d/collections/c/documents?total=False",
    ))
    .await;
    assert_error(s, &b, 400, "general_argument_invalid");
    let (s, b) = send(app.key(
        Method::GET,
        "/databases/d/collections/c/documents?total=false",
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// A path the emulator serves, asked with a method it lacks, was axum's bare 405 (no body, no
/// type): the Python SDK then failed with `KeyError` instead of an `AppwriteException`. Appwrite
/// answers any unmatched method and path with 404 `general_route_not_found` JSON.
#[tokio::test]
async fn a_method_the_path_lacks_is_appwrites_route_not_found() {
    let app = TestApp::spawn().await;
    for (method, path) in [(Method::PUT, "/users"), (Method::PATCH, "/databases")] {
        let (s, b) = send(app.key(method.clone(), path)).await;
        assert_error(s, &b, 404, "general_route_not_found");
        assert!(
            b["message"]
                .as_str()
                .unwrap_or_default()
                .contains(&format!("{method} /v1{path}")),
            "{b}"
        );
    }
}
