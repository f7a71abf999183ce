//! The source-guild collector end to end: serenity's `Client` on the fake gateway, the bot's
//! collector, the real ingest service and the emulator.

mod support;

use std::time::Duration;

use g3_store::{
    Collection,
    models::{Route, SignalStatus},
};
use serenity::all::GatewayIntents;
use support::{Ingest, Logs, Running, ev, eventually, signal, start};
use testkit::{backend::Backend, discord::FakeDiscord};

const GUILD: u64 = 700_000_000_000_000_001;
const OTHER_GUILD: u64 = 700_000_000_000_000_002;
const CHANNEL: u64 = 710_000_000_000_000_001;
/// In the source guild, routed, but not in the collector's channel list (when it has one).
const CHANNEL_2: u64 = 710_000_000_000_000_002;
/// In the other guild, routed: only the guild filter keeps it out.
const FOREIGN: u64 = 710_000_000_000_000_003;
const AUTHOR: u64 = 720_000_000_000_000_001;
const WAIT: Duration = Duration::from_secs(10);

async fn route(backend: &Backend, key: &str, channel: u64, guild: u64) {
    Collection::<Route>::new(&backend.client)
        .upsert(
            key,
            &Route {
                source_channel_id: channel.to_string(),
                source_guild_id: Some(guild.to_string()),
                name: key.into(),
                customer_channel_ids: vec![],
                enabled: Some(true),
            },
            None,
        )
        .await
        .unwrap();
}

struct World {
    backend: Backend,
    fake: FakeDiscord,
    ingest: Ingest,
}

async fn world() -> World {
    let backend = support::backend().await;
    route(&backend, "main", CHANNEL, GUILD).await;
    route(&backend, "second", CHANNEL_2, GUILD).await;
    route(&backend, "foreign", FOREIGN, OTHER_GUILD).await;
    let fake = FakeDiscord::spawn().await;
    fake.add_guild(GUILD);
    let ingest = Ingest::spawn(&backend).await;
    World {
        backend,
        fake,
        ingest,
    }
}

/// Starts the bot collecting `channels` (empty: the whole source guild) and waits until its
/// first backfill has run (the source channel's cursor exists).
async fn start_collecting(
    w: &World,
    channels: Vec<u64>,
    spool: Option<&std::path::Path>,
) -> Running {
    let mut settings = support::settings(&w.backend, &w.fake);
    let mut c = support::collector(GUILD, channels, &w.ingest);
    c.spool_dir = spool.map(Into::into);
    settings.gateway.collector = Some(c);
    let sessions = w.fake.gateway_connections();
    let bot = start(settings);
    let fake = w.fake.clone();
    eventually("a gateway session", WAIT, || {
        let fake = fake.clone();
        async move { fake.gateway_sessions() == 1 && fake.gateway_connections() > sessions }
    })
    .await;
    let client = w.backend.client.clone();
    eventually("the first backfill", WAIT, || {
        let client = client.clone();
        async move {
            bot::state::load(&client, &format!("collect-{CHANNEL}"))
                .await
                .unwrap()
                .is_some()
        }
    })
    .await;
    bot
}

async fn wait_signal(
    w: &World,
    id: u64,
    what: &str,
    check: impl Fn(&g3_store::models::Signal) -> bool,
) {
    let backend = &w.backend;
    eventually(what, WAIT, || async {
        signal(backend, id).await.is_some_and(|s| check(&s.data))
    })
    .await;
}

