//! Every query operator, ordering, select, limit/offset, cursor paging in both directions, the
//! 5000 cap on `total`, and invalid queries answered with `general_query_invalid`.

mod documents_common;

use documents_common::*;
use serde_json::{Value, json};

async fn seeded() -> Emu {
    let emu = Emu::start().await;
    emu.create_db().await;
    emu.create_collection("c", &[], false).await;
    emu.attr(
        "c",
        "string",
        json!({"key": "name", "size": 32, "required": true}),
    )
    .await;
    emu.attr("c", "integer", json!({"key": "n", "required": false}))
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
        json!({"key": "tags", "size": 8, "required": false, "array": true}),
    )
    .await;
    emu.attr(
        "c",
        "string",
        json!({"key": "note", "size": 64, "required": false}),
    )
    .await;
    emu.index("c", "ft_note", "fulltext", &["note"], &[]).await;
    emu.index("c", "by_status", "key", &["status"], &[]).await;
    for i in 0..10 {
        let note = if i % 4 == 0 {
            Value::Null
        } else {
            json!(format!("the quick brown fox {i}"))
        };
        let (s, e) = emu
            .create_doc(
                &As::Key,
                "c",
                &format!("d{i}"),
                json!({
                    "name": format!("item-{i}"),
                    "n": i,
                    "f": i as f64 * 0.5,
                    "b": i % 2 == 0,
                    "at": format!("2024-01-{:02}T00:00:00.000+00:00", 10 + i),
                    "status": if i < 5 { "live" } else { "deleted" },
                    "tags": [format!("t{}", i % 3), "all"],
                    "note": note,
                }),
                None,
            )
            .await;
        assert_eq!(s, 201, "{e}");
    }
    emu
}

fn q(method: &str, attribute: &str, values: Value) -> Value {
    json!({"method": method, "attribute": attribute, "values": values})
}

async fn run(emu: &Emu, queries: &[Value]) -> Vec<String> {
    let (s, list) = emu.list(&As::Key, "c", queries).await;
    assert_eq!(s, 200, "{queries:?}: {list}");
    ids(&list)
}

fn expect(list: &[usize]) -> Vec<String> {
    list.iter().map(|i| format!("d{i}")).collect()
}

#[tokio::test]
async fn every_filter_operator() {
    let emu = seeded().await;
    let cases: Vec<(Value, Vec<usize>)> = vec![
        (q("equal", "name", json!(["item-3"])), vec![3]),
        (q("equal", "n", json!([1, 2, 7])), vec![1, 2, 7]),
        (
            q("equal", "status", json!(["deleted"])),
            vec![5, 6, 7, 8, 9],
        ),
        (q("equal", "b", json!([true])), vec![0, 2, 4, 6, 8]),
        (q("equal", "$id", json!(["d4"])), vec![4]),
        (
            q("notEqual", "status", json!(["live"])),
            vec![5, 6, 7, 8, 9],
        ),
        (q("lessThan", "n", json!([2])), vec![0, 1]),
        (q("lessThanEqual", "n", json!([2])), vec![0, 1, 2]),
        (q("greaterThan", "f", json!([3.5])), vec![8, 9]),
        (q("greaterThanEqual", "f", json!([3.5])), vec![7, 8, 9]),
        (q("between", "n", json!([3, 5])), vec![3, 4, 5]),
        (
            q(
                "between",
                "at",
                json!(["2024-01-11T00:00:00.000+00:00", "2024-01-12T00:00:00+00:00"]),
            ),
            vec![1, 2],
        ),
        (q("isNull", "note", json!([])), vec![0, 4, 8]),
        (q("isNotNull", "note", json!([])), vec![1, 2, 3, 5, 6, 7, 9]),
        (q("startsWith", "name", json!(["item-1"])), vec![1]),
        (q("endsWith", "name", json!(["-9"])), vec![9]),
        (q("contains", "name", json!(["em-5"])), vec![5]),
        (q("contains", "tags", json!(["t1"])), vec![1, 4, 7]),
        (
            q("contains", "tags", json!(["t0", "t2"])),
            vec![0, 2, 3, 5, 6, 8, 9],
        ),
        (
            q("notContains", "tags", json!(["t0"])),
            vec![1, 2, 4, 5, 7, 8],
        ),
        (
            q("search", "note", json!(["quick fox"])),
            vec![1, 2, 3, 5, 6, 7, 9],
        ),
        (q("search", "note", json!(["brown 7"])), vec![7]),
        (
            json!({"method": "or", "values": [q("equal", "n", json!([1])), q("equal", "n", json!([9]))]}),
            vec![1, 9],
        ),
        (
            json!({"method": "and", "values": [q("equal", "status", json!(["live"])), q("greaterThan", "n", json!([2]))]}),
            vec![3, 4],
        ),
    ];
    for (query, want) in cases {
        assert_eq!(
            run(&emu, std::slice::from_ref(&query)).await,
            expect(&want),
            "{query}"
        );
    }
    // Several filters combine with AND; `total` counts all matches, not the page.
    let (_, list) = emu
        .list(
            &As::Key,
            "c",
            &[
                q("equal", "status", json!(["live"])),
                q("greaterThan", "n", json!([0])),
                json!({"method": "limit", "values": [2]}),
            ],
        )
        .await;
    assert_eq!(
        (ids(&list), list["total"].as_i64()),
        (expect(&[1, 2]), Some(4))
    );
}

