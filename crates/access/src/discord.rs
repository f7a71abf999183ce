//! Discord links and the roles they lead to.
//!
//! A customer links one Discord account (`discord_links`, document id = Appwrite user id; a
//! unique index keeps each Discord account to one customer). The roles they should hold are
//! derived, never toggled: verified email + an active paid plan + a link → the plan's roles;
//! anything else → none of the roles we manage. [`Access::sync_roles`] writes that to
//! `role_state`, which the bot converges Discord to.

use g3_appwrite::{Document, Query};
use g3_core::{Email, ids};
use g3_store::{
    models::{DiscordLink, RoleState, Subscription},
    schema::DATABASE_ID,
};
use serde_json::json;
use time::OffsetDateTime;
use tracing::info;

use crate::{Access, AccessError, Cause, LockGuard, ROLE_STATE, truncate};

pub const DISCORD_LINKS: &str = "discord_links";

/// What linking did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    /// The link is stored; `previous` is the Discord account it replaced, if any.
    Linked { previous: Option<String> },
    /// This customer was already linked to this Discord account.
    Unchanged,
    /// The Discord account is linked to another customer; nothing was changed.
    TakenByOther { user_id: String },
}

/// The roles one customer should hold, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRoles {
    pub roles: Vec<String>,
    pub discord_user_id: Option<String>,
    pub why: String,
}

/// The `role_state` document id of one user and role.
pub fn role_state_id(user_id: &str, role_id: &str) -> String {
    ids::derive("role", &[user_id, role_id])
}

impl Access {
    fn links(&self) -> g3_appwrite::Documents {
        self.client.documents(DATABASE_ID, DISCORD_LINKS)
    }

