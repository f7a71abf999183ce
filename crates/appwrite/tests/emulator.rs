//! The client against the Appwrite emulator: schema bootstrap, documents, users, account
//! sessions, teams, storage and realtime, end to end over real HTTP and websockets.

use std::time::Duration;

use appwrite_emulator::Config as EmulatorConfig;
use bytes::Bytes;
use g3_appwrite::{
    AttributeSpec, BucketSpec, ByteRange, Client, Config, Error, ErrorKind, Id, IndexSpec,
    IndexType, Order, Permission, Query, RealtimeMessage, RealtimeOptions, RetryPolicy, Role,
    SchemaStatus, UploadFile,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

struct Env {
    _emulator: appwrite_emulator::Handle,
    client: Client,
}

async fn env() -> Env {
    let emulator = appwrite_emulator::spawn(EmulatorConfig::in_memory("proj", "key"))
        .await
        .unwrap();
    let mut config = Config::new(emulator.endpoint.clone(), "proj").with_api_key("key");
    config.retry = RetryPolicy::none();
    config.timeout = Duration::from_secs(10);
    let client = Client::new(config).unwrap();
    Env {
        _emulator: emulator,
        client,
    }
}

async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("timed out")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Signal {
    pair: String,
    side: String,
    revision: i64,
}

async fn bootstrap(client: &Client) {
    let dbs = client.databases();
    dbs.create("g3", "G3").await.unwrap();
    assert!(dbs.create("g3", "G3").await.unwrap_err().is_conflict());
    assert_eq!(dbs.get("g3").await.unwrap().id, "g3");
    let perms = [
        Permission::read(Role::team("paid")),
        Permission::read(Role::team("staff")),
    ];
    let col = dbs
        .create_collection("g3", "signals", "Signals", &perms, false)
        .await
        .unwrap();
    assert_eq!(col.permissions.len(), 2);
    for spec in [
        AttributeSpec::string("pair", 32).required(),
        AttributeSpec::enumeration("side", ["long", "short"]).required(),
        AttributeSpec::integer_range("revision", 0, 1_000_000).required(),
    ] {
        dbs.create_attribute("g3", "signals", &spec).await.unwrap();
        let a = dbs
            .wait_attribute_available("g3", "signals", &spec.key, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(a.status, SchemaStatus::Available);
    }
    assert_eq!(dbs.list_attributes("g3", "signals").await.unwrap().total, 3);
    dbs.create_index(
        "g3",
        "signals",
        &IndexSpec::new("by_pair", IndexType::Key, ["pair"]).orders([Order::Asc]),
    )
    .await
    .unwrap();
    dbs.wait_index_available("g3", "signals", "by_pair", Duration::from_secs(10))
        .await
        .unwrap();
    let updated = dbs
        .update_collection("g3", "signals", "Signals", &perms, true)
        .await
        .unwrap();
    assert!(updated.document_security);
}

#[tokio::test]
async fn schema_and_documents() {
    let env = env().await;
    let c = &env.client;
    bootstrap(c).await;
    let docs = c.documents("g3", "signals");

    let s = Signal {
        pair: "BTCUSDT".into(),
        side: "long".into(),
        revision: 1,
    };
    let first = docs.create_if_absent("100", &s, None).await.unwrap();
    assert!(first.was_created());
    let doc = first.into_inner();
    assert_eq!(
        (doc.database_id.as_str(), doc.collection_id.as_str()),
        ("g3", "signals")
    );
    let again = docs.create_if_absent("100", &s, None).await.unwrap();
    assert!(!again.was_created());
    let err = docs.create("100", &s, None).await.unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::DocumentAlreadyExists));

    let unique = docs.create(Id::unique(), &s, None).await.unwrap();
    assert_ne!(unique.id, "unique()");

    let patched: g3_appwrite::Document<Signal> = docs
        .update("100", &json!({"revision": 2}), None)
        .await
        .unwrap();
    assert_eq!(patched.data.revision, 2);
    let upserted = docs
        .upsert(
            "200",
            &Signal {
                pair: "ETHUSDT".into(),
                side: "short".into(),
                revision: 0,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(upserted.data.pair, "ETHUSDT");

    let found = docs
        .list::<Signal>(&[Query::equal("pair", "ETHUSDT")])
        .await
        .unwrap();
    assert_eq!(found.total, 1);
    assert_eq!(found.documents[0].id, "200");

    for i in 0..12 {
        let s = Signal {
            pair: format!("P{i}"),
            side: "long".into(),
            revision: i,
        };
        docs.create(format!("bulk{i}"), &s, None).await.unwrap();
    }
    let all = docs.list_all::<Signal>(&[], 5).await.unwrap();
    assert_eq!(all.len(), 15);

    let invalid = docs
        .create(
            "300",
            &json!({"pair": "X", "side": "sideways", "revision": 1}),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(invalid.status(), Some(400), "{invalid}");

    assert!(docs.delete_if_exists("100").await.unwrap());
    assert!(!docs.delete_if_exists("100").await.unwrap());
    assert!(docs.get_optional::<Signal>("100").await.unwrap().is_none());
}

#[tokio::test]
async fn users_account_and_teams() {
    let env = env().await;
    let c = &env.client;

    let user = c
        .users()
        .create(
            "u1",
            "Buyer@Example.com",
            Some("password-123"),
            Some("Buyer"),
        )
        .await
        .unwrap();
    assert_eq!(user.email, "buyer@example.com");
    let dup = c
        .users()
        .create("u2", "buyer@example.com", None, None)
        .await
        .unwrap_err();
    assert!(dup.is_conflict(), "{dup}");
    assert_eq!(
        c.users()
            .find_by_email("BUYER@example.com")
            .await
            .unwrap()
            .map(|u| u.id),
        Some("u1".to_owned())
    );
    assert!(
        c.users()
            .find_by_email("nobody@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let labelled = c.users().update_labels("u1", &["admin"]).await.unwrap();
    assert_eq!(labelled.labels, vec!["admin".to_owned()]);
    let verified = c
        .users()
        .update_email_verification("u1", true)
        .await
        .unwrap();
    assert!(verified.email_verification);
    let prefs = c
        .users()
        .update_prefs("u1", &json!({"theme": "dark"}))
        .await
        .unwrap();
    assert_eq!(prefs["theme"], "dark");
    assert_eq!(
        c.users()
            .get_prefs::<serde_json::Value>("u1")
            .await
            .unwrap()["theme"],
        "dark"
    );
    assert!(c.users().get("nope").await.unwrap_err().is_not_found());

    // Account: a server-side session, then calls as that user.
    let bad = c
        .account()
        .create_email_password_session("buyer@example.com", "wrong-password")
        .await
        .unwrap_err();
    assert_eq!(bad.kind(), Some(&ErrorKind::UserInvalidCredentials));
    let session = c
        .account()
        .create_email_password_session("buyer@example.com", "password-123")
        .await
        .unwrap();
    assert!(!session.secret.is_empty());
    let me = c
        .with_session(&session.secret)
        .account()
        .get()
        .await
        .unwrap();
    assert_eq!(me.id, "u1");
    assert_eq!(c.users().list_sessions("u1").await.unwrap().total, 1);
    c.with_session(&session.secret)
        .account()
        .delete_current_session()
        .await
        .unwrap();
    let gone = c
        .with_session(&session.secret)
        .account()
        .get()
        .await
        .unwrap_err();
    assert_eq!(gone.status(), Some(401), "{gone}");

    // Teams.
    c.teams().create("paid", "Paid").await.unwrap();
    assert!(
        c.teams()
            .create("paid", "Paid")
            .await
            .unwrap_err()
            .is_conflict()
    );
    let m = c
        .teams()
        .add_member_if_absent("paid", "u1", &["member"])
        .await
        .unwrap();
    assert!(m.was_created());
    assert!(m.get().confirm);
    let again = c
        .teams()
        .add_member_if_absent("paid", "u1", &["member"])
        .await
        .unwrap();
    assert!(!again.was_created());
    assert_eq!(c.users().list_memberships("u1").await.unwrap().total, 1);
    assert!(
        c.teams()
            .remove_member_if_present("paid", "u1")
            .await
            .unwrap()
    );
    assert!(
        !c.teams()
            .remove_member_if_present("paid", "u1")
            .await
            .unwrap()
    );
    assert!(
        c.teams()
            .find_membership("paid", "u1")
            .await
            .unwrap()
            .is_none()
    );

    c.users().delete("u1").await.unwrap();
    assert!(matches!(
        c.users().get("u1").await,
        Err(Error::Api { status: 404, .. })
    ));
}

#[tokio::test]
async fn storage_and_health() {
    let env = env().await;
    let c = &env.client;
    assert!(c.ping().await.is_ok());
    assert!(c.version().await.unwrap().starts_with("1.8"));

    let bucket = c
        .storage()
        .create_bucket(&BucketSpec {
            id: "signal_assets".into(),
            name: "Signal assets".into(),
            permissions: vec![Permission::read(Role::team("paid"))],
            file_security: false,
            maximum_file_size: Some(20 * 1024 * 1024),
            allowed_file_extensions: vec!["png".into(), "bin".into()],
        })
        .await
        .unwrap();
    assert_eq!(bucket.maximum_file_size, 20 * 1024 * 1024);
    assert_eq!(
        c.storage().get_bucket("signal_assets").await.unwrap().id,
        "signal_assets"
    );

    let data: Vec<u8> = (0..(11 * 1024 * 1024)).map(|i| (i % 251) as u8).collect();
    let file = c
        .storage()
        .create_file(
            "signal_assets",
            Id::unique(),
            UploadFile {
                name: "big.bin".into(),
                content_type: "application/octet-stream".into(),
                data: Bytes::from(data.clone()),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(file.size_original, data.len() as u64);
    assert_eq!(file.chunks_uploaded, file.chunks_total);
    let meta = c
        .storage()
        .get_file("signal_assets", &file.id)
        .await
        .unwrap();
    assert_eq!(meta.name, "big.bin");
    let whole = c
        .storage()
        .download("signal_assets", &file.id, None)
        .await
        .unwrap();
    assert_eq!(whole.status, 200);
    assert_eq!(whole.bytes.len(), data.len());
    assert!(whole.bytes == data);
    let part = c
        .storage()
        .view(
            "signal_assets",
            &file.id,
            Some(ByteRange {
                start: 10,
                end: Some(19),
            }),
        )
        .await
        .unwrap();
    assert_eq!(part.status, 206);
    assert_eq!(part.bytes.as_ref(), &data[10..20]);

    let rejected = c
        .storage()
        .create_file(
            "signal_assets",
            "evil",
            UploadFile {
                name: "evil.exe".into(),
                content_type: "application/octet-stream".into(),
                data: Bytes::from_static(b"MZ"),
            },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        rejected.kind(),
        Some(&ErrorKind::StorageFileTypeUnsupported),
        "{rejected}"
    );
    assert_eq!(
        c.storage()
            .list_files("signal_assets", &[])
            .await
            .unwrap()
            .total,
        1
    );
    c.storage()
        .delete_file("signal_assets", &file.id)
        .await
        .unwrap();
    assert!(
        c.storage()
            .get_file("signal_assets", &file.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn realtime_delivers_document_events() {
    let env = env().await;
    let c = &env.client;
    bootstrap(c).await;
    c.teams().create("staff", "Staff").await.unwrap();
    c.users()
        .create("svc", "svc@example.com", Some("service-password"), None)
        .await
        .unwrap();
    c.teams()
        .create_membership("staff", "svc", &["member"])
        .await
        .unwrap();
    let session = c
        .account()
        .create_email_password_session("svc@example.com", "service-password")
        .await
        .unwrap();

    let mut rt = c
        .realtime(
            &session.secret,
            RealtimeOptions::new(["databases.g3.collections.signals.documents"]),
        )
        .unwrap();
    assert_eq!(
        within(rt.recv()).await,
        Some(RealtimeMessage::Connected { reconnected: false })
    );
    let s = Signal {
        pair: "SOLUSDT".into(),
        side: "long".into(),
        revision: 1,
    };
    c.documents("g3", "signals")
        .create("500", &s, None)
        .await
        .unwrap();
    let Some(RealtimeMessage::Event(e)) = within(rt.recv()).await else {
        panic!("expected the create event");
    };
    let doc = e.document::<Signal>().unwrap();
    assert_eq!(doc.id, "500");
    assert_eq!(doc.data, s);
    assert_eq!(e.action(), Some(g3_appwrite::EventAction::Create));
}
