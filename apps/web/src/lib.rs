//! The web dashboard: accounts through Appwrite (server-side sessions in an HttpOnly cookie),
//! paid gating and the signal feed (live over SSE, see [`live`]) with each signal's outcome
//! ([`outcomes`]), the results pages (`/performance` for members, `/results` for anyone),
//! rendered with askama. Every route is listed in [`router`]; `main`, devstack and the tests
//! all start it through [`run`].
//!
//! Any number of replicas may run behind a load balancer without sticky sessions: sessions are
//! Appwrite's, started Discord links live in Appwrite (`pending`), and each replica keeps its
//! own upstream Realtime subscription for the live feed.

pub mod access_cache;
mod account;
mod admin;
mod assets;
mod auth;
pub mod authcache;
pub mod card;
pub mod cookies;
mod error;
mod feed;
mod landing;
pub mod link;
pub mod live;
// Public for the fuzz target in fuzz/ (render must never let raw HTML through).
pub mod markdown;
pub mod metrics;
pub mod outcomes;
pub mod pairs;
mod pending;
mod performance;
pub mod ratelimit;
pub mod security;
mod session;
mod templates;

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::header,
    middleware,
    response::{IntoResponse, Redirect},
    routing::{get, post},
};
use g3_access::Access;
use g3_appwrite::Client;
use g3_core::entitlements::PlanConfig;
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;
use url::Url;

pub use account::AccountLinks;
pub use error::AppError;
pub use g3_service::{
    Secret,
    http::{MetricsAccess, Timeouts},
};
pub use link::DiscordSettings;
pub use ratelimit::Limits;

/// The `staff` service user web signs in as for Realtime (Realtime takes no API keys).
#[derive(Clone, Debug)]
pub struct ServiceUser {
    pub email: String,
    pub password: Secret,
}

/// Everything the service needs, loaded once in `main`; tests build it as a literal.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Appwrite with the server key.
    pub appwrite: g3_appwrite::Config,
    /// Where browsers reach this service, e.g. `https://app.example.com`. Decides the cookies'
    /// `Secure` flag, the accepted `Origin` and the links mailed to users.
    pub public_url: Url,
    /// Where to buy a plan.
    pub store_url: Url,
    /// For the live feed's Realtime subscription; without it the stream only keeps alive.
    pub service_user: Option<ServiceUser>,
    pub live: live::LiveOptions,
    pub limits: Limits,
    /// Take the client address from the last `X-Forwarded-For` hop (behind a reverse proxy).
    pub trust_proxy: bool,
    /// How long a session check and a paid/staff standing are reused by `GET`s (0: never);
    /// see [`authcache`].
    pub auth_cache: std::time::Duration,
    /// Rendered cards kept (`WEB_CARD_CACHE`); see [`card::CardCache`].
    pub card_cache: usize,
    /// The plans (`PLANS_FILE`, or `SELLAPP_PLANS` and `PLAN_ROLES`): the routes each unlocks
    /// (what the feed, the live stream and assets show), what the paywall offers, the roles a
    /// linked user joins with, and the products staff need to retry failed deliveries from
    /// `/admin` (none turns that button off).
    pub plans: PlanConfig,
    /// Discord linking; `None` turns it off (the account page says so).
    pub discord: Option<DiscordSettings>,
    /// Where the account page sends customers to manage their subscription and to open the
    /// Discord server (`MANAGE_SUBSCRIPTION_URL`, `DISCORD_INVITE_URL`).
    pub account_links: AccountLinks,
    /// How long a started Discord link waits for Discord's answer ([`link::STATE_TTL`]).
    pub link_ttl: Duration,
    /// Who may read `/metrics` on the public listener (`METRICS_TOKEN`); a separate metrics
    /// listener (see [`run_with_metrics`]) serves them without asking.
    pub metrics: MetricsAccess,
    /// Read deadlines for request headers and bodies (`WEB_HEADER_TIMEOUT_SECS`,
    /// `WEB_BODY_TIMEOUT_SECS`).
    pub timeouts: Timeouts,
}

