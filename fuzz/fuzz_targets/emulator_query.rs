//! The Appwrite emulator's query parser from a raw URL query string, as a list request
//! carries it (`queries[]=...&total=false&search=...`).
//!
//! Two paths, both real code of `crates/appwrite-emulator`:
//!
//! - documents: `query::parse_queries` and `query::wants_total`, then `query::compile` against
//!   a collection shaped like the one in tests/documents_queries.rs, and the compiled filter,
//!   order, cursor keyset and paging run on an in-memory SQLite table of that shape, built the
//!   way `docstore::list` builds its statements. The module promises values are always bound
//!   as parameters and identifiers come from the schema, so whatever compiles must also
//!   prepare and run: an SQL error there is a bug (a 500, or worse).
//! - account-side lists: `list_query::ListQuery::from_params`, then `apply` over JSON rows of
//!   mixed types (the in-memory filter, stable sort and cursor paging).
//!
//! Every refusal must be a client error (4xx), never a 5xx.
#![no_main]

use appwrite_emulator::{
    error::ApiError,
    list_query::ListQuery,
    query::{self, Compiled},
    schema::{Attr, CollectionMeta, IndexDef, Kind},
    util,
};
use libfuzzer_sys::fuzz_target;
use rusqlite::{Connection, OptionalExtension, types::Value as SqlValue};
use serde_json::{Value, json};

fn attr(key: &str, kind: Kind, array: bool, status: &str) -> Attr {
    Attr {
        key: key.to_owned(),
        kind,
        required: false,
        array,
        status: status.to_owned(),
        default: Value::Null,
        created_at: "2024-01-01T00:00:00.000+00:00".to_owned(),
        updated_at: "2024-01-01T00:00:00.000+00:00".to_owned(),
    }
}

fn index(key: &str, kind: &str, attribute: &str) -> IndexDef {
    IndexDef {
        key: key.to_owned(),
        kind: kind.to_owned(),
        status: "available".to_owned(),
        error: String::new(),
        attributes: vec![attribute.to_owned()],
        orders: Vec::new(),
        lengths: Vec::new(),
        created_at: "2024-01-01T00:00:00.000+00:00".to_owned(),
        updated_at: "2024-01-01T00:00:00.000+00:00".to_owned(),
    }
}

/// The collection of tests/documents_queries.rs, plus one attribute still being created.
fn meta() -> CollectionMeta {
    CollectionMeta {
        seq: 1,
        database_id: "db".to_owned(),
        database_enabled: true,
        id: "c".to_owned(),
        name: "c".to_owned(),
        permissions: Vec::new(),
        document_security: false,
        enabled: true,
        table: "doc_1".to_owned(),
        created_at: "2024-01-01T00:00:00.000+00:00".to_owned(),
        updated_at: "2024-01-01T00:00:00.000+00:00".to_owned(),
        attrs: vec![
            attr("name", Kind::String { size: 32 }, false, "available"),
            attr("n", Kind::Integer { min: i64::MIN, max: i64::MAX }, false, "available"),
            attr("f", Kind::Float { min: -f64::MAX, max: f64::MAX }, false, "available"),
            attr("b", Kind::Boolean, false, "available"),
            attr("at", Kind::Datetime, false, "available"),
            attr(
                "status",
                Kind::Enum { elements: vec!["live".to_owned(), "deleted".to_owned()] },
                false,
                "available",
            ),
            attr("tags", Kind::String { size: 8 }, true, "available"),
            attr("note", Kind::String { size: 64 }, false, "available"),
            attr("later", Kind::String { size: 8 }, false, "processing"),
        ],
        indexes: vec![index("ft_note", "fulltext", "note"), index("by_status", "key", "status")],
        sql: Default::default(),
    }
}

/// The collection's table as the emulator creates it, with the ten documents of the test.
fn database(meta: &CollectionMeta) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    let t = meta.table_ident();
    conn.execute_batch(&format!(
        "CREATE TABLE {t} (
            _seq INTEGER PRIMARY KEY AUTOINCREMENT,
            _id TEXT NOT NULL UNIQUE,
            _created TEXT NOT NULL,
            _updated TEXT NOT NULL,
            _perms TEXT NOT NULL DEFAULT '[]'
         );"
    ))
    .unwrap();
    for a in &meta.attrs {
        conn.execute_batch(&format!("ALTER TABLE {t} ADD COLUMN {} {}", a.column(), a.sql_type()))
            .unwrap();
    }
    for i in 0..10i64 {
        let at = util::normalize_time(&format!("2024-01-{:02}T00:00:00.000+00:00", 10 + i)).unwrap();
        let note = (i % 4 != 0).then(|| format!("the quick brown fox {i}"));
        conn.execute(
            &format!(
                "INSERT INTO {t} (_id, _created, _updated, {}, {}, {}, {}, {}, {}, {}, {})
                 VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                meta.attr("name").unwrap().column(),
                meta.attr("n").unwrap().column(),
                meta.attr("f").unwrap().column(),
                meta.attr("b").unwrap().column(),
                meta.attr("at").unwrap().column(),
                meta.attr("status").unwrap().column(),
                meta.attr("tags").unwrap().column(),
                meta.attr("note").unwrap().column(),
            ),
            rusqlite::params![
                format!("d{i}"),
                at,
                format!("item-{i}"),
                i,
                i as f64 * 0.5,
                i % 2 == 0,
                at,
                if i < 5 { "live" } else { "deleted" },
                json!([format!("t{}", i % 3), "all"]).to_string(),
                note,
            ],
        )
        .unwrap();
    }
    conn
}

