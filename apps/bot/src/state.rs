//! Small durable values of the bot (cursors), one document each in collection `bot_state`, so a
//! restart resumes where the last run left off without a volume of its own. Values that only the
//! leader may move carry its lease generation ([`save_fenced`]).

use g3_appwrite::Client;
use g3_store::{Collection, Model, schema};
use serde::{Deserialize, Serialize};

/// One stored value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub value: String,
    /// The lease generation of the writer (see [`save_fenced`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<i64>,
}

impl Model for Entry {
    const COLLECTION: &'static str = schema::BOT_STATE;
}

fn entries(appwrite: &Client) -> Collection<Entry> {
    Collection::new(appwrite)
}

/// The value stored under `key` (a document id: at most 36 of `[a-zA-Z0-9._-]`), if any.
pub async fn load(appwrite: &Client, key: &str) -> Result<Option<String>, g3_appwrite::Error> {
    Ok(entries(appwrite)
        .get_optional(key)
        .await?
        .map(|d| d.data.value))
}

/// Stores `value` under `key`, replacing what was there.
pub async fn save(appwrite: &Client, key: &str, value: &str) -> Result<(), g3_appwrite::Error> {
    entries(appwrite)
        .upsert(
            key,
            &Entry {
                value: value.to_owned(),
                fence: None,
            },
            None,
        )
        .await
        .map(drop)
}

/// Removes the value under `key`. Returns whether there was one.
pub async fn forget(appwrite: &Client, key: &str) -> Result<bool, g3_appwrite::Error> {
    entries(appwrite).delete_if_exists(key).await
}

/// Stores `value` under `key` with the lease's generation, unless the lease is no longer held
/// or the stored value was written under a newer generation (a later leader): then nothing is
/// written and `Ok(false)` returned. The check and the write are two requests; the lease's
/// margin covers the gap between them.
pub async fn save_fenced(
    appwrite: &Client,
    key: &str,
    value: &str,
    fence: &g3_store::lease::Fence,
) -> Result<bool, g3_appwrite::Error> {
    let docs = entries(appwrite);
    if !fence.is_valid() {
        tracing::warn!(key, "not stored: the lease is lost");
        return Ok(false);
    }
    let mine = fence.generation();
    if let Some(stored) = docs.get_optional(key).await?
        && stored.data.fence.is_some_and(|f| f > mine)
    {
        tracing::warn!(key, mine, stored = ?stored.data.fence, "not stored: a newer leader wrote it");
        return Ok(false);
    }
    if !fence.is_valid() {
        return Ok(false);
    }
    docs.upsert(
        key,
        &Entry {
            value: value.to_owned(),
            fence: Some(mine),
        },
        None,
    )
    .await?;
    Ok(true)
}
