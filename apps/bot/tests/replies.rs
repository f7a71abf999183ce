//! Outcome replies against the Appwrite emulator and the fake Discord: one reply per mirror and
//! event (TP1, the stop) through restarts, crashes between recording and sending, re-judging and
//! a leader change; none for deleted signals or mirrors, for events before the mirror or older
//! than the age limit. Outcomes are judged by the real engine (`g3_outcomes::evaluate`) on
//! trades stamped after the mirror was written.

mod support;

use std::{sync::Arc, time::Duration};

use bot::{
    Mirrorer, RetryPolicy,
    replies::{Pass, Replier, reply_id},
};
use g3_appwrite::Document;
use g3_core::signal::Side as TradeSide;
use g3_outcomes::{History, Market, Outcome, Revision, Rules, Tick, Trade};
use g3_store::{
    Collection,
    models::{OutcomeReply, OutcomeReplyState, Side, Signal, SignalOutcome, SignalStatus},
};
use serenity::{all::ChannelId, http::HttpBuilder};
use support::{Bot, eventually};
use testkit::{
    backend::Backend,
    discord::{FakeDiscord, StoredMessage},
};
use time::OffsetDateTime;

const CHANNEL: u64 = 930_000_000_000_000_001;
const WAIT: Duration = Duration::from_secs(15);

fn http(fake: &FakeDiscord) -> Arc<serenity::http::Http> {
    Arc::new(
        HttpBuilder::new("test-token")
            .client(fake.client(Duration::from_millis(500)))
            .build(),
    )
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 5,
        base: Duration::from_millis(10),
        max: Duration::from_millis(50),
    }
}

/// A fresh replier: a new process with nothing in memory, same Appwrite and Discord.
fn replier(backend: &Backend, fake: &FakeDiscord) -> Replier {
    Replier::new(http(fake), backend.client.clone(), retry())
}

/// A long BTC/USDT from 100, stop 95 (risk 5), targets 105 and 110, posted a minute ago.
fn signal(id: &str, posted_at: OffsetDateTime) -> Signal {
    Signal {
        content: Some("BTC long 100, TP 105 110, SL 95".into()),
        pair: Some("BTC/USDT".into()),
        side: Some(Side::Long),
        entries: vec![100.0],
        targets: vec![105.0, 110.0],
        stop: Some(95.0),
        ..support::live_signal(id, "BTC long", 1, posted_at)
    }
}

async fn put_signal(backend: &Backend, id: &str, s: &Signal) -> Document<Signal> {
    Collection::<Signal>::new(&backend.client)
        .upsert(id, s, None)
        .await
        .unwrap()
}

/// The signal's outcome after trades at `prices`, one second apart from `from`.
fn judged(
    posted_at: OffsetDateTime,
    targets: &[f64],
    from: OffsetDateTime,
    prices: &[f64],
) -> Outcome {
    let history = History::new(
        vec![Revision {
            revision: 1,
            effective_at: posted_at,
            trade: Trade {
                pair: "BTC/USDT".into(),
                side: TradeSide::Long,
                entries: vec![100.0],
                targets: targets.to_vec(),
                stop: Some(95.0),
                leverage: None,
            },
        }],
        None,
    )
    .unwrap();
    let ticks: Vec<Market> = prices
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Market::Tick(Tick {
                time: from + time::Duration::seconds(i as i64),
                price: *p,
            })
        })
        .collect();
    g3_outcomes::evaluate(&history, Rules::default(), &ticks, None).unwrap()
}

/// Stores `outcome` as the tracker does.
async fn put_outcome(backend: &Backend, id: &str, outcome: &Outcome) -> Document<SignalOutcome> {
    let doc = SignalOutcome {
        route_key: "main".into(),
        status: outcome.status.as_str().into(),
        posted_at: outcome.posted_at,
        venue: Some("binance_spot".into()),
        symbol: Some("BTCUSDT".into()),
        outcome: serde_json::to_string(outcome).unwrap(),
        revisions: "[]".into(),
        deleted_at: outcome.deleted_at,
        updated: outcome.judged_until.unwrap_or(outcome.posted_at),
    };
    Collection::<SignalOutcome>::new(&backend.client)
        .upsert(id, &doc, None)
        .await
        .unwrap()
}

