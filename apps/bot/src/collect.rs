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

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    fs::{self, File, OpenOptions},
    io::{BufRead as _, BufReader, Seek as _, SeekFrom, Write as _},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use g3_appwrite::Client;
use g3_store::{models::Route, schema::DATABASE_ID};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use serenity::{
    all::{ChannelId, GetMessages, Message, MessageId, MessageUpdateEvent},
    http::Http,
};
use tokio::sync::Notify;

use crate::{Secret, state};

/// Most events in one request (ingest's `MAX_BATCH`).
pub const MAX_BATCH_EVENTS: usize = 100;
/// Largest request body (ingest's limit is 1 MiB).
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Messages per history page.
const PAGE: u8 = 100;

/// What the collector needs; `None` in the bot's settings turns it off.
#[derive(Clone, Debug)]
pub struct CollectorSettings {
    pub source_guild: u64,
    /// Channels collected; empty collects every channel of the source guild.
    pub channels: Vec<u64>,
    /// The full URL of ingest's events endpoint (`.../ingest/v1/events`).
    pub ingest_url: String,
    pub ingest_secret: Secret,
    /// Most events held while ingest is unreachable.
    pub queue_capacity: usize,
    /// Where the queue is kept across restarts; `None` keeps it in memory only.
    pub spool_dir: Option<PathBuf>,
    /// Back-off between failed deliveries: doubles from `base` up to `max` (half of it random).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Pause between history pages during backfill.
    pub page_delay: Duration,
    /// Timeout of one ingest request.
    pub request_timeout: Duration,
}

