//! Sell.app deliveries: the translation of an event into plan changes (grant, extend, dispute,
//! cancel) that `grants` applies, once in effect, and the `webhook_events` record that keeps
//! every delivery with what became of it.

use g3_appwrite::Query;
use g3_core::{
    Email, ids,
    plans::Plan,
    sellapp::{Effect, Event},
};
use g3_store::models::{EventStatus, Subscription, WebhookEvent};
use time::OffsetDateTime;
use tracing::{instrument, warn};

use crate::{
    Access, AccessError, Cause, LockGuard, customer_key,
    grants::{EndPlan, Grant, Step},
    held::{Held, RecordState},
    truncate,
};

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

/// What applying an event did, and whether it wrote anything.
pub(crate) struct Applied {
    outcome: Outcome,
    changed: bool,
}

impl Applied {
    fn ignored() -> Self {
        Self {
            outcome: Outcome::Ignored,
            changed: false,
        }
    }

    /// The plan changes of one event: a duplicate when every one of them was already made.
    fn of(steps: Vec<Step>) -> Self {
        if !steps.is_empty() && steps.iter().all(|s| *s == Step::Seen) {
            return Self {
                outcome: Outcome::Duplicate,
                changed: false,
            };
        }
        let changed = steps.iter().any(|s| matches!(s, Step::Changed(_)));
        let described: Vec<String> = steps.into_iter().map(Step::describe).collect();
        Self {
            outcome: Outcome::Applied(described.join("; ")),
            changed,
        }
    }
}

impl Access {
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

    /// Applies the delivery, then writes its record once, with its final status. Whether it was
    /// applied before is told by its effects (see `grants`), not by reading the record first;
    /// an event with no effect to mark (ignored, or refused) is told by the record.
    async fn handle_locked(
        &self,
        delivery_id: &str,
        event: &Event,
        lock: &LockGuard,
    ) -> Result<Outcome, AccessError> {
        let received_at = OffsetDateTime::now_utc();
        // Naming its customer, the delivery holds that customer's lock: what is learnt under it
        // is kept for every plan the event names.
        let mut held = event
            .email
            .is_some()
            .then(|| Held::for_delivery(lock, delivery_id));
        // The effects (history, audit, membership) are keyed by what the delivery says, not by
        // its delivery id: the same order event redelivered under another id applies once.
        let cause = Cause::Delivery(effect_key(delivery_id, event));
        let result = self.apply_locked(event, &cause, held.as_mut()).await;
        let known = held.as_ref().and_then(Held::record_state);
        drop(held);
        let (status, detail, changed) = match &result {
            Ok(a) => match &a.outcome {
                Outcome::Ignored => (EventStatus::Ignored, "event not acted on".to_owned(), false),
                Outcome::Applied(d) => (EventStatus::Processed, d.clone(), a.changed),
                Outcome::Duplicate => (EventStatus::Processed, "already applied".to_owned(), false),
            },
            Err(e) => (EventStatus::Failed, e.to_string(), false),
        };
        let record = WebhookEvent {
            event: event.kind.as_str().to_owned(),
            order_id: event.object_id.clone(),
            store_id: event.store_id.clone(),
            email: event.email.as_ref().map(|e| e.as_str().to_owned()),
            status,
            received_at,
            processed_at: Some(OffsetDateTime::now_utc()),
            detail: Some(truncate(&detail, 1024)),
        };
        // A delivery whose lock ran out is not recorded: its retry applies it again under a
        // new lock.
        let stored = match lock.ensure_held() {
            Ok(()) => {
                self.store_record(delivery_id, &record, known, changed)
                    .await
            }
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(applied) => Ok(if stored? {
                Outcome::Duplicate
            } else {
                applied.outcome
            }),
            // Best effort when the backend is the problem: the failure is recorded elsewhere.
            Err(e) => {
                if let Err(not_stored) = stored {
                    warn!(error = %not_stored, "the failed delivery's record was not written");
                }
                Err(e)
            }
        }
    }

