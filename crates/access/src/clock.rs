//! The wall clock access decisions read (is a paid period over?): the system's, shifted by an
//! offset that only tests move, so a test of a period ending neither waits for it nor races it.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use time::OffsetDateTime;

/// System time plus an offset shared by every clone (zero unless a test advances it).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Nanoseconds added to the system time.
    offset: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::nanoseconds(self.offset.load(Ordering::SeqCst))
    }

    /// Moves this clock and every clone of it forward by `by` (tests).
    pub fn advance(&self, by: std::time::Duration) {
        let nanos = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.offset.fetch_add(nanos, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advanced_clock_runs_ahead_in_every_clone() {
        let clock = Clock::default();
        let other = clock.clone();
        clock.advance(std::time::Duration::from_secs(3600));
        let ahead = other.now() - OffsetDateTime::now_utc();
        assert!(
            ahead > time::Duration::minutes(59) && ahead <= time::Duration::hours(1),
            "{ahead}"
        );
    }
}
