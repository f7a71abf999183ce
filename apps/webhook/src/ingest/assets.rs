//! Copies signal attachments from Discord's CDN into bucket `signal_assets`, because CDN links
//! expire. A download's HTTP status is checked, its size capped and its type decided by its
//! first bytes, never by its name: images (png, jpeg, gif, webp) and PDFs are stored, anything
//! else is listed as skipped, and so is a URL the [`AttachmentPolicy`] refuses (a host off the
//! allow-list, a non-public address, a redirect to either). A failed download leaves the
//! attachment pending; the worker tries again later, and after [`MAX_TRIES`] it is skipped with
//! the reason.

use std::sync::Arc;

use bytes::BytesMut;
use g3_access::KeyedLocks;
use g3_appwrite::{Client, UploadFile};
use g3_core::ids;
use g3_store::{
    Collection,
    models::{AttachmentRef, AttachmentState, Signal},
    schema::BUCKET_SIGNAL_ASSETS,
};
use tracing::{info, warn};

use super::cdn::{self, AttachmentPolicy};

/// Largest attachment stored (the bucket's limit).
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
/// Downloads tried before an attachment is given up on.
pub const MAX_TRIES: u32 = 8;

/// A type recognised by its magic bytes: (mime type, file extension).
pub fn sniff(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    match bytes {
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(("image/png", "png")),
        [0xFF, 0xD8, 0xFF, ..] => Some(("image/jpeg", "jpg")),
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(("image/gif", "gif")),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some(("image/webp", "webp")),
        [b'%', b'P', b'D', b'F', b'-', ..] => Some(("application/pdf", "pdf")),
        _ => None,
    }
}

/// The Storage file id of one attachment: derived, so a retry finds the earlier upload.
pub fn file_id(message_id: &str, attachment_id: &str) -> String {
    ids::derive("asset", &[message_id, attachment_id])
}

enum Fetched {
    Ok(Vec<u8>, &'static str, &'static str),
    /// Not storable whatever we do.
    Skip(String),
    /// Try again later.
    Retry(String),
}

/// The CDN client and the policy it enforces.
pub struct Downloader {
    http: reqwest::Client,
    policy: AttachmentPolicy,
}

impl Downloader {
    pub fn new(policy: AttachmentPolicy) -> reqwest::Result<Self> {
        Ok(Self {
            http: cdn::client(&policy)?,
            policy,
        })
    }

    /// Downloads one attachment within the policy's deadline.
    async fn fetch(&self, url: &str) -> Fetched {
        match tokio::time::timeout(self.policy.timeout, self.fetch_unbounded(url)).await {
            Ok(fetched) => fetched,
            Err(_) => Fetched::Retry(format!(
                "download took longer than {} s",
                self.policy.timeout.as_secs()
            )),
        }
    }

    /// Follows redirects by hand, checking every hop's URL against the policy (its address is
    /// checked by the client's resolver when it connects).
    async fn fetch_unbounded(&self, url: &str) -> Fetched {
        let mut url = match reqwest::Url::parse(url) {
            Ok(u) => u,
            Err(e) => return Fetched::Skip(format!("not a URL: {e}")),
        };
        let mut hops = 0;
        let response = loop {
            if let Err(refused) = self.policy.check_url(&url) {
                warn!(%url, %refused, "attachment URL refused");
                return Fetched::Skip(refused.to_string());
            }
            let response = match self.http.get(url.clone()).send().await {
                Ok(r) => r,
                Err(e) => {
                    if let Some(refused) = cdn::is_refusal(&e) {
                        warn!(%url, %refused, "attachment address refused");
                        return Fetched::Skip(refused);
                    }
                    return Fetched::Retry(format!("download failed: {e}"));
                }
            };
            if !response.status().is_redirection() {
                break response;
            }
            let Some(next) = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
            else {
                return Fetched::Skip(format!(
                    "CDN answered {} without a usable Location",
                    response.status()
                ));
            };
            hops += 1;
            if hops > self.policy.max_redirects {
                return Fetched::Skip(format!("more than {} redirects", self.policy.max_redirects));
            }
            url = next;
        };
        read(response).await
    }
}

/// Checks a final response's status, caps its size and sniffs its type.
async fn read(mut response: reqwest::Response) -> Fetched {
    let status = response.status();
    if !status.is_success() {
        let message = format!("CDN answered {status}");
        // A gone link will not come back; a 5xx or 429 may.
        return if status.is_server_error() || status.as_u16() == 429 {
            Fetched::Retry(message)
        } else {
            Fetched::Skip(message)
        };
    }
    if response
        .content_length()
        .is_some_and(|n| n as usize > MAX_BYTES)
    {
        return Fetched::Skip(format!("larger than {} MiB", MAX_BYTES / (1024 * 1024)));
    }
    let mut body = BytesMut::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BYTES {
                    return Fetched::Skip(format!("larger than {} MiB", MAX_BYTES / (1024 * 1024)));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Fetched::Retry(format!("download interrupted: {e}")),
        }
    }
    match sniff(&body) {
        Some((mime, ext)) => Fetched::Ok(body.to_vec(), mime, ext),
        None => Fetched::Skip("not an image or PDF (checked by content)".into()),
    }
}

