//! The demo collector: keeps a fresh devstack's feed alive by posting realistic signals to the
//! real ingest endpoint every few seconds, signed exactly as the Vencord plugin signs them, with
//! an occasional edit, delete and chart image (served by a tiny local "CDN"), so a new user sees
//! the whole pipeline work without Discord. Each signal trades a pair of the simulated market
//! ([`crate::market`]) with its entry at the pair's current price and its targets and stop sized
//! by how fast that market moves, so the tracker sees it enter and resolve within minutes.

use std::{net::SocketAddr, time::Duration};

use axum::{Router, http::header, routing::get};
use g3_core::signing;
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::market::{DEMO_PAIRS, DemoPair, Market};

/// Guild id of the demo source guild.
pub const DEMO_GUILD: &str = "1000000000000000001";

/// A 1×1 PNG, standing in for a chart screenshot.
const CHART_PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

const AUTHORS: &[&str] = &["Nova", "Atlas", "Kite"];

/// A running demo collector; dropping the stop sender ends it.
pub struct DemoCollector {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl DemoCollector {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// A demo pair at its current price: the market a demo signal is written for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quote {
    pub pair: &'static DemoPair,
    pub price: f64,
    /// The unit of distance from entry to targets and stop, as a fraction of the price
    /// ([`crate::market::MarketSettings::signal_step`]).
    pub step: f64,
}

impl Quote {
    /// A random demo pair at the market's current price (its reference price before it has
    /// traded).
    pub fn pick(rng: &mut impl Rng, market: &Market) -> Quote {
        let pair = &DEMO_PAIRS[rng.random_range(0..DEMO_PAIRS.len())];
        Quote {
            pair,
            price: market.price(pair.pair).unwrap_or(pair.price),
            step: market.settings.signal_step(),
        }
    }

    /// `moves` steps away from the current price, on the pair's tick grid.
    fn level(&self, moves: f64) -> String {
        let price = self.price * (1.0 + moves * self.step);
        format!("{price:.*}", self.pair.decimals as usize)
    }
}

/// One signal's text in one of a few common styles: entered at about the current price, a
/// stop 1.2 steps away and targets 1, 2 and 3.5 steps away, so roughly half reach a target
/// before the stop.
pub fn signal_text(rng: &mut impl Rng, quote: &Quote) -> String {
    let pair = quote.pair.pair;
    let long = rng.random_bool(0.6);
    let dir = if long { 1.0 } else { -1.0 };
    // A zone from half a step on the stop's side of the price to a tenth of a step past it
    // fills on the next trade; a single entry (the zone's far edge) within seconds.
    let entry_lo = quote.level(-0.5 * dir);
    let entry_hi = quote.level(0.1 * dir);
    let targets: Vec<String> = [1.0, 2.0, 3.5]
        .iter()
        .map(|m| quote.level(m * dir))
        .collect();
    let stop = quote.level(-1.2 * dir);
    let lev = [5, 10, 20][rng.random_range(0..3)];
    let side = if long { "LONG" } else { "SHORT" };
    match rng.random_range(0..3) {
        0 => format!(
            "#{pair} {side}\nEntry: {entry_lo} - {entry_hi}\nTargets: {}\nStop: {stop}\nLeverage: {lev}x",
            targets.join(", ")
        ),
        1 => format!(
            "📈 **{} {side}**\nEntry {entry_hi}\nTP1 {}\nTP2 {}\nTP3 {}\nSL {stop}\nLev {lev}x",
            pair.replace('/', ""),
            targets[0],
            targets[1],
            targets[2]
        ),
        _ => format!(
            "{side} ${} @ {entry_hi} | tp {} | sl {stop} | x{lev}",
            pair.split('/').next().unwrap_or(pair),
            targets[0]
        ),
    }
}

async fn serve_cdn() -> anyhow::Result<(SocketAddr, oneshot::Sender<()>)> {
    let app = Router::new().route(
        "/chart.png",
        get(|| async { ([(header::CONTENT_TYPE, "image/png")], CHART_PNG) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Ok((addr, stop))
}

/// Starts posting to `ingest_url` every `interval` into the given source channels, signals
/// on `market`'s pairs at its prices.
pub async fn start(
    ingest_url: String,
    secret: String,
    channels: Vec<String>,
    interval: Duration,
    market: Market,
) -> anyhow::Result<DemoCollector> {
    let (cdn_addr, cdn_stop) = serve_cdn().await?;
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        let mut posted: Vec<(String, String, String)> = Vec::new();
        let mut n: u64 = 0;
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = tick.tick() => {}
            }
            n += 1;
            let event = {
                let mut rng = rand::rng();
                let quote = Quote::pick(&mut rng, &market);
                next_event(&mut rng, n, &channels, &mut posted, cdn_addr, &quote)
            };
            let body = json!({ "events": [event] }).to_string();
            let id = format!("demo_{}_{n}", std::process::id());
            let ts = time::OffsetDateTime::now_utc().unix_timestamp();
            let sent = http
                .post(&ingest_url)
                .header("content-type", "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", ts.to_string())
                .header(
                    "webhook-signature",
                    signing::standard_signature(&secret, &id, ts, body.as_bytes()),
                )
                .body(body)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => info!(n, "demo collector posted"),
                Ok(r) => warn!(status = %r.status(), "demo collector was refused"),
                Err(e) => warn!(error = %e, "demo collector could not reach ingest"),
            }
        }
        let _ = cdn_stop.send(());
    });
    Ok(DemoCollector { stop, task })
}

