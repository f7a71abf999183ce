//! Row (b): `tracker::recompute::all` (what `ops outcomes recompute --all` runs) over 10,000
//! stored outcomes. Seeded through the emulator as the live tracker leaves things: an hour of
//! 1-second bars per symbol in `price_minutes` (stored with `tracker::prices::store`), and per
//! signal the `signal_outcomes` document judged on exactly those minutes. A recompute that
//! changes any document counts as an error.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use g3_core::signal::Side;
use g3_market::{Symbol, Venue};
use g3_outcomes::{Bar, Market as Item, Revision, Rules, Trade, evaluate};
use g3_store::{Collection, models::SignalOutcome};
use rand::{Rng as _, SeedableRng as _};
use time::OffsetDateTime;
use tracker::prices::{StoredMinute, items_between};
use tracker::signals::{Heard, Market, document};
use tracker::tape::{Minute, floor_min};

use super::{stack, symbol};
use crate::table::Row;

const HOW: &str = "tracker::recompute::all in the bench process against the emulator (SQLite \
    file) over loopback HTTP: lists every signal_outcomes document, reads each market's \
    price_minutes once, judges every signal on its own window and compares with the stored \
    document (no writes); wall time from the call to its result";
const VENUE: Venue = Venue::BinanceSpot;

/// The size of the recompute row.
pub struct Recompute {
    pub signals: usize,
    pub symbols: usize,
    /// Minutes of stored 1-second bars per symbol.
    pub minutes: usize,
}

pub async fn recompute_row(size: &Recompute) -> anyhow::Result<Row> {
    let stack = stack().await?;
    let client = &stack.backend.client;
    let base =
        floor_min(OffsetDateTime::now_utc()) - time::Duration::minutes(size.minutes as i64 + 1);
    eprintln!(
        "recompute: seeding {} minutes of 1 s bars for {} symbols ...",
        size.minutes, size.symbols
    );
    let history: Vec<Vec<StoredMinute>> = (0..size.symbols)
        .map(|s| walk(s as u64, base, size.minutes))
        .collect();
    store_minutes(client, &history).await?;
    eprintln!("recompute: seeding {} judged outcomes ...", size.signals);
    store_outcomes(client, &history, size, base).await?;

    eprintln!("recompute: recomputing every outcome ...");
    let started = Instant::now();
    let results = tracker::recompute::all(client, false).await?;
    let wall = started.elapsed();
    let changed = results.iter().filter(|r| r.changed()).count();
    let complete = results.len() == size.signals;
    eprintln!(
        "recompute: {} outcomes in {:.2} s, {changed} differ from the stored documents",
        results.len(),
        wall.as_secs_f64()
    );
    let goal = Duration::from_secs(10);
    Ok(Row::measured(
        format!(
            "tracker: recompute {} outcomes from stored history ({} symbols × {} min of 1 s \
             bars) = {:.2} s, {changed} changed",
            results.len(),
            size.symbols,
            size.minutes,
            wall.as_secs_f64()
        ),
        "< 10 s, none changed".into(),
        wall < goal && changed == 0 && complete,
    )
    .how(HOW))
}

/// `minutes` minutes of 1-second bars of a seeded random walk around 100, as the tape stores
/// them (prices to the cent, so JSON gives them back exactly).
fn walk(seed: u64, base: OffsetDateTime, minutes: usize) -> Vec<StoredMinute> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let cents = |p: f64| (p * 100.0).round() / 100.0;
    let mut price: f64 = 100.0;
    (0..minutes)
        .map(|m| {
            let start = base + time::Duration::minutes(m as i64);
            let items = (0..60)
                .map(|s| {
                    let open = cents(price);
                    let mut high = open;
                    let mut low = open;
                    for _ in 0..3 {
                        price = cents(price * (1.0 + rng.random_range(-0.0008..0.0008)));
                        high = high.max(price);
                        low = low.min(price);
                    }
                    let open_time = start + time::Duration::seconds(s);
                    Item::Bar(Bar {
                        open_time,
                        close_time: open_time + time::Duration::milliseconds(999),
                        open,
                        high,
                        low,
                        close: price,
                        backfilled: false,
                    })
                })
                .collect();
            StoredMinute {
                start,
                until: start + time::Duration::MINUTE,
                items,
            }
        })
        .collect()
}

