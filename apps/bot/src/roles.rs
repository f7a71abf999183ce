//! Role sync: converges the customer guild's managed roles (those named in `PLAN_ROLES`, and no
//! others) to the desired state g3-access keeps in `role_state`, one document per customer and
//! role.
//!
//! - **Events.** A Realtime subscription on `role_state` and `discord_links` (as the `staff`
//!   service user) with catch-up from a cursor on every (re)connect, as [`crate::follow`] does
//!   for signals. A changed document is converged at once: the role is granted to the linked
//!   account, or taken back from the account it was last applied to (`applied_discord_user_id`,
//!   so a relink or an unlink moves or removes it). A changed link recomputes the customer's
//!   desired roles first. A member joining the guild ([`MemberJoined`]) gets their roles back.
//! - **Failures.** A refused or failed change is recorded on the document (`last_error`,
//!   `attempts`, `next_retry_at` with exponential backoff and jitter) and tried again then, never
//!   in a loop. A linked account that is not in the guild is recorded as "not in guild" and left
//!   alone until it joins.
//! - **Reconciliation.** At start and every `reconcile_every`: recompute every customer's
//!   desired roles from the source ([`Access::sync_roles`]: expired periods, verification), then
//!   list the guild's members and repair drift: a managed role missing from someone who should
//!   hold it is added, one held by anyone who should not is removed. Repairs that undo a change
//!   made in Discord by hand are written to the audit log (`role.drift_repaired`).
//! - **Start-up check.** Role sync runs only while the bot can do it: Manage Roles (or
//!   Administrator) and a highest role above every managed role, which must all exist. If not,
//!   it says what is wrong, stays paused (no role requests) and checks again every
//!   `recheck_every`; mirroring is not affected.
//!
//! One worker applies every change, one at a time, so two passes never race on one member.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use g3_access::{Access, AccessError, DISCORD_LINKS, ROLE_STATE};
use g3_appwrite::{Client, Document, Documents, Query, RealtimeMessage, RealtimeOptions};
use g3_core::{
    ids,
    plans::{PlanCatalog, PlanRoles},
};
use g3_store::{
    models::{AuditEntry, RoleState},
    schema::DATABASE_ID,
};
use rand::Rng as _;
use serde_json::{Value, json};
use serenity::{
    all::{GuildId, Member, Permissions, Role, RoleId, UserId},
    http::{Http, HttpError},
};
use time::OffsetDateTime;
use tokio::{
    sync::{Notify, mpsc, watch},
    time::Instant,
};

use crate::{RetryPolicy, Secret, Settings, snowflake};

/// Realtime channels of the documents role sync follows.
pub const ROLE_STATE_CHANNEL: &str = "databases.g3.collections.role_state.documents";
pub const LINKS_CHANNEL: &str = "databases.g3.collections.discord_links.documents";

/// The audit action of a repaired drift, and who it is recorded as.
pub const DRIFT_REPAIRED: &str = "role.drift_repaired";
pub const ACTOR: &str = "bot";

/// Discord's "Unknown Member": the user is not in the guild.
const UNKNOWN_MEMBER: isize = 10007;
/// Members per page when listing the guild (Discord's maximum).
const MEMBER_PAGE: u64 = 1000;

/// A user joined the customer guild (reported by the gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberJoined {
    pub guild_id: u64,
    pub user_id: u64,
}

/// How often role sync looks again, and how it backs off.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Full reconciliation (`ROLE_RECONCILE_SECS`).
    pub reconcile_every: Duration,
    /// While the start-up check fails: how often it is checked again.
    pub recheck_every: Duration,
    /// First retry of a failed role change; doubles per attempt up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            reconcile_every: Duration::from_secs(600),
            recheck_every: Duration::from_secs(300),
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(3600),
        }
    }
}

