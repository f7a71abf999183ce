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
//! - The same upstream follows `signal_outcomes` into [`crate::outcomes::OutcomeBook`] and sends
//!   each changed outcome as an `outcome` event (`{"id", "html"}`: the card's status fragment,
//!   empty when the outcome is gone), under the same route check. Outcome changes do not move
//!   the hub's version: the signals a page lists are the same, only their statuses changed.

use std::{
    collections::{HashMap, VecDeque},
    convert::Infallible,
    sync::Arc,
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
    models::{Signal, SignalOutcome},
    schema::{TEAM_PAID, TEAM_STAFF},
};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::broadcast;

mod hub;
mod outcomes;

use hub::frame;
pub use hub::{EventKind, Hub, LiveEvent, Subscription};

/// A comment line: keeps idle connections (and proxies) open.
const KEEP_ALIVE: Bytes = Bytes::from_static(b":\n\n");

use crate::{
    AppState, ServiceUser,
    card::Placed,
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

fn action_name(action: EventAction) -> &'static str {
    match action {
        EventAction::Create => "create",
        // The browser replaces the card if it has it and inserts it otherwise.
        EventAction::Update | EventAction::Upsert => "update",
        EventAction::Delete => "delete",
    }
}

/// Turns upstream signal and outcome changes into hub events; owns the catch-up cursors.
pub struct Publisher {
    state: AppState,
    /// `$updatedAt` of the newest change seen; `None` until the first connect.
    cursor: Option<OffsetDateTime>,
    /// The same for `signal_outcomes`; `None` until the whole collection was loaded once.
    outcome_cursor: Option<OffsetDateTime>,
    /// The last outcome catch-up failed: live events must not move the cursor past what it
    /// has still to list.
    outcomes_behind: bool,
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
            outcome_cursor: None,
            outcomes_behind: false,
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
        // The card as a page shows it now: with its signal's current status.
        let html = Placed {
            card: html,
            status: self.state.outcomes().status(&doc.id),
        }
        .to_string();
        let data = serde_json::json!({
            "id": doc.id,
            "action": action_name(action),
            "html": html,
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
        self.outcomes_behind = match self.catch_up_outcomes().await {
            Ok(()) => false,
            Err(e) => {
                tracing::warn!(error = %e, "outcome catch-up failed; retried on the next reconnect");
                true
            }
        };
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
        if outcomes::is_outcome(&event) {
            // The tracker writes with upserts: anything but a delete carries the document as
            // it is now.
            let removed = event.action() == Some(EventAction::Delete);
            self.outcome_event(&event, removed);
            return;
        }
        // Whatever the event turns out to be, what was read before it may be stale.
        self.state.hub().changed();
        // Ingest writes edits (and attachments) with upserts.
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

/// Follows signals and their outcomes for the life of the process as the service user (see [`Follower`]).
pub async fn upstream(state: AppState, user: ServiceUser) {
    let reconnect = state.live().reconnect;
    let follower = Follower::new(
        state.appwrite().clone(),
        Credentials::new(user.email.clone(), user.password.expose()),
        [
            Collection::<Signal>::channel(),
            Collection::<SignalOutcome>::channel(),
            Channel::memberships(),
        ],
    )
    .reconnect(reconnect)
    .resubscribe(reconnect);
    let mut publisher = Publisher::new(state).listening_as(user.email);
    follower.run(&mut publisher).await;
}

/// Sends the keep-alive comment to every open stream every `keep_alive`, until web closes.
pub async fn keep_alive(state: AppState) {
    let every = state.live().keep_alive.max(Duration::from_millis(10));
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing = state.closing();
    loop {
        tokio::select! {
            _ = beat.tick() => state.hub().keep_alive(),
            _ = closing.wait_for(|c| *c) => return,
        }
    }
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
    closing: tokio::sync::watch::Receiver<bool>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.state.metrics().client_closed();
    }
}

impl Client {
    /// The next frame to send: an event, or the keep-alive comment the hub sends every
    /// `keep_alive` ([`keep_alive`]).
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
        loop {
            let recheck = tokio::select! {
                received = self.rx.recv() => match received {
                    Ok(e) if e.is_keep_alive() => return Some(e.frame.clone()),
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
    state.metrics().client_opened();
    let client = Client {
        session: viewer.client,
        entitled,
        backlog,
        reset,
        rx: sub.rx,
        recheck: tokio::time::interval_at(start, options.recheck.max(Duration::from_millis(10))),
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
