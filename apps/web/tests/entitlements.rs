//! Who sees what: the authorization matrix of plan (none, basic, vip, both, staff) x route
//! (basic route, vip route, no route filter) x endpoint (the feed page, each filter, the next
//! page, live events, signal assets), against plans configured as a plans file would give them.

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::{Browser, TestApp};
use g3_access::{Access, Cause};
use g3_appwrite::{Query, UploadFile};
use g3_core::{Email, entitlements::PlanConfig, plans::Plan};
use g3_store::schema::{BUCKET_SIGNAL_ASSETS, TEAM_PAID};
use reqwest::StatusCode;
use time::OffsetDateTime;

const PLANS: &str = r#"
[plans.basic]
name = "Basic"
price = "$19 / month"
benefits = ["Basic calls", "Live web feed"]
buy_url = "https://shop.example/basic?email={email}"
products = ["100"]
routes = ["basic-calls"]

[plans.vip]
name = "VIP"
price = "$49 / month"
benefits = ["VIP calls"]
buy_url = "https://shop.example/vip?email={email}&ref=paywall"
products = ["200"]
routes = ["vip-calls"]
"#;

const BASIC: &str = "basic-calls";
const VIP: &str = "vip-calls";
const PAGE: usize = 25;
/// Signals per route: more than two pages, so one filter still leaves a second page.
const PER_ROUTE: usize = 60;

fn plans() -> PlanConfig {
    PlanConfig::from_toml(PLANS).unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Nobody,
    Basic,
    Vip,
    Both,
    Staff,
}

const EVERYONE: [Who; 5] = [Who::Nobody, Who::Basic, Who::Vip, Who::Both, Who::Staff];

impl Who {
    fn email(self) -> &'static str {
        match self {
            Who::Nobody => "none@x.io",
            Who::Basic => "basic@x.io",
            Who::Vip => "vip@x.io",
            Who::Both => "both@x.io",
            Who::Staff => "staff@x.io",
        }
    }

    fn plans(self) -> &'static [&'static str] {
        match self {
            Who::Basic => &["basic"],
            Who::Vip => &["vip"],
            Who::Both => &["basic", "vip"],
            Who::Nobody | Who::Staff => &[],
        }
    }

    fn sees(self, route: &str) -> bool {
        match self {
            Who::Nobody => false,
            Who::Basic => route == BASIC,
            Who::Vip => route == VIP,
            Who::Both | Who::Staff => true,
        }
    }
}

/// One seeded signal as the test knows it.
#[derive(Clone, Debug)]
struct Seeded {
    id: String,
    route: &'static str,
    pair: &'static str,
    side: &'static str,
}

struct Fixture {
    app: TestApp,
    /// Newest first.
    signals: Vec<Seeded>,
    browsers: Vec<(Who, Browser)>,
}

impl Fixture {
    fn browser(&mut self, who: Who) -> &mut Browser {
        &mut self.browsers.iter_mut().find(|(w, _)| *w == who).unwrap().1
    }

    /// The ids `who` should get on a page: newest first, filtered, after `after`.
    fn expected(
        &self,
        who: Who,
        filter: impl Fn(&Seeded) -> bool,
        after: Option<&str>,
    ) -> Vec<String> {
        let visible = self
            .signals
            .iter()
            .filter(|s| who.sees(s.route) && filter(s));
        let start: Vec<&Seeded> = match after {
            Some(a) => {
                let at = self.signals.iter().position(|s| s.id == a).unwrap();
                visible
                    .filter(|s| self.signals.iter().position(|x| x.id == s.id).unwrap() > at)
                    .collect()
            }
            None => visible.collect(),
        };
        start.iter().take(PAGE).map(|s| s.id.clone()).collect()
    }

    /// Asserts that `body` shows exactly the cards `ids` of all the seeded signals.
    fn assert_cards(&self, what: &str, body: &str, ids: &[String]) {
        let shown: BTreeSet<&str> = self
            .signals
            .iter()
            .map(|s| s.id.as_str())
            .filter(|id| body.contains(&format!("id=\"signal-{id}\"")))
            .collect();
        let want: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(shown, want, "{what}");
    }
}

fn access(app: &TestApp) -> Access {
    let config = plans();
    Access::new(app.backend.client.clone(), config.catalog().clone()).with_plans(&config)
}

