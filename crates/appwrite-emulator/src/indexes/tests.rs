//! The coverage rule on hand-written shapes, and against SQLite itself: every shape the rule
//! calls covered runs on a real collection table without a sort (`USE TEMP B-TREE`), through
//! the same statements `docstore::list` runs.

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode},
};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::*;
use crate::{Config, docstore, query, schema::IndexDef};

fn q(method: &str, attribute: &str, values: Value) -> Query {
    Query {
        method: method.to_owned(),
        attribute: attribute.to_owned(),
        values: values.as_array().cloned().unwrap_or_default(),
    }
}

fn equal(attribute: &str, value: &str) -> Query {
    q("equal", attribute, json!([value]))
}

fn order_desc(attribute: &str) -> Query {
    q("orderDesc", attribute, json!([]))
}

fn order_asc(attribute: &str) -> Query {
    q("orderAsc", attribute, json!([]))
}

fn limit(n: i64) -> Query {
    q("limit", "", json!([n]))
}

fn index(key: &str, kind: &str, attributes: &[(&str, bool)]) -> IndexDef {
    IndexDef {
        key: key.to_owned(),
        kind: kind.to_owned(),
        status: "available".to_owned(),
        error: String::new(),
        attributes: attributes.iter().map(|(a, _)| (*a).to_owned()).collect(),
        orders: attributes
            .iter()
            .map(|(_, desc)| if *desc { "DESC" } else { "ASC" }.to_owned())
            .collect(),
        lengths: Vec::new(),
        created_at: String::new(),
        updated_at: String::new(),
    }
}

/// The feed's collection with the indexes of the emulator test below (no attributes: the rule
/// reads only index definitions).
fn signals(indexes: Vec<IndexDef>) -> CollectionMeta {
    CollectionMeta {
        seq: 1,
        database_id: "g3".to_owned(),
        database_enabled: true,
        id: "signals".to_owned(),
        name: "Signals".to_owned(),
        permissions: Vec::new(),
        document_security: false,
        enabled: true,
        table: "doc_1".to_owned(),
        created_at: String::new(),
        updated_at: String::new(),
        attrs: Vec::new(),
        indexes,
        sql: Default::default(),
    }
}

fn feed_indexes() -> Vec<IndexDef> {
    vec![
        index("by_posted", "key", &[("posted_at", true)]),
        index(
            "by_route",
            "key",
            &[("route_key", false), ("posted_at", true)],
        ),
        index(
            "by_route_side",
            "key",
            &[("side", false), ("route_key", false), ("posted_at", true)],
        ),
        index(
            "by_pair_asc",
            "key",
            &[("pair", false), ("posted_at", false)],
        ),
        index(
            "by_status",
            "key",
            &[("status", false), ("period_end", false)],
        ),
        index(
            "by_name_generation",
            "unique",
            &[("name", false), ("generation", true)],
        ),
        index("by_updated", "key", &[("$updatedAt", true)]),
    ]
}

fn covered_by(queries: &[Query]) -> Option<String> {
    covering_index(&signals(feed_indexes()), &Shape::of(queries))
}

