//! Running the service: slow clients are cut off, SIGTERM-style shutdown lets a delivery in
//! flight finish and stops the background jobs, `/metrics` needs its token on the public
//! listener and none on the private one, and both secrets of a rotation are accepted.

mod common;

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use common::{INGEST_SECRET_PREVIOUS, SECRET, SECRET_PREVIOUS, TestApp, order};
use g3_core::{plans::PlanCatalog, signing};
use g3_store::{
    Collection,
    models::{Subscription, WebhookEvent},
};
use serde_json::json;
use testkit::{backend::Backend, sellapp::Signing};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::{oneshot, watch},
    task::JoinHandle,
};
use webhook::{HttpSettings, Intervals, MetricsAccess, Secret, Settings, Timeouts};

fn settings(backend: &Backend, spool: &std::path::Path, http: HttpSettings) -> Settings {
    Settings {
        appwrite: backend.client_config(),
        sellapp_secret: Secret::new(SECRET),
        previous_secrets: Default::default(),
        plans: PlanCatalog::parse(common::PLANS).unwrap(),
        roles: Default::default(),
        spool_dir: spool.to_path_buf(),
        ingest_secret: None,
        sellapp_api: None,
        intervals: Intervals::default(),
        background_jobs: false,
        http,
    }
}

/// `webhook::run_with_metrics` on 127.0.0.1:0, stopped by sending on the returned channel.
struct Running {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

async fn run(settings: Settings, private_metrics: bool) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics_listener = if private_metrics {
        Some(TcpListener::bind("127.0.0.1:0").await.unwrap())
    } else {
        None
    };
    let metrics_addr = metrics_listener.as_ref().map(|l| l.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(webhook::run_with_metrics(
        settings,
        listener,
        metrics_listener,
        async move {
            let _ = stopped.await;
        },
    ));
    Running {
        addr,
        metrics_addr,
        stop: Some(stop),
        task,
    }
}

async fn read_all(tcp: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_client_trickling_a_body_is_cut_off() {
    let backend = testkit::backend::backend().await;
    let spool = tempfile::tempdir().unwrap();
    let http = HttpSettings {
        timeouts: Timeouts {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_millis(300),
        },
        ..HttpSettings::default()
    };
    let app = run(settings(&backend, spool.path(), http), false).await;
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(
        b"POST /webhooks/sellapp HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
          content-length: 200\r\nconnection: close\r\n\r\n{",
    )
    .await
    .unwrap();
    // A byte every 50 ms: the body keeps moving but never completes in time.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        if tcp.write_all(b" ").await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = read_all(&mut tcp).await;
    assert!(
        answer.starts_with("HTTP/1.1 4"),
        "the body read failed at its deadline: {answer}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "cut off in bounded time"
    );
}

/// A TCP proxy in front of Appwrite that holds the first request touching `webhook_events`
/// until it is opened: a delivery is then provably in flight.
struct Gate {
    endpoint: String,
    held: watch::Receiver<bool>,
    open: watch::Sender<bool>,
}

impl Gate {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}/v1", listener.local_addr().unwrap());
        let (held_tx, held) = watch::channel(false);
        let (open, open_rx) = watch::channel(false);
        let held_tx = Arc::new(held_tx);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (held_tx, mut open_rx) = (Arc::clone(&held_tx), open_rx.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            let chunk = &buf[..n];
                            if chunk.windows(14).any(|w| w == b"webhook_events")
                                && !*open_rx.borrow()
                            {
                                let _ = held_tx.send(true);
                                let _ = open_rx.wait_for(|open| *open).await;
                            }
                            if sw.write_all(chunk).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Self {
            endpoint,
            held,
            open,
        }
    }
}

#[tokio::test]
async fn shutdown_lets_the_delivery_in_flight_finish_and_stops_the_jobs() {
    let backend = testkit::backend::backend().await;
    let gate = Gate::start(backend.addr).await;
    let spool = tempfile::tempdir().unwrap();
    let mut settings = settings(&backend, spool.path(), HttpSettings::default());
    settings.appwrite.endpoint = gate.endpoint.clone();
    settings.background_jobs = true;
    settings.intervals = Intervals {
        retry: Duration::from_millis(50),
        expiry: Duration::from_millis(50),
        reconcile: Duration::from_secs(3600),
    };
    let mut app = run(settings, false).await;

    let sender = testkit::sellapp::SellappSender::new(
        format!("http://{}/webhooks/sellapp", app.addr),
        SECRET,
    );
    let delivery = tokio::spawn(async move {
        sender
            .send(
                &order("order.completed", 4242, "drain@x.io", 3301, 9001),
                Signing::Hmac,
            )
            .await
    });
    // The delivery is being applied (its first write is held at the gate) ...
    let mut held = gate.held.clone();
    tokio::time::timeout(Duration::from_secs(10), held.wait_for(|h| *h))
        .await
        .expect("the delivery reaches Appwrite")
        .unwrap();
    // ... when the shutdown arrives: the listener closes at once ...
    let _ = app.stop.take().unwrap().send(());
    tokio::time::timeout(Duration::from_secs(10), async {
        while TcpStream::connect(app.addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("no new connections after shutdown");
    assert!(!app.task.is_finished(), "a delivery is still in flight");
    // ... and the delivery still completes and is answered.
    let _ = gate.open.send(true);
    let reply = tokio::time::timeout(Duration::from_secs(10), delivery)
        .await
        .expect("the delivery is answered")
        .unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["status"], "applied");
    tokio::time::timeout(Duration::from_secs(10), &mut app.task)
        .await
        .expect("the service and its background jobs stop")
        .unwrap()
        .unwrap();
    let subs = Collection::<Subscription>::new(&backend.client)
        .list(&[])
        .await
        .unwrap();
    assert_eq!(subs.total, 1, "the effect is durable");
}

async fn status(url: String, token: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn metrics_need_the_token_on_the_public_listener_and_nothing_on_the_private_one() {
    let backend = testkit::backend::backend().await;
    let spool = tempfile::tempdir().unwrap();
    let http = HttpSettings {
        metrics: MetricsAccess::from_token(Some("s3cret-metrics")),
        ..HttpSettings::default()
    };
    let app = run(settings(&backend, spool.path(), http), true).await;
    let public = format!("http://{}/metrics", app.addr);
    assert_eq!(
        status(public.clone(), None).await,
        404,
        "no token: no such page"
    );
    assert_eq!(status(public.clone(), Some("wrong")).await, 404);
    assert_eq!(status(public.clone(), Some("s3cret-metrics")).await, 200);
    let private = format!("http://{}/metrics", app.metrics_addr.unwrap());
    assert_eq!(status(private.clone(), None).await, 200);
    let text = reqwest::get(private).await.unwrap().text().await.unwrap();
    assert!(
        text.contains("g3_webhook_rejected_signatures_total"),
        "{text}"
    );
    // The private listener serves metrics only.
    assert_eq!(
        status(format!("http://{}/readyz", app.metrics_addr.unwrap()), None).await,
        404
    );

    // No token configured: hidden on the public listener, whatever the caller sends.
    let spool = tempfile::tempdir().unwrap();
    let hidden = run(
        settings(&backend, spool.path(), HttpSettings::default()),
        false,
    )
    .await;
    let public = format!("http://{}/metrics", hidden.addr);
    assert_eq!(status(public.clone(), None).await, 404);
    assert_eq!(status(public, Some("anything")).await, 404);
}

#[tokio::test]
async fn both_sellapp_secrets_of_a_rotation_are_accepted() {
    let app = TestApp::spawn().await;
    let body = order("order.completed", 7001, "rotate@x.io", 3301, 9001);
    let old = app
        .sender
        .send_signed_by(SECRET_PREVIOUS, &body, &body, Signing::Hmac)
        .await;
    assert_eq!(old.status, 200, "{:?}", old.body);
    let body = order("order.completed", 7002, "rotate@x.io", 3301, 9001);
    let new = app
        .sender
        .send_signed_by(
            SECRET,
            &body,
            &body,
            Signing::Standard {
                id: "msg_rotation_new",
                skew_secs: 0,
            },
        )
        .await;
    assert_eq!(new.status, 200, "{:?}", new.body);
    let body = order("order.completed", 7003, "rotate@x.io", 3301, 9001);
    let old_standard = app
        .sender
        .send_signed_by(
            SECRET_PREVIOUS,
            &body,
            &body,
            Signing::Standard {
                id: "msg_rotation_old",
                skew_secs: 0,
            },
        )
        .await;
    assert_eq!(old_standard.status, 200, "{:?}", old_standard.body);
    let forged = app
        .sender
        .send_signed_by("neither", &body, &body, Signing::Hmac)
        .await;
    assert_eq!(forged.status, 401);
    assert_eq!(app.count::<WebhookEvent>().await, 3);
    assert_eq!(
        app.state
            .metrics
            .rejected_count(webhook::metrics::Endpoint::Sellapp),
        1
    );
}

#[tokio::test]
async fn both_ingest_secrets_of_a_rotation_are_accepted() {
    const CURRENT: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let app = TestApp::spawn_with_ingest(CURRENT).await;
    let send = |secret: &'static str, id: &'static str| {
        let url = format!("{}/ingest/v1/events", app.url);
        async move {
            // A channel without a route: accepted and dropped, which is all this needs.
            let body = json!({ "type": "message.create", "message": {
                "id": "1", "channel_id": "55", "guild_id": "7",
                "author": { "id": "9", "username": "caller" }, "content": "hi",
                "embeds": [], "attachments": [], "timestamp": "2026-01-01T00:00:00+00:00" } })
            .to_string();
            let ts = time::OffsetDateTime::now_utc().unix_timestamp();
            reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", ts.to_string())
                .header(
                    "webhook-signature",
                    signing::standard_signature(secret, id, ts, body.as_bytes()),
                )
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(send(CURRENT, "col_current").await, 200);
    assert_eq!(send(INGEST_SECRET_PREVIOUS, "col_previous").await, 200);
    assert_eq!(send("whsec_bm9ib2R5", "col_forged").await, 401);
    assert_eq!(
        app.state
            .metrics
            .rejected_count(webhook::metrics::Endpoint::Ingest),
        1
    );
}

#[tokio::test]
async fn a_flood_of_forged_deliveries_is_counted_exactly() {
    let app = TestApp::spawn().await;
    let body = order("order.completed", 1, "x@x.io", 3301, 9001);
    for _ in 0..40 {
        let reply = app.sender.send(&body, Signing::Unsigned).await;
        assert_eq!(reply.status, 401);
    }
    let text = app.metrics().await;
    assert!(
        text.contains("g3_webhook_rejected_signatures_total{endpoint=\"sellapp\"} 40"),
        "{text}"
    );
    assert_eq!(app.count::<WebhookEvent>().await, 0);
}
