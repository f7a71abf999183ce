//! Prometheus metrics of the webhook service, rendered in the text exposition format, and the
//! rate limit on rejected-signature log lines (the counter keeps the exact number). The text
//! itself is written by [`g3_service::prometheus::Writer`].

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use g3_service::prometheus::Writer;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default)]
pub struct Metrics {
    /// (event, outcome) -> count.
    deliveries: Mutex<BTreeMap<(String, &'static str), u64>>,
    bucket_counts: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    /// Sum in microseconds, to stay integral.
    latency_sum_us: AtomicU64,
    failures_pending: AtomicI64,
    spooled: AtomicI64,
    /// Requests refused for a missing or wrong signature, per endpoint.
    rejected_sellapp: AtomicU64,
    rejected_ingest: AtomicU64,
    /// Requests refused (415) for a body not declared as JSON, per endpoint.
    not_json_sellapp: AtomicU64,
    not_json_ingest: AtomicU64,
    rejection_log: RejectionLog,
}

/// Which endpoint refused a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Sellapp,
    Ingest,
}

impl Endpoint {
    fn as_str(self) -> &'static str {
        match self {
            Endpoint::Sellapp => "sellapp",
            Endpoint::Ingest => "ingest",
        }
    }
}

/// At most one log line per [`RejectionLog::EVERY`] about rejected signatures, saying how many
/// were rejected since the last line: a flood of forged requests must not flood the log.
#[derive(Default)]
pub struct RejectionLog {
    /// When the last line was written, and how many rejections since then went unlogged.
    state: Mutex<(Option<Instant>, u64)>,
}

impl RejectionLog {
    pub const EVERY: Duration = Duration::from_secs(10);

    /// Notes one rejection at `now`. `Some(n)`: write a line now, covering `n` rejections
    /// (this one and those held back since the last line).
    pub fn note(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (last, held_back) = &mut *state;
        match last {
            Some(at) if now.saturating_duration_since(*at) < Self::EVERY => {
                *held_back += 1;
                None
            }
            _ => {
                let n = *held_back + 1;
                *last = Some(now);
                *held_back = 0;
                Some(n)
            }
        }
    }
}

