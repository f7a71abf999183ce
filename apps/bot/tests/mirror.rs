//! The mirrorer against the Appwrite emulator and the fake Discord, serenity's rate limiter on.

use std::{sync::Arc, time::Duration};

use bot::{MirrorError, Mirrorer, Outcome, RetryPolicy, mirror::mirror_id};
use g3_appwrite::{Document, UploadFile};
use g3_store::{
    Collection,
    models::{
        AttachmentRef, AttachmentState, Mirror, MirrorState, Route, Side, Signal, SignalStatus,
    },
    schema::BUCKET_SIGNAL_ASSETS,
};
use serenity::{all::ChannelId, http::HttpBuilder};
use testkit::{
    backend::{Backend, backend},
    discord::{FakeDiscord, Fault},
};
use time::macros::datetime;

const CHANNEL: u64 = 900_000_000_000_000_001;

struct TestBot {
    backend: Backend,
    fake: FakeDiscord,
    mirrorer: Mirrorer,
}

impl TestBot {
    async fn spawn() -> TestBot {
        let backend = backend().await;
        let fake = FakeDiscord::spawn().await;
        let mirrorer = Self::mirrorer(&backend, &fake);
        TestBot {
            backend,
            fake,
            mirrorer,
        }
    }

    /// A fresh bot process: nothing in memory, same Appwrite and Discord.
    fn mirrorer(backend: &Backend, fake: &FakeDiscord) -> Mirrorer {
        let http = HttpBuilder::new("test-token")
            .client(fake.client(Duration::from_millis(500)))
            .build();
        Mirrorer::new(
            Arc::new(http),
            backend.client.clone(),
            RetryPolicy {
                attempts: 5,
                base: Duration::from_millis(10),
                max: Duration::from_millis(50),
            },
        )
    }

    async fn put(&self, id: &str, signal: &Signal) -> Document<Signal> {
        Collection::<Signal>::new(&self.backend.client)
            .upsert(id, signal, None)
            .await
            .expect("signal stored")
    }

    async fn mapping(&self, id: &str) -> Mirror {
        Collection::<Mirror>::new(&self.backend.client)
            .get(&mirror_id(id, ChannelId::new(CHANNEL)))
            .await
            .expect("mapping exists")
            .data
    }

    async fn mirror(&self, signal: &Document<Signal>) -> Result<Outcome, MirrorError> {
        self.mirrorer.mirror(signal, ChannelId::new(CHANNEL)).await
    }
}

fn signal(id: &str, content: &str, revision: i64) -> Signal {
    Signal {
        author_id: Some("300".into()),
        author_name: Some("caller".into()),
        content: Some(content.into()),
        pair: Some("BTC/USDT".into()),
        side: Some(Side::Long),
        entries: vec![60_000.0, 59_500.0],
        targets: vec![61_000.0, 62_000.0],
        stop: Some(58_000.0),
        leverage: Some(10.0),
        revision,
        ..Signal::live(("100", "200", id), "main", datetime!(2026-03-01 12:00 UTC))
    }
}

#[tokio::test]
async fn a_signal_becomes_one_message_however_often_it_is_mirrored() {
    let t = TestBot::spawn().await;
    let doc = t
        .put("1001", &signal("1001", "BTC long @everyone", 1))
        .await;
    assert_eq!(t.mirror(&doc).await.unwrap(), Outcome::Posted);
    assert_eq!(t.mirror(&doc).await.unwrap(), Outcome::Unchanged);
    let msgs = t.fake.messages(CHANNEL);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].content, "BTC long @everyone");
    assert_eq!(msgs[0].embeds[0]["title"], "BTC/USDT LONG");
    let create = &t.fake.creates()[0];
    assert!(create.enforce_nonce);
    assert!(create.nonce.as_ref().unwrap().len() <= 25);
    // Nobody is pinged by a mirror.
    assert_eq!(
        create.body.as_ref().unwrap()["allowed_mentions"]["parse"],
        serde_json::json!([])
    );
    let m = t.mapping("1001").await;
    assert_eq!(m.state, MirrorState::Posted);
    assert_eq!(m.message_ids, vec![msgs[0].id.to_string()]);
    assert_eq!(m.revision, Some(1));
}

