//! The permission matrix: server key, guest, session user with and without a team role, for
//! collection-level and document-level permissions, including filtered lists and paging.

mod documents_common;

use documents_common::*;
use reqwest::Method;
use serde_json::json;

const PAID: &str = "/databases/g3/collections/paid/documents";
const PRIVATE: &str = "/databases/g3/collections/private/documents";

async fn setup() -> (Emu, As, As) {
    let emu = Emu::start().await;
    emu.create_db().await;
    // Signals-style: readable by the paid team only, no document security.
    emu.create_collection("paid", &["read(\"team:paid\")"], false)
        .await;
    emu.attr(
        "paid",
        "string",
        json!({"key": "v", "size": 32, "required": false}),
    )
    .await;
    // Per-user data: any signed-in user may create; each document says who reads it.
    emu.create_collection("private", &["create(\"users\")"], true)
        .await;
    emu.attr(
        "private",
        "string",
        json!({"key": "v", "size": 32, "required": false}),
    )
    .await;
    let alice = As::Session(emu.user_session("alice"));
    let bob = As::Session(emu.user_session("bob"));
    emu.join_team("bob", "paid");
    for i in 0..3 {
        let (s, _) = emu
            .create_doc(&As::Key, "paid", &format!("p{i}"), json!({"v": "x"}), None)
            .await;
        assert_eq!(s, 201);
    }
    (emu, alice, bob)
}

fn kind(e: &serde_json::Value) -> Option<&str> {
    e["type"].as_str()
}

