//! Users: the server-side user admin API (`/users/...`), usable only with the server key.
//! Rows and response models live in `identity`; memberships are read through `teams`.

use axum::{
    Json, Router,
    extract::{Path, RawQuery, State},
    http::StatusCode,
    routing::{delete, get, patch, post, put},
};
use rusqlite::params;
use serde::Deserialize;
use serde_json::Value;

use super::{Body, teams};
use crate::{
    auth::Caller,
    error::{ApiError, ApiResult},
    identity::{self, NewUser},
    list_query::ListQuery,
    params::{list, required},
    state::AppState,
    util,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", post(create).get(list_users))
        .route("/users/{user_id}", get(get_user).delete(delete_user))
        .route("/users/{user_id}/prefs", get(get_prefs).patch(update_prefs))
        .route("/users/{user_id}/labels", put(update_labels))
        .route("/users/{user_id}/verification", patch(update_verification))
        .route("/users/{user_id}/status", patch(update_status))
        .route("/users/{user_id}/name", patch(update_name))
        .route("/users/{user_id}/email", patch(update_email))
        .route("/users/{user_id}/password", patch(update_password))
        .route("/users/{user_id}/memberships", get(list_memberships))
        .route(
            "/users/{user_id}/sessions",
            get(list_sessions)
                .post(create_session)
                .delete(delete_sessions),
        )
        .route(
            "/users/{user_id}/sessions/{session_id}",
            delete(delete_session),
        )
        .route("/users/{user_id}/tokens", post(create_token))
}

/// Attributes `GET /users` may filter and order on, as in Appwrite.
const USER_ATTRS: &[&str] = &[
    "name",
    "email",
    "phone",
    "status",
    "passwordUpdate",
    "registration",
    "emailVerification",
    "phoneVerification",
    "labels",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateUser {
    user_id: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    name: Option<String>,
}

async fn create(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<CreateUser>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require_key("users.write")?;
    let id = util::resolve_id("userId", &required(body.user_id, "userId")?)?;
    let email = body
        .email
        .filter(|e| !e.is_empty())
        .map(|e| identity::parse_email(&e))
        .transpose()?;
    let phone = body
        .phone
        .filter(|p| !p.is_empty())
        .map(parse_phone)
        .transpose()?;
    let password = body.password.filter(|p| !p.is_empty());
    if let Some(p) = &password {
        identity::check_password(p)?;
    }
    let name = body.name.unwrap_or_default();
    check_name(&name)?;
    let user = state
        .store
        .transaction(move |tx| {
            identity::insert_user(
                tx,
                NewUser {
                    id,
                    email,
                    phone,
                    password,
                    name,
                },
            )
        })
        .await?;
    Ok((StatusCode::CREATED, Json(user.to_json())))
}

fn parse_phone(raw: String) -> ApiResult<String> {
    let digits = raw.strip_prefix('+').unwrap_or("");
    if !digits.is_empty() && digits.len() <= 15 && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(raw)
    } else {
        Err(ApiError::argument_invalid(
            "Invalid `phone` param: Phone number must start with a '+' can have a maximum of fifteen digits.",
        ))
    }
}

pub(super) fn check_name(name: &str) -> ApiResult<()> {
    if name.chars().count() > 128 {
        return Err(ApiError::argument_invalid(
            "Invalid `name` param: Value must be a valid string and at most 128 chars",
        ));
    }
    Ok(())
}

async fn list_users(
    caller: Caller,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    caller.require_key("users.read")?;
    let query = ListQuery::parse(raw.as_deref(), USER_ATTRS)?;
    // Looking a customer up by email is the hot path: read that row alone through the index.
    let by_email = query.single_equal("email");
    let users = state
        .store
        .call(move |conn| match by_email {
            Some(email) => identity::users_by_email(conn, &email),
            None => identity::all_users(conn),
        })
        .await?;
    let items = users.iter().map(identity::UserRow::to_json).collect();
    let (total, page) = query.apply(items, &["$id", "email", "name", "phone"])?;
    Ok(Json(list("users", total, page)))
}

async fn get_user(
    caller: Caller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require_key("users.read")?;
    let user = state
        .store
        .call(move |conn| identity::get_user(conn, &user_id))
        .await?;
    Ok(Json(user.to_json()))
}

