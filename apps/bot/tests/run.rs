//! The whole bot (`bot::run`): start-up reconciliation, Realtime follow, order and pacing.

mod support;

use std::time::Duration;

use bot::{Order, Settings};
use g3_appwrite::{Document, UploadFile};
use g3_store::{
    Collection,
    models::{AttachmentRef, AttachmentState, Signal, SignalStatus},
    schema::BUCKET_SIGNAL_ASSETS,
};
use support::{Running, eventually, live_signal};
use testkit::{
    backend::Backend,
    discord::{ChannelLimit, FakeDiscord},
};
use time::macros::datetime;

const CHANNEL: u64 = 910_000_000_000_000_001;

async fn setup() -> (Backend, FakeDiscord) {
    let backend = support::backend().await;
    support::main_route(&backend, CHANNEL).await;
    (backend, FakeDiscord::spawn().await)
}

fn start(backend: &Backend, fake: &FakeDiscord, order: Order) -> Running {
    support::start(Settings {
        order,
        ..support::settings(backend, fake)
    })
}

async fn put(backend: &Backend, id: &str, s: &Signal) -> Document<Signal> {
    Collection::<Signal>::new(&backend.client)
        .upsert(id, s, None)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_bot_catches_up_then_follows_creates_edits_and_deletes() {
    let (backend, fake) = setup().await;
    put(
        &backend,
        "2001",
        &live_signal(
            "2001",
            "written while down",
            1,
            datetime!(2026-03-01 10:00 UTC),
        ),
    )
    .await;
    let _stop = start(&backend, &fake, Order::OldestFirst);
    let f = fake.clone();
    eventually("the backlog mirrored", Duration::from_secs(10), || {
        let f = f.clone();
        async move { f.messages(CHANNEL).len() == 1 }
    })
    .await;

    put(
        &backend,
        "2002",
        &live_signal("2002", "live one", 1, datetime!(2026-03-01 11:00 UTC)),
    )
    .await;
    let f = fake.clone();
    eventually("the live signal mirrored", Duration::from_secs(10), || {
        let f = f.clone();
        async move { f.messages(CHANNEL).len() == 2 }
    })
    .await;

    put(
        &backend,
        "2001",
        &live_signal("2001", "edited", 2, datetime!(2026-03-01 10:00 UTC)),
    )
    .await;
    let mut gone = live_signal("2002", "live one", 1, datetime!(2026-03-01 11:00 UTC));
    gone.status = SignalStatus::Deleted;
    put(&backend, "2002", &gone).await;
    let f = fake.clone();
    eventually(
        "the edit and the delete mirrored",
        Duration::from_secs(10),
        || {
            let f = f.clone();
            async move {
                let m = f.messages(CHANNEL);
                m.len() == 1 && m[0].content == "edited"
            }
        },
    )
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
            &live_signal(&format!("30{i:02}"), &format!("signal {i}"), 1, posted),
        )
        .await;
    }
    let _stop = start(&backend, &fake, Order::NewestFirst);
    let f = fake.clone();
    eventually("all eight mirrored", Duration::from_secs(20), || {
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
/// killed and restarted three times at arbitrary points (300 events in all): in the end every live signal has exactly one
/// mirror with its latest text, deleted ones none, and Discord never got a duplicate.
#[tokio::test]
async fn chaos_converges_to_exactly_one_mirror_per_live_signal() {
    use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
    use testkit::discord::FaultRates;

    const EVENTS: usize = 300;
    let (backend, fake) = setup().await;
    for file in ["a", "b"] {
        backend
            .client
            .storage()
            .create_file(
                BUCKET_SIGNAL_ASSETS,
                file,
                UploadFile {
                    name: format!("{file}.png"),
                    content_type: "image/png".into(),
                    data: bytes::Bytes::from_static(testkit::cdn::PNG),
                },
                None,
            )
            .await
            .unwrap();
    }
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
        let mut written = 0;
        while written < EVENTS / 4 {
            let n = rng.random_range(0..100u32);
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
            let mut s = live_signal(
                &id,
                &content,
                revision,
                base + time::Duration::seconds(n.into()),
            );
            if !live {
                s.status = SignalStatus::Deleted;
            }
            let files = chaos_files(revision);
            if !files.is_empty() {
                let refs: Vec<AttachmentRef> = files
                    .iter()
                    .map(|f| AttachmentRef {
                        id: format!("{n}{f}"),
                        filename: f.clone(),
                        content_type: Some("image/png".into()),
                        size: Some(testkit::cdn::PNG.len() as u64),
                        file_id: Some(f.trim_end_matches(".png").into()),
                        state: AttachmentState::Stored,
                        note: None,
                        source_url: None,
                    })
                    .collect();
                s.attachments = Some(serde_json::to_string(&refs).unwrap());
            }
            put(&backend, &id, &s).await;
            truth.insert(id, (content, revision, live));
            events += 1;
            written += 1;
        }
        // Kill the bot after an arbitrary amount of progress (the last round runs to the end).
        if round < 3 {
            let seen = fake.requests().len();
            let more = rng.random_range(5..40);
            let f = fake.clone();
            eventually("more requests", Duration::from_secs(30), || {
                let f = f.clone();
                async move { f.requests().len() >= seen + more }
            })
            .await;
            stop.kill().await;
        } else {
            let f = fake.clone();
            let expected = truth.clone();
            eventually("converged", Duration::from_secs(90), || {
                let f = f.clone();
                let expected = expected.clone();
                async move {
                    let mut contents: Vec<(String, Vec<String>)> = f
                        .messages(CHANNEL)
                        .into_iter()
                        .map(|m| {
                            let files = m.attachments.into_iter().map(|a| a.filename).collect();
                            (m.content, files)
                        })
                        .collect();
                    contents.sort();
                    let mut want: Vec<(String, Vec<String>)> = expected
                        .values()
                        .filter(|(_, _, live)| *live)
                        .map(|(c, rev, _)| (c.clone(), chaos_files(*rev)))
                        .collect();
                    want.sort();
                    contents == want
                }
            })
            .await;
            stop.kill().await;
        }
    }
    assert_eq!(events, EVENTS);
    let faults = fake.requests().iter().filter(|r| r.fault.is_some()).count();
    assert!(faults > 5, "the fake injected only {faults} faults");
    assert!(fake.requests().iter().all(|r| !r.over_limit));
    // Nothing Discord would count as a duplicate: every create carries a nonce it enforces
    // (the run is far shorter than the fake's 5-minute window), and the final channel holds
    // exactly one message per live signal (checked above by content, one per signal).
    let creates: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
        .collect();
    assert!(
        creates.iter().all(|r| r.nonce.is_some() && r.enforce_nonce),
        "a create without an enforced nonce"
    );
    // …and no signal was ever created twice: its successful creates all share one nonce
    // (a retry of a lost answer), never two (a second message for the same signal).
    let mut nonces: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for r in creates.iter().filter(|r| r.status < 300) {
        let content = r
            .body
            .as_ref()
            .and_then(|b| b.get("content"))
            .and_then(|c| c.as_str())
            .unwrap_or_default();
        let signal = content.rsplit_once(' ').map_or(content, |(s, _)| s);
        nonces
            .entry(signal.to_owned())
            .or_default()
            .insert(r.nonce.clone().unwrap_or_default());
    }
    assert!(!nonces.is_empty());
    for (signal, set) in &nonces {
        assert_eq!(set.len(), 1, "{signal} was created under nonces {set:?}");
    }
}

/// The stored attachments of a chaos signal at `revision`: none, one, or two files.
fn chaos_files(revision: i64) -> Vec<String> {
    match revision % 3 {
        0 => Vec::new(),
        1 => vec!["a.png".into()],
        _ => vec!["a.png".into(), "b.png".into()],
    }
}
