//! Who has access, and why. Applies Sell.app deliveries, admin grants and revokes, and period
//! expiries to Appwrite: the `subscriptions` document per customer and plan, membership of team
//! `paid`, the `webhook_events` idempotency record and the `audit_log`.
//!
//! Every write is idempotent (deterministic ids, upserts, create-if-absent), so a delivery may
//! be applied any number of times, concurrently or out of order, and the state converges to
//! what the deliveries imply. Access itself is derived, never toggled: after any change the
//! customer's `paid` membership is recomputed from all of their subscriptions.
//!
//! Read-modify-write of one customer's state runs under a lock that holds across processes
//! ([`locks`]): a delivery locks its customer (or, naming none, itself), so any number of
//! replicas apply concurrent deliveries as one process applying them in order would.

pub mod customer;
mod discord;
pub mod locks;

pub use discord::{DISCORD_LINKS, DesiredRoles, LinkOutcome, role_state_id};
pub use locks::{KeyGuard, KeyedLocks, LockError, LockGuard, LockTiming, Locks};

use std::{fmt, sync::Arc};

use g3_appwrite::{Client, Document, Query, Upserted};
use g3_core::{
    Email, ids,
    plans::{Plan, PlanCatalog, PlanRoles},
    sellapp::{Effect, Event},
};
use g3_store::{
    models::{
        AuditEntry, EventStatus, FailureState, HistoryEntry, Subscription, SubscriptionStatus,
        WebhookEvent, WebhookFailure,
    },
    schema::{DATABASE_ID, TEAM_PAID},
};
use time::{Duration, OffsetDateTime};
use tracing::{info, instrument, warn};

pub const SUBSCRIPTIONS: &str = "subscriptions";
pub const WEBHOOK_EVENTS: &str = "webhook_events";
pub const WEBHOOK_FAILURES: &str = "webhook_failures";
pub const AUDIT_LOG: &str = "audit_log";
pub const ROLE_STATE: &str = "role_state";

/// Why applying something failed.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Appwrite failed or is unreachable: try again later (webhooks answer 5xx).
    #[error("backend error: {0}")]
    Backend(#[from] g3_appwrite::Error),
    /// The input cannot be applied as it is (unknown product, no email): retrying the same
    /// input will not help until configuration or data changes.
    #[error("{0}")]
    Unprocessable(String),
    /// Another process holds the customer's lock, or ours ran out mid-way: try again later.
    #[error("{0}")]
    Busy(String),
}

impl AccessError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, AccessError::Backend(_) | AccessError::Busy(_))
    }
}

impl From<LockError> for AccessError {
    fn from(e: LockError) -> Self {
        match e {
            LockError::Backend(e) => AccessError::Backend(e),
            other => AccessError::Busy(other.to_string()),
        }
    }
}

/// The lock key of one customer's state.
fn customer_key(email: &Email) -> String {
    format!("customer:{email}")
}

/// What handling one delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The effect is applied (and durable).
    Applied(String),
    /// An event we do not act on; acknowledged.
    Ignored,
    /// This delivery was already applied earlier.
    Duplicate,
}

/// Who caused a change: recorded in history and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// A Sell.app delivery, by its [`effect_key`] (the delivery id when it names no object).
    Delivery(String),
    /// An admin, by name, with their reason.
    Admin { actor: String, reason: String },
    /// A background job, by name.
    Job(&'static str),
}

impl Cause {
    fn key(&self) -> String {
        match self {
            Cause::Delivery(id) => id.clone(),
            Cause::Admin { actor, reason } => format!("ops:{actor}:{reason}"),
            Cause::Job(name) => format!("job:{name}"),
        }
    }

    fn actor(&self) -> String {
        match self {
            Cause::Delivery(_) => "sellapp".into(),
            Cause::Admin { actor, .. } => actor.clone(),
            Cause::Job(name) => format!("job:{name}"),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Delivery(id) => write!(f, "delivery {id}"),
            Cause::Admin { actor, reason } => write!(f, "{actor}: {reason}"),
            Cause::Job(name) => write!(f, "job {name}"),
        }
    }
}

/// What identifies a delivery's effect: its event, store, object (order or subscription), the
/// object's status and period end. Sell.app may deliver the same event several times under
/// different delivery ids (redeliveries, or once with Standard Webhooks headers and once with
/// `signature`); they share this key, so history and audit (deduplicated by cause, under the
/// customer's cross-process lock and by deterministic ids) record it once. A delivery naming
/// no object keeps its own delivery id.
pub fn effect_key(delivery_id: &str, event: &Event) -> String {
    let Some(object) = event.object_id.as_deref() else {
        return delivery_id.to_owned();
    };
    let period_end = event
        .period_end
        .map(g3_appwrite::format_datetime)
        .unwrap_or_default();
    ids::derive(
        "sellapp-effect",
        &[
            event.kind.as_str(),
            event.store_id.as_deref().unwrap_or(""),
            object,
            event.status.as_deref().unwrap_or(""),
            &period_end,
        ],
    )
}

