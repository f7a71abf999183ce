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

/// Sessions already resolved (secret hash → the caller), as Appwrite keeps user documents,
/// with their sessions and memberships, in its cache. Used only on the storage thread, and an
/// entry is used only while the database has not changed since it was stored: the
/// connection's `total_changes` (every write of the emulator) and `PRAGMA data_version`
/// (commits by any other connection to the same file). Any write (a new or deleted session,
/// a blocked user, a membership change, a verified email) makes every entry stale, so what a
/// caller may do is never older than the database. Expiry is checked on every use.
#[derive(Default)]
pub struct SessionCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, Resolved>>,
}

struct Resolved {
    /// The database's state when this was read ([`database_state`]).
    changes: (u64, i64),
    expire: String,
    user: UserCtx,
}

/// Entries kept at most; past this the cache starts over (it refills on the next calls).
const SESSION_CACHE_MAX: usize = 10_000;

impl SessionCache {
    fn get(&self, hash: &str, changes: (u64, i64)) -> Option<(String, UserCtx)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(hash)
            .filter(|r| r.changes == changes)
            .map(|r| (r.expire.clone(), r.user.clone()))
    }

    fn put(&self, hash: String, changes: (u64, i64), expire: String, user: UserCtx) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= SESSION_CACHE_MAX
            || entries
                .values()
                .next()
                .is_some_and(|r| r.changes != changes)
        {
            // Full, or stale as a whole (entries are written only at the newest count).
            entries.clear();
        }
        entries.insert(
            hash,
            Resolved {
                changes,
                expire,
                user,
            },
        );
    }
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
        let sessions = state.sessions.clone();
        let found = state
            .store
            .call(move |conn| {
                let hash = util::hash_secret(&secret);
                let changes = database_state(conn)?;
                if let Some((expire, user)) = sessions.get(&hash, changes) {
                    return Ok((expire >= util::now()).then_some(user));
                }
                // Otherwise these lookups: prepared once, kept in the statement cache.
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
                let user = UserCtx {
                    user_id,
                    session_id,
                    roles,
                };
                sessions.put(hash, changes, expire, user.clone());
                Ok(Some(user))
            })
            .await?;
        // An unknown or expired session makes the caller a guest, as in Appwrite.
        Ok(found.map_or(Caller::Guest, Caller::User))
    }
}

/// What tells that the database changed: this connection's writes, and other connections'
/// commits.
fn database_state(conn: &Connection) -> ApiResult<(u64, i64)> {
    let version: i64 = conn
        .prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))?;
    Ok((conn.total_changes(), version))
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

#[cfg(test)]
mod session_cache_tests {
    use super::*;

    fn user(id: &str) -> UserCtx {
        UserCtx {
            user_id: id.into(),
            session_id: format!("s-{id}"),
            roles: vec![format!("user:{id}")],
        }
    }

    #[test]
    fn an_entry_holds_only_while_the_database_is_unchanged() {
        let cache = SessionCache::default();
        cache.put("h1".into(), (5, 1), "2999".into(), user("a"));
        let (expire, hit) = cache.get("h1", (5, 1)).expect("same state: a hit");
        assert_eq!((expire.as_str(), hit.user_id.as_str()), ("2999", "a"));
        // A write by the emulator, or a commit by another connection: stale.
        assert!(cache.get("h1", (6, 1)).is_none());
        assert!(cache.get("h1", (5, 2)).is_none());
        assert!(cache.get("h2", (5, 1)).is_none());
        // An entry stored at a newer state drops the older ones.
        cache.put("h2".into(), (6, 1), "2999".into(), user("b"));
        assert!(cache.get("h1", (5, 1)).is_none());
        assert!(cache.get("h2", (6, 1)).is_some());
    }
}
