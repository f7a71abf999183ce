//! devstack starts on a fresh data directory, seeds its demo accounts and signals, runs the
//! webhook service whose printed demo purchase works and the web dashboard (feed for the demo
//! customer, live updates, paywall for a new sign-up), and starts again on the same directory
//! without redoing anything.

use std::{net::SocketAddr, time::Duration};

use devstack::{DEMO_ACCOUNTS, DemoPurchase, Settings, WEB_SERVICE};
use futures_util::StreamExt;
use reqwest::redirect::Policy;

fn settings(dir: &std::path::Path) -> Settings {
    Settings {
        data_dir: dir.to_path_buf(),
        emulator_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        webhook_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        web_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        // Off here so counts are exact; `the_demo_collector_feeds_signals_through_ingest` runs it.
        demo_interval: None,
        project_id: "g3".into(),
        api_key: "test-key".into(),
        discord_token: None,
    }
}

#[tokio::test]
async fn fresh_start_seeds_accounts_and_the_demo_purchase_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    let running = devstack::start(&settings(dir.path()), &mut |l| lines.push(l.to_owned()))
        .await
        .unwrap();
    assert!(
        lines.iter().any(|l| l.contains("bootstrap: [1/")),
        "progress shown: {lines:?}"
    );

    let banner = running.banner(dir.path());
    for account in DEMO_ACCOUNTS {
        assert!(banner.contains(account.email) && banner.contains(account.password));
        // The printed credentials really work.
        let session = running
            .client
            .account()
            .create_email_password_session(account.email, account.password)
            .await
            .unwrap();
        let me = running
            .client
            .with_session(&session.secret)
            .account()
            .get()
            .await
            .unwrap();
        assert_eq!(me.email, account.email);
        assert!(me.email_verification);
    }
    let teams = running.client.teams();
    assert!(
        teams
            .find_membership("staff", "demo-staff")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        teams
            .find_membership("paid", "demo-customer")
            .await
            .unwrap()
            .is_some()
    );

    // The demo purchase the banner prints is correctly signed and grants access.
    let purchase = DemoPurchase::new(running.webhook_addr);
    assert!(banner.contains(&purchase.curl()));
    let reply = reqwest::Client::new()
        .post(&purchase.url)
        .header("content-type", "application/json")
        .header("signature", &purchase.signature)
        .body(purchase.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let buyer = running
        .client
        .users()
        .find_by_email("buyer@g3.local")
        .await
        .unwrap()
        .unwrap();
    assert!(
        teams
            .find_membership("paid", &buyer.id)
            .await
            .unwrap()
            .is_some()
    );
    let open_stream = web_shows_the_feed_live_and_the_paywall(&running, &banner).await;
    // A browser still watching the live feed does not hold the stop up.
    tokio::time::timeout(Duration::from_secs(10), running.stop())
        .await
        .expect("devstack stops with a stream open")
        .unwrap();
    drop(open_stream);

    // Same directory again: the data is still there and nothing is redone.
    let mut lines = Vec::new();
    let again = devstack::start(&settings(dir.path()), &mut |l| lines.push(l.to_owned()))
        .await
        .unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l == "bootstrap: schema already up to date"),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("seed:")), "{lines:?}");
    assert!(
        again
            .client
            .users()
            .find_by_email("buyer@g3.local")
            .await
            .unwrap()
            .is_some()
    );
    again.stop().await.unwrap();
}

/// A browser without a cookie store: keeps `g3_session` and `g3_csrf` by hand.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn new(base: String) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            base,
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            self.cookies.push((k.to_owned(), val.to_owned()));
        }
    }

    async fn get(&mut self, path: &str) -> reqwest::Response {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        resp
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        if !self.cookies.iter().any(|(k, _)| k == "g3_csrf") {
            self.get("/healthz").await;
        }
        let csrf = self
            .cookies
            .iter()
            .find(|(k, _)| k == "g3_csrf")
            .map(|(_, v)| v.clone())
            .unwrap();
        let mut all = form.to_vec();
        all.push(("csrf", &csrf));
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(&all)
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        resp
    }
}

