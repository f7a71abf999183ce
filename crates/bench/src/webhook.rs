//! Webhook rows: signed Sell.app deliveries end to end (webhook service → access rules →
//! emulator on a SQLite file), and rejected deliveries (bad signature), both over loopback HTTP
//! with concurrent senders.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use g3_core::{plans::PlanCatalog, signing};

use crate::{
    row,
    stats::Samples,
    table::{Goal, Row},
};

const SECRET: &str = "bench-sellapp-secret";

fn purchase(i: usize) -> Vec<u8> {
    serde_json::json!({
        "event": "order.completed", "store": 1,
        "data": { "id": 1_000_000 + i, "status": "COMPLETED",
                  "customer": { "email": format!("bench-customer-{i}@example.com") },
                  "line_items": [{ "id": 1, "product_id": 3301, "product_variant_id": 9001 }] }
    })
    .to_string()
    .into_bytes()
}

pub async fn rows(
    deliveries: usize,
    rejected: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let backend = testkit::backend::backend_on_disk(dir.path()).await;
    let settings = webhook::Settings {
        appwrite: backend.client_config(),
        sellapp_secret: webhook::Secret::new(SECRET),
        plans: PlanCatalog::parse("3301:9001=vip")?,
        roles: Default::default(),
        spool_dir: dir.path().join("spool"),
        sellapp_api: None,
        ingest_secret: None,
        intervals: webhook::Intervals::default(),
        background_jobs: false,
        previous_secrets: Default::default(),
        http: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhooks/sellapp", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(webhook::run(settings, listener, async move {
        let _ = stopped.await;
    }));

    eprintln!(
        "webhook: {deliveries} signed deliveries for distinct customers, {concurrency} senders ..."
    );
    let mut accepted = send_all(&url, deliveries, concurrency, |i| {
        let body = purchase(i);
        let sig = signing::sellapp_signature(SECRET, &body);
        (body, sig, 200)
    })
    .await?;
    eprintln!("webhook: {rejected} deliveries with a bad signature, {concurrency} senders ...");
    let bad_body = purchase(usize::MAX / 2);
    let mut refused = send_all(&url, rejected, concurrency, move |_| {
        (bad_body.clone(), "00".repeat(32), 401)
    })
    .await?;

    let _ = stop.send(());
    server.await.context("webhook task")??;
    Ok(vec![
        row(
            format!("webhook: signed order.completed, end to end ({deliveries} customers)"),
            concurrency,
            &mut accepted,
            Goal::Both {
                min_ops: 300.0,
                max_p99: Duration::from_millis(50),
            },
        ),
        row(
            "webhook: rejected (bad signature)".into(),
            concurrency,
            &mut refused,
            Goal::MinOpsPerSec(20_000.0),
        ),
    ])
}

/// Sends `total` requests from `concurrency` tasks; a request whose status differs from the
/// expected one counts as an error.
async fn send_all(
    url: &str,
    total: usize,
    concurrency: usize,
    make: impl Fn(usize) -> (Vec<u8>, String, u16) + Send + Sync + 'static,
) -> anyhow::Result<Samples> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, make, next, url) = (
            http.clone(),
            Arc::clone(&make),
            Arc::clone(&next),
            url.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::with_capacity(total / concurrency + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return samples;
                }
                let (body, signature, expected) = make(i);
                let t = Instant::now();
                let status = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("signature", signature)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                if status.as_ref().is_ok_and(|s| *s == expected) {
                    samples.record(t.elapsed());
                } else {
                    samples.errors += 1;
                }
            }
        }));
    }
    let mut all = Samples::with_capacity(total);
    for task in tasks {
        all.merge(task.await.context("sender panicked")?);
    }
    all.wall = started.elapsed();
    Ok(all)
}
