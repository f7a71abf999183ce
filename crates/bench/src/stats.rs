//! Latency samples and throughput: what every benchmark row reports.

use std::time::Duration;

/// Latencies of one scenario plus the wall time it took.
#[derive(Debug, Default)]
pub struct Samples {
    latencies: Vec<Duration>,
    pub wall: Duration,
    pub errors: u64,
}

impl Samples {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            latencies: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    pub fn record(&mut self, latency: Duration) {
        self.latencies.push(latency);
    }

    pub fn merge(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
    }

    pub fn count(&self) -> usize {
        self.latencies.len()
    }

    /// Nearest-rank percentile (`p` in 0..=100).
    pub fn percentile(&mut self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        self.latencies.sort_unstable();
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs == 0.0 {
            0.0
        } else {
            self.latencies.len() as f64 / secs
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut s = Samples::default();
        for ms in 1..=100 {
            s.record(Duration::from_millis(ms));
        }
        assert_eq!(s.percentile(50.0), Duration::from_millis(50));
        assert_eq!(s.percentile(99.0), Duration::from_millis(99));
        assert_eq!(s.percentile(100.0), Duration::from_millis(100));
        s.wall = Duration::from_secs(2);
        assert_eq!(s.ops_per_sec(), 50.0);
    }
}
