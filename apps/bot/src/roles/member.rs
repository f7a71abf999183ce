//! One member at a time: their managed roles in Discord against their `role_state` records,
//! repaired and recorded. Runs when a member joins (their roles come back) and for every
//! member reconciliation finds out of line (undoing a change made by hand is audited).

use std::{collections::BTreeSet, sync::Arc};

use g3_appwrite::{Document, Query};
use g3_core::ids;
use g3_store::{
    Collection,
    models::{AuditEntry, RoleState},
};
use serde_json::json;
use serenity::all::{Member, UserId};
use tokio::sync::mpsc;

use super::{
    ACTOR, DRIFT_REPAIRED, MemberJoined, SyncError,
    plan::{holder, not_in_guild, target},
    queue::{Job, Why},
    sync::{Refused, RoleSync, refused, stamp},
};
use crate::snowflake;

/// Queues members joining the customer guild. Ends when the gateway stops sending.
pub(super) async fn forward_joins(sync: Arc<RoleSync>, mut joins: mpsc::Receiver<MemberJoined>) {
    while let Some(joined) = joins.recv().await {
        if joined.guild_id == sync.guild.get() && joined.user_id != 0 {
            sync.queue.push(
                Job::Member {
                    discord: joined.user_id,
                    why: Why::Joined,
                },
                true,
            );
        }
    }
}

impl RoleSync {
    /// The `role_state` documents about one Discord account: the roles it should hold and the
    /// roles we applied to it.
    async fn states_of(&self, discord: &str) -> Result<Vec<Document<RoleState>>, SyncError> {
        let mut docs = self
            .states()
            .list_all(&[Query::equal("discord_user_id", discord)], 100)
            .await?;
        for doc in self
            .states()
            .list_all(&[Query::equal("applied_discord_user_id", discord)], 100)
            .await?
        {
            if !docs.iter().any(|d| d.id == doc.id) {
                docs.push(doc);
            }
        }
        Ok(docs)
    }

    /// Makes one member's managed roles what their records say, reading Discord afresh.
    /// Undoing a change made by hand in Discord is audited when `why` is reconciliation.
    pub(super) async fn converge_member(&self, discord: u64, why: Why) -> Result<(), SyncError> {
        let account = discord.to_string();
        if why == Why::Joined
            && let Some(user) = self.access.user_for_discord(&account).await?
        {
            self.access
                .sync_roles(&user, "joined the customer guild")
                .await?;
        }
        let docs: Vec<Document<RoleState>> = self
            .states_of(&account)
            .await?
            .into_iter()
            .filter(|d| self.managed_role(&d.data.role_id).is_some())
            .collect();
        let roles_where = |f: &dyn Fn(&RoleState) -> bool| -> BTreeSet<u64> {
            docs.iter()
                .filter(|d| f(&d.data))
                .filter_map(|d| snowflake(&d.data.role_id))
                .collect()
        };
        let should = roles_where(&|s| target(s) == Some(account.as_str()));
        let recorded = roles_where(&|s| holder(s) == Some(account.as_str()));
        let held: BTreeSet<u64> = match self.http.get_member(self.guild, UserId::new(discord)).await
        {
            Ok(member) => self.managed_of(&member),
            Err(e) => match refused(e) {
                Refused::NotInGuild => {
                    return self.record_member(&docs, &account, None).await;
                }
                Refused::Failed(e) => return Err(SyncError::Discord(e)),
            },
        };
        let user = docs
            .iter()
            .find(|d| target(&d.data) == Some(account.as_str()))
            .or(docs.first())
            .map(|d| d.data.user_id.clone());
        let audit_target = user.clone().unwrap_or_else(|| format!("discord:{account}"));
        let mut now_held = held.clone();
        for &role in &self.managed {
            let (has, wants, ours) = (
                held.contains(&role),
                should.contains(&role),
                recorded.contains(&role),
            );
            let change = if wants && !has {
                let reason = if why == Why::Joined {
                    "member rejoined; paid role restored"
                } else {
                    "reconciliation: paid role missing"
                };
                match self.grant(discord, role, reason).await {
                    Ok(()) => {
                        now_held.insert(role);
                        // We had applied it: someone removed it in Discord.
                        ours.then(|| {
                            format!(
                                "added role {role} back to Discord user {discord}: it was removed in Discord though the customer should hold it"
                            )
                        })
                    }
                    // Left meanwhile: the record says so below; they get it when they rejoin.
                    Err(Refused::NotInGuild) => {
                        return self.record_member(&docs, &account, None).await;
                    }
                    Err(Refused::Failed(e)) => return Err(SyncError::Discord(e)),
                }
            } else if has && !wants {
                let reason = "reconciliation: this account should not hold the role";
                match self.take(discord, role, reason).await {
                    Ok(()) | Err(Refused::NotInGuild) => {
                        now_held.remove(&role);
                        // We never applied it: someone granted it in Discord.
                        (!ours).then(|| {
                            let whose = match &user {
                                Some(u) => format!("customer {u}"),
                                None => "an account not linked to any customer".to_owned(),
                            };
                            format!(
                                "removed role {role} from Discord user {discord} ({whose}): granted in Discord though the account should not hold it"
                            )
                        })
                    }
                    Err(Refused::Failed(e)) => return Err(SyncError::Discord(e)),
                }
            } else {
                None
            };
            if let Some(detail) = change.filter(|_| why == Why::Reconcile) {
                tracing::warn!(discord, role, %detail, "role drift repaired");
                self.audit_drift(&audit_target, &detail).await?;
            }
        }
        self.record_member(&docs, &account, Some(&now_held)).await
    }

