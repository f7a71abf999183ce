//! Leadership: the start-up check, then standing by until this process holds the bot's lease
//! ([`g3_store::lease`]), then the leader's work (mirroring, outcome replies, role sync, the
//! gateway) until the lease is lost (stop everything at once, stand by again) or shutdown (drain,
//! store the cursors, release the lease so a standby takes over at once). The loop is
//! [`g3_store::lease::lead`], shared with the tracker.
//!
//! Every mirror and reply side effect is gated on the lease's [`Fence`] and the writes that
//! matter (the catch-up cursors, `mirrors` and `outcome_replies` documents) carry its generation,
//! refused when a newer one is stored.

use std::{future::Future, sync::Arc, time::Duration};

use g3_store::lease::{self, Fence, Leading, Lease, Standing};
use serenity::http::Http;
use tokio::{sync::watch, task::JoinHandle};

use crate::{
    Mirrorer, Settings, follow, gateway,
    health::Role,
    replies::{self, Replier},
    roles, startup,
};

/// How long shutdown waits for the mirror in flight before aborting it (a pending mapping and
/// its nonce make an abort safe; waiting just saves the next leader a lookup).
const DRAIN: Duration = Duration::from_secs(5);

/// See the module doc. Returns an error only for a start-up check that failed for good.
pub async fn run(
    settings: &Settings,
    http: Arc<Http>,
    appwrite: g3_appwrite::Client,
    role: &watch::Sender<Role>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    tokio::select! {
        checked = startup::check(settings, &http) => {
            checked?;
        }
        () = &mut shutdown => return Ok(()),
    }
    let lease = Lease::new(
        &appwrite,
        lease::Config {
            name: settings.lease.name.clone(),
            holder: settings.lease.holder.clone(),
            timing: settings.lease.timing,
            hold_renewals: settings.lease.hold_renewals.clone(),
        },
    );
    let stands = |standing: Standing| {
        role.send_replace(Role::from(standing));
    };
    let start = |fence| {
        let (http, appwrite) = (http.clone(), appwrite.clone());
        async move {
            tracing::info!("mirroring and role sync start");
            Work::start(settings, http, appwrite, fence).await
        }
    };
    lease::lead(&lease, stands, start, shutdown).await
}

/// The leader's tasks.
struct Work {
    tasks: Vec<JoinHandle<()>>,
    gateway: Option<gateway::Gateway>,
    member_joins: Option<tokio::sync::mpsc::Sender<roles::MemberJoined>>,
    progress: Arc<follow::Progress>,
    /// The outcome-reply follower's progress (its own cursor).
    reply_progress: Arc<follow::Progress>,
    turn: Arc<tokio::sync::Mutex<()>>,
    fence: Fence,
    appwrite: g3_appwrite::Client,
}

