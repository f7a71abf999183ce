//! Bot rows against the fake Discord, Appwrite being the in-process emulator on a SQLite file.
//!
//! - latency and memory: the real bot binary as a child process ([`process`]); a signal written
//!   with the server key → the mirror's create request reaching the fake (timestamped by the
//!   fake's request log), one write at a time, no rate limit; the bot's own resident memory
//!   idle and after those writes;
//! - burst: the whole bot in-process (`bot::run`, serenity's rate limiter on, the fake behind
//!   its TLS proxy): a backlog of signals for one channel under a scripted 5 messages / 5 s
//!   channel limit, mirrored oldest-first: complete, in order, no 429 caused by our own pacing.

mod process;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bot::{Order, RetryPolicy, Secret, Settings};
use g3_store::{
    Collection,
    models::{Route, Signal},
    schema::TEAM_STAFF,
};
use testkit::{
    backend::Backend,
    discord::{ChannelLimit, FakeDiscord, RecordedRequest},
};

use crate::{
    row,
    stats::Samples,
    table::{Goal, Row},
};

const CHANNEL: u64 = 920_000_000_000_000_001;
const STAFF_EMAIL: &str = "bot-bench@bench.local";
const STAFF_PASSWORD: &str = "bot bench password";

struct Stack {
    backend: Backend,
    fake: FakeDiscord,
    dir: tempfile::TempDir,
}

async fn stack() -> anyhow::Result<Stack> {
    let dir = tempfile::tempdir()?;
    let backend = testkit::backend::backend_on_disk(dir.path()).await;
    let user = backend
        .client
        .users()
        .create("bot-bench", STAFF_EMAIL, Some(STAFF_PASSWORD), Some("bot"))
        .await?;
    backend
        .client
        .teams()
        .add_member_if_absent(TEAM_STAFF, &user.id, &[] as &[&str])
        .await?;
    Collection::<Route>::new(&backend.client)
        .upsert(
            "bench",
            &Route {
                source_channel_id: "200".into(),
                source_guild_id: None,
                name: "Bench".into(),
                customer_channel_ids: vec![CHANNEL.to_string()],
                enabled: Some(true),
            },
            None,
        )
        .await?;
    Ok(Stack {
        backend,
        fake: FakeDiscord::spawn().await,
        dir,
    })
}

fn start(
    stack: &Stack,
    order: Order,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let settings = Settings {
        discord_token: Secret::new("bench-token"),
        appwrite: stack.backend.client_config(),
        staff_email: STAFF_EMAIL.into(),
        staff_password: Secret::new(STAFF_PASSWORD),
        order,
        discord_timeout: Duration::from_secs(10),
        retry: RetryPolicy::default(),
        discord_client: Some(stack.fake.client(Duration::from_secs(10))),
        reconcile_every: Duration::from_secs(3600),
        verify_window: Duration::from_secs(24 * 3600),
        retry_failed_after: Duration::from_secs(1),
        guild_id: None,
        plan_roles: Default::default(),
        role_timing: Default::default(),
        gateway: Default::default(),
        discord_api_url: None,
        lease: bot::LeaseSettings::default(),
        health_bind: None,
    };
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        if let Err(e) = bot::run(settings, async {
            let _ = rx.await;
        })
        .await
        {
            eprintln!("bot stopped with an error: {e:#}");
        }
    });
    (stop, task)
}

fn signal(id: &str, content: String, posted_at: time::OffsetDateTime) -> Signal {
    Signal {
        content: Some(content),
        ..Signal::live(("100", "200", id), "bench", posted_at)
    }
}

fn is_create(r: &RecordedRequest) -> bool {
    r.method == "POST" && r.path.ends_with("/messages")
}

fn body_content(r: &RecordedRequest) -> Option<&str> {
    r.body.as_ref()?.get("content")?.as_str()
}

/// Polls (bounded) for the first create request at or after `from` whose content holds `needle`.
async fn arrival(
    fake: &FakeDiscord,
    from: usize,
    needle: &str,
    timeout: Duration,
) -> Option<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        let found = fake
            .requests()
            .into_iter()
            .skip(from)
            .find(|r| is_create(r) && body_content(r).is_some_and(|c| c.contains(needle)))
            .map(|r| r.at);
        if found.is_some() || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

pub use process::default_binary;
pub(crate) use process::{Memory, memory_of, trouble_of};

/// How long the bot is left with nothing to do before its idle memory is read.
const IDLE: Duration = Duration::from_secs(5);
const HOW_LATENCY: &str = "the bot binary as a child process (DISCORD_API_URL = the fake over \
    plain http); one signal upserted at a time with the server key; timed from before the \
    write to the fake's log of the create-message request";
const HOW_RSS: &str = "VmRSS of the bot binary (a child process, not the bench) from \
    /proc/<pid>/status; idle = signed in, following, warm-up signal mirrored, then 5 s with \
    nothing to do; peak = VmHWM";
const HOW_BURST: &str = "bot::run in the bench process, the fake behind its TLS proxy; \
    samples = each create-message request's time since the bot started";

