//! Scale-out end to end, as production runs it: two web, two webhook and two bot processes
//! from their built binaries on one Appwrite (the emulator, also a process), with the fake
//! Discord in this test. Under concurrent Sell.app orders, collector ingest and live-feed
//! clients, the bot leader and one webhook replica are killed with SIGKILL; the senders retry
//! on the surviving replica as Sell.app and the collector do. At the end every order is granted
//! exactly once, every signal is mirrored exactly once, every live client saw every signal, and
//! the survivors stop cleanly on SIGTERM.
//!
//! Needs the binaries: `cargo build --workspace --all-targets` first (`scripts/test.sh`
//! does), or point `G3_BIN_DIR` at a directory holding them.

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use g3_appwrite::{ApiKey, Client, Config, Query};
use g3_core::signing;
use g3_store::{Collection, models::AuditEntry};
use serde_json::{Value, json};
use testkit::wait::wait_for;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpStream,
    process::{Child, Command},
};

const PROJECT: &str = "scaleout";
const API_KEY: &str = "scaleout-server-key";
const SELLAPP_SECRET: &str = "scaleout-sellapp-secret";
const INGEST_SECRET: &str = "whsec_c2NhbGVvdXQtaW5nZXN0LXNlY3JldA";
const PRODUCT: u64 = 3301;
const SOURCE_CHANNEL: &str = "1200000000000000001";
const CUSTOMER_CHANNEL: u64 = 1_200_000_000_000_000_501;
const WEB_SERVICE: &str = "web@service.internal";
const BOT_SERVICE: &str = "bot@service.internal";
const SERVICE_PASSWORD: &str = "scaleout-service-password";
const MEMBER_PASSWORD: &str = "member-password-1";
const CUSTOMERS: usize = 24;
const SIGNALS: usize = 24;
const STREAMS: usize = 4;
/// Everything must have converged within this long after the last send.
const SETTLE: Duration = Duration::from_secs(60);

fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("G3_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("debug")
}

