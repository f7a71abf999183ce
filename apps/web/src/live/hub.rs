//! The hub of the live feed: numbers every event, keeps the newest in a ring buffer for
//! browsers that resume with `Last-Event-ID`, and broadcasts each to every open stream, its
//! Server-Sent Events frame encoded once and shared.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use axum::body::Bytes;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::LiveOptions;

/// One numbered event, shared by every browser that receives it.
#[derive(Debug)]
pub struct LiveEvent {
    pub seq: u64,
    /// The route of the signal: who may receive it.
    pub route: String,
    /// JSON, as its [`EventKind`] says.
    pub data: String,
    /// The event as sent (`id`, `event`, `data` lines), encoded once for every browser.
    pub(super) frame: Bytes,
}

/// The kinds of event a stream carries (the SSE `event:` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A signal's card: `{"id", "action", "html"}`.
    Signal,
    /// A signal's status fragment: `{"id", "html"}`.
    Outcome,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Signal => "signal",
            EventKind::Outcome => "outcome",
        }
    }
}

impl LiveEvent {
    /// The keep-alive comment every stream sends as it comes ([`Hub::keep_alive`]).
    pub fn is_keep_alive(&self) -> bool {
        self.seq == 0
    }
}

/// One Server-Sent Events frame. `data` is JSON (no raw line breaks), so it is one `data:` line.
pub(super) fn frame(seq: u64, event: &str, data: &str) -> Bytes {
    debug_assert!(!data.contains(['\n', '\r']));
    Bytes::from(format!("id: {seq}\nevent: {event}\ndata: {data}\n\n"))
}

struct Ring {
    last_seq: u64,
    events: VecDeque<Arc<LiveEvent>>,
}

/// Numbering, the ring buffer and the broadcast. Publishing and subscribing take the same lock,
/// so a resuming browser's backlog and its live events neither overlap nor leave a gap.
pub struct Hub {
    ring: Mutex<Ring>,
    capacity: usize,
    tx: broadcast::Sender<Arc<LiveEvent>>,
    /// The keep-alive comment, shared by every stream ([`Hub::keep_alive`]).
    beat: Arc<LiveEvent>,
    /// Bumped by every signal change the upstream reports and by every upstream connect or
    /// disconnect: what was read at one version is current for as long as it holds.
    version: std::sync::atomic::AtomicU64,
    /// Whether the upstream is connected and caught up (versions mean something only then).
    live: std::sync::atomic::AtomicBool,
}

/// What a new stream starts from.
pub struct Subscription {
    /// Missed events to send first, or `None` when they are gone (send `reset`).
    pub backlog: Option<VecDeque<Arc<LiveEvent>>>,
    pub rx: broadcast::Receiver<Arc<LiveEvent>>,
    pub last_seq: u64,
}