impl Metrics {
    pub fn delivery(&self, event: &str, outcome: &'static str, took: Duration) {
        // Event names come from signed payloads but are still bounded to keep label sets sane.
        let event: String = event.chars().take(64).collect();
        *self
            .deliveries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((event, outcome))
            .or_default() += 1;
        let secs = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.bucket_counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// Counts a request refused for its signature and logs it, at most once per
    /// [`RejectionLog::EVERY`] across endpoints.
    pub fn rejected(&self, endpoint: Endpoint, error: &dyn std::fmt::Display) {
        match endpoint {
            Endpoint::Sellapp => &self.rejected_sellapp,
            Endpoint::Ingest => &self.rejected_ingest,
        }
        .fetch_add(1, Ordering::Relaxed);
        if let Some(n) = self.rejection_log.note(Instant::now()) {
            tracing::warn!(
                endpoint = endpoint.as_str(),
                rejected = n,
                last_error = %error,
                "rejected unsigned or wrongly signed requests (one line per 10 s at most; \
                 g3_webhook_rejected_signatures_total has the exact count)"
            );
        }
    }

    pub fn rejected_count(&self, endpoint: Endpoint) -> u64 {
        match endpoint {
            Endpoint::Sellapp => &self.rejected_sellapp,
            Endpoint::Ingest => &self.rejected_ingest,
        }
        .load(Ordering::Relaxed)
    }

    /// Counts a request refused (415) because its body is not declared as JSON.
    pub fn unsupported_media_type(&self, endpoint: Endpoint) {
        match endpoint {
            Endpoint::Sellapp => &self.not_json_sellapp,
            Endpoint::Ingest => &self.not_json_ingest,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub fn unsupported_media_type_count(&self, endpoint: Endpoint) -> u64 {
        match endpoint {
            Endpoint::Sellapp => &self.not_json_sellapp,
            Endpoint::Ingest => &self.not_json_ingest,
        }
        .load(Ordering::Relaxed)
    }

    pub fn set_failures_pending(&self, n: i64) {
        self.failures_pending.store(n, Ordering::Relaxed);
    }

    pub fn set_spooled(&self, n: i64) {
        self.spooled.store(n, Ordering::Relaxed);
    }

    pub fn count(&self, event: &str, outcome: &str) -> u64 {
        let map = self.deliveries.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|((e, o), _)| e == event && *o == outcome)
            .map(|(_, n)| *n)
            .sum()
    }

    pub fn render(&self) -> String {
        let mut w = Writer::new();
        let mut deliveries = w.counter_family(
            "g3_webhook_deliveries_total",
            "Sell.app deliveries by event and outcome.",
        );
        for ((event, outcome), n) in self
            .deliveries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            deliveries.sample(&[("event", event), ("outcome", outcome)], n);
        }
        let cumulative = self
            .bucket_counts
            .each_ref()
            .map(|n| n.load(Ordering::Relaxed));
        w.histogram(
            "g3_webhook_delivery_seconds",
            "Time from request to reply.",
            &BUCKETS,
            &cumulative,
            self.latency_count.load(Ordering::Relaxed),
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        );
        w.gauge(
            "g3_webhook_failures_pending",
            "Failed deliveries waiting for a retry.",
            self.failures_pending.load(Ordering::Relaxed),
        );
        w.gauge(
            "g3_webhook_spooled",
            "Failures kept on local disk while Appwrite is unreachable.",
            self.spooled.load(Ordering::Relaxed),
        );
        let mut rejected = w.counter_family(
            "g3_webhook_rejected_signatures_total",
            "Requests refused for a missing or wrong signature.",
        );
        for endpoint in [Endpoint::Sellapp, Endpoint::Ingest] {
            rejected.sample(
                &[("endpoint", endpoint.as_str())],
                self.rejected_count(endpoint),
            );
        }
        let mut not_json = w.counter_family(
            "g3_webhook_unsupported_media_type_total",
            "Requests refused (415) for a body not sent as application/json.",
        );
        for endpoint in [Endpoint::Sellapp, Endpoint::Ingest] {
            not_json.sample(
                &[("endpoint", endpoint.as_str())],
                self.unsupported_media_type_count(endpoint),
            );
        }
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.delivery("order.completed", "applied", Duration::from_millis(3));
        m.delivery("order.completed", "applied", Duration::from_millis(30));
        m.delivery("x\"y", "ignored", Duration::from_secs(20));
        let text = m.render();
        assert!(text.contains(
            "g3_webhook_deliveries_total{event=\"order.completed\",outcome=\"applied\"} 2"
        ));
        assert!(text.contains("event=\"x\\\"y\""));
        assert!(text.contains("g3_webhook_delivery_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("g3_webhook_delivery_seconds_bucket{le=\"0.05\"} 2"));
        assert!(text.contains("g3_webhook_delivery_seconds_bucket{le=\"+Inf\"} 3"));
        assert_eq!(m.count("order.completed", "applied"), 2);
    }

    #[test]
    fn rejections_are_counted_exactly_but_logged_once_per_window() {
        let log = RejectionLog::default();
        let t0 = Instant::now();
        assert_eq!(log.note(t0), Some(1), "the first one is logged at once");
        let mut lines = 0;
        for i in 1..=1000u64 {
            if log.note(t0 + Duration::from_millis(i)).is_some() {
                lines += 1;
            }
        }
        assert_eq!(lines, 0, "a flood inside the window writes nothing more");
        assert_eq!(
            log.note(t0 + RejectionLog::EVERY + Duration::from_millis(1)),
            Some(1001),
            "the next line sums up what was held back"
        );
        assert_eq!(log.note(t0 + RejectionLog::EVERY * 2), None);

        let m = Metrics::default();
        for _ in 0..50 {
            m.rejected(Endpoint::Sellapp, &"bad signature");
        }
        m.rejected(Endpoint::Ingest, &"bad signature");
        let text = m.render();
        assert!(text.contains("g3_webhook_rejected_signatures_total{endpoint=\"sellapp\"} 50"));
        assert!(text.contains("g3_webhook_rejected_signatures_total{endpoint=\"ingest\"} 1"));
    }
}
