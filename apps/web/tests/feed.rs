//! The feed: newest first, 25 a page with cursor links, filters by route, pair and side, and the
//! card's markers.

mod common;

use common::{TestApp, minutes_ago};

async fn paid_browser(app: &TestApp) -> common::Browser {
    let b = app.verified("reader@example.com").await;
    app.grant("reader@example.com").await;
    b
}

fn next_link(body: &str) -> Option<String> {
    let start = body.find("href=\"/feed?")? + "href=\"".len();
    let end = start + body[start..].find('"')?;
    Some(body[start..end].replace("&#38;", "&"))
}

#[tokio::test]
async fn pages_with_a_cursor_newest_first() {
    let app = TestApp::spawn().await;
    for i in 0..30i64 {
        app.seed_signal(&format!("{}", 7000 + i), |s| {
            s["posted_at"] = minutes_ago(100 - i).into();
            s["content"] = format!("call number {i:02}").into();
        })
        .await;
    }
    let mut b = paid_browser(&app).await;
    let first = b.get("/feed").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body.matches("<article").count(), 25);
    assert!(first.body.contains("call number 29"));
    assert!(first.body.contains("call number 05"));
    assert!(!first.body.contains("call number 04"));
    let next = next_link(&first.body).expect("a next-page link");
    assert!(next.contains("after=7005"), "{next}");
    assert!(!next.contains("offset"));

    let second = b.get(&next).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body.matches("<article").count(), 5);
    assert!(second.body.contains("call number 04"));
    assert!(second.body.contains("call number 00"));
    assert!(next_link(&second.body).is_none(), "last page");
}

#[tokio::test]
async fn filters_by_route_pair_and_side() {
    let app = TestApp::spawn().await;
    app.seed_route("vip-calls", "VIP Calls").await;
    app.seed_route("scalps", "Scalps").await;
    app.seed_signal("8001", |s| s["content"] = "btc long vip".into())
        .await;
    app.seed_signal("8002", |s| {
        s["content"] = "eth short scalps".into();
        s["route_key"] = "scalps".into();
        s["pair"] = "ETHUSDT".into();
        s["side"] = "short".into();
    })
    .await;
    app.seed_signal("8003", |s| {
        s["content"] = "btc short vip".into();
        s["side"] = "short".into();
    })
    .await;
    let mut b = paid_browser(&app).await;

    let r = b.get("/feed?route=scalps").await;
    assert!(r.body.contains("eth short scalps"));
    assert!(!r.body.contains("btc long vip"));
    assert!(
        r.body
            .contains("<option value=\"scalps\" selected>Scalps</option>")
    );

    let r = b.get("/feed?pair=btcusdt").await;
    assert!(r.body.contains("btc long vip") && r.body.contains("btc short vip"));
    assert!(!r.body.contains("eth short scalps"));

    let r = b.get("/feed?pair=BTCUSDT&side=short").await;
    assert!(r.body.contains("btc short vip"));
    assert!(!r.body.contains("btc long vip"));

    // Nonsense filters are ignored, not passed on.
    let r = b.get("/feed?side=sideways&route=%22%3E&after=..%2F").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.matches("<article").count(), 3);
}

#[tokio::test]
async fn cards_show_the_trade_and_markers() {
    let app = TestApp::spawn().await;
    app.seed_signal("9001", |s| {
        s["content"] = "line one\nline two **Buy** ||tp||".into();
        s["edited_at"] = minutes_ago(1).into();
        s["revision"] = 2.into();
    })
    .await;
    app.seed_signal("9002", |s| {
        s["content"] = "gone".into();
        s["status"] = "deleted".into();
        s["deleted_at"] = minutes_ago(1).into();
        s["posted_at"] = minutes_ago(5).into();
    })
    .await;
    app.seed_signal("9003", |s| {
        s["content"] = "just chatting".into();
        s["posted_at"] = minutes_ago(9).into();
        for k in ["pair", "side", "entries", "targets", "stop", "leverage"] {
            s[k] = serde_json::Value::Null;
        }
    })
    .await;
    let mut b = paid_browser(&app).await;
    let r = b.get("/feed").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let card = |id: &str| {
        let start = r.body.find(&format!("id=\"signal-{id}\"")).unwrap();
        let end = start + r.body[start..].find("</article>").unwrap();
        r.body[start..end].to_owned()
    };
    let edited = card("9001");
    assert!(
        edited
            .contains("line one\nline two <strong>Buy</strong> <span class=\"spoiler\">tp</span>")
    );
    assert!(edited.contains("class=\"marker edited\""));
    assert!(edited.contains("<dt>Entry</dt><dd>62000 – 61500.5</dd>"));
    assert!(edited.contains("<dt>Targets</dt><dd>63000, 64000</dd>"));
    assert!(edited.contains("<dt>Stop</dt><dd>60000</dd>"));
    assert!(edited.contains("<dt>Leverage</dt><dd>10×</dd>"));
    assert!(edited.contains("side long"));
    assert!(edited.contains("Trader Joe"));
    let deleted = card("9002");
    assert!(deleted.contains("class=\"marker deleted\""));
    assert!(!deleted.contains("marker edited"));
    let chat = card("9003");
    assert!(chat.contains("just chatting"));
    assert!(!chat.contains("<dl class=\"trade\">"));
}
