//! `TestApp`: the web service on 127.0.0.1:0 against a bootstrapped emulator (and more replicas
//! of it on the same backend), and `Browser`s that keep their own cookies (reqwest here has no
//! cookie store) and never follow redirects.

#![allow(dead_code)]

use std::{collections::HashMap, time::Duration};

use g3_access::{Access, Cause};
use g3_appwrite::Query;
use g3_core::{Email, plans::Plan, plans::PlanCatalog};
use g3_store::{
    Collection,
    models::{Route, Signal},
    schema::{TEAM_PAID, TEAM_STAFF},
};
use reqwest::{StatusCode, header::HeaderMap, redirect::Policy};
use testkit::backend::Backend;
use time::OffsetDateTime;
use url::Url;
use web::{Limits, MetricsAccess, Secret, ServiceUser, Settings, live::LiveOptions};

pub const PASSWORD: &str = "correct horse battery";
pub const STORE_URL: &str = "https://store.example/buy";
pub const SERVICE_EMAIL: &str = "web-service@test.local";
pub const SERVICE_PASSWORD: &str = "web service password";
/// `/metrics` on the public listener needs this bearer token in every test app.
pub const METRICS_TOKEN: &str = "test metrics token";

pub struct TestApp {
    pub backend: Backend,
    pub url: String,
    /// What this replica was started with; [`TestApp::replica`] starts another with the same.
    pub settings: Settings,
    pub server: Server,
}

