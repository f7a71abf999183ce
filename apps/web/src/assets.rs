//! `GET /signals/{signal_id}/assets/{file_id}`: a signal's attachment from bucket
//! `signal_assets`, read by web with its server key and served only to a viewer whose plans
//! unlock the signal's route, and only when the file is one of that signal's attachments.
//! Stored files never change, so browsers keep them privately for a year (with an `ETag`);
//! pictures show inline, anything else downloads.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use g3_store::{
    Collection,
    models::{AttachmentRef, AttachmentState, Signal},
    schema::BUCKET_SIGNAL_ASSETS,
};

use crate::{AppState, error::AppError, session};

/// Files are immutable once stored: keep them, but only in the reader's own browser.
const CACHE: &str = "private, max-age=31536000, immutable";

/// Types shown inline: pictures a browser draws and never runs as a document (SVG would).
const INLINE: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

/// An Appwrite id as our documents and files use them.
fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 36
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CACHE_CONTROL, "no-store")],
        "Your plan does not include this signal.",
    )
        .into_response()
}

pub async fn asset(
    State(state): State<AppState>,
    viewer: session::Viewer,
    Path((signal_id, file_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if !is_id(&signal_id) || !is_id(&file_id) {
        return Err(AppError::NotFound);
    }
    let signals = Collection::<Signal>::new(state.appwrite());
    let (entitled, signal) = tokio::join!(
        session::entitled(&state, &viewer.user),
        signals.get_optional(&signal_id),
    );
    let entitled = entitled?;
    if !entitled.has_feed() {
        return Ok(refused());
    }
    let Some(signal) = signal? else {
        return Err(AppError::NotFound);
    };
    if !entitled.allows(&signal.data.route_key) {
        return Ok(refused());
    }
    let Some(attachment) = signal
        .data
        .attachment_refs()
        .into_iter()
        .find(|a| a.state == AttachmentState::Stored && a.file_id.as_deref() == Some(&file_id))
    else {
        return Err(AppError::NotFound);
    };
    let etag = format!("\"{file_id}\"");
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if cached {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let content = match state
            .appwrite()
            .storage()
            .view(BUCKET_SIGNAL_ASSETS, &file_id, None)
            .await
        {
            Ok(c) => c,
            Err(e) if e.is_not_found() => return Err(AppError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let media = media_type(&attachment, content.content_type.as_deref());
        let inline = INLINE.contains(&media.as_str());
        let mut resp = content.bytes.into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&media)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        );
        if let Ok(v) = HeaderValue::from_str(&disposition(inline, &attachment.filename)) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        resp
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}

/// The type to serve: what ingest found by content (magic bytes), else what Storage says; only
/// a plain `type/subtype`, lower-case, else `application/octet-stream`.
fn media_type(attachment: &AttachmentRef, stored: Option<&str>) -> String {
    let clean = |t: &str| {
        let t = t
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let ok = t.split_once('/').is_some_and(|(a, b)| {
            let token = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&c))
            };
            token(a) && token(b)
        });
        ok.then_some(t)
    };
    attachment
        .content_type
        .as_deref()
        .and_then(clean)
        .or_else(|| stored.and_then(clean))
        .unwrap_or_else(|| "application/octet-stream".into())
}

/// `inline` or `attachment`, with the file name: ASCII in `filename`, exact in `filename*`.
fn disposition(inline: bool, name: &str) -> String {
    let kind = if inline { "inline" } else { "attachment" };
    let ascii: String = name
        .chars()
        .take(120)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ascii = if ascii.trim().is_empty() {
        "file".to_owned()
    } else {
        ascii
    };
    let exact: String = url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{exact}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment(content_type: Option<&str>) -> AttachmentRef {
        AttachmentRef {
            id: "1".into(),
            filename: "chart.png".into(),
            content_type: content_type.map(Into::into),
            size: None,
            file_id: Some("f".into()),
            state: AttachmentState::Stored,
            note: None,
            source_url: None,
        }
    }

    #[test]
    fn the_type_is_the_sniffed_one_else_storages_else_octets() {
        assert_eq!(
            media_type(&attachment(Some("Image/PNG")), Some("text/html")),
            "image/png"
        );
        assert_eq!(
            media_type(&attachment(None), Some("application/pdf; x=1")),
            "application/pdf"
        );
        assert_eq!(
            media_type(&attachment(Some("<script>")), Some("nonsense")),
            "application/octet-stream"
        );
    }

    #[test]
    fn names_are_quoted_safely() {
        assert_eq!(
            disposition(true, "chart.png"),
            "inline; filename=\"chart.png\"; filename*=UTF-8''chart.png"
        );
        assert_eq!(
            disposition(false, "a\"b\r\n é.pdf"),
            "attachment; filename=\"a_b__ _.pdf\"; filename*=UTF-8''a%22b%0D%0A%20%C3%A9.pdf"
        );
        assert!(disposition(false, "").contains("filename=\"file\""));
    }
}
