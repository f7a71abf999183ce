//! Webhook rows: signed Sell.app deliveries end to end (webhook service → access rules →
//! emulator on a SQLite file) on a store that already holds many customers, for first
//! purchases and for returning customers, and rejected deliveries (bad signature), all over
//! loopback HTTP with concurrent senders.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use g3_access::{Access, Outcome};
use g3_core::{plans::PlanCatalog, sellapp::Event, signing};

use crate::{
    row,
    stats::{Cpu, Samples},
    table::{Goal, Row},
};

const SECRET: &str = "bench-sellapp-secret";
const PLANS: &str = "3301:9001=vip";

const HOW: &str = "signed POST /webhooks/sellapp over loopback HTTP to the real webhook service \
    (one process, roles off) applying it through g3-access to the emulator on a SQLite file, \
    all in the bench process; the store first holds the seeded customers, each left by a real \
    delivery (user, `paid` membership, subscription, lock, audit entry, delivery record); timed \
    from send to a 200 whose body says \"applied\"";

/// A completed order of one line item (vip) by `email`.
fn purchase(order_id: usize, email: &str) -> Vec<u8> {
    serde_json::json!({
        "event": "order.completed", "store": 1,
        "data": { "id": order_id, "status": "COMPLETED",
                  "customer": { "email": email },
                  "line_items": [{ "id": 1, "product_id": 3301, "product_variant_id": 9001 }] }
    })
    .to_string()
    .into_bytes()
}

fn customer(i: usize) -> String {
    format!("customer-{i}@example.com")
}

/// What one request must get back: its status, and a text its body must contain.
struct Expect {
    status: u16,
    body: Option<&'static str>,
}

pub async fn rows(
    deliveries: usize,
    rejected: usize,
    concurrency: usize,
    customers: usize,
) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let backend = testkit::backend::backend_on_disk(dir.path()).await;
    let plans = PlanCatalog::parse(PLANS)?;
    let seeder = Arc::new(Access::new(backend.client.clone(), plans.clone()));
    seed(seeder, customers, concurrency * 2).await?;

    let settings = webhook::Settings {
        appwrite: backend.client_config(),
        sellapp_secret: webhook::Secret::new(SECRET),
        plans,
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

    let applied = || Expect {
        status: 200,
        body: Some("\"applied\""),
    };
    eprintln!(
        "webhook: {deliveries} first purchases by new customers ({customers} existing), \
         {concurrency} senders ..."
    );
    let cpu_before = Cpu::now();
    let mut first = send_all(&url, deliveries, concurrency, move |i| {
        let body = purchase(2_000_000 + i, &format!("new-{i}@example.com"));
        let sig = signing::sellapp_signature(SECRET, &body);
        (body, sig, applied())
    })
    .await?;
    // The service, the emulator and the senders all run in this process.
    let first_cpu = cpu_before
        .zip(Cpu::now())
        .map(|(before, after)| format!("; {}", after.since(before).per(deliveries, "delivery")))
        .unwrap_or_default();
    eprintln!("webhook: {deliveries} new orders by existing customers, {concurrency} senders ...");
    let spread = customers.max(1);
    let mut again = send_all(&url, deliveries, concurrency, move |i| {
        // Spread over the seeded customers (a prime stride visits each at most once per round).
        let body = purchase(3_000_000 + i, &customer((i * 7_919) % spread));
        let sig = signing::sellapp_signature(SECRET, &body);
        (body, sig, applied())
    })
    .await?;
    eprintln!("webhook: {rejected} deliveries with a bad signature, {concurrency} senders ...");
    let bad_body = purchase(1, "victim@example.com");
    let mut refused = send_all(&url, rejected, concurrency, move |_| {
        let expect = Expect {
            status: 401,
            body: None,
        };
        (bad_body.clone(), "00".repeat(32), expect)
    })
    .await?;

    let _ = stop.send(());
    server.await.context("webhook task")??;
    Ok(vec![
        row(
            format!(
                "webhook: order.completed, first purchase ({customers} customers stored{first_cpu})"
            ),
            concurrency,
            &mut first,
            Goal::Both {
                min_ops: 3_000.0,
                max_p99: Duration::from_millis(10),
            },
        )
        .how(HOW),
        row(
            format!("webhook: order.completed, returning customer (of {customers})"),
            concurrency,
            &mut again,
            Goal::None,
        )
        .how(HOW),
        row(
            "webhook: rejected (bad signature)".into(),
            concurrency,
            &mut refused,
            Goal::MinOpsPerSec(20_000.0),
        )
        .how("as above, answered 401 before anything is read or written"),
    ])
}

/// Stores `customers` customers as a purchase leaves them, by applying one delivery each
/// through `access` (the path the service takes, without its HTTP edge).
async fn seed(access: Arc<Access>, customers: usize, concurrency: usize) -> anyhow::Result<()> {
    eprintln!("webhook: seeding {customers} customers with {concurrency} callers ...");
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (access, next) = (Arc::clone(&access), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= customers {
                    return anyhow::Ok(());
                }
                let event = Event::parse(&purchase(1_000_000 + i, &customer(i)))?;
                let outcome = access
                    .handle_delivery(&event.delivery_id(), &event)
                    .await
                    .with_context(|| format!("seeding customer {i}"))?;
                anyhow::ensure!(
                    matches!(outcome, Outcome::Applied(_)),
                    "seeding customer {i}: {outcome:?}"
                );
            }
        }));
    }
    for task in tasks {
        task.await.context("seed worker panicked")??;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "webhook: seeded {customers} customers in {secs:.1} s ({:.0}/s)",
        customers as f64 / secs.max(f64::EPSILON)
    );
    Ok(())
}

/// Sends `total` requests from `concurrency` tasks; a request whose answer differs from the
/// expected one counts as an error.
async fn send_all(
    url: &str,
    total: usize,
    concurrency: usize,
    make: impl Fn(usize) -> (Vec<u8>, String, Expect) + Send + Sync + 'static,
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
                let (body, signature, expect) = make(i);
                let t = Instant::now();
                let answered = async {
                    let reply = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("signature", signature)
                        .body(body)
                        .send()
                        .await?;
                    let status = reply.status().as_u16();
                    let text = reply.bytes().await?;
                    reqwest::Result::Ok((status, text))
                }
                .await;
                let as_expected = answered.is_ok_and(|(status, text)| {
                    status == expect.status
                        && expect.body.is_none_or(|needle| {
                            text.windows(needle.len()).any(|w| w == needle.as_bytes())
                        })
                });
                if as_expected {
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
