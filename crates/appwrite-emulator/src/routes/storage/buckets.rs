//! Bucket routes (server key only): create, list, read, update and delete, with Appwrite's
//! defaults and argument checks.

use axum::{
    Json,
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use rusqlite::{Connection, params};
use serde::Deserialize;
use serde_json::Value;

use super::{BUCKET_COLS, BucketRow, bucket_from_row, bucket_not_found, find_bucket};
use crate::{
    auth::Caller,
    error::{ApiError, ApiResult},
    list_query::ListQuery,
    params::{list, required},
    permissions,
    routes::Body,
    state::AppState,
    util,
};

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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BucketBody {
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

pub(super) async fn create_bucket(
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

pub(super) async fn list_buckets(
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

pub(super) async fn get_bucket(
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

pub(super) async fn update_bucket(
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

pub(super) async fn delete_bucket(
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
