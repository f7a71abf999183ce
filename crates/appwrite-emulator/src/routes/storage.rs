//! Storage: buckets (server key) and files (key or permitted sessions). Uploads over 5 MiB come
//! in 5 MiB chunks (`Content-Range`, then `x-appwrite-id`) and are assembled when the last one
//! lands; bytes live under `storage_dir` when set, else in the `files.content` column.

use std::path::PathBuf;

use axum::{
    Json, Router,
    body::Body as RawBody,
    extract::{Multipart, Path, RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use md5::{Digest, Md5};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Body, teams::event_names};
use crate::{
    auth::Caller,
    error::{ApiError, ApiResult},
    list_query::ListQuery,
    params::{list, required},
    permissions::{self, Action},
    state::{AppState, RealtimeEvent},
    util,
};

pub fn router() -> Router<AppState> {
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

/// Appwrite's upload chunk size: clients split larger files into pieces of exactly this size.
const CHUNK_SIZE: u64 = 5 * 1024 * 1024;
/// Appwrite's default `maximumFileSize` (`_APP_STORAGE_LIMIT`, 30 MB).
const DEFAULT_MAX_FILE_SIZE: i64 = 30_000_000;

const BUCKET_ATTRS: &[&str] = &[
    "enabled",
    "name",
    "fileSecurity",
    "maximumFileSize",
    "encryption",
    "antivirus",
];
const FILE_ATTRS: &[&str] = &[
    "name",
    "signature",
    "mimeType",
    "sizeOriginal",
    "chunksTotal",
    "chunksUploaded",
];

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

// ---------------------------------------------------------------------------------------------
// Buckets

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BucketBody {
    bucket_id: Option<String>,
    name: Option<String>,
    permissions: Option<Vec<String>>,
    file_security: Option<bool>,
    enabled: Option<bool>,
    maximum_file_size: Option<i64>,
    allowed_file_extensions: Option<Vec<String>>,
    compression: Option<String>,
    encryption: Option<bool>,
    antivirus: Option<bool>,
    transformations: Option<bool>,
}

/// Applies a create/update body over `base` (defaults for create, the stored bucket for update).
fn apply_bucket_body(mut base: BucketRow, body: BucketBody) -> ApiResult<BucketRow> {
    let name = required(body.name, "name")?;
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ApiError::argument_invalid(
            "Invalid `name` param: Value must be a valid string and at least 1 chars and no longer than 128 chars",
        ));
    }
    base.name = name;
    if let Some(p) = body.permissions {
        base.permissions = permissions::normalize(&p)?;
    }
    if let Some(v) = body.file_security {
        base.file_security = v;
    }
    if let Some(v) = body.enabled {
        base.enabled = v;
    }
    if let Some(v) = body.maximum_file_size {
        if v < 1 {
            return Err(ApiError::argument_invalid(
                "Invalid `maximumFileSize` param: Value must be a valid range between 1 and the storage limit",
            ));
        }
        base.maximum_file_size = v;
    }
    if let Some(exts) = body.allowed_file_extensions {
        if exts.len() > 100 || exts.iter().any(|e| e.is_empty() || e.len() > 64) {
            return Err(ApiError::argument_invalid(
                "Invalid `allowedFileExtensions` param: Value must a valid array no longer than 100 items and Value must be a valid string and at least 1 chars and no longer than 64 chars",
            ));
        }
        base.allowed_file_extensions = exts
            .into_iter()
            .map(|e| e.trim_start_matches('.').to_lowercase())
            .collect();
    }
    if let Some(c) = body.compression {
        if !matches!(c.as_str(), "none" | "gzip" | "zstd") {
            return Err(ApiError::argument_invalid(
                "Invalid `compression` param: Value must be one of (none, gzip, zstd)",
            ));
        }
        base.compression = c;
    }
    if let Some(v) = body.encryption {
        base.encryption = v;
    }
    if let Some(v) = body.antivirus {
        base.antivirus = v;
    }
    if let Some(v) = body.transformations {
        base.transformations = v;
    }
    Ok(base)
}