async fn grant(app: &TestApp, email: &str, plan: &str) {
    let access = access(app);
    app.membership_change(access.grant(
        &Email::parse(email).unwrap(),
        &Plan::parse(plan).unwrap(),
        Some(OffsetDateTime::now_utc() + time::Duration::days(30)),
        &Cause::Admin {
            actor: "test".into(),
            reason: "entitlement matrix".into(),
        },
    ))
    .await
    .unwrap();
}

fn attachments(items: &[(&str, &str, &str)]) -> String {
    serde_json::Value::Array(
        items
            .iter()
            .enumerate()
            .map(|(i, (file, name, kind))| {
                serde_json::json!({
                    "id": format!("{i}"),
                    "filename": name,
                    "content_type": kind,
                    "size": 10,
                    "file_id": file,
                    "state": "stored",
                })
            })
            .collect(),
    )
    .to_string()
}

async fn upload(app: &TestApp, id: &str, name: &str, kind: &str, data: &'static [u8]) {
    app.backend
        .client
        .storage()
        .create_file(
            BUCKET_SIGNAL_ASSETS,
            id,
            UploadFile {
                name: name.into(),
                content_type: kind.into(),
                data: bytes::Bytes::from_static(data),
            },
            None,
        )
        .await
        .unwrap();
}

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";

/// The app on the plans above, `PER_ROUTE` signals on each route (interleaved in time, the
/// newest of each with attachments) and a signed-in browser for each kind of viewer.
async fn fixture() -> Fixture {
    let app = TestApp::spawn_configured(|s| s.plans = plans()).await;
    app.seed_route(BASIC, "Basic Calls").await;
    app.seed_route(VIP, "VIP Calls").await;
    upload(
        &app,
        "vipchart",
        "chart.png",
        "image/png",
        testkit::cdn::PNG,
    )
    .await;
    upload(&app, "vipnotes", "notes.pdf", "application/pdf", PDF).await;
    upload(
        &app,
        "basicchart",
        "basic.png",
        "image/png",
        testkit::cdn::PNG,
    )
    .await;
    let mut signals = Vec::new();
    for i in 0..PER_ROUTE {
        for (route, prefix, minutes) in [(VIP, "92", 2 * i), (BASIC, "91", 2 * i + 1)] {
            let seeded = Seeded {
                id: format!("{prefix}{i:017}"),
                route,
                pair: if i % 2 == 0 { "BTC/USDT" } else { "ETH/USDT" },
                side: if (i / 2) % 2 == 0 { "short" } else { "long" },
            };
            let files = match (route, i) {
                (VIP, 0) => Some(attachments(&[
                    ("vipchart", "chart.png", "image/png"),
                    ("vipnotes", "notes.pdf", "application/pdf"),
                ])),
                (BASIC, 0) => Some(attachments(&[("basicchart", "basic.png", "image/png")])),
                _ => None,
            };
            app.seed_signal(&seeded.id, |s| {
                s["route_key"] = route.into();
                s["pair"] = seeded.pair.into();
                s["side"] = seeded.side.into();
                s["posted_at"] = common::minutes_ago(minutes as i64 + 10).into();
                if let Some(files) = &files {
                    s["attachments"] = files.as_str().into();
                }
            })
            .await;
            signals.push(seeded);
        }
    }
    let mut browsers = Vec::new();
    for who in EVERYONE {
        let b = app.verified(who.email()).await;
        for plan in who.plans() {
            grant(&app, who.email(), plan).await;
        }
        if who == Who::Staff {
            app.make_staff(who.email()).await;
        }
        browsers.push((who, b));
    }
    Fixture {
        app,
        signals,
        browsers,
    }
}

