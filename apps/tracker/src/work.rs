//! The leader's work loop: one task owns every open signal's `Tracker`, every symbol's
//! [`Tape`] and the feeds, and takes, in order, signal changes (from `follow`), market events
//! (from each venue's `Feed`) and clock ticks. Being the only owner, it needs no locks; a
//! replay reads storage while market events wait in the channel, so nothing slips between.
//!
//! A signal is open while its outcome is not final: its symbol stays subscribed and every item
//! its tape emits is pushed to its tracker. Outcome documents are written when an event changed
//! (entry, target, exit, revision, deletion) at once and otherwise, for progress, at most
//! every `progress_every`, a few per clock tick; an unchanged document is never written.
//!
//! After every change to a symbol's trackers (prices judged, a signal heard, an edit) the tape
//! is given the band of prices that decide nothing for any of them ([`Tape::set_band`]), so a
//! trade that reaches a level is judged, and its outcome written, as it arrives.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use g3_appwrite::{Client, Document, Query};
use g3_market::{
    Feed, FeedConfig, Listing, Listings, MarketEvent, Rest, Symbol, Untrackable, Venue,
};
use g3_outcomes::{Band, Outcome, Tracker};
use g3_store::lease::Fence;
use g3_store::{
    Collection,
    models::{Signal, SignalOutcome},
};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::metrics::Stats;
use crate::recompute;
use crate::signals::{self, Heard, Market};
use crate::tape::{Emitted, Minute, Tape, append_after};
use crate::{Settings, prices};

/// After a reconnect, a tape whose symbol has not traded yet resumes time after this long
/// (its backfill, if any, would come with that first trade).
const THAW: time::Duration = time::Duration::seconds(30);
/// Listing look-ups that failed are tried again this often.
const RETRY_LISTINGS: time::Duration = time::Duration::seconds(30);
/// How often outcomes whose write failed are tried again.
const RETRY_WRITES: time::Duration = time::Duration::seconds(10);

pub(crate) enum Msg {
    Signal {
        doc: Box<Document<Signal>>,
        /// Set when the document itself was removed (not a tombstone).
        removed_at: Option<OffsetDateTime>,
    },
    Market(Venue, MarketEvent),
    /// Shutdown: store the unfinished minutes, then answer.
    Stop(oneshot::Sender<()>),
}

type Key = (Venue, Symbol);

struct Open {
    route_key: String,
    heard: Heard,
    key: Key,
    tracker: Tracker,
    written: Option<Outcome>,
    written_doc: Option<SignalOutcome>,
    written_at: Option<Instant>,
}

pub(crate) struct Work {
    settings: Settings,
    client: Client,
    fence: Fence,
    stats: Arc<Stats>,
    to_self: mpsc::Sender<Msg>,
    open: HashMap<String, Open>,
    by_key: HashMap<Key, BTreeSet<String>>,
    tapes: HashMap<Key, Tape>,
    feeds: HashMap<Venue, Feed>,
    listings: HashMap<Venue, Listings>,
    connected_at: HashMap<Venue, OffsetDateTime>,
    /// Outcome documents read at start, taken as their signals are heard.
    known: HashMap<String, Document<SignalOutcome>>,
    /// Signals whose venue could not be looked up yet.
    unresolved: HashMap<String, (Box<Document<Signal>>, Option<OffsetDateTime>)>,
    listings_retry_at: OffsetDateTime,
    /// Outcomes of signals no longer followed whose write failed.
    unwritten: Unwritten,
    unwritten_retry_at: OffsetDateTime,
    /// Whole minutes go to [`store_minutes`], which writes them in order behind the loop.
    minutes: mpsc::UnboundedSender<MinuteJob>,
}

/// Work for the minute writer.
enum MinuteJob {
    Store(Key, Minute),
    /// Answered once every minute sent before it is written (or failed).
    Flush(oneshot::Sender<()>),
}