impl Settings {
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

struct Inner {
    appwrite: Client,
    access: Access,
    public_url: Url,
    origin: String,
    store_url: String,
    account_links: AccountLinks,
    secure: bool,
    limits: Limits,
    limiter: ratelimit::SlidingWindow,
    csrf_key: security::CsrfKey,
    signup_key: security::SignUpKey,
    trust_proxy: bool,
    auth_cache: authcache::AuthCache,
    live: live::LiveOptions,
    hub: live::Hub,
    metrics: metrics::Metrics,
    /// Turns true when the server shuts down: live streams end so the graceful stop can finish.
    closing: tokio::sync::watch::Sender<bool>,
    discord: Option<link::Discord>,
    pending_links: pending::PendingLinks,
    metrics_access: MetricsAccess,
    newest_page: feed::NewestPage,
    /// Each signal's card, rendered once per version for every page and live event.
    cards: card::CardCache,
    access_cache: access_cache::AccessCache,
    pairs: pairs::KnownPairs,
    /// Every signal outcome, fed by the live upstream: card statuses and performance reports.
    outcomes: outcomes::OutcomeBook,
    route_names: std::sync::Mutex<Option<(std::time::Instant, RouteNames)>>,
}

/// Route key -> display name, shared by every request that reads it within the TTL.
pub type RouteNames = Arc<std::collections::HashMap<String, String>>;

/// How long route display names are reused before they are read again.
const ROUTE_NAMES_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// Shared by every request. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let appwrite = Client::new(settings.appwrite.clone()).context("Appwrite client")?;
        anyhow::ensure!(
            appwrite.has_key(),
            "web needs the Appwrite server key (APPWRITE_API_KEY)"
        );
        let pending_links = pending::PendingLinks::new(&appwrite, settings.link_ttl);
        let api_key = settings
            .appwrite
            .api_key
            .as_ref()
            .map_or("", |k| k.expose());
        Ok(Self(Arc::new(Inner {
            access: Access::new(appwrite.clone(), settings.plans.catalog().clone())
                .with_plans(&settings.plans),
            appwrite,
            origin: settings
                .public_url
                .origin()
                .ascii_serialization()
                .trim_end_matches('/')
                .to_owned(),
            public_url: settings.public_url.clone(),
            store_url: settings.store_url.to_string(),
            account_links: settings.account_links.clone(),
            secure: settings.secure_cookies(),
            limits: settings.limits,
            limiter: ratelimit::SlidingWindow::default(),
            csrf_key: security::CsrfKey::derive(api_key),
            signup_key: security::SignUpKey::derive(api_key),
            trust_proxy: settings.trust_proxy,
            auth_cache: authcache::AuthCache::new(settings.auth_cache),
            hub: live::Hub::new(&settings.live),
            live: settings.live.clone(),
            metrics: metrics::Metrics::default(),
            closing: tokio::sync::watch::Sender::new(false),
            discord: settings
                .discord
                .as_ref()
                .map(link::Discord::new)
                .transpose()
                .context("Discord HTTP client")?,
            pending_links,
            metrics_access: settings.metrics.clone(),
            newest_page: feed::NewestPage::default(),
            cards: card::CardCache::new(settings.card_cache),
            access_cache: access_cache::AccessCache::default(),
            pairs: pairs::KnownPairs::default(),
            outcomes: outcomes::OutcomeBook::default(),
            route_names: std::sync::Mutex::new(None),
        })))
    }

    /// The server-key client.
    pub fn appwrite(&self) -> &Client {
        &self.0.appwrite
    }
    pub fn access(&self) -> &Access {
        &self.0.access
    }
    /// The plans: what each unlocks and how it is sold.
    pub fn plans(&self) -> &PlanConfig {
        self.0.access.plan_config()
    }
    pub fn secure_cookies(&self) -> bool {
        self.0.secure
    }
    pub fn origin(&self) -> &str {
        &self.0.origin
    }
    /// The newest feed page, shared by members while no signal changes.
    pub fn newest_page(&self) -> &feed::NewestPage {
        &self.0.newest_page
    }
    /// Rendered signal cards, shared by pages and live fragments.
    pub fn cards(&self) -> &card::CardCache {
        &self.0.cards
    }

    /// Every signal outcome heard: card statuses and performance reports.
    pub fn outcomes(&self) -> &outcomes::OutcomeBook {
        &self.0.outcomes
    }

    /// Pairs seen per route: the feed's pair suggestions.
    pub fn pairs(&self) -> &pairs::KnownPairs {
        &self.0.pairs
    }
    /// What users may see, kept while Realtime reports no membership change.
    pub fn access_cache(&self) -> &access_cache::AccessCache {
        &self.0.access_cache
    }
    pub fn auth_cache(&self) -> &authcache::AuthCache {
        &self.0.auth_cache
    }

    pub fn trust_proxy(&self) -> bool {
        self.0.trust_proxy
    }
    /// Discord linking, when configured.
    pub(crate) fn discord(&self) -> Option<&link::Discord> {
        self.0.discord.as_ref()
    }
    pub fn store_url(&self) -> &str {
        &self.0.store_url
    }
    /// The account page's links to manage the subscription and open the Discord server.
    pub fn account_links(&self) -> &AccountLinks {
        &self.0.account_links
    }
    pub fn hub(&self) -> &live::Hub {
        &self.0.hub
    }
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.0.metrics
    }
    pub fn live(&self) -> &live::LiveOptions {
        &self.0.live
    }
    /// Route key -> display name, read at most every [`ROUTE_NAMES_TTL`]: routes change rarely
    /// and every feed page needs them.
    pub async fn route_names_cached(
        &self,
        client: &Client,
    ) -> Result<RouteNames, g3_appwrite::Error> {
        if let Some((at, names)) = self
            .0
            .route_names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && at.elapsed() < ROUTE_NAMES_TTL
        {
            return Ok(names.clone());
        }
        let names = Arc::new(feed::route_names(client).await?);
        *self.0.route_names.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((std::time::Instant::now(), names.clone()));
        Ok(names)
    }

    /// Changes to true when the server is stopping.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.0.closing.subscribe()
    }

    /// An absolute link to `path` on this site (for mailed links), under the public URL's path
    /// prefix if it has one.
    pub fn link(&self, path: &str) -> String {
        let base = self.0.public_url.as_str().trim_end_matches('/');
        format!("{base}/{}", path.trim_start_matches('/'))
    }

    /// Counts a throttled form that is not a sign-in (a mailed code or reset link, a sign-up, a
    /// password change) against the client address and, if known, the (email, address) pair:
    /// refused past the limits.
    pub fn throttle(&self, ip: &str, email: Option<&str>) -> Result<(), AppError> {
        let l = self.0.limits;
        let limiter = &self.0.limiter;
        let pair = email.map(|e| pair_key(e, ip));
        limiter
            .peek(&ip_key(ip), l.per_ip, l.window)
            .map_err(AppError::RateLimited)?;
        if let Some(pair) = &pair {
            limiter
                .peek(pair, l.per_email, l.window)
                .map_err(AppError::RateLimited)?;
            limiter.record(pair, l.window);
        }
        limiter.record(&ip_key(ip), l.window);
        Ok(())
    }

    /// Before a password or code is checked: refused when this address, or this address for
    /// this email, failed too often; held back a little when the email failed often from
    /// anywhere (a slowdown, so nobody elsewhere can lock the owner out).
    pub async fn sign_in_gate(&self, ip: &str, email: &str) -> Result<(), AppError> {
        let l = self.0.limits;
        let limiter = &self.0.limiter;
        limiter
            .peek(&ip_key(ip), l.per_ip, l.window)
            .map_err(AppError::RateLimited)?;
        limiter
            .peek(&pair_key(email, ip), l.per_email, l.window)
            .map_err(AppError::RateLimited)?;
        let wait = ratelimit::slowdown(limiter.count(&email_key(email), l.window), l.per_email);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// A wrong password or code: counts against the address, the pair and the email. Good
    /// sign-ins are never counted.
    pub fn sign_in_failed(&self, ip: &str, email: &str) {
        let window = self.0.limits.window;
        let limiter = &self.0.limiter;
        limiter.record(&ip_key(ip), window);
        limiter.record(&pair_key(email, ip), window);
        limiter.record(&email_key(email), window);
    }

    /// The key that binds CSRF tokens to sessions; the same on every replica.
    pub(crate) fn csrf_key(&self) -> &security::CsrfKey {
        &self.0.csrf_key
    }

    /// The key of the sign-up proof cookie; the same on every replica.
    pub(crate) fn signup_key(&self) -> &security::SignUpKey {
        &self.0.signup_key
    }
}

fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

fn email_key(email: &str) -> String {
    format!("email:{}", email.trim().to_lowercase())
}

fn pair_key(email: &str, ip: &str) -> String {
    format!("email-ip:{}|{ip}", email.trim().to_lowercase())
}

const APP_CSS: &str = include_str!("../static/app.css");
const APP_JS: &str = include_str!("../static/app.js");
const FAVICON: &str = include_str!("../static/favicon.svg");

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/", get(landing::home))
        .route("/healthz", get(|| async { "ok" }))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
        .route("/favicon.svg", get(favicon))
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent("/favicon.svg") }),
        )
        .route("/signup", get(auth::signup_page).post(auth::signup))
        .route("/signin", get(auth::signin_page).post(auth::signin))
        .route("/signin/code", get(auth::code_page).post(auth::code_send))
        .route("/signin/code/verify", post(auth::code_verify))
        .route("/verify", get(auth::verify))
        .route("/verify/resend", post(auth::resend_verification))
        .route("/recover", get(auth::recover_page).post(auth::recover))
        .route(
            "/recover/confirm",
            get(auth::recover_confirm_page).post(auth::recover_confirm),
        )
        .route("/signout", post(auth::signout))
        .route("/signout/all", post(auth::signout_all))
        .route("/metrics", get(public_metrics))
        .route("/feed", get(feed::feed))
        .route("/feed/stream", get(live::stream))
        .route("/performance", get(performance::performance))
        .route("/results", get(performance::results))
        .route("/rules", get(performance::rules))
        .route("/signals/{signal_id}/assets/{file_id}", get(assets::asset))
        .route("/account", get(account::account))
        .route("/account/password", post(auth::set_password))
        .route("/account/discord/link", post(link::start))
        .route("/account/discord/callback", get(link::callback))
        .route("/account/discord/unlink", post(link::unlink))
        .route("/api/appwrite/ping", get(account::ping))
        .route("/admin", get(admin::home))
        .route(
            "/admin/customers/{email}",
            get(admin::customer).post(admin::change),
        )
        .route("/admin/failures", get(admin::failures::page))
        .route("/admin/failures/{id}/retry", post(admin::failures::retry))
        .route(
            "/admin/users/{user_id}/resync",
            post(admin::failures::resync),
        )
        .fallback(|| async { AppError::NotFound })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security::csrf,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            error::viewer_nav,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security::client_ip,
        ))
        .layer(DefaultBodyLimit::max(security::FORM_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ));
    let form_origin = state.discord().map(link::Discord::authorize_origin);
    for (name, value) in security::headers(form_origin.as_deref()) {
        router = router.layer(SetResponseHeaderLayer::overriding(name, value));
    }
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        ))
        .layer(
            // The path only: query strings carry verification and reset secrets.
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |req: &axum::http::Request<axum::body::Body>| {
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
                },
            ),
        )
        .with_state(state)
}

