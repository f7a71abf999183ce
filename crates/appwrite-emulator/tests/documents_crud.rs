//! Document create/get/update/upsert/delete, the response shape the 1.8 spec requires, and every
//! bad input rejected with Appwrite's error while changing nothing.

mod documents_common;

use documents_common::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn setup() -> Emu {
    let emu = Emu::start().await;
    emu.create_db().await;
    emu.create_collection("c", &[], false).await;
    emu.attr(
        "c",
        "string",
        json!({"key": "title", "size": 10, "required": true}),
    )
    .await;
    emu.attr(
        "c",
        "integer",
        json!({"key": "n", "required": false, "min": 0, "max": 10, "default": 3}),
    )
    .await;
    emu.attr("c", "float", json!({"key": "f", "required": false}))
        .await;
    emu.attr("c", "boolean", json!({"key": "b", "required": false}))
        .await;
    emu.attr("c", "datetime", json!({"key": "at", "required": false}))
        .await;
    emu.attr(
        "c",
        "enum",
        json!({"key": "status", "elements": ["live", "deleted"], "required": false}),
    )
    .await;
    emu.attr(
        "c",
        "string",
        json!({"key": "tags", "size": 5, "required": false, "array": true}),
    )
    .await;
    emu
}

const DOCS: &str = "/databases/g3/collections/c/documents";

