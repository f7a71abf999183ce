//! Signal outcomes on the web: each card's status rendered with the page and updated over the
//! live stream (only to viewers whose plans unlock the route), the member performance page
//! with numbers worked out by hand, the public results page and the landing headline (no route,
//! no signal), and hostile text escaped everywhere. Outcomes are written as the tracker writes
//! them: a `signal_outcomes` document per signal holding a `g3_outcomes` judgement.

mod common;

use std::time::Duration;

use common::{Browser, TestApp};
use g3_access::{Access, Cause};
use g3_core::{Email, entitlements::PlanConfig, plans::Plan, signal::Side};
use g3_outcomes::{History, Market, Outcome, Revision, Rules, Status, Tick, Trade, evaluate};
use g3_store::{Collection, models::SignalOutcome};
use time::OffsetDateTime;

const PLANS: &str = r#"
[plans.basic]
name = "Basic"
products = ["100"]
routes = ["basic-calls"]

[plans.vip]
name = "VIP"
products = ["200"]
routes = ["vip-calls"]
"#;

const VIP: &str = "vip-calls";
const BASIC: &str = "basic-calls";

/// Now, to the second (stored times keep milliseconds).
fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

fn trade(entry: f64, targets: &[f64], stop: Option<f64>) -> Trade {
    Trade {
        pair: "BTC/USDT".into(),
        side: Side::Long,
        entries: vec![entry],
        targets: targets.to_vec(),
        stop,
        leverage: Some(10.0),
    }
}

/// One signal's story: what it said (and when it changed), and the prices after the post.
struct Story {
    id: &'static str,
    route: &'static str,
    posted: OffsetDateTime,
    revisions: Vec<Trade>,
    deleted_after_min: Option<i64>,
    /// (minutes after the post, price)
    ticks: Vec<(i64, f64)>,
    untrackable: Option<&'static str>,
}

impl Story {
    fn new(id: &'static str, route: &'static str, posted: OffsetDateTime, t: Trade) -> Self {
        Story {
            id,
            route,
            posted,
            revisions: vec![t],
            deleted_after_min: None,
            ticks: Vec::new(),
            untrackable: None,
        }
    }

    fn ticks(mut self, ticks: &[(i64, f64)]) -> Self {
        self.ticks = ticks.to_vec();
        self
    }

    fn history(&self) -> History {
        let revisions = self
            .revisions
            .iter()
            .enumerate()
            .map(|(i, t)| Revision {
                revision: i as i64 + 1,
                // Edits a second apart, before the first price.
                effective_at: self.posted + time::Duration::seconds(i as i64),
                trade: t.clone(),
            })
            .collect();
        let deleted = self
            .deleted_after_min
            .map(|m| self.posted + time::Duration::minutes(m));
        History::new(revisions, deleted).unwrap()
    }

    /// The outcome the engine gives, judged up to the last price (or the deletion).
    fn outcome(&self) -> Outcome {
        let history = self.history();
        if let Some(reason) = self.untrackable {
            return Outcome::untrackable(&history, Rules::default().time_limit, reason);
        }
        let prices: Vec<Market> = self
            .ticks
            .iter()
            .map(|(m, p)| {
                Market::Tick(Tick {
                    time: self.posted + time::Duration::minutes(*m),
                    price: *p,
                })
            })
            .collect();
        let until = self
            .ticks
            .last()
            .map(|(m, _)| *m)
            .max(self.deleted_after_min)
            .unwrap_or(0);
        evaluate(
            &history,
            Rules::default(),
            &prices,
            Some(self.posted + time::Duration::minutes(until) + time::Duration::seconds(1)),
        )
        .unwrap()
    }

    /// The document the tracker keeps for this signal.
    fn document(&self) -> SignalOutcome {
        let outcome = self.outcome();
        SignalOutcome {
            route_key: self.route.into(),
            status: outcome.status.as_str().into(),
            posted_at: outcome.posted_at,
            venue: self.untrackable.is_none().then(|| "binance_futures".into()),
            symbol: self.untrackable.is_none().then(|| "BTCUSDT".into()),
            outcome: serde_json::to_string(&outcome).unwrap(),
            revisions: serde_json::to_string(self.history().revisions()).unwrap(),
            deleted_at: outcome.deleted_at,
            updated: outcome
                .ended_at
                .or(outcome.judged_until)
                .unwrap_or(outcome.posted_at),
        }
    }
}