#[tokio::test]
async fn order_select_limit_offset_and_cursors() {
    let emu = seeded().await;
    let desc = json!({"method": "orderDesc", "attribute": "n"});
    assert_eq!(
        run(
            &emu,
            &[desc.clone(), json!({"method": "limit", "values": [3]})]
        )
        .await,
        expect(&[9, 8, 7])
    );
    assert_eq!(
        run(
            &emu,
            &[
                json!({"method": "orderAsc", "attribute": "status"}),
                json!({"method": "orderDesc", "attribute": "$sequence"}),
                json!({"method": "limit", "values": [6]})
            ]
        )
        .await,
        expect(&[9, 8, 7, 6, 5, 4])
    );
    // Newest first. Documents created in the same millisecond tie on `$createdAt`; Appwrite
    // breaks every tie by `$sequence` ascending, whatever the order's direction.
    let (_, all) = emu
        .list(
            &As::Key,
            "c",
            &[json!({"method": "orderAsc", "attribute": "$sequence"})],
        )
        .await;
    let mut newest: Vec<(String, i64, String)> = all["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| {
            (
                d["$createdAt"].as_str().expect("time").to_owned(),
                d["$sequence"].as_i64().expect("sequence"),
                d["$id"].as_str().expect("id").to_owned(),
            )
        })
        .collect();
    assert_eq!(newest.len(), 10);
    newest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let newest: Vec<String> = newest.into_iter().map(|(_, _, id)| id).collect();
    assert_eq!(
        run(
            &emu,
            &[json!({"method": "orderDesc", "attribute": "$createdAt"})]
        )
        .await,
        newest
    );
    assert_eq!(
        run(
            &emu,
            &[
                json!({"method": "orderDesc", "attribute": "$createdAt"}),
                json!({"method": "limit", "values": [1]})
            ]
        )
        .await,
        newest[..1]
    );
    assert_eq!(
        run(
            &emu,
            &[
                json!({"method": "orderAsc", "attribute": "$id"}),
                json!({"method": "offset", "values": [8]})
            ]
        )
        .await,
        expect(&[8, 9])
    );
    // Nulls first ascending, as SQLite and Appwrite (MariaDB) sort them.
    assert_eq!(
        run(
            &emu,
            &[
                json!({"method": "orderAsc", "attribute": "note"}),
                json!({"method": "limit", "values": [3]})
            ]
        )
        .await,
        expect(&[0, 4, 8])
    );

    // Cursor paging forward through ties (status has only two values) visits every doc once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut queries = vec![
            json!({"method": "orderAsc", "attribute": "b"}),
            json!({"method": "orderDesc", "attribute": "status"}),
            json!({"method": "limit", "values": [3]}),
        ];
        if let Some(c) = &cursor {
            queries.push(json!({"method": "cursorAfter", "values": [c]}));
        }
        let page = run(&emu, &queries).await;
        if page.is_empty() {
            break;
        }
        cursor = page.last().cloned();
        seen.extend(page);
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 10, "{seen:?}");
    assert_eq!(seen.len(), 10, "{seen:?}");

    // cursorBefore returns the page just before, in the same order.
    let page = run(
        &emu,
        &[
            desc.clone(),
            json!({"method": "cursorBefore", "values": ["d5"]}),
            json!({"method": "limit", "values": [2]}),
        ],
    )
    .await;
    assert_eq!(page, expect(&[7, 6]));
    let page = run(
        &emu,
        &[
            desc.clone(),
            json!({"method": "cursorAfter", "values": ["d5"]}),
            json!({"method": "limit", "values": [2]}),
        ],
    )
    .await;
    assert_eq!(page, expect(&[4, 3]));
    let (s, e) = emu
        .list(
            &As::Key,
            "c",
            &[json!({"method": "cursorAfter", "values": ["ghost"]})],
        )
        .await;
    assert_eq!(
        (s, e["type"].as_str()),
        (400, Some("general_cursor_not_found"))
    );

    // As in Appwrite, a cursor whose order value is null cannot page.
    let (s, e) = emu
        .list(
            &As::Key,
            "c",
            &[
                json!({"method": "orderAsc", "attribute": "note"}),
                json!({"method": "cursorAfter", "values": ["d0"]}),
            ],
        )
        .await;
    assert_eq!(
        (s, e["type"].as_str()),
        (400, Some("database_query_order_null")),
        "{e}"
    );

    // select keeps the system fields and only the chosen attributes.
    let (_, list) = emu
        .list(
            &As::Key,
            "c",
            &[
                json!({"method": "select", "values": ["name"]}),
                json!({"method": "limit", "values": [1]}),
            ],
        )
        .await;
    let doc = &list["documents"][0];
    assert_eq!(doc["name"], "item-0");
    assert!(doc.get("n").is_none(), "{doc}");
    for f in [
        "$id",
        "$sequence",
        "$collectionId",
        "$databaseId",
        "$createdAt",
        "$updatedAt",
        "$permissions",
    ] {
        assert!(doc.get(f).is_some(), "selected document lacks {f}: {doc}");
    }

    // queries[0]= style parameters work too.
    let resp = emu
        .http
        .get(emu.url("/databases/g3/collections/c/documents"))
        .header("X-Appwrite-Project", PROJECT)
        .header("X-Appwrite-Key", KEY)
        .query(&[
            ("queries[0]", q("equal", "n", json!([4])).to_string()),
            (
                "queries[1]",
                json!({"method":"limit","values":[5]}).to_string(),
            ),
        ])
        .send()
        .await
        .expect("request");
    let list: Value = resp.json().await.expect("json");
    assert_eq!(ids(&list), expect(&[4]));
}