impl Hub {
    pub fn new(options: &LiveOptions) -> Self {
        // Numbers start at the clock (µs) so ids from an earlier process are older than any
        // of ours and resume as `reset`, never as somebody else's events.
        let start = u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000)
            .unwrap_or_default();
        let (tx, _) = broadcast::channel(options.client_buffer.max(1));
        Self {
            ring: Mutex::new(Ring {
                last_seq: start,
                events: VecDeque::new(),
            }),
            capacity: options.ring.max(1),
            tx,
            beat: Arc::new(LiveEvent {
                seq: 0,
                route: String::new(),
                data: String::new(),
                frame: super::KEEP_ALIVE,
            }),
            version: std::sync::atomic::AtomicU64::new(0),
            live: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The current version of the signals as this process knows them, or `None` when the
    /// upstream is not connected (then nothing read earlier can be known to be current).
    pub fn version(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Acquire;
        self.live.load(Acquire).then(|| self.version.load(Acquire))
    }

    /// A signal changed in Appwrite (reported before it is rendered and published).
    pub fn changed(&self) {
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// The upstream connected and caught up (`true`) or went away (`false`).
    pub fn set_live(&self, live: bool) {
        use std::sync::atomic::Ordering::AcqRel;
        self.version.fetch_add(1, AcqRel);
        self.live.store(live, std::sync::atomic::Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The number of the newest event (what a page rendered now has seen).
    pub fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// Publishes a signal event about a signal of `route`.
    pub fn publish(&self, route: &str, data: String) -> u64 {
        self.publish_kind(EventKind::Signal, route, data)
    }

    /// Publishes an event of `kind` about a signal of `route`: numbered in the same sequence
    /// and kept in the same ring as every other, so a resuming browser misses none of either
    /// kind.
    pub fn publish_kind(&self, kind: EventKind, route: &str, data: String) -> u64 {
        self.push(kind, route, data, true)
    }

    /// Publishes an event that only refreshes what the next one of its signal will say again
    /// (an outcome's last price): sent to connected browsers, numbered, but not kept, so
    /// frequent price updates never push signal events out of the ring.
    pub fn publish_transient(&self, kind: EventKind, route: &str, data: String) -> u64 {
        self.push(kind, route, data, false)
    }

    fn push(&self, kind: EventKind, route: &str, data: String, keep: bool) -> u64 {
        let mut ring = self.lock();
        ring.last_seq += 1;
        let event = Arc::new(LiveEvent {
            seq: ring.last_seq,
            route: route.to_owned(),
            frame: frame(ring.last_seq, kind.as_str(), &data),
            data,
        });
        if keep {
            if ring.events.len() == self.capacity {
                ring.events.pop_front();
            }
            ring.events.push_back(event.clone());
        }
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(event);
        ring.last_seq
    }

    /// Sends the keep-alive comment to every open stream: one timer for all of them
    /// ([`super::keep_alive`]), where a timer per stream, set again after every event, cost
    /// each event a timer registration per browser. Not numbered, not kept.
    pub fn keep_alive(&self) {
        let _ = self.tx.send(self.beat.clone());
    }

    /// Subscribes, with the events after `after` as backlog.
    pub fn subscribe(&self, after: Option<u64>) -> Subscription {
        let ring = self.lock();
        let rx = self.tx.subscribe();
        let backlog = match after {
            None => Some(VecDeque::new()),
            Some(n) if n == ring.last_seq => Some(VecDeque::new()),
            Some(n) if n > ring.last_seq => None,
            Some(n) => match ring.events.front() {
                Some(oldest) if oldest.seq <= n + 1 => {
                    Some(ring.events.iter().filter(|e| e.seq > n).cloned().collect())
                }
                _ => None,
            },
        };
        Subscription {
            backlog,
            rx,
            last_seq: ring.last_seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(ring: usize) -> Hub {
        Hub::new(&LiveOptions {
            ring,
            ..LiveOptions::default()
        })
    }

    #[test]
    fn versions_mean_something_only_while_live_and_move_on_every_change() {
        let hub = hub(3);
        assert_eq!(hub.version(), None, "not connected yet");
        hub.set_live(true);
        let v = hub.version().unwrap();
        assert_eq!(hub.version(), Some(v), "stable while nothing changes");
        hub.changed();
        let w = hub.version().unwrap();
        assert_ne!(v, w);
        hub.set_live(false);
        assert_eq!(hub.version(), None);
        hub.set_live(true);
        assert_ne!(hub.version(), Some(w), "a reconnect starts a new version");
    }

    #[test]
    fn resumes_from_the_ring_or_says_reset() {
        let hub = hub(3);
        let start = hub.last_seq();
        let seqs: Vec<u64> = (0..5).map(|i| hub.publish("r", format!("e{i}"))).collect();
        assert_eq!(seqs, (start + 1..=start + 5).collect::<Vec<_>>());
        // The ring holds the last three: start+3..=start+5.
        let got = |after| {
            hub.subscribe(Some(after))
                .backlog
                .map(|b| b.iter().map(|e| e.data.clone()).collect::<Vec<_>>())
        };
        assert_eq!(
            got(start + 2),
            Some(vec!["e2".into(), "e3".into(), "e4".into()])
        );
        assert_eq!(got(start + 4), Some(vec!["e4".into()]));
        assert_eq!(got(start + 5), Some(vec![]));
        assert_eq!(got(start + 1), None, "e1 fell out of the ring");
        assert_eq!(got(start + 99), None, "from the future (another process)");
        assert_eq!(got(3), None);
        assert_eq!(hub.subscribe(None).backlog.map(|b| b.len()), Some(0));
    }

    #[test]
    fn transient_events_are_numbered_but_not_kept() {
        let hub = hub(2);
        let a = hub.publish("r", "a".into());
        let mut sub = hub.subscribe(None);
        let p = hub.publish_transient(EventKind::Outcome, "r", "price".into());
        let b = hub.publish("r", "b".into());
        assert_eq!((p, b), (a + 1, a + 2));
        assert_eq!(
            sub.rx.try_recv().unwrap().data,
            "price",
            "sent to who is connected"
        );
        let kept = |after| {
            hub.subscribe(Some(after))
                .backlog
                .map(|b| b.iter().map(|e| e.data.clone()).collect::<Vec<_>>())
        };
        assert_eq!(
            kept(a - 1),
            Some(vec!["a".into(), "b".into()]),
            "a ring of two holds both"
        );
        assert_eq!(
            kept(p),
            Some(vec!["b".into()]),
            "resumes after a transient id"
        );
    }

    #[tokio::test]
    async fn live_events_follow_the_backlog_without_gap() {
        let hub = hub(10);
        let a = hub.publish("r", "a".into());
        let mut sub = hub.subscribe(Some(a - 1));
        let b = hub.publish("r", "b".into());
        assert_eq!(sub.backlog.as_ref().map(|b| b.len()), Some(1));
        assert_eq!(sub.rx.recv().await.unwrap().seq, b);
    }
}
