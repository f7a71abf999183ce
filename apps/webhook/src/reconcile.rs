//! Refund reconciliation: Sell.app sends no refund event, so the orders behind active
//! subscriptions are read back from Sell.app's API and refunded, reversed or voided ones revoked.

use std::time::Duration;

use anyhow::Context as _;
use g3_access::{Access, Cause};
use g3_appwrite::Query;
use g3_core::{Email, plans::Plan};
use g3_store::{Collection, models::Subscription};
use serde_json::Value;

/// Statuses that mean the money went back.
const REVOKING: &[&str] = &["REFUNDED", "REVERSED", "VOIDED"];

/// Where Sell.app's API is and the key to read orders with.
#[derive(Clone)]
pub struct SellappApi {
    pub base_url: String,
    pub api_key: String,
    pub http: reqwest::Client,
}

impl std::fmt::Debug for SellappApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SellappApi")
            .field("base_url", &self.base_url)
            .field("api_key", &"[redacted]")
            .finish()
    }
}

impl SellappApi {
    pub fn new(base_url: &str, api_key: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            http,
        })
    }

    /// The order's status (`COMPLETED`, `REFUNDED`, ...), or `None` when Sell.app does not know it.
    pub async fn order_status(&self, order_id: &str) -> anyhow::Result<Option<String>> {
        let url = format!("{}/v2/orders/{}", self.base_url, order_id);
        let response = self
            .http
            .get(&url)
            .bearer_auth(&self.api_key)
            .header("accept", "application/json")
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = response
            .error_for_status()
            .with_context(|| format!("GET {url}"))?;
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("reading {url}"))?;
        let status = body
            .pointer("/data/status")
            .or_else(|| body.get("status"))
            .and_then(|s| {
                s.as_str().map(str::to_owned).or_else(|| {
                    s.pointer("/status/status")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
            });
        Ok(status)
    }
}

/// Checks every active or cancelled-but-running subscription's order once. Returns how many
/// were revoked. A Sell.app error on one order is logged and the rest still checked.
pub async fn run_once(access: &Access, api: &SellappApi) -> anyhow::Result<usize> {
    let subs = Collection::<Subscription>::new(access.client())
        .list_all(
            &[
                Query::equal("status", vec!["active", "cancelled"]),
                Query::is_not_null("sellapp_order_id"),
            ],
            100,
        )
        .await?;
    let mut revoked = 0;
    for doc in subs {
        let Some(order_id) = doc.data.sellapp_order_id.as_deref() else {
            continue;
        };
        let status = match api.order_status(order_id).await {
            Ok(Some(s)) => s.to_ascii_uppercase(),
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(order = order_id, error = %format!("{e:#}"), "could not read order from Sell.app");
                continue;
            }
        };
        if !REVOKING.contains(&status.as_str()) {
            continue;
        }
        let (Ok(email), Ok(plan)) = (Email::parse(&doc.data.email), Plan::parse(&doc.data.plan))
        else {
            continue;
        };
        let reason = format!("order {order_id} {}", status.to_lowercase());
        access
            .end_plan(
                &email,
                &plan,
                g3_store::models::SubscriptionStatus::Revoked,
                &reason,
                Some(order_id),
                &Cause::Job("refund-reconciliation"),
            )
            .await?;
        tracing::info!(order = order_id, %email, %status, "revoked after refund");
        revoked += 1;
    }
    Ok(revoked)
}
