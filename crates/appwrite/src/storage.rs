//! Storage: buckets, uploads (chunked above 5 MiB, as the official SDKs do), file metadata and
//! byte-range reads of the content.

use bytes::Bytes;
use reqwest::Method;
use serde_json::{Value, json};
use tracing::instrument;

use crate::client::{Body, Client, MultipartBody, Request};
use crate::error::Error;
use crate::models::{Bucket, File, FileList, Id};
use crate::permission::{Permission, to_strings};
use crate::query::{Query, append_queries};

/// Appwrite's upload chunk size; larger files go in pieces of this size.
pub const CHUNK_SIZE: u64 = 5 * 1024 * 1024;

/// Handle on `/storage/buckets`.
#[derive(Debug, Clone)]
pub struct Storage {
    client: Client,
}

impl Client {
    pub fn storage(&self) -> Storage {
        Storage {
            client: self.clone(),
        }
    }
}

/// A bucket to create or update.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketSpec {
    pub id: String,
    pub name: String,
    pub permissions: Vec<Permission>,
    /// Whether per-file permissions apply in addition to the bucket's.
    pub file_security: bool,
    /// Bytes; `None` keeps the server default.
    pub maximum_file_size: Option<u64>,
    /// Lower-case extensions without dot; empty allows all.
    pub allowed_file_extensions: Vec<String>,
}

impl BucketSpec {
    fn body(&self, with_id: bool) -> Value {
        let mut body = json!({
            "name": self.name,
            "permissions": to_strings(&self.permissions),
            "fileSecurity": self.file_security,
            "allowedFileExtensions": self.allowed_file_extensions,
        });
        if with_id {
            body["bucketId"] = json!(self.id);
        }
        if let Some(max) = self.maximum_file_size {
            body["maximumFileSize"] = json!(max);
        }
        body
    }
}

/// Content to upload.
#[derive(Debug, Clone)]
pub struct UploadFile {
    pub name: String,
    pub content_type: String,
    pub data: Bytes,
}

/// An inclusive byte range to read; `end: None` reads to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
}

impl ByteRange {
    /// The `Range` header value, e.g. `bytes=0-1023` or `bytes=100-`.
    pub fn header_value(&self) -> Result<String, Error> {
        match self.end {
            Some(end) if end < self.start => Err(Error::InvalidInput(format!(
                "range end {end} before start {}",
                self.start
            ))),
            Some(end) => Ok(format!("bytes={}-{end}", self.start)),
            None => Ok(format!("bytes={}-", self.start)),
        }
    }
}

/// A parsed `Content-Range: bytes start-end/size` (or `bytes */size` on 416).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// Inclusive `(start, end)`; `None` for the unsatisfied form.
    pub range: Option<(u64, u64)>,
    /// Total size; `None` when the server sent `*`.
    pub size: Option<u64>,
}

impl ContentRange {
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.trim().strip_prefix("bytes")?.trim_start();
        let (range, size) = rest.split_once('/')?;
        let size = match size.trim() {
            "*" => None,
            s => Some(s.parse().ok()?),
        };
        let range = match range.trim() {
            "*" => None,
            r => {
                let (a, b) = r.split_once('-')?;
                let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if b < a {
                    return None;
                }
                Some((a, b))
            }
        };
        Some(Self { range, size })
    }
}

/// File content as read by `view`/`download`.
#[derive(Debug, Clone)]
pub struct FileContent {
    /// 200 for the whole file, 206 for a range.
    pub status: u16,
    pub content_type: Option<String>,
    pub content_range: Option<ContentRange>,
    pub bytes: Bytes,
}

/// The `[start, end)` pieces an upload of `size` bytes is split into; one piece (even for an
/// empty file) when it fits in [`CHUNK_SIZE`].
pub fn chunk_ranges(size: u64) -> Vec<(u64, u64)> {
    if size <= CHUNK_SIZE {
        return vec![(0, size)];
    }
    let mut ranges = Vec::new();
    let mut start = 0;
    while start < size {
        let end = (start + CHUNK_SIZE).min(size);
        ranges.push((start, end));
        start = end;
    }
    ranges
}

/// `Content-Range` for the chunk `[start, end)` of a `size`-byte upload (end is inclusive on
/// the wire).
pub fn chunk_content_range(start: u64, end: u64, size: u64) -> String {
    format!("bytes {start}-{}/{size}", end.saturating_sub(1))
}

