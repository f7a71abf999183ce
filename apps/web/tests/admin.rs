//! The admin console: only staff get anything under /admin; staff find customers by email,
//! order id or Discord id, see their state, and grant or revoke with an audited reason.

mod common;

use common::TestApp;
use g3_store::{
    Collection,
    models::{AuditEntry, RoleState},
};

const ADMIN_PATHS: &[&str] = &["/admin", "/admin?q=x%40y.io", "/admin/customers/x%40y.io"];

#[tokio::test]
async fn staff_and_only_staff_find_the_admin_link_and_the_backend_check() {
    let app = TestApp::spawn().await;
    let mut paid = app.verified("member@x.io").await;
    app.make_paid("member@x.io").await;
    let mut staff = app.verified("boss@x.io").await;
    app.make_staff("boss@x.io").await;
    let link = "<a href=\"/admin\">Admin</a>";
    for path in ["/feed", "/account", "/admin"] {
        let r = staff.get(path).await;
        assert_eq!(r.status, 200, "staff GET {path}");
        assert!(r.body.contains(link), "staff see the Admin link on {path}");
    }
    for path in ["/feed", "/account"] {
        let r = paid.get(path).await;
        assert_eq!(r.status, 200, "member GET {path}");
        assert!(
            !r.body.contains(link),
            "a member sees no Admin link on {path}"
        );
    }
    // The backend check is for staff; customers are not shown "Backend reachable (0 ms)".
    assert!(!paid.get("/account").await.body.contains("data-ping"));
    assert!(staff.get("/account").await.body.contains("data-ping"));
}