#[tokio::test]
async fn creates_edits_and_deletes_in_the_source_guild_become_signals() {
    let w = world().await;
    let bot = start_collecting(&w, vec![], None).await;
    let identify = &w.fake.gateway_identifies()[0];
    let intents = GatewayIntents::from_bits_truncate(identify["intents"].as_u64().unwrap());
    assert_eq!(
        intents,
        GatewayIntents::GUILDS | GatewayIntents::GUILD_MESSAGES | GatewayIntents::MESSAGE_CONTENT,
        "no GUILD_MEMBERS without a customer guild"
    );

    let foreign = w
        .fake
        .source_message_create(OTHER_GUILD, FOREIGN, AUTHOR, "#BTC/USDT LONG");
    let call = "#ETH/USDT LONG\nEntry: 3000\nTargets: 3100, 3200\nStop: 2900";
    let id = w.fake.source_message_create(GUILD, CHANNEL, AUTHOR, call);
    wait_signal(&w, id, "the create", |s| {
        s.revision == 1 && s.content.as_deref() == Some(call) && s.pair.is_some()
    })
    .await;
    let stored = signal(&w.backend, id).await.unwrap().data;
    assert_eq!(stored.source_guild_id, GUILD.to_string());
    assert_eq!(stored.source_channel_id, CHANNEL.to_string());
    assert_eq!(stored.author_id, Some(AUTHOR.to_string()));
    assert_eq!(stored.route_key, "main");

    assert!(
        w.fake
            .source_message_update(CHANNEL, id, "#ETH/USDT LONG\nStop: 2950")
    );
    wait_signal(&w, id, "the edit", |s| {
        s.revision == 2 && s.content.as_deref() == Some("#ETH/USDT LONG\nStop: 2950")
    })
    .await;

    // A second channel of the source guild is collected too (no channel list).
    let other = w
        .fake
        .source_message_create(GUILD, CHANNEL_2, AUTHOR, "second channel");
    wait_signal(&w, other, "the second channel", |s| s.route_key == "second").await;

    assert!(w.fake.source_message_delete(CHANNEL, id));
    wait_signal(&w, id, "the delete", |s| {
        s.status == SignalStatus::Deleted && s.deleted_at.is_some()
    })
    .await;

    // The other guild's message was never sent, though its channel has a route.
    assert!(signal(&w.backend, foreign).await.is_none());
    assert!(!w.ingest.attempted("message.create", foreign));
    assert_eq!(
        w.ingest
            .delivered()
            .into_iter()
            .filter(|(_, m)| *m == id.to_string())
            .collect::<Vec<_>>(),
        vec![
            ev("message.create", id),
            ev("message.update", id),
            ev("message.delete", id)
        ]
    );
    bot.kill().await;
}

#[tokio::test]
async fn a_channel_list_limits_what_is_collected() {
    let w = world().await;
    let bot = start_collecting(&w, vec![CHANNEL], None).await;
    let skipped = w
        .fake
        .source_message_create(GUILD, CHANNEL_2, AUTHOR, "not listed");
    let kept = w
        .fake
        .source_message_create(GUILD, CHANNEL, AUTHOR, "listed");
    wait_signal(&w, kept, "the listed channel", |_| true).await;
    // Sent after the skipped one, delivered in order: the skipped one would be in by now.
    assert!(!w.ingest.attempted("message.create", skipped));
    assert!(signal(&w.backend, skipped).await.is_none());
    bot.kill().await;
}

