//! The REST client against small axum fakes: retries and their limits, timeouts, headers,
//! query encoding, documents (create-if-absent, paging), chunked uploads and ranged reads.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use common::*;
use g3_appwrite::{
    ByteRange, CHUNK_SIZE, Error, ErrorKind, Id, Permission, Query, RetryPolicy, Role,
    SessionSecret, UploadFile, Upserted,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const TS: &str = "2024-05-01T12:34:56.789+00:00";

fn api_error(status: u16, kind: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        Json(json!({"message": format!("fake {kind}"), "code": status, "type": kind, "version": "1.8.1"})),
    )
        .into_response()
}

fn doc(id: &str, data: &Value) -> Value {
    let mut d = json!({
        "$id": id, "$sequence": 1, "$collectionId": "signals", "$databaseId": "g3",
        "$createdAt": TS, "$updatedAt": TS, "$permissions": [],
    });
    if let (Some(obj), Some(extra)) = (d.as_object_mut(), data.as_object()) {
        obj.extend(extra.clone());
    }
    d
}

fn user(id: &str, email: &str) -> Value {
    json!({"$id": id, "$createdAt": TS, "$updatedAt": TS, "name": "", "registration": TS,
        "status": true, "labels": [], "passwordUpdate": "", "email": email, "phone": "",
        "emailVerification": false, "phoneVerification": false, "mfa": false, "prefs": {},
        "targets": [], "accessedAt": ""})
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Signal {
    pair: String,
    revision: i64,
}

/// Status, extra headers, JSON body.
type Scripted = (u16, Vec<(&'static str, &'static str)>, Value);

/// A route that answers with `responses[n]` on its n-th call (the last one repeats).
fn scripted(path: &str, responses: Vec<Scripted>) -> (Router, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let responses = Arc::new(responses);
    let handler = move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let responses = responses.clone();
        async move {
            let (status, headers, body) = responses[n.min(responses.len() - 1)].clone();
            let mut resp = (StatusCode::from_u16(status).unwrap(), Json(body)).into_response();
            for (k, v) in headers {
                resp.headers_mut().insert(k, v.parse().unwrap());
            }
            resp
        }
    };
    let router = Router::new().route(path, get(handler.clone()).post(handler));
    (router, calls)
}

const DOC_PATH: &str = "/v1/databases/g3/collections/signals/documents/{id}";
const DOCS_PATH: &str = "/v1/databases/g3/collections/signals/documents";

