//! Prometheus metrics of the web service in the text exposition format: requests by route and
//! status, live-feed clients, upstream Realtime health and events fanned out. The text itself
//! is written by [`g3_service::prometheus::Writer`].

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
};

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};

use g3_service::prometheus::Writer;

use crate::{AppState, access_cache::AccessCache, card::CardCache};

#[derive(Default)]
pub struct Metrics {
    /// (route pattern, status) -> count. Patterns come from the router, so the set is bounded.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    sse_clients: AtomicI64,
    upstream_connected: AtomicI64,
    upstream_reconnects: AtomicU64,
    events_published: AtomicU64,
    events_fanned_out: AtomicU64,
    clients_dropped_slow: AtomicU64,
    outcomes_tracked: AtomicI64,
    outcomes_ready: AtomicI64,
}

impl Metrics {
    pub fn request(&self, route: &str, status: u16) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route.to_owned(), status))
            .or_default() += 1;
    }

    pub fn client_opened(&self) {
        self.sse_clients.fetch_add(1, Ordering::Relaxed);
    }
    pub fn client_closed(&self) {
        self.sse_clients.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn sse_clients(&self) -> i64 {
        self.sse_clients.load(Ordering::Relaxed)
    }
    pub fn set_upstream_connected(&self, up: bool) {
        self.upstream_connected
            .store(i64::from(up), Ordering::Relaxed);
    }
    pub fn upstream_connected(&self) -> bool {
        self.upstream_connected.load(Ordering::Relaxed) == 1
    }
    pub fn upstream_reconnected(&self) {
        self.upstream_reconnects.fetch_add(1, Ordering::Relaxed);
    }
    pub fn upstream_reconnects(&self) -> u64 {
        self.upstream_reconnects.load(Ordering::Relaxed)
    }
    pub fn published(&self) {
        self.events_published.fetch_add(1, Ordering::Relaxed);
    }
    pub fn fanned_out(&self) {
        self.events_fanned_out.fetch_add(1, Ordering::Relaxed);
    }
    /// Outcomes in the book, and whether it holds the whole collection.
    pub fn set_outcomes(&self, tracked: usize, ready: bool) {
        self.outcomes_tracked.store(
            i64::try_from(tracked).unwrap_or(i64::MAX),
            Ordering::Relaxed,
        );
        self.outcomes_ready
            .store(i64::from(ready), Ordering::Relaxed);
    }
    pub fn dropped_slow(&self) {
        self.clients_dropped_slow.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text, with the access cache's and the card cache's figures (kept by
    /// the caches themselves).
    pub fn render(&self, access: &AccessCache, cards: &CardCache) -> String {
        let mut w = Writer::new();
        let mut requests = w.counter_family(
            "g3_web_requests_total",
            "HTTP requests by route pattern and status.",
        );
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            requests.sample(&[("route", route), ("status", &status.to_string())], n);
        }
        w.gauge(
            "g3_web_sse_clients",
            "Browsers connected to the live feed.",
            self.sse_clients.load(Ordering::Relaxed),
        );
        w.gauge(
            "g3_web_upstream_connected",
            "1 while the Realtime subscription is connected.",
            self.upstream_connected.load(Ordering::Relaxed),
        );
        w.counter(
            "g3_web_upstream_reconnects_total",
            "Realtime reconnects (each followed by a catch-up listing).",
            self.upstream_reconnects.load(Ordering::Relaxed),
        );
        w.counter(
            "g3_web_events_published_total",
            "Signal and outcome events put into the live hub.",
            self.events_published.load(Ordering::Relaxed),
        );
        w.counter(
            "g3_web_events_fanned_out_total",
            "Signal and outcome events sent to browsers (one per browser per event).",
            self.events_fanned_out.load(Ordering::Relaxed),
        );
        w.counter(
            "g3_web_sse_clients_dropped_slow_total",
            "Browsers dropped for falling too far behind.",
            self.clients_dropped_slow.load(Ordering::Relaxed),
        );
        w.gauge(
            "g3_web_outcomes_tracked",
            "Signal outcomes held for card statuses and performance reports.",
            self.outcomes_tracked.load(Ordering::Relaxed),
        );
        w.gauge(
            "g3_web_outcomes_ready",
            "1 once every outcome was loaded (reports need the whole collection).",
            self.outcomes_ready.load(Ordering::Relaxed),
        );
        let (hits, misses) = access.counts();
        w.gauge(
            "g3_web_access_cache_live",
            "1 while what users may see is taken from the cache (Realtime hears every membership change).",
            i64::from(access.is_live()),
        );
        w.counter(
            "g3_web_access_cache_hits_total",
            "Requests whose access was decided without reading the membership.",
            hits,
        );
        w.counter(
            "g3_web_access_cache_misses_total",
            "Requests that read the membership while the cache was live.",
            misses,
        );
        w.counter(
            "g3_web_membership_events_total",
            "Team membership changes heard over Realtime.",
            access.events(),
        );
        // Hits against renders tell whether WEB_CARD_CACHE holds the pages readers open.
        w.counter(
            "g3_web_card_hits_total",
            "Signal cards served from the card cache.",
            cards.hits(),
        );
        w.counter(
            "g3_web_card_renders_total",
            "Signal cards rendered (each a card cache miss).",
            cards.renders(),
        );
        w.gauge(
            "g3_web_cards_cached",
            "Rendered signal cards held (at most WEB_CARD_CACHE).",
            i64::try_from(cards.len()).unwrap_or(i64::MAX),
        );
        w.finish()
    }
}

/// Counts every response by the route pattern it matched (never the raw path: it would carry
/// ids and secrets, and an unbounded label set).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    state.metrics().request(&route, resp.status().as_u16());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_and_gauges() {
        let m = Metrics::default();
        m.request("/feed", 200);
        m.request("/feed", 200);
        m.request("a\"b", 404);
        m.client_opened();
        m.client_opened();
        m.client_closed();
        m.upstream_reconnected();
        let text = m.render(&AccessCache::default(), &CardCache::new(10));
        assert!(text.contains("g3_web_requests_total{route=\"/feed\",status=\"200\"} 2"));
        assert!(text.contains("route=\"a\\\"b\""));
        assert!(text.contains("g3_web_sse_clients 1\n"));
        assert!(text.contains("g3_web_upstream_reconnects_total 1\n"));
        assert!(text.contains("g3_web_card_renders_total 0\n"));
        assert!(text.contains("g3_web_cards_cached 0\n"));
    }
}
