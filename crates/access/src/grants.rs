//! One customer's plans: grant, cancel at period end, end (revoke or expire), each under the
//! customer's lock ([`Held`]), each written as the whole `subscriptions` document with a history
//! line; then the access it leads to (`paid` membership and desired roles, `membership`) is
//! recomputed from the subscriptions already in hand, not read again; the audit entry is last.
//!
//! The history line is keyed by the cause, so it marks a delivery's change as made. A delivery
//! that finds its line is a redelivery (under this delivery id or another) once what follows
//! the write is known done: its own record was made final after the line was written (records
//! are written last), or the change's audit entry exists. Otherwise an attempt crashed after the
//! write, and this one finishes the rest. The only thing done before the write is finding or
//! creating the customer's user, which is idempotent.

use g3_appwrite::{Document, Query};
use g3_core::{Email, ids, plans::Plan};
use g3_store::models::{HistoryEntry, Subscription, SubscriptionStatus};
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::{
    Access, AccessError, Cause,
    held::{Held, RecordState},
    membership::active_plans,
};

/// A subscription document's id: one per customer and plan.
pub fn subscription_id(email: &Email, plan: &Plan) -> String {
    ids::derive("subscription", &[email.as_str(), plan.as_str()])
}

/// The id Appwrite users created for a purchase get when the customer already has
/// subscriptions, so concurrent changes cannot create two users.
pub fn user_id_for(email: &Email) -> String {
    ids::derive("user", &[email.as_str()])
}

/// How many history entries a subscription keeps (`Subscription::push_history`).
const HISTORY_KEPT: usize = 100;

/// A plan to grant, and what the delivery says about it.
pub(crate) struct Grant<'a> {
    pub email: &'a Email,
    pub plan: &'a Plan,
    pub order_id: Option<&'a str>,
    pub subscription_id: Option<&'a str>,
    pub period_end: Option<OffsetDateTime>,
    pub renewal: bool,
}

/// A plan to end, and why.
pub(crate) struct EndPlan<'a> {
    pub email: &'a Email,
    pub plan: &'a Plan,
    pub status: SubscriptionStatus,
    pub reason: &'a str,
    pub order_id: Option<&'a str>,
}

/// What one plan change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Written; a one-line description.
    Changed(String),
    /// Nothing to write (already so, or refused); a one-line description.
    Unchanged(String),
    /// A delivery's change that was already made in full.
    Seen,
}

impl Step {
    pub fn describe(self) -> String {
        match self {
            Step::Changed(d) | Step::Unchanged(d) => d,
            Step::Seen => "already applied".into(),
        }
    }
}

/// How far a delivery's change to one subscription already went.
enum Mark {
    /// Not made (or the cause is no delivery): make it.
    New,
    /// Made in full.
    Done,
    /// Written, but what follows the write may be missing: the history line it left.
    Written(HistoryEntry),
}

/// Every subscription of one customer: the one a change is about, and the others that decide,
/// with it, their membership and roles.
struct Plans {
    id: String,
    current: Option<Subscription>,
    others: Vec<Subscription>,
}

impl Plans {
    /// `others` plus `written`: what the customer holds once it is stored.
    fn with(&self, written: &Subscription) -> Vec<Subscription> {
        let mut all = self.others.clone();
        all.push(written.clone());
        all
    }

    /// What the customer holds now.
    fn stored(&self) -> Vec<Subscription> {
        let mut all = self.others.clone();
        all.extend(self.current.clone());
        all
    }

    /// The customer has no subscription at all.
    fn none(&self) -> bool {
        self.current.is_none() && self.others.is_empty()
    }
}

/// A fresh subscription document of one customer and plan.
fn new_subscription(email: &Email, plan: &Plan, status: SubscriptionStatus) -> Subscription {
    Subscription {
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
    }
}

fn access_word(has_access: bool) -> &'static str {
    if has_access { "on" } else { "off" }
}

impl Access {
    /// The customer's subscriptions, split into the one of `plan` and the rest: as `held`
    /// knows them, or read once.
    async fn plans_of_customer(
        &self,
        email: &Email,
        plan: &Plan,
        held: &mut Held<'_>,
    ) -> Result<Plans, AccessError> {
        let all = match held.subscriptions() {
            Some(known) => known.to_vec(),
            None => {
                let read: Vec<(String, Subscription)> = self
                    .subscriptions_of(email)
                    .await?
                    .into_iter()
                    .map(|d| (d.id, d.data))
                    .collect();
                held.set_subscriptions(read.clone());
                read
            }
        };
        let id = subscription_id(email, plan);
        let mut current = None;
        let mut others = Vec::new();
        for (doc_id, sub) in all {
            if doc_id == id {
                current = Some(sub);
            } else {
                others.push(sub);
            }
        }
        Ok(Plans {
            id,
            current,
            others,
        })
    }