#[test]
fn equality_filters_then_the_order_in_its_direction() {
    let after = q("cursorAfter", "", json!(["s1"]));
    assert_eq!(
        covered_by(&[order_desc("posted_at"), limit(25)]).as_deref(),
        Some("by_posted")
    );
    assert_eq!(
        covered_by(&[
            equal("route_key", "r"),
            order_desc("posted_at"),
            after.clone()
        ])
        .as_deref(),
        Some("by_route")
    );
    // Equality filters match the index's first attributes in any order.
    assert_eq!(
        covered_by(&[
            equal("route_key", "r"),
            equal("side", "long"),
            order_desc("posted_at")
        ])
        .as_deref(),
        Some("by_route_side")
    );
    // cursorBefore reads the same index backwards.
    let before = q("cursorBefore", "", json!(["s1"]));
    assert_eq!(
        covered_by(&[equal("route_key", "r"), order_desc("posted_at"), before]).as_deref(),
        Some("by_route")
    );
    // A range filter on the order attribute rides along.
    assert_eq!(
        covered_by(&[
            equal("name", "bot"),
            q("lessThan", "generation", json!([4])),
            order_desc("generation"),
            limit(1)
        ])
        .as_deref(),
        Some("by_name_generation")
    );
    // Unordered: the equality filters find the rows; or a range on the first attribute.
    assert_eq!(
        covered_by(&[
            q("equal", "status", json!(["active", "cancelled"])),
            q("lessThanEqual", "period_end", json!(["2024-01-01"]))
        ])
        .as_deref(),
        Some("by_status")
    );
    assert_eq!(
        covered_by(&[q("lessThan", "$createdAt", json!(["2024-01-01"])), limit(5)]).as_deref(),
        Some("_created_at")
    );
    // Appwrite's own indexes: the primary key, `_uid`, `_updated_at` (ascending).
    assert_eq!(covered_by(&[limit(100)]).as_deref(), Some("primary key"));
    assert_eq!(
        covered_by(&[order_desc("$sequence")]).as_deref(),
        Some("primary key")
    );
    assert_eq!(
        covered_by(&[
            q("equal", "$id", json!(["a", "b"])),
            order_desc("posted_at")
        ])
        .as_deref(),
        Some("_uid")
    );
    assert_eq!(
        covered_by(&[
            q("greaterThanEqual", "$updatedAt", json!(["2024-01-01"])),
            order_asc("$updatedAt")
        ])
        .as_deref(),
        Some("_updated_at")
    );
    assert_eq!(
        covered_by(&[order_desc("$updatedAt"), limit(1)]).as_deref(),
        Some("by_updated")
    );
}

#[test]
fn shapes_no_index_covers() {
    let uncovered: &[&[Query]] = &[
        // No index starts with side alone.
        &[equal("side", "long"), order_desc("posted_at")],
        // The index is ascending: its tie-breaker order cannot be read backwards.
        &[equal("pair", "BTCUSDT"), order_desc("posted_at")],
        // An equality filter the index lacks: the order would need a sort.
        &[
            equal("route_key", "r"),
            equal("pair", "BTCUSDT"),
            order_desc("posted_at"),
        ],
        // The order must follow the equality filters.
        &[order_desc("route_key")],
        // `_updated_at` is ascending.
        &[equal("route_key", "r"), order_desc("$updatedAt")],
        &[q("isNotNull", "last_error", json!([])), limit(5)],
    ];
    for queries in uncovered {
        let shape = Shape::of(queries);
        assert_eq!(
            covering_index(&signals(feed_indexes()), &shape),
            None,
            "{shape}"
        );
    }
}

#[test]
fn an_uncovered_shape_is_refused_with_what_to_add() {
    let queries = [
        equal("side", "long"),
        order_desc("posted_at"),
        q("cursorAfter", "", json!(["s1"])),
        limit(25),
    ];
    let err = require(&signals(feed_indexes()), &queries).expect_err("no index covers it");
    assert_eq!((err.status, err.kind), (400, "general_query_invalid"));
    for part in [
        "'signals'",
        "equal(side) + orderDesc(posted_at) + cursorAfter",
        "(side, posted_at DESC)",
        "add an index to crates/store/src/schema.rs",
    ] {
        assert!(err.message.contains(part), "{part} not in: {}", err.message);
    }
    require(&signals(feed_indexes()), &queries[1..]).expect("by_posted covers it");
}

// ---------------------------------------------------------------------------------------------
// Against SQLite: the statements `docstore::list` runs, on tables and indexes the routes built.