impl Work {
    pub(crate) async fn new(
        settings: Settings,
        client: Client,
        fence: Fence,
        to_self: mpsc::Sender<Msg>,
    ) -> Work {
        let since = settings.clock.now() - settings.rules.time_limit;
        let known = match Collection::<SignalOutcome>::new(&client)
            .list_all(
                &[
                    Query::greater_than_equal(
                        "posted_at",
                        g3_appwrite::format_datetime(since).as_str(),
                    ),
                    Query::order_desc("posted_at"),
                ],
                100,
            )
            .await
        {
            Ok(docs) => docs.into_iter().map(|d| (d.id.clone(), d)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "stored outcomes unreadable; read one by one instead");
                HashMap::new()
            }
        };
        let listings = settings
            .venues
            .iter()
            .map(|v| {
                let rest = Rest::new(*v, settings.endpoints(*v).rest);
                (*v, Listings::new(rest, settings.listings_ttl))
            })
            .collect();
        let (minutes, jobs) = mpsc::unbounded_channel();
        tokio::spawn(store_minutes(
            client.clone(),
            fence.clone(),
            settings.stats.clone(),
            jobs,
        ));
        Work {
            minutes,
            stats: settings.stats.clone(),
            listings_retry_at: settings.clock.now(),
            unwritten: Unwritten::default(),
            unwritten_retry_at: settings.clock.now(),
            settings,
            client,
            fence,
            to_self,
            open: HashMap::new(),
            by_key: HashMap::new(),
            tapes: HashMap::new(),
            feeds: HashMap::new(),
            listings,
            connected_at: HashMap::new(),
            known,
            unresolved: HashMap::new(),
        }
    }

    pub(crate) async fn run(mut self, mut inbox: mpsc::Receiver<Msg>) {
        let mut timer = tokio::time::interval(self.settings.tick_every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(Msg::Signal { doc, removed_at }) => self.on_signal(*doc, removed_at).await,
                    Some(Msg::Market(venue, event)) => self.on_market(venue, event).await,
                    Some(Msg::Stop(done)) => {
                        self.stop().await;
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
                _ = timer.tick() => self.on_timer().await,
            }
        }
    }

    // ---- signals -------------------------------------------------------------------------

    async fn on_signal(&mut self, doc: Document<Signal>, removed_at: Option<OffsetDateTime>) {
        Stats::add(&self.stats.signals_heard, 1);
        let id = doc.id.clone();
        if let Some(open) = self.open.get_mut(&id) {
            if !open.heard.hear(&doc, removed_at) {
                return;
            }
            let history = match open.heard.history() {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(signal = %id, error = %e, "revision not judged");
                    return;
                }
            };
            let key = open.key.clone();
            if open.tracker.revise(history.clone()).is_err() {
                // The change reaches back before what was judged: judge everything again.
                match self.replay(&history, &key).await {
                    Ok(t) => {
                        if let Some(open) = self.open.get_mut(&id) {
                            open.tracker = t;
                        }
                    }
                    Err(e) => tracing::warn!(signal = %id, error = %e, "replay failed"),
                }
            } else if let Some(tape) = self.tapes.get(&key) {
                open.tracker.advance_to(tape.end());
            }
            self.settle(&[id], usize::MAX).await;
            self.reband(&key).await;
            return;
        }
        if doc.data.status == g3_store::models::SignalStatus::Live
            && signals::trade_of(&doc.data).is_none()
            && !self.known.contains_key(&id)
        {
            // Not a trade (no pair or side) and never judged: nothing to look up.
            return;
        }
        let stored = match self.known.remove(&id) {
            Some(d) => Some(d),
            None => match Collection::<SignalOutcome>::new(&self.client)
                .get_optional(&id)
                .await
            {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(signal = %id, error = %e, "stored outcome unreadable; skipped until its next change");
                    return;
                }
            },
        };
        let (heard, changed) = match stored.as_ref().and_then(|d| Heard::stored(&d.data)) {
            Some(mut heard) => {
                let changed = heard.hear(&doc, removed_at);
                (heard, changed)
            }
            None => match Heard::first(&doc, removed_at) {
                Some(h) => (h, true),
                // Not a trade (no pair or side): nothing to judge.
                None => return,
            },
        };
        let final_stored = stored
            .as_ref()
            .is_some_and(|d| !matches!(d.data.status.as_str(), "waiting_for_entry" | "entered"));
        if final_stored && !changed {
            return;
        }
        let market = match stored
            .as_ref()
            .and_then(|d| signals::stored_market(&d.data))
        {
            Some(m) => m,
            None => match self.resolve(&heard).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(signal = %id, error = %e, "venue look-up failed; tried again");
                    self.unresolved.insert(id, (Box::new(doc), removed_at));
                    return;
                }
            },
        };
        let route_key = doc.data.route_key.clone();
        let previous = stored.map(|d| d.data);
        self.register(id, route_key, heard, market, previous, !final_stored)
            .await;
    }

    /// The first venue (in the configured order) that lists the pair; untrackable with every
    /// venue's reason when none does.
    async fn resolve(&self, heard: &Heard) -> Result<Market, g3_market::MarketError> {
        let pair = heard
            .revisions
            .first()
            .map(|r| r.trade.pair.clone())
            .unwrap_or_default();
        let mut reasons = Vec::new();
        for venue in &self.settings.venues {
            let Some(listings) = self.listings.get(venue) else {
                continue;
            };
            match listings.check(&pair).await? {
                Listing::Trackable(symbol) => return Ok(Market::On(*venue, symbol)),
                Listing::Untrackable(why) => reasons.push(format!(
                    "{venue}: {}",
                    match why {
                        Untrackable::NotAPair(p) => format!("{p:?} is not a pair"),
                        Untrackable::NotListed(s) => format!("{s} is not listed"),
                        Untrackable::NotTrading { symbol, status } => {
                            format!("{symbol} is not trading ({status})")
                        }
                    }
                )),
            }
        }
        Ok(Market::Untrackable(reasons.join("; ")))
    }

    /// Judges a signal from what is stored (and what its tape holds), writes the outcome if it
    /// changed, and keeps following it while it is open. A settled outcome heard again (an
    /// edit or a delete after the fact) is judged from storage alone (`follow`: false).
    async fn register(
        &mut self,
        id: String,
        route_key: String,
        heard: Heard,
        market: Market,
        previous: Option<SignalOutcome>,
        follow: bool,
    ) {
        // This judgement supersedes any outcome of the signal still waiting to be written.
        self.unwritten.forget(&id);
        let history = match heard.history() {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(signal = %id, error = %e, "signal not judged");
                return;
            }
        };
        let key = match &market {
            Market::Untrackable(reason) => {
                let outcome =
                    Outcome::untrackable(&history, self.settings.rules.time_limit, reason);
                let doc = signals::document(&route_key, &market, &heard, &outcome);
                if previous.as_ref() != Some(&doc) {
                    self.write(&id, &doc).await;
                }
                return;
            }
            Market::On(venue, symbol) => (*venue, symbol.clone()),
        };
        if follow {
            self.ensure_tape(&key);
        }
        let tracker = match self.replay(&history, &key).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(signal = %id, error = %e, "stored prices unreadable; signal skipped until its next change");
                self.release_if_unused(&key).await;
                return;
            }
        };
        let written = previous
            .as_ref()
            .and_then(|d| serde_json::from_str::<Outcome>(&d.outcome).ok());
        self.by_key
            .entry(key.clone())
            .or_default()
            .insert(id.clone());
        self.open.insert(
            id.clone(),
            Open {
                route_key,
                heard,
                key: key.clone(),
                tracker,
                written,
                written_doc: previous,
                written_at: None,
            },
        );
        self.settle(&[id], usize::MAX).await;
        self.reband(&key).await;
    }

    /// A tracker judged on the stored items and those the tape holds unstored, with time
    /// complete up to where the tape is.
    async fn replay(&self, history: &g3_outcomes::History, key: &Key) -> anyhow::Result<Tracker> {
        Stats::add(&self.stats.replays, 1);
        // Minutes the tape handed over are in storage before storage is read.
        self.flush_minutes().await;
        let rules = self.settings.rules;
        let (mut items, until) =
            recompute::stored_items(&self.client, key.0, &key.1, history, rules).await?;
        let tape = self.tapes.get(key);
        if let Some(tape) = tape {
            append_after(&mut items, tape.unstored().iter().copied());
        }
        let mut tracker = Tracker::new(history.clone(), rules);
        for item in &items {
            if let Err(e) = tracker.push(item) {
                tracing::warn!(error = %e, "stored price item skipped");
            }
        }
        if let Some(t) = tape.map(Tape::end).or(until) {
            tracker.advance_to(t);
        }
        Ok(tracker)
    }

    /// Writes what changed for these signals: every change of events, and at most `progress`
    /// documents whose progress alone changed and is due; forgets those that are final, and
    /// drops symbols no open signal needs any more.
    async fn settle(&mut self, ids: &[String], mut progress: usize) {
        let mut freed = BTreeSet::new();
        for id in ids {
            let Some(open) = self.open.get_mut(id) else {
                continue;
            };
            let outcome = open.tracker.outcome();
            let events_changed = open
                .written
                .as_ref()
                .is_none_or(|w| !signals::same_events(w, outcome));
            let progress_due = progress > 0
                && open
                    .written_at
                    .is_none_or(|t| t.elapsed() >= self.settings.progress_every);
            if events_changed || progress_due {
                let market = Market::On(open.key.0, open.key.1.clone());
                let doc = signals::document(&open.route_key, &market, &open.heard, outcome);
                if open.written_doc.as_ref() != Some(&doc) {
                    if !events_changed {
                        progress -= 1;
                    }
                    let ok = write(&self.client, &self.fence, &self.stats, id, &doc).await;
                    if ok {
                        open.written = Some(outcome.clone());
                        open.written_doc = Some(doc);
                        open.written_at = Some(Instant::now());
                    }
                } else {
                    open.written_at = Some(Instant::now());
                }
            }
            let done = open.tracker.outcome().status.is_final()
                && open.written.as_ref() == Some(open.tracker.outcome());
            if done && let Some(open) = self.open.remove(id) {
                if let Some(ids) = self.by_key.get_mut(&open.key) {
                    ids.remove(id);
                }
                freed.insert(open.key);
            }
        }
        for key in freed {
            self.release_if_unused(&key).await;
        }
        Stats::set(&self.stats.open_signals, self.open.len() as u64);
    }

    /// Writes the outcome of a signal this loop does not follow (an untrackable one); a failed
    /// write is held and tried again on the timer ([`Unwritten`]).
    async fn write(&mut self, id: &str, doc: &SignalOutcome) {
        if !write(&self.client, &self.fence, &self.stats, id, doc).await {
            self.unwritten.hold(id, doc.clone());
        }
    }

    // ---- market --------------------------------------------------------------------------

    fn ensure_tape(&mut self, key: &Key) {
        if self.tapes.contains_key(key) {
            return;
        }
        let venue = key.0;
        if !self.feeds.contains_key(&venue) {
            let mut config = FeedConfig::with_endpoints(venue, self.settings.endpoints(venue));
            config.backoff = self.settings.feed_backoff;
            let (feed, mut events) = Feed::spawn(config);
            let to_work = self.to_self.clone();
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    if to_work.send(Msg::Market(venue, event)).await.is_err() {
                        return;
                    }
                }
            });
            self.feeds.insert(venue, feed);
        }
        let start = self.settings.clock.now() - self.settings.bar_grace;
        self.tapes.insert(key.clone(), Tape::new(start));
        if let Some(feed) = self.feeds.get(&venue) {
            feed.subscribe(key.1.clone());
        }
        Stats::set(&self.stats.symbols, self.tapes.len() as u64);
        tracing::info!(%venue, symbol = %key.1, "following symbol");
    }

    /// Unsubscribes a symbol no open signal needs, storing its unfinished minute.
    async fn release_if_unused(&mut self, key: &Key) {
        if self.by_key.get(key).is_some_and(|ids| !ids.is_empty()) {
            return;
        }
        self.by_key.remove(key);
        if let Some(feed) = self.feeds.get(&key.0) {
            feed.unsubscribe(&key.1);
        }
        if let Some(tape) = self.tapes.remove(key) {
            let minute = tape.stop();
            self.store_minute(key, minute);
        }
        Stats::set(&self.stats.symbols, self.tapes.len() as u64);
        tracing::info!(venue = %key.0, symbol = %key.1, "symbol released");
    }

    async fn on_market(&mut self, venue: Venue, event: MarketEvent) {
        match event {
            MarketEvent::Tick(t) => {
                Stats::add(&self.stats.ticks, 1);
                let key = (venue, t.symbol);
                let Some(tape) = self.tapes.get_mut(&key) else {
                    return;
                };
                let (late, cuts) = (tape.late, tape.cuts);
                let out = tape.tick(t.time, t.price);
                Stats::add(&self.stats.late_trades, tape.late - late);
                Stats::add(&self.stats.decisive_trades, tape.cuts - cuts);
                self.deliver(&key, out).await;
            }
            MarketEvent::Bar(bar) => {
                if let Some(tape) = self.tapes.get_mut(&(venue, bar.symbol.clone())) {
                    tape.backfilled(bar);
                }
            }
            MarketEvent::Gap(gap) => {
                let key = (venue, gap.symbol.clone());
                let Some(tape) = self.tapes.get_mut(&key) else {
                    return;
                };
                let out = tape.gap(&gap);
                self.deliver(&key, out).await;
            }
            MarketEvent::Connected { .. } => {
                self.connected_at.insert(venue, self.settings.clock.now());
            }
            MarketEvent::Disconnected { reason } => {
                tracing::info!(%venue, %reason, "feed disconnected: holding time until it resumes");
                self.connected_at.remove(&venue);
                for (_, tape) in self.tapes.iter_mut().filter(|((v, _), _)| *v == venue) {
                    tape.freeze();
                }
            }
        }
    }

    async fn on_timer(&mut self) {
        let now = self.settings.clock.now();
        let keys: Vec<Key> = self.tapes.keys().cloned().collect();
        for key in keys {
            let connected = self.connected_at.get(&key.0).copied();
            let Some(tape) = self.tapes.get_mut(&key) else {
                continue;
            };
            if tape.is_frozen() && connected.is_some_and(|c| now - c >= THAW) {
                tape.thaw();
            }
            let out = tape.advance(now, self.settings.bar_grace);
            self.deliver(&key, out).await;
        }
        // Progress of open outcomes whose events did not change, spread over the ticks so that
        // signals heard together are not all rewritten in one burst that holds up the trades
        // behind it: about `progress_every` apart each, a few per tick.
        let ids: Vec<String> = self.open.keys().cloned().collect();
        let ticks = (self.settings.progress_every.as_secs_f64()
            / self.settings.tick_every.as_secs_f64().max(1e-3))
        .max(1.0);
        let budget = (ids.len() as f64 / ticks).ceil() as usize + 1;
        self.settle(&ids, budget).await;
        if now >= self.unwritten_retry_at && !self.unwritten.is_empty() {
            self.unwritten_retry_at = now + RETRY_WRITES;
            self.unwritten
                .write(&self.client, &self.fence, &self.stats)
                .await;
        }
        if now >= self.listings_retry_at && !self.unresolved.is_empty() {
            self.listings_retry_at = now + RETRY_LISTINGS;
            for (_, (doc, removed_at)) in std::mem::take(&mut self.unresolved) {
                self.on_signal(*doc, removed_at).await;
            }
        }
    }

    /// Pushes a tape's items to the trackers of its symbol, settles what changed, stores its
    /// whole minutes, and gives the tape the band of what is still open.
    async fn deliver(&mut self, key: &Key, out: Emitted) {
        if out.is_empty() {
            return;
        }
        let judged = !out.items.is_empty() || out.advance.is_some();
        self.judge(key, out).await;
        if judged {
            self.reband(key).await;
        }
    }

    /// Sets the band of `key`'s open signals on its tape and judges what that cuts, until the
    /// tape has nothing more to cut.
    async fn reband(&mut self, key: &Key) {
        loop {
            let band = self
                .by_key
                .get(key)
                .into_iter()
                .flatten()
                .filter_map(|id| self.open.get(id))
                .fold(Band::ALL, |band, open| band.meet(open.tracker.band()));
            let Some(tape) = self.tapes.get_mut(key) else {
                return;
            };
            let cuts = tape.cuts;
            let out = tape.set_band(band);
            Stats::add(&self.stats.decisive_trades, tape.cuts - cuts);
            if out.is_empty() {
                return;
            }
            self.judge(key, out).await;
        }
    }

    /// [`Work::deliver`] without the band: the outcome is written before the minutes are
    /// stored, so a decisive trade's document waits for no other write.
    async fn judge(&mut self, key: &Key, out: Emitted) {
        let ids: Vec<String> = self
            .by_key
            .get(key)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default();
        for item in &out.items {
            Stats::add(&self.stats.items, 1);
            match item {
                g3_outcomes::Market::Bar(b) if b.backfilled => {
                    Stats::add(&self.stats.backfilled_bars, 1)
                }
                g3_outcomes::Market::Gap { .. } => Stats::add(&self.stats.gaps, 1),
                _ => {}
            }
            for id in &ids {
                if let Some(open) = self.open.get_mut(id)
                    && let Err(e) = open.tracker.push(item)
                {
                    tracing::warn!(signal = %id, error = %e, "price item refused");
                }
            }
        }
        if let Some(t) = out.advance {
            for id in &ids {
                if let Some(open) = self.open.get_mut(id) {
                    open.tracker.advance_to(t);
                }
            }
        }
        if !out.items.is_empty() || out.advance.is_some() {
            // Events only: progress is the timer's, a few at a time.
            self.settle(&ids, 0).await;
        }
        for minute in out.minutes {
            self.store_minute(key, minute);
        }
    }

    /// Hands a minute to the writer: a decisive trade never waits for the minutes that every
    /// symbol hands over at once when the clock passes a whole minute.
    fn store_minute(&self, key: &Key, minute: Minute) {
        if self
            .minutes
            .send(MinuteJob::Store(key.clone(), minute))
            .is_err()
        {
            tracing::warn!(venue = %key.0, symbol = %key.1, "minute writer gone; minute not stored");
        }
    }

    /// Waits until every minute handed over so far is written (or failed).
    async fn flush_minutes(&self) {
        let (done, flushed) = oneshot::channel();
        if self.minutes.send(MinuteJob::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
    }

    /// Shutdown: the unfinished minutes are stored so a recompute (or the next leader) has
    /// everything judged so far.
    async fn stop(&mut self) {
        let keys: Vec<Key> = self.tapes.keys().cloned().collect();
        for key in keys {
            if let Some(tape) = self.tapes.remove(&key) {
                self.store_minute(&key, tape.stop());
            }
        }
        self.flush_minutes().await;
        for (_, feed) in self.feeds.drain() {
            feed.shutdown().await;
        }
    }
}

