//! Replies in Discord when the tracker records that a mirrored signal hit a target or its stop
//! ("TP1 hit +2.4% (+1.2R)", "Stopped −1R (−3.1%)"), as a reply (`message_reference`) to the
//! first message of each of the signal's mirrors. [`events`] decides which events get one and
//! words them, [`follow`] follows `signal_outcomes`, and [`Replier`] sends each reply once.
//!
//! The rules:
//! - One reply per mirror (signal + customer channel) and event: TP*n* by target index, the
//!   stop, the stop before entry, the time limit; never for the entry (see [`events`]). A
//!   tracker that judges again (an edit, a replay) never brings a second reply for the same key.
//! - Only for events at or after the mirror's first write (`mirrors.$createdAt`), and at most
//!   [`MAX_AGE`] old when sent: after downtime the bot replies to what it missed within the last
//!   24 hours and drops older events.
//! - None once the signal is deleted (or its outcome records a deletion) or its mirror is
//!   deleted; none while the mirror is not posted yet (tried again later); and none when the
//!   mirrored message was deleted by hand (Discord refuses the reply: recorded as skipped).
//!
//! Exactly once, as for mirrors: the `outcome_replies` document
//! `ids::derive("outcome_reply", [signal, channel, event])` is created `pending`, with the text,
//! the message replied to and a nonce, before anything is sent; the reply goes with that nonce
//! and `enforce_nonce`, so a repeat within Discord's window returns the first reply. A `pending`
//! record found later (the process died between recording and saving) is first looked for in
//! the channel: the bot's own message that replies to that message with that text, sent after
//! the record was written (fetched messages carry no nonce). Only if none is found is it sent,
//! with the same nonce. Sending goes through the bot's Discord path (`discord.rs`): the
//! shared `Http` and its rate limiter, transient failures retried, every call and write gated on
//! the lease's [`Fence`], and a record written under a newer lease generation left alone.

pub mod events;
pub mod follow;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use g3_appwrite::{Client, Document, Query};
use g3_outcomes::Outcome;
use g3_store::{
    Collection, Model,
    lease::Fence,
    models::{
        Mirror, MirrorState, OutcomeReply, OutcomeReplyState, Signal, SignalOutcome, SignalStatus,
    },
    schema,
};
use serde::{Deserialize, Serialize};
use serenity::{
    all::{
        ChannelId, CreateAllowedMentions, CreateMessage, GetMessages, Message, MessageId,
        MessageReference, MessageReferenceKind, UserId,
    },
    http::Http,
    model::channel::Nonce,
};
use time::{Duration, OffsetDateTime};
use tokio::sync::OnceCell;
use tracing::instrument;

use crate::{
    discord::{self, Failure},
    mirror::RetryPolicy,
};
use events::{Due, Event};

/// The oldest event a reply is still sent for (see the module doc).
pub const MAX_AGE: Duration = Duration::hours(24);

/// The reply record's id for one mirror (signal + channel) and event key.
pub fn reply_id(signal_id: &str, channel: ChannelId, key: &str) -> String {
    g3_core::ids::derive("outcome_reply", &[signal_id, &channel.to_string(), key])
}

/// The nonce a reply is sent with: 25 hex characters, Discord's limit.
pub fn reply_nonce(signal_id: &str, channel: ChannelId, key: &str) -> String {
    let mut nonce = g3_core::ids::derive(
        "outcome_reply_nonce",
        &[signal_id, &channel.to_string(), key],
    );
    nonce.truncate(25);
    nonce
}

#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("appwrite: {0}")]
    Store(#[from] g3_appwrite::Error),
    /// The lease was lost, or a newer leader wrote the record: nothing more is done.
    #[error("not the leader: {0}")]
    Fenced(String),
}

/// What one pass over an outcome did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Replies sent (or found sent) in this pass.
    pub sent: usize,
    /// Something could not be settled yet (a mirror not posted, a channel refusing, Discord
    /// failing): the outcome should be handled again later.
    pub retry: bool,
}

/// A record as stored, with the lease generation that wrote it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Fenced {
    #[serde(flatten)]
    reply: OutcomeReply,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fence: Option<i64>,
}

impl Model for Fenced {
    const COLLECTION: &'static str = schema::OUTCOME_REPLIES;
}

/// What may be done for one mirror and event.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// Reply to this message.
    Send(MessageId),
    /// The mirror is not posted yet: later.
    Wait,
    /// Never: a pending record (if any) is found in the channel or marked skipped for this.
    Never(&'static str),
}

/// How one mirror and event ended this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Sent,
    Settled,
    Retry,
}

/// Event keys of a signal with nothing left to do, and the newest event's time (to forget
/// the entry once that is past [`MAX_AGE`]).
struct Settled {
    keys: HashSet<String>,
    newest: OffsetDateTime,
}

