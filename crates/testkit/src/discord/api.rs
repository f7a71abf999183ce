//! The fake's REST routes (`/api/v10/...`), in Discord's wire format: every route the bot uses.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{FromRequest as _, Multipart, Path, Query, State as AxState},
    http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

use super::{
    gateway::Gateway,
    oauth,
    state::{
        BOT_USER_ID, Bucket, FakeRole, Fault, RecordedRequest, Shared, State, StoredAttachment,
        StoredMessage, bot_user_json, fetched_json, lock, message_json, now_ms, record,
    },
};

pub(crate) fn router(state: Shared, gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/api/v10/users/@me", get(me))
        .route("/api/users/@me", get(me))
        .route(
            "/oauth2/authorize",
            get(oauth::authorize_page).post(oauth::authorize_submit),
        )
        .route("/api/oauth2/token", post(oauth::token))
        .route("/api/v10/oauth2/token", post(oauth::token))
        .route("/api/oauth2/token/revoke", post(oauth::revoke))
        .route("/api/v10/oauth2/token/revoke", post(oauth::revoke))
        .route(
            "/api/v10/channels/{channel}/messages",
            get(list).post(create),
        )
        .route(
            "/api/v10/channels/{channel}/messages/{message}",
            get(get_one).patch(edit).delete(delete),
        )
        .route(
            "/api/v10/webhooks/{id}/{token}",
            axum::routing::post(execute_webhook),
        )
        .route(
            "/api/v10/webhooks/{id}/{token}/messages/{message}",
            axum::routing::patch(edit_webhook_message).delete(delete_webhook_message),
        )
        .route("/api/v10/guilds/{guild}/roles", get(list_roles))
        .route("/api/v10/guilds/{guild}/members", get(list_members))
        .route(
            "/api/v10/guilds/{guild}/members/{user}",
            get(get_member).put(add_member),
        )
        .route(
            "/api/v10/guilds/{guild}/members/{user}/roles/{role}",
            axum::routing::put(add_role).delete(remove_role),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            bot_auth,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            oauth::outage,
        ))
        .layer(axum::Extension(gateway))
        .with_state(state)
}
/// Refuses a bot token other than the required one (see `FakeDiscord::require_bot_token`).
async fn bot_auth(
    AxState(state): AxState<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bot "))
        .map(str::to_owned);
    let refused = match (&lock(&state).bot_token, given) {
        (Some(required), Some(given)) => *required != given,
        _ => false,
    };
    if refused {
        return error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
    }
    next.run(req).await
}

/// The bot's own user, or with `Authorization: Bearer …` the OAuth user (see `oauth`).
async fn me(AxState(state): AxState<Shared>, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    if let Some(response) = oauth::bearer_me(&state, &headers, uri.path()) {
        return response;
    }
    Json(bot_user_json()).into_response()
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, Json(json!({ "message": message, "code": code }))).into_response()
}

/// A request's body: JSON, or multipart `payload_json` plus `files[n]`.
#[derive(Default)]
struct Parsed {
    json: Value,
    files: Vec<(u64, String, Option<String>, Vec<u8>)>,
}

async fn parse_body(headers: &HeaderMap, body: Bytes) -> Result<Parsed, Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("multipart/form-data") {
        if body.is_empty() {
            return Ok(Parsed::default());
        }
        let json = serde_json::from_slice(&body).map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                50109,
                "The request body contains invalid JSON.",
            )
        })?;
        return Ok(Parsed {
            json,
            files: Vec::new(),
        });
    }
    let req = Request::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .map_err(|_| error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body"))?;
    let mut multipart = Multipart::from_request(req, &())
        .await
        .map_err(|_| error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body"))?;
    let mut parsed = Parsed::default();
    while let Ok(Some(field)) = multipart.next_field().await {
        let name = field.name().unwrap_or("").to_owned();
        let filename = field.file_name().map(str::to_owned);
        let ctype = field.content_type().map(str::to_owned);
        let Ok(data) = field.bytes().await else {
            return Err(error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body"));
        };
        if name == "payload_json" {
            parsed.json = serde_json::from_slice(&data).map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    50109,
                    "The request body contains invalid JSON.",
                )
            })?;
        } else if let Some(index) = name
            .strip_prefix("files[")
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|n| n.parse::<u64>().ok())
        {
            parsed.files.push((
                index,
                filename.unwrap_or_else(|| format!("file{index}")),
                ctype,
                data.to_vec(),
            ));
        }
    }
    Ok(parsed)
}