/// The minute writer: stores minutes in the order handed over, under the lease, until the work
/// loop is gone.
async fn store_minutes(
    client: Client,
    fence: Fence,
    stats: Arc<Stats>,
    mut jobs: mpsc::UnboundedReceiver<MinuteJob>,
) {
    while let Some(job) = jobs.recv().await {
        let (key, minute) = match job {
            MinuteJob::Store(key, minute) => (key, minute),
            MinuteJob::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let mut delay = MINUTE_RETRY_FIRST;
        while fence.is_valid() {
            match prices::store(&client, key.0, &key.1, &minute).await {
                Ok(()) => {
                    Stats::add(&stats.minute_writes, 1);
                    break;
                }
                Err(e) => {
                    Stats::add(&stats.write_failures, 1);
                    let retryable = e
                        .downcast_ref::<g3_appwrite::Error>()
                        .is_some_and(g3_appwrite::Error::is_retryable);
                    if !retryable {
                        tracing::error!(venue = %key.0, symbol = %key.1, minute = %minute.start, error = %e, "price minute refused; not stored");
                        break;
                    }
                    // The stored history is what a recompute judges: keep this minute (and,
                    // behind it, every later one, in order) until Appwrite takes it.
                    tracing::warn!(venue = %key.0, symbol = %key.1, minute = %minute.start, error = %e, retry_in = ?delay, "price minute not stored yet");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MINUTE_RETRY_MAX);
                }
            }
        }
    }
}

