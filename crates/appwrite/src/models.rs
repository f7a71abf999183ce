//! Response models from the 1.8.1 OpenAPI spec, plus ids and create-if-absent outcomes.
//! Documents wrap the caller's own serde type; everything else is a fixed Appwrite shape.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::config::{SessionSecret, TokenSecret};
use crate::error::Error;

/// A document id (or user, team, file id): either one we choose or `unique()` (server picks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    Unique,
    Custom(String),
}

impl Id {
    pub fn unique() -> Self {
        Id::Unique
    }

    pub fn custom(id: impl Into<String>) -> Self {
        let id = id.into();
        if id == "unique()" {
            Id::Unique
        } else {
            Id::Custom(id)
        }
    }

    /// The value sent on the wire.
    pub fn as_wire(&self) -> &str {
        match self {
            Id::Unique => "unique()",
            Id::Custom(id) => id,
        }
    }

    /// Whether we chose the id, which makes a create idempotent (a repeat answers 409).
    pub fn is_custom(&self) -> bool {
        matches!(self, Id::Custom(_))
    }

    /// Appwrite's rule for custom ids: 1 to 36 of `a-z A-Z 0-9 . - _`, not starting with `. - _`.
    pub fn validate(&self) -> Result<(), Error> {
        let Id::Custom(id) = self else {
            return Ok(());
        };
        let ok_chars = id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        let ok_start = id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        if ok_chars && ok_start && id.len() <= 36 {
            Ok(())
        } else {
            Err(Error::InvalidInput(format!(
                "invalid id {id:?}: use 1-36 chars of a-z A-Z 0-9 . - _, starting with a letter or digit"
            )))
        }
    }
}

impl From<&str> for Id {
    fn from(id: &str) -> Self {
        Id::custom(id)
    }
}
impl From<String> for Id {
    fn from(id: String) -> Self {
        Id::custom(id)
    }
}
impl From<&String> for Id {
    fn from(id: &String) -> Self {
        Id::custom(id.as_str())
    }
}

/// What a create-if-absent call found.
#[derive(Debug, Clone, PartialEq)]
pub enum Upserted<T> {
    Created(T),
    /// It was already there (possibly created by an earlier attempt of the same call).
    Existed(T),
}

impl<T> Upserted<T> {
    pub fn was_created(&self) -> bool {
        matches!(self, Upserted::Created(_))
    }
    pub fn into_inner(self) -> T {
        match self {
            Upserted::Created(t) | Upserted::Existed(t) => t,
        }
    }
    pub fn get(&self) -> &T {
        match self {
            Upserted::Created(t) | Upserted::Existed(t) => t,
        }
    }
}

/// A document: Appwrite's system fields plus the caller's attributes in `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document<T> {
    #[serde(rename = "$id")]
    pub id: String,
    /// Insertion order, new in 1.8 (absent on older servers: 0).
    #[serde(rename = "$sequence", default, deserialize_with = "int_or_string")]
    pub sequence: i64,
    #[serde(rename = "$collectionId")]
    pub collection_id: String,
    #[serde(rename = "$databaseId")]
    pub database_id: String,
    #[serde(rename = "$createdAt", with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(rename = "$updatedAt", with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(rename = "$permissions", default)]
    pub permissions: Vec<String>,
    #[serde(flatten)]
    pub data: T,
}

impl<T> Document<T> {
    /// `$updatedAt` in Appwrite's own format, e.g. for a `greater_than("$updatedAt", ..)` cursor.
    pub fn updated_at_string(&self) -> String {
        format_datetime(self.updated_at)
    }
}

/// Formats a time as Appwrite writes it: `2024-05-01T12:34:56.789+00:00`.
pub fn format_datetime(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DocumentList<T> {
    pub total: u64,
    pub documents: Vec<Document<T>>,
}

fn int_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrString {
        Int(i64),
        Str(String),
    }
    match Option::<IntOrString>::deserialize(d)? {
        None => Ok(0),
        Some(IntOrString::Int(i)) => Ok(i),
        Some(IntOrString::Str(s)) if s.is_empty() => Ok(0),
        Some(IntOrString::Str(s)) => s.parse().map_err(serde::de::Error::custom),
    }
}

