//! The demo store: where the paywall's "Buy a plan" leads in devstack. A form takes an email
//! and a plan, and "paying" sends the webhook service the signed `order.completed` Sell.app
//! would send ([`DemoPurchase`]), so a new sign-up can buy without a Sell.app store.

use std::net::SocketAddr;

use appwrite_emulator::util::escape_html as escape;
use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use g3_core::{Email, signing};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::DEMO_SELLAPP_SECRET;

/// The plans on sale: key, label.
pub const PRODUCTS: &[(&str, &str)] = &[
    ("vip", "VIP (Sell.app product 3301, variant 9001)"),
    ("basic", "Basic (Sell.app product 3301)"),
];

/// A signed demo purchase: what the printed `curl` line and the demo store send.
pub struct DemoPurchase {
    pub url: String,
    pub signature: String,
    pub body: String,
}

impl DemoPurchase {
    /// The banner's purchase: plan vip for buyer@g3.local, order 424242.
    pub fn new(webhook_addr: SocketAddr) -> Self {
        Self::order(webhook_addr, "buyer@g3.local", 424242, "vip")
    }

    /// An `order.completed` for `email` buying `plan` (`vip` or `basic`, see [`crate::DEMO_PLANS`]).
    pub fn order(webhook_addr: SocketAddr, email: &str, order_id: u64, plan: &str) -> Self {
        let variant = match plan {
            "vip" => json!(9001),
            _ => Value::Null,
        };
        let body = json!({
            "event": "order.completed",
            "store": 1,
            "data": {
                "id": order_id,
                "status": "COMPLETED",
                "customer": { "email": email },
                "line_items": [{ "id": 1, "product_id": 3301, "product_variant_id": variant, "quantity": 1 }]
            }
        })
        .to_string();
        Self {
            url: format!("http://{webhook_addr}/webhooks/sellapp"),
            signature: signing::sellapp_signature(DEMO_SELLAPP_SECRET, body.as_bytes()),
            body,
        }
    }

    pub fn curl(&self) -> String {
        format!(
            "curl -sS -X POST {} -H 'content-type: application/json' -H 'signature: {}' --data '{}'",
            self.url, self.signature, self.body
        )
    }
}

/// What the store needs: where the webhook listens and where to send buyers afterwards.
#[derive(Clone)]
pub struct DemoStore {
    pub webhook_addr: SocketAddr,
    pub web_url: String,
    /// The store's own port: a form is accepted only from a page of this site.
    pub port: u16,
    pub http: reqwest::Client,
}

#[derive(Deserialize)]
pub struct StoreQuery {
    #[serde(default)]
    email: String,
}

#[derive(Deserialize)]
pub struct BuyForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    plan: String,
}

fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Demo store</title><style>\
         body{{font-family:sans-serif;max-width:40em;margin:auto}}input,select,button{{font-size:1rem;\
         padding:.3em;margin:.2em 0}}.e{{color:#555}}</style></head><body><h1>Demo store</h1>{body}\
         </body></html>"
    );
    (status, Html(html)).into_response()
}

fn form(email: &str, error: &str) -> String {
    let options: String = PRODUCTS
        .iter()
        .map(|(key, label)| format!("<option value=\"{key}\">{}</option>", escape(label)))
        .collect();
    let error = if error.is_empty() {
        String::new()
    } else {
        format!("<p role=\"alert\"><b>{}</b></p>", escape(error))
    };
    format!(
        "<p class=\"e\">devstack's stand-in for the Sell.app store: paying sends the webhook \
         service a signed <code>order.completed</code> for this email, as Sell.app would. Use the \
         email you signed up with.</p>{error}<form method=\"post\" action=\"/store\">\
         <label for=\"email\">Email</label><br><input id=\"email\" name=\"email\" type=\"email\" \
         required size=\"40\" value=\"{}\"><br><label for=\"plan\">Plan</label><br>\
         <select id=\"plan\" name=\"plan\">{options}</select><br><button type=\"submit\">Pay \
         (demo)</button></form>",
        escape(email)
    )
}

/// `GET /store`.
pub async fn show(Query(q): Query<StoreQuery>) -> Response {
    page(StatusCode::OK, &form(q.email.trim(), ""))
}

/// A form posted from another site is refused (a page elsewhere must not buy plans here).
fn same_site(headers: &HeaderMap, port: u16) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    url::Url::parse(origin).is_ok_and(|u| {
        u.scheme() == "http"
            && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
            && u.port() == Some(port)
    })
}

/// `POST /store`: "pays" by sending the signed order to the webhook service.
pub async fn buy(
    State(store): State<DemoStore>,
    headers: HeaderMap,
    Form(f): Form<BuyForm>,
) -> Response {
    if !same_site(&headers, store.port) {
        return page(
            StatusCode::FORBIDDEN,
            "<p>This form only takes orders from its own page.</p>",
        );
    }
    let email = match Email::parse(f.email.trim()) {
        Ok(e) => e,
        Err(e) => {
            return page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &form(f.email.trim(), &format!("Not an email address: {e}")),
            );
        }
    };
    let Some((plan, _)) = PRODUCTS.iter().find(|(k, _)| *k == f.plan) else {
        return page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &form(email.as_str(), "Pick a plan from the list."),
        );
    };
    let order_id = rand::random_range(100_000_000..1_000_000_000u64);
    let purchase = DemoPurchase::order(store.webhook_addr, email.as_str(), order_id, plan);
    let sent = store
        .http
        .post(&purchase.url)
        .header("content-type", "application/json")
        .header("signature", &purchase.signature)
        .body(purchase.body.clone())
        .send()
        .await;
    let (status, answer) = match sent {
        Ok(r) => (r.status(), r.text().await.unwrap_or_default()),
        Err(e) => {
            return page(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "<p>The webhook service did not answer: {}</p>",
                    escape(&e.to_string())
                ),
            );
        }
    };
    if !status.is_success() {
        return page(
            StatusCode::BAD_GATEWAY,
            &format!(
                "<p>The webhook service refused order {order_id}: {} {}</p>",
                status.as_u16(),
                escape(&answer)
            ),
        );
    }
    page(
        StatusCode::OK,
        &format!(
            "<p>Paid: order {order_id}, plan <b>{plan}</b> for <b>{}</b>. The webhook service \
             answered <code>{}</code>.</p><p>Next: <a href=\"{web}/feed\">the feed</a>, or \
             <a href=\"{web}/account\">your account</a> to link Discord and get the plan's \
             role.</p><p><a href=\"/store\">Buy another</a></p>",
            escape(email.as_str()),
            escape(&answer),
            web = escape(&store.web_url),
        ),
    )
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn only_this_sites_pages_may_post() {
        let with = |origin: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
            h
        };
        assert!(same_site(&HeaderMap::new(), 8093));
        assert!(same_site(&with("http://127.0.0.1:8093"), 8093));
        assert!(same_site(&with("http://localhost:8093"), 8093));
        assert!(!same_site(&with("http://127.0.0.1:8092"), 8093));
        assert!(!same_site(&with("https://evil.example"), 8093));
        assert!(!same_site(&with("null"), 8093));
    }
}
