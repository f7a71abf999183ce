//! Discord message events as the collector sends them, read leniently into what ingest needs,
//! and the request body that carries them ([`decode_batch`]). Fields that are absent (a partial
//! MESSAGE_UPDATE such as an embed unfurl) stay `None`, which is different from
//! present-but-empty.

use g3_core::Snowflake;
use serde_json::Value;
use time::OffsetDateTime;

use super::MAX_BATCH;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Create,
    Update,
    Delete,
}

/// One attachment as Discord describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentIn {
    pub id: String,
    pub filename: String,
    pub size: Option<u64>,
    pub content_type: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub kind: Kind,
    pub id: String,
    pub channel_id: String,
    pub guild_id: Option<String>,
    pub author_id: Option<String>,
    pub author_name: Option<String>,
    pub content: Option<String>,
    /// The raw `embeds` array, when present.
    pub embeds: Option<Value>,
    pub attachments: Option<Vec<AttachmentIn>>,
    pub edited_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("unknown event type `{0}` (expected message.create, message.update or message.delete)")]
    UnknownType(String),
    #[error("missing or invalid `{0}`")]
    Missing(&'static str),
}

/// Why a request body is not a batch of events (ingest answers 400 with this).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("`events` must be an array")]
    EventsNotArray,
    #[error("expected an event object or {{\"events\": [...]}}")]
    NotAnEvent,
    #[error("a batch holds at most {MAX_BATCH} events; this one has {0}")]
    TooMany(usize),
    /// The whole batch is refused at its first unreadable event.
    #[error("event {index}: {error}")]
    Event { index: usize, error: EventError },
}

/// Reads a verified ingest body: one event, or `{"events": [...]}` of at most [`MAX_BATCH`].
pub fn decode_batch(body: &[u8]) -> Result<Vec<Incoming>, BatchError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| BatchError::NotJson(e.to_string()))?;
    let raw_events: Vec<&Value> = match root.get("events") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(_) => return Err(BatchError::EventsNotArray),
        None if root.is_object() => vec![&root],
        None => return Err(BatchError::NotAnEvent),
    };
    if raw_events.len() > MAX_BATCH {
        return Err(BatchError::TooMany(raw_events.len()));
    }
    raw_events
        .into_iter()
        .enumerate()
        .map(|(index, raw)| {
            Incoming::parse(raw).map_err(|error| BatchError::Event { index, error })
        })
        .collect()
}

/// A Discord id as sent (a string, or a number from lenient senders), kept as written.
fn snowflake(v: Option<&Value>) -> Option<String> {
    let s = match v? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    Snowflake::is_valid(&s).then_some(s)
}

fn time(v: Option<&Value>) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v?.as_str()?, &time::format_description::well_known::Rfc3339).ok()
}

/// When Discord created a snowflake: the top 42 bits are milliseconds since 2015-01-01.
pub fn snowflake_time(id: &str) -> Option<OffsetDateTime> {
    let n = Snowflake::parse(id).ok()?.get();
    let millis = (n >> 22) + 1_420_070_400_000;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).ok()
}

