//! Account: what a user does for themself — sign up, password and email-code sessions, email
//! verification and password recovery (mailed to the emulator's mailbox), prefs and name.
//! Secrets are returned only to the server key, as Appwrite 1.8 does for server-side sessions.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, patch, post},
};
use rusqlite::params;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Body,
    mailbox::{self, Mail, MailKind},
    users::{NameBody, PrefsBody, check_name, prefs_text},
};
use crate::{
    auth::{Caller, UserCtx},
    error::{ApiError, ApiResult},
    identity::{self, NewUser, SessionRow, TokenKind},
    mail::{self as templates, Template, Vars},
    params::{list, required},
    state::AppState,
    util,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(get_account).post(create_account))
        .route("/account/sessions/email", post(create_email_session))
        .route("/account/tokens/email", post(create_email_token))
        .route("/account/sessions/token", post(create_token_session))
        .route(
            "/account/sessions",
            get(list_sessions).delete(delete_sessions),
        )
        .route(
            "/account/sessions/{session_id}",
            get(get_session).delete(delete_session),
        )
        .route(
            "/account/verification",
            post(create_verification).put(confirm_verification),
        )
        .route(
            "/account/verifications/email",
            post(create_verification).put(confirm_verification),
        )
        .route(
            "/account/recovery",
            post(create_recovery).put(confirm_recovery),
        )
        .route("/account/password", patch(update_password))
        .route("/account/prefs", get(get_prefs).patch(update_prefs))
        .route("/account/name", patch(update_name))
        .route("/account/email", patch(update_email))
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        401,
        "user_invalid_credentials",
        "Invalid credentials. Please check the email and password.",
    )
}

/// Only the server key gets secrets back; a browser would get a cookie instead.
fn shown_secret<'a>(caller: &Caller, secret: &'a str) -> &'a str {
    if caller.is_key() { secret } else { "" }
}

/// A new session's response: 201, the session, and for non-key callers the cookie Appwrite
/// sets (plus `X-Fallback-Cookies`, which its web SDK reads when cookies are blocked).
fn session_response(
    state: &AppState,
    caller: &Caller,
    session: &SessionRow,
    secret: &str,
) -> Response {
    let body = Json(session.to_json(true, shown_secret(caller, secret)));
    let mut response = (StatusCode::CREATED, body).into_response();
    if !caller.is_key() {
        let name = format!("a_session_{}", state.config.project_id);
        let cookie = format!("{name}={secret}; Path=/; HttpOnly; SameSite=Lax");
        let fallback = json!({ name: secret }).to_string();
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            headers.insert(header::SET_COOKIE, v);
        }
        if let Ok(v) = HeaderValue::from_str(&fallback) {
            headers.insert("x-fallback-cookies", v);
        }
    }
    response
}

/// Creating a session while signed in is refused, as in Appwrite.
fn refuse_if_signed_in(caller: &Caller) -> ApiResult<()> {
    if matches!(caller, Caller::User(_)) {
        return Err(ApiError::new(
            401,
            "user_session_already_exists",
            "Creation of a session is prohibited when a session is active.",
        ));
    }
    Ok(())
}

async fn current_user(state: &AppState, user: &UserCtx) -> ApiResult<identity::UserRow> {
    let id = user.user_id.clone();
    state
        .store
        .call(move |conn| identity::get_user(conn, &id))
        .await
}