/// What a request may do once past the gate.
struct Pass {
    headers: HeaderMap,
    stall: Option<Duration>,
}

/// Access, rate limit and faults, in Discord's order. `Err` is the answer to send instead.
#[allow(clippy::result_large_err)] // a test fake: the error is the response, built once
fn gate(
    s: &mut State,
    kind: &'static str,
    channel: u64,
    rec: &mut RecordedRequest,
) -> Result<Pass, Response> {
    if s.missing_channels.contains(&channel) {
        return Err(error(StatusCode::NOT_FOUND, 10003, "Unknown Channel"));
    }
    if s.forbidden_channels.contains(&channel) {
        return Err(error(StatusCode::FORBIDDEN, 50001, "Missing Access"));
    }
    let (limit, window) = match s.limit {
        Some(l) => (l.limit, l.window),
        None => (10_000, Duration::from_secs(1)),
    };
    let now = Instant::now();
    let bucket = s.buckets.entry((kind, channel)).or_insert(Bucket {
        started: now,
        used: 0,
    });
    if now.duration_since(bucket.started) >= window {
        bucket.started = now;
        bucket.used = 0;
    }
    let reset_after = window.saturating_sub(now.duration_since(bucket.started));
    let mut headers = HeaderMap::new();
    let bucket_name = format!("{kind}-{channel}");
    let set = |h: &mut HeaderMap, k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    let reset_at = now_ms() as f64 / 1000.0 + reset_after.as_secs_f64();
    set(&mut headers, "x-ratelimit-limit", limit.to_string());
    set(&mut headers, "x-ratelimit-reset", format!("{reset_at:.3}"));
    set(
        &mut headers,
        "x-ratelimit-reset-after",
        format!("{:.3}", reset_after.as_secs_f64()),
    );
    set(&mut headers, "x-ratelimit-bucket", bucket_name);
    let used = bucket.used;
    if used >= limit {
        rec.over_limit = true;
        set(&mut headers, "x-ratelimit-remaining", "0".into());
        set(&mut headers, "x-ratelimit-scope", "user".into());
        let retry = reset_after.as_secs_f64().max(0.001);
        set(&mut headers, "retry-after", format!("{retry:.3}"));
        let body = json!({ "message": "You are being rate limited.", "retry_after": retry, "global": false });
        return Err((StatusCode::TOO_MANY_REQUESTS, headers, Json(body)).into_response());
    }
    let fault = s.draw_fault();
    rec.fault = fault;
    match fault {
        Some(Fault::RateLimited { retry_after }) => {
            set(&mut headers, "x-ratelimit-remaining", "0".into());
            set(&mut headers, "x-ratelimit-scope", "shared".into());
            set(&mut headers, "retry-after", format!("{retry_after:.3}"));
            let body = json!({ "message": "You are being rate limited.", "retry_after": retry_after, "global": false });
            Err((StatusCode::TOO_MANY_REQUESTS, headers, Json(body)).into_response())
        }
        Some(Fault::GlobalRateLimited { retry_after }) => {
            let mut headers = HeaderMap::new();
            set(&mut headers, "x-ratelimit-global", "true".into());
            set(&mut headers, "x-ratelimit-scope", "global".into());
            set(&mut headers, "retry-after", format!("{retry_after:.3}"));
            let body = json!({ "message": "You are being rate limited.", "retry_after": retry_after, "global": true });
            Err((StatusCode::TOO_MANY_REQUESTS, headers, Json(body)).into_response())
        }
        Some(Fault::ServerError(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Err(error(status, 0, "500: Internal Server Error"))
        }
        stall => {
            if let Some(bucket) = s.buckets.get_mut(&(kind, channel)) {
                bucket.used += 1;
            }
            set(
                &mut headers,
                "x-ratelimit-remaining",
                (limit - used - 1).to_string(),
            );
            let stall = match stall {
                Some(Fault::Stall(d)) => Some(d),
                _ => None,
            };
            Ok(Pass { headers, stall })
        }
    }
}

/// The `X-Audit-Log-Reason` header, percent-decoded as Discord reads it.
fn audit_reason(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get("x-audit-log-reason")?.to_str().ok()?.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = raw
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (raw[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Finishes a request: records it with its status, holds a stalled answer, then answers.
async fn finish(
    state: &Shared,
    mut rec: RecordedRequest,
    outcome: Result<(Pass, Response), Response>,
) -> Response {
    let (stall, response) = match outcome {
        Ok((pass, mut response)) => {
            response.headers_mut().extend(pass.headers);
            (pass.stall, response)
        }
        Err(response) => (None, response),
    };
    rec.status = response.status().as_u16();
    lock(state).requests.push(rec);
    if let Some(d) = stall {
        tokio::time::sleep(d).await;
    }
    response
}

fn embeds_of(json: &Value) -> Option<Vec<Value>> {
    json.get("embeds")
        .map(|e| e.as_array().cloned().unwrap_or_default())
}

fn nonce_of(json: &Value) -> Option<String> {
    match json.get("nonce") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

async fn create(
    AxState(state): AxState<Shared>,
    Path(channel): Path<u64>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/api/v10/channels/{channel}/messages");
    let mut rec = record(&Method::POST, &path, None, channel);
    let parsed = match parse_body(&headers, body).await {
        Ok(p) => p,
        Err(r) => return finish(&state, rec, Err(r)).await,
    };
    rec.body = Some(parsed.json.clone());
    rec.nonce = nonce_of(&parsed.json);
    rec.enforce_nonce = parsed.json.get("enforce_nonce") == Some(&Value::Bool(true));
    rec.files = parsed.files.iter().map(|f| f.1.clone()).collect();
    let outcome = {
        let mut s = lock(&state);
        match gate(&mut s, "messages", channel, &mut rec) {
            Err(r) => Err(r),
            Ok(pass) => Ok((pass, create_message(&mut s, channel, None, &rec, parsed))),
        }
    };
    finish(&state, rec, outcome).await
}

fn create_message(
    s: &mut State,
    channel: u64,
    webhook: Option<u64>,
    rec: &RecordedRequest,
    parsed: Parsed,
) -> Response {
    let author = webhook.unwrap_or(BOT_USER_ID);
    let content = parsed
        .json
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let embeds = embeds_of(&parsed.json).unwrap_or_default();
    if content.is_empty() && embeds.is_empty() && parsed.files.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            50006,
            "Cannot send an empty message",
        );
    }
    if content.chars().count() > 2000 {
        return error(
            StatusCode::BAD_REQUEST,
            50035,
            "Invalid Form Body (content: Must be 2000 or fewer in length.)",
        );
    }
    let reply_to = match reply_target(s, channel, &parsed.json) {
        Ok(r) => r,
        Err((code, message)) => return form_error("message_reference", code, message),
    };
    if let (Some(nonce), true) = (&rec.nonce, rec.enforce_nonce) {
        let key = (author, channel, nonce.clone());
        let window = s.nonce_window;
        if let Some((id, at)) = s.nonces.get(&key)
            && at.elapsed() < window
        {
            let id = *id;
            if let Some(m) = s
                .channels
                .get(&channel)
                .and_then(|list| list.iter().find(|m| m.id == id))
            {
                return Json(message_json(m)).into_response();
            }
        }
    }
    let (id, ms) = s.snowflake();
    let mut attachments = Vec::new();
    for (_, filename, ctype, bytes) in parsed.files {
        let (aid, _) = s.snowflake();
        attachments.push(StoredAttachment {
            id: aid,
            filename,
            content_type: ctype,
            bytes,
        });
    }
    let message = StoredMessage {
        id,
        channel_id: channel,
        author_id: author,
        content,
        embeds,
        attachments,
        nonce: rec.nonce.clone(),
        created_ms: ms,
        edited_ms: None,
        webhook_id: webhook,
        reply_to,
    };
    if let (Some(nonce), true) = (&rec.nonce, rec.enforce_nonce) {
        s.nonces
            .insert((author, channel, nonce.clone()), (id, Instant::now()));
    }
    let body = message_json(&message);
    s.channels.entry(channel).or_default().push(message);
    Json(body).into_response()
}

/// The message a create replies to (`message_reference`), checked as Discord does: it must be
/// in the same channel, and a missing one is refused (`REPLIES_UNKNOWN_MESSAGE`) unless
/// `fail_if_not_exists` is false (then the message is sent as a plain one). A refusal is the
/// field error's code and message.
fn reply_target(
    s: &State,
    channel: u64,
    json: &Value,
) -> Result<Option<u64>, (&'static str, &'static str)> {
    let Some(reference) = json.get("message_reference").filter(|r| !r.is_null()) else {
        return Ok(None);
    };
    let id_of = |key: &str| match reference.get(key) {
        Some(Value::String(v)) => v.parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    if id_of("channel_id").is_some_and(|c| c != channel) {
        return Err((
            "REPLIES_CANNOT_REFERENCE_OTHER_CHANNEL",
            "Cannot reply to a message in a different channel",
        ));
    }
    let target = id_of("message_id");
    let exists = target.is_some_and(|id| {
        s.channels
            .get(&channel)
            .is_some_and(|list| list.iter().any(|m| m.id == id))
    });
    if exists {
        return Ok(target);
    }
    if reference.get("fail_if_not_exists") == Some(&Value::Bool(false)) {
        return Ok(None);
    }
    Err(("REPLIES_UNKNOWN_MESSAGE", "Unknown message"))
}

/// Discord's 400 for a body refused field by field, with one error on `field`.
fn form_error(field: &str, code: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "message": "Invalid Form Body",
            "code": 50035,
            "errors": { field: { "_errors": [{ "code": code, "message": message }] } },
        })),
    )
        .into_response()
}

