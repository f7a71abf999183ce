//! Exactly one live mirror per live signal and target channel, at the signal's latest revision.
//!
//! The mapping is the `mirrors` document `ids::derive("mirror", [signal, channel])`. Before any
//! message is sent it is written `pending` with the revision and a nonce stem derived from
//! (signal, channel, revision); part `i` is sent with nonce `{stem}-{i}` and `enforce_nonce`, so
//! a repeat within Discord's few-minute window returns the first message. A `pending` mapping
//! found later (a crash between send and save) is first resolved against the channel's recent
//! messages: the bot's own message with that nonce or, as fetched messages do not carry nonces
//! on real Discord, with exactly that part's content, sent after the mapping was written. Only
//! parts still missing are sent. Edits edit; a 404 on edit (deleted by hand) sends that part
//! again; deletes delete. 5xx and timeouts are retried here with backoff and jitter (serenity
//! retries only 429s); a missing channel or permission marks the mapping `failed` and is
//! returned, to be retried later rather than spun on.
//!
//! With a lease [`Fence`] (the bot's leader), every Discord call and mapping write first checks
//! that the lease still holds, mappings carry its generation, and a mapping written under a newer
//! generation is left alone: a leader that lost its lease stops touching anything.

use std::{sync::Arc, time::Duration};

use g3_appwrite::{Client, Document};
use g3_store::lease::Fence;
use g3_store::{
    Collection, Model,
    models::{AttachmentState, Mirror, MirrorState, Signal, SignalStatus},
    schema::{self, BUCKET_SIGNAL_ASSETS},
};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use serenity::{
    all::{
        ChannelId, CreateAllowedMentions, CreateAttachment, CreateMessage, EditAttachments,
        EditMessage, GetMessages, Message, MessageId, UserId,
    },
    http::Http,
    model::channel::Nonce,
};
use tokio::sync::OnceCell;
use tracing::instrument;

use crate::{
    discord::{self, Failure},
    render::{self, Part},
};

/// Discord's limit on attachments per message.
const MAX_FILES: usize = 10;

/// How Discord calls that fail transiently (5xx, timeouts, connection errors) are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            base: Duration::from_millis(250),
            max: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Exponential, capped, with up to 50 % random jitter so many callers do not retry in step.
    pub fn delay_for(&self, retry: u32) -> Duration {
        let exp = crate::exponential(self.base, self.max, retry);
        let jitter = rand::rng().random_range(0..=exp.as_millis() as u64 / 2);
        exp + Duration::from_millis(jitter)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The channel is gone or the bot may not post there; the mapping is `failed`.
    #[error("channel {channel} is unavailable: {reason}")]
    ChannelUnavailable { channel: u64, reason: String },
    /// Discord kept failing (after retries) or refused the request.
    #[error("discord: {0}")]
    Discord(String),
    #[error("appwrite: {0}")]
    Store(#[from] g3_appwrite::Error),
    /// The lease was lost, or a newer leader wrote the mapping: nothing more is done.
    #[error("not the leader: {0}")]
    Fenced(String),
}

/// What one call did, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Unchanged,
    Posted,
    Edited,
    /// Some part was missing (deleted by hand, or never sent) and was sent again.
    Repaired,
    Deleted,
}

impl Failure {
    fn into_error(self, channel: ChannelId) -> MirrorError {
        match self {
            Failure::Unavailable(reason) | Failure::UnknownChannel(reason) => {
                MirrorError::ChannelUnavailable {
                    channel: channel.get(),
                    reason,
                }
            }
            Failure::UnknownMessage => MirrorError::Discord("unknown message".into()),
            Failure::ReplyTargetGone => MirrorError::Discord("unknown referenced message".into()),
            Failure::Other(e) => MirrorError::Discord(e),
            Failure::Fenced(e) => MirrorError::Fenced(e),
        }
    }
}

/// The mapping's document id for a signal in a channel.
pub fn mirror_id(signal_id: &str, channel: ChannelId) -> String {
    g3_core::ids::derive("mirror", &[signal_id, &channel.to_string()])
}

/// The nonce stem of one revision: 22 hex characters, so `{stem}-{i}` fits Discord's 25.
pub fn nonce_stem(signal_id: &str, channel: ChannelId, revision: i64) -> String {
    stem_of(&[signal_id, &channel.to_string(), &revision.to_string()])
}

