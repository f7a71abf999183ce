//! Small durable values of the bot (cursors), one document each in collection `bot_state`, so a
//! restart resumes where the last run left off without a volume of its own. Values that only the
//! leader may move carry its lease generation ([`save_fenced`]).

use g3_appwrite::Client;
use g3_store::schema::DATABASE_ID;
use serde::{Deserialize, Serialize};

/// The collection holding them.
pub const COLLECTION: &str = "bot_state";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    value: String,
    /// The lease generation of the writer (see [`save_fenced`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fence: Option<i64>,
}

/// The value stored under `key` (a document id: at most 36 of `[a-zA-Z0-9._-]`), if any.
pub async fn load(appwrite: &Client, key: &str) -> Result<Option<String>, g3_appwrite::Error> {
    Ok(appwrite
        .documents(DATABASE_ID, COLLECTION)
        .get_optional::<Entry>(key)
        .await?
        .map(|d| d.data.value))
}

/// Stores `value` under `key`, replacing what was there.
pub async fn save(appwrite: &Client, key: &str, value: &str) -> Result<(), g3_appwrite::Error> {
    appwrite
        .documents(DATABASE_ID, COLLECTION)
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
    let docs = appwrite.documents(DATABASE_ID, COLLECTION);
    if !fence.is_valid() {
        tracing::warn!(key, "not stored: the lease is lost");
        return Ok(false);
    }
    let mine = fence.generation();
    if let Some(stored) = docs.get_optional::<Entry>(key).await?
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