async fn call(router: &Router, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(format!("/v1{path}"))
        .header("x-appwrite-project", "p")
        .header("x-appwrite-key", "k")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// An emulator with collection `signals` shaped like the product's, its feed indexes, and a few
/// signals (ties on `posted_at` included).
async fn feed_emulator() -> crate::AppState {
    let state = crate::build_state(Config::in_memory("p", "k")).expect("state");
    let router = crate::router(state.clone());
    let base = "/databases/g3/collections/signals";
    let steps = [
        ("/databases", json!({"databaseId": "g3", "name": "g3"})),
        (
            "/databases/g3/collections",
            json!({"collectionId": "signals", "name": "Signals", "permissions": []}),
        ),
        (
            &format!("{base}/attributes/string") as &str,
            json!({"key": "route_key", "size": 64, "required": true}),
        ),
        (
            &format!("{base}/attributes/string"),
            json!({"key": "pair", "size": 32, "required": false}),
        ),
        (
            &format!("{base}/attributes/enum"),
            json!({"key": "side", "elements": ["long", "short"], "required": false}),
        ),
        (
            &format!("{base}/attributes/datetime"),
            json!({"key": "posted_at", "required": true}),
        ),
    ];
    for (path, body) in steps {
        let (status, out) = call(&router, "POST", path, body).await;
        assert!(status.is_success(), "{path}: {out}");
    }
    let feed: [&[&str]; 8] = [
        &[],
        &["route_key"],
        &["pair"],
        &["side"],
        &["route_key", "pair"],
        &["route_key", "side"],
        &["pair", "side"],
        &["route_key", "pair", "side"],
    ];
    for (i, filters) in feed.iter().enumerate() {
        let mut attributes: Vec<&str> = filters.to_vec();
        attributes.push("posted_at");
        let mut orders = vec!["ASC"; filters.len()];
        orders.push("DESC");
        let body = json!({"key": format!("feed{i}"), "type": "key", "attributes": attributes, "orders": orders});
        let (status, out) = call(&router, "POST", &format!("{base}/indexes"), body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{out}");
    }
    let body = json!({"key": "by_updated", "type": "key", "attributes": ["$updatedAt"], "orders": ["DESC"]});
    let (status, out) = call(&router, "POST", &format!("{base}/indexes"), body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{out}");
    for n in 0..12 {
        let data = json!({
            "route_key": format!("r{}", n % 2),
            "pair": if n % 3 == 0 { "BTCUSDT" } else { "ETHUSDT" },
            "side": if n % 2 == 0 { "long" } else { "short" },
            // Pairs of signals share a time: the order of ties is Appwrite's.
            "posted_at": format!("2024-01-01T00:00:{:02}.000+00:00", n / 2),
        });
        let body = json!({"documentId": format!("s{n}"), "data": data});
        let (status, out) = call(&router, "POST", &format!("{base}/documents"), body).await;
        assert_eq!(status, StatusCode::CREATED, "{out}");
    }
    state
}

async fn plan_and_ids(state: &crate::AppState, queries: Vec<Query>) -> (Vec<String>, Vec<String>) {
    let st = state.clone();
    state
        .store
        .call(move |conn| {
            let meta = st.schema.get(conn, "g3", "signals")?;
            let compiled = query::compile(&meta, &queries)?;
            let plan = docstore::explain_page(conn, &meta, &compiled, &None)?;
            let (_, docs) = docstore::list(conn, &meta, &compiled, &None, false)?;
            Ok((plan, docs.into_iter().map(|d| d.id).collect()))
        })
        .await
        .expect("list")
}

#[tokio::test]
async fn feed_shapes_read_their_index_in_order_without_a_sort() {
    let state = feed_emulator().await;
    let meta = state
        .store
        .call({
            let st = state.clone();
            move |conn| st.schema.get(conn, "g3", "signals")
        })
        .await
        .expect("meta");
    let filters: [&[(&str, &str)]; 8] = [
        &[],
        &[("route_key", "r0")],
        &[("pair", "ETHUSDT")],
        &[("side", "long")],
        &[("route_key", "r1"), ("pair", "ETHUSDT")],
        &[("side", "long"), ("route_key", "r0")],
        &[("pair", "BTCUSDT"), ("side", "long")],
        &[("route_key", "r0"), ("side", "long"), ("pair", "ETHUSDT")],
    ];
    for filter in filters {
        for cursor in [None, Some("cursorAfter"), Some("cursorBefore")] {
            let mut queries = vec![order_desc("posted_at"), limit(25)];
            queries.extend(filter.iter().map(|(a, v)| equal(a, v)));
            let (_, all) = plan_and_ids(&state, queries.clone()).await;
            if let Some(method) = cursor {
                queries.push(q(method, "", json!([all[all.len() / 2]])));
            }
            let shape = Shape::of(&queries);
            let index = covering_index(&meta, &shape);
            assert!(index.is_some(), "{shape}: not covered");
            let (plan, _) = plan_and_ids(&state, queries).await;
            assert!(
                plan.iter().all(|p| !p.contains("TEMP B-TREE")),
                "{shape}: {plan:?}"
            );
            assert!(
                plan.iter()
                    .any(|p| p.contains("USING INDEX") && p.contains("_ix_feed")),
                "{shape}: {plan:?}"
            );
            // A cursor page starts reading at the cursor, not at the first row.
            if cursor.is_some() {
                assert!(
                    plan.iter()
                        .any(|p| p.contains("a_posted_at<?") || p.contains("a_posted_at>?")),
                    "{shape}: {plan:?}"
                );
            }
        }
    }
    // The newest change: `$updatedAt` descending, from its own index.
    let (plan, _) = plan_and_ids(&state, vec![order_desc("$updatedAt"), limit(1)]).await;
    assert!(plan.iter().all(|p| !p.contains("TEMP B-TREE")), "{plan:?}");
}

#[tokio::test]
async fn cached_page_statements_are_not_planned_again_for_each_call() {
    let state = feed_emulator().await;
    let st = state.clone();
    let reprepares = state
        .store
        .call(move |conn| {
            let meta = st.schema.get(conn, "g3", "signals")?;
            let mut seen = Vec::new();
            for (route, offset) in [("r0", 0), ("r1", 1), ("r0", 2), ("r1", 0)] {
                let queries = [
                    order_desc("posted_at"),
                    limit(5),
                    equal("route_key", route),
                    q("offset", "", json!([offset])),
                ];
                let compiled = query::compile(&meta, &queries)?;
                let (_, docs) = docstore::list(conn, &meta, &compiled, &None, false)?;
                assert!(!docs.is_empty(), "{route} at {offset}");
                seen.push(docstore::page_reprepares(conn, &meta, &compiled, &None)?);
            }
            Ok(seen)
        })
        .await
        .expect("list");
    // One cached statement served every call, with new values each time, and SQLite never
    // had to plan it again (a bound LIMIT made it re-plan on every call).
    assert_eq!(reprepares, [0, 0, 0, 0]);
}

#[tokio::test]
async fn ties_break_by_sequence_ascending_in_both_directions_and_cursors_agree() {
    let state = feed_emulator().await;
    // s0/s1, s2/s3, ... share `posted_at`: Appwrite orders each pair by `$sequence` ascending,
    // descending order or not.
    let (_, newest) = plan_and_ids(&state, vec![order_desc("posted_at"), limit(4)]).await;
    assert_eq!(newest, ["s10", "s11", "s8", "s9"]);
    let (_, oldest) = plan_and_ids(&state, vec![order_asc("posted_at"), limit(4)]).await;
    assert_eq!(oldest, ["s0", "s1", "s2", "s3"]);

    // Pages after and before any cursor are the slices of the full order around it.
    let (_, all) = plan_and_ids(&state, vec![order_desc("posted_at"), limit(100)]).await;
    assert_eq!(all.len(), 12);
    for (i, id) in all.iter().enumerate() {
        let after = q("cursorAfter", "", json!([id]));
        let (_, page) = plan_and_ids(&state, vec![order_desc("posted_at"), limit(3), after]).await;
        let want: Vec<String> = all.iter().skip(i + 1).take(3).cloned().collect();
        assert_eq!(page, want, "after {id}");
        let before = q("cursorBefore", "", json!([id]));
        let (_, page) = plan_and_ids(&state, vec![order_desc("posted_at"), limit(3), before]).await;
        let want: Vec<String> = all[i.saturating_sub(3)..i].to_vec();
        assert_eq!(page, want, "before {id}");
    }
}