#[tokio::test]
async fn nobody_but_staff_gets_anything_under_admin() {
    let app = TestApp::spawn().await;
    let mut anonymous = app.browser();
    let mut unverified = app.unverified("unverified@x.io", common::PASSWORD).await;
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

    // An end date that is gone or unreadable changes nothing and says why.
    for (until, why) in [
        ("2020-01-31", "the end date is in the past"),
        ("31/01/2999", "the end date must look like 2026-12-31"),
    ] {
        let r = staff
            .post(
                "/admin/customers/customer%40x.io",
                &[
                    ("action", "grant"),
                    ("plan", "vip"),
                    ("until", until),
                    ("reason", "goodwill"),
                ],
            )
            .await;
        let page = staff.get(r.location()).await;
        assert!(page.body.contains(why), "{until}: {}", page.body);
        assert!(page.body.contains("id=\"paid\">no"), "{}", page.body);
    }

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

    let audit = Collection::<AuditEntry>::new(&app.backend.client)
        .list(&[g3_appwrite::Query::equal("target", "customer@x.io")])
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

const NEW_ADMIN_POSTS: &[&str] = &[
    "/admin/failures/anything/retry",
    "/admin/users/anyone/resync",
];

#[tokio::test]
async fn non_staff_get_nothing_from_the_failures_page_and_its_actions() {
    let app = TestApp::spawn().await;
    let mut anonymous = app.browser();
    let mut paid = app.verified("paid@x.io").await;
    app.make_paid("paid@x.io").await;
    for (who, b) in [("anonymous", &mut anonymous), ("paid", &mut paid)] {
        let r = b.get("/admin/failures").await;
        assert_eq!(r.status, 404, "{who}");
        for path in NEW_ADMIN_POSTS {
            let r = b.post(path, &[("back", "failures")]).await;
            assert_eq!(r.status, 404, "{who} POST {path}");
        }
    }
    // Staff without a CSRF token are refused before anything happens.
    let mut staff = app.verified("boss@g3.io").await;
    app.make_staff("boss@g3.io").await;
    for path in NEW_ADMIN_POSTS {
        let r = staff.post_raw(path, &[]).await;
        assert_eq!(r.status, 403, "POST {path} without CSRF");
    }
}

fn delivery(order: u64, email: &str) -> Vec<u8> {
    serde_json::json!({
        "event": "order.completed", "store": 1,
        "data": { "id": order, "status": "COMPLETED", "customer": { "email": email },
                  "line_items": [{ "id": 1, "product_id": 1 }] }
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn staff_retry_a_failed_delivery_from_the_failures_page() {
    let app = TestApp::spawn_configured(|s| {
        s.plans = g3_core::entitlements::PlanConfig::from_specs("1=vip", "").unwrap();
    })
    .await;
    let mut staff = app.verified("boss@g3.io").await;
    app.make_staff("boss@g3.io").await;
    let payload = delivery(880001, "stuck@x.io");
    let id = app
        .access()
        .record_failure(g3_access::NewFailure {
            delivery_id: "dlv-stuck",
            event: Some("order.completed"),
            email: Some("stuck@x.io"),
            payload: &payload,
            headers: "{}",
            error: "backend error: appwrite unreachable",
            retryable: true,
            retry_now: false,
        })
        .await
        .unwrap();

    let home = staff.get("/admin").await;
    assert!(
        home.body.contains("id=\"open-failures\">1<"),
        "{}",
        home.body
    );
    let page = staff.get("/admin/failures").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(&format!("action=\"/admin/failures/{id}/retry\"")),
        "{}",
        page.body
    );

    let r = staff
        .post(&format!("/admin/failures/{id}/retry"), &[])
        .await;
    assert_eq!(r.status, 303);
    let after = staff.get(r.location()).await;
    assert!(after.body.contains("applied"), "{}", after.body);
    assert!(after.body.contains("None open."), "{}", after.body);
    let email = g3_core::Email::parse("stuck@x.io").unwrap();
    let subs = app.access().subscriptions_of(&email).await.unwrap();
    assert_eq!(subs.len(), 1, "the retried delivery was applied");
    assert!(subs[0].data.grants_access(time::OffsetDateTime::now_utc()));

    let audit = Collection::<AuditEntry>::new(&app.backend.client)
        .list(&[g3_appwrite::Query::equal("action", "failure.retry")])
        .await
        .unwrap();
    assert_eq!(audit.total, 1);
    assert_eq!(audit.documents[0].data.actor, "staff:boss@g3.io");

    // An unknown id says so and changes nothing.
    let r = staff.post("/admin/failures/nope/retry", &[]).await;
    let after = staff.get(r.location()).await;
    assert!(
        after.body.contains("No failure with id nope"),
        "{}",
        after.body
    );
}

#[tokio::test]
async fn without_plans_the_retry_button_is_off_and_says_why() {
    let app = TestApp::spawn().await;
    let mut staff = app.verified("boss@g3.io").await;
    app.make_staff("boss@g3.io").await;
    let payload = delivery(880002, "stuck@x.io");
    let id = app
        .access()
        .record_failure(g3_access::NewFailure {
            delivery_id: "dlv-stuck-2",
            event: Some("order.completed"),
            email: Some("stuck@x.io"),
            payload: &payload,
            headers: "{}",
            error: "boom",
            retryable: true,
            retry_now: false,
        })
        .await
        .unwrap();
    let page = staff.get("/admin/failures").await;
    assert!(!page.body.contains("/retry\""), "{}", page.body);
    assert!(page.body.contains("SELLAPP_PLANS"), "{}", page.body);
    let r = staff
        .post(&format!("/admin/failures/{id}/retry"), &[])
        .await;
    let after = staff.get(r.location()).await;
    assert!(after.body.contains("Not retried"), "{}", after.body);
}

#[tokio::test]
async fn staff_find_by_discord_name_see_the_link_and_unlink_with_a_reason() {
    let app = TestApp::spawn().await;
    let mut staff = app.verified("boss@g3.io").await;
    app.make_staff("boss@g3.io").await;
    app.grant("linked@x.io").await;
    let user = app.user_id("linked@x.io").await;
    app.access()
        .link_discord(&user, "4242", Some("moon_trader"), "customer:linked@x.io")
        .await
        .unwrap();

    let home = staff.get("/admin").await;
    assert!(home.body.contains("id=\"linked\">1<"), "{}", home.body);
    for q in ["moon_trader", "4242"] {
        let r = staff.get(&format!("/admin?q={q}")).await;
        assert!(
            r.body.contains("href=\"/admin/customers/linked%40x.io\""),
            "search {q}: {}",
            r.body
        );
    }
    let page = staff.get("/admin/customers/linked%40x.io").await;
    assert!(
        page.body.contains("<code>4242</code> moon_trader"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("discord.link"),
        "audit shows the link: {}",
        page.body
    );

    // Audit rows name users by id; their links resolve to the customer page.
    let r = staff.get(&format!("/admin/customers/{user}")).await;
    assert_eq!(
        (r.status.as_u16(), r.location()),
        (303, "/admin/customers/linked%40x.io")
    );

    let path = "/admin/customers/linked%40x.io";
    let r = staff
        .post(path, &[("action", "unlink"), ("reason", "")])
        .await;
    let after = staff.get(r.location()).await;
    assert!(after.body.contains("give a reason"), "{}", after.body);
    assert!(app.access().discord_link(&user).await.unwrap().is_some());

    let r = staff
        .post(path, &[("action", "unlink"), ("reason", "account sold")])
        .await;
    let after = staff.get(r.location()).await;
    assert!(
        after.body.contains("Unlinked Discord 4242"),
        "{}",
        after.body
    );
    assert!(
        after.body.contains("id=\"discord\">not linked"),
        "{}",
        after.body
    );
    assert!(app.access().discord_link(&user).await.unwrap().is_none());
    let audit = Collection::<AuditEntry>::new(&app.backend.client)
        .list(&[g3_appwrite::Query::equal("action", "discord.unlink")])
        .await
        .unwrap();
    assert_eq!(audit.total, 1);
    assert_eq!(audit.documents[0].data.actor, "staff:boss@g3.io");
    assert!(
        audit.documents[0]
            .data
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("account sold"),
        "{:?}",
        audit.documents[0].data
    );
}

#[tokio::test]
async fn staff_see_desired_and_applied_roles_and_force_an_audited_resync() {
    let app = TestApp::spawn_configured(|s| {
        s.plans = g3_core::entitlements::PlanConfig::from_specs("", "vip=7001").unwrap();
    })
    .await;
    let mut staff = app.verified("boss@g3.io").await;
    app.make_staff("boss@g3.io").await;
    // A verified customer with a plan and a link: the role is due.
    let _customer = app.verified("roles@x.io").await;
    app.grant("roles@x.io").await;
    let user = app.user_id("roles@x.io").await;
    let access = app
        .access()
        .with_roles(g3_core::plans::PlanRoles::parse("vip=7001").unwrap());
    access
        .link_discord(&user, "5150", Some("roler"), "customer:roles@x.io")
        .await
        .unwrap();
    // The bot applied it once; staff force a fresh look.
    Collection::<RoleState>::new(&app.backend.client)
        .update(
            &g3_access::role_state_id(&user, "7001"),
            &serde_json::json!({"applied": true, "applied_discord_user_id": "5150"}),
            None,
        )
        .await
        .unwrap();

    let page = staff.get("/admin/customers/roles%40x.io").await;
    assert!(
        page.body
            .contains("Should hold the plan roles? active plans: vip."),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<td>7001</td><td>yes</td><td>yes</td><td>5150</td>"),
        "{}",
        page.body
    );

    let r = staff
        .post(
            "/admin/customers/roles%40x.io",
            &[("action", "resync"), ("reason", "")],
        )
        .await;
    let after = staff.get(r.location()).await;
    assert!(
        after
            .body
            .contains("Resync queued: the bot checks Discord now and makes sure they hold 7001."),
        "{}",
        after.body
    );
    assert!(
        after
            .body
            .contains("<td>7001</td><td>yes</td><td>unknown</td>"),
        "marked unchecked for the bot: {}",
        after.body
    );
    let audit = Collection::<AuditEntry>::new(&app.backend.client)
        .list(&[g3_appwrite::Query::equal("action", "roles.resync")])
        .await
        .unwrap();
    assert_eq!(audit.total, 1);
    assert_eq!(audit.documents[0].data.actor, "staff:boss@g3.io");
    assert!(
        after.body.contains("roles.resync"),
        "shown in the audit trail"
    );

    // The failures page resync button works on user ids and goes back there.
    let r = staff
        .post(
            &format!("/admin/users/{user}/resync"),
            &[("back", "failures")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(
        r.location().starts_with("/admin/failures?notice=Resync"),
        "{}",
        r.location()
    );
    let r = staff
        .post("/admin/users/nobody-here/resync", &[("back", "failures")])
        .await;
    assert_eq!(r.status, 404);
}
