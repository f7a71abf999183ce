//! `ops bootstrap` against the emulator: builds everything, is idempotent, and `plan` reports
//! drift without touching it.

use g3_appwrite::{ApiKey, AttributeSpec, Client, Config, RetryPolicy};
use g3_store::{
    bootstrap::{self, Change},
    schema,
};

async fn backend() -> (appwrite_emulator::Handle, Client) {
    let emulator = appwrite_emulator::spawn(appwrite_emulator::Config::in_memory("p", "k"))
        .await
        .expect("emulator starts");
    let mut config = Config::new(&emulator.endpoint, "p");
    config.api_key = Some(ApiKey::new("k"));
    config.retry = RetryPolicy::none();
    let client = Client::new(config).expect("client builds");
    (emulator, client)
}

fn quiet() -> impl FnMut(&str) {
    |_: &str| {}
}

#[tokio::test]
async fn bootstrap_builds_the_whole_schema_then_has_nothing_left_to_do() {
    let (_emulator, client) = backend().await;
    let before = bootstrap::plan(&client).await.unwrap();
    assert!(matches!(before.first(), Some(Change::CreateDatabase)));

    let first = bootstrap::run(&client, &mut quiet()).await.unwrap();
    assert!(first.applied > 0);
    assert!(
        first.drift.is_empty(),
        "fresh backend has no drift: {:?}",
        first.drift
    );

    // Everything in code now exists in the backend, available.
    let dbs = client.databases();
    for wanted in schema::collections() {
        let got = dbs
            .get_collection(schema::DATABASE_ID, wanted.id)
            .await
            .unwrap();
        assert_eq!(
            got.attributes.len(),
            wanted.attributes.len(),
            "{}",
            wanted.id
        );
        assert_eq!(got.indexes.len(), wanted.indexes.len(), "{}", wanted.id);
        assert!(
            got.attributes
                .iter()
                .all(|a| a.status == g3_appwrite::SchemaStatus::Available)
        );
    }
    for (team, _) in schema::TEAMS {
        client.teams().get(team).await.unwrap();
    }
    let bucket = client
        .storage()
        .get_bucket(schema::BUCKET_SIGNAL_ASSETS)
        .await
        .unwrap();
    assert_eq!(bucket.maximum_file_size, 10 * 1024 * 1024);

    let second = bootstrap::run(&client, &mut quiet()).await.unwrap();
    assert_eq!(second.applied, 0, "second run must change nothing");
    assert!(bootstrap::plan(&client).await.unwrap().is_empty());
}

#[tokio::test]
async fn plan_reports_drift_and_bootstrap_leaves_it_alone() {
    let (_emulator, client) = backend().await;
    bootstrap::run(&client, &mut quiet()).await.unwrap();

    // Someone adds an attribute by hand in the console.
    client
        .databases()
        .create_attribute(
            schema::DATABASE_ID,
            schema::SIGNALS,
            &AttributeSpec::string("handmade", 10),
        )
        .await
        .unwrap();
    let changes = bootstrap::plan(&client).await.unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(
        changes[0]
            .to_string()
            .contains("signals.handmade exists in the backend but not in the schema")
    );

    let outcome = bootstrap::run(&client, &mut quiet()).await.unwrap();
    assert_eq!(outcome.applied, 0);
    assert_eq!(outcome.drift.len(), 1);
    // Still there: drift is reported, never dropped.
    client
        .databases()
        .get_attribute(schema::DATABASE_ID, schema::SIGNALS, "handmade")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_missing_index_is_planned_and_recreated() {
    let (_emulator, client) = backend().await;
    bootstrap::run(&client, &mut quiet()).await.unwrap();
    client
        .databases()
        .delete_index(schema::DATABASE_ID, schema::SIGNALS, "by_pair_posted")
        .await
        .unwrap();

    let changes = bootstrap::plan(&client).await.unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        changes[0].to_string(),
        "create index signals.by_pair_posted on (pair, posted_at)"
    );
    let outcome = bootstrap::run(&client, &mut quiet()).await.unwrap();
    assert_eq!(outcome.applied, 1);
    assert!(bootstrap::plan(&client).await.unwrap().is_empty());
}
