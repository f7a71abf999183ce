//! `TestApp`: the webhook service on 127.0.0.1:0 against a bootstrapped emulator, with a signed
//! Sell.app sender pointed at it.

#![allow(dead_code)]

use std::sync::Arc;

use g3_appwrite::Query;
use g3_core::plans::PlanCatalog;
use g3_store::{
    models::{Subscription, WebhookFailure},
    schema::{DATABASE_ID, TEAM_PAID},
};
use testkit::{backend::Backend, sellapp::SellappSender};
use webhook::{AppState, Intervals, Secret, Settings};

pub const SECRET: &str = "test-sellapp-secret";
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
    pub async fn spawn() -> Self {
        Self::spawn_on(testkit::backend::backend().await).await
    }

    pub async fn spawn_with_ingest(secret: &str) -> Self {
        Self::spawn_on_with_ingest(testkit::backend::backend().await, secret).await
    }

    pub async fn spawn_on(backend: Backend) -> Self {
        Self::start(backend, None).await
    }

    pub async fn spawn_on_with_ingest(backend: Backend, secret: &str) -> Self {
        Self::start(backend, Some(Secret::new(secret))).await
    }

    async fn start(backend: Backend, ingest_secret: Option<Secret>) -> Self {
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

    pub async fn count(&self, collection: &str) -> u64 {
        self.backend
            .client
            .documents(DATABASE_ID, collection)
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
        self.backend
            .client
            .documents(DATABASE_ID, "subscriptions")
            .list::<Subscription>(&[Query::equal("email", email)])
            .await
            .unwrap()
            .documents
            .into_iter()
            .map(|d| d.data)
            .collect()
    }

    pub async fn failures(&self) -> Vec<WebhookFailure> {
        self.backend
            .client
            .documents(DATABASE_ID, "webhook_failures")
            .list::<WebhookFailure>(&[Query::limit(100)])
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

pub fn order(event: &str, order_id: u64, email: &str, product: u64, variant: u64) -> Vec<u8> {
    serde_json::json!({
        "event": event, "store": 4821,
        "data": { "id": order_id, "status": "COMPLETED", "customer": { "email": email },
                  "line_items": [{ "id": 1, "product_id": product, "product_variant_id": variant }] }
    })
    .to_string()
    .into_bytes()
}
