//! The backend schema as data: database `g3`, its collections with attributes and indexes,
//! the teams and the storage bucket. `bootstrap` makes the backend match it; `diff` reports where
//! the backend and this file disagree. Changing the schema means changing this file.

use g3_appwrite::{AttributeSpec, BucketSpec, IndexSpec, IndexType, Order, Permission, Role};

/// Database id of the product.
pub const DATABASE_ID: &str = "g3";
pub const DATABASE_NAME: &str = "G3netic Signals";

/// Teams: customers with access, and admins plus service users.
pub const TEAM_PAID: &str = "paid";
pub const TEAM_STAFF: &str = "staff";
pub const TEAMS: &[(&str, &str)] = &[(TEAM_PAID, "Paid customers"), (TEAM_STAFF, "Staff")];

pub const BUCKET_SIGNAL_ASSETS: &str = "signal_assets";

/// Collection ids. Code names a collection through its typed handle in `collections`; these
/// constants are for the schema itself and for the few places that speak Appwrite's own
/// vocabulary (Realtime channel names, the emulator's tests).
pub const SIGNALS: &str = "signals";
pub const ROUTES: &str = "routes";
pub const SUBSCRIPTIONS: &str = "subscriptions";
pub const WEBHOOK_EVENTS: &str = "webhook_events";
pub const WEBHOOK_FAILURES: &str = "webhook_failures";
pub const DISCORD_LINKS: &str = "discord_links";
pub const PENDING_LINKS: &str = "pending_links";
pub const ROLE_STATE: &str = "role_state";
pub const MIRRORS: &str = "mirrors";
pub const BOT_STATE: &str = "bot_state";
pub const LEASES: &str = "leases";
pub const LOCKS: &str = "locks";
pub const AUDIT_LOG: &str = "audit_log";
pub const SIGNAL_OUTCOMES: &str = "signal_outcomes";
pub const PRICE_MINUTES: &str = "price_minutes";
pub const OUTCOME_REPLIES: &str = "outcome_replies";

/// Largest string we store in one attribute for raw payloads (1 MiB).
const PAYLOAD_MAX: u32 = 1_048_576;

/// One collection as it should exist in the backend.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionSpec {
    pub id: &'static str,
    pub name: &'static str,
    pub permissions: Vec<Permission>,
    pub document_security: bool,
    pub attributes: Vec<AttributeSpec>,
    pub indexes: Vec<IndexSpec>,
}

fn staff_read() -> Vec<Permission> {
    vec![Permission::read(Role::team(TEAM_STAFF))]
}
fn paid_and_staff_read() -> Vec<Permission> {
    vec![
        Permission::read(Role::team(TEAM_PAID)),
        Permission::read(Role::team(TEAM_STAFF)),
    ]
}

fn string(key: &str, size: u32) -> AttributeSpec {
    AttributeSpec::string(key, size)
}
/// Counters and revisions: never negative.
fn count(key: &str) -> AttributeSpec {
    AttributeSpec::integer_range(key, 0, i64::MAX)
}
fn float(key: &str) -> AttributeSpec {
    AttributeSpec::float(key)
}
fn boolean(key: &str) -> AttributeSpec {
    AttributeSpec::boolean(key)
}
fn datetime(key: &str) -> AttributeSpec {
    AttributeSpec::datetime(key)
}
fn enumeration(key: &str, elements: &[&str]) -> AttributeSpec {
    AttributeSpec::enumeration(key, elements.iter().copied())
}

/// An index over `(attribute, descending?)` pairs.
fn index(key: &str, kind: IndexType, attributes: &[(&str, bool)]) -> IndexSpec {
    IndexSpec::new(key, kind, attributes.iter().map(|(a, _)| *a)).orders(
        attributes
            .iter()
            .map(|(_, desc)| if *desc { Order::Desc } else { Order::Asc }),
    )
}
fn key(key: &str, attributes: &[(&str, bool)]) -> IndexSpec {
    index(key, IndexType::Key, attributes)
}
fn unique(key: &str, attributes: &[(&str, bool)]) -> IndexSpec {
    index(key, IndexType::Unique, attributes)
}

