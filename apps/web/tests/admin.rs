//! The admin console: only staff get anything under /admin; staff find customers by the start
//! of an email, order id, Discord name or id, see their state with plans and Discord roles by
//! name, and grant (a configured plan) or revoke with an audited reason.

mod common;

use common::TestApp;
use g3_store::{
    Collection,
    models::{AuditEntry, RoleState},
};

const ADMIN_PATHS: &[&str] = &["/admin", "/admin?q=x%40y.io", "/admin/customers/x%40y.io"];

/// Two plans with names and Discord roles (VIP gives two).
const PLANS: &str = r#"
[plans.basic]
name = "Basic"
products = ["100"]
roles = ["7100"]
routes = ["basic-calls"]

[plans.vip]
name = "VIP"
products = ["200"]
roles = ["7201", "7202"]
routes = ["vip-calls"]
"#;

/// The number the admin home shows as fact `id`.
fn fact(body: &str, id: &str) -> u64 {
    let at = format!("id=\"{id}\">");
    let start = body.find(&at).unwrap_or_else(|| panic!("no {id}: {body}")) + at.len();
    body[start..start + body[start..].find('<').unwrap()]
        .parse()
        .unwrap()
}

/// A test app whose plans are [`PLANS`].
async fn with_plans() -> TestApp {
    TestApp::spawn_configured(|s| {
        s.plans = g3_core::entitlements::PlanConfig::from_toml(PLANS).unwrap();
    })
    .await
}

