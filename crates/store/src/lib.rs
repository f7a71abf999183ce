//! The product's data in Appwrite: the schema as code (`schema`), the command that makes a
//! backend match it (`bootstrap`), and typed access to the collections. Services and ops use
//! this crate; only `g3-appwrite` below it knows Appwrite's wire format.

pub mod bootstrap;
pub mod collections;
pub mod lease;
pub mod models;
pub mod schema;

pub use collections::{Collection, Model};