/// A subscription document's id: one per customer and plan.
pub fn subscription_id(email: &Email, plan: &Plan) -> String {
    ids::derive("subscription", &[email.as_str(), plan.as_str()])
}

/// The id Appwrite users created for a purchase get, so concurrent deliveries for a new
/// customer cannot create two users.
pub fn user_id_for(email: &Email) -> String {
    ids::derive("user", &[email.as_str()])
}

fn failure_id(delivery_id: &str) -> String {
    ids::derive("failure", &[delivery_id])
}

/// Retry schedule of failed deliveries: 30 s doubling to 6 h, with ±20% jitter.
pub fn retry_delay(attempts: i64) -> Duration {
    let base = 30.0 * 2f64.powi(attempts.clamp(0, 10) as i32);
    let capped = base.min(6.0 * 3600.0);
    let jitter = 0.8 + rand::random::<f64>() * 0.4;
    Duration::seconds_f64(capped * jitter)
}

/// Attempts after which a failure is left for a human (`dead`).
pub const MAX_ATTEMPTS: i64 = 12;

/// Applies access changes to Appwrite. Cheap to share (`Arc`).
pub struct Access {
    client: Client,
    plans: PlanCatalog,
    roles: PlanRoles,
    locks: Arc<Locks>,
}

impl Access {
    pub fn new(client: Client, plans: PlanCatalog) -> Self {
        Self {
            client: client.clone(),
            plans,
            roles: PlanRoles::default(),
            locks: Arc::new(Locks::new(client, LockTiming::default())),
        }
    }

    /// Lock lifetimes other than the default (tests use short ones).
    pub fn with_lock_timing(mut self, timing: LockTiming) -> Self {
        self.locks = Arc::new(Locks::new(self.client.clone(), timing));
        self
    }

    /// The cross-process locks this instance uses (also for other per-key work).
    pub fn locks(&self) -> &Arc<Locks> {
        &self.locks
    }

    /// Takes the lock on one customer unless `held` already is that lock.
    async fn lock_customer(
        &self,
        email: &Email,
        held: Option<&LockGuard>,
    ) -> Result<Option<LockGuard>, AccessError> {
        let key = customer_key(email);
        if held.is_some_and(|h| h.key() == key) {
            return Ok(None);
        }
        Ok(Some(self.locks.acquire(&key).await?))
    }