fn save_bucket(conn: &Connection, b: &BucketRow, insert: bool) -> ApiResult<()> {
    let sql = if insert {
        "INSERT INTO buckets (id, name, permissions, file_security, enabled, maximum_file_size, \
         allowed_file_extensions, compression, encryption, antivirus, transformations, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    } else {
        "UPDATE buckets SET name = ?2, permissions = ?3, file_security = ?4, enabled = ?5, \
         maximum_file_size = ?6, allowed_file_extensions = ?7, compression = ?8, encryption = ?9, \
         antivirus = ?10, transformations = ?11, created_at = ?12, updated_at = ?13 WHERE id = ?1"
    };
    conn.execute(
        sql,
        params![
            b.id,
            b.name,
            serde_json::to_string(&b.permissions)?,
            b.file_security,
            b.enabled,
            b.maximum_file_size,
            serde_json::to_string(&b.allowed_file_extensions)?,
            b.compression,
            b.encryption,
            b.antivirus,
            b.transformations,
            b.created_at,
            b.updated_at
        ],
    )?;
    Ok(())
}

async fn create_bucket(
    caller: Caller,
    State(state): State<AppState>,
    Body(mut body): Body<BucketBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require_key("buckets.write")?;
    let id = util::resolve_id("bucketId", &required(body.bucket_id.take(), "bucketId")?)?;
    let now = util::now();
    let defaults = BucketRow {
        id,
        name: String::new(),
        permissions: Vec::new(),
        file_security: false,
        enabled: true,
        maximum_file_size: DEFAULT_MAX_FILE_SIZE,
        allowed_file_extensions: Vec::new(),
        compression: "none".to_owned(),
        encryption: true,
        antivirus: true,
        transformations: true,
        created_at: now.clone(),
        updated_at: now,
    };
    let bucket = apply_bucket_body(defaults, body)?;
    let bucket = state
        .store
        .transaction(move |tx| {
            if find_bucket(tx, &bucket.id)?.is_some() {
                return Err(ApiError::new(
                    409,
                    "storage_bucket_already_exists",
                    "A storage bucket with the requested ID already exists. Try again with a different ID or use ID.unique() to generate a unique ID.",
                ));
            }
            save_bucket(tx, &bucket, true)?;
            Ok(bucket)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(bucket.to_json())))
}

async fn list_buckets(
    caller: Caller,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    caller.require_key("buckets.read")?;
    let query = ListQuery::parse(raw.as_deref(), BUCKET_ATTRS)?;
    let buckets = state
        .store
        .call(|conn| {
            let mut stmt =
                conn.prepare(&format!("SELECT {BUCKET_COLS} FROM buckets ORDER BY seq"))?;
            let rows = stmt.query_map([], bucket_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    let items = buckets.iter().map(BucketRow::to_json).collect();
    let (total, page) = query.apply(items, &["$id", "name"])?;
    Ok(Json(list("buckets", total, page)))
}

async fn get_bucket(
    caller: Caller,
    State(state): State<AppState>,
    Path(bucket_id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require_key("buckets.read")?;
    let bucket = state
        .store
        .call(move |conn| find_bucket(conn, &bucket_id)?.ok_or_else(bucket_not_found))
        .await?;
    Ok(Json(bucket.to_json()))
}

async fn update_bucket(
    caller: Caller,
    State(state): State<AppState>,
    Path(bucket_id): Path<String>,
    Body(body): Body<BucketBody>,
) -> ApiResult<Json<Value>> {
    caller.require_key("buckets.write")?;
    let bucket = state
        .store
        .transaction(move |tx| {
            let current = find_bucket(tx, &bucket_id)?.ok_or_else(bucket_not_found)?;
            let mut updated = apply_bucket_body(current, body)?;
            updated.updated_at = util::now();
            save_bucket(tx, &updated, false)?;
            Ok(updated)
        })
        .await?;
    Ok(Json(bucket.to_json()))
}

async fn delete_bucket(
    caller: Caller,
    State(state): State<AppState>,
    Path(bucket_id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_key("buckets.write")?;
    let dir = state.config.storage_dir.clone();
    let id = bucket_id.clone();
    state
        .store
        .call(move |conn| {
            if conn.execute("DELETE FROM buckets WHERE id = ?1", params![id])? == 0 {
                return Err(bucket_not_found());
            }
            Ok(())
        })
        .await?;
    if let Some(dir) = dir {
        // Best effort: the rows are gone, leftover bytes are unreachable either way.
        let _ = tokio::fs::remove_dir_all(dir.join(&bucket_id)).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Files

/// One parsed upload request.
struct Upload {
    file_id: Option<String>,
    name: Option<String>,
    data: bytes::Bytes,
    permissions: Option<Vec<String>>,
}

async fn read_multipart(mut multipart: Multipart) -> ApiResult<Upload> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::argument_invalid(format!("Invalid multipart body: {}", e.body_text()))
    };
    let mut upload = Upload {
        file_id: None,
        name: None,
        data: bytes::Bytes::new(),
        permissions: None,
    };
    let mut saw_file = false;
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            upload.name = field.file_name().map(str::to_owned);
            upload.data = field.bytes().await.map_err(bad)?;
            saw_file = true;
        } else if name == "fileId" {
            upload.file_id = Some(field.text().await.map_err(bad)?);
        } else if name == "permissions" || name.starts_with("permissions[") {
            let value = field.text().await.map_err(bad)?;
            upload.permissions.get_or_insert_with(Vec::new).push(value);
        }
    }
    if !saw_file {
        return Err(ApiError::new(
            400,
            "storage_file_empty",
            "Empty file passed to the endpoint.",
        ));
    }
    Ok(upload)
}

/// `Content-Range: bytes start-end/size`.
fn parse_content_range(raw: &str) -> Option<(u64, u64, u64)> {
    let rest = raw.trim().strip_prefix("bytes ")?;
    let (range, size) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end, size) = (
        start.trim().parse().ok()?,
        end.trim().parse().ok()?,
        size.trim().parse().ok()?,
    );
    (start <= end && end < size).then_some((start, end, size))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn extension(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, ext)| ext.to_lowercase())
        .unwrap_or_default()
}

/// The mime type from the content's magic bytes, then the extension, then a text sniff.
fn detect_mime(name: &str, data: &[u8]) -> String {
    let magic: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
    ];
    if let Some((_, mime)) = magic.iter().find(|(m, _)| data.starts_with(m)) {
        return (*mime).to_owned();
    }
    if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        return "image/webp".to_owned();
    }
    let by_ext = match extension(name).as_str() {
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" => "text/javascript",
        "svg" => "image/svg+xml",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        _ => "",
    };
    if !by_ext.is_empty() {
        return by_ext.to_owned();
    }
    // Like libmagic: text is UTF-8 without control bytes other than common whitespace.
    let head = &data[..data.len().min(8192)];
    let texty = head
        .iter()
        .all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b));
    // A cut multi-byte character at the 8 KiB boundary is still text.
    let utf8 = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() == 8192,
    };
    if texty && utf8 {
        "text/plain".to_owned()
    } else {
        "application/octet-stream".to_owned()
    }
}

