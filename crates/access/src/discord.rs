//! Discord links: a customer links one Discord account (`discord_links`, document id = Appwrite
//! user id; a unique index keeps each Discord account to one customer). Linking, relinking and
//! unlinking run under the customer's link lock, are audited, and recompute the customer's
//! roles (`roles`) so the bot moves them with the link.

use g3_appwrite::{Document, Query};
use g3_store::{Collection, models::DiscordLink};
use serde_json::json;
use time::OffsetDateTime;
use tracing::info;

use crate::{Access, AccessError, Cause, LockGuard, truncate};

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

impl Access {
    fn links(&self) -> Collection<DiscordLink> {
        self.collection()
    }

    /// The customer's Discord link, if any.
    pub async fn discord_link(&self, user_id: &str) -> Result<Option<DiscordLink>, AccessError> {
        Ok(self.links().get_optional(user_id).await?.map(|d| d.data))
    }

    /// The customer a Discord account is linked to, if any.
    pub async fn user_for_discord(
        &self,
        discord_user_id: &str,
    ) -> Result<Option<String>, AccessError> {
        Ok(self
            .links()
            .list(&[
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
        Ok(self.links().list_all(&[], 500).await?)
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
                        .update(
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
                    .update(
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
}
