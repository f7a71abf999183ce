//! The queue between gateway events and ingest: bounded, in order, optionally kept in a spool
//! file that survives restarts.

use std::{
    collections::{BTreeSet, VecDeque},
    fs::{self, File, OpenOptions},
    io::{BufRead as _, BufReader, Seek as _, SeekFrom, Write as _},
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard},
};

use tokio::sync::Notify;

use super::IngestEvent;

/// Most events in one request (ingest's `MAX_BATCH`).
pub const MAX_BATCH_EVENTS: usize = 100;
/// Largest request body (ingest's limit is 1 MiB).
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// The queue between Discord events and ingest, optionally mirrored in a spool file.
pub struct Outbox {
    inner: Mutex<Queue>,
    notify: Notify,
    capacity: usize,
}

struct Queue {
    entries: VecDeque<(IngestEvent, u64)>,
    spool: Option<Spool>,
    /// Events dropped since the queue last had room.
    dropped: u64,
}

impl Outbox {
    /// An outbox holding at most `capacity` events; with `spool_dir`, what an earlier run left
    /// there is loaded first.
    pub fn open(capacity: usize, spool_dir: Option<&Path>) -> std::io::Result<Self> {
        let (spool, entries) = match spool_dir {
            Some(dir) => {
                let (spool, entries) = Spool::open(dir)?;
                (Some(spool), entries)
            }
            None => (None, VecDeque::new()),
        };
        if !entries.is_empty() {
            tracing::info!(
                pending = entries.len(),
                "collector resumes with events left in its spool"
            );
        }
        Ok(Self {
            inner: Mutex::new(Queue {
                entries,
                spool,
                dropped: 0,
            }),
            notify: Notify::new(),
            capacity: capacity.max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues events in order. Returns those that did not fit (the queue is full); they are
    /// not kept anywhere.
    pub fn push(&self, events: Vec<IngestEvent>) -> Vec<IngestEvent> {
        let mut refused = Vec::new();
        {
            let mut q = self.lock();
            for event in events {
                if q.entries.len() >= self.capacity {
                    if q.dropped == 0 {
                        tracing::warn!(
                            capacity = self.capacity,
                            "collector queue is full (ingest unreachable for long?): new events are dropped; their channels are read again from history once it drains"
                        );
                    }
                    q.dropped += 1;
                    refused.push(event);
                    continue;
                }
                let line = match serde_json::to_string(&event) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "event not serialisable; dropped");
                        continue;
                    }
                };
                let len = line.len() as u64 + 1;
                if let Some(spool) = q.spool.as_mut()
                    && let Err(e) = spool.append(&line)
                {
                    tracing::error!(error = %e, "collector spool not writable: event kept in memory only");
                }
                q.entries.push_back((event, len));
            }
        }
        self.notify.notify_one();
        refused
    }

    /// The front of the queue as one batch within ingest's limits (at least one event; at most
    /// `max_events`), waiting while the queue is empty.
    pub async fn front(&self, max_events: usize) -> Vec<IngestEvent> {
        loop {
            let notified = self.notify.notified();
            {
                let q = self.lock();
                if !q.entries.is_empty() {
                    let mut batch = Vec::new();
                    let mut bytes = r#"{"events":[]}"#.len();
                    for (event, len) in q.entries.iter().take(max_events.max(1)) {
                        let size = *len as usize; // the line's newline stands for the comma
                        if !batch.is_empty() && bytes + size > MAX_BATCH_BYTES {
                            break;
                        }
                        bytes += size;
                        batch.push(event.clone());
                    }
                    return batch;
                }
            }
            notified.await;
        }
    }

