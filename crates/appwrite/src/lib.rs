//! The shared Appwrite 1.8 client: the only code in the workspace that knows Appwrite's URLs,
//! headers and JSON. Services get typed calls (documents, schema, users, account, teams,
//! storage, health, realtime and the long-lived Realtime [`Follower`]) and typed errors; retries
//! and secrets are handled here.
//!
//! ```no_run
//! # async fn demo() -> Result<(), g3_appwrite::Error> {
//! use g3_appwrite::{Client, Config, Query};
//! let client = Client::new(Config::new("http://127.0.0.1:8080/v1", "g3").with_api_key("key"))?;
//! let page = client
//!     .documents("g3", "signals")
//!     .list::<serde_json::Value>(&[Query::order_desc("$createdAt"), Query::limit(10)])
//!     .await?;
//! # let _ = page; Ok(()) }
//! ```

mod account;
mod channel;
mod client;
mod config;
mod databases;
mod documents;
mod error;
mod follower;
mod models;
mod permission;
mod query;
mod realtime;
mod storage;
mod teams;
mod users;

pub use account::Account;
pub use channel::Channel;
pub use client::{Client, RESPONSE_FORMAT};
pub use config::{
    ApiKey, Config, RetryPolicy, SessionSecret, TokenSecret, normalize_endpoint, realtime_url,
};
pub use databases::{AttributeKind, AttributeSpec, Databases, IndexSpec, IndexType, Order};
pub use documents::Documents;
pub use error::{Error, ErrorKind};
pub use follower::{Credentials, Follow, Follower, Interruption};
pub use models::{
    Attribute, AttributeList, Bucket, Collection, Database, Document, DocumentList, File, FileList,
    Id, Index, IndexList, Membership, MembershipList, SchemaStatus, Session, SessionList, Team,
    Token, Upserted, User, UserList, datetime, format_datetime,
};
pub use permission::{Action, Permission, Role};
pub use query::{Query, QueryScalar, QueryValues};
pub use realtime::{EventAction, Realtime, RealtimeEvent, RealtimeMessage, RealtimeOptions};
pub use storage::{
    BucketSpec, ByteRange, CHUNK_SIZE, ContentRange, FileContent, Storage, UploadFile,
    chunk_content_range, chunk_ranges,
};
pub use teams::Teams;
pub use users::Users;
