//! devstack starts on a fresh data directory, seeds its demo accounts and signals, runs the
//! webhook service whose printed demo purchase works and the web dashboard (feed for the demo
//! customer, live updates, paywall for a new sign-up), and starts again on the same directory
//! without redoing anything. In the Discord sandbox the demo customer is linked and holds the
//! VIP role; a new customer signs up, verifies, buys in the demo store, links Discord through
//! the sandbox's OAuth2 flow and gets the role, which goes again when staff revoke the plan.
//! On the simulated market the tracker sees demo signals enter and reach a target or a stop.

use std::{net::SocketAddr, time::Duration};

use devstack::{
    DEMO_ACCOUNTS, DemoPurchase, DiscordMode, MarketSettings, Settings, WEB_SERVICE,
    sandbox::{self, DEMO_DISCORD_ID, DEMO_DISCORD_USERNAME, GUILD_ID, VIP_ROLE},
};
use futures_util::StreamExt;
use g3_store::{
    Collection,
    models::{Mirror, RoleState, Signal, SignalOutcome},
};
use reqwest::redirect::Policy;
use testkit::wait::{eventually, wait_for};

fn settings(dir: &std::path::Path) -> Settings {
    Settings {
        data_dir: dir.to_path_buf(),
        emulator_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        webhook_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        web_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        sandbox_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        market_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        market: MarketSettings::default(),
        // Off here so counts are exact; `the_demo_collector_feeds_signals_through_ingest` runs it.
        demo_interval: None,
        project_id: "g3".into(),
        api_key: "test-key".into(),
        discord: DiscordMode::Sandbox,
    }
}

fn fake(running: &devstack::Running) -> &testkit::discord::FakeDiscord {
    &running.sandbox.as_ref().expect("sandbox mode").fake
}

