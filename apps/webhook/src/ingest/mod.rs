//! `POST /ingest/v1/events`: Discord message events from the collector (the Vencord plugin, or
//! the bot in the source guild), signed Standard-Webhooks style with the ingest secret.
//!
//! The request passes the same signed-body check as Sell.app's (`signed`), Standard Webhooks
//! headers only. The body is one event or `{"events": [...]}` (at most [`MAX_BATCH`], read by
//! [`decode_batch`]). Events are applied in order: messages from channels without a route are
//! dropped and counted; the others are merged into their signal document (`merge`), which makes
//! every arrival order converge, and written only when something changed. A replayed
//! `webhook-id` is answered without a second pass. On a backend error the whole request gets 503
//! and the collector retries it; applying the same events again changes nothing.

pub mod assets;
pub mod cdn;
pub mod merge;
pub mod message;
pub mod parsing;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Json,
    extract::{Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use g3_access::KeyedLocks;
use g3_appwrite::Client;
use g3_core::signing::SignatureError;
use g3_store::{
    Collection,
    models::{Route, Signal},
};
use serde_json::json;
use tracing::{info, warn};

use crate::{
    AppState, Secret,
    error::WebhookError,
    metrics::Endpoint,
    signed::{Scheme, SignedBody},
};
use message::Incoming;
pub use message::{BatchError, decode_batch};

/// Most events one request may carry.
pub const MAX_BATCH: usize = 100;
/// How long a seen `webhook-id` is remembered: the signature window plus a margin.
const REPLAY_WINDOW: Duration = Duration::from_secs(11 * 60);
/// How long the channel → route map is trusted before it is read again.
const ROUTES_TTL: Duration = Duration::from_secs(30);

/// Counters shown in `/metrics`.
#[derive(Default)]
pub struct IngestCounters {
    pub stored: AtomicU64,
    pub unchanged: AtomicU64,
    pub dropped_unrouted: AtomicU64,
    pub rejected: AtomicU64,
    pub replays: AtomicU64,
}

pub struct Ingest {
    client: Client,
    cdn: assets::Downloader,
    /// At most this many attachment downloads at once.
    downloads: Arc<tokio::sync::Semaphore>,
    /// The current secret first, then one being rotated out.
    secrets: Vec<Secret>,
    locks: Arc<KeyedLocks>,
    routes: Mutex<Option<(Instant, HashMap<String, String>)>>,
    seen: Mutex<HashMap<String, Instant>>,
    pub counters: IngestCounters,
}

/// An event Appwrite would not store, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refused {
    pub message_id: String,
    pub error: String,
}

/// What one request did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub accepted: usize,
    pub stored: usize,
    pub unchanged: usize,
    pub dropped_unrouted: usize,
    /// Events Appwrite refused as invalid (reported, not retried).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refused>,
    /// Messages whose attachments wait for a download.
    #[serde(skip)]
    pub with_pending_assets: Vec<String>,
}