#[tokio::test]
async fn create_get_update_upsert_delete() {
    let emu = setup().await;
    let (s, doc) = emu
        .create_doc(
            &As::Key,
            "c",
            "d1",
            json!({"title": "hello", "f": 1.5, "b": true, "at": "2024-05-01T14:00:00+02:00", "tags": ["a", "b"]}),
            Some(&["read(\"any\")"]),
        )
        .await;
    assert_eq!(s, 201, "{doc}");
    for f in [
        "$id",
        "$sequence",
        "$collectionId",
        "$databaseId",
        "$createdAt",
        "$updatedAt",
        "$permissions",
    ] {
        assert!(doc.get(f).is_some(), "document lacks {f}: {doc}");
    }
    assert!(doc["$sequence"].is_i64(), "{doc}");
    assert_eq!(doc["$collectionId"], "c");
    assert_eq!(doc["$databaseId"], "g3");
    assert_eq!(doc["n"], 3, "default applies");
    assert_eq!(doc["status"], Value::Null, "unset optional is null");
    assert_eq!(doc["at"], "2024-05-01T12:00:00.000+00:00");
    assert_eq!(doc["tags"], json!(["a", "b"]));
    assert_eq!(doc["b"], true);
    assert_eq!(doc["$permissions"], json!(["read(\"any\")"]));

    let (s, got) = emu.key(Method::GET, &format!("{DOCS}/d1"), None).await;
    assert_eq!(s, 200);
    assert_eq!(got, doc);

    let (s, up) = emu
        .key(
            Method::PATCH,
            &format!("{DOCS}/d1"),
            Some(json!({"data": {"n": 7, "status": "live"}})),
        )
        .await;
    assert_eq!(s, 200, "{up}");
    assert_eq!(
        (
            up["n"].as_i64(),
            up["title"].as_str(),
            up["status"].as_str()
        ),
        (Some(7), Some("hello"), Some("live"))
    );
    assert_eq!(
        up["$permissions"],
        json!(["read(\"any\")"]),
        "permissions inherited"
    );
    let (s, up) = emu
        .key(
            Method::PATCH,
            &format!("{DOCS}/d1"),
            Some(json!({"permissions": []})),
        )
        .await;
    assert_eq!((s, up["$permissions"].clone()), (200, json!([])));

    // Upsert creates, then updates in place.
    let (s, created) = emu
        .key(
            Method::PUT,
            &format!("{DOCS}/d2"),
            Some(json!({"data": {"title": "new"}})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["$id"], "d2");
    let (s, updated) = emu
        .key(
            Method::PUT,
            &format!("{DOCS}/d2"),
            Some(json!({"data": {"n": 9}})),
        )
        .await;
    assert_eq!(s, 201, "{updated}");
    assert_eq!(
        (updated["title"].as_str(), updated["n"].as_i64()),
        (Some("new"), Some(9))
    );
    assert_eq!(updated["$sequence"], created["$sequence"]);

    // unique() makes an id.
    let (s, u) = emu
        .create_doc(&As::Key, "c", "unique()", json!({"title": "x"}), None)
        .await;
    assert_eq!(s, 201);
    assert_eq!(u["$id"].as_str().map(str::len), Some(20));

    let (s, _) = emu.key(Method::DELETE, &format!("{DOCS}/d1"), None).await;
    assert_eq!(s, 204);
    let (s, e) = emu.key(Method::GET, &format!("{DOCS}/d1"), None).await;
    assert_eq!((s, e["type"].as_str()), (404, Some("document_not_found")));
    let (s, e) = emu.key(Method::DELETE, &format!("{DOCS}/d1"), None).await;
    assert_eq!((s, e["type"].as_str()), (404, Some("document_not_found")));
    let (s, e) = emu
        .key(
            Method::PATCH,
            &format!("{DOCS}/d1"),
            Some(json!({"data": {"n": 1}})),
        )
        .await;
    assert_eq!((s, e["type"].as_str()), (404, Some("document_not_found")));
}

#[tokio::test]
async fn bad_input_is_rejected_and_changes_nothing() {
    let emu = setup().await;
    let (s, _) = emu
        .create_doc(
            &As::Key,
            "c",
            "keep",
            json!({"title": "keep", "n": 1}),
            None,
        )
        .await;
    assert_eq!(s, 201);
    let before = emu.key(Method::GET, &format!("{DOCS}/keep"), None).await.1;

    let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
        (
            "new",
            json!({"title": "t", "x": 1}),
            400,
            "document_invalid_structure",
            "Unknown attribute: \"x\"",
        ),
        (
            "new",
            json!({"title": 5}),
            400,
            "document_invalid_structure",
            "title",
        ),
        (
            "new",
            json!({"n": 1}),
            400,
            "document_invalid_structure",
            "Missing required attribute \"title\"",
        ),
        (
            "new",
            json!({"title": "01234567890"}),
            400,
            "document_invalid_structure",
            "no longer than 10",
        ),
        (
            "new",
            json!({"title": "t", "n": 11}),
            400,
            "document_invalid_structure",
            "between 0 and 10",
        ),
        (
            "new",
            json!({"title": "t", "n": -1}),
            400,
            "document_invalid_structure",
            "between 0 and 10",
        ),
        (
            "new",
            json!({"title": "t", "n": 1.5}),
            400,
            "document_invalid_structure",
            "integer",
        ),
        (
            "new",
            json!({"title": "t", "status": "gone"}),
            400,
            "document_invalid_structure",
            "one of (live, deleted)",
        ),
        (
            "new",
            json!({"title": "t", "at": "yesterday"}),
            400,
            "document_invalid_structure",
            "date",
        ),
        (
            "new",
            json!({"title": "t", "b": "yes"}),
            400,
            "document_invalid_structure",
            "boolean",
        ),
        (
            "new",
            json!({"title": "t", "tags": "a"}),
            400,
            "document_invalid_structure",
            "array",
        ),
        (
            "new",
            json!({"title": "t", "tags": ["toolong"]}),
            400,
            "document_invalid_structure",
            "tags",
        ),
        (
            "bad id!",
            json!({"title": "t"}),
            400,
            "general_argument_invalid",
            "documentId",
        ),
        (
            "_bad",
            json!({"title": "t"}),
            400,
            "general_argument_invalid",
            "documentId",
        ),
        ("new", json!({}), 400, "document_missing_data", ""),
        (
            "keep",
            json!({"title": "dup"}),
            409,
            "document_already_exists",
            "",
        ),
    ];
    for (id, data, status, kind, needle) in cases {
        let (s, e) = emu.create_doc(&As::Key, "c", id, data.clone(), None).await;
        assert_eq!(
            (s, e["type"].as_str()),
            (status, Some(kind)),
            "{id} {data}: {e}"
        );
        assert!(
            e["message"].as_str().unwrap_or("").contains(needle),
            "{data}: {e}"
        );
    }
    let (s, e) = emu
        .create_doc(
            &As::Key,
            "c",
            "new",
            json!({"title": "t"}),
            Some(&["read(\"nobody\")"]),
        )
        .await;
    assert_eq!(
        (s, e["type"].as_str()),
        (400, Some("general_argument_invalid")),
        "{e}"
    );

    // Updates are validated against the merged document.
    for (data, needle) in [
        (json!({"title": null}), "Missing required attribute"),
        (json!({"n": 100}), "between 0 and 10"),
        (json!({"nope": 1}), "Unknown attribute: \"nope\""),
    ] {
        let (s, e) = emu
            .key(
                Method::PATCH,
                &format!("{DOCS}/keep"),
                Some(json!({"data": data})),
            )
            .await;
        assert_eq!(
            (s, e["type"].as_str()),
            (400, Some("document_invalid_structure")),
            "{e}"
        );
        assert!(e["message"].as_str().unwrap_or("").contains(needle), "{e}");
    }
    let (s, e) = emu
        .key(Method::PATCH, &format!("{DOCS}/keep"), Some(json!({})))
        .await;
    assert_eq!(
        (s, e["type"].as_str()),
        (400, Some("document_missing_payload"))
    );
    let (s, e) = emu
        .key(
            Method::PUT,
            &format!("{DOCS}/keep"),
            Some(json!({"data": {"status": "x"}})),
        )
        .await;
    assert_eq!(
        (s, e["type"].as_str()),
        (400, Some("document_invalid_structure"))
    );

    // Missing collection and database.
    let (s, e) = emu
        .key(
            Method::POST,
            "/databases/g3/collections/nope/documents",
            Some(json!({"documentId": "a", "data": {"title": "t"}})),
        )
        .await;
    assert_eq!((s, e["type"].as_str()), (404, Some("collection_not_found")));
    let (s, e) = emu
        .key(Method::GET, "/databases/nope/collections/c/documents", None)
        .await;
    assert_eq!((s, e["type"].as_str()), (404, Some("database_not_found")));
    let (s, e) = emu
        .http
        .post(emu.url(DOCS))
        .header("X-Appwrite-Project", PROJECT)
        .header("X-Appwrite-Key", KEY)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map(|s| (s, ()))
        .expect("request");
    assert_eq!((s, e), (400, ()));

    // Nothing changed.
    let (_, list) = emu.list(&As::Key, "c", &[]).await;
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(
        emu.key(Method::GET, &format!("{DOCS}/keep"), None).await.1,
        before
    );
}

