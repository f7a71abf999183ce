//! File routes other than the upload: list (filtered by read permission), read, rename or
//! re-permission, and delete.

use axum::{
    Json,
    extract::{Path, RawQuery, State},
    http::StatusCode,
};
use rusqlite::params;
use serde::Deserialize;
use serde_json::Value;

use super::{
    FILE_COLS, bucket_for, file_from_row, file_not_found, file_path, find_file, load_file,
    publish_file,
};
use crate::{
    auth::Caller,
    error::{ApiError, ApiResult},
    list_query::ListQuery,
    params::list,
    permissions::{self, Action},
    routes::Body,
    state::AppState,
    util,
};

const FILE_ATTRS: &[&str] = &[
    "name",
    "signature",
    "mimeType",
    "sizeOriginal",
    "chunksTotal",
    "chunksUploaded",
];

pub(super) async fn list_files(
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

pub(super) async fn get_file(
    caller: Caller,
    State(state): State<AppState>,
    Path((bucket_id, file_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (_, file) = load_file(&state, &caller, bucket_id, file_id, Action::Read).await?;
    Ok(Json(file.to_json()))
}

#[derive(Deserialize)]
pub(super) struct UpdateFile {
    name: Option<String>,
    permissions: Option<Vec<String>>,
}

pub(super) async fn update_file(
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

pub(super) async fn delete_file(
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
