//! The live feed over Server-Sent Events: signals written to Appwrite reach browsers as create,
//! update and delete; `Last-Event-ID` resumes; only members get a stream, and a revoked one
//! ends; after an upstream reconnect the hub catches up on what it missed.

mod common;

use std::time::Duration;

use common::{TestApp, minutes_ago};
use g3_appwrite::{Follow, Interruption};
use g3_store::{Collection, models::Signal};
use serde_json::{Value, json};
use web::live::{LiveOptions, Publisher};

async fn member(app: &TestApp, email: &str) -> common::Browser {
    let b = app.verified(email).await;
    app.grant(email).await;
    b
}

/// An admin revokes `email`'s plan (a refund).
async fn revoke(app: &TestApp, email: &str) {
    app.membership_change(app.access().revoke(
        &g3_core::Email::parse(email).unwrap(),
        None,
        &g3_access::Cause::Admin {
            actor: "test".into(),
            reason: "refund".into(),
        },
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn signals_reach_the_stream_as_create_update_delete_and_resume() {
    let app = TestApp::spawn().await;
    app.seed_route("vip-calls", "VIP Calls").await;
    let mut b = member(&app, "live@example.com").await;
    app.wait_metric("g3_web_upstream_connected", 1.0).await;

    let mut s = b.stream(None).await;
    assert_eq!(s.status, 200);
    assert!(
        s.content_type.starts_with("text/event-stream"),
        "{}",
        s.content_type
    );

    app.seed_signal("5001", |s| s["content"] = "fresh **call**".into())
        .await;
    let created = s.next().await.expect("create event");
    assert_eq!(created.event, "signal");
    let data = created.json();
    assert_eq!(data["id"], "5001");
    assert_eq!(data["action"], "create");
    let html = data["html"].as_str().unwrap();
    assert!(html.contains("id=\"signal-5001\""), "{html}");
    assert!(html.contains("<strong>call</strong>") && html.contains("VIP Calls"));
    // The very same markup as the page renders.
    let page = b.get("/feed").await;
    assert!(
        page.body.contains(html.trim()),
        "{}\n---\n{html}",
        page.body
    );

    let signals = Collection::<Signal>::new(&app.backend.client);
    signals
        .update(
            "5001",
            &json!({"content": "changed target", "edited_at": minutes_ago(0), "revision": 2}),
            None,
        )
        .await
        .unwrap();
    let updated = s.next().await.expect("update event");
    let data = updated.json();
    assert_eq!(
        (data["id"].as_str(), data["action"].as_str()),
        (Some("5001"), Some("update"))
    );
    assert!(data["html"].as_str().unwrap().contains("changed target"));
    assert!(data["html"].as_str().unwrap().contains("marker edited"));

    signals.delete("5001").await.unwrap();
    let deleted = s.next().await.expect("delete event");
    let data = deleted.json();
    assert_eq!(
        (data["id"].as_str(), data["action"].as_str()),
        (Some("5001"), Some("delete"))
    );

    let ids: Vec<u64> = [&created, &updated, &deleted]
        .iter()
        .map(|e| e.id.parse().unwrap())
        .collect();
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "{ids:?}");

    // A browser that saw only the create resumes with the other two.
    let mut again = b.stream(Some(&created.id)).await;
    let e = again.next().await.unwrap();
    assert_eq!(
        (e.id.as_str(), e.json()["action"].as_str()),
        (updated.id.as_str(), Some("update"))
    );
    let e = again.next().await.unwrap();
    assert_eq!(
        (e.id.as_str(), e.json()["action"].as_str()),
        (deleted.id.as_str(), Some("delete"))
    );
    // One that is too far behind (or from another process) is told to reload.
    let mut stale = b.stream(Some("1")).await;
    assert_eq!(stale.next().await.unwrap().event, "reset");
    // The page hands its stream the newest number, so nothing between render and connect is lost.
    let page = b.get("/feed").await;
    assert!(
        page.body
            .contains(&format!("/feed/stream?since={}", deleted.id))
    );

    assert!(app.metric("g3_web_events_fanned_out_total").await >= 5.0);
    assert_eq!(app.metric("g3_web_sse_clients").await, 3.0);
    drop((s, again, stale));
    app.wait_metric("g3_web_sse_clients", 0.0).await;
}

#[tokio::test]
async fn only_members_get_a_stream() {
    let app = TestApp::spawn().await;
    let mut anon = app.browser();
    let r = anon.stream(None).await;
    assert_eq!(r.status, 303);
    let mut unverified = app
        .unverified("unverified@example.com", common::PASSWORD)
        .await;
    app.grant("unverified@example.com").await;
    assert_eq!(unverified.stream(None).await.status, 403);
    let mut unpaid = app.verified("unpaid@example.com").await;
    assert_eq!(unpaid.stream(None).await.status, 403);
    let mut staff = app.verified("staff@example.com").await;
    app.make_staff("staff@example.com").await;
    assert_eq!(staff.stream(None).await.status, 200);
}

#[tokio::test]
async fn a_revoked_customers_stream_ends() {
    let backend = testkit::backend::backend().await;
    let app = TestApp::spawn_on(
        backend,
        LiveOptions {
            recheck: Duration::from_millis(50),
            ..LiveOptions::default()
        },
    )
    .await;
    let mut b = member(&app, "leaving@example.com").await;
    let mut s = b.stream(None).await;
    assert_eq!(s.status, 200);
    revoke(&app, "leaving@example.com").await;
    assert!(s.next().await.is_none(), "the stream ends");
}

#[tokio::test]
async fn idle_streams_get_keep_alive_comments_and_still_get_events() {
    let backend = testkit::backend::backend().await;
    let app = TestApp::spawn_on(
        backend,
        LiveOptions {
            keep_alive: Duration::from_millis(100),
            ..LiveOptions::default()
        },
    )
    .await;
    let mut b = member(&app, "idle@example.com").await;
    let mut s = b.stream(None).await;
    assert_eq!(s.status, 200);
    assert!(
        s.keep_alive_within(Duration::from_secs(5)).await,
        "first comment"
    );
    assert!(
        s.keep_alive_within(Duration::from_secs(5)).await,
        "and again"
    );
    app.seed_signal("7100", |s| s["content"] = "after the quiet".into())
        .await;
    let e = s.next().await.expect("the event after keep-alives");
    assert_eq!(e.event, "signal");
    assert!(e.data.contains("after the quiet"), "{}", e.data);
}

/// Ingest writes edits with upserts (`PUT`), whose Realtime events end in `.upsert`: they reach
/// the stream as updates, with the card as it is now.
#[tokio::test]
async fn an_edit_written_by_upsert_reaches_the_stream() {
    let app = TestApp::spawn().await;
    app.seed_route("vip-calls", "VIP Calls").await;
    let mut b = member(&app, "upsert@example.com").await;
    app.wait_metric("g3_web_upstream_connected", 1.0).await;
    let mut s = b.stream(None).await;
    assert_eq!(s.status, 200);
    app.seed_signal("7200", |s| s["content"] = "first words".into())
        .await;
    assert_eq!(s.next().await.expect("create event").json()["id"], "7200");
    let signals = Collection::<Signal>::new(&app.backend.client);
    let mut signal = signals.get("7200").await.unwrap().data;
    signal.content = Some("edited by ingest".into());
    signal.revision = 2;
    signals.upsert("7200", &signal, None).await.unwrap();
    let e = s.next().await.expect("the upsert's event");
    let data = e.json();
    assert_eq!(
        (data["id"].as_str(), data["action"].as_str()),
        (Some("7200"), Some("update"))
    );
    assert!(data["html"].as_str().unwrap().contains("edited by ingest"));
}

/// The publisher's catch-up, driven call by call: what is written while the upstream is
/// disconnected is published after a reconnect, once.
#[tokio::test]
async fn after_an_upstream_reconnect_the_hub_catches_up_once() {
    let app = TestApp::spawn().await;
    let settings = web::Settings {
        public_url: url::Url::parse("http://127.0.0.1:1").unwrap(),
        service_user: None,
        ..app.settings.clone()
    };
    let state = web::AppState::new(&settings).unwrap();
    app.seed_signal("6000", |s| s["posted_at"] = minutes_ago(30).into())
        .await;
    let mut publisher = Publisher::new(state.clone());
    publisher.connected(false).await;
    let start = state.hub().last_seq();
    publisher
        .disconnected(&Interruption::Dropped {
            reason: "test".into(),
        })
        .await;
    // Written while nobody listens.
    app.seed_signal("6001", |s| s["content"] = "missed one".into())
        .await;
    app.seed_signal("6002", |s| s["content"] = "missed two".into())
        .await;
    Collection::<Signal>::new(&app.backend.client)
        .update("6000", &json!({"content": "old one, edited"}), None)
        .await
        .unwrap();
    assert_eq!(
        state.hub().last_seq(),
        start,
        "nothing published while down"
    );
    publisher.connected(true).await;
    let sub = state.hub().subscribe(Some(start));
    let got: Vec<Value> = sub
        .backlog
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    // Writes in the same millisecond share `$updatedAt`, so the catch-up order among them is
    // not defined: what matters is that each missed change arrives once, with its action.
    let mut summary: Vec<(String, String)> = got
        .iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap().into(),
                v["action"].as_str().unwrap().into(),
            )
        })
        .collect();
    summary.sort();
    assert_eq!(
        summary,
        [
            ("6000".to_owned(), "update".to_owned()),
            ("6001".into(), "create".into()),
            ("6002".into(), "create".into())
        ]
    );
    let html_of = |id: &str| {
        got.iter().find(|v| v["id"] == id).unwrap()["html"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(html_of("6001").contains("missed one"));
    assert!(html_of("6000").contains("old one, edited"));
    assert_eq!(state.metrics().upstream_reconnects(), 1);

    // A second catch-up from the same cursor repeats nothing.
    let last = state.hub().last_seq();
    publisher.connected(true).await;
    assert_eq!(
        state.hub().last_seq(),
        last,
        "a second catch-up repeats nothing"
    );
}

/// The real thing: Appwrite stops and starts again (data on disk), a signal written right after
/// the restart, before the hub resubscribes, still reaches an open browser stream.
/// The emulator closes its Realtime sockets when it stops, as Appwrite going away would.
#[tokio::test]
async fn appwrite_restart_is_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    let backend = testkit::backend::backend_on_disk(dir.path()).await;
    let app = TestApp::spawn_on(
        backend,
        LiveOptions {
            reconnect: g3_appwrite::RetryPolicy {
                max_attempts: u32::MAX,
                base_delay: Duration::from_millis(1500),
                max_delay: Duration::from_millis(1500),
            },
            ..LiveOptions::default()
        },
    )
    .await;
    let mut app = app;
    let mut b = member(&app, "restart@example.com").await;
    app.wait_metric("g3_web_upstream_connected", 1.0).await;
    let mut s = b.stream(None).await;
    app.backend.stop().await;
    app.wait_metric("g3_web_upstream_connected", 0.0).await;
    app.backend.start().await;
    app.seed_signal("6101", |s| s["content"] = "written during the gap".into())
        .await;
    assert_eq!(app.metric("g3_web_upstream_reconnects_total").await, 0.0);
    let e = s.next().await.expect("caught-up event");
    assert_eq!(e.json()["id"], "6101");
    assert!(app.metric("g3_web_upstream_reconnects_total").await >= 1.0);
}

