//! Typed documents of the product's collections, one struct per collection of `schema.rs`.
//! Field names are the attribute keys; optional attributes are `Option` (Appwrite returns null).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Optional datetimes in Appwrite's format (`2024-05-01T12:34:56.789+00:00`), null when unset.
pub use g3_appwrite::datetime::optional as opt_time;
/// Required datetimes in Appwrite's format.
pub use g3_appwrite::datetime::required as req_time;

/// Array attributes that were never written may come back as null: read that as empty.
pub mod null_vec {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Vec<T>, D::Error> {
        Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    Active,
    /// Cancelled by the customer: access runs until `period_end`.
    Cancelled,
    Revoked,
    Expired,
}

/// `subscriptions`: one per customer email and plan (id from `ids::subscription`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub email: String,
    pub user_id: Option<String>,
    pub plan: String,
    pub status: SubscriptionStatus,
    pub sellapp_order_id: Option<String>,
    pub sellapp_subscription_id: Option<String>,
    #[serde(with = "opt_time", default)]
    pub period_end: Option<OffsetDateTime>,
    #[serde(with = "opt_time", default)]
    pub granted_at: Option<OffsetDateTime>,
    #[serde(with = "opt_time", default)]
    pub revoked_at: Option<OffsetDateTime>,
    pub reason: Option<String>,
    /// JSON array of [`HistoryEntry`], oldest first.
    pub history: Option<String>,
}

/// One change in a subscription's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    #[serde(with = "req_time")]
    pub at: OffsetDateTime,
    /// The webhook delivery id, or `ops:<actor>` / `job:<name>`: what caused it.
    pub cause: String,
    pub status: SubscriptionStatus,
    pub detail: String,
}

impl Subscription {
    /// Oldest first; unreadable history (hand-edited) reads as empty rather than failing.
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.history
            .as_deref()
            .and_then(|h| serde_json::from_str(h).ok())
            .unwrap_or_default()
    }

    /// Appends an entry unless the same cause is already recorded, keeping the newest 100.
    pub fn push_history(&mut self, entry: HistoryEntry) -> bool {
        let mut history = self.history();
        if history
            .iter()
            .any(|h| h.cause == entry.cause && h.status == entry.status)
        {
            return false;
        }
        history.push(entry);
        let skip = history.len().saturating_sub(100);
        self.history = serde_json::to_string(&history[skip..]).ok();
        true
    }

    /// Does this subscription give access at `now`?
    pub fn grants_access(&self, now: OffsetDateTime) -> bool {
        match self.status {
            SubscriptionStatus::Active => self.period_end.is_none_or(|end| end > now),
            SubscriptionStatus::Cancelled => self.period_end.is_some_and(|end| end > now),
            SubscriptionStatus::Revoked | SubscriptionStatus::Expired => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    Received,
    Processed,
    Ignored,
    Failed,
}

/// `webhook_events`: the idempotency record of one delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    pub event: String,
    pub order_id: Option<String>,
    pub store_id: Option<String>,
    pub email: Option<String>,
    pub status: EventStatus,
    #[serde(with = "req_time")]
    pub received_at: OffsetDateTime,
    #[serde(with = "opt_time", default)]
    pub processed_at: Option<OffsetDateTime>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureState {
    Pending,
    Retrying,
    Resolved,
    Dead,
}

/// `webhook_failures`: a delivery that could not be applied, with enough to replay it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookFailure {
    pub event_id: String,
    pub event: Option<String>,
    pub email: Option<String>,
    pub payload: Option<String>,
    /// JSON object of the headers needed to verify and replay.
    pub headers: Option<String>,
    pub error: Option<String>,
    pub attempts: Option<i64>,
    #[serde(with = "opt_time", default)]
    pub next_retry_at: Option<OffsetDateTime>,
    pub state: FailureState,
}

/// `audit_log`: who changed what, when, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    #[serde(with = "req_time")]
    pub at: OffsetDateTime,
}