impl Storage {
    fn url(&self, segments: &[&str]) -> url::Url {
        let mut all = vec!["storage", "buckets"];
        all.extend_from_slice(segments);
        self.client.url(&all)
    }

    #[instrument(skip_all, fields(bucket = %spec.id))]
    pub async fn create_bucket(&self, spec: &BucketSpec) -> Result<Bucket, Error> {
        Id::from(spec.id.as_str()).validate()?;
        let req = Request::new(Method::POST, self.url(&[]))
            .json(&spec.body(true))?
            .idempotent(true);
        self.client.json(req, "bucket").await
    }

    #[instrument(skip_all, fields(bucket = %spec.id))]
    pub async fn update_bucket(&self, spec: &BucketSpec) -> Result<Bucket, Error> {
        let req = Request::new(Method::PUT, self.url(&[&spec.id])).json(&spec.body(false))?;
        self.client.json(req, "bucket").await
    }

    #[instrument(skip_all, fields(bucket = %id))]
    pub async fn get_bucket(&self, id: &str) -> Result<Bucket, Error> {
        self.client
            .json(Request::new(Method::GET, self.url(&[id])), "bucket")
            .await
    }

    /// Uploads a file (multipart `fileId`, `file`, `permissions[]`). Above [`CHUNK_SIZE`] it is
    /// sent in chunks with `Content-Range`, and `x-appwrite-id` on every chunk after the first.
    #[instrument(skip_all, fields(bucket = %bucket_id, file_id, size = file.data.len()))]
    pub async fn create_file(
        &self,
        bucket_id: &str,
        file_id: impl Into<Id>,
        file: UploadFile,
        permissions: Option<&[Permission]>,
    ) -> Result<File, Error> {
        let id = file_id.into();
        id.validate()?;
        tracing::Span::current().record("file_id", id.as_wire());
        let size = file.data.len() as u64;
        let ranges = chunk_ranges(size);
        let chunked = ranges.len() > 1;
        let mut uploaded_id: Option<String> = match &id {
            Id::Custom(c) => Some(c.clone()),
            Id::Unique => None,
        };
        let mut last: Option<File> = None;
        for (index, (start, end)) in ranges.into_iter().enumerate() {
            let mut fields = vec![("fileId", id.as_wire().to_owned())];
            if let Some(perms) = permissions {
                fields.extend(to_strings(perms).into_iter().map(|p| ("permissions[]", p)));
            }
            let (lo, hi) = (
                usize::try_from(start).unwrap_or(usize::MAX),
                usize::try_from(end).unwrap_or(usize::MAX),
            );
            let mut req = Request::new(Method::POST, self.url(&[bucket_id, "files"]))
                .idempotent(id.is_custom() || index > 0);
            req.body = Body::Multipart(MultipartBody {
                fields,
                file_name: file.name.clone(),
                content_type: file.content_type.clone(),
                data: file.data.slice(lo..hi),
            });
            if chunked {
                req = req.header("Content-Range", chunk_content_range(start, end, size));
                if index > 0
                    && let Some(uid) = &uploaded_id
                {
                    req = req.header("x-appwrite-id", uid.clone());
                }
            }
            let f: File = self.client.json(req, "file").await?;
            uploaded_id.get_or_insert_with(|| f.id.clone());
            last = Some(f);
        }
        last.ok_or_else(|| Error::InvalidInput("nothing was uploaded".into()))
    }

    #[instrument(skip_all, fields(bucket = %bucket_id, file_id = %file_id))]
    pub async fn get_file(&self, bucket_id: &str, file_id: &str) -> Result<File, Error> {
        self.client
            .json(
                Request::new(Method::GET, self.url(&[bucket_id, "files", file_id])),
                "file",
            )
            .await
    }

    #[instrument(skip_all, fields(bucket = %bucket_id, queries = queries.len()))]
    pub async fn list_files(&self, bucket_id: &str, queries: &[Query]) -> Result<FileList, Error> {
        let mut url = self.url(&[bucket_id, "files"]);
        append_queries(&mut url, queries);
        self.client
            .json(Request::new(Method::GET, url), "file list")
            .await
    }

    #[instrument(skip_all, fields(bucket = %bucket_id, file_id = %file_id))]
    pub async fn delete_file(&self, bucket_id: &str, file_id: &str) -> Result<(), Error> {
        self.client
            .execute(Request::new(
                Method::DELETE,
                self.url(&[bucket_id, "files", file_id]),
            ))
            .await
            .map(drop)
    }

