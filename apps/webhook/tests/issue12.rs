//! Issue #12: the Sell.app and ingest endpoints refuse bodies that are not JSON, and one order
//! delivered many times under different delivery ids takes effect once.

mod common;

use common::{TestApp, order};
use g3_appwrite::Query;
use g3_store::{
    Collection, Model as _,
    models::{AuditEntry, Signal, Subscription, WebhookEvent, WebhookFailure},
};
use testkit::sellapp::Signing;

const INGEST_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A correctly signed ingest request with the given content type (or none).
async fn post_ingest(
    url: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let ts = time::OffsetDateTime::now_utc().unix_timestamp();
    let id = format!("ct_{}", content_type.unwrap_or("none"));
    let mut request = reqwest::Client::new()
        .post(url)
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header(
            "webhook-signature",
            g3_core::signing::standard_signature(INGEST_SECRET, &id, ts, body),
        )
        .body(body.to_vec());
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let reply = request.send().await.unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or_default())
}

#[tokio::test]
async fn sellapp_requires_a_json_content_type() {
    let app = TestApp::spawn().await;
    let body = order("order.completed", 70, "ct@x.io", 3301, 9001);
    let signature = g3_core::signing::sellapp_signature(common::SECRET, &body);
    let url = format!("{}/webhooks/sellapp", app.url);
    for content_type in [Some("text/plain"), None, Some("application/jsonp")] {
        let mut request = reqwest::Client::new()
            .post(&url)
            .header("signature", &signature)
            .body(body.clone());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let reply = request.send().await.unwrap();
        assert_eq!(reply.status().as_u16(), 415, "{content_type:?}");
        let json: serde_json::Value = reply.json().await.unwrap();
        assert!(
            json["error"].as_str().unwrap().contains("application/json"),
            "{json:?}"
        );
    }
    for (collection, n) in [
        (WebhookEvent::COLLECTION, app.count::<WebhookEvent>().await),
        (
            WebhookFailure::COLLECTION,
            app.count::<WebhookFailure>().await,
        ),
        (Subscription::COLLECTION, app.count::<Subscription>().await),
    ] {
        assert_eq!(n, 0, "{collection} untouched");
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("g3_webhook_unsupported_media_type_total{endpoint=\"sellapp\"} 3"),
        "{metrics}"
    );
    // A charset parameter is fine, and the sender's own header is JSON.
    let reply = reqwest::Client::new()
        .post(&url)
        .header("signature", &signature)
        .header("content-type", "application/json; charset=utf-8")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let again = app.sender.send(&body, Signing::Hmac).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
}

#[tokio::test]
async fn ingest_requires_a_json_content_type() {
    let app = TestApp::spawn_with_ingest(INGEST_SECRET).await;
    let url = format!("{}/ingest/v1/events", app.url);
    for content_type in [Some("text/plain"), None] {
        let (status, body) = post_ingest(&url, content_type, b"{\"events\": []}").await;
        assert_eq!(status, 415, "{content_type:?}");
        assert!(body["error"].as_str().unwrap().contains("application/json"));
    }
    assert_eq!(app.count::<Signal>().await, 0);
}

async fn audit_grants(app: &TestApp, email: &str) -> usize {
    Collection::<AuditEntry>::new(&app.backend.client)
        .list(&[Query::equal("target", email), Query::limit(100)])
        .await
        .unwrap()
        .documents
        .into_iter()
        .filter(|d| d.data.action == "grant")
        .count()
}

#[tokio::test]
async fn one_order_under_twenty_delivery_ids_takes_effect_once() {
    let app = TestApp::spawn().await;
    let email = "twenty@x.io";
    let body = order("order.completed", 71, email, 3301, 9001);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let sender = app.sender.clone();
        let body = body.clone();
        // One classic `signature` delivery (its id is derived from the event), the rest
        // Standard Webhooks deliveries with their own ids.
        let how = if i == 7 {
            Signing::Hmac
        } else {
            Signing::Standard {
                id: Box::leak(format!("msg_redelivery_{i}").into_boxed_str()),
                skew_secs: 0,
            }
        };
        tasks.spawn(async move { sender.send(&body, how).await });
    }
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    assert_eq!(app.count::<WebhookEvent>().await, 20, "every delivery kept");
    let subs = app.subscriptions_of(email).await;
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].history().len(), 1, "{:?}", subs[0].history());
    assert_eq!(audit_grants(&app, email).await, 1);
    assert!(app.is_paid(email).await);

    // A different status of the same order still applies.
    let dispute = order("order.disputed", 71, email, 3301, 9001);
    let reply = app.sender.send(&dispute, Signing::Hmac).await;
    assert_eq!(
        (reply.status, reply.body["status"].as_str()),
        (200, Some("applied")),
        "{:?}",
        reply.body
    );
    assert!(!app.is_paid(email).await);
    assert_eq!(app.subscriptions_of(email).await[0].history().len(), 2);
}
