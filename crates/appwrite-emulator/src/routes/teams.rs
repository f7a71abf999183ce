//! Teams and memberships. The server key manages everything, and memberships it creates are
//! confirmed at once (no invitation mail); signed-in users may read the teams they belong to.
//! Membership changes are published to Realtime for the team and the member.

use axum::{
    Json, Router,
    extract::{Path, RawQuery, State},
    http::StatusCode,
    routing::get,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Body, users::PrefsBody};
use crate::{
    auth::Caller,
    error::{ApiError, ApiResult},
    identity::{self, NewUser},
    list_query::ListQuery,
    params::{list, required},
    state::{AppState, RealtimeEvent},
    util,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/teams", get(list_teams).post(create_team))
        .route(
            "/teams/{team_id}",
            get(get_team).put(update_team).delete(delete_team),
        )
        .route("/teams/{team_id}/prefs", get(get_prefs).put(update_prefs))
        .route(
            "/teams/{team_id}/memberships",
            get(list_memberships).post(create_membership),
        )
        .route(
            "/teams/{team_id}/memberships/{membership_id}",
            get(get_membership)
                .patch(update_membership)
                .delete(delete_membership),
        )
}

const TEAM_ATTRS: &[&str] = &["name", "total"];
/// Attributes membership lists may filter and order on.
pub(super) const MEMBERSHIP_ATTRS: &[&str] = &[
    "userId",
    "teamId",
    "invited",
    "joined",
    "confirm",
    "roles",
    "userName",
    "userEmail",
    "teamName",
];

fn team_not_found() -> ApiError {
    ApiError::new(
        404,
        "team_not_found",
        "Team with the requested ID could not be found.",
    )
}

fn membership_not_found() -> ApiError {
    ApiError::new(
        404,
        "membership_not_found",
        "Membership with the requested ID could not be found.",
    )
}

/// 404 `team_not_found` unless the team exists; cheaper than [`team_json`], which counts members.
fn require_team(conn: &Connection, team_id: &str) -> ApiResult<()> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM teams WHERE id = ?1")?
        .query_row(params![team_id], |r| r.get(0))
        .optional()?;
    found.map(drop).ok_or_else(team_not_found)
}