/// First wait before storing a minute again after a transient failure (Appwrite down, 5xx,
/// 429); doubled up to [`MINUTE_RETRY_MAX`]. Writes are idempotent (create, else merge), so a
/// retry never stores anything twice.
const MINUTE_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(250);
const MINUTE_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// Upserts an outcome document under the lease; false when not written.
async fn write(
    client: &Client,
    fence: &Fence,
    stats: &Stats,
    id: &str,
    doc: &SignalOutcome,
) -> bool {
    if !fence.is_valid() {
        return false;
    }
    match Collection::<SignalOutcome>::new(client)
        .upsert(id, doc, None)
        .await
    {
        Ok(_) => {
            Stats::add(&stats.outcome_writes, 1);
            tracing::debug!(signal = %id, status = %doc.status, "outcome written");
            true
        }
        Err(e) => {
            Stats::add(&stats.write_failures, 1);
            tracing::warn!(signal = %id, error = %e, "outcome not written; tried again later");
            false
        }
    }
}

/// Outcomes whose write failed, of signals no longer followed (an untrackable one): nothing
/// else would write them before the signal changes again. Followed signals need none of this:
/// their trackers write what differs from the last written outcome at every settle.
#[derive(Default)]
struct Unwritten(HashMap<String, SignalOutcome>);

