//! Live rows: browser-like readers of `/feed/stream`, the delay from a signal written to
//! Appwrite to its SSE event at one reader, and many concurrent streams held by a child process
//! (this binary, `--stream-clients`): the server's memory per stream, and the delay from each
//! write to its event at every stream.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use g3_store::{Collection, models::Signal};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpStream,
};

use super::{Stack, WAIT, seed};
use crate::stats::{Cpu, Samples};

/// Where a stream connects, as whom: the dashboard's address and a paid member's cookies.
#[derive(Clone)]
pub struct Target {
    pub addr: std::net::SocketAddr,
    pub cookie: String,
}

/// A browser-like reader of `/feed/stream` over a plain socket: sends the request a browser's
/// `EventSource` sends and then reads the body as it comes.
pub struct StreamReader {
    socket: TcpStream,
    seen: Vec<u8>,
}

impl StreamReader {
    pub async fn open(target: &Target) -> anyhow::Result<Self> {
        let mut socket = TcpStream::connect(target.addr).await?;
        let request = format!(
            "GET /feed/stream HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\nCookie: {}\r\n\r\n",
            target.addr, target.cookie
        );
        socket.write_all(request.as_bytes()).await?;
        let mut reader = Self {
            socket,
            seen: Vec::new(),
        };
        let head = reader.read_until(b"\r\n\r\n").await?;
        if !head.starts_with(b"HTTP/1.1 200") {
            bail!(
                "stream refused: {}",
                String::from_utf8_lossy(&head[..head.len().min(80)])
            );
        }
        Ok(reader)
    }

    /// Reads until `needle` has arrived; returns what was read up to it and forgets it. Each
    /// byte is searched once, as a browser's `EventSource` parses a stream as it comes: the
    /// harness must not spend more per event than the browser it stands for.
    async fn read_until(&mut self, needle: &[u8]) -> anyhow::Result<Vec<u8>> {
        let finder = memchr::memmem::Finder::new(needle);
        let mut buf = [0u8; 4096];
        // Where the search goes on: bytes before it cannot start `needle`.
        let mut from = 0;
        loop {
            if let Some(at) = finder.find(&self.seen[from..]) {
                let rest = self.seen.split_off(from + at + needle.len());
                return Ok(std::mem::replace(&mut self.seen, rest));
            }
            from = self.seen.len().saturating_sub(needle.len() - 1);
            let n = tokio::time::timeout(WAIT, self.socket.read(&mut buf))
                .await
                .context("nothing arrived on the stream in time")??;
            if n == 0 {
                bail!("the stream ended");
            }
            // Only what may still hold the start of `needle` is worth keeping.
            if from > 64 * 1024 {
                self.seen.drain(..from);
                from = 0;
            }
            self.seen.extend_from_slice(&buf[..n]);
        }
    }
}

/// What the live event of signal `id` carries: `"id":"…"`.
fn needle(id: &str) -> String {
    format!("\"id\":\"{id}\"")
}

/// Writes a signal and waits until a reader sees it; retried until the upstream subscription
/// is live (it connects in the background after `web::run` starts).
async fn warm_up(stack: &Stack, reader: &mut StreamReader, name: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    let signals = Collection::<Signal>::new(&stack.client);
    for attempt in 0.. {
        let id = format!("bench-warm-{name}-{attempt}");
        signals.create(&id, &seed::live(&id), None).await?;
        let got =
            tokio::time::timeout(Duration::from_millis(500), reader.read_until(id.as_bytes()))
                .await;
        if matches!(got, Ok(Ok(_))) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the live feed never delivered a signal (is the upstream subscribed?)");
        }
    }
    unreachable!("the loop returns or fails")
}

/// Returns once the server's upstream Realtime subscription delivers signals.
pub async fn wait_live(stack: &Stack) -> anyhow::Result<()> {
    let mut reader = StreamReader::open(&stack.target).await?;
    warm_up(stack, &mut reader, "start").await
}

pub async fn write_to_event(stack: &Stack, writes: usize) -> anyhow::Result<Samples> {
    let mut reader = StreamReader::open(&stack.target).await?;
    warm_up(stack, &mut reader, "latency").await?;
    let signals = Collection::<Signal>::new(&stack.client);
    let mut samples = Samples::with_capacity(writes);
    let started = Instant::now();
    for i in 0..writes {
        let id = format!("bench-live-{i}");
        let doc = seed::live(&id);
        let t = Instant::now();
        if signals.create(&id, &doc, None).await.is_err() {
            samples.errors += 1;
            continue;
        }
        match reader.read_until(needle(&id).as_bytes()).await {
            Ok(_) => samples.record(t.elapsed()),
            Err(_) => samples.errors += 1,
        }
    }
    samples.wall = started.elapsed();
    Ok(samples)
}

