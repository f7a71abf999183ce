//! The public landing page `/`: what the product is, the configured plans with their buy links
//! (carrying a signed-in visitor's email, URL-encoded) and the way in.

mod common;

use common::{STORE_URL, TestApp};
use g3_core::entitlements::PlanConfig;
use reqwest::StatusCode;

const PLANS: &str = r#"
[plans.basic]
name = "Basic"
price = "$19 / month"
benefits = ["Scalp calls", "Live web feed"]
buy_url = "https://shop.example/basic?email={email}"
routes = ["scalps"]

[plans.vip]
name = "VIP"
price = "$49 / month"
benefits = ["Every call", "The VIP role on Discord"]
buy_url = "https://shop.example/vip?email={email}&ref=landing"
routes = ["*"]
"#;

async fn app() -> TestApp {
    TestApp::spawn_configured(|s| s.plans = PlanConfig::from_toml(PLANS).unwrap()).await
}

#[tokio::test]
async fn signed_out_visitors_see_the_product_the_plans_and_the_way_in() {
    let app = app().await;
    let r = app.browser().get("/").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for text in [
        "G3netic Signals brings you",
        "<h2>Plans</h2>",
        "<h3>Basic</h3>",
        "$19 / month",
        "Scalp calls",
        "Live web feed",
        "<h3>VIP</h3>",
        "$49 / month",
        "The VIP role on Discord",
        // No email to carry yet: the store asks for it.
        "href=\"https://shop.example/basic?email=\"",
        "href=\"https://shop.example/vip?email=&#38;ref=landing\"",
        ">Buy Basic</a>",
        "<a class=\"button\" href=\"/signup\">Sign up</a>",
        "href=\"/signin\">Sign in</a>",
    ] {
        assert!(r.body.contains(text), "{text} missing: {}", r.body);
    }
    assert!(!r.body.contains(">Open the feed</a>"), "{}", r.body);
    // Plans in the order the file lists them.
    assert!(r.body.find("<h3>Basic</h3>") < r.body.find("<h3>VIP</h3>"));
}

#[tokio::test]
async fn signed_in_visitors_get_buy_links_with_their_email_and_the_feed() {
    let app = app().await;
    let mut b = app.verified("trader+1@example.com").await;
    let r = b.get("/").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for text in [
        "href=\"https://shop.example/basic?email=trader%2B1%40example.com\"",
        "href=\"https://shop.example/vip?email=trader%2B1%40example.com&#38;ref=landing\"",
        "<a class=\"button\" href=\"/feed\">Open the feed</a>",
        "Pay with <strong>trader+1@example.com</strong>",
    ] {
        assert!(r.body.contains(text), "{text} missing: {}", r.body);
    }
    assert!(!r.body.contains("href=\"/signup\">Sign up"), "{}", r.body);
    assert!(
        !r.body.contains("href=\"/admin\""),
        "no Admin link for customers"
    );
    // The members' pages are still where they were.
    assert_eq!(b.get("/feed").await.status, StatusCode::FORBIDDEN);

    // Staff find the console from here too.
    let mut staff = app.verified("boss@example.com").await;
    app.make_staff("boss@example.com").await;
    let r = staff.get("/").await;
    assert!(
        r.body.contains("<a href=\"/admin\">Admin</a>"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn without_described_plans_the_landing_page_links_the_store() {
    let app = TestApp::spawn().await;
    let r = app.browser().get("/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains(&format!(
            "<a class=\"button\" href=\"{STORE_URL}\" rel=\"noopener\">Buy a plan</a>"
        )),
        "{}",
        r.body
    );
}
