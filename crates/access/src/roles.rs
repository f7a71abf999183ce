//! The Discord roles access leads to. They are derived, never toggled: verified email + an
//! active paid plan + a Discord link → the plan's roles; anything else → none of the roles we
//! manage. [`Access::desired_from`] decides from what the caller already read;
//! [`Access::sync_roles`] writes the result to `role_state`, which the bot converges Discord to.

use g3_appwrite::{Document, Query};
use g3_core::{Email, ids};
use g3_store::{
    Collection,
    models::{RoleState, Subscription},
};
use serde_json::json;
use time::OffsetDateTime;

use crate::{Access, AccessError, Cause, truncate};

/// The roles one customer should hold, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRoles {
    pub roles: Vec<String>,
    pub discord_user_id: Option<String>,
    pub why: RolesWhy,
}

/// Why a customer should hold the roles of [`DesiredRoles`], or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolesWhy {
    /// No account has the email looked up.
    NoAccount,
    /// No account has the user id asked about.
    NoSuchUser,
    NoActivePlan,
    EmailNotVerified,
    DiscordNotLinked,
    /// The roles of these plans (keys, in the order of the subscriptions).
    ActivePlans(Vec<String>),
}

impl RolesWhy {
    /// In words, with each plan called what `name` calls its key (the key itself in logs and
    /// `role_state`, the configured name on admin pages).
    pub fn describe(&self, name: impl Fn(&str) -> String) -> String {
        match self {
            RolesWhy::NoAccount => "no account".into(),
            RolesWhy::NoSuchUser => "no such user".into(),
            RolesWhy::NoActivePlan => "no active plan".into(),
            RolesWhy::EmailNotVerified => "email not verified".into(),
            RolesWhy::DiscordNotLinked => "Discord not linked".into(),
            RolesWhy::ActivePlans(plans) => {
                let names: Vec<String> = plans.iter().map(|p| name(p)).collect();
                format!("active plans: {}", names.join(", "))
            }
        }
    }
}

/// Plans by key.
impl std::fmt::Display for RolesWhy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe(str::to_owned))
    }
}

/// The `role_state` document id of one user and role.
pub fn role_state_id(user_id: &str, role_id: &str) -> String {
    ids::derive("role", &[user_id, role_id])
}

impl Access {
    fn role_state(&self) -> Collection<RoleState> {
        self.collection()
    }