#[tokio::test]
async fn the_feed_its_filters_and_its_pages_show_only_the_routes_a_plan_unlocks() {
    let mut f = fixture().await;
    type Filter = fn(&Seeded) -> bool;
    // (query, the signals it asks for, which route it names)
    let cases: [(&str, Filter, Option<&str>); 6] = [
        ("", |_| true, None),
        ("route=basic-calls", |s| s.route == BASIC, Some(BASIC)),
        ("route=vip-calls", |s| s.route == VIP, Some(VIP)),
        ("pair=BTCUSDT", |s| s.pair == "BTC/USDT", None),
        ("side=short", |s| s.side == "short", None),
        (
            "pair=ETHUSDT&side=long",
            |s| s.pair == "ETH/USDT" && s.side == "long",
            None,
        ),
    ];
    for who in EVERYONE {
        for (query, filter, route) in cases {
            let what = format!("{who:?} /feed?{query}");
            let r = f.browser(who).get(&format!("/feed?{query}")).await;
            let allowed = who != Who::Nobody && route.is_none_or(|r| who.sees(r));
            if !allowed {
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.body);
                assert!(r.body.contains("id=\"paywall\""), "{what}: {}", r.body);
                f.assert_cards(&what, &r.body, &[]);
                if let Some(route) = route.filter(|_| who != Who::Nobody) {
                    let name = if route == VIP {
                        "VIP Calls"
                    } else {
                        "Basic Calls"
                    };
                    assert!(
                        r.body
                            .contains(&format!("Your plan does not include {name}.")),
                        "{what}: {}",
                        r.body
                    );
                }
                continue;
            }
            assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.body);
            let page1 = f.expected(who, filter, None);
            f.assert_cards(&what, &r.body, &page1);
            // The route menu offers only what the plan unlocks.
            for (key, name) in [(BASIC, "Basic Calls"), (VIP, "VIP Calls")] {
                assert_eq!(
                    r.body.contains(&format!("value=\"{key}\"")),
                    who.sees(key),
                    "{what}: menu entry {name}"
                );
            }
            // The next page continues after the last card of this one, still limited.
            let last = page1.last().unwrap();
            let page2 = f.expected(who, filter, Some(last));
            if !query.contains('&') {
                assert!(
                    page1.len() == PAGE && !page2.is_empty(),
                    "{what}: one filter leaves a second page in the model"
                );
            }
            if page2.is_empty() {
                continue;
            }
            let sep = if query.is_empty() { "" } else { "&" };
            let next = format!("/feed?{query}{sep}after={last}");
            let r = f.browser(who).get(&next).await;
            assert_eq!(r.status, StatusCode::OK, "{who:?} {next}: {}", r.body);
            f.assert_cards(&format!("{who:?} {next}"), &r.body, &page2);
        }
    }
    // A cursor that names a signal of another route still pages only through the plan's.
    let vip_cursor = f
        .signals
        .iter()
        .find(|s| s.route == VIP)
        .unwrap()
        .id
        .clone();
    let r = f
        .browser(Who::Basic)
        .get(&format!("/feed?after={vip_cursor}"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let want = f.expected(Who::Basic, |_| true, Some(&vip_cursor));
    f.assert_cards("basic after a vip cursor", &r.body, &want);
}

#[tokio::test]
async fn the_paywall_offers_the_configured_plans_with_the_email_in_the_buy_link() {
    let mut f = fixture().await;
    let r = f.browser(Who::Nobody).get("/feed").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    for text in [
        "No active plan",
        "<h3>Basic</h3>",
        "$19 / month",
        "Basic calls",
        "<h3>VIP</h3>",
        "$49 / month",
        "href=\"https://shop.example/basic?email=none%40x.io\"",
        // Escaped as askama escapes `&` in attributes.
        "href=\"https://shop.example/vip?email=none%40x.io&#38;ref=paywall\"",
    ] {
        assert!(r.body.contains(text), "{text} missing: {}", r.body);
    }
    // A member asking for a route outside their plan: which plan has it.
    let r = f.browser(Who::Basic).get("/feed?route=vip-calls").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("Not in your plan"), "{}", r.body);
    assert!(
        r.body.contains("offer offer-match\">\n      <h3>VIP</h3>"),
        "{}",
        r.body
    );
    assert!(r.body.contains("email=basic%40x.io"), "{}", r.body);
}

