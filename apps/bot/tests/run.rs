//! The whole bot (`bot::run`): start-up reconciliation, Realtime follow, order and pacing.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use bot::{Order, RetryPolicy, Secret, Settings};
use g3_appwrite::Document;
use g3_store::{
    models::{Route, Signal, SignalStatus},
    schema::{DATABASE_ID, TEAM_STAFF},
};
use testkit::{
    backend::{Backend, backend},
    discord::{ChannelLimit, FakeDiscord},
};
use time::{OffsetDateTime, macros::datetime};
use tokio::sync::oneshot;

const CHANNEL: u64 = 910_000_000_000_000_001;
const STAFF_EMAIL: &str = "bot-service@test.local";
const STAFF_PASSWORD: &str = "bot service password";

async fn setup() -> (Backend, FakeDiscord) {
    let backend = backend().await;
    let user = backend
        .client
        .users()
        .create(
            "bot-service",
            STAFF_EMAIL,
            Some(STAFF_PASSWORD),
            Some("bot"),
        )
        .await
        .unwrap();
    backend
        .client
        .teams()
        .add_member_if_absent(TEAM_STAFF, &user.id, &[] as &[&str])
        .await
        .unwrap();
    backend
        .client
        .documents(DATABASE_ID, "routes")
        .upsert(
            "main",
            &Route {
                source_channel_id: "200".into(),
                source_guild_id: None,
                name: "Main".into(),
                customer_channel_ids: vec![CHANNEL.to_string()],
                enabled: Some(true),
            },
            None,
        )
        .await
        .unwrap();
    (backend, FakeDiscord::spawn().await)
}

