//! Tracker rows, Appwrite being the in-process emulator on a SQLite file and the exchange the
//! fake (`testkit::exchange`) as Binance spot:
//!
//! - load and memory: the real tracker binary as a child process ([`process`]) following
//!   1,000 open signals over 200 symbols while the fake streams 10,000 trades/s; each signal's
//!   decisive trade (the one reaching its entry) is timed from the moment the fake sends it to
//!   the moment the bench's Realtime subscription on `signal_outcomes` (as a staff user, as the
//!   web service follows it) delivers the document showing the entry. Its resident memory idle
//!   and after the load;
//! - recompute ([`recompute`]): `tracker::recompute::all` over 10,000 stored outcomes and the
//!   price minutes they were judged on.

pub(crate) mod process;
mod recompute;
mod web;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use g3_appwrite::{Credentials, Follow, Follower, RealtimeEvent};
use g3_outcomes::Outcome;
use g3_store::{
    Collection,
    models::{Side, Signal, SignalOutcome},
    schema::TEAM_STAFF,
};
use rand::Rng as _;
use testkit::backend::Backend;
use testkit::exchange::{FakeExchange, FakeVenue, RecordedTrade};
use tokio::sync::{mpsc, oneshot};

use crate::{
    row,
    stats::Samples,
    table::{Goal, Row},
};

pub use process::default_binary;
pub use recompute::{Recompute, recompute_row};

const STAFF_EMAIL: &str = "tracker-bench@bench.local";
const STAFF_PASSWORD: &str = "tracker bench password";
const VENUE: FakeVenue = FakeVenue::BinanceSpot;
/// How long the tracker is left with nothing to do before its idle memory is read.
const IDLE: Duration = Duration::from_secs(5);
/// Background trades before the first decisive one, so the tracker is at its working pace.
const WARM_UP: Duration = Duration::from_secs(2);
/// The decisive trades are spread evenly over this long: over a minute, so the run crosses a
/// whole minute, when every symbol hands over its minute of prices to be stored.
const SPREAD: Duration = Duration::from_secs(61);
/// Background prices stay strictly between the highest entry and the targets.
const QUIET: (f64, f64) = (96.0, 104.0);
const TARGET: f64 = 150.0;

const HOW_LOAD: &str = "the tracker binary as a child process (TRACKER_BINANCE_SPOT_* = the fake); \
    the fake streams random trades inside every signal's quiet band round-robin over the \
    symbols at the stated rate, and one trade at a time reaches one signal's entry; timed from \
    just before the fake hands that trade to its WebSocket writer to the bench's Realtime \
    subscription on signal_outcomes (staff user, another process than the tracker) delivering \
    the document that shows the entry at the right price";
const HOW_SSE: &str = "the same run and trades; web::run in the bench process on the same \
    emulator (its upstream following signals and signal_outcomes as a service user), one paid \
    member's /feed/stream read over a plain socket; timed from just before the fake hands the \
    decisive trade to its WebSocket writer to reading the outcome event whose status says \
    \"Entered at\" for that signal";
const HOW_RSS: &str = "VmRSS of the tracker binary (a child process, not the bench) from \
    /proc/<pid>/status; idle = leading, every signal judged and its symbol subscribed, then \
    5 s without trades; peak = VmHWM";

/// The size of the load row.
pub struct Load {
    pub signals: usize,
    pub symbols: usize,
    pub trades_per_sec: u32,
    /// Decisive trades timed (at most one per signal).
    pub events: usize,
}

pub(crate) struct Stack {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
}

/// An emulator on disk with the staff service user the tracker signs in as.
pub(crate) async fn stack() -> anyhow::Result<Stack> {
    let dir = tempfile::tempdir()?;
    let backend = testkit::backend::backend_on_disk(dir.path()).await;
    let user = backend
        .client
        .users()
        .create(
            "tracker-bench",
            STAFF_EMAIL,
            Some(STAFF_PASSWORD),
            Some("tracker"),
        )
        .await?;
    backend
        .client
        .teams()
        .add_member_if_absent(TEAM_STAFF, &user.id, &[] as &[&str])
        .await?;
    Ok(Stack { backend, dir })
}

