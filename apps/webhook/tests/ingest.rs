//! Collector ingest end to end: signed batches of Discord message events against the real
//! router and the emulator.

mod common;

use common::TestApp;
use g3_core::signing;
use g3_store::{
    Collection,
    models::{Route, Signal, SignalStatus},
};
use serde_json::{Value, json};

const INGEST_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ROUTED: &str = "1100000000000000001";
const UNROUTED: &str = "1100000000000000002";

async fn app() -> TestApp {
    let app = TestApp::spawn_with_ingest(INGEST_SECRET).await;
    let route = Route {
        source_channel_id: ROUTED.into(),
        source_guild_id: Some("7".into()),
        name: "VIP calls".into(),
        customer_channel_ids: vec![],
        enabled: Some(true),
    };
    Collection::<Route>::new(&app.backend.client)
        .create("vip", &route, None)
        .await
        .unwrap();
    app
}

struct Sent {
    status: u16,
    body: Value,
}

async fn send_raw(app: &TestApp, id: &str, ts_skew: i64, secret: &str, body: &[u8]) -> Sent {
    let ts = time::OffsetDateTime::now_utc().unix_timestamp() + ts_skew;
    let reply = reqwest::Client::new()
        .post(format!("{}/ingest/v1/events", app.url))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header(
            "webhook-signature",
            signing::standard_signature(secret, id, ts, body),
        )
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    Sent {
        status,
        body: reply.json().await.unwrap_or(Value::Null),
    }
}

async fn send(app: &TestApp, events: Vec<Value>) -> Sent {
    let id = format!("col_{}", rand_id());
    send_raw(
        app,
        &id,
        0,
        INGEST_SECRET,
        json!({ "events": events }).to_string().as_bytes(),
    )
    .await
}

fn rand_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn message(
    kind: &str,
    id: &str,
    channel: &str,
    content: Option<&str>,
    edited: Option<&str>,
) -> Value {
    let mut m = json!({ "id": id, "channel_id": channel, "guild_id": "7",
        "author": { "id": "9", "username": "caller" }, "edited_timestamp": edited,
        "timestamp": "2026-01-01T00:00:00+00:00" });
    if let Some(c) = content {
        m["content"] = json!(c);
        m["embeds"] = json!([]);
        m["attachments"] = json!([]);
    }
    json!({ "type": kind, "message": m })
}

async fn signal(app: &TestApp, id: &str) -> Option<Signal> {
    Collection::<Signal>::new(&app.backend.client)
        .get_optional(id)
        .await
        .unwrap()
        .map(|d| d.data)
}

const CALL: &str =
    "#ETH/USDT LONG\nEntry: 3000 - 3050\nTargets: 3100, 3200, 3300\nStop: 2900\nLeverage: 10x";

