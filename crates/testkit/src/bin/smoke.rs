//! `smoke`: drives a running stack (the compose stack with the emulator and the Discord sandbox,
//! `scripts/docker-test.sh`) from the outside like its users would, and fails loudly when a step
//! does not happen. Settings come from the environment (`smoke --help` lists them).
//!
//! `smoke journey`: (a) a new customer signs up, verifies through the emulator's mailbox, and a
//! signed Sell.app order makes them a paid member; (b) a signed collector ingest event becomes a
//! signal on the web feed and a mirror in the sandbox's channel; (c) the customer links Discord
//! through the sandbox's OAuth2 page and gets the plan's role.

use std::{
    cell::Cell,
    future::Future,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};
use g3_core::signing;
use reqwest::{StatusCode, redirect::Policy};
use serde_json::{Value, json};
use testkit::{
    sellapp::{SellappSender, Signing},
    wait::wait_for_every,
};

const HELP: &str = "\
usage: smoke journey

Environment (defaults suit docker/compose.yml with docker/compose.sandbox.yml):
  SMOKE_WEB_URL            web                           http://127.0.0.1:8092
  SMOKE_WEBHOOK_URL        webhook                       http://127.0.0.1:8091
  SMOKE_EMULATOR_URL       Appwrite emulator (mailbox)   http://127.0.0.1:8090
  SMOKE_SANDBOX_STATUS_URL Discord sandbox's status page http://127.0.0.1:8095
  SELLAPP_WEBHOOK_SECRET, INGEST_SECRET   (as the webhook service has them)
  SMOKE_SOURCE_GUILD (1000000000000000001), SMOKE_SOURCE_CHANNEL (1100000000000000001),
  SMOKE_CUSTOMER_CHANNEL (1300000000000000001), SMOKE_ROLE (1400000000000000012, plan vip's)
  SMOKE_TIMEOUT_SECS (30): how long each step may take
";

/// A setting from the environment, or its default; blank counts as unset.
fn setting(name: &str, default: Option<&str>) -> anyhow::Result<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
        _ => default
            .map(str::to_owned)
            .with_context(|| format!("{name} is not set (smoke --help)")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = std::env::args().nth(1).unwrap_or_default();
    match command.as_str() {
        "journey" => journey().await,
        _ => {
            eprint!("{HELP}");
            if command == "--help" || command == "-h" {
                Ok(())
            } else {
                bail!("unknown command {command:?}")
            }
        }
    }
}

/// Waits up to the step timeout for `check` to give `Some`; a timeout names the last error
/// `check` returned, if any.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let secs: u64 = setting("SMOKE_TIMEOUT_SECS", Some("30"))?
        .parse()
        .context("SMOKE_TIMEOUT_SECS")?;
    let started = Instant::now();
    let last_error = Cell::new(None);
    let waited = wait_for_every(
        what,
        Duration::from_secs(secs),
        Duration::from_millis(200),
        || {
            let step = check();
            let last_error = &last_error;
            async move {
                step.await.unwrap_or_else(|e| {
                    last_error.set(Some(e));
                    None
                })
            }
        },
    )
    .await;
    match waited {
        Ok(v) => {
            println!("smoke:   {what} ({} ms)", started.elapsed().as_millis());
            Ok(v)
        }
        Err(timed_out) => {
            let why = last_error
                .take()
                .map(|e| format!(": last error {e:#}"))
                .unwrap_or_default();
            bail!("{timed_out}{why}")
        }
    }
}

/// A browser without a cookie store: keeps web's cookies by hand, follows no redirects.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn new(base: String) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .timeout(Duration::from_secs(10))
                .build()?,
            base,
            cookies: Vec::new(),
        })
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
            let Some((k, val)) = v
                .to_str()
                .ok()
                .and_then(|v| v.split(';').next())
                .and_then(|pair| pair.split_once('='))
            else {
                continue;
            };
            self.cookies.retain(|(n, _)| n != k);
            self.cookies.push((k.to_owned(), val.to_owned()));
        }
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<reqwest::Response> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        self.keep(&resp);
        Ok(resp)
    }

    async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> anyhow::Result<reqwest::Response> {
        if !self.cookies.iter().any(|(k, _)| k == "g3_csrf") {
            self.get("/healthz").await?;
        }
        let csrf = self
            .cookies
            .iter()
            .find(|(k, _)| k == "g3_csrf")
            .map(|(_, v)| v.clone())
            .context("web set no g3_csrf cookie")?;
        let mut all = form.to_vec();
        all.push(("csrf", &csrf));
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(&all)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        self.keep(&resp);
        Ok(resp)
    }
}

