//! A flood of forged deliveries writes one log line, not one per request, while the metric counts
//! every one. In its own test binary: it installs a global log capture.

mod common;

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use common::{TestApp, order};
use testkit::sellapp::Signing;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_flood_of_forged_deliveries_logs_one_line_and_counts_all() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .init();

    let app = TestApp::spawn().await;
    let body = order("order.completed", 1, "x@x.io", 3301, 9001);
    let started = std::time::Instant::now();
    for n in 0..200 {
        let how = if n % 2 == 0 {
            Signing::Unsigned
        } else {
            Signing::Hmac
        };
        let reply = app.sender.send_signed_by("forged", &body, &body, how).await;
        assert_eq!(reply.status, 401);
    }
    let text = app.metrics().await;
    assert!(
        text.contains("g3_webhook_rejected_signatures_total{endpoint=\"sellapp\"} 200"),
        "{text}"
    );
    let logged = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("rejected unsigned or wrongly signed"))
        .collect();
    // One line for the first rejection, then at most one per 10 s window the flood lasted.
    let windows = 1 + started.elapsed().as_secs() as usize / 10;
    assert!(!lines.is_empty() && lines.len() <= windows, "{logged}");
    assert!(lines[0].contains("rejected=1"), "{}", lines[0]);
}