/// Snowflakes are at most 20 digits; 32 leaves room.
const SNOWFLAKE: u32 = 32;
const EMAIL: u32 = 320;
const USER_ID: u32 = 36;

/// Every collection of database `g3`, as DESIGN.md describes it.
pub fn collections() -> Vec<CollectionSpec> {
    vec![
        CollectionSpec {
            id: SIGNALS,
            name: "Signals",
            permissions: paid_and_staff_read(),
            document_security: false,
            attributes: vec![
                string("source_guild_id", SNOWFLAKE).required(),
                string("source_channel_id", SNOWFLAKE).required(),
                string("source_message_id", SNOWFLAKE).required(),
                string("route_key", 64).required(),
                string("author_id", SNOWFLAKE),
                string("author_name", 128),
                string("content", 8_000),
                // Raw Discord embeds, as JSON.
                string("embeds", 65_535),
                string("content_hash", 64),
                string("pair", 32),
                enumeration("side", &["long", "short"]),
                float("entries").array(),
                float("targets").array(),
                float("stop"),
                float("leverage"),
                // Parser warnings: the signal is kept and flagged, never dropped.
                string("flags", 64).array(),
                // Attachment records (name, type, size, file id, state), as JSON.
                string("attachments", 16_384),
                // Some attachment still waits for its download: the ingest worker retries these.
                boolean("assets_pending"),
                count("revision").required(),
                // Distinct edit timestamps seen (JSON array): `revision` is 1 + their number, so
                // it is the same whatever order create, edits and duplicates arrive in.
                string("edit_stamps", 32_768),
                enumeration("status", &["live", "deleted"]).required(),
                datetime("posted_at").required(),
                datetime("edited_at"),
                datetime("deleted_at"),
            ],
            indexes: vec![
                key("by_posted", &[("posted_at", true)]),
                key(
                    "by_route_posted",
                    &[("route_key", false), ("posted_at", true)],
                ),
                key("by_pair_posted", &[("pair", false), ("posted_at", true)]),
                // The feed's other filters and their combinations, newest first.
                key("by_side_posted", &[("side", false), ("posted_at", true)]),
                key(
                    "by_route_pair_posted",
                    &[("route_key", false), ("pair", false), ("posted_at", true)],
                ),
                key(
                    "by_route_side_posted",
                    &[("route_key", false), ("side", false), ("posted_at", true)],
                ),
                key(
                    "by_pair_side_posted",
                    &[("pair", false), ("side", false), ("posted_at", true)],
                ),
                key(
                    "by_route_pair_side_posted",
                    &[
                        ("route_key", false),
                        ("pair", false),
                        ("side", false),
                        ("posted_at", true),
                    ],
                ),
                // The newest change (web's live hub starts its catch-up there).
                key("by_updated", &[("$updatedAt", true)]),
                key("by_assets_pending", &[("assets_pending", false)]),
            ],
        },
        CollectionSpec {
            id: ROUTES,
            name: "Routes",
            permissions: paid_and_staff_read(),
            document_security: false,
            attributes: vec![
                string("source_channel_id", SNOWFLAKE).required(),
                string("source_guild_id", SNOWFLAKE),
                string("name", 128).required(),
                string("customer_channel_ids", SNOWFLAKE).array(),
                boolean("enabled"),
            ],
            indexes: vec![unique("by_source_channel", &[("source_channel_id", false)])],
        },
        CollectionSpec {
            id: SUBSCRIPTIONS,
            name: "Subscriptions",
            permissions: staff_read(),
            document_security: false,
            attributes: vec![
                string("email", EMAIL).required(),
                string("user_id", USER_ID),
                string("plan", 64).required(),
                enumeration("status", &["active", "cancelled", "revoked", "expired"]).required(),
                string("sellapp_order_id", 64),
                string("sellapp_subscription_id", 64),
                datetime("period_end"),
                datetime("granted_at"),
                datetime("revoked_at"),
                string("reason", 256),
                // Every state change with its cause, as JSON lines: the subscription's story.
                string("history", 65_535),
            ],
            indexes: vec![
                // A customer's subscriptions, most recently changed first.
                key(
                    "by_email_updated",
                    &[("email", false), ("$updatedAt", true)],
                ),
                key("by_user", &[("user_id", false)]),
                key(
                    "by_status_period",
                    &[("status", false), ("period_end", false)],
                ),
                key("by_order", &[("sellapp_order_id", false)]),
                key("by_subscription", &[("sellapp_subscription_id", false)]),
            ],
        },
        CollectionSpec {
            id: WEBHOOK_EVENTS,
            name: "Webhook events",
            permissions: staff_read(),
            document_security: false,
            attributes: vec![
                string("event", 64).required(),
                string("order_id", 64),
                string("store_id", 64),
                string("email", EMAIL),
                enumeration("status", &["received", "processed", "ignored", "failed"]).required(),
                datetime("received_at").required(),
                datetime("processed_at"),
                string("detail", 1_024),
            ],
            indexes: vec![
                key("by_order", &[("order_id", false)]),
                // A customer's deliveries, newest first.
                key(
                    "by_email_received",
                    &[("email", false), ("received_at", true)],
                ),
                key("by_received", &[("received_at", true)]),
            ],
        },
        CollectionSpec {
            id: WEBHOOK_FAILURES,
            name: "Webhook failures",
            permissions: staff_read(),
            document_security: false,
            attributes: vec![
                string("event_id", 64).required(),
                string("event", 64),
                string("email", EMAIL),
                string("payload", PAYLOAD_MAX),
                // Only the headers needed to verify and replay, as JSON.
                string("headers", 4_096),
                string("error", 2_048),
                count("attempts"),
                datetime("next_retry_at"),
                enumeration("state", &["pending", "retrying", "resolved", "dead"]).required(),
            ],
            indexes: vec![
                key(
                    "by_state_retry",
                    &[("state", false), ("next_retry_at", false)],
                ),
                key("by_event", &[("event_id", false)]),
                key("by_email", &[("email", false)]),
                // Staff's list of failures, most recently changed first.
                key("by_updated", &[("$updatedAt", true)]),
            ],
        },
        CollectionSpec {
            id: DISCORD_LINKS,
            name: "Discord links",
            permissions: staff_read(),
            document_security: false,
            attributes: vec![
                string("discord_user_id", SNOWFLAKE).required(),
                string("discord_username", 128),
                datetime("linked_at").required(),
            ],
            indexes: vec![
                unique("by_discord_user", &[("discord_user_id", false)]),
                key("by_discord_name", &[("discord_username", false)]),
            ],
        },
        // Discord links started in a browser and not yet finished, so any web replica can take
        // the callback. Id: a hash of the OAuth `state` (never the state); taken once by delete.
        // No permissions: only the server key reads them (they hold PKCE verifiers).
        CollectionSpec {
            id: PENDING_LINKS,
            name: "Pending Discord links",
            permissions: vec![],
            document_security: false,
            attributes: vec![
                string("user_id", USER_ID).required(),
                // Hex SHA-256 of the session secret that started the link.
                string("session_hash", 64).required(),
                string("verifier", 128).required(),
                datetime("expires_at").required(),
            ],
            indexes: vec![key("by_expires", &[("expires_at", false)])],
        },
        CollectionSpec {
            id: ROLE_STATE,
            name: "Role state",
            permissions: staff_read(),
            document_security: false,
            attributes: vec![
                string("user_id", USER_ID).required(),
                string("discord_user_id", SNOWFLAKE),
                // The Discord account the role was last applied to, so a relink or unlink can
                // take it back from the old account.
                string("applied_discord_user_id", SNOWFLAKE),
                string("role_id", SNOWFLAKE).required(),
                boolean("desired").required(),
                boolean("applied"),
                string("reason", 256),
                string("last_error", 1_024),
                count("attempts"),
                datetime("applied_at"),
                datetime("next_retry_at"),
            ],
            indexes: vec![
                key("by_user", &[("user_id", false)]),
                key("by_discord_user", &[("discord_user_id", false)]),
                key(
                    "by_applied_discord_user",
                    &[("applied_discord_user_id", false)],
                ),
            ],
        },
        CollectionSpec {
            id: MIRRORS,
            name: "Mirrors",
            permissions: staff_read(),
            document_security: false,
            attributes: vec![
                string("signal_id", SNOWFLAKE).required(),
                string("target_channel_id", SNOWFLAKE).required(),
                string("message_ids", SNOWFLAKE).array(),
                count("revision"),
                enumeration("state", &["pending", "posted", "deleted", "failed"]).required(),
                string("nonce", 25),
                string("last_error", 1_024),
                // The lease generation (fencing token) of the bot that wrote it.
                count("fence"),
            ],
            indexes: vec![
                key("by_signal", &[("signal_id", false)]),
                key("by_state", &[("state", false)]),
            ],
        },
        // The bot's cursors (Realtime catch-up, collector per source channel), one per document.
        CollectionSpec {
            id: BOT_STATE,
            name: "Bot state",
            permissions: staff_read(),
            document_security: false,
            attributes: vec![
                string("value", 4_096).required(),
                // The lease generation (fencing token) of the bot that wrote it.
                count("fence"),
            ],
            indexes: vec![],
        },
        // Leader leases (`lease`): one document per generation, id `<name>.<generation>`.
        CollectionSpec {
            id: LEASES,
            name: "Leases",
            permissions: staff_read(),
            document_security: false,
            attributes: vec![
                string("name", 64).required(),
                count("generation").required(),
                string("holder", 128).required(),
                count("renewals").required(),
                datetime("renewed_at"),
                boolean("released"),
            ],
            indexes: vec![unique(
                "by_name_generation",
                &[("name", false), ("generation", true)],
            )],
        },
        // Per-key locks across replicas (`g3-access` `locks`): one document per generation of
        // a key, id derived from key and generation; generation 1 is never deleted.
        CollectionSpec {
            id: LOCKS,
            name: "Locks",
            permissions: staff_read(),
            document_security: false,
            attributes: vec![
                string("key", 400).required(),
                count("generation").required(),
                string("holder", 64).required(),
                boolean("released"),
                datetime("acquired_at"),
            ],
            indexes: vec![
                unique("by_key_generation", &[("key", false), ("generation", true)]),
                key("by_acquired", &[("acquired_at", false)]),
            ],
        },
        // The tracker's judgement of each signal (id = the signal id): the `g3-outcomes`
        // outcome as JSON, the revisions it was judged against, and fields to query by.
        CollectionSpec {
            id: SIGNAL_OUTCOMES,
            name: "Signal outcomes",
            permissions: paid_and_staff_read(),
            document_security: false,
            attributes: vec![
                string("route_key", 64).required(),
                enumeration(
                    "status",
                    &[
                        "waiting_for_entry",
                        "entered",
                        "stopped",
                        "targets_hit",
                        "expired",
                        "expired_unfilled",
                        "stopped_before_entry",
                        "cancelled",
                        "untrackable",
                    ],
                )
                .required(),
                datetime("posted_at").required(),
                // `g3_market::Venue::as_str` and the exchange symbol; unset when untrackable.
                string("venue", 32),
                string("symbol", 40),
                string("outcome", 65_535).required(),
                // The signal's revisions as the tracker heard them (JSON): signals keep only
                // the latest, and a recompute needs every one with its time.
                string("revisions", 65_535).required(),
                datetime("deleted_at"),
                // The market time the outcome reflects (deterministic, unlike `$updatedAt`).
                datetime("updated").required(),
            ],
            indexes: vec![key("by_posted", &[("posted_at", true)])],
        },
        // Prices the tracker judged, one document per venue, symbol and minute, written when
        // the minute closes: the 1-second bars built from trades, backfilled bars and gaps.
        CollectionSpec {
            id: PRICE_MINUTES,
            name: "Price minutes",
            permissions: paid_and_staff_read(),
            document_security: false,
            attributes: vec![
                string("venue", 32).required(),
                string("symbol", 40).required(),
                datetime("minute").required(),
                // Everything before this was seen (the minute's end, or earlier when the
                // symbol was dropped mid-minute).
                datetime("until").required(),
                // Compact JSON: `[offset_ms, length_ms, open, high, low, close, backfilled]`
                // per bar, `[offset_ms, length_ms]` per gap, offsets from `minute`.
                string("items", 65_535).required(),
                boolean("backfilled"),
                count("gaps"),
            ],
            indexes: vec![unique(
                "by_venue_symbol_minute",
                &[("venue", false), ("symbol", false), ("minute", false)],
            )],
        },
        // The bot's replies in Discord to a mirrored signal when a target or the stop is hit:
        // one document per mirror and event (id from `ids::derive("outcome_reply", ..)`),
        // written `pending` with a nonce before the reply is sent, like `mirrors`.
        CollectionSpec {
            id: OUTCOME_REPLIES,
            name: "Outcome replies",
            permissions: staff_read(),
            document_security: false,
            attributes: vec![
                string("signal_id", SNOWFLAKE).required(),
                string("target_channel_id", SNOWFLAKE).required(),
                // `tp1`, `tp2`, …, `stop`, `stop_before_entry`, `expired`.
                string("event", 32).required(),
                // When the event happened (market time), for the age limit on late replies.
                datetime("event_at").required(),
                // The mirrored message replied to (its first part).
                string("reply_to", SNOWFLAKE).required(),
                // The text, fixed when the reply was recorded, so a resend says the same.
                string("content", 512).required(),
                string("message_id", SNOWFLAKE),
                enumeration("state", &["pending", "posted", "skipped", "failed"]).required(),
                string("nonce", 25).required(),
                string("last_error", 1_024),
                // The lease generation (fencing token) of the bot that wrote it.
                count("fence"),
            ],
            indexes: vec![
                key("by_signal", &[("signal_id", false)]),
                key("by_state", &[("state", false)]),
            ],
        },
        CollectionSpec {
            id: AUDIT_LOG,
            name: "Audit log",
            permissions: staff_read(),
            document_security: false,
            attributes: vec![
                string("actor", 128).required(),
                string("action", 64).required(),
                string("target", EMAIL),
                string("detail", 4_096),
                datetime("at").required(),
            ],
            indexes: vec![
                key("by_at", &[("at", true)]),
                key("by_target", &[("target", false), ("at", true)]),
                key("by_action_at", &[("action", false), ("at", true)]),
            ],
        },
    ]
}