#[tokio::test]
async fn live_events_reach_only_viewers_whose_plans_unlock_the_route() {
    let mut f = fixture().await;
    f.app.wait_metric("g3_web_upstream_connected", 1.0).await;
    let r = f.browser(Who::Nobody).stream(None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mut streams = Vec::new();
    for who in [Who::Basic, Who::Vip, Who::Both, Who::Staff] {
        let s = f.browser(who).stream(None).await;
        assert_eq!(s.status, StatusCode::OK, "{who:?}");
        streams.push((who, s));
    }
    // In this order: a viewer who got a signal they may not see would get it before the next.
    let news = [
        ("9300000000000000001", VIP),
        ("9300000000000000002", BASIC),
        ("9300000000000000003", VIP),
        ("9300000000000000004", BASIC),
    ];
    for (id, route) in news {
        f.app
            .seed_signal(id, |s| {
                s["route_key"] = route.into();
                s["content"] = format!("live {route}").into();
            })
            .await;
    }
    let mut first_seq = None;
    for (who, s) in &mut streams {
        for (id, route) in news.iter().filter(|(_, r)| who.sees(r)) {
            let e = s.next().await.expect("an event");
            assert_eq!(e.event, "signal");
            let data = e.json();
            assert_eq!(data["id"], *id, "{who:?} got {data} instead");
            assert!(
                data["html"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("live {route}")),
                "{data}"
            );
            if *who == Who::Staff && first_seq.is_none() {
                first_seq = Some(e.id.parse::<u64>().unwrap());
            }
        }
    }
    // Resuming from before the first event: the backlog is limited the same way.
    let before = (first_seq.unwrap() - 1).to_string();
    let mut s = f.browser(Who::Basic).stream(Some(&before)).await;
    for id in ["9300000000000000002", "9300000000000000004"] {
        let e = s.next().await.expect("a backlog event");
        assert_eq!(e.json()["id"], id, "basic resumed");
    }
    let mut s = f.browser(Who::Vip).stream(Some(&before)).await;
    for id in ["9300000000000000001", "9300000000000000003"] {
        let e = s.next().await.expect("a backlog event");
        assert_eq!(e.json()["id"], id, "vip resumed");
    }
}

#[tokio::test]
async fn signal_assets_are_served_only_for_routes_the_plan_unlocks() {
    let mut f = fixture().await;
    let vip_signal = f
        .signals
        .iter()
        .find(|s| s.route == VIP)
        .unwrap()
        .id
        .clone();
    let basic_signal = f
        .signals
        .iter()
        .find(|s| s.route == BASIC)
        .unwrap()
        .id
        .clone();
    let chart = |signal: &str, file: &str| format!("/signals/{signal}/assets/{file}");
    for who in EVERYONE {
        for (path, route) in [
            (chart(&vip_signal, "vipchart"), VIP),
            (chart(&basic_signal, "basicchart"), BASIC),
        ] {
            let (status, headers, body) = f.browser(who).get_bytes(&path, &[]).await;
            if !who.sees(route) {
                assert_eq!(status, StatusCode::FORBIDDEN, "{who:?} {path}");
                assert_ne!(&body[..], testkit::cdn::PNG);
                continue;
            }
            assert_eq!(status, StatusCode::OK, "{who:?} {path}");
            assert_eq!(&body[..], testkit::cdn::PNG, "{who:?} {path}");
            let h = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
            assert_eq!(h("content-type"), "image/png");
            assert_eq!(h("x-content-type-options"), "nosniff");
            assert!(h("cache-control").starts_with("private, max-age=31536000"));
            assert!(
                h("content-disposition").starts_with("inline;"),
                "{headers:?}"
            );
            // The browser's copy is still good: no body, same validators.
            let etag = h("etag");
            let (status, again, body) = f
                .browser(who)
                .get_bytes(&path, &[("if-none-match", &etag)])
                .await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{who:?} {path}");
            assert!(body.is_empty());
            assert_eq!(again.get("etag").unwrap().to_str().unwrap(), etag);
        }
    }
    // Anything but a picture is a download.
    let (status, headers, body) = f
        .browser(Who::Vip)
        .get_bytes(&chart(&vip_signal, "vipnotes"), &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], PDF);
    assert_eq!(headers["content-type"], "application/pdf");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"notes.pdf\""),
        "{headers:?}"
    );
    // A file of another signal, or none at all, through a signal the viewer may see: not found.
    for who in [Who::Basic, Who::Staff] {
        for path in [
            chart(&basic_signal, "vipchart"),
            chart(&basic_signal, "nothing"),
            chart("9999999999", "basicchart"),
        ] {
            let (status, _, _) = f.browser(who).get_bytes(&path, &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{who:?} {path}");
        }
    }
    // Signed out: no file either.
    let (status, _, body) = f
        .app
        .browser()
        .get_bytes(&chart(&basic_signal, "basicchart"), &[])
        .await;
    assert_ne!(status, StatusCode::OK);
    assert_ne!(&body[..], testkit::cdn::PNG);
}