impl Unwritten {
    /// Keeps `doc` to write later, in place of an older one of the same signal.
    fn hold(&mut self, id: &str, doc: SignalOutcome) {
        self.0.insert(id.to_owned(), doc);
    }

    fn forget(&mut self, id: &str) {
        self.0.remove(id);
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Writes what is held; stops at the first failure (Appwrite is likely still down, and
    /// the work loop must not wait out a timeout per document).
    async fn write(&mut self, client: &Client, fence: &Fence, stats: &Stats) {
        while let Some(id) = self.0.keys().next().cloned() {
            if !write(client, fence, stats, &id, &self.0[&id]).await {
                return;
            }
            self.0.remove(&id);
        }
    }
}

#[cfg(test)]
mod unwritten_tests {
    use super::*;

    fn outcome(status: &str) -> SignalOutcome {
        let at = OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap();
        SignalOutcome {
            route_key: "vip".into(),
            status: status.into(),
            posted_at: at,
            venue: None,
            symbol: None,
            outcome: "{}".into(),
            revisions: "[]".into(),
            deleted_at: None,
            updated: at,
        }
    }

    #[tokio::test]
    async fn an_outcome_refused_while_appwrite_is_down_is_written_when_it_is_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut backend = testkit::backend::backend_on_disk(dir.path()).await;
        backend.stop().await;
        let stats = Stats::default();
        let fence = Fence::unfenced(1);
        let mut held = Unwritten::default();
        assert!(!write(&backend.client, &fence, &stats, "7001", &outcome("open")).await);
        held.hold("7001", outcome("open"));
        // A newer judgement of the same signal replaces the one waiting.
        held.hold("7001", outcome("untrackable"));
        held.hold("7002", outcome("untrackable"));
        held.write(&backend.client, &fence, &stats).await;
        assert!(
            !held.is_empty(),
            "nothing can be written while Appwrite is down"
        );

        backend.start().await;
        held.write(&backend.client, &fence, &stats).await;
        assert!(held.is_empty());
        let outcomes = Collection::<SignalOutcome>::new(&backend.client);
        for id in ["7001", "7002"] {
            let stored = outcomes.get(id).await.unwrap();
            assert_eq!(stored.data, outcome("untrackable"), "{id}");
        }
    }
}

#[cfg(test)]
mod minute_writer_tests {
    use super::*;
    use std::time::Duration;