impl Ingest {
    pub fn new(
        client: Client,
        secrets: Vec<Secret>,
        attachments: cdn::AttachmentPolicy,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!secrets.is_empty(), "ingest needs a secret");
        Ok(Self {
            client,
            cdn: assets::Downloader::new(attachments)?,
            downloads: Arc::new(tokio::sync::Semaphore::new(4)),
            secrets,
            locks: Arc::default(),
            routes: Mutex::new(None),
            seen: Mutex::new(HashMap::new()),
            counters: IngestCounters::default(),
        })
    }

    /// Stores one message's pending attachments (in the background after ingest, and from
    /// the worker's retry pass).
    pub async fn store_assets(&self, message_id: &str) {
        let Ok(_permit) = self.downloads.acquire().await else {
            return;
        };
        if let Err(e) =
            assets::store_pending(&self.client, &self.cdn, &self.locks, message_id).await
        {
            warn!(message = message_id, error = %e, "attachments not stored yet; the worker retries");
        }
    }

    /// One retry pass over every signal that still waits for an attachment.
    pub async fn retry_assets(&self) -> usize {
        match assets::pending_signals(&self.client).await {
            Ok(ids) => {
                for id in &ids {
                    self.store_assets(id).await;
                }
                ids.len()
            }
            Err(e) => {
                warn!(error = %e, "cannot list signals with pending attachments");
                0
            }
        }
    }

    /// The route key of a source channel, reading the `routes` collection again when the
    /// cached map is old or does not know the channel (a route added a moment ago).
    async fn route_of(&self, channel_id: &str) -> Result<Option<String>, g3_appwrite::Error> {
        let cached = {
            let guard = self.routes.lock().unwrap_or_else(|p| p.into_inner());
            guard
                .as_ref()
                .map(|(at, map)| (at.elapsed() < ROUTES_TTL, map.get(channel_id).cloned()))
        };
        match cached {
            Some((true, Some(key))) => return Ok(Some(key)),
            Some((true, None)) if self.recently_refreshed() => return Ok(None),
            _ => {}
        }
        let routes = Collection::<Route>::new(&self.client)
            .list_all(&[], 100)
            .await?;
        let map: HashMap<String, String> = routes
            .into_iter()
            .filter(|d| d.data.enabled != Some(false))
            .map(|d| (d.data.source_channel_id, d.id))
            .collect();
        let found = map.get(channel_id).cloned();
        *self.routes.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), map));
        Ok(found)
    }

    /// Unknown channels re-read the routes at most every few seconds, not on every message.
    fn recently_refreshed(&self) -> bool {
        let guard = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < Duration::from_secs(5))
    }

    /// Records a `webhook-id`; false when it was already seen inside the window.
    fn first_sighting(&self, id: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, at| at.elapsed() < REPLAY_WINDOW);
        !seen.contains_key(id)
    }

    fn remember(&self, id: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), Instant::now());
    }

    /// Applies events in order. Stops at the first backend error (the caller answers 503).
    pub async fn apply(&self, events: &[Incoming]) -> Result<Summary, g3_appwrite::Error> {
        let mut summary = Summary {
            accepted: events.len(),
            ..Summary::default()
        };
        let docs = Collection::<Signal>::new(&self.client);
        for event in events {
            let Some(route_key) = self.route_of(&event.channel_id).await? else {
                summary.dropped_unrouted += 1;
                continue;
            };
            let _message = self.locks.lock_owned(&event.id).await;
            let existing = docs.get_optional(&event.id).await?.map(|d| d.data);
            let merged = merge::merge(
                existing.as_ref(),
                event,
                &route_key,
                time::OffsetDateTime::now_utc(),
            );
            if existing.as_ref() == Some(&merged) {
                summary.unchanged += 1;
                continue;
            }
            let written = match existing {
                None => docs
                    .create_if_absent(&event.id, &merged, None)
                    .await
                    .map(drop),
                Some(_) => docs.upsert(&event.id, &merged, None).await.map(drop),
            };
            match written {
                Ok(()) => {}
                // Appwrite refusing this one document (not an outage): retrying the batch would
                // block the collector's queue forever, so report it and go on.
                Err(e)
                    if !e.is_retryable() && e.status().is_some_and(|s| (400..500).contains(&s)) =>
                {
                    warn!(message = %event.id, error = %e, "Appwrite refused a signal; skipped");
                    self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    summary.refused.push(Refused {
                        message_id: event.id.clone(),
                        error: e.to_string(),
                    });
                    continue;
                }
                Err(e) => return Err(e),
            }
            summary.stored += 1;
            if merged.assets_pending == Some(true) {
                summary.with_pending_assets.push(event.id.clone());
            }
        }
        self.counters
            .stored
            .fetch_add(summary.stored as u64, Ordering::Relaxed);
        self.counters
            .unchanged
            .fetch_add(summary.unchanged as u64, Ordering::Relaxed);
        self.counters
            .dropped_unrouted
            .fetch_add(summary.dropped_unrouted as u64, Ordering::Relaxed);
        Ok(summary)
    }
}

/// Browser builds of Discord can only `fetch` ingest from Discord's own origins, and the signed
/// headers need a CORS preflight. The desktop plugin posts from Node and needs none of this.
pub fn cors() -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, HeaderValue, Method};
    let origins = [
        "https://discord.com",
        "https://canary.discord.com",
        "https://ptb.discord.com",
    ]
    .map(HeaderValue::from_static);
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([Method::POST])
        .allow_headers([
            HeaderName::from_static("content-type"),
            HeaderName::from_static("webhook-id"),
            HeaderName::from_static("webhook-timestamp"),
            HeaderName::from_static("webhook-signature"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}

pub(crate) async fn receive(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, WebhookError> {
    let Some(ingest) = state.ingest.clone() else {
        return Err(WebhookError::Off(
            "ingest is not configured on this server (set INGEST_SECRET)",
        ));
    };
    let signed = SignedBody::read(
        request,
        &state,
        Endpoint::Ingest,
        Scheme::Standard,
        &ingest.secrets,
    )
    .await?;
    // Verified under the Standard scheme, so the id is there.
    let id = signed
        .header("webhook-id")
        .ok_or(WebhookError::Signature(SignatureError::Missing))?
        .to_owned();
    if !ingest.first_sighting(&id) {
        ingest.counters.replays.fetch_add(1, Ordering::Relaxed);
        return Ok((StatusCode::OK, Json(json!({ "duplicate": true }))).into_response());
    }
    let events = decode_batch(&signed.body)?;
    match ingest.apply(&events).await {
        Ok(summary) => {
            ingest.remember(&id);
            // CDN links expire: fetch attachments now, without holding up the collector.
            for message_id in summary.with_pending_assets.clone() {
                let ingest = Arc::clone(&ingest);
                tokio::spawn(async move { ingest.store_assets(&message_id).await });
            }
            info!(?summary, "ingested");
            Ok((StatusCode::OK, Json(summary)).into_response())
        }
        Err(e) => {
            warn!(error = %e, "ingest could not write; the collector will retry");
            Err(WebhookError::Unavailable(e))
        }
    }
}

/// Shared by the webhook state.
pub type SharedIngest = Arc<Ingest>;
