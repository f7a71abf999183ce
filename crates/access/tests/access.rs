//! Access rules against the emulator: grants, duplicates, disorder, disputes, cancellations,
//! expiry and admin actions all converge to what the events imply.

use std::sync::Arc;

use g3_access::{Access, AccessError, Cause, Outcome, subscription_id};
use g3_appwrite::Query;
use g3_core::{
    Email,
    plans::{Plan, PlanCatalog},
    sellapp::Event,
};
use g3_store::{
    Collection,
    models::{AuditEntry, Subscription, SubscriptionStatus},
    schema::TEAM_PAID,
};
use serde_json::json;
use time::{Duration, OffsetDateTime};

fn plans() -> PlanCatalog {
    PlanCatalog::parse("3301:9001=vip,3301=basic,4400=pro").unwrap()
}

async fn setup() -> (testkit::backend::Backend, Arc<Access>) {
    let backend = testkit::backend::backend().await;
    let access = Arc::new(Access::new(backend.client.clone(), plans()));
    (backend, access)
}

fn order(event: &str, order_id: u64, email: &str, product: u64, variant: u64) -> Event {
    let body = json!({
        "event": event, "store": 4821,
        "data": { "id": order_id, "status": "COMPLETED", "customer": { "email": email },
                  "line_items": [{ "id": 1, "product_id": product, "product_variant_id": variant }] }
    });
    Event::parse(body.to_string().as_bytes()).unwrap()
}

fn subscription_event(event: &str, sub_id: u64, email: &str, period_end: OffsetDateTime) -> Event {
    let body = json!({
        "event": event, "store": 4821,
        "data": { "id": sub_id, "customer": { "email": email }, "product_id": 4400,
                  "current_period_end": g3_appwrite::format_datetime(period_end) }
    });
    Event::parse(body.to_string().as_bytes()).unwrap()
}

async fn is_paid(access: &Access, email: &str) -> bool {
    let Some(user) = access.client().users().find_by_email(email).await.unwrap() else {
        return false;
    };
    access
        .client()
        .teams()
        .find_membership(TEAM_PAID, &user.id)
        .await
        .unwrap()
        .is_some()
}

async fn subscription(access: &Access, email: &str, plan: &str) -> Subscription {
    let id = subscription_id(&Email::parse(email).unwrap(), &Plan::parse(plan).unwrap());
    Collection::<Subscription>::new(access.client())
        .get(&id)
        .await
        .unwrap()
        .data
}

#[tokio::test]
async fn a_completed_order_grants_once_however_often_it_is_delivered() {
    let (_b, access) = setup().await;
    let event = order(
        "order.completed",
        918273,
        "Trader.Joe@Example.com",
        3301,
        9001,
    );
    let first = access.handle_delivery("evt-1", &event).await.unwrap();
    assert!(matches!(first, Outcome::Applied(_)), "{first:?}");
    assert!(is_paid(&access, "trader.joe@example.com").await);
    let sub = subscription(&access, "trader.joe@example.com", "vip").await;
    assert_eq!(sub.status, SubscriptionStatus::Active);
    assert_eq!(sub.sellapp_order_id.as_deref(), Some("918273"));
    assert_eq!(
        access.handle_delivery("evt-1", &event).await.unwrap(),
        Outcome::Duplicate
    );
    assert_eq!(
        subscription(&access, "trader.joe@example.com", "vip")
            .await
            .history()
            .len(),
        1
    );
}

#[tokio::test]
async fn concurrent_duplicate_deliveries_have_one_effect() {
    let (_b, access) = setup().await;
    let event = order("order.completed", 5, "new@customer.io", 3301, 9001);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (access, event) = (Arc::clone(&access), event.clone());
        tasks.push(tokio::spawn(async move {
            access.handle_delivery("same-delivery", &event).await
        }));
    }
    let mut applied = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Outcome::Applied(_) => applied += 1,
            Outcome::Duplicate => {}
            Outcome::Ignored => panic!("not ignorable"),
        }
    }
    assert_eq!(applied, 1, "exactly one delivery applies the effect");
    let users = access
        .client()
        .users()
        .list(&[Query::equal("email", "new@customer.io")])
        .await
        .unwrap();
    assert_eq!(users.total, 1, "one user");
    assert_eq!(
        subscription(&access, "new@customer.io", "vip")
            .await
            .history()
            .len(),
        1
    );
    let audit = Collection::<AuditEntry>::new(access.client())
        .list(&[Query::equal("target", "new@customer.io")])
        .await
        .unwrap();
    assert_eq!(audit.total, 1, "one audit entry");
}