    /// Also keep `role_state` (the Discord roles each customer should have) up to date.
    pub fn with_roles(mut self, roles: PlanRoles) -> Self {
        self.roles = roles;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether stored deliveries can be replayed here (the product catalog is configured).
    pub fn can_replay(&self) -> bool {
        !self.plans.is_empty()
    }

    fn subscriptions(&self) -> g3_appwrite::Documents {
        self.client.documents(DATABASE_ID, SUBSCRIPTIONS)
    }

    /// Handles one verified, parsed delivery exactly once in effect.
    #[instrument(skip_all, fields(delivery = %delivery_id, event = %event.kind.as_str()))]
    pub async fn handle_delivery(
        &self,
        delivery_id: &str,
        event: &Event,
    ) -> Result<Outcome, AccessError> {
        // One lock per delivery: its customer's, so that its read-modify-write and any other
        // delivery for the same customer (including a copy of this one) take turns; a delivery
        // naming no customer locks itself and its targets one by one.
        let key = match &event.email {
            Some(email) => customer_key(email),
            None => format!("delivery:{delivery_id}"),
        };
        let lock = self.locks.acquire(&key).await?;
        let result = self.handle_locked(delivery_id, event, &lock).await;
        lock.release().await;
        result
    }

    async fn handle_locked(
        &self,
        delivery_id: &str,
        event: &Event,
        lock: &LockGuard,
    ) -> Result<Outcome, AccessError> {
        let events = self.client.documents(DATABASE_ID, WEBHOOK_EVENTS);
        let record = WebhookEvent {
            event: event.kind.as_str().to_owned(),
            order_id: event.object_id.clone(),
            store_id: event.store_id.clone(),
            email: event.email.as_ref().map(|e| e.as_str().to_owned()),
            status: EventStatus::Received,
            received_at: OffsetDateTime::now_utc(),
            processed_at: None,
            detail: None,
        };
        // An earlier `Received` or `Failed` record means a crash or an error mid-way: effects
        // are idempotent, so applying again finishes the job.
        if let Upserted::Existed(doc) = events.create_if_absent(delivery_id, &record, None).await?
            && matches!(
                doc.data.status,
                EventStatus::Processed | EventStatus::Ignored
            )
        {
            return Ok(Outcome::Duplicate);
        }

        // The effects (history, audit, membership) are keyed by what the delivery says, not by
        // its delivery id: the same order event redelivered under another id applies once.
        let cause = Cause::Delivery(effect_key(delivery_id, event));
        let result = self.apply_locked(event, &cause, Some(lock)).await;
        let (status, detail) = match &result {
            Ok(Outcome::Ignored) => (EventStatus::Ignored, "event not acted on".to_owned()),
            Ok(Outcome::Applied(d)) => (EventStatus::Processed, d.clone()),
            Ok(Outcome::Duplicate) => (EventStatus::Processed, "already applied".to_owned()),
            Err(e) => (EventStatus::Failed, e.to_string()),
        };
        // Best effort when the backend is the problem: the failure is recorded elsewhere.
        let patch = serde_json::json!({
            "status": status,
            "processed_at": g3_appwrite::format_datetime(OffsetDateTime::now_utc()),
            "detail": truncate(&detail, 1024),
        });
        // A delivery whose lock ran out is not marked (it stays `Received`): its retry applies it
        // again under a new lock.
        let marked = match lock.ensure_held() {
            Ok(()) => events
                .update::<_, serde_json::Value>(delivery_id, &patch, None)
                .await
                .map_err(AccessError::from),
            Err(e) => Err(e.into()),
        };
        let outcome = result?;
        marked?;
        Ok(outcome)
    }

    /// The effect of an event, without the idempotency record (under the customer's lock).
    pub async fn apply_event(&self, event: &Event, cause: &Cause) -> Result<Outcome, AccessError> {
        let lock = match &event.email {
            Some(email) => Some(self.locks.acquire(&customer_key(email)).await?),
            None => None,
        };
        let result = self.apply_locked(event, cause, lock.as_ref()).await;
        if let Some(lock) = lock {
            lock.release().await;
        }
        result
    }

    /// The effect of an event; `held` is the lock the caller holds, if any.
    async fn apply_locked(
        &self,
        event: &Event,
        cause: &Cause,
        held: Option<&LockGuard>,
    ) -> Result<Outcome, AccessError> {
        match event.kind.effect() {
            Effect::Ignore => Ok(Outcome::Ignored),
            Effect::Grant | Effect::Extend => self.apply_grant(event, cause, held).await,
            Effect::RevokeNow => self.apply_dispute(event, cause, held).await,
            Effect::CancelAtPeriodEnd => self.apply_cancel(event, cause, held).await,
        }
    }

    fn plans_of(&self, event: &Event) -> Result<Vec<Plan>, AccessError> {
        if event.items.is_empty() {
            return Ok(Vec::new());
        }
        let mut plans: Vec<Plan> = Vec::new();
        let mut unknown = Vec::new();
        for item in &event.items {
            match self.plans.plan_for(item) {
                Some(p) if !plans.contains(p) => plans.push(p.clone()),
                Some(_) => {}
                None => unknown.push(match &item.variant_id {
                    Some(v) => format!("{}:{v}", item.product_id),
                    None => item.product_id.clone(),
                }),
            }
        }
        if plans.is_empty() {
            return Err(AccessError::Unprocessable(format!(
                "no plan is configured for product {} (SELLAPP_PLANS)",
                unknown.join(", ")
            )));
        }
        if !unknown.is_empty() {
            warn!(unknown = ?unknown, "line items without a configured plan were not granted");
        }
        Ok(plans)
    }

    async fn apply_grant(
        &self,
        event: &Event,
        cause: &Cause,
        held: Option<&LockGuard>,
    ) -> Result<Outcome, AccessError> {
        let email = event.email.clone().ok_or_else(|| {
            AccessError::Unprocessable("the event carries no customer email".into())
        })?;
        let mut plans = self.plans_of(event)?;
        if plans.is_empty() {
            // Renewals may name only the subscription: extend what it granted before.
            if let Some(sub_id) = &event.subscription_id {
                plans = self
                    .subscriptions()
                    .list::<Subscription>(&[
                        Query::equal("sellapp_subscription_id", sub_id.as_str()),
                        Query::limit(25),
                    ])
                    .await?
                    .documents
                    .into_iter()
                    .filter_map(|d| Plan::parse(&d.data.plan).ok())
                    .collect();
            }
            if plans.is_empty() {
                return Err(AccessError::Unprocessable(
                    "the event names no product".into(),
                ));
            }
        }
        let mut applied = Vec::new();
        for plan in &plans {
            let grant = Grant {
                email: &email,
                plan,
                // Subscription events carry the subscription as their object, not an order.
                order_id: event
                    .object_id
                    .as_deref()
                    .filter(|_| event.kind.effect() == Effect::Grant),
                subscription_id: event.subscription_id.as_deref(),
                period_end: event.period_end,
                renewal: event.kind.effect() == Effect::Extend,
            };
            applied.push(self.grant_plan(grant, cause, held).await?);
        }
        Ok(Outcome::Applied(applied.join("; ")))
    }

    /// Grants one plan to one customer. Returns a one-line description of what happened.
    async fn grant_plan(
        &self,
        grant: Grant<'_>,
        cause: &Cause,
        held: Option<&LockGuard>,
    ) -> Result<String, AccessError> {
        let own = self.lock_customer(grant.email, held).await?;
        let result = match own.as_ref().or(held) {
            Some(lock) => self.grant_plan_locked(grant, cause, lock).await,
            None => Err(AccessError::Busy("no lock held".into())),
        };
        if let Some(own) = own {
            own.release().await;
        }
        result
    }

    async fn grant_plan_locked(
        &self,
        grant: Grant<'_>,
        cause: &Cause,
        lock: &LockGuard,
    ) -> Result<String, AccessError> {
        let now = OffsetDateTime::now_utc();
        let id = subscription_id(grant.email, grant.plan);
        let existing = self
            .subscriptions()
            .get_optional::<Subscription>(&id)
            .await?
            .map(|d| d.data);

        if let Some(s) = &existing {
            let disputed_same_order = s.status == SubscriptionStatus::Revoked
                && s.reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with("dispute"))
                && grant.order_id.is_some()
                && s.sellapp_order_id.as_deref() == grant.order_id;
            if disputed_same_order {
                info!("payment for an order that was already disputed: access stays revoked");
                return Ok(format!(
                    "{} {}: order already disputed, not granted",
                    grant.email, grant.plan
                ));
            }
        }

        let user_id = self.find_or_create_user(grant.email).await?;
        // A renewal or creation of a subscription the customer already cancelled keeps it
        // cancelled (events can arrive out of order); a new order re-activates.
        let stays_cancelled = grant.renewal
            && existing.as_ref().is_some_and(|s| {
                s.status == SubscriptionStatus::Cancelled
                    && s.sellapp_subscription_id.as_deref() == grant.subscription_id
            });
        let status = if stays_cancelled {
            SubscriptionStatus::Cancelled
        } else {
            SubscriptionStatus::Active
        };
        // Renewals extend; an explicit end (admin `--until`, a period in the event) is taken as
        // given; otherwise a still-running period is kept and a finished one dropped.
        let existing_end = existing.as_ref().and_then(|s| s.period_end);
        let period_end = match grant.period_end {
            Some(new) if grant.renewal => Some(existing_end.map_or(new, |e| e.max(new))),
            Some(new) => Some(new),
            None => existing_end.filter(|end| *end > now),
        };
        let mut sub = existing.unwrap_or_else(|| Subscription {
            email: grant.email.as_str().to_owned(),
            user_id: None,
            plan: grant.plan.as_str().to_owned(),
            status,
            sellapp_order_id: None,
            sellapp_subscription_id: None,
            period_end: None,
            granted_at: None,
            revoked_at: None,
            reason: None,
            history: None,
        });
        sub.user_id = Some(user_id.clone());
        sub.status = status;
        sub.period_end = period_end;
        if let Some(o) = grant.order_id {
            sub.sellapp_order_id = Some(o.to_owned());
        }
        if let Some(s) = grant.subscription_id {
            sub.sellapp_subscription_id = Some(s.to_owned());
        }
        sub.granted_at = sub.granted_at.or(Some(now));
        sub.revoked_at = None;
        sub.reason = None;
        let detail = match period_end {
            Some(end) => format!("{} until {}", grant.plan, g3_appwrite::format_datetime(end)),
            None => grant.plan.to_string(),
        };
        sub.push_history(HistoryEntry {
            at: now,
            cause: cause.key(),
            status,
            detail: detail.clone(),
        });
        lock.ensure_held()?;
        self.subscriptions().upsert(&id, &sub, None).await?;
        lock.ensure_held()?;
        // The plan just written grants access by itself: no need to read every subscription.
        let has_access = if sub.grants_access(now) {
            self.client
                .teams()
                .add_member_if_absent(TEAM_PAID, &user_id, &[] as &[&str])
                .await?;
            self.sync_roles(&user_id, &format!("plan {} active", grant.plan))
                .await?;
            true
        } else {
            self.recompute_membership(grant.email).await?
        };
        self.audit(cause, "grant", grant.email.as_str(), &detail)
            .await?;
        Ok(format!(
            "{} {detail}: access {}",
            grant.email,
            if has_access { "on" } else { "off" }
        ))
    }

