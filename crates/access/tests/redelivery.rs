//! A delivery is recognised by its effect, not by a record read first: a crash after the
//! subscription write is finished by the next attempt, a redelivery under another id changes
//! nothing even after staff changed the plan since, renewals that share a classic delivery id
//! still apply, and a first purchase finds a customer who signed up before paying.

use g3_access::{Access, AccessError, Cause, Outcome, subscription_id};
use g3_appwrite::{Id, Query};
use g3_core::{
    Email,
    plans::{Plan, PlanCatalog},
    sellapp::Event,
};
use g3_store::{
    Collection,
    models::{
        AuditEntry, EventStatus, HistoryEntry, Subscription, SubscriptionStatus, WebhookEvent,
    },
    schema::TEAM_PAID,
};
use serde_json::json;
use time::{Duration, OffsetDateTime};

fn plans() -> PlanCatalog {
    PlanCatalog::parse("3301:9001=vip,3301=basic,4400=pro").unwrap()
}

async fn setup() -> (testkit::backend::Backend, Access) {
    let backend = testkit::backend::backend().await;
    let access = Access::new(backend.client.clone(), plans());
    (backend, access)
}

fn order(event: &str, order_id: u64, email: &str) -> Event {
    let body = json!({
        "event": event, "store": 4821,
        "data": { "id": order_id, "status": "COMPLETED", "customer": { "email": email },
                  "line_items": [{ "id": 1, "product_id": 3301, "product_variant_id": 9001 }] }
    });
    Event::parse(body.to_string().as_bytes()).unwrap()
}

fn renewal(sub_id: u64, email: &str, period_end: OffsetDateTime) -> Event {
    let body = json!({
        "event": "subscription.renewed", "store": 4821,
        "data": { "id": sub_id, "customer": { "email": email }, "product_id": 4400,
                  "current_period_end": g3_appwrite::format_datetime(period_end) }
    });
    Event::parse(body.to_string().as_bytes()).unwrap()
}

async fn membership_roles(access: &Access, email: &str) -> Option<Vec<String>> {
    let user = access
        .client()
        .users()
        .find_by_email(email)
        .await
        .unwrap()?;
    access
        .client()
        .teams()
        .find_membership(TEAM_PAID, &user.id)
        .await
        .unwrap()
        .map(|m| m.roles)
}

async fn subscription(access: &Access, email: &str, plan: &str) -> Subscription {
    let id = subscription_id(&Email::parse(email).unwrap(), &Plan::parse(plan).unwrap());
    Collection::<Subscription>::new(access.client())
        .get(&id)
        .await
        .unwrap()
        .data
}

async fn audit_of(access: &Access, email: &str) -> Vec<(String, String)> {
    Collection::<AuditEntry>::new(access.client())
        .list(&[Query::equal("target", email), Query::limit(100)])
        .await
        .unwrap()
        .documents
        .into_iter()
        .map(|d| (d.id, d.data.action))
        .collect()
}

#[tokio::test]
async fn a_crash_after_the_subscription_write_is_finished_by_the_next_attempt() {
    let (_b, access) = setup().await;
    let email = "crash@after.write";
    let event = order("order.completed", 31, email);
    assert!(matches!(
        access.handle_delivery("crashed", &event).await.unwrap(),
        Outcome::Applied(_)
    ));
    assert_eq!(
        membership_roles(&access, email).await,
        Some(vec!["vip".into()])
    );
    // What a crash right after the subscription write leaves: no membership, no audit entry,
    // no record of the delivery.
    let user = access
        .client()
        .users()
        .find_by_email(email)
        .await
        .unwrap()
        .unwrap();
    access
        .client()
        .teams()
        .remove_member_if_present(TEAM_PAID, &user.id)
        .await
        .unwrap();
    for (id, _) in audit_of(&access, email).await {
        Collection::<AuditEntry>::new(access.client())
            .delete(&id)
            .await
            .unwrap();
    }
    Collection::<WebhookEvent>::new(access.client())
        .delete("crashed")
        .await
        .unwrap();

    // Sell.app delivers again (the crashed attempt never answered): the rest is done, once.
    let again = access.handle_delivery("crashed", &event).await.unwrap();
    assert!(
        matches!(&again, Outcome::Applied(d) if d.contains("finished")),
        "{again:?}"
    );
    assert_eq!(
        membership_roles(&access, email).await,
        Some(vec!["vip".into()])
    );
    let audit = audit_of(&access, email).await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(subscription(&access, email, "vip").await.history().len(), 1);
    let record = Collection::<WebhookEvent>::new(access.client())
        .get("crashed")
        .await
        .unwrap()
        .data;
    assert_eq!(record.status, EventStatus::Processed);
    assert_eq!(
        access.handle_delivery("crashed", &event).await.unwrap(),
        Outcome::Duplicate
    );
}

