//! A fake Discord CDN for attachment tests: real image and PDF bytes, an HTML error page sent
//! with status 200, a 404, an oversized file, a non-image, and a path that fails with 503 until
//! told to recover. Every request is counted.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use axum::{
    Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

/// The smallest valid PNG (1×1, transparent).
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

#[derive(Clone, Default)]
pub struct FakeCdn {
    flaky_recovered: Arc<AtomicBool>,
    pub requests: Arc<AtomicUsize>,
}

impl FakeCdn {
    /// Serves on 127.0.0.1:0; returns the base URL. Paths: `/a/{name}` with name one of
    /// `chart.png`, `doc.pdf`, `error.png` (HTML, 200), `gone.png` (404), `huge.png`
    /// (11 MiB), `tool.exe`, `flaky.png` (503 until [`FakeCdn::recover`]).
    pub async fn spawn(&self) -> String {
        let app = Router::new()
            .route("/a/{name}", get(serve))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake CDN");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}")
    }

    pub fn recover(&self) {
        self.flaky_recovered.store(true, Ordering::SeqCst);
    }
}

async fn serve(State(cdn): State<FakeCdn>, Path(name): Path<String>) -> Response {
    cdn.requests.fetch_add(1, Ordering::SeqCst);
    let png = || ([(header::CONTENT_TYPE, "image/png")], PNG.to_vec()).into_response();
    match name.as_str() {
        "chart.png" => png(),
        "doc.pdf" => (
            [(header::CONTENT_TYPE, "application/pdf")],
            b"%PDF-1.4\n%fake\n".to_vec(),
        )
            .into_response(),
        "error.png" => (
            [(header::CONTENT_TYPE, "text/html")],
            "<!DOCTYPE html><h1>This content is no longer available</h1>",
        )
            .into_response(),
        "gone.png" => StatusCode::NOT_FOUND.into_response(),
        "huge.png" => {
            let mut body = PNG.to_vec();
            body.resize(11 * 1024 * 1024, 0);
            ([(header::CONTENT_TYPE, "image/png")], body).into_response()
        }
        "tool.exe" => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            b"MZ\x90\x00\x03".to_vec(),
        )
            .into_response(),
        "flaky.png" if cdn.flaky_recovered.load(Ordering::SeqCst) => png(),
        "flaky.png" => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
