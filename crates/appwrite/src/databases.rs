//! Schema management: databases, collections, attributes and indexes, plus waiting for the
//! asynchronous attribute/index jobs to finish. Used by `ops bootstrap` and the devstack.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Map, Value, json};
use tracing::instrument;

use crate::client::{Client, Request};
use crate::error::Error;
use crate::models::{
    Attribute, AttributeList, Collection, Database, Id, Index, IndexList, SchemaStatus,
};
use crate::permission::{Permission, to_strings};

/// Handle on `/databases`.
#[derive(Debug, Clone)]
pub struct Databases {
    client: Client,
}

impl Client {
    pub fn databases(&self) -> Databases {
        Databases {
            client: self.clone(),
        }
    }
}

/// The kind-specific part of an attribute definition.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeKind {
    String { size: u32 },
    Integer { min: Option<i64>, max: Option<i64> },
    Float { min: Option<f64>, max: Option<f64> },
    Boolean,
    Datetime,
    Enum { elements: Vec<String> },
}

impl AttributeKind {
    fn path(&self) -> &'static str {
        match self {
            AttributeKind::String { .. } => "string",
            AttributeKind::Integer { .. } => "integer",
            AttributeKind::Float { .. } => "float",
            AttributeKind::Boolean => "boolean",
            AttributeKind::Datetime => "datetime",
            AttributeKind::Enum { .. } => "enum",
        }
    }
}

/// An attribute to create: `AttributeSpec::string("pair", 32).required()`.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeSpec {
    pub key: String,
    pub kind: AttributeKind,
    pub required: bool,
    pub array: bool,
    /// Must match the kind; Appwrite refuses a default on a required attribute.
    pub default: Option<Value>,
}

