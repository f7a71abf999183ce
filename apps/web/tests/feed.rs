//! The feed: newest first, 25 a page with cursor links, filters by route, pair and side, and the
//! card's markers.

mod common;

use common::{TestApp, minutes_ago};

async fn paid_browser(app: &TestApp) -> common::Browser {
    let b = app.verified("reader@example.com").await;
    app.grant("reader@example.com").await;
    b
}

/// The paging link with `rel` (`next`: older, `prev`: newer).
fn rel_link(body: &str, rel: &str) -> Option<String> {
    let at = body.find(&format!("rel=\"{rel}\""))?;
    let start = body[..at].rfind("href=\"")? + "href=\"".len();
    let end = start + body[start..].find('"')?;
    Some(body[start..end].replace("&#38;", "&"))
}

fn next_link(body: &str) -> Option<String> {
    rel_link(body, "next")
}

fn prev_link(body: &str) -> Option<String> {
    rel_link(body, "prev")
}

const END: &str = "You've reached the first signal";

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
async fn the_pair_filter_finds_a_pair_however_it_is_typed() {
    let app = TestApp::spawn().await;
    app.seed_route("vip-calls", "VIP Calls").await;
    // Stored as the parser writes it ("BTC/USDT"); `ops signals normalize-pairs` rewrites
    // pairs other tools glued ("BTCUSDT") into that form.
    app.seed_signal("8101", |s| {
        s["content"] = "btc parsed".into();
        s["pair"] = "BTC/USDT".into();
    })
    .await;
    app.seed_signal("8103", |s| {
        s["content"] = "btc against usdc".into();
        s["pair"] = "BTC/USDC".into();
    })
    .await;
    app.seed_signal("8104", |s| {
        s["content"] = "eth parsed".into();
        s["pair"] = "ETH/USDT".into();
    })
    .await;
    let mut b = paid_browser(&app).await;

    for typed in ["btcusdt", "BTCUSDT", "BTC/USDT", "btc-usdt", "btc%2Fusdt"] {
        let r = b.get(&format!("/feed?pair={typed}")).await;
        assert_eq!(r.status, 200, "{typed}");
        assert!(r.body.contains("btc parsed"), "{typed}: BTC/USDT");
        assert!(
            !r.body.contains("btc against usdc") && !r.body.contains("eth parsed"),
            "{typed}: only BTC/USDT"
        );
    }
    for typed in ["btc", "BTC"] {
        let r = b.get(&format!("/feed?pair={typed}")).await;
        assert!(
            r.body.contains("btc parsed") && r.body.contains("btc against usdc"),
            "{typed}: every BTC pair"
        );
        assert!(!r.body.contains("eth parsed"), "{typed}");
    }
    let r = b.get("/feed?pair=eth").await;
    assert!(r.body.contains("eth parsed") && !r.body.contains("btc parsed"));
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
        s["pair"] = "ETH/USDT".into();
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

/// `count` signals `id0+i`, `content` "call number i", newest last.
async fn seed_calls(app: &TestApp, count: i64, id0: i64) {
    for i in 0..count {
        app.seed_signal(&format!("{}", id0 + i), |s| {
            s["posted_at"] = minutes_ago(200 - i).into();
            s["content"] = format!("call number {i:02}").into();
        })
        .await;
    }
}

#[tokio::test]
async fn pages_both_ways_with_an_end_marker() {
    let app = TestApp::spawn().await;
    // 60 signals: pages of 25, 25 and 10.
    seed_calls(&app, 60, 7000).await;
    let mut b = paid_browser(&app).await;

    let first = b.get("/feed").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body.matches("<article").count(), 25);
    assert!(
        prev_link(&first.body).is_none(),
        "the newest page has no newer link"
    );
    assert!(!first.body.contains(END));
    assert!(first.body.contains("data-insert=\"1\""));
    assert!(!first.body.contains("data-newest"));
    let older = next_link(&first.body).expect("older link");
    assert!(older.ends_with("after=7035"), "{older}");

    let second = b.get(&older).await;
    assert_eq!(second.body.matches("<article").count(), 25);
    assert!(second.body.contains("call number 34") && second.body.contains("call number 10"));
    assert!(!second.body.contains("call number 35") && !second.body.contains("call number 09"));
    assert!(second.body.contains("data-insert=\"0\""));
    assert!(second.body.contains("data-newest=\"/feed\""));
    let newer = prev_link(&second.body).expect("newer link");
    assert!(newer.ends_with("before=7034"), "{newer}");
    let third_link = next_link(&second.body).expect("older link");
    assert!(third_link.ends_with("after=7010"), "{third_link}");
    assert!(!second.body.contains(END));

    // The last page: exactly what is left, the end marker instead of an older link.
    let third = b.get(&third_link).await;
    assert_eq!(third.body.matches("<article").count(), 10);
    assert!(third.body.contains("call number 09") && third.body.contains("call number 00"));
    assert!(next_link(&third.body).is_none());
    assert!(third.body.contains(END), "{}", third.body);
    let back = prev_link(&third.body).expect("newer link");
    assert!(back.ends_with("before=7009"), "{back}");

    // Back up: the same pages, in the same order (newest first).
    let second_again = b.get(&back).await;
    assert_eq!(second_again.body.matches("<article").count(), 25);
    let pos = |body: &str, n: &str| body.find(&format!("call number {n}")).unwrap();
    assert!(pos(&second_again.body, "34") < pos(&second_again.body, "10"));
    assert!(!second_again.body.contains("call number 35"));
    assert_eq!(
        prev_link(&second_again.body).as_deref(),
        Some(newer.as_str())
    );
    assert_eq!(
        next_link(&second_again.body).as_deref(),
        Some(third_link.as_str())
    );

    // Newer from the second page reaches the top: no newer link, it takes live cards.
    let top = b.get(&newer).await;
    assert_eq!(top.body.matches("<article").count(), 25);
    assert!(top.body.contains("call number 59") && top.body.contains("call number 35"));
    assert!(prev_link(&top.body).is_none());
    assert!(top.body.contains("data-insert=\"1\""));
    assert_eq!(next_link(&top.body).as_deref(), Some(older.as_str()));
}