/// Whether the bot recorded `role` as applied for `user_id`.
async fn applied(running: &devstack::Running, user_id: &str, role: u64) -> bool {
    Collection::<RoleState>::new(&running.client)
        .list(&[g3_appwrite::Query::equal("user_id", user_id)])
        .await
        .unwrap()
        .documents
        .iter()
        .any(|d| d.data.role_id == role.to_string() && d.data.applied == Some(true))
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
    // Role sync has given the demo customer's sandbox account the VIP role.
    eventually(
        "the demo customer's VIP role",
        Duration::from_secs(10),
        || applied(&running, "demo-customer", VIP_ROLE),
    )
    .await;
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
    // The new sandbox has the linked account back in the guild with the role it held, as a
    // real guild would have kept it: no role request was needed.
    assert_eq!(
        fake(&again).member_roles(GUILD_ID, DEMO_DISCORD_ID),
        Some(vec![VIP_ROLE])
    );
    assert_eq!(
        fake(&again).discord_user(DEMO_DISCORD_USERNAME).id,
        DEMO_DISCORD_ID
    );
    assert!(fake(&again).role_requests().is_empty());
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

    /// The body of a 200 answer to GET `path`, with the cookies held (none kept).
    async fn get_text(&self, path: &str) -> String {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.text().await.unwrap()
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
    eventually(
        "web's upstream Realtime subscription",
        Duration::from_secs(10),
        || async {
            reqwest::Client::new()
                .get(format!("{web}/metrics"))
                .bearer_auth(devstack::DEMO_METRICS_TOKEN)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
                .contains("g3_web_upstream_connected 1")
        },
    )
    .await;
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
    Collection::<Signal>::new(&running.client)
        .raw()
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
    let mut newcomer = sign_up(running, &web, "newcomer@g3.local", "newcomer password").await;
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
    let signals = Collection::<Signal>::new(&running.client);
    let seeded = signals.list(&[]).await.unwrap().total;
    // Signals posted by the demo collector arrive through the signed ingest endpoint, parsed.
    let grown = wait_for(
        "three signals from the demo collector",
        Duration::from_secs(20),
        || async {
            let page = signals
                .list(&[g3_appwrite::Query::order_desc("$createdAt")])
                .await
                .unwrap();
            (page.total >= seeded + 3).then_some(page)
        },
    )
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
async fn demo_signals_enter_and_reach_a_target_or_their_stop_on_the_simulated_market() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.demo_interval = Some(Duration::from_millis(500));
    // A fast market: the demo signals' levels are a few seconds of movement apart.
    s.market = MarketSettings {
        trades_per_sec: 20.0,
        seed: 7,
        signal_horizon: Duration::from_secs(3),
        ..MarketSettings::default()
    };
    let started = time_now() - time::Duration::seconds(1);
    let running = devstack::start(&s, &mut |_| {}).await.unwrap();
    let banner = running.banner(dir.path());
    assert!(banner.contains(&format!("http://{}", running.market.addr())));
    assert!(banner.contains("SIMULATED") && banner.contains(devstack::TRACKER_SERVICE.email));

    // Every demo signal's outcome, polled: one seen `entered` must later show a target hit or
    // its stop, each after the fill.
    let outcomes = Collection::<SignalOutcome>::new(&running.client);
    let entered = std::cell::RefCell::new(std::collections::HashSet::new());
    let resolved = testkit::wait::wait_for_every(
        "a demo signal entered, then a target or its stop",
        Duration::from_secs(90),
        Duration::from_millis(150),
        || async {
            let docs = outcomes
                .list_all(
                    &[g3_appwrite::Query::greater_than_equal(
                        "posted_at",
                        g3_appwrite::format_datetime(started).as_str(),
                    )],
                    100,
                )
                .await
                .unwrap();
            let mut entered = entered.borrow_mut();
            for doc in &docs {
                if doc.data.status == "entered" {
                    entered.insert(doc.id.clone());
                }
            }
            docs.into_iter().find_map(|doc| {
                let outcome: g3_outcomes::Outcome = serde_json::from_str(&doc.data.outcome).ok()?;
                let resolved = !outcome.targets_hit.is_empty() || outcome.exit.is_some();
                (entered.contains(&doc.id) && resolved).then_some((doc, outcome))
            })
        },
    )
    .await
    .expect("the tracker follows demo signals on the simulated market");
    let (doc, outcome) = resolved;
    assert_eq!(doc.data.venue.as_deref(), Some("binance_spot"));
    let symbol = doc.data.symbol.clone().expect("a symbol");
    assert!(
        devstack::market::DEMO_PAIRS
            .iter()
            .any(|p| p.symbol == symbol),
        "{symbol}"
    );
    let fill = outcome.entry.as_ref().expect("entered");
    let after = outcome
        .targets_hit
        .first()
        .map(|t| &t.touch)
        .or(outcome.exit.as_ref().map(|e| &e.touch))
        .expect("a target or the stop");
    assert!(fill.at <= after.at, "{outcome:?}");
    // The fill is a price the simulated market really traded near.
    let reference = devstack::market::DEMO_PAIRS
        .iter()
        .find(|p| p.symbol == symbol)
        .map(|p| p.price)
        .unwrap();
    assert!((fill.price / reference - 1.0).abs() < 0.2, "{outcome:?}");

    // The customer sees it: the card's status on the feed, and the performance page.
    let customer = DEMO_ACCOUNTS.iter().find(|a| !a.staff).unwrap();
    let mut b = Browser::new(running.web_url());
    let r = b
        .post(
            "/signin",
            &[("email", customer.email), ("password", customer.password)],
        )
        .await;
    assert_eq!(r.status(), 303);
    // New demo signals keep coming (and pushing older ones off the first page), and keep
    // resolving: some card on the first page shows a target or a stop.
    let card = wait_for(
        "a demo signal's target or stop on its card",
        Duration::from_secs(20),
        || async {
            let body = b.get_text("/feed").await;
            body.split("<div class=\"outcome ")
                .skip(1)
                .map(|rest| rest.split("</div>").next().unwrap_or_default())
                .find(|status| status.contains("TP") || status.contains("Stopped"))
                .map(str::to_owned)
        },
    )
    .await
    .expect("the card shows the target or stop");
    assert!(card.contains("outcome-status"), "{card}");
    let performance = b.get_text("/performance").await;
    assert!(
        performance.contains("<h1>Performance</h1>") && performance.contains("<svg"),
        "{performance}"
    );

    // And in the sandbox guild, the bot replied to a mirrored demo signal.
    let mirrors = Collection::<Mirror>::new(&running.client);
    let reply = wait_for(
        "a reply under a mirrored demo signal",
        Duration::from_secs(30),
        || async {
            let posted = mirrors.list_all(&[], 100).await.unwrap();
            posted.iter().find_map(|m| {
                let channel: u64 = m.data.target_channel_id.parse().ok()?;
                let first: u64 = m.data.message_ids.first()?.parse().ok()?;
                fake(&running)
                    .messages(channel)
                    .into_iter()
                    .find(|msg| msg.reply_to == Some(first))
            })
        },
    )
    .await
    .expect("the bot replies when a demo signal hits a target or its stop");
    assert!(
        reply.content.starts_with("TP")
            || reply.content.starts_with("All targets")
            || reply.content.starts_with("Stop"),
        "{}",
        reply.content
    );

    // The seeded signals, posted hours before, trade on listed pairs too: each is followed
    // (or cancelled, the one deleted before entry), none is untrackable.
    let seeded = wait_for(
        "an outcome for every seeded trade",
        Duration::from_secs(30),
        || async {
            let docs = outcomes
                .list_all(
                    &[g3_appwrite::Query::less_than(
                        "posted_at",
                        g3_appwrite::format_datetime(started).as_str(),
                    )],
                    100,
                )
                .await
                .unwrap();
            (docs.len() >= 9).then_some(docs)
        },
    )
    .await
    .expect("the seeded signals are judged");
    for doc in &seeded {
        assert_ne!(
            doc.data.status, "untrackable",
            "{}: {}",
            doc.id, doc.data.outcome
        );
    }
    assert!(seeded.iter().any(|d| d.data.status == "cancelled"));

    // The tracker stops with the rest, releasing its lease.
    tokio::time::timeout(Duration::from_secs(20), running.stop())
        .await
        .expect("devstack stops")
        .unwrap();
}

#[tokio::test]
async fn demo_signals_are_mirrored_into_the_sandbox_and_shown_on_its_page() {
    let dir = tempfile::tempdir().unwrap();
    let running = devstack::start(&settings(dir.path()), &mut |_| {})
        .await
        .unwrap();
    assert!(running.banner(dir.path()).contains(&running.sandbox_url()));
    // The seeded VIP Calls route mirrors into this customer channel.
    const VIP_CUSTOMER: u64 = 1_300_000_000_000_000_001;
    let messages = wait_for(
        "a demo signal mirrored into the sandbox",
        Duration::from_secs(30),
        || async {
            let m = fake(&running).messages(VIP_CUSTOMER);
            (!m.is_empty()).then_some(m)
        },
    )
    .await
    .expect("no demo signal mirrored into the sandbox");
    let page = reqwest::get(running.sandbox_url())
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
    // Were this real Discord, both seeded routes would still mirror into sandbox channels: the
    // banner of real mode says so, with the fix.
    let notes = devstack::route_notes(
        &running.client,
        &running.emulator.endpoint,
        &running.emulator.api_key,
    )
    .await
    .unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].starts_with("route ")
            && notes[0].contains("still mirrors into the sandbox's channel 130000000000000000")
            && notes[0].contains("cargo run -p ops -- routes add --key ")
            && notes[0].contains("--customer-channel <channel id in your guild>"),
        "{notes:?}"
    );
    running.stop().await.unwrap();
}

