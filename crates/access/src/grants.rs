//! One customer's plans: grant, cancel at period end, end (revoke or expire), each under the
//! customer's lock, each written as the whole `subscriptions` document with a history line and
//! an audit entry; then the access they lead to (`paid` membership and desired roles) is
//! recomputed from the subscriptions already in hand, not read again.

use g3_appwrite::{Document, Query, User};
use g3_core::{Email, ids, plans::Plan};
use g3_store::{
    models::{HistoryEntry, Subscription, SubscriptionStatus},
    schema::TEAM_PAID,
};
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::{Access, AccessError, Cause, LockGuard};

/// A subscription document's id: one per customer and plan.
pub fn subscription_id(email: &Email, plan: &Plan) -> String {
    ids::derive("subscription", &[email.as_str(), plan.as_str()])
}

/// The id Appwrite users created for a purchase get, so concurrent deliveries for a new
/// customer cannot create two users.
pub fn user_id_for(email: &Email) -> String {
    ids::derive("user", &[email.as_str()])
}

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

/// Every subscription of one customer, read once under their lock: the one a change is about,
/// and the others that decide, with it, their membership and roles.
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

impl Access {
    /// The customer's subscriptions, split into the one of `plan` and the rest.
    async fn plans_of_customer(&self, email: &Email, plan: &Plan) -> Result<Plans, AccessError> {
        let id = subscription_id(email, plan);
        let mut current = None;
        let mut others = Vec::new();
        for doc in self.subscriptions_of(email).await? {
            if doc.id == id {
                current = Some(doc.data);
            } else {
                others.push(doc.data);
            }
        }
        Ok(Plans {
            id,
            current,
            others,
        })
    }

    /// Grants one plan to one customer. Returns a one-line description of what happened.
    pub(crate) async fn grant_plan(
        &self,
        grant: Grant<'_>,
        cause: &Cause,
        held: Option<&LockGuard>,
    ) -> Result<String, AccessError> {
        self.with_customer_lock(grant.email, held, async |lock| {
            self.grant_plan_locked(grant, cause, lock).await
        })
        .await
    }

