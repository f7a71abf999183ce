//! Running web in production: replicas that each follow Realtime on their own, a SIGTERM that
//! drains (open live streams end, requests in flight finish, `run` returns promptly), and
//! `/metrics` behind a bearer token on the public listener or open on a separate one.

mod common;

use std::time::Duration;

use common::{Browser, METRICS_TOKEN, PASSWORD, Server, TestApp, metrics_of};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use web::MetricsAccess;

/// How long a stopping server may take to return, open streams included.
const PROMPTLY: Duration = Duration::from_secs(5);

async fn member(app: &TestApp, email: &str) -> Browser {
    let b = app.verified(email).await;
    app.make_paid(email).await;
    b
}

/// Waits (bounded) until the web at `base` reports its upstream subscription live.
async fn wait_upstream(base: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics_of(base).await;
        if text.contains("g3_web_upstream_connected 1") {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn each_replica_follows_realtime_itself_and_outlives_the_others() {
    let app = TestApp::spawn().await;
    let mut replica = app.replica().await;
    let mut on_first = member(&app, "two@example.com").await;
    let mut on_second = common::browser(&replica.url);
    on_second.jar = on_first.jar.clone();
    wait_upstream(&app.url).await;
    wait_upstream(&replica.url).await;
    let mut first = on_first.stream(None).await;
    let mut second = on_second.stream(None).await;
    assert_eq!(
        (first.status, second.status),
        (StatusCode::OK, StatusCode::OK)
    );

    app.seed_signal("7100", |_| {}).await;
    for stream in [&mut first, &mut second] {
        let e = stream.next().await.expect("an event on every replica");
        assert_eq!(e.event, "signal");
        assert_eq!(e.json()["id"], "7100");
    }

    // One replica going away leaves the other's feed running.
    replica.shutdown(PROMPTLY).await.unwrap();
    assert!(second.next().await.is_none(), "its stream ended");
    app.seed_signal("7101", |_| {}).await;
    let e = first
        .next()
        .await
        .expect("the first replica still delivers");
    assert_eq!(e.json()["id"], "7101");
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_run_returns_promptly() {
    let app = TestApp::spawn().await;
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_url = format!("http://{}", metrics.local_addr().unwrap());
    let mut server = Server::start(app.settings.clone(), Some(metrics)).await;
    let mut b = member(&app, "open@example.com").await;
    b.switch_to(&server.url);
    let mut streams = Vec::new();
    for _ in 0..3 {
        let s = b.stream(None).await;
        assert_eq!(s.status, StatusCode::OK);
        streams.push(s);
    }
    let before = reqwest::get(format!("{metrics_url}/metrics"))
        .await
        .unwrap();
    assert_eq!(before.status(), StatusCode::OK);

    let started = std::time::Instant::now();
    server.shutdown(PROMPTLY).await.unwrap();
    assert!(started.elapsed() < PROMPTLY);
    for mut s in streams {
        // The body ends cleanly: end of stream, not a timeout.
        assert!(s.next_within(Duration::from_secs(2)).await.is_none());
    }
    // Both listeners are closed.
    for base in [&server.url, &metrics_url] {
        let refused = reqwest::get(format!("{base}/healthz")).await;
        assert!(refused.is_err(), "{base} still answers");
    }
}

#[tokio::test]
async fn a_request_in_flight_when_shutdown_starts_still_gets_its_answer() {
    let app = TestApp::spawn().await;
    let mut server = app.replica().await;
    let addr = server.url.trim_start_matches("http://").to_owned();
    let csrf = "c".repeat(64);
    let body = format!("email=late%40example.com&password=x&csrf={csrf}");
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(
        format!(
            "POST /signin HTTP/1.1\r\nhost: {addr}\r\ncookie: g3_csrf={csrf}\r\n\
             content-type: application/x-www-form-urlencoded\r\nexpect: 100-continue\r\n\
             content-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // `100 Continue` comes when the handler starts reading the body: the request is in flight.
    let mut interim = Vec::new();
    tokio::time::timeout(PROMPTLY, async {
        while !interim.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(
                tcp.read(&mut byte).await.unwrap(),
                1,
                "connection closed early"
            );
            interim.push(byte[0]);
        }
    })
    .await
    .expect("100 Continue");
    assert!(interim.starts_with(b"HTTP/1.1 100"), "{interim:?}");

    server.stop();
    // Wait (bounded) until the server has stopped accepting: shutdown is under way.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(&addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tcp.write_all(body.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(PROMPTLY, tcp.read_to_end(&mut answer))
        .await
        .expect("the answer comes")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
    assert!(!answer.starts_with("HTTP/1.1 5"), "{answer}");
    assert!(
        !answer.starts_with("HTTP/1.1 403"),
        "the CSRF check passed: {answer}"
    );
    server.stopped(PROMPTLY).await.unwrap();
}

#[tokio::test]
async fn public_metrics_need_the_bearer_token() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", app.url);
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = http.get(&url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = http
        .get(&url)
        .header("authorization", format!("Basic {METRICS_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = http
        .get(&url)
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("g3_web_sse_clients "));
}

#[tokio::test]
async fn without_a_token_metrics_are_only_on_the_metrics_listener() {
    let app = TestApp::spawn().await;
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_url = format!("http://{}", metrics.local_addr().unwrap());
    let settings = web::Settings {
        metrics: MetricsAccess::Hidden,
        ..app.settings.clone()
    };
    let mut server = Server::start(settings, Some(metrics)).await;
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/metrics", server.url))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "not on the public listener"
    );

    let r = http
        .get(format!("{metrics_url}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    assert!(text.contains("g3_web_requests_total"), "{text}");
    // The metrics listener serves nothing else.
    for path in ["/feed", "/signin", "/admin"] {
        let r = http
            .get(format!("{metrics_url}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // The dashboard itself is unaffected.
    let mut b = common::browser(&server.url);
    assert_eq!(b.get("/healthz").await.status, StatusCode::OK);
    let r = b.sign_in("nobody@example.com", PASSWORD).await;
    assert!(!r.status.is_server_error(), "{}", r.status);
    server.shutdown(PROMPTLY).await.unwrap();
}