/// The replies in `channel`, oldest first.
fn replies(fake: &FakeDiscord, channel: u64) -> Vec<StoredMessage> {
    fake.messages(channel)
        .into_iter()
        .filter(|m| m.reply_to.is_some())
        .collect()
}

/// Message creates that asked to reply.
fn reply_creates(fake: &FakeDiscord) -> usize {
    fake.creates()
        .iter()
        .filter(|r| {
            r.body
                .as_ref()
                .is_some_and(|b| !b["message_reference"].is_null())
        })
        .count()
}

async fn record(backend: &Backend, signal: &str, key: &str) -> Option<OutcomeReply> {
    Collection::<OutcomeReply>::new(&backend.client)
        .get_optional(&reply_id(signal, ChannelId::new(CHANNEL), key))
        .await
        .unwrap()
        .map(|d| d.data)
}

/// A signal mirrored into [`CHANNEL`], then the wall-clock time trades start (after the mirror
/// was written, so its events are due).
struct Mirrored {
    backend: Backend,
    fake: FakeDiscord,
    posted_at: OffsetDateTime,
    trades_from: OffsetDateTime,
    message: u64,
}

async fn mirrored(id: &str) -> Mirrored {
    let backend = testkit::backend::backend().await;
    let fake = FakeDiscord::spawn().await;
    let posted_at = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let doc = put_signal(&backend, id, &signal(id, posted_at)).await;
    Mirrorer::new(http(&fake), backend.client.clone(), retry())
        .mirror(&doc, ChannelId::new(CHANNEL))
        .await
        .unwrap();
    let message = fake.messages(CHANNEL)[0].id;
    Mirrored {
        backend,
        fake,
        posted_at,
        trades_from: OffsetDateTime::now_utc() + time::Duration::seconds(1),
        message,
    }
}

/// The record a run writes before sending TP1's reply.
fn pending(signal: &str, m: &Mirrored) -> OutcomeReply {
    OutcomeReply {
        signal_id: signal.into(),
        target_channel_id: CHANNEL.to_string(),
        event: "tp1".into(),
        event_at: m.trades_from,
        reply_to: m.message.to_string(),
        content: "TP1 hit +5% (+1R)".into(),
        message_id: None,
        state: OutcomeReplyState::Pending,
        nonce: bot::replies::reply_nonce(signal, ChannelId::new(CHANNEL), "tp1"),
        last_error: None,
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::minutes(1)
}

#[tokio::test]
async fn tp1_and_the_stop_each_get_one_reply() {
    let m = mirrored("7001").await;
    let r = replier(&m.backend, &m.fake);
    let entered = judged(m.posted_at, &[105.0, 110.0], m.trades_from, &[100.0, 102.0]);
    let doc = put_outcome(&m.backend, "7001", &entered).await;
    assert_eq!(
        r.handle(&doc, now()).await.unwrap(),
        Pass::default(),
        "no reply for the entry"
    );

    let tp1 = judged(m.posted_at, &[105.0, 110.0], m.trades_from, &[100.0, 105.0]);
    let doc = put_outcome(&m.backend, "7001", &tp1).await;
    assert_eq!(r.handle(&doc, now()).await.unwrap().sent, 1);
    // Progress writes and redeliveries change nothing.
    assert_eq!(r.handle(&doc, now()).await.unwrap().sent, 0);
    assert_eq!(
        replier(&m.backend, &m.fake)
            .handle(&doc, now())
            .await
            .unwrap()
            .sent,
        0
    );
    let sent = replies(&m.fake, CHANNEL);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].content, "TP1 hit +5% (+1R)");
    assert_eq!(
        sent[0].reply_to,
        Some(m.message),
        "a reply to the mirrored message"
    );
    let create = m.fake.creates().into_iter().last().unwrap();
    assert!(create.enforce_nonce);
    assert_eq!(create.nonce.as_deref().map(str::len), Some(25));
    assert_eq!(
        create.body.as_ref().unwrap()["allowed_mentions"]["parse"],
        serde_json::json!([])
    );
    let stored = record(&m.backend, "7001", "tp1").await.unwrap();
    assert_eq!(stored.state, OutcomeReplyState::Posted);
    assert_eq!(stored.message_id, Some(sent[0].id.to_string()));

    let stopped = judged(
        m.posted_at,
        &[105.0, 110.0],
        m.trades_from,
        &[100.0, 105.0, 95.0],
    );
    let doc = put_outcome(&m.backend, "7001", &stopped).await;
    assert_eq!(r.handle(&doc, now()).await.unwrap().sent, 1);
    let sent = replies(&m.fake, CHANNEL);
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[1].content,
        "Stopped \u{2212}1R (\u{2212}5%) after TP1, trade 0R (0%)"
    );
    assert_eq!(reply_creates(&m.fake), 2);
}