    async fn apply_dispute(
        &self,
        event: &Event,
        cause: &Cause,
        held: Option<&LockGuard>,
    ) -> Result<Outcome, AccessError> {
        let order_id = event.object_id.clone();
        let mut touched = Vec::new();
        // Subscriptions granted by this order (the normal case) ...
        let mut targets: Vec<(Email, Plan)> = Vec::new();
        if let Some(order) = &order_id {
            for doc in self
                .subscriptions()
                .list::<Subscription>(&[
                    Query::equal("sellapp_order_id", order.as_str()),
                    Query::limit(100),
                ])
                .await?
                .documents
            {
                if let (Ok(e), Ok(p)) = (Email::parse(&doc.data.email), Plan::parse(&doc.data.plan))
                {
                    targets.push((e, p));
                }
            }
        }
        // ... and, when the dispute arrives before the payment, what the event itself names,
        // so the later payment finds a revoked subscription for this order.
        if let Some(email) = &event.email {
            for plan in self.plans_of(event).unwrap_or_default() {
                if !targets.iter().any(|(e, p)| e == email && *p == plan) {
                    targets.push((email.clone(), plan));
                }
            }
        }
        if targets.is_empty() {
            return Err(AccessError::Unprocessable(format!(
                "dispute for order {} matches no subscription and names no known product",
                order_id.as_deref().unwrap_or("?")
            )));
        }
        for (email, plan) in targets {
            let reason = format!("dispute of order {}", order_id.as_deref().unwrap_or("?"));
            let end = EndPlan {
                email: &email,
                plan: &plan,
                status: SubscriptionStatus::Revoked,
                reason: &reason,
                order_id: order_id.as_deref(),
            };
            touched.push(self.end_plan_with(end, cause, held).await?);
        }
        Ok(Outcome::Applied(touched.join("; ")))
    }

