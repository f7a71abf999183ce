//! Users, sessions and one-time tokens as rows and as Appwrite's response models. Shared by the
//! users (server) and account (client) routes, and by teams when an invite creates a user.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::{
    error::{ApiError, ApiResult},
    util,
};

/// Appwrite's long session lifetime (one year).
pub const SESSION_TTL: Duration = Duration::days(365);
/// Email sign-in codes live 15 minutes, verification links 7 days, recovery links 1 hour.
pub const EMAIL_CODE_TTL: Duration = Duration::minutes(15);
pub const VERIFICATION_TTL: Duration = Duration::days(7);
pub const RECOVERY_TTL: Duration = Duration::hours(1);

pub fn user_not_found() -> ApiError {
    ApiError::new(
        404,
        "user_not_found",
        "User with the requested ID could not be found.",
    )
}

pub fn user_blocked() -> ApiError {
    ApiError::new(401, "user_blocked", "The current user has been blocked.")
}

pub fn invalid_token() -> ApiError {
    ApiError::new(
        401,
        "user_invalid_token",
        "Invalid token passed in the request.",
    )
}

pub fn session_not_found() -> ApiError {
    ApiError::new(
        404,
        "user_session_not_found",
        "The current user session could not be found.",
    )
}

/// A time `ttl` from now, in Appwrite's format.
pub fn expires_in(ttl: Duration) -> String {
    util::format_time(OffsetDateTime::now_utc() + ttl)
}

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub created_at: String,
    pub updated_at: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub password_hash: Option<String>,
    pub password_salt: Option<String>,
    pub password_update: String,
    pub registration: String,
    pub status: bool,
    pub labels: Vec<String>,
    pub prefs: Value,
    pub email_verification: bool,
    pub phone_verification: bool,
    pub accessed_at: String,
}

const USER_COLS: &str = "id, created_at, updated_at, name, email, phone, password_hash, password_salt, \
     password_update, registration, status, labels, prefs, email_verification, phone_verification, accessed_at";

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    let labels: String = r.get(11)?;
    let prefs: String = r.get(12)?;
    Ok(UserRow {
        id: r.get(0)?,
        created_at: r.get(1)?,
        updated_at: r.get(2)?,
        name: r.get(3)?,
        email: r.get(4)?,
        phone: r.get(5)?,
        password_hash: r.get(6)?,
        password_salt: r.get(7)?,
        password_update: r.get(8)?,
        registration: r.get(9)?,
        status: r.get(10)?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        prefs: serde_json::from_str(&prefs).unwrap_or_else(|_| json!({})),
        email_verification: r.get(13)?,
        phone_verification: r.get(14)?,
        accessed_at: r.get(15)?,
    })
}

impl UserRow {
    /// Appwrite's `user` model; every field the 1.8 spec marks required.
    pub fn to_json(&self) -> Value {
        json!({
            "$id": self.id,
            "$createdAt": self.created_at,
            "$updatedAt": self.updated_at,
            "name": self.name,
            "registration": self.registration,
            "status": self.status,
            "labels": self.labels,
            "passwordUpdate": self.password_update,
            "email": self.email.clone().unwrap_or_default(),
            "phone": self.phone.clone().unwrap_or_default(),
            "emailVerification": self.email_verification,
            "phoneVerification": self.phone_verification,
            "mfa": false,
            "prefs": if self.prefs.is_object() { self.prefs.clone() } else { json!({}) },
            "targets": [],
            "accessedAt": self.accessed_at,
        })
    }

    pub fn password_matches(&self, password: &str) -> bool {
        match (&self.password_hash, &self.password_salt) {
            (Some(hash), Some(salt)) => util::hash_password(password, salt) == *hash,
            _ => false,
        }
    }
}

pub fn find_user(conn: &Connection, id: &str) -> ApiResult<Option<UserRow>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {USER_COLS} FROM users WHERE id = ?1"))?
        .query_row(params![id], user_from_row)
        .optional()?)
}

pub fn get_user(conn: &Connection, id: &str) -> ApiResult<UserRow> {
    find_user(conn, id)?.ok_or_else(user_not_found)
}

pub fn find_user_by_email(conn: &Connection, email: &str) -> ApiResult<Option<UserRow>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {USER_COLS} FROM users WHERE email = ?1"))?
        .query_row(params![email], user_from_row)
        .optional()?)
}

/// Every user in creation order.
pub fn all_users(conn: &Connection) -> ApiResult<Vec<UserRow>> {
    let mut stmt = conn.prepare(&format!("SELECT {USER_COLS} FROM users ORDER BY seq"))?;
    let rows = stmt.query_map([], user_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The user with this (lower-cased) email, as a list of zero or one.
pub fn users_by_email(conn: &Connection, email: &str) -> ApiResult<Vec<UserRow>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {USER_COLS} FROM users WHERE email = ?1"))?;
    let rows = stmt.query_map([email.to_lowercase()], user_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Lower-cases and checks an email address the way Appwrite's validator roughly does.
pub fn parse_email(raw: &str) -> ApiResult<String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 255
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(char::is_whitespace)
                && !domain.contains('@')
        });
    if valid {
        Ok(email)
    } else {
        Err(ApiError::argument_invalid(
            "Invalid `email` param: Value must be a valid email address",
        ))
    }
}

