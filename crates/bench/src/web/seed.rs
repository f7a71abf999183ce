//! What the web rows read: four routes, a paid customer with the `vip` plan, and signals spread
//! over routes, pairs, sides and a year of time as the pipeline writes them, created
//! concurrently through the server-key client.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use anyhow::Context as _;
use g3_access::{Access, Cause};
use g3_appwrite::Client;
use g3_core::{
    Email,
    entitlements::{EVERY_ROUTE, PlanConfig},
    plans::{Plan, PlanCatalog},
};
use g3_store::{
    Collection,
    models::{Route, Side, Signal},
};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use time::{Duration, OffsetDateTime};

pub const MEMBER: &str = "bench-member@example.com";
pub const PASSWORD: &str = "bench member password";
/// The customer's plan; it unlocks every route ([`plans`]).
pub const PLAN: &str = "vip";

/// Route key, display name, share of the signals (out of 100).
pub const ROUTES: [(&str, &str, u32); 4] = [
    ("vip-calls", "VIP Calls", 40),
    ("scalps", "Scalps", 30),
    ("swing", "Swing Trades", 20),
    ("alts", "Altcoin Gems", 10),
];

/// Pairs as the parser writes them; earlier ones are called more often.
pub const PAIRS: [&str; 50] = [
    "BTC/USDT",
    "ETH/USDT",
    "SOL/USDT",
    "XRP/USDT",
    "DOGE/USDT",
    "BNB/USDT",
    "ADA/USDT",
    "AVAX/USDT",
    "LINK/USDT",
    "SUI/USDT",
    "TON/USDT",
    "DOT/USDT",
    "TRX/USDT",
    "LTC/USDT",
    "BCH/USDT",
    "NEAR/USDT",
    "APT/USDT",
    "OP/USDT",
    "ARB/USDT",
    "TIA/USDT",
    "INJ/USDT",
    "SEI/USDT",
    "ATOM/USDT",
    "FIL/USDT",
    "ETC/USDT",
    "UNI/USDT",
    "AAVE/USDT",
    "MKR/USDT",
    "LDO/USDT",
    "RNDR/USDT",
    "FET/USDT",
    "WLD/USDT",
    "PEPE/USDT",
    "SHIB/USDT",
    "WIF/USDT",
    "BONK/USDT",
    "FLOKI/USDT",
    "JUP/USDT",
    "PYTH/USDT",
    "STX/USDT",
    "IMX/USDT",
    "HBAR/USDT",
    "ICP/USDT",
    "ALGO/USDT",
    "VET/USDT",
    "GRT/USDT",
    "SAND/USDT",
    "MANA/USDT",
    "AXS/USDT",
    "GALA/USDT",
];

const AUTHORS: [&str; 5] = ["Kai", "Mara", "Theo", "Lena", "Jules"];
/// Average time between two seeded signals: 100,000 of them span about a year.
const SPACING_SECS: i64 = 5 * 60;

pub async fn routes(client: &Client) -> anyhow::Result<()> {
    let routes = Collection::<Route>::new(client);
    for (i, (key, name, _)) in ROUTES.iter().enumerate() {
        let route = Route {
            source_channel_id: (1_200_000_000_000_000_000u64 + i as u64).to_string(),
            source_guild_id: Some("1".into()),
            name: (*name).into(),
            customer_channel_ids: Vec::new(),
            enabled: Some(true),
        };
        routes.upsert(key, &route, None).await?;
    }
    Ok(())
}

/// The plans web is configured with: one, [`PLAN`], unlocking every route, so per-plan route
/// checks run as for any customer and let everything through.
pub fn plans() -> anyhow::Result<PlanConfig> {
    let file = format!("[plans.{PLAN}]\nname = \"VIP\"\nroutes = [\"{EVERY_ROUTE}\"]\n");
    Ok(PlanConfig::from_toml(&file)?)
}

/// The viewer: signed up with a password, verified, and given the `vip` plan as a payment or
/// an admin grant gives it (subscription, `paid` membership, roles).
pub async fn customer(client: &Client) -> anyhow::Result<()> {
    let users = client.users();
    let user = users
        .create("bench-member", MEMBER, Some(PASSWORD), None)
        .await?;
    users.update_email_verification(&user.id, true).await?;
    let cause = Cause::Admin {
        actor: "bench".into(),
        reason: "bench customer".into(),
    };
    Access::new(client.clone(), PlanCatalog::default())
        .grant(&Email::parse(MEMBER)?, &Plan::parse(PLAN)?, None, &cause)
        .await
        .context("granting the bench customer's plan")?;
    Ok(())
}