async fn store(app: &TestApp, story: &Story) {
    Collection::<SignalOutcome>::new(&app.backend.client)
        .upsert(story.id, &story.document(), None)
        .await
        .unwrap();
}

/// The signal document a story's card shows.
async fn seed_signal(app: &TestApp, story: &Story) {
    let t = story.revisions.last().unwrap();
    app.seed_signal(story.id, |s| {
        s["route_key"] = story.route.into();
        s["posted_at"] = g3_appwrite::format_datetime(story.posted).into();
        s["entries"] = serde_json::json!(t.entries);
        s["targets"] = serde_json::json!(t.targets);
        s["stop"] = serde_json::json!(t.stop);
    })
    .await;
}

fn plans() -> PlanConfig {
    PlanConfig::from_toml(PLANS).unwrap()
}

async fn member(app: &TestApp, email: &str, plan: &str) -> Browser {
    let b = app.verified(email).await;
    let config = plans();
    let access =
        Access::new(app.backend.client.clone(), config.catalog().clone()).with_plans(&config);
    app.membership_change(access.grant(
        &Email::parse(email).unwrap(),
        &Plan::parse(plan).unwrap(),
        Some(OffsetDateTime::now_utc() + time::Duration::days(30)),
        &Cause::Admin {
            actor: "test".into(),
            reason: "outcomes".into(),
        },
    ))
    .await
    .unwrap();
    b
}

