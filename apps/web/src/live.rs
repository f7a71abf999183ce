//! The live feed. One upstream Realtime subscription per process (signed in as the `staff`
//! service user) turns signal changes into rendered card events; the [`Hub`] numbers them,
//! keeps the newest in a ring buffer and broadcasts them to every browser on `/feed/stream`.
//!
//! - After every upstream (re)connect the [`Publisher`] lists signals updated since its cursor, so
//!   nothing written while it was disconnected is missed (hard deletes excepted: tombstones
//!   are how signals end).
//! - A browser resuming with `Last-Event-ID` (or `?since=`) gets the missed events from the
//!   ring, or a `reset` event (reload the page) when they are no longer there.
//! - The broadcast never waits for a browser: one that falls a full buffer behind is dropped
//!   and resumes from the ring when it reconnects.
//! - Every event carries its signal's route: a browser receives only the routes its user's
//!   plans unlock (read at connect and at every re-check), backlog included.
//! - Access is re-checked every `recheck`, so a revoked customer's stream ends.

use std::{
    collections::{HashMap, VecDeque},
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::{Query, State},
    http::{HeaderMap, HeaderName, StatusCode, header},
    response::{IntoResponse, Response},
};

use g3_appwrite::{
    Channel, Credentials, Document, EventAction, Follow, Follower, Interruption, Query as Q,
    RealtimeEvent, RetryPolicy,
};
use g3_store::{
    Collection,
    models::Signal,
    schema::{TEAM_PAID, TEAM_STAFF},
};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::{
    AppState, ServiceUser,
    error::AppError,
    feed,
    session::{Entitled, Viewer, entitled},
};

/// Tuning of the live feed; the defaults suit production.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Events kept for browsers that resume with `Last-Event-ID`.
    pub ring: usize,
    /// Events a browser may fall behind before it is dropped.
    pub client_buffer: usize,
    /// Comment lines that keep idle connections (and proxies) open.
    pub keep_alive: Duration,
    /// How often a stream re-checks that its user may still read the feed.
    pub recheck: Duration,
    /// Backoff between upstream sign-in/subscribe attempts and Realtime reconnects.
    pub reconnect: RetryPolicy,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            ring: 1_024,
            client_buffer: 256,
            keep_alive: Duration::from_secs(15),
            recheck: Duration::from_secs(60),
            reconnect: RetryPolicy {
                max_attempts: u32::MAX,
                base_delay: Duration::from_millis(500),
                max_delay: Duration::from_secs(30),
            },
        }
    }
}

/// One numbered event, shared by every browser that receives it.
#[derive(Debug)]
pub struct LiveEvent {
    pub seq: u64,
    /// The route of the signal: who may receive it.
    pub route: String,
    /// JSON: `{"id", "action", "html"}`.
    pub data: String,
    /// The event as sent (`id`, `event`, `data` lines), encoded once for every browser.
    frame: Bytes,
}

/// One Server-Sent Events frame. `data` is JSON (no raw line breaks), so it is one `data:` line.
fn frame(seq: u64, event: &str, data: &str) -> Bytes {
    debug_assert!(!data.contains(['\n', '\r']));
    Bytes::from(format!("id: {seq}\nevent: {event}\ndata: {data}\n\n"))
}

