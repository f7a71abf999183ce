//! Client configuration: where Appwrite is, which project, which credentials, how patient to be.
//! Secrets live in newtypes that never print; the endpoint is normalised once, here.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use crate::error::Error;

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret itself. Call it only where the value goes on the wire or into a cookie.
            pub fn expose(&self) -> &str {
                &self.0
            }

            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Ok(Self(Option::<String>::deserialize(deserializer)?.unwrap_or_default()))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

secret_type!(
    /// A server API key, sent as `X-Appwrite-Key`.
    ApiKey
);
secret_type!(
    /// A user's session secret, sent as `X-Appwrite-Session` and used to authenticate Realtime.
    SessionSecret
);
secret_type!(
    /// The secret of a one-time token (email code, verification, recovery).
    TokenSecret
);

/// How often and how patiently idempotent calls are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first; `1` means no retry.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each time (with jitter).
    pub base_delay: Duration,
    /// Upper bound for one backoff delay (a server's `Retry-After` may exceed it, up to a minute).
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// One attempt, no retry: what tests that count requests want.
    pub const fn none() -> Self {
        Self {
            max_attempts: 1,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        }
    }

    /// The exponential backoff with "equal jitter" before retry number `retry` (1-based): a
    /// random delay in `[d/2, d]` where `d = min(base * 2^(retry-1), max)`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let full = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let half = full / 2;
        let spread = full.saturating_sub(half);
        let jitter = if spread.is_zero() {
            Duration::ZERO
        } else {
            let nanos = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(rand::random_range(0..=nanos))
        };
        half + jitter
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// Everything a [`crate::Client`] needs. Build it as a struct literal or with [`Config::new`].
#[derive(Debug, Clone)]
pub struct Config {
    /// The API base, e.g. `http://127.0.0.1:8080/v1`. A bare origin (`http://host:port`) gets
    /// `/v1` appended; a trailing slash is ignored. Any other path is kept as given and `/v1`
    /// appended unless it already ends with it (Appwrite behind a path prefix).
    pub endpoint: String,
    pub project_id: String,
    /// The server key; `None` for a client that only acts with user sessions.
    pub api_key: Option<ApiKey>,
    /// Per-request timeout (connect + response + body).
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl Config {
    pub fn new(endpoint: impl Into<String>, project_id: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            project_id: project_id.into(),
            api_key: None,
            timeout: Duration::from_secs(15),
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_api_key(mut self, key: impl Into<ApiKey>) -> Self {
        self.api_key = Some(key.into());
        self
    }
}

/// Normalises an endpoint to an `http(s)://host[:port]/.../v1` URL without a trailing slash.
pub fn normalize_endpoint(endpoint: &str) -> Result<Url, Error> {
    let mut url = Url::parse(endpoint.trim())
        .map_err(|e| Error::InvalidInput(format!("endpoint {endpoint:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::InvalidInput(format!(
            "endpoint {endpoint:?} must be http or https"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::InvalidInput(format!(
            "endpoint {endpoint:?} has no host"
        )));
    }
    url.set_query(None);
    url.set_fragment(None);
    let trimmed = url.path().trim_end_matches('/').to_owned();
    let path = if trimmed.ends_with("/v1") {
        trimmed
    } else {
        format!("{trimmed}/v1")
    };
    url.set_path(&path);
    Ok(url)
}

/// The Realtime URL for a normalised endpoint: `ws(s)://host/.../v1/realtime?project=P&channels[]=..`.
pub fn realtime_url(endpoint: &Url, project_id: &str, channels: &[String]) -> Result<Url, Error> {
    let mut url = endpoint.clone();
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme).map_err(|()| {
        Error::InvalidInput(format!("cannot derive a websocket URL from {endpoint}"))
    })?;
    url.path_segments_mut()
        .map_err(|()| Error::InvalidInput(format!("endpoint {endpoint} cannot have a path")))?
        .push("realtime");
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("project", project_id);
        for channel in channels {
            q.append_pair("channels[]", channel);
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let key = ApiKey::new("very-secret");
        let session = SessionSecret::from("s3cr3t");
        assert_eq!(format!("{key:?}"), "[redacted]");
        assert_eq!(format!("{session:?}"), "[redacted]");
        let config = Config::new("http://x", "p").with_api_key("very-secret");
        assert!(!format!("{config:?}").contains("very-secret"));
        assert_eq!(key.expose(), "very-secret");
    }

    #[test]
    fn endpoint_normalisation() {
        for (input, want) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1"),
            ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
            ("http://127.0.0.1:8080/v1/", "http://127.0.0.1:8080/v1"),
            (
                "https://cloud.example.com/appwrite/v1",
                "https://cloud.example.com/appwrite/v1",
            ),
            (
                "https://example.com/appwrite",
                "https://example.com/appwrite/v1",
            ),
            ("  http://h/v1?x=1  ", "http://h/v1"),
        ] {
            assert_eq!(normalize_endpoint(input).unwrap().as_str(), want, "{input}");
        }
        assert!(matches!(
            normalize_endpoint("ftp://h"),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            normalize_endpoint("not a url"),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn realtime_url_derivation() {
        let channels = vec!["databases.g3.collections.signals.documents".to_owned()];
        let http = normalize_endpoint("http://127.0.0.1:8080").unwrap();
        let url = realtime_url(&http, "proj", &channels).unwrap();
        assert_eq!(
            url.as_str(),
            "ws://127.0.0.1:8080/v1/realtime?project=proj&channels%5B%5D=databases.g3.collections.signals.documents"
        );
        let https = normalize_endpoint("https://aw.example.com/v1/").unwrap();
        let url = realtime_url(&https, "p", &["account".to_owned()]).unwrap();
        assert_eq!(url.scheme(), "wss");
        assert_eq!(url.path(), "/v1/realtime");
        let pairs: Vec<_> = url.query_pairs().collect();
        assert_eq!(pairs[1].0, "channels[]");
        assert_eq!(pairs[1].1, "account");
    }

    #[test]
    fn backoff_is_bounded_and_grows() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let d1 = policy.backoff(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = policy.backoff(3);
            assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
            let d20 = policy.backoff(20);
            assert!(d20 >= Duration::from_millis(500) && d20 <= Duration::from_secs(1));
        }
        assert_eq!(RetryPolicy::none().backoff(1), Duration::ZERO);
    }
}