#[tokio::test]
async fn a_signed_batch_is_stored_parsed_and_unrouted_channels_dropped() {
    let app = app().await;
    let reply = send(
        &app,
        vec![
            message(
                "message.create",
                "1200000000000000001",
                ROUTED,
                Some(CALL),
                None,
            ),
            message(
                "message.create",
                "1200000000000000002",
                UNROUTED,
                Some(CALL),
                None,
            ),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["stored"], 1);
    assert_eq!(reply.body["dropped_unrouted"], 1);
    let s = signal(&app, "1200000000000000001").await.unwrap();
    assert_eq!(
        (s.route_key.as_str(), s.revision, s.status),
        ("vip", 1, SignalStatus::Live)
    );
    assert_eq!(s.pair.as_deref(), Some("ETH/USDT"));
    assert_eq!(s.targets, vec![3100.0, 3200.0, 3300.0]);
    assert_eq!(s.stop, Some(2900.0));
    assert!(signal(&app, "1200000000000000002").await.is_none());
}

#[tokio::test]
async fn signature_failures_write_nothing_and_replays_have_no_second_effect() {
    let app = app().await;
    let body = json!({ "events": [message("message.create", "1200000000000000003", ROUTED, Some("hi"), None)] }).to_string();
    for (what, reply) in [
        (
            "wrong secret",
            send_raw(&app, "a", 0, "not-it", body.as_bytes()).await,
        ),
        (
            "stale",
            send_raw(&app, "b", -330, INGEST_SECRET, body.as_bytes()).await,
        ),
        (
            "future",
            send_raw(&app, "c", 330, INGEST_SECRET, body.as_bytes()).await,
        ),
    ] {
        assert_eq!(reply.status, 401, "{what}");
    }
    let unsigned = reqwest::Client::new()
        .post(format!("{}/ingest/v1/events", app.url))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    assert_eq!(app.count::<Signal>().await, 0);

    let first = send_raw(&app, "same-id", 0, INGEST_SECRET, body.as_bytes()).await;
    assert_eq!(first.body["stored"], 1);
    // The same request replayed (even re-signed with a new timestamp): no second pass.
    let again = send_raw(&app, "same-id", 3, INGEST_SECRET, body.as_bytes()).await;
    assert_eq!(
        (again.status, again.body["duplicate"].as_bool()),
        (200, Some(true))
    );
    assert_eq!(
        signal(&app, "1200000000000000003").await.unwrap().revision,
        1
    );
}

#[tokio::test]
async fn bad_batches_get_clear_errors() {
    let app = app().await;
    let too_many: Vec<Value> = (0..101)
        .map(|i| {
            message(
                "message.create",
                &format!("13{i:017}"),
                ROUTED,
                Some("x"),
                None,
            )
        })
        .collect();
    let reply = send(&app, too_many).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["error"]
            .as_str()
            .unwrap()
            .contains("at most 100")
    );

    let reply = send(
        &app,
        vec![
            message("message.create", "1", ROUTED, Some("x"), None),
            json!({"type": "reaction.add", "message": {}}),
        ],
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["error"]
            .as_str()
            .unwrap()
            .starts_with("event 1: unknown event type"),
        "{:?}",
        reply.body
    );

    let reply = send_raw(&app, "bad-json", 0, INGEST_SECRET, b"{\"events\": [").await;
    assert_eq!(reply.status, 400);
    let mut big = json!({ "events": [message("message.create", "1", ROUTED, Some("x"), None)] })
        .to_string()
        .into_bytes();
    big.resize(webhook::MAX_BODY + 10, b' ');
    let reply = send_raw(&app, "big", 0, INGEST_SECRET, &big).await;
    assert_eq!(reply.status, 413);
    assert_eq!(
        app.count::<Signal>().await,
        0,
        "nothing from a rejected batch is stored"
    );
}

#[tokio::test]
async fn delete_before_create_and_two_hundred_edits_converge() {
    let app = app().await;
    let id = "1200000000000000010";
    send(
        &app,
        vec![json!({"type": "message.delete", "message": {"id": id, "channelId": ROUTED}})],
    )
    .await;
    send(
        &app,
        vec![message(
            "message.create",
            id,
            ROUTED,
            Some("original"),
            None,
        )],
    )
    .await;
    let s = signal(&app, id).await.unwrap();
    assert_eq!(
        (s.status, s.content.as_deref()),
        (SignalStatus::Deleted, Some("original"))
    );

    let edited = "1200000000000000011";
    send(
        &app,
        vec![message("message.create", edited, ROUTED, Some("v0"), None)],
    )
    .await;
    for chunk in (1..=200).collect::<Vec<i64>>().chunks(50) {
        let events = chunk
            .iter()
            .map(|i| {
                let t = time::macros::datetime!(2026-01-01 00:00 UTC) + time::Duration::seconds(*i);
                message(
                    "message.update",
                    edited,
                    ROUTED,
                    Some(&format!("v{i}")),
                    Some(&g3_appwrite::format_datetime(t)),
                )
            })
            .collect();
        assert_eq!(send(&app, events).await.status, 200);
    }
    let s = signal(&app, edited).await.unwrap();
    assert_eq!((s.revision, s.content.as_deref()), (201, Some("v200")));
}

#[tokio::test]
async fn appwrite_down_is_503_and_the_retry_lands() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = TestApp::spawn_on_with_ingest(
        testkit::backend::backend_on_disk(dir.path()).await,
        INGEST_SECRET,
    )
    .await;
    let route = Route {
        source_channel_id: ROUTED.into(),
        source_guild_id: None,
        name: "VIP".into(),
        customer_channel_ids: vec![],
        enabled: None,
    };
    Collection::<Route>::new(&app.backend.client)
        .create("vip", &route, None)
        .await
        .unwrap();
    let body = json!({ "events": [message("message.create", "1200000000000000020", ROUTED, Some(CALL), None)] }).to_string();
    app.backend.stop().await;
    let reply = send_raw(&app, "during-outage", 0, INGEST_SECRET, body.as_bytes()).await;
    assert_eq!(reply.status, 503);
    app.backend.start().await;
    // The collector retries the same request (same webhook-id): it was not marked seen.
    let reply = send_raw(&app, "during-outage", 1, INGEST_SECRET, body.as_bytes()).await;
    assert_eq!(
        (reply.status, reply.body["stored"].as_u64()),
        (200, Some(1)),
        "{:?}",
        reply.body
    );
}