impl CollectorSettings {
    /// Production defaults around the four values an operator sets.
    pub fn new(
        source_guild: u64,
        channels: Vec<u64>,
        ingest_url: String,
        ingest_secret: Secret,
    ) -> Self {
        Self {
            source_guild,
            channels,
            ingest_url,
            ingest_secret,
            queue_capacity: 10_000,
            spool_dir: None,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            page_delay: Duration::from_millis(250),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A Discord id (snowflake): 1 to 20 digits, not zero.
pub fn parse_snowflake(text: &str) -> Result<u64, String> {
    let t = text.trim();
    t.parse::<u64>()
        .ok()
        .filter(|id| *id != 0 && t.len() <= 20)
        .ok_or_else(|| format!("{t:?} is not a Discord id"))
}

/// A channel list: ids separated by commas, spaces or newlines.
pub fn parse_channel_ids(text: &str) -> Result<Vec<u64>, String> {
    let mut ids = Vec::new();
    for part in text.split(|c: char| c == ',' || c == ';' || c.is_whitespace()) {
        if part.is_empty() {
            continue;
        }
        let id = parse_snowflake(part)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Checks an ingest URL: absolute http(s).
pub fn check_ingest_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(u) => Err(format!(
            "{url:?} is not an http(s) URL (scheme {})",
            u.scheme()
        )),
        Err(e) => Err(format!("{url:?} is not a URL: {e}")),
    }
}

/// One ingest event: `message.create`, `message.update` or `message.delete` with the raw
/// Discord message (for deletes just `id`, `channel_id`, `guild_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: Value,
}

impl IngestEvent {
    fn new(kind: &str, message: Value) -> Self {
        Self {
            kind: kind.to_owned(),
            message,
        }
    }

    fn id_of(&self, field: &str) -> Option<u64> {
        self.message.get(field)?.as_str()?.parse().ok()
    }

    pub fn message_id(&self) -> Option<u64> {
        self.id_of("id")
    }

    pub fn channel_id(&self) -> Option<u64> {
        self.id_of("channel_id")
    }
}

/// The raw JSON of a message: serenity's model serialised back (Discord's field names), with
/// `guild_id` filled in where the source lacks it (REST history does).
fn message_json(message: &impl Serialize, guild: u64) -> Value {
    let mut v = serde_json::to_value(message).unwrap_or(Value::Null);
    if let Some(map) = v.as_object_mut()
        && !map.get("guild_id").is_some_and(Value::is_string)
    {
        map.insert("guild_id".into(), json!(guild.to_string()));
    }
    v
}

/// A MESSAGE_UPDATE keeps only the fields present, so a partial one (an embed unfurl) stays
/// partial: ingest tells them apart by an absent `content`.
fn update_json(event: &MessageUpdateEvent, guild: u64) -> Value {
    let mut v = message_json(event, guild);
    if let Some(map) = v.as_object_mut() {
        map.retain(|_, value| !value.is_null());
    }
    v
}

fn delete_json(channel: u64, message: u64, guild: u64) -> Value {
    json!({ "id": message.to_string(), "channel_id": channel.to_string(), "guild_id": guild.to_string() })
}

/// The queue between Discord events and ingest, optionally mirrored in a spool file.
pub struct Outbox {
    inner: Mutex<Queue>,
    notify: Notify,
    capacity: usize,
}

struct Queue {
    entries: VecDeque<(IngestEvent, u64)>,
    spool: Option<Spool>,
    /// Events dropped since the queue last had room.
    dropped: u64,
}

impl Outbox {
    /// An outbox holding at most `capacity` events; with `spool_dir`, what an earlier run left
    /// there is loaded first.
    pub fn open(capacity: usize, spool_dir: Option<&Path>) -> std::io::Result<Self> {
        let (spool, entries) = match spool_dir {
            Some(dir) => {
                let (spool, entries) = Spool::open(dir)?;
                (Some(spool), entries)
            }
            None => (None, VecDeque::new()),
        };
        if !entries.is_empty() {
            tracing::info!(
                pending = entries.len(),
                "collector resumes with events left in its spool"
            );
        }
        Ok(Self {
            inner: Mutex::new(Queue {
                entries,
                spool,
                dropped: 0,
            }),
            notify: Notify::new(),
            capacity: capacity.max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues events in order. Returns those that did not fit (the queue is full); they are
    /// not kept anywhere.
    pub fn push(&self, events: Vec<IngestEvent>) -> Vec<IngestEvent> {
        let mut refused = Vec::new();
        {
            let mut q = self.lock();
            for event in events {
                if q.entries.len() >= self.capacity {
                    if q.dropped == 0 {
                        tracing::warn!(
                            capacity = self.capacity,
                            "collector queue is full (ingest unreachable for long?): new events are dropped; their channels are read again from history once it drains"
                        );
                    }
                    q.dropped += 1;
                    refused.push(event);
                    continue;
                }
                let line = match serde_json::to_string(&event) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "event not serialisable; dropped");
                        continue;
                    }
                };
                let len = line.len() as u64 + 1;
                if let Some(spool) = q.spool.as_mut()
                    && let Err(e) = spool.append(&line)
                {
                    tracing::error!(error = %e, "collector spool not writable: event kept in memory only");
                }
                q.entries.push_back((event, len));
            }
        }
        self.notify.notify_one();
        refused
    }

    /// The front of the queue as one batch within ingest's limits (at least one event; at most
    /// `max_events`), waiting while the queue is empty.
    pub async fn front(&self, max_events: usize) -> Vec<IngestEvent> {
        loop {
            let notified = self.notify.notified();
            {
                let q = self.lock();
                if !q.entries.is_empty() {
                    let mut batch = Vec::new();
                    let mut bytes = r#"{"events":[]}"#.len();
                    for (event, len) in q.entries.iter().take(max_events.max(1)) {
                        let size = *len as usize; // the line's newline stands for the comma
                        if !batch.is_empty() && bytes + size > MAX_BATCH_BYTES {
                            break;
                        }
                        bytes += size;
                        batch.push(event.clone());
                    }
                    return batch;
                }
            }
            notified.await;
        }
    }

    /// Removes the first `n` events (delivered, or refused for good).
    pub fn ack(&self, n: usize) {
        let mut q = self.lock();
        let mut bytes = 0;
        for _ in 0..n {
            match q.entries.pop_front() {
                Some((_, len)) => bytes += len,
                None => break,
            }
        }
        let empty = q.entries.is_empty();
        if q.entries.len() < self.capacity {
            if q.dropped > 0 {
                tracing::warn!(
                    dropped = q.dropped,
                    "collector queue has room again; dropped events are recovered by backfill where possible"
                );
            }
            q.dropped = 0;
        }
        if let Some(spool) = q.spool.as_mut()
            && let Err(e) = spool.consume(bytes, empty)
        {
            tracing::error!(error = %e, "collector spool position not saved: events may be sent again after a restart");
        }
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ids of the `message.create` events of `channel` waiting.
    fn pending_creates(&self, channel: u64) -> BTreeSet<u64> {
        self.lock()
            .entries
            .iter()
            .filter(|(e, _)| e.kind == "message.create" && e.channel_id() == Some(channel))
            .filter_map(|(e, _)| e.message_id())
            .collect()
    }
}

/// The queue on disk: `outbox.jsonl` holds one event per line, `outbox.pos` the byte offset of
/// the first one not yet delivered. Appends go to the end; delivery only moves the offset, and
/// the file starts over whenever the queue is empty.
struct Spool {
    file: File,
    pos_path: PathBuf,
    pos: u64,
}

impl Spool {
    fn open(dir: &Path) -> std::io::Result<(Spool, VecDeque<(IngestEvent, u64)>)> {
        fs::create_dir_all(dir)?;
        let path = dir.join("outbox.jsonl");
        let pos_path = dir.join("outbox.pos");
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let pos: u64 = fs::read_to_string(&pos_path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let size = file.metadata()?.len();
        let mut entries = VecDeque::new();
        let mut good_end = pos.min(size);
        file.seek(SeekFrom::Start(good_end))?;
        let mut reader = BufReader::new(&file);
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line)?;
            if n == 0 || !line.ends_with('\n') {
                // End, or a line cut short by a crash: dropped.
                break;
            }
            match serde_json::from_str::<IngestEvent>(line.trim_end()) {
                Ok(event) => entries.push_back((event, n as u64)),
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable line in the collector spool skipped")
                }
            }
            good_end += n as u64;
        }
        drop(reader);
        let mut spool = Spool {
            file,
            pos_path,
            pos: pos.min(size),
        };
        if good_end < size {
            spool.file.set_len(good_end)?;
        }
        if entries.is_empty() {
            spool.reset()?;
        }
        Ok((spool, entries))
    }

    fn append(&mut self, line: &str) -> std::io::Result<()> {
        self.file.write_all(format!("{line}\n").as_bytes())?;
        self.file.flush()
    }

    fn consume(&mut self, bytes: u64, empty: bool) -> std::io::Result<()> {
        if empty {
            return self.reset();
        }
        self.pos += bytes;
        write_atomically(&self.pos_path, self.pos.to_string().as_bytes())
    }

    fn reset(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.pos = 0;
        write_atomically(&self.pos_path, b"0")
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes)?;
    fs::rename(tmp, path)
}

/// Per-channel cursors (kept in `bot_state` as `collect-{channel}`) and which channels are in
/// sync: caught up by a backfill that started after the last (re)connect.
struct Cursors {
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
    async fn advance(&self, channel: u64, id: u64) -> Result<(), g3_appwrite::Error> {
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
    fn new_generation(&self) {
        self.lock().generation += 1;
    }

    fn unsync(&self, channel: u64) {
        self.lock().synced.remove(&channel);
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

    fn is_synced(&self, channel: u64) -> bool {
        let s = self.lock();
        s.synced.get(&channel) == Some(&s.generation)
    }
}

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
            cursors: Cursors {
                appwrite: appwrite.clone(),
                inner: Mutex::new(CursorState::default()),
            },
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
        self.cursors.lock().seen.insert(channel);
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
        let routes = self
            .appwrite
            .documents(DATABASE_ID, "routes")
            .list_all::<Route>(&[], 100)
            .await?;
        let mut set = self.known_channels_now();
        set.extend(
            routes
                .into_iter()
                .filter(|r| r.data.enabled != Some(false))
                .filter(|r| r.data.source_guild_id.as_deref() == Some(guild.as_str()))
                .filter_map(|r| r.data.source_channel_id.parse::<u64>().ok()),
        );
        Ok(set)
    }