#[tokio::test]
async fn edits_edit_and_deletes_delete() {
    let t = TestBot::spawn().await;
    let doc = t.put("1002", &signal("1002", "first", 1)).await;
    t.mirror(&doc).await.unwrap();
    let id = t.fake.messages(CHANNEL)[0].id;

    let doc = t.put("1002", &signal("1002", "second", 2)).await;
    assert_eq!(t.mirror(&doc).await.unwrap(), Outcome::Edited);
    let msgs = t.fake.messages(CHANNEL);
    assert_eq!(
        (msgs.len(), msgs[0].id, msgs[0].content.as_str()),
        (1, id, "second")
    );
    assert_eq!(t.mapping("1002").await.revision, Some(2));

    let mut gone = signal("1002", "second", 2);
    gone.status = SignalStatus::Deleted;
    let doc = t.put("1002", &gone).await;
    assert_eq!(t.mirror(&doc).await.unwrap(), Outcome::Deleted);
    assert!(t.fake.messages(CHANNEL).is_empty());
    assert_eq!(t.mapping("1002").await.state, MirrorState::Deleted);
    assert_eq!(t.mirror(&doc).await.unwrap(), Outcome::Unchanged);
}

#[tokio::test]
async fn a_crash_after_sending_is_resolved_from_the_channel_without_a_duplicate() {
    let t = TestBot::spawn().await;
    let doc = t.put("1003", &signal("1003", "crash me", 1)).await;
    t.mirror(&doc).await.unwrap();
    // The process died after Discord took the message and before `posted` was saved: the
    // mapping is still the `pending` one written before sending.
    let mut pending = t.mapping("1003").await;
    pending.state = MirrorState::Pending;
    pending.message_ids = vec![String::new()];
    Collection::<Mirror>::new(&t.backend.client)
        .upsert(&mirror_id("1003", ChannelId::new(CHANNEL)), &pending, None)
        .await
        .unwrap();
    // Long past Discord's nonce window: only the channel check can prevent a duplicate.
    t.fake.set_nonce_window(Duration::ZERO);

    let restarted = TestBot::mirrorer(&t.backend, &t.fake);
    assert_eq!(
        restarted
            .mirror(&doc, ChannelId::new(CHANNEL))
            .await
            .unwrap(),
        Outcome::Repaired
    );
    let msgs = t.fake.messages(CHANNEL);
    assert_eq!(msgs.len(), 1);
    assert_eq!(t.fake.creates().len(), 1);
    let m = t.mapping("1003").await;
    assert_eq!(
        (m.state, m.message_ids.clone()),
        (MirrorState::Posted, vec![msgs[0].id.to_string()])
    );
}

#[tokio::test]
async fn a_crash_before_sending_sends_once() {
    let t = TestBot::spawn().await;
    let doc = t.put("1004", &signal("1004", "never sent", 1)).await;
    let pending = Mirror {
        signal_id: "1004".into(),
        target_channel_id: CHANNEL.to_string(),
        message_ids: vec![String::new()],
        revision: Some(1),
        state: MirrorState::Pending,
        nonce: Some(bot::mirror::nonce_stem("1004", ChannelId::new(CHANNEL), 1)),
        last_error: None,
    };
    Collection::<Mirror>::new(&t.backend.client)
        .upsert(&mirror_id("1004", ChannelId::new(CHANNEL)), &pending, None)
        .await
        .unwrap();
    t.mirror(&doc).await.unwrap();
    assert_eq!(t.fake.messages(CHANNEL).len(), 1);
    assert_eq!(t.mapping("1004").await.state, MirrorState::Posted);
}