thread_local! {
    static DB: (CollectionMeta, Connection) = {
        let meta = meta();
        let conn = database(&meta);
        (meta, conn)
    };
}

fn client_error(e: &ApiError) {
    assert!(e.status >= 400 && e.status < 500, "a query got a server error: {e}");
}

/// Runs a compiled query the way `docstore::list` does (without the readers filter).
fn run(conn: &Connection, meta: &CollectionMeta, q: &Compiled) {
    let table = meta.table_ident();
    let (filter, params) = if q.filter.is_empty() {
        (String::new(), Vec::new())
    } else {
        (format!("WHERE {}", q.filter), q.params.clone())
    };
    let count = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM {table} t {filter} LIMIT {})",
        query::MAX_COUNT
    );
    let total: i64 = conn
        .prepare(&count)
        .unwrap_or_else(|e| panic!("{e}: {count}"))
        .query_row(rusqlite::params_from_iter(params.iter()), |r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}: {count} {params:?}"));
    assert!((0..=query::MAX_COUNT).contains(&total));

    let mut orders = q.orders.clone();
    let mut conditions = if q.filter.is_empty() { Vec::new() } else { vec![q.filter.clone()] };
    let mut page_params = params;
    if let Some((cursor_id, after)) = &q.cursor {
        if !after {
            for o in &mut orders {
                o.1 = !o.1;
            }
        }
        let cols: Vec<&str> = orders.iter().map(|(c, _)| c.as_str()).collect();
        let sql = format!("SELECT {} FROM {table} t WHERE t._id = ?1", cols.join(", "));
        let values = conn
            .prepare(&sql)
            .unwrap_or_else(|e| panic!("{e}: {sql}"))
            .query_row([cursor_id], |r| {
                (0..cols.len()).map(|i| r.get::<_, SqlValue>(i)).collect::<rusqlite::Result<Vec<_>>>()
            })
            .optional()
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
        match values {
            // Not found, or a null order value: the emulator answers 400 before paging.
            None => return,
            Some(v) if v.iter().any(|x| matches!(x, SqlValue::Null)) => return,
            Some(v) => conditions.push(query::keyset(&orders, &v, &mut page_params)),
        }
    }
    let order_sql: Vec<String> = orders
        .iter()
        .map(|(c, d)| format!("{c} {}", if *d { "DESC" } else { "ASC" }))
        .collect();
    let sql = format!(
        "SELECT t._seq FROM {table} t {} ORDER BY {} LIMIT ? OFFSET ?",
        if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) },
        order_sql.join(", ")
    );
    page_params.push(SqlValue::Integer(q.limit));
    page_params.push(SqlValue::Integer(q.offset));
    let mut stmt = conn.prepare(&sql).unwrap_or_else(|e| panic!("{e}: {sql}"));
    let rows: Vec<i64> = stmt
        .query_map(rusqlite::params_from_iter(page_params.iter()), |r| r.get(0))
        .and_then(|rows| rows.collect())
        .unwrap_or_else(|e| panic!("{e}: {sql} {page_params:?}"));
    assert!(rows.len() as i64 <= q.limit);
}

fn documents(params: &[(String, String)]) {
    let queries = match query::parse_queries(params) {
        Ok(q) => q,
        Err(e) => return client_error(&e),
    };
    if let Err(e) = query::wants_total(params) {
        client_error(&e);
    }
    DB.with(|(meta, conn)| {
        let compiled = match query::compile(meta, &queries) {
            Ok(c) => c,
            Err(e) => return client_error(&e),
        };
        assert!(compiled.limit >= 1 && compiled.offset >= 0);
        assert_eq!(compiled.orders.len(), compiled.order_names.len());
        assert!(compiled.orders.iter().any(|(c, _)| c == "t._seq"), "no tie-breaker");
        run(conn, meta, &compiled);
    });
}

/// Rows of mixed shapes, as the account-side lists hold (users, teams, files...).
fn rows() -> Vec<Value> {
    vec![
        json!({"$id": "u1", "name": "Ann", "email": "ann@x.io", "status": true, "labels": ["vip"], "n": 3, "$createdAt": "2024-01-01T00:00:00.000+00:00"}),
        json!({"$id": "u2", "name": "bob", "email": "", "status": false, "labels": [], "n": 2.5, "$createdAt": "2024-01-02T00:00:00.000+00:00"}),
        json!({"$id": "u3", "name": null, "status": true, "labels": ["a", "vip"], "n": "7", "$createdAt": "2024-01-03T00:00:00.000+00:00"}),
        json!({"key": "k4", "name": "Émile", "email": "e@x.io", "labels": "vip", "n": null}),
        json!({"$id": "u5", "name": ["x", 1], "email": {"a": 1}, "status": "yes", "n": -1, "$createdAt": "2023-12-31T00:00:00.000+00:00"}),
        json!({"$id": "u6", "name": "Ann", "email": "ann@x.io", "status": true, "labels": ["vip"], "n": 18446744073709551615u64}),
    ]
}

fn account(params: &[(String, String)]) {
    let allowed = ["name", "email", "status", "labels", "n"];
    let list = match ListQuery::from_params(params, &allowed) {
        Ok(l) => l,
        Err(e) => return client_error(&e),
    };
    let _ = list.single_equal("name");
    match list.apply(rows(), &["name", "email"]) {
        Ok((total, page)) => assert!(total <= 5000 && page.len() <= 6),
        Err(e) => client_error(&e),
    }
}

fuzz_target!(|data: &[u8]| {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(data).into_owned().collect();
    documents(&params);
    account(&params);
});
