//! Prometheus metrics of the webhook service, rendered in the text exposition format.
//! Hand-rolled: three metric families do not justify a metrics framework.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

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
        let mut out = String::new();
        out.push_str(
            "# HELP g3_webhook_deliveries_total Sell.app deliveries by event and outcome.\n",
        );
        out.push_str("# TYPE g3_webhook_deliveries_total counter\n");
        for ((event, outcome), n) in self
            .deliveries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let event = event.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                out,
                "g3_webhook_deliveries_total{{event=\"{event}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str("# HELP g3_webhook_delivery_seconds Time from request to reply.\n");
        out.push_str("# TYPE g3_webhook_delivery_seconds histogram\n");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "g3_webhook_delivery_seconds_bucket{{le=\"{bound}\"}} {}",
                self.bucket_counts[i].load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "g3_webhook_delivery_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "g3_webhook_delivery_seconds_sum {sum}");
        let _ = writeln!(out, "g3_webhook_delivery_seconds_count {count}");
        out.push_str("# HELP g3_webhook_failures_pending Failed deliveries waiting for a retry.\n");
        out.push_str("# TYPE g3_webhook_failures_pending gauge\n");
        let _ = writeln!(
            out,
            "g3_webhook_failures_pending {}",
            self.failures_pending.load(Ordering::Relaxed)
        );
        out.push_str("# HELP g3_webhook_spooled Failures kept on local disk while Appwrite is unreachable.\n");
        out.push_str("# TYPE g3_webhook_spooled gauge\n");
        let _ = writeln!(
            out,
            "g3_webhook_spooled {}",
            self.spooled.load(Ordering::Relaxed)
        );
        out
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
}
