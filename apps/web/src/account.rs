//! The account page (plans with status and period end, where to manage the subscription, the
//! Discord link and the server invite, password, sign-out everywhere) and the signed-in
//! connectivity check `/api/appwrite/ping`.

use askama::Template;
use axum::{
    Extension, Json,
    extract::{Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use g3_core::{
    Email,
    entitlements::{BuyUrl, PlanConfig},
};
use g3_store::models::{Subscription, SubscriptionStatus};
use serde_json::json;
use time::{OffsetDateTime, macros::format_description};
use url::Url;

use crate::{
    AppState,
    auth::{NoticeQuery, notice_text},
    error::AppError,
    security::CsrfToken,
    session::{MaybeViewer, Standing, Viewer, standing},
    templates::{AccountPage, DiscordView, Layout, PlanRow},
};

/// Links the account page offers, each shown only when set.
#[derive(Clone, Debug, Default)]
pub struct AccountLinks {
    /// Where customers manage their subscription (`MANAGE_SUBSCRIPTION_URL`, e.g. the store's
    /// customer portal); `{email}` in it is replaced by theirs, URL-encoded, as in buy links.
    pub manage_subscription: Option<BuyUrl>,
    /// An invite to the customer Discord server (`DISCORD_INVITE_URL`), offered once linked.
    pub discord_invite: Option<Url>,
}

pub fn date(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// One subscription as the account page and the paywall list it, under the plan's configured
/// name, as of `now`: a cancelled plan whose period has not ended is still running.
fn plan_row(s: &Subscription, plans: &PlanConfig, now: OffsetDateTime) -> PlanRow {
    let on = |t: Option<OffsetDateTime>| t.map(date).unwrap_or_default();
    let running = |end: Option<OffsetDateTime>| end.is_none_or(|end| end > now);
    let (status, state, period) = match s.status {
        SubscriptionStatus::Active if running(s.period_end) => (
            "Active".to_owned(),
            "active",
            match (s.period_end, &s.sellapp_subscription_id) {
                (Some(end), Some(_)) => format!("renews {}", date(end)),
                (Some(end), None) => format!("ends {}", date(end)),
                (None, _) => "no end date".into(),
            },
        ),
        SubscriptionStatus::Cancelled if s.period_end.is_some_and(|end| end > now) => (
            format!("Cancelled, active until {}", on(s.period_end)),
            "ending",
            format!("ends {}", on(s.period_end)),
        ),
        // Past its period (the expiry job may not have run yet): over.
        SubscriptionStatus::Active
        | SubscriptionStatus::Cancelled
        | SubscriptionStatus::Expired => (
            "Expired".to_owned(),
            "ended",
            format!("ended {}", on(s.period_end)),
        ),
        SubscriptionStatus::Revoked => (
            "Revoked".to_owned(),
            "ended",
            format!("ended {}", on(s.revoked_at)),
        ),
    };
    PlanRow {
        plan: plans.name_of(&s.plan).to_owned(),
        status,
        state,
        since: on(s.granted_at),
        period,
    }
}

/// The user's subscriptions by their (verified or not) email, newest first.
pub async fn plan_rows(state: &AppState, email: &str) -> Result<Vec<PlanRow>, AppError> {
    let Ok(email) = Email::parse(email) else {
        return Ok(Vec::new());
    };
    let now = OffsetDateTime::now_utc();
    Ok(state
        .access()
        .subscriptions_of(&email)
        .await?
        .iter()
        .map(|d| plan_row(&d.data, state.plans(), now))
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
    let plans = plans?;
    let links = state.account_links();
    // Only someone who bought has a subscription to manage.
    let manage_url = links
        .manage_subscription
        .as_ref()
        .filter(|_| !plans.is_empty())
        .map(|u| u.for_email(Some(&viewer.user.email)));
    let page = AccountPage {
        layout: Layout::new("Account", &csrf.0, true).staff(standing == Standing::Staff),
        email: viewer.user.email.clone(),
        name: viewer.user.name.clone(),
        verified: viewer.user.email_verification,
        knows_password: crate::auth::knows_password(&viewer.user),
        standing: standing.label(),
        plans,
        store_url: state.store_url().to_owned(),
        manage_url,
        notice: notice_text(q.notice.as_deref()),
        discord: link?.map(|l| DiscordView {
            name: l
                .discord_username
                .unwrap_or_else(|| l.discord_user_id.clone()),
            id: l.discord_user_id,
            since: date(l.linked_at),
        }),
        discord_enabled: state.discord().is_some(),
        discord_invite: links.discord_invite.as_ref().map(Url::to_string),
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

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-05-10 12:00 UTC);

    fn sub(status: SubscriptionStatus, end: Option<OffsetDateTime>, renews: bool) -> Subscription {
        Subscription {
            email: "a@b.c".into(),
            user_id: None,
            plan: "vip".into(),
            status,
            sellapp_order_id: None,
            sellapp_subscription_id: renews.then(|| "sub_1".into()),
            period_end: end,
            granted_at: Some(datetime!(2026-04-10 09:00 UTC)),
            revoked_at: Some(datetime!(2026-05-01 09:00 UTC)),
            reason: None,
            history: None,
        }
    }

    fn row(s: &Subscription) -> (String, &'static str, String) {
        let plans = PlanConfig::from_toml("[plans.vip]\nname = \"VIP\"\nroutes = [\"*\"]").unwrap();
        let r = plan_row(s, &plans, NOW);
        assert_eq!((r.plan.as_str(), r.since.as_str()), ("VIP", "2026-04-10"));
        (r.status, r.state, r.period)
    }

    #[test]
    fn status_and_period_end_read_as_of_now() {
        use SubscriptionStatus::*;
        let later = Some(datetime!(2026-06-10 12:00 UTC));
        let earlier = Some(datetime!(2026-05-09 12:00 UTC));
        let cases = [
            (
                sub(Active, later, true),
                "Active",
                "active",
                "renews 2026-06-10",
            ),
            (
                sub(Active, later, false),
                "Active",
                "active",
                "ends 2026-06-10",
            ),
            (sub(Active, None, false), "Active", "active", "no end date"),
            (
                sub(Cancelled, later, true),
                "Cancelled, active until 2026-06-10",
                "ending",
                "ends 2026-06-10",
            ),
            // Past the period, before the expiry job ran: already over.
            (
                sub(Cancelled, earlier, true),
                "Expired",
                "ended",
                "ended 2026-05-09",
            ),
            (
                sub(Active, earlier, true),
                "Expired",
                "ended",
                "ended 2026-05-09",
            ),
            (
                sub(Expired, earlier, true),
                "Expired",
                "ended",
                "ended 2026-05-09",
            ),
            (
                sub(Revoked, later, true),
                "Revoked",
                "ended",
                "ended 2026-05-01",
            ),
        ];
        for (s, status, state, period) in cases {
            assert_eq!(
                row(&s),
                (status.to_owned(), state, period.to_owned()),
                "{s:?}"
            );
        }
    }
}
