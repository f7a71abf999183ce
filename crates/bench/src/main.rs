//! `./scripts/bench.sh`: benchmarks against the real code paths, printed as a table.
//!
//! Appwrite rows: an in-process emulator on a SQLite file (as devstack runs it), driven through
//! the `g3-appwrite` client over loopback HTTP, exactly as the services use it.

mod bot;
mod pipeline;
mod stats;
mod table;
mod tracker;
mod web;
mod webhook;

use std::{sync::Arc, time::Duration, time::Instant};

use anyhow::Context as _;
use clap::Parser;
use g3_appwrite::{
    ApiKey, AttributeSpec, Client, Config, IndexSpec, IndexType, Order, Query, RetryPolicy,
};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::{
    stats::Samples,
    table::{Goal, Row},
};

#[derive(Parser, Debug)]
#[command(about = "G3netic Signals benchmarks")]
struct Args {
    /// Documents in the benchmark collection.
    #[arg(long, default_value_t = 100_000)]
    docs: usize,
    /// Concurrent callers for the throughput rows.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Requests per read scenario.
    #[arg(long, default_value_t = 20_000)]
    reads: usize,
    /// Signed Sell.app deliveries per accepted-delivery webhook row.
    #[arg(long, default_value_t = 10_000)]
    deliveries: usize,
    /// Customers stored (each by a real delivery) before the webhook rows run.
    #[arg(long, default_value_t = 100_000)]
    customers: usize,
    /// Badly signed deliveries for the rejection row.
    #[arg(long, default_value_t = 100_000)]
    rejected: usize,
    /// Rounds over the parser corpus.
    #[arg(long, default_value_t = 2_000)]
    parser_rounds: usize,
    /// Signed collector events for the ingest row.
    #[arg(long, default_value_t = 3_000)]
    ingest_events: usize,
    /// Signals seeded for the web rows (spread over 4 routes, 50 pairs, both sides, a year).
    #[arg(long, default_value_t = 100_000)]
    signals: usize,
    /// Requests per web page row (/healthz, feed page, each filter, each cursor depth).
    #[arg(long, default_value_t = 20_000)]
    web_pages: usize,
    /// Longest a web page row runs, in seconds (it then ends with the requests done so far).
    #[arg(long, default_value_t = 30)]
    row_seconds: u64,
    /// Signals written one at a time for the web write-to-event latency row.
    #[arg(long, default_value_t = 500)]
    web_writes: usize,
    /// Concurrent live streams for the web fan-out rows.
    #[arg(long, alias = "streams", default_value_t = 5_000)]
    web_streams: usize,
    /// Signals written one at a time and timed at every open stream (after the first).
    #[arg(long, default_value_t = 50)]
    fanout_writes: usize,
    /// Signals written one at a time for the bot write-to-mirror latency row.
    #[arg(long, default_value_t = 300)]
    bot_writes: usize,
    /// Signals in the bot's one-channel burst row (5 messages / 5 s: ~1 s per signal).
    #[arg(long, default_value_t = 100)]
    bot_burst: usize,
    /// The bot binary for the bot latency and memory rows [default: `bot` next to this binary].
    #[arg(long)]
    bot_bin: Option<std::path::PathBuf>,
    /// Open signals the tracker follows in its load row (at most 10 per symbol).
    #[arg(long, default_value_t = 1_000)]
    tracker_signals: usize,
    /// Symbols those signals are spread over.
    #[arg(long, default_value_t = 200)]
    tracker_symbols: usize,
    /// Trades per second the fake exchange streams in the tracker load row.
    #[arg(long, default_value_t = 10_000)]
    tracker_rate: u32,
    /// Decisive trades timed in the tracker load row (one per signal at most).
    #[arg(long, default_value_t = 1_000)]
    tracker_events: usize,
    /// Stored outcomes recomputed in the tracker recompute row.
    #[arg(long, default_value_t = 10_000)]
    recompute_signals: usize,
    /// Minutes of stored 1-second bars per symbol for the recompute row.
    #[arg(long, default_value_t = 60)]
    recompute_minutes: usize,
    /// The tracker binary for the tracker load and memory rows [default: `tracker` next to
    /// this binary].
    #[arg(long)]
    tracker_bin: Option<std::path::PathBuf>,
    /// Internal: be the stream clients of the web fan-out row (a child of this binary).
    #[arg(long, hide = true)]
    stream_clients: bool,
    /// Run only these groups (appwrite, parser, ingest, webhook, web, bot, tracker) or parts of
    /// them (web-feed, web-filters, web-live, web-streams, bot-latency, bot-burst,
    /// tracker-load, tracker-recompute); all when omitted.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

const DB: &str = "bench";
const COL: &str = "items";
/// Distinct values of the indexed attribute: 100k docs / 100 routes = 1,000 docs per route.
const ROUTES: usize = 100;

#[derive(Serialize, Deserialize, Clone)]
struct Item {
    route: String,
    n: i64,
    body: String,
}

/// The allocator the web, webhook and emulator binaries use: this process hosts all three.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.stream_clients {
        // The stream clients stand for browsers on other machines: one thread, so they take
        // one core at most from the server they measure and no cross-thread wake-ups.
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(web::stream_clients());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    // A group is wanted when named, when its parent is (`web` for `web-feed`), or when no
    // group is named.
    let wanted = |group: &str| {
        args.only.is_empty()
            || args
                .only
                .iter()
                .any(|g| g == group || group.split_once('-').is_some_and(|(parent, _)| g == parent))
    };
    let mut rows = Vec::new();
    if wanted("appwrite") {
        rows.extend(appwrite_rows(&args).await?);
    }
    if wanted("parser") {
        eprintln!("parser: {} rounds over the corpus ...", args.parser_rounds);
        rows.push(pipeline::parser_row(args.parser_rounds)?);
    }
    if wanted("ingest") {
        rows.push(pipeline::ingest_row(args.ingest_events, args.concurrency).await?);
    }
    if wanted("webhook") {
        rows.extend(
            webhook::rows(
                args.deliveries,
                args.rejected,
                args.concurrency,
                args.customers,
            )
            .await?,
        );
    }
    let parts = web::Parts {
        feed: wanted("web-feed"),
        filters: wanted("web-filters"),
        live: wanted("web-live"),
        streams: wanted("web-streams"),
    };
    if parts.feed || parts.filters || parts.live || parts.streams {
        let counts = web::Counts {
            signals: args.signals,
            page_requests: args.web_pages,
            latency_writes: args.web_writes,
            streams: args.web_streams,
            fanout_writes: args.fanout_writes,
            concurrency: args.concurrency,
            budget: Duration::from_secs(args.row_seconds),
        };
        rows.extend(web::rows(&counts, parts).await?);
    }
    if wanted("bot-latency") {
        let bin = match &args.bot_bin {
            Some(bin) => bin.clone(),
            None => bot::default_binary()?,
        };
        rows.extend(bot::latency_rows(args.bot_writes, &bin).await?);
    }
    if wanted("bot-burst") {
        rows.push(bot::burst_row(args.bot_burst).await?);
    }
    if wanted("tracker-load") {
        let bin = match &args.tracker_bin {
            Some(bin) => bin.clone(),
            None => tracker::default_binary()?,
        };
        let load = tracker::Load {
            signals: args.tracker_signals,
            symbols: args.tracker_symbols,
            trades_per_sec: args.tracker_rate,
            events: args.tracker_events,
        };
        rows.extend(tracker::load_rows(&load, &bin).await?);
    }
    if wanted("tracker-recompute") {
        let size = tracker::Recompute {
            signals: args.recompute_signals,
            symbols: args.tracker_symbols,
            minutes: args.recompute_minutes,
        };
        rows.push(tracker::recompute_row(&size).await?);
    }
    println!("{}", table::render(&rows));
    let missed = rows.iter().filter(|r| r.verdict() == "MISSED").count();
    if missed > 0 {
        println!("{missed} goal(s) missed");
    }
    Ok(())
}

