//! Following signals across restarts (the durable catch-up cursor) and reconciliation removing
//! mirrors from channels their route no longer names.

mod support;

use std::time::Duration;

use bot::mirror::mirror_id;
use g3_appwrite::Document;
use g3_store::{
    Collection,
    models::{Mirror, Route, Signal},
};
use serenity::all::ChannelId;
use support::{eventually, start};
use testkit::{backend::Backend, discord::FakeDiscord};
use time::OffsetDateTime;

const CH1: u64 = 910_000_000_000_000_101;
const CH2: u64 = 910_000_000_000_000_102;
const CH3: u64 = 910_000_000_000_000_103;
const WAIT: Duration = Duration::from_secs(10);

async fn route(backend: &Backend, key: &str, channels: &[u64], enabled: bool) {
    Collection::<Route>::new(&backend.client)
        .upsert(
            key,
            &Route {
                source_channel_id: format!("2{key}"),
                source_guild_id: None,
                name: key.into(),
                customer_channel_ids: channels.iter().map(u64::to_string).collect(),
                enabled: Some(enabled),
            },
            None,
        )
        .await
        .unwrap();
}

async fn put(backend: &Backend, id: &str, route: &str, content: &str, revision: i64) {
    let signal = Signal {
        source_channel_id: format!("2{route}"),
        route_key: route.into(),
        ..support::live_signal(id, content, revision, OffsetDateTime::now_utc())
    };
    Collection::<Signal>::new(&backend.client)
        .upsert(id, &signal, None)
        .await
        .unwrap();
}

fn contents(fake: &FakeDiscord, channel: u64) -> Vec<String> {
    let mut c: Vec<String> = fake
        .messages(channel)
        .into_iter()
        .map(|m| m.content)
        .collect();
    c.sort();
    c
}

async fn channel_holds(fake: &FakeDiscord, channel: u64, want: &[&str]) {
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    eventually(&format!("channel {channel} holds {want:?}"), WAIT, || {
        let got = contents(fake, channel);
        let want = want.clone();
        async move { got == want }
    })
    .await;
}

async fn stored_cursor(backend: &Backend) -> Option<OffsetDateTime> {
    bot::follow::load_cursor(&backend.client).await.unwrap()
}

async fn updated_at(backend: &Backend, id: &str) -> OffsetDateTime {
    Collection::<Signal>::new(&backend.client)
        .get(id)
        .await
        .unwrap()
        .updated_at
}

/// A restart catches up from the stored cursor: changes made while the bot was down are
/// mirrored first, and the full pass (which would find and repost a mirror deleted by hand)
/// waits for its period. Without a stored cursor the bot reconciles everything at start.
#[tokio::test]
async fn a_restart_catches_up_from_the_stored_cursor() {
    let backend = support::backend().await;
    route(&backend, "main", &[CH1], true).await;
    let fake = FakeDiscord::spawn().await;
    put(&backend, "5001", "main", "old one", 1).await;
    put(&backend, "5002", "main", "to edit", 1).await;
    let bot = start(support::settings(&backend, &fake));
    channel_holds(&fake, CH1, &["old one", "to edit"]).await;
    let newest = updated_at(&backend, "5002")
        .await
        .max(updated_at(&backend, "5001").await);
    let b = &backend;
    eventually("the cursor stored", WAIT, || async {
        stored_cursor(b).await.is_some_and(|c| c >= newest)
    })
    .await;
    bot.kill().await;

    // While the bot is down: a mirror deleted by hand, an edit, a new signal.
    let old = fake
        .messages(CH1)
        .into_iter()
        .find(|m| m.content == "old one")
        .unwrap();
    assert!(fake.delete_by_hand(CH1, old.id));
    put(&backend, "5002", "main", "edited", 2).await;
    put(&backend, "5003", "main", "new one", 1).await;

    let bot = start(support::settings(&backend, &fake));
    channel_holds(&fake, CH1, &["edited", "new one"]).await;
    // The full pass at start would have reposted "old one" right after these.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(contents(&fake, CH1), ["edited", "new one"]);
    // Stored within a tick of `keep_cursor` (waited for: the store races the sleep above).
    let newest = updated_at(&backend, "5003").await;
    eventually("the cursor moved past the new signal", WAIT, || async {
        stored_cursor(b).await.is_some_and(|c| c >= newest)
    })
    .await;
    bot.kill().await;

    // Without the cursor: everything is reconciled at start, the deleted mirror comes back.
    assert!(
        bot::state::forget(&backend.client, bot::follow::CURSOR_KEY)
            .await
            .unwrap()
    );
    let bot = start(support::settings(&backend, &fake));
    channel_holds(&fake, CH1, &["edited", "new one", "old one"]).await;
    bot.kill().await;
}

async fn mapping(backend: &Backend, signal: &str, channel: u64) -> Option<Document<Mirror>> {
    Collection::<Mirror>::new(&backend.client)
        .get_optional(&mirror_id(signal, ChannelId::new(channel)))
        .await
        .unwrap()
}

/// A channel taken out of a route loses its mirrors (messages and mappings) at the next
/// reconciliation; a disabled route's mirrors are left alone.
#[tokio::test]
async fn reconciliation_removes_mirrors_from_channels_a_route_no_longer_names() {
    let backend = support::backend().await;
    route(&backend, "main", &[CH1, CH2], true).await;
    route(&backend, "paused", &[CH3], true).await;
    let fake = FakeDiscord::spawn().await;
    put(&backend, "5101", "main", "kept here", 1).await;
    put(&backend, "5102", "paused", "paused route", 1).await;
    let mut settings = support::settings(&backend, &fake);
    settings.reconcile_every = Duration::from_millis(300);
    let bot = start(settings);
    channel_holds(&fake, CH1, &["kept here"]).await;
    channel_holds(&fake, CH2, &["kept here"]).await;
    channel_holds(&fake, CH3, &["paused route"]).await;

    route(&backend, "main", &[CH1], true).await;
    route(&backend, "paused", &[], false).await;
    channel_holds(&fake, CH2, &[]).await;
    let b = &backend;
    eventually("the mapping removed", WAIT, || async {
        mapping(b, "5101", CH2).await.is_none()
    })
    .await;

    // Two more passes (each checks the CH1 mirror still exists) leave the rest alone.
    let kept = fake.messages(CH1)[0].id;
    let checks = |fake: &FakeDiscord| {
        fake.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with(&format!("/messages/{kept}")))
            .count()
    };
    let seen = checks(&fake);
    let f = &fake;
    eventually("two more reconciliation passes", WAIT, || async {
        checks(f) >= seen + 2
    })
    .await;
    assert_eq!(contents(&fake, CH1), ["kept here"]);
    assert_eq!(contents(&fake, CH3), ["paused route"]);
    assert!(mapping(&backend, "5101", CH1).await.is_some());
    assert!(mapping(&backend, "5102", CH3).await.is_some());
    bot.kill().await;
}