#[tokio::test]
async fn a_redelivery_under_another_id_after_a_revoke_grants_nothing() {
    let (_b, access) = setup().await;
    let email = "revoked@by.staff";
    let event = order("order.completed", 41, email);
    access.handle_delivery("first-id", &event).await.unwrap();
    let admin = Cause::Admin {
        actor: "staff@g3.local".into(),
        reason: "chargeback by phone".into(),
    };
    access
        .revoke(&Email::parse(email).unwrap(), None, &admin)
        .await
        .unwrap();
    assert_eq!(membership_roles(&access, email).await, None);

    // The same order, delivered again under a Standard Webhooks id: the grant already happened.
    assert_eq!(
        access.handle_delivery("second-id", &event).await.unwrap(),
        Outcome::Duplicate
    );
    assert_eq!(membership_roles(&access, email).await, None);
    let sub = subscription(&access, email, "vip").await;
    assert_eq!(sub.status, SubscriptionStatus::Revoked);
    assert_eq!(sub.history().len(), 2, "grant and revoke only");
    let record = Collection::<WebhookEvent>::new(access.client())
        .get("second-id")
        .await
        .unwrap()
        .data;
    assert_eq!(
        (record.status, record.detail.as_deref()),
        (EventStatus::Processed, Some("already applied"))
    );
}

#[tokio::test]
async fn renewals_sharing_a_classic_delivery_id_each_apply() {
    let (_b, access) = setup().await;
    let email = "monthly@renew.er";
    let now = OffsetDateTime::now_utc();
    // Without a `webhook-id`, a delivery's id is its event, object and store: every renewal of
    // one subscription has the same one.
    let first = renewal(6620, email, now + Duration::days(30));
    let second = renewal(6620, email, now + Duration::days(60));
    assert_eq!(first.delivery_id(), second.delivery_id());
    let id = first.delivery_id();
    assert!(matches!(
        access.handle_delivery(&id, &first).await.unwrap(),
        Outcome::Applied(_)
    ));
    assert!(matches!(
        access.handle_delivery(&id, &second).await.unwrap(),
        Outcome::Applied(_)
    ));
    let sub = subscription(&access, email, "pro").await;
    assert!(
        sub.period_end.unwrap() > now + Duration::days(59),
        "{:?}",
        sub.period_end
    );
    assert_eq!(sub.history().len(), 2);
    // A true redelivery of the second renewal is still a duplicate.
    assert_eq!(
        access.handle_delivery(&id, &second).await.unwrap(),
        Outcome::Duplicate
    );
}

#[tokio::test]
async fn a_first_purchase_finds_the_customer_who_signed_up_before_paying() {
    let (_b, access) = setup().await;
    let email = "signed@up.first";
    let signed_up = access
        .client()
        .users()
        .create(Id::unique(), email, None, None)
        .await
        .unwrap();
    access
        .handle_delivery("first-buy", &order("order.completed", 51, email))
        .await
        .unwrap();
    let users = access
        .client()
        .users()
        .list(&[Query::equal("email", email)])
        .await
        .unwrap();
    assert_eq!(users.total, 1, "no second user");
    assert_eq!(
        subscription(&access, email, "vip").await.user_id.as_deref(),
        Some(signed_up.id.as_str())
    );
    assert_eq!(
        membership_roles(&access, email).await,
        Some(vec!["vip".into()])
    );
}

#[tokio::test]
async fn a_subscription_the_lock_chain_does_not_know_of_is_never_overwritten() {
    let (_b, access) = setup().await;
    let email = "restored@from.backup";
    let parsed = Email::parse(email).unwrap();
    // A subscription stored without its customer's lock ever being taken (restored data).
    let mut restored = Subscription {
        email: email.into(),
        user_id: None,
        plan: "vip".into(),
        status: SubscriptionStatus::Active,
        sellapp_order_id: Some("1".into()),
        sellapp_subscription_id: None,
        period_end: None,
        granted_at: Some(OffsetDateTime::now_utc()),
        revoked_at: None,
        reason: None,
        history: None,
    };
    restored.push_history(HistoryEntry {
        at: OffsetDateTime::now_utc(),
        cause: "ops:restore".into(),
        status: SubscriptionStatus::Active,
        detail: "vip".into(),
    });
    Collection::<Subscription>::new(access.client())
        .create(
            subscription_id(&parsed, &Plan::parse("vip").unwrap()).as_str(),
            &restored,
            None,
        )
        .await
        .unwrap();

    let event = order("order.completed", 61, email);
    let first = access.handle_delivery("after-restore", &event).await;
    assert!(
        matches!(&first, Err(e @ AccessError::Busy(_)) if e.is_retryable()),
        "{first:?}"
    );
    assert!(matches!(
        access
            .handle_delivery("after-restore", &event)
            .await
            .unwrap(),
        Outcome::Applied(_)
    ));
    let sub = subscription(&access, email, "vip").await;
    assert_eq!(sub.history().len(), 2, "the restored line is kept");
    assert_eq!(sub.sellapp_order_id.as_deref(), Some("61"));
    assert_eq!(
        membership_roles(&access, email).await,
        Some(vec!["vip".into()])
    );
}