#[tokio::test]
async fn a_crash_between_recording_and_sending_sends_once() {
    let m = mirrored("7002").await;
    let tp1 = judged(m.posted_at, &[105.0, 110.0], m.trades_from, &[100.0, 105.0]);
    let doc = put_outcome(&m.backend, "7002", &tp1).await;
    // The first run wrote its intent and died before Discord heard of it.
    let key = reply_id("7002", ChannelId::new(CHANNEL), "tp1");
    Collection::<OutcomeReply>::new(&m.backend.client)
        .upsert(&key, &pending("7002", &m), None)
        .await
        .unwrap();
    let restarted = replier(&m.backend, &m.fake);
    restarted.note_unsettled("7002");
    assert_eq!(restarted.handle(&doc, now()).await.unwrap().sent, 1);
    assert_eq!(replies(&m.fake, CHANNEL).len(), 1);
    assert_eq!(
        record(&m.backend, "7002", "tp1").await.unwrap().state,
        OutcomeReplyState::Posted
    );
}

#[tokio::test]
async fn a_crash_after_sending_is_found_in_the_channel_without_a_duplicate() {
    let m = mirrored("7003").await;
    let tp1 = judged(m.posted_at, &[105.0, 110.0], m.trades_from, &[100.0, 105.0]);
    let doc = put_outcome(&m.backend, "7003", &tp1).await;
    replier(&m.backend, &m.fake)
        .handle(&doc, now())
        .await
        .unwrap();
    let first = replies(&m.fake, CHANNEL)[0].id;
    // Discord took the reply; the process died before `posted` was saved.
    let coll = Collection::<OutcomeReply>::new(&m.backend.client);
    let key = reply_id("7003", ChannelId::new(CHANNEL), "tp1");
    let mut pending = coll.get(&key).await.unwrap().data;
    pending.state = OutcomeReplyState::Pending;
    pending.message_id = None;
    coll.upsert(&key, &pending, None).await.unwrap();
    // Long past Discord's nonce window: only the channel check prevents a duplicate.
    m.fake.set_nonce_window(Duration::ZERO);
    let creates = reply_creates(&m.fake);

    let restarted = replier(&m.backend, &m.fake);
    restarted.note_unsettled("7003");
    restarted.handle(&doc, now()).await.unwrap();
    assert_eq!(reply_creates(&m.fake), creates, "nothing was sent again");
    assert_eq!(replies(&m.fake, CHANNEL).len(), 1);
    let stored = record(&m.backend, "7003", "tp1").await.unwrap();
    assert_eq!(
        (stored.state, stored.message_id),
        (OutcomeReplyState::Posted, Some(first.to_string()))
    );
}