#[tokio::test]
async fn browser_builds_of_discord_pass_the_cors_preflight() {
    let app = app().await;
    let preflight = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/ingest/v1/events", app.url),
        )
        .header("origin", "https://discord.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,webhook-id,webhook-timestamp,webhook-signature",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "https://discord.com");
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("webhook-signature")
    );
    let other = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/ingest/v1/events", app.url),
        )
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn attachments_are_copied_by_content_type_and_failures_retried() {
    use g3_store::models::AttachmentState;
    let app = app().await;
    let cdn = testkit::cdn::FakeCdn::default();
    let base = cdn.spawn().await;
    let names = [
        "chart.png",
        "doc.pdf",
        "error.png",
        "gone.png",
        "huge.png",
        "tool.exe",
        "flaky.png",
    ];
    let attachments: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| json!({ "id": format!("14{i:017}"), "filename": n, "size": 10, "url": format!("{base}/a/{n}") }))
        .collect();
    let mut event = message(
        "message.create",
        "1200000000000000030",
        ROUTED,
        Some(CALL),
        None,
    );
    event["message"]["attachments"] = json!(attachments);
    assert_eq!(send(&app, vec![event]).await.status, 200);

    // Downloads run in the background right after ingest: wait until only the flaky one waits.
    let settled = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let s = signal(&app, "1200000000000000030").await.unwrap();
            let refs = s.attachment_refs();
            if refs
                .iter()
                .filter(|a| a.state == AttachmentState::Pending)
                .count()
                == 1
                && refs
                    .iter()
                    .any(|a| a.note.as_deref().is_some_and(|n| n.starts_with("try 1")))
            {
                return s;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("downloads settle");
    let state_of = |s: &Signal, name: &str| {
        s.attachment_refs()
            .into_iter()
            .find(|a| a.filename == name)
            .unwrap()
    };
    assert_eq!(settled.assets_pending, Some(true));
    let png = state_of(&settled, "chart.png");
    assert_eq!(
        (png.state, png.content_type.as_deref()),
        (AttachmentState::Stored, Some("image/png"))
    );
    assert_eq!(state_of(&settled, "doc.pdf").state, AttachmentState::Stored);
    for (name, why) in [
        ("error.png", "not an image"),
        ("gone.png", "404"),
        ("huge.png", "larger than"),
        ("tool.exe", "not an image"),
    ] {
        let a = state_of(&settled, name);
        assert_eq!(a.state, AttachmentState::Skipped, "{name}");
        assert!(
            a.note.as_deref().unwrap().contains(why),
            "{name}: {:?}",
            a.note
        );
    }
    // The stored copy is the real bytes, readable from Storage.
    let file_id = png.file_id.unwrap();
    let content = app
        .backend
        .client
        .storage()
        .view("signal_assets", &file_id, None)
        .await
        .unwrap();
    assert_eq!(&content.bytes[..], testkit::cdn::PNG);

    // The CDN recovers; the worker's pass stores the last one and clears the flag.
    cdn.recover();
    let ingest = app.state.ingest.clone().unwrap();
    assert_eq!(ingest.retry_assets().await, 1);
    let done = signal(&app, "1200000000000000030").await.unwrap();
    assert_eq!(done.assets_pending, Some(false));
    assert_eq!(state_of(&done, "flaky.png").state, AttachmentState::Stored);
    assert_eq!(ingest.retry_assets().await, 0, "nothing left to retry");
}

#[tokio::test]
async fn a_document_appwrite_refuses_is_reported_and_does_not_block_the_batch() {
    let app = app().await;
    // Someone shrank an attribute by hand: long author names no longer fit.
    let dbs = app.backend.client.databases();
    dbs.delete_attribute("g3", "signals", "author_name")
        .await
        .unwrap();
    dbs.create_attribute(
        "g3",
        "signals",
        &g3_appwrite::AttributeSpec::string("author_name", 3),
    )
    .await
    .unwrap();
    let mut long_author = message(
        "message.create",
        "1200000000000000040",
        ROUTED,
        Some("a"),
        None,
    );
    long_author["message"]["author"]["username"] = json!("a very long name");
    let mut short_author = message(
        "message.create",
        "1200000000000000041",
        ROUTED,
        Some("b"),
        None,
    );
    short_author["message"]["author"]["username"] = json!("ok");
    let reply = send(&app, vec![long_author, short_author]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["stored"], 1);
    assert_eq!(
        reply.body["refused"][0]["message_id"],
        "1200000000000000040"
    );
    assert!(signal(&app, "1200000000000000041").await.is_some());
}

