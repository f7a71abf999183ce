//! Applying role changes to Discord: the state shared by role sync's tasks, the worker that runs
//! queued jobs one at a time, and converging one `role_state` document (grant, move, take back)
//! with its outcome recorded on the document and failures retried with backoff.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
    time::Duration,
};

use g3_access::{Access, Clock};
use g3_appwrite::Document;
use g3_store::{Collection, models::RoleState};
use serde_json::json;
use serenity::{
    all::{GuildId, RoleId, UserId},
    http::{Http, HttpError},
};
use time::OffsetDateTime;
use tokio::{sync::watch, time::Instant};

use super::{
    SyncError, Timing,
    plan::{holder, not_in_guild, plan},
    queue::{Job, Queue},
};
use crate::snowflake;

/// Discord's "Unknown Member": the user is not in the guild.
const UNKNOWN_MEMBER: isize = 10007;

/// A refused or failed Discord call.
pub(super) enum Refused {
    NotInGuild,
    Failed(String),
}

pub(super) fn refused(e: serenity::Error) -> Refused {
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => {
            if r.error.code == UNKNOWN_MEMBER {
                Refused::NotInGuild
            } else {
                Refused::Failed(format!(
                    "{} {} (code {})",
                    r.status_code.as_u16(),
                    r.error.message,
                    r.error.code
                ))
            }
        }
        other => Refused::Failed(other.to_string()),
    }
}

pub(super) fn stamp(t: OffsetDateTime) -> String {
    g3_appwrite::format_datetime(t)
}

/// The `X-Audit-Log-Reason` of our changes (Discord takes at most 512 characters).
fn audit_reason(why: &str) -> String {
    format!("G3 role sync: {why}").chars().take(512).collect()
}

/// Role sync's state shared by its tasks.
pub(super) struct RoleSync {
    pub(super) http: Arc<Http>,
    pub(super) appwrite: g3_appwrite::Client,
    pub(super) access: Access,
    pub(super) guild: GuildId,
    /// Managed role ids.
    pub(super) managed: BTreeSet<u64>,
    pub(super) timing: Timing,
    /// What "now" is for retries, stamps and (through `access`) paid periods.
    pub(super) clock: Clock,
    pub(super) queue: Queue,
}

impl RoleSync {
    pub(super) fn new(
        http: Arc<Http>,
        appwrite: g3_appwrite::Client,
        access: Access,
        guild: GuildId,
        timing: Timing,
        clock: Clock,
    ) -> Self {
        let managed = access
            .managed_roles()
            .iter()
            .filter_map(|r| snowflake(r))
            .collect();
        Self {
            http,
            appwrite,
            access,
            guild,
            managed,
            timing,
            clock,
            queue: Queue::default(),
        }
    }

    pub(super) fn states(&self) -> Collection<RoleState> {
        Collection::new(&self.appwrite)
    }

    pub(super) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The monotonic instant of a time on our clock (now, if it is past).
    fn instant_of(&self, at: OffsetDateTime) -> Instant {
        let ahead = at - self.now();
        Instant::now() + Duration::try_from(ahead).unwrap_or(Duration::ZERO)
    }

    /// The role id of `role_id`, when it is a managed role (others are never touched).
    pub(super) fn managed_role(&self, role_id: &str) -> Option<u64> {
        snowflake(role_id).filter(|r| self.managed.contains(r))
    }

    pub(super) async fn grant(&self, discord: u64, role: u64, why: &str) -> Result<(), Refused> {
        self.set_role(true, discord, role, why).await
    }

    pub(super) async fn take(&self, discord: u64, role: u64, why: &str) -> Result<(), Refused> {
        self.set_role(false, discord, role, why).await
    }

    /// Adds (`add`) or removes one role of one member, with `why` in Discord's audit log.
    async fn set_role(&self, add: bool, discord: u64, role: u64, why: &str) -> Result<(), Refused> {
        let (user, role, reason) = (UserId::new(discord), RoleId::new(role), audit_reason(why));
        let result = if add {
            self.http
                .add_member_role(self.guild, user, role, Some(&reason))
                .await
        } else {
            self.http
                .remove_member_role(self.guild, user, role, Some(&reason))
                .await
        };
        result.map_err(refused)
    }