    async fn grant_plan_locked(
        &self,
        grant: Grant<'_>,
        cause: &Cause,
        lock: &LockGuard,
    ) -> Result<String, AccessError> {
        let now = OffsetDateTime::now_utc();
        let plans = self.plans_of_customer(grant.email, grant.plan).await?;
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
                return Ok(format!(
                    "{} {}: order already disputed, not granted",
                    grant.email, grant.plan
                ));
            }
        }

        let user = self.find_or_create(grant.email).await?;
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
        sub.user_id = Some(user.id.clone());
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
        self.collection::<Subscription>()
            .upsert(&plans.id, &sub, None)
            .await?;
        lock.ensure_held()?;
        let reason = sub
            .grants_access(now)
            .then(|| format!("plan {} active", grant.plan));
        let has_access = self
            .converge(grant.email, Some(user), &plans.with(&sub), reason)
            .await?;
        self.audit(cause, "grant", grant.email.as_str(), &detail)
            .await?;
        Ok(format!(
            "{} {detail}: access {}",
            grant.email,
            if has_access { "on" } else { "off" }
        ))
    }

    /// The customer cancelled a subscription: it runs to the end of its paid period.
    pub(crate) async fn cancel_plan(
        &self,
        email: &Email,
        plan: &Plan,
        sellapp_subscription_id: &str,
        period_end: Option<OffsetDateTime>,
        cause: &Cause,
        held: Option<&LockGuard>,
    ) -> Result<String, AccessError> {
        self.with_customer_lock(email, held, async |lock| {
            self.cancel_plan_locked(
                email,
                plan,
                sellapp_subscription_id,
                period_end,
                cause,
                lock,
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
        lock: &LockGuard,
    ) -> Result<String, AccessError> {
        let now = OffsetDateTime::now_utc();
        let plans = self.plans_of_customer(email, plan).await?;
        let mut sub = plans.current.clone().unwrap_or_else(|| Subscription {
            sellapp_subscription_id: Some(sellapp_subscription_id.to_owned()),
            ..new_subscription(email, plan, SubscriptionStatus::Cancelled)
        });
        if matches!(
            sub.status,
            SubscriptionStatus::Revoked | SubscriptionStatus::Expired
        ) {
            return Ok(format!("{email} {plan}: already ended"));
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
        lock.ensure_held()?;
        self.collection::<Subscription>()
            .upsert(&plans.id, &sub, None)
            .await?;
        lock.ensure_held()?;
        self.converge(email, None, &plans.with(&sub), None).await?;
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

    pub(crate) async fn end_plan_with(
        &self,
        end: EndPlan<'_>,
        cause: &Cause,
        held: Option<&LockGuard>,
    ) -> Result<String, AccessError> {
        self.with_customer_lock(end.email, held, async |lock| {
            self.end_plan_locked(end, cause, lock).await
        })
        .await
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
        let plans = self.plans_of_customer(email, plan).await?;
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
        lock.ensure_held()?;
        self.collection::<Subscription>()
            .upsert(&plans.id, &sub, None)
            .await?;
        lock.ensure_held()?;
        let has_access = self.converge(email, None, &plans.with(&sub), None).await?;
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

    /// Makes `paid` membership match the customer's subscriptions. Returns whether they have access.
    pub async fn recompute_membership(&self, email: &Email) -> Result<bool, AccessError> {
        let subscriptions: Vec<Subscription> = self
            .subscriptions_of(email)
            .await?
            .into_iter()
            .map(|d| d.data)
            .collect();
        self.converge(email, None, &subscriptions, None).await
    }

    /// Makes `paid` membership and the desired roles match `subscriptions` (all of the
    /// customer's, as stored now). `user` is the customer's Appwrite user when the caller has
    /// it; `reason` says why in `role_state` (by default, the active plans). Returns whether
    /// they have access.
    async fn converge(
        &self,
        email: &Email,
        user: Option<User>,
        subscriptions: &[Subscription],
        reason: Option<String>,
    ) -> Result<bool, AccessError> {
        let now = OffsetDateTime::now_utc();
        let active: Vec<&str> = subscriptions
            .iter()
            .filter(|s| s.grants_access(now))
            .map(|s| s.plan.as_str())
            .collect();
        let has_access = !active.is_empty();
        let teams = self.client.teams();
        let user = if has_access {
            let user = match user {
                Some(user) => user,
                None => self.find_or_create(email).await?,
            };
            teams
                .add_member_if_absent(TEAM_PAID, &user.id, &[] as &[&str])
                .await?;
            Some(user)
        } else {
            let user = match user {
                Some(user) => Some(user),
                None => self.client.users().find_by_email(email.as_str()).await?,
            };
            if let Some(user) = &user {
                teams.remove_member_if_present(TEAM_PAID, &user.id).await?;
            }
            user
        };
        if let Some(user) = user {
            let reason = reason.unwrap_or_else(|| {
                let plans = if active.is_empty() {
                    "none".to_owned()
                } else {
                    active.join(", ")
                };
                format!("active plans: {plans}")
            });
            self.sync_roles_from(&user.id, user.email_verification, subscriptions, &reason)
                .await?;
        }
        Ok(has_access)
    }

    /// The customer's Appwrite user, created (unverified, no password) if they never signed up.
    pub async fn find_or_create_user(&self, email: &Email) -> Result<String, AccessError> {
        Ok(self.find_or_create(email).await?.id)
    }

    async fn find_or_create(&self, email: &Email) -> Result<User, AccessError> {
        let users = self.client.users();
        if let Some(user) = users.find_by_email(email.as_str()).await? {
            return Ok(user);
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
            Ok(user) => Ok(user),
            // Created concurrently by another delivery: read it back.
            Err(e) if e.is_conflict() => users
                .find_by_email(email.as_str())
                .await?
                .ok_or(AccessError::Backend(e)),
            Err(e) => Err(e.into()),
        }
    }
}
