//! The periodic full pass: recompute every customer's desired roles from the source, then list
//! the guild and queue every member whose managed roles differ from their records. Also the
//! loop that runs it, behind the start-up check.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use tokio::sync::watch;

use super::{
    SyncError,
    check::CheckFailure,
    plan::{holder, plan, target},
    queue::{Job, Why},
    sync::{Refused, RoleSync, refused},
};
use crate::snowflake;

/// Members per page when listing the guild (Discord's maximum).
const MEMBER_PAGE: u64 = 1000;

/// The start-up check, then reconciliation every `reconcile_every`; while the check fails,
/// role changes are paused and it is checked again every `recheck_every`.
pub(super) async fn supervise(sync: Arc<RoleSync>, ready: watch::Sender<bool>) {
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

impl RoleSync {
    /// Recomputes everyone's desired roles from the source, then compares the guild with
    /// them and queues the repairs. Returns (members listed, members queued for repair).
    async fn reconcile(&self) -> Result<(usize, usize), SyncError> {
        let states = self.states().list_all(&[], 100).await?;
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

        let states = self.states().list_all(&[], 100).await?;
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