/// Stores every symbol's minutes through `tracker::prices::store`, 8 at a time.
async fn store_minutes(
    client: &g3_appwrite::Client,
    history: &[Vec<StoredMinute>],
) -> anyhow::Result<()> {
    let all: Vec<(usize, Minute)> = history
        .iter()
        .enumerate()
        .flat_map(|(s, minutes)| {
            minutes.iter().map(move |m| {
                (
                    s,
                    Minute {
                        start: m.start,
                        until: m.until,
                        items: m.items.clone(),
                    },
                )
            })
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in all.chunks(all.len().div_ceil(8).max(1)) {
        let chunk = chunk.to_vec();
        let client = client.clone();
        tasks.spawn(async move {
            for (s, minute) in chunk {
                let sym = Symbol::from_exchange(&symbol(s)).context("bench symbol")?;
                tracker::prices::store(&client, VENUE, &sym, &minute).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("seeding task")??;
    }
    Ok(())
}

/// Signal `i` is on symbol `i % symbols`, posted in the first part of the hour, long or short
/// with a zone, two targets and a stop near the price at its post; its stored document is the
/// one the tracker would have written after judging the stored minutes.
async fn store_outcomes(
    client: &g3_appwrite::Client,
    history: &[Vec<StoredMinute>],
    size: &Recompute,
    base: OffsetDateTime,
) -> anyhow::Result<()> {
    let rules = Rules::default();
    let per_symbol = size.signals.div_ceil(size.symbols.max(1)).max(1);
    let span = (size.minutes.saturating_sub(10).max(1) * 60) as i64;
    let mut docs = Vec::with_capacity(size.signals);
    for i in 0..size.signals {
        let s = i % size.symbols;
        let j = (i / size.symbols) as i64;
        let posted = base + time::Duration::seconds(j * span / per_symbol as i64 + 1);
        let minute = ((posted - base).whole_minutes() as usize).min(history[s].len() - 1);
        let price = match history[s][minute].items.first() {
            Some(Item::Bar(b)) => b.open,
            _ => 100.0,
        };
        let long = i % 2 == 0;
        let sign = if long { 1.0 } else { -1.0 };
        let at = |pct: f64| (price * (1.0 + sign * pct / 100.0) * 100.0).round() / 100.0;
        let trade = Trade {
            pair: format!("{}/USDT", symbol(s).trim_end_matches("USDT")),
            side: if long { Side::Long } else { Side::Short },
            entries: vec![at(-0.1), at(-0.3)],
            targets: vec![at(0.4), at(0.8)],
            stop: Some(at(-0.6)),
            leverage: Some(5.0),
        };
        let heard = Heard {
            revisions: vec![Revision {
                revision: 1,
                effective_at: posted,
                trade,
            }],
            deleted_at: None,
        };
        let history_of = heard.history()?;
        let (from, before) = (
            floor_min(posted),
            posted + rules.time_limit + time::Duration::MINUTE,
        );
        let (items, until) = items_between(&history[s], from, before);
        let outcome = evaluate(&history_of, rules, &items, until)?;
        let market = Market::On(
            VENUE,
            Symbol::from_exchange(&symbol(s)).context("bench symbol")?,
        );
        docs.push((
            format!("rc{i:05}"),
            document("bench", &market, &heard, &outcome),
        ));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in docs.chunks(docs.len().div_ceil(8).max(1)) {
        let chunk = chunk.to_vec();
        let client = client.clone();
        tasks.spawn(async move {
            let outcomes = Collection::<SignalOutcome>::new(&client);
            for (id, doc) in chunk {
                outcomes.upsert(&id, &doc, None).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("seeding task")??;
    }
    Ok(())
}
