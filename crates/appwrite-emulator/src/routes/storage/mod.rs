//! Storage: buckets (server key) and files (key or permitted sessions). Uploads over 5 MiB come
//! in 5 MiB chunks (`Content-Range`, then `x-appwrite-id`) and are assembled when the last one
//! lands; bytes live under `storage_dir` when set, else in the `files.content` column.
//!
//! This file holds the route list and what every handler shares: the `buckets` and `files` rows,
//! Appwrite's access rule for a file, and the Realtime event a file change publishes. Handlers
//! live in [`buckets`], [`upload`], [`files`] and [`download`]; [`mime`] sniffs content types.

mod buckets;
mod download;
mod files;
mod mime;
mod upload;

use std::path::PathBuf;

use axum::{Router, routing::get};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use super::teams::event_names;
use crate::{
    auth::Caller,
    error::{ApiError, ApiResult},
    permissions::{self, Action},
    state::{AppState, RealtimeEvent},
    util,
};

pub fn router() -> Router<AppState> {
    use buckets::{create_bucket, delete_bucket, get_bucket, list_buckets, update_bucket};
    use download::{download_file, view_file};
    use files::{delete_file, get_file, list_files, update_file};
    use upload::create_file;
    Router::new()
        .route("/storage/buckets", get(list_buckets).post(create_bucket))
        .route(
            "/storage/buckets/{bucket_id}",
            get(get_bucket).put(update_bucket).delete(delete_bucket),
        )
        .route(
            "/storage/buckets/{bucket_id}/files",
            get(list_files).post(create_file),
        )
        .route(
            "/storage/buckets/{bucket_id}/files/{file_id}",
            get(get_file).put(update_file).delete(delete_file),
        )
        .route(
            "/storage/buckets/{bucket_id}/files/{file_id}/view",
            get(view_file),
        )
        .route(
            "/storage/buckets/{bucket_id}/files/{file_id}/download",
            get(download_file),
        )
}

fn bucket_not_found() -> ApiError {
    ApiError::new(
        404,
        "storage_bucket_not_found",
        "Storage bucket with the requested ID could not be found.",
    )
}

fn file_not_found() -> ApiError {
    ApiError::new(
        404,
        "storage_file_not_found",
        "The requested file could not be found.",
    )
}

#[derive(Debug, Clone)]
struct BucketRow {
    id: String,
    name: String,
    permissions: Vec<String>,
    file_security: bool,
    enabled: bool,
    maximum_file_size: i64,
    allowed_file_extensions: Vec<String>,
    compression: String,
    encryption: bool,
    antivirus: bool,
    transformations: bool,
    created_at: String,
    updated_at: String,
}

impl BucketRow {
    fn to_json(&self) -> Value {
        json!({
            "$id": self.id,
            "$createdAt": self.created_at,
            "$updatedAt": self.updated_at,
            "$permissions": self.permissions,
            "fileSecurity": self.file_security,
            "name": self.name,
            "enabled": self.enabled,
            "maximumFileSize": self.maximum_file_size,
            "allowedFileExtensions": self.allowed_file_extensions,
            "compression": self.compression,
            "encryption": self.encryption,
            "antivirus": self.antivirus,
            "transformations": self.transformations,
        })
    }
}

const BUCKET_COLS: &str = "id, name, permissions, file_security, enabled, maximum_file_size, \
     allowed_file_extensions, compression, encryption, antivirus, transformations, created_at, updated_at";

fn bucket_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BucketRow> {
    let perms: String = r.get(2)?;
    let exts: String = r.get(6)?;
    Ok(BucketRow {
        id: r.get(0)?,
        name: r.get(1)?,
        permissions: serde_json::from_str(&perms).unwrap_or_default(),
        file_security: r.get(3)?,
        enabled: r.get(4)?,
        maximum_file_size: r.get(5)?,
        allowed_file_extensions: serde_json::from_str(&exts).unwrap_or_default(),
        compression: r.get(7)?,
        encryption: r.get(8)?,
        antivirus: r.get(9)?,
        transformations: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
    })
}

fn find_bucket(conn: &Connection, id: &str) -> ApiResult<Option<BucketRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {BUCKET_COLS} FROM buckets WHERE id = ?1"),
            params![id],
            bucket_from_row,
        )
        .optional()?)
}