#[tokio::test]
async fn collection_permissions() {
    let (emu, alice, bob) = setup().await;
    for who in [As::Guest, alice.clone()] {
        let (s, e) = emu.list(&who, "paid", &[]).await;
        assert_eq!((s, kind(&e)), (401, Some("user_unauthorized")), "{who:?}");
        let (s, e) = emu
            .req(&who, Method::GET, &format!("{PAID}/p0"), None)
            .await;
        assert_eq!((s, kind(&e)), (404, Some("document_not_found")), "{who:?}");
    }
    let (s, list) = emu.list(&bob, "paid", &[]).await;
    assert_eq!((s, list["total"].as_i64()), (200, Some(3)));
    let (s, _) = emu
        .req(&bob, Method::GET, &format!("{PAID}/p0"), None)
        .await;
    assert_eq!(s, 200);
    // Reading is not writing.
    for who in [As::Guest, alice.clone(), bob.clone()] {
        let (s, e) = emu
            .create_doc(&who, "paid", "new", json!({"v": "x"}), None)
            .await;
        assert_eq!((s, kind(&e)), (401, Some("user_unauthorized")), "{who:?}");
        let (s, e) = emu
            .req(
                &who,
                Method::PATCH,
                &format!("{PAID}/p0"),
                Some(json!({"data": {"v": "y"}})),
            )
            .await;
        assert!(s == 401 || s == 404, "{who:?}: {s} {e}");
        let (s, _) = emu
            .req(&who, Method::DELETE, &format!("{PAID}/p0"), None)
            .await;
        assert!(s == 401 || s == 404, "{who:?}: {s}");
    }
    // A user who joins the team can read at once (roles are read per request).
    emu.join_team("alice", "paid");
    let (s, list) = emu.list(&alice, "paid", &[]).await;
    assert_eq!((s, list["total"].as_i64()), (200, Some(3)));
    // Disabled collections disappear for everyone but the key.
    emu.ok(
        Method::PUT,
        "/databases/g3/collections/paid",
        json!({"name": "paid", "enabled": false}),
        200,
    )
    .await;
    let (s, e) = emu.list(&bob, "paid", &[]).await;
    assert_eq!((s, kind(&e)), (404, Some("collection_not_found")));
    let (s, _) = emu.list(&As::Key, "paid", &[]).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn document_permissions() {
    let (emu, alice, bob) = setup().await;
    let (s, e) = emu
        .create_doc(&As::Guest, "private", "g", json!({"v": "x"}), None)
        .await;
    assert_eq!((s, kind(&e)), (401, Some("user_unauthorized")));

    // Without permissions the creator gets read, update and delete.
    let (s, doc) = emu
        .create_doc(&alice, "private", "a1", json!({"v": "mine"}), None)
        .await;
    assert_eq!(s, 201, "{doc}");
    assert_eq!(
        doc["$permissions"],
        json!([
            "read(\"user:alice\")",
            "update(\"user:alice\")",
            "delete(\"user:alice\")"
        ])
    );
    // Users may only grant roles they hold.
    let (s, e) = emu
        .create_doc(
            &alice,
            "private",
            "a2",
            json!({"v": "x"}),
            Some(&["read(\"team:paid\")"]),
        )
        .await;
    assert_eq!((s, kind(&e)), (401, Some("user_unauthorized")), "{e}");
    let (s, _) = emu
        .create_doc(
            &bob,
            "private",
            "b1",
            json!({"v": "paid"}),
            Some(&["read(\"team:paid\")", "update(\"user:bob\")"]),
        )
        .await;
    assert_eq!(s, 201);

    let (_, list) = emu.list(&alice, "private", &[]).await;
    assert_eq!(ids(&list), vec!["a1"]);
    assert_eq!(list["total"], 1);
    let (_, list) = emu.list(&bob, "private", &[]).await;
    assert_eq!(ids(&list), vec!["b1"]);
    let (_, list) = emu.list(&As::Guest, "private", &[]).await;
    assert_eq!(list["total"], 0);
    let (_, list) = emu.list(&As::Key, "private", &[]).await;
    assert_eq!(list["total"], 2);

    // Unreadable documents are not found; unwritable ones are unauthorized.
    let (s, e) = emu
        .req(&bob, Method::GET, &format!("{PRIVATE}/a1"), None)
        .await;
    assert_eq!((s, kind(&e)), (404, Some("document_not_found")));
    let (s, e) = emu
        .req(
            &bob,
            Method::PATCH,
            &format!("{PRIVATE}/a1"),
            Some(json!({"data": {"v": "hax"}})),
        )
        .await;
    assert_eq!((s, kind(&e)), (401, Some("user_unauthorized")));
    let (s, e) = emu
        .req(&bob, Method::DELETE, &format!("{PRIVATE}/a1"), None)
        .await;
    assert_eq!((s, kind(&e)), (401, Some("user_unauthorized")));
    // Appwrite finds the document before checking delete permission: 401, not 404.
    let (s, e) = emu
        .req(&alice, Method::DELETE, &format!("{PRIVATE}/b1"), None)
        .await;
    assert_eq!((s, kind(&e)), (401, Some("user_unauthorized")));

    // The owner shares with everyone; guests then see it.
    let (s, doc) = emu
        .req(
            &alice,
            Method::PATCH,
            &format!("{PRIVATE}/a1"),
            Some(json!({"permissions": ["read(\"any\")", "update(\"user:alice\")", "delete(\"user:alice\")"]})),
        )
        .await;
    assert_eq!(s, 200, "{doc}");
    let (_, list) = emu.list(&As::Guest, "private", &[]).await;
    assert_eq!(ids(&list), vec!["a1"]);

    // Joining the team makes the team's documents readable.
    emu.join_team("alice", "paid");
    let (_, list) = emu.list(&alice, "private", &[]).await;
    assert_eq!(list["total"], 2);

    let (s, _) = emu
        .req(&alice, Method::DELETE, &format!("{PRIVATE}/a1"), None)
        .await;
    assert_eq!(s, 204);
}

#[tokio::test]
async fn filtered_lists_count_and_page_right() {
    let (emu, alice, _) = setup().await;
    for i in 0..30 {
        let reader = if i % 3 == 0 {
            "user:alice"
        } else {
            "user:someone"
        };
        let perms = [format!("read(\"{reader}\")")];
        let perms: Vec<&str> = perms.iter().map(String::as_str).collect();
        let (s, _) = emu
            .create_doc(
                &As::Key,
                "private",
                &format!("x{i:02}"),
                json!({"v": "x"}),
                Some(&perms),
            )
            .await;
        assert_eq!(s, 201);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut queries = vec![
            json!({"method": "limit", "values": [4]}),
            json!({"method": "orderDesc", "attribute": "$id"}),
        ];
        if let Some(c) = &cursor {
            queries.push(json!({"method": "cursorAfter", "values": [c]}));
        }
        let (s, list) = emu.list(&alice, "private", &queries).await;
        assert_eq!(s, 200);
        assert_eq!(list["total"], 10);
        let page = ids(&list);
        if page.is_empty() {
            break;
        }
        cursor = page.last().cloned();
        seen.extend(page);
    }
    let want: Vec<String> = (0..30)
        .rev()
        .filter(|i| i % 3 == 0)
        .map(|i| format!("x{i:02}"))
        .collect();
    assert_eq!(seen, want);
}
