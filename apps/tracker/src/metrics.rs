//! The tracker's counters, rendered as Prometheus text on `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use g3_service::prometheus::Writer;

/// Counters since the process started; gauges as last set by the leader.
#[derive(Debug, Default)]
pub struct Stats {
    pub ticks: AtomicU64,
    pub late_trades: AtomicU64,
    /// Trades that reached a level and were judged at once (a cut of their second's bar).
    pub decisive_trades: AtomicU64,
    pub items: AtomicU64,
    pub backfilled_bars: AtomicU64,
    pub gaps: AtomicU64,
    pub signals_heard: AtomicU64,
    /// Trackers judged again from storage (a new signal, an edit reaching back, a takeover).
    pub replays: AtomicU64,
    pub outcome_writes: AtomicU64,
    pub minute_writes: AtomicU64,
    pub write_failures: AtomicU64,
    pub open_signals: AtomicU64,
    pub symbols: AtomicU64,
}

impl Stats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn set(gauge: &AtomicU64, n: u64) {
        gauge.store(n, Relaxed);
    }

    pub fn render(&self, leader: bool) -> String {
        let mut w = Writer::new();
        w.gauge(
            "tracker_leader",
            "1 while this process holds the tracker lease",
            u8::from(leader),
        );
        let counters = [
            ("tracker_ticks_total", "Trades received", &self.ticks),
            (
                "tracker_late_trades_total",
                "Trades dropped because they were timed before what was already judged",
                &self.late_trades,
            ),
            (
                "tracker_decisive_trades_total",
                "Trades that reached a signal's level and were judged at once",
                &self.decisive_trades,
            ),
            (
                "tracker_price_items_total",
                "Bars and gaps judged",
                &self.items,
            ),
            (
                "tracker_backfilled_bars_total",
                "Backfilled bars judged",
                &self.backfilled_bars,
            ),
            ("tracker_gaps_total", "Gaps declared", &self.gaps),
            (
                "tracker_signal_changes_total",
                "Signal changes heard",
                &self.signals_heard,
            ),
            (
                "tracker_replays_total",
                "Signals judged again from the stored prices",
                &self.replays,
            ),
            (
                "tracker_outcome_writes_total",
                "signal_outcomes documents written",
                &self.outcome_writes,
            ),
            (
                "tracker_minute_writes_total",
                "price_minutes documents written",
                &self.minute_writes,
            ),
            (
                "tracker_write_failures_total",
                "Writes that failed (retried by the next change)",
                &self.write_failures,
            ),
        ];
        for (name, help, c) in counters {
            w.counter(name, help, Stats::get(c));
        }
        w.gauge(
            "tracker_open_signals",
            "Signals being judged",
            Stats::get(&self.open_signals),
        );
        w.gauge(
            "tracker_symbols",
            "Symbols subscribed",
            Stats::get(&self.symbols),
        );
        w.finish()
    }
}