/// A snowflake for "now": Discord's epoch-relative milliseconds in the top bits.
fn snowflake_now(n: u64) -> String {
    let ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64;
    (((ms.saturating_sub(1_420_070_400_000)) << 22) | (n & 0x3F_FFFF)).to_string()
}

fn next_event(
    rng: &mut impl Rng,
    n: u64,
    channels: &[String],
    posted: &mut Vec<(String, String, String)>,
    cdn: SocketAddr,
    quote: &Quote,
) -> Value {
    let roll = rng.random_range(0..10);
    // Now and then edit or delete an earlier one, as real callers do.
    if roll == 0 && !posted.is_empty() {
        let (id, channel, text) = posted[rng.random_range(0..posted.len())].clone();
        let edited = format!("{text}\n\n✏️ Update: move stop to entry");
        return json!({ "type": "message.update", "message": {
            "id": id, "channel_id": channel, "guild_id": DEMO_GUILD, "content": edited, "embeds": [], "attachments": [],
            "edited_timestamp": g3_appwrite::format_datetime(time::OffsetDateTime::now_utc()),
            "author": { "id": "1200000000000000001", "username": AUTHORS[0] } } });
    }
    if roll == 1 && posted.len() > 3 {
        let (id, channel, _) = posted.remove(0);
        return json!({ "type": "message.delete", "message": { "id": id, "channel_id": channel, "guild_id": DEMO_GUILD } });
    }
    let id = snowflake_now(n);
    let channel = channels[rng.random_range(0..channels.len().max(1))].clone();
    let text = signal_text(rng, quote);
    let attachments = if roll == 2 {
        json!([{ "id": format!("{id}1"), "filename": "chart.png", "size": CHART_PNG.len(), "content_type": "image/png",
                 "url": format!("http://{cdn}/chart.png") }])
    } else {
        json!([])
    };
    posted.push((id.clone(), channel.clone(), text.clone()));
    if posted.len() > 20 {
        posted.remove(0);
    }
    json!({ "type": "message.create", "message": {
        "id": id, "channel_id": channel, "guild_id": DEMO_GUILD, "content": text, "embeds": [],
        "attachments": attachments, "edited_timestamp": null,
        "timestamp": g3_appwrite::format_datetime(time::OffsetDateTime::now_utc()),
        "author": { "id": "1200000000000000001", "username": AUTHORS[rng.random_range(0..AUTHORS.len())] } } })
}

#[cfg(test)]
mod tests {
    use g3_core::signal::{Parsed, parse};

    use super::*;

    #[test]
    fn demo_signals_parse_as_trades_around_the_current_price() {
        let mut rng = rand::rng();
        let step = crate::market::MarketSettings::default().signal_step();
        for _ in 0..200 {
            let pair = &DEMO_PAIRS[rng.random_range(0..DEMO_PAIRS.len())];
            let price = pair.price * rng.random_range(0.9..1.1);
            let text = signal_text(&mut rng, &Quote { pair, price, step });
            let Parsed::Signal(signal) = parse(&text, &[]) else {
                panic!("not parsed: {text}");
            };
            assert_eq!(signal.pair.replace('/', ""), pair.symbol, "{text}");
            // Entries within half a step of the price; the first target and the stop on
            // either side of them, each about a step away.
            assert!(
                signal
                    .entries
                    .iter()
                    .all(|e| ((e / price) - 1.0).abs() <= step * 0.6),
                "{text}"
            );
            let stop = signal.stop.expect("a stop");
            let target = signal.targets[0];
            for entry in &signal.entries {
                assert!((target - entry) * (entry - stop) > 0.0, "{text}");
                assert!(((target / entry) - 1.0).abs() > step * 0.4, "{text}");
            }
        }
    }
}