/// A bucket as a file route sees it: a disabled bucket does not exist except for the key.
fn bucket_for(conn: &Connection, caller: &Caller, id: &str) -> ApiResult<BucketRow> {
    find_bucket(conn, id)?
        .filter(|b| b.enabled || caller.is_key())
        .ok_or_else(bucket_not_found)
}

#[derive(Debug, Clone)]
struct FileRow {
    bucket_id: String,
    id: String,
    name: String,
    signature: String,
    mime_type: String,
    size: i64,
    chunks_total: i64,
    chunks_uploaded: i64,
    permissions: Vec<String>,
    created_at: String,
    updated_at: String,
}

impl FileRow {
    fn to_json(&self) -> Value {
        json!({
            "$id": self.id,
            "bucketId": self.bucket_id,
            "$createdAt": self.created_at,
            "$updatedAt": self.updated_at,
            "$permissions": self.permissions,
            "name": self.name,
            "signature": self.signature,
            "mimeType": self.mime_type,
            "sizeOriginal": self.size,
            "chunksTotal": self.chunks_total,
            "chunksUploaded": self.chunks_uploaded,
        })
    }

    fn complete(&self) -> bool {
        self.chunks_uploaded >= self.chunks_total
    }
}

const FILE_COLS: &str = "bucket_id, id, name, signature, mime_type, size, chunks_total, \
     chunks_uploaded, permissions, created_at, updated_at";

fn file_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileRow> {
    let perms: String = r.get(8)?;
    Ok(FileRow {
        bucket_id: r.get(0)?,
        id: r.get(1)?,
        name: r.get(2)?,
        signature: r.get(3)?,
        mime_type: r.get(4)?,
        size: r.get(5)?,
        chunks_total: r.get(6)?,
        chunks_uploaded: r.get(7)?,
        permissions: serde_json::from_str(&perms).unwrap_or_default(),
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
    })
}

fn find_file(conn: &Connection, bucket_id: &str, id: &str) -> ApiResult<Option<FileRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {FILE_COLS} FROM files WHERE bucket_id = ?1 AND id = ?2"),
            params![bucket_id, id],
            file_from_row,
        )
        .optional()?)
}

/// Appwrite's rule for an existing file: the bucket grants `action`, or with file security the
/// file does. Without file security a refused caller learns the file exists (401); with it,
/// an unreadable file is simply not found.
fn authorize(caller: &Caller, bucket: &BucketRow, file: &FileRow, action: Action) -> ApiResult<()> {
    if permissions::allowed(
        caller,
        action,
        &bucket.permissions,
        bucket.file_security,
        &file.permissions,
    ) {
        return Ok(());
    }
    if !bucket.file_security {
        return Err(ApiError::user_unauthorized());
    }
    let readable = permissions::allowed(
        caller,
        Action::Read,
        &bucket.permissions,
        true,
        &file.permissions,
    );
    if readable {
        Err(ApiError::user_unauthorized())
    } else {
        Err(file_not_found())
    }
}

/// Loads bucket and file and checks `action` for the caller.
async fn load_file(
    state: &AppState,
    caller: &Caller,
    bucket_id: String,
    file_id: String,
    action: Action,
) -> ApiResult<(BucketRow, FileRow)> {
    let caller = caller.clone();
    state
        .store
        .call(move |conn| {
            let bucket = bucket_for(conn, &caller, &bucket_id)?;
            let file = find_file(conn, &bucket.id, &file_id)?.ok_or_else(file_not_found)?;
            authorize(&caller, &bucket, &file, action)?;
            Ok((bucket, file))
        })
        .await
}

fn file_path(dir: &std::path::Path, bucket_id: &str, file_id: &str) -> PathBuf {
    // Both ids passed `is_valid_custom_id` (no separators), so they are safe path parts.
    dir.join(bucket_id).join(file_id)
}

fn publish_file(state: &AppState, bucket: &BucketRow, file: &FileRow, action: &str) {
    let mut readers = permissions::roles_for(&bucket.permissions, Action::Read);
    if bucket.file_security {
        for r in permissions::roles_for(&file.permissions, Action::Read) {
            if !readers.contains(&r) {
                readers.push(r);
            }
        }
    }
    state.publish(RealtimeEvent {
        events: event_names(&[("buckets", &bucket.id), ("files", &file.id)], action),
        channels: vec![
            "files".to_owned(),
            format!("buckets.{}.files", bucket.id),
            format!("buckets.{}.files.{}", bucket.id, file.id),
        ],
        readers,
        timestamp: util::now(),
        payload: file.to_json(),
    });
}
