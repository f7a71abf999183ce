//! The pure domain of G3netic Signals: no I/O, no Appwrite, no Discord. Everything here is typed
//! values built by parsing ("parse, don't validate") and functions over them, so services can
//! be thin and this crate exhaustively tested.

pub mod email;
pub mod entitlements;
pub mod ids;
pub mod plans;
pub mod sellapp;
pub mod signal;
pub mod signing;
pub mod snowflake;
pub mod until;

pub use email::Email;
pub use snowflake::Snowflake;