async fn edit(
    AxState(state): AxState<Shared>,
    Path((channel, message)): Path<(u64, u64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/api/v10/channels/{channel}/messages/{message}");
    let mut rec = record(&Method::PATCH, &path, None, channel);
    let parsed = match parse_body(&headers, body).await {
        Ok(p) => p,
        Err(r) => return finish(&state, rec, Err(r)).await,
    };
    rec.body = Some(parsed.json.clone());
    rec.files = parsed.files.iter().map(|f| f.1.clone()).collect();
    let outcome = {
        let mut s = lock(&state);
        match gate(&mut s, "message", channel, &mut rec) {
            Err(r) => Err(r),
            Ok(pass) => Ok((pass, edit_message(&mut s, channel, message, parsed))),
        }
    };
    finish(&state, rec, outcome).await
}

fn edit_message(s: &mut State, channel: u64, message: u64, parsed: Parsed) -> Response {
    let mut new_ids = Vec::new();
    for _ in &parsed.files {
        new_ids.push(s.snowflake().0);
    }
    let Some(m) = s
        .channels
        .get_mut(&channel)
        .and_then(|list| list.iter_mut().find(|m| m.id == message))
    else {
        return error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
    };
    if let Some(content) = parsed.json.get("content") {
        let content = content.as_str().unwrap_or("").to_owned();
        if content.chars().count() > 2000 {
            return error(
                StatusCode::BAD_REQUEST,
                50035,
                "Invalid Form Body (content: Must be 2000 or fewer in length.)",
            );
        }
        m.content = content;
    }
    if let Some(embeds) = embeds_of(&parsed.json) {
        m.embeds = embeds;
    }
    let mut uploaded: HashMap<u64, StoredAttachment> = parsed
        .files
        .into_iter()
        .zip(new_ids)
        .map(|((index, filename, content_type, bytes), id)| {
            (
                index,
                StoredAttachment {
                    id,
                    filename,
                    content_type,
                    bytes,
                },
            )
        })
        .collect();
    match parsed.json.get("attachments").and_then(Value::as_array) {
        Some(listed) => {
            let mut keep = Vec::new();
            for entry in listed {
                let id = match entry.get("id") {
                    Some(Value::String(s)) => s.parse::<u64>().ok(),
                    Some(Value::Number(n)) => n.as_u64(),
                    _ => None,
                };
                let Some(id) = id else { continue };
                if let Some(new) = uploaded.remove(&id) {
                    keep.push(new);
                } else if let Some(old) = m.attachments.iter().find(|a| a.id == id) {
                    keep.push(old.clone());
                }
            }
            m.attachments = keep;
        }
        None => {
            let mut rest: Vec<_> = uploaded.into_iter().collect();
            rest.sort_by_key(|(index, _)| *index);
            m.attachments.extend(rest.into_iter().map(|(_, a)| a));
        }
    }
    m.edited_ms = Some(now_ms());
    Json(message_json(m)).into_response()
}

async fn delete(
    AxState(state): AxState<Shared>,
    Path((channel, message)): Path<(u64, u64)>,
) -> Response {
    let path = format!("/api/v10/channels/{channel}/messages/{message}");
    let mut rec = record(&Method::DELETE, &path, None, channel);
    let outcome = {
        let mut s = lock(&state);
        match gate(&mut s, "message", channel, &mut rec) {
            Err(r) => Err(r),
            Ok(pass) => {
                let list = s.channels.entry(channel).or_default();
                let before = list.len();
                list.retain(|m| m.id != message);
                let response = if list.len() == before {
                    error(StatusCode::NOT_FOUND, 10008, "Unknown Message")
                } else {
                    StatusCode::NO_CONTENT.into_response()
                };
                Ok((pass, response))
            }
        }
    };
    finish(&state, rec, outcome).await
}

async fn get_one(
    AxState(state): AxState<Shared>,
    Path((channel, message)): Path<(u64, u64)>,
) -> Response {
    let path = format!("/api/v10/channels/{channel}/messages/{message}");
    let mut rec = record(&Method::GET, &path, None, channel);
    let outcome = {
        let mut s = lock(&state);
        match gate(&mut s, "message", channel, &mut rec) {
            Err(r) => Err(r),
            Ok(pass) => {
                let found = s
                    .channels
                    .get(&channel)
                    .and_then(|list| list.iter().find(|m| m.id == message))
                    .map(fetched_json);
                let response = match found {
                    Some(m) => Json(m).into_response(),
                    None => error(StatusCode::NOT_FOUND, 10008, "Unknown Message"),
                };
                Ok((pass, response))
            }
        }
    };
    finish(&state, rec, outcome).await
}

async fn list(
    AxState(state): AxState<Shared>,
    Path(channel): Path<u64>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let path = format!("/api/v10/channels/{channel}/messages");
    let raw: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut rec = record(&Method::GET, &path, Some(raw.join("&")), channel);
    let num = |k: &str| query.get(k).and_then(|v| v.parse::<u64>().ok());
    let limit = num("limit").unwrap_or(50).clamp(1, 100) as usize;
    let outcome = {
        let mut s = lock(&state);
        match gate(&mut s, "messages", channel, &mut rec) {
            Err(r) => Err(r),
            Ok(pass) => {
                let all = s.channels.get(&channel).cloned().unwrap_or_default();
                // Newest first, as Discord answers.
                let mut picked: Vec<&StoredMessage> = all
                    .iter()
                    .rev()
                    .filter(|m| num("before").is_none_or(|b| m.id < b))
                    .filter(|m| num("after").is_none_or(|a| m.id > a))
                    .collect();
                if num("after").is_some() && num("before").is_none() {
                    // `after` pages upward from the oldest match.
                    picked.reverse();
                    picked.truncate(limit);
                    picked.reverse();
                } else {
                    picked.truncate(limit);
                }
                let body: Vec<Value> = picked.into_iter().map(fetched_json).collect();
                Ok((pass, Json(body).into_response()))
            }
        }
    };
    finish(&state, rec, outcome).await
}

fn member_json(guild: u64, user: u64, roles: &[u64]) -> Value {
    json!({
        "user": {
            "id": user.to_string(),
            "username": format!("user{user}"),
            "discriminator": "0000",
            "global_name": null,
            "avatar": null,
        },
        "nick": null,
        "roles": roles.iter().map(u64::to_string).collect::<Vec<_>>(),
        "joined_at": "2026-01-01T00:00:00.000000+00:00",
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "guild_id": guild.to_string(),
    })
}

fn role_json(r: &FakeRole) -> Value {
    json!({
        "id": r.id.to_string(),
        "name": r.name,
        "color": 0,
        "colors": { "primary_color": 0, "secondary_color": null, "tertiary_color": null },
        "hoist": false,
        "icon": null,
        "unicode_emoji": null,
        "position": r.position,
        "permissions": r.permissions.to_string(),
        "managed": false,
        "mentionable": false,
        "flags": 0,
    })
}

/// The request's parts a member route records.
struct MemberRequest {
    method: Method,
    path: String,
    query: Option<String>,
    body: Option<Value>,
    reason: Option<String>,
}

impl MemberRequest {
    fn new(method: Method, path: String) -> Self {
        Self {
            method,
            path,
            query: None,
            body: None,
            reason: None,
        }
    }
}

/// Guild routes share one bucket per guild (as serenity keys them by the guild).
async fn member_route(
    state: &Shared,
    req: MemberRequest,
    guild: u64,
    effect: impl FnOnce(&mut State) -> Response,
) -> Response {
    let mut rec = record(&req.method, &req.path, req.query, guild);
    rec.channel_id = None;
    rec.body = req.body;
    rec.audit_reason = req.reason;
    let outcome = {
        let mut s = lock(state);
        match gate(&mut s, "member", guild, &mut rec) {
            Err(r) => Err(r),
            Ok(pass) => Ok((pass, effect(&mut s))),
        }
    };
    finish(state, rec, outcome).await
}

async fn get_member(
    AxState(state): AxState<Shared>,
    Path((guild, user)): Path<(u64, u64)>,
) -> Response {
    let path = format!("/api/v10/guilds/{guild}/members/{user}");
    let req = MemberRequest::new(Method::GET, path);
    member_route(&state, req, guild, |s| {
        match s.members.get(&(guild, user)) {
            Some(roles) => Json(member_json(guild, user, roles)).into_response(),
            None => error(StatusCode::NOT_FOUND, 10007, "Unknown Member"),
        }
    })
    .await
}

/// `GET /guilds/{g}/members?limit=&after=`: members by ascending user id, `limit` 1..=1000
/// (Discord's default is 1).
async fn list_members(
    AxState(state): AxState<Shared>,
    Path(guild): Path<u64>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let path = format!("/api/v10/guilds/{guild}/members");
    let mut raw: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    raw.sort();
    let num = |k: &str| query.get(k).and_then(|v| v.parse::<u64>().ok());
    let limit = num("limit").unwrap_or(1);
    let after = num("after").unwrap_or(0);
    let mut req = MemberRequest::new(Method::GET, path);
    req.query = Some(raw.join("&"));
    member_route(&state, req, guild, |s| {
        if !(1..=1000).contains(&limit) {
            return error(
                StatusCode::BAD_REQUEST,
                50035,
                "Invalid Form Body (limit: int value should be less than or equal to 1000.)",
            );
        }
        let body: Vec<Value> = s
            .members_of(guild)
            .into_iter()
            .filter(|(u, _)| *u > after)
            .take(limit as usize)
            .map(|(u, roles)| member_json(guild, u, &roles))
            .collect();
        Json(body).into_response()
    })
    .await
}

/// `GET /guilds/{g}/roles`: every role with `@everyone`; 404 for a guild without roles.
async fn list_roles(AxState(state): AxState<Shared>, Path(guild): Path<u64>) -> Response {
    let path = format!("/api/v10/guilds/{guild}/roles");
    let req = MemberRequest::new(Method::GET, path);
    member_route(&state, req, guild, |s| match s.roles_of(guild) {
        Some(roles) => Json(roles.iter().map(role_json).collect::<Vec<_>>()).into_response(),
        None => error(StatusCode::NOT_FOUND, 10004, "Unknown Guild"),
    })
    .await
}

/// `PUT .../members/{user}` by the bot with the user's OAuth `access_token` (live, issued for
/// that user, scope `guilds.join`): 201 and the member when added (GUILD_MEMBER_ADD goes to the
/// gateway, as on Discord), 204 when already there.
async fn add_member(
    AxState(state): AxState<Shared>,
    axum::Extension(gateway): axum::Extension<Arc<Gateway>>,
    Path((guild, user)): Path<(u64, u64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/api/v10/guilds/{guild}/members/{user}");
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let roles: Vec<u64> = json
        .get("roles")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    let access_token = json
        .get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let bot = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bot "));
    let mut req = MemberRequest::new(Method::PUT, path);
    req.body = Some(json.clone());
    let response = member_route(&state, req, guild, |s| {
        if !bot {
            return error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
        }
        let Some(access_token) = &access_token else {
            return error(
                StatusCode::BAD_REQUEST,
                50035,
                "Invalid Form Body (access_token)",
            );
        };
        if !oauth::join_allowed(s, access_token, user) {
            return error(StatusCode::FORBIDDEN, 50025, "Invalid OAuth2 access token");
        }
        if s.members.contains_key(&(guild, user)) {
            return StatusCode::NO_CONTENT.into_response();
        }
        s.members.insert((guild, user), roles.clone());
        (StatusCode::CREATED, Json(member_json(guild, user, &roles))).into_response()
    })
    .await;
    if response.status() == StatusCode::CREATED {
        gateway.member_added(guild, user, &roles);
    }
    response
}

/// Discord's answer when the bot may not grant or remove `role` in `guild`.
fn manage_refusal(s: &State, guild: u64, role: u64) -> Option<Response> {
    let (status, code, message) = s.may_manage(guild, role).err()?;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    Some(error(status, code, message))
}

async fn add_role(
    AxState(state): AxState<Shared>,
    Path((guild, user, role)): Path<(u64, u64, u64)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/api/v10/guilds/{guild}/members/{user}/roles/{role}");
    let mut req = MemberRequest::new(Method::PUT, path);
    req.reason = audit_reason(&headers);
    member_route(&state, req, guild, |s| {
        if let Some(refused) = manage_refusal(s, guild, role) {
            return refused;
        }
        match s.members.get_mut(&(guild, user)) {
            Some(roles) => {
                if !roles.contains(&role) {
                    roles.push(role);
                }
                StatusCode::NO_CONTENT.into_response()
            }
            None => error(StatusCode::NOT_FOUND, 10007, "Unknown Member"),
        }
    })
    .await
}

async fn remove_role(
    AxState(state): AxState<Shared>,
    Path((guild, user, role)): Path<(u64, u64, u64)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/api/v10/guilds/{guild}/members/{user}/roles/{role}");
    let mut req = MemberRequest::new(Method::DELETE, path);
    req.reason = audit_reason(&headers);
    member_route(&state, req, guild, |s| {
        if let Some(refused) = manage_refusal(s, guild, role) {
            return refused;
        }
        match s.members.get_mut(&(guild, user)) {
            Some(roles) => {
                roles.retain(|r| *r != role);
                StatusCode::NO_CONTENT.into_response()
            }
            None => error(StatusCode::NOT_FOUND, 10007, "Unknown Member"),
        }
    })
    .await
}

/// The channel of a webhook, if the id and token match.
fn webhook_channel(state: &Shared, id: u64, token: &str) -> Option<u64> {
    lock(state)
        .webhooks
        .get(&id)
        .filter(|(t, _)| t == token)
        .map(|(_, c)| *c)
}

async fn execute_webhook(
    AxState(state): AxState<Shared>,
    Path((id, token)): Path<(u64, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/api/v10/webhooks/{id}/{token}");
    let Some(channel) = webhook_channel(&state, id, &token) else {
        let rec = record(&Method::POST, &path, None, 0);
        return finish(
            &state,
            rec,
            Err(error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook")),
        )
        .await;
    };
    let wait = query.get("wait").is_some_and(|w| w == "true");
    let mut rec = record(&Method::POST, &path, Some(format!("wait={wait}")), channel);
    let parsed = match parse_body(&headers, body).await {
        Ok(p) => p,
        Err(r) => return finish(&state, rec, Err(r)).await,
    };
    rec.body = Some(parsed.json.clone());
    rec.files = parsed.files.iter().map(|f| f.1.clone()).collect();
    let outcome = {
        let mut s = lock(&state);
        match gate(&mut s, "webhook", id, &mut rec) {
            Err(r) => Err(r),
            Ok(pass) => {
                let created = create_message(&mut s, channel, Some(id), &rec, parsed);
                let response = if wait || !created.status().is_success() {
                    created
                } else {
                    StatusCode::NO_CONTENT.into_response()
                };
                Ok((pass, response))
            }
        }
    };
    finish(&state, rec, outcome).await
}

async fn edit_webhook_message(
    AxState(state): AxState<Shared>,
    Path((id, token, message)): Path<(u64, String, u64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/api/v10/webhooks/{id}/{token}/messages/{message}");
    let Some(channel) = webhook_channel(&state, id, &token) else {
        let rec = record(&Method::PATCH, &path, None, 0);
        return finish(
            &state,
            rec,
            Err(error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook")),
        )
        .await;
    };
    let mut rec = record(&Method::PATCH, &path, None, channel);
    let parsed = match parse_body(&headers, body).await {
        Ok(p) => p,
        Err(r) => return finish(&state, rec, Err(r)).await,
    };
    rec.body = Some(parsed.json.clone());
    let outcome = {
        let mut s = lock(&state);
        match gate(&mut s, "webhook", id, &mut rec) {
            Err(r) => Err(r),
            Ok(pass) => Ok((pass, edit_message(&mut s, channel, message, parsed))),
        }
    };
    finish(&state, rec, outcome).await
}

async fn delete_webhook_message(
    AxState(state): AxState<Shared>,
    Path((id, token, message)): Path<(u64, String, u64)>,
) -> Response {
    let path = format!("/api/v10/webhooks/{id}/{token}/messages/{message}");
    let Some(channel) = webhook_channel(&state, id, &token) else {
        let rec = record(&Method::DELETE, &path, None, 0);
        return finish(
            &state,
            rec,
            Err(error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook")),
        )
        .await;
    };
    let mut rec = record(&Method::DELETE, &path, None, channel);
    let outcome = {
        let mut s = lock(&state);
        match gate(&mut s, "webhook", id, &mut rec) {
            Err(r) => Err(r),
            Ok(pass) => {
                let list = s.channels.entry(channel).or_default();
                let before = list.len();
                list.retain(|m| !(m.id == message && m.webhook_id == Some(id)));
                let response = if list.len() == before {
                    error(StatusCode::NOT_FOUND, 10008, "Unknown Message")
                } else {
                    StatusCode::NO_CONTENT.into_response()
                };
                Ok((pass, response))
            }
        }
    };
    finish(&state, rec, outcome).await
}