    fn delay(&self, attempt: u32) -> Duration {
        let exp = crate::exponential(
            self.settings.backoff_base,
            self.settings.backoff_max,
            attempt.saturating_sub(1),
        );
        let half = exp / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }

    async fn backfill_forever(self: Arc<Self>) {
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

    async fn deliver_forever(self: Arc<Self>) {
        let mut attempt = 0u32;
        let mut max_events = MAX_BATCH_EVENTS;
        loop {
            let batch = self.outbox.front(max_events).await;
            let n = batch.len();
            match self.post(&batch).await {
                Ok(status) if (200..300).contains(&status) => {
                    attempt = 0;
                    max_events = MAX_BATCH_EVENTS;
                    self.outbox.ack(n);
                    self.delivered(&batch).await;
                    continue;
                }
                Ok(status @ (400 | 413)) if n > 1 => {
                    tracing::warn!(status, events = n, "ingest refused a batch; splitting it");
                    max_events = n.div_ceil(2);
                    continue;
                }
                Ok(status @ (400 | 413)) => {
                    tracing::error!(status, event = ?batch[0], "ingest refused one event; dropped");
                    self.outbox.ack(1);
                    self.delivered(&batch).await;
                    continue;
                }
                Ok(401) => tracing::error!(
                    "ingest refused the signature (401): check COLLECTOR_INGEST_SECRET and the clock; retrying"
                ),
                Ok(status) => tracing::warn!(status, "ingest answered an error; retrying"),
                Err(e) => tracing::warn!(error = %e, "ingest unreachable; retrying"),
            }
            attempt += 1;
            tokio::time::sleep(self.delay(attempt)).await;
        }
    }

    /// One signed request; `Ok` is the status answered.
    async fn post(&self, events: &[IngestEvent]) -> Result<u16, reqwest::Error> {
        let body = serde_json::to_vec(&json!({ "events": events })).unwrap_or_default();
        let id = format!("bot_{:032x}", rand::rng().random::<u128>());
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = g3_core::signing::standard_signature(
            self.settings.ingest_secret.expose(),
            &id,
            timestamp,
            &body,
        );
        let response = self
            .ingest
            .post(&self.settings.ingest_url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await?;
        Ok(response.status().as_u16())
    }

    /// After ingest took a batch: move the cursors of channels in sync, and once an overflow
    /// has drained, read the affected channels again.
    async fn delivered(&self, batch: &[IngestEvent]) {
        let mut newest: HashMap<u64, u64> = HashMap::new();
        for e in batch.iter().filter(|e| e.kind == "message.create") {
            if let (Some(c), Some(m)) = (e.channel_id(), e.message_id()) {
                let slot = newest.entry(c).or_insert(0);
                *slot = (*slot).max(m);
            }
        }
        for (channel, id) in newest {
            if !self.cursors.is_synced(channel) {
                continue;
            }
            if let Err(e) = self.cursors.advance(channel, id).await {
                tracing::warn!(channel, error = %e, "collector cursor not saved; kept in memory");
            }
        }
        let drained = self.outbox.len() <= self.settings.queue_capacity / 2;
        if drained {
            let mut overflowed = self.overflowed.lock().unwrap_or_else(|e| e.into_inner());
            if !overflowed.is_empty() {
                overflowed.clear();
                drop(overflowed);
                self.backfill_wanted.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(channel: u64, id: u64) -> IngestEvent {
        IngestEvent::new(
            "message.create",
            json!({ "id": id.to_string(), "channel_id": channel.to_string(), "content": "x" }),
        )
    }

    #[tokio::test]
    async fn the_outbox_keeps_order_bounds_batches_and_refuses_beyond_capacity() {
        let outbox = Outbox::open(3, None).unwrap();
        assert!(outbox.push(vec![create(1, 10), create(1, 11)]).is_empty());
        let refused = outbox.push(vec![create(1, 12), create(1, 13)]);
        assert_eq!(refused, vec![create(1, 13)]);
        assert_eq!(outbox.front(2).await, vec![create(1, 10), create(1, 11)]);
        outbox.ack(2);
        assert_eq!(outbox.front(100).await, vec![create(1, 12)]);
        outbox.ack(1);
        assert!(outbox.is_empty());
    }

    #[tokio::test]
    async fn the_spool_survives_a_restart_and_forgets_what_was_delivered() {
        let dir = tempfile::tempdir().unwrap();
        {
            let outbox = Outbox::open(10, Some(dir.path())).unwrap();
            outbox.push((0..5).map(|i| create(2, 20 + i)).collect());
            assert_eq!(outbox.front(2).await.len(), 2);
            outbox.ack(2);
        }
        // A crash in the middle of an append leaves a partial line: it is dropped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("outbox.jsonl"))
            .unwrap()
            .write_all(b"{\"type\":\"message.cr")
            .unwrap();
        let outbox = Outbox::open(10, Some(dir.path())).unwrap();
        assert_eq!(
            outbox.front(100).await,
            (2..5).map(|i| create(2, 20 + i)).collect::<Vec<_>>()
        );
        outbox.push(vec![create(2, 30)]);
        outbox.ack(4);
        assert!(outbox.is_empty());
        assert_eq!(
            std::fs::metadata(dir.path().join("outbox.jsonl"))
                .unwrap()
                .len(),
            0,
            "an empty queue starts the file over"
        );
        let outbox = Outbox::open(10, Some(dir.path())).unwrap();
        assert!(outbox.is_empty());
    }

    #[test]
    fn settings_values_are_checked() {
        assert_eq!(parse_channel_ids("1, 2;3\n2").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_channel_ids("").unwrap(), Vec::<u64>::new());
        assert!(parse_channel_ids("12,abc").is_err());
        assert!(parse_snowflake("0").is_err());
        assert!(parse_snowflake("123456789012345678901").is_err());
        assert_eq!(parse_snowflake(" 42 ").unwrap(), 42);
        assert!(check_ingest_url("http://127.0.0.1:8091/ingest/v1/events").is_ok());
        assert!(check_ingest_url("ftp://x/y").is_err());
        assert!(check_ingest_url("/ingest/v1/events").is_err());
    }

    #[test]
    fn a_partial_update_stays_partial_and_deletes_name_the_guild() {
        let event: MessageUpdateEvent = serde_json::from_value(json!({
            "id": "5", "channel_id": "6", "guild_id": "7", "embeds": [{"title": "link"}]
        }))
        .unwrap();
        let v = update_json(&event, 7);
        assert_eq!(v.get("content"), None);
        assert_eq!(v["embeds"][0]["title"], "link");
        assert_eq!(v["guild_id"], "7");
        assert_eq!(delete_json(6, 5, 7)["guild_id"], "7");
    }

    #[test]
    fn a_message_serialises_to_the_raw_shape_ingest_reads() {
        let m: Message = serde_json::from_value(json!({
            "id": "1100000000000000100", "channel_id": "6",
            "author": {"id": "9", "username": "caller", "global_name": "Caller", "discriminator": "0000", "avatar": null},
            "content": "BTC long", "timestamp": "2026-01-01T00:00:00+00:00",
            "edited_timestamp": "2026-01-01T00:05:00+00:00", "tts": false,
            "mention_everyone": false, "mentions": [], "mention_roles": [],
            "attachments": [{"id": "3", "filename": "chart.png", "size": 10, "url": "https://cdn.example/c.png", "proxy_url": "https://media.example/c.png"}],
            "embeds": [], "pinned": false, "type": 0
        }))
        .unwrap();
        let v = message_json(&m, 7);
        assert_eq!(v["id"], "1100000000000000100");
        assert_eq!(v["channel_id"], "6");
        assert_eq!(v["guild_id"], "7");
        assert_eq!(v["author"]["id"], "9");
        assert_eq!(v["author"]["global_name"], "Caller");
        assert_eq!(v["content"], "BTC long");
        assert_eq!(v["attachments"][0]["id"], "3");
        assert_eq!(v["attachments"][0]["url"], "https://cdn.example/c.png");
        let edited = time::OffsetDateTime::parse(
            v["edited_timestamp"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(edited, time::macros::datetime!(2026-01-01 00:05 UTC));
    }
}