/// Waits (bounded) until `b`'s page at `path` contains `needle`; returns the page.
async fn page_with(b: &mut Browser, path: &str, needle: &str) -> String {
    let mut last = String::new();
    for _ in 0..250 {
        let r = b.get(path).await;
        if r.body.contains(needle) {
            return r.body;
        }
        last = r.body;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    panic!("{path} never showed {needle:?}:\n{last}");
}

#[tokio::test]
async fn cards_show_their_outcome_with_the_page() {
    let app = TestApp::spawn_configured(|s| s.plans = plans()).await;
    app.seed_route(VIP, "VIP Calls").await;
    let posted = now() - time::Duration::hours(3);
    let waiting = Story::new("8101", VIP, posted, trade(100.0, &[110.0], Some(95.0)))
        .ticks(&[(1, 101.0), (2, 103.0)]);
    let tp1 = Story::new(
        "8102",
        VIP,
        posted + time::Duration::minutes(1),
        trade(100.0, &[110.0, 120.0], Some(95.0)),
    )
    .ticks(&[(1, 100.0), (2, 110.0)]);
    let stopped = Story::new(
        "8103",
        VIP,
        posted + time::Duration::minutes(2),
        trade(100.0, &[110.0], Some(95.0)),
    )
    .ticks(&[(1, 100.0), (2, 95.0)]);
    let mut hostile = Story::new(
        "8104",
        VIP,
        posted + time::Duration::minutes(3),
        trade(100.0, &[110.0], Some(95.0)),
    );
    hostile.untrackable = Some("<img src=x onerror=alert(1)> not listed");
    assert_eq!(waiting.outcome().status, Status::WaitingForEntry);
    assert_eq!(tp1.outcome().status, Status::Entered);
    assert_eq!(stopped.outcome().status, Status::Stopped);
    for s in [&waiting, &tp1, &stopped, &hostile] {
        seed_signal(&app, s).await;
        store(&app, s).await;
    }
    let mut b = member(&app, "cards@example.com", "vip").await;
    let page = page_with(&mut b, "/feed", "id=\"outcome-8104\"").await;
    // Waiting: the entry, the price as of when, how far the entry is (100 from 103: 2.9%).
    assert!(
        page.contains("<strong>Waiting for entry</strong>"),
        "{page}"
    );
    assert!(page.contains("Price 103"), "{page}");
    assert!(page.contains("Entry 100, 2.9% away"), "{page}");
    // In the trade after TP1 (+10%), TP2 at 120 is 9.1% from 110.
    assert!(page.contains("<strong>TP1 hit +10%</strong>"), "{page}");
    assert!(page.contains("TP2 120, 9.1% away"), "{page}");
    // Over: the result in R, no price any more.
    assert!(
        page.contains("<strong>Stopped \u{2212}1R</strong>"),
        "{page}"
    );
    // The tracker's reason is text, never markup.
    assert!(page.contains("<strong>Untrackable</strong>"), "{page}");
    assert!(
        page.contains("&#60;img src=x onerror=alert(1)&#62; not listed"),
        "{page}"
    );
    assert!(!page.contains("<img src=x"), "{page}");
    // The status sits inside its own card, after the trade.
    let card = &page[page.find("id=\"signal-8102\"").unwrap()..];
    let card = &card[..card.find("</article>").unwrap()];
    let (trade_at, status_at) = (
        card.find("</dl>").unwrap(),
        card.find("id=\"outcome-8102\"").unwrap(),
    );
    assert!(trade_at < status_at, "{card}");
    // The list view shows it too.
    let list = b.get("/feed?view=list").await.body;
    assert!(list.contains("id=\"outcome-8103\""), "{list}");
}

#[tokio::test]
async fn outcome_changes_reach_only_the_streams_whose_plans_unlock_the_route() {
    let app = TestApp::spawn_configured(|s| s.plans = plans()).await;
    app.seed_route(VIP, "VIP Calls").await;
    app.seed_route(BASIC, "Basic Calls").await;
    let posted = now() - time::Duration::hours(1);
    let vip = Story::new(
        "8201",
        VIP,
        posted,
        trade(100.0, &[110.0, 120.0], Some(95.0)),
    );
    let basic = Story::new("8202", BASIC, posted, trade(50.0, &[55.0], Some(48.0)));
    seed_signal(&app, &vip).await;
    seed_signal(&app, &basic).await;
    let mut v = member(&app, "vip-live@example.com", "vip").await;
    let mut bb = member(&app, "basic-live@example.com", "basic").await;
    app.wait_metric("g3_web_outcomes_ready", 1.0).await;
    let mut vs = v.stream(None).await;
    let mut bs = bb.stream(None).await;
    assert_eq!((vs.status.as_u16(), bs.status.as_u16()), (200, 200));

    // The VIP signal enters and hits TP1: the VIP stream hears it.
    let vip = vip.ticks(&[(1, 100.0), (2, 110.0)]);
    store(&app, &vip).await;
    let e = vs.next().await.expect("an outcome event");
    assert_eq!(e.event, "outcome");
    let data = e.json();
    assert_eq!(data["id"], "8201");
    let html = data["html"].as_str().unwrap();
    assert!(
        html.starts_with("<div class=\"outcome open\" id=\"outcome-8201\""),
        "{html}"
    );
    assert!(
        html.contains("TP1 hit +10%") && html.contains("TP2 120"),
        "{html}"
    );
    // The card page renders the same fragment.
    let page = page_with(&mut v, "/feed", "TP1 hit +10%").await;
    assert!(page.contains(html.trim()), "{page}\n---\n{html}");

    // The Basic stream's next event is its own route's, never the VIP one.
    let basic = basic.ticks(&[(1, 50.0), (2, 48.0)]);
    store(&app, &basic).await;
    let e = bs.next().await.expect("an outcome event");
    assert_eq!(
        (e.event.as_str(), e.json()["id"].as_str()),
        ("outcome", Some("8202"))
    );
    assert!(
        e.json()["html"]
            .as_str()
            .unwrap()
            .contains("Stopped \u{2212}1R")
    );
    // And the VIP stream does not get the Basic one: its next is the VIP signal's close.
    let vip = vip.ticks(&[(1, 100.0), (2, 110.0), (3, 120.0)]);
    store(&app, &vip).await;
    let e = vs.next().await.expect("an outcome event");
    assert_eq!(e.json()["id"], "8201");
    assert!(
        e.json()["html"]
            .as_str()
            .unwrap()
            .contains("All targets hit +3R")
    );
    // A removed outcome tells the page to drop the fragment.
    Collection::<SignalOutcome>::new(&app.backend.client)
        .delete("8201")
        .await
        .unwrap();
    let e = vs.next().await.expect("a removal");
    assert_eq!(
        (e.json()["id"].as_str(), e.json()["html"].as_str()),
        (Some("8201"), Some(""))
    );
}

/// The known set: every number below is worked out by hand from the rules.
///
/// VIP Calls (route name hostile on purpose), long, entry 100, stop 95 unless said:
/// - A: TP1 110 (+2R, half) and TP2 120 (+4R, half): all targets hit, +3R, +15%.
/// - B: edited once, then stopped at 95: −1R, −5%. Closes first of the recent ones.
/// - C: no stop, TP 110 hit: +10%, no R; deleted after it closed (still counted).
/// - D: waiting for entry at 103.
/// - E: falls from 97 to 94 before reaching 100: stopped before entry.
/// - F: untrackable.
/// - H: posted 40 days ago, stopped: −1R (only in the 90-day and all-time windows).
///
/// Basic Calls: G: entry 100, stop 98, TP 105 hit: +2.5R, +5%.
///
/// Last 30 days, VIP: 6 signals; closed A, B, C: 2 wins of 3 (66.7%); R from A and B: net
/// +2R, average +1R; max drawdown 1R (B first: −1); net +20%, average +6.7%; TP1 2 of 3,
/// TP2 1 of 1; edits 1 of 6, deletes 1 of 6 (16.7%), no stop 1 of 6 (16.7%).
/// Every route (staff, /results): 7 signals, 3 wins of 4 (75.0%), +4.5R, average +1.5R.
/// 90 days, every route: 8 signals, net +3.5R, max drawdown 2R (H then B: −2).
fn known_set() -> Vec<Story> {
    let t0 = now() - time::Duration::days(2);
    let m = |n: i64| t0 + time::Duration::minutes(n);
    let mut b = Story::new("8302", VIP, m(1), trade(100.0, &[110.0], Some(95.0)))
        .ticks(&[(1, 100.0), (2, 95.0)]);
    b.revisions.push(Trade {
        leverage: Some(5.0),
        ..trade(100.0, &[110.0], Some(95.0))
    });
    let mut c = Story::new("8303", VIP, m(2), trade(100.0, &[110.0], None))
        .ticks(&[(1, 100.0), (30, 110.0)]);
    c.deleted_after_min = Some(40);
    let mut f = Story::new("8306", VIP, m(5), trade(100.0, &[110.0], Some(95.0)));
    f.untrackable = Some("XYZUSDT is not listed");
    vec![
        Story::new("8301", VIP, m(0), trade(100.0, &[110.0, 120.0], Some(95.0))).ticks(&[
            (1, 100.0),
            (10, 110.0),
            (20, 120.0),
        ]),
        b,
        c,
        Story::new("8304", VIP, m(3), trade(100.0, &[110.0], Some(95.0)))
            .ticks(&[(1, 101.0), (2, 103.0)]),
        Story::new("8305", VIP, m(4), trade(100.0, &[110.0], Some(95.0)))
            .ticks(&[(1, 97.0), (2, 94.0)]),
        f,
        Story::new("8307", BASIC, m(6), trade(100.0, &[105.0], Some(98.0)))
            .ticks(&[(1, 100.0), (50, 105.0)]),
        Story::new(
            "8308",
            VIP,
            now() - time::Duration::days(40),
            trade(100.0, &[110.0], Some(95.0)),
        )
        .ticks(&[(1, 100.0), (2, 95.0)]),
    ]
}

const HOSTILE: &str = "<script>alert(1)</script> VIP";

/// The app with the known set stored and heard.
async fn known_app() -> TestApp {
    let app = TestApp::spawn_configured(|s| s.plans = plans()).await;
    app.seed_route(VIP, HOSTILE).await;
    app.seed_route(BASIC, "Basic Calls").await;
    let set = known_set();
    let expect = [
        Status::TargetsHit,
        Status::Stopped,
        Status::TargetsHit,
        Status::WaitingForEntry,
        Status::StoppedBeforeEntry,
        Status::Untrackable,
        Status::TargetsHit,
        Status::Stopped,
    ];
    for (story, status) in set.iter().zip(expect) {
        assert_eq!(story.outcome().status, status, "{}", story.id);
        store(&app, story).await;
    }
    app.wait_metric("g3_web_outcomes_ready", 1.0).await;
    app.wait_metric("g3_web_outcomes_tracked", set.len() as f64)
        .await;
    app
}

/// The text of `page` from `from` to the end of its section.
fn section<'a>(page: &'a str, from: &str) -> &'a str {
    let start = page
        .find(from)
        .unwrap_or_else(|| panic!("no {from} in {page}"));
    let rest = &page[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

/// Every `<dt>name</dt><dd>value</dd>` figure and every table row of a stats block.
fn has(block: &str, label: &str, value: &str) -> bool {
    block.contains(&format!("<dt>{label}</dt><dd>{value}</dd>"))
        || block.contains(&format!("<th scope=\"row\">{label}</th><td>{value}"))
}

#[tokio::test]
async fn the_performance_page_adds_up_the_known_set_per_route_and_window() {
    let app = known_app().await;
    let mut vip = member(&app, "vip-perf@example.com", "vip").await;
    let r = vip.get("/performance").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let page = r.body;
    let overall = section(&page, "id=\"overall-h\"");
    assert!(overall.contains("All your channels"), "{overall}");
    for (label, value) in [
        ("Win rate", "66.7%"),
        ("Net R", "+2R"),
        ("Average R", "+1R"),
        ("Max drawdown", "1R"),
        ("Net %", "+20%"),
        ("Signals", "6"),
        ("Waiting for entry", "1"),
        ("Open", "0"),
        ("Stopped", "1"),
        ("All targets hit", "2"),
        ("Stopped before entry", "1"),
        ("Untrackable", "1"),
        ("Cancelled", "0"),
        ("TP1", "66.7% <span class=\"muted\">(2 of 3)"),
        ("TP2", "100.0% <span class=\"muted\">(1 of 1)"),
        ("Edit rate", "16.7% <span class=\"muted\">(1 of 6)"),
        ("Delete rate", "16.7% <span class=\"muted\">(1 of 6)"),
        ("Deleted after entry, still counted", "1"),
        ("Without a stop", "16.7% <span class=\"muted\">(1 of 6)"),
        ("Ambiguous bars (worse order counted)", "0"),
    ] {
        assert!(has(overall, label, value), "{label} = {value}: {overall}");
    }
    assert!(overall.contains("2 of 3 closed trades"), "{overall}");
    assert!(overall.contains("average +6.7%, unlevered"), "{overall}");
    // The curve: a server-side SVG of the two trades with R, ending at +2R.
    assert!(
        overall.contains("<svg") && overall.contains("class=\"curve\""),
        "{overall}"
    );
    assert!(
        overall.contains("Cumulative result in R of 2 closed trades"),
        "{overall}"
    );
    // One route section, its name escaped; the Basic route is not this member's.
    assert!(
        page.contains("<bdi>&#60;script&#62;alert(1)&#60;/script&#62; VIP</bdi>"),
        "{page}"
    );
    assert!(
        page.contains("<title id=\"equity-route-0-title\">Equity curve, &lt;script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>alert(1)"), "{page}");
    assert!(!page.contains("Basic Calls"), "{page}");
    // The rules in force and where to read them.
    assert!(
        page.contains("followed for <strong>7 days</strong>"),
        "{page}"
    );
    assert!(page.contains("href=\"/rules\""), "{page}");

    // Staff see every route: the overall includes Basic Calls' +2.5R.
    let mut staff = app.verified("staff-perf@example.com").await;
    app.make_staff("staff-perf@example.com").await;
    let page = staff.get("/performance").await.body;
    let overall = section(&page, "id=\"overall-h\"");
    assert!(overall.contains("All channels"), "{overall}");
    for (label, value) in [
        ("Win rate", "75.0%"),
        ("Net R", "+4.5R"),
        ("Average R", "+1.5R"),
        ("Signals", "7"),
    ] {
        assert!(has(overall, label, value), "{label} = {value}: {overall}");
    }
    let basic = section(&page, "Basic Calls");
    assert!(
        has(basic, "Net R", "+2.5R") && has(basic, "Signals", "1"),
        "{basic}"
    );
    // The windows: H (40 days ago) is in 90 days and all time only.
    let summary = section(&page, "id=\"by-window\"");
    for (window, row) in [
        (
            "7 days",
            "<td>7</td><td>4</td><td>75.0%</td><td>+4.5R</td><td>1R</td>",
        ),
        (
            "30 days",
            "<td>7</td><td>4</td><td>75.0%</td><td>+4.5R</td><td>1R</td>",
        ),
        (
            "90 days",
            "<td>8</td><td>5</td><td>60.0%</td><td>+3.5R</td><td>2R</td>",
        ),
        (
            "All time",
            "<td>8</td><td>5</td><td>60.0%</td><td>+3.5R</td><td>2R</td>",
        ),
    ] {
        assert!(
            summary.contains(&format!("<th scope=\"row\">{window}</th>{row}")),
            "{window}: {summary}"
        );
    }
    let all = staff.get("/performance?window=all").await.body;
    assert!(
        has(section(&all, "id=\"overall-h\""), "Signals", "8"),
        "{all}"
    );
    assert!(all.contains("aria-current=\"page\">All time</a>"), "{all}");

    // Not for everyone: signed out goes to sign-in, no plan gets the paywall.
    assert_eq!(app.browser().get("/performance").await.status, 303);
    let mut unpaid = app.verified("unpaid-perf@example.com").await;
    assert_eq!(unpaid.get("/performance").await.status, 403);
}

#[tokio::test]
async fn results_are_public_and_name_no_route_or_signal() {
    let app = known_app().await;
    let mut anon = app.browser();
    let r = anon.get("/results").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let overall = section(&r.body, "id=\"overall-h\"");
    for (label, value) in [
        ("Win rate", "75.0%"),
        ("Net R", "+4.5R"),
        ("Signals", "7"),
        ("Max drawdown", "1R"),
    ] {
        assert!(has(overall, label, value), "{label} = {value}: {overall}");
    }
    assert!(overall.contains("<svg"), "{overall}");
    for secret in [
        "VIP",
        "vip-calls",
        "Basic",
        "basic-calls",
        "8301",
        "8307",
        "BTC",
        "XYZUSDT",
        "<script>",
    ] {
        assert!(
            !r.body.contains(secret),
            "/results shows {secret:?}: {}",
            r.body
        );
    }
    // The landing page's headline: the last 30 days, linking the results.
    let home = anon.get("/").await.body;
    let headline = section(&home, "id=\"results-summary\"");
    assert!(has(headline, "Win rate", "75.0%"), "{headline}");
    assert!(has(headline, "Net R", "+4.5R"), "{headline}");
    assert!(has(headline, "Signals", "7"), "{headline}");
    assert!(headline.contains("href=\"/results\""), "{headline}");
    // The rules page, from docs/outcomes.md, with the limit in force.
    let rules = anon.get("/rules").await;
    assert_eq!(rules.status, 200);
    assert!(
        rules
            .body
            .contains("The time limit in force: <strong>7 days</strong>")
    );
    assert!(
        rules
            .body
            .contains("<h2>When the order inside a bar is unknown</h2>")
    );
    // Signed-out navigation offers the results.
    assert!(home.contains("<a href=\"/results\">Results</a>"), "{home}");
}

/// The publisher's outcome catch-up, driven call by call: the first connect loads every
/// outcome without publishing (nobody can have missed them), and what changes while the
/// upstream is down is published after the reconnect, once.
#[tokio::test]
async fn outcomes_written_while_disconnected_are_published_after_the_reconnect_once() {
    use g3_appwrite::{Follow, Interruption};
    let app = TestApp::spawn().await;
    let settings = web::Settings {
        public_url: url::Url::parse("http://127.0.0.1:1").unwrap(),
        service_user: None,
        ..app.settings.clone()
    };
    let state = web::AppState::new(&settings).unwrap();
    let posted = now() - time::Duration::hours(2);
    let early =
        Story::new("8401", VIP, posted, trade(100.0, &[110.0], Some(95.0))).ticks(&[(1, 101.0)]);
    store(&app, &early).await;
    let mut publisher = web::live::Publisher::new(state.clone());
    assert!(!state.outcomes().is_ready());
    publisher.connected(false).await;
    assert!(state.outcomes().is_ready() && state.outcomes().len() == 1);
    let start = state.hub().last_seq();
    assert!(
        state
            .outcomes()
            .status("8401")
            .unwrap()
            .contains("Waiting for entry"),
        "the first load renders the status"
    );
    publisher
        .disconnected(&Interruption::Dropped {
            reason: "test".into(),
        })
        .await;
    // Written while nobody listens: the early one enters, a new one appears.
    store(&app, &early.ticks(&[(1, 101.0), (2, 100.0)])).await;
    let late = Story::new("8402", BASIC, posted, trade(50.0, &[55.0], Some(48.0)))
        .ticks(&[(1, 50.0), (2, 55.0)]);
    store(&app, &late).await;
    assert_eq!(
        state.hub().last_seq(),
        start,
        "nothing published while down"
    );
    publisher.connected(true).await;
    let backlog = state.hub().subscribe(Some(start)).backlog.unwrap();
    // (id, route the event is filtered by, status fragment)
    let mut got: Vec<(String, String, String)> = backlog
        .iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(&e.data).unwrap();
            (
                v["id"].as_str().unwrap().to_owned(),
                e.route.clone(),
                v["html"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].0.as_str(), got[0].1.as_str()), ("8401", VIP));
    assert!(got[0].2.contains("Entered at 100"), "{got:?}");
    assert_eq!((got[1].0.as_str(), got[1].1.as_str()), ("8402", BASIC));
    assert!(got[1].2.contains("All targets hit +2.5R"), "{got:?}");
    // A second catch-up from the same cursor repeats nothing.
    let last = state.hub().last_seq();
    publisher.connected(true).await;
    assert_eq!(
        state.hub().last_seq(),
        last,
        "a second catch-up repeats nothing"
    );
}