#[tokio::test]
async fn a_mirror_deleted_by_hand_is_posted_again_on_edit() {
    let t = TestBot::spawn().await;
    let doc = t.put("1005", &signal("1005", "v1", 1)).await;
    t.mirror(&doc).await.unwrap();
    let old = t.fake.messages(CHANNEL)[0].id;
    assert!(t.fake.delete_by_hand(CHANNEL, old));

    let doc = t.put("1005", &signal("1005", "v2", 2)).await;
    assert_eq!(t.mirror(&doc).await.unwrap(), Outcome::Repaired);
    let msgs = t.fake.messages(CHANNEL);
    assert_eq!(msgs.len(), 1);
    assert_ne!(msgs[0].id, old);
    assert_eq!(msgs[0].content, "v2");
    assert_eq!(
        t.mapping("1005").await.message_ids,
        vec![msgs[0].id.to_string()]
    );
}

#[tokio::test]
async fn server_errors_and_stalls_are_retried_without_duplicates() {
    let t = TestBot::spawn().await;
    t.fake.fail_next(Fault::ServerError(500));
    t.fake.fail_next(Fault::ServerError(503));
    // The third try is taken by Discord, but its answer is lost to the client's timeout.
    t.fake.fail_next(Fault::Stall(Duration::from_secs(2)));
    let doc = t.put("1006", &signal("1006", "flaky", 1)).await;
    assert_eq!(t.mirror(&doc).await.unwrap(), Outcome::Posted);
    let statuses: Vec<u16> = t.fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..2], &[500, 503]);
    assert_eq!(
        t.fake.messages(CHANNEL).len(),
        1,
        "the retry's nonce found the first"
    );
    let ids: std::collections::HashSet<_> =
        t.fake.creates().iter().map(|r| r.nonce.clone()).collect();
    assert_eq!(ids.len(), 1, "every try carried the same nonce");
}

#[tokio::test]
async fn long_text_is_a_fixed_set_of_parts_that_follows_edits() {
    let t = TestBot::spawn().await;
    let long = (0..60)
        .map(|i| format!("line {i} {}", "x".repeat(70)))
        .collect::<Vec<_>>()
        .join("\n");
    let doc = t.put("1007", &signal("1007", &long, 1)).await;
    t.mirror(&doc).await.unwrap();
    let msgs = t.fake.messages(CHANNEL);
    assert_eq!(msgs.len(), 3);
    assert!(msgs.iter().all(|m| m.content.chars().count() <= 2000));
    assert_eq!(msgs.iter().filter(|m| !m.embeds.is_empty()).count(), 1);

    let doc = t.put("1007", &signal("1007", "short now", 2)).await;
    t.mirror(&doc).await.unwrap();
    let msgs = t.fake.messages(CHANNEL);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].content, "short now");
    assert_eq!(t.mapping("1007").await.message_ids.len(), 1);
}

#[tokio::test]
async fn a_forbidden_channel_fails_clearly_and_recovers() {
    let t = TestBot::spawn().await;
    t.fake.forbid_channel(CHANNEL);
    let doc = t.put("1008", &signal("1008", "nope", 1)).await;
    let err = t.mirror(&doc).await.unwrap_err();
    assert!(
        matches!(err, MirrorError::ChannelUnavailable { .. }),
        "{err}"
    );
    let m = t.mapping("1008").await;
    assert_eq!(m.state, MirrorState::Failed);
    assert!(m.last_error.unwrap().contains("Missing Access"));
    // Refused requests are not spun on.
    assert_eq!(t.fake.requests().len(), 1);

    t.fake.allow_channel(CHANNEL);
    t.mirror(&doc).await.unwrap();
    assert_eq!(t.fake.messages(CHANNEL).len(), 1);
    assert_eq!(t.mapping("1008").await.state, MirrorState::Posted);
}