/// `role_state`: the Discord role a customer should have, and what was last applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleState {
    pub user_id: String,
    pub discord_user_id: Option<String>,
    #[serde(default)]
    pub applied_discord_user_id: Option<String>,
    pub role_id: String,
    pub desired: bool,
    pub applied: Option<bool>,
    pub reason: Option<String>,
    pub last_error: Option<String>,
    pub attempts: Option<i64>,
    #[serde(with = "opt_time", default)]
    pub applied_at: Option<OffsetDateTime>,
    #[serde(with = "opt_time", default)]
    pub next_retry_at: Option<OffsetDateTime>,
}

/// `discord_links`: the Discord account a customer linked. The document id is the Appwrite user
/// id; a unique index keeps one Discord account to one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscordLink {
    pub discord_user_id: String,
    #[serde(default)]
    pub discord_username: Option<String>,
    #[serde(with = "req_time")]
    pub linked_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn sub(status: SubscriptionStatus, period_end: Option<OffsetDateTime>) -> Subscription {
        Subscription {
            email: "a@b.co".into(),
            user_id: None,
            plan: "vip".into(),
            status,
            sellapp_order_id: None,
            sellapp_subscription_id: None,
            period_end,
            granted_at: None,
            revoked_at: None,
            reason: None,
            history: None,
        }
    }

    #[test]
    fn access_follows_status_and_period() {
        let now = datetime!(2026-03-01 00:00 UTC);
        let later = Some(datetime!(2026-04-01 00:00 UTC));
        let earlier = Some(datetime!(2026-02-01 00:00 UTC));
        assert!(sub(SubscriptionStatus::Active, None).grants_access(now));
        assert!(sub(SubscriptionStatus::Active, later).grants_access(now));
        assert!(!sub(SubscriptionStatus::Active, earlier).grants_access(now));
        assert!(sub(SubscriptionStatus::Cancelled, later).grants_access(now));
        assert!(!sub(SubscriptionStatus::Cancelled, earlier).grants_access(now));
        assert!(!sub(SubscriptionStatus::Cancelled, None).grants_access(now));
        assert!(!sub(SubscriptionStatus::Revoked, later).grants_access(now));
        assert!(!sub(SubscriptionStatus::Expired, None).grants_access(now));
    }

    #[test]
    fn history_skips_repeats_and_stays_bounded() {
        let mut s = sub(SubscriptionStatus::Active, None);
        let entry = |cause: &str| HistoryEntry {
            at: datetime!(2026-03-01 00:00 UTC),
            cause: cause.into(),
            status: SubscriptionStatus::Active,
            detail: String::new(),
        };
        assert!(s.push_history(entry("evt1")));
        assert!(!s.push_history(entry("evt1")));
        for i in 0..150 {
            s.push_history(entry(&format!("e{i}")));
        }
        let h = s.history();
        assert_eq!(h.len(), 100);
        assert_eq!(h.last().unwrap().cause, "e149");
    }

    #[test]
    fn documents_round_trip_through_json() {
        let mut s = sub(
            SubscriptionStatus::Cancelled,
            Some(datetime!(2026-04-01 10:00 UTC)),
        );
        s.push_history(HistoryEntry {
            at: datetime!(2026-03-01 00:00 UTC),
            cause: "x".into(),
            status: SubscriptionStatus::Cancelled,
            detail: "d".into(),
        });
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["period_end"], "2026-04-01T10:00:00.000+00:00");
        assert_eq!(json["status"], "cancelled");
        assert_eq!(json["revoked_at"], serde_json::Value::Null);
        let back: Subscription = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Long,
    Short,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalStatus {
    Live,
    /// A tombstone: the source message was deleted; the document stays so consumers see it.
    Deleted,
}