    /// The roles this service manages (from `PLAN_ROLES`); empty when role sync is off.
    pub fn managed_roles(&self) -> Vec<String> {
        self.roles
            .managed()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Works out the roles a customer should hold now: verified email, an active plan (paid,
    /// or cancelled within its paid period) and a Discord link → that plan's roles.
    pub async fn desired_roles(&self, user_id: &str) -> Result<DesiredRoles, AccessError> {
        let user = match self.client.users().get(user_id).await {
            Ok(u) => Some(u),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let link = self.discord_link(user_id).await?;
        let discord_user_id = link.map(|l| l.discord_user_id);
        let Some(user) = user else {
            return Ok(DesiredRoles {
                roles: Vec::new(),
                discord_user_id,
                why: RolesWhy::NoSuchUser,
            });
        };
        let subscriptions = match Email::parse(&user.email) {
            Ok(email) => self.subscriptions_of(&email).await?,
            Err(_) => Vec::new(),
        };
        Ok(self.desired_from(
            user.email_verification,
            discord_user_id,
            subscriptions.iter().map(|d| &d.data),
        ))
    }

    /// The roles due to a customer, from what is already read about them: whether their email
    /// is verified, their linked Discord account and their subscriptions.
    pub fn desired_from<'a>(
        &self,
        verified: bool,
        discord_user_id: Option<String>,
        subscriptions: impl IntoIterator<Item = &'a Subscription>,
    ) -> DesiredRoles {
        let now = self.clock.now();
        let plans: Vec<&str> = subscriptions
            .into_iter()
            .filter(|s| s.grants_access(now))
            .map(|s| s.plan.as_str())
            .collect();
        let why = if plans.is_empty() {
            RolesWhy::NoActivePlan
        } else if !verified {
            RolesWhy::EmailNotVerified
        } else if discord_user_id.is_none() {
            RolesWhy::DiscordNotLinked
        } else {
            RolesWhy::ActivePlans(plans.iter().map(|p| (*p).to_owned()).collect())
        };
        let roles = if !plans.is_empty() && verified && discord_user_id.is_some() {
            self.roles
                .roles_for(plans.iter().copied())
                .into_iter()
                .map(str::to_owned)
                .collect()
        } else {
            Vec::new()
        };
        DesiredRoles {
            roles,
            discord_user_id,
            why,
        }
    }

    /// Recomputes the customer's roles and records them in `role_state` (one document per
    /// managed role; only changes are written). Returns the roles they should hold.
    pub async fn sync_roles(
        &self,
        user_id: &str,
        reason: &str,
    ) -> Result<Vec<String>, AccessError> {
        if self.roles.is_empty() {
            return Ok(Vec::new());
        }
        let desired = self.desired_roles(user_id).await?;
        self.record_roles(user_id, desired, reason).await
    }

    /// [`Access::sync_roles`] for a customer whose verification and subscriptions (all of them,
    /// as just written) the caller holds: only the link is read.
    pub(crate) async fn sync_roles_from(
        &self,
        user_id: &str,
        verified: bool,
        subscriptions: &[Subscription],
        reason: &str,
    ) -> Result<Vec<String>, AccessError> {
        if self.roles.is_empty() {
            return Ok(Vec::new());
        }
        let link = self.discord_link(user_id).await?;
        let desired = self.desired_from(verified, link.map(|l| l.discord_user_id), subscriptions);
        self.record_roles(user_id, desired, reason).await
    }

    /// Writes `desired` to `role_state`: one read for all of the user's roles, then only the
    /// changes.
    async fn record_roles(
        &self,
        user_id: &str,
        desired: DesiredRoles,
        reason: &str,
    ) -> Result<Vec<String>, AccessError> {
        let why = truncate(&format!("{reason}; {}", desired.why), 256);
        let docs = self.role_state();
        let recorded = self.role_states(user_id).await?;
        for role in self.roles.managed() {
            let wanted = desired.roles.iter().any(|r| r == role);
            let id = role_state_id(user_id, role);
            match recorded.iter().find(|d| d.id == id) {
                Some(doc)
                    if doc.data.desired == wanted
                        && doc.data.discord_user_id == desired.discord_user_id => {}
                Some(_) => {
                    // A change of mind is acted on at once: no backoff left from old failures.
                    let patch = json!({
                        "desired": wanted,
                        "discord_user_id": desired.discord_user_id,
                        "reason": why,
                        "attempts": 0,
                        "next_retry_at": null,
                    });
                    docs.update(&id, &patch, None).await?;
                }
                None if !wanted => {}
                None => {
                    let state = RoleState {
                        user_id: user_id.to_owned(),
                        discord_user_id: desired.discord_user_id.clone(),
                        applied_discord_user_id: None,
                        role_id: role.to_owned(),
                        desired: true,
                        applied: None,
                        reason: Some(why.clone()),
                        last_error: None,
                        attempts: None,
                        applied_at: None,
                        next_retry_at: None,
                    };
                    docs.create_if_absent(&id, &state, None).await?;
                }
            }
        }
        Ok(desired.roles)
    }

    /// Staff's "resync": recomputes the roles and marks every one of them unchecked, so the
    /// bot looks at Discord again at once (no backoff) whatever it believed before. Audited.
    pub async fn force_resync(
        &self,
        user_id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Vec<String>, AccessError> {
        let roles = self
            .sync_roles(user_id, &format!("resync: {reason}"))
            .await?;
        let docs = self.role_state();
        let patch = json!({ "applied": null, "attempts": 0, "next_retry_at": null });
        for state in self.role_states(user_id).await? {
            docs.update(&state.id, &patch, None).await?;
        }
        let cause = Cause::Admin {
            actor: actor.to_owned(),
            reason: reason.to_owned(),
        };
        let now = g3_appwrite::format_datetime(OffsetDateTime::now_utc());
        let detail = format!("desired roles: [{}] at {now}", roles.join(", "));
        self.audit(&cause, "roles.resync", user_id, &detail).await?;
        Ok(roles)
    }

    /// Role syncs whose last attempt failed, oldest first.
    pub async fn failing_role_syncs(
        &self,
        limit: u32,
    ) -> Result<(u64, Vec<Document<RoleState>>), AccessError> {
        let list = self
            .role_state()
            .list(&[
                Query::is_not_null("last_error"),
                Query::order_asc("$updatedAt"),
                Query::limit(limit),
            ])
            .await?;
        Ok((list.total, list.documents))
    }

    /// The customer's `role_state` documents (desired vs applied, last error).
    pub async fn role_states(
        &self,
        user_id: &str,
    ) -> Result<Vec<Document<RoleState>>, AccessError> {
        Ok(self
            .role_state()
            .list(&[Query::equal("user_id", user_id), Query::limit(100)])
            .await?
            .documents)
    }
}