/// The storage bucket for signal attachments: images and PDFs only, 10 MiB each.
pub fn buckets() -> Vec<BucketSpec> {
    vec![BucketSpec {
        id: BUCKET_SIGNAL_ASSETS.to_owned(),
        name: "Signal assets".to_owned(),
        permissions: paid_and_staff_read(),
        file_security: false,
        maximum_file_size: Some(10 * 1024 * 1024),
        allowed_file_extensions: ["png", "jpg", "jpeg", "gif", "webp", "pdf"]
            .map(String::from)
            .to_vec(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_attributes_exist_and_keys_are_unique() {
        for c in collections() {
            let mut seen = std::collections::HashSet::new();
            for a in &c.attributes {
                assert!(
                    seen.insert(a.key.clone()),
                    "{}.{} declared twice",
                    c.id,
                    a.key
                );
                assert!(
                    a.key.len() <= 36,
                    "{}.{} too long for Appwrite",
                    c.id,
                    a.key
                );
                assert!(
                    !(a.required && a.default.is_some()),
                    "{}.{}: required with default",
                    c.id,
                    a.key
                );
            }
            for i in &c.indexes {
                assert_eq!(
                    i.orders.len(),
                    i.attributes.len(),
                    "index {}.{}",
                    c.id,
                    i.key
                );
                for attr in &i.attributes {
                    // Appwrite indexes its own `$id`, `$createdAt` and `$updatedAt` too.
                    let system = ["$id", "$createdAt", "$updatedAt"].contains(&attr.as_str());
                    assert!(
                        system || seen.contains(attr),
                        "index {}.{} names unknown {attr}",
                        c.id,
                        i.key
                    );
                }
            }
        }
    }
}
