//! `Access::customer` against the emulator: one read of everything staff see about a customer,
//! and the searches that lead to it (order id, Discord id or name, user id).

use g3_access::{Access, Cause, NewFailure, customer::Match};
use g3_core::{
    Email,
    plans::{Plan, PlanCatalog, PlanRoles},
    sellapp::Event,
};
use g3_store::models::{EventStatus, FailureState, SubscriptionStatus};
use serde_json::json;

fn access(backend: &testkit::backend::Backend) -> Access {
    Access::new(
        backend.client.clone(),
        PlanCatalog::parse("3301=vip,4400=pro").unwrap(),
    )
    .with_roles(PlanRoles::parse("vip=7001|7002,pro=7003").unwrap())
}

fn order_body(order_id: u64, email: &str, product: u64) -> String {
    json!({
        "event": "order.completed", "store": 4821,
        "data": { "id": order_id, "status": "COMPLETED", "customer": { "email": email },
                  "line_items": [{ "id": 1, "product_id": product }] }
    })
    .to_string()
}

fn order(order_id: u64, email: &str, product: u64) -> Event {
    Event::parse(order_body(order_id, email, product).as_bytes()).unwrap()
}

fn admin(reason: &str) -> Cause {
    Cause::Admin {
        actor: "ops:alice".into(),
        reason: reason.into(),
    }
}

#[tokio::test]
async fn a_stranger_is_a_view_with_nothing_in_it() {
    let backend = testkit::backend::backend().await;
    let access = access(&backend);
    let view = access
        .customer(&Email::parse("nobody@x.io").unwrap())
        .await
        .unwrap();
    assert_eq!(view.email.as_str(), "nobody@x.io");
    assert!(view.account.is_none());
    assert!(view.subscriptions.is_empty());
    assert!(view.entitlements.active_plans.is_empty());
    assert!(view.entitlements.roles.roles.is_empty());
    assert_eq!(view.entitlements.roles.why.to_string(), "no account");
    assert!(view.link.is_none());
    assert!(view.roles_managed);
    assert!(view.roles.is_empty());
    assert_eq!((view.events.total, view.events.items.len()), (0, 0));
    assert_eq!((view.failures.total, view.failures.items.len()), (0, 0));
    assert!(view.audit.is_empty());
}

