//! Web dashboard rows: the feed page (25 cards) for signed-in members, the delay from a signal
//! written to Appwrite to its SSE event at a browser-like reader of `/feed/stream`, and many
//! concurrent streams on one process (delivery and memory per stream). The real `web::run`
//! against an emulator on a SQLite file, all over loopback HTTP.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use g3_appwrite::Client;
use g3_store::{
    Collection,
    models::{Side, Signal, SignalStatus},
    schema::{TEAM_PAID, TEAM_STAFF},
};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpStream,
    sync::watch,
};

use crate::{
    row,
    stats::Samples,
    table::{Goal, Row},
};

const MEMBER: &str = "bench-member@example.com";
const PASSWORD: &str = "bench member password";
const SERVICE: &str = "bench-web-service@example.com";
const SERVICE_PASSWORD: &str = "bench web service password";
/// How long any single wait (an event, a stream opening) may take before it counts as failed.
const WAIT: Duration = Duration::from_secs(20);

pub struct Counts {
    pub page_requests: usize,
    pub latency_writes: usize,
    pub streams: usize,
    pub concurrency: usize,
}

/// The running dashboard and its backend.
struct Stack {
    _dir: tempfile::TempDir,
    _backend: testkit::backend::Backend,
    client: Client,
    base: String,
    target: Target,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn rows(counts: &Counts) -> anyhow::Result<Vec<Row>> {
    let stack = start().await?;
    let mut rows = Vec::new();

    eprintln!(
        "web: feed page (25 cards), {} requests from {} signed-in clients ...",
        counts.page_requests, counts.concurrency
    );
    let mut pages = feed_pages(&stack, counts.page_requests, counts.concurrency).await?;
    rows.push(row(
        "web: feed page, 25 cards (signed-in member)".into(),
        counts.concurrency,
        &mut pages,
        Goal::MinOpsPerSec(2_000.0),
    ));

    eprintln!(
        "web: {} signals written one at a time, each until its SSE event arrives ...",
        counts.latency_writes
    );
    let mut latency = write_to_event(&stack, counts.latency_writes).await?;
    // The p50 and memory goals are not in the samples: judged here, shown in the goal column.
    let p50_met = latency.percentile(50.0) <= Duration::from_millis(15);
    eprintln!(
        "web: write -> event p90 {:.2} ms, p95 {:.2} ms, p98 {:.2} ms",
        latency.percentile(90.0).as_secs_f64() * 1e3,
        latency.percentile(95.0).as_secs_f64() * 1e3,
        latency.percentile(98.0).as_secs_f64() * 1e3
    );
    rows.push(row(
        "web: signal written -> SSE event".to_owned(),
        1,
        &mut latency,
        judged(
            "p50 <= 15 ms".to_owned(),
            p50_met,
            Duration::from_millis(50),
        ),
    ));

    eprintln!("web: {} concurrent streams ...", counts.streams);
    let (mut delivery, kb_per_stream) = many_streams(&stack, counts.streams).await?;
    let memory_met = kb_per_stream <= 20.0;
    rows.push(row(
        format!(
            "web: {} streams get one new signal ({kb_per_stream:.1} KB/stream)",
            counts.streams
        ),
        counts.streams,
        &mut delivery,
        judged(
            "<= 20 KB/stream".to_owned(),
            memory_met,
            Duration::from_millis(250),
        ),
    ));

    let _ = stack.stop.send(());
    stack.server.await.context("web task panicked")??;
    Ok(rows)
}

/// A p99 goal plus one judged here (p50, memory per stream), shown in the goal column.
fn judged(other: String, other_met: bool, p99: Duration) -> Goal {
    Goal::MaxP99And {
        max_p99: p99,
        other,
        other_met,
    }
}

/// The emulator on a file, the schema, a staff service user for Realtime, a paid member with a
/// session, 30 signals, and `web::run` on a free port.
async fn start() -> anyhow::Result<Stack> {
    let dir = tempfile::tempdir()?;
    let backend = testkit::backend::backend_on_disk(dir.path()).await;
    let client = backend.client.clone();
    let users = client.users();
    let service = users
        .create("bench-web-service", SERVICE, Some(SERVICE_PASSWORD), None)
        .await?;
    client
        .teams()
        .add_member_if_absent(TEAM_STAFF, &service.id, &[] as &[&str])
        .await?;
    let member = users
        .create("bench-member", MEMBER, Some(PASSWORD), None)
        .await?;
    users.update_email_verification(&member.id, true).await?;
    client
        .teams()
        .add_member_if_absent(TEAM_PAID, &member.id, &[] as &[&str])
        .await?;
    let signals = Collection::<Signal>::new(&client);
    for i in 0..30 {
        signals
            .create(
                format!("bench-seed-{i}"),
                &signal(&format!("seed-{i}")),
                None,
            )
            .await?;
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let settings = web::Settings {
        appwrite: backend.client_config(),
        public_url: url::Url::parse(&base)?,
        store_url: url::Url::parse("https://store.example/buy")?,
        service_user: Some(web::ServiceUser {
            email: SERVICE.into(),
            password: web::Secret::new(SERVICE_PASSWORD),
        }),
        live: web::live::LiveOptions::default(),
        limits: web::Limits::default(),
        trust_proxy: false,
        auth_cache: std::time::Duration::from_secs(2),
        plans: Default::default(),
        discord: None,
        plan_roles: Default::default(),
        link_ttl: web::link::STATE_TTL,
        metrics: web::MetricsAccess::Hidden,
        timeouts: Default::default(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(web::run(settings, listener, async move {
        let _ = stopped.await;
    }));
    let cookie = sign_in(&base).await?;
    Ok(Stack {
        _dir: dir,
        _backend: backend,
        client,
        base,
        target: Target { addr, cookie },
        stop,
        server,
    })
}

/// A signal document shaped as the pipeline writes it.
fn signal(tag: &str) -> Signal {
    Signal {
        source_guild_id: "1".into(),
        source_channel_id: "2".into(),
        source_message_id: tag.into(),
        route_key: "vip-calls".into(),
        author_id: Some("3".into()),
        author_name: Some("Bench Trader".into()),
        content: Some(format!(
            "**BTCUSDT LONG** {tag}\nEntry 64200 - 63800\nTP 65000 / 66500\nSL 62900\nLev 10x"
        )),
        embeds: None,
        content_hash: None,
        pair: Some("BTCUSDT".into()),
        side: Some(Side::Long),
        entries: vec![64200.0, 63800.0],
        targets: vec![65000.0, 66500.0],
        stop: Some(62900.0),
        leverage: Some(10.0),
        flags: Vec::new(),
        attachments: None,
        assets_pending: None,
        revision: 1,
        edit_stamps: None,
        status: SignalStatus::Live,
        posted_at: time::OffsetDateTime::now_utc(),
        edited_at: None,
        deleted_at: None,
    }
}

fn cookie_value<'a>(set_cookie: &'a str, name: &str) -> Option<&'a str> {
    let pair = set_cookie.split(';').next()?;
    let (k, v) = pair.split_once('=')?;
    (k.trim() == name && !v.is_empty()).then_some(v)
}

/// Signs the member in through the sign-in form (CSRF cookie + token) and returns the
/// `cookie` header a browser would send afterwards.
async fn sign_in(base: &str) -> anyhow::Result<String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let r = http.get(format!("{base}/signin")).send().await?;
    let csrf = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookie_value(v, web::cookies::CSRF))
        .context("no CSRF cookie on the sign-in page")?
        .to_owned();
    let r = http
        .post(format!("{base}/signin"))
        .header("cookie", format!("{}={csrf}", web::cookies::CSRF))
        .form(&[("email", MEMBER), ("password", PASSWORD), ("csrf", &csrf)])
        .send()
        .await?;
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookie_value(v, web::cookies::SESSION))
        .with_context(|| format!("sign-in gave no session ({})", r.status()))?
        .to_owned();
    Ok(format!(
        "{}={csrf}; {}={session}",
        web::cookies::CSRF,
        web::cookies::SESSION
    ))
}

