//! Gateway events as ingest reads them: the raw Discord message JSON the Vencord plugin sends,
//! one [`IngestEvent`] per create, update or delete.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use serenity::all::MessageUpdateEvent;

/// One ingest event: `message.create`, `message.update` or `message.delete` with the raw
/// Discord message (for deletes just `id`, `channel_id`, `guild_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: Value,
}

impl IngestEvent {
    pub(super) fn new(kind: &str, message: Value) -> Self {
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
pub(super) fn message_json(message: &impl Serialize, guild: u64) -> Value {
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
pub(super) fn update_json(event: &MessageUpdateEvent, guild: u64) -> Value {
    let mut v = message_json(event, guild);
    if let Some(map) = v.as_object_mut() {
        map.retain(|_, value| !value.is_null());
    }
    v
}

pub(super) fn delete_json(channel: u64, message: u64, guild: u64) -> Value {
    json!({ "id": message.to_string(), "channel_id": channel.to_string(), "guild_id": guild.to_string() })
}

#[cfg(test)]
mod tests {
    use serenity::all::Message;

    use super::*;

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