type Body =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// Returns the customer's live stream, still open.
async fn web_shows_the_feed_live_and_the_paywall(
    running: &devstack::Running,
    banner: &str,
) -> Body {
    let web = running.web_url();
    assert!(banner.contains(&web), "{banner}");
    assert!(banner.contains(WEB_SERVICE.email) && banner.contains(WEB_SERVICE.password));
    let service = running
        .client
        .users()
        .find_by_email(WEB_SERVICE.email)
        .await
        .unwrap()
        .unwrap();
    assert!(
        running
            .client
            .teams()
            .find_membership("staff", &service.id)
            .await
            .unwrap()
            .is_some()
    );

    // The demo customer sees the seeded signals.
    let customer = DEMO_ACCOUNTS.iter().find(|a| !a.staff).unwrap();
    let mut b = Browser::new(web.clone());
    let r = b
        .post(
            "/signin",
            &[("email", customer.email), ("password", customer.password)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let r = b.get("/feed").await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert_eq!(body.matches("<article").count(), 10, "{body}");
    assert!(body.contains("BTCUSDT") && body.contains("VIP Calls"));
    assert!(body.contains("marker edited") && body.contains("marker deleted"));

    // A signal written now reaches the customer's open stream.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = reqwest::get(format!("{web}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("g3_web_upstream_connected 1") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stream = b
        .http
        .get(format!("{web}/feed/stream"))
        .header("cookie", b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut stream: Body = Box::pin(stream.bytes_stream());
    let mut signal = serde_json::json!({
        "source_guild_id": "1", "source_channel_id": "1100000000000000001",
        "source_message_id": "1399999999999999999", "route_key": "vip-calls",
        "content": "fresh from the test", "revision": 1, "status": "live",
        "posted_at": g3_appwrite::format_datetime(time_now()),
    });
    signal["author_name"] = "Tester".into();
    running
        .client
        .documents("g3", "signals")
        .create::<serde_json::Value>("1399999999999999999", &signal, None)
        .await
        .unwrap();
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !text.contains("fresh from the test") {
            let chunk = stream.next().await.unwrap().unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("the live event arrives");
    assert!(text.contains("event: signal"), "{text}");

    // A new sign-up gets the paywall.
    let mut newcomer = Browser::new(web.clone());
    let r = newcomer
        .post(
            "/signup",
            &[
                ("email", "newcomer@g3.local"),
                ("password", "newcomer password"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let r = newcomer.get("/feed").await;
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(body.contains("The feed is for members"));
    assert!(!body.contains("BTCUSDT"));
    stream
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

#[tokio::test]
async fn the_demo_collector_feeds_signals_through_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.demo_interval = Some(Duration::from_millis(30));
    let running = devstack::start(&s, &mut |_| {}).await.unwrap();
    let docs = running.client.documents("g3", "signals");
    let seeded = docs.list::<serde_json::Value>(&[]).await.unwrap().total;
    // Signals posted by the demo collector arrive through the signed ingest endpoint, parsed.
    let grown = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let page = docs
                .list::<g3_store::models::Signal>(&[g3_appwrite::Query::order_desc("$createdAt")])
                .await
                .unwrap();
            if page.total >= seeded + 3 {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the demo collector posts");
    let newest = &grown.documents[0].data;
    assert_eq!(newest.source_guild_id, devstack::demo_collector::DEMO_GUILD);
    assert!(
        grown
            .documents
            .iter()
            .take(3)
            .any(|d| d.data.pair.is_some()),
        "demo signals are parsed trades"
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn demo_signals_are_mirrored_into_the_sandbox_and_shown_on_its_page() {
    let dir = tempfile::tempdir().unwrap();
    let running = devstack::start(&settings(dir.path()), &mut |_| {})
        .await
        .unwrap();
    assert!(running.banner(dir.path()).contains(&running.sandbox.url()));
    // The seeded VIP Calls route mirrors into this customer channel.
    const VIP_CUSTOMER: u64 = 1_300_000_000_000_000_001;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let messages = loop {
        let m = running.sandbox.fake.messages(VIP_CUSTOMER);
        if !m.is_empty() {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no demo signal mirrored into the sandbox"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let page = reqwest::get(running.sandbox.url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("VIP Calls"), "{page}");
    let first_line = messages[0].content.lines().next().unwrap_or_default();
    let escaped = first_line
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;");
    assert!(
        page.contains(&escaped),
        "{escaped:?} not on the page:\n{page}"
    );
    running.stop().await.unwrap();
}