#[tokio::test]
async fn a_deleted_signal_gets_no_reply_and_its_pending_reply_is_skipped() {
    let m = mirrored("7004").await;
    let mut gone = signal("7004", m.posted_at);
    gone.status = SignalStatus::Deleted;
    put_signal(&m.backend, "7004", &gone).await;
    let tp1 = judged(m.posted_at, &[105.0, 110.0], m.trades_from, &[100.0, 105.0]);
    let doc = put_outcome(&m.backend, "7004", &tp1).await;
    let r = replier(&m.backend, &m.fake);
    assert_eq!(r.handle(&doc, now()).await.unwrap(), Pass::default());
    assert!(replies(&m.fake, CHANNEL).is_empty());
    assert!(record(&m.backend, "7004", "tp1").await.is_none());

    // A run that recorded its intent before the deletion and died before sending: the record
    // is settled as skipped at the next start, nothing is sent.
    let key = reply_id("7004", ChannelId::new(CHANNEL), "tp1");
    Collection::<OutcomeReply>::new(&m.backend.client)
        .upsert(&key, &pending("7004", &m), None)
        .await
        .unwrap();
    let restarted = replier(&m.backend, &m.fake);
    restarted.note_unsettled("7004");
    assert_eq!(
        restarted.handle(&doc, now()).await.unwrap(),
        Pass::default()
    );
    assert!(replies(&m.fake, CHANNEL).is_empty());
    let stored = record(&m.backend, "7004", "tp1").await.unwrap();
    assert_eq!(stored.state, OutcomeReplyState::Skipped);
    assert_eq!(stored.last_error.as_deref(), Some("the signal was deleted"));
}

#[tokio::test]
async fn a_mirror_deleted_by_hand_is_not_replied_to() {
    let m = mirrored("7005").await;
    m.fake.delete_by_hand(CHANNEL, m.message);
    let tp1 = judged(m.posted_at, &[105.0, 110.0], m.trades_from, &[100.0, 105.0]);
    let doc = put_outcome(&m.backend, "7005", &tp1).await;
    let pass = replier(&m.backend, &m.fake)
        .handle(&doc, now())
        .await
        .unwrap();
    assert_eq!(pass, Pass::default());
    assert!(
        m.fake.messages(CHANNEL).is_empty(),
        "not sent as a plain message"
    );
    let stored = record(&m.backend, "7005", "tp1").await.unwrap();
    assert_eq!(stored.state, OutcomeReplyState::Skipped);
    assert_eq!(
        stored.last_error.as_deref(),
        Some("the mirrored message is gone")
    );
}

#[tokio::test]
async fn events_before_the_mirror_or_past_the_age_limit_get_no_reply() {
    let m = mirrored("7006").await;
    let r = replier(&m.backend, &m.fake);
    // Traded before the mirror was written.
    let early = m.posted_at + time::Duration::seconds(1);
    let tp1 = judged(m.posted_at, &[105.0, 110.0], early, &[100.0, 105.0]);
    let doc = put_outcome(&m.backend, "7006", &tp1).await;
    assert_eq!(r.handle(&doc, now()).await.unwrap(), Pass::default());
    // After the mirror, but the bot is back 25 hours later.
    let tp1 = judged(m.posted_at, &[105.0, 110.0], m.trades_from, &[100.0, 105.0]);
    let doc = put_outcome(&m.backend, "7006", &tp1).await;
    let late = m.trades_from + time::Duration::hours(25);
    assert_eq!(
        replier(&m.backend, &m.fake)
            .handle(&doc, late)
            .await
            .unwrap(),
        Pass::default()
    );
    // Within the limit it is due.
    let back = m.trades_from + time::Duration::hours(23);
    assert_eq!(
        replier(&m.backend, &m.fake)
            .handle(&doc, back)
            .await
            .unwrap()
            .sent,
        1
    );
    assert_eq!(replies(&m.fake, CHANNEL).len(), 1);
}

#[tokio::test]
async fn a_rejudged_target_is_not_replied_to_twice() {
    let m = mirrored("7007").await;
    let r = replier(&m.backend, &m.fake);
    let tp1 = judged(m.posted_at, &[105.0, 110.0], m.trades_from, &[100.0, 105.0]);
    let doc = put_outcome(&m.backend, "7007", &tp1).await;
    assert_eq!(r.handle(&doc, now()).await.unwrap().sent, 1);
    // An edit moved TP1; the tracker judged again and TP1 was hit later, at another price.
    let later = m.trades_from + time::Duration::seconds(30);
    let again = judged(m.posted_at, &[106.0, 110.0], later, &[100.0, 106.0]);
    let doc = put_outcome(&m.backend, "7007", &again).await;
    for fresh in [false, true] {
        let pass = if fresh {
            replier(&m.backend, &m.fake).handle(&doc, now()).await
        } else {
            r.handle(&doc, now()).await
        };
        assert_eq!(pass.unwrap().sent, 0);
    }
    assert_eq!(replies(&m.fake, CHANNEL).len(), 1);
    assert_eq!(reply_creates(&m.fake), 1);
}