pub fn check_password(password: &str) -> ApiResult<()> {
    let n = password.chars().count();
    if (8..=256).contains(&n) {
        Ok(())
    } else {
        Err(ApiError::argument_invalid(
            "Invalid `password` param: Password must be between 8 and 256 characters long.",
        ))
    }
}

/// What creating a user needs; the caller has already validated each field.
pub struct NewUser {
    pub id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub password: Option<String>,
    pub name: String,
}

/// Inserts a user. Any clash (id, email or phone) is Appwrite's `user_already_exists`: its
/// unique indexes answer all three the same way on create (`user_email_already_exists` is
/// only for changing an email).
pub fn insert_user(conn: &Connection, new: NewUser) -> ApiResult<UserRow> {
    let clash: Option<String> = conn
        .prepare_cached(
            // A UNION of three indexed lookups: one `WHERE a OR (x AND b)` would scan every user.
            "SELECT id FROM users WHERE id = ?1 \
             UNION ALL SELECT id FROM users WHERE email = ?2 \
             UNION ALL SELECT id FROM users WHERE phone = ?3 LIMIT 1",
        )?
        .query_row(params![new.id, new.email, new.phone], |r| r.get(0))
        .optional()?;
    if clash.is_some() {
        return Err(ApiError::new(
            409,
            "user_already_exists",
            "A user with the same id, email, or phone already exists in this project.",
        ));
    }
    let now = util::now();
    let (hash, salt, password_update) = match &new.password {
        Some(p) => {
            let salt = util::random_secret(16);
            (Some(util::hash_password(p, &salt)), Some(salt), now.clone())
        }
        None => (None, None, String::new()),
    };
    conn.prepare_cached(
        "INSERT INTO users (id, created_at, updated_at, name, email, phone, password_hash, password_salt, \
         password_update, registration, accessed_at) VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?2, ?2)",
    )?
    .execute(params![new.id, now, new.name, new.email, new.phone, hash, salt, password_update])?;
    get_user(conn, &new.id)
}

pub fn set_password(conn: &Connection, user_id: &str, password: &str) -> ApiResult<()> {
    let salt = util::random_secret(16);
    let now = util::now();
    conn.execute(
        "UPDATE users SET password_hash = ?2, password_salt = ?3, password_update = ?4, updated_at = ?4 WHERE id = ?1",
        params![user_id, util::hash_password(password, &salt), salt, now],
    )?;
    Ok(())
}

/// Sets one column of a user and bumps `$updatedAt`; `column` is always a literal from our code.
pub fn update_user_field(
    conn: &Connection,
    user_id: &str,
    column: &'static str,
    value: &dyn rusqlite::ToSql,
) -> ApiResult<UserRow> {
    let changed = conn.execute(
        &format!("UPDATE users SET {column} = ?2, updated_at = ?3 WHERE id = ?1"),
        params![user_id, value, util::now()],
    )?;
    if changed == 0 {
        return Err(user_not_found());
    }
    get_user(conn, user_id)
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub provider: String,
    pub created_at: String,
    pub updated_at: String,
    pub expire: String,
    pub ip: String,
    pub factors: Vec<String>,
    /// The email (or user id) the session was opened for, Appwrite's `providerUid`.
    pub provider_uid: String,
}

impl SessionRow {
    /// Appwrite's `session` model. `secret` is only filled for the server key, as in 1.8.
    pub fn to_json(&self, current: bool, secret: &str) -> Value {
        json!({
            "$id": self.id,
            "$createdAt": self.created_at,
            "$updatedAt": self.updated_at,
            "userId": self.user_id,
            "expire": self.expire,
            "provider": self.provider,
            "providerUid": self.provider_uid,
            "providerAccessToken": "",
            "providerAccessTokenExpiry": "",
            "providerRefreshToken": "",
            "ip": self.ip,
            "osCode": "",
            "osName": "",
            "osVersion": "",
            "clientType": "",
            "clientCode": "",
            "clientName": "",
            "clientVersion": "",
            "clientEngine": "",
            "clientEngineVersion": "",
            "deviceName": "",
            "deviceBrand": "",
            "deviceModel": "",
            "countryCode": "--",
            "countryName": "Unknown",
            "current": current,
            "factors": self.factors,
            "secret": secret,
            "mfaUpdatedAt": "",
        })
    }
}

const SESSION_COLS: &str = "s.id, s.user_id, s.provider, s.created_at, s.updated_at, s.expire, s.ip, s.factors, COALESCE(u.email, u.id)";

