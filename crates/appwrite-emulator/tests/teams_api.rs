//! Teams over HTTP: CRUD, memberships made with the key (confirmed at once), conflicts, list
//! queries, member-only reads for sessions, and the Realtime events membership changes publish.

#[path = "account_support/mod.rs"]
mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::*;

#[tokio::test]
async fn teams_crud_and_errors() {
    let app = TestApp::spawn().await;
    let (s, team) = send(
        app.key(Method::POST, "/teams")
            .json(&json!({"teamId": "paid", "name": "Paid"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{team}");
    assert_fields(&team, TEAM_FIELDS);
    assert_eq!(team["total"], 0);
    let (s, b) = send(
        app.key(Method::POST, "/teams")
            .json(&json!({"teamId": "paid", "name": "Again"})),
    )
    .await;
    assert_error(s, &b, 409, "team_already_exists");
    let (s, b) = send(
        app.key(Method::POST, "/teams")
            .json(&json!({"teamId": "x"})),
    )
    .await;
    assert_error(s, &b, 400, "general_argument_invalid");
    send(
        app.key(Method::POST, "/teams")
            .json(&json!({"teamId": "staff", "name": "Staff"})),
    )
    .await;

    let (s, b) = send(app.key(Method::GET, "/teams")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["total"], 2);
    let (_, b) = send(app.key(Method::GET, "/teams").query(&[("search", "staff")])).await;
    assert_eq!(b["total"], 1);
    assert_eq!(b["teams"][0]["$id"], "staff");
    let (_, b) = send(app.key(Method::GET, "/teams").query(&queries(&[
        json!({"method": "equal", "attribute": "name", "values": ["Paid"]}),
    ])))
    .await;
    assert_eq!(b["teams"][0]["$id"], "paid");

    let (s, b) = send(
        app.key(Method::PUT, "/teams/paid")
            .json(&json!({"name": "Paid customers"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["name"], "Paid customers");
    let (s, b) = send(app.key(Method::GET, "/teams/nope")).await;
    assert_error(s, &b, 404, "team_not_found");
    let (s, _) = send(app.key(Method::DELETE, "/teams/staff")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = send(app.key(Method::DELETE, "/teams/staff")).await;
    assert_error(s, &b, 404, "team_not_found");
    let (s, b) = send(app.guest(Method::GET, "/teams")).await;
    assert_error(s, &b, 401, "general_unauthorized_scope");
}

#[tokio::test]
async fn memberships_with_the_key() {
    let app = TestApp::spawn().await;
    send(
        app.key(Method::POST, "/teams")
            .json(&json!({"teamId": "paid", "name": "Paid"})),
    )
    .await;
    app.create_user("alice", "alice@example.com", "password123")
        .await;

    let (s, m) = send(
        app.key(Method::POST, "/teams/paid/memberships")
            .json(&json!({"userId": "alice", "roles": ["member"]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    assert_fields(&m, MEMBERSHIP_FIELDS);
    assert_eq!(m["confirm"], true);
    assert_eq!(m["userEmail"], "alice@example.com");
    assert_eq!(m["teamName"], "Paid");
    assert!(!m["joined"].as_str().unwrap().is_empty());

    let (s, b) = send(
        app.key(Method::POST, "/teams/paid/memberships")
            .json(&json!({"userId": "alice", "roles": []})),
    )
    .await;
    assert_error(s, &b, 409, "team_invite_already_exists");
    let (s, b) = send(
        app.key(Method::POST, "/teams/paid/memberships")
            .json(&json!({"userId": "ghost", "roles": []})),
    )
    .await;
    assert_error(s, &b, 404, "user_not_found");
    let (s, b) = send(
        app.key(Method::POST, "/teams/nope/memberships")
            .json(&json!({"userId": "alice", "roles": []})),
    )
    .await;
    assert_error(s, &b, 404, "team_not_found");
    let (s, b) = send(
        app.key(Method::POST, "/teams/paid/memberships")
            .json(&json!({"roles": []})),
    )
    .await;
    assert_error(s, &b, 400, "general_argument_invalid");

    // Inviting an unknown email creates the user, as Appwrite does.
    let (s, m2) = send(
        app.key(Method::POST, "/teams/paid/memberships")
            .json(&json!({"email": "New@Example.com", "roles": [], "name": "Newbie"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{m2}");
    assert_eq!(m2["userEmail"], "new@example.com");
    assert_eq!(m2["userName"], "Newbie");
    let (_, users) = send(app.key(Method::GET, "/users").query(&queries(&[
        json!({"method": "equal", "attribute": "email", "values": ["new@example.com"]}),
    ])))
    .await;
    assert_eq!(users["total"], 1);

    let (_, team) = send(app.key(Method::GET, "/teams/paid")).await;
    assert_eq!(team["total"], 2);

    let (s, list) = send(
        app.key(Method::GET, "/teams/paid/memberships")
            .query(&queries(&[
                json!({"method": "equal", "attribute": "userId", "values": ["alice"]}),
            ])),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["total"], 1);
    assert_eq!(list["memberships"][0]["$id"], m["$id"]);
    let (_, list) = send(
        app.key(Method::GET, "/teams/paid/memberships")
            .query(&queries(&[json!({"method": "limit", "values": [1]})])),
    )
    .await;
    assert_eq!(list["total"], 2);
    assert_eq!(list["memberships"].as_array().unwrap().len(), 1);
    let first = list["memberships"][0]["$id"].as_str().unwrap().to_owned();
    let (_, list) = send(
        app.key(Method::GET, "/teams/paid/memberships")
            .query(&queries(&[
                json!({"method": "cursorAfter", "values": [first]}),
            ])),
    )
    .await;
    assert_eq!(list["memberships"].as_array().unwrap().len(), 1);
    assert_eq!(list["memberships"][0]["$id"], m2["$id"]);
    let (_, list) = send(
        app.key(Method::GET, "/teams/paid/memberships")
            .query(&[("search", "newbie")]),
    )
    .await;
    assert_eq!(list["total"], 1);

    let mid = m["$id"].as_str().unwrap();
    let (s, upd) = send(
        app.key(Method::PATCH, &format!("/teams/paid/memberships/{mid}"))
            .json(&json!({"roles": ["owner"]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(upd["roles"], json!(["owner"]));
    let (s, got) = send(app.key(Method::GET, &format!("/teams/paid/memberships/{mid}"))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["roles"], json!(["owner"]));

    let (s, _) = send(app.key(Method::DELETE, &format!("/teams/paid/memberships/{mid}"))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = send(app.key(Method::GET, &format!("/teams/paid/memberships/{mid}"))).await;
    assert_error(s, &b, 404, "membership_not_found");
    let (s, b) = send(app.key(Method::DELETE, &format!("/teams/paid/memberships/{mid}"))).await;
    assert_error(s, &b, 404, "membership_not_found");
    let (_, team) = send(app.key(Method::GET, "/teams/paid")).await;
    assert_eq!(team["total"], 1);
}

#[tokio::test]
async fn sessions_see_only_their_teams() {
    let app = TestApp::spawn().await;
    send(
        app.key(Method::POST, "/teams")
            .json(&json!({"teamId": "paid", "name": "Paid"})),
    )
    .await;
    send(
        app.key(Method::POST, "/teams")
            .json(&json!({"teamId": "staff", "name": "Staff"})),
    )
    .await;
    app.create_user("alice", "alice@example.com", "password123")
        .await;
    send(
        app.key(Method::POST, "/teams/paid/memberships")
            .json(&json!({"userId": "alice", "roles": []})),
    )
    .await;
    let secret = app.sign_in("alice@example.com", "password123").await;

    let (s, b) = send(app.session(Method::GET, "/teams", &secret)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["total"], 1);
    assert_eq!(b["teams"][0]["$id"], "paid");
    let (s, _) = send(app.session(Method::GET, "/teams/paid/memberships", &secret)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = send(app.session(Method::GET, "/teams/staff", &secret)).await;
    assert_error(s, &b, 404, "team_not_found");
    // Not an owner: no renaming.
    let (s, b) = send(
        app.session(Method::PUT, "/teams/paid", &secret)
            .json(&json!({"name": "Mine"})),
    )
    .await;
    assert_error(s, &b, 401, "user_unauthorized");
}

#[tokio::test]
async fn membership_changes_are_published() {
    let app = TestApp::with_state().await;
    let mut events = app.state.as_ref().unwrap().events.subscribe();
    send(
        app.key(Method::POST, "/teams")
            .json(&json!({"teamId": "paid", "name": "Paid"})),
    )
    .await;
    app.create_user("alice", "alice@example.com", "password123")
        .await;
    let (_, m) = send(
        app.key(Method::POST, "/teams/paid/memberships")
            .json(&json!({"userId": "alice", "roles": []})),
    )
    .await;
    let mid = m["$id"].as_str().unwrap().to_owned();
    send(
        app.key(Method::PATCH, &format!("/teams/paid/memberships/{mid}"))
            .json(&json!({"roles": ["x"]})),
    )
    .await;
    send(app.key(Method::DELETE, &format!("/teams/paid/memberships/{mid}"))).await;

    for action in ["create", "update", "delete"] {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("event in time")
            .expect("bus open");
        assert_eq!(
            event.events[0],
            format!("teams.paid.memberships.{mid}.{action}")
        );
        assert!(
            event
                .events
                .contains(&format!("teams.*.memberships.*.{action}"))
        );
        for channel in [
            "teams",
            "teams.paid",
            "memberships",
            &format!("memberships.{mid}"),
        ] {
            assert!(
                event.channels.iter().any(|c| c == channel),
                "{channel} in {:?}",
                event.channels
            );
        }
        assert!(event.readers.contains(&"team:paid".to_owned()));
        assert!(event.readers.contains(&"user:alice".to_owned()));
        assert_eq!(event.payload["$id"], mid);
    }
}

#[tokio::test]
async fn a_user_who_creates_a_team_owns_it_and_members_may_leave() {
    let app = TestApp::spawn().await;
    app.create_user("olga", "olga@example.com", "password123")
        .await;
    app.create_user("pete", "pete@example.com", "password123")
        .await;
    let olga = app.sign_in("olga@example.com", "password123").await;
    let pete = app.sign_in("pete@example.com", "password123").await;

    let (s, team) = send(
        app.session(Method::POST, "/teams", &olga)
            .json(&json!({"teamId": "club", "name": "Club"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{team}");
    assert_eq!(team["total"], 1);
    let (_, list) = send(app.session(Method::GET, "/teams/club/memberships", &olga)).await;
    assert_eq!(list["memberships"][0]["roles"], json!(["owner"]));
    let (s, _) = send(
        app.session(Method::PUT, "/teams/club", &olga)
            .json(&json!({"name": "Club 2"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    let (_, m) = send(
        app.key(Method::POST, "/teams/club/memberships")
            .json(&json!({"userId": "pete", "roles": []})),
    )
    .await;
    let mid = m["$id"].as_str().unwrap();
    let (s, _) = send(app.session(
        Method::DELETE,
        &format!("/teams/club/memberships/{mid}"),
        &pete,
    ))
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, team) = send(app.key(Method::GET, "/teams/club")).await;
    assert_eq!(team["total"], 1);
}