/// A TCP listener on 127.0.0.1 that only counts the connections it is offered.
async fn probe() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (port, hits)
}

/// An "allowed CDN host" that redirects `/r/{n}` to `targets[n]`.
async fn redirector(targets: Vec<String>) -> u16 {
    use axum::{extract::Path, http::header, response::IntoResponse};
    let app = axum::Router::new().route(
        "/r/{n}",
        axum::routing::get(move |Path(n): Path<usize>| {
            let to = targets[n].clone();
            async move { (axum::http::StatusCode::FOUND, [(header::LOCATION, to)]).into_response() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

#[tokio::test]
async fn attachment_urls_outside_the_cdn_allow_list_or_on_private_addresses_are_refused() {
    use g3_store::models::AttachmentState;
    use webhook::ingest::cdn::AttachmentPolicy;
    let (probe_port, probe_hits) = probe().await;
    let cdn = testkit::cdn::FakeCdn::default();
    let cdn_port = cdn.spawn().await.rsplit(':').next().unwrap().to_owned();
    let hop = redirector(vec![
        format!("http://127.0.0.1:{probe_port}/r0.png"),
        format!("https://localhost:{probe_port}/r1.png"),
        format!("http://[::ffff:127.0.0.1]:{probe_port}/r2.png"),
    ])
    .await;
    // The production policy, with `localhost` allowed by name (so only the address check after
    // DNS stands in the way) and one allowed CDN host, `cdn.test`, served locally for the test.
    let mut policy = AttachmentPolicy::default()
        .allowing_local("cdn.test", std::net::Ipv4Addr::LOCALHOST.into());
    policy.hosts.push("localhost".into());
    let app = TestApp::spawn_with_ingest_policy(INGEST_SECRET, policy).await;
    Collection::<Route>::new(&app.backend.client)
        .create(
            "vip",
            &Route {
                source_channel_id: ROUTED.into(),
                source_guild_id: None,
                name: "VIP".into(),
                customer_channel_ids: vec![],
                enabled: None,
            },
            None,
        )
        .await
        .unwrap();
    let urls = [
        (
            "loopback.png",
            format!("http://127.0.0.1:{probe_port}/x.png"),
        ),
        ("evil.png", "https://evil.example/x.png".to_owned()),
        ("dns.png", format!("https://localhost:{probe_port}/x.png")),
        ("hop0.png", format!("http://cdn.test:{hop}/r/0")),
        ("hop1.png", format!("http://cdn.test:{hop}/r/1")),
        ("hop2.png", format!("http://cdn.test:{hop}/r/2")),
        (
            "chart.png",
            format!("http://cdn.test:{cdn_port}/a/chart.png"),
        ),
    ];
    let attachments: Vec<Value> = urls
        .iter()
        .enumerate()
        .map(|(i, (n, url))| json!({ "id": format!("15{i:017}"), "filename": n, "size": 10, "url": url }))
        .collect();
    let id = "1200000000000000040";
    let mut event = message("message.create", id, ROUTED, Some(CALL), None);
    event["message"]["attachments"] = json!(attachments);
    let reply = send(&app, vec![event]).await;
    assert_eq!(
        (reply.status, reply.body["stored"].as_u64()),
        (200, Some(1))
    );

    let ingest = app.state.ingest.clone().unwrap();
    ingest.store_assets(id).await;
    let s = signal(&app, id).await.expect("the signal is stored");
    let refs = s.attachment_refs();
    for (name, _) in &urls[..6] {
        let a = refs.iter().find(|a| a.filename == *name).unwrap();
        assert_eq!(a.state, AttachmentState::Skipped, "{name}: {:?}", a.note);
        assert!(
            a.note.as_deref().unwrap_or_default().starts_with("refused"),
            "{name}: {:?}",
            a.note
        );
    }
    // `localhost` passes the host check: the address it resolves to is what is refused.
    for name in ["dns.png", "hop1.png"] {
        let a = refs.iter().find(|a| a.filename == name).unwrap();
        assert!(
            a.note
                .as_deref()
                .unwrap_or_default()
                .contains("non-public address"),
            "{name}: {:?}",
            a.note
        );
    }
    let chart = refs.iter().find(|a| a.filename == "chart.png").unwrap();
    assert_eq!(chart.state, AttachmentState::Stored, "{:?}", chart.note);
    assert_eq!(s.assets_pending, Some(false));
    assert_eq!(
        probe_hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing connected to the loopback probe"
    );
}