    use g3_outcomes::Tick;

    #[tokio::test]
    async fn a_minute_handed_over_while_appwrite_is_down_is_stored_when_it_is_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut backend = testkit::backend::backend_on_disk(dir.path()).await;
        backend.stop().await;
        let stats = Arc::new(Stats::default());
        let (jobs, queue) = mpsc::unbounded_channel();
        let writer = tokio::spawn(store_minutes(
            backend.client.clone(),
            Fence::unfenced(1),
            stats.clone(),
            queue,
        ));
        let symbol = Symbol::from_pair("BTC/USDT").unwrap();
        let start = crate::tape::floor_min(OffsetDateTime::now_utc());
        let minute = |start: OffsetDateTime, price: f64| Minute {
            start,
            until: start + time::Duration::MINUTE,
            items: vec![g3_outcomes::Market::Tick(Tick {
                time: start + time::Duration::SECOND,
                price,
            })],
        };
        let key = (Venue::BinanceSpot, symbol.clone());
        jobs.send(MinuteJob::Store(key.clone(), minute(start, 100.0)))
            .unwrap();
        jobs.send(MinuteJob::Store(
            key.clone(),
            minute(start + time::Duration::MINUTE, 101.0),
        ))
        .unwrap();
        // Refused while Appwrite is down, more than once (it keeps trying).
        testkit::wait::wait_for("two failed attempts", Duration::from_secs(10), || async {
            (Stats::get(&stats.write_failures) >= 2).then_some(())
        })
        .await
        .unwrap();
        assert_eq!(Stats::get(&stats.minute_writes), 0);
        backend.start().await;
        let (done, flushed) = oneshot::channel();
        jobs.send(MinuteJob::Flush(done)).unwrap();
        tokio::time::timeout(Duration::from_secs(30), flushed)
            .await
            .expect("both minutes stored once Appwrite is back")
            .unwrap();
        assert_eq!(Stats::get(&stats.minute_writes), 2);
        let stored = prices::load_minutes(
            &backend.client,
            Venue::BinanceSpot,
            &symbol,
            start,
            start + time::Duration::minutes(2),
        )
        .await
        .unwrap();
        assert_eq!(stored.len(), 2, "both minutes, in order");
        drop(jobs);
        writer.await.unwrap();
    }
}
