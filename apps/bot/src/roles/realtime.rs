//! Role sync's Realtime subscription: `role_state` and `discord_links` as the `staff` service
//! user, catching up from a cursor on every (re)connect. [`follow`] is the only way in, and
//! what it does for role sync is in [`catch_up`] and [`queue_change`]; signing in, reconnecting
//! and backing off are `g3_appwrite::Follower`'s.

use std::sync::Arc;

use g3_appwrite::{Credentials, Follow, Follower, Query, RealtimeEvent};
use g3_store::{
    Collection,
    models::{DiscordLink, RoleState},
    schema,
};
use serde_json::Value;
use time::OffsetDateTime;

use super::{
    Config,
    queue::Job,
    sync::{RoleSync, stamp},
};

/// Follows `role_state` and `discord_links` through Realtime, catching up on every connect.
pub(super) async fn follow(sync: Arc<RoleSync>, config: &Config, start: OffsetDateTime) {
    // The reconciliation pass at start covers everything before `start`.
    let mut events = RoleEvents {
        cursor: start - time::Duration::seconds(5),
        sync: sync.clone(),
    };
    Follower::new(
        sync.appwrite.clone(),
        Credentials::new(config.staff_email.clone(), config.staff_password.expose()),
        [
            Collection::<RoleState>::channel(),
            Collection::<DiscordLink>::channel(),
        ],
    )
    .resubscribe(crate::follow::resubscribe_policy(&config.resubscribe))
    .run(&mut events)
    .await;
}

/// Role sync's side of the follower: queue what changed, remember the newest change seen.
struct RoleEvents {
    sync: Arc<RoleSync>,
    cursor: OffsetDateTime,
}

impl Follow for RoleEvents {
    async fn connected(&mut self, _reconnected: bool) {
        match catch_up(&self.sync, self.cursor).await {
            Ok(Some(newest)) => self.cursor = self.cursor.max(newest),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "role catch-up failed; the next reconciliation covers it")
            }
        }
    }

    async fn event(&mut self, event: RealtimeEvent) {
        let Ok(doc) = event.document::<Value>() else {
            return;
        };
        self.cursor = self.cursor.max(doc.updated_at);
        queue_change(&self.sync, &doc.collection_id, doc.id);
    }
}

/// Queues a changed document of `collection` to be converged at once.
fn queue_change(sync: &RoleSync, collection: &str, id: String) {
    match collection {
        schema::ROLE_STATE => sync.queue.push(Job::State(id), true),
        schema::DISCORD_LINKS => sync.queue.push(Job::Link(id), true),
        _ => {}
    }
}

/// Queues every `role_state` and link change since `since`. Returns the newest `$updatedAt`.
async fn catch_up(
    sync: &RoleSync,
    since: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, g3_appwrite::Error> {
    let queries = [
        Query::order_asc("$updatedAt"),
        Query::greater_than_equal("$updatedAt", stamp(since).as_str()),
    ];
    let states = sync.states().list_all(&queries, 100).await?;
    let links = Collection::<DiscordLink>::new(&sync.appwrite)
        .list_all(&queries, 100)
        .await?;
    let newest = states
        .iter()
        .map(|d| d.updated_at)
        .chain(links.iter().map(|d| d.updated_at))
        .max();
    for doc in links {
        queue_change(sync, schema::DISCORD_LINKS, doc.id);
    }
    for doc in states {
        queue_change(sync, schema::ROLE_STATE, doc.id);
    }
    Ok(newest)
}
