//! Started Discord links, kept in Appwrite (`pending_links`) so that any web replica can finish
//! a link another one started: no sticky sessions, nothing in process memory.
//!
//! - The document id is a hash of the OAuth `state` ([`PendingLink::id_for_state`]); the state
//!   itself only ever travels in the browser's URLs.
//! - A link is taken exactly once: read, then delete. Appwrite has no transactions, so the delete
//!   decides: the replica whose delete answers 404 lost the race (or the state was replayed) and
//!   refuses, like an unknown state.
//! - An expired link is refused, and its document is gone with the take. Links never finished
//!   are swept, one small page at a time, whenever a link is started.

use std::time::Duration;

use g3_appwrite::{Client, Query};
use g3_store::{Collection, models::PendingLink};
use time::OffsetDateTime;

use crate::{Secret, authcache};

/// Expired links deleted per sweep at most; each start sweeps again.
const SWEEP_PAGE: u32 = 25;

/// A link as its start left it.
pub(crate) struct Started {
    pub user_id: String,
    /// SHA-256 of the session secret that started it.
    pub session: authcache::Key,
    pub verifier: Secret,
}

/// The `pending_links` collection, with the time a link may wait for its callback.
pub(crate) struct PendingLinks {
    docs: Collection<PendingLink>,
    ttl: Duration,
}

impl PendingLinks {
    pub(crate) fn new(client: &Client, ttl: Duration) -> Self {
        Self {
            docs: Collection::new(client),
            ttl,
        }
    }

    /// Remembers the link started at `now` with `state`, after sweeping some expired ones.
    pub(crate) async fn insert(
        &self,
        state: &str,
        link: &Started,
        now: OffsetDateTime,
    ) -> Result<(), g3_appwrite::Error> {
        if let Err(e) = self.sweep(now).await {
            tracing::warn!(error = %e, "sweeping expired Discord links failed");
        }
        let doc = PendingLink {
            user_id: link.user_id.clone(),
            session_hash: hex::encode(link.session),
            verifier: link.verifier.expose().to_owned(),
            expires_at: now + self.ttl,
        };
        self.docs
            .create(PendingLink::id_for_state(state), &doc, None)
            .await
            .map(drop)
    }

    /// The link started with `state`, if it exists, is still fresh at `now` and this call is
    /// the one that deleted it. Everything else (unknown, expired, taken by another replica or
    /// request) is `None`.
    pub(crate) async fn take(
        &self,
        state: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Started>, g3_appwrite::Error> {
        let id = PendingLink::id_for_state(state);
        let Some(doc) = self.docs.get_optional(&id).await? else {
            return Ok(None);
        };
        if !self.docs.delete_if_exists(&id).await? {
            tracing::info!("Discord link state already taken by another request");
            return Ok(None);
        }
        let link = doc.data;
        if link.expires_at <= now {
            return Ok(None);
        }
        let Some(session) = hex::decode(&link.session_hash)
            .ok()
            .and_then(|b| authcache::Key::try_from(b).ok())
        else {
            tracing::warn!("stored Discord link with a malformed session hash");
            return Ok(None);
        };
        Ok(Some(Started {
            user_id: link.user_id,
            session,
            verifier: Secret::new(link.verifier),
        }))
    }

    /// Deletes up to [`SWEEP_PAGE`] links that expired before `now`. Returns how many went.
    pub(crate) async fn sweep(&self, now: OffsetDateTime) -> Result<usize, g3_appwrite::Error> {
        let expired = self
            .docs
            .list_page(&[
                Query::less_than("expires_at", g3_appwrite::format_datetime(now)),
                Query::limit(SWEEP_PAGE),
            ])
            .await?;
        let mut deleted = 0;
        for doc in expired.documents {
            deleted += usize::from(self.docs.delete_if_exists(&doc.id).await?);
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(600);

    fn started(user: &str) -> Started {
        Started {
            user_id: user.into(),
            session: authcache::key("session secret"),
            verifier: Secret::new("verifier"),
        }
    }

    async fn count(links: &PendingLinks) -> u64 {
        links.docs.list(&[Query::limit(1)]).await.unwrap().total
    }

    #[tokio::test]
    async fn taken_once_by_id_hash_and_refused_when_expired() {
        let backend = testkit::backend::backend().await;
        let links = PendingLinks::new(&backend.client, TTL);
        let t0 = OffsetDateTime::now_utc();

        links.insert("state-a", &started("u1"), t0).await.unwrap();
        let stored = links.docs.list(&[]).await.unwrap().documents;
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].id, PendingLink::id_for_state("state-a"));
        assert!(!stored[0].id.contains("state-a"), "never the raw state");

        let now = t0 + Duration::from_secs(60);
        let got = links.take("state-a", now).await.unwrap().expect("fresh");
        assert_eq!(got.user_id, "u1");
        assert_eq!(got.session, authcache::key("session secret"));
        assert_eq!(got.verifier.expose(), "verifier");
        assert!(links.take("state-a", now).await.unwrap().is_none(), "once");
        assert!(links.take("never-started", now).await.unwrap().is_none());

        // Ten minutes and one second later: refused, and gone.
        links.insert("state-b", &started("u1"), t0).await.unwrap();
        let late = t0 + TTL + Duration::from_secs(1);
        assert!(links.take("state-b", late).await.unwrap().is_none());
        assert_eq!(count(&links).await, 0);
    }

    #[tokio::test]
    async fn concurrent_takes_of_one_state_give_it_to_exactly_one() {
        let backend = testkit::backend::backend().await;
        let links = std::sync::Arc::new(PendingLinks::new(&backend.client, TTL));
        let t0 = OffsetDateTime::now_utc();
        for round in 0..5 {
            let state = format!("raced-{round}");
            links.insert(&state, &started("u"), t0).await.unwrap();
            let takes = (0..4).map(|_| {
                let links = links.clone();
                let state = state.clone();
                tokio::spawn(async move { links.take(&state, t0).await.unwrap().is_some() })
            });
            let mut won = 0;
            for take in takes.collect::<Vec<_>>() {
                won += usize::from(take.await.unwrap());
            }
            assert_eq!(won, 1, "round {round}");
        }
    }

    #[tokio::test]
    async fn starting_a_link_sweeps_the_abandoned_ones() {
        let backend = testkit::backend::backend().await;
        let links = PendingLinks::new(&backend.client, TTL);
        let t0 = OffsetDateTime::now_utc();
        links.insert("old-1", &started("u"), t0).await.unwrap();
        links.insert("old-2", &started("u"), t0).await.unwrap();
        links
            .insert("recent", &started("u"), t0 + Duration::from_secs(300))
            .await
            .unwrap();
        assert_eq!(count(&links).await, 3);
        // Eleven minutes on, a new start sweeps the two that expired, not the recent one.
        let later = t0 + Duration::from_secs(660);
        links.insert("new", &started("u"), later).await.unwrap();
        assert_eq!(count(&links).await, 2);
        assert!(links.take("recent", later).await.unwrap().is_some());
        assert!(links.take("new", later).await.unwrap().is_some());
        assert_eq!(links.sweep(later).await.unwrap(), 0);
    }
}