/// Symbol `i` of the bench: `B000USDT`, `B001USDT`, ...
pub(crate) fn symbol(i: usize) -> String {
    format!("B{i:03}USDT")
}

fn pair(i: usize) -> String {
    format!("B{i:03}/USDT")
}

/// Signal `k` of a symbol waits for the price to fall to its entry: 95, 94, ... Each symbol's
/// signals are entered highest entry first, so a decisive trade enters exactly one signal.
fn entry(k: usize) -> f64 {
    95.0 - k as f64
}

fn signal_id(symbol: usize, k: usize) -> String {
    format!("trk{symbol:03}x{k}")
}

/// Rows (a) and (c): decisive trade → outcome update under load; idle and loaded memory.
pub async fn load_rows(load: &Load, bin: &Path) -> anyhow::Result<Vec<Row>> {
    let per_symbol = load.signals.div_ceil(load.symbols.max(1));
    anyhow::ensure!(
        per_symbol <= 10,
        "at most 10 signals per symbol (entries 95 down to 86 stay above every stop)"
    );
    let stack = stack().await?;
    let fake = FakeExchange::spawn().await;
    for s in 0..load.symbols {
        fake.list(VENUE, &symbol(s), "TRADING");
    }
    eprintln!(
        "tracker: seeding {} signals over {} symbols ...",
        load.signals, load.symbols
    );
    let posted = time::OffsetDateTime::now_utc() - time::Duration::seconds(10);
    let ids: Vec<(usize, usize)> = (0..load.signals)
        .map(|i| (i % load.symbols, i / load.symbols))
        .collect();
    seed_signals(&stack.backend, &ids, posted).await?;

    let mut tracker = process::TrackerProcess::spawn(
        bin,
        &process::Env {
            backend: &stack.backend,
            fake: &fake,
            staff_email: STAFF_EMAIL,
            staff_password: STAFF_PASSWORD,
            dir: stack.dir.path(),
        },
    )?;
    eprintln!("tracker: waiting until every signal is judged and every symbol subscribed ...");
    let started = Instant::now();
    if let Err(e) = ready(&stack.backend, &fake, load, Duration::from_secs(180)).await {
        anyhow::bail!("{e}: {}", tracker.trouble());
    }
    eprintln!(
        "tracker (pid {}): ready after {:.1} s; {} s idle, then its memory ...",
        tracker.pid(),
        started.elapsed().as_secs_f64(),
        IDLE.as_secs()
    );
    tokio::time::sleep(IDLE).await;
    let idle = tracker.memory()?;

    eprintln!("tracker: starting web and a member's live stream ...");
    let mut web = web::start(&stack.backend).await?;

    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let (connected_tx, connected_rx) = oneshot::channel();
    let follower = Follower::new(
        stack.backend.client.clone(),
        Credentials::new(STAFF_EMAIL, STAFF_PASSWORD),
        [Collection::<SignalOutcome>::channel()],
    );
    let mut seen = Seen {
        tx: seen_tx,
        connected: Some(connected_tx),
    };
    let observer = tokio::spawn(async move { follower.run(&mut seen).await });
    tokio::time::timeout(Duration::from_secs(30), connected_rx)
        .await
        .context("the Realtime subscription on signal_outcomes never connected")??;

    let events = load.events.min(ids.len());
    eprintln!(
        "tracker: {} trades/s over {} symbols, {events} decisive trades ...",
        load.trades_per_sec, load.symbols
    );
    let sent = publish(&fake, load, &ids[..events]).await;
    // Everything decided is on its way; wait (bounded) for the last documents.
    let mut seen: HashMap<String, (Instant, Option<f64>)> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.len() < events {
        match tokio::time::timeout_at(deadline, seen_rx.recv()).await {
            Ok(Some((id, at, price))) => {
                seen.entry(id).or_insert((at, price));
            }
            _ => break,
        }
    }
    observer.abort();
    let mut streamed: HashMap<String, Instant> = HashMap::new();
    while streamed.len() < events {
        match tokio::time::timeout_at(deadline, web.entered.recv()).await {
            Ok(Some((id, at))) => {
                streamed.entry(id).or_insert(at);
            }
            _ => break,
        }
    }
    web.stop().await;
    let after = tracker.memory()?;
    let metrics = tracker
        .metrics()
        .await
        .unwrap_or_else(|e| format!("metrics unread: {e:#}"));
    tracker.stop().await;

    let mut samples = Samples::with_capacity(events);
    for (id, k, at) in &sent.decisive {
        match seen.get(id) {
            Some((seen_at, Some(price))) if *price == entry(*k) => {
                samples.record(seen_at.saturating_duration_since(*at));
            }
            _ => samples.errors += 1,
        }
    }
    samples.wall = sent.elapsed;
    let mut sse = Samples::with_capacity(events);
    for (id, _, at) in &sent.decisive {
        match streamed.get(id) {
            Some(seen_at) => sse.record(seen_at.saturating_duration_since(*at)),
            None => sse.errors += 1,
        }
    }
    sse.wall = sent.elapsed;
    let rate = sent.trades as f64 / sent.elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "tracker: {} trades sent in {:.1} s ({rate:.0}/s); {} of {events} entries seen; tracker's counters:\n{metrics}",
        sent.trades,
        sent.elapsed.as_secs_f64(),
        seen.len(),
    );
    let mib = |kb: u64| kb as f64 / 1024.0;
    Ok(vec![
        row(
            format!(
                "tracker (process): decisive trade → signal_outcomes update seen on Realtime \
                 ({} open signals, {} symbols, {rate:.0} trades/s sent)",
                load.signals, load.symbols
            ),
            1,
            &mut samples,
            Goal::MaxP99(Duration::from_millis(50)),
        )
        .how(HOW_LOAD),
        row(
            format!(
                "tracker + web: decisive trade → outcome SSE event at a member's stream \
                 ({} open signals, {} symbols, {rate:.0} trades/s sent)",
                load.signals, load.symbols
            ),
            1,
            &mut sse,
            Goal::MaxP99(Duration::from_millis(100)),
        )
        .how(HOW_SSE),
        Row::measured(
            format!(
                "tracker (process): VmRSS idle = {:.1} MiB ({} open signals, {} symbols)",
                mib(idle.rss_kb),
                load.signals,
                load.symbols
            ),
            "<= 30 MiB".into(),
            idle.rss_kb <= 30 * 1024,
        )
        .how(HOW_RSS),
        Row {
            goal: Goal::None,
            ..Row::measured(
                format!(
                    "tracker (process): VmRSS after the load = {:.1} MiB (peak {:.1} MiB)",
                    mib(after.rss_kb),
                    mib(after.peak_kb)
                ),
                String::new(),
                true,
            )
            .how(HOW_RSS)
        },
    ])
}

