//! Several bots on one backend: one leads (mirrors), the others stand by; a crashed leader is
//! replaced within the lease's ttl, a stopped one at once, a stalled one stops before its
//! successor starts. Also the start-up check, `DISCORD_API_URL` and `/healthz`.

mod support;

use std::{
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use bot::Settings;
use g3_appwrite::Document;
use g3_store::{
    Collection,
    lease::{self, Lease, Record},
    models::Signal,
};
use support::{Bot, eventually, live_signal};
use testkit::wait::wait_for;
use testkit::{backend::Backend, discord::FakeDiscord};
use time::macros::datetime;

const CHANNEL: u64 = 920_000_000_000_000_001;

async fn setup() -> (Backend, FakeDiscord) {
    let backend = support::backend().await;
    support::main_route(&backend, CHANNEL).await;
    (backend, FakeDiscord::spawn().await)
}

async fn put(backend: &Backend, id: &str, content: &str) {
    let s = live_signal(id, content, 1, datetime!(2026-03-01 10:00 UTC));
    Collection::<Signal>::new(&backend.client)
        .upsert(id, &s, None)
        .await
        .unwrap();
}

/// The newest generation of the bots' lease, read as a standby would.
async fn newest_lease(backend: &Backend) -> Document<Record> {
    let observer = lease::Config {
        name: "bot".into(),
        holder: "observer".into(),
        timing: lease::Timing::default(),
        hold_renewals: None,
    };
    Lease::new(&backend.client, observer)
        .newest()
        .await
        .unwrap()
        .expect("a lease")
}

fn lease_bot(backend: &Backend, fake: &FakeDiscord, holder: &str) -> Settings {
    support::fast_lease(support::settings(backend, fake), holder)
}

async fn wait_role(bot: &Bot, role: &str, within: Duration) {
    let status = wait_for(role, within, || async {
        let (status, got) = bot.health().await;
        (got == role).then_some(status)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200, "{role}");
}

/// Waits until exactly one of `bots` leads; returns its index.
async fn leader_of(bots: &[&Bot], within: Duration) -> usize {
    wait_for("a leader", within, || async {
        let mut leaders = Vec::new();
        for (i, b) in bots.iter().enumerate() {
            if b.role().await == "leader" {
                leaders.push(i);
            }
        }
        assert!(leaders.len() <= 1, "two leaders at once: {leaders:?}");
        leaders.first().copied()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn messages(fake: &FakeDiscord, n: usize, within: Duration) {
    let f = fake.clone();
    eventually(&format!("{n} mirrored"), within, || {
        let f = f.clone();
        async move { f.messages(CHANNEL).len() >= n }
    })
    .await;
}

#[tokio::test]
async fn only_the_leader_mirrors_and_a_crashed_one_is_replaced() {
    let (backend, fake) = setup().await;
    let a = Bot::start(lease_bot(&backend, &fake, "a")).await;
    let b = Bot::start(lease_bot(&backend, &fake, "b")).await;
    let first = leader_of(&[&a, &b], Duration::from_secs(10)).await;
    for i in 0..3 {
        put(&backend, &format!("510{i}"), &format!("signal {i}")).await;
    }
    messages(&fake, 3, Duration::from_secs(10)).await;
    let (leader, standby) = if first == 0 { (a, b) } else { (b, a) };
    assert_eq!(standby.role().await, "standby");

    // kill -9: no release; signals keep coming while nobody leads.
    let killed = Instant::now();
    leader.running.crash().await;
    put(&backend, "5103", "during the failover").await;
    wait_role(&standby, "leader", Duration::from_secs(15)).await;
    let took = killed.elapsed();
    // A standby waits one ttl (3 s) from when it first saw the lease's last change.
    assert!(took < Duration::from_secs(15), "took over after {took:?}");
    put(&backend, "5104", "after the failover").await;
    messages(&fake, 5, Duration::from_secs(10)).await;
    let contents: Vec<String> = fake
        .messages(CHANNEL)
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(contents.len(), 5, "{contents:?}");
    // Exactly one create per signal: the standby never posted while the leader lived, and the
    // new leader did not post again what the old one had.
    assert_eq!(fake.creates().len(), 5, "{contents:?}");
    standby.running.kill().await;
}

#[tokio::test]
async fn a_graceful_stop_hands_the_lease_over_at_once() {
    let (backend, fake) = setup().await;
    let slow = |holder: &str| Settings {
        lease: bot::LeaseSettings {
            name: "bot".into(),
            holder: holder.into(),
            timing: g3_store::lease::Timing::new(Duration::from_secs(20), Duration::from_secs(1))
                .unwrap(),
            hold_renewals: None,
        },
        ..support::settings(&backend, &fake)
    };
    let a = Bot::start(slow("a")).await;
    wait_role(&a, "leader", Duration::from_secs(10)).await;
    let b = Bot::start(slow("b")).await;
    wait_role(&b, "standby", Duration::from_secs(10)).await;
    put(&backend, "5200", "before").await;
    messages(&fake, 1, Duration::from_secs(10)).await;
    let stopped = Instant::now();
    a.running.kill().await;
    wait_role(&b, "leader", Duration::from_secs(15)).await;
    let took = stopped.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "released, yet the standby waited {took:?} (ttl 20 s)"
    );
    put(&backend, "5201", "after").await;
    messages(&fake, 2, Duration::from_secs(10)).await;
    assert_eq!(fake.creates().len(), 2);
    b.running.kill().await;
}

#[tokio::test]
async fn a_stalled_leader_stops_before_the_standby_starts() {
    let (backend, fake) = setup().await;
    let hold = Arc::new(AtomicBool::new(false));
    let mut settings = lease_bot(&backend, &fake, "stalled");
    settings.lease.hold_renewals = Some(hold.clone());
    let a = Bot::start(settings).await;
    wait_role(&a, "leader", Duration::from_secs(10)).await;
    let b = Bot::start(lease_bot(&backend, &fake, "successor")).await;
    wait_role(&b, "standby", Duration::from_secs(10)).await;

    // Renewals stop; Appwrite and Discord stay reachable for the stalled leader.
    hold.store(true, std::sync::atomic::Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut a_stopped, mut b_started) = (None, None);
    while b_started.is_none() {
        assert!(Instant::now() < deadline, "no takeover");
        if a_stopped.is_none() && a.role().await != "leader" {
            a_stopped = Some(Instant::now());
        }
        if b.role().await == "leader" {
            b_started = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (a_stopped, b_started) = (
        a_stopped.expect("the stalled leader never stopped"),
        b_started.unwrap(),
    );
    assert!(
        a_stopped < b_started,
        "the old leader stopped {:?} after the new one started",
        a_stopped - b_started
    );
    put(&backend, "5300", "after the stall").await;
    messages(&fake, 1, Duration::from_secs(10)).await;
    // The stalled one re-enters as a standby and never takes the lease back while b renews:
    // watched over two of b's renewals.
    wait_role(&a, "standby", Duration::from_secs(10)).await;
    let held = newest_lease(&backend).await;
    assert_eq!(held.data.holder, "successor");
    let (backend_ref, held_ref) = (&backend, &held);
    eventually(
        "two more renewals by the new leader",
        Duration::from_secs(10),
        || async move {
            let newest = newest_lease(backend_ref).await;
            assert_eq!(
                newest.id, held_ref.id,
                "the lease changed hands: {newest:?}"
            );
            newest.data.renewals >= held_ref.data.renewals + 2
        },
    )
    .await;
    assert_eq!(fake.creates().len(), 1);
    assert_eq!(b.role().await, "leader");
    assert_eq!(a.role().await, "standby");
    a.running.kill().await;
    b.running.kill().await;
}

#[tokio::test]
async fn a_standalone_bot_reaches_discord_at_discord_api_url() {
    let (backend, fake) = setup().await;
    let settings = Settings {
        discord_client: None,
        discord_api_url: Some(fake.base_url()),
        ..support::settings(&backend, &fake)
    };
    let bot = Bot::start(settings).await;
    put(&backend, "5400", "over plain http").await;
    messages(&fake, 1, Duration::from_secs(15)).await;
    assert_eq!(fake.messages(CHANNEL)[0].content, "over plain http");
    assert_eq!(bot.health().await, (200, "leader".into()));
    bot.running.kill().await;
}

#[tokio::test]
async fn a_refused_token_stops_the_bot_and_says_so() {
    let (backend, fake) = setup().await;
    fake.require_bot_token(Some("the-right-token"));
    let settings = support::settings(&backend, &fake);
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        bot::run(settings, std::future::pending()),
    )
    .await
    .expect("a refused token must end the run");
    let err = format!("{:#}", result.unwrap_err());
    assert!(
        err.contains("DISCORD_BOT_TOKEN was refused by Discord (401)"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_discord_is_retried_and_health_says_starting() {
    let (backend, fake) = setup().await;
    fake.set_down(true);
    let bot = Bot::start(support::settings(&backend, &fake)).await;
    eventually("health says starting", Duration::from_secs(10), || async {
        bot.health().await == (503, "starting".into())
    })
    .await;
    // It keeps retrying (and saying so) rather than starting work or giving up.
    let watch_until = Instant::now() + Duration::from_millis(700);
    while Instant::now() < watch_until {
        assert_eq!(bot.health().await, (503, "starting".into()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(fake.messages(CHANNEL).is_empty());
    fake.set_down(false);
    wait_role(&bot, "leader", Duration::from_secs(15)).await;
    put(&backend, "5500", "after the outage").await;
    messages(&fake, 1, Duration::from_secs(10)).await;
    bot.running.kill().await;
}

/// The `bot` binary: settings from the environment, Discord at `DISCORD_API_URL`, `/healthz`;
/// SIGTERM drains, stores the cursor under the lease's generation, releases the lease and
/// exits 0.
#[tokio::test]
async fn the_binary_drains_on_sigterm_and_releases_its_lease() {
    let (backend, fake) = setup().await;
    let config = backend.client_config();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let health: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bot"))
        .current_dir(dir.path())
        .env_clear()
        .env("APPWRITE_ENDPOINT", &config.endpoint)
        .env("APPWRITE_PROJECT_ID", &config.project_id)
        .env(
            "APPWRITE_API_KEY",
            config.api_key.as_ref().unwrap().expose(),
        )
        .env("DISCORD_BOT_TOKEN", "test-token")
        .env("DISCORD_API_URL", fake.base_url())
        .env("BOT_STAFF_EMAIL", support::STAFF_EMAIL)
        .env("BOT_STAFF_PASSWORD", support::STAFF_PASSWORD)
        .env("BOT_HEALTH_BIND", health.to_string())
        .env("BOT_INSTANCE_ID", "binary")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually("the binary leads", Duration::from_secs(20), || {
        assert!(child.try_wait().unwrap().is_none(), "the binary exited");
        async move { support::health_of(health).await == (200, "leader".into()) }
    })
    .await;
    put(&backend, "5600", "from the binary").await;
    messages(&fake, 1, Duration::from_secs(15)).await;

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("no exit within 15 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let lease = newest_lease(&backend).await;
    assert_eq!(lease.id, lease::document_id("bot", 1));
    assert!(lease.data.released, "{lease:?}");
    assert_eq!(lease.data.holder, "binary");
    let cursor = Collection::<bot::state::Entry>::new(&backend.client)
        .get(bot::follow::CURSOR_KEY)
        .await
        .unwrap()
        .data;
    assert_eq!(cursor.fence, Some(1), "{cursor:?}");
}

/// Writes that matter refuse to go behind a newer leader's: the cursor stored under generation
/// 5 is not overwritten under generation 3, nor by a leader whose lease is gone.
#[tokio::test]
async fn the_cursor_is_fenced_by_the_lease_generation() {
    let backend = support::backend().await;
    let newer = g3_store::lease::Fence::unfenced(5);
    let older = g3_store::lease::Fence::unfenced(3);
    assert!(
        bot::state::save_fenced(&backend.client, "k", "new", &newer)
            .await
            .unwrap()
    );
    assert!(
        !bot::state::save_fenced(&backend.client, "k", "old", &older)
            .await
            .unwrap()
    );
    assert_eq!(
        bot::state::load(&backend.client, "k")
            .await
            .unwrap()
            .as_deref(),
        Some("new")
    );
}