async fn delete_user(
    caller: Caller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_key("users.write")?;
    // Sessions, tokens and memberships go with the user (foreign keys cascade).
    state
        .store
        .call(move |conn| {
            if conn.execute("DELETE FROM users WHERE id = ?1", params![user_id])? == 0 {
                return Err(identity::user_not_found());
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_prefs(
    caller: Caller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require_key("users.read")?;
    let user = state
        .store
        .call(move |conn| identity::get_user(conn, &user_id))
        .await?;
    Ok(Json(user.to_json()["prefs"].clone()))
}

#[derive(Deserialize)]
pub(super) struct PrefsBody {
    pub prefs: Option<Value>,
}

/// Prefs must be a JSON object; Appwrite replaces them whole.
pub(super) fn prefs_text(prefs: Option<Value>) -> ApiResult<String> {
    match required(prefs, "prefs")? {
        Value::Object(map) => {
            let text = Value::Object(map).to_string();
            if text.len() > 65_535 {
                return Err(ApiError::argument_invalid(
                    "Invalid `prefs` param: Value must be a valid object no longer than 65535 chars.",
                ));
            }
            Ok(text)
        }
        _ => Err(ApiError::argument_invalid(
            "Invalid `prefs` param: Value must be a valid object.",
        )),
    }
}

async fn update_prefs(
    caller: Caller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    Body(body): Body<PrefsBody>,
) -> ApiResult<Json<Value>> {
    caller.require_key("users.write")?;
    let prefs = prefs_text(body.prefs)?;
    let user = state
        .store
        .call(move |conn| identity::update_user_field(conn, &user_id, "prefs", &prefs))
        .await?;
    Ok(Json(user.to_json()["prefs"].clone()))
}

#[derive(Deserialize)]
struct LabelsBody {
    labels: Option<Vec<String>>,
}

async fn update_labels(
    caller: Caller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    Body(body): Body<LabelsBody>,
) -> ApiResult<Json<Value>> {
    caller.require_key("users.write")?;
    let mut labels: Vec<String> = required(body.labels, "labels")?;
    if labels.len() > 1000
        || labels
            .iter()
            .any(|l| l.is_empty() || l.len() > 36 || !l.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(ApiError::argument_invalid(
            "Invalid `labels` param: Value must an array and can't be longer than 1000 items. Each label must be alphanumeric and at most 36 chars.",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    labels.retain(|l| seen.insert(l.clone()));
    let text = serde_json::to_string(&labels)?;
    let user = state
        .store
        .call(move |conn| identity::update_user_field(conn, &user_id, "labels", &text))
        .await?;
    Ok(Json(user.to_json()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerificationBody {
    email_verification: Option<bool>,
}

async fn update_verification(
    caller: Caller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    Body(body): Body<VerificationBody>,
) -> ApiResult<Json<Value>> {
    caller.require_key("users.write")?;
    let verified = required(body.email_verification, "emailVerification")?;
    let user = state
        .store
        .call(move |conn| {
            identity::update_user_field(conn, &user_id, "email_verification", &verified)
        })
        .await?;
    Ok(Json(user.to_json()))
}

#[derive(Deserialize)]
struct StatusBody {
    status: Option<bool>,
}

async fn update_status(
    caller: Caller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    Body(body): Body<StatusBody>,
) -> ApiResult<Json<Value>> {
    caller.require_key("users.write")?;
    let status = required(body.status, "status")?;
    let user = state
        .store
        .call(move |conn| identity::update_user_field(conn, &user_id, "status", &status))
        .await?;
    Ok(Json(user.to_json()))
}

#[derive(Deserialize)]
pub(super) struct NameBody {
    pub name: Option<String>,
}

async fn update_name(
    caller: Caller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    Body(body): Body<NameBody>,
) -> ApiResult<Json<Value>> {
    caller.require_key("users.write")?;
    let name = required(body.name, "name")?;
    check_name(&name)?;
    let user = state
        .store
        .call(move |conn| identity::update_user_field(conn, &user_id, "name", &name))
        .await?;
    Ok(Json(user.to_json()))
}

#[derive(Deserialize)]
struct EmailBody {
    email: Option<String>,
}

async fn update_email(
    caller: Caller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    Body(body): Body<EmailBody>,
) -> ApiResult<Json<Value>> {
    caller.require_key("users.write")?;
    let email = identity::parse_email(&required(body.email, "email")?)?;
    let user = state
        .store
        .transaction(move |tx| {
            let user = identity::get_user(tx, &user_id)?;
            if user.email.as_deref() == Some(email.as_str()) {
                return Ok(user);
            }
            if identity::find_user_by_email(tx, &email)?.is_some() {
                return Err(ApiError::new(
                    409,
                    "user_email_already_exists",
                    "A user with the same email already exists in the current project.",
                ));
            }
            // A new address is not verified yet, as in Appwrite.
            tx.execute(
                "UPDATE users SET email_verification = 0 WHERE id = ?1",
                params![user_id],
            )?;
            identity::update_user_field(tx, &user_id, "email", &email)
        })
        .await?;
    Ok(Json(user.to_json()))
}

#[derive(Deserialize)]
struct PasswordBody {
    password: Option<String>,
}

async fn update_password(
    caller: Caller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    Body(body): Body<PasswordBody>,
) -> ApiResult<Json<Value>> {
    caller.require_key("users.write")?;
    let password = required(body.password, "password")?;
    identity::check_password(&password)?;
    let user = state
        .store
        .transaction(move |tx| {
            identity::get_user(tx, &user_id)?;
            identity::set_password(tx, &user_id, &password)?;
            identity::get_user(tx, &user_id)
        })
        .await?;
    Ok(Json(user.to_json()))
}

async fn list_memberships(
    caller: Caller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    caller.require_key("users.read")?;
    let query = ListQuery::parse(raw.as_deref(), teams::MEMBERSHIP_ATTRS)?;
    let items = state
        .store
        .call(move |conn| {
            identity::get_user(conn, &user_id)?;
            teams::memberships_where(conn, None, Some(&user_id))
        })
        .await?;
    let (total, page) = query.apply(items, &["$id", "userName", "userEmail", "teamName"])?;
    Ok(Json(list("memberships", total, page)))
}

async fn list_sessions(
    caller: Caller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require_key("users.read")?;
    let sessions = state
        .store
        .call(move |conn| {
            identity::get_user(conn, &user_id)?;
            identity::list_sessions(conn, &user_id)
        })
        .await?;
    let items: Vec<Value> = sessions.iter().map(|s| s.to_json(false, "")).collect();
    Ok(Json(list("sessions", items.len(), items)))
}

/// 1.8's server-side session creation: the secret is returned once, to the key holder.
async fn create_session(
    caller: Caller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require_key("users.write")?;
    let (session, secret) = state
        .store
        .transaction(move |tx| {
            identity::get_user(tx, &user_id)?;
            identity::create_session(tx, &user_id, "server", "server")
        })
        .await?;
    Ok((StatusCode::CREATED, Json(session.to_json(false, &secret))))
}

async fn delete_sessions(
    caller: Caller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_key("users.write")?;
    state
        .store
        .call(move |conn| {
            identity::get_user(conn, &user_id)?;
            conn.execute("DELETE FROM sessions WHERE user_id = ?1", params![user_id])?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_session(
    caller: Caller,
    State(state): State<AppState>,
    Path((user_id, session_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require_key("users.write")?;
    state
        .store
        .call(move |conn| {
            identity::get_user(conn, &user_id)?;
            let n = conn.execute(
                "DELETE FROM sessions WHERE user_id = ?1 AND id = ?2",
                params![user_id, session_id],
            )?;
            if n == 0 {
                return Err(identity::session_not_found());
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct TokenBody {
    length: Option<i64>,
    expire: Option<i64>,
}

/// A sign-in secret for the key holder's own flow; redeemed at `POST /account/sessions/token`.
async fn create_token(
    caller: Caller,
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    Body(body): Body<TokenBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require_key("users.write")?;
    let length = body.length.unwrap_or(6);
    let expire = body.expire.unwrap_or(900);
    if !(4..=128).contains(&length) {
        return Err(ApiError::argument_invalid(
            "Invalid `length` param: Value must be a valid range between 4 and 128",
        ));
    }
    if !(60..=31_536_000).contains(&expire) {
        return Err(ApiError::argument_invalid(
            "Invalid `expire` param: Value must be a valid range between 60 and 31,536,000",
        ));
    }
    let mut secret = util::random_secret(64);
    secret.truncate(length as usize);
    let (token, secret) = state
        .store
        .call(move |conn| {
            identity::get_user(conn, &user_id)?;
            let token = identity::create_token(
                conn,
                &user_id,
                identity::TokenKind::Generic,
                &secret,
                time::Duration::seconds(expire),
            )?;
            Ok((token, secret))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(token.to_json(&secret))))
}