    async fn handle(&self, job: &Job) -> Result<(), SyncError> {
        match job {
            Job::State(id) => self.converge_state(id).await,
            Job::Link(user_id) => {
                self.access
                    .sync_roles(user_id, "Discord link changed")
                    .await?;
                for doc in self.access.role_states(user_id).await? {
                    self.queue.push(Job::State(doc.id), true);
                }
                Ok(())
            }
            Job::Member { discord, why } => self.converge_member(*discord, *why).await,
        }
    }

    /// Applies one `role_state` document to Discord and records the outcome on it.
    async fn converge_state(&self, id: &str) -> Result<(), SyncError> {
        let Some(doc) = self.states().get_optional(id).await? else {
            return Ok(());
        };
        let s = &doc.data;
        // Roles we do not manage (any more) are never touched.
        let Some(role) = self.managed_role(&s.role_id) else {
            return Ok(());
        };
        let p = plan(s);
        if p.settled {
            return Ok(());
        }
        if let Some(at) = s.next_retry_at.filter(|at| *at > self.now()) {
            self.queue
                .push_at(Job::State(id.to_owned()), self.instant_of(at));
            return Ok(());
        }
        let why = s.reason.as_deref().unwrap_or("desired state");
        let mut held_by = holder(s);
        if let Some(old) = p.remove_from {
            let outcome = match snowflake(old) {
                Some(account) => self.take(account, role, why).await,
                None => Ok(()),
            };
            match outcome {
                // Someone who left the guild holds no roles.
                Ok(()) | Err(Refused::NotInGuild) => held_by = None,
                Err(Refused::Failed(e)) => return self.record_failure(&doc, &e, held_by).await,
            }
        }
        let mut last_error = None;
        if let Some(new) = p.add_to {
            let outcome = match snowflake(new) {
                Some(account) => self.grant(account, role, why).await,
                None => Err(Refused::Failed(format!("{new} is not a Discord user id"))),
            };
            match outcome {
                Ok(()) => held_by = Some(new),
                Err(Refused::NotInGuild) => {
                    tracing::info!(discord = %new, role, "linked account is not in the guild; applied when it joins");
                    last_error = Some(not_in_guild(new));
                }
                Err(Refused::Failed(e)) => return self.record_failure(&doc, &e, held_by).await,
            }
        }
        let patch = json!({
            "applied": held_by.is_some(),
            "applied_discord_user_id": held_by,
            "applied_at": stamp(self.now()),
            "last_error": last_error,
            "attempts": 0,
            "next_retry_at": null,
        });
        self.states().update(id, &patch, None).await?;
        Ok(())
    }

    /// Records a failed change on its document and schedules the retry.
    async fn record_failure(
        &self,
        doc: &Document<RoleState>,
        error: &str,
        holder: Option<&str>,
    ) -> Result<(), SyncError> {
        let attempts = doc.data.attempts.unwrap_or(0).max(0) + 1;
        let delay = self
            .timing
            .backoff(u32::try_from(attempts).unwrap_or(u32::MAX));
        let at = self.now() + delay;
        tracing::warn!(
            user = %doc.data.user_id,
            role = %doc.data.role_id,
            attempts,
            retry_in = ?delay,
            %error,
            "role change failed; retried later"
        );
        let patch = json!({
            "applied": holder.is_some(),
            "applied_discord_user_id": holder,
            "last_error": error.chars().take(1024).collect::<String>(),
            "attempts": attempts,
            "next_retry_at": stamp(at),
        });
        self.states().update(&doc.id, &patch, None).await?;
        self.queue
            .push_at(Job::State(doc.id.clone()), Instant::now() + delay);
        Ok(())
    }
}

/// Applies queued jobs one at a time while role sync is running; a failed job is queued again
/// with backoff.
pub(super) async fn work(sync: Arc<RoleSync>, mut ready: watch::Receiver<bool>) {
    let mut failures: HashMap<Job, u32> = HashMap::new();
    loop {
        let job = sync.queue.pop().await;
        if ready.wait_for(|r| *r).await.is_err() {
            return;
        }
        match sync.handle(&job).await {
            Ok(()) => {
                failures.remove(&job);
            }
            Err(e) => {
                let n = failures.entry(job.clone()).or_default();
                *n += 1;
                let delay = sync.timing.backoff(*n);
                tracing::warn!(?job, error = %e, retry_in = ?delay, "role sync job failed");
                sync.queue.push_at(job, Instant::now() + delay);
            }
        }
    }
}
