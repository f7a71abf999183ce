//! Linking a Discord account against testkit's fake Discord: the OAuth2 round trip (state bound
//! to the session, PKCE checked by the fake, token revoked after), the guild join with the plan
//! role, relink, unlink, and every way a link can fail without leaving half a link behind;
//! started links live in Appwrite, so a link started on one replica finishes on another.

mod common;

use common::{Browser, Resp, TestApp};
use g3_appwrite::Query;
use g3_core::entitlements::PlanConfig;
use g3_store::models::{DiscordLink, PendingLink};
use testkit::discord::{FakeDiscord, Fault, OAuthApp, OAuthRoute};
use url::Url;
use web::{DiscordSettings, Secret};

const GUILD: u64 = 4242;
const VIP_ROLE: u64 = 111;

struct Linking {
    app: TestApp,
    fake: FakeDiscord,
    oauth: OAuthApp,
}

/// web with Discord linking pointed at a fake (or, with `api_url`, at another API base).
async fn setup_with(api_url: Option<String>) -> Linking {
    setup_configured(api_url, |_| {}).await
}

/// [`setup_with`], with other settings changed by `configure`.
async fn setup_configured(
    api_url: Option<String>,
    configure: impl FnOnce(&mut web::Settings),
) -> Linking {
    let fake = FakeDiscord::spawn().await;
    let mut registered = None;
    let app = TestApp::spawn_configured(|s| {
        let redirect = format!(
            "{}/account/discord/callback",
            s.public_url.as_str().trim_end_matches('/')
        );
        let oauth = fake.register_app("G3netic Signals", &[&redirect]);
        s.discord = Some(DiscordSettings {
            client_id: oauth.client_id.clone(),
            client_secret: Secret::new(oauth.client_secret.clone()),
            bot_token: Secret::new("bot-token"),
            guild_id: GUILD.to_string(),
            api_url: Url::parse(&api_url.unwrap_or_else(|| format!("{}/api", fake.base_url())))
                .unwrap(),
            authorize_url: Url::parse(&format!("{}/oauth2/authorize", fake.base_url())).unwrap(),
        });
        s.plans = PlanConfig::from_specs("", &format!("vip={VIP_ROLE}")).unwrap();
        registered = Some(oauth);
        configure(s);
    })
    .await;
    Linking {
        app,
        fake,
        oauth: registered.expect("configured"),
    }
}

async fn setup() -> Linking {
    setup_with(None).await
}

fn query(url: &str) -> std::collections::HashMap<String, String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

impl Linking {
    /// Presses "Link Discord": the authorize URL the browser is sent to.
    async fn start(&self, b: &mut Browser) -> String {
        let r = b.post("/account/discord/link", &[]).await;
        assert_eq!(r.status, 303, "{}", r.body);
        r.location().to_owned()
    }

    /// Follows Discord's redirect back to web.
    async fn back(&self, b: &mut Browser, callback: &str) -> Resp {
        let path = callback
            .strip_prefix(&self.app.url)
            .unwrap_or_else(|| panic!("{callback} is not on {}", self.app.url));
        b.get(path).await
    }

    /// The whole round trip, approving as `username`.
    async fn link_as(&self, b: &mut Browser, username: &str) -> Resp {
        let url = self.start(b).await;
        let callback = self.fake.approve(&url, username).unwrap();
        self.back(b, &callback).await
    }

    async fn link_of(&self, email: &str) -> Option<DiscordLink> {
        let user_id = self.app.user_id(email).await;
        self.app.access().discord_link(&user_id).await.unwrap()
    }

    fn discord_id(&self, username: &str) -> u64 {
        self.fake.discord_user(username).id
    }

    /// Started links not yet taken, on every replica.
    async fn pending_links(&self) -> u64 {
        g3_store::Collection::<PendingLink>::new(&self.app.backend.client)
            .list(&[Query::limit(1)])
            .await
            .unwrap()
            .total
    }

    /// A verified customer with an active vip plan.
    async fn paid(&self, email: &str) -> Browser {
        let b = self.app.verified(email).await;
        self.app.grant(email).await;
        b
    }
}

fn assert_linked(r: &Resp) {
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/account?notice=discord-linked");
}