    /// Writes the delivery's record (`known`: what it was found to say, if looked up). Returns
    /// whether this was a redelivery after all: a final record was there and this attempt
    /// `changed` nothing (which also leaves a success unspoilt by a later failure).
    async fn store_record(
        &self,
        id: &str,
        record: &WebhookEvent,
        known: Option<RecordState>,
        changed: bool,
    ) -> Result<bool, AccessError> {
        let events = self.collection::<WebhookEvent>();
        let stored = match known {
            Some(RecordState::Absent) | None => match events.create(id, record, None).await {
                Ok(_) => return Ok(false),
                Err(e) if e.is_conflict() && !changed => self.record_state_of(id).await?,
                Err(e) if e.is_conflict() => RecordState::Open,
                Err(e) => return Err(e.into()),
            },
            Some(state) => state,
        };
        if matches!(stored, RecordState::Final(_)) && !changed {
            return Ok(true);
        }
        let patch = serde_json::json!({
            "status": record.status,
            "processed_at": record.processed_at.map(g3_appwrite::format_datetime),
            "detail": record.detail,
        });
        events.update(id, &patch, None).await?;
        Ok(false)
    }

    /// The effect of an event, without the idempotency record (under the customer's lock).
    pub async fn apply_event(&self, event: &Event, cause: &Cause) -> Result<Outcome, AccessError> {
        let lock = match &event.email {
            Some(email) => Some(self.locks.acquire(&customer_key(email)).await?),
            None => None,
        };
        let mut held = lock.as_ref().map(Held::new);
        let result = self.apply_locked(event, cause, held.as_mut()).await;
        drop(held);
        if let Some(lock) = lock {
            lock.release().await;
        }
        result.map(|a| a.outcome)
    }

    /// The effect of an event; `held` is the customer's lock the caller holds, if any.
    async fn apply_locked(
        &self,
        event: &Event,
        cause: &Cause,
        held: Option<&mut Held<'_>>,
    ) -> Result<Applied, AccessError> {
        match event.kind.effect() {
            Effect::Ignore => Ok(Applied::ignored()),
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
        mut held: Option<&mut Held<'_>>,
    ) -> Result<Applied, AccessError> {
        let email = event.email.clone().ok_or_else(|| {
            AccessError::Unprocessable("the event carries no customer email".into())
        })?;
        let mut plans = self.plans_of(event)?;
        if plans.is_empty() {
            // Renewals may name only the subscription: extend what it granted before.
            if let Some(sub_id) = &event.subscription_id {
                plans = self
                    .collection::<Subscription>()
                    .list(&[
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
            applied.push(self.grant_plan(grant, cause, held.as_deref_mut()).await?);
        }
        Ok(Applied::of(applied))
    }

    async fn apply_dispute(
        &self,
        event: &Event,
        cause: &Cause,
        mut held: Option<&mut Held<'_>>,
    ) -> Result<Applied, AccessError> {
        let order_id = event.object_id.clone();
        let mut touched = Vec::new();
        // Subscriptions granted by this order (the normal case) ...
        let mut targets: Vec<(Email, Plan)> = Vec::new();
        if let Some(order) = &order_id {
            for doc in self
                .collection::<Subscription>()
                .list(&[
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
                status: g3_store::models::SubscriptionStatus::Revoked,
                reason: &reason,
                order_id: order_id.as_deref(),
            };
            touched.push(self.end_plan_with(end, cause, held.as_deref_mut()).await?);
        }
        Ok(Applied::of(touched))
    }

    async fn apply_cancel(
        &self,
        event: &Event,
        cause: &Cause,
        mut held: Option<&mut Held<'_>>,
    ) -> Result<Applied, AccessError> {
        let Some(sub_id) = event
            .subscription_id
            .as_deref()
            .or(event.object_id.as_deref())
        else {
            return Err(AccessError::Unprocessable(
                "cancellation names no subscription".into(),
            ));
        };
        let mut targets: Vec<(Email, Plan)> = self
            .collection::<Subscription>()
            .list(&[
                Query::equal("sellapp_subscription_id", sub_id),
                Query::limit(100),
            ])
            .await?
            .documents
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
            touched.push(
                self.cancel_plan(
                    &email,
                    &plan,
                    sub_id,
                    event.period_end,
                    cause,
                    held.as_deref_mut(),
                )
                .await?,
            );
        }
        Ok(Applied::of(touched))
    }
}
