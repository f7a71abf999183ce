//! `POST .../files`: one-shot uploads and 5 MiB chunks, assembled into the file when the last
//! chunk lands.

use axum::{
    Json,
    extract::{Multipart, Path, State},
    http::{HeaderMap, StatusCode},
};
use md5::{Digest, Md5};
use rusqlite::{Connection, params};
use serde_json::Value;

use super::{
    bucket_for, bucket_not_found, file_not_found, file_path, find_file,
    mime::{detect_mime, extension},
    publish_file,
};
use crate::{
    auth::Caller,
    error::{ApiError, ApiResult},
    params::required,
    permissions::{self, Action},
    state::AppState,
    util,
};

/// Appwrite's upload chunk size: clients split larger files into pieces of exactly this size.
const CHUNK_SIZE: u64 = 5 * 1024 * 1024;

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

#[tracing::instrument(skip_all, fields(bucket_id = %bucket_id))]
pub(super) async fn create_file(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 0-5242879/12582912"),
            Some((0, 5_242_879, 12_582_912))
        );
        assert_eq!(parse_content_range("bytes 10-5/100"), None);
        assert_eq!(parse_content_range("0-5/100"), None);
    }
}