#[tokio::test]
async fn a_paid_customer_links_joins_with_the_plan_role_and_the_token_is_revoked() {
    let t = setup().await;
    let mut b = t.paid("alice@example.com").await;
    let page = b.get("/account").await;
    assert!(page.body.contains("Link Discord"), "{}", page.body);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains(&format!("form-action 'self' {}", t.fake.base_url())),
        "{csp}"
    );

    let url = t.start(&mut b).await;
    assert!(url.starts_with(&format!("{}/oauth2/authorize?", t.fake.base_url())));
    let q = query(&url);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], t.oauth.client_id);
    assert_eq!(q["scope"], "identify guilds.join");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert_eq!(q["state"].len(), 64);
    assert_eq!(
        q["redirect_uri"],
        format!("{}/account/discord/callback", t.app.url)
    );
    // The consent page the sandbox user sees.
    let consent = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(consent.contains("Authorize G3netic Signals"), "{consent}");

    let callback = t.fake.approve(&url, "alice").unwrap();
    assert_eq!(query(&callback)["state"], q["state"]);
    let r = t.back(&mut b, &callback).await;
    assert_linked(&r);

    let alice = t.discord_id("alice");
    let link = t.link_of("alice@example.com").await.expect("linked");
    assert_eq!(link.discord_user_id, alice.to_string());
    assert_eq!(link.discord_username.as_deref(), Some("alice"));
    assert_eq!(t.fake.member_roles(GUILD, alice), Some(vec![VIP_ROLE]));
    // The fake checked PKCE at the exchange; the one token issued is revoked.
    let tokens = t.fake.oauth_tokens();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].revoked);
    assert_eq!(tokens[0].user_id, alice);
    let join = t
        .fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT" && r.path.ends_with(&format!("/members/{alice}")))
        .expect("a join request");
    assert_eq!(join.status, 201);
    assert_eq!(join.body.unwrap()["roles"], serde_json::json!(["111"]));
    // The role the bot will keep in sync.
    let user_id = t.app.user_id("alice@example.com").await;
    let states = t.app.access().role_states(&user_id).await.unwrap();
    assert_eq!(states.len(), 1);
    assert!(states[0].data.desired);
    assert_eq!(
        states[0].data.discord_user_id.as_deref(),
        Some(alice.to_string().as_str())
    );

    let page = b.get(r.location()).await;
    assert!(page.body.contains("Your Discord account is linked"));
    assert!(page.body.contains("Linked as <strong>alice</strong>"));
    assert!(page.body.contains(&alice.to_string()));
    assert!(page.body.contains("Unlink Discord"));
    // Unlinking asks first: the button that posts sits behind a disclosure that says what
    // unlinking does.
    let start = page.body.find("<details class=\"confirm\">").unwrap();
    let end = start + page.body[start..].find("</details>").unwrap();
    let confirm = &page.body[start..end];
    assert!(confirm.contains("<summary>Unlink Discord</summary>"));
    assert!(confirm.contains("roles away"));
    assert!(confirm.contains("action=\"/account/discord/unlink\""));
    assert!(confirm.contains("Yes, unlink Discord"));
    assert_eq!(
        page.body
            .matches("action=\"/account/discord/unlink\"")
            .count(),
        1,
        "no unlink form outside the confirmation"
    );

    // Sending the same callback again: the state was spent.
    let again = t.back(&mut b, &callback).await;
    assert_eq!(again.status, 400);
    assert!(again.body.contains("expired or was already used"));
    assert_eq!(t.fake.oauth_tokens().len(), 1);
}

#[tokio::test]
async fn a_customer_without_a_plan_joins_without_roles() {
    let t = setup().await;
    let mut b = t.app.verified("free@example.com").await;
    assert_linked(&t.link_as(&mut b, "freebie").await);
    assert_eq!(
        t.fake.member_roles(GUILD, t.discord_id("freebie")),
        Some(vec![])
    );
    // Linking the same account again is fine: already a member (204).
    assert_linked(&t.link_as(&mut b, "freebie").await);
    assert_eq!(
        t.fake.oauth_tokens().iter().filter(|t| t.revoked).count(),
        2
    );
}