#[tokio::test]
async fn retries_503_twice_then_succeeds() {
    let unavailable = json!({"message": "down", "code": 503, "type": "general_server_error"});
    let ok = doc("s1", &json!({"pair": "BTCUSDT", "revision": 1}));
    let (router, calls) = scripted(
        DOC_PATH,
        vec![
            (503, vec![], unavailable.clone()),
            (503, vec![], unavailable),
            (200, vec![], ok),
        ],
    );
    let addr = serve(router).await;
    let got = client(addr, fast_retry(4))
        .documents("g3", "signals")
        .get::<Signal>("s1")
        .await
        .unwrap();
    assert_eq!(got.data.pair, "BTCUSDT");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let (router, calls) = scripted(DOC_PATH, vec![(503, vec![], json!({"message": "down"}))]);
    let addr = serve(router).await;
    let err = client(addr, fast_retry(3))
        .documents("g3", "signals")
        .get::<Signal>("s1")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(err.is_retryable());
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let (router, calls) = scripted(DOC_PATH, vec![(503, vec![], json!({}))]);
    let addr = serve(router).await;
    let _ = client(addr, RetryPolicy::none())
        .documents("g3", "signals")
        .get::<Signal>("s1")
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let limited =
        json!({"message": "slow down", "code": 429, "type": "general_rate_limit_exceeded"});
    let (router, calls) = scripted(
        DOC_PATH,
        vec![
            (429, vec![("retry-after", "1")], limited),
            (200, vec![], doc("s1", &json!({"pair": "X", "revision": 0}))),
        ],
    );
    let addr = serve(router).await;
    let start = Instant::now();
    client(addr, fast_retry(3))
        .documents("g3", "signals")
        .get::<Signal>("s1")
        .await
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "Retry-After ignored"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn non_idempotent_creates_are_not_retried_blindly() {
    let down = json!({"message": "down", "code": 503, "type": "general_server_error"});
    let data = Signal {
        pair: "BTC".into(),
        revision: 1,
    };

    // unique(): a 503 may hide a document that was created; do not send it again.
    let (router, calls) = scripted(DOCS_PATH, vec![(503, vec![], down.clone())]);
    let addr = serve(router).await;
    let err = client(addr, fast_retry(4))
        .documents("g3", "signals")
        .create(Id::unique(), &data, None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Our own id: repeating is safe (409 would mean done).
    let (router, calls) = scripted(DOCS_PATH, vec![(503, vec![], down)]);
    let addr = serve(router).await;
    let _ = client(addr, fast_retry(4))
        .documents("g3", "signals")
        .create("sig-1", &data, None)
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 4);

    // A rate-limited unique() create was rejected before acting: retried.
    let (router, calls) = scripted(
        DOCS_PATH,
        vec![
            (
                429,
                vec![],
                json!({"message": "slow", "type": "general_rate_limit_exceeded"}),
            ),
            (
                201,
                vec![],
                doc("gen1", &json!({"pair": "BTC", "revision": 1})),
            ),
        ],
    );
    let addr = serve(router).await;
    let created = client(addr, fast_retry(4))
        .documents("g3", "signals")
        .create(Id::unique(), &data, None)
        .await
        .unwrap();
    assert_eq!(created.id, "gen1");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connection_refused_then_server_comes_up() {
    let addr = free_addr();
    let c = client(addr, RetryPolicy::none());
    let err = c.ping().await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(err.is_retryable());

    let c = client(
        addr,
        RetryPolicy {
            max_attempts: 200,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
        },
    );
    let (task, mut retried) = spawn_observed("retrying appwrite call", async move {
        c.documents("g3", "signals").get::<Signal>("s1").await
    });
    within(5, retried.recv()).await.unwrap();
    let (router, _) = scripted(
        DOC_PATH,
        vec![(200, vec![], doc("s1", &json!({"pair": "P", "revision": 3})))],
    );
    serve_on(addr, router).await;
    let got = within(10, task).await.unwrap().unwrap();
    assert_eq!(got.data.revision, 3);
}

#[tokio::test]
async fn stalled_server_times_out() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = Router::new().route(
        DOC_PATH,
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<Response>()
        }),
    );
    let addr = serve(router).await;
    let c = client_with_timeout(addr, fast_retry(2), Duration::from_millis(200));
    let err = within(5, c.documents("g3", "signals").get::<Signal>("s1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn proxy_pages_become_api_errors() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = Router::new().route(
        DOC_PATH,
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async {
                (
                    StatusCode::BAD_GATEWAY,
                    [("content-type", "text/html")],
                    "<html>Bad Gateway</html>",
                )
            }
        }),
    );
    let addr = serve(router).await;
    let err = client(addr, fast_retry(2))
        .documents("g3", "signals")
        .get::<Signal>("s1")
        .await
        .unwrap_err();
    match &err {
        Error::Api {
            status,
            kind,
            message,
        } => {
            assert_eq!(*status, 502);
            assert_eq!(*kind, ErrorKind::Unknown);
            assert!(message.contains("Bad Gateway"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // A 200 with a body that is not the expected JSON is a decode error, not a panic.
    let (router, _) = scripted(DOC_PATH, vec![(200, vec![], json!({"unexpected": true}))]);
    let addr = serve(router).await;
    let err = client(addr, RetryPolicy::none())
        .documents("g3", "signals")
        .get::<Signal>("s1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Decode {
                what: "document",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn sends_appwrite_headers_and_never_key_with_session() {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let store = seen.clone();
    let handler = move |headers: HeaderMap| {
        store.lock().unwrap().push(headers);
        async { Json(user("u1", "a@b.c")) }
    };
    let router = Router::new()
        .route("/v1/users/{id}", get(handler.clone()))
        .route("/v1/account", get(handler));
    let addr = serve(router).await;
    let c = client(addr, RetryPolicy::none());
    c.users().get("u1").await.unwrap();
    let me = c
        .with_session(&SessionSecret::new("sess-secret"))
        .account()
        .get()
        .await
        .unwrap();
    assert_eq!(me.email, "a@b.c");

    let seen = seen.lock().unwrap();
    let key_req = &seen[0];
    assert_eq!(key_req["x-appwrite-project"], PROJECT);
    assert_eq!(key_req["x-appwrite-key"], KEY);
    assert_eq!(key_req["x-appwrite-response-format"], "1.8.0");
    assert!(key_req.get("x-appwrite-session").is_none());
    let session_req = &seen[1];
    assert_eq!(session_req["x-appwrite-session"], "sess-secret");
    assert_eq!(session_req["x-appwrite-project"], PROJECT);
    assert!(session_req.get("x-appwrite-key").is_none());
}

#[tokio::test]
async fn queries_go_as_repeated_json_parameters() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let store = seen.clone();
    let router = Router::new().route(
        "/v1/users",
        get(move |RawQuery(q): RawQuery| {
            store.lock().unwrap().push(q.unwrap_or_default());
            async { Json(json!({"total": 1, "users": [user("u1", "a+b@c.d")]})) }
        }),
    );
    let addr = serve(router).await;
    let found = client(addr, RetryPolicy::none())
        .users()
        .find_by_email(" A+B@C.d ")
        .await
        .unwrap();
    assert_eq!(found.unwrap().id, "u1");
    let raw = seen.lock().unwrap()[0].clone();
    assert!(raw.starts_with("queries%5B%5D="), "{raw}");
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(
        pairs,
        vec![
            (
                "queries[]".to_owned(),
                r#"{"method":"equal","attribute":"email","values":["a+b@c.d"]}"#.to_owned()
            ),
            (
                "queries[]".to_owned(),
                r#"{"method":"limit","values":[1]}"#.to_owned()
            ),
        ]
    );
}

/// An in-memory documents collection: enough of Appwrite to test idempotent writes and paging.
#[derive(Clone, Default)]
struct FakeDocs {
    docs: Arc<Mutex<BTreeMap<String, Value>>>,
    bodies: Arc<Mutex<Vec<Value>>>,
}

async fn fake_docs() -> (std::net::SocketAddr, FakeDocs) {
    async fn create(State(s): State<FakeDocs>, Json(body): Json<Value>) -> Response {
        s.bodies.lock().unwrap().push(body.clone());
        let mut docs = s.docs.lock().unwrap();
        let mut id = body["documentId"].as_str().unwrap_or_default().to_owned();
        if id == "unique()" {
            id = format!("gen{}", docs.len());
        }
        if docs.contains_key(&id) {
            return api_error(409, "document_already_exists");
        }
        let d = doc(&id, &body["data"]);
        docs.insert(id, d.clone());
        (StatusCode::CREATED, Json(d)).into_response()
    }
    async fn read(State(s): State<FakeDocs>, Path(id): Path<String>) -> Response {
        match s.docs.lock().unwrap().get(&id) {
            Some(d) => Json(d.clone()).into_response(),
            None => api_error(404, "document_not_found"),
        }
    }
    async fn remove(State(s): State<FakeDocs>, Path(id): Path<String>) -> Response {
        match s.docs.lock().unwrap().remove(&id) {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => api_error(404, "document_not_found"),
        }
    }
    async fn upsert(
        State(s): State<FakeDocs>,
        Path(id): Path<String>,
        Json(body): Json<Value>,
    ) -> Response {
        let d = doc(&id, &body["data"]);
        s.docs.lock().unwrap().insert(id, d.clone());
        Json(d).into_response()
    }
    async fn patch(
        State(s): State<FakeDocs>,
        Path(id): Path<String>,
        Json(body): Json<Value>,
    ) -> Response {
        let mut docs = s.docs.lock().unwrap();
        let Some(d) = docs.get_mut(&id) else {
            return api_error(404, "document_not_found");
        };
        if let (Some(obj), Some(patch)) = (d.as_object_mut(), body["data"].as_object()) {
            obj.extend(patch.clone());
        }
        Json(d.clone()).into_response()
    }
    async fn list(State(s): State<FakeDocs>, RawQuery(q): RawQuery) -> Response {
        let mut limit = 25;
        let mut after: Option<String> = None;
        for (k, v) in url::form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
            assert_eq!(k, "queries[]");
            let q: Value = serde_json::from_str(&v).unwrap();
            match q["method"].as_str().unwrap() {
                "limit" => limit = q["values"][0].as_u64().unwrap() as usize,
                "cursorAfter" => after = Some(q["values"][0].as_str().unwrap().to_owned()),
                other => panic!("unexpected query {other}"),
            }
        }
        let docs = s.docs.lock().unwrap();
        let page: Vec<Value> = docs
            .iter()
            .filter(|(id, _)| after.as_ref().is_none_or(|a| *id > a))
            .take(limit)
            .map(|(_, d)| d.clone())
            .collect();
        Json(json!({"total": docs.len(), "documents": page})).into_response()
    }
    let state = FakeDocs::default();
    let router = Router::new()
        .route(DOCS_PATH, post(create).get(list))
        .route(DOC_PATH, get(read).delete(remove).put(upsert).patch(patch))
        .with_state(state.clone());
    (serve(router).await, state)
}

#[tokio::test]
async fn documents_lifecycle_and_create_if_absent() {
    let (addr, fake) = fake_docs().await;
    let docs = client(addr, RetryPolicy::none()).documents("g3", "signals");
    let s = Signal {
        pair: "BTCUSDT".into(),
        revision: 1,
    };
    let perms = [
        Permission::read(Role::team("paid")),
        Permission::read(Role::team("staff")),
    ];

    let first = docs
        .create_if_absent("100", &s, Some(&perms))
        .await
        .unwrap();
    assert!(first.was_created());
    assert_eq!(
        fake.bodies.lock().unwrap()[0],
        json!({"documentId": "100", "data": {"pair": "BTCUSDT", "revision": 1},
            "permissions": ["read(\"team:paid\")", "read(\"team:staff\")"]})
    );
    let other = Signal {
        pair: "ETHUSDT".into(),
        revision: 9,
    };
    match docs.create_if_absent("100", &other, None).await.unwrap() {
        Upserted::Existed(d) => assert_eq!(d.data, s),
        Upserted::Created(_) => panic!("created twice"),
    }
    assert!(
        docs.create("100", &s, None)
            .await
            .unwrap_err()
            .is_conflict()
    );
    assert!(matches!(
        docs.create("bad id!", &s, None).await,
        Err(Error::InvalidInput(_))
    ));

    let patched: g3_appwrite::Document<Signal> = docs
        .update("100", &json!({"revision": 2}), None)
        .await
        .unwrap();
    assert_eq!(patched.data.revision, 2);
    let upserted = docs.upsert("101", &other, None).await.unwrap();
    assert_eq!(upserted.data, other);

    assert!(docs.delete_if_exists("100").await.unwrap());
    assert!(!docs.delete_if_exists("100").await.unwrap());
    assert!(docs.get::<Signal>("100").await.unwrap_err().is_not_found());
    assert!(docs.get_optional::<Signal>("100").await.unwrap().is_none());
    assert!(docs.delete("100").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn list_all_pages_with_cursor_after() {
    let (addr, _fake) = fake_docs().await;
    let docs = client(addr, RetryPolicy::none()).documents("g3", "signals");
    for i in 0..23 {
        let s = Signal {
            pair: format!("P{i}"),
            revision: i,
        };
        docs.create(format!("d{i:03}"), &s, None).await.unwrap();
    }
    let all = docs.list_all::<Signal>(&[], 5).await.unwrap();
    assert_eq!(all.len(), 23);
    let ids: Vec<_> = all.iter().map(|d| d.id.clone()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "no duplicates, in cursor order");
    let page = docs.list::<Signal>(&[Query::limit(3)]).await.unwrap();
    assert_eq!((page.total, page.documents.len()), (23, 3));
    assert!(matches!(
        docs.list_all::<Signal>(&[Query::limit(3)], 5).await,
        Err(Error::InvalidInput(_))
    ));
}

#[derive(Debug, Clone)]
struct Chunk {
    content_range: Option<String>,
    upload_id: Option<String>,
    file_id: String,
    permissions: Vec<String>,
    file_name: String,
    len: usize,
}

#[tokio::test]
async fn uploads_large_files_in_chunks() {
    let chunks: Arc<Mutex<Vec<Chunk>>> = Arc::default();
    let store = chunks.clone();
    let router = Router::new()
        .route(
            "/v1/storage/buckets/{bucket}/files",
            post(move |headers: HeaderMap, mut form: Multipart| {
                let store = store.clone();
                async move {
                    let mut chunk = Chunk {
                        content_range: headers.get("content-range").map(|v| v.to_str().unwrap().to_owned()),
                        upload_id: headers.get("x-appwrite-id").map(|v| v.to_str().unwrap().to_owned()),
                        file_id: String::new(),
                        permissions: vec![],
                        file_name: String::new(),
                        len: 0,
                    };
                    while let Some(field) = form.next_field().await.unwrap() {
                        match field.name().unwrap() {
                            "fileId" => chunk.file_id = field.text().await.unwrap(),
                            "permissions[]" => chunk.permissions.push(field.text().await.unwrap()),
                            "file" => {
                                chunk.file_name = field.file_name().unwrap().to_owned();
                                chunk.len = field.bytes().await.unwrap().len();
                            }
                            other => panic!("unexpected field {other}"),
                        }
                    }
                    let id = chunk.upload_id.clone().unwrap_or_else(|| {
                        if chunk.file_id == "unique()" { "generated".into() } else { chunk.file_id.clone() }
                    });
                    let n = {
                        let mut all = store.lock().unwrap();
                        all.push(chunk.clone());
                        all.len()
                    };
                    Json(json!({"$id": id, "bucketId": "assets", "$createdAt": TS, "$updatedAt": TS,
                        "$permissions": [], "name": chunk.file_name, "signature": "", "mimeType": "image/png",
                        "sizeOriginal": 0, "chunksTotal": 3, "chunksUploaded": n}))
                }
            }),
        )
        .layer(DefaultBodyLimit::max(8 * 1024 * 1024));
    let addr = serve(router).await;
    let storage = client(addr, RetryPolicy::none()).storage();

    let size = 12 * 1024 * 1024;
    let data = Bytes::from(vec![7u8; size]);
    let file = UploadFile {
        name: "chart.png".into(),
        content_type: "image/png".into(),
        data,
    };
    let perms = [Permission::read(Role::team("paid"))];
    let uploaded = storage
        .create_file("assets", Id::unique(), file.clone(), Some(&perms))
        .await
        .unwrap();
    assert_eq!(uploaded.id, "generated");
    assert_eq!(uploaded.chunks_uploaded, 3);
    {
        let got = chunks.lock().unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0].content_range.as_deref(),
            Some("bytes 0-5242879/12582912")
        );
        assert_eq!(
            got[1].content_range.as_deref(),
            Some("bytes 5242880-10485759/12582912")
        );
        assert_eq!(
            got[2].content_range.as_deref(),
            Some("bytes 10485760-12582911/12582912")
        );
        assert_eq!(got[0].upload_id, None);
        assert_eq!(got[1].upload_id.as_deref(), Some("generated"));
        assert_eq!(got[2].upload_id.as_deref(), Some("generated"));
        assert_eq!(got.iter().map(|c| c.len).sum::<usize>(), size);
        assert_eq!(got[0].len as u64, CHUNK_SIZE);
        assert!(
            got.iter()
                .all(|c| c.permissions == vec![r#"read("team:paid")"#.to_owned()])
        );
        assert!(got.iter().all(|c| c.file_name == "chart.png"));
    }

    chunks.lock().unwrap().clear();
    let small = UploadFile {
        data: Bytes::from_static(b"tiny"),
        ..file
    };
    let uploaded = storage
        .create_file("assets", "img-1", small, None)
        .await
        .unwrap();
    assert_eq!(uploaded.id, "img-1");
    let got = chunks.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].content_range, None);
    assert_eq!(got[0].len, 4);
}

#[tokio::test]
async fn reads_file_content_with_ranges() {
    const CONTENT: &[u8] = b"0123456789abcdef";
    let router = Router::new().route(
        "/v1/storage/buckets/{bucket}/files/{id}/{kind}",
        get(
            |Path((_, _, kind)): Path<(String, String, String)>, headers: HeaderMap| async move {
                assert!(kind == "view" || kind == "download");
                let Some(range) = headers.get("range") else {
                    return ([("content-type", "image/png")], CONTENT).into_response();
                };
                let spec = range.to_str().unwrap().strip_prefix("bytes=").unwrap();
                let (a, b) = spec.split_once('-').unwrap();
                let a: usize = a.parse().unwrap();
                let b: usize = if b.is_empty() {
                    CONTENT.len() - 1
                } else {
                    b.parse().unwrap()
                };
                (
                    StatusCode::PARTIAL_CONTENT,
                    [
                        ("content-type", "image/png".to_owned()),
                        ("content-range", format!("bytes {a}-{b}/{}", CONTENT.len())),
                    ],
                    CONTENT[a..=b].to_vec(),
                )
                    .into_response()
            },
        ),
    );
    let addr = serve(router).await;
    let storage = client(addr, RetryPolicy::none()).storage();
    let whole = storage.view("assets", "f1", None).await.unwrap();
    assert_eq!((whole.status, whole.bytes.as_ref()), (200, CONTENT));
    assert_eq!(whole.content_type.as_deref(), Some("image/png"));
    let part = storage
        .download(
            "assets",
            "f1",
            Some(ByteRange {
                start: 2,
                end: Some(5),
            }),
        )
        .await
        .unwrap();
    assert_eq!((part.status, part.bytes.as_ref()), (206, &b"2345"[..]));
    let cr = part.content_range.unwrap();
    assert_eq!((cr.range, cr.size), (Some((2, 5)), Some(16)));
    let tail = storage
        .view(
            "assets",
            "f1",
            Some(ByteRange {
                start: 14,
                end: None,
            }),
        )
        .await
        .unwrap();
    assert_eq!(tail.bytes.as_ref(), b"ef");
}

#[tokio::test]
async fn ping_and_version() {
    let router = Router::new()
        .route("/v1/ping", get(|| async { "Pong!" }))
        .route(
            "/v1/health/version",
            get(|| async { Json(json!({"version": "1.8.1"})) }),
        );
    let addr = serve(router).await;
    let c = client(addr, RetryPolicy::none());
    let latency = c.ping().await.unwrap();
    assert!(latency < Duration::from_secs(5));
    assert_eq!(c.version().await.unwrap(), "1.8.1");
}