/// Sends outcome replies, each once (see the module doc).
pub struct Replier {
    http: Arc<Http>,
    appwrite: Client,
    retry: RetryPolicy,
    fence: Option<Fence>,
    max_age: Duration,
    /// Pages of 100 recent messages searched for a pending reply.
    scan_pages: u32,
    me: OnceCell<UserId>,
    /// What earlier passes settled, so the tracker's progress writes cost no reads.
    settled: Mutex<HashMap<String, Settled>>,
    /// Signals with records a previous run left pending or failed: their events are looked
    /// at whatever their age, so those records are settled too.
    unsettled: Mutex<HashSet<String>>,
}

impl Replier {
    pub fn new(http: Arc<Http>, appwrite: Client, retry: RetryPolicy) -> Self {
        Self {
            http,
            appwrite,
            retry,
            fence: None,
            max_age: MAX_AGE,
            scan_pages: 5,
            me: OnceCell::new(),
            settled: Mutex::new(HashMap::new()),
            unsettled: Mutex::new(HashSet::new()),
        }
    }

    /// Acts only while `fence`'s lease holds (see the module doc).
    pub fn with_fence(mut self, fence: Fence) -> Self {
        self.fence = Some(fence);
        self
    }

    /// Records of `signal_id` may be left pending or failed by an earlier run.
    pub fn note_unsettled(&self, signal_id: &str) {
        self.unsettled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(signal_id.to_owned());
    }

    fn records(&self) -> Collection<Fenced> {
        Collection::new(&self.appwrite)
    }

    /// The events of `outcome` (of signal `id`) that may still need a reply: not settled by an
    /// earlier pass, and within the age limit (any age for a signal with records left unsettled).
    fn todo(&self, id: &str, outcome: &Outcome, now: OffsetDateTime) -> Vec<Event> {
        let revisit = self
            .unsettled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(id);
        let settled = self.settled.lock().unwrap_or_else(|e| e.into_inner());
        let done = settled.get(id).map(|s| &s.keys);
        events::events(outcome)
            .into_iter()
            .filter(|e| done.is_none_or(|d| !d.contains(&e.key())))
            .filter(|e| revisit || now - e.at <= self.max_age)
            .collect()
    }

    /// Whether [`Replier::handle`] would have anything to do for `doc`, without a read: the
    /// tracker's progress writes are many, and most bring no new event.
    pub fn has_news(&self, doc: &Document<SignalOutcome>, now: OffsetDateTime) -> bool {
        parse(doc).is_some_and(|o| !self.todo(&doc.id, &o, now).is_empty())
    }