#[tokio::test]
async fn a_membership_from_before_plans_were_recorded_on_it_reads_the_subscriptions() {
    let mut f = fixture().await;
    // As web and g3-access wrote it before: a `paid` membership with no roles.
    let user = f.app.user_id(Who::Basic.email()).await;
    let teams = f.app.backend.client.teams();
    let membership = teams
        .list_memberships(TEAM_PAID, &[Query::equal("userId", user.as_str())])
        .await
        .unwrap()
        .memberships
        .remove(0);
    assert_eq!(
        membership.roles,
        ["basic"],
        "the plans ride on the membership"
    );
    teams
        .update_membership_roles(TEAM_PAID, &membership.id, &[] as &[&str])
        .await
        .unwrap();
    let r = f.browser(Who::Basic).get("/feed").await;
    assert_eq!(r.status, StatusCode::OK);
    let want = f.expected(Who::Basic, |_| true, None);
    f.assert_cards("basic without membership roles", &r.body, &want);
    let r = f.browser(Who::Basic).get("/feed?route=vip-calls").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A plan change writes them again.
    grant(&f.app, Who::Basic.email(), "vip").await;
    let m = teams
        .list_memberships(TEAM_PAID, &[Query::equal("userId", user.as_str())])
        .await
        .unwrap()
        .memberships
        .remove(0);
    assert_eq!(m.roles, ["basic", "vip"]);
    let r = f.browser(Who::Basic).get("/feed?route=vip-calls").await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn staff_see_what_a_customer_can_see_and_why() {
    let mut f = fixture().await;
    let r = f
        .browser(Who::Staff)
        .get("/admin/customers/both%40x.io")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body
            .contains("Sees: <strong>basic-calls, vip-calls</strong>"),
        "{}",
        r.body
    );
    // Plans by their configured names (the key as a tooltip).
    assert!(
        r.body
            .contains("<strong title=\"plan key basic\">Basic</strong> unlocks basic-calls")
    );
    assert!(
        r.body
            .contains("<strong title=\"plan key vip\">VIP</strong> unlocks vip-calls")
    );
    let r = f
        .browser(Who::Staff)
        .get("/admin/customers/none%40x.io")
        .await;
    assert!(
        r.body.contains("Sees: <strong>nothing</strong>"),
        "{}",
        r.body
    );
    // The same view `ops lookup` prints.
    let view = access(&f.app)
        .customer(&Email::parse(Who::Basic.email()).unwrap())
        .await
        .unwrap();
    assert_eq!(view.entitlements.sees.routes.to_string(), "basic-calls");
    assert_eq!(view.entitlements.sees.why(), "basic unlocks basic-calls");
}

#[tokio::test]
async fn the_account_page_names_plans_as_the_configuration_does() {
    let mut f = fixture().await;
    let r = f.browser(Who::Both).get("/account").await;
    assert_eq!(r.status, 200);
    for name in ["<td>Basic</td>", "<td>VIP</td>"] {
        assert!(r.body.contains(name), "{name} on the account page");
    }
    assert!(!r.body.contains("<td>vip</td>"), "no raw plan keys");
}

#[tokio::test]
async fn pair_suggestions_come_only_from_routes_the_plan_unlocks() {
    let app = TestApp::spawn_configured(|s| s.plans = plans()).await;
    app.seed_route(BASIC, "Basic Calls").await;
    app.seed_route(VIP, "VIP Calls").await;
    let mut basic = app.verified("basic@x.io").await;
    grant(&app, "basic@x.io", "basic").await;
    let mut staff = app.verified("staff@x.io").await;
    app.make_staff("staff@x.io").await;
    let published = app.metric("g3_web_events_published_total").await;
    for (id, route, pair) in [("9301", BASIC, "BTC/USDT"), ("9302", VIP, "SOL/USDT")] {
        app.seed_signal(id, |s| {
            s["route_key"] = route.into();
            s["pair"] = pair.into();
        })
        .await;
    }
    // The live publisher learns pairs from the signals it hears.
    testkit::wait::eventually(
        "both signals published",
        Duration::from_secs(10),
        || async { app.metric("g3_web_events_published_total").await >= published + 2.0 },
    )
    .await;
    let option = |pair: &str| format!("<option value=\"{pair}\"></option>");
    let r = basic.get("/feed").await;
    assert!(r.body.contains("list=\"pair-suggestions\""));
    assert!(r.body.contains(&option("BTC/USDT")), "{}", r.body);
    assert!(
        !r.body.contains(&option("SOL/USDT")),
        "a VIP-only pair is not suggested to Basic"
    );
    let r = staff.get("/feed").await;
    assert!(r.body.contains(&option("BTC/USDT")) && r.body.contains(&option("SOL/USDT")));
}