#[tokio::test]
async fn a_bad_missing_or_foreign_state_is_refused_and_nothing_is_written() {
    let t = setup().await;
    let mut b = t.paid("bob@example.com").await;
    let url = t.start(&mut b).await;
    let callback = t.fake.approve(&url, "bobby").unwrap();
    let code = query(&callback)["code"].clone();
    let base = format!("/account/discord/callback?code={code}");

    for path in [
        format!("{base}&state=forged"),
        base.clone(),
        format!("{base}&state={}", "a".repeat(64)),
        format!("{base}&state=%3Cscript%3E"),
    ] {
        let r = b.get(&path).await;
        assert_eq!(r.status, 400, "{path}");
        assert!(r.body.contains("expired or was already used"), "{}", r.body);
        assert!(!r.body.contains("<script>"));
    }
    assert!(t.link_of("bob@example.com").await.is_none());
    assert!(t.fake.oauth_tokens().is_empty(), "no code was exchanged");

    // The state belongs to bob's session: another customer's browser cannot finish it, and the
    // attempt spends it.
    let mut mallory = t.app.verified("mallory@example.com").await;
    let r = t.back(&mut mallory, &callback).await;
    assert_eq!(r.status, 400);
    assert!(t.link_of("mallory@example.com").await.is_none());
    let r = t.back(&mut b, &callback).await;
    assert_eq!(r.status, 400);
    assert!(t.link_of("bob@example.com").await.is_none());
    assert!(t.fake.oauth_tokens().is_empty());

    // A fresh start works.
    assert_linked(&t.link_as(&mut b, "bobby").await);
}

#[tokio::test]
async fn a_replayed_code_is_refused_by_discord_and_changes_nothing() {
    let t = setup().await;
    let mut b = t.paid("carol@example.com").await;
    let url = t.start(&mut b).await;
    let first = t.fake.approve(&url, "carol").unwrap();
    assert_linked(&t.back(&mut b, &first).await);

    let url = t.start(&mut b).await;
    let state = query(&url)["state"].clone();
    let old_code = query(&first)["code"].clone();
    let r = b
        .get(&format!(
            "/account/discord/callback?code={old_code}&state={state}"
        ))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("did not accept"), "{}", r.body);
    assert_eq!(
        t.link_of("carol@example.com")
            .await
            .unwrap()
            .discord_user_id,
        t.discord_id("carol").to_string()
    );
    assert_eq!(t.fake.oauth_tokens().len(), 1);
}

#[tokio::test]
async fn the_user_cancelling_on_discord_changes_nothing() {
    let t = setup().await;
    let mut b = t.paid("dave@example.com").await;
    let url = t.start(&mut b).await;
    let callback = t.fake.deny(&url).unwrap();
    assert_eq!(query(&callback)["error"], "access_denied");
    let r = t.back(&mut b, &callback).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/account?notice=discord-cancelled");
    assert!(
        b.get(r.location())
            .await
            .body
            .contains("Linking was cancelled")
    );
    assert!(t.link_of("dave@example.com").await.is_none());
    assert!(t.fake.oauth_tokens().is_empty());
}

#[tokio::test]
async fn discord_failing_or_down_gives_a_clear_page_and_no_link() {
    let t = setup().await;
    let mut b = t.paid("erin@example.com").await;

    // The token endpoint fails.
    let url = t.start(&mut b).await;
    let callback = t.fake.approve(&url, "erin").unwrap();
    t.fake.fail_oauth_next(OAuthRoute::Token, 500);
    let r = t.back(&mut b, &callback).await;
    assert_eq!(r.status, 502);
    assert!(r.body.contains("Discord is not answering"), "{}", r.body);
    assert!(t.fake.oauth_tokens().is_empty());

    // users/@me fails after the exchange: the token is still revoked.
    let url = t.start(&mut b).await;
    let callback = t.fake.approve(&url, "erin").unwrap();
    t.fake.fail_oauth_next(OAuthRoute::Me, 503);
    let r = t.back(&mut b, &callback).await;
    assert_eq!(r.status, 502);
    let tokens = t.fake.oauth_tokens();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].revoked);

    // Discord is down altogether.
    let url = t.start(&mut b).await;
    let callback = t.fake.approve(&url, "erin").unwrap();
    t.fake.set_down(true);
    let r = t.back(&mut b, &callback).await;
    assert_eq!(r.status, 502);
    assert!(r.body.contains("Discord is not answering"));
    t.fake.set_down(false);

    assert!(t.link_of("erin@example.com").await.is_none());
    assert_eq!(t.fake.member_roles(GUILD, t.discord_id("erin")), None);
}