/// A comment line: keeps idle connections (and proxies) open.
const KEEP_ALIVE: Bytes = Bytes::from_static(b":\n\n");

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

    /// Publishes an event about a signal of `route`.
    pub fn publish(&self, route: &str, data: String) -> u64 {
        let mut ring = self.lock();
        ring.last_seq += 1;
        let event = Arc::new(LiveEvent {
            seq: ring.last_seq,
            route: route.to_owned(),
            frame: frame(ring.last_seq, "signal", &data),
            data,
        });
        if ring.events.len() == self.capacity {
            ring.events.pop_front();
        }
        ring.events.push_back(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(event);
        ring.last_seq
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

fn action_name(action: EventAction) -> &'static str {
    match action {
        EventAction::Create => "create",
        EventAction::Update => "update",
        EventAction::Delete => "delete",
    }
}

/// Turns upstream signal changes into hub events; owns the catch-up cursor.
pub struct Publisher {
    state: AppState,
    /// `$updatedAt` of the newest change seen; `None` until the first connect.
    cursor: Option<OffsetDateTime>,
    /// The version last published per signal, so catch-up and live events do not repeat.
    seen: HashMap<String, OffsetDateTime>,
    routes: HashMap<String, String>,
    /// The service user the upstream signs in as: whether it hears membership events decides
    /// whether [`crate::access_cache`] may be used.
    listener: Option<String>,
}

const SEEN_MAX: usize = 10_000;
const CATCH_UP_PAGE: u32 = 100;
/// Newest signals whose pairs are learnt at the first connect.
const PAIRS_LEARNT: u32 = 1_000;

impl Publisher {
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            cursor: None,
            seen: HashMap::new(),
            routes: HashMap::new(),
            listener: None,
        }
    }

    /// The upstream signs in as the service user with this email (see [`upstream`]).
    pub fn listening_as(mut self, email: impl Into<String>) -> Self {
        self.listener = Some(email.into());
        self
    }

    /// Whether the upstream hears every membership change: Appwrite delivers a team's
    /// membership events to its members only, so the service user must be in `paid` and
    /// `staff`. Logs why not, since the access cache then stays off.
    async fn hears_memberships(&self) -> bool {
        let Some(email) = &self.listener else {
            return false;
        };
        let users = self.state.appwrite().users();
        let teams = match users.find_by_email(email).await {
            Ok(Some(user)) => users
                .list_memberships(&user.id)
                .await
                .map(|l| l.memberships),
            Ok(None) => Ok(Vec::new()),
            Err(e) => Err(e),
        };
        let missing: Vec<&str> = match &teams {
            Ok(teams) => [TEAM_PAID, TEAM_STAFF]
                .into_iter()
                .filter(|t| !teams.iter().any(|m| m.team_id == *t && m.confirm))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "access cache off: the service user's teams could not be read");
                return false;
            }
        };
        if !missing.is_empty() {
            tracing::warn!(
                service_user = %email,
                missing = ?missing,
                "access cache off: the service user does not hear these teams' membership \
                 changes, so every request reads its user's membership (run `ops service-user \
                 create` again to add it)"
            );
        }
        missing.is_empty()
    }

    /// Refreshes route names, then catches up from the cursor (or sets it on the first connect).
    async fn catch_up(&mut self) -> Result<(), g3_appwrite::Error> {
        let client = self.state.appwrite();
        self.routes = feed::route_names(client).await?;
        let signals = Collection::<Signal>::new(client);
        let Some(cursor) = self.cursor else {
            self.learn_pairs(&signals).await?;
            let newest = signals
                .raw()
                .list::<Value>(&[Q::order_desc("$updatedAt"), Q::limit(1)])
                .await?;
            self.cursor = Some(
                newest
                    .documents
                    .first()
                    .map_or(OffsetDateTime::UNIX_EPOCH, |d| d.updated_at),
            );
            return Ok(());
        };
        // `>=`: several changes can share a millisecond; `seen` drops the ones already sent.
        let since = g3_appwrite::format_datetime(cursor);
        let mut after: Option<String> = None;
        let mut caught_up = 0usize;
        loop {
            let mut queries = vec![
                Q::greater_than_equal("$updatedAt", since.as_str()),
                Q::order_asc("$updatedAt"),
                Q::limit(CATCH_UP_PAGE),
            ];
            if let Some(a) = &after {
                queries.push(Q::cursor_after(a));
            }
            let page = signals.raw().list::<Value>(&queries).await?;
            let n = page.documents.len();
            after = page.documents.last().map(|d| d.id.clone());
            for doc in page.documents {
                let action = if doc.created_at == doc.updated_at {
                    EventAction::Create
                } else {
                    EventAction::Update
                };
                caught_up += usize::from(self.emit(doc, action));
            }
            if n < CATCH_UP_PAGE as usize {
                break;
            }
        }
        tracing::info!(caught_up, "live feed caught up");
        Ok(())
    }

    /// The pairs of the newest signals, for the pair filter's suggestions (later ones are
    /// learnt as they are published).
    async fn learn_pairs(&self, signals: &Collection<Signal>) -> Result<(), g3_appwrite::Error> {
        #[derive(Deserialize)]
        struct Seen {
            pair: Option<String>,
            route_key: String,
        }
        let newest = signals
            .raw()
            .list_page::<Seen>(&[
                Q::order_desc("posted_at"),
                Q::limit(PAIRS_LEARNT),
                Q::select(["pair", "route_key"]),
            ])
            .await?;
        for doc in newest.documents {
            if let Some(pair) = &doc.data.pair {
                self.state.pairs().add(&doc.data.route_key, pair);
            }
        }
        Ok(())
    }

    /// Renders and publishes one change unless that version was already published.
    fn emit(&mut self, doc: Document<Value>, action: EventAction) -> bool {
        let updated = doc.updated_at;
        if action != EventAction::Delete && self.seen.get(&doc.id) == Some(&updated) {
            return false;
        }
        if self.seen.len() >= SEEN_MAX {
            self.seen.clear();
        }
        self.seen.insert(doc.id.clone(), updated);
        self.cursor = Some(self.cursor.map_or(updated, |c| c.max(updated)));
        let Some(doc) = feed::decode::<Signal>(doc) else {
            return false;
        };
        if let Some(pair) = &doc.data.pair {
            self.state.pairs().add(&doc.data.route_key, pair);
        }
        let html = match self.state.cards().html(&doc, &self.routes) {
            Ok(html) => html,
            Err(e) => {
                tracing::error!(error = %e, "live card failed to render");
                return false;
            }
        };
        let data = serde_json::json!({
            "id": doc.id,
            "action": action_name(action),
            "html": &*html,
        })
        .to_string();
        self.state.hub().publish(&doc.data.route_key, data);
        self.state.metrics().published();
        true
    }
}