/// Downloads and stores every pending attachment of one signal, then records the outcome on
/// the document (under the message's lock, re-reading it, so concurrent edits are kept).
pub async fn store_pending(
    client: &Client,
    cdn: &Downloader,
    locks: &Arc<KeyedLocks>,
    message_id: &str,
) -> Result<(), g3_appwrite::Error> {
    let docs = Collection::<Signal>::new(client);
    let Some(doc) = docs.get_optional(message_id).await? else {
        return Ok(());
    };
    let pending: Vec<AttachmentRef> = doc
        .data
        .attachment_refs()
        .into_iter()
        .filter(|a| a.state == AttachmentState::Pending)
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let mut outcomes: Vec<AttachmentRef> = Vec::new();
    for mut a in pending {
        let tries = a
            .note
            .as_deref()
            .and_then(|n| n.strip_prefix("try "))
            .and_then(|n| n.split(':').next())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0);
        let Some(url) = a.source_url.clone() else {
            a.state = AttachmentState::Skipped;
            a.note = Some("no download URL".into());
            outcomes.push(a);
            continue;
        };
        match cdn.fetch(&url).await {
            Fetched::Ok(bytes, mime, ext) => {
                let id = file_id(message_id, &a.id);
                let size = bytes.len() as u64;
                let upload = UploadFile {
                    name: format!("{}.{ext}", a.id),
                    content_type: mime.to_owned(),
                    data: bytes.into(),
                };
                match client
                    .storage()
                    .create_file(BUCKET_SIGNAL_ASSETS, id.as_str(), upload, None)
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.is_conflict() => {}
                    Err(e) => return Err(e),
                }
                a.state = AttachmentState::Stored;
                a.file_id = Some(id);
                a.content_type = Some(mime.to_owned());
                a.size = Some(size);
                a.note = None;
                a.source_url = None;
                info!(message = message_id, attachment = %a.id, mime, "attachment stored");
            }
            Fetched::Skip(reason) => {
                a.state = AttachmentState::Skipped;
                a.note = Some(reason);
                a.source_url = None;
            }
            Fetched::Retry(reason) if tries + 1 >= MAX_TRIES => {
                a.state = AttachmentState::Skipped;
                a.note = Some(format!("gave up after {MAX_TRIES} tries: {reason}"));
            }
            Fetched::Retry(reason) => {
                warn!(message = message_id, attachment = %a.id, %reason, "attachment will be retried");
                a.note = Some(format!("try {}: {reason}", tries + 1));
            }
        }
        outcomes.push(a);
    }

    let _message = locks.lock_owned(message_id).await;
    let Some(doc) = docs.get_optional(message_id).await? else {
        return Ok(());
    };
    let mut signal = doc.data;
    let refs: Vec<AttachmentRef> = signal
        .attachment_refs()
        .into_iter()
        .map(|a| match outcomes.iter().find(|o| o.id == a.id) {
            Some(done) if a.state == AttachmentState::Pending => done.clone(),
            _ => a,
        })
        .collect();
    signal.assets_pending = Some(refs.iter().any(|a| a.state == AttachmentState::Pending));
    signal.attachments = serde_json::to_string(&refs).ok();
    docs.upsert(message_id, &signal, None).await?;
    Ok(())
}

/// Signals that still wait for an attachment (the worker's retry list).
pub async fn pending_signals(client: &Client) -> Result<Vec<String>, g3_appwrite::Error> {
    Ok(Collection::<Signal>::new(client)
        .raw()
        .list::<serde_json::Value>(&[
            g3_appwrite::Query::equal("assets_pending", true),
            g3_appwrite::Query::limit(50),
        ])
        .await?
        .documents
        .into_iter()
        .map(|d| d.id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_decided_by_content() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some(("image/png", "png")));
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0"), Some(("image/jpeg", "jpg")));
        assert_eq!(sniff(b"GIF89a..."), Some(("image/gif", "gif")));
        assert_eq!(
            sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 "),
            Some(("image/webp", "webp"))
        );
        assert_eq!(sniff(b"%PDF-1.7"), Some(("application/pdf", "pdf")));
        assert_eq!(sniff(b"<!DOCTYPE html>"), None);
        assert_eq!(sniff(b"MZ\x90\x00"), None);
        assert_eq!(sniff(b""), None);
    }
}