impl Timing {
    /// The pause before retry number `attempts` (1 = the first): exponential, capped, ±25 %.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = crate::exponential(self.retry_base, self.retry_max, attempts.saturating_sub(1));
        exp.mul_f64(rand::rng().random_range(0.75..=1.25))
    }
}

/// Everything role sync needs besides the clients.
#[derive(Debug, Clone)]
pub struct Config {
    /// The customer guild.
    pub guild_id: GuildId,
    /// The roles each plan gives; exactly these roles are managed.
    pub plan_roles: PlanRoles,
    pub timing: Timing,
    /// The `staff` service user the Realtime socket signs in as.
    pub staff_email: String,
    pub staff_password: Secret,
    /// Pause between attempts to subscribe.
    pub resubscribe: RetryPolicy,
}

impl Config {
    /// Role sync's configuration, when the bot's settings turn it on (a guild and `PLAN_ROLES`).
    pub fn from_settings(settings: &Settings) -> Option<Config> {
        let guild = settings.guild_id.filter(|g| *g != 0)?;
        if settings.plan_roles.is_empty() {
            return None;
        }
        Some(Config {
            guild_id: GuildId::new(guild),
            plan_roles: settings.plan_roles.clone(),
            timing: settings.role_timing.clone(),
            staff_email: settings.staff_email.clone(),
            staff_password: settings.staff_password.clone(),
            resubscribe: settings.retry.clone(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("appwrite: {0}")]
    Store(#[from] g3_appwrite::Error),
    #[error("{0}")]
    Access(#[from] AccessError),
    #[error("discord: {0}")]
    Discord(String),
}

/// Runs role sync for ever (the caller aborts it): the start-up check and reconciliation, the
/// Realtime follow, member joins and the worker.
pub async fn run(
    config: Config,
    http: Arc<Http>,
    appwrite: Client,
    joins: mpsc::Receiver<MemberJoined>,
) {
    let access =
        Access::new(appwrite.clone(), PlanCatalog::default()).with_roles(config.plan_roles.clone());
    let sync = Arc::new(RoleSync::new(
        http,
        appwrite,
        access,
        config.guild_id,
        config.timing.clone(),
    ));
    let (ready_tx, ready_rx) = watch::channel(false);
    let start = OffsetDateTime::now_utc();
    tokio::join!(
        supervise(sync.clone(), ready_tx),
        follow(sync.clone(), &config, start),
        forward_joins(sync.clone(), joins),
        work(sync, ready_rx),
    );
}

/// One unit of work for the worker.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Job {
    /// Converge one `role_state` document.
    State(String),
    /// A customer's link changed: recompute their desired roles, then converge them.
    Link(String),
    /// Compare one member's managed roles in Discord with what they should hold, and repair.
    Member { discord: u64, why: Why },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Why {
    Joined,
    Reconcile,
}

/// Jobs waiting, each at most once: live changes first, then reconciliation, then retries
/// when they fall due.
#[derive(Default)]
struct Queue {
    inner: Mutex<Pending>,
    notify: Notify,
}

#[derive(Default)]
struct Pending {
    urgent: VecDeque<Job>,
    background: VecDeque<Job>,
    queued: HashSet<Job>,
    /// Jobs to queue later, by when; `due` holds each one's current time (earlier wins).
    later: BTreeMap<(Instant, u64), Job>,
    due: HashMap<Job, Instant>,
    seq: u64,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, job: Job, urgent: bool) {
        let mut q = self.lock();
        let fresh = q.queued.insert(job.clone());
        if urgent {
            q.urgent.push_back(job);
        } else if fresh {
            q.background.push_back(job);
        }
        drop(q);
        self.notify.notify_one();
    }

    /// Queues `job` at `at` (or earlier, if it is already due earlier).
    fn push_at(&self, job: Job, at: Instant) {
        let mut q = self.lock();
        if q.due.get(&job).is_some_and(|d| *d <= at) {
            return;
        }
        q.seq += 1;
        let seq = q.seq;
        q.due.insert(job.clone(), at);
        q.later.insert((at, seq), job);
        drop(q);
        self.notify.notify_one();
    }

    async fn pop(&self) -> Job {
        loop {
            let next_due = {
                let mut q = self.lock();
                let now = Instant::now();
                while let Some(entry) = q.later.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let ((at, _), job) = entry.remove_entry();
                    if q.due.get(&job) == Some(&at) {
                        q.due.remove(&job);
                        if q.queued.insert(job.clone()) {
                            q.background.push_back(job);
                        }
                    }
                }
                while let Some(job) = q.urgent.pop_front().or_else(|| q.background.pop_front()) {
                    if q.queued.remove(&job) {
                        return job;
                    }
                }
                q.later.keys().next().map(|(at, _)| *at)
            };
            match next_due {
                Some(at) => {
                    tokio::select! {
                        _ = self.notify.notified() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => self.notify.notified().await,
            }
        }
    }
}

/// What converging one document takes.
#[derive(Debug, PartialEq, Eq)]
struct Plan<'a> {
    /// The account that holds the role by our hand but should not.
    remove_from: Option<&'a str>,
    /// The account that should hold the role and does not yet (as far as we know).
    add_to: Option<&'a str>,
    /// Nothing to do and nothing stale to clear.
    settled: bool,
}

/// The account that should hold the role: desired and linked.
fn target(s: &RoleState) -> Option<&str> {
    s.discord_user_id.as_deref().filter(|_| s.desired)
}

/// The account that holds the role by our hand (documents from before
/// `applied_discord_user_id` name only `discord_user_id`).
fn holder(s: &RoleState) -> Option<&str> {
    if s.applied != Some(true) {
        return None;
    }
    s.applied_discord_user_id
        .as_deref()
        .or(s.discord_user_id.as_deref())
}

/// The `last_error` of a role that waits for its account to join the guild.
pub fn not_in_guild(discord_user_id: &str) -> String {
    format!("not in guild: Discord user {discord_user_id} has not joined the customer guild")
}

fn plan(s: &RoleState) -> Plan<'_> {
    let target = target(s);
    let holder = holder(s);
    let waiting = target.map(not_in_guild);
    let remove_from = holder.filter(|h| Some(*h) != target);
    let add_to = target.filter(|t| holder != Some(*t) && s.last_error != waiting);
    let clean = s.last_error.is_none() || s.last_error == waiting;
    Plan {
        remove_from,
        add_to,
        settled: remove_from.is_none() && add_to.is_none() && clean,
    }
}

/// A refused or failed Discord call.
enum Refused {
    NotInGuild,
    Failed(String),
}

fn refused(e: serenity::Error) -> Refused {
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

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn stamp(t: OffsetDateTime) -> String {
    g3_appwrite::format_datetime(t)
}

/// The monotonic instant of a wall-clock time (now, if it is past).
fn instant_of(at: OffsetDateTime) -> Instant {
    let ahead = at - now();
    Instant::now() + Duration::try_from(ahead).unwrap_or(Duration::ZERO)
}

/// The `X-Audit-Log-Reason` of our changes (Discord takes at most 512 characters).
fn audit_reason(why: &str) -> String {
    format!("G3 role sync: {why}").chars().take(512).collect()
}

/// Why the start-up check did not pass.
#[derive(Debug)]
enum CheckFailure {
    /// The bot cannot manage the roles: said in words, one problem per entry.
    Misconfigured(Vec<String>),
    /// Discord could not be asked.
    Unreachable(String),
}

/// Role sync's state shared by its tasks.
struct RoleSync {
    http: Arc<Http>,
    appwrite: Client,
    access: Access,
    guild: GuildId,
    /// Managed role ids.
    managed: BTreeSet<u64>,
    timing: Timing,
    queue: Queue,
}

impl RoleSync {
    fn new(
        http: Arc<Http>,
        appwrite: Client,
        access: Access,
        guild: GuildId,
        timing: Timing,
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
            queue: Queue::default(),
        }
    }

    fn states(&self) -> Documents {
        self.appwrite.documents(DATABASE_ID, ROLE_STATE)
    }

    /// The role id of `role_id`, when it is a managed role (others are never touched).
    fn managed_role(&self, role_id: &str) -> Option<u64> {
        snowflake(role_id).filter(|r| self.managed.contains(r))
    }

    async fn grant(&self, discord: u64, role: u64, why: &str) -> Result<(), Refused> {
        self.set_role(true, discord, role, why).await
    }

    async fn take(&self, discord: u64, role: u64, why: &str) -> Result<(), Refused> {
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
        let Some(doc) = self.states().get_optional::<RoleState>(id).await? else {
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
        if let Some(at) = s.next_retry_at.filter(|at| *at > now()) {
            self.queue
                .push_at(Job::State(id.to_owned()), instant_of(at));
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
            "applied_at": stamp(now()),
            "last_error": last_error,
            "attempts": 0,
            "next_retry_at": null,
        });
        self.states().update::<_, Value>(id, &patch, None).await?;
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
        let at = now() + delay;
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
        self.states()
            .update::<_, Value>(&doc.id, &patch, None)
            .await?;
        self.queue
            .push_at(Job::State(doc.id.clone()), Instant::now() + delay);
        Ok(())
    }

    /// The `role_state` documents about one Discord account: the roles it should hold and the
    /// roles we applied to it.
    async fn states_of(&self, discord: &str) -> Result<Vec<Document<RoleState>>, SyncError> {
        let mut docs = self
            .states()
            .list_all::<RoleState>(&[Query::equal("discord_user_id", discord)], 100)
            .await?;
        for doc in self
            .states()
            .list_all::<RoleState>(&[Query::equal("applied_discord_user_id", discord)], 100)
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
    async fn converge_member(&self, discord: u64, why: Why) -> Result<(), SyncError> {
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
                        "applied_at": stamp(now()),
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
                    "applied_at": stamp(now()),
                }))
            } else {
                None
            };
            if let Some(patch) = patch {
                self.states()
                    .update::<_, Value>(&doc.id, &patch, None)
                    .await?;
            }
        }
        Ok(())
    }

    fn managed_of(&self, member: &Member) -> BTreeSet<u64> {
        member
            .roles
            .iter()
            .map(|r| r.get())
            .filter(|r| self.managed.contains(r))
            .collect()
    }

    async fn audit_drift(&self, target: &str, detail: &str) -> Result<(), SyncError> {
        let at = now();
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
        self.appwrite
            .documents(DATABASE_ID, g3_access::AUDIT_LOG)
            .create_if_absent(&id, &entry, None)
            .await?;
        Ok(())
    }

    /// Whether the bot can manage every managed role in the guild.
    async fn check(&self, me: &mut Option<UserId>) -> Result<(), CheckFailure> {
        check_permissions(&self.http, self.guild, &self.managed, me).await
    }

    /// Recomputes everyone's desired roles from the source, then compares the guild with
    /// them and queues the repairs. Returns (members listed, members queued for repair).
    async fn reconcile(&self) -> Result<(usize, usize), SyncError> {
        let states = self.states().list_all::<RoleState>(&[], 100).await?;
        let mut users: BTreeSet<String> = self
            .access
            .all_links()
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect();
        // Unlinked customers whose records still want or hold a role (linked ones are above).
        users.extend(
            states
                .into_iter()
                .filter(|d| d.data.desired || holder(&d.data).is_some())
                .map(|d| d.data.user_id),
        );
        for user in &users {
            if let Err(e) = self.access.sync_roles(user, "reconciliation").await {
                tracing::warn!(%user, error = %e, "desired roles not recomputed; next pass");
            }
        }

        let states = self.states().list_all::<RoleState>(&[], 100).await?;
        let mut should: HashMap<u64, BTreeSet<u64>> = HashMap::new();
        let mut recorded: HashMap<u64, BTreeSet<u64>> = HashMap::new();
        for doc in &states {
            let s = &doc.data;
            let Some(role) = self.managed_role(&s.role_id) else {
                continue;
            };
            if let Some(account) = target(s).and_then(snowflake) {
                should.entry(account).or_default().insert(role);
            }
            if let Some(account) = holder(s).and_then(snowflake) {
                recorded.entry(account).or_default().insert(role);
            }
            if !plan(s).settled {
                self.queue.push(Job::State(doc.id.clone()), false);
            }
        }

        let empty = BTreeSet::new();
        let (mut listed, mut queued) = (0, 0);
        let mut after = None;
        loop {
            let page = self
                .http
                .get_guild_members(self.guild, Some(MEMBER_PAGE), after)
                .await
                .map_err(|e| match refused(e) {
                    Refused::Failed(m) if m.starts_with("403") => SyncError::Discord(format!(
                        "{m}: listing members needs the Server Members intent (Developer Portal > Bot)"
                    )),
                    Refused::Failed(m) => SyncError::Discord(m),
                    Refused::NotInGuild => SyncError::Discord("unknown member".into()),
                })?;
            for member in &page {
                let id = member.user.id.get();
                let held = self.managed_of(member);
                let wants = should.get(&id).unwrap_or(&empty);
                let ours = recorded.get(&id).unwrap_or(&empty);
                if held != *wants || held != *ours {
                    self.queue.push(
                        Job::Member {
                            discord: id,
                            why: Why::Reconcile,
                        },
                        false,
                    );
                    queued += 1;
                }
            }
            listed += page.len();
            match page.last() {
                Some(last) if page.len() as u64 == MEMBER_PAGE => after = Some(last.user.id.get()),
                _ => break,
            }
        }
        Ok((listed, queued))
    }
}