    /// The content for inline display (`.../view`), whole or a range.
    #[instrument(skip_all, fields(bucket = %bucket_id, file_id = %file_id))]
    pub async fn view(
        &self,
        bucket_id: &str,
        file_id: &str,
        range: Option<ByteRange>,
    ) -> Result<FileContent, Error> {
        self.content(bucket_id, file_id, "view", range).await
    }

    /// The content as an attachment (`.../download`), whole or a range.
    #[instrument(skip_all, fields(bucket = %bucket_id, file_id = %file_id))]
    pub async fn download(
        &self,
        bucket_id: &str,
        file_id: &str,
        range: Option<ByteRange>,
    ) -> Result<FileContent, Error> {
        self.content(bucket_id, file_id, "download", range).await
    }

    async fn content(
        &self,
        bucket_id: &str,
        file_id: &str,
        kind: &str,
        range: Option<ByteRange>,
    ) -> Result<FileContent, Error> {
        let mut req = Request::new(Method::GET, self.url(&[bucket_id, "files", file_id, kind]));
        if let Some(r) = range {
            req = req.header("Range", r.header_value()?);
        }
        let resp = self.client.execute(req).await?;
        let header = |name: reqwest::header::HeaderName| {
            resp.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(FileContent {
            status: resp.status,
            content_type: header(reqwest::header::CONTENT_TYPE),
            content_range: header(reqwest::header::CONTENT_RANGE)
                .as_deref()
                .and_then(ContentRange::parse),
            bytes: resp.body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_boundaries() {
        assert_eq!(chunk_ranges(0), vec![(0, 0)]);
        assert_eq!(chunk_ranges(10), vec![(0, 10)]);
        assert_eq!(chunk_ranges(CHUNK_SIZE), vec![(0, CHUNK_SIZE)]);
        assert_eq!(
            chunk_ranges(CHUNK_SIZE + 1),
            vec![(0, CHUNK_SIZE), (CHUNK_SIZE, CHUNK_SIZE + 1)]
        );
        let twelve = 12 * 1024 * 1024;
        let r = chunk_ranges(twelve);
        assert_eq!(r.len(), 3);
        assert_eq!(r[2], (2 * CHUNK_SIZE, twelve));
        assert_eq!(
            chunk_content_range(r[0].0, r[0].1, twelve),
            "bytes 0-5242879/12582912"
        );
        assert_eq!(
            chunk_content_range(r[2].0, r[2].1, twelve),
            "bytes 10485760-12582911/12582912"
        );
    }

    #[test]
    fn ranges() {
        let r = ByteRange {
            start: 0,
            end: Some(99),
        };
        assert_eq!(r.header_value().unwrap(), "bytes=0-99");
        let open = ByteRange {
            start: 100,
            end: None,
        };
        assert_eq!(open.header_value().unwrap(), "bytes=100-");
        let bad = ByteRange {
            start: 5,
            end: Some(4),
        };
        assert!(bad.header_value().is_err());

        assert_eq!(
            ContentRange::parse("bytes 0-99/1234"),
            Some(ContentRange {
                range: Some((0, 99)),
                size: Some(1234)
            })
        );
        assert_eq!(
            ContentRange::parse("bytes */1234"),
            Some(ContentRange {
                range: None,
                size: Some(1234)
            })
        );
        assert_eq!(ContentRange::parse("bytes 5-9/*").unwrap().size, None);
        assert_eq!(ContentRange::parse("bytes 9-5/10"), None);
        assert_eq!(ContentRange::parse("items 0-1/2"), None);
        assert_eq!(ContentRange::parse("bytes x-1/2"), None);
    }

    #[test]
    fn bucket_body() {
        let spec = BucketSpec {
            id: "signal_assets".into(),
            name: "Signal assets".into(),
            permissions: vec![Permission::read(crate::Role::team("paid"))],
            file_security: false,
            maximum_file_size: Some(10_000_000),
            allowed_file_extensions: vec!["png".into(), "jpg".into()],
        };
        let body = spec.body(true);
        assert_eq!(body["bucketId"], "signal_assets");
        assert_eq!(body["maximumFileSize"], 10_000_000);
        assert_eq!(body["permissions"][0], r#"read("team:paid")"#);
        assert!(spec.body(false).get("bucketId").is_none());
    }
}