/// Creates `count` signals ending an hour ago, `concurrency` creates at a time; ids `s000000`….
pub async fn signals(client: &Client, count: usize, concurrency: usize) -> anyhow::Result<()> {
    let newest = OffsetDateTime::now_utc() - Duration::hours(1);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (signals, next) = (Collection::<Signal>::new(client), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return anyhow::Ok(());
                }
                let doc = seeded(i, count, newest);
                signals
                    .create(format!("s{i:06}"), &doc, None)
                    .await
                    .with_context(|| format!("seeding signal {i}"))?;
            }
        }));
    }
    for task in tasks {
        task.await.context("seed worker panicked")??;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "web: seeded {count} signals in {secs:.1} s ({:.0}/s)",
        count as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// Signal `i` of `count`: the same every run. One in twenty is a plain message (no pair, no
/// side); pairs are skewed towards the majors (the rarest still gets 0.5%).
fn seeded(i: usize, count: usize, newest: OffsetDateTime) -> Signal {
    let mut rng = StdRng::seed_from_u64(i as u64);
    let mut pick = rng.random_range(0..100);
    let route = ROUTES
        .iter()
        .find(|(_, _, share)| {
            let hit = pick < *share;
            pick = pick.saturating_sub(*share);
            hit
        })
        .map_or(ROUTES[0].0, |r| r.0);
    let jitter = rng.random_range(-SPACING_SECS / 2..SPACING_SECS / 2);
    let posted_at = newest - Duration::seconds(SPACING_SECS * (count - 1 - i) as i64)
        + Duration::seconds(jitter);
    let author = AUTHORS[i % AUTHORS.len()];
    let tag = format!("s{i:06}");
    if rng.random_bool(0.05) {
        let mut plain = signal(&tag, route, None, None);
        plain.content = Some(format!(
            "Market update {tag}: funding is flat, waiting for the daily close before new entries."
        ));
        plain.entries.clear();
        plain.targets.clear();
        plain.stop = None;
        plain.leverage = None;
        plain.posted_at = posted_at;
        plain.author_name = Some(author.into());
        return plain;
    }
    let pair = PAIRS[(PAIRS.len() as f64 * rng.random::<f64>().powi(2)) as usize % PAIRS.len()];
    let side = if rng.random_bool(0.55) {
        Side::Long
    } else {
        Side::Short
    };
    let mut doc = signal(&tag, route, Some(pair), Some(side));
    let price = 64_000.0 / (1.0 + 7.0 * PAIRS.iter().position(|p| *p == pair).unwrap_or(0) as f64)
        * rng.random_range(0.8..1.2);
    let dir = if side == Side::Long { 1.0 } else { -1.0 };
    doc.entries = vec![price, price * (1.0 - dir * 0.005)];
    doc.targets = vec![
        price * (1.0 + dir * 0.02),
        price * (1.0 + dir * 0.04),
        price * (1.0 + dir * 0.07),
    ];
    doc.stop = Some(price * (1.0 - dir * 0.03));
    doc.leverage = Some(f64::from(rng.random_range(2u8..=20)));
    doc.content = Some(format!(
        "**{pair} {}** {tag}\nEntry {} - {}\nTP {} / {} / {}\nSL {}\nLev {}x\n_Risk 1% of the account; move the stop to entry after TP1._",
        if side == Side::Long { "LONG" } else { "SHORT" },
        px(doc.entries[0]),
        px(doc.entries[1]),
        px(doc.targets[0]),
        px(doc.targets[1]),
        px(doc.targets[2]),
        px(price * (1.0 - dir * 0.03)),
        doc.leverage.unwrap_or(1.0),
    ));
    doc.posted_at = posted_at;
    doc.author_name = Some(author.into());
    doc
}

/// A price as traders write it: 4 significant digits or whole numbers.
fn px(price: f64) -> String {
    let decimals = (3 - price.abs().log10().floor() as i32).clamp(0, 8) as usize;
    format!("{price:.decimals$}")
}

/// A live signal shaped as the pipeline writes it, posted now (newer than every seeded one).
pub fn signal(tag: &str, route: &str, pair: Option<&str>, side: Option<Side>) -> Signal {
    Signal {
        author_id: Some("3".into()),
        author_name: Some("Bench Trader".into()),
        content: Some(format!(
            "**BTCUSDT LONG** {tag}\nEntry 64200 - 63800\nTP 65000 / 66500\nSL 62900\nLev 10x"
        )),
        pair: pair.map(str::to_owned),
        side,
        entries: vec![64200.0, 63800.0],
        targets: vec![65000.0, 66500.0],
        stop: Some(62900.0),
        leverage: Some(10.0),
        ..Signal::live(("1", "2", tag), route, OffsetDateTime::now_utc())
    }
}

/// The signal the live rows write: the first route, BTC long, posted now.
pub fn live(tag: &str) -> Signal {
    signal(tag, ROUTES[0].0, Some(PAIRS[0]), Some(Side::Long))
}