fn file_path(dir: &std::path::Path, bucket_id: &str, file_id: &str) -> PathBuf {
    // Both ids passed `is_valid_custom_id` (no separators), so they are safe path parts.
    dir.join(bucket_id).join(file_id)
}

#[tracing::instrument(skip_all, fields(bucket_id = %bucket_id))]
async fn create_file(
    caller: Caller,
    State(state): State<AppState>,
    Path(bucket_id): Path<String>,
    headers: HeaderMap,
    multipart: Multipart,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if !util::is_valid_custom_id(&bucket_id) {
        return Err(bucket_not_found());
    }
    let upload = read_multipart(multipart).await?;
    let file_id = match header_str(&headers, "x-appwrite-id") {
        Some(id) if util::is_valid_custom_id(id) => id.to_owned(),
        _ => util::resolve_id("fileId", &required(upload.file_id.clone(), "fileId")?)?,
    };
    let name = upload
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                400,
                "storage_file_empty",
                "Empty file passed to the endpoint.",
            )
        })?;
    let chunk_len = upload.data.len() as u64;
    let (index, size, chunks_total) = match header_str(&headers, "content-range") {
        Some(raw) => {
            let (start, end, size) = parse_content_range(raw).ok_or_else(|| {
                ApiError::new(
                    400,
                    "storage_invalid_content_range",
                    "The content range is invalid. Please check the value of the Content-Range header.",
                )
            })?;
            if end - start + 1 != chunk_len || start % CHUNK_SIZE != 0 {
                return Err(ApiError::new(
                    400,
                    "storage_invalid_content_range",
                    "The content range does not match the uploaded chunk.",
                ));
            }
            (start / CHUNK_SIZE, size, size.div_ceil(CHUNK_SIZE))
        }
        None => (0, chunk_len, 1),
    };
    if size == 0 {
        return Err(ApiError::new(
            400,
            "storage_file_empty",
            "Empty file passed to the endpoint.",
        ));
    }
    let permissions = match upload.permissions {
        Some(p) => {
            let p = permissions::normalize(&p)?;
            permissions::check_grantable(&caller, &p)?;
            p
        }
        // A user who sets none may still manage what they uploaded, as in Appwrite.
        None => match &caller {
            Caller::User(u) => ["read", "update", "delete"]
                .iter()
                .map(|a| format!("{a}(\"user:{}\")", u.user_id))
                .collect(),
            _ => Vec::new(),
        },
    };
    let storage_dir = state.config.storage_dir.clone();
    let data = upload.data;
    let caller_for_tx = caller.clone();
    let file = state
        .store
        .transaction(move |tx| {
            let bucket = bucket_for(tx, &caller_for_tx, &bucket_id)?;
            if !caller_for_tx.is_key()
                && !permissions::grants(&bucket.permissions, Action::Create, &caller_for_tx.roles())
            {
                return Err(ApiError::user_unauthorized());
            }
            if size as i64 > bucket.maximum_file_size {
                return Err(ApiError::new(
                    400,
                    "storage_invalid_file_size",
                    "The given file size is not valid for this bucket.",
                ));
            }
            if !bucket.allowed_file_extensions.is_empty()
                && !bucket.allowed_file_extensions.contains(&extension(&name))
            {
                return Err(ApiError::new(
                    400,
                    "storage_file_type_unsupported",
                    "The given file extension is not supported.",
                ));
            }
            let now = util::now();
            match find_file(tx, &bucket.id, &file_id)? {
                Some(f) if f.complete() => {
                    return Err(ApiError::new(
                        409,
                        "storage_file_already_exists",
                        "A storage file with the requested ID already exists.",
                    ));
                }
                Some(f) if f.size != size as i64 => {
                    return Err(ApiError::new(
                        400,
                        "storage_invalid_content_range",
                        "The content range does not match the file being uploaded.",
                    ));
                }
                Some(_) => {}
                None => {
                    tx.execute(
                        "INSERT INTO files (bucket_id, id, name, size, chunks_total, chunks_uploaded, \
                         permissions, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?7)",
                        params![
                            bucket.id,
                            file_id,
                            name,
                            size as i64,
                            chunks_total as i64,
                            serde_json::to_string(&permissions)?,
                            now
                        ],
                    )?;
                }
            }
            // A retried chunk replaces itself, so re-sending after a lost response is harmless.
            tx.execute(
                "INSERT OR REPLACE INTO file_chunks (bucket_id, file_id, idx, data) VALUES (?1, ?2, ?3, ?4)",
                params![bucket.id, file_id, index as i64, data.as_ref()],
            )?;
            let uploaded: i64 = tx.query_row(
                "SELECT COUNT(*) FROM file_chunks WHERE bucket_id = ?1 AND file_id = ?2",
                params![bucket.id, file_id],
                |r| r.get(0),
            )?;
            if uploaded >= chunks_total as i64 {
                finish_upload(tx, &bucket.id, &file_id, &name, size, storage_dir.as_deref())?;
            }
            tx.execute(
                "UPDATE files SET chunks_uploaded = ?3, updated_at = ?4 WHERE bucket_id = ?1 AND id = ?2",
                params![bucket.id, file_id, uploaded.min(chunks_total as i64), now],
            )?;
            let file = find_file(tx, &bucket.id, &file_id)?.ok_or_else(file_not_found)?;
            Ok((bucket, file))
        })
        .await?;
    let (bucket, file) = file;
    if file.complete() {
        publish_file(&state, &bucket, &file, "create");
    }
    Ok((StatusCode::CREATED, Json(file.to_json())))
}