const HOW_APPWRITE: &str = "g3-appwrite client calls over loopback HTTP to the emulator in the \
    bench process, timed from call to decoded result";

/// Emulator + client: create, get and list on a collection of `args.docs` documents.
async fn appwrite_rows(args: &Args) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let mut config = appwrite_emulator::Config::in_memory("bench", "bench-key");
    config.database_path = Some(dir.path().join("bench.sqlite"));
    config.storage_dir = Some(dir.path().join("files"));
    let emulator = appwrite_emulator::spawn(config).await?;

    let mut client_config = Config::new(&emulator.endpoint, "bench");
    client_config.api_key = Some(ApiKey::new("bench-key"));
    client_config.retry = RetryPolicy::none();
    let client = Client::new(client_config)?;
    setup_schema(&client).await?;

    let mut rows = Vec::new();
    eprintln!(
        "creating {} documents with {} callers ...",
        args.docs, args.concurrency
    );
    let mut creates = create_docs(&client, args.docs, args.concurrency).await?;
    rows.push(
        row(
            format!("appwrite: create document ({} docs)", args.docs),
            args.concurrency,
            &mut creates,
            Goal::MinOpsPerSec(2_000.0),
        )
        .how(HOW_APPWRITE),
    );

    for concurrency in [1, args.concurrency] {
        eprintln!("get by id, {concurrency} caller(s) ...");
        let mut gets = run_reads(&client, args.reads, concurrency, args.docs, Read::Get).await?;
        let goal = if concurrency == 1 {
            Goal::MaxP99(Duration::from_millis(2))
        } else {
            Goal::None
        };
        rows.push(
            row(
                format!("appwrite: get by id (of {})", args.docs),
                concurrency,
                &mut gets,
                goal,
            )
            .how(HOW_APPWRITE),
        );

        eprintln!("list equal+orderDesc+limit 25, {concurrency} caller(s) ...");
        let mut lists = run_reads(&client, args.reads, concurrency, args.docs, Read::List).await?;
        let goal = if concurrency == 1 {
            Goal::MaxP99(Duration::from_millis(5))
        } else {
            Goal::None
        };
        rows.push(
            row(
                format!("appwrite: list equal+orderDesc+limit 25 (of {})", args.docs),
                concurrency,
                &mut lists,
                goal,
            )
            .how(HOW_APPWRITE),
        );
    }

    emulator.stop().await?;
    Ok(rows)
}

