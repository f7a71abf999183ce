//! Storage over HTTP: buckets, small and chunked uploads, size and extension limits, view and
//! download with ranges, permission checks for sessions, and bytes kept on disk.

#[path = "account_support/mod.rs"]
mod support;

use std::time::Duration;

use appwrite_emulator::Config;
use reqwest::{
    Method, RequestBuilder, StatusCode,
    multipart::{Form, Part},
};
use serde_json::{Value, json};
use support::*;

const MIB: usize = 1024 * 1024;

fn form(file_id: &str, name: &str, data: Vec<u8>, permissions: &[&str]) -> Form {
    let mut form = Form::new()
        .text("fileId", file_id.to_owned())
        .part("file", Part::bytes(data).file_name(name.to_owned()));
    for p in permissions {
        form = form.text("permissions[]", (*p).to_owned());
    }
    form
}

async fn bucket(app: &TestApp, body: Value) -> Value {
    let (s, b) = send(app.key(Method::POST, "/storage/buckets").json(&body)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b
}

async fn upload(
    req: RequestBuilder,
    file_id: &str,
    name: &str,
    data: Vec<u8>,
) -> (StatusCode, Value) {
    send(req.multipart(form(file_id, name, data, &[]))).await
}

#[tokio::test]
async fn buckets_crud() {
    let app = TestApp::spawn().await;
    let b = bucket(&app, json!({"bucketId": "signal_assets", "name": "Assets", "permissions": ["read(\"team:paid\")"], "maximumFileSize": 1000, "allowedFileExtensions": ["png", ".JPG"]})).await;
    assert_fields(&b, BUCKET_FIELDS);
    assert_eq!(b["allowedFileExtensions"], json!(["png", "jpg"]));
    assert_eq!(b["$permissions"], json!(["read(\"team:paid\")"]));
    assert_eq!(b["enabled"], true);
    let (s, e) = send(
        app.key(Method::POST, "/storage/buckets")
            .json(&json!({"bucketId": "signal_assets", "name": "x"})),
    )
    .await;
    assert_error(s, &e, 409, "storage_bucket_already_exists");
    let (s, e) = send(
        app.key(Method::POST, "/storage/buckets")
            .json(&json!({"bucketId": "b2", "name": "x", "permissions": ["fly(\"any\")"]})),
    )
    .await;
    assert_error(s, &e, 400, "general_argument_invalid");

    let (s, list) = send(app.key(Method::GET, "/storage/buckets")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["total"], 1);
    let (s, upd) = send(
        app.key(Method::PUT, "/storage/buckets/signal_assets")
            .json(&json!({"name": "Renamed", "fileSecurity": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{upd}");
    assert_eq!(upd["name"], "Renamed");
    assert_eq!(upd["fileSecurity"], true);
    assert_eq!(upd["maximumFileSize"], 1000, "omitted fields are kept");
    let (_, got) = send(app.key(Method::GET, "/storage/buckets/signal_assets")).await;
    assert_eq!(got["name"], "Renamed");

    let (s, e) = send(app.guest(Method::GET, "/storage/buckets")).await;
    assert_error(s, &e, 401, "general_unauthorized_scope");
    let (s, _) = send(app.key(Method::DELETE, "/storage/buckets/signal_assets")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e) = send(app.key(Method::GET, "/storage/buckets/signal_assets")).await;
    assert_error(s, &e, 404, "storage_bucket_not_found");
}

#[tokio::test]
async fn small_upload_view_download_and_ranges() {
    let app = TestApp::with_state().await;
    let mut events = app.state.as_ref().unwrap().events.subscribe();
    bucket(&app, json!({"bucketId": "docs", "name": "Docs"})).await;
    let text = b"hello, range world".to_vec();
    let (s, file) = upload(
        app.key(Method::POST, "/storage/buckets/docs/files"),
        "note",
        "note.txt",
        text.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{file}");
    assert_fields(&file, FILE_FIELDS);
    assert_eq!(file["sizeOriginal"], text.len());
    assert_eq!(file["chunksTotal"], 1);
    assert_eq!(file["chunksUploaded"], 1);
    assert_eq!(file["mimeType"], "text/plain");
    assert_eq!(file["signature"].as_str().unwrap().len(), 32);

    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("event")
        .expect("bus");
    assert_eq!(event.events[0], "buckets.docs.files.note.create");
    assert!(event.channels.contains(&"files".to_owned()));
    assert!(event.channels.contains(&"buckets.docs.files".to_owned()));

    let (s, e) = upload(
        app.key(Method::POST, "/storage/buckets/docs/files"),
        "note",
        "note.txt",
        text.clone(),
    )
    .await;
    assert_error(s, &e, 409, "storage_file_already_exists");
    let (s, e) = upload(
        app.key(Method::POST, "/storage/buckets/nope/files"),
        "x",
        "x.txt",
        text.clone(),
    )
    .await;
    assert_error(s, &e, 404, "storage_bucket_not_found");

    let resp = app
        .key(Method::GET, "/storage/buckets/docs/files/note/view")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/plain");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), text.as_slice());

    let resp = app
        .key(Method::GET, "/storage/buckets/docs/files/note/download")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-disposition"],
        "attachment; filename=\"note.txt\""
    );

    let resp = app
        .key(Method::GET, "/storage/buckets/docs/files/note/view")
        .header("range", "bytes=7-11")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        resp.headers()["content-range"],
        format!("bytes 7-11/{}", text.len())
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"range");
    let resp = app
        .key(Method::GET, "/storage/buckets/docs/files/note/download")
        .header("range", "bytes=1000-")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        resp.headers()["content-range"],
        format!("bytes */{}", text.len())
    );
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["type"], "storage_invalid_range");

    let (_, list) = send(app.key(Method::GET, "/storage/buckets/docs/files")).await;
    assert_eq!(list["total"], 1);
    let (s, upd) = send(
        app.key(Method::PUT, "/storage/buckets/docs/files/note")
            .json(&json!({"name": "renamed.txt", "permissions": ["read(\"any\")"]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{upd}");
    assert_eq!(upd["name"], "renamed.txt");
    assert_eq!(upd["$permissions"], json!(["read(\"any\")"]));

    let (s, _) = send(app.key(Method::DELETE, "/storage/buckets/docs/files/note")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, e) = send(app.key(Method::GET, "/storage/buckets/docs/files/note")).await;
    assert_error(s, &e, 404, "storage_file_not_found");
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("event")
        .expect("bus");
    assert_eq!(event.events[0], "buckets.docs.files.note.delete");
}

#[tokio::test]
async fn size_and_extension_limits() {
    let app = TestApp::spawn().await;
    bucket(&app, json!({"bucketId": "imgs", "name": "Images", "maximumFileSize": 100, "allowedFileExtensions": ["png"]})).await;
    let (s, e) = upload(
        app.key(Method::POST, "/storage/buckets/imgs/files"),
        "big",
        "big.png",
        vec![1u8; 101],
    )
    .await;
    assert_error(s, &e, 400, "storage_invalid_file_size");
    let (s, e) = upload(
        app.key(Method::POST, "/storage/buckets/imgs/files"),
        "doc",
        "doc.exe",
        vec![1u8; 10],
    )
    .await;
    assert_error(s, &e, 400, "storage_file_type_unsupported");
    let png = b"\x89PNG\r\n\x1a\nfake image".to_vec();
    let (s, f) = upload(
        app.key(Method::POST, "/storage/buckets/imgs/files"),
        "unique()",
        "Pic.PNG",
        png,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{f}");
    assert_eq!(f["mimeType"], "image/png");
}

/// Sends `data` the way the SDKs do: 5 MiB chunks, `Content-Range`, then `x-appwrite-id`.
async fn chunked_upload(app: &TestApp, bucket: &str, name: &str, data: &[u8]) -> Vec<Value> {
    let chunk = 5 * MIB;
    let mut responses = Vec::new();
    let mut id: Option<String> = None;
    for (i, piece) in data.chunks(chunk).enumerate() {
        let start = i * chunk;
        let end = start + piece.len() - 1;
        let mut req = app
            .key(Method::POST, &format!("/storage/buckets/{bucket}/files"))
            .header(
                "content-range",
                format!("bytes {start}-{end}/{}", data.len()),
            );
        if let Some(id) = &id {
            req = req.header("x-appwrite-id", id);
        }
        let (s, b) = send(req.multipart(form("unique()", name, piece.to_vec(), &[]))).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        id = Some(b["$id"].as_str().unwrap().to_owned());
        responses.push(b);
    }
    responses
}

#[tokio::test]
async fn chunked_upload_of_twelve_mib() {
    let app = TestApp::spawn().await;
    bucket(&app, json!({"bucketId": "big", "name": "Big"})).await;
    let data: Vec<u8> = (0..12 * MIB).map(|i| (i % 251) as u8).collect();
    let responses = chunked_upload(&app, "big", "blob.bin", &data).await;
    let progress: Vec<(i64, i64)> = responses
        .iter()
        .map(|r| {
            (
                r["chunksUploaded"].as_i64().unwrap(),
                r["chunksTotal"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(progress, [(1, 3), (2, 3), (3, 3)]);
    let id = responses[0]["$id"].as_str().unwrap();
    assert!(responses.iter().all(|r| r["$id"] == id));
    assert_eq!(responses[2]["sizeOriginal"], 12 * MIB);

    let resp = app
        .key(
            Method::GET,
            &format!("/storage/buckets/big/files/{id}/download"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let got = resp.bytes().await.unwrap();
    assert!(got.as_ref() == data.as_slice(), "assembled bytes differ");

    let resp = app
        .key(
            Method::GET,
            &format!("/storage/buckets/big/files/{id}/view"),
        )
        .header("range", format!("bytes={}-{}", 5 * MIB - 2, 5 * MIB + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        &data[5 * MIB - 2..5 * MIB + 2]
    );

    // Too large for the bucket even though each chunk is small.
    bucket(
        &app,
        json!({"bucketId": "small", "name": "Small", "maximumFileSize": 6 * MIB}),
    )
    .await;
    let (s, e) = send(
        app.key(Method::POST, "/storage/buckets/small/files")
            .header(
                "content-range",
                format!("bytes 0-{}/{}", 5 * MIB - 1, 12 * MIB),
            )
            .multipart(form("f", "f.bin", data[..5 * MIB].to_vec(), &[])),
    )
    .await;
    assert_error(s, &e, 400, "storage_invalid_file_size");
}

#[tokio::test]
async fn bytes_can_live_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::in_memory(PROJECT, KEY);
    config.storage_dir = Some(dir.path().to_path_buf());
    let app = TestApp::spawn_config(config).await;
    bucket(&app, json!({"bucketId": "disk", "name": "Disk"})).await;
    let (s, _) = upload(
        app.key(Method::POST, "/storage/buckets/disk/files"),
        "f1",
        "f1.txt",
        b"on disk".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        std::fs::read(dir.path().join("disk").join("f1")).unwrap(),
        b"on disk"
    );
    let resp = app
        .key(Method::GET, "/storage/buckets/disk/files/f1/view")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"on disk");
    send(app.key(Method::DELETE, "/storage/buckets/disk/files/f1")).await;
    assert!(!dir.path().join("disk").join("f1").exists());
}

#[tokio::test]
async fn permissions_for_sessions() {
    let app = TestApp::spawn().await;
    app.create_user("alice", "alice@example.com", "password123")
        .await;
    app.create_user("bob", "bob@example.com", "password123")
        .await;
    let alice = app.sign_in("alice@example.com", "password123").await;
    let bob = app.sign_in("bob@example.com", "password123").await;

    // Users may upload; each file is private to its uploader (file security).
    bucket(&app, json!({"bucketId": "uploads", "name": "Uploads", "permissions": ["create(\"users\")"], "fileSecurity": true})).await;
    let (s, f) = upload(
        app.session(Method::POST, "/storage/buckets/uploads/files", &alice),
        "a1",
        "a1.txt",
        b"alice".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{f}");
    assert!(
        f["$permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("read(\"user:alice\")"))
    );
    let (s, _) = send(app.session(
        Method::GET,
        "/storage/buckets/uploads/files/a1/view",
        &alice,
    ))
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = send(app.session(Method::GET, "/storage/buckets/uploads/files/a1", &bob)).await;
    assert_error(s, &e, 404, "storage_file_not_found");
    let (s, e) = send(app.session(Method::DELETE, "/storage/buckets/uploads/files/a1", &bob)).await;
    assert_error(s, &e, 404, "storage_file_not_found");
    let (_, list) = send(app.session(Method::GET, "/storage/buckets/uploads/files", &bob)).await;
    assert_eq!(list["total"], 0);
    let (_, list) = send(app.session(Method::GET, "/storage/buckets/uploads/files", &alice)).await;
    assert_eq!(list["total"], 1);
    // A user may not grant roles they do not hold.
    let (s, e) = send(
        app.session(Method::POST, "/storage/buckets/uploads/files", &alice)
            .multipart(form(
                "a2",
                "a2.txt",
                b"x".to_vec(),
                &["read(\"team:staff\")"],
            )),
    )
    .await;
    assert_error(s, &e, 401, "user_unauthorized");
    let (s, e) = upload(
        app.guest(Method::POST, "/storage/buckets/uploads/files"),
        "g1",
        "g1.txt",
        b"guest".to_vec(),
    )
    .await;
    assert_error(s, &e, 401, "user_unauthorized");

    // A team-readable bucket without file security: members read, others are refused.
    bucket(&app, json!({"bucketId": "signal_assets", "name": "Assets", "permissions": ["read(\"team:paid\")"]})).await;
    upload(
        app.key(Method::POST, "/storage/buckets/signal_assets/files"),
        "chart",
        "chart.txt",
        b"chart".to_vec(),
    )
    .await;
    send(
        app.key(Method::POST, "/teams")
            .json(&json!({"teamId": "paid", "name": "Paid"})),
    )
    .await;
    send(
        app.key(Method::POST, "/teams/paid/memberships")
            .json(&json!({"userId": "alice", "roles": []})),
    )
    .await;
    let resp = app
        .session(
            Method::GET,
            "/storage/buckets/signal_assets/files/chart/view",
            &alice,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"chart");
    let (s, e) = send(app.session(
        Method::GET,
        "/storage/buckets/signal_assets/files/chart/view",
        &bob,
    ))
    .await;
    assert_error(s, &e, 401, "user_unauthorized");
    let (s, e) = send(app.guest(Method::GET, "/storage/buckets/signal_assets/files")).await;
    assert_error(s, &e, 401, "user_unauthorized");
    let (s, e) = send(app.session(
        Method::DELETE,
        "/storage/buckets/signal_assets/files/chart",
        &alice,
    ))
    .await;
    assert_error(s, &e, 401, "user_unauthorized");
}