/// The stem for re-sending after `deleted` was removed by hand: not the stem that first sent it,
/// which Discord may still map to the deleted message.
fn repair_stem(signal_id: &str, channel: ChannelId, revision: i64, deleted: MessageId) -> String {
    stem_of(&[
        signal_id,
        &channel.to_string(),
        &revision.to_string(),
        &deleted.to_string(),
    ])
}

fn stem_of(parts: &[&str]) -> String {
    let mut stem = g3_core::ids::derive("nonce", parts);
    stem.truncate(22);
    stem
}

/// A mapping as stored, with the lease generation that wrote it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Fenced {
    #[serde(flatten)]
    mirror: Mirror,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fence: Option<i64>,
}

impl Model for Fenced {
    const COLLECTION: &'static str = schema::MIRRORS;
}

pub struct Mirrorer {
    http: Arc<Http>,
    appwrite: Client,
    retry: RetryPolicy,
    fence: Option<Fence>,
    /// Pages of 100 recent messages searched when resolving a pending mapping.
    scan_pages: u32,
    me: OnceCell<UserId>,
}

impl Mirrorer {
    pub fn new(http: Arc<Http>, appwrite: Client, retry: RetryPolicy) -> Self {
        Self {
            http,
            appwrite,
            retry,
            fence: None,
            scan_pages: 5,
            me: OnceCell::new(),
        }
    }

    /// Acts only while `fence`'s lease holds (see the module doc).
    pub fn with_fence(mut self, fence: Fence) -> Self {
        self.fence = Some(fence);
        self
    }

    /// `Err` once the lease no longer holds.
    fn guard(&self) -> Result<(), Failure> {
        discord::guard(self.fence.as_ref())
    }

    fn mirrors(&self) -> Collection<Mirror> {
        Collection::new(&self.appwrite)
    }

    /// The same documents with the lease generation that wrote them.
    fn fenced(&self) -> Collection<Fenced> {
        Collection::new(&self.appwrite)
    }

    /// The stored mapping of a signal in a channel, if any.
    pub async fn mapping(
        &self,
        signal_id: &str,
        channel: ChannelId,
    ) -> Result<Option<Document<Mirror>>, MirrorError> {
        Ok(self
            .mirrors()
            .get_optional(&mirror_id(signal_id, channel))
            .await?)
    }

    /// Brings the mirror of `signal` in `channel` to the signal's current state.
    pub async fn mirror(
        &self,
        signal: &Document<Signal>,
        channel: ChannelId,
    ) -> Result<Outcome, MirrorError> {
        self.mirror_with(signal, channel, false).await
    }

    /// Like [`Mirrorer::mirror`], and also checks that a mirror believed current still exists
    /// in Discord (one request per part): what reconciliation uses to repair hand deletions.
    pub async fn verify(
        &self,
        signal: &Document<Signal>,
        channel: ChannelId,
    ) -> Result<Outcome, MirrorError> {
        self.mirror_with(signal, channel, true).await
    }

    #[instrument(skip_all, fields(signal = %signal.id, channel = %channel, revision = signal.data.revision, verify))]
    async fn mirror_with(
        &self,
        signal: &Document<Signal>,
        channel: ChannelId,
        verify: bool,
    ) -> Result<Outcome, MirrorError> {
        let existing = self
            .fenced()
            .get_optional(&mirror_id(&signal.id, channel))
            .await?;
        if let (Some(doc), Some(fence)) = (&existing, &self.fence)
            && doc.data.fence.is_some_and(|f| f > fence.generation())
        {
            return Err(MirrorError::Fenced(format!(
                "the mapping was written under lease generation {:?}, ours is {}",
                doc.data.fence,
                fence.generation()
            )));
        }
        let existing = existing.map(|d| Document {
            id: d.id,
            sequence: d.sequence,
            collection_id: d.collection_id,
            database_id: d.database_id,
            created_at: d.created_at,
            updated_at: d.updated_at,
            permissions: d.permissions,
            data: d.data.mirror,
        });
        let result = self
            .converge(signal, channel, existing.as_ref(), verify)
            .await;
        if let Err(e) = &result {
            tracing::warn!(error = %e, "mirror failed");
            if !matches!(e, MirrorError::Fenced(_)) {
                self.record_error(signal, channel, e).await;
            }
        }
        result
    }