impl Follow for Publisher {
    async fn connected(&mut self, reconnected: bool) {
        let state = self.state.clone();
        if reconnected {
            state.metrics().upstream_reconnected();
        }
        let caught_up = match self.catch_up().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "live feed catch-up failed; retried on the next reconnect");
                false
            }
        };
        state.hub().set_live(caught_up);
        state
            .access_cache()
            .set_live(self.hears_memberships().await);
        state.metrics().set_upstream_connected(true);
    }

    async fn event(&mut self, event: RealtimeEvent) {
        if is_membership(&event) {
            let cache = self.state.access_cache();
            match event.payload.get("userId").and_then(Value::as_str) {
                Some(user_id) => cache.forget(user_id),
                None => cache.forget_all(),
            }
            return;
        }
        // Whatever the event turns out to be, what was read before it may be stale.
        self.state.hub().changed();
        let Some(action) = event.action() else {
            return;
        };
        match event.document::<Value>() {
            Ok(doc) => {
                self.emit(doc, action);
            }
            Err(e) => tracing::warn!(error = %e, "realtime signal skipped"),
        }
    }

    async fn disconnected(&mut self, _why: &Interruption) {
        self.state.hub().set_live(false);
        self.state.access_cache().set_live(false);
        self.state.metrics().set_upstream_connected(false);
    }
}

/// Follows signals for the life of the process as the service user (see [`Follower`]).
pub async fn upstream(state: AppState, user: ServiceUser) {
    let reconnect = state.live().reconnect;
    let follower = Follower::new(
        state.appwrite().clone(),
        Credentials::new(user.email.clone(), user.password.expose()),
        [Collection::<Signal>::channel(), Channel::memberships()],
    )
    .reconnect(reconnect)
    .resubscribe(reconnect);
    let mut publisher = Publisher::new(state).listening_as(user.email);
    follower.run(&mut publisher).await;
}

/// Whether an event is about a team membership (`teams.<team>.memberships.<id>.<action>`).
fn is_membership(event: &RealtimeEvent) -> bool {
    event
        .events
        .iter()
        .any(|e| e.starts_with("teams.") && e.contains(".memberships."))
}