    /// The roles this service manages (from `PLAN_ROLES`); empty when role sync is off.
    pub fn managed_roles(&self) -> Vec<String> {
        self.roles
            .managed()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// The customer's Discord link, if any.
    pub async fn discord_link(&self, user_id: &str) -> Result<Option<DiscordLink>, AccessError> {
        Ok(self
            .links()
            .get_optional::<DiscordLink>(user_id)
            .await?
            .map(|d| d.data))
    }

    /// The customer a Discord account is linked to, if any.
    pub async fn user_for_discord(
        &self,
        discord_user_id: &str,
    ) -> Result<Option<String>, AccessError> {
        Ok(self
            .links()
            .list::<DiscordLink>(&[
                Query::equal("discord_user_id", discord_user_id),
                Query::limit(1),
            ])
            .await?
            .documents
            .into_iter()
            .next()
            .map(|d| d.id))
    }

    /// Every link, for reconciliation and counts.
    pub async fn all_links(&self) -> Result<Vec<Document<DiscordLink>>, AccessError> {
        Ok(self.links().list_all::<DiscordLink>(&[], 500).await?)
    }

    /// Links a Discord account to a customer (replacing an earlier link of theirs), then
    /// recomputes their roles. An account linked to someone else is refused, not moved.
    pub async fn link_discord(
        &self,
        user_id: &str,
        discord_user_id: &str,
        username: Option<&str>,
        actor: &str,
    ) -> Result<LinkOutcome, AccessError> {
        let lock = self.locks.acquire(&format!("link:{user_id}")).await?;
        let result = self
            .link_locked(user_id, discord_user_id, username, actor, &lock)
            .await;
        lock.release().await;
        result
    }

    async fn link_locked(
        &self,
        user_id: &str,
        discord_user_id: &str,
        username: Option<&str>,
        actor: &str,
        lock: &LockGuard,
    ) -> Result<LinkOutcome, AccessError> {
        if let Some(other) = self.user_for_discord(discord_user_id).await?
            && other != user_id
        {
            return Ok(LinkOutcome::TakenByOther { user_id: other });
        }
        let link = DiscordLink {
            discord_user_id: discord_user_id.to_owned(),
            discord_username: username.map(|u| truncate(u, 128)),
            linked_at: OffsetDateTime::now_utc(),
        };
        let previous = self.discord_link(user_id).await?;
        lock.ensure_held()?;
        let outcome = match &previous {
            Some(p) if p.discord_user_id == discord_user_id => {
                if p.discord_username.as_deref() != link.discord_username.as_deref() {
                    self.links()
                        .update::<_, serde_json::Value>(
                            user_id,
                            &json!({ "discord_username": link.discord_username }),
                            None,
                        )
                        .await?;
                }
                LinkOutcome::Unchanged
            }
            Some(p) => {
                let result = self
                    .links()
                    .update::<_, serde_json::Value>(
                        user_id,
                        &json!({
                            "discord_user_id": link.discord_user_id,
                            "discord_username": link.discord_username,
                            "linked_at": g3_appwrite::format_datetime(link.linked_at),
                        }),
                        None,
                    )
                    .await;
                match result {
                    Ok(_) => LinkOutcome::Linked {
                        previous: Some(p.discord_user_id.clone()),
                    },
                    Err(e) if e.is_conflict() => return self.taken(discord_user_id, e).await,
                    Err(e) => return Err(e.into()),
                }
            }
            None => match self.links().create(user_id, &link, None).await {
                Ok(_) => LinkOutcome::Linked { previous: None },
                Err(e) if e.is_conflict() => {
                    // Either a unique-index clash (another customer won a race) or this
                    // customer's link appeared meanwhile; look again.
                    match self.discord_link(user_id).await? {
                        Some(l) if l.discord_user_id == discord_user_id => LinkOutcome::Unchanged,
                        _ => return self.taken(discord_user_id, e).await,
                    }
                }
                Err(e) => return Err(e.into()),
            },
        };
        if outcome != LinkOutcome::Unchanged {
            let detail = match &outcome {
                LinkOutcome::Linked {
                    previous: Some(prev),
                } => format!("linked Discord {discord_user_id} (was {prev})"),
                _ => format!("linked Discord {discord_user_id}"),
            };
            let cause = Cause::Admin {
                actor: actor.to_owned(),
                reason: format!("link {discord_user_id}"),
            };
            self.audit(&cause, "discord.link", user_id, &detail).await?;
            info!(user = %user_id, discord = %discord_user_id, "Discord linked");
        }
        self.sync_roles(user_id, "Discord linked").await?;
        Ok(outcome)
    }

    async fn taken(
        &self,
        discord_user_id: &str,
        conflict: g3_appwrite::Error,
    ) -> Result<LinkOutcome, AccessError> {
        match self.user_for_discord(discord_user_id).await? {
            Some(other) => Ok(LinkOutcome::TakenByOther { user_id: other }),
            None => Err(conflict.into()),
        }
    }

    /// Removes the customer's link (if any) and recomputes their roles, so the bot takes the
    /// managed roles back. Returns the removed link.
    pub async fn unlink_discord(
        &self,
        user_id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Option<DiscordLink>, AccessError> {
        let lock = self.locks.acquire(&format!("link:{user_id}")).await?;
        let result = self.unlink_locked(user_id, actor, reason, &lock).await;
        lock.release().await;
        result
    }

    async fn unlink_locked(
        &self,
        user_id: &str,
        actor: &str,
        reason: &str,
        lock: &LockGuard,
    ) -> Result<Option<DiscordLink>, AccessError> {
        let Some(link) = self.discord_link(user_id).await? else {
            return Ok(None);
        };
        lock.ensure_held()?;
        self.links().delete_if_exists(user_id).await?;
        let cause = Cause::Admin {
            actor: actor.to_owned(),
            reason: reason.to_owned(),
        };
        self.audit(
            &cause,
            "discord.unlink",
            user_id,
            &format!("unlinked Discord {}", link.discord_user_id),
        )
        .await?;
        info!(user = %user_id, discord = %link.discord_user_id, "Discord unlinked");
        self.sync_roles(user_id, &format!("Discord unlinked: {reason}"))
            .await?;
        Ok(Some(link))
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
                why: "no such user".into(),
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
        let now = OffsetDateTime::now_utc();
        let plans: Vec<&str> = subscriptions
            .into_iter()
            .filter(|s| s.grants_access(now))
            .map(|s| s.plan.as_str())
            .collect();
        let why = if plans.is_empty() {
            "no active plan".to_owned()
        } else if !verified {
            "email not verified".to_owned()
        } else if discord_user_id.is_none() {
            "Discord not linked".to_owned()
        } else {
            format!("active plans: {}", plans.join(", "))
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
        let why = truncate(&format!("{reason}; {}", desired.why), 256);
        let docs = self.client.documents(DATABASE_ID, ROLE_STATE);
        // One read for all of the user's roles, then only the changes are written.
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
                    docs.update::<_, serde_json::Value>(&id, &patch, None)
                        .await?;
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
        let docs = self.client.documents(DATABASE_ID, ROLE_STATE);
        let patch = json!({ "applied": null, "attempts": 0, "next_retry_at": null });
        for state in self.role_states(user_id).await? {
            docs.update::<_, serde_json::Value>(&state.id, &patch, None)
                .await?;
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
            .client
            .documents(DATABASE_ID, ROLE_STATE)
            .list::<RoleState>(&[
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
            .client
            .documents(DATABASE_ID, ROLE_STATE)
            .list::<RoleState>(&[Query::equal("user_id", user_id), Query::limit(100)])
            .await?
            .documents)
    }
}