/// `signals`: one per source Discord message (id = the message snowflake).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub source_guild_id: String,
    pub source_channel_id: String,
    pub source_message_id: String,
    pub route_key: String,
    pub author_id: Option<String>,
    pub author_name: Option<String>,
    /// The original text, untrusted.
    pub content: Option<String>,
    /// Raw Discord embeds as a JSON array, untrusted.
    pub embeds: Option<String>,
    /// Hash of content + embeds + attachments: `revision` moves only when this changes.
    pub content_hash: Option<String>,
    pub pair: Option<String>,
    pub side: Option<Side>,
    #[serde(default, deserialize_with = "null_vec::deserialize")]
    pub entries: Vec<f64>,
    #[serde(default, deserialize_with = "null_vec::deserialize")]
    pub targets: Vec<f64>,
    pub stop: Option<f64>,
    pub leverage: Option<f64>,
    /// Parser warnings (e.g. `stop_wrong_side`): kept and shown, never dropped.
    #[serde(default, deserialize_with = "null_vec::deserialize")]
    pub flags: Vec<String>,
    /// JSON array of [`AttachmentRef`].
    pub attachments: Option<String>,
    pub assets_pending: Option<bool>,
    pub revision: i64,
    /// JSON array of the distinct `edited_timestamp`s seen.
    pub edit_stamps: Option<String>,
    pub status: SignalStatus,
    #[serde(with = "req_time")]
    pub posted_at: OffsetDateTime,
    #[serde(with = "opt_time", default)]
    pub edited_at: Option<OffsetDateTime>,
    #[serde(with = "opt_time", default)]
    pub deleted_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentState {
    /// Not downloaded yet (or a download failed and will be retried).
    Pending,
    /// Copied into bucket `signal_assets` as `file_id`.
    Stored,
    /// Listed but not stored (type not allowed, too large).
    Skipped,
}

/// One attachment of a signal, as stored in [`Signal::attachments`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// Discord's attachment id.
    pub id: String,
    pub filename: String,
    /// The type found by content (magic bytes) once downloaded; Discord's claim before.
    pub content_type: Option<String>,
    pub size: Option<u64>,
    /// The Storage file id in `signal_assets` once stored.
    pub file_id: Option<String>,
    pub state: AttachmentState,
    /// Why it is skipped or still pending.
    pub note: Option<String>,
    /// The Discord CDN URL it came from (expires; kept only to retry the download).
    pub source_url: Option<String>,
}

impl Signal {
    /// A live message at revision 1 with nothing else known: no author, text, embeds, parsed
    /// trade or attachments (fill them in with struct update syntax).
    pub fn live(source: (&str, &str, &str), route_key: &str, posted_at: OffsetDateTime) -> Self {
        let (guild, channel, message) = source;
        Signal {
            source_guild_id: guild.into(),
            source_channel_id: channel.into(),
            source_message_id: message.into(),
            route_key: route_key.into(),
            author_id: None,
            author_name: None,
            content: None,
            embeds: None,
            content_hash: None,
            pair: None,
            side: None,
            entries: Vec::new(),
            targets: Vec::new(),
            stop: None,
            leverage: None,
            flags: Vec::new(),
            attachments: None,
            assets_pending: None,
            revision: 1,
            edit_stamps: None,
            status: SignalStatus::Live,
            posted_at,
            edited_at: None,
            deleted_at: None,
        }
    }

    pub fn attachment_refs(&self) -> Vec<AttachmentRef> {
        self.attachments
            .as_deref()
            .and_then(|a| serde_json::from_str(a).ok())
            .unwrap_or_default()
    }
}

/// `routes`: a source channel and where its signals go (id = the route key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub source_channel_id: String,
    pub source_guild_id: Option<String>,
    pub name: String,
    #[serde(default, deserialize_with = "null_vec::deserialize")]
    pub customer_channel_ids: Vec<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MirrorState {
    /// Written before sending: the messages of `revision` may or may not exist yet; they are
    /// found again by `nonce` before anything is sent twice.
    Pending,
    Posted,
    Deleted,
    /// The target refused (missing channel or permission): retried later, `last_error` says why.
    Failed,
}

/// `mirrors`: a signal's mirror in one customer channel (id from `ids::derive("mirror", ..)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mirror {
    pub signal_id: String,
    pub target_channel_id: String,
    /// One per part, in order; an empty string is a part not known to be sent yet.
    #[serde(default, deserialize_with = "null_vec::deserialize")]
    pub message_ids: Vec<String>,
    /// The signal revision the messages show (or, when pending, are being sent for).
    pub revision: Option<i64>,
    pub state: MirrorState,
    /// The nonce stem of the revision being sent; part `i` is sent with `{nonce}-{i}`.
    pub nonce: Option<String>,
    pub last_error: Option<String>,
}