/// A running bot; [`Running::kill`] stops it wherever it is and waits until it has stopped.
struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn kill(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

fn start(backend: &Backend, fake: &FakeDiscord, order: Order) -> Running {
    let settings = Settings {
        discord_token: Secret::new("test-token"),
        appwrite: backend.client_config(),
        staff_email: STAFF_EMAIL.into(),
        staff_password: Secret::new(STAFF_PASSWORD),
        order,
        discord_timeout: Duration::from_millis(500),
        retry: RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(10),
            max: Duration::from_millis(50),
        },
        discord_client: Some(fake.client(Duration::from_millis(500))),
        reconcile_every: Duration::from_secs(3600),
        verify_window: Duration::from_secs(24 * 3600),
        retry_failed_after: Duration::from_millis(100),
    };
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        bot::run(settings, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running { stop, task }
}

fn signal(id: &str, content: &str, revision: i64, posted_at: OffsetDateTime) -> Signal {
    Signal {
        source_guild_id: "100".into(),
        source_channel_id: "200".into(),
        source_message_id: id.into(),
        route_key: "main".into(),
        author_id: None,
        author_name: None,
        content: Some(content.into()),
        embeds: None,
        content_hash: None,
        pair: None,
        side: None,
        entries: Vec::new(),
        targets: Vec::new(),
        stop: None,
        leverage: None,
        flags: Vec::new(),
        attachments: None,
        assets_pending: None,
        revision,
        edit_stamps: None,
        status: SignalStatus::Live,
        posted_at,
        edited_at: None,
        deleted_at: None,
    }
}

async fn put(backend: &Backend, id: &str, s: &Signal) -> Document<Signal> {
    backend
        .client
        .documents(DATABASE_ID, "signals")
        .upsert(id, s, None)
        .await
        .unwrap()
}

/// Polls `cond` until it holds or `timeout` passes.
async fn eventually<F: Future<Output = bool>>(timeout: Duration, mut cond: impl FnMut() -> F) {
    let deadline = Instant::now() + timeout;
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_bot_catches_up_then_follows_creates_edits_and_deletes() {
    let (backend, fake) = setup().await;
    put(
        &backend,
        "2001",
        &signal(
            "2001",
            "written while down",
            1,
            datetime!(2026-03-01 10:00 UTC),
        ),
    )
    .await;
    let _stop = start(&backend, &fake, Order::OldestFirst);
    let f = fake.clone();
    eventually(Duration::from_secs(10), || {
        let f = f.clone();
        async move { f.messages(CHANNEL).len() == 1 }
    })
    .await;

    put(
        &backend,
        "2002",
        &signal("2002", "live one", 1, datetime!(2026-03-01 11:00 UTC)),
    )
    .await;
    let f = fake.clone();
    eventually(Duration::from_secs(10), || {
        let f = f.clone();
        async move { f.messages(CHANNEL).len() == 2 }
    })
    .await;

    put(
        &backend,
        "2001",
        &signal("2001", "edited", 2, datetime!(2026-03-01 10:00 UTC)),
    )
    .await;
    let mut gone = signal("2002", "live one", 1, datetime!(2026-03-01 11:00 UTC));
    gone.status = SignalStatus::Deleted;
    put(&backend, "2002", &gone).await;
    let f = fake.clone();
    eventually(Duration::from_secs(10), || {
        let f = f.clone();
        async move {
            let m = f.messages(CHANNEL);
            m.len() == 1 && m[0].content == "edited"
        }
    })
    .await;
    assert_eq!(fake.creates().len(), 2);
}

#[tokio::test]
async fn a_backlog_is_mirrored_newest_first_within_the_channel_limit() {
    let (backend, fake) = setup().await;
    fake.set_channel_limit(Some(ChannelLimit {
        limit: 3,
        window: Duration::from_millis(300),
    }));
    for i in 0..8 {
        let posted = datetime!(2026-03-01 10:00 UTC) + time::Duration::minutes(i);
        put(
            &backend,
            &format!("30{i:02}"),
            &signal(&format!("30{i:02}"), &format!("signal {i}"), 1, posted),
        )
        .await;
    }
    let _stop = start(&backend, &fake, Order::NewestFirst);
    let f = fake.clone();
    eventually(Duration::from_secs(20), || {
        let f = f.clone();
        async move { f.messages(CHANNEL).len() == 8 }
    })
    .await;
    let order: Vec<String> = fake
        .messages(CHANNEL)
        .into_iter()
        .map(|m| m.content)
        .collect();
    let expected: Vec<String> = (0..8).rev().map(|i| format!("signal {i}")).collect();
    assert_eq!(order, expected);
    assert!(
        fake.requests().iter().all(|r| !r.over_limit),
        "our pacing caused a 429"
    );
}

/// Creates, edits and deletes while the fake injects 429s, 5xx and stalls and the bot is
/// killed and restarted at arbitrary points: in the end every live signal has exactly one
/// mirror with its latest text, deleted ones none, and Discord never got a duplicate.
#[tokio::test]
async fn chaos_converges_to_exactly_one_mirror_per_live_signal() {
    use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
    use testkit::discord::FaultRates;

    let (backend, fake) = setup().await;
    fake.set_fault_rates(Some(FaultRates {
        rate_limited: 0.10,
        server_error: 0.05,
        stall: 0.03,
        stall_for: Duration::from_millis(700),
        retry_after: 0.02,
        seed: 7,
    }));
    let mut rng = StdRng::seed_from_u64(11);
    // id → (content, revision, live)
    let mut truth: std::collections::BTreeMap<String, (String, i64, bool)> = Default::default();
    let base = datetime!(2026-03-01 10:00 UTC);
    let mut events = 0;
    for round in 0..4 {
        let stop = start(&backend, &fake, Order::OldestFirst);
        for _ in 0..30 {
            let n = rng.random_range(0..40u32);
            let id = format!("4{n:03}");
            let entry = truth.get(&id).cloned();
            let (content, revision, live) = match entry {
                None => (format!("signal {n} r1"), 1, true),
                Some((_, _, false)) => continue,
                Some((_, rev, true)) if rng.random_bool(0.2) => {
                    (format!("signal {n} r{rev}"), rev, false)
                }
                Some((_, rev, true)) => (format!("signal {n} r{}", rev + 1), rev + 1, true),
            };
            let mut s = signal(
                &id,
                &content,
                revision,
                base + time::Duration::seconds(n.into()),
            );
            if !live {
                s.status = SignalStatus::Deleted;
            }
            put(&backend, &id, &s).await;
            truth.insert(id, (content, revision, live));
            events += 1;
        }
        // Kill the bot after an arbitrary amount of progress (the last round runs to the end).
        if round < 3 {
            let seen = fake.requests().len();
            let more = rng.random_range(5..40);
            let f = fake.clone();
            eventually(Duration::from_secs(30), || {
                let f = f.clone();
                async move { f.requests().len() >= seen + more }
            })
            .await;
            stop.kill().await;
        } else {
            let f = fake.clone();
            let expected = truth.clone();
            eventually(Duration::from_secs(90), || {
                let f = f.clone();
                let expected = expected.clone();
                async move {
                    let mut contents: Vec<String> =
                        f.messages(CHANNEL).into_iter().map(|m| m.content).collect();
                    contents.sort();
                    let mut want: Vec<String> = expected
                        .values()
                        .filter(|(_, _, live)| *live)
                        .map(|(c, _, _)| c.clone())
                        .collect();
                    want.sort();
                    contents == want
                }
            })
            .await;
            stop.kill().await;
        }
    }
    assert!(events >= 100, "only {events} events");
    let faults = fake.requests().iter().filter(|r| r.fault.is_some()).count();
    assert!(faults > 5, "the fake injected only {faults} faults");
    assert!(fake.requests().iter().all(|r| !r.over_limit));
}
