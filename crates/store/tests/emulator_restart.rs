//! The client survives Appwrite going away and coming back: writers keep going while the
//! emulator is stopped and restarted on the same address and database file, and at the end
//! every document exists exactly once.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use g3_appwrite::{ApiKey, AttributeSpec, Client, Config, Query, RetryPolicy};
use serde::{Deserialize, Serialize};
use testkit::wait::eventually;
use tokio::net::TcpListener;

/// How long each step may take.
const LIMIT: Duration = Duration::from_secs(30);

#[derive(Serialize, Deserialize)]
struct Item {
    n: i64,
}

fn emulator_config(dir: &std::path::Path) -> appwrite_emulator::Config {
    let mut config = appwrite_emulator::Config::in_memory("p", "k");
    config.database_path = Some(dir.join("db.sqlite"));
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_survive_a_stop_and_restart_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let emulator = appwrite_emulator::spawn_on(emulator_config(dir.path()), listener)
        .await
        .unwrap();

    let mut config = Config::new(&emulator.endpoint, "p");
    config.api_key = Some(ApiKey::new("k"));
    config.timeout = Duration::from_secs(2);
    config.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
    };
    let client = Client::new(config).unwrap();
    let dbs = client.databases();
    dbs.create("db", "db").await.unwrap();
    dbs.create_collection("db", "items", "items", &[], false)
        .await
        .unwrap();
    dbs.create_attribute("db", "items", &AttributeSpec::integer("n").required())
        .await
        .unwrap();
    dbs.wait_attribute_available("db", "items", "n", Duration::from_secs(5))
        .await
        .unwrap();

    const DOCS: usize = 400;
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let failures_seen = Arc::new(AtomicUsize::new(0));
    let give_up = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (client, next, done, failures_seen, give_up) = (
            client.clone(),
            next.clone(),
            done.clone(),
            failures_seen.clone(),
            give_up.clone(),
        );
        writers.push(tokio::spawn(async move {
            let docs = client.documents("db", "items");
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= DOCS {
                    return;
                }
                // The caller's own loop: an idempotent write is simply repeated until it lands.
                loop {
                    match docs
                        .create_if_absent(&format!("d{i}"), &Item { n: i as i64 }, None)
                        .await
                    {
                        Ok(_) => break,
                        Err(e) => {
                            assert!(e.is_retryable(), "only outage errors expected, got {e}");
                            failures_seen.fetch_add(1, Ordering::SeqCst);
                            if give_up.load(Ordering::SeqCst) {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }

    eventually("a quarter of the writes", LIMIT, || async {
        done.load(Ordering::SeqCst) >= DOCS / 4
    })
    .await;
    emulator.stop().await.unwrap();
    // While it is down, writers see failures, not hangs.
    eventually("a failed write", LIMIT, || async {
        failures_seen.load(Ordering::SeqCst) > 0
    })
    .await;
    let progress_while_down = done.load(Ordering::SeqCst);
    assert!(progress_while_down < DOCS);

    let listener = TcpListener::bind(addr).await.unwrap();
    let emulator = appwrite_emulator::spawn_on(emulator_config(dir.path()), listener)
        .await
        .unwrap();
    let all_done = tokio::time::timeout(Duration::from_secs(60), async {
        for w in writers {
            w.await.unwrap();
        }
    })
    .await;
    give_up.store(true, Ordering::SeqCst);
    assert!(all_done.is_ok(), "writers finished after the restart");
    assert_eq!(done.load(Ordering::SeqCst), DOCS);

    let page = client
        .documents("db", "items")
        .list::<Item>(&[Query::limit(1)])
        .await
        .unwrap();
    assert_eq!(page.total as usize, DOCS, "every document exactly once");
    emulator.stop().await.unwrap();
}
