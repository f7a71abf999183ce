//! Catching up from history: per-channel cursors (kept in `bot_state`), which channels are in
//! sync, and the backfill that queues what was posted after a channel's cursor.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, MutexGuard},
};

use g3_appwrite::Client;
use g3_store::{Collection, models::Route};
use serenity::all::{ChannelId, GetMessages, Message, MessageId};

use super::{Collector, IngestEvent, events::message_json};
use crate::state;

/// Messages per history page.
const PAGE: u8 = 100;

/// Per-channel cursors (kept in `bot_state` as `collect-{channel}`) and which channels are in
/// sync: caught up by a backfill that started after the last (re)connect.
pub(super) struct Cursors {
    appwrite: Client,
    inner: Mutex<CursorState>,
}

#[derive(Default)]
struct CursorState {
    /// channel → newest message id delivered with everything before it (`0`: empty channel).
    known: HashMap<u64, u64>,
    /// channel → the connection generation its last backfill caught up in; a channel is in
    /// sync only while that is the current one.
    synced: HashMap<u64, u64>,
    generation: u64,
    /// Channels seen live since start (backfilled along with the configured ones).
    seen: BTreeSet<u64>,
}

fn cursor_key(channel: u64) -> String {
    format!("collect-{channel}")
}

impl Cursors {
    pub(super) fn new(appwrite: Client) -> Self {
        Self {
            appwrite,
            inner: Mutex::new(CursorState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CursorState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn get(&self, channel: u64) -> Result<Option<u64>, g3_appwrite::Error> {
        if let Some(c) = self.lock().known.get(&channel) {
            return Ok(Some(*c));
        }
        let stored = state::load(&self.appwrite, &cursor_key(channel))
            .await?
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(c) = stored {
            let mut s = self.lock();
            let entry = s.known.entry(channel).or_insert(c);
            *entry = (*entry).max(c);
        }
        Ok(stored)
    }

    /// Moves a cursor forward (never back) and stores it.
    pub(super) async fn advance(&self, channel: u64, id: u64) -> Result<(), g3_appwrite::Error> {
        {
            let mut s = self.lock();
            let current = s.known.entry(channel).or_insert(0);
            // A cursor not loaded yet is 0 here; storing a larger value is still correct,
            // since only delivered messages or the channel's newest move it.
            if id <= *current && *current != 0 {
                return Ok(());
            }
            *current = (*current).max(id);
        }
        state::save(&self.appwrite, &cursor_key(channel), &id.to_string()).await
    }

    /// A (re)connect or disconnect: every channel is out of sync until backfilled again.
    pub(super) fn new_generation(&self) {
        self.lock().generation += 1;
    }

    pub(super) fn unsync(&self, channel: u64) {
        self.lock().synced.remove(&channel);
    }

    /// A channel was seen live: it is backfilled along with the configured ones.
    pub(super) fn seen(&self, channel: u64) {
        self.lock().seen.insert(channel);
    }

    fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Backfill that started in `generation` caught the channel up.
    fn caught_up(&self, channel: u64, generation: u64) {
        let mut s = self.lock();
        if s.generation == generation {
            s.synced.insert(channel, generation);
        }
    }

    pub(super) fn is_synced(&self, channel: u64) -> bool {
        let s = self.lock();
        s.synced.get(&channel) == Some(&s.generation)
    }
}

impl Collector {
    fn known_channels_now(&self) -> BTreeSet<u64> {
        let mut set: BTreeSet<u64> = self.settings.channels.iter().copied().collect();
        set.extend(self.cursors.lock().seen.iter().copied());
        set
    }

    /// The channels to backfill: the configured list, or else the source channels of routes in
    /// the source guild plus every channel seen live.
    async fn backfill_channels(&self) -> Result<BTreeSet<u64>, g3_appwrite::Error> {
        if !self.settings.channels.is_empty() {
            return Ok(self.settings.channels.iter().copied().collect());
        }
        let guild = self.settings.source_guild.to_string();
        let routes = Collection::<Route>::new(&self.appwrite)
            .list_all(&[], 100)
            .await?;
        let mut set = self.known_channels_now();
        set.extend(
            routes
                .into_iter()
                .filter(|r| r.data.enabled != Some(false))
                .filter(|r| r.data.source_guild_id.as_deref() == Some(guild.as_str()))
                .filter_map(|r| crate::snowflake(&r.data.source_channel_id)),
        );
        Ok(set)
    }

    pub(super) async fn backfill_forever(self: Arc<Self>) {
        let mut attempt = 0u32;
        loop {
            if attempt == 0 {
                self.backfill_wanted.notified().await;
            }
            match self.backfill_once().await {
                Ok(()) => attempt = 0,
                Err(e) => {
                    attempt += 1;
                    let delay = self.delay(attempt);
                    tracing::warn!(error = %e, ?delay, "collector backfill failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One pass over every channel; channels caught up are in sync again.
    async fn backfill_once(&self) -> anyhow::Result<()> {
        let generation = self.cursors.generation();
        let channels = self.backfill_channels().await?;
        let mut failed = None;
        for channel in channels {
            match self.backfill_channel(channel).await {
                Ok(queued) => {
                    if queued > 0 {
                        tracing::info!(
                            channel,
                            queued,
                            "collector backfill queued missed messages"
                        );
                    }
                    self.cursors.caught_up(channel, generation);
                }
                Err(e) => {
                    tracing::warn!(channel, error = %e, "collector backfill of a channel failed");
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Queues one channel's history after its cursor, oldest first; returns how many.
    async fn backfill_channel(&self, channel: u64) -> anyhow::Result<usize> {
        let id = ChannelId::new(channel);
        let Some(mut after) = self.cursors.get(channel).await? else {
            // First sight: remember where "now" is, forward nothing old.
            let newest = id.messages(&self.http, GetMessages::new().limit(1)).await?;
            let at = newest.iter().map(|m| m.id.get()).max().unwrap_or(0);
            self.cursors.advance(channel, at).await?;
            return Ok(0);
        };
        let pending = self.outbox.pending_creates(channel);
        let mut queued = 0;
        let mut first = true;
        loop {
            if !first {
                tokio::time::sleep(self.settings.page_delay).await;
            }
            first = false;
            let query = GetMessages::new().limit(PAGE);
            let query = if after == 0 {
                query.after(MessageId::new(1))
            } else {
                query.after(MessageId::new(after))
            };
            let page = id.messages(&self.http, query).await?;
            let full = page.len() >= usize::from(PAGE);
            let mut fresh: Vec<Message> = page.into_iter().filter(|m| m.id.get() > after).collect();
            fresh.sort_by_key(|m| m.id);
            let Some(last) = fresh.last().map(|m| m.id.get()) else {
                break;
            };
            let events: Vec<IngestEvent> = fresh
                .iter()
                .filter(|m| !pending.contains(&m.id.get()))
                .map(|m| {
                    IngestEvent::new(
                        "message.create",
                        message_json(m, self.settings.source_guild),
                    )
                })
                .collect();
            queued += events.len();
            self.enqueue(channel, events);
            after = last;
            if !full {
                break;
            }
        }
        Ok(queued)
    }
}