#[tokio::test]
async fn stored_attachments_are_uploaded_and_routes_fan_out() {
    let t = TestBot::spawn().await;
    t.backend
        .client
        .storage()
        .create_file(
            BUCKET_SIGNAL_ASSETS,
            "chart1",
            UploadFile {
                name: "chart.png".into(),
                content_type: "image/png".into(),
                data: bytes::Bytes::from_static(testkit::cdn::PNG),
            },
            None,
        )
        .await
        .expect("file stored");
    let refs = vec![AttachmentRef {
        id: "555".into(),
        filename: "chart.png".into(),
        content_type: Some("image/png".into()),
        size: Some(testkit::cdn::PNG.len() as u64),
        file_id: Some("chart1".into()),
        state: AttachmentState::Stored,
        note: None,
        source_url: Some("https://cdn.discordapp.com/expired".into()),
    }];
    let mut s = signal("1009", "with chart", 1);
    s.attachments = Some(serde_json::to_string(&refs).unwrap());
    let doc = t.put("1009", &s).await;
    let other = CHANNEL + 1;
    Collection::<Route>::new(&t.backend.client)
        .upsert(
            "main",
            &Route {
                source_channel_id: "200".into(),
                source_guild_id: None,
                name: "Main".into(),
                customer_channel_ids: vec![CHANNEL.to_string(), other.to_string()],
                enabled: Some(true),
            },
            None,
        )
        .await
        .unwrap();
    let outcomes = bot::mirror_signal(&t.mirrorer, &t.backend.client, &doc, false)
        .await
        .unwrap();
    assert_eq!(outcomes, vec![Outcome::Posted, Outcome::Posted]);
    for channel in [CHANNEL, other] {
        let msgs = t.fake.messages(channel);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].attachments.len(), 1);
        assert_eq!(msgs[0].attachments[0].bytes, testkit::cdn::PNG);
    }
}

#[tokio::test]
async fn a_crash_after_sending_then_an_edit_still_leaves_one_message() {
    let t = TestBot::spawn().await;
    let doc = t.put("1010", &signal("1010", "before the crash", 1)).await;
    t.mirror(&doc).await.unwrap();
    let mut pending = t.mapping("1010").await;
    pending.state = MirrorState::Pending;
    pending.message_ids = vec![String::new()];
    Collection::<Mirror>::new(&t.backend.client)
        .upsert(&mirror_id("1010", ChannelId::new(CHANNEL)), &pending, None)
        .await
        .unwrap();
    // Edited while the bot was down: the channel check cannot match the old text, the nonce can.
    let doc = t.put("1010", &signal("1010", "edited while down", 2)).await;
    let restarted = TestBot::mirrorer(&t.backend, &t.fake);
    restarted
        .mirror(&doc, ChannelId::new(CHANNEL))
        .await
        .unwrap();
    let msgs = t.fake.messages(CHANNEL);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].content, "edited while down");
    let m = t.mapping("1010").await;
    assert_eq!((m.state, m.revision), (MirrorState::Posted, Some(2)));
    assert_eq!(m.message_ids, vec![msgs[0].id.to_string()]);
}

#[tokio::test]
async fn verification_reposts_a_current_mirror_deleted_by_hand() {
    let t = TestBot::spawn().await;
    let doc = t.put("1011", &signal("1011", "still here?", 1)).await;
    t.mirror(&doc).await.unwrap();
    assert_eq!(
        t.mirrorer
            .verify(&doc, ChannelId::new(CHANNEL))
            .await
            .unwrap(),
        Outcome::Unchanged
    );
    let old = t.fake.messages(CHANNEL)[0].id;
    t.fake.delete_by_hand(CHANNEL, old);
    // Without verification nothing looks wrong: the mapping says posted at this revision.
    assert_eq!(t.mirror(&doc).await.unwrap(), Outcome::Unchanged);
    assert_eq!(
        t.mirrorer
            .verify(&doc, ChannelId::new(CHANNEL))
            .await
            .unwrap(),
        Outcome::Repaired
    );
    let msgs = t.fake.messages(CHANNEL);
    assert_eq!(msgs.len(), 1);
    assert_ne!(msgs[0].id, old);
    assert_eq!(
        t.mapping("1011").await.message_ids,
        vec![msgs[0].id.to_string()]
    );
}

