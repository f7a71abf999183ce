//! Test helpers shared by every crate's tests: a bootstrapped Appwrite emulator ([`backend`]),
//! fakes for Discord ([`discord`]), Sell.app ([`sellapp`]), Discord's CDN ([`cdn`]) and a crypto
//! exchange's public market data ([`exchange`]: Binance and Bybit streams and klines), a checker
//! for Appwrite's OpenAPI response schemas ([`openapi`]), waiting on a condition ([`wait`]), and
//! where the shared reference material lives ([`shared_dir`]).

pub mod backend;
pub mod cdn;
pub mod discord;
pub mod exchange;
pub mod openapi;
pub mod sellapp;
pub mod wait;
pub mod web_client;

use std::path::PathBuf;

/// The read-only `shared/` folder beside the repository (Appwrite specs, Sell.app examples).
/// `G3_SHARED_DIR` overrides it; otherwise it is `<repo>/../shared`.
pub fn shared_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("G3_SHARED_DIR") {
        return PathBuf::from(dir);
    }
    // crates/testkit -> repo root -> its parent.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}