#[tokio::test]
async fn invalid_queries() {
    let emu = seeded().await;
    let bad = [
        json!("not json"),
        json!({"method": "fly", "attribute": "n", "values": [1]}),
        q("equal", "missing", json!([1])),
        q("equal", "n", json!(["one"])),
        q("equal", "n", json!([])),
        q("equal", "tags", json!(["t1"])),
        q("search", "name", json!(["item"])),
        q("between", "n", json!([1])),
        json!({"method": "limit", "values": [0]}),
        json!({"method": "offset", "values": [-1]}),
        json!({"method": "orderAsc", "attribute": "nope"}),
        json!({"method": "select", "values": ["nope"]}),
    ];
    for query in bad {
        let raw = match &query {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let resp = emu
            .http
            .get(emu.url("/databases/g3/collections/c/documents"))
            .header("X-Appwrite-Project", PROJECT)
            .header("X-Appwrite-Key", KEY)
            .query(&[("queries[]", raw)])
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let e: Value = resp.json().await.expect("json");
        assert_eq!(
            (status, e["type"].as_str()),
            (400, Some("general_query_invalid")),
            "{query}: {e}"
        );
        assert!(
            e["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("Invalid query"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn total_is_capped_at_5000() {
    let emu = Emu::start().await;
    emu.create_db().await;
    emu.create_collection("c", &[], false).await;
    emu.attr("c", "integer", json!({"key": "n", "required": true}))
        .await;
    let emu = std::sync::Arc::new(emu);
    let mut tasks = Vec::new();
    for w in 0..8 {
        let emu = emu.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..5003).step_by(8) {
                let (s, e) = emu
                    .create_doc(&As::Key, "c", &format!("d{i}"), json!({"n": i}), None)
                    .await;
                assert_eq!(s, 201, "{e}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let (_, list) = emu
        .list(&As::Key, "c", &[json!({"method": "limit", "values": [1]})])
        .await;
    assert_eq!(list["total"], 5000);
    let (_, list) = emu
        .list(&As::Key, "c", &[q("lessThan", "n", json!([10]))])
        .await;
    assert_eq!(list["total"], 10);
}

/// Off by default, as real Appwrite answers any query; on, a list no index covers is a 400 that
/// names the collection, the query shape and where to add the index.
#[tokio::test]
async fn require_indexes_refuses_unindexed_list_queries() {
    let by_name = [
        q("equal", "name", json!(["item-1"])),
        json!({"method": "orderDesc", "attribute": "$createdAt"}),
    ];
    let (s, list) = seeded().await.list(&As::Key, "c", &by_name).await;
    assert_eq!(s, 200, "{list}");

    let emu = Emu::start_with(|c| c.require_indexes = true).await;
    emu.create_db().await;
    emu.create_collection("c", &[], false).await;
    emu.attr(
        "c",
        "string",
        json!({"key": "name", "size": 32, "required": true}),
    )
    .await;
    let (s, e) = emu.list(&As::Key, "c", &by_name).await;
    assert_eq!(
        (s, e["type"].as_str()),
        (400, Some("general_query_invalid"))
    );
    let message = e["message"].as_str().expect("message");
    for part in [
        "'c'",
        "equal(name) + orderDesc($createdAt)",
        "(name, $createdAt DESC)",
        "add an index to crates/store/src/schema.rs",
    ] {
        assert!(message.contains(part), "{part} not in: {message}");
    }
    // The primary key serves a plain list; an index in the query's direction serves the rest.
    let (s, list) = emu.list(&As::Key, "c", &[]).await;
    assert_eq!(s, 200, "{list}");
    emu.index(
        "c",
        "by_name_created",
        "key",
        &["name", "$createdAt"],
        &["ASC", "DESC"],
    )
    .await;
    let (s, list) = emu.list(&As::Key, "c", &by_name).await;
    assert_eq!(s, 200, "{list}");
}