impl Incoming {
    /// Reads `{"type": ..., "message": {...}}`.
    pub fn parse(event: &Value) -> Result<Self, EventError> {
        let kind = match event.get("type").and_then(Value::as_str) {
            Some("message.create") => Kind::Create,
            Some("message.update") => Kind::Update,
            Some("message.delete") => Kind::Delete,
            Some(other) => return Err(EventError::UnknownType(other.chars().take(64).collect())),
            None => return Err(EventError::Missing("type")),
        };
        let m = event
            .get("message")
            .filter(|m| m.is_object())
            .ok_or(EventError::Missing("message"))?;
        let id = snowflake(m.get("id")).ok_or(EventError::Missing("message.id"))?;
        // Vencord's MESSAGE_DELETE says channelId; the API shape says channel_id.
        let channel_id = snowflake(m.get("channel_id").or_else(|| m.get("channelId")))
            .ok_or(EventError::Missing("message.channel_id"))?;
        let guild_id = snowflake(m.get("guild_id").or_else(|| m.get("guildId")));
        let author = m.get("author");
        let author_name = author.and_then(|a| {
            a.get("global_name")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .or_else(|| a.get("username").and_then(Value::as_str))
                .map(|s| s.chars().take(128).collect())
        });
        let attachments = m.get("attachments").and_then(Value::as_array).map(|list| {
            list.iter()
                .filter_map(|a| {
                    Some(AttachmentIn {
                        id: snowflake(a.get("id"))?,
                        filename: a
                            .get("filename")
                            .and_then(Value::as_str)
                            .unwrap_or("file")
                            .chars()
                            .take(200)
                            .collect(),
                        size: a.get("size").and_then(Value::as_u64),
                        content_type: a
                            .get("content_type")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        url: a.get("url").and_then(Value::as_str).map(str::to_owned),
                    })
                })
                .collect()
        });
        Ok(Self {
            kind,
            id,
            channel_id,
            guild_id,
            author_id: author.and_then(|a| snowflake(a.get("id"))),
            author_name,
            content: m.get("content").and_then(Value::as_str).map(str::to_owned),
            embeds: m.get("embeds").filter(|e| e.is_array()).cloned(),
            attachments,
            edited_at: time(m.get("edited_timestamp")),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_full_partial_and_delete_events() {
        let full = Incoming::parse(&json!({"type": "message.create", "message": {
            "id": "1234567890123456789", "channel_id": "42", "guild_id": "7",
            "author": {"id": "9", "username": "trader", "global_name": "Trader Joe"},
            "content": "BTC long", "embeds": [], "attachments": [{"id": "5", "filename": "chart.png", "size": 10, "url": "https://cdn/x"}],
            "timestamp": "2026-01-01T00:00:00+00:00", "edited_timestamp": null
        }}))
        .unwrap();
        assert_eq!(full.kind, Kind::Create);
        assert_eq!(full.author_name.as_deref(), Some("Trader Joe"));
        assert_eq!(full.content.as_deref(), Some("BTC long"));
        assert_eq!(full.attachments.as_ref().map(Vec::len), Some(1));
        assert_eq!(full.edited_at, None);

        let unfurl = Incoming::parse(&json!({"type": "message.update", "message": {
            "id": "1", "channel_id": "42", "embeds": [{"title": "link"}]}}))
        .unwrap();
        assert_eq!(unfurl.content, None, "absent, not empty");
        assert!(unfurl.embeds.is_some());

        let delete = Incoming::parse(
            &json!({"type": "message.delete", "message": {"id": "1", "channelId": "42"}}),
        )
        .unwrap();
        assert_eq!(
            (delete.kind, delete.channel_id.as_str()),
            (Kind::Delete, "42")
        );
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        assert_eq!(
            Incoming::parse(&json!({"message": {}})),
            Err(EventError::Missing("type"))
        );
        assert_eq!(
            Incoming::parse(&json!({"type": "guild.ban", "message": {}})),
            Err(EventError::UnknownType("guild.ban".into()))
        );
        assert_eq!(
            Incoming::parse(
                &json!({"type": "message.create", "message": {"id": "abc", "channel_id": "1"}})
            ),
            Err(EventError::Missing("message.id"))
        );
        assert_eq!(
            Incoming::parse(&json!({"type": "message.create"})),
            Err(EventError::Missing("message"))
        );
    }

    #[test]
    fn batches_are_one_event_or_a_bounded_list() {
        let event = json!({"type": "message.delete", "message": {"id": "1", "channel_id": "42"}});
        let one = decode_batch(event.to_string().as_bytes()).unwrap();
        assert_eq!(one.len(), 1);
        let two = json!({ "events": [event, event] }).to_string();
        assert_eq!(decode_batch(two.as_bytes()).unwrap().len(), 2);
        assert!(matches!(
            decode_batch(b"{\"events\": ["),
            Err(BatchError::NotJson(_))
        ));
        assert_eq!(
            decode_batch(br#"{"events": {}}"#),
            Err(BatchError::EventsNotArray)
        );
        assert_eq!(decode_batch(b"[1]"), Err(BatchError::NotAnEvent));
        let many = json!({ "events": vec![event.clone(); MAX_BATCH + 1] }).to_string();
        assert_eq!(
            decode_batch(many.as_bytes()),
            Err(BatchError::TooMany(MAX_BATCH + 1))
        );
        let bad = json!({ "events": [event, {"type": "reaction.add", "message": {}}] });
        assert_eq!(
            decode_batch(bad.to_string().as_bytes())
                .unwrap_err()
                .to_string(),
            "event 1: unknown event type `reaction.add` (expected message.create, message.update or message.delete)"
        );
    }

    #[test]
    fn ids_that_are_not_discord_ids_are_refused() {
        // 20 digits, but past u64: not an id Discord can send.
        let event = json!({"type": "message.delete", "message": {"id": "99999999999999999999", "channel_id": "42"}});
        assert_eq!(
            Incoming::parse(&event),
            Err(EventError::Missing("message.id"))
        );
        let numeric = json!({"type": "message.delete", "message": {"id": 7, "channel_id": 42}});
        assert_eq!(Incoming::parse(&numeric).unwrap().channel_id, "42");
    }

    #[test]
    fn snowflakes_tell_their_time() {
        // Discord's documented example: 175928847299117063 was created 2016-04-30 11:18:25.796 UTC.
        let t = snowflake_time("175928847299117063").unwrap();
        assert_eq!(t, time::macros::datetime!(2016-04-30 11:18:25.796 UTC));
    }
}