    /// How far `cause` already changed `sub`; `audit` is the change's audit action, and
    /// `detail` its audit detail from its history line.
    async fn mark(
        &self,
        cause: &Cause,
        sub: Option<&Subscription>,
        held: &mut Held<'_>,
        (action, target): (&str, &str),
        detail: impl Fn(&HistoryEntry) -> String,
    ) -> Result<Mark, AccessError> {
        let (Cause::Delivery(_), Some(sub)) = (cause, sub) else {
            return Ok(Mark::New);
        };
        let key = cause.key();
        let history = sub.history();
        let Some(line) = history.iter().rev().find(|h| h.cause == key) else {
            // Past the kept history only the delivery's own record can tell.
            if history.len() >= HISTORY_KEPT
                && matches!(
                    self.delivery_record(held).await?,
                    Some(RecordState::Final(_))
                )
            {
                return Ok(Mark::Done);
            }
            return Ok(Mark::New);
        };
        if let Some(RecordState::Final(Some(at))) = self.delivery_record(held).await?
            && at >= line.at
        {
            return Ok(Mark::Done);
        }
        if self.audited(cause, action, target, &detail(line)).await? {
            Ok(Mark::Done)
        } else {
            Ok(Mark::Written(line.clone()))
        }
    }

    /// Stores the whole subscription document: replaced when it exists, created when the
    /// customer is known to have none of this plan (a 409 says that knowledge was wrong).
    async fn store(
        &self,
        plans: &Plans,
        sub: &Subscription,
        held: &mut Held<'_>,
    ) -> Result<(), AccessError> {
        held.lock().ensure_held()?;
        let docs = self.collection::<Subscription>();
        if plans.current.is_some() {
            docs.upsert(&plans.id, sub, None).await?;
        } else {
            match docs.create(plans.id.as_str(), sub, None).await {
                Ok(_) => {}
                Err(e) if e.is_conflict() => {
                    held.forget();
                    return Err(AccessError::Busy(format!(
                        "the {} plan of {} was written meanwhile; try again",
                        sub.plan, sub.email
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
        held.remember(&plans.id, sub);
        held.lock().ensure_held()?;
        Ok(())
    }

    /// Finishes a change whose subscription write landed but whose membership, roles or audit
    /// entry may not have: recomputes access from what is stored and writes the audit entry.
    async fn finish(
        &self,
        email: &Email,
        (action, detail): (&str, &str),
        cause: &Cause,
        held: &mut Held<'_>,
        stored: &[Subscription],
    ) -> Result<Step, AccessError> {
        held.lock().ensure_held()?;
        let has_access = self.converge(email, &mut held.user, stored, None).await?;
        self.audit(cause, action, email.as_str(), detail).await?;
        Ok(Step::Changed(format!(
            "{email} {detail}: finished, access {}",
            access_word(has_access)
        )))
    }

    /// Grants one plan to one customer.
    pub(crate) async fn grant_plan(
        &self,
        grant: Grant<'_>,
        cause: &Cause,
        held: Option<&mut Held<'_>>,
    ) -> Result<Step, AccessError> {
        self.with_customer_lock(grant.email, held, async |held| {
            self.grant_plan_locked(&grant, cause, held).await
        })
        .await
    }

    async fn grant_plan_locked(
        &self,
        grant: &Grant<'_>,
        cause: &Cause,
        held: &mut Held<'_>,
    ) -> Result<Step, AccessError> {
        let now = OffsetDateTime::now_utc();
        let plans = self
            .plans_of_customer(grant.email, grant.plan, held)
            .await?;
        let target = grant.email.as_str();
        match self
            .mark(
                cause,
                plans.current.as_ref(),
                held,
                ("grant", target),
                |h| h.detail.clone(),
            )
            .await?
        {
            Mark::Done => return Ok(Step::Seen),
            Mark::Written(line) => {
                return self
                    .finish(
                        grant.email,
                        ("grant", &line.detail),
                        cause,
                        held,
                        &plans.stored(),
                    )
                    .await;
            }
            Mark::New => {}
        }
        let existing = plans.current.clone();

        if let Some(s) = &existing {
            let disputed_same_order = s.status == SubscriptionStatus::Revoked
                && s.reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with("dispute"))
                && grant.order_id.is_some()
                && s.sellapp_order_id.as_deref() == grant.order_id;
            if disputed_same_order {
                info!("payment for an order that was already disputed: access stays revoked");
                return Ok(Step::Unchanged(format!(
                    "{} {}: order already disputed, not granted",
                    grant.email, grant.plan
                )));
            }
        }

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
        let mut sub = existing.unwrap_or_else(|| new_subscription(grant.email, grant.plan, status));
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
        let user = {
            let after = plans.with(&sub);
            let active = active_plans(&after, now);
            self.customer_user(grant.email, held, plans.none(), &active)
                .await?
        };
        sub.user_id = Some(user.id);
        if active_plans(&plans.stored(), now).is_empty() {
            held.expect_no_membership();
        }
        sub.push_history(HistoryEntry {
            at: now,
            cause: cause.key(),
            status,
            detail: detail.clone(),
        });
        self.store(&plans, &sub, held).await?;
        let reason = sub
            .grants_access(now)
            .then(|| format!("plan {} active", grant.plan));
        let has_access = self
            .converge(grant.email, &mut held.user, &plans.with(&sub), reason)
            .await?;
        self.audit(cause, "grant", target, &detail).await?;
        Ok(Step::Changed(format!(
            "{} {detail}: access {}",
            grant.email,
            access_word(has_access)
        )))
    }

    /// The customer cancelled a subscription: it runs to the end of its paid period.
    pub(crate) async fn cancel_plan(
        &self,
        email: &Email,
        plan: &Plan,
        sellapp_subscription_id: &str,
        period_end: Option<OffsetDateTime>,
        cause: &Cause,
        held: Option<&mut Held<'_>>,
    ) -> Result<Step, AccessError> {
        self.with_customer_lock(email, held, async |held| {
            self.cancel_plan_locked(
                email,
                plan,
                sellapp_subscription_id,
                period_end,
                cause,
                held,
            )
            .await
        })
        .await
    }

    async fn cancel_plan_locked(
        &self,
        email: &Email,
        plan: &Plan,
        sellapp_subscription_id: &str,
        period_end: Option<OffsetDateTime>,
        cause: &Cause,
        held: &mut Held<'_>,
    ) -> Result<Step, AccessError> {
        let now = OffsetDateTime::now_utc();
        let plans = self.plans_of_customer(email, plan, held).await?;
        let audit_detail = |detail: &str| format!("{plan}: {detail}");
        match self
            .mark(
                cause,
                plans.current.as_ref(),
                held,
                ("cancel", email.as_str()),
                |h| audit_detail(&h.detail),
            )
            .await?
        {
            Mark::Done => return Ok(Step::Seen),
            Mark::Written(line) => {
                let detail = audit_detail(&line.detail);
                return self
                    .finish(email, ("cancel", &detail), cause, held, &plans.stored())
                    .await;
            }
            Mark::New => {}
        }
        let mut sub = plans.current.clone().unwrap_or_else(|| Subscription {
            sellapp_subscription_id: Some(sellapp_subscription_id.to_owned()),
            ..new_subscription(email, plan, SubscriptionStatus::Cancelled)
        });
        if matches!(
            sub.status,
            SubscriptionStatus::Revoked | SubscriptionStatus::Expired
        ) {
            return Ok(Step::Unchanged(format!("{email} {plan}: already ended")));
        }
        sub.period_end = match (sub.period_end, period_end) {
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
        self.store(&plans, &sub, held).await?;
        self.converge(email, &mut held.user, &plans.with(&sub), None)
            .await?;
        self.audit(cause, "cancel", email.as_str(), &audit_detail(&detail))
            .await?;
        Ok(Step::Changed(format!("{email} {plan}: {detail}")))
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
        Ok(self.end_plan_with(end, cause, None).await?.describe())
    }

    pub(crate) async fn end_plan_with(
        &self,
        end: EndPlan<'_>,
        cause: &Cause,
        held: Option<&mut Held<'_>>,
    ) -> Result<Step, AccessError> {
        self.with_customer_lock(end.email, held, async |held| {
            self.end_plan_locked(&end, cause, held).await
        })
        .await
    }

    async fn end_plan_locked(
        &self,
        end: &EndPlan<'_>,
        cause: &Cause,
        held: &mut Held<'_>,
    ) -> Result<Step, AccessError> {
        let EndPlan {
            email,
            plan,
            status,
            reason,
            order_id,
        } = *end;
        let now = OffsetDateTime::now_utc();
        let action = if status == SubscriptionStatus::Expired {
            "expire"
        } else {
            "revoke"
        };
        let plans = self.plans_of_customer(email, plan, held).await?;
        match self
            .mark(
                cause,
                plans.current.as_ref(),
                held,
                (action, email.as_str()),
                |h| format!("{plan}: {}", h.detail),
            )
            .await?
        {
            Mark::Done => return Ok(Step::Seen),
            Mark::Written(line) => {
                let detail = format!("{plan}: {}", line.detail);
                return self
                    .finish(email, (action, &detail), cause, held, &plans.stored())
                    .await;
            }
            Mark::New => {}
        }
        let mut sub = plans
            .current
            .clone()
            .unwrap_or_else(|| new_subscription(email, plan, status));
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
        self.store(&plans, &sub, held).await?;
        let has_access = self
            .converge(email, &mut held.user, &plans.with(&sub), None)
            .await?;
        self.audit(cause, action, email.as_str(), &format!("{plan}: {reason}"))
            .await?;
        Ok(Step::Changed(format!(
            "{email} {plan}: {reason}; access {}",
            if has_access {
                "kept by another plan"
            } else {
                "off"
            }
        )))
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
        Ok(self.grant_plan(grant, cause, None).await?.describe())
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
            .collection::<Subscription>()
            .list(&[
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
            .collection::<Subscription>()
            .list_all(
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
}
