//! The demo collector: keeps a fresh devstack's feed alive by posting realistic signals to the
//! real ingest endpoint every few seconds, signed exactly as the Vencord plugin signs them, with
//! an occasional edit, delete and chart image (served by a tiny local "CDN"), so a new user sees
//! the whole pipeline work without Discord.

use std::{net::SocketAddr, time::Duration};

use axum::{Router, http::header, routing::get};
use g3_core::signing;
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tracing::{info, warn};

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

const PAIRS: &[(&str, f64)] = &[
    ("BTC/USDT", 64_000.0),
    ("ETH/USDT", 3_100.0),
    ("SOL/USDT", 145.0),
    ("XRP/USDT", 0.52),
    ("DOGE/USDT", 0.12),
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

fn round(price: f64) -> f64 {
    let digits = if price >= 100.0 {
        1.0
    } else if price >= 1.0 {
        100.0
    } else {
        10_000.0
    };
    (price * digits).round() / digits
}

/// One signal's text in one of a few common styles.
pub fn signal_text(rng: &mut impl Rng) -> String {
    let (pair, base) = PAIRS[rng.random_range(0..PAIRS.len())];
    let price = base * rng.random_range(0.97..1.03);
    let long = rng.random_bool(0.6);
    let dir = if long { 1.0 } else { -1.0 };
    let entry_lo = round(price * (1.0 - 0.003 * dir));
    let entry_hi = round(price);
    let targets: Vec<String> = [0.01, 0.02, 0.035]
        .iter()
        .map(|p| round(price * (1.0 + p * dir)).to_string())
        .collect();
    let stop = round(price * (1.0 - 0.015 * dir));
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

/// Starts posting to `ingest_url` every `interval` into the given source channels.
pub async fn start(
    ingest_url: String,
    secret: String,
    channels: Vec<String>,
    interval: Duration,
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
                next_event(&mut rng, n, &channels, &mut posted, cdn_addr)
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
    let text = signal_text(rng);
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
    fn demo_signals_parse_as_trades() {
        let mut rng = rand::rng();
        for _ in 0..200 {
            let text = signal_text(&mut rng);
            assert!(
                matches!(parse(&text, &[]), Parsed::Signal(_)),
                "not parsed: {text}"
            );
        }
    }
}