/// While ingest is down (503) events wait in order; the bot is killed and restarted in the
/// middle (the spool keeps them); when ingest is back every event arrives once, in order.
#[tokio::test]
async fn events_wait_for_ingest_in_order_across_a_restart() {
    // Every task of this test's runtime runs on its thread, so the collector logs here.
    let (logs, _logging) = Logs::capture();
    let mut w = world().await;
    let spool = tempfile::tempdir().unwrap();
    let bot = start_collecting(&w, vec![], Some(spool.path())).await;
    let first = w
        .fake
        .source_message_create(GUILD, CHANNEL, AUTHOR, "first");
    wait_signal(&w, first, "the first message", |_| true).await;

    w.ingest.set_down(true);
    let mut expected = Vec::new();
    // Each step waits until a (refused) request carries every event so far, in this order:
    // each attempt sends the whole front of the queue.
    async fn step(ingest: &Ingest, expected: &mut Vec<(String, String)>, kind: &str, id: u64) {
        expected.push(ev(kind, id));
        let want = expected.clone();
        eventually(&format!("{kind} {id} queued"), WAIT, || async {
            ingest.last_attempt() == want
        })
        .await;
    }
    let a = w.fake.source_message_create(GUILD, CHANNEL, AUTHOR, "a v1");
    step(&w.ingest, &mut expected, "message.create", a).await;
    w.fake.source_message_update(CHANNEL, a, "a v2");
    step(&w.ingest, &mut expected, "message.update", a).await;
    let b = w
        .fake
        .source_message_create(GUILD, CHANNEL_2, AUTHOR, "b v1");
    step(&w.ingest, &mut expected, "message.create", b).await;
    w.fake.source_message_delete(CHANNEL, first);
    step(&w.ingest, &mut expected, "message.delete", first).await;

    let refused = w.ingest.attempts();
    bot.kill().await;
    let bot = start_collecting(&w, vec![], Some(spool.path())).await;
    // The restarted bot still holds them (from its spool) and keeps trying.
    eventually("retries after the restart", WAIT, || async {
        w.ingest.attempts() > refused + 1
    })
    .await;
    w.fake.source_message_update(CHANNEL, a, "a v3");
    step(&w.ingest, &mut expected, "message.update", a).await;

    let before = w.ingest.delivered().len();
    w.ingest.set_down(false);
    let ingest = &w.ingest;
    let want = expected.len();
    eventually("everything delivered", WAIT, || async {
        ingest.delivered().len() >= before + want
    })
    .await;
    assert_eq!(w.ingest.delivered()[before..], expected[..]);
    wait_signal(&w, a, "a's last edit", |s| {
        s.revision == 3 && s.content.as_deref() == Some("a v3")
    })
    .await;
    wait_signal(&w, first, "the delete", |s| {
        s.status == SignalStatus::Deleted
    })
    .await;
    assert!(signal(&w.backend, b).await.is_some());

    // Unreachable (connection refused) rather than failing: the same, nothing lost.
    let refusals = logs.count("ingest unreachable");
    w.ingest.stop().await;
    let c = w
        .fake
        .source_message_create(GUILD, CHANNEL, AUTHOR, "c while unreachable");
    eventually("a delivery refused while ingest is away", WAIT, || async {
        logs.count("ingest unreachable") > refusals
    })
    .await;
    w.ingest.start().await;
    wait_signal(
        &w,
        c,
        "the message sent while ingest was unreachable",
        |_| true,
    )
    .await;
    bot.kill().await;
}

/// Messages posted while the gateway is away come from history: after a resume, and after a
/// restart (the cursor is durable), each exactly once.
#[tokio::test]
async fn messages_missed_while_disconnected_are_backfilled() {
    let w = world().await;
    let bot = start_collecting(&w, vec![], None).await;
    let live = w.fake.source_message_create(GUILD, CHANNEL, AUTHOR, "live");
    wait_signal(&w, live, "the live message", |_| true).await;

    // The socket drops and the bot cannot get back for a while.
    w.fake.hold_gateway();
    w.fake.gateway_disconnect(4000);
    let missed: Vec<u64> = (0..3)
        .map(|i| {
            w.fake
                .source_message_create(GUILD, CHANNEL, AUTHOR, &format!("missed {i}"))
        })
        .collect();
    w.fake.release_gateway();
    for id in &missed {
        wait_signal(&w, *id, "a missed message", |s| {
            s.content
                .as_deref()
                .is_some_and(|c| c.starts_with("missed"))
        })
        .await;
    }
    assert_eq!(w.fake.gateway_resumes().len(), 1, "it resumed the session");
    assert_eq!(w.fake.gateway_identifies().len(), 1);

    // Down altogether: a new run backfills from the stored cursor.
    bot.kill().await;
    let while_down = w
        .fake
        .source_message_create(GUILD, CHANNEL, AUTHOR, "while the bot was down");
    let bot = start_collecting(&w, vec![], None).await;
    wait_signal(&w, while_down, "the message posted while down", |_| true).await;
    let after = w
        .fake
        .source_message_create(GUILD, CHANNEL, AUTHOR, "after");
    wait_signal(&w, after, "a live message after the restart", |_| true).await;
    let creates = w
        .ingest
        .delivered()
        .into_iter()
        .filter(|(k, _)| k == "message.create")
        .map(|(_, m)| m)
        .collect::<Vec<_>>();
    for id in missed.iter().chain([&live, &while_down, &after]) {
        assert_eq!(
            creates.iter().filter(|m| **m == id.to_string()).count(),
            1,
            "{id} sent once"
        );
    }
    bot.kill().await;
}