    async fn apply_cancel(
        &self,
        event: &Event,
        cause: &Cause,
        held: Option<&LockGuard>,
    ) -> Result<Outcome, AccessError> {
        let Some(sub_id) = event
            .subscription_id
            .as_deref()
            .or(event.object_id.as_deref())
        else {
            return Err(AccessError::Unprocessable(
                "cancellation names no subscription".into(),
            ));
        };
        let docs = self
            .subscriptions()
            .list::<Subscription>(&[
                Query::equal("sellapp_subscription_id", sub_id),
                Query::limit(100),
            ])
            .await?
            .documents;
        let mut targets: Vec<(Email, Plan)> = docs
            .iter()
            .filter_map(|d| {
                Some((
                    Email::parse(&d.data.email).ok()?,
                    Plan::parse(&d.data.plan).ok()?,
                ))
            })
            .collect();
        if targets.is_empty()
            && let Some(email) = &event.email
        {
            targets = self
                .plans_of(event)?
                .into_iter()
                .map(|p| (email.clone(), p))
                .collect();
        }
        if targets.is_empty() {
            return Err(AccessError::Unprocessable(format!(
                "cancellation of unknown subscription {sub_id}"
            )));
        }
        let mut touched = Vec::new();
        for (email, plan) in targets {
            let own = self.lock_customer(&email, held).await?;
            let result = match own.as_ref().or(held) {
                Some(lock) => {
                    self.cancel_locked(&email, &plan, sub_id, event, cause, lock)
                        .await
                }
                None => Err(AccessError::Busy("no lock held".into())),
            };
            if let Some(own) = own {
                own.release().await;
            }
            touched.push(result?);
        }
        Ok(Outcome::Applied(touched.join("; ")))
    }

    async fn cancel_locked(
        &self,
        email: &Email,
        plan: &Plan,
        sub_id: &str,
        event: &Event,
        cause: &Cause,
        lock: &LockGuard,
    ) -> Result<String, AccessError> {
        let now = OffsetDateTime::now_utc();
        let id = subscription_id(email, plan);
        let existing = self
            .subscriptions()
            .get_optional::<Subscription>(&id)
            .await?;
        let mut sub = match existing {
            Some(d) => d.data,
            None => Subscription {
                email: email.as_str().to_owned(),
                user_id: None,
                plan: plan.as_str().to_owned(),
                status: SubscriptionStatus::Cancelled,
                sellapp_order_id: None,
                sellapp_subscription_id: Some(sub_id.to_owned()),
                period_end: None,
                granted_at: None,
                revoked_at: None,
                reason: None,
                history: None,
            },
        };
        if matches!(
            sub.status,
            SubscriptionStatus::Revoked | SubscriptionStatus::Expired
        ) {
            return Ok(format!("{email} {plan}: already ended"));
        }
        sub.period_end = match (sub.period_end, event.period_end) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        // Access runs to the end of the paid period; with no known period it ends now.
        sub.status = if sub.period_end.is_some_and(|end| end > now) {
            SubscriptionStatus::Cancelled
        } else {
            SubscriptionStatus::Expired
        };
        sub.reason = Some("cancelled by the customer".into());
        let detail = match sub.period_end {
            Some(end) => format!(
                "cancelled, access until {}",
                g3_appwrite::format_datetime(end)
            ),
            None => "cancelled, no paid period left".into(),
        };
        sub.push_history(HistoryEntry {
            at: now,
            cause: cause.key(),
            status: sub.status,
            detail: detail.clone(),
        });
        lock.ensure_held()?;
        self.subscriptions().upsert(&id, &sub, None).await?;
        lock.ensure_held()?;
        self.recompute_membership(email).await?;
        self.audit(
            cause,
            "cancel",
            email.as_str(),
            &format!("{plan}: {detail}"),
        )
        .await?;
        Ok(format!("{email} {plan}: {detail}"))
    }

