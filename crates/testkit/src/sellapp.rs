//! Sell.app from the outside: a sender that signs deliveries exactly as Sell.app does (or
//! breaks them on purpose), and a fake of Sell.app's order API for refund reconciliation.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::get,
};
use g3_core::signing;
use serde_json::{Value, json};

/// The example payloads shipped in `shared/reference/sellapp/examples`, by file name.
pub fn examples() -> Vec<(String, Vec<u8>)> {
    let dir = crate::shared_dir().join("reference/sellapp/examples");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            (path.extension()? == "json").then(|| {
                let name = path.file_name()?.to_string_lossy().into_owned();
                Some((name, std::fs::read(&path).ok()?))
            })?
        })
        .collect();
    out.sort();
    out
}

/// How a delivery is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// `signature: hex(HMAC-SHA256(body))`, Sell.app's classic header.
    Hmac,
    /// Standard Webhooks headers with this delivery id and a timestamp offset (seconds) from now.
    Standard { id: &'static str, skew_secs: i64 },
    /// No signature at all (as Sell.app's product-editor test sends).
    Unsigned,
}

/// Posts deliveries to a webhook URL like Sell.app would.
#[derive(Clone)]
pub struct SellappSender {
    pub url: String,
    pub secret: String,
    http: reqwest::Client,
}

/// What the receiver answered.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl SellappSender {
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            secret: secret.into(),
            http: reqwest::Client::new(),
        }
    }

    /// Signs `body` with the sender's secret and posts it.
    pub async fn send(&self, body: &[u8], how: Signing) -> Reply {
        self.send_signed_by(&self.secret, body, body, how).await
    }

    /// Signs `signed_body` with `secret` but posts `sent_body`: tampering and wrong secrets.
    pub async fn send_signed_by(
        &self,
        secret: &str,
        signed_body: &[u8],
        sent_body: &[u8],
        how: Signing,
    ) -> Reply {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json");
        match how {
            Signing::Hmac => {
                request =
                    request.header("signature", signing::sellapp_signature(secret, signed_body));
            }
            Signing::Standard { id, skew_secs } => {
                let ts = time::OffsetDateTime::now_utc().unix_timestamp() + skew_secs;
                request = request
                    .header("webhook-id", id)
                    .header("webhook-timestamp", ts.to_string())
                    .header(
                        "webhook-signature",
                        signing::standard_signature(secret, id, ts, signed_body),
                    );
            }
            Signing::Unsigned => {}
        }
        let response = request
            .body(sent_body.to_vec())
            .send()
            .await
            .expect("the webhook service answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }
}

/// A fake of Sell.app's order API (`GET /v2/orders/{id}` with a bearer key).
#[derive(Clone, Default)]
pub struct FakeSellappApi {
    orders: Arc<Mutex<HashMap<String, String>>>,
}

impl FakeSellappApi {
    pub const KEY: &'static str = "fake-sellapp-api-key";

    pub fn set_status(&self, order_id: &str, status: &str) {
        self.orders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(order_id.to_owned(), status.to_owned());
    }

    /// Serves on 127.0.0.1:0; returns the base URL (without `/v2`).
    pub async fn spawn(&self) -> String {
        let app = Router::new()
            .route("/v2/orders/{id}", get(order))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake Sell.app");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}")
    }
}

async fn order(
    State(api): State<FakeSellappApi>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", FakeSellappApi::KEY));
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "message": "Unauthenticated." })),
        );
    }
    match api
        .orders
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&id)
    {
        Some(status) => (
            StatusCode::OK,
            Json(json!({ "data": { "id": id, "status": status } })),
        ),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "message": "Not found." })),
        ),
    }
}