#[tokio::test]
async fn a_dispute_before_the_completion_leaves_the_customer_revoked() {
    let (_b, access) = setup().await;
    let dispute = order("order.disputed", 77, "late@pay.er", 3301, 9002);
    access.handle_delivery("d-1", &dispute).await.unwrap();
    access
        .handle_delivery(
            "c-1",
            &order("order.completed", 77, "late@pay.er", 3301, 9002),
        )
        .await
        .unwrap();
    assert!(!is_paid(&access, "late@pay.er").await);
    let sub = subscription(&access, "late@pay.er", "basic").await;
    assert_eq!(sub.status, SubscriptionStatus::Revoked);

    // A new, different order later is a new purchase and grants again.
    access
        .handle_delivery(
            "c-2",
            &order("order.completed", 78, "late@pay.er", 3301, 9002),
        )
        .await
        .unwrap();
    assert!(is_paid(&access, "late@pay.er").await);
}

#[tokio::test]
async fn a_dispute_after_the_completion_revokes_at_once() {
    let (_b, access) = setup().await;
    access
        .handle_delivery("c", &order("order.completed", 9, "x@y.io", 3301, 9001))
        .await
        .unwrap();
    assert!(is_paid(&access, "x@y.io").await);
    // The dispute names the order only: found through the subscription's order id.
    let body =
        json!({"event": "order.disputed", "store": 4821, "data": {"id": 9, "status": "DISPUTING"}});
    let dispute = Event::parse(body.to_string().as_bytes()).unwrap();
    access.handle_delivery("d", &dispute).await.unwrap();
    assert!(!is_paid(&access, "x@y.io").await);
    assert_eq!(
        subscription(&access, "x@y.io", "vip").await.status,
        SubscriptionStatus::Revoked
    );
}

#[tokio::test]
async fn a_cancelled_subscription_keeps_access_until_the_period_ends() {
    let (_b, access) = setup().await;
    let end = OffsetDateTime::now_utc() + Duration::days(10);
    access
        .handle_delivery(
            "s1",
            &subscription_event("subscription.created", 6620, "sub@scriber.io", end),
        )
        .await
        .unwrap();
    assert!(is_paid(&access, "sub@scriber.io").await);
    access
        .handle_delivery(
            "s2",
            &subscription_event("subscription.cancelled", 6620, "sub@scriber.io", end),
        )
        .await
        .unwrap();
    let sub = subscription(&access, "sub@scriber.io", "pro").await;
    assert_eq!(sub.status, SubscriptionStatus::Cancelled);
    assert!(
        is_paid(&access, "sub@scriber.io").await,
        "access runs to period end"
    );

    assert_eq!(
        access.expire_due(OffsetDateTime::now_utc()).await.unwrap(),
        0,
        "not yet due"
    );
    assert_eq!(
        access.expire_due(end + Duration::minutes(1)).await.unwrap(),
        1
    );
    assert!(!is_paid(&access, "sub@scriber.io").await);
    assert_eq!(
        subscription(&access, "sub@scriber.io", "pro").await.status,
        SubscriptionStatus::Expired
    );
}

