//! Refund reconciliation against a fake of Sell.app's order API.

mod common;

use common::{TestApp, order};
use testkit::sellapp::{FakeSellappApi, Signing};
use webhook::reconcile::{self, SellappApi};

#[tokio::test]
async fn refunded_reversed_and_voided_orders_are_revoked_others_kept() {
    let app = TestApp::spawn().await;
    let fake = FakeSellappApi::default();
    let base = fake.spawn().await;
    let customers = [
        (201, "refund@x.io", "REFUNDED"),
        (202, "reverse@x.io", "REVERSED"),
        (203, "void@x.io", "VOIDED"),
        (204, "fine@x.io", "COMPLETED"),
    ];
    for (order_id, email, status) in customers {
        app.sender
            .send(
                &order("order.completed", order_id, email, 3301, 9001),
                Signing::Hmac,
            )
            .await;
        fake.set_status(&order_id.to_string(), status);
    }
    let api = SellappApi::new(&base, FakeSellappApi::KEY).unwrap();
    assert_eq!(reconcile::run_once(&app.access(), &api).await.unwrap(), 3);
    assert!(!app.is_paid("refund@x.io").await);
    assert!(!app.is_paid("reverse@x.io").await);
    assert!(!app.is_paid("void@x.io").await);
    assert!(app.is_paid("fine@x.io").await);
    // Idempotent: a second pass finds nothing more to do.
    assert_eq!(reconcile::run_once(&app.access(), &api).await.unwrap(), 0);

    // A wrong key is a logged error per order, never a revocation.
    let wrong = SellappApi::new(&base, "wrong").unwrap();
    assert_eq!(reconcile::run_once(&app.access(), &wrong).await.unwrap(), 0);
    assert!(app.is_paid("fine@x.io").await);
}
