//! Who is calling: the server key, a signed-in user (by session secret), or a guest.
//! Also computes a user's Appwrite roles, which permission checks compare against.

use axum::{extract::FromRequestParts, http::request::Parts};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    error::{ApiError, ApiResult},
    state::AppState,
    util,
};

/// The authenticated caller of one request.
#[derive(Clone, Debug)]
pub enum Caller {
    /// `X-Appwrite-Key` matched: every permission is granted.
    Key,
    /// `X-Appwrite-Session` matched a live session.
    User(UserCtx),
    /// Neither: only `any` and `guests` permissions apply.
    Guest,
}

#[derive(Clone, Debug)]
pub struct UserCtx {
    pub user_id: String,
    pub session_id: String,
    /// Every role this user holds (`any`, `users`, `user:ID`, `team:T`, `label:L`, ...).
    pub roles: Vec<String>,
}

impl Caller {
    pub fn is_key(&self) -> bool {
        matches!(self, Caller::Key)
    }

    /// Roles for permission checks; the key is handled separately by callers (`is_key`).
    pub fn roles(&self) -> Vec<String> {
        match self {
            Caller::Key => Vec::new(),
            Caller::User(u) => u.roles.clone(),
            Caller::Guest => vec!["any".to_owned(), "guests".to_owned()],
        }
    }

    /// The role named in Appwrite's scope errors.
    pub fn role_name(&self) -> &'static str {
        match self {
            Caller::Key => "applications",
            Caller::User(_) => "users",
            Caller::Guest => "guests",
        }
    }

    /// Server-only routes (users, teams admin, schema): the key, or a 401 scope error.
    pub fn require_key(&self, scope: &str) -> ApiResult<()> {
        if self.is_key() {
            Ok(())
        } else {
            Err(ApiError::unauthorized_scope(self.role_name(), scope))
        }
    }

    /// Routes for a signed-in user (`/account/...`).
    pub fn require_user(&self, scope: &str) -> ApiResult<&UserCtx> {
        match self {
            Caller::User(u) => Ok(u),
            _ => Err(ApiError::unauthorized_scope(self.role_name(), scope)),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let project = header("x-appwrite-project");
        let key = header("x-appwrite-key");
        let session = header("x-appwrite-session");

        match project.as_deref() {
            None | Some("") => return Err(ApiError::unauthorized_scope("guests", "project")),
            Some(p) if p != state.config.project_id => {
                return Err(ApiError::new(
                    404,
                    "project_not_found",
                    "Project with the requested ID could not be found. Please check the value of the X-Appwrite-Project header to ensure the correct project ID is being used.",
                ));
            }
            Some(_) => {}
        }
        if key.is_some() && session.is_some() {
            return Err(ApiError::new(
                403,
                "user_key_and_session_set",
                "API key and session used in the same request. Use either `setSession` or `setKey`. Learn about which authentication method to use in the SSR docs: https://appwrite.io/docs/products/auth/server-side-rendering",
            ));
        }
        if let Some(key) = key {
            // Appwrite answers an unknown key with `user_unauthorized` on every route.
            return if key == state.config.api_key {
                Ok(Caller::Key)
            } else {
                Err(ApiError::user_unauthorized())
            };
        }
        let Some(secret) = session.filter(|s| !s.is_empty()) else {
            return Ok(Caller::Guest);
        };
        let found = state
            .store
            .call(move |conn| {
                let hash = util::hash_secret(&secret);
                // Every session request runs these lookups: prepared once, kept in the cache.
                let row: Option<(String, String, String)> = conn
                    .prepare_cached(
                        "SELECT id, user_id, expire FROM sessions WHERE secret_hash = ?1",
                    )?
                    .query_row(params![hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                let Some((session_id, user_id, expire)) = row else {
                    return Ok(None);
                };
                if expire < util::now() {
                    return Ok(None);
                }
                // A blocked user's sessions stop working at once.
                let active: Option<i64> = conn
                    .prepare_cached("SELECT status FROM users WHERE id = ?1")?
                    .query_row(params![user_id], |r| r.get(0))
                    .optional()?;
                if active != Some(1) {
                    return Ok(None);
                }
                let roles = roles_for_user(conn, &user_id)?;
                Ok(Some(UserCtx {
                    user_id,
                    session_id,
                    roles,
                }))
            })
            .await?;
        // An unknown or expired session makes the caller a guest, as in Appwrite.
        Ok(found.map_or(Caller::Guest, Caller::User))
    }
}

/// Every Appwrite role a user holds, for permission checks and Realtime filtering.
pub fn roles_for_user(conn: &Connection, user_id: &str) -> ApiResult<Vec<String>> {
    let (verified, labels): (bool, String) = conn
        .prepare_cached("SELECT email_verification, labels FROM users WHERE id = ?1")?
        .query_row(params![user_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let state = if verified { "verified" } else { "unverified" };
    let mut roles = vec![
        "any".to_owned(),
        "users".to_owned(),
        format!("users/{state}"),
        format!("user:{user_id}"),
        format!("user:{user_id}/{state}"),
    ];
    let labels: Vec<String> = serde_json::from_str(&labels)?;
    roles.extend(labels.into_iter().map(|l| format!("label:{l}")));

    let mut stmt = conn.prepare_cached(
        "SELECT id, team_id, roles FROM memberships WHERE user_id = ?1 AND confirm = 1",
    )?;
    let rows = stmt.query_map(params![user_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (membership_id, team_id, team_roles) = row?;
        roles.push(format!("member:{membership_id}"));
        roles.push(format!("team:{team_id}"));
        let team_roles: Vec<String> = serde_json::from_str(&team_roles)?;
        roles.extend(
            team_roles
                .into_iter()
                .map(|r| format!("team:{team_id}/{r}")),
        );
    }
    Ok(roles)
}