#[tokio::test]
async fn renewal_extends_the_period() {
    let (_b, access) = setup().await;
    let now = OffsetDateTime::now_utc();
    access
        .handle_delivery(
            "r1",
            &subscription_event(
                "subscription.created",
                1,
                "r@n.ew",
                now + Duration::days(30),
            ),
        )
        .await
        .unwrap();
    access
        .handle_delivery(
            "r2",
            &subscription_event(
                "subscription.renewed",
                1,
                "r@n.ew",
                now + Duration::days(60),
            ),
        )
        .await
        .unwrap();
    // A late, older renewal does not shorten it.
    access
        .handle_delivery(
            "r0",
            &subscription_event("subscription.renewed", 1, "r@n.ew", now + Duration::days(5)),
        )
        .await
        .unwrap();
    let sub = subscription(&access, "r@n.ew", "pro").await;
    let end = sub.period_end.unwrap();
    assert!(end > now + Duration::days(59), "{end}");
    assert_eq!(
        access.expire_due(now + Duration::days(31)).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn unknown_products_are_not_granted_and_other_events_are_ignored() {
    let (_b, access) = setup().await;
    let err = access
        .handle_delivery("u", &order("order.completed", 1, "a@b.io", 999, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AccessError::Unprocessable(ref m) if m.contains("999")),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert!(!is_paid(&access, "a@b.io").await);

    let body = json!({"event": "feedback.created", "data": {"id": 3}});
    let other = Event::parse(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        access.handle_delivery("f", &other).await.unwrap(),
        Outcome::Ignored
    );
    assert_eq!(
        access.handle_delivery("f", &other).await.unwrap(),
        Outcome::Duplicate
    );
}

#[tokio::test]
async fn admin_revoke_keeps_access_granted_by_another_plan_only_when_asked_for_one() {
    let (_b, access) = setup().await;
    let email = Email::parse("two@plans.io").unwrap();
    let admin = Cause::Admin {
        actor: "staff@g3.local".into(),
        reason: "support ticket 12".into(),
    };
    access
        .grant(&email, &Plan::parse("vip").unwrap(), None, &admin)
        .await
        .unwrap();
    access
        .grant(&email, &Plan::parse("pro").unwrap(), None, &admin)
        .await
        .unwrap();
    access
        .revoke(&email, Some(&Plan::parse("vip").unwrap()), &admin)
        .await
        .unwrap();
    assert!(is_paid(&access, "two@plans.io").await, "pro still grants");
    access.revoke(&email, None, &admin).await.unwrap();
    assert!(!is_paid(&access, "two@plans.io").await);
    assert_eq!(
        subscription(&access, "two@plans.io", "pro").await.status,
        SubscriptionStatus::Revoked
    );
}

#[tokio::test]
async fn a_purchase_before_sign_up_belongs_to_the_account_with_that_email() {
    let (_b, access) = setup().await;
    access
        .handle_delivery(
            "p",
            &order("order.completed", 3, "Early@Bird.io", 3301, 9001),
        )
        .await
        .unwrap();
    let user = access
        .client()
        .users()
        .find_by_email("early@bird.io")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !user.email_verification,
        "created unverified: the web asks them to prove the email"
    );
    assert!(is_paid(&access, "early@bird.io").await);
}

#[tokio::test]
async fn discord_roles_need_a_verified_paid_linked_customer() {
    use g3_access::LinkOutcome;
    use g3_core::plans::PlanRoles;
    use g3_store::models::RoleState;
    let backend = testkit::backend::backend().await;
    let access = Access::new(backend.client.clone(), plans())
        .with_roles(PlanRoles::parse("vip=111|222,pro=333").unwrap());
    let role = |user: String, role: &str| {
        let client = backend.client.clone();
        let id = g3_access::role_state_id(&user, role);
        async move {
            Collection::<RoleState>::new(&client)
                .get_optional(&id)
                .await
                .unwrap()
                .map(|d| (d.data.desired, d.data.discord_user_id))
        }
    };
    access
        .handle_delivery("g", &order("order.completed", 50, "roles@x.io", 3301, 9001))
        .await
        .unwrap();
    let user = backend
        .client
        .users()
        .find_by_email("roles@x.io")
        .await
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(
        role(user.clone(), "111").await,
        None,
        "paid but unverified and unlinked: no role"
    );

    let linked = access
        .link_discord(&user, "900100", Some("trader"), "customer:roles@x.io")
        .await
        .unwrap();
    assert_eq!(linked, LinkOutcome::Linked { previous: None });
    assert_eq!(
        role(user.clone(), "111").await,
        None,
        "linked but unverified: no role"
    );
    assert_eq!(
        access.desired_roles(&user).await.unwrap().why,
        g3_access::RolesWhy::EmailNotVerified
    );

    backend
        .client
        .users()
        .update_email_verification(&user, true)
        .await
        .unwrap();
    let roles = access.sync_roles(&user, "verified").await.unwrap();
    assert_eq!(roles, vec!["111".to_owned(), "222".to_owned()]);
    let held = Some((true, Some("900100".to_owned())));
    assert_eq!(role(user.clone(), "111").await, held);
    assert_eq!(role(user.clone(), "222").await, held);
    assert_eq!(
        role(user.clone(), "333").await,
        None,
        "never desired, never recorded"
    );

    // Relinking moves the roles to the new account.
    let relinked = access
        .link_discord(&user, "900200", None, "customer:roles@x.io")
        .await
        .unwrap();
    assert_eq!(
        relinked,
        LinkOutcome::Linked {
            previous: Some("900100".into())
        }
    );
    assert_eq!(
        role(user.clone(), "111").await,
        Some((true, Some("900200".to_owned())))
    );

    access
        .handle_delivery("d", &order("order.disputed", 50, "roles@x.io", 3301, 9001))
        .await
        .unwrap();
    let gone = Some((false, Some("900200".to_owned())));
    assert_eq!(role(user.clone(), "111").await, gone);
    assert_eq!(role(user.clone(), "222").await, gone);
    assert_eq!(role(user.clone(), "333").await, None);

    let removed = access
        .unlink_discord(&user, "customer:roles@x.io", "customer asked")
        .await
        .unwrap();
    assert_eq!(removed.map(|l| l.discord_user_id), Some("900200".into()));
    assert_eq!(role(user.clone(), "111").await, Some((false, None)));
    assert_eq!(access.discord_link(&user).await.unwrap(), None);
    assert_eq!(
        access
            .unlink_discord(&user, "customer:roles@x.io", "again")
            .await
            .unwrap(),
        None,
        "unlinking twice is a no-op"
    );
}

#[tokio::test]
async fn one_discord_account_links_to_one_customer() {
    use g3_access::LinkOutcome;
    let (backend, access) = setup().await;
    let users = backend.client.users();
    let a = users
        .create("usera", "a@x.io", None, None)
        .await
        .unwrap()
        .id;
    let b = users
        .create("userb", "b@x.io", None, None)
        .await
        .unwrap()
        .id;
    assert_eq!(
        access
            .link_discord(&a, "777", Some("sam"), "customer:a@x.io")
            .await
            .unwrap(),
        LinkOutcome::Linked { previous: None }
    );
    assert_eq!(
        access
            .link_discord(&a, "777", Some("sam"), "customer:a@x.io")
            .await
            .unwrap(),
        LinkOutcome::Unchanged
    );
    assert_eq!(
        access
            .link_discord(&b, "777", None, "customer:b@x.io")
            .await
            .unwrap(),
        LinkOutcome::TakenByOther { user_id: a.clone() }
    );
    assert_eq!(
        access.discord_link(&b).await.unwrap(),
        None,
        "nothing half-made"
    );
    assert_eq!(
        access.user_for_discord("777").await.unwrap(),
        Some(a.clone())
    );

    // Concurrent links of one account by two customers: exactly one wins.
    let c = users
        .create("userc", "c@x.io", None, None)
        .await
        .unwrap()
        .id;
    let (r1, r2) = tokio::join!(
        access.link_discord(&b, "888", None, "customer:b@x.io"),
        access.link_discord(&c, "888", None, "customer:c@x.io"),
    );
    let outcomes = [r1.unwrap(), r2.unwrap()];
    let won = outcomes
        .iter()
        .filter(|o| matches!(o, LinkOutcome::Linked { .. }))
        .count();
    assert_eq!(won, 1, "{outcomes:?}");

    let audit = Collection::<AuditEntry>::new(&backend.client)
        .list(&[Query::equal("action", "discord.link"), Query::limit(10)])
        .await
        .unwrap();
    assert_eq!(audit.total, 2, "one audit entry per effective link");
}