/// Upserts the signals, `(symbol, k)` each, with the server key, 8 at a time.
async fn seed_signals(
    backend: &Backend,
    ids: &[(usize, usize)],
    posted: time::OffsetDateTime,
) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in ids.chunks(ids.len().div_ceil(8).max(1)) {
        let chunk = chunk.to_vec();
        let client = backend.client.clone();
        tasks.spawn(async move {
            let signals = Collection::<Signal>::new(&client);
            for (s, k) in chunk {
                let id = signal_id(s, k);
                let signal = Signal {
                    content: Some(format!("{} long {}", pair(s), entry(k))),
                    pair: Some(pair(s)),
                    side: Some(Side::Long),
                    entries: vec![entry(k)],
                    targets: vec![TARGET],
                    stop: Some(80.0 - k as f64),
                    ..Signal::live(("100", "200", &id), "bench", posted)
                };
                signals.upsert(&id, &signal, None).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("seeding task")??;
    }
    Ok(())
}

/// Every symbol subscribed at the fake and every signal's outcome written (waiting for entry).
async fn ready(
    backend: &Backend,
    fake: &FakeExchange,
    load: &Load,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let outcomes = Collection::<SignalOutcome>::new(&backend.client);
    loop {
        let subscribed = (0..load.symbols)
            .filter(|s| fake.subscribed(VENUE, &symbol(*s)))
            .count();
        let written = if subscribed == load.symbols {
            outcomes.list_all(&[], 100).await?.len()
        } else {
            0
        };
        if subscribed == load.symbols && written >= load.signals {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "after {} s: {subscribed} of {} symbols subscribed, {written} of {} outcomes written",
                limit.as_secs(),
                load.symbols,
                load.signals
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Realtime events on `signal_outcomes` that show an entry: `(id, when received, entry price)`.
struct Seen {
    tx: mpsc::UnboundedSender<(String, Instant, Option<f64>)>,
    connected: Option<oneshot::Sender<()>>,
}

impl Follow for Seen {
    async fn connected(&mut self, _reconnected: bool) {
        if let Some(c) = self.connected.take() {
            let _ = c.send(());
        }
    }

    async fn event(&mut self, event: RealtimeEvent) {
        let at = Instant::now();
        let Ok(doc) = event.document::<SignalOutcome>() else {
            return;
        };
        if doc.data.status != "entered" {
            return;
        }
        let price = serde_json::from_str::<Outcome>(&doc.data.outcome)
            .ok()
            .and_then(|o| o.entry.map(|e| e.price));
        let _ = self.tx.send((doc.id, at, price));
    }
}

/// What the publisher sent: every trade counted, and each decisive one with its signal and
/// the moment just before it was handed to the fake.
struct Sent {
    trades: u64,
    elapsed: Duration,
    decisive: Vec<(String, usize, Instant)>,
}

/// Streams `load.trades_per_sec` trades round-robin over the symbols (prices inside every
/// signal's quiet band) for [`WARM_UP`] + [`SPREAD`] + 1 s, and one decisive trade per entry
/// of `decisive`, evenly spread over [`SPREAD`] after the warm-up.
async fn publish(fake: &FakeExchange, load: &Load, decisive: &[(usize, usize)]) -> Sent {
    let symbols: Vec<String> = (0..load.symbols).map(symbol).collect();
    let mut ids = vec![0u64; symbols.len()];
    let every = SPREAD / decisive.len().max(1) as u32;
    let run = WARM_UP + SPREAD + Duration::from_secs(1);
    let mut rng = rand::rng();
    let mut next_symbol = 0usize;
    let mut sent = 0u64;
    let mut next_event = 0usize;
    let mut timed = Vec::with_capacity(decisive.len());
    let mut batch: Vec<(usize, RecordedTrade)> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let start = Instant::now();
    let trade = |s: usize, price: f64, ids: &mut Vec<u64>| {
        ids[s] += 1;
        RecordedTrade {
            id: ids[s],
            time_ms: (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
            price: format!("{price:.2}"),
            qty: "1".into(),
            taker_buys: true,
            on_stream: true,
        }
    };
    loop {
        ticker.tick().await;
        let elapsed = start.elapsed();
        if elapsed >= run {
            break;
        }
        let due = (elapsed.as_secs_f64() * f64::from(load.trades_per_sec)) as u64;
        batch.clear();
        while sent < due {
            let s = next_symbol;
            next_symbol = (next_symbol + 1) % symbols.len();
            let price = rng.random_range(QUIET.0..QUIET.1);
            batch.push((s, trade(s, price, &mut ids)));
            sent += 1;
        }
        fake.stream_trades(VENUE, batch.iter().map(|(s, t)| (symbols[*s].as_str(), t)));
        while next_event < decisive.len() && elapsed >= WARM_UP + every * next_event as u32 {
            let (s, k) = decisive[next_event];
            let t = trade(s, entry(k), &mut ids);
            let at = Instant::now();
            fake.stream_trades(VENUE, [(symbols[s].as_str(), &t)]);
            timed.push((signal_id(s, k), k, at));
            sent += 1;
            next_event += 1;
        }
    }
    Sent {
        trades: sent,
        elapsed: start.elapsed(),
        decisive: timed,
    }
}