/// One running `web::run`: its address, a way to stop it and its task.
pub struct Server {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Runs `settings` on a fresh 127.0.0.1 port (and a metrics listener when given).
    pub async fn start(settings: Settings, metrics: Option<tokio::net::TcpListener>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, settings, metrics)
    }

    pub fn start_on(
        listener: tokio::net::TcpListener,
        settings: Settings,
        metrics: Option<tokio::net::TcpListener>,
    ) -> Self {
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(web::run_with_metrics(
            settings,
            listener,
            metrics,
            async move {
                // Dropping the sender (the test ending) does not stop the server.
                if stopped.await.is_err() {
                    std::future::pending::<()>().await;
                }
            },
        ));
        Self {
            url,
            stop: Some(stop),
            task,
        }
    }

    /// Asks the server to stop, as SIGTERM would.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits (bounded) for `run` to return.
    pub async fn stopped(&mut self, within: Duration) -> anyhow::Result<()> {
        tokio::time::timeout(within, &mut self.task)
            .await
            .expect("run returns within the bound")
            .expect("run did not panic")
    }

    /// [`Server::stop`], then [`Server::stopped`].
    pub async fn shutdown(&mut self, within: Duration) -> anyhow::Result<()> {
        self.stop();
        self.stopped(within).await
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Limits::default()).await
    }

    pub async fn spawn_with(limits: Limits) -> Self {
        Self::spawn_custom(limits, None).await
    }

    /// `public_url` as a proxy in front would present it (e.g. `https://…`); default: our own.
    pub async fn spawn_custom(limits: Limits, public_url: Option<&str>) -> Self {
        let backend = testkit::backend::backend().await;
        Self::spawn_full(backend, limits, public_url, LiveOptions::default()).await
    }

    /// On a given backend (e.g. on disk, to restart it) with live-feed options.
    pub async fn spawn_on(backend: Backend, live: LiveOptions) -> Self {
        Self::spawn_full(backend, Limits::default(), None, live).await
    }

    /// With settings changed by `configure` (plans, Discord, …).
    pub async fn spawn_configured(configure: impl FnOnce(&mut Settings)) -> Self {
        let backend = testkit::backend::backend().await;
        Self::spawn_inner(
            backend,
            Limits::default(),
            None,
            LiveOptions::default(),
            configure,
        )
        .await
    }

    async fn spawn_full(
        backend: Backend,
        limits: Limits,
        public_url: Option<&str>,
        live: LiveOptions,
    ) -> Self {
        Self::spawn_inner(backend, limits, public_url, live, |_| {}).await
    }

    async fn spawn_inner(
        backend: Backend,
        limits: Limits,
        public_url: Option<&str>,
        live: LiveOptions,
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        // The live feed's service user: a member of `staff` and `paid`.
        let users = backend.client.users();
        if users.find_by_email(SERVICE_EMAIL).await.unwrap().is_none() {
            let user = users
                .create(
                    "web-service",
                    SERVICE_EMAIL,
                    Some(SERVICE_PASSWORD),
                    Some("web service"),
                )
                .await
                .unwrap();
            g3_access::enlist_service_user(&backend.client, &user.id)
                .await
                .unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut settings = Settings {
            appwrite: backend.client_config(),
            public_url: Url::parse(public_url.unwrap_or(&url)).unwrap(),
            store_url: Url::parse(STORE_URL).unwrap(),
            service_user: Some(ServiceUser {
                email: SERVICE_EMAIL.into(),
                password: Secret::new(SERVICE_PASSWORD),
            }),
            live,
            limits,
            trust_proxy: false,
            auth_cache: std::time::Duration::from_secs(2),
            card_cache: web::card::CARD_CACHE_DEFAULT,
            plans: Default::default(),
            discord: None,
            account_links: Default::default(),
            link_ttl: web::link::STATE_TTL,
            metrics: MetricsAccess::from_token(Some(METRICS_TOKEN)),
            timeouts: Default::default(),
        };
        configure(&mut settings);
        let server = Server::start_on(listener, settings.clone(), None);
        Self {
            backend,
            url,
            settings,
            server,
        }
    }

    /// Another replica on the same backend with the same settings (the same public URL, as
    /// behind one load balancer), on its own port.
    pub async fn replica(&self) -> Server {
        Server::start(self.settings.clone(), None).await
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        metrics_of(&self.url).await
    }

    /// The value of an unlabelled metric.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .parse()
            .unwrap()
    }

    /// Waits (bounded) until `metric` has `value`.
    pub async fn wait_metric(&self, name: &str, value: f64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if self.metric(name).await == value {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} never reached {value}: {}",
                self.metrics().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn browser(&self) -> Browser {
        browser(&self.url)
    }

    pub fn access(&self) -> Access {
        Access::new(self.backend.client.clone(), PlanCatalog::default())
    }

    /// Mail the emulator "sent" to `to`, newest first: `(kind, data)`.
    pub async fn mail(&self, to: &str) -> Vec<(String, serde_json::Value)> {
        let url = format!("http://{}/mailbox/api/messages", self.backend.addr);
        let v: serde_json::Value = reqwest::Client::new()
            .get(url)
            .query(&[("to", to)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["kind"].as_str().unwrap().to_owned(), m["data"].clone()))
            .collect()
    }

    /// The newest mail of `kind` to `to`: `(userId, secret)`.
    pub async fn latest(&self, to: &str, kind: &str) -> (String, String) {
        let mail = self.mail(to).await;
        let (_, data) = mail
            .iter()
            .find(|(k, _)| k == kind)
            .unwrap_or_else(|| panic!("no {kind} mail to {to}: {mail:?}"));
        (
            data["userId"].as_str().unwrap().to_owned(),
            data["secret"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn grant(&self, email: &str) {
        self.membership_change(self.access().grant(
            &Email::parse(email).unwrap(),
            &Plan::parse("vip").unwrap(),
            Some(OffsetDateTime::now_utc() + time::Duration::days(30)),
            &Cause::Admin {
                actor: "test".into(),
                reason: "test grant".into(),
            },
        ))
        .await
        .unwrap();
    }

    /// Runs `change`, which changes someone's team membership elsewhere (the webhook, ops),
    /// and waits until this web has heard of it over Realtime, as it has in practice by a
    /// browser's next request: web decides what users may see from a cache that membership
    /// events invalidate (`web::access_cache`). A change that touched no membership sends no
    /// event; then this gives up waiting after 2 s.
    pub async fn membership_change<T>(&self, change: impl std::future::Future<Output = T>) -> T {
        let heard = self.metric("g3_web_membership_events_total").await;
        let out = change.await;
        let _ = testkit::wait::wait_for(
            "web hears the membership change",
            Duration::from_secs(2),
            || async {
                (self.metric("g3_web_membership_events_total").await > heard).then_some(())
            },
        )
        .await;
        out
    }

    pub async fn user_id(&self, email: &str) -> String {
        self.backend
            .client
            .users()
            .find_by_email(email)
            .await
            .unwrap()
            .expect("user exists")
            .id
    }

    pub async fn add_to_team(&self, team: &str, email: &str) {
        let id = self.user_id(email).await;
        let teams = self.backend.client.teams();
        self.membership_change(teams.add_member_if_absent(team, &id, &[] as &[&str]))
            .await
            .unwrap();
    }

    pub async fn make_staff(&self, email: &str) {
        self.add_to_team(TEAM_STAFF, email).await;
    }

    pub async fn make_paid(&self, email: &str) {
        self.add_to_team(TEAM_PAID, email).await;
    }

    pub async fn seed_route(&self, key: &str, name: &str) {
        let route = Route {
            source_channel_id: format!("9{}", key.len()),
            source_guild_id: None,
            name: name.into(),
            customer_channel_ids: vec![],
            enabled: Some(true),
        };
        Collection::<Route>::new(&self.backend.client)
            .create(key, &route, None)
            .await
            .unwrap();
    }

    /// A signal with id `id`, changed by `edit` before it is written.
    pub async fn seed_signal(&self, id: &str, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut s = signal(id);
        edit(&mut s);
        Collection::<Signal>::new(&self.backend.client)
            .raw()
            .create(id, &s, None)
            .await
            .unwrap();
    }

    pub async fn signal_count(&self) -> u64 {
        Collection::<Signal>::new(&self.backend.client)
            .raw()
            .list::<serde_json::Value>(&[Query::limit(1)])
            .await
            .unwrap()
            .total
    }

    /// Signs `b` up and finishes with the code from the mailbox, as a person would: signed in,
    /// on to `/feed`, the address verified. Returns the answer to the code.
    pub async fn sign_up(&self, b: &mut Browser, email: &str, password: &str) -> Resp {
        b.sign_up(email, password).await;
        let r = self.enter_code(b, email).await;
        assert_eq!(r.status, 303, "code after sign-up: {}", r.body);
        assert_eq!(r.location(), "/feed");
        assert!(b.signed_in());
        r
    }

    /// Posts the newest code mailed to `email` from `b`.
    pub async fn enter_code(&self, b: &mut Browser, email: &str) -> Resp {
        let email = email.to_lowercase();
        let (user_id, code) = self.latest(&email, "email_otp").await;
        b.post(
            "/signin/code/verify",
            &[("email", &email), ("user_id", &user_id), ("code", &code)],
        )
        .await
    }

    /// A signed-up, signed-in browser whose email is verified (by the sign-up code).
    pub async fn verified(&self, email: &str) -> Browser {
        let mut b = self.browser();
        self.sign_up(&mut b, email, PASSWORD).await;
        b
    }

    /// A browser signed in with the password of an account whose email is not verified: it
    /// signed up but never entered the code.
    pub async fn unverified(&self, email: &str, password: &str) -> Browser {
        let mut b = self.browser();
        b.sign_up(email, password).await;
        let r = b.sign_in(email, password).await;
        assert_eq!(r.status, 303, "password sign-in: {}", r.body);
        b
    }
}

/// The `/metrics` text of the web at `base`, with the test bearer token.
pub async fn metrics_of(base: &str) -> String {
    reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A browser with no cookies yet, talking to `base`.
pub fn browser(base: &str) -> Browser {
    Browser {
        http: reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        base: base.to_owned(),
        jar: HashMap::new(),
        from: None,
    }
}

/// A signal document as JSON (built as JSON so the test does not break while `Signal` grows).
pub fn signal(id: &str) -> serde_json::Value {
    serde_json::json!({
        "source_guild_id": "1",
        "source_channel_id": "2",
        "source_message_id": id,
        "route_key": "vip-calls",
        "author_name": "Trader Joe",
        "author_id": "3",
        "content": format!("signal {id}"),
        "pair": "BTC/USDT",
        "side": "long",
        "entries": [62000.0, 61500.5],
        "targets": [63000.0, 64000.0],
        "stop": 60000.0,
        "leverage": 10.0,
        "revision": 1,
        "status": "live",
        "posted_at": g3_appwrite::format_datetime(OffsetDateTime::now_utc()),
    })
}

pub fn minutes_ago(m: i64) -> String {
    g3_appwrite::format_datetime(OffsetDateTime::now_utc() - time::Duration::minutes(m))
}

pub struct Browser {
    http: reqwest::Client,
    base: String,
    pub jar: HashMap<String, String>,
    /// Sent as `X-Forwarded-For` (for apps that trust a proxy): the client address to appear from.
    pub from: Option<String>,
}

impl Browser {
    /// This browser's requests come from `ip` (with `trust_proxy` on).
    pub fn at_ip(mut self, ip: &str) -> Self {
        self.from = Some(ip.to_owned());
        self
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", self.cookie_header());
        if let Some(ip) = &self.from {
            req = req.header("x-forwarded-for", ip);
        }
        req
    }

    /// The value of cookie `name`, under its `__Host-` name too (https public URLs).
    pub fn cookie(&self, name: &str) -> Option<&String> {
        self.jar
            .get(name)
            .or_else(|| self.jar.get(&format!("__Host-{name}")))
    }

    /// Sends the next requests to `base`, cookies kept: a load balancer picking another replica.
    pub fn switch_to(&mut self, base: &str) {
        base.clone_into(&mut self.base);
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, resp: reqwest::Response) -> Resp {
        let status = resp.status();
        let headers = resp.headers().clone();
        for v in headers.get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") || value.is_empty() {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        Resp {
            status,
            headers,
            body: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        let resp = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        self.finish(resp).await
    }

    /// A GET with extra request headers, its body as bytes (files, pictures).
    pub async fn get_bytes(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, bytes::Bytes) {
        let mut req = self.request(reqwest::Method::GET, path);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        (status, headers, resp.bytes().await.unwrap())
    }

    /// Posts a form as is: no CSRF token added.
    pub async fn post_raw(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        let resp = self
            .request(reqwest::Method::POST, path)
            .form(form)
            .send()
            .await
            .unwrap();
        self.finish(resp).await
    }

    /// The CSRF token a page would have put in its forms.
    pub async fn csrf(&mut self) -> String {
        if self.cookie("g3_csrf").is_none() {
            self.get("/healthz").await;
        }
        self.cookie("g3_csrf").expect("a CSRF cookie").clone()
    }

    /// Posts a form with the right CSRF token, as a page's form would.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        let token = self.csrf().await;
        let mut all = form.to_vec();
        all.push(("csrf", &token));
        self.post_raw(path, &all).await
    }

    /// Posts the sign-up form: the answer is the code page, whether or not the email is new.
    pub async fn sign_up(&mut self, email: &str, password: &str) -> Resp {
        let r = self
            .post("/signup", &[("email", email), ("password", password)])
            .await;
        assert_eq!(r.status, 200, "sign-up: {}", r.body);
        assert!(
            r.body.contains("action=\"/signin/code/verify\""),
            "{}",
            r.body
        );
        assert!(!self.signed_in());
        r
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Resp {
        self.post("/signin", &[("email", email), ("password", password)])
            .await
    }

    /// Opens `/feed/stream`, optionally resuming after `last_event_id`.
    pub async fn stream(&mut self, last_event_id: Option<&str>) -> Sse {
        let mut req = self
            .http
            .get(format!("{}/feed/stream", self.base))
            .header("cookie", self.cookie_header())
            .timeout(Duration::from_secs(600));
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.unwrap();
        Sse {
            status: resp.status(),
            content_type: resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
            body: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        }
    }

    pub fn signed_in(&self) -> bool {
        self.cookie("g3_session").is_some()
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: String,
    pub event: String,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// A browser-like reader of an SSE response.
pub struct Sse {
    pub status: StatusCode,
    pub content_type: String,
    body: ByteStream,
    buf: String,
}

impl Sse {
    /// The next event (comments skipped), within `wait`; `None` when the stream ends.
    pub async fn next_within(&mut self, wait: Duration) -> Option<SseEvent> {
        use futures_util::StreamExt;
        tokio::time::timeout(wait, async {
            loop {
                while let Some(end) = self.buf.find("\n\n") {
                    let frame: String = self.buf.drain(..end + 2).collect();
                    let mut e = SseEvent {
                        id: String::new(),
                        event: "message".into(),
                        data: String::new(),
                    };
                    let mut any = false;
                    for line in frame.lines() {
                        if let Some(v) = line.strip_prefix("id:") {
                            e.id = v.trim_start().to_owned();
                            any = true;
                        } else if let Some(v) = line.strip_prefix("event:") {
                            e.event = v.trim_start().to_owned();
                            any = true;
                        } else if let Some(v) = line.strip_prefix("data:") {
                            if !e.data.is_empty() {
                                e.data.push('\n');
                            }
                            e.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                            any = true;
                        }
                    }
                    if any {
                        return Some(e);
                    }
                }
                match self.body.next().await {
                    Some(Ok(chunk)) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                    _ => return None,
                }
            }
        })
        .await
        .expect("an SSE event within the wait")
    }

    /// Whether a keep-alive comment (`:` line) arrives within `wait`, skipping any events
    /// before it.
    pub async fn keep_alive_within(&mut self, wait: Duration) -> bool {
        use futures_util::StreamExt;
        tokio::time::timeout(wait, async {
            loop {
                while let Some(end) = self.buf.find("\n\n") {
                    let frame: String = self.buf.drain(..end + 2).collect();
                    let mut lines = frame.lines().filter(|l| !l.is_empty()).peekable();
                    if lines.peek().is_some() && lines.all(|l| l.starts_with(':')) {
                        return true;
                    }
                }
                match self.body.next().await {
                    Some(Ok(chunk)) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                    _ => return false,
                }
            }
        })
        .await
        .unwrap_or(false)
    }

    /// The next event, within 10 s.
    pub async fn next(&mut self) -> Option<SseEvent> {
        self.next_within(Duration::from_secs(10)).await
    }
}