/// Whether the bot (`me`, looked up once) can manage every role of `managed` in `guild`: Manage
/// Roles (or Administrator) and a highest role above each, which must exist.
async fn check_permissions(
    http: &Http,
    guild: GuildId,
    managed: &BTreeSet<u64>,
    me: &mut Option<UserId>,
) -> Result<(), CheckFailure> {
    let unreachable = |e: serenity::Error| CheckFailure::Unreachable(e.to_string());
    let bot = match me {
        Some(id) => *id,
        None => {
            let id = http.get_current_user().await.map_err(unreachable)?.id;
            *me = Some(id);
            id
        }
    };
    let roles = http.get_guild_roles(guild).await.map_err(unreachable)?;
    let member = match http.get_member(guild, bot).await {
        Ok(m) => m,
        Err(e) => {
            return Err(match refused(e) {
                Refused::NotInGuild => CheckFailure::Misconfigured(vec![format!(
                    "the bot is not a member of guild {guild}"
                )]),
                Refused::Failed(e) => CheckFailure::Unreachable(e),
            });
        }
    };
    let problems = problems(guild, &roles, &member.roles, managed);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CheckFailure::Misconfigured(problems))
    }
}

/// What the start-up check found about role sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// What keeps the bot from managing the roles, one problem per entry.
    Misconfigured(Vec<String>),
    /// Discord could not be asked.
    Unreachable(String),
}

