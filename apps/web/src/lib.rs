//! The web dashboard: accounts through Appwrite (server-side sessions in an HttpOnly cookie),
//! paid gating and the signal feed (live over SSE, see [`live`]), rendered with askama. Every
//! route is listed in [`router`]; `main`, devstack and the tests all start it through [`run`].

mod account;
mod admin;
mod auth;
pub mod authcache;
pub mod cookies;
mod error;
mod feed;
pub mod link;
pub mod live;
mod markdown;
pub mod metrics;
pub mod ratelimit;
pub mod security;
mod session;
mod templates;

use std::{future::Future, sync::Arc};

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
use g3_core::plans::{PlanCatalog, PlanRoles};
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;
use url::Url;

pub use error::AppError;
pub use link::DiscordSettings;
pub use ratelimit::Limits;

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

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
    /// Sell.app products to plans (`SELLAPP_PLANS`), so staff can retry failed deliveries
    /// from `/admin`; empty turns that button off.
    pub plans: PlanCatalog,
    /// Discord linking; `None` turns it off (the account page says so).
    pub discord: Option<DiscordSettings>,
    /// The Discord roles each plan gives (`PLAN_ROLES`), for the roles a linked user joins with.
    pub plan_roles: PlanRoles,
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
    secure: bool,
    limits: Limits,
    limiter: ratelimit::SlidingWindow,
    trust_proxy: bool,
    auth_cache: authcache::AuthCache,
    live: live::LiveOptions,
    hub: live::Hub,
    metrics: metrics::Metrics,
    /// Turns true when the server shuts down: live streams end so the graceful stop can finish.
    closing: tokio::sync::watch::Sender<bool>,
    discord: Option<link::Discord>,
    pending_links: link::Pending,
    newest_page: feed::NewestPage,
    route_names: std::sync::Mutex<
        Option<(
            std::time::Instant,
            std::collections::HashMap<String, String>,
        )>,
    >,
}

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
        Ok(Self(Arc::new(Inner {
            access: Access::new(appwrite.clone(), settings.plans.clone())
                .with_roles(settings.plan_roles.clone()),
            appwrite,
            origin: settings
                .public_url
                .origin()
                .ascii_serialization()
                .trim_end_matches('/')
                .to_owned(),
            public_url: settings.public_url.clone(),
            store_url: settings.store_url.to_string(),
            secure: settings.secure_cookies(),
            limits: settings.limits,
            limiter: ratelimit::SlidingWindow::default(),
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
            pending_links: link::Pending::default(),
            newest_page: feed::NewestPage::default(),
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
    ) -> Result<std::collections::HashMap<String, String>, g3_appwrite::Error> {
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
        let names = feed::route_names(client).await?;
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

    /// Counts a sign-in attempt against the client address and, if known, the email.
    pub fn throttle(&self, ip: &str, email: Option<&str>) -> Result<(), AppError> {
        let l = self.0.limits;
        self.0
            .limiter
            .check(&format!("ip:{ip}"), l.per_ip, l.window)
            .map_err(AppError::RateLimited)?;
        if let Some(email) = email {
            self.0
                .limiter
                .check(
                    &format!("email:{}", email.trim().to_lowercase()),
                    l.per_email,
                    l.window,
                )
                .map_err(AppError::RateLimited)?;
        }
        Ok(())
    }
}

const APP_CSS: &str = include_str!("../static/app.css");
const APP_JS: &str = include_str!("../static/app.js");

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/", get(|| async { Redirect::to("/feed") }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
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
        .route("/metrics", get(metrics_text))
        .route("/feed", get(feed::feed))
        .route("/feed/stream", get(live::stream))
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

async fn metrics_text(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(),
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

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        APP_JS,
    )
}

/// Serves until `shutdown` resolves.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
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
    let closing = state.0.closing.clone();
    let served = serve(listener, router(state), async move {
        shutdown.await;
        // Open event streams would hold the graceful stop forever.
        closing.send_replace(true);
    })
    .await;
    if let Some(task) = upstream {
        task.abort();
    }
    served
}

/// Serves HTTP/1.1 on `listener` until `shutdown` resolves, then waits for open connections
/// to finish (live streams end when `closing` turns true).
///
/// A plain hyper HTTP/1 connection per client rather than `axum::serve`: this service speaks
/// HTTP/1.1 only (a reverse proxy terminates TLS and HTTP/2), and the single-protocol
/// connection holds about 4 KB less per open live stream (measured at 5,000 streams).
async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    use hyper_util::{
        rt::{TokioIo, TokioTimer},
        server::graceful::GracefulShutdown,
        service::TowerToHyperService,
    };
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, addr) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little, keep serving.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Small event-stream writes must not wait for delayed ACKs (Nagle): ~40 ms.
                let _ = tcp.set_nodelay(true);
                let app = app.clone();
                let service = tower::service_fn(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(axum::extract::ConnectInfo(addr));
                    let mut app = app.clone();
                    async move {
                        use tower::Service as _;
                        app.call(req.map(axum::body::Body::new)).await
                    }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    // Slow clients may not hold a connection open by trickling headers.
                    .header_read_timeout(std::time::Duration::from_secs(30))
                    .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service));
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
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
            plans: PlanCatalog::default(),
            discord: None,
            plan_roles: PlanRoles::default(),
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