async fn feed_pages(stack: &Stack, requests: usize, concurrency: usize) -> anyhow::Result<Samples> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let url = format!("{}/feed", stack.base);
    let first = http
        .get(&url)
        .header("cookie", &stack.target.cookie)
        .send()
        .await?
        .text()
        .await?;
    let cards = first.matches("<article class=\"card").count();
    if cards != 25 {
        bail!("the feed page shows {cards} cards, not 25");
    }
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, cookie, next) = (
            http.clone(),
            url.clone(),
            stack.target.cookie.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::with_capacity(requests / concurrency + 1);
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                let t = Instant::now();
                let ok = match http.get(&url).header("cookie", &cookie).send().await {
                    Ok(r) if r.status() == 200 => r
                        .text()
                        .await
                        .is_ok_and(|body| body.contains("<article class=\"card")),
                    _ => false,
                };
                if ok {
                    samples.record(t.elapsed());
                } else {
                    samples.errors += 1;
                }
            }
            samples
        }));
    }
    let mut all = Samples::with_capacity(requests);
    for task in tasks {
        all.merge(task.await.context("feed worker panicked")?);
    }
    all.wall = started.elapsed();
    Ok(all)
}

/// Where a stream connects, as whom: the dashboard's address and a paid member's cookies.
#[derive(Clone)]
struct Target {
    addr: std::net::SocketAddr,
    cookie: String,
}