/// One service process, its output in a log file.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, bin: &str, envs: &[(&str, String)], dir: &Path) -> anyhow::Result<Proc> {
        let path = bin_dir().join(bin);
        if !path.exists() {
            bail!(
                "{} is missing: run `cargo build --workspace --all-targets` first (or set G3_BIN_DIR)",
                path.display()
            );
        }
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let mut cmd = Command::new(&path);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            log,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// kill -9: no chance to clean up.
    async fn kill9(&mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGTERM, then the exit status within `grace`.
    async fn terminate(&mut self, grace: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM {} failed", self.name);
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => bail!("{} did not stop within {grace:?} of SIGTERM", self.name),
        }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn healthy(http: &reqwest::Client, url: &str) -> Option<Value> {
    let r = http.get(url).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    let text = r.text().await.ok()?;
    Some(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Starts the emulator binary on a free port with its data in `dir`; returns it and its
/// endpoint.
async fn start_emulator(dir: &Path) -> anyhow::Result<(Proc, String)> {
    let port = free_port();
    let proc = Proc::spawn(
        "appwrite",
        "appwrite-emulator",
        &[
            ("EMULATOR_BIND", format!("127.0.0.1:{port}")),
            ("APPWRITE_PROJECT_ID", PROJECT.into()),
            ("APPWRITE_API_KEY", API_KEY.into()),
            (
                "EMULATOR_DB",
                dir.join("appwrite.sqlite").display().to_string(),
            ),
        ],
        dir,
    )?;
    let endpoint = format!("http://127.0.0.1:{port}/v1");
    let http = reqwest::Client::new();
    wait_for("the emulator", Duration::from_secs(20), || {
        let http = http.clone();
        let url = format!("{endpoint}/health/version");
        async move { healthy(&http, &url).await }
    })
    .await?;
    Ok((proc, endpoint))
}

fn sellapp_order(order_id: u64, email: &str) -> Vec<u8> {
    json!({
        "event": "order.completed", "store": 4821,
        "data": { "id": order_id, "status": "COMPLETED", "customer": { "email": email },
                  "line_items": [{ "id": 1, "product_id": PRODUCT, "product_variant_id": 0 }] }
    })
    .to_string()
    .into_bytes()
}

fn ingest_batch(message_id: &str, tag: &str) -> Vec<u8> {
    let content =
        format!("#BTC/USDT LONG {tag}\nEntry: 64000 - 64500\nTargets: 65000, 66000\nStop: 63000");
    json!({ "events": [{ "type": "message.create", "message": {
        "id": message_id, "channel_id": SOURCE_CHANNEL, "guild_id": "7",
        "author": { "id": "9", "username": "caller" }, "content": content,
        "embeds": [], "attachments": [], "edited_timestamp": null,
        "timestamp": "2026-12-05T00:00:00+00:00" } }] })
    .to_string()
    .into_bytes()
}

/// Posts a signed request to the first replica that takes it, retrying across replicas on
/// connection errors and 5xx like Sell.app and the collector do. Returns the final status.
async fn deliver(
    http: &reqwest::Client,
    urls: &[String],
    first: usize,
    headers: &[(&str, String)],
    body: &[u8],
) -> anyhow::Result<u16> {
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut i = first;
    loop {
        let mut req = http
            .post(&urls[i % urls.len()])
            .header("content-type", "application/json")
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() || r.status().is_client_error() => {
                return Ok(r.status().as_u16());
            }
            Ok(_) | Err(_) if Instant::now() < deadline => {
                i += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(r) => bail!("delivery still failing at the deadline: {}", r.status()),
            Err(e) => bail!("delivery still failing at the deadline: {e}"),
        }
    }
}

/// Signs a member in through web's form and returns the cookie header a browser would send.
async fn sign_in(base: &str, email: &str) -> anyhow::Result<String> {
    let cookies = testkit::web_client::Cookies {
        csrf: web::cookies::CSRF,
        session: web::cookies::SESSION,
    };
    testkit::web_client::sign_in(base, email, MEMBER_PASSWORD, cookies).await
}

/// A browser's live-feed connection: collects the signal ids of every `signal` event.
async fn open_stream(
    addr: &str,
    cookie: &str,
    seen: Arc<Mutex<BTreeSet<String>>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut socket = TcpStream::connect(addr).await?;
    let request = format!(
        "GET /feed/stream HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nCookie: {cookie}\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await?;
    let mut reader = BufReader::new(socket);
    let mut status = String::new();
    reader.read_line(&mut status).await?;
    anyhow::ensure!(
        status.starts_with("HTTP/1.1 200"),
        "stream refused: {status}"
    );
    Ok(tokio::spawn(async move {
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            // Chunked framing lines are skipped; event data is one JSON object per line.
            let Some(data) = line.trim_end().strip_prefix("data: ") else {
                continue;
            };
            if let Ok(v) = serde_json::from_str::<Value>(data)
                && let Some(id) = v.get("id").and_then(Value::as_str)
            {
                seen.lock().unwrap().insert(id.to_owned());
            }
        }
    }))
}

/// The bot whose `/healthz` says it leads, by index.
async fn leader(http: &reqwest::Client, health: &[String]) -> Option<usize> {
    for (i, url) in health.iter().enumerate() {
        if let Some(v) = healthy(http, url).await
            && v.get("role").and_then(Value::as_str) == Some("leader")
        {
            return Some(i);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "runs the services' built binaries: scripts/test.sh builds them (`cargo build --workspace --all-targets`) and runs it with --run-ignored"]
async fn two_of_everything_survive_kill_9_with_exact_end_state() {
    if let Err(e) = run().await {
        panic!("{e:#}");
    }
}

async fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let http = reqwest::Client::new();

    // --- Appwrite, schema, service users, a route ------------------------------------------
    let (mut appwrite, endpoint) = start_emulator(dir.path()).await?;
    let mut config = Config::new(&endpoint, PROJECT);
    config.api_key = Some(ApiKey::new(API_KEY));
    let client = Client::new(config)?;
    let mut quiet = |_: &str| {};
    g3_store::bootstrap::run(&client, &mut quiet).await?;
    let access = g3_access::Access::new(client.clone(), Default::default());
    let cause = g3_access::Cause::Admin {
        actor: "test".into(),
        reason: "scale-out test".into(),
    };
    for email in [WEB_SERVICE, BOT_SERVICE] {
        let email = g3_core::Email::parse(email)?;
        ops::commands::service_user_create(&access, &email, SERVICE_PASSWORD, &cause).await?;
    }
    let route = g3_store::models::Route {
        source_channel_id: SOURCE_CHANNEL.into(),
        source_guild_id: Some("7".into()),
        name: "VIP calls".into(),
        customer_channel_ids: vec![CUSTOMER_CHANNEL.to_string()],
        enabled: Some(true),
    };
    ops::commands::routes_add(&client, "vip", &route).await?;
    let discord = testkit::discord::FakeDiscord::spawn().await;

    // --- two of each service ----------------------------------------------------------------
    let appwrite_env = || {
        vec![
            ("APPWRITE_ENDPOINT", endpoint.clone()),
            ("APPWRITE_PROJECT_ID", PROJECT.to_owned()),
            ("APPWRITE_API_KEY", API_KEY.to_owned()),
        ]
    };
    let mut webhooks = Vec::new();
    let mut webhook_urls = Vec::new();
    for i in 0..2 {
        let port = free_port();
        let mut env = appwrite_env();
        env.extend([
            ("WEBHOOK_BIND", format!("127.0.0.1:{port}")),
            ("SELLAPP_WEBHOOK_SECRET", SELLAPP_SECRET.into()),
            ("SELLAPP_PLANS", format!("{PRODUCT}=vip")),
            ("INGEST_SECRET", INGEST_SECRET.into()),
            (
                "WEBHOOK_SPOOL_DIR",
                dir.path().join(format!("spool-{i}")).display().to_string(),
            ),
        ]);
        webhooks.push(Proc::spawn(
            &format!("webhook-{i}"),
            "webhook",
            &env,
            dir.path(),
        )?);
        webhook_urls.push(format!("http://127.0.0.1:{port}"));
    }
    let mut webs = Vec::new();
    let mut web_addrs = Vec::new();
    for i in 0..2 {
        let port = free_port();
        let mut env = appwrite_env();
        env.extend([
            ("WEB_BIND", format!("127.0.0.1:{port}")),
            ("WEB_PUBLIC_URL", format!("http://127.0.0.1:{port}")),
            ("WEB_STORE_URL", "http://127.0.0.1:9/store".into()),
            ("WEB_SERVICE_EMAIL", WEB_SERVICE.into()),
            ("WEB_SERVICE_PASSWORD", SERVICE_PASSWORD.into()),
        ]);
        webs.push(Proc::spawn(&format!("web-{i}"), "web", &env, dir.path())?);
        web_addrs.push(format!("127.0.0.1:{port}"));
    }
    let mut bots = Vec::new();
    let mut bot_health = Vec::new();
    for i in 0..2 {
        let port = free_port();
        let mut env = appwrite_env();
        env.extend([
            ("DISCORD_BOT_TOKEN", "scaleout-bot-token".into()),
            ("DISCORD_API_URL", discord.base_url()),
            ("BOT_STAFF_EMAIL", BOT_SERVICE.into()),
            ("BOT_STAFF_PASSWORD", SERVICE_PASSWORD.into()),
            ("BOT_GATEWAY", "off".into()),
            ("BOT_HEALTH_BIND", format!("127.0.0.1:{port}")),
        ]);
        bots.push(Proc::spawn(&format!("bot-{i}"), "bot", &env, dir.path())?);
        bot_health.push(format!("http://127.0.0.1:{port}/healthz"));
    }
    let all_up = async {
        for url in webhook_urls.iter().chain(
            web_addrs
                .iter()
                .map(|a| format!("http://{a}"))
                .collect::<Vec<_>>()
                .iter(),
        ) {
            let url = format!("{url}/healthz");
            wait_for(&url, Duration::from_secs(30), || {
                let (http, url) = (http.clone(), url.clone());
                async move { healthy(&http, &url).await }
            })
            .await?;
        }
        for url in &bot_health {
            wait_for(url, Duration::from_secs(30), || {
                let (http, url) = (http.clone(), url.clone());
                async move { healthy(&http, &url).await }
            })
            .await?;
        }
        wait_for("a bot leader", Duration::from_secs(30), || {
            let (http, health) = (http.clone(), bot_health.clone());
            async move { leader(&http, &health).await }
        })
        .await
    };
    let first_leader = match all_up.await {
        Ok(l) => l,
        Err(e) => {
            let logs: Vec<String> = webhooks
                .iter()
                .chain(&webs)
                .chain(&bots)
                .map(|p| format!("--- {} ---\n{}", p.name, p.tail()))
                .collect();
            bail!("{e:#}\n{}", logs.join("\n"));
        }
    };

    // --- paid members watching the live feed on both web replicas ---------------------------
    let mut streams = Vec::new();
    let mut seen_by = Vec::new();
    for i in 0..STREAMS {
        let email = format!("watcher{i}@example.com");
        let user = client
            .users()
            .create(
                format!("watcher{i}").as_str(),
                &email,
                Some(MEMBER_PASSWORD),
                None,
            )
            .await?;
        client
            .users()
            .update_email_verification(&user.id, true)
            .await?;
        client
            .teams()
            .add_member_if_absent(g3_store::schema::TEAM_PAID, &user.id, &[] as &[&str])
            .await?;
        let addr = &web_addrs[i % 2];
        let cookie = sign_in(&format!("http://{addr}"), &email).await?;
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        streams.push(open_stream(addr, &cookie, seen.clone()).await?);
        seen_by.push(seen);
    }
    let ingest_urls: Vec<String> = webhook_urls
        .iter()
        .map(|u| format!("{u}/ingest/v1/events"))
        .collect();
    let sellapp_urls: Vec<String> = webhook_urls
        .iter()
        .map(|u| format!("{u}/webhooks/sellapp"))
        .collect();
    let ingest = |n: usize, message_id: String, tag: String| {
        let (http, urls) = (http.clone(), ingest_urls.clone());
        async move {
            let body = ingest_batch(&message_id, &tag);
            let id = format!("col_{message_id}");
            let ts = time::OffsetDateTime::now_utc().unix_timestamp();
            let headers = [
                ("webhook-id", id.clone()),
                ("webhook-timestamp", ts.to_string()),
                (
                    "webhook-signature",
                    signing::standard_signature(INGEST_SECRET, &id, ts, &body),
                ),
            ];
            deliver(&http, &urls, n, &headers, &body).await
        }
    };
    // Each replica's Realtime subscription connects in the background: a warm-up signal
    // reaches every stream once both are live.
    let warm_id = "1300000000000000000".to_owned();
    anyhow::ensure!(ingest(0, warm_id.clone(), "warm-up".into()).await? == 200);
    wait_for(
        "the warm-up signal on every stream",
        Duration::from_secs(30),
        || {
            let seen_by = seen_by.clone();
            let warm_id = warm_id.clone();
            async move {
                seen_by
                    .iter()
                    .all(|s| s.lock().unwrap().contains(&warm_id))
                    .then_some(())
            }
        },
    )
    .await?;

    // --- load, with kill -9 of the bot leader and webhook-0 a third of the way in -----------
    let mut sends = Vec::new();
    let mut takeover = None;
    for n in 0..CUSTOMERS.max(SIGNALS) {
        // Every third order is delivered twice at once, once to each replica (a Sell.app
        // retry racing the original).
        let copies = if n % 3 == 0 { 2 } else { 1 };
        for copy in 0..copies {
            if n >= CUSTOMERS {
                break;
            }
            let (http, urls) = (http.clone(), sellapp_urls.clone());
            sends.push(tokio::spawn(async move {
                let body = sellapp_order(700_000 + n as u64, &format!("buyer{n}@example.com"));
                let headers = [(
                    "signature",
                    signing::sellapp_signature(SELLAPP_SECRET, &body),
                )];
                deliver(&http, &urls, n + copy, &headers, &body).await
            }));
        }
        if n < SIGNALS {
            let fut = ingest(
                n,
                format!("{}", 1_300_000_000_000_000_001u64 + n as u64),
                format!("tag-{n}"),
            );
            sends.push(tokio::spawn(fut));
        }
        if n == CUSTOMERS.max(SIGNALS) / 3 {
            bots[first_leader].kill9().await;
            webhooks[0].kill9().await;
            // Watch the standby from the moment of the kill.
            let (http, url) = (http.clone(), bot_health[1 - first_leader].clone());
            takeover = Some(tokio::spawn(async move {
                let killed = Instant::now();
                wait_for(
                    "the standby bot to take over",
                    Duration::from_secs(30),
                    || {
                        let (http, url) = (http.clone(), url.clone());
                        async move {
                            let v = healthy(&http, &url).await?;
                            (v.get("role").and_then(Value::as_str) == Some("leader")).then_some(())
                        }
                    },
                )
                .await
                .map(|()| killed.elapsed())
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for s in sends {
        let status = s.await??;
        anyhow::ensure!(status == 200, "a delivery ended with {status}");
    }

    // --- end state --------------------------------------------------------------------------
    let survivor = 1 - first_leader;
    let takeover = match takeover.context("the kill happened")?.await? {
        Ok(took) => took,
        Err(e) => bail!("{e:#}\n{}", bots[survivor].tail()),
    };
    anyhow::ensure!(
        takeover <= Duration::from_secs(15),
        "the standby took {takeover:?} to lead (at most 15 s)"
    );

    let expected_tags: Vec<String> = (0..SIGNALS).map(|n| format!("tag-{n}")).collect();
    let mirrored = wait_for("one mirror per signal", SETTLE, || {
        let discord = discord.clone();
        let expected_tags = expected_tags.clone();
        async move {
            let messages = discord.messages(CUSTOMER_CHANNEL);
            let texts: Vec<String> = messages
                .iter()
                .map(|m| format!("{} {}", m.content, Value::Array(m.embeds.clone())))
                .collect();
            let counts: Vec<usize> = expected_tags
                .iter()
                .map(|t| {
                    texts
                        .iter()
                        .filter(|x| x.contains(&format!("{t}\n")) || x.contains(&format!("{t}\\n")))
                        .count()
                })
                .collect();
            counts
                .iter()
                .all(|c| *c >= 1)
                .then_some((counts, messages.len()))
        }
    })
    .await
    .with_context(|| bots[survivor].tail())?;
    let (counts, total) = mirrored;
    anyhow::ensure!(
        counts.iter().all(|c| *c == 1),
        "each signal mirrored exactly once, got {counts:?}"
    );
    anyhow::ensure!(
        total == SIGNALS + 1,
        "{total} messages in the customer channel for {} signals",
        SIGNALS + 1
    );

    let signal_ids: BTreeSet<String> = (0..SIGNALS)
        .map(|n| format!("{}", 1_300_000_000_000_000_001u64 + n as u64))
        .chain([warm_id])
        .collect();
    wait_for("every live client to see every signal", SETTLE, || {
        let (seen_by, ids) = (seen_by.clone(), signal_ids.clone());
        async move {
            seen_by
                .iter()
                .all(|s| ids.is_subset(&s.lock().unwrap()))
                .then_some(())
        }
    })
    .await
    .with_context(|| {
        let missing: Vec<String> = seen_by
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let seen = s.lock().unwrap();
                let gone: Vec<&String> = signal_ids.difference(&seen).collect();
                format!("stream {i} (web-{}) misses {gone:?}", i % 2)
            })
            .collect();
        let logs: Vec<String> = webs
            .iter()
            .map(|p| format!("--- {} ---\n{}", p.name, p.tail()))
            .collect();
        format!("{}\n{}", missing.join("\n"), logs.join("\n"))
    })?;

    let mut grants: HashMap<String, usize> = HashMap::new();
    for n in 0..CUSTOMERS {
        let email = g3_core::Email::parse(&format!("buyer{n}@example.com"))?;
        let subs = access.subscriptions_of(&email).await?;
        anyhow::ensure!(
            subs.len() == 1 && subs[0].data.grants_access(time::OffsetDateTime::now_utc()),
            "buyer{n}: expected one active subscription, got {subs:?}"
        );
        let audit = Collection::<AuditEntry>::new(&client)
            .list(&[Query::equal("target", email.as_str()), Query::limit(100)])
            .await?;
        let n_grants = audit
            .documents
            .iter()
            .filter(|d| d.data.action == "grant")
            .count();
        grants.insert(email.as_str().to_owned(), n_grants);
    }
    anyhow::ensure!(
        grants.values().all(|n| *n == 1),
        "every order granted exactly once: {grants:?}"
    );

    // --- the survivors stop cleanly on SIGTERM ----------------------------------------------
    for s in streams {
        s.abort();
    }
    let mut stops = Vec::new();
    let bot = bots.swap_remove(survivor);
    let mut survivors: Vec<Proc> = vec![webhooks.swap_remove(1), bot];
    survivors.append(&mut webs);
    for p in &mut survivors {
        let t = Instant::now();
        let status = p.terminate(Duration::from_secs(10)).await?;
        anyhow::ensure!(
            status.success(),
            "{} exited with {status} on SIGTERM:\n{}",
            p.name,
            p.tail()
        );
        stops.push(format!("{} {:?}", p.name, t.elapsed()));
    }
    let status = appwrite.terminate(Duration::from_secs(10)).await?;
    anyhow::ensure!(status.success(), "the emulator exited with {status}");
    eprintln!(
        "scale-out: {CUSTOMERS} orders, {SIGNALS} signals, {STREAMS} live clients; standby led \
         {takeover:?} after the kill; clean stops: {}; total {:?}",
        stops.join(", "),
        started.elapsed()
    );
    Ok(())
}
