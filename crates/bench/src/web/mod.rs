//! Web dashboard rows: the real `web::run` against an emulator on a SQLite file seeded with
//! many signals, all over loopback HTTP, viewed by a paid customer. Pages (`pages`): `/healthz`
//! beside the cached newest feed page, filtered pages, deeper pages; live (`streams`): write to
//! SSE event at one stream and at thousands, and the server's memory per stream.

mod pages;
mod seed;
mod streams;

use std::time::Duration;

use anyhow::{Context as _, bail};
use g3_appwrite::Client;

pub use streams::stream_clients;

use crate::{
    row,
    table::{Goal, Row},
};
use pages::{Expect, Filter, Load, PAGE};
use seed::{MEMBER, PASSWORD};
use streams::Target;

const SERVICE: &str = "bench-web-service@example.com";
const SERVICE_PASSWORD: &str = "bench web service password";
/// How long any single wait (an event, a stream opening) may take before it counts as failed.
const WAIT: Duration = Duration::from_secs(20);
/// Deeper pages measured, reached by following "Older signals" from the newest page.
const DEPTHS: [usize; 3] = [2, 10, 100];
/// Filtered pages: distinct random filter values cycled through by the clients.
const FILTER_URLS: usize = 1_000;

const HOW_PAGES: &str = "GET from keep-alive reqwest clients in the bench process (same \
    machine as server and emulator), timed from send to the whole body read; ok = 200 with \
    \"ok\" (/healthz) or 25 cards (feed)";
const HOW_FILTERS: &str = "as the page rows, with URLs as the filter form submits them (every \
    field, unused ones empty), 1,000 random value sets cycled; ok = any 200 page";
const HOW_CURSOR: &str = "as the page rows, on the URL reached by following rel=\"next\" \
    (\"Older signals\") from /feed page by page, requested again and again; ok = 200 with \
    25 cards";
const HOW_RATIO: &str = "ops/s of the feed row divided by ops/s of the /healthz row, \
    measured one after the other against the same server with the same clients and concurrency";
const HOW_LIVE: &str = "one signal created at a time with the server key; timed from just \
    before the create call to its event read on a browser-like /feed/stream socket";
const HOW_FANOUT: &str = "streams held by a child process (this binary, one thread, reading each \
    stream as a browser does); one signal created at a time, the next after every stream has \
    the last; each stream's arrival time (epoch µs) minus the time just before the create call; \
    memory = server process VmRSS growth / streams; CPU per delivery = user + system time of \
    each process over the timed writes / (writes x streams): the clients share the server's \
    two cores here, where browsers would not";

pub struct Counts {
    /// Signals seeded before the server starts.
    pub signals: usize,
    pub page_requests: usize,
    pub latency_writes: usize,
    pub streams: usize,
    /// Writes timed at every open stream after the first.
    pub fanout_writes: usize,
    pub concurrency: usize,
    /// Longest a page row runs.
    pub budget: Duration,
}