pub(crate) fn row(scenario: String, concurrency: usize, samples: &mut Samples, goal: Goal) -> Row {
    Row {
        scenario,
        ops: samples.count(),
        concurrency,
        ops_per_sec: samples.ops_per_sec(),
        p50: samples.percentile(50.0),
        p99: samples.percentile(99.0),
        errors: samples.errors,
        goal,
        how: String::new(),
        measured_only: false,
    }
}

async fn setup_schema(client: &Client) -> anyhow::Result<()> {
    let dbs = client.databases();
    dbs.create(DB, "Bench").await?;
    dbs.create_collection(DB, COL, "Items", &[], false).await?;
    for spec in [
        AttributeSpec::string("route", 32).required(),
        AttributeSpec::integer("n").required(),
        AttributeSpec::string("body", 256),
    ] {
        dbs.create_attribute(DB, COL, &spec).await?;
        dbs.wait_attribute_available(DB, COL, &spec.key, Duration::from_secs(30))
            .await?;
    }
    let index = IndexSpec::new("by_route_n", IndexType::Key, ["route", "n"])
        .orders([Order::Asc, Order::Desc]);
    dbs.create_index(DB, COL, &index).await?;
    dbs.wait_index_available(DB, COL, "by_route_n", Duration::from_secs(30))
        .await?;
    Ok(())
}

fn item(i: usize) -> Item {
    Item {
        route: format!("r{}", i % ROUTES),
        n: i as i64,
        body: format!("signal body number {i}"),
    }
}

async fn create_docs(client: &Client, docs: usize, concurrency: usize) -> anyhow::Result<Samples> {
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let documents = client.documents(DB, COL);
            let mut samples = Samples::with_capacity(docs / concurrency + 1);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= docs {
                    break;
                }
                let t = Instant::now();
                match documents.create(format!("d{i}"), &item(i), None).await {
                    Ok(_) => samples.record(t.elapsed()),
                    Err(_) => samples.errors += 1,
                }
            }
            samples
        }));
    }
    let mut all = Samples::with_capacity(docs);
    for task in tasks {
        all.merge(task.await.context("create worker panicked")?);
    }
    all.wall = started.elapsed();
    Ok(all)
}

#[derive(Clone, Copy)]
enum Read {
    Get,
    List,
}

async fn run_reads(
    client: &Client,
    requests: usize,
    concurrency: usize,
    docs: usize,
    read: Read,
) -> anyhow::Result<Samples> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let share = requests / concurrency;
        tasks.push(tokio::spawn(async move {
            let documents = client.documents(DB, COL);
            let mut samples = Samples::with_capacity(share);
            for _ in 0..share {
                let pick = rand::rng().random_range(0..docs);
                let t = Instant::now();
                let ok = match read {
                    Read::Get => documents.get::<Item>(&format!("d{pick}")).await.is_ok(),
                    Read::List => documents
                        .list::<Item>(&[
                            Query::equal("route", format!("r{}", pick % ROUTES)),
                            Query::order_desc("n"),
                            Query::limit(25),
                        ])
                        .await
                        .is_ok_and(|page| page.documents.len() == 25),
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
        all.merge(task.await.context("read worker panicked")?);
    }
    all.wall = started.elapsed();
    Ok(all)
}