#[tokio::test]
async fn resolution_pages_back_through_a_busy_channel() {
    let t = TestBot::spawn().await;
    let doc = t.put("1012", &signal("1012", "buried", 1)).await;
    t.mirror(&doc).await.unwrap();
    let http = HttpBuilder::new("test-token")
        .client(t.fake.client(Duration::from_secs(5)))
        .build();
    for i in 0..130 {
        ChannelId::new(CHANNEL)
            .say(&http, format!("chatter {i}"))
            .await
            .unwrap();
    }
    let mut pending = t.mapping("1012").await;
    pending.state = MirrorState::Pending;
    pending.message_ids = vec![String::new()];
    Collection::<Mirror>::new(&t.backend.client)
        .upsert(&mirror_id("1012", ChannelId::new(CHANNEL)), &pending, None)
        .await
        .unwrap();
    t.fake.set_nonce_window(Duration::ZERO);
    let before = t.fake.creates().len();
    assert_eq!(t.mirror(&doc).await.unwrap(), Outcome::Repaired);
    assert_eq!(t.fake.creates().len(), before, "nothing was sent again");
    let lists = t
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/messages"))
        .count();
    assert_eq!(lists, 2);
    let first = t.fake.messages(CHANNEL)[0].id.to_string();
    assert_eq!(t.mapping("1012").await.message_ids, vec![first]);
}

/// A mapping written under a newer lease generation is left alone by an older leader, and a
/// leader whose lease is gone makes no Discord call at all.
#[tokio::test]
async fn an_older_or_lapsed_leader_touches_nothing() {
    use g3_store::lease::Fence;
    let bot = TestBot::spawn().await;
    let newer = TestBot::mirrorer(&bot.backend, &bot.fake).with_fence(Fence::unfenced(7));
    let older = TestBot::mirrorer(&bot.backend, &bot.fake).with_fence(Fence::unfenced(6));
    let v1 = bot.put("6001", &signal("6001", "first", 1)).await;
    assert_eq!(
        newer.mirror(&v1, ChannelId::new(CHANNEL)).await.unwrap(),
        Outcome::Posted
    );
    // The raw document: the lease generation is stored beside the mapping's own fields.
    let stored: serde_json::Value = Collection::<Mirror>::new(&bot.backend.client)
        .raw()
        .get(&mirror_id("6001", ChannelId::new(CHANNEL)))
        .await
        .unwrap()
        .data;
    assert_eq!(stored["fence"], 7, "{stored}");
    let v2 = bot.put("6001", &signal("6001", "edited", 2)).await;
    let refused = older.mirror(&v2, ChannelId::new(CHANNEL)).await;
    assert!(
        matches!(refused, Err(MirrorError::Fenced(_))),
        "{refused:?}"
    );
    assert_eq!(bot.fake.messages(CHANNEL)[0].content, "first");

    // A lapsed lease (dropped holder): no request reaches Discord.
    let lease = g3_store::lease::Lease::new(
        &bot.backend.client,
        g3_store::lease::Config {
            name: "t".into(),
            holder: "h".into(),
            timing: g3_store::lease::Timing::default(),
            hold_renewals: None,
        },
    );
    let held = lease.try_take(1).await.unwrap().unwrap();
    let fence = held.fence();
    drop(held);
    assert!(!fence.is_valid());
    let lapsed = TestBot::mirrorer(&bot.backend, &bot.fake).with_fence(fence);
    let before = bot.fake.requests().len();
    let v3 = bot.put("6002", &signal("6002", "never sent", 1)).await;
    let refused = lapsed.mirror(&v3, ChannelId::new(CHANNEL)).await;
    assert!(
        matches!(refused, Err(MirrorError::Fenced(_))),
        "{refused:?}"
    );
    assert_eq!(bot.fake.requests().len(), before);
}