#[tokio::test]
async fn a_reply_waits_for_its_mirror_to_be_posted() {
    let backend = testkit::backend::backend().await;
    let fake = FakeDiscord::spawn().await;
    let posted_at = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let doc = put_signal(&backend, "7008", &signal("7008", posted_at)).await;
    // The channel refuses: the mapping is `failed`, nothing is posted.
    fake.forbid_channel(CHANNEL);
    let mirrorer = Mirrorer::new(http(&fake), backend.client.clone(), retry());
    assert!(
        mirrorer
            .mirror(&doc, ChannelId::new(CHANNEL))
            .await
            .is_err()
    );
    let from = OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let tp1 = judged(posted_at, &[105.0, 110.0], from, &[100.0, 105.0]);
    let outcome = put_outcome(&backend, "7008", &tp1).await;
    let r = replier(&backend, &fake);
    let pass = r.handle(&outcome, now()).await.unwrap();
    assert!(pass.retry && pass.sent == 0, "{pass:?}");
    assert!(record(&backend, "7008", "tp1").await.is_none());

    fake.allow_channel(CHANNEL);
    mirrorer
        .mirror(&doc, ChannelId::new(CHANNEL))
        .await
        .unwrap();
    assert_eq!(r.handle(&outcome, now()).await.unwrap().sent, 1);
    assert_eq!(replies(&fake, CHANNEL).len(), 1);
}

