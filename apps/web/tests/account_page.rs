//! The account page as a customer reads it: each plan under its configured name with its status
//! and period end (a cancelled plan runs until the end of its period), the "Manage
//! subscription" link with their email, and the Discord server invite once linked.

mod common;

use common::TestApp;
use g3_core::{Email, entitlements::BuyUrl, entitlements::PlanConfig, plans::Plan};
use g3_store::{Collection, models::Subscription};
use reqwest::StatusCode;
use serde_json::json;
use time::macros::format_description;
use url::Url;

const PLANS: &str = r#"
[plans.vip]
name = "VIP Monthly"
price = "$49 / month"
buy_url = "https://shop.example/vip?email={email}"
routes = ["*"]
"#;
const MANAGE: &str = "https://shop.example/customer?email={email}";
const INVITE: &str = "https://discord.gg/g3-signals";

async fn spawn(links: bool) -> TestApp {
    TestApp::spawn_configured(|s| {
        s.plans = PlanConfig::from_toml(PLANS).unwrap();
        if links {
            s.account_links = web::AccountLinks {
                manage_subscription: Some(BuyUrl::parse(MANAGE).unwrap()),
                discord_invite: Some(Url::parse(INVITE).unwrap()),
            };
        }
    })
    .await
}

/// The period end of `email`'s vip subscription as the page writes dates.
async fn period_end(app: &TestApp, email: &str) -> String {
    let id =
        g3_access::subscription_id(&Email::parse(email).unwrap(), &Plan::parse("vip").unwrap());
    let sub = Collection::<Subscription>::new(&app.backend.client)
        .get(&id)
        .await
        .unwrap();
    sub.data
        .period_end
        .expect("a period end")
        .format(format_description!("[year]-[month]-[day]"))
        .unwrap()
}

#[tokio::test]
async fn a_member_sees_plan_status_period_end_manage_link_and_the_server_invite() {
    let app = spawn(true).await;
    let email = "member+1@example.com";
    let mut b = app.verified(email).await;
    app.grant(email).await;
    let end = period_end(&app, email).await;

    let r = b.get("/account").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for text in [
        "<td>VIP Monthly</td>",
        "<span class=\"status active\">Active</span>",
        &format!("<td>ends {end}</td>"),
        "<th scope=\"col\">Period end</th>",
        "id=\"manage\" href=\"https://shop.example/customer?email=member%2B1%40example.com\"",
        ">Manage subscription</a>",
    ] {
        assert!(r.body.contains(text), "{text} missing: {}", r.body);
    }
    assert!(
        !r.body.contains(">vip<"),
        "the plan key stays internal: {}",
        r.body
    );
    // Not linked yet: no invite.
    assert!(!r.body.contains("Open the server"), "{}", r.body);

    let user_id = app.user_id(email).await;
    app.access()
        .link_discord(&user_id, "123456789012345678", Some("trader_one"), "test")
        .await
        .unwrap();
    let r = b.get("/account").await;
    assert_eq!(r.status, StatusCode::OK);
    for text in [
        "Linked as <strong>trader_one</strong>",
        &format!("id=\"discord-invite\" href=\"{INVITE}\" rel=\"noopener\">Open the server</a>"),
        // Unlinking still asks first.
        "<summary>Unlink Discord</summary>",
        "Yes, unlink Discord",
    ] {
        assert!(r.body.contains(text), "{text} missing: {}", r.body);
    }
}

#[tokio::test]
async fn a_cancelled_plan_runs_until_its_period_end() {
    let app = spawn(true).await;
    let email = "leaving@example.com";
    let mut b = app.verified(email).await;
    app.grant(email).await;
    let end = period_end(&app, email).await;
    // As `subscription.cancelled` leaves it: access runs to the end of the paid period.
    let id =
        g3_access::subscription_id(&Email::parse(email).unwrap(), &Plan::parse("vip").unwrap());
    Collection::<Subscription>::new(&app.backend.client)
        .update(&id, &json!({ "status": "cancelled" }), None)
        .await
        .unwrap();

    let r = b.get("/account").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for text in [
        "<td>VIP Monthly</td>",
        &format!("<span class=\"status ending\">Cancelled, active until {end}</span>"),
        &format!("<td>ends {end}</td>"),
        ">Manage subscription</a>",
    ] {
        assert!(r.body.contains(text), "{text} missing: {}", r.body);
    }
}

#[tokio::test]
async fn without_a_plan_or_the_settings_there_is_nothing_to_manage_or_open() {
    // Configured, but nothing bought: nothing to manage.
    let app = spawn(true).await;
    let mut b = app.verified("new@example.com").await;
    let r = b.get("/account").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("No plan is linked to this email yet."));
    assert!(!r.body.contains("Manage subscription"), "{}", r.body);

    // Bought and linked, but neither link configured.
    let app = spawn(false).await;
    let email = "plain@example.com";
    let mut b = app.verified(email).await;
    app.grant(email).await;
    let user_id = app.user_id(email).await;
    app.access()
        .link_discord(&user_id, "223456789012345678", Some("plain"), "test")
        .await
        .unwrap();
    let r = b.get("/account").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("<td>VIP Monthly</td>"), "{}", r.body);
    assert!(!r.body.contains("Manage subscription"), "{}", r.body);
    assert!(!r.body.contains("Open the server"), "{}", r.body);
}