/// Appwrite's `team` model; `total` counts confirmed members.
fn team_json(conn: &Connection, team_id: &str) -> ApiResult<Value> {
    let row = conn
        .prepare_cached(
            "SELECT t.id, t.created_at, t.updated_at, t.name, t.prefs, \
             (SELECT COUNT(*) FROM memberships m WHERE m.team_id = t.id AND m.confirm = 1) \
             FROM teams t WHERE t.id = ?1",
        )?
        .query_row(params![team_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .optional()?;
    let (id, created, updated, name, prefs, total) = row.ok_or_else(team_not_found)?;
    Ok(json!({
        "$id": id,
        "$createdAt": created,
        "$updatedAt": updated,
        "name": name,
        "total": total,
        "prefs": serde_json::from_str::<Value>(&prefs).unwrap_or_else(|_| json!({})),
    }))
}

/// Which memberships to read. Each variant is one indexed lookup.
enum Which<'a> {
    Team(&'a str),
    User(&'a str),
    TeamUser(&'a str, &'a str),
    TeamMembership(&'a str, &'a str),
    All,
}

/// Memberships as Appwrite's `membership` model, filtered by team and/or user, oldest first.
pub(super) fn memberships_where(
    conn: &Connection,
    team_id: Option<&str>,
    user_id: Option<&str>,
) -> ApiResult<Vec<Value>> {
    let which = match (team_id, user_id) {
        (Some(t), Some(u)) => Which::TeamUser(t, u),
        (Some(t), None) => Which::Team(t),
        (None, Some(u)) => Which::User(u),
        (None, None) => Which::All,
    };
    memberships(conn, which)
}

fn memberships(conn: &Connection, which: Which<'_>) -> ApiResult<Vec<Value>> {
    // Only the conditions that apply: `(?1 IS NULL OR col = ?1)` would keep SQLite from using
    // the indexes, and every lookup would scan all members.
    let (condition, a, b) = match which {
        Which::Team(t) => ("m.team_id = ?1 AND ?2 IS NULL", Some(t), None),
        Which::User(u) => ("m.user_id = ?1 AND ?2 IS NULL", Some(u), None),
        Which::TeamUser(t, u) => ("m.team_id = ?1 AND m.user_id = ?2", Some(t), Some(u)),
        Which::TeamMembership(t, id) => ("m.team_id = ?1 AND m.id = ?2", Some(t), Some(id)),
        Which::All => ("?1 IS NULL AND ?2 IS NULL", None, None),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT m.id, m.created_at, m.updated_at, m.user_id, u.name, COALESCE(u.email, ''), \
         m.team_id, t.name, m.invited, m.joined, m.confirm, m.roles \
         FROM memberships m JOIN users u ON u.id = m.user_id JOIN teams t ON t.id = m.team_id \
         WHERE {condition} ORDER BY m.seq"
    ))?;
    let rows = stmt.query_map(params![a, b], |r| {
        let roles: String = r.get(11)?;
        Ok(json!({
            "$id": r.get::<_, String>(0)?,
            "$createdAt": r.get::<_, String>(1)?,
            "$updatedAt": r.get::<_, String>(2)?,
            "userId": r.get::<_, String>(3)?,
            "userName": r.get::<_, String>(4)?,
            "userEmail": r.get::<_, String>(5)?,
            "teamId": r.get::<_, String>(6)?,
            "teamName": r.get::<_, String>(7)?,
            "invited": r.get::<_, String>(8)?,
            "joined": r.get::<_, String>(9)?,
            "confirm": r.get::<_, bool>(10)?,
            "mfa": false,
            "roles": serde_json::from_str::<Value>(&roles).unwrap_or_else(|_| json!([])),
        }))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn membership_json(conn: &Connection, team_id: &str, membership_id: &str) -> ApiResult<Value> {
    memberships(conn, Which::TeamMembership(team_id, membership_id))?
        .into_iter()
        .next()
        .ok_or_else(membership_not_found)
}

/// Session users see a team only when they belong to it (Appwrite's `read("team:ID")`).
fn require_member(caller: &Caller, team_id: &str) -> ApiResult<()> {
    match caller {
        Caller::Key => Ok(()),
        Caller::User(u) if u.roles.iter().any(|r| *r == format!("team:{team_id}")) => Ok(()),
        Caller::User(_) => Err(team_not_found()),
        Caller::Guest => Err(ApiError::unauthorized_scope("guests", "teams.read")),
    }
}

/// Writes need the key or the team's `owner` role.
fn require_owner(caller: &Caller, team_id: &str) -> ApiResult<()> {
    require_member(caller, team_id)?;
    match caller {
        Caller::User(u)
            if !u
                .roles
                .iter()
                .any(|r| *r == format!("team:{team_id}/owner")) =>
        {
            Err(ApiError::user_unauthorized())
        }
        _ => Ok(()),
    }
}

fn parse_roles(roles: Vec<String>) -> ApiResult<Vec<String>> {
    if roles.len() > 100
        || roles.iter().any(|r| {
            r.is_empty()
                || r.len() > 81
                || !r
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
    {
        return Err(ApiError::argument_invalid(
            "Invalid `roles` param: Value must a valid array no longer than 100 items and Value must be a valid string and at least 1 chars and no longer than 81 chars",
        ));
    }
    Ok(roles)
}

fn check_team_name(name: &str) -> ApiResult<()> {
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ApiError::argument_invalid(
            "Invalid `name` param: Value must be a valid string and at least 1 chars and no longer than 128 chars",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateTeam {
    team_id: Option<String>,
    name: Option<String>,
    roles: Option<Vec<String>>,
}

async fn create_team(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<CreateTeam>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if matches!(caller, Caller::Guest) {
        return Err(ApiError::unauthorized_scope("guests", "teams.write"));
    }
    let team_id = util::resolve_id("teamId", &required(body.team_id, "teamId")?)?;
    let name = required(body.name, "name")?;
    check_team_name(&name)?;
    let roles = parse_roles(body.roles.unwrap_or_else(|| vec!["owner".to_owned()]))?;
    let creator = match &caller {
        Caller::User(u) => Some(u.user_id.clone()),
        _ => None,
    };
    let (team, membership) = state
        .store
        .transaction(move |tx| {
            let exists: Option<i64> = tx
                .query_row("SELECT 1 FROM teams WHERE id = ?1", params![team_id], |r| {
                    r.get(0)
                })
                .optional()?;
            if exists.is_some() {
                return Err(ApiError::new(
                    409,
                    "team_already_exists",
                    "Team with requested ID already exists. Please choose a different ID and try again.",
                ));
            }
            let now = util::now();
            tx.execute(
                "INSERT INTO teams (id, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
                params![team_id, name, now],
            )?;
            // A user who creates a team becomes its first member, with the given roles.
            let membership = match creator {
                Some(user_id) => Some(insert_membership(tx, &team_id, &user_id, &roles)?),
                None => None,
            };
            Ok((team_json(tx, &team_id)?, membership))
        })
        .await?;
    if let Some(m) = membership {
        publish_membership(&state, &m, "create");
    }
    Ok((StatusCode::CREATED, Json(team)))
}

fn insert_membership(
    conn: &Connection,
    team_id: &str,
    user_id: &str,
    roles: &[String],
) -> ApiResult<Value> {
    let id = util::unique_id();
    let now = util::now();
    let inserted = conn
        .prepare_cached(
            "INSERT INTO memberships (id, team_id, user_id, roles, invited, joined, confirm, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1, ?5, ?5) ON CONFLICT (team_id, user_id) DO NOTHING",
        )?
        .execute(params![id, team_id, user_id, serde_json::to_string(roles)?, now])?;
    if inserted == 0 {
        // Appwrite's answer when the user already belongs to (or is invited to) the team.
        return Err(ApiError::new(
            409,
            "team_invite_already_exists",
            "User has already been invited or is already a member of this team",
        ));
    }
    membership_json(conn, team_id, &id)
}

async fn list_teams(
    caller: Caller,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let only_user = match &caller {
        Caller::Key => None,
        Caller::User(u) => Some(u.user_id.clone()),
        Caller::Guest => return Err(ApiError::unauthorized_scope("guests", "teams.read")),
    };
    let query = ListQuery::parse(raw.as_deref(), TEAM_ATTRS)?;
    let items = state
        .store
        .call(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT id FROM teams WHERE ?1 IS NULL OR id IN \
                 (SELECT team_id FROM memberships WHERE user_id = ?1 AND confirm = 1) ORDER BY seq",
            )?;
            let ids = stmt
                .query_map(params![only_user], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            ids.iter().map(|id| team_json(conn, id)).collect()
        })
        .await?;
    let (total, page) = query.apply(items, &["$id", "name"])?;
    Ok(Json(list("teams", total, page)))
}

async fn get_team(
    caller: Caller,
    State(state): State<AppState>,
    Path(team_id): Path<String>,
) -> ApiResult<Json<Value>> {
    require_member(&caller, &team_id)?;
    let team = state
        .store
        .call(move |conn| team_json(conn, &team_id))
        .await?;
    Ok(Json(team))
}

#[derive(Deserialize)]
struct UpdateTeam {
    name: Option<String>,
}

async fn update_team(
    caller: Caller,
    State(state): State<AppState>,
    Path(team_id): Path<String>,
    Body(body): Body<UpdateTeam>,
) -> ApiResult<Json<Value>> {
    require_owner(&caller, &team_id)?;
    let name = required(body.name, "name")?;
    check_team_name(&name)?;
    let team = state
        .store
        .call(move |conn| {
            let n = conn.execute(
                "UPDATE teams SET name = ?2, updated_at = ?3 WHERE id = ?1",
                params![team_id, name, util::now()],
            )?;
            if n == 0 {
                return Err(team_not_found());
            }
            team_json(conn, &team_id)
        })
        .await?;
    Ok(Json(team))
}

async fn delete_team(
    caller: Caller,
    State(state): State<AppState>,
    Path(team_id): Path<String>,
) -> ApiResult<StatusCode> {
    require_owner(&caller, &team_id)?;
    let removed = state
        .store
        .transaction(move |tx| {
            let members = memberships_where(tx, Some(&team_id), None)?;
            if tx.execute("DELETE FROM teams WHERE id = ?1", params![team_id])? == 0 {
                return Err(team_not_found());
            }
            Ok(members)
        })
        .await?;
    for m in &removed {
        publish_membership(&state, m, "delete");
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn get_prefs(
    caller: Caller,
    State(state): State<AppState>,
    Path(team_id): Path<String>,
) -> ApiResult<Json<Value>> {
    require_member(&caller, &team_id)?;
    let team = state
        .store
        .call(move |conn| team_json(conn, &team_id))
        .await?;
    Ok(Json(team["prefs"].clone()))
}

async fn update_prefs(
    caller: Caller,
    State(state): State<AppState>,
    Path(team_id): Path<String>,
    Body(body): Body<PrefsBody>,
) -> ApiResult<Json<Value>> {
    require_member(&caller, &team_id)?;
    let prefs = super::users::prefs_text(body.prefs)?;
    let team = state
        .store
        .call(move |conn| {
            let n = conn.execute(
                "UPDATE teams SET prefs = ?2, updated_at = ?3 WHERE id = ?1",
                params![team_id, prefs, util::now()],
            )?;
            if n == 0 {
                return Err(team_not_found());
            }
            team_json(conn, &team_id)
        })
        .await?;
    Ok(Json(team["prefs"].clone()))
}

async fn list_memberships(
    caller: Caller,
    State(state): State<AppState>,
    Path(team_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    require_member(&caller, &team_id)?;
    let query = ListQuery::parse(raw.as_deref(), MEMBERSHIP_ATTRS)?;
    // "Is this user a member?" is the hot path: read only their row through the index.
    let user = query.single_equal("userId");
    let items = state
        .store
        .call(move |conn| {
            require_team(conn, &team_id)?;
            memberships_where(conn, Some(&team_id), user.as_deref())
        })
        .await?;
    let (total, page) = query.apply(items, &["$id", "userId", "userName", "userEmail"])?;
    Ok(Json(list("memberships", total, page)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateMembership {
    user_id: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    roles: Option<Vec<String>>,
    name: Option<String>,
}

#[tracing::instrument(skip_all, fields(team_id = %team_id))]
async fn create_membership(
    caller: Caller,
    State(state): State<AppState>,
    Path(team_id): Path<String>,
    Body(body): Body<CreateMembership>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    require_owner(&caller, &team_id)?;
    if !caller.is_key() {
        // Invitations by mail that the invitee must accept are not needed by this product.
        return Err(ApiError::not_implemented(
            "team invitations by session users (use the server key)",
        ));
    }
    let roles = parse_roles(required(body.roles, "roles")?)?;
    let user_id = body.user_id.filter(|s| !s.is_empty());
    let email = body
        .email
        .filter(|s| !s.is_empty())
        .map(|e| identity::parse_email(&e))
        .transpose()?;
    if user_id.is_none() && email.is_none() {
        if body.phone.is_some_and(|p| !p.is_empty()) {
            return Err(ApiError::not_implemented("team invitations by phone"));
        }
        return Err(ApiError::argument_invalid(
            "At least one of userId, email, or phone is required",
        ));
    }
    let name = body.name.unwrap_or_default();
    let membership = state
        .store
        .transaction(move |tx| {
            require_team(tx, &team_id)?;
            let user = match (user_id, email) {
                (Some(id), _) => identity::get_user(tx, &id)?,
                // As in Appwrite, inviting an unknown email creates the user.
                (None, Some(email)) => match identity::find_user_by_email(tx, &email)? {
                    Some(user) => user,
                    None => identity::insert_user(
                        tx,
                        NewUser {
                            id: util::unique_id(),
                            email: Some(email),
                            phone: None,
                            password: None,
                            name,
                        },
                    )?,
                },
                (None, None) => return Err(identity::user_not_found()),
            };
            insert_membership(tx, &team_id, &user.id, &roles)
        })
        .await?;
    publish_membership(&state, &membership, "create");
    Ok((StatusCode::CREATED, Json(membership)))
}

async fn get_membership(
    caller: Caller,
    State(state): State<AppState>,
    Path((team_id, membership_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    require_member(&caller, &team_id)?;
    let m = state
        .store
        .call(move |conn| {
            require_team(conn, &team_id)?;
            membership_json(conn, &team_id, &membership_id)
        })
        .await?;
    Ok(Json(m))
}

#[derive(Deserialize)]
struct UpdateMembership {
    roles: Option<Vec<String>>,
}

async fn update_membership(
    caller: Caller,
    State(state): State<AppState>,
    Path((team_id, membership_id)): Path<(String, String)>,
    Body(body): Body<UpdateMembership>,
) -> ApiResult<Json<Value>> {
    require_owner(&caller, &team_id)?;
    let roles = parse_roles(required(body.roles, "roles")?)?;
    let m = state
        .store
        .transaction(move |tx| {
            require_team(tx, &team_id)?;
            let n = tx.execute(
                "UPDATE memberships SET roles = ?3, updated_at = ?4 WHERE team_id = ?1 AND id = ?2",
                params![
                    team_id,
                    membership_id,
                    serde_json::to_string(&roles)?,
                    util::now()
                ],
            )?;
            if n == 0 {
                return Err(membership_not_found());
            }
            membership_json(tx, &team_id, &membership_id)
        })
        .await?;
    publish_membership(&state, &m, "update");
    Ok(Json(m))
}

async fn delete_membership(
    caller: Caller,
    State(state): State<AppState>,
    Path((team_id, membership_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_member(&caller, &team_id)?;
    // Owners may remove anyone; a member may leave by deleting their own membership.
    let own = match &caller {
        Caller::User(u) => u
            .roles
            .iter()
            .any(|r| *r == format!("member:{membership_id}")),
        _ => false,
    };
    if !own {
        require_owner(&caller, &team_id)?;
    }
    let m = state
        .store
        .transaction(move |tx| {
            require_team(tx, &team_id)?;
            let m = membership_json(tx, &team_id, &membership_id)?;
            tx.execute(
                "DELETE FROM memberships WHERE team_id = ?1 AND id = ?2",
                params![team_id, membership_id],
            )?;
            Ok(m)
        })
        .await?;
    publish_membership(&state, &m, "delete");
    Ok(StatusCode::NO_CONTENT)
}

/// Every event name Appwrite derives from one resource path: each id may be replaced by `*`,
/// and the path is also announced without the action and as its shorter prefixes.
pub(super) fn event_names(path: &[(&str, &str)], action: &str) -> Vec<String> {
    let mut full: Vec<String> = vec![String::new()];
    for (kind, id) in path {
        full = full
            .into_iter()
            .flat_map(|prefix| {
                [*id, "*"].into_iter().map(move |part| {
                    if prefix.is_empty() {
                        format!("{kind}.{part}")
                    } else {
                        format!("{prefix}.{kind}.{part}")
                    }
                })
            })
            .collect();
    }
    let mut out: Vec<String> = full.iter().map(|p| format!("{p}.{action}")).collect();
    out.extend(full);
    if path.len() > 1 {
        out.extend(
            event_names(&path[..path.len() - 1], action)
                .into_iter()
                .filter(|e| !e.ends_with(action)),
        );
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|e| seen.insert(e.clone()));
    out
}

fn publish_membership(state: &AppState, membership: &Value, action: &str) {
    let team_id = membership["teamId"].as_str().unwrap_or_default();
    let membership_id = membership["$id"].as_str().unwrap_or_default();
    let user_id = membership["userId"].as_str().unwrap_or_default();
    state.publish_with(|| RealtimeEvent {
        events: event_names(
            &[("teams", team_id), ("memberships", membership_id)],
            action,
        ),
        channels: vec![
            "teams".to_owned(),
            format!("teams.{team_id}"),
            "memberships".to_owned(),
            format!("memberships.{membership_id}"),
        ],
        readers: vec![format!("team:{team_id}"), format!("user:{user_id}")],
        timestamp: util::now(),
        payload: membership.clone(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_cover_wildcards() {
        let names = event_names(&[("teams", "t"), ("memberships", "m")], "create");
        assert_eq!(names[0], "teams.t.memberships.m.create");
        for expected in [
            "teams.*.memberships.*.create",
            "teams.t.memberships.*.create",
            "teams.t.memberships.m",
            "teams.t",
            "teams.*",
        ] {
            assert!(
                names.contains(&expected.to_owned()),
                "{expected} in {names:?}"
            );
        }
    }
}
