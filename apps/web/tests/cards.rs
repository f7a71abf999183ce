//! Signal cards as customers see them: the trade in one block with reward/risk, warnings in
//! plain words, hostile text inert and bidi-isolated, invisible characters kept out of the
//! numbers and pair, web links only, charts from Storage, the list view, each version rendered
//! once, and the site's own chrome (favicon, dark theme, error pages that know the viewer).

mod common;

use std::collections::HashMap;

use common::{TestApp, minutes_ago};
use g3_appwrite::Document;
use g3_store::models::Signal;
use serde_json::json;
use web::card::CardCache;

async fn member(app: &TestApp) -> common::Browser {
    let b = app.verified("cards@example.com").await;
    app.grant("cards@example.com").await;
    b
}

/// The markup of one card on a page.
fn card<'a>(body: &'a str, id: &str) -> &'a str {
    let start = body
        .find(&format!("id=\"signal-{id}\""))
        .unwrap_or_else(|| panic!("card {id} in {body}"));
    let end = start + body[start..].find("</article>").expect("the card's end");
    &body[start..end]
}

/// How askama escapes text.
fn escaped(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

fn no_trade(s: &mut serde_json::Value) {
    for k in ["pair", "side", "entries", "targets", "stop", "leverage"] {
        s[k] = serde_json::Value::Null;
    }
}

#[tokio::test]
async fn the_trade_reads_as_one_block_with_reward_to_risk() {
    let app = TestApp::spawn().await;
    app.seed_signal("6001", |s| {
        s["content"] = "#BTC/USDT LONG\nEntry: 62000 - 61500.5\nTargets: 63000, 64000\n\
                        Stop: 60000\nLeverage: 10x"
            .into();
    })
    .await;
    app.seed_signal("6002", |s| {
        s["content"] = "BTC long from the range low: I expect a retest of 61.5k first, so scale \
                        in slowly and keep size small until the weekly close confirms it."
            .into();
        s["posted_at"] = minutes_ago(3).into();
    })
    .await;
    let mut b = member(&app).await;
    let r = b.get("/feed").await;
    assert_eq!(r.status, 200, "{}", r.body);

    let repeat = card(&r.body, "6001");
    assert!(
        repeat.contains("<bdi>BTC/USDT</bdi>"),
        "glued pair written BASE/QUOTE: {repeat}"
    );
    assert!(repeat.contains("<span class=\"side long\">long</span>"));
    for row in [
        "<dt>Entry</dt><dd>62000 – 61500.5</dd>",
        "<dt>Targets</dt><dd>63000, 64000</dd>",
        "<dt>Stop</dt><dd>60000</dd>",
        "<dt>Leverage</dt><dd>10×</dd>",
        // (63000 - 61750.25) / (61750.25 - 60000) and (64000 - …) / (…)
        "<dd>TP1 0.7 · TP2 1.3</dd>",
    ] {
        assert!(repeat.contains(row), "{row} in {repeat}");
    }
    // The author's text only repeats the numbers: shown once, folded.
    assert_eq!(repeat.matches("<details class=\"original\">").count(), 1);
    assert_eq!(
        repeat.matches("62000").count(),
        2,
        "the block, and the folded original"
    );
    assert!(repeat.contains("<summary>Original message</summary>"));

    let prose = card(&r.body, "6002");
    assert!(
        !prose.contains("<details"),
        "text that says more stays open: {prose}"
    );
    assert!(prose.contains("I expect a retest"));
    // UTC for readers without scripts, machine-readable for app.js to show local time.
    assert!(prose.contains("<time datetime=\""));
    assert!(prose.contains(" UTC</time>"));
}

#[tokio::test]
async fn warnings_are_sentences_never_codes() {
    let app = TestApp::spawn().await;
    app.seed_signal("6101", |s| {
        s["flags"] = json!([
            "side_inferred",
            "stop_wrong_side",
            "absurd_ratio",
            "targets_wrong_side",
            "targets_out_of_order",
            "absurd_leverage",
            "conflicting_sides",
            "a_code_from_the_future"
        ]);
    })
    .await;
    app.seed_signal("6102", |s| {
        s["side"] = "short".into();
        s["flags"] = json!(["stop_wrong_side", "side_unclear", "side_inferred"]);
        s["posted_at"] = minutes_ago(2).into();
    })
    .await;
    let mut b = member(&app).await;
    let r = b.get("/feed").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let long = card(&r.body, "6101");
    for sentence in [
        "The stop is above the entry for a long.",
        "A target is below the entry for a long.",
        "The side is not written in the message; it is read from the prices.",
        "possibly a typo, such as a missing decimal point.",
        "Something about this signal looks unusual",
    ] {
        assert!(long.contains(&escaped(sentence)), "{sentence:?} in {long}");
    }
    let short = card(&r.body, "6102");
    assert!(short.contains("The stop is below the entry for a short."));
    assert!(short.contains("long is assumed"));
    assert!(
        !short.contains("it is read from the prices"),
        "the weaker note is left out beside 'side unclear'"
    );
    for code in [
        "side_inferred",
        "stop_wrong_side",
        "absurd_ratio",
        "targets_wrong_side",
        "targets_out_of_order",
        "absurd_leverage",
        "conflicting_sides",
        "side_unclear",
        "a_code_from_the_future",
        "check:",
    ] {
        assert!(!r.body.contains(code), "{code} reached the page");
    }
}

#[tokio::test]
async fn hostile_text_is_inert_and_isolated_everywhere_on_a_card() {
    let app = TestApp::spawn().await;
    app.seed_route("vip-calls", "\u{202E}<img src=x onerror=alert(1)>")
        .await;
    app.seed_signal("6201", |s| {
        s["content"] = "<script>alert(1)</script> **<img src=x onerror=alert(2)>** \
                        [x](javascript:alert(3)) <a href=\"javascript:alert(12)\">y</a> \
                        ```\n</div><iframe src=//evil.example>\n```"
            .into();
        s["author_name"] = "\u{202E}<b onmouseover=alert(4)>mallory</b>".into();
        s["pair"] = "<svg/onload=alert(5)>".into();
        s["embeds"] = json!([{
            "title": "<iframe src=javascript:alert(6)>",
            "description": "[z](javascript:alert(7)) https://ok.example/a",
            "url": "javascript:alert(8)",
            "fields": [{ "name": "<script>", "value": "</div><script>alert(9)</script>" }]
        }])
        .to_string()
        .into();
        s["attachments"] = json!([{
            "id": "1", "filename": "\"><svg onload=alert(10)>.pdf", "content_type": "application/pdf",
            "size": 10, "file_id": "file-1", "state": "stored"
        }, {
            "id": "2", "filename": "x.png", "content_type": "image/png", "size": 10,
            "file_id": "../../admin\"onerror=alert(11)", "state": "stored"
        }])
        .to_string()
        .into();
    })
    .await;
    let mut b = member(&app).await;
    let r = b.get("/feed").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let c = card(&r.body, "6201");
    for raw in [
        "<script",
        "<img src=x",
        "<iframe",
        "<svg",
        "<b onmouseover",
        "href=\"javascript",
        "src=\"javascript",
        "href=\"https://evil.example\"",
        "../../admin",
    ] {
        assert!(!c.contains(raw), "raw {raw:?} in {c}");
    }
    assert!(c.contains(&escaped("<a href=\"javascript:alert(12)\">y</a>")));
    assert!(c.contains(&escaped("</div><script>alert(9)</script>")));
    // Author-controlled text sits in bidi isolation: an override cannot reorder the card.
    assert!(
        c.contains("<bdi class=\"author\">\u{202E}&#60;b onmouseover"),
        "{c}"
    );
    assert!(c.contains("<bdi class=\"route\">"));
    assert!(c.contains("<div class=\"text\" dir=\"auto\">"));
    assert!(c.contains("<div class=\"embed\" dir=\"auto\">"));
    // The only link is the web one, and it opens apart from the page.
    assert_eq!(c.matches("<a href=\"https://").count(), 1, "{c}");
    assert!(c.contains(
        "<a href=\"https://ok.example/a\" rel=\"noopener nofollow ugc\" target=\"_blank\">"
    ));
    // A stored file is offered by its escaped name; an id that is not an id is never a URL.
    assert!(c.contains("href=\"/signals/6201/assets/file-1\""));
    assert!(c.contains(&escaped("\"><svg onload=alert(10)>.pdf")));
    assert_eq!(r.body.matches("<script").count(), 1, "only our own file");
}

#[tokio::test]
async fn invisible_characters_never_split_numbers_or_reverse_the_pair() {
    // What ingest stores for a message hiding a zero-width space in "64000" and an override
    // before the pair: the parser reads what a reader sees.
    let content =
        "\u{202E}#BTC/USDT LONG\nEntry: 6\u{200B}4000\nTarget: 65\u{FEFF}000\nStop: 63\u{2060}000";
    let g3_core::signal::Parsed::Signal(parsed) = g3_core::signal::parse(content, &[]) else {
        panic!("a signal");
    };
    assert_eq!(parsed.entries, vec![64000.0]);
    assert_eq!(parsed.pair, "BTC/USDT");

    let app = TestApp::spawn().await;
    app.seed_signal("6301", |s| {
        s["content"] = content.into();
        s["pair"] = parsed.pair.clone().into();
        s["entries"] = json!(parsed.entries);
        s["targets"] = json!(parsed.targets);
        s["stop"] = json!(parsed.stop);
    })
    .await;
    // A pair stored by an older parser, invisible characters and all.
    app.seed_signal("6302", |s| {
        s["pair"] = "\u{202E}ETH\u{200B}USDT\u{2069}".into();
        s["posted_at"] = minutes_ago(1).into();
    })
    .await;
    let mut b = member(&app).await;
    let r = b.get("/feed").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let c = card(&r.body, "6301");
    assert!(c.contains("<dt>Entry</dt><dd>64000</dd>"), "{c}");
    assert!(!c.contains("6 – 4000"));
    assert!(c.contains("<dt>Targets</dt><dd>65000</dd>"));
    assert!(c.contains("<dt>Stop</dt><dd>63000</dd>"));
    assert!(c.contains("<bdi>BTC/USDT</bdi>"));
    let c = card(&r.body, "6302");
    assert!(c.contains("<bdi>ETH/USDT</bdi>"), "{c}");
    let title = &c[c.find("<h2").unwrap()..c.find("</h2>").unwrap()];
    for hidden in ['\u{202E}', '\u{200B}', '\u{2069}'] {
        assert!(!title.contains(hidden), "{hidden:?} in the title");
    }
}

#[tokio::test]
async fn an_image_only_message_is_a_chart_card() {
    let app = TestApp::spawn().await;
    app.seed_signal("6401", |s| {
        no_trade(s);
        s["content"] = "".into();
        s["attachments"] = json!([
            {"id": "1", "filename": "btc-4h.png", "content_type": "image/png", "size": 2048,
             "file_id": "6401-chart", "state": "stored"},
            {"id": "2", "filename": "later.webp", "content_type": "image/webp", "size": 2048,
             "state": "pending", "source_url": "https://cdn.discordapp.com/x"},
            {"id": "3", "filename": "trap.svg", "content_type": "image/svg+xml", "size": 10,
             "file_id": "6401-svg", "state": "stored"},
            {"id": "4", "filename": "huge.mov", "content_type": "video/quicktime", "size": 1,
             "state": "skipped", "note": "too large"}
        ])
        .to_string()
        .into();
    })
    .await;
    let mut b = member(&app).await;
    let r = b.get("/feed").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let c = card(&r.body, "6401");
    assert!(c.contains("<bdi>Chart</bdi>"), "a proper title: {c}");
    assert!(!c.contains(">Signal<"));
    assert!(
        c.contains(
            "<a class=\"chart\" href=\"/signals/6401/assets/6401-chart\"><img loading=\"lazy\" \
             decoding=\"async\" src=\"/signals/6401/assets/6401-chart\" alt=\"Chart: btc-4h.png\">"
        ),
        "{c}"
    );
    assert_eq!(c.matches("<img").count(), 1, "SVG is never shown inline");
    assert!(c.contains("href=\"/signals/6401/assets/6401-svg\" download"));
    assert!(c.contains("An attachment is still being copied"));
    assert!(!c.contains("huge.mov"));
    assert!(!c.contains("class=\"text\""), "no empty text block");
    assert!(!c.contains("<dl class=\"trade\""));
    assert!(
        !c.contains("cdn.discordapp.com"),
        "Discord's URL is never used"
    );
}

#[tokio::test]
async fn the_list_view_is_asked_for_then_remembered() {
    let app = TestApp::spawn().await;
    for i in 0..3 {
        app.seed_signal(&format!("650{i}"), |s| {
            s["posted_at"] = minutes_ago(i).into();
        })
        .await;
    }
    let mut b = member(&app).await;
    let cards = b.get("/feed").await;
    assert!(cards.body.contains("<section id=\"feed\" class=\"cards\""));
    assert!(
        cards
            .body
            .contains("value=\"cards\" class=\"toggle\" aria-pressed=\"true\"")
    );

    let list = b.get("/feed?view=list").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("<section id=\"feed\" class=\"list\""));
    assert!(
        list.body
            .contains("value=\"list\" class=\"toggle\" aria-pressed=\"true\"")
    );
    assert_eq!(list.body.matches("<article").count(), 3);
    let cookie = list
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("g3_view="))
        .expect("the view is remembered");
    assert!(
        cookie.starts_with("g3_view=list;") && cookie.contains("Max-Age="),
        "{cookie}"
    );

    let later = b.get("/feed?side=long").await;
    assert!(
        later.body.contains("class=\"list\""),
        "kept across pages and filters"
    );
    let back = b.get("/feed?view=cards").await;
    assert!(back.body.contains("class=\"cards\""));
    assert!(b.get("/feed").await.body.contains("class=\"cards\""));
}

