//! Role sync: converges the customer guild's managed roles (those named in `PLAN_ROLES`, and no
//! others) to the desired state g3-access keeps in `role_state`, one document per customer and
//! role.
//!
//! - **Events** ([`realtime`]). A Realtime subscription on `role_state` and `discord_links` (as
//!   the `staff` service user) with catch-up from a cursor on every (re)connect, as
//!   [`crate::follow`] does for signals. A changed document is converged at once ([`sync`]): the
//!   role is granted to the linked account, or taken back from the account it was last applied
//!   to (`applied_discord_user_id`, so a relink or an unlink moves or removes it), as the pure
//!   [`plan`] says. A changed link recomputes the customer's desired roles first. A member
//!   joining the guild ([`MemberJoined`]) gets their roles back ([`member`]).
//! - **Failures.** A refused or failed change is recorded on the document (`last_error`,
//!   `attempts`, `next_retry_at` with exponential backoff and jitter) and tried again then, never
//!   in a loop. A linked account that is not in the guild is recorded as "not in guild" and left
//!   alone until it joins.
//! - **Reconciliation** ([`reconcile`]). At start and every `reconcile_every`: recompute every
//!   customer's desired roles from the source ([`Access::sync_roles`]: expired periods,
//!   verification), then list the guild's members and repair drift: a managed role missing from
//!   someone who should hold it is added, one held by anyone who should not is removed. Repairs
//!   that undo a change made in Discord by hand are written to the audit log
//!   (`role.drift_repaired`).
//! - **Start-up check** ([`check`]). Role sync runs only while the bot can do it: Manage Roles
//!   (or Administrator) and a highest role above every managed role, which must all exist. If
//!   not, it says what is wrong, stays paused (no role requests) and checks again every
//!   `recheck_every`; mirroring is not affected.
//!
//! One worker applies every change, one at a time ([`queue`]), so two passes never race on one
//! member. Time (paid periods, retries, stamps) is read from [`Config::clock`].

mod check;
mod member;
mod plan;
mod queue;
mod realtime;
mod reconcile;
mod sync;

use std::{sync::Arc, time::Duration};

use g3_access::{Access, AccessError, Clock};
use g3_appwrite::Client;
use g3_core::plans::{PlanCatalog, PlanRoles};
use rand::Rng as _;
use serenity::{all::GuildId, http::Http};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use crate::{RetryPolicy, Secret, Settings};

pub use check::{Readiness, check_at_start};
pub use plan::not_in_guild;

/// The audit action of a repaired drift, and who it is recorded as.
pub const DRIFT_REPAIRED: &str = "role.drift_repaired";
pub const ACTOR: &str = "bot";

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
    /// What "now" is for paid periods, retries and stamps: the system's, unless a test moves it.
    pub clock: Clock,
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
            clock: Clock::default(),
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
    let access = Access::new(appwrite.clone(), PlanCatalog::default())
        .with_roles(config.plan_roles.clone())
        .with_clock(config.clock.clone());
    let sync = Arc::new(sync::RoleSync::new(
        http,
        appwrite,
        access,
        config.guild_id,
        config.timing.clone(),
        config.clock.clone(),
    ));
    let (ready_tx, ready_rx) = watch::channel(false);
    // The Realtime cursor is compared with Appwrite's `$updatedAt`: the system's time, always.
    let start = OffsetDateTime::now_utc();
    tokio::join!(
        reconcile::supervise(sync.clone(), ready_tx),
        realtime::follow(sync.clone(), &config, start),
        member::forward_joins(sync.clone(), joins),
        sync::work(sync, ready_rx),
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

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
}