#[derive(Deserialize)]
pub struct StreamQuery {
    /// The last event a freshly rendered page has seen (`Last-Event-ID` wins when present).
    since: Option<u64>,
}

/// A browser's stream: its backlog, its broadcast receiver and its periodic access check.
struct Client {
    state: AppState,
    session: g3_appwrite::Client,
    /// What its user may see, as of the last check.
    entitled: Entitled,
    backlog: VecDeque<Arc<LiveEvent>>,
    reset: Option<u64>,
    rx: broadcast::Receiver<Arc<LiveEvent>>,
    recheck: tokio::time::Interval,
    keep_alive: Duration,
    closing: tokio::sync::watch::Receiver<bool>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.state.metrics().client_closed();
    }
}

impl Client {
    /// The next frame to send: an event, or a keep-alive comment after `keep_alive` of quiet.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(seq) = self.reset.take() {
            return Some(frame(seq, "reset", "{}"));
        }
        while let Some(e) = self.backlog.pop_front() {
            if self.entitled.allows(&e.route) {
                self.state.metrics().fanned_out();
                return Some(e.frame.clone());
            }
        }
        let quiet = tokio::time::sleep(self.keep_alive);
        tokio::pin!(quiet);
        loop {
            let recheck = tokio::select! {
                received = self.rx.recv() => match received {
                    Ok(e) if !self.entitled.allows(&e.route) => false,
                    Ok(e) => {
                        self.state.metrics().fanned_out();
                        return Some(e.frame.clone());
                    }
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        tracing::info!(skipped, "live feed: slow browser dropped");
                        self.state.metrics().dropped_slow();
                        return None;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.closing.wait_for(|c| *c) => return None,
                _ = self.recheck.tick() => true,
                () = &mut quiet => return Some(KEEP_ALIVE),
            };
            // Boxed: the re-check's Appwrite calls would otherwise sit in every idle
            // stream's state, thousands of times over.
            if recheck && !Box::pin(self.still_allowed()).await {
                tracing::info!("live feed: access ended, stream closed");
                return None;
            }
        }
    }

    /// Reads what the user may see again (a changed plan changes the routes they receive). A
    /// transient Appwrite failure keeps the stream as it was; a refused session or lost plan
    /// ends it.
    async fn still_allowed(&mut self) -> bool {
        match self.session.account().get().await {
            Ok(user) => match entitled(&self.state, &user).await {
                Ok(now) => {
                    self.entitled = now;
                    self.entitled.has_feed()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "live feed: access re-check failed");
                    true
                }
            },
            Err(e) if e.status() == Some(401) => false,
            Err(e) => {
                tracing::warn!(error = %e, "live feed: access re-check failed");
                true
            }
        }
    }
}

/// `GET /feed/stream`: Server-Sent Events for members (same gating as `/feed`), with the events
/// of the routes their plans unlock.
pub async fn stream(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Result<Response, AppError> {
    let entitled = entitled(&state, &viewer.user).await?;
    if !entitled.has_feed() {
        return Ok((StatusCode::FORBIDDEN, "The live feed is for members.").into_response());
    }
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(q.since);
    let sub = state.hub().subscribe(after);
    let (backlog, reset) = match sub.backlog {
        Some(b) => (b, None),
        None => (VecDeque::new(), Some(sub.last_seq)),
    };
    let options = state.live();
    let start = tokio::time::Instant::now() + options.recheck;
    let keep_alive = options.keep_alive;
    state.metrics().client_opened();
    let client = Client {
        session: viewer.client,
        entitled,
        backlog,
        reset,
        rx: sub.rx,
        recheck: tokio::time::interval_at(start, options.recheck.max(Duration::from_millis(10))),
        keep_alive,
        closing: state.closing(),
        state,
    };
    // Frames are encoded once per event and shared (`Bytes`), not once per browser.
    let frames = futures_util::stream::unfold(client, |mut c| async move {
        let f = c.next().await?;
        Some((Ok::<_, Infallible>(f), c))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // Reverse proxies (nginx) must pass events through as they come.
            (HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(frames),
    )
        .into_response())
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
