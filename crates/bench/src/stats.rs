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

/// CPU time a process has used (all its threads), as Linux counts it in `/proc/<pid>/stat`
/// (ticks of 10 ms: a measure over seconds, not of single requests).
#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    pub user: Duration,
    pub system: Duration,
}

impl Cpu {
    pub fn of(pid: u32) -> Option<Cpu> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name, which sits in parentheses and may hold spaces.
        let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
        let tick = |t: &str| t.parse::<u64>().ok().map(|t| Duration::from_millis(t * 10));
        let user = tick(fields.nth(11)?)?;
        let system = tick(fields.next()?)?;
        Some(Cpu { user, system })
    }

    /// This process's.
    pub fn now() -> Option<Cpu> {
        Self::of(std::process::id())
    }

    /// What was used between `earlier` and this.
    pub fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    pub fn total(self) -> Duration {
        self.user + self.system
    }

    /// Microseconds of CPU per operation.
    pub fn micros_per(self, ops: usize) -> f64 {
        self.total().as_secs_f64() * 1e6 / ops.max(1) as f64
    }

    /// `"<per op> CPU per <what> (<kernel share>% in the kernel)"`, e.g. for a row's label.
    pub fn per(self, ops: usize, what: &str) -> String {
        let per = self.micros_per(ops);
        let kernel = 100.0 * self.system.as_secs_f64() / self.total().as_secs_f64().max(1e-9);
        format!("{per:.0} us CPU per {what}, {kernel:.0}% in the kernel")
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

    #[test]
    fn cpu_time_is_read_and_described() {
        let before = Cpu::now().expect("/proc/self/stat");
        // Burn CPU until the 10 ms ticks show 20 ms of it (on a busy machine that takes longer
        // than 20 ms of wall time; never reading any fails after 10 s).
        let started = std::time::Instant::now();
        let mut x = 0u64;
        // Reading /proc in the loop is itself system time: the total is what is checked.
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
            let used = Cpu::now().unwrap().since(before);
            if used.total() >= Duration::from_millis(20) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no CPU time read: {used:?}"
            );
        }
        let cpu = Cpu {
            user: Duration::from_millis(300),
            system: Duration::from_millis(100),
        };
        assert_eq!(
            cpu.per(1_000, "delivery"),
            "400 us CPU per delivery, 25% in the kernel"
        );
    }
}
