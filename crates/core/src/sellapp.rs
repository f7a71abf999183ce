//! Sell.app webhook events, parsed defensively into what the product acts on.
//!
//! The envelope is `{"event": "...", "data": {...}, "store": N}`; `data` is an order (or a
//! subscription for `subscription.*`). Sell.app's payloads vary between API versions, so fields
//! are read from every place they are known to appear (see `shared/reference/sellapp`). Ids may
//! arrive as numbers or strings; both become strings.

use serde_json::Value;
use time::OffsetDateTime;

use crate::email::Email;

/// What an event does to a customer's access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// A paid order: grant access.
    Grant,
    /// A subscription started or renewed: grant and set the period end.
    Extend,
    /// A dispute: revoke at once.
    RevokeNow,
    /// A cancelled subscription: keep access until the paid period ends.
    CancelAtPeriodEnd,
    /// Anything else: acknowledged and counted, nothing changes.
    Ignore,
}

/// The events this product distinguishes; unknown ones keep their name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    OrderCompleted,
    OrderPaid,
    OrderManualPaymentCompleted,
    ChargeCompleted,
    SubscriptionCreated,
    SubscriptionRenewed,
    OrderDisputed,
    ChargeDisputed,
    SubscriptionCancelled,
    Other(String),
}

impl EventKind {
    pub fn parse(name: &str) -> Self {
        match name {
            "order.completed" => Self::OrderCompleted,
            "order.paid" => Self::OrderPaid,
            "order.manual_payment_completed" => Self::OrderManualPaymentCompleted,
            "charge.completed" => Self::ChargeCompleted,
            "subscription.created" => Self::SubscriptionCreated,
            "subscription.renewed" => Self::SubscriptionRenewed,
            "order.disputed" => Self::OrderDisputed,
            "charge.disputed" => Self::ChargeDisputed,
            "subscription.cancelled" | "subscription.canceled" => Self::SubscriptionCancelled,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::OrderCompleted => "order.completed",
            Self::OrderPaid => "order.paid",
            Self::OrderManualPaymentCompleted => "order.manual_payment_completed",
            Self::ChargeCompleted => "charge.completed",
            Self::SubscriptionCreated => "subscription.created",
            Self::SubscriptionRenewed => "subscription.renewed",
            Self::OrderDisputed => "order.disputed",
            Self::ChargeDisputed => "charge.disputed",
            Self::SubscriptionCancelled => "subscription.cancelled",
            Self::Other(name) => name,
        }
    }

    pub fn effect(&self) -> Effect {
        match self {
            Self::OrderCompleted
            | Self::OrderPaid
            | Self::OrderManualPaymentCompleted
            | Self::ChargeCompleted => Effect::Grant,
            Self::SubscriptionCreated | Self::SubscriptionRenewed => Effect::Extend,
            Self::OrderDisputed | Self::ChargeDisputed => Effect::RevokeNow,
            Self::SubscriptionCancelled => Effect::CancelAtPeriodEnd,
            Self::Other(_) => Effect::Ignore,
        }
    }
}

/// One purchased product line: what the plan is derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineItem {
    pub product_id: String,
    pub variant_id: Option<String>,
    pub subscription_id: Option<String>,
}

/// A parsed webhook delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub store_id: Option<String>,
    /// The order id (or subscription id for subscription events).
    pub object_id: Option<String>,
    pub status: Option<String>,
    pub email: Option<Email>,
    pub items: Vec<LineItem>,
    pub subscription_id: Option<String>,
    /// End of the paid period, for subscription events that carry one.
    pub period_end: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("body is not a Sell.app event: {0}")]
    NotAnEvent(&'static str),
}

/// Reads a value that may be a JSON string or number as a non-empty string.
fn id_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn first<'a>(data: &'a Value, paths: &[&str]) -> Option<&'a Value> {
    paths
        .iter()
        .find_map(|p| data.pointer(p).filter(|v| !v.is_null()))
}

/// Every place Sell.app is known to put the buyer's email, in the order they are read: the
/// order's customer (current API), the legacy invoice's customer information, flat fields some
/// payloads carry, and last the payment gateway's copy, which older invoice payloads have when
/// nothing else names the buyer.
pub const EMAIL_PLACES: &[&str] = &[
    "/customer/email",
    "/customer_information/email",
    "/email",
    "/customer_email",
    "/payment/gateway/data/customer_email",
    "/payment/gateway/data/email",
];