/// Joins the chunks in order, stores the bytes (disk or column) with signature and mime type,
/// and drops the chunks.
fn finish_upload(
    tx: &Connection,
    bucket_id: &str,
    file_id: &str,
    name: &str,
    size: u64,
    storage_dir: Option<&std::path::Path>,
) -> ApiResult<()> {
    let mut content = Vec::with_capacity(size as usize);
    {
        let mut stmt = tx.prepare(
            "SELECT data FROM file_chunks WHERE bucket_id = ?1 AND file_id = ?2 ORDER BY idx",
        )?;
        let mut rows = stmt.query(params![bucket_id, file_id])?;
        while let Some(row) = rows.next()? {
            let chunk: Vec<u8> = row.get(0)?;
            content.extend_from_slice(&chunk);
        }
    }
    if content.len() as u64 != size {
        return Err(ApiError::new(
            400,
            "storage_invalid_content_range",
            "The uploaded chunks do not add up to the declared file size.",
        ));
    }
    let signature = hex::encode(Md5::digest(&content));
    let mime = detect_mime(name, &content);
    let blob: Option<Vec<u8>> = match storage_dir {
        Some(dir) => {
            let path = file_path(dir, bucket_id, file_id);
            let write = || -> std::io::Result<()> {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&path, &content)
            };
            write().map_err(|e| ApiError::server_error(format!("writing file bytes: {e}")))?;
            None
        }
        None => Some(content),
    };
    tx.execute(
        "UPDATE files SET signature = ?3, mime_type = ?4, content = ?5 WHERE bucket_id = ?1 AND id = ?2",
        params![bucket_id, file_id, signature, mime, blob],
    )?;
    tx.execute(
        "DELETE FROM file_chunks WHERE bucket_id = ?1 AND file_id = ?2",
        params![bucket_id, file_id],
    )?;
    Ok(())
}

