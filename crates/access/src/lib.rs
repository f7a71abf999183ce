//! Who has access, and why. Applies Sell.app deliveries, admin grants and revokes, and period
//! expiries to Appwrite: the `subscriptions` document per customer and plan, membership of team
//! `paid`, the desired Discord roles in `role_state`, the `webhook_events` record of every
//! delivery, the `webhook_failures` to retry and the `audit_log`.
//!
//! Every write is idempotent (deterministic ids, upserts, create-if-absent), so a delivery may
//! be applied any number of times, concurrently or out of order, and the state converges to
//! what the deliveries imply. Access itself is derived, never toggled: after any change the
//! customer's `paid` membership and roles are recomputed from all of their subscriptions.
//!
//! Read-modify-write of one customer's state runs under a lock that holds across processes
//! ([`locks`]): a delivery locks its customer (or, naming none, itself), so any number of
//! replicas apply concurrent deliveries as one process applying them in order would.
//!
//! Where things are: `delivery` turns a Sell.app event into plan changes (and records it once);
//! `grants` changes one customer's plans under their lock (`held`: what its holder knows, so
//! nothing written is read back) and tells a redelivery by its effect; `membership` finds or
//! creates their user and recomputes their `paid` membership; `roles` works out and records the
//! Discord roles that access leads to; `discord` links Discord accounts; `failures` keeps
//! deliveries that could not be applied and retries them; [`customer`] is one customer as staff
//! see them.

pub mod clock;
pub mod customer;
mod delivery;
mod discord;
mod failures;
mod grants;
mod held;
pub mod locks;
mod membership;
mod roles;
mod service;

pub use clock::Clock;
pub use delivery::{Outcome, effect_key};
pub use discord::LinkOutcome;
pub use failures::{MAX_ATTEMPTS, NewFailure, RetryOutcome, retry_delay};
pub use grants::{subscription_id, user_id_for};
pub use locks::{KeyGuard, KeyedLocks, LockError, LockGuard, LockTiming, Locks};
pub use roles::{DesiredRoles, RolesWhy, role_state_id};
pub use service::{SERVICE_ROLE, enlist_service_user};

use std::{fmt, sync::Arc};

use g3_appwrite::Client;
use g3_core::{Email, entitlements::PlanConfig, ids, plans::PlanCatalog, plans::PlanRoles};
use g3_store::{Collection, Model, models::AuditEntry};
use time::OffsetDateTime;

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

/// Applies access changes to Appwrite. Cheap to share (`Arc`).
pub struct Access {
    client: Client,
    plans: PlanCatalog,
    roles: PlanRoles,
    /// What each plan unlocks (for [`customer`]); by default every plan unlocks everything.
    plan_config: Arc<PlanConfig>,
    locks: Arc<Locks>,
    /// What "now" is when deciding whether a paid period still grants roles.
    clock: Clock,
}

impl Access {
    pub fn new(client: Client, plans: PlanCatalog) -> Self {
        Self {
            client: client.clone(),
            plans,
            roles: PlanRoles::default(),
            plan_config: Arc::default(),
            locks: Arc::new(Locks::new(client, LockTiming::default())),
            clock: Clock::default(),
        }
    }

    /// Decide role expiry by `clock` instead of the system's (tests move it forward).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Lock lifetimes other than the default (tests use short ones).
    pub fn with_lock_timing(mut self, timing: LockTiming) -> Self {
        self.locks = Arc::new(Locks::new(self.client.clone(), timing));
        self
    }

    /// Also keep `role_state` (the Discord roles each customer should have) up to date.
    pub fn with_roles(mut self, roles: PlanRoles) -> Self {
        self.roles = roles;
        self
    }

    /// Everything from the plan configuration: its products, its roles (as [`Self::with_roles`])
    /// and what each plan unlocks.
    pub fn with_plans(mut self, config: &PlanConfig) -> Self {
        self.plans = config.catalog().clone();
        self.roles = config.roles().clone();
        self.plan_config = Arc::new(config.clone());
        self
    }

    /// The plan configuration this instance was given.
    pub fn plan_config(&self) -> &PlanConfig {
        &self.plan_config
    }

    /// The cross-process locks this instance uses (also for other per-key work).
    pub fn locks(&self) -> &Arc<Locks> {
        &self.locks
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether stored deliveries can be replayed here (the product catalog is configured).
    pub fn can_replay(&self) -> bool {
        !self.plans.is_empty()
    }

    /// The typed handle of `M`'s collection.
    fn collection<M: Model>(&self) -> Collection<M> {
        Collection::new(&self.client)
    }

    /// Writes one audit entry; the same cause, action, target and detail is written once.
    pub async fn audit(
        &self,
        cause: &Cause,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), AccessError> {
        let entry = AuditEntry {
            actor: truncate(&cause.actor(), 128),
            action: action.to_owned(),
            target: Some(truncate(target, 320)),
            detail: Some(truncate(&format!("{detail} ({cause})"), 4096)),
            at: OffsetDateTime::now_utc(),
        };
        let id = audit_id(cause, action, target, detail);
        match self
            .collection::<AuditEntry>()
            .create(id, &entry, None)
            .await
        {
            Ok(_) => Ok(()),
            // Written before: by an earlier attempt, or this call's own retry.
            Err(e) if e.is_conflict() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the audit entry of this cause, action, target and detail exists.
    pub(crate) async fn audited(
        &self,
        cause: &Cause,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<bool, AccessError> {
        Ok(self
            .collection::<AuditEntry>()
            .get_optional(&audit_id(cause, action, target, detail))
            .await?
            .is_some())
    }
}

/// The id of an audit entry: one per cause, action, target and detail.
fn audit_id(cause: &Cause, action: &str, target: &str, detail: &str) -> String {
    ids::derive("audit", &[&cause.key(), action, target, detail])
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
