//! `TestApp`: the webhook service on 127.0.0.1:0 against a bootstrapped emulator, with a signed
//! Sell.app sender pointed at it.

#![allow(dead_code)]

use std::sync::Arc;

use g3_appwrite::Query;
use g3_core::plans::PlanCatalog;
use g3_store::{
    Collection, Model,
    models::{Subscription, WebhookFailure},
    schema::TEAM_PAID,
};
use testkit::{backend::Backend, sellapp::SellappSender};
use webhook::{
    AppState, HttpSettings, Intervals, MetricsAccess, PreviousSecrets, Secret, Settings,
    ingest::cdn::AttachmentPolicy,
};

pub const SECRET: &str = "test-sellapp-secret";
/// The Sell.app secret being rotated out: still accepted.
pub const SECRET_PREVIOUS: &str = "test-sellapp-secret-previous";
/// The ingest secret being rotated out: still accepted.
pub const INGEST_SECRET_PREVIOUS: &str = "test-ingest-secret-previous";
/// Bearer token for `/metrics`.
pub const METRICS_TOKEN: &str = "test-metrics-token";
pub const PLANS: &str = "3301:9001=vip,3301=basic";

pub struct TestApp {
    pub backend: Backend,
    pub state: AppState,
    pub sender: SellappSender,
    pub url: String,
    _spool: tempfile::TempDir,
    _server: tokio::task::JoinHandle<()>,
}

impl TestApp {
    /// `/metrics` as the scraper reads it (with the bearer token).
    pub async fn metrics(&self) -> String {
        reqwest::Client::new()
            .get(format!("{}/metrics", self.url))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn spawn() -> Self {
        Self::spawn_on(testkit::backend::backend().await).await
    }

    pub async fn spawn_with_ingest(secret: &str) -> Self {
        Self::spawn_on_with_ingest(testkit::backend::backend().await, secret).await
    }

    /// Ingest with `policy` for attachment downloads instead of [`fake_cdn_policy`].
    pub async fn spawn_with_ingest_policy(secret: &str, policy: AttachmentPolicy) -> Self {
        Self::start(
            testkit::backend::backend().await,
            Some(Secret::new(secret)),
            policy,
        )
        .await
    }

    pub async fn spawn_on(backend: Backend) -> Self {
        Self::start(backend, None, fake_cdn_policy()).await
    }

    pub async fn spawn_on_with_ingest(backend: Backend, secret: &str) -> Self {
        Self::start(backend, Some(Secret::new(secret)), fake_cdn_policy()).await
    }

    async fn start(
        backend: Backend,
        ingest_secret: Option<Secret>,
        attachment_policy: AttachmentPolicy,
    ) -> Self {
        let spool = tempfile::tempdir().unwrap();
        let settings = Settings {
            appwrite: backend.client_config(),
            sellapp_secret: Secret::new(SECRET),
            plans: PlanCatalog::parse(PLANS).unwrap(),
            roles: Default::default(),
            spool_dir: spool.path().to_path_buf(),
            sellapp_api: None,
            ingest_secret,
            intervals: Intervals::default(),
            background_jobs: false,
            previous_secrets: PreviousSecrets {
                sellapp: Some(Secret::new(SECRET_PREVIOUS)),
                ingest: Some(Secret::new(INGEST_SECRET_PREVIOUS)),
            },
            http: HttpSettings {
                metrics: MetricsAccess::from_token(Some(METRICS_TOKEN)),
                attachment_policy,
                ..HttpSettings::default()
            },
        };
        let state = AppState::new(&settings).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = webhook::router(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            sender: SellappSender::new(format!("{url}/webhooks/sellapp"), SECRET),
            backend,
            state,
            url,
            _spool: spool,
            _server: server,
        }
    }

    /// How many documents `M`'s collection holds.
    pub async fn count<M: Model>(&self) -> u64 {
        Collection::<M>::new(&self.backend.client)
            .raw()
            .list::<serde_json::Value>(&[Query::limit(1)])
            .await
            .unwrap()
            .total
    }

    pub async fn user_count(&self) -> u64 {
        self.backend
            .client
            .users()
            .list(&[Query::limit(1)])
            .await
            .unwrap()
            .total
    }

    pub async fn is_paid(&self, email: &str) -> bool {
        let Some(user) = self
            .backend
            .client
            .users()
            .find_by_email(email)
            .await
            .unwrap()
        else {
            return false;
        };
        self.backend
            .client
            .teams()
            .find_membership(TEAM_PAID, &user.id)
            .await
            .unwrap()
            .is_some()
    }

    pub async fn subscriptions_of(&self, email: &str) -> Vec<Subscription> {
        Collection::<Subscription>::new(&self.backend.client)
            .list(&[Query::equal("email", email)])
            .await
            .unwrap()
            .documents
            .into_iter()
            .map(|d| d.data)
            .collect()
    }

    pub async fn failures(&self) -> Vec<WebhookFailure> {
        Collection::<WebhookFailure>::new(&self.backend.client)
            .list(&[Query::limit(100)])
            .await
            .unwrap()
            .documents
            .into_iter()
            .map(|d| d.data)
            .collect()
    }

    pub fn access(&self) -> Arc<g3_access::Access> {
        Arc::clone(&self.state.access)
    }
}

/// The production policy plus the one test-only allowance the fake CDN needs: it serves on
/// 127.0.0.1 (`testkit::cdn::FakeCdn` URLs are `http://127.0.0.1:PORT/...`).
pub fn fake_cdn_policy() -> AttachmentPolicy {
    AttachmentPolicy::default().allowing_local("127.0.0.1", std::net::Ipv4Addr::LOCALHOST.into())
}

pub fn order(event: &str, order_id: u64, email: &str, product: u64, variant: u64) -> Vec<u8> {
    serde_json::json!({
        "event": event, "store": 4821,
        "data": { "id": order_id, "status": "COMPLETED", "customer": { "email": email },
                  "line_items": [{ "id": 1, "product_id": product, "product_variant_id": variant }] }
    })
    .to_string()
    .into_bytes()
}