    /// Removes the first `n` events (delivered, or refused for good).
    pub fn ack(&self, n: usize) {
        let mut q = self.lock();
        let mut bytes = 0;
        for _ in 0..n {
            match q.entries.pop_front() {
                Some((_, len)) => bytes += len,
                None => break,
            }
        }
        let empty = q.entries.is_empty();
        if q.entries.len() < self.capacity {
            if q.dropped > 0 {
                tracing::warn!(
                    dropped = q.dropped,
                    "collector queue has room again; dropped events are recovered by backfill where possible"
                );
            }
            q.dropped = 0;
        }
        if let Some(spool) = q.spool.as_mut()
            && let Err(e) = spool.consume(bytes, empty)
        {
            tracing::error!(error = %e, "collector spool position not saved: events may be sent again after a restart");
        }
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ids of the `message.create` events of `channel` waiting.
    pub(super) fn pending_creates(&self, channel: u64) -> BTreeSet<u64> {
        self.lock()
            .entries
            .iter()
            .filter(|(e, _)| e.kind == "message.create" && e.channel_id() == Some(channel))
            .filter_map(|(e, _)| e.message_id())
            .collect()
    }
}

/// The queue on disk: `outbox.jsonl` holds one event per line, `outbox.pos` the byte offset of
/// the first one not yet delivered. Appends go to the end; delivery only moves the offset, and
/// the file starts over whenever the queue is empty.
struct Spool {
    file: File,
    pos_path: PathBuf,
    pos: u64,
}

impl Spool {
    fn open(dir: &Path) -> std::io::Result<(Spool, VecDeque<(IngestEvent, u64)>)> {
        fs::create_dir_all(dir)?;
        let path = dir.join("outbox.jsonl");
        let pos_path = dir.join("outbox.pos");
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let pos: u64 = fs::read_to_string(&pos_path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let size = file.metadata()?.len();
        let mut entries = VecDeque::new();
        let mut good_end = pos.min(size);
        file.seek(SeekFrom::Start(good_end))?;
        let mut reader = BufReader::new(&file);
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line)?;
            if n == 0 || !line.ends_with('\n') {
                // End, or a line cut short by a crash: dropped.
                break;
            }
            match serde_json::from_str::<IngestEvent>(line.trim_end()) {
                Ok(event) => entries.push_back((event, n as u64)),
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable line in the collector spool skipped")
                }
            }
            good_end += n as u64;
        }
        drop(reader);
        let mut spool = Spool {
            file,
            pos_path,
            pos: pos.min(size),
        };
        if good_end < size {
            spool.file.set_len(good_end)?;
        }
        if entries.is_empty() {
            spool.reset()?;
        }
        Ok((spool, entries))
    }

    fn append(&mut self, line: &str) -> std::io::Result<()> {
        self.file.write_all(format!("{line}\n").as_bytes())?;
        self.file.flush()
    }

    fn consume(&mut self, bytes: u64, empty: bool) -> std::io::Result<()> {
        if empty {
            return self.reset();
        }
        self.pos += bytes;
        write_atomically(&self.pos_path, self.pos.to_string().as_bytes())
    }

    fn reset(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.pos = 0;
        write_atomically(&self.pos_path, b"0")
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes)?;
    fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn create(channel: u64, id: u64) -> IngestEvent {
        IngestEvent::new(
            "message.create",
            json!({ "id": id.to_string(), "channel_id": channel.to_string(), "content": "x" }),
        )
    }

    #[tokio::test]
    async fn the_outbox_keeps_order_bounds_batches_and_refuses_beyond_capacity() {
        let outbox = Outbox::open(3, None).unwrap();
        assert!(outbox.push(vec![create(1, 10), create(1, 11)]).is_empty());
        let refused = outbox.push(vec![create(1, 12), create(1, 13)]);
        assert_eq!(refused, vec![create(1, 13)]);
        assert_eq!(outbox.front(2).await, vec![create(1, 10), create(1, 11)]);
        outbox.ack(2);
        assert_eq!(outbox.front(100).await, vec![create(1, 12)]);
        outbox.ack(1);
        assert!(outbox.is_empty());
    }

    #[tokio::test]
    async fn the_spool_survives_a_restart_and_forgets_what_was_delivered() {
        let dir = tempfile::tempdir().unwrap();
        {
            let outbox = Outbox::open(10, Some(dir.path())).unwrap();
            outbox.push((0..5).map(|i| create(2, 20 + i)).collect());
            assert_eq!(outbox.front(2).await.len(), 2);
            outbox.ack(2);
        }
        // A crash in the middle of an append leaves a partial line: it is dropped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("outbox.jsonl"))
            .unwrap()
            .write_all(b"{\"type\":\"message.cr")
            .unwrap();
        let outbox = Outbox::open(10, Some(dir.path())).unwrap();
        assert_eq!(
            outbox.front(100).await,
            (2..5).map(|i| create(2, 20 + i)).collect::<Vec<_>>()
        );
        outbox.push(vec![create(2, 30)]);
        outbox.ack(4);
        assert!(outbox.is_empty());
        assert_eq!(
            std::fs::metadata(dir.path().join("outbox.jsonl"))
                .unwrap()
                .len(),
            0,
            "an empty queue starts the file over"
        );
        let outbox = Outbox::open(10, Some(dir.path())).unwrap();
        assert!(outbox.is_empty());
    }
}