/// The first valid email in [`EMAIL_PLACES`]: a blank or malformed one in an earlier place does
/// not hide a good one in a later place.
fn buyer_email(data: &Value) -> Option<Email> {
    EMAIL_PLACES
        .iter()
        .filter_map(|p| data.pointer(p).and_then(Value::as_str))
        .find_map(|raw| Email::parse(raw).ok())
}

fn parse_time(v: &Value) -> Option<OffsetDateTime> {
    let s = v.as_str()?;
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

impl Event {
    pub fn parse(body: &[u8]) -> Result<Self, ParseError> {
        let root: Value =
            serde_json::from_slice(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
        let name = root
            .get("event")
            .and_then(Value::as_str)
            .ok_or(ParseError::NotAnEvent("no `event` field"))?;
        let data = root
            .get("data")
            .filter(|d| d.is_object())
            .ok_or(ParseError::NotAnEvent("no `data` object"))?;
        let kind = EventKind::parse(name);

        let email = buyer_email(data);

        let status = match data.get("status") {
            Some(Value::String(s)) => Some(s.clone()),
            // Legacy invoices nest it: {"status": {"status": {"status": "COMPLETED"}}}
            Some(v) => v
                .pointer("/status/status")
                .and_then(Value::as_str)
                .map(str::to_owned),
            None => None,
        };

        let mut items: Vec<LineItem> = data
            .get("line_items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|item| {
                Some(LineItem {
                    product_id: id_of(item.get("product_id"))?,
                    variant_id: id_of(item.get("product_variant_id")),
                    subscription_id: id_of(item.get("subscription_id")),
                })
            })
            .collect();
        if items.is_empty() {
            let details = first(data, &["/invoice_payment/payment_details", ""]).unwrap_or(data);
            if let Some(product_id) = id_of(details.get("product_id")) {
                items.push(LineItem {
                    product_id,
                    variant_id: id_of(
                        details
                            .get("product_variant_id")
                            .or_else(|| details.get("variant_id")),
                    ),
                    subscription_id: id_of(data.get("subscription_id")),
                });
            }
        }
        let subscription_id = id_of(data.get("subscription_id"))
            .or_else(|| items.iter().find_map(|i| i.subscription_id.clone()))
            .or_else(|| {
                matches!(
                    kind,
                    EventKind::SubscriptionCreated
                        | EventKind::SubscriptionRenewed
                        | EventKind::SubscriptionCancelled
                )
                .then(|| id_of(data.get("id")))
                .flatten()
            });
        let period_end = first(
            data,
            &[
                "/current_period_end",
                "/period_end",
                "/renews_at",
                "/next_payment_at",
                "/ends_at",
                "/expires_at",
            ],
        )
        .and_then(parse_time);

        Ok(Self {
            kind,
            store_id: id_of(root.get("store")).or_else(|| id_of(data.get("store_id"))),
            object_id: id_of(data.get("id")),
            status,
            email,
            items,
            subscription_id,
            period_end,
        })
    }

    /// A deterministic id for this delivery when Sell.app sends no `webhook-id`: the same event
    /// about the same object in the same store is the same delivery.
    pub fn delivery_id(&self) -> String {
        crate::ids::derive(
            "sellapp-event",
            &[
                self.kind.as_str(),
                self.object_id.as_deref().unwrap_or(""),
                self.store_id.as_deref().unwrap_or(""),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPLETED: &str = r#"{"event":"order.completed","store":4821,"data":{"id":918273,"status":"COMPLETED",
        "customer":{"id":55120,"email":"Trader.Joe@Example.com"},
        "line_items":[{"id":771,"product_id":3301,"product_variant_id":9001,"subscription_id":6620}]}}"#;

    #[test]
    fn reads_a_v2_order() {
        let e = Event::parse(COMPLETED.as_bytes()).unwrap();
        assert_eq!(e.kind, EventKind::OrderCompleted);
        assert_eq!(e.kind.effect(), Effect::Grant);
        assert_eq!(e.store_id.as_deref(), Some("4821"));
        assert_eq!(e.object_id.as_deref(), Some("918273"));
        assert_eq!(
            e.email.as_ref().map(Email::as_str),
            Some("trader.joe@example.com")
        );
        assert_eq!(e.status.as_deref(), Some("COMPLETED"));
        assert_eq!(
            e.items,
            vec![LineItem {
                product_id: "3301".into(),
                variant_id: Some("9001".into()),
                subscription_id: Some("6620".into())
            }]
        );
        assert_eq!(e.subscription_id.as_deref(), Some("6620"));
    }

    #[test]
    fn reads_the_email_only_the_payment_gateway_names() {
        let body = r#"{"event":"order.completed","store":4821,"data":{"id":237,
            "status":{"status":{"status":"COMPLETED"}},
            "payment":{"gateway":{"type":"STRIPE","data":{"customer_email":"Gateway.Only@Example.org"}}},
            "invoice_payment":{"payment_details":{"product_id":3301,"quantity":1}}}}"#;
        let e = Event::parse(body.as_bytes()).unwrap();
        assert_eq!(
            e.email.as_ref().map(Email::as_str),
            Some("gateway.only@example.org")
        );
    }

    #[test]
    fn a_blank_email_does_not_hide_a_later_good_one() {
        let body = r#"{"event":"order.completed","data":{"id":238,"status":"COMPLETED",
            "customer":{"email":""},"customer_information":{"email":"real@example.org"},
            "line_items":[{"product_id":3301}]}}"#;
        let e = Event::parse(body.as_bytes()).unwrap();
        assert_eq!(
            e.email.as_ref().map(Email::as_str),
            Some("real@example.org")
        );
    }

    #[test]
    fn the_legacy_example_reads_the_same_email_from_either_place() {
        // The read-only shared folder sits beside the repo (or where G3_SHARED_DIR says).
        let shared = std::env::var("G3_SHARED_DIR")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared").to_owned());
        let path =
            format!("{shared}/reference/sellapp/examples/legacy-invoice.order.completed.json");
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut root: Value = serde_json::from_slice(&body).unwrap();
        root["data"]
            .as_object_mut()
            .unwrap()
            .remove("customer_information");
        let e = Event::parse(root.to_string().as_bytes()).unwrap();
        assert_eq!(
            e.email.as_ref().map(Email::as_str),
            Some("buyer@example.org")
        );
    }

    #[test]
    fn reads_a_legacy_invoice() {
        let body = r#"{"event":"order.completed","store":4821,"data":{"id":236,"store_id":4821,"subscription_id":null,
            "customer_information":{"email":"buyer@example.org"},
            "status":{"status":{"status":"COMPLETED"}},
            "invoice_payment":{"payment_details":{"product_id":3301,"product_variant_id":9002,"quantity":1}}}}"#;
        let e = Event::parse(body.as_bytes()).unwrap();
        assert_eq!(
            e.email.as_ref().map(Email::as_str),
            Some("buyer@example.org")
        );
        assert_eq!(e.status.as_deref(), Some("COMPLETED"));
        assert_eq!(e.items[0].product_id, "3301");
        assert_eq!(e.items[0].variant_id.as_deref(), Some("9002"));
        assert_eq!(e.subscription_id, None);
    }

    #[test]
    fn delivery_ids_are_stable_per_event_and_object() {
        let a = Event::parse(COMPLETED.as_bytes()).unwrap();
        let b = Event::parse(COMPLETED.as_bytes()).unwrap();
        assert_eq!(a.delivery_id(), b.delivery_id());
        let disputed = COMPLETED.replace("order.completed", "order.disputed");
        let c = Event::parse(disputed.as_bytes()).unwrap();
        assert_ne!(a.delivery_id(), c.delivery_id());
        assert_eq!(c.kind.effect(), Effect::RevokeNow);
    }

    #[test]
    fn unknown_events_are_ignored_not_rejected() {
        let e = Event::parse(br#"{"event":"feedback.created","data":{"id":1}}"#).unwrap();
        assert_eq!(e.kind, EventKind::Other("feedback.created".into()));
        assert_eq!(e.kind.effect(), Effect::Ignore);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        assert!(matches!(
            Event::parse(b"{not json"),
            Err(ParseError::NotJson(_))
        ));
        assert_eq!(
            Event::parse(b"[]"),
            Err(ParseError::NotAnEvent("no `event` field"))
        );
        assert_eq!(
            Event::parse(br#"{"event":"order.paid"}"#),
            Err(ParseError::NotAnEvent("no `data` object"))
        );
    }

    #[test]
    fn subscription_events_carry_their_period() {
        let body = br#"{"event":"subscription.renewed","store":1,"data":{"id":6620,"customer":{"email":"a@b.co"},
            "current_period_end":"2026-04-14T10:00:00Z","product_id":3301}}"#;
        let e = Event::parse(body).unwrap();
        assert_eq!(e.kind.effect(), Effect::Extend);
        assert_eq!(e.subscription_id.as_deref(), Some("6620"));
        assert_eq!(
            e.period_end,
            Some(time::macros::datetime!(2026-04-14 10:00 UTC))
        );
        assert_eq!(e.items[0].product_id, "3301");
    }
}