/// Datetime attributes in Appwrite's format, for `#[serde(with = ...)]` on document types.
pub mod datetime {
    /// An optional datetime: null when unset; `""` (which Appwrite writes for dates that never
    /// happened) and null both read as `None`.
    pub mod optional {
        use serde::{Deserialize, Deserializer, Serializer};
        use time::OffsetDateTime;
        use time::format_description::well_known::Rfc3339;

        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&crate::format_datetime(*t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) if s.is_empty() => Ok(None),
                Some(s) => OffsetDateTime::parse(&s, &Rfc3339)
                    .map(Some)
                    .map_err(serde::de::Error::custom),
            }
        }
    }

    /// A required datetime.
    pub mod required {
        use serde::{Deserialize, Deserializer, Serializer};
        use time::OffsetDateTime;
        use time::format_description::well_known::Rfc3339;

        pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&crate::format_datetime(*t))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
            let s = String::deserialize(d)?;
            OffsetDateTime::parse(&s, &Rfc3339).map_err(serde::de::Error::custom)
        }
    }
}

/// Appwrite's own models write an unset date as `""`, as Appwrite does.
mod lenient_datetime {
    use serde::Serializer;
    use time::OffsetDateTime;

    pub use super::datetime::optional::deserialize;

    pub fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::format_datetime(*t)),
            None => s.serialize_str(""),
        }
    }
}

/// An Appwrite user (`GET /users/{id}`, `GET /account`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(rename = "$id")]
    pub id: String,
    #[serde(rename = "$createdAt", with = "lenient_datetime", default)]
    pub created_at: Option<OffsetDateTime>,
    #[serde(rename = "$updatedAt", with = "lenient_datetime", default)]
    pub updated_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub email_verification: bool,
    #[serde(default)]
    pub phone_verification: bool,
    /// `true` when the account is enabled.
    #[serde(default)]
    pub status: bool,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub mfa: bool,
    #[serde(default)]
    pub prefs: Value,
    #[serde(with = "lenient_datetime", default)]
    pub registration: Option<OffsetDateTime>,
    #[serde(with = "lenient_datetime", default)]
    pub password_update: Option<OffsetDateTime>,
    #[serde(with = "lenient_datetime", default)]
    pub accessed_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UserList {
    pub total: u64,
    pub users: Vec<User>,
}

/// A session. `secret` is only filled when the session was created with the server key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    #[serde(rename = "$id")]
    pub id: String,
    #[serde(rename = "$createdAt", with = "lenient_datetime", default)]
    pub created_at: Option<OffsetDateTime>,
    pub user_id: String,
    #[serde(with = "lenient_datetime", default)]
    pub expire: Option<OffsetDateTime>,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub client_name: String,
    #[serde(default)]
    pub os_name: String,
    #[serde(default)]
    pub current: bool,
    #[serde(default)]
    pub factors: Vec<String>,
    #[serde(default)]
    pub secret: SessionSecret,
}

impl Default for SessionSecret {
    fn default() -> Self {
        SessionSecret::new(String::new())
    }
}

