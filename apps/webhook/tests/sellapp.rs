//! The Sell.app webhook end to end: signed deliveries against the real router and the
//! emulator, every way a delivery can be wrong, duplicates, disorder and outages.

mod common;

use std::sync::Arc;

use common::{TestApp, order};
use g3_store::{
    Model as _,
    models::{
        AuditEntry, FailureState, Subscription, SubscriptionStatus, WebhookEvent, WebhookFailure,
    },
};
use testkit::sellapp::{Signing, examples};

#[tokio::test]
async fn every_shipped_example_is_verified_and_applied() {
    let app = TestApp::spawn().await;
    let examples = examples();
    assert_eq!(examples.len(), 3, "the shared examples are all here");
    for (name, body) in &examples {
        let reply = app.sender.send(body, Signing::Hmac).await;
        assert_eq!(reply.status, 200, "{name}: {:?}", reply.body);
        assert_eq!(reply.body["status"], "applied", "{name}: {:?}", reply.body);
    }
    // order.completed then order.disputed for the same order: revoked.
    assert!(!app.is_paid("trader.joe@example.com").await);
    let joe = app.subscriptions_of("trader.joe@example.com").await;
    assert_eq!(joe.len(), 1);
    assert_eq!(joe[0].status, SubscriptionStatus::Revoked);
    assert_eq!(joe[0].plan, "vip");
    // The legacy invoice (variant 9002) maps to the product-wide plan.
    assert!(app.is_paid("buyer@example.org").await);
    assert_eq!(
        app.subscriptions_of("buyer@example.org").await[0].plan,
        "basic"
    );
}

#[tokio::test]
async fn standard_webhooks_signatures_are_accepted_and_replays_have_no_second_effect() {
    let app = TestApp::spawn().await;
    let body = order("order.completed", 10, "std@hooks.io", 3301, 9001);
    let first = app
        .sender
        .send(
            &body,
            Signing::Standard {
                id: "msg_abc",
                skew_secs: 0,
            },
        )
        .await;
    assert_eq!(
        (first.status, first.body["status"].as_str()),
        (200, Some("applied"))
    );
    // Sell.app replays the same delivery with a new timestamp.
    let replay = app
        .sender
        .send(
            &body,
            Signing::Standard {
                id: "msg_abc",
                skew_secs: 2,
            },
        )
        .await;
    assert_eq!(
        (replay.status, replay.body["status"].as_str()),
        (200, Some("duplicate"))
    );
    assert_eq!(
        app.subscriptions_of("std@hooks.io").await[0]
            .history()
            .len(),
        1
    );
}

#[tokio::test]
async fn bad_signatures_get_401_and_write_nothing_anywhere() {
    let app = TestApp::spawn().await;
    let body = order("order.completed", 11, "victim@x.io", 3301, 9001);
    let tampered = order("order.completed", 11, "attacker@x.io", 3301, 9001);
    let cases = [
        (
            "tampered body",
            app.sender
                .send_signed_by(common::SECRET, &body, &tampered, Signing::Hmac)
                .await,
        ),
        (
            "wrong secret",
            app.sender
                .send_signed_by("not-the-secret", &body, &body, Signing::Hmac)
                .await,
        ),
        (
            "missing header",
            app.sender.send(&body, Signing::Unsigned).await,
        ),
        (
            "stale timestamp",
            app.sender
                .send(
                    &body,
                    Signing::Standard {
                        id: "msg_old",
                        skew_secs: -301,
                    },
                )
                .await,
        ),
        (
            "future timestamp",
            app.sender
                .send(
                    &body,
                    Signing::Standard {
                        id: "msg_new",
                        skew_secs: 301,
                    },
                )
                .await,
        ),
        (
            "standard, wrong secret",
            app.sender
                .send_signed_by(
                    "nope",
                    &body,
                    &body,
                    Signing::Standard {
                        id: "m",
                        skew_secs: 0,
                    },
                )
                .await,
        ),
    ];
    for (what, reply) in cases {
        assert_eq!(reply.status, 401, "{what}: {:?}", reply.body);
        assert!(reply.body["error"].is_string(), "{what}: a clear error");
    }
    for (collection, n) in [
        (WebhookEvent::COLLECTION, app.count::<WebhookEvent>().await),
        (
            WebhookFailure::COLLECTION,
            app.count::<WebhookFailure>().await,
        ),
        (Subscription::COLLECTION, app.count::<Subscription>().await),
        (AuditEntry::COLLECTION, app.count::<AuditEntry>().await),
    ] {
        assert_eq!(n, 0, "{collection} untouched");
    }
    assert_eq!(app.user_count().await, 0);
    assert!(app.state.spool.is_empty());
}

