//! `.../view` and `.../download`: a complete file's bytes, whole or one `Range`, with the
//! headers Appwrite sends.

use axum::{
    body::Body as RawBody,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use rusqlite::params;

use super::{file_not_found, file_path, load_file};
use crate::{
    auth::Caller,
    error::{ApiError, ApiResult},
    permissions::Action,
    state::AppState,
};

pub(super) async fn view_file(
    caller: Caller,
    State(state): State<AppState>,
    Path((bucket_id, file_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve_bytes(&state, &caller, bucket_id, file_id, &headers, "inline").await
}

pub(super) async fn download_file(
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
}