    /// Ends a plan (revoked or expired) and recomputes access. Used for disputes, refunds found
    /// by reconciliation, admin revokes and expiry.
    pub async fn end_plan(
        &self,
        email: &Email,
        plan: &Plan,
        status: SubscriptionStatus,
        reason: &str,
        order_id: Option<&str>,
        cause: &Cause,
    ) -> Result<String, AccessError> {
        let end = EndPlan {
            email,
            plan,
            status,
            reason,
            order_id,
        };
        self.end_plan_with(end, cause, None).await
    }

    async fn end_plan_with(
        &self,
        end: EndPlan<'_>,
        cause: &Cause,
        held: Option<&LockGuard>,
    ) -> Result<String, AccessError> {
        let own = self.lock_customer(end.email, held).await?;
        let result = match own.as_ref().or(held) {
            Some(lock) => self.end_plan_locked(end, cause, lock).await,
            None => Err(AccessError::Busy("no lock held".into())),
        };
        if let Some(own) = own {
            own.release().await;
        }
        result
    }

    async fn end_plan_locked(
        &self,
        end: EndPlan<'_>,
        cause: &Cause,
        lock: &LockGuard,
    ) -> Result<String, AccessError> {
        let EndPlan {
            email,
            plan,
            status,
            reason,
            order_id,
        } = end;
        let now = OffsetDateTime::now_utc();
        let id = subscription_id(email, plan);
        let mut sub = match self
            .subscriptions()
            .get_optional::<Subscription>(&id)
            .await?
        {
            Some(d) => d.data,
            None => Subscription {
                email: email.as_str().to_owned(),
                user_id: None,
                plan: plan.as_str().to_owned(),
                status,
                sellapp_order_id: None,
                sellapp_subscription_id: None,
                period_end: None,
                granted_at: None,
                revoked_at: None,
                reason: None,
                history: None,
            },
        };
        sub.status = status;
        sub.revoked_at = Some(now);
        sub.reason = Some(reason.to_owned());
        if let Some(o) = order_id {
            sub.sellapp_order_id = Some(o.to_owned());
        }
        sub.push_history(HistoryEntry {
            at: now,
            cause: cause.key(),
            status,
            detail: reason.to_owned(),
        });
        lock.ensure_held()?;
        self.subscriptions().upsert(&id, &sub, None).await?;
        lock.ensure_held()?;
        let has_access = self.recompute_membership(email).await?;
        let action = if status == SubscriptionStatus::Expired {
            "expire"
        } else {
            "revoke"
        };
        self.audit(cause, action, email.as_str(), &format!("{plan}: {reason}"))
            .await?;
        Ok(format!(
            "{email} {plan}: {reason}; access {}",
            if has_access {
                "kept by another plan"
            } else {
                "off"
            }
        ))
    }

    /// Admin grant (`ops grant`, `/admin`): the plan is active, optionally until a date.
    pub async fn grant(
        &self,
        email: &Email,
        plan: &Plan,
        until: Option<OffsetDateTime>,
        cause: &Cause,
    ) -> Result<String, AccessError> {
        let grant = Grant {
            email,
            plan,
            order_id: None,
            subscription_id: None,
            period_end: until,
            renewal: false,
        };
        self.grant_plan(grant, cause, None).await
    }

    /// Admin revoke: every plan of the customer (or one), at once.
    pub async fn revoke(
        &self,
        email: &Email,
        plan: Option<&Plan>,
        cause: &Cause,
    ) -> Result<Vec<String>, AccessError> {
        let reason = match cause {
            Cause::Admin { reason, .. } => format!("revoked by admin: {reason}"),
            other => format!("revoked: {other}"),
        };
        let plans: Vec<Plan> = match plan {
            Some(p) => vec![p.clone()],
            None => self
                .subscriptions_of(email)
                .await?
                .into_iter()
                .filter(|d| d.data.grants_access(OffsetDateTime::now_utc()))
                .filter_map(|d| Plan::parse(&d.data.plan).ok())
                .collect(),
        };
        let mut out = Vec::new();
        for plan in plans {
            out.push(
                self.end_plan(
                    email,
                    &plan,
                    SubscriptionStatus::Revoked,
                    &reason,
                    None,
                    cause,
                )
                .await?,
            );
        }
        if out.is_empty() {
            // Nothing active, but make sure no stray membership survives.
            self.recompute_membership(email).await?;
        }
        Ok(out)
    }