async fn list_files(
    caller: Caller,
    State(state): State<AppState>,
    Path(bucket_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = ListQuery::parse(raw.as_deref(), FILE_ATTRS)?;
    let items = state
        .store
        .call(move |conn| {
            let bucket = bucket_for(conn, &caller, &bucket_id)?;
            let bucket_grants =
                permissions::allowed(&caller, Action::Read, &bucket.permissions, false, &[]);
            if !bucket_grants && !bucket.file_security {
                return Err(ApiError::user_unauthorized());
            }
            let mut stmt = conn.prepare(&format!(
                "SELECT {FILE_COLS} FROM files WHERE bucket_id = ?1 ORDER BY seq"
            ))?;
            let files = stmt
                .query_map(params![bucket.id], file_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(files
                .into_iter()
                .filter(|f| {
                    bucket_grants
                        || permissions::allowed(
                            &caller,
                            Action::Read,
                            &bucket.permissions,
                            true,
                            &f.permissions,
                        )
                })
                .map(|f| f.to_json())
                .collect::<Vec<_>>())
        })
        .await?;
    let (total, page) = query.apply(items, &["$id", "name", "mimeType"])?;
    Ok(Json(list("files", total, page)))
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

async fn get_file(
    caller: Caller,
    State(state): State<AppState>,
    Path((bucket_id, file_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (_, file) = load_file(&state, &caller, bucket_id, file_id, Action::Read).await?;
    Ok(Json(file.to_json()))
}

#[derive(Deserialize)]
struct UpdateFile {
    name: Option<String>,
    permissions: Option<Vec<String>>,
}

async fn update_file(
    caller: Caller,
    State(state): State<AppState>,
    Path((bucket_id, file_id)): Path<(String, String)>,
    Body(body): Body<UpdateFile>,
) -> ApiResult<Json<Value>> {
    let (bucket, file) = load_file(&state, &caller, bucket_id, file_id, Action::Update).await?;
    let name = body.name.filter(|n| !n.is_empty()).unwrap_or(file.name);
    if name.chars().count() > 255 {
        return Err(ApiError::argument_invalid(
            "Invalid `name` param: Value must be a valid string and no longer than 255 chars",
        ));
    }
    let perms = match body.permissions {
        Some(p) => {
            let p = permissions::normalize(&p)?;
            permissions::check_grantable(&caller, &p)?;
            p
        }
        None => file.permissions,
    };
    let file = state
        .store
        .call(move |conn| {
            conn.execute(
                "UPDATE files SET name = ?3, permissions = ?4, updated_at = ?5 WHERE bucket_id = ?1 AND id = ?2",
                params![bucket.id, file.id, name, serde_json::to_string(&perms)?, util::now()],
            )?;
            find_file(conn, &bucket.id, &file.id)?.ok_or_else(file_not_found)
        })
        .await?;
    Ok(Json(file.to_json()))
}

async fn delete_file(
    caller: Caller,
    State(state): State<AppState>,
    Path((bucket_id, file_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (bucket, file) = load_file(&state, &caller, bucket_id, file_id, Action::Delete).await?;
    let (b, f) = (bucket.id.clone(), file.id.clone());
    state
        .store
        .call(move |conn| {
            conn.execute(
                "DELETE FROM files WHERE bucket_id = ?1 AND id = ?2",
                params![b, f],
            )?;
            Ok(())
        })
        .await?;
    if let Some(dir) = &state.config.storage_dir {
        // Best effort: the row is gone, so the bytes are unreachable either way.
        let _ = tokio::fs::remove_file(file_path(dir, &bucket.id, &file.id)).await;
    }
    publish_file(&state, &bucket, &file, "delete");
    Ok(StatusCode::NO_CONTENT)
}

async fn view_file(
    caller: Caller,
    State(state): State<AppState>,
    Path((bucket_id, file_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve_bytes(&state, &caller, bucket_id, file_id, &headers, "inline").await
}

async fn download_file(
    caller: Caller,
    State(state): State<AppState>,
    Path((bucket_id, file_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve_bytes(&state, &caller, bucket_id, file_id, &headers, "attachment").await
}

/// A single `Range: bytes=a-b` (or `a-`, or `-n`) against `size`; `None` = unsatisfiable
/// (416), including an end past the last byte, as Appwrite answers.
fn parse_range(raw: &str, size: u64) -> Option<(u64, u64)> {
    let spec = raw.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 {
            return None;
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        // Appwrite refuses an end at or past the file size rather than trimming it (416).
        let end: u64 = if b.is_empty() {
            size - 1
        } else {
            b.parse::<u64>().ok()?
        };
        if end >= size {
            return None;
        }
        (start, end)
    };
    (start <= end && start < size).then_some((start, end))
}

async fn serve_bytes(
    state: &AppState,
    caller: &Caller,
    bucket_id: String,
    file_id: String,
    headers: &HeaderMap,
    disposition: &str,
) -> ApiResult<Response> {
    let (bucket, file) = load_file(state, caller, bucket_id, file_id, Action::Read).await?;
    if !file.complete() {
        return Err(file_not_found());
    }
    let content: Vec<u8> = match &state.config.storage_dir {
        Some(dir) => tokio::fs::read(file_path(dir, &bucket.id, &file.id))
            .await
            .map_err(|e| ApiError::server_error(format!("reading file bytes: {e}")))?,
        None => {
            let (b, f) = (bucket.id.clone(), file.id.clone());
            state
                .store
                .call(move |conn| {
                    let blob: Option<Vec<u8>> = conn.query_row(
                        "SELECT content FROM files WHERE bucket_id = ?1 AND id = ?2",
                        params![b, f],
                        |r| r.get(0),
                    )?;
                    Ok(blob.unwrap_or_default())
                })
                .await?
        }
    };
    let size = content.len() as u64;
    let filename = file.name.replace(['"', '\\', '\r', '\n'], "_");
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, file.mime_type.as_str())
        .header(
            header::CONTENT_DISPOSITION,
            format!("{disposition}; filename=\"{filename}\""),
        )
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CACHE_CONTROL, "private, max-age=3888000");
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let response = match range {
        None => builder
            .status(StatusCode::OK)
            .header(header::CONTENT_LENGTH, size)
            .body(RawBody::from(content)),
        Some(raw) => match parse_range(raw, size) {
            Some((start, end)) => builder
                .status(StatusCode::PARTIAL_CONTENT)
                .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"))
                .header(header::CONTENT_LENGTH, end - start + 1)
                .body(RawBody::from(
                    content[start as usize..=end as usize].to_vec(),
                )),
            None => {
                let mut resp = ApiError::new(
                    416,
                    "storage_invalid_range",
                    "The requested range is not satisfiable. Please check the value of the Range header.",
                )
                .into_response();
                if let Ok(v) = format!("bytes */{size}").parse() {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return Ok(resp);
            }
        },
    };
    response.map_err(|e| ApiError::server_error(format!("building file response: {e}")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        // Appwrite answers 416 for an end past the last byte instead of trimming it.
        assert_eq!(parse_range("bytes=95-200", 100), None);
        assert_eq!(parse_range("bytes=95-99", 100), Some((95, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,4-5", 100), None);
    }

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 0-5242879/12582912"),
            Some((0, 5_242_879, 12_582_912))
        );
        assert_eq!(parse_content_range("bytes 10-5/100"), None);
        assert_eq!(parse_content_range("0-5/100"), None);
    }

    #[test]
    fn mime_detection() {
        assert_eq!(detect_mime("a.bin", b"\x89PNG\r\n\x1a\nrest"), "image/png");
        assert_eq!(detect_mime("notes.txt", b"hello"), "text/plain");
        assert_eq!(detect_mime("x", &[0, 1, 2]), "application/octet-stream");
        assert_eq!(detect_mime("x.bin", &[7; 64]), "application/octet-stream");
        assert_eq!(detect_mime("x", "héllo\n".as_bytes()), "text/plain");
    }
}