impl Default for TokenSecret {
    fn default() -> Self {
        TokenSecret::new(String::new())
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SessionList {
    pub total: u64,
    pub sessions: Vec<Session>,
}

/// A one-time token (email code, verification, recovery). `secret` only with the server key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    #[serde(rename = "$id")]
    pub id: String,
    #[serde(rename = "$createdAt", with = "lenient_datetime", default)]
    pub created_at: Option<OffsetDateTime>,
    pub user_id: String,
    #[serde(default)]
    pub secret: TokenSecret,
    #[serde(with = "lenient_datetime", default)]
    pub expire: Option<OffsetDateTime>,
    #[serde(default)]
    pub phrase: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    #[serde(rename = "$id")]
    pub id: String,
    #[serde(rename = "$createdAt", with = "lenient_datetime", default)]
    pub created_at: Option<OffsetDateTime>,
    #[serde(rename = "$updatedAt", with = "lenient_datetime", default)]
    pub updated_at: Option<OffsetDateTime>,
    pub name: String,
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub prefs: Value,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    #[serde(rename = "$id")]
    pub id: String,
    #[serde(rename = "$createdAt", with = "lenient_datetime", default)]
    pub created_at: Option<OffsetDateTime>,
    #[serde(rename = "$updatedAt", with = "lenient_datetime", default)]
    pub updated_at: Option<OffsetDateTime>,
    pub user_id: String,
    #[serde(default)]
    pub user_name: String,
    #[serde(default)]
    pub user_email: String,
    pub team_id: String,
    #[serde(default)]
    pub team_name: String,
    #[serde(with = "lenient_datetime", default)]
    pub invited: Option<OffsetDateTime>,
    #[serde(with = "lenient_datetime", default)]
    pub joined: Option<OffsetDateTime>,
    #[serde(default)]
    pub confirm: bool,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MembershipList {
    pub total: u64,
    pub memberships: Vec<Membership>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Database {
    #[serde(rename = "$id")]
    pub id: String,
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Collection {
    #[serde(rename = "$id")]
    pub id: String,
    #[serde(rename = "$permissions", default)]
    pub permissions: Vec<String>,
    pub database_id: String,
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub document_security: bool,
    #[serde(default)]
    pub attributes: Vec<Attribute>,
    #[serde(default)]
    pub indexes: Vec<Index>,
}

/// Where an attribute or index is in its asynchronous life.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum SchemaStatus {
    Available,
    Processing,
    Deleting,
    Stuck,
    Failed,
    Other(String),
}

impl From<String> for SchemaStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "available" => SchemaStatus::Available,
            "processing" => SchemaStatus::Processing,
            "deleting" => SchemaStatus::Deleting,
            "stuck" => SchemaStatus::Stuck,
            "failed" => SchemaStatus::Failed,
            _ => SchemaStatus::Other(s),
        }
    }
}