    /// Every subscription of one customer, newest first.
    pub async fn subscriptions_of(
        &self,
        email: &Email,
    ) -> Result<Vec<Document<Subscription>>, AccessError> {
        Ok(self
            .subscriptions()
            .list::<Subscription>(&[
                Query::equal("email", email.as_str()),
                Query::order_desc("$updatedAt"),
                Query::limit(100),
            ])
            .await?
            .documents)
    }

    /// Expires every subscription whose paid period has ended by `now`. Returns how many.
    pub async fn expire_due(&self, now: OffsetDateTime) -> Result<usize, AccessError> {
        let due = self
            .subscriptions()
            .list_all::<Subscription>(
                &[
                    Query::equal("status", vec!["active", "cancelled"]),
                    Query::less_than_equal("period_end", g3_appwrite::format_datetime(now)),
                ],
                100,
            )
            .await?;
        let mut expired = 0;
        for doc in due {
            let (Ok(email), Ok(plan)) =
                (Email::parse(&doc.data.email), Plan::parse(&doc.data.plan))
            else {
                warn!(id = %doc.id, "subscription with an unreadable email or plan skipped");
                continue;
            };
            self.end_plan(
                &email,
                &plan,
                SubscriptionStatus::Expired,
                "paid period ended",
                None,
                &Cause::Job("expiry"),
            )
            .await?;
            expired += 1;
        }
        Ok(expired)
    }

    /// Makes `paid` membership match the customer's subscriptions. Returns whether they have access.
    pub async fn recompute_membership(&self, email: &Email) -> Result<bool, AccessError> {
        let now = OffsetDateTime::now_utc();
        let active: Vec<String> = self
            .subscriptions_of(email)
            .await?
            .into_iter()
            .filter(|d| d.data.grants_access(now))
            .map(|d| d.data.plan)
            .collect();
        let has_access = !active.is_empty();
        let teams = self.client.teams();
        let user_id = if has_access {
            let user_id = self.find_or_create_user(email).await?;
            teams
                .add_member_if_absent(TEAM_PAID, &user_id, &[] as &[&str])
                .await?;
            Some(user_id)
        } else {
            match self.client.users().find_by_email(email.as_str()).await? {
                Some(user) => {
                    teams.remove_member_if_present(TEAM_PAID, &user.id).await?;
                    Some(user.id)
                }
                None => None,
            }
        };
        if let Some(user_id) = user_id {
            let plans = if active.is_empty() {
                "none".to_owned()
            } else {
                active.join(", ")
            };
            self.sync_roles(&user_id, &format!("active plans: {plans}"))
                .await?;
        }
        Ok(has_access)
    }