async fn get_account(caller: Caller, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let user = caller.require_user("account")?;
    Ok(Json(current_user(&state, user).await?.to_json()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignUp {
    user_id: Option<String>,
    email: Option<String>,
    password: Option<String>,
    name: Option<String>,
}

async fn create_account(
    // Checks the project header; guests and the key may both sign users up.
    _caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<SignUp>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = util::resolve_id("userId", &required(body.user_id, "userId")?)?;
    let email = identity::parse_email(&required(body.email, "email")?)?;
    let password = required(body.password, "password")?;
    identity::check_password(&password)?;
    let name = body.name.unwrap_or_default();
    check_name(&name)?;
    let user = state
        .store
        .transaction(move |tx| {
            identity::insert_user(
                tx,
                NewUser {
                    id,
                    email: Some(email),
                    phone: None,
                    password: Some(password),
                    name,
                },
            )
        })
        .await?;
    Ok((StatusCode::CREATED, Json(user.to_json())))
}

#[derive(Deserialize)]
struct EmailPassword {
    email: Option<String>,
    password: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn create_email_session(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<EmailPassword>,
) -> ApiResult<Response> {
    refuse_if_signed_in(&caller)?;
    let email = identity::parse_email(&required(body.email, "email")?)?;
    let password = required(body.password, "password")?;
    let (session, secret) = state
        .store
        .transaction(move |tx| {
            let user = identity::find_user_by_email(tx, &email)?
                .filter(|u| u.password_matches(&password))
                .ok_or_else(invalid_credentials)?;
            if !user.status {
                return Err(identity::user_blocked());
            }
            identity::create_session(tx, &user.id, "email", "password")
        })
        .await?;
    Ok(session_response(&state, &caller, &session, &secret))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmailToken {
    user_id: Option<String>,
    email: Option<String>,
}

/// Mails a six-digit sign-in code, creating the user first if the address is new (as Appwrite).
#[tracing::instrument(skip_all)]
async fn create_email_token(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<EmailToken>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let requested_id = required(body.user_id, "userId")?;
    let email = identity::parse_email(&required(body.email, "email")?)?;
    let project = state.config.project_id.clone();
    let (token, code) = state
        .store
        .transaction(move |tx| {
            let user = match identity::find_user_by_email(tx, &email)? {
                Some(user) => user,
                None => identity::insert_user(
                    tx,
                    NewUser {
                        id: util::resolve_id("userId", &requested_id)?,
                        email: Some(email.clone()),
                        phone: None,
                        password: None,
                        name: String::new(),
                    },
                )?,
            };
            if !user.status {
                return Err(identity::user_blocked());
            }
            let code = util::otp_code();
            let token = identity::create_token(
                tx,
                &user.id,
                TokenKind::EmailCode,
                &code,
                identity::EMAIL_CODE_TTL,
            )?;
            let mail = templates::render(
                Template::OtpSession,
                &Vars {
                    user: &user.name,
                    project: &project,
                    otp: &code,
                    ..Vars::default()
                },
            );
            mailbox::deliver(
                tx,
                Mail {
                    to: &email,
                    to_name: &user.name,
                    kind: MailKind::EmailOtp,
                    subject: mail.subject,
                    body: mail.html,
                    user_id: &user.id,
                    secret: &code,
                    url: "",
                },
            )?;
            Ok((token, code))
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(token.to_json(shown_secret(&caller, &code))),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserSecret {
    user_id: Option<String>,
    secret: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn create_token_session(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<UserSecret>,
) -> ApiResult<Response> {
    refuse_if_signed_in(&caller)?;
    let user_id = required(body.user_id, "userId")?;
    let secret = required(body.secret, "secret")?;
    let result = state
        .store
        .call(move |conn| {
            let tx = conn.transaction()?;
            let user = identity::find_user(&tx, &user_id)?.ok_or_else(identity::invalid_token)?;
            if !user.status {
                return Err(identity::user_blocked());
            }
            // The token is spent even when expired, so commit its deletion either way.
            let redeemed = identity::consume_token(
                &tx,
                &user_id,
                &[TokenKind::EmailCode, TokenKind::Generic],
                &secret,
            );
            let out = match redeemed {
                Ok(_) => {
                    // Proving control of the inbox verifies the address, as in Appwrite.
                    tx.execute(
                        "UPDATE users SET email_verification = 1 WHERE id = ?1",
                        params![user_id],
                    )?;
                    identity::create_session(&tx, &user_id, "email", "email")
                }
                Err(e) => Err(e),
            };
            tx.commit()?;
            out
        })
        .await;
    let (session, secret) = result?;
    Ok(session_response(&state, &caller, &session, &secret))
}

async fn list_sessions(caller: Caller, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let user = caller.require_user("account")?.clone();
    let sessions = state
        .store
        .call(move |conn| identity::list_sessions(conn, &user.user_id).map(|s| (s, user)))
        .await?;
    let (sessions, user) = sessions;
    let items: Vec<Value> = sessions
        .iter()
        .map(|s| s.to_json(s.id == user.session_id, ""))
        .collect();
    Ok(Json(list("sessions", items.len(), items)))
}

fn resolve_session_id(user: &UserCtx, id: String) -> String {
    if id == "current" {
        user.session_id.clone()
    } else {
        id
    }
}

async fn get_session(
    caller: Caller,
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = caller.require_user("account")?.clone();
    let id = resolve_session_id(&user, session_id);
    let current = id == user.session_id;
    let session = state
        .store
        .call(move |conn| identity::get_session(conn, &user.user_id, &id))
        .await?;
    Ok(Json(session.to_json(current, "")))
}

async fn delete_session(
    caller: Caller,
    State(state): State<AppState>,
    Path(session_id): Path<String>,
) -> ApiResult<StatusCode> {
    let user = caller.require_user("account")?.clone();
    let id = resolve_session_id(&user, session_id);
    state
        .store
        .call(move |conn| {
            let n = conn.execute(
                "DELETE FROM sessions WHERE user_id = ?1 AND id = ?2",
                params![user.user_id, id],
            )?;
            if n == 0 {
                return Err(identity::session_not_found());
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_sessions(caller: Caller, State(state): State<AppState>) -> ApiResult<StatusCode> {
    let user = caller.require_user("account")?.clone();
    state
        .store
        .call(move |conn| {
            conn.execute(
                "DELETE FROM sessions WHERE user_id = ?1",
                params![user.user_id],
            )?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct UrlBody {
    url: Option<String>,
}

fn parse_url(raw: &str) -> ApiResult<url::Url> {
    url::Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| ApiError::argument_invalid("Invalid `url` param: Invalid URI."))
}

/// The client's URL with `userId`, `secret` and `expire` appended, as Appwrite builds links.
fn link(base: &url::Url, user_id: &str, secret: &str, expire: &str) -> String {
    let mut url = base.clone();
    url.query_pairs_mut()
        .append_pair("userId", user_id)
        .append_pair("secret", secret)
        .append_pair("expire", expire);
    url.to_string()
}

async fn create_verification(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<UrlBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user = caller.require_user("account")?.clone();
    let base = parse_url(&required(body.url, "url")?)?;
    let project = state.config.project_id.clone();
    let token = state
        .store
        .transaction(move |tx| {
            let user = identity::get_user(tx, &user.user_id)?;
            let email = user.email.clone().ok_or_else(|| {
                ApiError::new(
                    400,
                    "user_email_not_found",
                    "The current user does not have an email address associated with their account.",
                )
            })?;
            let secret = util::random_secret(32);
            let token = identity::create_token(
                tx,
                &user.id,
                TokenKind::Verification,
                &secret,
                identity::VERIFICATION_TTL,
            )?;
            let url = link(&base, &user.id, &secret, &token.expire);
            let mail = templates::render(
                Template::Verification,
                &Vars {
                    user: &user.name,
                    project: &project,
                    redirect: &url,
                    ..Vars::default()
                },
            );
            mailbox::deliver(
                tx,
                Mail {
                    to: &email,
                    to_name: &user.name,
                    kind: MailKind::Verification,
                    subject: mail.subject,
                    body: mail.html,
                    user_id: &user.id,
                    secret: &secret,
                    url: &url,
                },
            )?;
            Ok(token)
        })
        .await?;
    // A session caller never sees the secret: it must come from the mailbox.
    Ok((StatusCode::CREATED, Json(token.to_json(""))))
}

async fn confirm_verification(
    State(state): State<AppState>,
    _caller: Caller,
    Body(body): Body<UserSecret>,
) -> ApiResult<Json<Value>> {
    let user_id = required(body.user_id, "userId")?;
    let secret = required(body.secret, "secret")?;
    let token = redeem(
        &state,
        user_id,
        TokenKind::Verification,
        secret,
        |tx, id| {
            tx.execute(
                "UPDATE users SET email_verification = 1, updated_at = ?2 WHERE id = ?1",
                params![id, util::now()],
            )?;
            Ok(())
        },
    )
    .await?;
    Ok(Json(token.to_json("")))
}

/// Redeems a mailed token for an existing user, then applies `effect` in the same transaction.
/// A failed redemption still commits, so an expired token stays spent.
async fn redeem<F>(
    state: &AppState,
    user_id: String,
    kind: TokenKind,
    secret: String,
    effect: F,
) -> ApiResult<identity::TokenRow>
where
    F: FnOnce(&rusqlite::Transaction<'_>, &str) -> ApiResult<()> + Send + 'static,
{
    state
        .store
        .call(move |conn| {
            let tx = conn.transaction()?;
            identity::get_user(&tx, &user_id)?;
            let out = identity::consume_token(&tx, &user_id, &[kind], &secret)
                .and_then(|token| effect(&tx, &user_id).map(|()| token));
            tx.commit()?;
            out
        })
        .await
}

#[derive(Deserialize)]
struct RecoveryBody {
    email: Option<String>,
    url: Option<String>,
}

async fn create_recovery(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<RecoveryBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let email = identity::parse_email(&required(body.email, "email")?)?;
    let base = parse_url(&required(body.url, "url")?)?;
    let project = state.config.project_id.clone();
    let (token, secret) = state
        .store
        .transaction(move |tx| {
            let user =
                identity::find_user_by_email(tx, &email)?.ok_or_else(identity::user_not_found)?;
            if !user.status {
                return Err(identity::user_blocked());
            }
            let secret = util::random_secret(32);
            let token = identity::create_token(
                tx,
                &user.id,
                TokenKind::Recovery,
                &secret,
                identity::RECOVERY_TTL,
            )?;
            let url = link(&base, &user.id, &secret, &token.expire);
            let mail = templates::render(
                Template::Recovery,
                &Vars {
                    user: &user.name,
                    project: &project,
                    redirect: &url,
                    ..Vars::default()
                },
            );
            mailbox::deliver(
                tx,
                Mail {
                    to: &email,
                    to_name: &user.name,
                    kind: MailKind::Recovery,
                    subject: mail.subject,
                    body: mail.html,
                    user_id: &user.id,
                    secret: &secret,
                    url: &url,
                },
            )?;
            Ok((token, secret))
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(token.to_json(shown_secret(&caller, &secret))),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecoveryConfirm {
    user_id: Option<String>,
    secret: Option<String>,
    password: Option<String>,
}

async fn confirm_recovery(
    State(state): State<AppState>,
    _caller: Caller,
    Body(body): Body<RecoveryConfirm>,
) -> ApiResult<Json<Value>> {
    let user_id = required(body.user_id, "userId")?;
    let secret = required(body.secret, "secret")?;
    let password = required(body.password, "password")?;
    identity::check_password(&password)?;
    let token = redeem(
        &state,
        user_id,
        TokenKind::Recovery,
        secret,
        move |tx, id| {
            identity::set_password(tx, id, &password)?;
            // The link reached the inbox, so the address is proven, as Appwrite concludes too.
            tx.execute(
                "UPDATE users SET email_verification = 1 WHERE id = ?1",
                params![id],
            )?;
            Ok(())
        },
    )
    .await?;
    Ok(Json(token.to_json("")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PasswordChange {
    password: Option<String>,
    old_password: Option<String>,
}

async fn update_password(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<PasswordChange>,
) -> ApiResult<Json<Value>> {
    let user = caller.require_user("account")?.clone();
    let password = required(body.password, "password")?;
    identity::check_password(&password)?;
    let old = body.old_password.unwrap_or_default();
    let row = state
        .store
        .transaction(move |tx| {
            let row = identity::get_user(tx, &user.user_id)?;
            // Users who signed up by email code have no password yet and need no old one.
            if row.password_hash.is_some() && !row.password_matches(&old) {
                return Err(invalid_credentials());
            }
            identity::set_password(tx, &row.id, &password)?;
            identity::get_user(tx, &row.id)
        })
        .await?;
    Ok(Json(row.to_json()))
}

async fn get_prefs(caller: Caller, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let user = caller.require_user("account")?;
    Ok(Json(
        current_user(&state, user).await?.to_json()["prefs"].clone(),
    ))
}

async fn update_prefs(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<PrefsBody>,
) -> ApiResult<Json<Value>> {
    let user = caller.require_user("account")?.clone();
    let prefs = prefs_text(body.prefs)?;
    let row = state
        .store
        .call(move |conn| identity::update_user_field(conn, &user.user_id, "prefs", &prefs))
        .await?;
    Ok(Json(row.to_json()))
}

async fn update_name(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<NameBody>,
) -> ApiResult<Json<Value>> {
    let user = caller.require_user("account")?.clone();
    let name = required(body.name, "name")?;
    check_name(&name)?;
    let row = state
        .store
        .call(move |conn| identity::update_user_field(conn, &user.user_id, "name", &name))
        .await?;
    Ok(Json(row.to_json()))
}

/// Changing the address needs the password (when the user has one) and un-verifies it.
async fn update_email(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<EmailPassword>,
) -> ApiResult<Json<Value>> {
    let user = caller.require_user("account")?.clone();
    let email = identity::parse_email(&required(body.email, "email")?)?;
    let password = required(body.password, "password")?;
    let row = state
        .store
        .transaction(move |tx| {
            let row = identity::get_user(tx, &user.user_id)?;
            if row.password_hash.is_some() && !row.password_matches(&password) {
                return Err(invalid_credentials());
            }
            if row.email.as_deref() == Some(email.as_str()) {
                return Ok(row);
            }
            if identity::find_user_by_email(tx, &email)?.is_some() {
                return Err(ApiError::new(
                    409,
                    "user_email_already_exists",
                    "A user with the same email already exists in the current project.",
                ));
            }
            tx.execute(
                "UPDATE users SET email_verification = 0 WHERE id = ?1",
                params![row.id],
            )?;
            identity::update_user_field(tx, &row.id, "email", &email)
        })
        .await?;
    Ok(Json(row.to_json()))
}