/// Two bots share the lease: the leader follows outcomes through Realtime and replies; after it
/// crashes the standby takes over and replies to the next event only.
#[tokio::test]
async fn the_running_bots_reply_once_through_a_leader_change() {
    let backend = support::backend().await;
    support::main_route(&backend, CHANNEL).await;
    let fake = FakeDiscord::spawn().await;
    let start = |holder: &str| {
        Bot::start(support::fast_lease(
            support::settings(&backend, &fake),
            holder,
        ))
    };
    let a = start("a").await;
    let b = start("b").await;
    let posted_at = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    put_signal(&backend, "7009", &signal("7009", posted_at)).await;
    let f = fake.clone();
    eventually("mirrored", WAIT, || {
        let n = f.messages(CHANNEL).len();
        async move { n == 1 }
    })
    .await;
    let from = OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let tp1 = judged(posted_at, &[105.0, 110.0], from, &[100.0, 105.0]);
    put_outcome(&backend, "7009", &tp1).await;
    let f = fake.clone();
    eventually("the TP1 reply", WAIT, || {
        let n = replies(&f, CHANNEL).len();
        async move { n == 1 }
    })
    .await;

    let (leader, standby) = if a.role().await == "leader" {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(standby.role().await, "standby");
    leader.running.crash().await;
    let stopped = judged(posted_at, &[105.0, 110.0], from, &[100.0, 105.0, 95.0]);
    put_outcome(&backend, "7009", &stopped).await;
    let f = fake.clone();
    eventually("the stop reply", Duration::from_secs(30), || {
        let n = replies(&f, CHANNEL).len();
        async move { n == 2 }
    })
    .await;
    let sent: Vec<String> = replies(&fake, CHANNEL)
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(
        sent,
        vec![
            "TP1 hit +5% (+1R)".to_owned(),
            "Stopped \u{2212}1R (\u{2212}5%) after TP1, trade 0R (0%)".to_owned()
        ]
    );
    // One create per reply: the standby sent nothing while it stood by, and the new leader's
    // catch-up did not send TP1 again.
    assert_eq!(reply_creates(&fake), 2);
    standby.running.kill().await;
}

/// Two processes handling the same outcome at once (say, a leader that has not noticed losing
/// its lease and its successor): Discord's nonce check turns the second send into the first.
#[tokio::test]
async fn two_repliers_at_once_post_one_reply() {
    let m = mirrored("7010").await;
    let tp1 = judged(m.posted_at, &[105.0, 110.0], m.trades_from, &[100.0, 105.0]);
    let doc = put_outcome(&m.backend, "7010", &tp1).await;
    let (a, b) = (replier(&m.backend, &m.fake), replier(&m.backend, &m.fake));
    let (ra, rb) = tokio::join!(a.handle(&doc, now()), b.handle(&doc, now()));
    ra.unwrap();
    rb.unwrap();
    let sent = replies(&m.fake, CHANNEL);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let stored = record(&m.backend, "7010", "tp1").await.unwrap();
    assert_eq!(stored.message_id, Some(sent[0].id.to_string()));
}

/// A record written under a newer lease generation is left alone by an older leader, and a
/// leader whose lease is gone makes no Discord call at all.
#[tokio::test]
async fn an_older_or_lapsed_leader_replies_to_nothing() {
    use g3_store::lease::Fence;
    let m = mirrored("7011").await;
    let tp1 = judged(m.posted_at, &[105.0, 110.0], m.trades_from, &[100.0, 105.0]);
    let doc = put_outcome(&m.backend, "7011", &tp1).await;
    // The newer leader recorded TP1 and died before sending.
    let newer = replier(&m.backend, &m.fake).with_fence(Fence::unfenced(7));
    let key = reply_id("7011", ChannelId::new(CHANNEL), "tp1");
    let stored = serde_json::json!({
        "signal_id": "7011",
        "target_channel_id": CHANNEL.to_string(),
        "event": "tp1",
        "event_at": g3_appwrite::format_datetime(m.trades_from),
        "reply_to": m.message.to_string(),
        "content": "TP1 hit +5% (+1R)",
        "message_id": null,
        "state": "pending",
        "nonce": bot::replies::reply_nonce("7011", ChannelId::new(CHANNEL), "tp1"),
        "last_error": null,
        "fence": 7,
    });
    Collection::<OutcomeReply>::new(&m.backend.client)
        .raw()
        .upsert(&key, &stored, None)
        .await
        .unwrap();
    let older = replier(&m.backend, &m.fake).with_fence(Fence::unfenced(6));
    let refused = older.handle(&doc, now()).await;
    assert!(
        matches!(refused, Err(bot::replies::ReplyError::Fenced(_))),
        "{refused:?}"
    );
    assert!(replies(&m.fake, CHANNEL).is_empty());

    // A lapsed lease: no request reaches Discord.
    let lease = g3_store::lease::Lease::new(
        &m.backend.client,
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
    let before = m.fake.requests().len();
    let lapsed = replier(&m.backend, &m.fake).with_fence(fence);
    let refused = lapsed.handle(&doc, now()).await;
    assert!(
        matches!(refused, Err(bot::replies::ReplyError::Fenced(_))),
        "{refused:?}"
    );
    assert_eq!(m.fake.requests().len(), before);

    // The newer leader itself settles it: one reply.
    newer.note_unsettled("7011");
    assert_eq!(newer.handle(&doc, now()).await.unwrap().sent, 1);
    assert_eq!(replies(&m.fake, CHANNEL).len(), 1);
}

/// Replies go through serenity's rate limiter like mirrors: a burst in one channel waits for
/// the channel's limit instead of running into 429s.
#[tokio::test]
async fn a_burst_of_replies_keeps_to_the_channel_limit() {
    let m = mirrored("7012").await;
    m.fake
        .set_channel_limit(Some(testkit::discord::ChannelLimit {
            limit: 1,
            window: Duration::from_millis(300),
        }));
    let both = judged(
        m.posted_at,
        &[105.0, 110.0],
        m.trades_from,
        &[100.0, 105.0, 110.0],
    );
    let doc = put_outcome(&m.backend, "7012", &both).await;
    let started = std::time::Instant::now();
    assert_eq!(
        replier(&m.backend, &m.fake)
            .handle(&doc, now())
            .await
            .unwrap()
            .sent,
        2
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    let contents: Vec<String> = replies(&m.fake, CHANNEL)
        .into_iter()
        .map(|r| r.content)
        .collect();
    assert_eq!(
        contents,
        vec![
            "TP1 hit +5% (+1R)".to_owned(),
            "All targets hit: TP2 +10% (+2R), trade +7.5% (+1.5R)".to_owned()
        ]
    );
    assert!(
        m.fake
            .requests()
            .iter()
            .all(|r| !r.over_limit && r.status != 429)
    );
}