/// This process's resident memory in KB.
fn rss_kb() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/self/status")
}

/// What [`many_streams`] measured.
pub struct Fanout {
    /// The first signal's arrival at every stream.
    pub first: Samples,
    /// The server's memory held per open stream.
    pub kb_per_stream: f64,
    /// Each of the following writes' arrival at every stream.
    pub series: Samples,
    /// CPU time per delivery (one event reaching one stream) over the series, in µs: of this
    /// process (the web server, with the emulator and this loop) and of the stream clients.
    pub cpu_per_delivery: Option<(f64, f64)>,
}

/// Opens `streams` streams in a child process (so this process's memory is the server's
/// alone), measures the server's memory they hold, then writes `1 + writes` signals one at a
/// time and times each one's arrival at every stream (wall clock on both sides: same machine);
/// the next write waits until every stream has the last one (or gave up on it).
pub async fn many_streams(stack: &Stack, streams: usize, writes: usize) -> anyhow::Result<Fanout> {
    // One warm stream first, so the upstream is known to be live and lazily built state
    // (buffers, pools) is not counted per stream.
    let mut warm = StreamReader::open(&stack.target).await?;
    warm_up(stack, &mut warm, "fanout").await?;
    let before = rss_kb()?;

    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--stream-clients")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the stream clients (this binary, --stream-clients)")?;
    let mut stdin = child.stdin.take().context("child stdin")?;
    let mut lines = BufReader::new(child.stdout.take().context("child stdout")?).lines();
    let open_started = Instant::now();
    stdin
        .write_all(
            format!(
                "{}\t{}\t{streams}\n",
                stack.target.addr, stack.target.cookie
            )
            .as_bytes(),
        )
        .await?;
    let opened = lines
        .next_line()
        .await?
        .context("the stream clients quit")?;
    let failed: u64 = opened
        .strip_prefix("opened ")
        .and_then(|v| v.split(' ').nth(1))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("unexpected reply from the stream clients: {opened}"))?;
    let after = rss_kb()?;
    let open = streams as u64 - failed;
    eprintln!(
        "web: {open} streams open in {:.1} s ({failed} failed); server RSS {before} KB -> {after} KB",
        open_started.elapsed().as_secs_f64()
    );
    let kb_per_stream = after.saturating_sub(before) as f64 / open.max(1) as f64;

    let signals = Collection::<Signal>::new(&stack.client);
    let mut first = Samples::with_capacity(streams);
    let mut series = Samples::with_capacity(streams * writes);
    first.errors = failed;
    series.errors = if writes > 0 { failed } else { 0 };
    let series_started = Instant::now();
    let child_pid = child.id().context("the stream clients quit")?;
    let mut cpu_before = None;
    for round in 0..=writes {
        if round == 1 {
            cpu_before = Cpu::now().zip(Cpu::of(child_pid));
        }
        let id = if round == 0 {
            "bench-fanout".to_owned()
        } else {
            format!("bench-fanout-{round}")
        };
        let samples = if round == 0 { &mut first } else { &mut series };
        let started = Instant::now();
        stdin.write_all(format!("{id}\n").as_bytes()).await?;
        stdin.flush().await?;
        let written = unix_micros();
        signals.create(&id, &seed::live(&id), None).await?;
        let arrived = lines
            .next_line()
            .await?
            .context("the stream clients quit")?;
        for at in arrived.split(' ').skip(1) {
            match at.parse::<u64>() {
                Ok(0) | Err(_) => samples.errors += 1,
                Ok(at) => samples.record(Duration::from_micros(at.saturating_sub(written))),
            }
        }
        if round == 0 {
            first.wall = started.elapsed();
        }
    }
    series.wall = series_started.elapsed();
    let deliveries = usize::try_from(open).unwrap_or(0).saturating_mul(writes);
    let cpu_per_delivery = cpu_before
        .zip(Cpu::now().zip(Cpu::of(child_pid)))
        .filter(|_| writes > 0)
        .map(|((server0, clients0), (server1, clients1))| {
            (
                server1.since(server0).micros_per(deliveries),
                clients1.since(clients0).micros_per(deliveries),
            )
        });
    drop(stdin);
    let _ = child.wait().await;
    drop(warm);
    Ok(Fanout {
        first,
        kb_per_stream,
        series,
        cpu_per_delivery,
    })
}

fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The child side of [`many_streams`] (`bench --stream-clients`). Reads `addr\tcookie\tcount`,
/// opens the streams 64 at a time and answers `opened <ok> <failed>`. Every stream is then
/// read as it comes, as a browser reads it (each byte looked at once, no wake-up but the
/// socket's), and each event's signal id noted with when it was read. For every signal id it
/// reads on stdin it answers `arrived` and, per open stream, when that stream read the signal
/// (µs since the epoch, 0 if it did not within the wait). Ends when stdin closes.
pub async fn stream_clients() -> anyhow::Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    let first = lines.next_line().await?.context("no target on stdin")?;
    let mut parts = first.split('\t');
    let (Some(addr), Some(cookie), Some(count)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("expected addr<TAB>cookie<TAB>count, got {first}");
    };
    let target = Target {
        addr: addr.parse()?,
        cookie: cookie.to_owned(),
    };
    let count: usize = count.parse()?;
    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::channel::<bool>(count.max(1));
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<Seen>();
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    for index in 0..count {
        let (gate, opened, seen, target) = (
            gate.clone(),
            opened_tx.clone(),
            seen_tx.clone(),
            target.clone(),
        );
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let reader = StreamReader::open(&target).await;
            drop(permit);
            let _ = opened.send(reader.is_ok()).await;
            drop(opened);
            // Never opened: counted already, takes no part in the rounds.
            if let Ok(reader) = reader {
                reader.report(index, seen).await;
            }
        });
    }
    drop((opened_tx, seen_tx));
    let (mut ok, mut failed) = (0usize, 0usize);
    while let Some(opened) = opened_rx.recv().await {
        if opened { ok += 1 } else { failed += 1 }
    }
    out.write_all(format!("opened {ok} {failed}\n").as_bytes())
        .await?;
    out.flush().await?;
    // When each stream read each signal, as reported; a stream that ended is given up.
    let mut arrivals: std::collections::HashMap<String, Vec<(usize, u64)>> = Default::default();
    let mut ended = std::collections::HashSet::new();
    while let Some(id) = lines.next_line().await? {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = arrivals.get(&id).map_or(&[][..], Vec::as_slice);
            // Every stream has it or has ended (one that read it, then ended, counts once).
            let gone = ended.iter().filter(|s| !got.iter().any(|(g, _)| g == *s));
            if got.len() + gone.count() >= ok {
                break;
            }
            match tokio::time::timeout_at(deadline, seen_rx.recv()).await {
                Ok(Some(Seen::Event { stream, id, at })) => {
                    arrivals.entry(id).or_default().push((stream, at));
                }
                Ok(Some(Seen::Ended { stream })) => {
                    ended.insert(stream);
                }
                Ok(None) => bail!("every stream task ended"),
                // Those still missing count as never arrived.
                Err(_) => break,
            }
        }
        let got = arrivals.remove(&id).unwrap_or_default();
        let mut reply = String::from("arrived");
        for (_, at) in &got {
            reply.push_str(&format!(" {at}"));
        }
        for _ in got.len()..ok {
            reply.push_str(" 0");
        }
        reply.push('\n');
        out.write_all(reply.as_bytes()).await?;
        out.flush().await?;
    }
    Ok(())
}

/// What a stream reader reports to [`stream_clients`].
enum Seen {
    /// Stream `stream` read the event of signal `id` at `at` (µs since the epoch).
    Event { stream: usize, id: String, at: u64 },
    /// Stream `stream` ended or failed.
    Ended { stream: usize },
}

impl StreamReader {
    /// Reads the stream until it ends, reporting each event that names a signal (`"id":"…"` in
    /// its data: the key cannot occur inside the card's JSON-escaped HTML).
    async fn report(mut self, stream: usize, seen: tokio::sync::mpsc::UnboundedSender<Seen>) {
        let frame_end = memchr::memmem::Finder::new(b"\n\n");
        let key = memchr::memmem::Finder::new(b"\"id\":\"");
        let mut buf = vec![0u8; 16 * 1024];
        // Bytes of `seen` already searched for a frame's end.
        let mut scanned: usize = 0;
        loop {
            let n = match self.socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let at = unix_micros();
            self.seen.extend_from_slice(&buf[..n]);
            while let Some(end) = frame_end.find(&self.seen[scanned.saturating_sub(1)..]) {
                let end = scanned.saturating_sub(1) + end + 2;
                let frame = &self.seen[..end];
                if let Some(start) = key.find(frame).map(|k| k + 6)
                    && let Some(len) = frame[start..].iter().position(|&b| b == b'"')
                {
                    let id = String::from_utf8_lossy(&frame[start..start + len]).into_owned();
                    if seen.send(Seen::Event { stream, id, at }).is_err() {
                        return;
                    }
                }
                self.seen.drain(..end);
                scanned = 0;
            }
            scanned = self.seen.len();
        }
        let _ = seen.send(Seen::Ended { stream });
    }
}
