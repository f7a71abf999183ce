//! Background jobs: drain the local spool into `webhook_failures` and retry due failures;
//! expire subscriptions whose paid period ended (and sweep old lock generations); reconcile
//! refunds with Sell.app. They stop after their current step when the service shuts down.

use std::time::Duration;

use g3_access::{NewFailure, RetryOutcome};
use time::OffsetDateTime;
use tokio::{sync::watch, task::JoinHandle};
use tracing::{info, warn};

use crate::{AppState, Settings, reconcile};

/// What one retry pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RetryReport {
    /// Spooled failures moved into Appwrite.
    pub drained: usize,
    /// Spooled failures still on disk (Appwrite still unreachable).
    pub spooled: usize,
    pub resolved: usize,
    pub still_failing: usize,
}

pub async fn retry_once(state: &AppState) -> RetryReport {
    let mut report = RetryReport::default();
    match state.spool.list() {
        Ok(entries) => {
            for (path, f) in entries {
                let recorded = state
                    .access
                    .record_failure(NewFailure {
                        // Appwrite answers again: the outage is over, retry in this pass.
                        retry_now: true,
                        ..NewFailure::from(&f)
                    })
                    .await;
                match recorded {
                    Ok(_) => {
                        if let Err(e) = state.spool.remove(&path) {
                            warn!(error = %format!("{e:#}"), "drained spool record could not be removed");
                        }
                        report.drained += 1;
                    }
                    Err(_) => report.spooled += 1,
                }
            }
        }
        Err(e) => warn!(error = %format!("{e:#}"), "cannot read the spool"),
    }
    if report.spooled > 0 {
        // Appwrite is still away: nothing else can work now.
        state.metrics.set_spooled(report.spooled as i64);
        return report;
    }
    state.metrics.set_spooled(0);
    match state.access.due_failures(OffsetDateTime::now_utc()).await {
        Ok(ids) => {
            for id in ids {
                match state.access.retry_failure(&id).await {
                    Ok(RetryOutcome::Resolved(_)) => report.resolved += 1,
                    Ok(RetryOutcome::FailedAgain(message)) => {
                        warn!(failure = %id, error = %message, "retry failed");
                        report.still_failing += 1;
                    }
                    Err(e) => {
                        warn!(failure = %id, error = %e, "retry could not run");
                        report.still_failing += 1;
                    }
                }
            }
        }
        Err(e) => warn!(error = %e, "cannot list due failures"),
    }
    if let Ok(open) = state.access.list_failures(false).await {
        let pending = open
            .iter()
            .filter(|d| d.data.state == g3_store::models::FailureState::Pending)
            .count();
        state.metrics.set_failures_pending(pending as i64);
    }
    if report != RetryReport::default() {
        info!(?report, "retry pass");
    }
    report
}

pub fn spawn(
    state: AppState,
    settings: Settings,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut retry = tokio::time::interval(settings.intervals.retry);
        let mut expiry = tokio::time::interval(settings.intervals.expiry);
        let mut reconcile_tick = tokio::time::interval(settings.intervals.reconcile);
        for t in [&mut retry, &mut expiry, &mut reconcile_tick] {
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        // Give the service a moment to start serving before the first reconciliation.
        reconcile_tick.reset_after(Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = retry.tick() => {
                    let pass = async {
                        retry_once(&state).await;
                        if let Some(ingest) = &state.ingest {
                            ingest.retry_assets().await;
                        }
                    };
                    if cancelled_by(&mut stop, pass).await {
                        break;
                    }
                }
                _ = expiry.tick() => {
                    if cancelled_by(&mut stop, expiry_pass(&state)).await {
                        break;
                    }
                }
                _ = reconcile_tick.tick(), if settings.sellapp_api.is_some() => {
                    if let Some(api) = &settings.sellapp_api {
                        let pass = async {
                            match reconcile::run_once(&state.access, api).await {
                                Ok(0) => {}
                                Ok(n) => info!(revoked = n, "refund reconciliation revoked access"),
                                Err(e) => warn!(error = %format!("{e:#}"), "refund reconciliation failed; will try again"),
                            }
                        };
                        if cancelled_by(&mut stop, pass).await {
                            break;
                        }
                    }
                }
            }
        }
    })
}

/// Runs one pass unless the service stops first: a pass cut short is safe (every step is
/// idempotent and retried next time), and shutdown must not wait for a long pass.
async fn cancelled_by(
    stop: &mut watch::Receiver<bool>,
    pass: impl std::future::Future<Output = ()>,
) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = stop.changed() => {
            info!("background pass cut short by shutdown");
            true
        }
        () = pass => false,
    }
}

async fn expiry_pass(state: &AppState) {
    match state.access.expire_due(OffsetDateTime::now_utc()).await {
        Ok(0) => {}
        Ok(n) => info!(expired = n, "expired subscriptions whose paid period ended"),
        Err(e) => warn!(error = %e, "expiry pass failed; will try again"),
    }
    match state.access.locks().sweep(OffsetDateTime::now_utc()).await {
        Ok(0) => {}
        Ok(n) => info!(swept = n, "old lock generations deleted"),
        Err(e) => warn!(error = %e, "lock sweep failed; will try again"),
    }
}