    /// Replies to every mirror of the outcome's signal for each event that is due and not
    /// replied to yet; settles records left pending. `now` is the wall clock.
    #[instrument(skip_all, fields(signal = %doc.id))]
    pub async fn handle(
        &self,
        doc: &Document<SignalOutcome>,
        now: OffsetDateTime,
    ) -> Result<Pass, ReplyError> {
        let Some(outcome) = parse(doc) else {
            return Ok(Pass::default());
        };
        let todo = self.todo(&doc.id, &outcome, now);
        if todo.is_empty() {
            return Ok(Pass::default());
        }
        let signal = Collection::<Signal>::new(&self.appwrite)
            .get_optional(&doc.id)
            .await?;
        let deleted = outcome.deleted_at.is_some()
            || doc.data.deleted_at.is_some()
            || signal
                .as_ref()
                .is_none_or(|s| s.data.status == SignalStatus::Deleted);
        let mirrors = Collection::<Mirror>::new(&self.appwrite)
            .list_all(&[Query::equal("signal_id", [doc.id.as_str()])], 100)
            .await?;
        let mut pass = Pass::default();
        let mut open: HashSet<String> = HashSet::new();
        for mirror in &mirrors {
            let Some(channel) =
                crate::snowflake(&mirror.data.target_channel_id).map(ChannelId::new)
            else {
                continue;
            };
            for event in &todo {
                let decision = decide(mirror, event, deleted, now, self.max_age);
                match self.settle(&doc.id, channel, event, decision).await? {
                    Step::Sent => pass.sent += 1,
                    Step::Settled => {}
                    Step::Retry => {
                        pass.retry = true;
                        open.insert(event.key());
                    }
                }
            }
        }
        let mut settled = self.settled.lock().unwrap_or_else(|e| e.into_inner());
        let entry = settled.entry(doc.id.clone()).or_insert_with(|| Settled {
            keys: HashSet::new(),
            newest: OffsetDateTime::UNIX_EPOCH,
        });
        for event in &todo {
            if !open.contains(&event.key()) {
                entry.keys.insert(event.key());
                entry.newest = entry.newest.max(event.at);
            }
        }
        let max_age = self.max_age;
        settled.retain(|_, s| now - s.newest <= max_age);
        if !pass.retry {
            self.unsettled
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&doc.id);
        }
        Ok(pass)
    }

    /// Brings one mirror's reply to one event to its end: sent once, or settled without.
    #[instrument(skip_all, fields(channel = %channel, event = %event.key()))]
    async fn settle(
        &self,
        signal_id: &str,
        channel: ChannelId,
        event: &Event,
        decision: Decision,
    ) -> Result<Step, ReplyError> {
        let key = event.key();
        let id = reply_id(signal_id, channel, &key);
        let existing = self.records().get_optional(&id).await?;
        if let (Some(doc), Some(fence)) = (&existing, &self.fence)
            && doc.data.fence.is_some_and(|f| f > fence.generation())
        {
            return Err(ReplyError::Fenced(format!(
                "the reply was recorded under lease generation {:?}, ours is {}",
                doc.data.fence,
                fence.generation()
            )));
        }
        let (record, created_at) = match existing {
            Some(doc) => match doc.data.reply.state {
                OutcomeReplyState::Posted | OutcomeReplyState::Skipped => {
                    return Ok(Step::Settled);
                }
                OutcomeReplyState::Pending | OutcomeReplyState::Failed => {
                    (doc.data.reply, doc.created_at)
                }
            },
            None => {
                let reply_to = match decision {
                    Decision::Send(to) => to,
                    Decision::Wait => return Ok(Step::Retry),
                    Decision::Never(_) => return Ok(Step::Settled),
                };
                let record = OutcomeReply {
                    signal_id: signal_id.to_owned(),
                    target_channel_id: channel.to_string(),
                    event: key.clone(),
                    event_at: event.at,
                    reply_to: reply_to.to_string(),
                    content: event.text.clone(),
                    message_id: None,
                    state: OutcomeReplyState::Pending,
                    nonce: reply_nonce(signal_id, channel, &key),
                    last_error: None,
                };
                // Durable intent first: from here on a crash is resolved, not sent twice.
                self.save(&id, &record).await?;
                return self.send(&id, channel, record).await;
            }
        };
        if record.state == OutcomeReplyState::Pending {
            match self.find(channel, &record, created_at).await {
                Ok(Some(found)) => {
                    tracing::info!(message = %found, "pending reply found in the channel");
                    let posted = OutcomeReply {
                        message_id: Some(found.to_string()),
                        state: OutcomeReplyState::Posted,
                        last_error: None,
                        ..record
                    };
                    self.save(&id, &posted).await?;
                    return Ok(Step::Sent);
                }
                Ok(None) => {}
                Err(failure) => return self.failed(&id, record, failure).await,
            }
        }
        match decision {
            Decision::Send(_) => self.send(&id, channel, record).await,
            Decision::Wait => Ok(Step::Retry),
            Decision::Never(why) => {
                self.skip(&id, record, why).await?;
                Ok(Step::Settled)
            }
        }
    }

    /// Sends a recorded reply (with its own text, target and nonce) and saves the result.
    async fn send(
        &self,
        id: &str,
        channel: ChannelId,
        record: OutcomeReply,
    ) -> Result<Step, ReplyError> {
        let Some(to) = crate::snowflake(&record.reply_to).map(MessageId::new) else {
            self.skip(id, record, "no message to reply to").await?;
            return Ok(Step::Settled);
        };
        let result = discord::call(&self.retry, self.fence.as_ref(), channel, || {
            let reference = MessageReference::new(MessageReferenceKind::Default, channel)
                .message_id(to)
                .fail_if_not_exists(true);
            let message = CreateMessage::new()
                .content(record.content.clone())
                .allowed_mentions(CreateAllowedMentions::new())
                .nonce(Nonce::String(record.nonce.clone()))
                .enforce_nonce(true)
                .reference_message(reference);
            channel.send_message(&self.http, message)
        })
        .await;
        match result {
            Ok(sent) => {
                tracing::info!(message = %sent.id, "outcome reply sent");
                let posted = OutcomeReply {
                    message_id: Some(sent.id.to_string()),
                    state: OutcomeReplyState::Posted,
                    last_error: None,
                    ..record
                };
                self.save(id, &posted).await?;
                Ok(Step::Sent)
            }
            Err(Failure::ReplyTargetGone | Failure::UnknownMessage) => {
                self.skip(id, record, "the mirrored message is gone")
                    .await?;
                Ok(Step::Settled)
            }
            Err(failure) => self.failed(id, record, failure).await,
        }
    }

    /// Keeps a failure on the record: `failed` when the channel refuses, still `pending` when
    /// Discord failed (the reply may have been taken). The caller tries again later.
    async fn failed(
        &self,
        id: &str,
        record: OutcomeReply,
        failure: Failure,
    ) -> Result<Step, ReplyError> {
        let (state, error) = match failure {
            Failure::Fenced(e) => return Err(ReplyError::Fenced(e)),
            Failure::UnknownChannel(e) | Failure::Unavailable(e) => (OutcomeReplyState::Failed, e),
            Failure::Other(e) => (record.state, e),
            Failure::UnknownMessage | Failure::ReplyTargetGone => {
                (record.state, "unknown message".to_owned())
            }
        };
        tracing::warn!(error = %error, "outcome reply not sent; tried again later");
        let kept = OutcomeReply {
            state,
            last_error: Some(error.chars().take(1000).collect()),
            ..record
        };
        self.save(id, &kept).await?;
        Ok(Step::Retry)
    }

    async fn skip(&self, id: &str, record: OutcomeReply, why: &str) -> Result<(), ReplyError> {
        tracing::info!(why, "outcome reply skipped");
        let skipped = OutcomeReply {
            state: OutcomeReplyState::Skipped,
            last_error: Some(why.to_owned()),
            ..record
        };
        self.save(id, &skipped).await
    }

    /// Writes the record under the lease's generation, unless the lease is gone.
    async fn save(&self, id: &str, record: &OutcomeReply) -> Result<(), ReplyError> {
        if let Some(why) = discord::lapsed(self.fence.as_ref()) {
            return Err(ReplyError::Fenced(why));
        }
        let stored = Fenced {
            reply: record.clone(),
            fence: self.fence.as_ref().map(Fence::generation),
        };
        self.records().upsert(id, &stored, None).await?;
        Ok(())
    }

    /// The bot's own reply to `record.reply_to` with `record`'s text (or nonce) among the
    /// channel's messages since the record was written, if Discord has it.
    async fn find(
        &self,
        channel: ChannelId,
        record: &OutcomeReply,
        recorded_at: OffsetDateTime,
    ) -> Result<Option<MessageId>, Failure> {
        let me = *self
            .me
            .get_or_try_init(|| {
                discord::current_user(&self.http, &self.retry, self.fence.as_ref(), channel)
            })
            .await?;
        let to = crate::snowflake(&record.reply_to).map(MessageId::new);
        let since = recorded_at.unix_timestamp() - 60;
        let mut before: Option<MessageId> = None;
        for _ in 0..self.scan_pages {
            let mut query = GetMessages::new().limit(100);
            if let Some(b) = before {
                query = query.before(b);
            }
            let page: Vec<Message> =
                discord::call(&self.retry, self.fence.as_ref(), channel, || {
                    channel.messages(&self.http, query)
                })
                .await?;
            let found = page.iter().find(|m| {
                let nonce = match &m.nonce {
                    Some(Nonce::String(s)) => Some(s.as_str()),
                    _ => None,
                };
                m.author.id == me
                    && m.timestamp.unix_timestamp() >= since
                    && (nonce == Some(record.nonce.as_str())
                        || (m.content == record.content
                            && m.message_reference.as_ref().and_then(|r| r.message_id) == to))
            });
            if let Some(m) = found {
                return Ok(Some(m.id));
            }
            match page.last() {
                Some(oldest) if page.len() == 100 && oldest.timestamp.unix_timestamp() >= since => {
                    before = Some(oldest.id);
                }
                _ => break,
            }
        }
        Ok(None)
    }
}