#[tokio::test]
async fn an_unreachable_discord_api_gives_a_clear_page_and_no_link() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let t = setup_with(Some(format!("http://{closed}/api"))).await;
    let mut b = t.paid("frank@example.com").await;
    let url = t.start(&mut b).await;
    let callback = t.fake.approve(&url, "frank").unwrap();
    let r = t.back(&mut b, &callback).await;
    assert_eq!(r.status, 502);
    assert!(r.body.contains("Discord is not answering"));
    assert!(t.link_of("frank@example.com").await.is_none());
}

#[tokio::test]
async fn a_failed_guild_join_keeps_the_link_and_says_so() {
    let t = setup().await;
    let mut b = t.paid("gina@example.com").await;
    let url = t.start(&mut b).await;
    let callback = t.fake.approve(&url, "gina").unwrap();
    t.fake.fail_next(Fault::ServerError(500));
    let r = t.back(&mut b, &callback).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/account?notice=discord-linked-not-joined");
    assert!(t.link_of("gina@example.com").await.is_some());
    assert_eq!(t.fake.member_roles(GUILD, t.discord_id("gina")), None);
    assert!(t.fake.oauth_tokens()[0].revoked);
    // Linking again retries the join.
    assert_linked(&t.link_as(&mut b, "gina").await);
    assert_eq!(
        t.fake.member_roles(GUILD, t.discord_id("gina")),
        Some(vec![VIP_ROLE])
    );
}

#[tokio::test]
async fn a_discord_account_linked_to_another_customer_is_refused() {
    let t = setup().await;
    let mut first = t.paid("owner@example.com").await;
    assert_linked(&t.link_as(&mut first, "shared").await);
    let mut second = t.paid("other@example.com").await;
    let r = t.link_as(&mut second, "shared").await;
    assert_eq!(r.status, 409);
    assert!(r.body.contains("already linked to another"), "{}", r.body);
    assert!(t.link_of("other@example.com").await.is_none());
    assert_eq!(
        t.link_of("owner@example.com")
            .await
            .unwrap()
            .discord_user_id,
        t.discord_id("shared").to_string()
    );
    let tokens = t.fake.oauth_tokens();
    assert_eq!(tokens.len(), 2);
    assert!(tokens.iter().all(|t| t.revoked));
}

