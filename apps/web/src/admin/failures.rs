//! `/admin/failures`: what is stuck and needs a person: webhook deliveries that could not be
//! applied and Discord role syncs whose last attempt failed, each with a retry button.

use askama::Template;
use axum::{
    Extension, Form,
    extract::{Path, Query, State},
    response::{Html, IntoResponse, Redirect, Response},
};
use g3_access::{Outcome, RetryOutcome};
use serde::Deserialize;

use super::{FailureRow, NoticeQuery, Staff, role_name, staff, urlencode, when};
use crate::{AppState, error::AppError, security::CsrfToken, session::Viewer, templates::Layout};

pub struct RoleFailureRow {
    pub user_id: String,
    pub user_href: String,
    pub discord_user_id: String,
    pub role_id: String,
    pub role_name: String,
    pub desired: bool,
    pub attempts: i64,
    pub next_retry: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "admin_failures.html")]
pub struct FailuresPage {
    pub layout: Layout,
    pub notice: Option<String>,
    pub retry_enabled: bool,
    pub webhook: Vec<FailureRow>,
    pub roles_total: u64,
    pub roles: Vec<RoleFailureRow>,
}

pub async fn page(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Query(notice): Query<NoticeQuery>,
    viewer: Result<Viewer, AppError>,
) -> Result<Response, AppError> {
    staff(&state, viewer).await?;
    let access = state.access();
    let (webhook, roles) =
        tokio::join!(access.list_failures(false), access.failing_role_syncs(100));
    let (roles_total, roles) = roles?;
    let page = FailuresPage {
        layout: Layout::new("Admin · failures", &csrf.0, true).staff(true),
        notice: notice.notice.map(|n| n.chars().take(300).collect()),
        retry_enabled: access.can_replay(),
        webhook: webhook?
            .iter()
            .map(|d| FailureRow::of(&d.id, &d.data))
            .collect(),
        roles_total,
        roles: roles
            .iter()
            .map(|d| RoleFailureRow {
                user_id: d.data.user_id.clone(),
                user_href: urlencode(&d.data.user_id),
                discord_user_id: d.data.discord_user_id.clone().unwrap_or_default(),
                role_id: d.data.role_id.clone(),
                role_name: role_name(state.plans(), &d.data.role_id),
                desired: d.data.desired,
                attempts: d.data.attempts.unwrap_or(0),
                next_retry: when(d.data.next_retry_at),
                error: d.data.last_error.clone().unwrap_or_default(),
            })
            .collect(),
    };
    Ok(Html(page.render()?).into_response())
}

fn back(notice: &str) -> Response {
    Redirect::to(&format!("/admin/failures?notice={}", urlencode(notice))).into_response()
}

/// Replays one failed webhook delivery now, as `ops failures retry ID` does. Audited.
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    viewer: Result<Viewer, AppError>,
) -> Result<Response, AppError> {
    let Staff(admin) = staff(&state, viewer).await?;
    let access = state.access();
    if !access.can_replay() {
        return Ok(back(
            "Not retried: this web service has no SELLAPP_PLANS, so it cannot read deliveries. \
             Set it, or use `ops failures retry`.",
        ));
    }
    if access.get_failure(&id).await?.is_none() {
        return Ok(back(&format!("No failure with id {id}.")));
    }
    let actor = format!("staff:{}", admin.user.email);
    let result = access.retry_failure(&id).await?;
    let (notice, detail) = match &result {
        RetryOutcome::Resolved(Outcome::Applied(what)) => {
            (format!("Retried {id}: applied ({what})."), "applied")
        }
        RetryOutcome::Resolved(Outcome::Duplicate) => (
            format!("Retried {id}: it had already been applied."),
            "duplicate",
        ),
        RetryOutcome::Resolved(Outcome::Ignored) => (
            format!("Retried {id}: nothing to do for this event."),
            "ignored",
        ),
        RetryOutcome::FailedAgain(e) => {
            (format!("Retried {id}: failed again: {e}"), "failed again")
        }
    };
    access
        .audit(
            &g3_access::Cause::Admin {
                actor,
                reason: "retry from /admin".into(),
            },
            "failure.retry",
            &id,
            &format!(
                "{detail} at {}",
                g3_appwrite::format_datetime(time::OffsetDateTime::now_utc())
            ),
        )
        .await?;
    Ok(back(&notice))
}

#[derive(Deserialize)]
pub struct ResyncForm {
    /// Where to go back to: `failures`, or the customer page.
    #[serde(default)]
    back: String,
}

/// Forces a role resync of one user (from the failures page or the customer page). Audited.
pub async fn resync(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    viewer: Result<Viewer, AppError>,
    Form(form): Form<ResyncForm>,
) -> Result<Response, AppError> {
    let Staff(admin) = staff(&state, viewer).await?;
    let user = match state.appwrite().users().get(&user_id).await {
        Ok(u) => u,
        Err(e) if e.is_not_found() => return Err(AppError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let notice = resync_user(&state, &user.id, &admin.user.email, "forced from /admin").await?;
    if form.back == "failures" {
        Ok(back(&notice))
    } else {
        Ok(super::back(&user.email, &notice))
    }
}

pub(super) async fn resync_user(
    state: &AppState,
    user_id: &str,
    staff_email: &str,
    reason: &str,
) -> Result<String, AppError> {
    let access = state.access();
    if access.managed_roles().is_empty() {
        return Ok("Nothing to resync: no Discord roles are managed (PLAN_ROLES is empty).".into());
    }
    let roles = access
        .force_resync(user_id, &format!("staff:{staff_email}"), reason)
        .await?;
    Ok(if roles.is_empty() {
        "Resync queued: they should hold none of the managed roles; the bot removes any they have."
            .into()
    } else {
        let names: Vec<String> = roles
            .iter()
            .map(|r| format!("{} ({r})", role_name(state.plans(), r)))
            .collect();
        format!(
            "Resync queued: the bot checks Discord now and makes sure they hold {}.",
            names.join(", ")
        )
    })
}
