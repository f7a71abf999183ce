//! What the holder of one customer's lock knows about them, so that work under the lock decides
//! from what it already read or wrote instead of reading it back: their subscriptions, their
//! Appwrite user and `paid` membership, and, for a delivery, its own `webhook_events` record.
//!
//! Every subscription of a customer is written under their lock (`customer:<email>`). So when
//! the lock taken is the first generation of that key ([`LockGuard::is_first`]), nobody ever
//! wrote one: the customer has no subscription, known without a read. A write that finds a
//! document there anyway (a 409: the lock chain was lost, or a lease overran) fails retryably,
//! and the retry reads.

use g3_appwrite::Membership;
use g3_core::Email;
use g3_store::models::{EventStatus, Subscription, WebhookEvent};
use time::OffsetDateTime;

use crate::{Access, AccessError, LockGuard, customer_key};

/// A customer's lock, held, and what its holder knows about the customer.
pub(crate) struct Held<'a> {
    lock: &'a LockGuard,
    /// Every subscription of the customer as stored (id, document), once read or inferred.
    subscriptions: Option<Vec<(String, Subscription)>>,
    pub(crate) user: Option<KnownUser>,
    /// The delivery being applied under this lock, if any.
    record: Option<Record>,
}

/// The customer's Appwrite user, as far as this holder knows them.
#[derive(Debug, Clone)]
pub(crate) struct KnownUser {
    pub id: String,
    /// Whether their email is verified; `None` when not read.
    pub verified: Option<bool>,
    /// Created under this lock with an id Appwrite chose: unverified, and no Discord link or
    /// `role_state` document can name them yet.
    pub created: bool,
    pub paid: Paid,
}

/// A user's membership of team `paid`, as far as this holder knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Paid {
    Unknown,
    /// Not known, but no plan of theirs was active: most likely not a member.
    Unlikely,
    NotMember,
    Member {
        id: String,
        roles: Vec<String>,
    },
}

impl KnownUser {
    pub fn read(user: &g3_appwrite::User) -> Self {
        Self {
            id: user.id.clone(),
            verified: Some(user.email_verification),
            created: false,
            paid: Paid::Unknown,
        }
    }

    pub fn member_of(membership: &Membership) -> Paid {
        Paid::Member {
            id: membership.id.clone(),
            roles: membership.roles.clone(),
        }
    }
}

/// A delivery's `webhook_events` record, once looked up.
struct Record {
    id: String,
    state: Option<RecordState>,
}

/// What a delivery's stored record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordState {
    Absent,
    /// Received or failed: an attempt did not finish.
    Open,
    /// Processed or ignored, at this time.
    Final(Option<OffsetDateTime>),
}

impl RecordState {
    pub fn of(record: Option<&WebhookEvent>) -> Self {
        match record {
            None => RecordState::Absent,
            Some(r) if matches!(r.status, EventStatus::Processed | EventStatus::Ignored) => {
                RecordState::Final(r.processed_at)
            }
            Some(_) => RecordState::Open,
        }
    }
}

impl<'a> Held<'a> {
    /// `lock` must be the customer's lock.
    pub fn new(lock: &'a LockGuard) -> Self {
        Self {
            lock,
            subscriptions: lock.is_first().then(Vec::new),
            user: None,
            record: None,
        }
    }

    /// The same, for applying delivery `delivery_id`.
    pub fn for_delivery(lock: &'a LockGuard, delivery_id: &str) -> Self {
        Self {
            record: Some(Record {
                id: delivery_id.to_owned(),
                state: None,
            }),
            ..Self::new(lock)
        }
    }

    pub fn lock(&self) -> &LockGuard {
        self.lock
    }

    /// The customer's subscriptions, when known.
    pub fn subscriptions(&self) -> Option<&[(String, Subscription)]> {
        self.subscriptions.as_deref()
    }

    pub fn set_subscriptions(&mut self, read: Vec<(String, Subscription)>) {
        self.subscriptions = Some(read);
    }

    /// Records what was just written.
    pub fn remember(&mut self, id: &str, written: &Subscription) {
        if let Some(all) = &mut self.subscriptions {
            match all.iter_mut().find(|(known, _)| known == id) {
                Some((_, sub)) => *sub = written.clone(),
                None => all.push((id.to_owned(), written.clone())),
            }
        }
    }

    /// No plan of the customer was active before this change: their user is most likely not a
    /// member of `paid` (so adding them is tried before looking).
    pub fn expect_no_membership(&mut self) {
        if let Some(user) = &mut self.user
            && user.paid == Paid::Unknown
        {
            user.paid = Paid::Unlikely;
        }
    }

    /// What was known proved wrong: read again next time.
    pub fn forget(&mut self) {
        self.subscriptions = None;
        self.user = None;
    }

    /// The delivery's record state if already looked up.
    pub fn record_state(&self) -> Option<RecordState> {
        self.record.as_ref().and_then(|r| r.state)
    }
}

impl Access {
    /// Runs `work` holding the lock on one customer: `held` when it already is that lock,
    /// otherwise one taken here and released after.
    pub(crate) async fn with_customer_lock<T>(
        &self,
        email: &Email,
        held: Option<&mut Held<'_>>,
        work: impl AsyncFnOnce(&mut Held<'_>) -> Result<T, AccessError>,
    ) -> Result<T, AccessError> {
        let key = customer_key(email);
        if let Some(held) = held.filter(|h| h.lock.key() == key) {
            return work(held).await;
        }
        let own = self.locks.acquire(&key).await?;
        let result = work(&mut Held::new(&own)).await;
        own.release().await;
        result
    }

    /// The state of the delivery's own record (read once per delivery); `None` when no
    /// delivery is being applied under `held`.
    pub(crate) async fn delivery_record(
        &self,
        held: &mut Held<'_>,
    ) -> Result<Option<RecordState>, AccessError> {
        let Some(record) = &mut held.record else {
            return Ok(None);
        };
        if record.state.is_none() {
            record.state = Some(self.record_state_of(&record.id).await?);
        }
        Ok(record.state)
    }

    pub(crate) async fn record_state_of(&self, id: &str) -> Result<RecordState, AccessError> {
        let stored = self
            .collection::<WebhookEvent>()
            .get_optional(id)
            .await?
            .map(|d| d.data);
        Ok(RecordState::of(stored.as_ref()))
    }
}
