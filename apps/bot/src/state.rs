//! Small durable values of the bot (cursors), one document each in collection `bot_state`, so a
//! restart resumes where the last run left off without a volume of its own.

use g3_appwrite::Client;
use g3_store::schema::DATABASE_ID;
use serde::{Deserialize, Serialize};

/// The collection holding them.
pub const COLLECTION: &str = "bot_state";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    value: String,
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
            },
            None,
        )
        .await
        .map(drop)
}