#[tokio::test]
async fn the_view_holds_account_plans_entitlements_link_roles_events_failures_and_audit() {
    let backend = testkit::backend::backend().await;
    let access = access(&backend);
    let email = Email::parse("whole@x.io").unwrap();
    access
        .handle_delivery("dlv-1", &order(61001, "whole@x.io", 3301))
        .await
        .unwrap();
    // A pro plan granted and revoked again: listed, but not an entitlement.
    let pro = Plan::parse("pro").unwrap();
    access
        .grant(&email, &pro, None, &admin("trial"))
        .await
        .unwrap();
    access
        .revoke(&email, Some(&pro), &admin("trial over"))
        .await
        .unwrap();
    let payload = order_body(61002, "whole@x.io", 9999);
    access
        .record_failure(NewFailure {
            delivery_id: "dlv-2",
            event: Some("order.completed"),
            email: Some("whole@x.io"),
            payload: payload.as_bytes(),
            headers: "{}",
            error: "no plan is configured for product 9999",
            retryable: false,
            retry_now: false,
        })
        .await
        .unwrap();
    let user = backend
        .client
        .users()
        .find_by_email(email.as_str())
        .await
        .unwrap()
        .unwrap()
        .id;
    backend
        .client
        .users()
        .update_email_verification(&user, true)
        .await
        .unwrap();
    access
        .link_discord(&user, "5150", Some("whale"), "customer:whole@x.io")
        .await
        .unwrap();

    let view = access.customer(&email).await.unwrap();
    let account = view.account.as_ref().expect("the purchase made an account");
    assert_eq!(account.user_id, user);
    assert_eq!(account.name, "whole");
    assert!(account.verified && account.active && account.paid && !account.staff);
    assert!(account.created.is_some());

    let mut plans: Vec<(&str, SubscriptionStatus)> = view
        .subscriptions
        .iter()
        .map(|s| (s.plan.as_str(), s.status))
        .collect();
    plans.sort_by_key(|p| p.0);
    assert_eq!(
        plans,
        vec![
            ("pro", SubscriptionStatus::Revoked),
            ("vip", SubscriptionStatus::Active)
        ]
    );
    assert_eq!(view.entitlements.active_plans, vec!["vip".to_owned()]);
    assert_eq!(view.entitlements.roles.roles, vec!["7001", "7002"]);
    assert_eq!(view.entitlements.roles.why.to_string(), "active plans: vip");
    assert_eq!(
        view.entitlements.roles.discord_user_id.as_deref(),
        Some("5150")
    );

    let link = view.link.as_ref().expect("linked");
    assert_eq!(
        (
            link.discord_user_id.as_str(),
            link.discord_username.as_deref()
        ),
        ("5150", Some("whale"))
    );
    let mut roles: Vec<(&str, bool, Option<bool>)> = view
        .roles
        .iter()
        .map(|r| (r.role_id.as_str(), r.desired, r.applied))
        .collect();
    roles.sort();
    assert_eq!(
        roles,
        vec![("7001", true, None), ("7002", true, None)],
        "desired by access, not yet applied by the bot"
    );

    assert_eq!(view.events.total, 1);
    let event = &view.events.items[0];
    assert_eq!(event.order_id.as_deref(), Some("61001"));
    assert_eq!(event.status, EventStatus::Processed);
    assert_eq!(view.failures.total, 1);
    assert_eq!(view.failures.items[0].data.event_id, "dlv-2");
    assert_eq!(view.failures.items[0].data.state, FailureState::Dead);

    // The audit trail covers the email, the account and the Discord account, newest first.
    let actions: Vec<&str> = view.audit.iter().map(|a| a.action.as_str()).collect();
    for action in ["grant", "revoke", "discord.link"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert!(view.audit.windows(2).all(|w| w[0].at >= w[1].at));
}

#[tokio::test]
async fn staff_find_customers_by_the_start_of_an_email_order_discord_id_or_name() {
    let backend = testkit::backend::backend().await;
    let access = access(&backend);
    access
        .handle_delivery("dlv-a", &order(72001, "buyer@x.io", 3301))
        .await
        .unwrap();
    access
        .handle_delivery("dlv-b", &order(72002, "linked@x.io", 4400))
        .await
        .unwrap();
    let linked = backend
        .client
        .users()
        .find_by_email("linked@x.io")
        .await
        .unwrap()
        .unwrap()
        .id;
    access
        .link_discord(
            &linked,
            "424242",
            Some("moon_trader"),
            "customer:linked@x.io",
        )
        .await
        .unwrap();

    for (q, found) in [
        ("72001", vec!["buyer@x.io"]),
        (" 72002 ", vec!["linked@x.io"]),
        ("7200", vec!["buyer@x.io", "linked@x.io"]),
        ("424242", vec!["linked@x.io"]),
        ("4242", vec!["linked@x.io"]),
        ("moon_trader", vec!["linked@x.io"]),
        ("Moon", vec!["linked@x.io"]),
        ("buy", vec!["buyer@x.io"]),
        ("LINKED@X", vec!["linked@x.io"]),
        ("nothing-like-it", vec![]),
        ("", vec![]),
        (&"9".repeat(129), vec![]),
    ] {
        let search = access.find_customers(q).await.unwrap();
        assert_eq!(search.emails(), found, "{q:?}");
        assert!(!search.more, "{q:?}");
    }
    // Each customer once, with everything that matched.
    let search = access.find_customers("4").await.unwrap();
    assert_eq!(search.emails(), ["linked@x.io"]);
    assert_eq!(
        search.found[0].by,
        [Match::DiscordId("424242".into())],
        "order ids start with 7"
    );
    let search = access.find_customers("l").await.unwrap();
    assert_eq!(search.found[0].by, [Match::Email]);
    assert_eq!(
        access.find_customers("72002").await.unwrap().found[0].by,
        [Match::Order("72002".into())]
    );
    assert_eq!(
        Match::DiscordName("moon".into()).to_string(),
        "Discord moon"
    );

    assert_eq!(
        access.customer_email(&linked).await.unwrap().as_deref(),
        Some("linked@x.io")
    );
    assert_eq!(access.customer_email("no-such-user").await.unwrap(), None);
    assert_eq!(
        access.customer_email("not a valid id!").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_search_with_more_matches_than_it_shows_says_so() {
    let backend = testkit::backend::backend().await;
    let access = access(&backend);
    let n = g3_access::customer::SEARCH_LIMIT + 1;
    for i in 0..n {
        access
            .grant(
                &Email::parse(&format!("many{i:02}@x.io")).unwrap(),
                &Plan::parse("vip").unwrap(),
                None,
                &admin("test"),
            )
            .await
            .unwrap();
    }
    let search = access.find_customers("many").await.unwrap();
    assert!(search.more);
    assert_eq!(
        search.found.len(),
        g3_access::customer::SEARCH_LIMIT as usize
    );
    let search = access.find_customers("many2").await.unwrap();
    assert_eq!(search.emails(), ["many20@x.io"]);
    assert!(!search.more);
}