#[tokio::test]
async fn unique_index_rejects_duplicates_with_409() {
    let emu = setup().await;
    emu.index("c", "uniq_title", "unique", &["title"], &[])
        .await;
    let (s, _) = emu
        .create_doc(&As::Key, "c", "a", json!({"title": "same"}), None)
        .await;
    assert_eq!(s, 201);
    let (s, e) = emu
        .create_doc(&As::Key, "c", "b", json!({"title": "same"}), None)
        .await;
    assert_eq!(
        (s, e["type"].as_str()),
        (409, Some("document_already_exists"))
    );
    let (_, list) = emu.list(&As::Key, "c", &[]).await;
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn document_permissions_are_normalized() {
    let emu = setup().await;
    let (s, doc) = emu
        .create_doc(
            &As::Key,
            "c",
            "w",
            json!({"title": "t"}),
            Some(&["write(\"user:a\")", "read(\"any\")"]),
        )
        .await;
    assert_eq!(s, 201, "{doc}");
    assert_eq!(
        doc["$permissions"],
        json!(["update(\"user:a\")", "delete(\"user:a\")", "read(\"any\")"])
    );
    let (s, e) = emu
        .create_doc(
            &As::Key,
            "c",
            "x",
            json!({"title": "t"}),
            Some(&["create(\"any\")"]),
        )
        .await;
    assert_eq!(
        (s, e["type"].as_str()),
        (400, Some("general_argument_invalid"))
    );
    let (s, e) = emu
        .key(Method::PUT, &format!("{DOCS}/w"), Some(json!({})))
        .await;
    assert_eq!(
        (s, e["type"].as_str()),
        (400, Some("document_missing_payload"))
    );
}

#[tokio::test]
async fn the_same_id_created_twice_at_once_lands_once() {
    let emu = std::sync::Arc::new(setup().await);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let emu = emu.clone();
        tasks.push(tokio::spawn(async move {
            emu.create_doc(
                &As::Key,
                "c",
                "same",
                json!({"title": format!("t{i}")}),
                None,
            )
            .await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let (s, e) = t.await.expect("task");
        if s == 409 {
            assert_eq!(e["type"], "document_already_exists");
        }
        statuses.push(s);
    }
    statuses.sort();
    assert_eq!(statuses, vec![201, 409, 409, 409, 409, 409, 409, 409]);
    let (_, list) = emu.list(&As::Key, "c", &[]).await;
    assert_eq!(list["total"], 1);
}