impl Work {
    /// Reconcile at start and periodically, follow signals through Realtime, mirror them one at a
    /// time, follow outcomes and reply to mirrors; role sync and the gateway when configured.
    async fn start(
        settings: &Settings,
        http: Arc<Http>,
        appwrite: g3_appwrite::Client,
        fence: Fence,
    ) -> anyhow::Result<Work> {
        let mirrorer = Arc::new(
            Mirrorer::new(http.clone(), appwrite.clone(), settings.retry.clone())
                .with_fence(fence.clone()),
        );
        let queue = Arc::new(follow::WorkQueue::default());
        // A stored catch-up cursor replaces the full reconciliation at start (see `follow`).
        let stored = follow::load_cursor(&appwrite).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "catch-up cursor unreadable: reconciling everything");
            None
        });
        let progress = Arc::new(follow::Progress::starting_at(stored));
        let turn = Arc::new(tokio::sync::Mutex::new(()));
        // Without one, the reconciliation pass at start covers everything before now.
        let cursor =
            stored.unwrap_or_else(|| time::OffsetDateTime::now_utc() - time::Duration::seconds(5));
        // Member joins reach role sync through this channel (from the gateway).
        let (member_joins, joins) = tokio::sync::mpsc::channel::<roles::MemberJoined>(1024);
        let role_sync = roles::Config::from_settings(settings)
            .map(|config| tokio::spawn(roles::run(config, http.clone(), appwrite.clone(), joins)));
        if role_sync.is_none() {
            tracing::info!("role sync is off: DISCORD_GUILD_ID and PLAN_ROLES are not both set");
        }
        let gateway = if gateway::enabled(settings) {
            let joins = settings
                .gateway
                .member_joins
                .clone()
                .unwrap_or_else(|| member_joins.clone());
            Some(gateway::start(
                settings,
                appwrite.clone(),
                http.clone(),
                joins,
            )?)
        } else {
            None
        };
        let mut tasks = vec![
            tokio::spawn(follow::reconcile(follow::Reconciler {
                appwrite: appwrite.clone(),
                mirrorer: mirrorer.clone(),
                queue: queue.clone(),
                progress: progress.clone(),
                order: settings.order,
                every: settings.reconcile_every,
                verify_window: settings.verify_window,
                at_start: stored.is_none(),
                turn: turn.clone(),
            })),
            tokio::spawn(follow::follow(
                appwrite.clone(),
                settings.clone(),
                queue.clone(),
                progress.clone(),
                cursor,
            )),
            tokio::spawn(follow::keep_cursor(
                appwrite.clone(),
                follow::CURSOR_KEY,
                progress.clone(),
                Duration::from_secs(1),
                fence.clone(),
            )),
            tokio::spawn(follow::work(
                mirrorer,
                appwrite.clone(),
                queue,
                progress.clone(),
                settings.retry_failed_after,
                turn.clone(),
            )),
        ];
        let reply_progress =
            Self::start_replies(settings, http.clone(), &appwrite, &fence, &turn, &mut tasks).await;
        tasks.extend(role_sync);
        Ok(Work {
            tasks,
            gateway,
            member_joins: Some(member_joins),
            progress,
            reply_progress,
            turn,
            fence,
            appwrite,
        })
    }

    /// Outcome replies ([`replies`]): follow `signal_outcomes` from the stored cursor (never
    /// before the age limit), store the cursor as it moves, and reply one outcome at a time,
    /// taking turns with the mirror worker.
    async fn start_replies(
        settings: &Settings,
        http: Arc<Http>,
        appwrite: &g3_appwrite::Client,
        fence: &Fence,
        turn: &Arc<tokio::sync::Mutex<()>>,
        tasks: &mut Vec<JoinHandle<()>>,
    ) -> Arc<follow::Progress> {
        let replier = Arc::new(
            Replier::new(http, appwrite.clone(), settings.retry.clone()).with_fence(fence.clone()),
        );
        let stored = follow::load_cursor_at(appwrite, replies::follow::CURSOR_KEY)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "outcome cursor unreadable: catching up on the last day");
                None
            });
        let cursor = replies::follow::start_cursor(stored, time::OffsetDateTime::now_utc());
        let progress = Arc::new(follow::Progress::starting_at(Some(cursor)));
        let queue = Arc::new(follow::WorkQueue::default());
        tasks.push(tokio::spawn(replies::follow::follow(
            appwrite.clone(),
            settings.clone(),
            replier.clone(),
            queue.clone(),
            progress.clone(),
            cursor,
        )));
        tasks.push(tokio::spawn(follow::keep_cursor(
            appwrite.clone(),
            replies::follow::CURSOR_KEY,
            progress.clone(),
            Duration::from_secs(1),
            fence.clone(),
        )));
        tasks.push(tokio::spawn(replies::follow::work(
            replier,
            appwrite.clone(),
            queue,
            progress.clone(),
            settings.retry_failed_after,
            turn.clone(),
        )));
        progress
    }
}

impl Leading for Work {
    /// Shutdown: stop taking work, let the mirror or reply in flight finish (up to [`DRAIN`]),
    /// stop every task, store the cursors while the lease still holds.
    async fn drain(self) {
        let appwrite = &self.appwrite.clone();
        let turn = self.turn.clone();
        let held = tokio::time::timeout(DRAIN, turn.lock()).await;
        if held.is_err() {
            tracing::warn!(after = ?DRAIN, "the mirror in flight did not finish: aborted (resumed by the next leader)");
        }
        let progress = self.progress.clone();
        let reply_progress = self.reply_progress.clone();
        let fence = self.fence.clone();
        self.abort().await;
        drop(held);
        // What was mirrored by now stays behind the cursor; the rest is caught up next time.
        match follow::store_cursor(appwrite, &progress, &fence).await {
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "catch-up cursor not stored at shutdown"),
        }
        let key = replies::follow::CURSOR_KEY;
        if let Err(e) = follow::store_cursor_at(appwrite, key, &reply_progress, &fence).await {
            tracing::warn!(error = %e, "outcome cursor not stored at shutdown");
        }
    }

    /// Stops every task and waits until they have stopped: no mirror call outlives this.
    async fn abort(mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.stop().await;
        }
        self.member_joins.take();
        let tasks = std::mem::take(&mut self.tasks);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

impl Drop for Work {
    /// `run` dropped without a stop (its task aborted): no task outlives it.
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