/// The tracker's outcome in `doc`; `None` (logged) when it does not read as one.
fn parse(doc: &Document<SignalOutcome>) -> Option<Outcome> {
    serde_json::from_str(&doc.data.outcome)
        .inspect_err(|e| {
            tracing::warn!(signal = %doc.id, error = %e, "outcome unreadable: no replies for it")
        })
        .ok()
}

/// What may be done for `mirror` and `event` (see the module doc's rules).
fn decide(
    mirror: &Document<Mirror>,
    event: &Event,
    signal_deleted: bool,
    now: OffsetDateTime,
    max_age: Duration,
) -> Decision {
    if signal_deleted {
        return Decision::Never("the signal was deleted");
    }
    if mirror.data.state == MirrorState::Deleted {
        return Decision::Never("the mirror was deleted");
    }
    match events::due(event.at, mirror.created_at, now, max_age) {
        Due::BeforeMirror => return Decision::Never("the event came before the mirror"),
        Due::TooOld => return Decision::Never("the event is too old to reply to"),
        Due::Yes => {}
    }
    let first = mirror
        .data
        .message_ids
        .first()
        .and_then(|m| crate::snowflake(m));
    match (mirror.data.state, first) {
        (MirrorState::Posted, Some(id)) => Decision::Send(MessageId::new(id)),
        _ => Decision::Wait,
    }
}