fn session_from_row(r: &Row<'_>) -> rusqlite::Result<SessionRow> {
    let factors: String = r.get(7)?;
    Ok(SessionRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        provider: r.get(2)?,
        created_at: r.get(3)?,
        updated_at: r.get(4)?,
        expire: r.get(5)?,
        ip: r.get(6)?,
        factors: serde_json::from_str(&factors).unwrap_or_default(),
        provider_uid: r.get(8)?,
    })
}

/// Opens a session; returns it with its secret, which is stored only as a hash.
pub fn create_session(
    conn: &Connection,
    user_id: &str,
    provider: &str,
    factor: &str,
) -> ApiResult<(SessionRow, String)> {
    let id = util::unique_id();
    let secret = util::random_secret(32);
    let now = util::now();
    conn.execute(
        "INSERT INTO sessions (id, user_id, secret_hash, provider, created_at, updated_at, expire, factors) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
        params![
            id,
            user_id,
            util::hash_secret(&secret),
            provider,
            now,
            expires_in(SESSION_TTL),
            serde_json::to_string(&[factor])?
        ],
    )?;
    conn.execute(
        "UPDATE users SET accessed_at = ?2 WHERE id = ?1",
        params![user_id, now],
    )?;
    let session = get_session(conn, user_id, &id)?;
    Ok((session, secret))
}

pub fn get_session(conn: &Connection, user_id: &str, id: &str) -> ApiResult<SessionRow> {
    conn.query_row(
        &format!(
            "SELECT {SESSION_COLS} FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.user_id = ?1 AND s.id = ?2"
        ),
        params![user_id, id],
        session_from_row,
    )
    .optional()?
    .ok_or_else(session_not_found)
}

/// A user's live sessions, oldest first.
pub fn list_sessions(conn: &Connection, user_id: &str) -> ApiResult<Vec<SessionRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {SESSION_COLS} FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.user_id = ?1 AND s.expire > ?2 ORDER BY s.created_at, s.rowid"
    ))?;
    let rows = stmt.query_map(params![user_id, util::now()], session_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What a one-time token is for; stored in `tokens.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    EmailCode,
    /// Made by the server key (`POST /users/{id}/tokens`) for its own sign-in flows.
    Generic,
    Verification,
    Recovery,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::EmailCode => "email_code",
            TokenKind::Generic => "generic",
            TokenKind::Verification => "verification",
            TokenKind::Recovery => "recovery",
        }
    }
}

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub user_id: String,
    pub created_at: String,
    pub expire: String,
    pub phrase: String,
}

impl TokenRow {
    /// Appwrite's `token` model; `secret` is empty unless the server key asked.
    pub fn to_json(&self, secret: &str) -> Value {
        json!({
            "$id": self.id,
            "$createdAt": self.created_at,
            "userId": self.user_id,
            "secret": secret,
            "expire": self.expire,
            "phrase": self.phrase,
        })
    }
}

/// Stores a one-time token (hashed) for `user_id`.
pub fn create_token(
    conn: &Connection,
    user_id: &str,
    kind: TokenKind,
    secret: &str,
    ttl: Duration,
) -> ApiResult<TokenRow> {
    let row = TokenRow {
        id: util::unique_id(),
        user_id: user_id.to_owned(),
        created_at: util::now(),
        expire: expires_in(ttl),
        phrase: String::new(),
    };
    conn.execute(
        "INSERT INTO tokens (id, user_id, kind, secret_hash, created_at, expire, phrase) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            row.id,
            row.user_id,
            kind.as_str(),
            util::hash_secret(secret),
            row.created_at,
            row.expire,
            row.phrase
        ],
    )?;
    Ok(row)
}

/// Redeems a token: it must belong to `user_id`, be of one of `kinds` and unexpired. It is deleted, so
/// a second use fails like a wrong secret does.
pub fn consume_token(
    conn: &Connection,
    user_id: &str,
    kinds: &[TokenKind],
    secret: &str,
) -> ApiResult<TokenRow> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let found = conn
        .query_row(
            "SELECT id, user_id, created_at, expire, phrase FROM tokens \
             WHERE user_id = ?1 AND secret_hash = ?2 AND kind IN (SELECT value FROM json_each(?3))",
            params![
                user_id,
                util::hash_secret(secret),
                serde_json::to_string(&kinds)?
            ],
            |r| {
                Ok(TokenRow {
                    id: r.get(0)?,
                    user_id: r.get(1)?,
                    created_at: r.get(2)?,
                    expire: r.get(3)?,
                    phrase: r.get(4)?,
                })
            },
        )
        .optional()?;
    let Some(token) = found else {
        return Err(invalid_token());
    };
    conn.execute("DELETE FROM tokens WHERE id = ?1", params![token.id])?;
    if token.expire < util::now() {
        return Err(invalid_token());
    }
    Ok(token)
}