/// A browser-like reader of `/feed/stream` over a plain socket: sends the request a browser's
/// `EventSource` sends and then reads the body as it comes.
struct StreamReader {
    socket: TcpStream,
    seen: Vec<u8>,
}

impl StreamReader {
    async fn open(target: &Target) -> anyhow::Result<Self> {
        let mut socket = TcpStream::connect(target.addr).await?;
        let request = format!(
            "GET /feed/stream HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nCookie: {}\r\n\r\n",
            target.addr, target.cookie
        );
        socket.write_all(request.as_bytes()).await?;
        let mut reader = Self {
            socket,
            seen: Vec::new(),
        };
        let head = reader.read_until(b"\r\n\r\n").await?;
        if !head.starts_with(b"HTTP/1.1 200") {
            bail!(
                "stream refused: {}",
                String::from_utf8_lossy(&head[..head.len().min(80)])
            );
        }
        Ok(reader)
    }

    /// Reads until `needle` has arrived; returns what was read up to it and forgets it.
    async fn read_until(&mut self, needle: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut buf = [0u8; 1024];
        loop {
            if let Some(at) = self.seen.windows(needle.len()).position(|w| w == needle) {
                let rest = self.seen.split_off(at + needle.len());
                return Ok(std::mem::replace(&mut self.seen, rest));
            }
            let n = tokio::time::timeout(WAIT, self.socket.read(&mut buf))
                .await
                .context("nothing arrived on the stream in time")??;
            if n == 0 {
                bail!("the stream ended");
            }
            self.seen.extend_from_slice(&buf[..n]);
            // Only what may still hold the start of `needle` is worth keeping.
            if self.seen.len() > 64 * 1024 {
                let keep = self.seen.len() - needle.len();
                self.seen.drain(..keep);
            }
        }
    }
}

/// Writes a signal and waits until a reader sees it; retried until the upstream subscription
/// is live (it connects in the background after `web::run` starts).
async fn warm_up(stack: &Stack, reader: &mut StreamReader, name: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    let signals = Collection::<Signal>::new(&stack.client);
    for attempt in 0.. {
        let id = format!("bench-warm-{name}-{attempt}");
        signals.create(&id, &signal(&id), None).await?;
        let got =
            tokio::time::timeout(Duration::from_millis(500), reader.read_until(id.as_bytes()))
                .await;
        if matches!(got, Ok(Ok(_))) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the live feed never delivered a signal (is the upstream subscribed?)");
        }
    }
    unreachable!("the loop returns or fails")
}

async fn write_to_event(stack: &Stack, writes: usize) -> anyhow::Result<Samples> {
    let mut reader = StreamReader::open(&stack.target).await?;
    warm_up(stack, &mut reader, "latency").await?;
    let signals = Collection::<Signal>::new(&stack.client);
    let mut samples = Samples::with_capacity(writes);
    let started = Instant::now();
    for i in 0..writes {
        let id = format!("bench-live-{i}");
        let doc = signal(&id);
        let t = Instant::now();
        if signals.create(&id, &doc, None).await.is_err() {
            samples.errors += 1;
            continue;
        }
        // The event's JSON carries the document id: `"id":"bench-live-…"`.
        let needle = format!("\"id\":\"{id}\"");
        match reader.read_until(needle.as_bytes()).await {
            Ok(_) => samples.record(t.elapsed()),
            Err(_) => samples.errors += 1,
        }
    }
    samples.wall = started.elapsed();
    Ok(samples)
}

/// This process's resident memory in KB.
fn rss_kb() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/self/status")
}

