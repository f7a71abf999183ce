//! Deliveries that could not be applied, kept as data (`webhook_failures`, one document per
//! delivery) with enough to replay them: recorded by the webhook (or drained from its local
//! spool), retried on a schedule with backoff by its worker, listed and retried by staff.

use g3_appwrite::{Document, Query};
use g3_core::{ids, sellapp::Event};
use g3_store::{
    Collection,
    models::{FailureState, WebhookFailure},
};
use time::{Duration, OffsetDateTime};

use crate::{Access, AccessError, Outcome, truncate};

/// Attempts after which a failure is left for a human (`dead`).
pub const MAX_ATTEMPTS: i64 = 12;

/// Retry schedule of failed deliveries: 30 s doubling to 6 h, with ±20% jitter.
pub fn retry_delay(attempts: i64) -> Duration {
    let base = 30.0 * 2f64.powi(attempts.clamp(0, 10) as i32);
    let capped = base.min(6.0 * 3600.0);
    let jitter = 0.8 + rand::random::<f64>() * 0.4;
    Duration::seconds_f64(capped * jitter)
}

fn failure_id(delivery_id: &str) -> String {
    ids::derive("failure", &[delivery_id])
}

/// A delivery that could not be applied.
pub struct NewFailure<'a> {
    pub delivery_id: &'a str,
    pub event: Option<&'a str>,
    pub email: Option<&'a str>,
    pub payload: &'a [u8],
    /// JSON object of the headers that matter.
    pub headers: &'a str,
    pub error: &'a str,
    /// False when retrying the same input cannot succeed (malformed JSON, unknown product).
    pub retryable: bool,
    /// Retry at the next worker pass instead of after the backoff delay (the outage that
    /// caused it is known to be over, e.g. when draining the local spool).
    pub retry_now: bool,
}

/// What retrying one failure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    /// The delivery took effect (or had already): the failure is `resolved`.
    Resolved(Outcome),
    /// It failed again, with this error: the next try is scheduled, or the failure is `dead`
    /// after [`MAX_ATTEMPTS`] or when retrying cannot help.
    FailedAgain(String),
}

impl Access {
    fn failures(&self) -> Collection<WebhookFailure> {
        self.collection()
    }

    /// Records (or updates) a failed delivery so it can be retried. Idempotent per delivery.
    pub async fn record_failure(&self, failure: NewFailure<'_>) -> Result<String, AccessError> {
        let id = failure_id(failure.delivery_id);
        let docs = self.failures();
        let existing = docs.get_optional(&id).await?;
        let attempts = existing.as_ref().and_then(|d| d.data.attempts).unwrap_or(0);
        let state = if !failure.retryable || attempts >= MAX_ATTEMPTS {
            FailureState::Dead
        } else {
            FailureState::Pending
        };
        let doc = WebhookFailure {
            event_id: failure.delivery_id.to_owned(),
            event: failure.event.map(str::to_owned),
            email: failure.email.map(str::to_owned),
            payload: Some(String::from_utf8_lossy(failure.payload).into_owned()),
            headers: Some(failure.headers.to_owned()),
            error: Some(truncate(failure.error, 2048)),
            attempts: Some(attempts),
            next_retry_at: (state == FailureState::Pending).then(|| {
                let now = OffsetDateTime::now_utc();
                if failure.retry_now {
                    now
                } else {
                    now + retry_delay(attempts)
                }
            }),
            state,
        };
        docs.upsert(&id, &doc, None).await?;
        Ok(id)
    }

    /// Open failures (pending, retrying or dead), newest first.
    pub async fn list_failures(
        &self,
        include_resolved: bool,
    ) -> Result<Vec<Document<WebhookFailure>>, AccessError> {
        let mut queries = vec![Query::order_desc("$updatedAt"), Query::limit(100)];
        if !include_resolved {
            queries.push(Query::not_equal("state", "resolved"));
        }
        Ok(self.failures().list(&queries).await?.documents)
    }

    pub async fn get_failure(
        &self,
        id: &str,
    ) -> Result<Option<Document<WebhookFailure>>, AccessError> {
        Ok(self.failures().get_optional(id).await?)
    }

    /// Replays one failure. On success it is `resolved`; otherwise its attempts grow and the
    /// next try is scheduled (or it is `dead` after [`MAX_ATTEMPTS`] or when not retryable).
    /// An error means the retry could not run at all (no such failure, Appwrite away).
    pub async fn retry_failure(&self, id: &str) -> Result<RetryOutcome, AccessError> {
        let docs = self.failures();
        let Some(doc) = docs.get_optional(id).await? else {
            return Err(AccessError::Unprocessable(format!(
                "no failure with id {id}"
            )));
        };
        let mut failure = doc.data;
        let payload = failure.payload.clone().unwrap_or_default();
        let result = match Event::parse(payload.as_bytes()) {
            Ok(event) => self
                .handle_delivery(&failure.event_id, &event)
                .await
                .map_err(|e| (e.is_retryable(), e.to_string())),
            Err(e) => Err((false, format!("payload is not a Sell.app event: {e}"))),
        };
        let attempts = failure.attempts.unwrap_or(0) + 1;
        failure.attempts = Some(attempts);
        let report = match result {
            Ok(outcome) => {
                failure.state = FailureState::Resolved;
                failure.next_retry_at = None;
                RetryOutcome::Resolved(outcome)
            }
            Err((retryable, message)) => {
                failure.error = Some(truncate(&message, 2048));
                if retryable && attempts < MAX_ATTEMPTS {
                    failure.state = FailureState::Pending;
                    failure.next_retry_at = Some(OffsetDateTime::now_utc() + retry_delay(attempts));
                } else {
                    failure.state = FailureState::Dead;
                    failure.next_retry_at = None;
                }
                RetryOutcome::FailedAgain(message)
            }
        };
        docs.upsert(id, &failure, None).await?;
        Ok(report)
    }

    /// Failures whose next retry is due.
    pub async fn due_failures(&self, now: OffsetDateTime) -> Result<Vec<String>, AccessError> {
        Ok(self
            .failures()
            .list(&[
                Query::equal("state", "pending"),
                Query::less_than_equal("next_retry_at", g3_appwrite::format_datetime(now)),
                Query::limit(100),
            ])
            .await?
            .documents
            .into_iter()
            .map(|d| d.id)
            .collect())
    }
}
