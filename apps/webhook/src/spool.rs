//! The local spool: where a failed delivery is written when Appwrite itself is unreachable, so
//! the failure is durable even then. One JSON file per delivery, written to a temporary name,
//! synced and renamed into place (a crash never leaves half a record). The worker drains the
//! spool into `webhook_failures` once Appwrite answers again.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use g3_access::NewFailure;
use serde::{Deserialize, Serialize};

/// A failed delivery as the spool keeps it: what `webhook_failures` needs to retry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpooledFailure {
    pub delivery_id: String,
    pub event: Option<String>,
    pub email: Option<String>,
    /// The raw body, as received (UTF-8; Sell.app sends JSON).
    pub payload: String,
    pub headers: String,
    pub error: String,
    pub retryable: bool,
}

/// The failure to record in Appwrite, retried after the usual backoff (`retry_now: false`).
impl<'a> From<&'a SpooledFailure> for NewFailure<'a> {
    fn from(f: &'a SpooledFailure) -> Self {
        NewFailure {
            delivery_id: &f.delivery_id,
            event: f.event.as_deref(),
            email: f.email.as_deref(),
            payload: f.payload.as_bytes(),
            headers: &f.headers,
            error: &f.error,
            retryable: f.retryable,
            retry_now: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating spool directory {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn path_for(&self, delivery_id: &str) -> PathBuf {
        // Delivery ids are ours (hex) or Sell.app's; keep file names safe either way.
        let safe: String = delivery_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(96)
            .collect();
        self.dir.join(format!("{safe}.json"))
    }

    /// Writes one failure durably. The same delivery overwrites its earlier record.
    pub fn put(&self, failure: &SpooledFailure) -> anyhow::Result<()> {
        let path = self.path_for(&failure.delivery_id);
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(failure)?;
        let mut file =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("moving spool record to {}", path.display()))?;
        // Make the rename itself durable.
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Every spooled failure, oldest file name first, with its path for [`Spool::remove`].
    pub fn list(&self) -> anyhow::Result<Vec<(PathBuf, SpooledFailure)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            match serde_json::from_slice(&text) {
                Ok(failure) => out.push((path, failure)),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "unreadable spool record left in place")
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub fn remove(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))
    }

    pub fn len(&self) -> usize {
        self.list().map(|l| l.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_list_remove_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let f = SpooledFailure {
            delivery_id: "msg/../../etc".into(),
            event: Some("order.completed".into()),
            email: None,
            payload: "{}".into(),
            headers: "{}".into(),
            error: "appwrite down".into(),
            retryable: true,
        };
        spool.put(&f).unwrap();
        spool.put(&f).unwrap();
        let listed = spool.list().unwrap();
        assert_eq!(listed.len(), 1, "same delivery overwrites");
        assert_eq!(listed[0].1, f);
        assert!(
            listed[0].0.starts_with(dir.path()),
            "file name is sanitised"
        );
        spool.remove(&listed[0].0).unwrap();
        assert!(spool.is_empty());
    }
}