#[tokio::test]
async fn malformed_json_is_400_and_kept_as_a_failure_with_its_body() {
    let app = TestApp::spawn().await;
    let body = b"{\"event\": \"order.completed\", \"data\": {";
    let reply = app.sender.send(body, Signing::Hmac).await;
    assert_eq!(reply.status, 400);
    assert!(reply.body["error"].as_str().unwrap().contains("not JSON"));
    let failures = app.failures().await;
    assert_eq!(failures.len(), 1);
    assert_eq!(
        failures[0].payload.as_deref(),
        Some(std::str::from_utf8(body).unwrap())
    );
    assert_eq!(
        failures[0].state,
        FailureState::Dead,
        "nothing to retry automatically"
    );
    assert_eq!(app.count::<Subscription>().await, 0);
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = TestApp::spawn().await;
    let mut body = order("order.completed", 12, "big@x.io", 3301, 9001);
    body.resize(webhook::MAX_BODY + 1, b' ');
    let reply = app.sender.send(&body, Signing::Hmac).await;
    assert_eq!(reply.status, 413);
    assert_eq!(app.count::<WebhookEvent>().await, 0);
}

#[tokio::test]
async fn unknown_events_are_acknowledged_and_ignored() {
    let app = TestApp::spawn().await;
    let body = br#"{"event":"product.updated","store":1,"data":{"id":5}}"#;
    let reply = app.sender.send(body, Signing::Hmac).await;
    assert_eq!(
        (reply.status, reply.body["status"].as_str()),
        (200, Some("ignored"))
    );
    assert_eq!(app.state.metrics.count("product.updated", "ignored"), 1);
    assert_eq!(app.count::<Subscription>().await, 0);
}

#[tokio::test]
async fn an_unknown_product_is_recorded_as_a_failure_not_granted() {
    let app = TestApp::spawn().await;
    let reply = app
        .sender
        .send(
            &order("order.completed", 13, "who@x.io", 777, 1),
            Signing::Hmac,
        )
        .await;
    assert_eq!(
        (reply.status, reply.body["status"].as_str()),
        (200, Some("failed"))
    );
    assert!(reply.body["error"].as_str().unwrap().contains("777"));
    assert!(!app.is_paid("who@x.io").await);
    let failures = app.failures().await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].email.as_deref(), Some("who@x.io"));
}

#[tokio::test]
async fn concurrent_duplicate_deliveries_have_one_effect() {
    let app = Arc::new(TestApp::spawn().await);
    let body = order("order.completed", 14, "dup@x.io", 3301, 9001);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (app, body) = (Arc::clone(&app), body.clone());
        tasks.push(tokio::spawn(async move {
            app.sender.send(&body, Signing::Hmac).await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let reply = t.await.unwrap();
        assert_eq!(reply.status, 200);
        statuses.push(reply.body["status"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        statuses.iter().filter(|s| *s == "applied").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(app.user_count().await, 1);
    assert_eq!(app.count::<WebhookEvent>().await, 1);
    assert_eq!(app.subscriptions_of("dup@x.io").await[0].history().len(), 1);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{}/healthz", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{}/readyz", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.sender
        .send(
            &order("order.completed", 15, "m@x.io", 3301, 9001),
            Signing::Hmac,
        )
        .await;
    let text = app.metrics().await;
    assert!(
        text.contains(
            "g3_webhook_deliveries_total{event=\"order.completed\",outcome=\"applied\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("g3_webhook_delivery_seconds_count 1"));
    assert!(text.contains("g3_webhook_failures_pending 0"));
}