/// A signal document as Appwrite returns it, at `updated` minutes ago.
fn document(id: &str, updated: i64, edit: impl FnOnce(&mut serde_json::Value)) -> Document<Signal> {
    let mut s = common::signal(id);
    edit(&mut s);
    for (k, v) in [
        ("$id", json!(id)),
        ("$sequence", json!("1")),
        ("$collectionId", json!("signals")),
        ("$databaseId", json!("main")),
        ("$createdAt", json!(minutes_ago(60))),
        ("$updatedAt", json!(minutes_ago(updated))),
        ("$permissions", json!([])),
    ] {
        s[k] = v;
    }
    serde_json::from_value(s).unwrap()
}

#[test]
fn each_version_of_a_signal_renders_once() {
    let cache = CardCache::new(100);
    let routes = HashMap::from([("vip-calls".to_owned(), "VIP Calls".to_owned())]);
    let page: Vec<_> = (0..25)
        .map(|i| document(&format!("7{i:03}"), 10, |_| {}))
        .collect();
    let first: Vec<_> = page
        .iter()
        .map(|d| cache.html(d, &routes).unwrap())
        .collect();
    assert_eq!(cache.renders(), 25);
    // The same versions on another page, another filter, a live event: nothing renders again.
    for _ in 0..3 {
        for (d, html) in page.iter().zip(&first) {
            assert!(web::card::CardHtml::ptr_eq(
                html,
                &cache.html(d, &routes).unwrap()
            ));
        }
    }
    assert_eq!((cache.renders(), cache.hits()), (25, 75));

    // A new version (an edit: a later `$updatedAt` and revision) renders anew, once.
    let edited = document("7000", 1, |s| {
        s["content"] = "stop moved to entry".into();
        s["revision"] = 2.into();
    });
    let html = cache.html(&edited, &routes).unwrap();
    assert!(html.contains("stop moved to entry"));
    assert!(!first[0].contains("stop moved to entry"));
    cache.html(&edited, &routes).unwrap();
    assert_eq!(cache.renders(), 26);
    // A write that keeps the revision (a chart stored later) is a new version too.
    let charted = document("7000", 0, |s| {
        s["content"] = "stop moved to entry".into();
        s["revision"] = 2.into();
        s["attachments"] = json!([{"id": "1", "filename": "c.png", "content_type": "image/png",
            "size": 1, "file_id": "c1", "state": "stored"}])
        .to_string()
        .into();
    });
    assert!(cache.html(&charted, &routes).unwrap().contains("<img"));
    assert_eq!(cache.renders(), 27);
}

