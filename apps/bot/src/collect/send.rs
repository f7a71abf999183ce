//! Delivery to ingest: one signed request in flight, strictly in queue order; refused batches
//! are split until the one bad event is found, anything else is retried with back-off.

use std::{collections::HashMap, sync::Arc, time::Duration};

use rand::Rng as _;
use serde_json::json;

use super::{Collector, IngestEvent, MAX_BATCH_EVENTS};

impl Collector {
    pub(super) fn delay(&self, attempt: u32) -> Duration {
        let exp = crate::exponential(
            self.settings.backoff_base,
            self.settings.backoff_max,
            attempt.saturating_sub(1),
        );
        let half = exp / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }

    pub(super) async fn deliver_forever(self: Arc<Self>) {
        let mut attempt = 0u32;
        let mut max_events = MAX_BATCH_EVENTS;
        loop {
            let batch = self.outbox.front(max_events).await;
            let n = batch.len();
            match self.post(&batch).await {
                Ok(status) if (200..300).contains(&status) => {
                    attempt = 0;
                    max_events = MAX_BATCH_EVENTS;
                    self.outbox.ack(n);
                    self.delivered(&batch).await;
                    continue;
                }
                Ok(status @ (400 | 413)) if n > 1 => {
                    tracing::warn!(status, events = n, "ingest refused a batch; splitting it");
                    max_events = n.div_ceil(2);
                    continue;
                }
                Ok(status @ (400 | 413)) => {
                    tracing::error!(status, event = ?batch[0], "ingest refused one event; dropped");
                    self.outbox.ack(1);
                    self.delivered(&batch).await;
                    continue;
                }
                Ok(401) => tracing::error!(
                    "ingest refused the signature (401): check COLLECTOR_INGEST_SECRET and the clock; retrying"
                ),
                Ok(status) => tracing::warn!(status, "ingest answered an error; retrying"),
                Err(e) => tracing::warn!(error = %e, "ingest unreachable; retrying"),
            }
            attempt += 1;
            tokio::time::sleep(self.delay(attempt)).await;
        }
    }

    /// One signed request; `Ok` is the status answered.
    async fn post(&self, events: &[IngestEvent]) -> Result<u16, reqwest::Error> {
        let body = serde_json::to_vec(&json!({ "events": events })).unwrap_or_default();
        let id = format!("bot_{:032x}", rand::rng().random::<u128>());
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = g3_core::signing::standard_signature(
            self.settings.ingest_secret.expose(),
            &id,
            timestamp,
            &body,
        );
        let response = self
            .ingest
            .post(&self.settings.ingest_url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await?;
        Ok(response.status().as_u16())
    }

    /// After ingest took a batch: move the cursors of channels in sync, and once an overflow
    /// has drained, read the affected channels again.
    async fn delivered(&self, batch: &[IngestEvent]) {
        let mut newest: HashMap<u64, u64> = HashMap::new();
        for e in batch.iter().filter(|e| e.kind == "message.create") {
            if let (Some(c), Some(m)) = (e.channel_id(), e.message_id()) {
                let slot = newest.entry(c).or_insert(0);
                *slot = (*slot).max(m);
            }
        }
        for (channel, id) in newest {
            if !self.cursors.is_synced(channel) {
                continue;
            }
            if let Err(e) = self.cursors.advance(channel, id).await {
                tracing::warn!(channel, error = %e, "collector cursor not saved; kept in memory");
            }
        }
        let drained = self.outbox.len() <= self.settings.queue_capacity / 2;
        if drained {
            let mut overflowed = self.overflowed.lock().unwrap_or_else(|e| e.into_inner());
            if !overflowed.is_empty() {
                overflowed.clear();
                drop(overflowed);
                self.backfill_wanted.notify_one();
            }
        }
    }
}
