//! Waiting on a condition instead of sleeping: every test and the smoke driver poll through
//! here, so a slow machine only makes a test slower, never wrong.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How often a condition is checked again.
const POLL: Duration = Duration::from_millis(20);

/// A condition that did not hold within its limit.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {limit:?} waiting for {what}")]
pub struct TimedOut {
    pub what: String,
    pub limit: Duration,
}

/// Polls `check` until it gives `Some`, or fails after `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, check: F) -> Result<T, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    wait_for_every(what, limit, POLL, check).await
}

/// [`wait_for`], checking every `every` (for checks that cost a request to a running stack).
pub async fn wait_for_every<T, F, Fut>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut check: F,
) -> Result<T, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(TimedOut {
                what: what.to_owned(),
                limit,
            });
        }
        tokio::time::sleep(every).await;
    }
}

/// Polls `cond` until it holds; panics with `what` after `limit` (for tests).
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    if let Err(e) = wait_for(what, limit, || {
        let fut = cond();
        async move { fut.await.then_some(()) }
    })
    .await
    {
        panic!("{e}");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn returns_once_the_condition_holds() {
        let calls = AtomicU32::new(0);
        let v = wait_for("three calls", Duration::from_secs(5), || async {
            (calls.fetch_add(1, Ordering::SeqCst) >= 2).then_some(7)
        })
        .await
        .unwrap();
        assert_eq!((v, calls.load(Ordering::SeqCst)), (7, 3));
    }

    #[tokio::test]
    async fn names_what_it_waited_for() {
        let e = wait_for::<(), _, _>("never", Duration::from_millis(50), || async { None })
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "timed out after 50ms waiting for never");
    }
}