/// `pending_links`: a Discord link started in a browser and not yet finished (web). The id is
/// [`PendingLink::id_for_state`], a hash of the OAuth `state`: the state itself is never stored,
/// so reading the collection does not let anyone finish somebody else's link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLink {
    pub user_id: String,
    /// Hex SHA-256 of the session secret that started the link.
    pub session_hash: String,
    /// The PKCE code verifier sent with the token exchange.
    pub verifier: String,
    #[serde(with = "req_time")]
    pub expires_at: OffsetDateTime,
}

impl PendingLink {
    /// The document id of the link started with `state`.
    pub fn id_for_state(state: &str) -> String {
        g3_core::ids::derive("pending_link", &[state])
    }
}

/// `signal_outcomes`: the tracker's judgement of one signal (id = the signal id). `outcome`
/// and `revisions` are `g3-outcomes` values as JSON; the other fields repeat what is queried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalOutcome {
    pub route_key: String,
    /// `g3_outcomes::Status::as_str`.
    pub status: String,
    #[serde(with = "req_time")]
    pub posted_at: OffsetDateTime,
    pub venue: Option<String>,
    pub symbol: Option<String>,
    pub outcome: String,
    pub revisions: String,
    #[serde(with = "opt_time", default)]
    pub deleted_at: Option<OffsetDateTime>,
    #[serde(with = "req_time")]
    pub updated: OffsetDateTime,
}

/// `price_minutes`: what the tracker judged for one venue, symbol and minute (id from
/// `ids::derive("price_minute", ..)`); `items` is compact JSON (see `schema.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceMinute {
    pub venue: String,
    pub symbol: String,
    #[serde(with = "req_time")]
    pub minute: OffsetDateTime,
    #[serde(with = "req_time")]
    pub until: OffsetDateTime,
    pub items: String,
    pub backfilled: Option<bool>,
    pub gaps: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeReplyState {
    /// Written before sending: the reply may or may not exist yet; it is found again by its
    /// nonce (or in the channel) before anything is sent twice.
    Pending,
    Posted,
    /// Not sent, for good: the signal or the mirrored message was deleted first, or the event
    /// was too old by the time it could be sent. `last_error` says which.
    Skipped,
    /// The channel refused (missing channel or permission): tried again later.
    Failed,
}

/// `outcome_replies`: the bot's reply to one mirror (signal + customer channel) for one outcome
/// event, such as TP1 hit or stopped (id from `ids::derive("outcome_reply", ..)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeReply {
    pub signal_id: String,
    pub target_channel_id: String,
    /// `tp1`, `tp2`, …, `stop`, `stop_before_entry` or `expired`.
    pub event: String,
    #[serde(with = "req_time")]
    pub event_at: OffsetDateTime,
    /// The mirrored message replied to.
    pub reply_to: String,
    pub content: String,
    /// The reply, once known to be sent.
    pub message_id: Option<String>,
    pub state: OutcomeReplyState,
    /// Sent with `enforce_nonce`, so a repeat within Discord's window returns the first reply.
    pub nonce: String,
    pub last_error: Option<String>,
}

/// Ties each typed document to its collection in `schema.rs`, for [`crate::Collection`].
macro_rules! models {
    ($($model:ty => $id:ident),* $(,)?) => {
        $(impl crate::collections::Model for $model {
            const COLLECTION: &'static str = crate::schema::$id;
        })*
    };
}

models! {
    Signal => SIGNALS,
    Route => ROUTES,
    Subscription => SUBSCRIPTIONS,
    WebhookEvent => WEBHOOK_EVENTS,
    WebhookFailure => WEBHOOK_FAILURES,
    DiscordLink => DISCORD_LINKS,
    PendingLink => PENDING_LINKS,
    RoleState => ROLE_STATE,
    Mirror => MIRRORS,
    AuditEntry => AUDIT_LOG,
    SignalOutcome => SIGNAL_OUTCOMES,
    PriceMinute => PRICE_MINUTES,
    OutcomeReply => OUTCOME_REPLIES,
}
