//! A customer's Appwrite user and their `paid` membership: found, or created in as few calls as
//! what the lock's holder knows allows ([`Held`]), then made to match their subscriptions: the
//! membership exists exactly while a plan is active, its roles are the active plans (web reads
//! them with the membership), and the desired Discord roles follow (`roles`).

use g3_appwrite::{Id, User};
use g3_core::{Email, entitlements::membership_roles};
use g3_store::{models::Subscription, schema::TEAM_PAID};
use time::OffsetDateTime;

use crate::{
    Access, AccessError,
    grants::user_id_for,
    held::{Held, KnownUser, Paid},
};

/// The plans of `subscriptions` that give access at `now`.
pub(crate) fn active_plans(subscriptions: &[Subscription], now: OffsetDateTime) -> Vec<&str> {
    subscriptions
        .iter()
        .filter(|s| s.grants_access(now))
        .map(|s| s.plan.as_str())
        .collect()
}

/// The name Appwrite users created for a purchase get: the email's local part.
fn name_of(email: &Email) -> &str {
    email.as_str().split('@').next().unwrap_or_default()
}

impl Access {
    /// The customer's Appwrite user, for a change under their lock that needs one. A customer
    /// with no subscription yet (`new_customer`) is most likely unknown to Appwrite too, so
    /// their user is created in the same call that adds them to `paid` (`active`: the plans they
    /// will hold) when no Discord roles are managed, or created with an id Appwrite picks when
    /// they are (which proves nothing can be recorded about them yet). Anyone else is found by
    /// email (and created if missing).
    pub(crate) async fn customer_user(
        &self,
        email: &Email,
        held: &mut Held<'_>,
        new_customer: bool,
        active: &[&str],
    ) -> Result<KnownUser, AccessError> {
        if let Some(user) = &held.user {
            return Ok(user.clone());
        }
        held.lock().ensure_held()?;
        let user = if new_customer && !active.is_empty() && self.roles.is_empty() {
            self.join_paid_by_email(email, active).await?
        } else if new_customer {
            self.create_user(email).await?
        } else {
            KnownUser::read(&self.find_or_create(email).await?)
        };
        held.user = Some(user.clone());
        Ok(user)
    }

    async fn join_paid_by_email(
        &self,
        email: &Email,
        active: &[&str],
    ) -> Result<KnownUser, AccessError> {
        let roles = membership_roles(active.iter().copied());
        match self
            .client
            .teams()
            .create_membership_by_email(TEAM_PAID, email.as_str(), Some(name_of(email)), &roles)
            .await
        {
            Ok(membership) => Ok(KnownUser {
                id: membership.user_id.clone(),
                verified: None,
                created: false,
                paid: KnownUser::member_of(&membership),
            }),
            // Already a member: their roles are checked when access is made to match.
            Err(e) if e.is_conflict() => Ok(KnownUser::read(&self.find_or_create(email).await?)),
            Err(e) => Err(e.into()),
        }
    }