/// Write → mirror latency of the bot binary, and its memory idle and after those writes.
pub async fn latency_rows(writes: usize, bin: &Path) -> anyhow::Result<Vec<Row>> {
    let stack = stack().await?;
    let mut bot = process::BotProcess::spawn(bin, &stack)?;
    let signals = Collection::<Signal>::new(&stack.backend.client);
    let base = time::OffsetDateTime::now_utc();
    // Warm-up: the bot is following once its first mirror arrives.
    signals
        .upsert(
            "warmup",
            &signal("warmup", "bench warm-up".into(), base),
            None,
        )
        .await?;
    if arrival(&stack.fake, 0, "bench warm-up", Duration::from_secs(30))
        .await
        .is_none()
    {
        anyhow::bail!(
            "the bot never mirrored the warm-up signal: {}",
            bot.trouble()
        );
    }
    eprintln!("bot: {} s idle, then its memory ...", IDLE.as_secs());
    tokio::time::sleep(IDLE).await;
    let idle = bot.memory()?;

    eprintln!("bot: {writes} signals written one at a time, write → mirror request ...");
    let mut samples = Samples::with_capacity(writes);
    let started = Instant::now();
    for i in 0..writes {
        let id = format!("lat{i}");
        let needle = format!("bench latency {i} ");
        let from = stack.fake.requests().len();
        let t = Instant::now();
        signals
            .upsert(
                &id,
                &signal(
                    &id,
                    format!("{needle}end"),
                    base + time::Duration::seconds(i as i64 + 1),
                ),
                None,
            )
            .await?;
        match arrival(&stack.fake, from, &needle, Duration::from_secs(10)).await {
            Some(at) => samples.record(at.saturating_duration_since(t)),
            None => samples.errors += 1,
        }
    }
    samples.wall = started.elapsed();
    let after = bot.memory()?;
    if samples.errors > 0 {
        eprintln!(
            "bot: {} writes never mirrored; {}",
            samples.errors,
            bot.trouble()
        );
    }
    bot.stop().await;
    let p50 = samples.percentile(50.0);
    let rss_row = |when: String, m: &process::Memory| {
        Row::measured(
            format!(
                "bot (process): VmRSS {when} = {:.1} MiB (peak {:.1} MiB)",
                m.rss_kb as f64 / 1024.0,
                m.peak_kb as f64 / 1024.0
            ),
            "<= 20 MiB".into(),
            m.rss_kb <= 20 * 1024,
        )
        .how(HOW_RSS)
    };
    Ok(vec![
        row(
            format!(
                "bot (process): signal write → mirror request at fake Discord ({writes} writes, no limit)"
            ),
            1,
            &mut samples,
            Goal::MaxP99And {
                max_p99: Duration::from_millis(60),
                other: "p50 <= 20 ms".into(),
                other_met: p50 <= Duration::from_millis(20),
            },
        )
        .how(HOW_LATENCY),
        rss_row("idle".into(), &idle),
        rss_row(format!("after the {writes} writes"), &after),
    ])
}

pub async fn burst_row(size: usize) -> anyhow::Result<Row> {
    let stack = stack().await?;
    let limit = ChannelLimit {
        limit: 5,
        window: Duration::from_secs(5),
    };
    stack.fake.set_channel_limit(Some(limit));
    let signals = Collection::<Signal>::new(&stack.backend.client);
    let base = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    eprintln!("bot: {size}-signal backlog for one channel under 5 messages / 5 s ...");
    for i in 0..size {
        let id = format!("burst{i:05}");
        signals
            .upsert(
                &id,
                &signal(
                    &id,
                    format!("bench burst {i:05}"),
                    base + time::Duration::seconds(i as i64),
                ),
                None,
            )
            .await?;
    }
    let started = Instant::now();
    let (stop, task) = start(&stack, Order::OldestFirst);
    // The channel limit alone needs (size/5 - 1) windows; allow a generous margin past that.
    let floor = limit.window * (size.div_ceil(5).saturating_sub(1) as u32);
    let deadline = started + floor + Duration::from_secs(60);
    while stack.fake.messages(CHANNEL).len() < size && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    task.await.context("bot task")?;

    let messages = stack.fake.messages(CHANNEL);
    let requests = stack.fake.requests();
    let own_429s = requests.iter().filter(|r| r.over_limit).count();
    let expected: Vec<String> = (0..size).map(|i| format!("bench burst {i:05}")).collect();
    let got: Vec<String> = messages.iter().map(|m| m.content.clone()).collect();
    let complete = got.len() == size;
    let ordered = got == expected;
    let mut samples = Samples::with_capacity(size);
    for r in requests.iter().filter(|r| is_create(r) && r.status < 300) {
        samples.record(r.at.saturating_duration_since(started));
    }
    samples.wall = elapsed;
    samples.errors = (size.abs_diff(got.len()) + own_429s) as u64;
    eprintln!(
        "bot burst: {} of {size} mirrored in {:.1} s (floor {:.0} s), in order: {ordered}, \
         429s from the channel limit: {own_429s}",
        got.len(),
        elapsed.as_secs_f64(),
        floor.as_secs_f64()
    );
    Ok(row(
        format!(
            "bot: {size}-signal burst, 1 channel at 5/5 s, start → mirrored \
             ({:.1} s, {} in order, {own_429s} own 429s)",
            elapsed.as_secs_f64(),
            if ordered { "all" } else { "NOT" },
        ),
        1,
        &mut samples,
        Goal::MaxP99And {
            max_p99: floor + Duration::from_secs(10),
            other: "complete, ordered, 0 own 429s".into(),
            other_met: complete && ordered && own_429s == 0,
        },
    )
    .how(HOW_BURST))
}
