//! The status row's web side: `web::run` in this process on the tracker bench's emulator (its
//! live upstream following `signals` and `signal_outcomes` as a service user), a paid member
//! signed in through the form, and a browser-like reader of their `/feed/stream` that notes
//! when each signal's `outcome` event saying "Entered at" arrives.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use testkit::backend::Backend;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use crate::web::sign_in;

/// How long web gets to connect its upstream and load the outcome book.
const READY: Duration = Duration::from_secs(60);

/// A running web service and the member's stream reader.
pub(super) struct Web {
    /// `(signal id, when its "Entered at" status event was read)`, in arrival order.
    pub entered: mpsc::UnboundedReceiver<(String, Instant)>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<anyhow::Result<()>>,
    reader: JoinHandle<()>,
}

impl Web {
    pub(super) async fn stop(self) {
        self.reader.abort();
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server).await;
    }
}

/// Starts web on `backend`, waits until its outcome book is loaded (`/performance` answers
/// 200, so the upstream is connected) and opens the member's stream.
pub(super) async fn start(backend: &Backend) -> anyhow::Result<Web> {
    let client = backend.client.clone();
    crate::web::people(&client).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let settings = crate::web::settings(backend, &base)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(web::run(settings, listener, async move {
        let _ = stopped.await;
    }));
    let cookie = sign_in(&base).await?;
    let http = reqwest::Client::new();
    let deadline = Instant::now() + READY;
    loop {
        let status = http
            .get(format!("{base}/performance"))
            .header("cookie", &cookie)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        if status == 200 {
            break;
        }
        if Instant::now() > deadline {
            bail!("web's outcome book was not loaded after {READY:?} (/performance: {status})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut socket = TcpStream::connect(addr).await?;
    let request = format!(
        "GET /feed/stream HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nCookie: {cookie}\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await?;
    // The response head, then the body from the reader task.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut byte))
            .await
            .context("no answer from /feed/stream")??;
        if n == 0 {
            bail!("/feed/stream closed before its head");
        }
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 200") {
        bail!("stream refused: {}", String::from_utf8_lossy(&head));
    }
    let (tx, entered) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_entries(socket, tx));
    Ok(Web {
        entered,
        stop,
        server,
        reader,
    })
}

/// Reads the stream (chunked HTTP/1.1, read as plain bytes: chunk sizes sit between frames and
/// never inside the text searched for) and sends the id of every `outcome` event that says the
/// signal was entered, timed as it is read.
async fn read_entries(mut socket: TcpStream, tx: mpsc::UnboundedSender<(String, Instant)>) {
    let mut seen: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let at = Instant::now();
        seen.extend_from_slice(&buf[..n]);
        while let Some(end) = seen.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = seen.drain(..end + 2).collect();
            let frame = String::from_utf8_lossy(&frame);
            if !frame.contains("event: outcome") || !frame.contains("Entered at") {
                continue;
            }
            if let Some(id) = signal_id(&frame) {
                let _ = tx.send((id, at));
            }
        }
    }
}

/// The `"id":"…"` of an event's JSON data.
fn signal_id(frame: &str) -> Option<String> {
    let start = frame.find("\"id\":\"")? + 6;
    let len = frame[start..].find('"')?;
    Some(frame[start..start + len].to_owned())
}