impl AttributeSpec {
    fn new(key: &str, kind: AttributeKind) -> Self {
        Self {
            key: key.to_owned(),
            kind,
            required: false,
            array: false,
            default: None,
        }
    }
    pub fn string(key: &str, size: u32) -> Self {
        Self::new(key, AttributeKind::String { size })
    }
    pub fn integer(key: &str) -> Self {
        Self::new(
            key,
            AttributeKind::Integer {
                min: None,
                max: None,
            },
        )
    }
    pub fn integer_range(key: &str, min: i64, max: i64) -> Self {
        Self::new(
            key,
            AttributeKind::Integer {
                min: Some(min),
                max: Some(max),
            },
        )
    }
    pub fn float(key: &str) -> Self {
        Self::new(
            key,
            AttributeKind::Float {
                min: None,
                max: None,
            },
        )
    }
    pub fn boolean(key: &str) -> Self {
        Self::new(key, AttributeKind::Boolean)
    }
    pub fn datetime(key: &str) -> Self {
        Self::new(key, AttributeKind::Datetime)
    }
    pub fn enumeration<S: Into<String>>(key: &str, elements: impl IntoIterator<Item = S>) -> Self {
        Self::new(
            key,
            AttributeKind::Enum {
                elements: elements.into_iter().map(Into::into).collect(),
            },
        )
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn array(mut self) -> Self {
        self.array = true;
        self
    }
    pub fn default_value(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(value.into());
        self
    }

    /// The request body of `POST .../attributes/{kind}`.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("key".into(), json!(self.key));
        body.insert("required".into(), json!(self.required));
        body.insert("array".into(), json!(self.array));
        if let Some(d) = &self.default {
            body.insert("default".into(), d.clone());
        }
        match &self.kind {
            AttributeKind::String { size } => {
                body.insert("size".into(), json!(size));
            }
            AttributeKind::Integer { min, max } => {
                if let Some(min) = min {
                    body.insert("min".into(), json!(min));
                }
                if let Some(max) = max {
                    body.insert("max".into(), json!(max));
                }
            }
            AttributeKind::Float { min, max } => {
                if let Some(min) = min {
                    body.insert("min".into(), json!(min));
                }
                if let Some(max) = max {
                    body.insert("max".into(), json!(max));
                }
            }
            AttributeKind::Enum { elements } => {
                body.insert("elements".into(), json!(elements));
            }
            AttributeKind::Boolean | AttributeKind::Datetime => {}
        }
        Value::Object(body)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexType {
    Key,
    Unique,
    Fulltext,
}

impl IndexType {
    pub fn as_str(self) -> &'static str {
        match self {
            IndexType::Key => "key",
            IndexType::Unique => "unique",
            IndexType::Fulltext => "fulltext",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// An index to create.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    pub key: String,
    pub kind: IndexType,
    pub attributes: Vec<String>,
    /// Empty, or one per attribute.
    pub orders: Vec<Order>,
}

impl IndexSpec {
    pub fn new<S: Into<String>>(
        key: &str,
        kind: IndexType,
        attributes: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            key: key.to_owned(),
            kind,
            attributes: attributes.into_iter().map(Into::into).collect(),
            orders: Vec::new(),
        }
    }
    pub fn orders(mut self, orders: impl IntoIterator<Item = Order>) -> Self {
        self.orders = orders.into_iter().collect();
        self
    }
    pub fn body(&self) -> Value {
        let mut body = json!({
            "key": self.key,
            "type": self.kind.as_str(),
            "attributes": self.attributes,
        });
        if !self.orders.is_empty() {
            body["orders"] = json!(
                self.orders
                    .iter()
                    .map(|o| match o {
                        Order::Asc => "ASC",
                        Order::Desc => "DESC",
                    })
                    .collect::<Vec<_>>()
            );
        }
        body
    }
}

impl Databases {
    fn url(&self, segments: &[&str]) -> url::Url {
        let mut all = vec!["databases"];
        all.extend_from_slice(segments);
        self.client.url(&all)
    }

    #[instrument(skip_all, fields(db = %id))]
    pub async fn get(&self, id: &str) -> Result<Database, Error> {
        self.client
            .json(Request::new(Method::GET, self.url(&[id])), "database")
            .await
    }

    #[instrument(skip_all, fields(db = %id))]
    pub async fn create(&self, id: &str, name: &str) -> Result<Database, Error> {
        Id::from(id).validate()?;
        let req = Request::new(Method::POST, self.url(&[]))
            .json(&json!({ "databaseId": id, "name": name }))?
            .idempotent(true);
        self.client.json(req, "database").await
    }

    #[instrument(skip_all, fields(db = %db, col = %id))]
    pub async fn get_collection(&self, db: &str, id: &str) -> Result<Collection, Error> {
        self.client
            .json(
                Request::new(Method::GET, self.url(&[db, "collections", id])),
                "collection",
            )
            .await
    }

    #[instrument(skip_all, fields(db = %db, col = %id))]
    pub async fn create_collection(
        &self,
        db: &str,
        id: &str,
        name: &str,
        permissions: &[Permission],
        document_security: bool,
    ) -> Result<Collection, Error> {
        Id::from(id).validate()?;
        let req = Request::new(Method::POST, self.url(&[db, "collections"]))
            .json(&json!({
                "collectionId": id,
                "name": name,
                "permissions": to_strings(permissions),
                "documentSecurity": document_security,
            }))?
            .idempotent(true);
        self.client.json(req, "collection").await
    }

    #[instrument(skip_all, fields(db = %db, col = %id))]
    pub async fn update_collection(
        &self,
        db: &str,
        id: &str,
        name: &str,
        permissions: &[Permission],
        document_security: bool,
    ) -> Result<Collection, Error> {
        let req = Request::new(Method::PUT, self.url(&[db, "collections", id])).json(&json!({
            "name": name,
            "permissions": to_strings(permissions),
            "documentSecurity": document_security,
        }))?;
        self.client.json(req, "collection").await
    }

    /// `POST .../attributes/{kind}` → 202; the attribute starts as `processing`.
    #[instrument(skip_all, fields(db = %db, col = %col, key = %spec.key))]
    pub async fn create_attribute(
        &self,
        db: &str,
        col: &str,
        spec: &AttributeSpec,
    ) -> Result<Attribute, Error> {
        let req = Request::new(
            Method::POST,
            self.url(&[db, "collections", col, "attributes", spec.kind.path()]),
        )
        .json(&spec.body())?
        .idempotent(true);
        self.client.json(req, "attribute").await
    }

    #[instrument(skip_all, fields(db = %db, col = %col, key = %key))]
    pub async fn get_attribute(&self, db: &str, col: &str, key: &str) -> Result<Attribute, Error> {
        self.client
            .json(
                Request::new(
                    Method::GET,
                    self.url(&[db, "collections", col, "attributes", key]),
                ),
                "attribute",
            )
            .await
    }

    #[instrument(skip_all, fields(db = %db, col = %col))]
    pub async fn list_attributes(&self, db: &str, col: &str) -> Result<AttributeList, Error> {
        self.client
            .json(
                Request::new(
                    Method::GET,
                    self.url(&[db, "collections", col, "attributes"]),
                ),
                "attribute list",
            )
            .await
    }

    #[instrument(skip_all, fields(db = %db, col = %col, key = %key))]
    pub async fn delete_attribute(&self, db: &str, col: &str, key: &str) -> Result<(), Error> {
        self.client
            .execute(Request::new(
                Method::DELETE,
                self.url(&[db, "collections", col, "attributes", key]),
            ))
            .await
            .map(drop)
    }

    /// Polls until the attribute is `available`; `failed` and running out of time are errors.
    #[instrument(skip_all, fields(db = %db, col = %col, key = %key))]
    pub async fn wait_attribute_available(
        &self,
        db: &str,
        col: &str,
        key: &str,
        timeout: Duration,
    ) -> Result<Attribute, Error> {
        let what = format!("attribute {db}.{col}.{key}");
        poll_until_available(
            &what,
            timeout,
            || self.get_attribute(db, col, key),
            |a| (a.status.clone(), a.error.clone()),
        )
        .await
    }

    /// `POST .../indexes` → 202.
    #[instrument(skip_all, fields(db = %db, col = %col, key = %spec.key))]
    pub async fn create_index(
        &self,
        db: &str,
        col: &str,
        spec: &IndexSpec,
    ) -> Result<Index, Error> {
        let req = Request::new(Method::POST, self.url(&[db, "collections", col, "indexes"]))
            .json(&spec.body())?
            .idempotent(true);
        self.client.json(req, "index").await
    }

    #[instrument(skip_all, fields(db = %db, col = %col, key = %key))]
    pub async fn get_index(&self, db: &str, col: &str, key: &str) -> Result<Index, Error> {
        self.client
            .json(
                Request::new(
                    Method::GET,
                    self.url(&[db, "collections", col, "indexes", key]),
                ),
                "index",
            )
            .await
    }

    #[instrument(skip_all, fields(db = %db, col = %col))]
    pub async fn list_indexes(&self, db: &str, col: &str) -> Result<IndexList, Error> {
        self.client
            .json(
                Request::new(Method::GET, self.url(&[db, "collections", col, "indexes"])),
                "index list",
            )
            .await
    }

    #[instrument(skip_all, fields(db = %db, col = %col, key = %key))]
    pub async fn delete_index(&self, db: &str, col: &str, key: &str) -> Result<(), Error> {
        self.client
            .execute(Request::new(
                Method::DELETE,
                self.url(&[db, "collections", col, "indexes", key]),
            ))
            .await
            .map(drop)
    }

    /// Polls until the index is `available`.
    #[instrument(skip_all, fields(db = %db, col = %col, key = %key))]
    pub async fn wait_index_available(
        &self,
        db: &str,
        col: &str,
        key: &str,
        timeout: Duration,
    ) -> Result<Index, Error> {
        let what = format!("index {db}.{col}.{key}");
        poll_until_available(
            &what,
            timeout,
            || self.get_index(db, col, key),
            |i| (i.status.clone(), i.error.clone()),
        )
        .await
    }
}

async fn poll_until_available<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut fetch: F,
    status: impl Fn(&T) -> (SchemaStatus, String),
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let start = Instant::now();
    let mut interval = Duration::from_millis(50);
    loop {
        let item = fetch().await?;
        match status(&item) {
            (SchemaStatus::Available, _) => return Ok(item),
            (SchemaStatus::Failed | SchemaStatus::Stuck, message) => {
                return Err(Error::SchemaFailed {
                    what: what.to_owned(),
                    message,
                });
            }
            _ => {}
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(Error::WaitTimeout {
                what: what.to_owned(),
                waited,
            });
        }
        tokio::time::sleep(interval.min(timeout - waited)).await;
        interval = (interval * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_bodies() {
        assert_eq!(
            AttributeSpec::string("pair", 32).required().body(),
            json!({"key":"pair","required":true,"array":false,"size":32})
        );
        assert_eq!(
            AttributeSpec::integer_range("revision", 0, 1000)
                .default_value(0)
                .body(),
            json!({"key":"revision","required":false,"array":false,"default":0,"min":0,"max":1000})
        );
        assert_eq!(
            AttributeSpec::enumeration("status", ["live", "deleted"]).body(),
            json!({"key":"status","required":false,"array":false,"elements":["live","deleted"]})
        );
        assert_eq!(
            AttributeSpec::string("targets", 64).array().body()["array"],
            json!(true)
        );
        assert_eq!(AttributeSpec::float("x").kind.path(), "float");
        assert_eq!(AttributeSpec::datetime("t").kind.path(), "datetime");
        assert_eq!(AttributeSpec::boolean("b").kind.path(), "boolean");
    }

    #[test]
    fn index_bodies() {
        assert_eq!(
            IndexSpec::new("by_email", IndexType::Unique, ["email"]).body(),
            json!({"key":"by_email","type":"unique","attributes":["email"]})
        );
        assert_eq!(
            IndexSpec::new("feed", IndexType::Key, ["status", "postedAt"])
                .orders([Order::Asc, Order::Desc])
                .body()["orders"],
            json!(["ASC", "DESC"])
        );
    }
}