#[tokio::test]
async fn a_full_last_page_ends_without_an_empty_page() {
    let app = TestApp::spawn().await;
    seed_calls(&app, 25, 7000).await;
    let mut b = paid_browser(&app).await;
    let r = b.get("/feed").await;
    assert_eq!(r.body.matches("<article").count(), 25);
    assert!(
        next_link(&r.body).is_none(),
        "exactly one page: no older link"
    );
    assert!(prev_link(&r.body).is_none());
    assert!(r.body.contains(END));
}

#[tokio::test]
async fn paging_links_keep_the_filters() {
    let app = TestApp::spawn().await;
    app.seed_route("scalps", "Scalps").await;
    seed_calls(&app, 30, 7000).await;
    // Noise the filters leave out, interleaved.
    for i in 0..10i64 {
        app.seed_signal(&format!("{}", 8000 + i), |s| {
            s["posted_at"] = minutes_ago(195 - 2 * i).into();
            s["content"] = format!("other {i:02}").into();
            s["route_key"] = "scalps".into();
            s["side"] = "short".into();
        })
        .await;
    }
    let mut b = paid_browser(&app).await;
    let first = b.get("/feed?pair=btcusdt&side=long").await;
    assert_eq!(first.body.matches("<article").count(), 25);
    assert!(!first.body.contains("other "));
    let older = next_link(&first.body).expect("older link");
    assert!(
        older.contains("pair=BTCUSDT") && older.contains("side=long"),
        "{older}"
    );
    let second = b.get(&older).await;
    assert_eq!(second.body.matches("<article").count(), 5);
    assert!(!second.body.contains("other "));
    assert!(second.body.contains(END) && second.body.contains("matching these filters"));
    assert!(
        !second.body.contains("data-newest"),
        "filtered pages do not count live cards"
    );
    let newer = prev_link(&second.body).expect("newer link");
    assert!(
        newer.contains("pair=BTCUSDT") && newer.contains("side=long"),
        "{newer}"
    );
    assert!(newer.contains("before=7004"), "{newer}");
    let back = b.get(&newer).await;
    assert_eq!(back.body.matches("<article").count(), 25);
    assert!(!back.body.contains("other "));
    assert!(prev_link(&back.body).is_none());
}

#[tokio::test]
async fn empty_states_say_what_to_do() {
    let app = TestApp::spawn().await;
    let mut b = paid_browser(&app).await;
    let r = b.get("/feed").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("No signals yet."));
    assert!(r.body.contains("will appear here live"));
    assert!(!r.body.contains(END) && next_link(&r.body).is_none());

    app.seed_signal("9101", |_| {}).await;
    let r = b.get("/feed?pair=ethusdt&side=short").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.matches("<article").count(), 0);
    assert!(r.body.contains("No signals match these filters."));
    assert!(
        r.body
            .contains("<a class=\"button\" href=\"/feed\">Clear filters</a>")
    );
    assert!(!r.body.contains(END) && !r.body.contains("No signals yet."));
}

#[tokio::test]
async fn with_the_backend_down_the_feed_says_so_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let backend = testkit::backend::backend_on_disk(dir.path()).await;
    let mut app = TestApp::spawn_on(backend, Default::default()).await;
    app.seed_signal("9201", |s| s["content"] = "before the outage".into())
        .await;
    let mut b = paid_browser(&app).await;
    assert_eq!(b.get("/feed").await.status, 200);

    app.backend.stop().await;
    let r = b.get("/feed?pair=btc").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(
        r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("30")
    );
    assert!(
        r.body.contains("not answering just now") || r.body.contains("could not be loaded"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("Something went wrong"));

    app.backend.start().await;
    // Polls: the web reconnects to the backend on its own schedule.
    let mut status = reqwest::StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..100 {
        let r = b.get("/feed").await;
        status = r.status;
        if status == 200 {
            assert!(r.body.contains("before the outage"));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "the feed recovers once the backend is back");
}
