//! The HTTP core: one pooled `reqwest` client, Appwrite's headers, error mapping and the retry
//! loop. Service modules build a [`Request`] and hand it to [`Client::execute`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{debug, instrument, warn};
use url::Url;

use crate::config::{ApiKey, Config, RetryPolicy, SessionSecret, normalize_endpoint};
use crate::error::Error;

/// The response format we ask for; it fixes the JSON shapes to the 1.8 models.
pub const RESPONSE_FORMAT: &str = "1.8.0";

/// A `Retry-After` longer than this is cut short: a stuck caller is worse than an early retry.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Shared {
    http: reqwest::Client,
    endpoint: Url,
    project_id: String,
    retry: RetryPolicy,
}

#[derive(Clone)]
enum Auth {
    None,
    Key(ApiKey),
    Session(SessionSecret),
}

/// The Appwrite client. Cheap to clone; clones share one connection pool.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    auth: Auth,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match self.auth {
            Auth::None => "none",
            Auth::Key(_) => "key",
            Auth::Session(_) => "session",
        };
        f.debug_struct("Client")
            .field("endpoint", &self.shared.endpoint.as_str())
            .field("project_id", &self.shared.project_id)
            .field("auth", &auth)
            .finish()
    }
}

impl Client {
    /// Builds the client; fails only on a bad endpoint or TLS setup.
    pub fn new(config: Config) -> Result<Self, Error> {
        let endpoint = normalize_endpoint(&config.endpoint)?;
        if config.project_id.is_empty() {
            return Err(Error::InvalidInput("project id is empty".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("g3-appwrite/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::Transport)?;
        Ok(Self {
            shared: Arc::new(Shared {
                http,
                endpoint,
                project_id: config.project_id,
                retry: config.retry,
            }),
            auth: config.api_key.map_or(Auth::None, Auth::Key),
        })
    }

    /// The same client acting as a user: sends `X-Appwrite-Session` and never the key.
    pub fn with_session(&self, session: &SessionSecret) -> Client {
        Client {
            shared: Arc::clone(&self.shared),
            auth: Auth::Session(session.clone()),
        }
    }

    /// The same client with no credentials (public endpoints, guest calls).
    pub fn anonymous(&self) -> Client {
        Client {
            shared: Arc::clone(&self.shared),
            auth: Auth::None,
        }
    }

    /// Whether this client authenticates with the server key.
    pub fn has_key(&self) -> bool {
        matches!(self.auth, Auth::Key(_))
    }

    /// The normalised API base, e.g. `http://127.0.0.1:8080/v1`.
    pub fn endpoint(&self) -> &Url {
        &self.shared.endpoint
    }

    pub fn project_id(&self) -> &str {
        &self.shared.project_id
    }

    pub(crate) fn session_secret(&self) -> Option<&SessionSecret> {
        match &self.auth {
            Auth::Session(s) => Some(s),
            _ => None,
        }
    }

    /// `endpoint` + the given path segments, each percent-encoded.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.shared.endpoint.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// `GET /ping` → `Pong!`; returns the round-trip time of one attempt.
    #[instrument(skip_all)]
    pub async fn ping(&self) -> Result<Duration, Error> {
        let start = Instant::now();
        let resp = self
            .execute(Request::new(Method::GET, self.url(&["ping"])).no_retry())
            .await?;
        let elapsed = start.elapsed();
        let text = String::from_utf8_lossy(&resp.body);
        if text.contains("Pong") {
            Ok(elapsed)
        } else {
            Err(Error::Api {
                status: resp.status,
                kind: crate::ErrorKind::Unknown,
                message: format!(
                    "unexpected ping answer: {}",
                    text.chars().take(80).collect::<String>()
                ),
            })
        }
    }

    /// `GET /health/version` → e.g. `1.8.1`.
    #[instrument(skip_all)]
    pub async fn version(&self) -> Result<String, Error> {
        #[derive(serde::Deserialize)]
        struct Version {
            version: String,
        }
        let v: Version = self
            .json(
                Request::new(Method::GET, self.url(&["health", "version"])),
                "version",
            )
            .await?;
        Ok(v.version)
    }

    /// Runs a request and decodes its JSON body.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        req: Request,
        what: &'static str,
    ) -> Result<T, Error> {
        let resp = self.execute(req).await?;
        decode(what, &resp.body)
    }

    /// Runs a request with retries; any non-2xx status becomes [`Error::Api`].
    pub(crate) async fn execute(&self, req: Request) -> Result<RawResponse, Error> {
        let policy = self.shared.retry;
        let max_attempts = if req.retry {
            policy.max_attempts.max(1)
        } else {
            1
        };
        let mut attempt = 1;
        loop {
            let (err, retry_after) = match self.send_once(&req).await {
                Ok(resp) if (200..300).contains(&resp.status) => {
                    debug!(method = %req.method, path = req.url.path(), status = resp.status, attempt, "appwrite call");
                    return Ok(resp);
                }
                Ok(resp) => (
                    Error::from_response(resp.status, &resp.body),
                    retry_after(&resp.headers),
                ),
                Err(e) => (e, None),
            };
            // A non-idempotent call is repeated only when the server surely did not act on it:
            // the connection was never made, or it was rejected by the rate limiter.
            let safe_to_repeat = req.idempotent || err.is_connect() || err.status() == Some(429);
            if attempt >= max_attempts || !err.is_retryable() || !safe_to_repeat {
                debug!(method = %req.method, path = req.url.path(), attempt, error = %err, "appwrite call failed");
                return Err(err);
            }
            let delay =
                retry_after.map_or_else(|| policy.backoff(attempt), |d| d.min(MAX_RETRY_AFTER));
            warn!(
                method = %req.method,
                path = req.url.path(),
                attempt,
                max_attempts,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %err,
                "retrying appwrite call"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn send_once(&self, req: &Request) -> Result<RawResponse, Error> {
        let mut builder = self
            .shared
            .http
            .request(req.method.clone(), req.url.clone())
            .header("X-Appwrite-Project", &self.shared.project_id)
            .header("X-Appwrite-Response-Format", RESPONSE_FORMAT);
        builder = match &self.auth {
            Auth::None => builder,
            Auth::Key(key) => builder.header("X-Appwrite-Key", sensitive(key.expose())?),
            Auth::Session(s) => builder.header("X-Appwrite-Session", sensitive(s.expose())?),
        };
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        builder = match &req.body {
            Body::None => builder,
            Body::Json(bytes) => builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes.clone()),
            Body::Multipart(m) => builder.multipart(m.to_form()?),
        };
        let resp = builder.send().await.map_err(Error::from_reqwest)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(Error::from_reqwest)?;
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }
}

fn sensitive(value: &str) -> Result<HeaderValue, Error> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| Error::InvalidInput("credential is not a valid header value".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

/// `Retry-After` in seconds (the form Appwrite and common proxies send).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

pub(crate) fn decode<T: DeserializeOwned>(what: &'static str, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|source| Error::Decode { what, source })
}

/// One call, replayable for retries. Deliberately not `Debug`: bodies may hold passwords.
pub(crate) struct Request {
    pub method: Method,
    pub url: Url,
    pub body: Body,
    pub headers: Vec<(&'static str, String)>,
    /// Repeating it cannot do harm (GET, PUT, PATCH, DELETE, create with our own id).
    pub idempotent: bool,
    pub retry: bool,
}

impl Request {
    pub fn new(method: Method, url: Url) -> Self {
        let idempotent = method != Method::POST;
        Self {
            method,
            url,
            body: Body::None,
            headers: Vec::new(),
            idempotent,
            retry: true,
        }
    }

    pub fn json(mut self, body: &impl Serialize) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::InvalidInput(format!("body does not serialise: {e}")))?;
        self.body = Body::Json(Bytes::from(bytes));
        Ok(self)
    }

    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    pub fn no_retry(mut self) -> Self {
        self.retry = false;
        self
    }

    pub fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

pub(crate) enum Body {
    None,
    Json(Bytes),
    Multipart(MultipartBody),
}

/// A multipart form kept as plain data so each retry can rebuild it.
pub(crate) struct MultipartBody {
    pub fields: Vec<(&'static str, String)>,
    pub file_name: String,
    pub content_type: String,
    pub data: Bytes,
}

impl MultipartBody {
    fn to_form(&self) -> Result<reqwest::multipart::Form, Error> {
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in &self.fields {
            form = form.text(*name, value.clone());
        }
        let part = reqwest::multipart::Part::stream(reqwest::Body::from(self.data.clone()))
            .file_name(self.file_name.clone())
            .mime_str(&self.content_type)
            .map_err(|e| Error::InvalidInput(format!("bad content type: {e}")))?;
        Ok(form.part("file", part))
    }
}

#[derive(Debug)]
pub(crate) struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_retry_after() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after", HeaderValue::from_static("0.5"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(500)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("-1"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn urls_encode_segments() {
        let client =
            Client::new(Config::new("http://127.0.0.1:1/v1/", "p").with_api_key("sekrit")).unwrap();
        assert_eq!(
            client
                .url(&["databases", "g3", "collections", "a b"])
                .as_str(),
            "http://127.0.0.1:1/v1/databases/g3/collections/a%20b"
        );
        assert!(!format!("{client:?}").contains("sekrit"));
    }

    #[test]
    fn idempotency_defaults_by_method() {
        let url = Url::parse("http://h/v1").unwrap();
        assert!(Request::new(Method::GET, url.clone()).idempotent);
        assert!(Request::new(Method::PUT, url.clone()).idempotent);
        assert!(Request::new(Method::DELETE, url.clone()).idempotent);
        assert!(!Request::new(Method::POST, url).idempotent);
    }
}