#[tokio::test]
async fn relinking_replaces_the_link_and_unlinking_removes_it() {
    let t = setup().await;
    let mut b = t.paid("hank@example.com").await;
    assert_linked(&t.link_as(&mut b, "hank.old").await);
    assert_linked(&t.link_as(&mut b, "hank.new").await);
    let link = t.link_of("hank@example.com").await.unwrap();
    assert_eq!(link.discord_user_id, t.discord_id("hank.new").to_string());
    assert_eq!(
        t.fake.member_roles(GUILD, t.discord_id("hank.new")),
        Some(vec![VIP_ROLE])
    );
    let user_id = t.app.user_id("hank@example.com").await;
    let states = t.app.access().role_states(&user_id).await.unwrap();
    assert_eq!(
        states[0].data.discord_user_id.as_deref(),
        Some(t.discord_id("hank.new").to_string().as_str())
    );
    // The old account can now be linked by somebody else.
    let mut other = t.paid("ivy@example.com").await;
    assert_linked(&t.link_as(&mut other, "hank.old").await);

    let r = b.post("/account/discord/unlink", &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/account?notice=discord-unlinked");
    assert!(t.link_of("hank@example.com").await.is_none());
    let states = t.app.access().role_states(&user_id).await.unwrap();
    assert!(states.iter().all(|s| !s.data.desired));
    let page = b.get(r.location()).await;
    assert!(page.body.contains("Your Discord account is unlinked"));
    assert!(page.body.contains("Link Discord"));
    assert!(!page.body.contains("Unlink Discord"));
    let r = b.post("/account/discord/unlink", &[]).await;
    assert_eq!(r.location(), "/account?notice=discord-not-linked");
    assert!(t.link_of("ivy@example.com").await.is_some());
}

#[tokio::test]
async fn link_and_unlink_are_throttled_per_customer() {
    let t = setup().await;
    let mut b = t.app.verified("jay@example.com").await;
    for i in 0..web::link::LINK_LIMIT {
        let path = if i % 2 == 0 {
            "/account/discord/link"
        } else {
            "/account/discord/unlink"
        };
        assert_eq!(b.post(path, &[]).await.status, 303, "request {i}");
    }
    for path in ["/account/discord/link", "/account/discord/unlink"] {
        let r = b.post(path, &[]).await;
        assert_eq!(r.status, 429, "{path}");
        assert!(r.body.contains("Too many Discord link"), "{}", r.body);
        assert!(r.headers.contains_key("retry-after"));
    }
    let mut other = t.app.verified("kim@example.com").await;
    assert_eq!(other.post("/account/discord/link", &[]).await.status, 303);
}

#[tokio::test]
async fn link_and_unlink_need_the_csrf_token_and_a_session() {
    let t = setup().await;
    let mut b = t.paid("lee@example.com").await;
    assert_linked(&t.link_as(&mut b, "lee").await);
    for path in ["/account/discord/link", "/account/discord/unlink"] {
        let r = b.post_raw(path, &[]).await;
        assert_eq!(r.status, 403, "{path}");
        let r = b.post_raw(path, &[("csrf", "0".repeat(64).as_str())]).await;
        assert_eq!(r.status, 403, "{path}");
    }
    assert!(t.link_of("lee@example.com").await.is_some());

    let mut anonymous = t.app.browser();
    for path in ["/account/discord/link", "/account/discord/unlink"] {
        let r = anonymous.post(path, &[]).await;
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(r.location(), "/signin");
    }
    let r = anonymous
        .get("/account/discord/callback?code=x&state=y")
        .await;
    assert_eq!(r.location(), "/signin");
}

#[tokio::test]
async fn without_discord_settings_linking_is_off_and_says_so() {
    let app = TestApp::spawn().await;
    let mut b = app.verified("off@example.com").await;
    let page = b.get("/account").await;
    assert!(
        page.body.contains("not available on this site"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Link Discord</button>"));
    assert_eq!(page.headers["content-security-policy"], web::security::CSP);
    let r = b.post("/account/discord/link", &[]).await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("not available"));
}

#[tokio::test]
async fn a_link_started_on_one_replica_finishes_on_another_and_is_spent_on_both() {
    let t = setup().await;
    let mut replica = t.app.replica().await;
    let mut b = t.paid("max@example.com").await;

    // Started on the first replica, Discord's answer lands on the second.
    let url = t.start(&mut b).await;
    assert_eq!(t.pending_links().await, 1);
    let callback = t.fake.approve(&url, "max").unwrap();
    b.switch_to(&replica.url);
    let r = t.back(&mut b, &callback).await;
    assert_linked(&r);
    let link = t.link_of("max@example.com").await.expect("linked");
    assert_eq!(link.discord_user_id, t.discord_id("max").to_string());
    assert_eq!(t.pending_links().await, 0, "taken");

    // The same state replayed on either replica is refused and exchanges nothing.
    for base in [replica.url.clone(), t.app.url.clone()] {
        b.switch_to(&base);
        let again = t.back(&mut b, &callback).await;
        assert_eq!(again.status, 400, "{base}");
        assert!(again.body.contains("expired or was already used"));
    }
    assert_eq!(t.fake.oauth_tokens().len(), 1);

    // And the other way round: started on the second, finished on the first.
    b.switch_to(&replica.url);
    let url = t.start(&mut b).await;
    let callback = t.fake.approve(&url, "max.two").unwrap();
    b.switch_to(&t.app.url);
    assert_linked(&t.back(&mut b, &callback).await);
    assert_eq!(
        t.link_of("max@example.com").await.unwrap().discord_user_id,
        t.discord_id("max.two").to_string()
    );
    b.switch_to(&replica.url);
    assert_eq!(t.back(&mut b, &callback).await.status, 400);
    replica
        .shutdown(std::time::Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_expired_link_is_refused_before_discord_is_asked_and_is_removed() {
    // Links expire the moment they start: the callback always comes after.
    let t = setup_configured(None, |s| s.link_ttl = std::time::Duration::ZERO).await;
    let mut b = t.paid("nina@example.com").await;
    let url = t.start(&mut b).await;
    let callback = t.fake.approve(&url, "nina").unwrap();
    let r = t.back(&mut b, &callback).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("expired or was already used"), "{}", r.body);
    assert!(t.link_of("nina@example.com").await.is_none());
    assert!(t.fake.oauth_tokens().is_empty(), "no code was exchanged");
    assert_eq!(t.pending_links().await, 0, "the expired link is gone");
}
