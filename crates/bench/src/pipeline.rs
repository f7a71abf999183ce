//! Signal pipeline rows: the parser alone on one core over the shipped corpus, and signed
//! collector ingest end to end (webhook service → merge → emulator on a SQLite file).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use g3_core::{
    signal::{Embed, parse},
    signing,
};
use g3_store::{
    Collection,
    models::{Route, Signal},
};
use serde_json::{Value, json};

use crate::{
    row,
    stats::Samples,
    table::{Goal, Row},
};

/// Parses every corpus message `rounds` times on this thread; one sample per message.
pub fn parser_row(rounds: usize) -> anyhow::Result<Row> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../core/tests/corpus/signals.json"
    );
    let corpus: Value = serde_json::from_str(
        &std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
    )?;
    let cases: Vec<(String, Vec<Embed>)> = corpus["cases"]
        .as_array()
        .context("corpus has no cases")?
        .iter()
        .map(|c| {
            (
                c["content"].as_str().unwrap_or_default().to_owned(),
                Embed::from_discord_json(&c["embeds"]),
            )
        })
        .collect();
    let mut samples = Samples::with_capacity(cases.len() * rounds);
    let started = Instant::now();
    for _ in 0..rounds {
        for (content, embeds) in &cases {
            let t = Instant::now();
            std::hint::black_box(parse(std::hint::black_box(content), embeds));
            samples.record(t.elapsed());
        }
    }
    samples.wall = started.elapsed();
    Ok(row(
        format!("parser: corpus of {} messages, one core", cases.len()),
        1,
        &mut samples,
        Goal::MinOpsPerSec(100_000.0),
    )
    .how("g3_core::signal::parse on one thread, each call timed"))
}

const SECRET: &str = "bench-ingest-secret";
const CHANNEL: &str = "1100000000000000001";

fn event(i: usize) -> Vec<u8> {
    let id = 1_300_000_000_000_000_000u64 + i as u64;
    json!({ "events": [{ "type": "message.create", "message": {
        "id": id.to_string(), "channel_id": CHANNEL, "guild_id": "7",
        "author": { "id": "9", "username": "caller" },
        "content": format!("#BTC/USDT LONG\nEntry: {} - {}\nTargets: 110, 120\nStop: 90\nLeverage: 10x", 100 + i % 7, 101 + i % 7),
        "embeds": [], "attachments": [], "timestamp": "2026-01-01T00:00:00+00:00", "edited_timestamp": null
    }}]})
    .to_string()
    .into_bytes()
}

pub async fn ingest_row(events: usize, concurrency: usize) -> anyhow::Result<Row> {
    let dir = tempfile::tempdir()?;
    let backend = testkit::backend::backend_on_disk(dir.path()).await;
    let route = Route {
        source_channel_id: CHANNEL.into(),
        source_guild_id: None,
        name: "Bench".into(),
        customer_channel_ids: vec![],
        enabled: None,
    };
    Collection::<Route>::new(&backend.client)
        .create("bench", &route, None)
        .await?;
    let settings = webhook::Settings {
        appwrite: backend.client_config(),
        sellapp_secret: webhook::Secret::new("unused"),
        plans: Default::default(),
        roles: Default::default(),
        spool_dir: dir.path().join("spool"),
        sellapp_api: None,
        ingest_secret: Some(webhook::Secret::new(SECRET)),
        intervals: webhook::Intervals::default(),
        background_jobs: false,
        previous_secrets: Default::default(),
        http: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/ingest/v1/events", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(webhook::run(settings, listener, async move {
        let _ = stopped.await;
    }));

    eprintln!("ingest: {events} signed message.create events, {concurrency} senders ...");
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, next, url) = (http.clone(), Arc::clone(&next), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::with_capacity(events / concurrency + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= events {
                    return samples;
                }
                let body = event(i);
                let id = format!("bench-{i}");
                let ts = time::OffsetDateTime::now_utc().unix_timestamp();
                let t = Instant::now();
                let ok = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", ts.to_string())
                    .header(
                        "webhook-signature",
                        signing::standard_signature(SECRET, &id, ts, &body),
                    )
                    .body(body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    samples.record(t.elapsed());
                } else {
                    samples.errors += 1;
                }
            }
        }));
    }
    let mut all = Samples::with_capacity(events);
    for task in tasks {
        all.merge(task.await.context("sender panicked")?);
    }
    all.wall = started.elapsed();
    let stored = Collection::<Signal>::new(&backend.client)
        .list(&[g3_appwrite::Query::limit(1)])
        .await?
        .total;
    if stored as usize != events {
        all.errors += (events as u64).abs_diff(stored);
    }
    let _ = stop.send(());
    server.await.context("webhook task")??;
    Ok(row(
        format!("ingest: signed message.create, request to stored ({events} events)"),
        concurrency,
        &mut all,
        Goal::Both {
            min_ops: 500.0,
            max_p99: Duration::from_millis(30),
        },
    )
    .how(
        "signed POSTs from reqwest clients in the bench process to webhook::run in-process, \
         timed from send to the 2xx (stored); errors include events missing from Appwrite after",
    ))
}