/// Role sync's permission check, as the bot runs it at start (role sync itself checks again
/// and stays paused while it fails).
pub async fn check_at_start(config: &Config, http: &Http, me: UserId) -> Readiness {
    let managed: BTreeSet<u64> = config
        .plan_roles
        .managed()
        .into_iter()
        .filter_map(snowflake)
        .collect();
    match check_permissions(http, config.guild_id, &managed, &mut Some(me)).await {
        Ok(()) => Readiness::Ready,
        Err(CheckFailure::Misconfigured(p)) => Readiness::Misconfigured(p),
        Err(CheckFailure::Unreachable(e)) => Readiness::Unreachable(e),
    }
}

/// What keeps the bot (holding `bot_roles`) from managing `managed` in `guild`, in words.
fn problems(
    guild: GuildId,
    roles: &[Role],
    bot_roles: &[RoleId],
    managed: &BTreeSet<u64>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mine: Vec<&Role> = roles
        .iter()
        .filter(|r| r.id.get() == guild.get() || bot_roles.contains(&r.id))
        .collect();
    let perms = mine
        .iter()
        .fold(Permissions::empty(), |p, r| p | r.permissions);
    let names = || {
        mine.iter()
            .map(|r| format!("\"{}\"", r.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !perms.intersects(Permissions::MANAGE_ROLES | Permissions::ADMINISTRATOR) {
        out.push(format!(
            "the bot lacks the Manage Roles permission (its roles: {})",
            names()
        ));
    }
    let top = mine.iter().max_by_key(|r| (r.position, r.id));
    for &id in managed {
        match roles.iter().find(|r| r.id.get() == id) {
            None => out.push(format!(
                "managed role {id} does not exist in guild {guild} (check PLAN_ROLES)"
            )),
            Some(role) if role.managed => out.push(format!(
                "managed role \"{}\" ({id}) belongs to an integration and cannot be assigned",
                role.name
            )),
            Some(role) => {
                let top_position = top.map_or(0, |t| t.position);
                if role.position >= top_position {
                    let top_name = top.map_or("@everyone", |t| t.name.as_str());
                    out.push(format!(
                        "managed role \"{}\" ({id}, position {}) is not below the bot's highest role \"{top_name}\" (position {top_position}): move the bot's role above it in Server Settings > Roles",
                        role.name, role.position
                    ));
                }
            }
        }
    }
    out
}

/// The start-up check, then reconciliation every `reconcile_every`; while the check fails,
/// role changes are paused and it is checked again every `recheck_every`.
async fn supervise(sync: Arc<RoleSync>, ready: watch::Sender<bool>) {
    let mut me = None;
    loop {
        let wait = match sync.check(&mut me).await {
            Ok(()) => {
                if !*ready.borrow() {
                    tracing::info!(guild = %sync.guild, roles = ?sync.managed, "role sync running");
                    ready.send_replace(true);
                }
                match sync.reconcile().await {
                    Ok((listed, queued)) => {
                        tracing::info!(listed, queued, "role reconciliation pass done")
                    }
                    Err(e) => tracing::warn!(error = %e, "role reconciliation pass failed"),
                }
                sync.timing.reconcile_every
            }
            Err(CheckFailure::Misconfigured(problems)) => {
                ready.send_replace(false);
                tracing::error!(
                    guild = %sync.guild,
                    recheck_in = ?sync.timing.recheck_every,
                    "role sync paused (signal mirroring continues): {}",
                    problems.join("; ")
                );
                sync.timing.recheck_every
            }
            Err(CheckFailure::Unreachable(e)) => {
                tracing::warn!(error = %e, "role sync could not check its permissions; checked again later");
                sync.timing.recheck_every.min(sync.timing.reconcile_every)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Applies queued jobs one at a time while role sync is running; a failed job is queued again
/// with backoff.
async fn work(sync: Arc<RoleSync>, mut ready: watch::Receiver<bool>) {
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

/// Queues members joining the customer guild. Ends when the gateway stops sending.
async fn forward_joins(sync: Arc<RoleSync>, mut joins: mpsc::Receiver<MemberJoined>) {
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

/// Queues every `role_state` and link change since `since`. Returns the newest `$updatedAt`.
async fn catch_up(
    sync: &RoleSync,
    since: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, g3_appwrite::Error> {
    let queries = [
        Query::order_asc("$updatedAt"),
        Query::greater_than_equal("$updatedAt", stamp(since).as_str()),
    ];
    let states = sync.states().list_all::<Value>(&queries, 100).await?;
    let links = sync
        .appwrite
        .documents(DATABASE_ID, DISCORD_LINKS)
        .list_all::<Value>(&queries, 100)
        .await?;
    let newest = states.iter().chain(&links).map(|d| d.updated_at).max();
    for doc in links {
        sync.queue.push(Job::Link(doc.id), true);
    }
    for doc in states {
        sync.queue.push(Job::State(doc.id), true);
    }
    Ok(newest)
}

/// Follows `role_state` and `discord_links` through Realtime, catching up on every connect.
async fn follow(sync: Arc<RoleSync>, config: &Config, start: OffsetDateTime) {
    // The reconciliation pass at start covers everything before `start`.
    let mut cursor = start - time::Duration::seconds(5);
    let mut failures: u32 = 0;
    loop {
        match subscribe(&sync.appwrite, config).await {
            Ok(mut realtime) => {
                while let Some(msg) = realtime.recv().await {
                    match msg {
                        RealtimeMessage::Connected { .. } => {
                            failures = 0;
                            match catch_up(&sync, cursor).await {
                                Ok(Some(newest)) => cursor = cursor.max(newest),
                                Ok(None) => {}
                                Err(e) => {
                                    tracing::warn!(error = %e, "role catch-up failed; the next reconciliation covers it")
                                }
                            }
                        }
                        RealtimeMessage::Event(event) => {
                            let Ok(doc) = event.document::<Value>() else {
                                continue;
                            };
                            cursor = cursor.max(doc.updated_at);
                            match doc.collection_id.as_str() {
                                ROLE_STATE => sync.queue.push(Job::State(doc.id), true),
                                DISCORD_LINKS => sync.queue.push(Job::Link(doc.id), true),
                                _ => {}
                            }
                        }
                        RealtimeMessage::Disconnected { reason } => {
                            tracing::info!(%reason, "role subscription disconnected");
                        }
                        RealtimeMessage::AuthFailed { message } => {
                            tracing::warn!(%message, "service session refused; signing in again");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "service user could not subscribe to role state"),
        }
        failures = failures.saturating_add(1);
        tokio::time::sleep(config.resubscribe.delay_for(failures)).await;
    }
}

async fn subscribe(
    appwrite: &Client,
    config: &Config,
) -> Result<g3_appwrite::Realtime, g3_appwrite::Error> {
    let session = appwrite
        .account()
        .create_email_password_session(&config.staff_email, config.staff_password.expose())
        .await?;
    appwrite.realtime(
        &g3_appwrite::SessionSecret::new(session.secret.expose()),
        RealtimeOptions::new([ROLE_STATE_CHANNEL, LINKS_CHANNEL]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(desired: bool, discord: Option<&str>, applied: Option<bool>) -> RoleState {
        RoleState {
            user_id: "u1".into(),
            discord_user_id: discord.map(Into::into),
            applied_discord_user_id: applied.filter(|a| *a).and(discord.map(Into::into)),
            role_id: "111".into(),
            desired,
            applied,
            reason: None,
            last_error: None,
            attempts: None,
            applied_at: None,
            next_retry_at: None,
        }
    }

    #[test]
    fn plans_grant_move_take_back_and_wait_for_a_join() {
        // Desired, linked, not applied: grant.
        let s = state(true, Some("7"), None);
        assert_eq!(
            plan(&s),
            Plan {
                remove_from: None,
                add_to: Some("7"),
                settled: false
            }
        );
        // Applied to the account that should hold it: nothing to do.
        assert!(plan(&state(true, Some("7"), Some(true))).settled);
        // No longer desired: take it back from where it was applied.
        let s = state(false, Some("7"), Some(true));
        let p = plan(&s);
        assert_eq!((p.remove_from, p.add_to), (Some("7"), None));
        // Relinked to 8 after it was applied to 7: move it.
        let mut s = state(true, Some("8"), Some(true));
        s.applied_discord_user_id = Some("7".into());
        let p = plan(&s);
        assert_eq!((p.remove_from, p.add_to), (Some("7"), Some("8")));
        // Unlinked: no target, take it back from 7.
        let mut s = state(false, None, Some(true));
        s.applied_discord_user_id = Some("7".into());
        assert_eq!(plan(&s).remove_from, Some("7"));
        // Not in guild, recorded for this account: wait for the join, without spinning...
        let mut s = state(true, Some("7"), Some(false));
        s.last_error = Some(not_in_guild("7"));
        assert!(plan(&s).settled);
        // ...but a relink to another account tries that one.
        s.discord_user_id = Some("8".into());
        assert_eq!(plan(&s).add_to, Some("8"));
        // A stale error with nothing left to do is cleared.
        let mut s = state(false, Some("7"), Some(false));
        s.last_error = Some("500".into());
        let p = plan(&s);
        assert_eq!((p.remove_from, p.add_to, p.settled), (None, None, false));
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let t = Timing {
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(60),
            ..Timing::default()
        };
        let first = t.backoff(1);
        assert!((7_500..=12_500).contains(&first.as_millis()), "{first:?}");
        let third = t.backoff(3);
        assert!((30_000..=50_000).contains(&third.as_millis()), "{third:?}");
        let late = t.backoff(30);
        assert!((45_000..=75_000).contains(&late.as_millis()), "{late:?}");
        let draws: BTreeSet<u128> = (0..20).map(|_| t.backoff(2).as_millis()).collect();
        assert!(draws.len() > 1, "no jitter");
    }

    #[tokio::test]
    async fn the_queue_runs_live_changes_first_once_each_and_retries_when_due() {
        let q = Queue::default();
        q.push(Job::State("a".into()), false);
        q.push(Job::State("b".into()), true);
        q.push(Job::State("a".into()), false);
        q.push_at(
            Job::State("c".into()),
            Instant::now() + Duration::from_millis(50),
        );
        q.push_at(
            Job::State("c".into()),
            Instant::now() + Duration::from_secs(60),
        );
        assert_eq!(q.pop().await, Job::State("b".into()));
        assert_eq!(q.pop().await, Job::State("a".into()));
        let started = Instant::now();
        assert_eq!(q.pop().await, Job::State("c".into()));
        assert!(started.elapsed() >= Duration::from_millis(30));
        let pending = q.lock();
        assert!(pending.later.is_empty() && pending.due.is_empty());
    }

    fn role(id: u64, name: &str, position: u16, permissions: Permissions) -> Role {
        serde_json::from_value(json!({
            "id": id.to_string(),
            "name": name,
            "color": 0,
            "colors": { "primary_color": 0 },
            "hoist": false,
            "managed": false,
            "position": position,
            "permissions": permissions.bits().to_string(),
            "icon": null,
            "unicode_emoji": null,
        }))
        .expect("role JSON")
    }

    #[test]
    fn the_check_names_every_problem() {
        let guild = GuildId::new(1);
        let roles = vec![
            role(1, "@everyone", 0, Permissions::empty()),
            role(10, "g3-bot", 2, Permissions::MANAGE_ROLES),
            role(20, "VIP", 3, Permissions::empty()),
            role(21, "Basic", 1, Permissions::empty()),
        ];
        let managed: BTreeSet<u64> = [20, 21].into();
        let p = problems(guild, &roles, &[RoleId::new(10)], &managed);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("\"VIP\" (20, position 3)") && p[0].contains("\"g3-bot\" (position 2)"),
            "{p:?}"
        );
        let p = problems(guild, &roles, &[], &[21, 99].into());
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("Manage Roles"));
        assert!(p[2].contains("99 does not exist"));
        let mut admin = roles.clone();
        admin[1] = role(10, "g3-bot", 5, Permissions::ADMINISTRATOR);
        assert!(problems(guild, &admin, &[RoleId::new(10)], &managed).is_empty());
    }
}
