//! When the bot connects to the gateway, with which intents, and member joins of the customer
//! guild forwarded as `MemberJoined`.

mod support;

use std::time::Duration;

use bot::gateway::{GatewayMode, MemberJoined};
use g3_store::{Collection, models::Signal};
use serenity::all::GatewayIntents;
use support::{eventually, start};
use testkit::discord::FakeDiscord;
use tokio::sync::mpsc;

const CUSTOMER_GUILD: u64 = 800_000_000_000_000_001;
const OTHER_GUILD: u64 = 800_000_000_000_000_002;
const MIRROR_CHANNEL: u64 = 810_000_000_000_000_001;
const WAIT: Duration = Duration::from_secs(10);

async fn next(rx: &mut mpsc::Receiver<MemberJoined>) -> MemberJoined {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a member join in time")
        .expect("the gateway is still running")
}

#[tokio::test]
async fn member_joins_of_the_customer_guild_are_forwarded() {
    let backend = support::backend().await;
    let fake = FakeDiscord::spawn().await;
    let (tx, mut rx) = mpsc::channel(16);
    let mut settings = support::settings(&backend, &fake);
    settings.guild_id = Some(CUSTOMER_GUILD);
    settings.gateway.member_joins = Some(tx);
    let bot = start(settings);
    let f = fake.clone();
    eventually("a gateway session", WAIT, || {
        let f = f.clone();
        async move { f.gateway_sessions() == 1 }
    })
    .await;
    let intents = GatewayIntents::from_bits_truncate(
        fake.gateway_identifies()[0]["intents"].as_u64().unwrap(),
    );
    assert_eq!(
        intents,
        GatewayIntents::GUILDS | GatewayIntents::GUILD_MEMBERS
    );

    assert_eq!(fake.member_join(CUSTOMER_GUILD, 77), 1);
    assert_eq!(
        next(&mut rx).await,
        MemberJoined {
            guild_id: CUSTOMER_GUILD,
            user_id: 77
        }
    );
    // Another guild's join is not forwarded: the next one through is the customer guild's.
    assert_eq!(fake.member_join(OTHER_GUILD, 78), 1);
    assert_eq!(fake.member_join(CUSTOMER_GUILD, 79), 1);
    assert_eq!(next(&mut rx).await.user_id, 79);
    assert_eq!(fake.member_join(CUSTOMER_GUILD, 80), 1);
    assert_eq!(next(&mut rx).await.user_id, 80);
    assert_eq!(fake.member_roles(CUSTOMER_GUILD, 80), Some(vec![]));
    bot.kill().await;
    assert_eq!(
        fake.gateway_sessions(),
        0,
        "stopping the bot closes the socket"
    );
}

/// Without a collector or a customer guild (or with `BOT_GATEWAY=off`) the bot stays HTTP-only.
#[tokio::test]
async fn the_gateway_stays_off_unless_something_needs_it() {
    let backend = support::backend().await;
    support::main_route(&backend, MIRROR_CHANNEL).await;
    let fake = FakeDiscord::spawn().await;
    for (i, mode) in [GatewayMode::Auto, GatewayMode::Off]
        .into_iter()
        .enumerate()
    {
        let mut settings = support::settings(&backend, &fake);
        settings.gateway.mode = mode;
        if mode == GatewayMode::Off {
            settings.guild_id = Some(CUSTOMER_GUILD);
        }
        let bot = start(settings);
        let id = format!("60{i}");
        let signal = support::live_signal(
            &id,
            &format!("signal {i}"),
            1,
            time::OffsetDateTime::now_utc(),
        );
        Collection::<Signal>::new(&backend.client)
            .upsert(&id, &signal, None)
            .await
            .unwrap();
        let f = fake.clone();
        eventually("the signal mirrored", WAIT, || {
            let f = f.clone();
            async move { f.messages(MIRROR_CHANNEL).len() == i + 1 }
        })
        .await;
        bot.kill().await;
    }
    assert_eq!(fake.gateway_connections(), 0);
}
