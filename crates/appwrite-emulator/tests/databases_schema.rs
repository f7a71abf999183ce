//! Schema routes: databases, collections, attributes and indexes, their 409s and 404s, the
//! server-key requirement, and that declared indexes become real SQLite indexes.

mod documents_common;

use documents_common::*;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn databases_collections_crud_and_conflicts() {
    let emu = Emu::start().await;
    emu.create_db().await;
    let (s, e) = emu
        .key(
            Method::POST,
            "/databases",
            Some(json!({"databaseId": DB, "name": "again"})),
        )
        .await;
    assert_eq!(
        (s, e["type"].as_str()),
        (409, Some("database_already_exists"))
    );

    let (s, db) = emu
        .key(Method::GET, &format!("/databases/{DB}"), None)
        .await;
    assert_eq!(s, 200);
    for f in ["$id", "name", "$createdAt", "$updatedAt", "enabled", "type"] {
        assert!(db.get(f).is_some(), "database lacks {f}: {db}");
    }
    let (s, list) = emu.key(Method::GET, "/databases", None).await;
    assert_eq!((s, list["total"].as_i64()), (200, Some(1)));
    let db = emu
        .ok(
            Method::PUT,
            &format!("/databases/{DB}"),
            json!({"name": "Renamed"}),
            200,
        )
        .await;
    assert_eq!(db["name"], "Renamed");
    let (s, e) = emu.key(Method::GET, "/databases/nope", None).await;
    assert_eq!((s, e["type"].as_str()), (404, Some("database_not_found")));

    emu.create_collection("signals", &["read(\"team:paid\")"], false)
        .await;
    let (s, e) = emu
        .key(
            Method::POST,
            &format!("/databases/{DB}/collections"),
            Some(json!({"collectionId": "signals", "name": "x"})),
        )
        .await;
    assert_eq!(
        (s, e["type"].as_str()),
        (409, Some("collection_already_exists"))
    );
    let (s, e) = emu
        .key(
            Method::POST,
            "/databases/nope/collections",
            Some(json!({"collectionId": "x", "name": "x"})),
        )
        .await;
    assert_eq!((s, e["type"].as_str()), (404, Some("database_not_found")));
    let (s, e) = emu
        .key(
            Method::POST,
            &format!("/databases/{DB}/collections"),
            Some(json!({"collectionId": "x", "name": "x", "permissions": ["fly(\"any\")"]})),
        )
        .await;
    assert_eq!(
        (s, e["type"].as_str()),
        (400, Some("general_argument_invalid"))
    );

    let (s, col) = emu
        .key(
            Method::GET,
            &format!("/databases/{DB}/collections/signals"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(col["$permissions"], json!(["read(\"team:paid\")"]));
    assert_eq!(col["attributes"], json!([]));
    assert_eq!(col["indexes"], json!([]));
    assert_eq!(col["documentSecurity"], false);

    let col = emu
        .ok(
            Method::PUT,
            &format!("/databases/{DB}/collections/signals"),
            json!({"name": "Signals", "documentSecurity": true, "permissions": ["read(\"any\")"]}),
            200,
        )
        .await;
    assert_eq!(col["documentSecurity"], true);
    assert_eq!(col["$permissions"], json!(["read(\"any\")"]));
    let (s, e) = emu
        .key(
            Method::GET,
            &format!("/databases/{DB}/collections/nope"),
            None,
        )
        .await;
    assert_eq!((s, e["type"].as_str()), (404, Some("collection_not_found")));

    let (s, list) = emu
        .key(Method::GET, &format!("/databases/{DB}/collections"), None)
        .await;
    assert_eq!((s, list["total"].as_i64()), (200, Some(1)));

    let (s, _) = emu
        .key(
            Method::DELETE,
            &format!("/databases/{DB}/collections/signals"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert!(
        emu.sql_strings(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'doc_%'"
        )
        .is_empty()
    );
    let (s, _) = emu
        .key(Method::DELETE, &format!("/databases/{DB}"), None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = emu
        .key(Method::GET, &format!("/databases/{DB}"), None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn schema_routes_need_the_server_key() {
    let emu = Emu::start().await;
    emu.create_db().await;
    let secret = emu.user_session("alice");
    for who in [As::Guest, As::Session(secret)] {
        for (method, path) in [
            (Method::GET, "/databases".to_owned()),
            (Method::POST, "/databases".to_owned()),
            (Method::GET, format!("/databases/{DB}/collections")),
            (
                Method::POST,
                format!("/databases/{DB}/collections/x/attributes/string"),
            ),
        ] {
            let (s, e) = emu.req(&who, method, &path, Some(json!({}))).await;
            assert_eq!(
                (s, e["type"].as_str()),
                (401, Some("general_unauthorized_scope")),
                "{who:?} {path}"
            );
        }
    }
}

#[tokio::test]
async fn attributes_and_indexes() {
    let emu = Emu::start().await;
    emu.create_db().await;
    emu.create_collection("c", &[], false).await;
    let base = format!("/databases/{DB}/collections/c");
    let attrs = [
        (
            "string",
            json!({"key": "title", "size": 64, "required": true}),
        ),
        (
            "integer",
            json!({"key": "n", "required": false, "min": 0, "max": 10, "default": 3}),
        ),
        ("float", json!({"key": "f", "required": false})),
        (
            "boolean",
            json!({"key": "b", "required": false, "default": false}),
        ),
        ("datetime", json!({"key": "at", "required": false})),
        (
            "enum",
            json!({"key": "status", "elements": ["live", "deleted"], "required": false, "default": "live"}),
        ),
        (
            "string",
            json!({"key": "tags", "size": 16, "required": false, "array": true}),
        ),
    ];
    for (kind, body) in &attrs {
        let a = emu
            .ok(
                Method::POST,
                &format!("{base}/attributes/{kind}"),
                body.clone(),
                202,
            )
            .await;
        assert_eq!(a["key"], body["key"]);
        for f in [
            "key",
            "type",
            "status",
            "error",
            "required",
            "$createdAt",
            "$updatedAt",
        ] {
            assert!(a.get(f).is_some(), "attribute lacks {f}: {a}");
        }
    }
    let (s, a) = emu
        .key(Method::GET, &format!("{base}/attributes/status"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        (a["type"].as_str(), a["format"].as_str()),
        (Some("string"), Some("enum"))
    );
    assert_eq!(a["status"], "available");
    let (_, a) = emu
        .key(Method::GET, &format!("{base}/attributes/f"), None)
        .await;
    assert_eq!(a["type"], "double");

    let (s, e) = emu
        .key(
            Method::POST,
            &format!("{base}/attributes/string"),
            Some(json!({"key": "title", "size": 5, "required": false})),
        )
        .await;
    assert_eq!(
        (s, e["type"].as_str()),
        (409, Some("attribute_already_exists"))
    );
    let (s, e) = emu
        .key(
            Method::POST,
            &format!("{base}/attributes/string"),
            Some(json!({"key": "x", "size": 5, "required": true, "default": "a"})),
        )
        .await;
    assert_eq!(
        (s, e["type"].as_str()),
        (400, Some("attribute_default_unsupported"))
    );
    let (s, list) = emu
        .key(Method::GET, &format!("{base}/attributes"), None)
        .await;
    assert_eq!((s, list["total"].as_i64()), (200, Some(attrs.len() as i64)));

    emu.index(
        "c",
        "by_status",
        "key",
        &["status", "$createdAt"],
        &["ASC", "DESC"],
    )
    .await;
    emu.index("c", "uniq_title", "unique", &["title"], &[])
        .await;
    emu.index("c", "ft_title", "fulltext", &["title"], &[])
        .await;
    let (s, e) = emu
        .key(
            Method::POST,
            &format!("{base}/indexes"),
            Some(json!({"key": "by_status", "type": "key", "attributes": ["n"]})),
        )
        .await;
    assert_eq!((s, e["type"].as_str()), (409, Some("index_already_exists")));
    let (s, e) = emu
        .key(
            Method::POST,
            &format!("{base}/indexes"),
            Some(json!({"key": "bad", "type": "key", "attributes": ["missing"]})),
        )
        .await;
    assert_eq!((s, e["type"].as_str()), (400, Some("attribute_unknown")));
    let (s, i) = emu
        .key(Method::GET, &format!("{base}/indexes/by_status"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(i["attributes"], json!(["status", "$createdAt"]));
    assert_eq!(i["status"], "available");
    let (_, list) = emu.key(Method::GET, &format!("{base}/indexes"), None).await;
    assert_eq!(list["total"], 3);

    // Declared indexes are real SQLite indexes, and the planner uses them.
    let names = emu.sql_strings(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'doc_%_ix_%'",
    );
    assert_eq!(names.len(), 3, "{names:?}");
    let table = emu.sql_strings("SELECT table_name FROM collections WHERE id = 'c'")[0].clone();
    let plan = emu.query_plan(&format!(
        "SELECT _id FROM \"{table}\" WHERE a_status = 'live' ORDER BY _created DESC LIMIT 25"
    ));
    assert!(plan.iter().any(|p| p.contains("_ix_by_status")), "{plan:?}");

    // The collection shows both.
    let (_, col) = emu.key(Method::GET, &base, None).await;
    assert_eq!(
        col["attributes"].as_array().map(Vec::len),
        Some(attrs.len())
    );
    assert_eq!(col["indexes"].as_array().map(Vec::len), Some(3));

    // Deleting an attribute takes its indexes with it.
    let (s, _) = emu
        .key(Method::DELETE, &format!("{base}/attributes/title"), None)
        .await;
    assert_eq!(s, 204);
    let (_, list) = emu.key(Method::GET, &format!("{base}/indexes"), None).await;
    assert_eq!(list["total"], 1);
    let (s, _) = emu
        .key(Method::DELETE, &format!("{base}/indexes/by_status"), None)
        .await;
    assert_eq!(s, 204);
    let (s, e) = emu
        .key(Method::GET, &format!("{base}/indexes/by_status"), None)
        .await;
    assert_eq!((s, e["type"].as_str()), (404, Some("index_not_found")));
    let (s, e) = emu
        .key(Method::GET, &format!("{base}/attributes/title"), None)
        .await;
    assert_eq!((s, e["type"].as_str()), (404, Some("attribute_not_found")));
}

/// Schema lists take the same queries as every other list: filters on the attributes Appwrite
/// allows there, cursors by `$id` or (attributes, indexes) by `key`, and refusals otherwise.
#[tokio::test]
async fn schema_lists_filter_page_and_refuse_like_appwrite() {
    let emu = Emu::start().await;
    emu.create_db().await;
    for col in ["alpha", "beta", "gamma"] {
        emu.create_collection(col, &[], false).await;
    }
    for key in ["a", "b", "c"] {
        emu.attr(
            "alpha",
            "string",
            json!({"key": key, "size": 8, "required": false}),
        )
        .await;
    }
    emu.attr("alpha", "integer", json!({"key": "n", "required": false}))
        .await;
    let q = |queries: &[Value]| {
        queries
            .iter()
            .map(|q| {
                format!(
                    "queries[]={}",
                    url::form_urlencoded::byte_serialize(q.to_string().as_bytes())
                        .collect::<String>()
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    };
    let cols = format!("/databases/{DB}/collections");
    let (s, list) = emu
        .key(
            Method::GET,
            &format!(
                "{cols}?{}",
                q(&[
                    json!({"method": "orderDesc", "attribute": "name"}),
                    json!({"method": "cursorAfter", "values": ["gamma"]}),
                    json!({"method": "limit", "values": [1]}),
                ])
            ),
            None,
        )
        .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["collections"][0]["$id"], "beta", "{list}");

    let attrs = format!("{cols}/alpha/attributes");
    let (s, list) = emu
        .key(
            Method::GET,
            &format!(
                "{attrs}?{}",
                q(&[
                    json!({"method": "equal", "attribute": "type", "values": ["string"]}),
                    json!({"method": "cursorAfter", "values": ["a"]}),
                ])
            ),
            None,
        )
        .await;
    assert_eq!(s, 200, "{list}");
    let keys: Vec<&str> = list["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["key"].as_str())
        .collect();
    assert_eq!(keys, ["b", "c"], "{list}");
    assert_eq!(list["total"], 3, "three string attributes in all");

    let (s, e) = emu
        .key(
            Method::GET,
            &format!(
                "{attrs}?{}",
                q(&[json!({"method": "equal", "attribute": "secret", "values": ["x"]})])
            ),
            None,
        )
        .await;
    assert_eq!(
        (s, e["type"].as_str()),
        (400, Some("general_query_invalid"))
    );
    let (s, e) = emu
        .key(
            Method::GET,
            &format!(
                "{attrs}?{}",
                q(&[json!({"method": "cursorAfter", "values": ["nope"]})])
            ),
            None,
        )
        .await;
    assert_eq!(
        (s, e["type"].as_str()),
        (400, Some("general_cursor_not_found"))
    );
}