/// `GET /metrics` on the public listener: only with the bearer token, else as if absent.
async fn public_metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: header::HeaderMap,
) -> Result<axum::response::Response, AppError> {
    if !state.0.metrics_access.allows(&headers) {
        return Err(AppError::NotFound);
    }
    Ok(metrics_text(axum::extract::State(state))
        .await
        .into_response())
}

/// The router of the separate metrics listener (`WEB_METRICS_BIND`): `/metrics` for anyone who
/// reaches it, so bind it to a private address.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "not found") })
        .with_state(state)
}

async fn metrics_text(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(state.access_cache(), state.cards()),
    )
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        APP_CSS,
    )
}

/// The icon never changes between releases, so browsers may keep it for a month.
async fn favicon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=2592000"),
        ],
        FAVICON,
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        APP_JS,
    )
}

/// How long a stopping server waits for open connections after live streams were told to end:
/// a client that stops reading must not hold the shutdown forever.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Serves until `shutdown` resolves, then drains: live streams end, requests in flight finish,
/// and it returns (within [`DRAIN_LIMIT`] at most).
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with_metrics(settings, listener, None, shutdown).await
}

/// [`run`], with `/metrics` also served without authentication on `metrics_listener`
/// (`WEB_METRICS_BIND`, a private address for the scraper).
pub async fn run_with_metrics(
    settings: Settings,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(&settings)?;
    tracing::info!(addr = %listener.local_addr()?, public_url = %settings.public_url, "web listening");
    let upstream = match settings.service_user.clone() {
        Some(user) => Some(tokio::spawn(live::upstream(state.clone(), user))),
        None => {
            tracing::warn!("no service user (WEB_SERVICE_EMAIL): the live feed gets no events");
            None
        }
    };
    let keep_alive = tokio::spawn(live::keep_alive(state.clone()));
    let closing = state.0.closing.clone();
    let stop = async move {
        shutdown.await;
        // Open event streams would hold the graceful stop forever.
        closing.send_replace(true);
    };
    let timeouts = settings.timeouts;
    let public = g3_service::http::serve(listener, router(state.clone()), timeouts, stop);
    let metrics = async {
        let Some(listener) = metrics_listener else {
            return Ok(());
        };
        tracing::info!(addr = %listener.local_addr()?, "web metrics listening");
        let mut closing = state.closing();
        g3_service::http::serve(
            listener,
            metrics_router(state.clone()),
            timeouts,
            async move {
                let _ = closing.wait_for(|c| *c).await;
            },
        )
        .await
    };
    let mut closing = state.closing();
    let drain_limit = async move {
        let _ = closing.wait_for(|c| *c).await;
        tokio::time::sleep(DRAIN_LIMIT).await;
    };
    let served = tokio::select! {
        served = async { tokio::try_join!(public, metrics).map(drop) } => served,
        () = drain_limit => {
            tracing::warn!(limit = ?DRAIN_LIMIT, "connections still open after the drain limit; stopping anyway");
            Ok(())
        }
    };
    if let Some(task) = upstream {
        task.abort();
    }
    keep_alive.abort();
    tracing::info!("web stopped");
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(public: &str) -> Settings {
        Settings {
            appwrite: g3_appwrite::Config::new("http://127.0.0.1:1/v1", "p").with_api_key("k"),
            public_url: Url::parse(public).unwrap(),
            store_url: Url::parse("https://store.example").unwrap(),
            service_user: None,
            live: live::LiveOptions::default(),
            limits: Limits::default(),
            trust_proxy: false,
            auth_cache: std::time::Duration::from_secs(2),
            card_cache: card::CARD_CACHE_DEFAULT,
            plans: PlanConfig::default(),
            discord: None,
            account_links: AccountLinks::default(),
            link_ttl: link::STATE_TTL,
            metrics: MetricsAccess::Hidden,
            timeouts: Timeouts::default(),
        }
    }

    #[test]
    fn links_keep_the_public_prefix_and_scheme_decides_secure() {
        let state = AppState::new(&settings("https://example.com/app/")).unwrap();
        assert_eq!(state.link("/verify"), "https://example.com/app/verify");
        assert_eq!(state.origin(), "https://example.com");
        assert!(state.secure_cookies());
        let state = AppState::new(&settings("http://127.0.0.1:8090")).unwrap();
        assert_eq!(state.link("/verify"), "http://127.0.0.1:8090/verify");
        assert!(!state.secure_cookies());
    }

    #[test]
    fn refuses_to_start_without_the_server_key() {
        let mut s = settings("http://localhost");
        s.appwrite.api_key = None;
        assert!(AppState::new(&s).is_err());
    }
}