    async fn converge(
        &self,
        signal: &Document<Signal>,
        channel: ChannelId,
        existing: Option<&Document<Mirror>>,
        verify: bool,
    ) -> Result<Outcome, MirrorError> {
        let state = existing.map(|d| d.data.state);
        let mut slots: Vec<Option<MessageId>> = existing
            .map(|d| {
                d.data
                    .message_ids
                    .iter()
                    .map(|id| {
                        id.parse::<u64>()
                            .ok()
                            .filter(|v| *v != 0)
                            .map(MessageId::new)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let at_revision = existing.and_then(|d| d.data.revision);
        if let Some(doc) = existing
            && matches!(doc.data.state, MirrorState::Pending | MirrorState::Failed)
            && slots.iter().any(Option::is_none)
        {
            let current = (doc.data.revision == Some(signal.data.revision))
                .then(|| render::parts(&signal.data));
            self.resolve(channel, doc, current.as_deref(), &mut slots)
                .await?;
        }

        if signal.data.status == SignalStatus::Deleted {
            if existing.is_none() || state == Some(MirrorState::Deleted) {
                return Ok(Outcome::Unchanged);
            }
            for id in slots.iter().flatten() {
                self.delete(channel, *id).await?;
            }
            self.save(signal, channel, MirrorState::Deleted, &[], None)
                .await?;
            return Ok(Outcome::Deleted);
        }

        let parts = render::parts(&signal.data);
        let target = signal.data.revision;
        if state == Some(MirrorState::Deleted) {
            // A signal that came back: its old messages were deleted.
            slots.clear();
        }
        let mut deleted_by_hand: Option<MessageId> = None;
        if verify && at_revision == Some(target) {
            for slot in slots.iter_mut() {
                if let Some(id) = *slot
                    && !self.exists(channel, id).await?
                {
                    tracing::info!(message = %id, "mirror deleted by hand: posting it again");
                    deleted_by_hand.get_or_insert(id);
                    *slot = None;
                }
            }
        }
        if state == Some(MirrorState::Posted)
            && at_revision == Some(target)
            && slots.len() == parts.len()
            && slots.iter().all(Option::is_some)
        {
            return Ok(Outcome::Unchanged);
        }

        let files = self.files(&signal.data).await?;
        let mut outcome = Outcome::Unchanged;
        if at_revision != Some(target) {
            for (i, part) in parts.iter().enumerate() {
                let Some(Some(id)) = slots.get(i).copied() else {
                    continue;
                };
                let part_files = if i == 0 { files.as_slice() } else { &[] };
                if self.edit(channel, id, part, part_files).await? {
                    outcome = Outcome::Edited;
                } else {
                    // Deleted by hand: send this part again below.
                    deleted_by_hand.get_or_insert(id);
                    slots[i] = None;
                }
            }
        }
        while slots.len() > parts.len() {
            if let Some(Some(id)) = slots.pop() {
                self.delete(channel, id).await?;
            }
        }
        let fresh = slots.is_empty();
        slots.resize(parts.len(), None);

        // An interrupted send keeps its stem: whatever it sent is then found by Discord's nonce
        // check even if the signal was edited since (and edited below to the new text).
        let stem = match existing {
            Some(doc) if matches!(state, Some(MirrorState::Pending | MirrorState::Failed)) => doc
                .data
                .nonce
                .clone()
                .unwrap_or_else(|| nonce_stem(&signal.id, channel, target)),
            _ => match deleted_by_hand {
                Some(id) => repair_stem(&signal.id, channel, target, id),
                None => nonce_stem(&signal.id, channel, target),
            },
        };
        if slots.iter().any(Option::is_none) {
            // Durable intent first: a crash from here on is resolved by nonce, not re-sent.
            self.save(signal, channel, MirrorState::Pending, &slots, Some(&stem))
                .await?;
            for (i, part) in parts.iter().enumerate() {
                if slots[i].is_some() {
                    continue;
                }
                let part_files = if i == 0 { files.as_slice() } else { &[] };
                let sent = self
                    .send(channel, part, part_files, format!("{stem}-{i}"))
                    .await?;
                if sent.content != part.content {
                    // Discord returned an earlier revision's message for this nonce.
                    self.edit(channel, sent.id, part, part_files).await?;
                }
                slots[i] = Some(sent.id);
            }
            outcome = if fresh && existing.is_none() {
                Outcome::Posted
            } else {
                Outcome::Repaired
            };
        }
        self.save(signal, channel, MirrorState::Posted, &slots, Some(&stem))
            .await?;
        if outcome == Outcome::Unchanged {
            // A pending mapping whose messages were all found.
            outcome = Outcome::Repaired;
        }
        Ok(outcome)
    }

    /// Fills the missing parts of a pending mapping from the channel's recent messages.
    async fn resolve(
        &self,
        channel: ChannelId,
        doc: &Document<Mirror>,
        parts: Option<&[Part]>,
        slots: &mut [Option<MessageId>],
    ) -> Result<(), MirrorError> {
        let (Some(stem), Some(_)) = (doc.data.nonce.as_deref(), doc.data.revision) else {
            return Ok(());
        };
        let me = self.me(channel).await?;
        let since = doc.updated_at.unix_timestamp() - 60;
        let mut before: Option<MessageId> = None;
        for _ in 0..self.scan_pages {
            let mut query = GetMessages::new().limit(100);
            if let Some(b) = before {
                query = query.before(b);
            }
            let page: Vec<Message> = self
                .call(channel, || channel.messages(&self.http, query))
                .await
                .map_err(|f| f.into_error(channel))?;
            for m in &page {
                let nonce = match &m.nonce {
                    Some(Nonce::String(s)) => Some(s.clone()),
                    Some(Nonce::Number(n)) => Some(n.to_string()),
                    None => None,
                };
                if m.author.id != me || slots.contains(&Some(m.id)) {
                    continue;
                }
                let recent = m.timestamp.unix_timestamp() >= since;
                let found = (0..slots.len()).find(|&i| {
                    slots[i].is_none()
                        && (nonce.as_deref() == Some(&format!("{stem}-{i}"))
                            || (recent
                                && parts.and_then(|p| p.get(i)).is_some_and(|p| {
                                    p.content == m.content
                                        && p.embed.is_some() != m.embeds.is_empty()
                                })))
                });
                if let Some(i) = found {
                    tracing::info!(part = i, message = %m.id, "pending mirror part found in the channel");
                    slots[i] = Some(m.id);
                }
            }
            let oldest = page.last().map(|m| (m.id, m.timestamp.unix_timestamp()));
            match oldest {
                Some((id, at)) if page.len() == 100 && at >= since => before = Some(id),
                _ => break,
            }
        }
        Ok(())
    }

    async fn me(&self, channel: ChannelId) -> Result<UserId, MirrorError> {
        self.me
            .get_or_try_init(|| async {
                discord::current_user(&self.http, &self.retry, self.fence.as_ref(), channel)
                    .await
                    .map_err(|f| f.into_error(channel))
            })
            .await
            .copied()
    }

    /// Stored attachments, read from Appwrite Storage (never Discord's expiring CDN links).
    async fn files(&self, signal: &Signal) -> Result<Vec<CreateAttachment>, MirrorError> {
        let mut out = Vec::new();
        for a in signal.attachment_refs() {
            let (AttachmentState::Stored, Some(file_id)) = (a.state, a.file_id.as_deref()) else {
                continue;
            };
            if out.len() == MAX_FILES {
                tracing::warn!(attachment = %a.id, "more than 10 attachments: the rest are not mirrored");
                break;
            }
            match self
                .appwrite
                .storage()
                .view(BUCKET_SIGNAL_ASSETS, file_id, None)
                .await
            {
                Ok(content) => {
                    out.push(CreateAttachment::bytes(content.bytes.to_vec(), a.filename))
                }
                Err(e) if e.is_not_found() => {
                    tracing::warn!(file_id, "stored attachment is gone: mirrored without it");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    async fn send(
        &self,
        channel: ChannelId,
        part: &Part,
        files: &[CreateAttachment],
        nonce: String,
    ) -> Result<Message, MirrorError> {
        let message = self
            .call(channel, || {
                let mut b = CreateMessage::new()
                    .content(part.content.clone())
                    .allowed_mentions(CreateAllowedMentions::new())
                    .nonce(Nonce::String(nonce.clone()))
                    .enforce_nonce(true);
                if let Some(e) = &part.embed {
                    b = b.embed(e.clone());
                }
                for f in files {
                    b = b.add_file(f.clone());
                }
                channel.send_message(&self.http, b)
            })
            .await
            .map_err(|f| f.into_error(channel))?;
        Ok(message)
    }

    /// `Ok(false)` when the message no longer exists.
    async fn edit(
        &self,
        channel: ChannelId,
        id: MessageId,
        part: &Part,
        files: &[CreateAttachment],
    ) -> Result<bool, MirrorError> {
        let result = self
            .call(channel, || {
                let mut attachments = EditAttachments::new();
                for f in files {
                    attachments = attachments.add(f.clone());
                }
                let b = EditMessage::new()
                    .content(part.content.clone())
                    .embeds(part.embed.iter().cloned().collect())
                    .allowed_mentions(CreateAllowedMentions::new())
                    .attachments(attachments);
                channel.edit_message(&self.http, id, b)
            })
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(Failure::UnknownMessage) => Ok(false),
            Err(f) => Err(f.into_error(channel)),
        }
    }

    async fn exists(&self, channel: ChannelId, id: MessageId) -> Result<bool, MirrorError> {
        match self.call(channel, || channel.message(&self.http, id)).await {
            Ok(_) => Ok(true),
            Err(Failure::UnknownMessage) => Ok(false),
            Err(f) => Err(f.into_error(channel)),
        }
    }

    /// Deletes a mirror for good: its messages (already gone ones, or a deleted channel, count
    /// as deleted), then its mapping. Used when its channel is no longer a target.
    pub async fn remove(&self, mirror: &Document<Mirror>) -> Result<(), MirrorError> {
        if let Some(channel) = crate::snowflake(&mirror.data.target_channel_id).map(ChannelId::new)
        {
            for id in mirror
                .data
                .message_ids
                .iter()
                .filter_map(|m| crate::snowflake(m))
            {
                match self
                    .call(channel, || {
                        channel.delete_message(&self.http, MessageId::new(id))
                    })
                    .await
                {
                    Ok(()) | Err(Failure::UnknownMessage) => {}
                    Err(Failure::UnknownChannel(_)) => break,
                    Err(f) => return Err(f.into_error(channel)),
                }
            }
        }
        self.mirrors().delete_if_exists(&mirror.id).await?;
        Ok(())
    }

    /// A message that is already gone counts as deleted.
    async fn delete(&self, channel: ChannelId, id: MessageId) -> Result<(), MirrorError> {
        match self
            .call(channel, || channel.delete_message(&self.http, id))
            .await
        {
            Ok(()) | Err(Failure::UnknownMessage) => Ok(()),
            Err(f) => Err(f.into_error(channel)),
        }
    }

    /// One Discord call with transient failures retried ([`discord::call`]).
    async fn call<T, F, Fut>(&self, channel: ChannelId, f: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = serenity::Result<T>>,
    {
        discord::call(&self.retry, self.fence.as_ref(), channel, f).await
    }

    async fn save(
        &self,
        signal: &Document<Signal>,
        channel: ChannelId,
        state: MirrorState,
        slots: &[Option<MessageId>],
        nonce: Option<&str>,
    ) -> Result<(), MirrorError> {
        let mirror = Mirror {
            signal_id: signal.id.clone(),
            target_channel_id: channel.to_string(),
            message_ids: slots
                .iter()
                .map(|s| s.map(|id| id.to_string()).unwrap_or_default())
                .collect(),
            revision: Some(signal.data.revision),
            state,
            nonce: nonce.map(str::to_owned),
            last_error: None,
        };
        self.guard().map_err(|f| f.into_error(channel))?;
        let stored = Fenced {
            mirror,
            fence: self.fence.as_ref().map(Fence::generation),
        };
        self.fenced()
            .upsert(&mirror_id(&signal.id, channel), &stored, None)
            .await?;
        Ok(())
    }

    /// Keeps the failure on the mapping (best effort: the caller has the error anyway).
    async fn record_error(
        &self,
        signal: &Document<Signal>,
        channel: ChannelId,
        error: &MirrorError,
    ) {
        let mut patch = serde_json::json!({ "last_error": error.to_string().chars().take(1000).collect::<String>() });
        if matches!(error, MirrorError::ChannelUnavailable { .. }) {
            patch["state"] = "failed".into();
        }
        let id = mirror_id(&signal.id, channel);
        let result = match self.mirrors().update(&id, &patch, None).await {
            Err(e) if e.is_not_found() => {
                let mirror = Mirror {
                    signal_id: signal.id.clone(),
                    target_channel_id: channel.to_string(),
                    message_ids: Vec::new(),
                    revision: None,
                    state: MirrorState::Failed,
                    nonce: None,
                    last_error: Some(error.to_string().chars().take(1000).collect()),
                };
                self.mirrors()
                    .create_if_absent(&id, &mirror, None)
                    .await
                    .map(drop)
            }
            other => other.map(drop),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not record the mirror failure");
        }
    }
}