/// Without the live upstream (no service user, or before its first connect) the book is not
/// complete: cards read their outcomes with the page, and the results pages say they are
/// loading (503) rather than show partial numbers.
#[tokio::test]
async fn before_the_outcomes_are_loaded_cards_read_their_own_and_reports_wait() {
    let app = TestApp::spawn_configured(|s| {
        s.plans = plans();
        s.service_user = None;
    })
    .await;
    app.seed_route(VIP, "VIP Calls").await;
    let story = Story::new(
        "8501",
        VIP,
        now() - time::Duration::hours(1),
        trade(100.0, &[110.0], Some(95.0)),
    )
    .ticks(&[(1, 100.0), (2, 95.0)]);
    seed_signal(&app, &story).await;
    store(&app, &story).await;
    let mut b = member(&app, "early@example.com", "vip").await;
    let page = b.get("/feed").await.body;
    assert!(
        page.contains("<strong>Stopped \u{2212}1R</strong>"),
        "{page}"
    );
    let r = b.get("/performance").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.body.contains("The results are being loaded."),
        "{}",
        r.body
    );
    let r = app.browser().get("/results").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(!r.body.contains("id=\"overall-h\""), "{}", r.body);
    // No headline on the landing page until the numbers are whole.
    assert!(
        !app.browser()
            .get("/")
            .await
            .body
            .contains("results-summary")
    );
}
