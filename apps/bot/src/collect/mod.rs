//! The source-guild collector: where the bot is installed in the source guild, it forwards
//! message creates, edits and deletes there to ingest (`POST /ingest/v1/events`) exactly as the
//! Vencord plugin does (apps/collector): raw Discord message JSON in `{"events": [...]}`
//! batches of at most 100 events and 1 MiB, signed Standard-Webhooks style with the ingest
//! secret, one request in flight, strictly in queue order.
//!
//! - **Filter**: the source guild only, and the configured channels when a list is given
//!   (ingest drops channels without a route anyway).
//! - **Delivery**: 2xx acknowledges the batch; 400/413 halve the batch until the one refused
//!   event is found, which is logged and dropped (it can never succeed and must not block the
//!   rest); anything else (401, 429, 5xx, network) keeps the batch and retries with capped
//!   exponential back-off and jitter. Ingest is idempotent, so a batch whose answer was lost is
//!   simply sent again.
//! - **Queue**: bounded ([`CollectorSettings::queue_capacity`]). With a spool directory every
//!   event is appended to a file before it is queued and the file survives restarts; without
//!   one the queue lives in memory. When the queue is full new events are dropped with a
//!   warning, and their channels are read again from history once it drains.
//! - **Backfill**: after every READY and RESUME (and after an overflow) each channel's history
//!   after its cursor is queued as `message.create`. A channel's cursor is the newest message id
//!   such that everything up to it was delivered; it is kept in `bot_state` and only moves on
//!   delivery while the channel is in sync (not between a disconnect and the end of the next
//!   backfill, or a live message delivered first would make backfill skip the gap). A channel
//!   seen for the first time only records where "now" is. As with the plugin, edits and deletes
//!   of older messages made while the bot was away are not recovered.
//!
//! serenity runs every event handler on its own task, so two events arriving within the same
//! instant may be queued in either order; ingest's merge gives the same document for any
//! order (apps/webhook/src/ingest/merge.rs).
//!
//! Parts: [`settings`] (what an operator sets), [`events`] (gateway events to raw ingest
//! events), [`outbox`] (the bounded queue and its spool), [`backfill`] (per-channel cursors and
//! history) and [`send`] (signed delivery with back-off).

mod backfill;
mod events;
mod outbox;
mod send;
mod settings;

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
};

use g3_appwrite::Client;
use serenity::{
    all::{Message, MessageUpdateEvent},
    http::Http,
};
use tokio::sync::Notify;

use backfill::Cursors;
use events::{delete_json, message_json, update_json};

pub use events::IngestEvent;
pub use outbox::{MAX_BATCH_BYTES, MAX_BATCH_EVENTS, Outbox};
pub use settings::{CollectorSettings, check_ingest_url, parse_channel_ids, parse_snowflake};

/// The running collector: event intake, delivery and backfill.
pub struct Collector {
    settings: CollectorSettings,
    outbox: Outbox,
    cursors: Cursors,
    appwrite: Client,
    http: Arc<Http>,
    ingest: reqwest::Client,
    backfill_wanted: Notify,
    /// Set while events were dropped for lack of room: backfill once the queue drains.
    overflowed: Mutex<BTreeSet<u64>>,
}

impl Collector {
    pub fn new(
        settings: CollectorSettings,
        appwrite: Client,
        http: Arc<Http>,
    ) -> anyhow::Result<Arc<Self>> {
        let outbox = Outbox::open(settings.queue_capacity, settings.spool_dir.as_deref())
            .map_err(|e| anyhow::anyhow!("collector spool: {e}"))?;
        let ingest = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .build()?;
        Ok(Arc::new(Self {
            cursors: Cursors::new(appwrite.clone()),
            outbox,
            appwrite,
            http,
            ingest,
            settings,
            backfill_wanted: Notify::new(),
            overflowed: Mutex::new(BTreeSet::new()),
        }))
    }

    /// Runs delivery and backfill until the task is dropped.
    pub async fn run(self: Arc<Self>) {
        let sender = self.clone();
        let backfill = self.clone();
        tokio::join!(sender.deliver_forever(), backfill.backfill_forever());
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    fn wants(&self, guild: Option<u64>, channel: u64) -> bool {
        guild == Some(self.settings.source_guild)
            && (self.settings.channels.is_empty() || self.settings.channels.contains(&channel))
    }

    fn enqueue(&self, channel: u64, events: Vec<IngestEvent>) {
        self.cursors.seen(channel);
        let refused = self.outbox.push(events);
        if !refused.is_empty() {
            // The cursor must not pass what was dropped: out of sync until backfill reads it.
            self.cursors.unsync(channel);
            self.overflowed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(channel);
        }
    }

    /// MESSAGE_CREATE.
    pub fn on_create(&self, message: &Message) {
        let channel = message.channel_id.get();
        if !self.wants(message.guild_id.map(|g| g.get()), channel) {
            return;
        }
        let json = message_json(message, self.settings.source_guild);
        self.enqueue(channel, vec![IngestEvent::new("message.create", json)]);
    }

    /// MESSAGE_UPDATE (full or partial).
    pub fn on_update(&self, event: &MessageUpdateEvent) {
        let channel = event.channel_id.get();
        if !self.wants(event.guild_id.map(|g| g.get()), channel) {
            return;
        }
        let json = update_json(event, self.settings.source_guild);
        self.enqueue(channel, vec![IngestEvent::new("message.update", json)]);
    }

    /// MESSAGE_DELETE and MESSAGE_DELETE_BULK.
    pub fn on_delete(&self, guild: Option<u64>, channel: u64, messages: &[u64]) {
        if !self.wants(guild, channel) {
            return;
        }
        let events = messages
            .iter()
            .map(|m| {
                IngestEvent::new(
                    "message.delete",
                    delete_json(channel, *m, self.settings.source_guild),
                )
            })
            .collect();
        self.enqueue(channel, events);
    }

    /// The gateway dropped: what is posted until the next backfill may only come from history.
    pub fn on_disconnected(&self) {
        self.cursors.new_generation();
    }

    /// READY or RESUMED: catch up on what was posted meanwhile.
    pub fn on_connected(&self) {
        self.cursors.new_generation();
        self.backfill_wanted.notify_one();
    }
}