    async fn create_user(&self, email: &Email) -> Result<KnownUser, AccessError> {
        let users = self.client.users();
        match users
            .create(Id::unique(), email.as_str(), None, Some(name_of(email)))
            .await
        {
            Ok(user) => Ok(KnownUser {
                created: true,
                paid: Paid::NotMember,
                ..KnownUser::read(&user)
            }),
            // Signed up before paying.
            Err(e) if e.is_conflict() => match users.find_by_email(email.as_str()).await? {
                Some(user) => Ok(KnownUser::read(&user)),
                None => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Makes `paid` membership match the customer's subscriptions. Returns whether they have access.
    pub async fn recompute_membership(&self, email: &Email) -> Result<bool, AccessError> {
        let subscriptions: Vec<Subscription> = self
            .subscriptions_of(email)
            .await?
            .into_iter()
            .map(|d| d.data)
            .collect();
        self.converge(email, &mut None, &subscriptions, None).await
    }

    /// Makes `paid` membership and the desired roles match `subscriptions` (all of the
    /// customer's, as stored now). `user` is the customer's Appwrite user when the caller knows
    /// it, and what is learnt about them here; `reason` says why in `role_state` (by default,
    /// the active plans). Returns whether they have access.
    pub(crate) async fn converge(
        &self,
        email: &Email,
        user: &mut Option<KnownUser>,
        subscriptions: &[Subscription],
        reason: Option<String>,
    ) -> Result<bool, AccessError> {
        let active = active_plans(subscriptions, OffsetDateTime::now_utc());
        let has_access = !active.is_empty();
        if has_access {
            let known = match user {
                Some(known) => known,
                None => user.insert(KnownUser::read(&self.find_or_create(email).await?)),
            };
            self.join_paid(known, &membership_roles(active.iter().copied()))
                .await?;
        } else {
            if user.is_none() {
                *user = self
                    .client
                    .users()
                    .find_by_email(email.as_str())
                    .await?
                    .map(|u| KnownUser::read(&u));
            }
            if let Some(known) = user.as_mut() {
                self.leave_paid(known).await?;
            }
        }
        let Some(known) = user.as_mut() else {
            return Ok(has_access);
        };
        // A user created under this lock is unverified and nothing names them yet: no roles are
        // due and none are recorded, so there is nothing to read or write.
        if self.roles.is_empty() || known.created {
            return Ok(has_access);
        }
        let verified = match known.verified {
            Some(verified) => verified,
            None => {
                let verified = self.client.users().get(&known.id).await?.email_verification;
                known.verified = Some(verified);
                verified
            }
        };
        let reason = reason.unwrap_or_else(|| {
            let plans = if active.is_empty() {
                "none".to_owned()
            } else {
                active.join(", ")
            };
            format!("active plans: {plans}")
        });
        self.sync_roles_from(&known.id, verified, subscriptions, &reason)
            .await?;
        Ok(has_access)
    }

    /// Makes the user a member of `paid` holding exactly `roles` (sorted, each once).
    async fn join_paid(&self, user: &mut KnownUser, roles: &[String]) -> Result<(), AccessError> {
        let teams = self.client.teams();
        let existing = match std::mem::replace(&mut user.paid, Paid::Unknown) {
            Paid::Member { id, roles } => Some((id, roles)),
            Paid::NotMember | Paid::Unlikely => None,
            Paid::Unknown => teams
                .find_membership(TEAM_PAID, &user.id)
                .await?
                .map(|m| (m.id, m.roles)),
        };
        let membership = match existing {
            Some((id, mut have)) => {
                let held = have.clone();
                have.sort_unstable();
                have.dedup();
                if have == roles {
                    user.paid = Paid::Member { id, roles: held };
                    return Ok(());
                }
                teams.update_membership_roles(TEAM_PAID, &id, roles).await?
            }
            None => match teams.create_membership(TEAM_PAID, &user.id, roles).await {
                Ok(m) => m,
                // Added meanwhile, or an earlier attempt of this call landed.
                Err(e) if e.is_conflict() => teams
                    .set_member_roles(TEAM_PAID, &user.id, roles)
                    .await?
                    .into_inner(),
                Err(e) => return Err(e.into()),
            },
        };
        user.paid = KnownUser::member_of(&membership);
        Ok(())
    }

    async fn leave_paid(&self, user: &mut KnownUser) -> Result<(), AccessError> {
        let teams = self.client.teams();
        match &user.paid {
            Paid::NotMember => {}
            Paid::Member { id, .. } => match teams.delete_membership(TEAM_PAID, id).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            },
            Paid::Unknown | Paid::Unlikely => {
                teams.remove_member_if_present(TEAM_PAID, &user.id).await?;
            }
        }
        user.paid = Paid::NotMember;
        Ok(())
    }

    /// The customer's Appwrite user, created (unverified, no password) if they never signed up.
    pub async fn find_or_create_user(&self, email: &Email) -> Result<String, AccessError> {
        Ok(self.find_or_create(email).await?.id)
    }

    pub(crate) async fn find_or_create(&self, email: &Email) -> Result<User, AccessError> {
        let users = self.client.users();
        if let Some(user) = users.find_by_email(email.as_str()).await? {
            return Ok(user);
        }
        match users
            .create(
                user_id_for(email).as_str(),
                email.as_str(),
                None,
                Some(name_of(email)),
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