/// Which groups of web rows to run (`--only web-feed,web-filters,web-live,web-streams`).
#[derive(Clone, Copy)]
pub struct Parts {
    pub feed: bool,
    pub filters: bool,
    pub live: bool,
    pub streams: bool,
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

pub async fn rows(counts: &Counts, parts: Parts) -> anyhow::Result<Vec<Row>> {
    let stack = start(counts).await?;
    let load = Load {
        requests: counts.page_requests,
        concurrency: counts.concurrency,
        budget: counts.budget,
    };
    let mut rows = Vec::new();
    if parts.feed {
        rows.extend(feed_rows(&stack, counts, load).await?);
    }
    if parts.filters {
        rows.extend(filter_rows(&stack, counts, load).await?);
    }
    if parts.live {
        rows.push(live_row(&stack, counts).await?);
    }
    if parts.streams {
        rows.extend(stream_rows(&stack, counts).await?);
    }
    let _ = stack.stop.send(());
    stack.server.await.context("web task panicked")??;
    Ok(rows)
}

/// `/healthz`, then the cached newest page, from the same clients; then their ratio.
async fn feed_rows(stack: &Stack, counts: &Counts, load: Load) -> anyhow::Result<Vec<Row>> {
    let http = pages::client(load.concurrency)?;
    let cookie = &stack.target.cookie;
    let feed_url = format!("{}/feed", stack.base);
    let first = http
        .get(&feed_url)
        .header("cookie", cookie)
        .send()
        .await?
        .text()
        .await?;
    let cards = first.matches(pages::CARD).count();
    if cards != PAGE {
        bail!("the feed page shows {cards} cards, not {PAGE}");
    }
    eprintln!(
        "web: /healthz then the feed page, {} requests each from {} clients ...",
        load.requests, load.concurrency
    );
    let healthz_url = format!("{}/healthz", stack.base);
    let mut healthz =
        pages::hammer(&http, cookie, vec![healthz_url], load, Expect::Body("ok")).await?;
    let mut feed = pages::hammer(&http, cookie, vec![feed_url], load, Expect::Cards(PAGE)).await?;
    let ratio = feed.ops_per_sec() / healthz.ops_per_sec().max(1e-9);
    Ok(vec![
        row(
            "web: /healthz (same server and clients as the feed row)".into(),
            load.concurrency,
            &mut healthz,
            Goal::None,
        )
        .how(HOW_PAGES),
        row(
            format!(
                "web: feed page, newest 25 cards, cached (paid customer, {} signals)",
                counts.signals
            ),
            load.concurrency,
            &mut feed,
            Goal::MinOpsPerSec(2_000.0),
        )
        .how(HOW_PAGES),
        Row::measured(
            format!(
                "web: feed page / /healthz throughput = {:.1}%",
                ratio * 100.0
            ),
            ">= 35%".into(),
            ratio >= 0.35,
        )
        .how(HOW_RATIO),
    ])
}

/// Filtered first pages and deeper pages: each >= 3,000 pages/s with p99 <= 10 ms.
async fn filter_rows(stack: &Stack, counts: &Counts, load: Load) -> anyhow::Result<Vec<Row>> {
    let http = pages::client(load.concurrency)?;
    let cookie = &stack.target.cookie;
    let goal = || Goal::Both {
        min_ops: 3_000.0,
        max_p99: Duration::from_millis(10),
    };
    // The customer must see every route, or the filtered rows measure a paywall.
    let per_route = pages::cards_on(&http, cookie, &pages::route_urls(&stack.base)).await?;
    if per_route.contains(&0) {
        bail!(
            "the customer sees no card on some route (cards per route: {per_route:?}): \
             is their plan entitled to every route?"
        );
    }
    let mut rows = Vec::new();
    for filter in Filter::ALL {
        eprintln!(
            "web: feed filtered by {}, {} requests from {} clients ...",
            filter.label(),
            load.requests,
            load.concurrency
        );
        let urls = filter.urls(&stack.base, FILTER_URLS);
        let cards = pages::cards_on(&http, cookie, &urls[..urls.len().min(20)]).await?;
        eprintln!(
            "web: cards on the first {} of those pages: {cards:?}",
            cards.len()
        );
        let mut samples = pages::hammer(&http, cookie, urls, load, Expect::AnyPage).await?;
        rows.push(
            row(
                format!(
                    "web: feed filtered by {}, first page, random values ({} signals)",
                    filter.label(),
                    counts.signals
                ),
                load.concurrency,
                &mut samples,
                goal(),
            )
            .how(HOW_FILTERS),
        );
    }
    let depths = pages::page_urls(&http, &stack.base, cookie, &DEPTHS).await?;
    for (depth, url) in depths.into_iter().filter(|(d, _)| *d > 1) {
        eprintln!(
            "web: feed page {depth} (cursor), {} requests from {} clients ...",
            load.requests, load.concurrency
        );
        let mut samples =
            pages::hammer(&http, cookie, vec![url], load, Expect::Cards(PAGE)).await?;
        rows.push(
            row(
                format!(
                    "web: feed page {depth}, reached by following \"Older signals\" ({} signals)",
                    counts.signals
                ),
                load.concurrency,
                &mut samples,
                goal(),
            )
            .how(HOW_CURSOR),
        );
    }
    Ok(rows)
}

async fn live_row(stack: &Stack, counts: &Counts) -> anyhow::Result<Row> {
    eprintln!(
        "web: {} signals written one at a time, each until its SSE event arrives ...",
        counts.latency_writes
    );
    let mut latency = streams::write_to_event(stack, counts.latency_writes).await?;
    // The p50 goal is not in the samples: judged here, shown in the goal column.
    let p50_met = latency.percentile(50.0) <= Duration::from_millis(15);
    eprintln!(
        "web: write -> event p90 {:.2} ms, p95 {:.2} ms, p98 {:.2} ms",
        latency.percentile(90.0).as_secs_f64() * 1e3,
        latency.percentile(95.0).as_secs_f64() * 1e3,
        latency.percentile(98.0).as_secs_f64() * 1e3
    );
    Ok(row(
        "web: signal written -> SSE event, one open stream".to_owned(),
        1,
        &mut latency,
        judged(
            "p50 <= 15 ms".to_owned(),
            p50_met,
            Duration::from_millis(50),
        ),
    )
    .how(HOW_LIVE))
}

async fn stream_rows(stack: &Stack, counts: &Counts) -> anyhow::Result<Vec<Row>> {
    eprintln!(
        "web: {} concurrent streams, then {} writes timed at each ...",
        counts.streams, counts.fanout_writes
    );
    let mut fanout = streams::many_streams(stack, counts.streams, counts.fanout_writes).await?;
    let kb = fanout.kb_per_stream;
    let mut rows = vec![
        row(
            format!(
                "web: {} streams get one new signal ({kb:.1} KB/stream)",
                counts.streams
            ),
            counts.streams,
            &mut fanout.first,
            judged(
                "<= 20 KB/stream".to_owned(),
                kb <= 20.0,
                Duration::from_millis(250),
            ),
        )
        .how(HOW_FANOUT),
    ];
    if counts.fanout_writes > 0 {
        // What one delivery costs each side: on this machine both share the same cores.
        let cpu = fanout
            .cpu_per_delivery
            .map(|(server, clients)| {
                format!("; CPU per delivery: web {server:.1} µs, stream clients {clients:.1} µs")
            })
            .unwrap_or_default();
        rows.push(
            row(
                format!(
                    "web: signal written -> SSE event at each of {} open streams ({} writes, {} signals{cpu})",
                    counts.streams, counts.fanout_writes, counts.signals
                ),
                counts.streams,
                &mut fanout.series,
                Goal::MaxP99(Duration::from_millis(50)),
            )
            .how(HOW_FANOUT),
        );
    }
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

/// The emulator on a file, the schema, a staff service user for Realtime, a paid customer, the
/// routes and `counts.signals` signals; then `web::run` on a free port and the customer's
/// session.
async fn start(counts: &Counts) -> anyhow::Result<Stack> {
    let dir = tempfile::tempdir()?;
    let backend = testkit::backend::backend_on_disk(dir.path()).await;
    let client = backend.client.clone();
    people(&client).await?;
    seed::routes(&client).await?;
    eprintln!(
        "web: seeding {} signals with {} callers ...",
        counts.signals,
        counts.concurrency * 2
    );
    seed::signals(&client, counts.signals, counts.concurrency * 2).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let settings = settings(&backend, &base)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(web::run(settings, listener, async move {
        let _ = stopped.await;
    }));
    let cookie = sign_in(&base).await?;
    let stack = Stack {
        _dir: dir,
        _backend: backend,
        client,
        base,
        target: Target { addr, cookie },
        stop,
        server,
    };
    // The newest page is cached only while the upstream subscription is live.
    streams::wait_live(&stack).await?;
    Ok(stack)
}

/// Web's service user (in `staff` and `paid`, as `ops service-user create` makes it) and the
/// paid member the benches sign in as.
pub(crate) async fn people(client: &g3_appwrite::Client) -> anyhow::Result<()> {
    let service = client
        .users()
        .create("bench-web-service", SERVICE, Some(SERVICE_PASSWORD), None)
        .await?;
    g3_access::enlist_service_user(client, &service.id).await?;
    seed::customer(client).await?;
    Ok(())
}

/// Web's settings for the benches: `backend`, served at `base`, the bench's service user and
/// plans, production defaults otherwise.
pub(crate) fn settings(
    backend: &testkit::backend::Backend,
    base: &str,
) -> anyhow::Result<web::Settings> {
    Ok(web::Settings {
        appwrite: backend.client_config(),
        public_url: url::Url::parse(base)?,
        store_url: url::Url::parse("https://store.example/buy")?,
        service_user: Some(web::ServiceUser {
            email: SERVICE.into(),
            password: web::Secret::new(SERVICE_PASSWORD),
        }),
        live: web::live::LiveOptions::default(),
        limits: web::Limits::default(),
        trust_proxy: false,
        auth_cache: std::time::Duration::from_secs(2),
        card_cache: web::card::CARD_CACHE_DEFAULT,
        plans: seed::plans()?,
        discord: None,
        account_links: Default::default(),
        link_ttl: web::link::STATE_TTL,
        metrics: web::MetricsAccess::Hidden,
        timeouts: Default::default(),
    })
}

/// The `cookie` header of the bench's member, signed in through web's form.
pub(crate) async fn sign_in(base: &str) -> anyhow::Result<String> {
    testkit::web_client::sign_in(base, MEMBER, PASSWORD, WEB_COOKIES).await
}

const WEB_COOKIES: testkit::web_client::Cookies<'static> = testkit::web_client::Cookies {
    csrf: web::cookies::CSRF,
    session: web::cookies::SESSION,
};
