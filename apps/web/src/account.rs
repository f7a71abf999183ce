//! The account page (plan, status, since, renews or ends; sign-out everywhere) and the
//! signed-in connectivity check `/api/appwrite/ping`.

use askama::Template;
use axum::{
    Extension, Json,
    extract::{Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use g3_core::{Email, entitlements::PlanConfig};
use g3_store::models::{Subscription, SubscriptionStatus};
use serde_json::json;
use time::{OffsetDateTime, macros::format_description};

use crate::{
    AppState,
    auth::{NoticeQuery, notice_text},
    error::AppError,
    security::CsrfToken,
    session::{MaybeViewer, Standing, Viewer, standing},
    templates::{AccountPage, DiscordView, Layout, PlanRow},
};

pub fn date(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// One subscription as the account page lists it, under the plan's configured name.
fn plan_row(s: &Subscription, plans: &PlanConfig) -> PlanRow {
    let on = |t: Option<OffsetDateTime>| t.map(date).unwrap_or_default();
    let (status, until) = match s.status {
        SubscriptionStatus::Active => (
            "active",
            match (s.period_end, &s.sellapp_subscription_id) {
                (Some(end), Some(_)) => format!("renews {}", date(end)),
                (Some(end), None) => format!("ends {}", date(end)),
                (None, _) => "no end date".into(),
            },
        ),
        SubscriptionStatus::Cancelled => ("cancelled", format!("ends {}", on(s.period_end))),
        SubscriptionStatus::Revoked => ("revoked", format!("ended {}", on(s.revoked_at))),
        SubscriptionStatus::Expired => ("expired", format!("ended {}", on(s.period_end))),
    };
    PlanRow {
        plan: plans.name_of(&s.plan).to_owned(),
        status,
        since: on(s.granted_at),
        until,
    }
}

/// The user's subscriptions by their (verified or not) email, newest first.
pub async fn plan_rows(state: &AppState, email: &str) -> Result<Vec<PlanRow>, AppError> {
    let Ok(email) = Email::parse(email) else {
        return Ok(Vec::new());
    };
    Ok(state
        .access()
        .subscriptions_of(&email)
        .await?
        .iter()
        .map(|d| plan_row(&d.data, state.plans()))
        .collect())
}

pub async fn account(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<NoticeQuery>,
    viewer: Viewer,
) -> Result<Response, AppError> {
    let (standing, plans, link) = tokio::join!(
        standing(&state, &viewer.user),
        plan_rows(&state, &viewer.user.email),
        state.access().discord_link(&viewer.user.id)
    );
    let standing = standing?;
    let page = AccountPage {
        layout: Layout::new("Account", &csrf.0, true).staff(standing == Standing::Staff),
        email: viewer.user.email.clone(),
        name: viewer.user.name.clone(),
        verified: viewer.user.email_verification,
        knows_password: crate::auth::knows_password(&viewer.user),
        standing: standing.label(),
        plans: plans?,
        store_url: state.store_url().to_owned(),
        notice: notice_text(q.notice.as_deref()),
        discord: link?.map(|l| DiscordView {
            name: l
                .discord_username
                .unwrap_or_else(|| l.discord_user_id.clone()),
            id: l.discord_user_id,
            since: date(l.linked_at),
        }),
        discord_enabled: state.discord().is_some(),
    };
    Ok(Html(page.render()?).into_response())
}

/// Appwrite's status and latency, for signed-in users only.
pub async fn ping(
    State(state): State<AppState>,
    viewer: Result<MaybeViewer, AppError>,
) -> Response {
    if !matches!(viewer, Ok(MaybeViewer(Some(_)))) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "status": "unauthorized" })),
        )
            .into_response();
    }
    match state.appwrite().ping().await {
        Ok(latency) => Json(json!({
            "status": "ok",
            "latency_ms": u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        }))
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "appwrite ping failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unreachable" })),
            )
                .into_response()
        }
    }
}
