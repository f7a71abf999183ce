//! The lease against the emulator: one winner per generation however many race, standbys
//! that take over a released lease at once, old generations pruned, and the leader loop
//! (`lease::lead`) that the bot and the tracker run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use g3_appwrite::{ApiKey, Client, Config, Query, RetryPolicy};
use g3_store::{
    Collection, bootstrap,
    lease::{self, Fence, Leading, Lease, Record, Standing, Timing},
};
use testkit::wait::eventually;

async fn backend() -> (appwrite_emulator::Handle, Client) {
    let emulator = appwrite_emulator::spawn(appwrite_emulator::Config::in_memory("p", "k"))
        .await
        .expect("emulator starts");
    let mut config = Config::new(&emulator.endpoint, "p");
    config.api_key = Some(ApiKey::new("k"));
    config.retry = RetryPolicy::none();
    let client = Client::new(config).expect("client builds");
    bootstrap::run(&client, &mut |_: &str| {}).await.unwrap();
    (emulator, client)
}

fn lease(client: &Client, holder: &str) -> Lease {
    Lease::new(
        client,
        lease::Config {
            name: "bot".into(),
            holder: holder.into(),
            timing: Timing::new(Duration::from_secs(3), Duration::from_millis(300)).unwrap(),
            hold_renewals: None,
        },
    )
}

#[tokio::test]
async fn exactly_one_of_many_takes_a_generation() {
    let (_emulator, client) = backend().await;
    // Every contender on its own task, all racing for generation 1.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let l = lease(&client, &format!("p{i}"));
            tokio::spawn(async move { l.try_take(1).await })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        if let Some(held) = t.await.unwrap().unwrap() {
            winners.push(held);
        }
    }
    assert_eq!(winners.len(), 1);
    assert!(winners[0].is_valid());
    assert_eq!(winners[0].generation(), 1);
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once_and_old_generations_are_pruned() {
    let (_emulator, client) = backend().await;
    let a = lease(&client, "a");
    let mut held = a.acquire().await;
    for _ in 0..5 {
        let generation = held.generation();
        held.release().await;
        held = tokio::time::timeout(Duration::from_secs(2), a.acquire())
            .await
            .expect("a released lease is taken without waiting for its ttl");
        assert_eq!(held.generation(), generation + 1);
    }
    assert_eq!(held.generation(), 6);
    let left: Vec<i64> = Collection::<Record>::new(&client)
        .list(&[Query::order_asc("generation")])
        .await
        .unwrap()
        .documents
        .into_iter()
        .map(|d| d.data.generation)
        .collect();
    assert_eq!(left, [4, 5, 6]);
    // Renewals land while it is held: a standby sees the lease change.
    let before = a.newest().await.unwrap().unwrap().data.renewals;
    eventually("a renewal", Duration::from_secs(5), || async {
        a.newest().await.unwrap().unwrap().data.renewals > before
    })
    .await;
    assert!(held.is_valid());
}

/// Work that only writes down what happened to it.
struct Job {
    generation: i64,
    log: Arc<Mutex<Vec<String>>>,
}

impl Leading for Job {
    async fn drain(self) {
        self.log
            .lock()
            .unwrap()
            .push(format!("drain {}", self.generation));
    }
    async fn abort(self) {
        self.log
            .lock()
            .unwrap()
            .push(format!("abort {}", self.generation));
    }
}

fn logged(log: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    log.lock().unwrap().clone()
}

#[tokio::test]
async fn the_leader_loop_aborts_on_loss_leads_again_and_drains_then_releases_on_shutdown() {
    let (_emulator, client) = backend().await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let leader = {
        let (client, log) = (client.clone(), log.clone());
        tokio::spawn(async move {
            let a = lease(&client, "a");
            let stands = |s: Standing| log.lock().unwrap().push(format!("{s:?}"));
            let start = |fence: Fence| {
                let log = log.clone();
                async move {
                    log.lock()
                        .unwrap()
                        .push(format!("start {}", fence.generation()));
                    Ok::<_, String>(Job {
                        generation: fence.generation(),
                        log,
                    })
                }
            };
            lease::lead(&a, stands, start, async {
                let _ = stopped.await;
            })
            .await
        })
    };
    eventually("a leads", Duration::from_secs(5), || async {
        logged(&log).contains(&"start 1".to_owned())
    })
    .await;

    // Another process takes a newer generation: the leader stops its work at once.
    let b = lease(&client, "b")
        .try_take(2)
        .await
        .unwrap()
        .expect("b takes generation 2");
    eventually("a sees the loss", Duration::from_secs(5), || async {
        logged(&log).contains(&"abort 1".to_owned())
    })
    .await;
    // b lets go: a leads again, at once.
    b.release().await;
    eventually("a leads again", Duration::from_secs(5), || async {
        logged(&log).contains(&"start 3".to_owned())
    })
    .await;

    stop.send(()).unwrap();
    leader.await.unwrap().unwrap();
    assert_eq!(
        logged(&log),
        [
            "Standby", "Leader", "start 1", "abort 1", "Standby", "Leader", "start 3", "Stopping",
            "drain 3"
        ]
    );
    let newest = lease(&client, "c").newest().await.unwrap().unwrap().data;
    assert_eq!((newest.generation, newest.released), (3, true), "released");
}

#[tokio::test]
async fn a_leader_whose_work_fails_to_start_releases_the_lease_and_says_why() {
    let (_emulator, client) = backend().await;
    let a = lease(&client, "a");
    let out = lease::lead(
        &a,
        |_| {},
        |_| async { Err::<Job, _>("token refused") },
        std::future::pending(),
    )
    .await;
    assert_eq!(out, Err("token refused"));
    let newest = a.newest().await.unwrap().unwrap().data;
    assert_eq!((newest.generation, newest.released), (1, true));
}