fn expect_status(resp: &reqwest::Response, want: StatusCode, what: &str) -> anyhow::Result<()> {
    ensure!(
        resp.status() == want,
        "{what}: expected {want}, got {} ({})",
        resp.status(),
        resp.url()
    );
    Ok(())
}

fn location(resp: &reqwest::Response) -> anyhow::Result<String> {
    Ok(resp
        .headers()
        .get("location")
        .context("no location header")?
        .to_str()?
        .to_owned())
}

/// A snowflake for "now", as the collector sends message ids.
fn snowflake_now() -> u64 {
    let ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64;
    (ms.saturating_sub(1_420_070_400_000) << 22) | u64::from(std::process::id() & 0xfff)
}

async fn journey() -> anyhow::Result<()> {
    let web = setting("SMOKE_WEB_URL", Some("http://127.0.0.1:8092"))?;
    let webhook = setting("SMOKE_WEBHOOK_URL", Some("http://127.0.0.1:8091"))?;
    let emulator = setting("SMOKE_EMULATOR_URL", Some("http://127.0.0.1:8090"))?;
    let sandbox = setting("SMOKE_SANDBOX_STATUS_URL", Some("http://127.0.0.1:8095"))?;
    let sellapp_secret = setting("SELLAPP_WEBHOOK_SECRET", None)?;
    let ingest_secret = setting("INGEST_SECRET", None)?;
    let guild = setting("SMOKE_SOURCE_GUILD", Some("1000000000000000001"))?;
    let source = setting("SMOKE_SOURCE_CHANNEL", Some("1100000000000000001"))?;
    let customer_channel = setting("SMOKE_CUSTOMER_CHANNEL", Some("1300000000000000001"))?;
    let role = setting("SMOKE_ROLE", Some("1400000000000000012"))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let run = snowflake_now();
    let email = format!("smoke-{run}@g3.local");

    // (a) Sign up, verify through the mailbox, buy: a paid member.
    println!("smoke: (a) {email} signs up, verifies and buys plan vip");
    let mut b = Browser::new(web.clone())?;
    let r = b
        .post(
            "/signup",
            &[("email", &email), ("password", "smoke test password")],
        )
        .await?;
    // Sign-up answers the same for new and known emails: the code page. The emailed code
    // signs the newcomer in and proves the address.
    expect_status(&r, StatusCode::OK, "sign-up (the code page)")?;
    let (user_id, code) = eventually("the sign-up code mail", || async {
        let mail: Value = http
            .get(format!("{emulator}/mailbox/api/messages"))
            .query(&[("to", &email)])
            .send()
            .await?
            .json()
            .await?;
        Ok(mail["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["kind"] == "email_otp")
            .and_then(|m| {
                Some((
                    m["data"]["userId"].as_str()?.to_owned(),
                    m["data"]["secret"].as_str()?.to_owned(),
                ))
            }))
    })
    .await?;
    let r = b
        .post(
            "/signin/code/verify",
            &[("email", &email), ("user_id", &user_id), ("code", &code)],
        )
        .await?;
    expect_status(&r, StatusCode::SEE_OTHER, "entering the code")?;
    ensure!(
        location(&r)? == "/feed",
        "the code led to {} instead of /feed",
        location(&r)?
    );
    let r = b.get("/feed").await?;
    expect_status(
        &r,
        StatusCode::FORBIDDEN,
        "the feed before paying (paywall)",
    )?;

    let order = json!({
        "event": "order.completed",
        "store": 1,
        "data": {
            "id": run % 1_000_000_000,
            "status": "COMPLETED",
            "customer": { "email": email },
            "line_items": [{ "id": 1, "product_id": 3301, "product_variant_id": 9001, "quantity": 1 }]
        }
    })
    .to_string();
    let sender = SellappSender::new(format!("{webhook}/webhooks/sellapp"), sellapp_secret);
    let reply = tokio::time::timeout(
        Duration::from_secs(30),
        sender.send(order.as_bytes(), Signing::Hmac),
    )
    .await
    .context("the webhook service did not answer the Sell.app order within 30 s")?;
    ensure!(
        reply.status == 200,
        "the signed Sell.app order: {} {}",
        reply.status,
        reply.body
    );
    let web_base = web.clone();
    let cookies = b.cookie_header();
    eventually("the buyer sees the feed (a paid member)", || async {
        let r = http
            .get(format!("{web_base}/feed"))
            .header("cookie", &cookies)
            .send()
            .await?;
        Ok((r.status() == StatusCode::OK).then_some(()))
    })
    .await?;

    // (b) A signed collector event: on the web feed and mirrored into the sandbox.
    let marker = format!("smoke {run}");
    println!("smoke: (b) a signed collector event ({marker}) reaches the feed and the sandbox");
    let message_id = snowflake_now().to_string();
    let content = format!("BTCUSDT LONG\nEntry 64200\nTP 65000\nSL 62900\nLev 10x\n{marker}");
    let event = json!({ "events": [{ "type": "message.create", "message": {
        "id": message_id, "channel_id": source, "guild_id": guild, "content": content,
        "embeds": [], "attachments": [], "edited_timestamp": null,
        "timestamp": g3_appwrite::format_datetime(time::OffsetDateTime::now_utc()),
        "author": { "id": "1200000000000000001", "username": "smoke" } } }] })
    .to_string();
    let id = format!("smoke_{run}");
    let ts = time::OffsetDateTime::now_utc().unix_timestamp();
    let r = http
        .post(format!("{webhook}/ingest/v1/events"))
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header(
            "webhook-signature",
            signing::standard_signature(&ingest_secret, &id, ts, event.as_bytes()),
        )
        .body(event)
        .send()
        .await
        .context("posting the ingest event")?;
    ensure!(
        r.status().is_success(),
        "ingest refused the signed event: {} {}",
        r.status(),
        r.text().await.unwrap_or_default()
    );
    eventually("the signal on the web feed", || async {
        let r = http
            .get(format!("{web_base}/feed"))
            .header("cookie", &cookies)
            .send()
            .await?;
        Ok(r.text().await?.contains(&marker).then_some(()))
    })
    .await?;
    eventually("the mirror in the sandbox's customer channel", || async {
        let status: Value = http
            .get(format!("{sandbox}/status"))
            .send()
            .await?
            .json()
            .await?;
        let mirrored = status["channels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["id"] == customer_channel.as_str())
            .flat_map(|c| c["messages"].as_array().into_iter().flatten())
            .any(|m| m.to_string().contains(&marker));
        Ok(mirrored.then_some(()))
    })
    .await?;

    // (c) Link Discord through the sandbox's OAuth2 page: the plan's role appears.
    let username = format!("smoke_{}", run % 1_000_000);
    println!("smoke: (c) {email} links Discord as {username} and gets role {role}");
    let r = b.post("/account/discord/link", &[]).await?;
    expect_status(&r, StatusCode::SEE_OTHER, "Link Discord")?;
    let authorize = url::Url::parse(&location(&r)?).context("the authorize URL")?;
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    form.push(("username".into(), username.clone()));
    form.push(("decision".into(), "allow".into()));
    let no_redirects = reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .build()?;
    let r = no_redirects
        .post(authorize.as_str().split('?').next().unwrap_or_default())
        .form(&form)
        .send()
        .await
        .context("approving on the sandbox's authorize page")?;
    ensure!(
        r.status().is_redirection(),
        "the sandbox's authorize page answered {}: {}",
        r.status(),
        r.text().await.unwrap_or_default()
    );
    let callback = location(&r)?;
    let path = callback
        .strip_prefix(web.trim_end_matches('/'))
        .with_context(|| format!("the sandbox sent the browser to {callback}, not to web"))?;
    let r = b.get(path).await?;
    expect_status(&r, StatusCode::SEE_OTHER, "web's OAuth2 callback")?;
    let back = location(&r)?;
    ensure!(
        back == "/account?notice=discord-linked",
        "web's OAuth2 callback sent the browser to {back}"
    );
    eventually("the plan's role in the sandbox guild", || async {
        let status: Value = http
            .get(format!("{sandbox}/status"))
            .send()
            .await?
            .json()
            .await?;
        let has = status["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["username"] == username.as_str())
            .any(|m| {
                m["roles"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|r| r == role.as_str()))
            });
        Ok(has.then_some(()))
    })
    .await?;
    println!("smoke: journey passed");
    Ok(())
}
