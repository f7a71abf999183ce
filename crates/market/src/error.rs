//! The one error type of this crate: what went wrong talking to a venue's REST API, naming the
//! venue and the call.

use crate::venue::Venue;

#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    /// The request did not complete (connect, timeout, body read).
    #[error("{venue} {call}: {source}")]
    Http {
        venue: Venue,
        call: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// The venue answered with its own error (Binance `{"code", "msg"}`, Bybit `retCode`).
    #[error("{venue} {call}: exchange error {code}: {message}")]
    Exchange {
        venue: Venue,
        call: &'static str,
        code: i64,
        message: String,
    },
    /// A non-2xx status without a readable exchange error.
    #[error("{venue} {call}: HTTP {status}: {body}")]
    Status {
        venue: Venue,
        call: &'static str,
        status: u16,
        body: String,
    },
    /// Not asked: the last request failed a moment ago, and the next is due in `retry_in`.
    #[error("{venue} {call}: not asked again for {retry_in:?} after it failed: {last}")]
    Unavailable {
        venue: Venue,
        call: &'static str,
        last: String,
        retry_in: std::time::Duration,
    },
    /// An answer that is not what the documentation describes.
    #[error("{venue} {call}: unexpected answer: {detail}")]
    Decode {
        venue: Venue,
        call: &'static str,
        detail: String,
    },
}