#[tokio::test]
async fn error_pages_show_the_viewers_navigation() {
    let app = TestApp::spawn().await;
    let mut anonymous = app.browser();
    let r = anonymous.get("/no-such-page").await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("href=\"/signin\">Sign in</a>"));
    assert!(!r.body.contains("action=\"/signout\""));

    let mut b = app.verified("lost@example.com").await;
    let r = b.get("/no-such-page").await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("There is no page at this address."));
    assert!(r.body.contains("<a href=\"/feed\">Feed</a>"), "{}", r.body);
    assert!(r.body.contains("<a href=\"/account\">Account</a>"));
    assert!(r.body.contains("action=\"/signout\""));
    assert!(
        !r.body.contains("href=\"/signin\""),
        "no Sign in for a signed-in user"
    );
    // The sign-out form on the error page works: its token is this session's.
    let token = {
        let start = r.body.find("name=\"csrf\" value=\"").unwrap() + 19;
        r.body[start..start + 64].to_owned()
    };
    let out = b.post_raw("/signout", &[("csrf", &token)]).await;
    assert_eq!(out.status.as_u16() / 100, 3, "{}", out.body);
    assert!(!b.signed_in());
}

#[tokio::test]
async fn favicon_dark_theme_and_small_assets() {
    let app = TestApp::spawn().await;
    let mut b = app.browser();
    let icon = b.get("/favicon.svg").await;
    assert_eq!(icon.status, 200);
    assert_eq!(icon.headers["content-type"], "image/svg+xml");
    let cache = icon.headers["cache-control"].to_str().unwrap();
    let max_age: u64 = cache
        .split("max-age=")
        .nth(1)
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse().ok())
        .expect("a max-age");
    assert!(
        cache.contains("public") && max_age >= 7 * 24 * 3600,
        "{cache}"
    );
    assert!(icon.body.starts_with("<svg") && icon.body.len() < 1_024);
    let ico = b.get("/favicon.ico").await;
    assert_eq!(ico.location(), "/favicon.svg");

    let page = b.get("/signin").await;
    assert!(
        page.body
            .contains("<link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\">")
    );
    assert!(
        page.body
            .contains("<meta name=\"color-scheme\" content=\"light dark\">")
    );
    let css = b.get("/static/app.css").await;
    assert!(css.body.contains("@media (prefers-color-scheme: dark)"));
    let js = b.get("/static/app.js").await;
    // Page weight: both files stay small enough to ship unminified (the stylesheet covers
    // every page, admin console included).
    assert!(
        css.body.len() < 20_000 && js.body.len() < 8_000,
        "{} {}",
        css.body.len(),
        js.body.len()
    );
}