/// Opens `streams` streams in a child process (so this process's memory is the server's
/// alone), measures the server's memory they hold, then writes one signal and times its
/// arrival on every stream (wall clock on both sides: same machine).
async fn many_streams(stack: &Stack, streams: usize) -> anyhow::Result<(Samples, f64)> {
    // One warm stream first, so the upstream is known to be live and lazily built state
    // (buffers, pools) is not counted per stream.
    let mut warm = StreamReader::open(&stack.target).await?;
    warm_up(stack, &mut warm, "fanout").await?;
    let before = rss_kb()?;

    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--stream-clients")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the stream clients (this binary, --stream-clients)")?;
    let mut stdin = child.stdin.take().context("child stdin")?;
    let mut lines = BufReader::new(child.stdout.take().context("child stdout")?).lines();
    let open_started = Instant::now();
    stdin
        .write_all(
            format!(
                "{}\t{}\t{streams}\n",
                stack.target.addr, stack.target.cookie
            )
            .as_bytes(),
        )
        .await?;
    let opened = lines
        .next_line()
        .await?
        .context("the stream clients quit")?;
    let failed: u64 = opened
        .strip_prefix("opened ")
        .and_then(|v| v.split(' ').nth(1))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("unexpected reply from the stream clients: {opened}"))?;
    let after = rss_kb()?;
    let open = streams as u64 - failed;
    eprintln!(
        "web: {open} streams open in {:.1} s ({failed} failed); server RSS {before} KB -> {after} KB",
        open_started.elapsed().as_secs_f64()
    );
    let kb_per_stream = after.saturating_sub(before) as f64 / open.max(1) as f64;

    let id = "bench-fanout";
    let signals = Collection::<Signal>::new(&stack.client);
    let written = unix_micros();
    let started = Instant::now();
    stdin.write_all(format!("{id}\n").as_bytes()).await?;
    signals.create(id, &signal(id), None).await?;
    let arrived = lines
        .next_line()
        .await?
        .context("the stream clients quit")?;
    let mut samples = Samples::with_capacity(streams);
    samples.errors = failed;
    for at in arrived.split(' ').skip(1) {
        match at.parse::<u64>() {
            Ok(0) | Err(_) => samples.errors += 1,
            Ok(at) => samples.record(Duration::from_micros(at.saturating_sub(written))),
        }
    }
    samples.wall = started.elapsed();
    drop(stdin);
    let _ = child.wait().await;
    drop(warm);
    Ok((samples, kb_per_stream))
}

fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The child side of [`many_streams`] (`bench --stream-clients`). Reads `addr\tcookie\tcount`,
/// opens the streams 64 at a time and answers `opened <ok> <failed>`; then reads a signal id
/// and answers `arrived` and, per open stream, when it saw that signal (µs since the epoch,
/// 0 if never).
pub async fn stream_clients() -> anyhow::Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    let first = lines.next_line().await?.context("no target on stdin")?;
    let mut parts = first.split('\t');
    let (Some(addr), Some(cookie), Some(count)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("expected addr<TAB>cookie<TAB>count, got {first}");
    };
    let target = Target {
        addr: addr.parse()?,
        cookie: cookie.to_owned(),
    };
    let count: usize = count.parse()?;
    let (go_tx, go_rx) = watch::channel::<Option<String>>(None);
    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::channel::<bool>(count.max(1));
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let (gate, opened, mut go, target) = (
            gate.clone(),
            opened_tx.clone(),
            go_rx.clone(),
            target.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let reader = StreamReader::open(&target).await;
            drop(permit);
            let _ = opened.send(reader.is_ok()).await;
            drop(opened);
            // `None`: never opened (counted already); `Some(0)`: open, but the signal never came.
            let mut reader = reader.ok()?;
            let id = go.wait_for(Option::is_some).await.ok()?.clone()?;
            let needle = format!("\"id\":\"{id}\"");
            Some(match reader.read_until(needle.as_bytes()).await {
                Ok(_) => unix_micros(),
                Err(_) => 0,
            })
        }));
    }
    drop(opened_tx);
    let (mut ok, mut failed) = (0usize, 0usize);
    while let Some(opened) = opened_rx.recv().await {
        if opened { ok += 1 } else { failed += 1 }
    }
    out.write_all(format!("opened {ok} {failed}\n").as_bytes())
        .await?;
    out.flush().await?;
    let id = lines.next_line().await?.context("no signal id on stdin")?;
    go_tx.send_replace(Some(id));
    let mut reply = String::from("arrived");
    for task in tasks {
        match task.await {
            Ok(Some(at)) => reply.push_str(&format!(" {at}")),
            Ok(None) => {}
            Err(_) => reply.push_str(" 0"),
        }
    }
    reply.push('\n');
    out.write_all(reply.as_bytes()).await?;
    out.flush().await?;
    Ok(())
}