/// The staff browser of `app` (signed up as boss@g3.io).
async fn boss(app: &TestApp) -> common::Browser {
    let staff = app.verified("boss@g3.io").await;
    app.make_staff("boss@g3.io").await;
    staff
}

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
    let app = with_plans().await;
    let mut staff = app.verified("boss@g3.io").await;
    app.make_staff("boss@g3.io").await;
    // The web's service user is in `paid` too (to hear membership changes) but is no customer.
    assert_eq!(fact(&staff.get("/admin").await.body, "paid-members"), 0);
    app.grant("customer@x.io").await;

    let home = staff.get("/admin").await;
    assert_eq!(home.status, 200);
    assert_eq!(fact(&home.body, "paid-members"), 1, "{}", home.body);

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
        page.body.contains(
            "<strong>moon_trader</strong> <small class=\"id\" title=\"Discord user id\">4242</small>"
        ),
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
    // No plans file: the role is named after the plan key.
    assert!(
        page.body.contains(
            "<span class=\"role-name\">vip role</span> \
             <small class=\"id\" title=\"Discord role id\">7001</small></td>\
             <td data-label=\"Should hold\">yes</td><td data-label=\"Holds\">yes</td>\
             <td data-label=\"On account\" class=\"wrap\">5150</td>"
        ),
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
        after.body.contains(
            "Resync queued: the bot checks Discord now and makes sure they hold vip role (7001)."
        ),
        "{}",
        after.body
    );
    assert!(
        after.body.contains(
            "7001</small></td><td data-label=\"Should hold\">yes</td><td data-label=\"Holds\">unknown</td>"
        ),
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

/// The access service as web runs it with [`PLANS`].
fn access_with_plans(app: &TestApp) -> g3_access::Access {
    app.access()
        .with_plans(&g3_core::entitlements::PlanConfig::from_toml(PLANS).unwrap())
}

async fn grant_plan(app: &TestApp, email: &str, plan: &str) {
    access_with_plans(app)
        .grant(
            &g3_core::Email::parse(email).unwrap(),
            &g3_core::plans::Plan::parse(plan).unwrap(),
            None,
            &g3_access::Cause::Admin {
                actor: "test".into(),
                reason: "test grant".into(),
            },
        )
        .await
        .unwrap();
}

/// The customer links the search results list, in order.
fn listed(body: &str) -> Vec<String> {
    let Some(start) = body.find("<ul class=\"results\"") else {
        return Vec::new();
    };
    let list = &body[start..start + body[start..].find("</ul>").unwrap()];
    list.split("<a href=\"/admin/customers/")
        .skip(1)
        .map(|a| a[a.find('>').unwrap() + 1..a.find("</a>").unwrap()].to_owned())
        .collect()
}

#[tokio::test]
async fn staff_find_customers_by_the_start_of_an_email_order_id_or_discord_name() {
    let app = with_plans().await;
    let mut staff = boss(&app).await;
    for email in [
        "trader.one@x.io",
        "trader.two@x.io",
        "other@y.io",
        "pat@x.io.uk",
    ] {
        grant_plan(&app, email, "basic").await;
    }
    let body = br#"{"event":"order.completed","store":1,"data":{"id":990011,"customer":{"email":"buyer@z.io"},"line_items":[{"product_id":200}]}}"#;
    access_with_plans(&app)
        .handle_delivery("dlv-search", &g3_core::sellapp::Event::parse(body).unwrap())
        .await
        .unwrap();
    let _linked = app.verified("linked@x.io").await;
    let user = app.user_id("linked@x.io").await;
    access_with_plans(&app)
        .link_discord(
            &user,
            "5566778899",
            Some("moon_trader"),
            "customer:linked@x.io",
        )
        .await
        .unwrap();

    // Several matches: each listed once, linking to its page.
    let r = staff.get("/admin?q=trader").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        listed(&r.body),
        ["trader.one@x.io", "trader.two@x.io"],
        "{}",
        r.body
    );
    assert!(r.body.contains("2 customers match “trader”"), "{}", r.body);
    assert!(
        r.body
            .contains("href=\"/admin/customers/trader.one%40x.io\"")
    );
    assert!(
        r.body
            .contains("href=\"/admin/customers/trader.two%40x.io\"")
    );
    // Prefixes in any case.
    let r = staff.get("/admin?q=TRADER.O").await;
    assert_eq!(listed(&r.body), ["trader.one@x.io"], "{}", r.body);
    assert!(r.body.contains("1 customer matches"), "{}", r.body);
    // The start of an order id, saying what matched.
    let r = staff.get("/admin?q=9900").await;
    assert_eq!(listed(&r.body), ["buyer@z.io"], "{}", r.body);
    assert!(r.body.contains("order 990011"), "{}", r.body);
    // The start of a Discord name, and of a Discord id.
    for q in ["moon", "MOON_t", "556677"] {
        let r = staff.get(&format!("/admin?q={q}")).await;
        assert_eq!(listed(&r.body), ["linked@x.io"], "{q}: {}", r.body);
    }
    assert!(
        staff
            .get("/admin?q=moon")
            .await
            .body
            .contains("Discord moon_trader")
    );
    // A whole email goes to its page; one that only starts others' emails lists them, and
    // still offers its own page (to grant a new customer).
    let r = staff.get("/admin?q=other%40y.io").await;
    assert_eq!(r.location(), "/admin/customers/other%40y.io");
    let r = staff.get("/admin?q=pat%40x.io").await;
    assert_eq!(r.status, 200);
    assert_eq!(listed(&r.body), ["pat@x.io.uk"], "{}", r.body);
    assert!(
        r.body
            .contains("Nobody has exactly pat@x.io: <a href=\"/admin/customers/pat%40x.io\">"),
        "{}",
        r.body
    );
    let r = staff.get("/admin?q=new%40x.io").await;
    assert_eq!(
        r.location(),
        "/admin/customers/new%40x.io",
        "nobody like it"
    );
    // Nothing: said so, and how to search.
    let r = staff.get("/admin?q=zz-nothing").await;
    assert_eq!(r.status, 200);
    assert!(listed(&r.body).is_empty());
    assert!(
        r.body
            .contains("id=\"no-results\">Nobody matches “zz-nothing”"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn a_search_with_more_matches_than_listed_says_so() {
    let app = with_plans().await;
    let mut staff = boss(&app).await;
    let n = g3_access::customer::SEARCH_LIMIT as usize + 1;
    for i in 0..n {
        grant_plan(&app, &format!("crowd{i:02}@x.io"), "basic").await;
    }
    let r = staff.get("/admin?q=crowd").await;
    assert_eq!(listed(&r.body).len(), n - 1, "{}", r.body);
    assert!(r.body.contains("more match than are listed"), "{}", r.body);
    let r = staff.get("/admin?q=crowd0").await;
    assert_eq!(listed(&r.body).len(), 10);
    assert!(!r.body.contains("more match than are listed"));
}

#[tokio::test]
async fn plans_and_discord_roles_are_shown_by_their_configured_names() {
    let app = with_plans().await;
    let mut staff = boss(&app).await;
    let _customer = app.verified("named@x.io").await;
    let user = app.user_id("named@x.io").await;
    access_with_plans(&app)
        .link_discord(&user, "8080", Some("namer"), "customer:named@x.io")
        .await
        .unwrap();
    // Granted from the console: web's own configuration writes the roles due.
    let path = "/admin/customers/named%40x.io";
    let r = staff
        .post(
            path,
            &[("action", "grant"), ("plan", "vip"), ("reason", "promo")],
        )
        .await;
    let page = staff.get(r.location()).await;
    assert!(page.body.contains("Granted:"), "{}", page.body);
    for shown in [
        // Plans by name, the key only as a tooltip.
        "<h3><span title=\"plan key vip\">VIP</span>: active (grants access)</h3>",
        "<strong title=\"plan key vip\">VIP</strong> unlocks vip-calls",
        "(VIP unlocks vip-calls)",
        "Should hold the plan roles? active plans: VIP.",
        // Roles by the plan that gives them, the id as small print.
        "<span class=\"role-name\">VIP role 1</span> <small class=\"id\" title=\"Discord role id\">7201</small>",
        "<span class=\"role-name\">VIP role 2</span> <small class=\"id\" title=\"Discord role id\">7202</small>",
        "<strong>namer</strong>",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    assert!(!page.body.contains("<code>vip</code>"), "no raw plan keys");

    // A failing role sync on the failures page is named too.
    Collection::<RoleState>::new(&app.backend.client)
        .update(
            &g3_access::role_state_id(&user, "7202"),
            &serde_json::json!({"last_error": "Missing Permissions"}),
            None,
        )
        .await
        .unwrap();
    let failures = staff.get("/admin/failures").await;
    assert!(
        failures.body.contains(
            "<td data-label=\"Role\"><span class=\"role-name\">VIP role 2</span> <small class=\"id\" title=\"Discord role id\">7202</small></td>"
        ),
        "{}",
        failures.body
    );
    let r = staff.post(path, &[("action", "resync")]).await;
    let after = staff.get(r.location()).await;
    assert!(
        after
            .body
            .contains("makes sure they hold VIP role 1 (7201), VIP role 2 (7202)."),
        "{}",
        after.body
    );
}

#[tokio::test]
async fn plans_are_picked_from_the_configured_list_and_unknown_ones_refused() {
    let app = with_plans().await;
    let mut staff = boss(&app).await;
    let path = "/admin/customers/picker%40x.io";
    let page = staff.get(path).await;
    assert!(
        !page.body.contains("<input id=\"plan\""),
        "no free-text plan"
    );
    for option in [
        "<select id=\"plan\" name=\"plan\" required>",
        "<option value=\"basic\">Basic</option>",
        "<option value=\"vip\">VIP</option>",
    ] {
        assert!(page.body.contains(option), "{option}: {}", page.body);
    }
    assert!(
        !page.body.contains("id=\"revoke\""),
        "nothing to revoke yet"
    );

    // A plan the configuration does not know changes nothing and says why.
    for (action, plan) in [
        ("grant", "gold"),
        ("revoke", "gold"),
        ("grant", "Not a plan!"),
    ] {
        let r = staff
            .post(
                path,
                &[("action", action), ("plan", plan), ("reason", "typo")],
            )
            .await;
        assert_eq!(r.status, 303);
        let after = staff.get(r.location()).await;
        assert!(
            after.body.contains("Nothing changed"),
            "{plan}: {}",
            after.body
        );
        if plan == "gold" {
            assert!(
                after
                    .body
                    .contains("there is no plan &#34;gold&#34; in the plan configuration"),
                "{}",
                after.body
            );
        }
    }
    let email = g3_core::Email::parse("picker@x.io").unwrap();
    assert!(
        app.access()
            .subscriptions_of(&email)
            .await
            .unwrap()
            .is_empty()
    );

    // A listed plan is granted; the revoke form then offers it by name.
    let r = staff
        .post(
            path,
            &[("action", "grant"), ("plan", "basic"), ("reason", "trial")],
        )
        .await;
    let page = staff.get(r.location()).await;
    assert!(page.body.contains("Granted:"), "{}", page.body);
    assert!(
        page.body
            .contains("<option value=\"\">Every active plan</option>")
            && page.body.contains("id=\"revoke-plan\"")
            && page
                .body
                .matches("<option value=\"basic\">Basic</option>")
                .count()
                == 2,
        "{}",
        page.body
    );
    let r = staff
        .post(
            path,
            &[
                ("action", "revoke"),
                ("plan", "basic"),
                ("reason", "trial over"),
            ],
        )
        .await;
    let page = staff.get(r.location()).await;
    assert!(page.body.contains("Revoked:"), "{}", page.body);
}

#[tokio::test]
async fn without_configured_plans_there_is_nothing_to_grant() {
    let app = TestApp::spawn().await;
    let mut staff = boss(&app).await;
    let path = "/admin/customers/bare%40x.io";
    let page = staff.get(path).await;
    assert!(page.body.contains("id=\"no-plans\""), "{}", page.body);
    assert!(!page.body.contains("id=\"grant\""));
    let r = staff
        .post(
            path,
            &[("action", "grant"), ("plan", "vip"), ("reason", "x")],
        )
        .await;
    let after = staff.get(r.location()).await;
    assert!(after.body.contains("there is no plan"), "{}", after.body);
}
