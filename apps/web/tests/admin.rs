//! The admin console: only staff get anything under /admin; staff find customers by email,
//! order id or Discord id, see their state, and grant or revoke with an audited reason.

mod common;

use common::TestApp;
use g3_store::models::AuditEntry;

const ADMIN_PATHS: &[&str] = &["/admin", "/admin?q=x%40y.io", "/admin/customers/x%40y.io"];

#[tokio::test]
async fn nobody_but_staff_gets_anything_under_admin() {
    let app = TestApp::spawn().await;
    let mut anonymous = app.browser();
    let mut unverified = app.browser();
    unverified
        .sign_up("unverified@x.io", common::PASSWORD)
        .await;
    let mut unpaid = app.verified("unpaid@x.io").await;
    let mut paid = app.verified("paid@x.io").await;
    app.make_paid("paid@x.io").await;
    for (who, b) in [
        ("anonymous", &mut anonymous),
        ("unverified", &mut unverified),
        ("unpaid", &mut unpaid),
        ("paid", &mut paid),
    ] {
        for path in ADMIN_PATHS {
            let r = b.get(path).await;
            assert_eq!(r.status, 404, "{who} GET {path}");
            assert!(
                !r.body.contains("Change access"),
                "{who} sees nothing of the console"
            );
        }
        let r = b
            .post(
                "/admin/customers/paid%40x.io",
                &[("action", "revoke"), ("reason", "x")],
            )
            .await;
        assert_eq!(r.status, 404, "{who} POST");
    }
    assert!(
        app.access()
            .subscriptions_of(&g3_core::Email::parse("paid@x.io").unwrap())
            .await
            .unwrap()
            .iter()
            .all(|s| s.data.status != g3_store::models::SubscriptionStatus::Revoked)
    );
}

#[tokio::test]
async fn staff_find_customers_and_change_access_with_an_audited_reason() {
    let app = TestApp::spawn().await;
    let mut staff = app.verified("boss@g3.io").await;
    app.make_staff("boss@g3.io").await;
    app.grant("customer@x.io").await;

    let home = staff.get("/admin").await;
    assert_eq!(home.status, 200);
    assert!(
        home.body.contains("id=\"paid-members\">1<"),
        "{}",
        home.body
    );

    // Search by email goes straight to the customer page.
    let r = staff.get("/admin?q=Customer%40X.io").await;
    assert_eq!(
        (r.status.as_u16(), r.location()),
        (303, "/admin/customers/customer%40x.io")
    );
    let page = staff.get("/admin/customers/customer%40x.io").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"paid\">member"), "{}", page.body);

    // A revoke without a reason changes nothing.
    let r = staff
        .post(
            "/admin/customers/customer%40x.io",
            &[("action", "revoke"), ("reason", " ")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(
        staff
            .get("/admin/customers/customer%40x.io")
            .await
            .body
            .contains("id=\"paid\">member")
    );

    let r = staff
        .post(
            "/admin/customers/customer%40x.io",
            &[("action", "revoke"), ("reason", "chargeback ticket 7")],
        )
        .await;
    assert_eq!(r.status, 303);
    let page = staff.get(r.location()).await;
    assert!(page.body.contains("Revoked:"), "{}", page.body);
    assert!(page.body.contains("id=\"paid\">no"), "{}", page.body);

    let r = staff
        .post(
            "/admin/customers/customer%40x.io",
            &[
                ("action", "grant"),
                ("plan", "vip"),
                ("until", "2999-01-31"),
                ("reason", "goodwill"),
            ],
        )
        .await;
    let page = staff.get(r.location()).await;
    assert!(
        page.body.contains("Granted:") && page.body.contains("id=\"paid\">member"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("staff:boss@g3.io"),
        "the audit trail names the admin: {}",
        page.body
    );

    let audit = app
        .backend
        .client
        .documents("g3", "audit_log")
        .list::<AuditEntry>(&[g3_appwrite::Query::equal("target", "customer@x.io")])
        .await
        .unwrap();
    let actions: Vec<(String, String)> = audit
        .documents
        .iter()
        .map(|d| (d.data.actor.clone(), d.data.action.clone()))
        .collect();
    assert!(
        actions.contains(&("staff:boss@g3.io".into(), "revoke".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("staff:boss@g3.io".into(), "grant".into())),
        "{actions:?}"
    );
    assert!(audit.documents.iter().any(|d| {
        d.data
            .detail
            .as_deref()
            .is_some_and(|x| x.contains("chargeback ticket 7"))
    }));

    // A forged form (no CSRF token) is refused.
    let r = staff
        .post_raw(
            "/admin/customers/customer%40x.io",
            &[("action", "revoke"), ("reason", "forged")],
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn search_by_order_id_finds_the_buyer() {
    let app = TestApp::spawn().await;
    let mut staff = app.verified("boss@g3.io").await;
    app.make_staff("boss@g3.io").await;
    let body = br#"{"event":"order.completed","store":1,"data":{"id":777001,"customer":{"email":"buyer@x.io"},"line_items":[{"product_id":1}]}}"#;
    let event = g3_core::sellapp::Event::parse(body).unwrap();
    let access = g3_access::Access::new(
        app.backend.client.clone(),
        g3_core::plans::PlanCatalog::parse("1=vip").unwrap(),
    );
    access.handle_delivery("d", &event).await.unwrap();
    let r = staff.get("/admin?q=777001").await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("href=\"/admin/customers/buyer%40x.io\""),
        "{}",
        r.body
    );
    let r = staff.get("/admin?q=nothing-like-it").await;
    assert!(r.body.contains("Nobody matches"), "{}", r.body);
}