    /// Writes what Discord now holds for `account` (`None`: not in the guild) onto the
    /// documents about it, where the record differs.
    async fn record_member(
        &self,
        docs: &[Document<RoleState>],
        account: &str,
        held: Option<&BTreeSet<u64>>,
    ) -> Result<(), SyncError> {
        for doc in docs {
            let s = &doc.data;
            let Some(role) = snowflake(&s.role_id) else {
                continue;
            };
            let has = held.is_some_and(|h| h.contains(&role));
            let wants = target(s) == Some(account);
            let patch = if has && wants {
                let done = holder(s) == Some(account) && s.last_error.is_none();
                (!done).then(|| {
                    json!({
                        "applied": true,
                        "applied_discord_user_id": account,
                        "applied_at": stamp(self.now()),
                        "last_error": null,
                        "attempts": 0,
                        "next_retry_at": null,
                    })
                })
            } else if wants && held.is_none() {
                let waiting = not_in_guild(account);
                let done = holder(s).is_none() && s.last_error.as_deref() == Some(&waiting);
                (!done).then(|| {
                    json!({
                        "applied": false,
                        "applied_discord_user_id": null,
                        "last_error": waiting,
                        "attempts": 0,
                        "next_retry_at": null,
                    })
                })
            } else if !has && holder(s) == Some(account) {
                Some(json!({
                    "applied": false,
                    "applied_discord_user_id": null,
                    "applied_at": stamp(self.now()),
                }))
            } else {
                None
            };
            if let Some(patch) = patch {
                self.states().update(&doc.id, &patch, None).await?;
            }
        }
        Ok(())
    }

    /// The managed roles `member` holds.
    pub(super) fn managed_of(&self, member: &Member) -> BTreeSet<u64> {
        member
            .roles
            .iter()
            .map(|r| r.get())
            .filter(|r| self.managed.contains(r))
            .collect()
    }

    async fn audit_drift(&self, target: &str, detail: &str) -> Result<(), SyncError> {
        let at = self.now();
        let id = ids::derive(
            "audit",
            &[
                ACTOR,
                DRIFT_REPAIRED,
                target,
                detail,
                &at.unix_timestamp_nanos().to_string(),
            ],
        );
        let entry = AuditEntry {
            actor: ACTOR.to_owned(),
            action: DRIFT_REPAIRED.to_owned(),
            target: Some(target.to_owned()),
            detail: Some(detail.to_owned()),
            at,
        };
        Collection::<AuditEntry>::new(&self.appwrite)
            .create_if_absent(&id, &entry, None)
            .await?;
        Ok(())
    }
}
