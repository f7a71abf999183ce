//! `ops signals normalize-pairs` against a bootstrapped emulator.

use g3_appwrite::Query;
use g3_store::{Collection, models::Signal};
use ops::signals::normalize_pairs;
use serde_json::{Value, json};

fn signal(id: &str, pair: Value) -> Value {
    json!({
        "source_guild_id": "1",
        "source_channel_id": "2",
        "source_message_id": id,
        "route_key": "vip-calls",
        "content": format!("signal {id}"),
        "pair": pair,
        "side": "long",
        "entries": [100.0],
        "targets": [110.0],
        "revision": 3,
        "status": "live",
        "posted_at": g3_appwrite::format_datetime(time::OffsetDateTime::now_utc()),
    })
}

async fn pairs(client: &g3_appwrite::Client) -> Vec<(String, Option<String>, i64)> {
    let docs = Collection::<Signal>::new(client)
        .list_all(&[], 2)
        .await
        .unwrap();
    let mut pairs: Vec<_> = docs
        .into_iter()
        .map(|d| (d.id, d.data.pair, d.data.revision))
        .collect();
    pairs.sort();
    pairs
}

#[tokio::test]
async fn glued_pairs_are_rewritten_once_and_nothing_else_moves() {
    let backend = testkit::backend::backend().await;
    let client = &backend.client;
    let signals = Collection::<Signal>::new(client);
    for (id, pair) in [
        ("9001", json!("BTCUSDT")),
        ("9002", json!("ETH/BTC")),
        ("9003", json!("sol-usdc")),
        ("9004", json!("NOT A PAIR")),
        ("9005", Value::Null),
        ("9006", json!("1000PEPEUSDTPERP")),
    ] {
        signals
            .raw()
            .create::<Value>(id, &signal(id, pair), None)
            .await
            .unwrap();
    }
    let before = pairs(client).await;

    let mut pages = Vec::new();
    let dry = normalize_pairs(client, true, |read| pages.push(read))
        .await
        .unwrap();
    assert!(
        dry.contains("9001: would change (BTCUSDT -> BTC/USDT)"),
        "{dry}"
    );
    assert!(
        dry.contains("9003: would change (sol-usdc -> SOL/USDC)"),
        "{dry}"
    );
    assert!(
        dry.contains("9006: would change (1000PEPEUSDTPERP -> 1000PEPE/USDT)"),
        "{dry}"
    );
    assert!(
        dry.contains(r#"9004: "NOT A PAIR" left as it is (not a pair the parser knows)"#),
        "{dry}"
    );
    assert!(!dry.contains("9002"), "already in the parser's form: {dry}");
    assert!(
        dry.ends_with("6 signal(s) read, 3 pair(s) would be rewritten, 1 left as written"),
        "{dry}"
    );
    assert_eq!(pages, [6], "one page, and its count");
    assert_eq!(pairs(client).await, before, "a dry run writes nothing");

    let out = normalize_pairs(client, false, |_| {}).await.unwrap();
    assert!(
        out.contains("9001: rewritten (BTCUSDT -> BTC/USDT)"),
        "{out}"
    );
    assert!(
        out.ends_with("6 signal(s) read, 3 pair(s) rewritten, 1 left as written"),
        "{out}"
    );
    let after = pairs(client).await;
    let expected: Vec<(String, Option<String>, i64)> = [
        ("9001", Some("BTC/USDT")),
        ("9002", Some("ETH/BTC")),
        ("9003", Some("SOL/USDC")),
        ("9004", Some("NOT A PAIR")),
        ("9005", None),
        ("9006", Some("1000PEPE/USDT")),
    ]
    .into_iter()
    .map(|(id, pair)| (id.to_owned(), pair.map(str::to_owned), 3))
    .collect();
    assert_eq!(after, expected, "only pairs changed; revisions stay at 3");
    let stored = signals.get("9001").await.unwrap();
    assert_eq!(
        stored.permissions,
        signals.get("9002").await.unwrap().permissions,
        "permissions kept"
    );

    let again = normalize_pairs(client, false, |_| {}).await.unwrap();
    assert!(
        again.ends_with("6 signal(s) read, 0 pair(s) rewritten, 1 left as written"),
        "a second run changes nothing: {again}"
    );
}

#[tokio::test]
async fn pages_are_followed_to_the_last_signal() {
    let backend = testkit::backend::backend().await;
    let client = &backend.client;
    let signals = Collection::<Signal>::new(client);
    // More than one page of 500.
    for n in 0..501 {
        let id = format!("{}", 20_000 + n);
        signals
            .raw()
            .create::<Value>(&id, &signal(&id, json!("ETHUSDT")), None)
            .await
            .unwrap();
    }
    let mut pages = Vec::new();
    let out = normalize_pairs(client, false, |read| pages.push(read))
        .await
        .unwrap();
    assert_eq!(pages, [500, 501]);
    assert!(
        out.ends_with("501 signal(s) read, 501 pair(s) rewritten, 0 left as written"),
        "{out}"
    );
    let left = Collection::<Signal>::new(client)
        .list(&[Query::equal("pair", "ETHUSDT"), Query::limit(1)])
        .await
        .unwrap();
    assert_eq!(left.total, 0);
}