/// The newest mail of `kind` the emulator "sent" to `email`: `(userId, secret)`.
async fn mail(running: &devstack::Running, email: &str, kind: &str) -> (String, String) {
    let url = format!(
        "http://{}/mailbox/api/messages?to={email}",
        running.emulator.addr
    );
    let mail: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let found = mail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} mail to {email}: {mail}"))
        .clone();
    (
        found["data"]["userId"].as_str().unwrap().to_owned(),
        found["data"]["secret"].as_str().unwrap().to_owned(),
    )
}

/// A browser that signed up on `web` and entered the code from the mailbox: signed in, verified.
async fn sign_up(running: &devstack::Running, web: &str, email: &str, password: &str) -> Browser {
    let mut b = Browser::new(web.to_owned());
    let r = b
        .post("/signup", &[("email", email), ("password", password)])
        .await;
    assert_eq!(r.status(), 200, "the code page");
    let (user_id, code) = mail(running, email, "email_otp").await;
    let r = b
        .post(
            "/signin/code/verify",
            &[("email", email), ("user_id", &user_id), ("code", &code)],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/feed");
    b
}

/// The `<tr>` of a member on the sandbox page.
fn member_row(page: &str, discord_id: u64) -> String {
    let start = page
        .find(&format!("data-member=\"{discord_id}\""))
        .unwrap_or_else(|| panic!("member {discord_id} not on the page:\n{page}"));
    let end = start + page[start..].find("</tr>").unwrap();
    page[start..end].to_owned()
}

const VIP_BADGE: &str =
    "<span class=\"role managed\" title=\"managed by role sync: plan vip\">VIP</span>";

#[tokio::test]
async fn a_new_customer_buys_links_discord_in_the_sandbox_and_gets_the_role_until_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let running = devstack::start(&settings(dir.path()), &mut |_| {})
        .await
        .unwrap();
    let fake = fake(&running);
    let web = running.web_url();
    let banner = running.banner(dir.path());
    for thing in [
        "Link Discord",
        "VIP role within seconds",
        &format!("{web}/admin "),
        &format!("{web}/admin/failures"),
        &running.pages.store_url(),
        "sandbox: a fake Discord in this process (set DISCORD_BOT_TOKEN for real Discord)",
        "linked to sandbox Discord account demo_customer, holds VIP",
    ] {
        assert!(
            banner.contains(thing),
            "{thing:?} not in the banner:\n{banner}"
        );
    }

    // The demo customer is linked to a sandbox account that holds VIP, and staff see it.
    eventually(
        "the demo customer's VIP role",
        Duration::from_secs(10),
        || applied(&running, "demo-customer", VIP_ROLE),
    )
    .await;
    assert_eq!(
        fake.member_roles(GUILD_ID, DEMO_DISCORD_ID),
        Some(vec![VIP_ROLE])
    );
    let page = reqwest::get(running.sandbox_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let row = member_row(&page, DEMO_DISCORD_ID);
    assert!(
        row.contains(DEMO_DISCORD_USERNAME) && row.contains(VIP_BADGE),
        "{row}"
    );
    assert!(
        member_row(&page, sandbox::MODERATOR_ID).contains("<span class=\"role\">Moderator</span>")
    );
    let staff = &DEMO_ACCOUNTS[0];
    let mut admin = Browser::new(web.clone());
    let r = admin
        .post(
            "/signin",
            &[("email", staff.email), ("password", staff.password)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let r = admin.get("/admin/customers/customer@g3.local").await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(
        body.contains(&format!(
            "<small class=\"id\" title=\"Discord role id\">{VIP_ROLE}</small></td>\
             <td data-label=\"Should hold\">yes</td><td data-label=\"Holds\">yes</td>\
             <td data-label=\"On account\" class=\"wrap\">{DEMO_DISCORD_ID}</td>"
        )),
        "{body}"
    );
    assert!(body.contains(DEMO_DISCORD_USERNAME), "{body}");
    assert_eq!(admin.get("/admin/failures").await.status(), 200);

    // A newcomer signs up and enters the emailed code, which verifies their email.
    let email = "newcomer@g3.local";
    let mut b = sign_up(&running, &web, email, "newcomer password").await;
    let user_id = running
        .client
        .users()
        .find_by_email(email)
        .await
        .unwrap()
        .expect("the newcomer's account")
        .id;

    // The paywall's "Buy a plan" leads to the demo store, which sends the signed order.
    let r = b.get("/feed").await;
    assert_eq!(r.status(), 403);
    let paywall = r.text().await.unwrap();
    assert!(
        paywall.contains(&running.pages.store_url()),
        "the paywall links the demo store:\n{paywall}"
    );
    let store = reqwest::get(running.pages.store_url()).await.unwrap();
    assert_eq!(store.status(), 200);
    assert!(store.text().await.unwrap().contains("Pay (demo)"));
    let paid = reqwest::Client::new()
        .post(running.pages.store_url())
        .form(&[("email", email), ("plan", "vip")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 200);
    let receipt = paid.text().await.unwrap();
    assert!(receipt.contains("Paid: order"), "{receipt}");
    // Another site's form is refused.
    let forged = reqwest::Client::new()
        .post(running.pages.store_url())
        .header("origin", "https://evil.example")
        .form(&[("email", "evil@g3.local"), ("plan", "vip")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    // The bot hears members join on its gateway session (GUILD_MEMBER_ADD), as on Discord.
    eventually(
        "the bot's gateway session",
        Duration::from_secs(10),
        || async { fake.gateway_sessions() > 0 },
    )
    .await;
    // "Link Discord": off to the sandbox's authorize page, approved there, back linked.
    let r = b.post("/account/discord/link", &[]).await;
    assert_eq!(r.status(), 303);
    let authorize = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        authorize.starts_with(&format!("{}/oauth2/authorize?", fake.base_url())),
        "{authorize}"
    );
    let consent = reqwest::get(&authorize)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(consent.contains("Authorize G3netic Signals"), "{consent}");
    let callback = fake.approve(&authorize, "newcomer_nick").unwrap();
    let path = callback.strip_prefix(&web).expect("back to web");
    let r = b.get(path).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        "/account?notice=discord-linked"
    );
    let discord_id = fake.discord_user("newcomer_nick").id;
    // The account page is complete in devstack: the plan, where to manage it, the server.
    let account = b.get("/account").await.text().await.unwrap();
    for text in [
        "<td>VIP</td>",
        ">Manage subscription</a>",
        ">Open the server</a>",
    ] {
        assert!(account.contains(text), "{text} missing: {account}");
    }

    // The member has the VIP role at once (joined with it), and the bot records it applied.
    eventually(
        "the newcomer's VIP role",
        Duration::from_secs(5),
        || async {
            fake.member_roles(GUILD_ID, discord_id) == Some(vec![VIP_ROLE])
                && applied(&running, &user_id, VIP_ROLE).await
        },
    )
    .await;
    let page = reqwest::get(running.sandbox_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let row = member_row(&page, discord_id);
    assert!(
        row.contains("newcomer_nick") && row.contains(VIP_BADGE),
        "{row}"
    );

    // Staff revoke the plan in the admin console: the bot takes the role back.
    let r = admin
        .post(
            &format!("/admin/customers/{email}"),
            &[
                ("action", "revoke"),
                ("plan", ""),
                ("reason", "devstack test"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    eventually(
        "the newcomer's VIP role to go",
        Duration::from_secs(5),
        || async { fake.member_roles(GUILD_ID, discord_id) == Some(vec![]) },
    )
    .await;
    let page = reqwest::get(running.sandbox_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(member_row(&page, discord_id).contains("no roles"));
    // The demo customer keeps theirs.
    assert_eq!(
        fake.member_roles(GUILD_ID, DEMO_DISCORD_ID),
        Some(vec![VIP_ROLE])
    );
    running.stop().await.unwrap();
}