/// Any attribute kind; kind-specific fields are `None` where they do not apply.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Attribute {
    pub key: String,
    /// `string`, `integer`, `double`, `boolean`, `datetime`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub status: SchemaStatus,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub array: Option<bool>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub min: Option<Value>,
    #[serde(default)]
    pub max: Option<Value>,
    #[serde(default)]
    pub elements: Option<Vec<String>>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub default: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AttributeList {
    pub total: u64,
    pub attributes: Vec<Attribute>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Index {
    pub key: String,
    /// `key`, `unique` or `fulltext`.
    #[serde(rename = "type")]
    pub kind: String,
    pub status: SchemaStatus,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub attributes: Vec<String>,
    #[serde(default)]
    pub orders: Vec<Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IndexList {
    pub total: u64,
    pub indexes: Vec<Index>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    #[serde(rename = "$id")]
    pub id: String,
    #[serde(rename = "$permissions", default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub file_security: bool,
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub maximum_file_size: u64,
    #[serde(default)]
    pub allowed_file_extensions: Vec<String>,
    #[serde(default)]
    pub compression: String,
    #[serde(default)]
    pub encryption: bool,
    #[serde(default)]
    pub antivirus: bool,
}

/// File metadata.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct File {
    #[serde(rename = "$id")]
    pub id: String,
    pub bucket_id: String,
    #[serde(rename = "$createdAt", with = "lenient_datetime", default)]
    pub created_at: Option<OffsetDateTime>,
    #[serde(rename = "$updatedAt", with = "lenient_datetime", default)]
    pub updated_at: Option<OffsetDateTime>,
    #[serde(rename = "$permissions", default)]
    pub permissions: Vec<String>,
    pub name: String,
    #[serde(default)]
    pub signature: String,
    #[serde(default)]
    pub mime_type: String,
    #[serde(default)]
    pub size_original: u64,
    #[serde(default)]
    pub chunks_total: u64,
    #[serde(default)]
    pub chunks_uploaded: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FileList {
    pub total: u64,
    pub files: Vec<File>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Signal {
        pair: String,
        revision: i64,
    }

    #[test]
    fn document_with_caller_type() {
        let json = r#"{"$id":"123","$sequence":7,"$collectionId":"signals","$databaseId":"g3",
            "$createdAt":"2024-05-01T12:34:56.789+00:00","$updatedAt":"2024-05-02T00:00:00.000+00:00",
            "$permissions":["read(\"team:paid\")"],"pair":"BTCUSDT","revision":2}"#;
        let doc: Document<Signal> = serde_json::from_str(json).unwrap();
        assert_eq!(doc.id, "123");
        assert_eq!(doc.sequence, 7);
        assert_eq!(doc.data.pair, "BTCUSDT");
        assert_eq!(doc.data.revision, 2);
        assert_eq!(doc.created_at.millisecond(), 789);
        assert_eq!(doc.updated_at_string(), "2024-05-02T00:00:00.000+00:00");
        // A 1.7 server sent $sequence as a string; a 1.6 server not at all.
        let older = json.replace("\"$sequence\":7,", "\"$sequence\":\"8\",");
        assert_eq!(
            serde_json::from_str::<Document<Signal>>(&older)
                .unwrap()
                .sequence,
            8
        );
        let oldest = json.replace("\"$sequence\":7,", "");
        assert_eq!(
            serde_json::from_str::<Document<Signal>>(&oldest)
                .unwrap()
                .sequence,
            0
        );
        let round = serde_json::to_value(&doc).unwrap();
        assert_eq!(round["pair"], "BTCUSDT");
        assert_eq!(round["$id"], "123");
    }

    #[test]
    fn users_with_empty_dates_and_secret_sessions() {
        let json = r#"{"$id":"u1","$createdAt":"2024-05-01T12:34:56.789+00:00","$updatedAt":"2024-05-01T12:34:56.789+00:00",
            "name":"","registration":"2024-05-01T12:34:56.789+00:00","status":true,"labels":["admin"],"passwordUpdate":"",
            "email":"a@b.c","phone":"","emailVerification":false,"phoneVerification":false,"mfa":false,"prefs":{},
            "targets":[],"accessedAt":""}"#;
        let user: User = serde_json::from_str(json).unwrap();
        assert_eq!(user.email, "a@b.c");
        assert_eq!(user.password_update, None);
        assert!(user.registration.is_some());
        let session: Session = serde_json::from_str(
            r#"{"$id":"s","userId":"u1","expire":"2025-05-01T12:34:56.789+00:00","secret":"topsecret","current":true}"#,
        )
        .unwrap();
        assert_eq!(session.secret.expose(), "topsecret");
        assert!(!format!("{session:?}").contains("topsecret"));
    }

    #[test]
    fn ids() {
        assert_eq!(Id::from("unique()"), Id::Unique);
        assert_eq!(Id::unique().as_wire(), "unique()");
        assert!(Id::from("1234567890123456789").validate().is_ok());
        assert!(Id::from("a.b-c_d").validate().is_ok());
        assert!(Id::from("_a").validate().is_err());
        assert!(Id::from("").validate().is_err());
        assert!(Id::from("a b").validate().is_err());
        assert!(Id::from("x".repeat(37)).validate().is_err());
        assert!(Id::from("x".repeat(36)).validate().is_ok());
    }

    #[test]
    fn schema_status() {
        let a: Attribute = serde_json::from_str(
            r#"{"key":"k","type":"string","status":"processing","error":"","required":false,"size":10}"#,
        )
        .unwrap();
        assert_eq!(a.status, SchemaStatus::Processing);
        assert_eq!(a.size, Some(10));
    }
}