/// The newest page is shared between members while nothing changes, and a page loaded after
/// the stream announced a change always has it: edits, deletes and new signals alike.
#[tokio::test]
async fn the_shared_newest_page_is_never_older_than_the_stream() {
    let app = TestApp::spawn().await;
    let mut a = member(&app, "first@example.com").await;
    let mut b = member(&app, "second@example.com").await;
    app.wait_metric("g3_web_upstream_connected", 1.0).await;
    let mut s = a.stream(None).await;
    app.seed_signal("7001", |s| s["content"] = "first call".into())
        .await;
    s.next().await.expect("create event");
    assert!(a.get("/feed").await.body.contains("first call"));
    assert!(b.get("/feed").await.body.contains("first call"));

    let signals = Collection::<Signal>::new(&app.backend.client);
    for (change, expect, gone) in [
        ("edit", "second take", Some("first call")),
        ("create", "brand new call", None),
        (
            "delete",
            "<span class=\"marker deleted\">deleted</span>",
            None,
        ),
    ] {
        match change {
            "edit" => {
                signals
                    .update(
                        "7001",
                        &json!({"content": "second take", "edited_at": minutes_ago(0), "revision": 2}),
                        None,
                    )
                    .await
                    .unwrap();
            }
            "create" => {
                app.seed_signal("7002", |s| s["content"] = "brand new call".into())
                    .await
            }
            _ => {
                signals
                    .update(
                        "7002",
                        &json!({"status": "deleted", "deleted_at": minutes_ago(0)}),
                        None,
                    )
                    .await
                    .unwrap();
            }
        }
        s.next().await.unwrap_or_else(|| panic!("{change} event"));
        for who in [&mut a, &mut b] {
            let page = who.get("/feed").await.body;
            assert!(page.contains(expect), "{change}: {page}");
            if let Some(old) = gone {
                assert!(!page.contains(old), "{change}: stale page served: {page}");
            }
        }
    }
    // Not a member any more: the shared page is not theirs to see.
    revoke(&app, "second@example.com").await;
    let r = b.get("/feed").await;
    assert_eq!(r.status, 403);
    assert!(!r.body.contains("second take"), "{}", r.body);
}