    /// The customer's Appwrite user, created (unverified, no password) if they never signed up.
    pub async fn find_or_create_user(&self, email: &Email) -> Result<String, AccessError> {
        let users = self.client.users();
        if let Some(user) = users.find_by_email(email.as_str()).await? {
            return Ok(user.id);
        }
        let name = email.as_str().split('@').next().unwrap_or_default();
        match users
            .create(
                user_id_for(email).as_str(),
                email.as_str(),
                None,
                Some(name),
            )
            .await
        {
            Ok(user) => Ok(user.id),
            // Created concurrently by another delivery: read it back.
            Err(e) if e.is_conflict() => users
                .find_by_email(email.as_str())
                .await?
                .map(|u| u.id)
                .ok_or(AccessError::Backend(e)),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes one audit entry; the same cause, action and target is written once.
    pub async fn audit(
        &self,
        cause: &Cause,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), AccessError> {
        let id = ids::derive("audit", &[&cause.key(), action, target, detail]);
        let entry = AuditEntry {
            actor: truncate(&cause.actor(), 128),
            action: action.to_owned(),
            target: Some(truncate(target, 320)),
            detail: Some(truncate(&format!("{detail} ({cause})"), 4096)),
            at: OffsetDateTime::now_utc(),
        };
        self.client
            .documents(DATABASE_ID, AUDIT_LOG)
            .create_if_absent(&id, &entry, None)
            .await?;
        Ok(())
    }

    // ---- failures -------------------------------------------------------------------------

    /// Records (or updates) a failed delivery so it can be retried. Idempotent per delivery.
    pub async fn record_failure(&self, failure: NewFailure<'_>) -> Result<String, AccessError> {
        let id = failure_id(failure.delivery_id);
        let docs = self.client.documents(DATABASE_ID, WEBHOOK_FAILURES);
        let existing = docs.get_optional::<WebhookFailure>(&id).await?;
        let attempts = existing.as_ref().and_then(|d| d.data.attempts).unwrap_or(0);
        let state = if !failure.retryable || attempts >= MAX_ATTEMPTS {
            FailureState::Dead
        } else {
            FailureState::Pending
        };
        let doc = WebhookFailure {
            event_id: failure.delivery_id.to_owned(),
            event: failure.event.map(str::to_owned),
            email: failure.email.map(str::to_owned),
            payload: Some(String::from_utf8_lossy(failure.payload).into_owned()),
            headers: Some(failure.headers.to_owned()),
            error: Some(truncate(failure.error, 2048)),
            attempts: Some(attempts),
            next_retry_at: (state == FailureState::Pending).then(|| {
                let now = OffsetDateTime::now_utc();
                if failure.retry_now {
                    now
                } else {
                    now + retry_delay(attempts)
                }
            }),
            state,
        };
        docs.upsert(&id, &doc, None).await?;
        Ok(id)
    }

    /// Open failures (pending, retrying or dead), newest first.
    pub async fn list_failures(
        &self,
        include_resolved: bool,
    ) -> Result<Vec<Document<WebhookFailure>>, AccessError> {
        let mut queries = vec![Query::order_desc("$updatedAt"), Query::limit(100)];
        if !include_resolved {
            queries.push(Query::not_equal("state", "resolved"));
        }
        Ok(self
            .client
            .documents(DATABASE_ID, WEBHOOK_FAILURES)
            .list(&queries)
            .await?
            .documents)
    }

    pub async fn get_failure(
        &self,
        id: &str,
    ) -> Result<Option<Document<WebhookFailure>>, AccessError> {
        Ok(self
            .client
            .documents(DATABASE_ID, WEBHOOK_FAILURES)
            .get_optional(id)
            .await?)
    }

    /// Replays one failure. On success it is `resolved`; otherwise its attempts grow and the
    /// next try is scheduled (or it is `dead` after [`MAX_ATTEMPTS`] or when not retryable).
    pub async fn retry_failure(&self, id: &str) -> Result<Result<Outcome, String>, AccessError> {
        let docs = self.client.documents(DATABASE_ID, WEBHOOK_FAILURES);
        let Some(doc) = docs.get_optional::<WebhookFailure>(id).await? else {
            return Err(AccessError::Unprocessable(format!(
                "no failure with id {id}"
            )));
        };
        let mut failure = doc.data;
        let payload = failure.payload.clone().unwrap_or_default();
        let result = match Event::parse(payload.as_bytes()) {
            Ok(event) => self
                .handle_delivery(&failure.event_id, &event)
                .await
                .map_err(|e| (e.is_retryable(), e.to_string())),
            Err(e) => Err((false, format!("payload is not a Sell.app event: {e}"))),
        };
        let attempts = failure.attempts.unwrap_or(0) + 1;
        failure.attempts = Some(attempts);
        let report = match &result {
            Ok(outcome) => {
                failure.state = FailureState::Resolved;
                failure.next_retry_at = None;
                Ok(outcome.clone())
            }
            Err((retryable, message)) => {
                failure.error = Some(truncate(message, 2048));
                if *retryable && attempts < MAX_ATTEMPTS {
                    failure.state = FailureState::Pending;
                    failure.next_retry_at = Some(OffsetDateTime::now_utc() + retry_delay(attempts));
                } else {
                    failure.state = FailureState::Dead;
                    failure.next_retry_at = None;
                }
                Err(message.clone())
            }
        };
        docs.upsert(id, &failure, None).await?;
        Ok(report)
    }

    /// Failures whose next retry is due.
    pub async fn due_failures(&self, now: OffsetDateTime) -> Result<Vec<String>, AccessError> {
        Ok(self
            .client
            .documents(DATABASE_ID, WEBHOOK_FAILURES)
            .list::<WebhookFailure>(&[
                Query::equal("state", "pending"),
                Query::less_than_equal("next_retry_at", g3_appwrite::format_datetime(now)),
                Query::limit(100),
            ])
            .await?
            .documents
            .into_iter()
            .map(|d| d.id)
            .collect())
    }
}

/// A delivery that could not be applied.
pub struct NewFailure<'a> {
    pub delivery_id: &'a str,
    pub event: Option<&'a str>,
    pub email: Option<&'a str>,
    pub payload: &'a [u8],
    /// JSON object of the headers that matter.
    pub headers: &'a str,
    pub error: &'a str,
    /// False when retrying the same input cannot succeed (malformed JSON, unknown product).
    pub retryable: bool,
    /// Retry at the next worker pass instead of after the backoff delay (the outage that
    /// caused it is known to be over, e.g. when draining the local spool).
    pub retry_now: bool,
}

struct EndPlan<'a> {
    email: &'a Email,
    plan: &'a Plan,
    status: SubscriptionStatus,
    reason: &'a str,
    order_id: Option<&'a str>,
}

struct Grant<'a> {
    email: &'a Email,
    plan: &'a Plan,
    order_id: Option<&'a str>,
    subscription_id: Option<&'a str>,
    period_end: Option<OffsetDateTime>,
    renewal: bool,
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
