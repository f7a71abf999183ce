//! devstack starts on a fresh data directory, seeds its demo accounts, runs the webhook
//! service whose printed demo purchase works, and starts again on the same directory without
//! redoing anything.

use std::net::SocketAddr;

use devstack::{DEMO_ACCOUNTS, DemoPurchase, Settings};

fn settings(dir: &std::path::Path) -> Settings {
    Settings {
        data_dir: dir.to_path_buf(),
        emulator_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        webhook_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        project_id: "g3".into(),
        api_key: "test-key".into(),
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
    running.stop().await.unwrap();

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
