//! Appwrite goes away mid-run: deliveries are answered 503 (Sell.app retries) and spooled on
//! local disk; when Appwrite returns, the worker drains the spool and retries, and the final
//! state is exactly what the deliveries imply.

mod common;

use common::{TestApp, order};
use g3_store::models::SubscriptionStatus;
use testkit::sellapp::Signing;

#[tokio::test]
async fn an_outage_loses_nothing_and_retry_converges() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = TestApp::spawn_on(testkit::backend::backend_on_disk(dir.path()).await).await;

    // Before the outage: two customers buy.
    for (i, email) in ["a@out.age", "b@out.age"].iter().enumerate() {
        let reply = app
            .sender
            .send(
                &order("order.completed", 100 + i as u64, email, 3301, 9001),
                Signing::Hmac,
            )
            .await;
        assert_eq!(reply.status, 200);
    }

    app.backend.stop().await;
    let ready = reqwest::get(format!("{}/readyz", app.url)).await.unwrap();
    assert_eq!(ready.status(), 503, "not ready while Appwrite is down");
    // During the outage: a new purchase, a dispute of an earlier one, and a duplicate.
    let during = [
        order("order.completed", 102, "c@out.age", 3301, 9001),
        order("order.disputed", 100, "a@out.age", 3301, 9001),
        order("order.completed", 102, "c@out.age", 3301, 9001),
    ];
    for body in &during {
        let reply = app.sender.send(body, Signing::Hmac).await;
        assert_eq!(reply.status, 503, "Sell.app must retry: {:?}", reply.body);
    }
    assert_eq!(
        app.state.spool.len(),
        2,
        "both deliveries kept on disk (the duplicate overwrote its twin)"
    );
    let report = app.state.retry_once().await;
    assert_eq!(
        (report.drained, report.spooled),
        (0, 2),
        "nothing drains while Appwrite is away"
    );

    app.backend.start().await;
    let report = app.state.retry_once().await;
    assert_eq!(report.drained, 2);
    assert_eq!(report.resolved, 2, "{report:?}");
    assert!(app.state.spool.is_empty());

    // Exactly what the deliveries imply.
    assert!(!app.is_paid("a@out.age").await, "disputed");
    assert!(app.is_paid("b@out.age").await);
    assert!(app.is_paid("c@out.age").await);
    assert_eq!(
        app.subscriptions_of("a@out.age").await[0].status,
        SubscriptionStatus::Revoked
    );
    let c = app.subscriptions_of("c@out.age").await;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].history().len(), 1);
    assert!(
        app.failures()
            .await
            .iter()
            .all(|f| f.state == g3_store::models::FailureState::Resolved)
    );

    // Sell.app's own retry of a delivery that was already recovered changes nothing.
    let reply = app.sender.send(&during[0], Signing::Hmac).await;
    assert_eq!(
        (reply.status, reply.body["status"].as_str()),
        (200, Some("duplicate"))
    );
}
