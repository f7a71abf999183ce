//! The admin console (`/admin`, staff only): find a customer by email, Sell.app order id,
//! Discord id or name; see their whole state (account, subscriptions, Discord link, desired vs
//! applied roles, webhook events and failures, audit trail); grant or revoke with a reason,
//! force a role resync, unlink Discord, retry failures ([`failures`]). Everyone who is not
//! staff gets a plain 404: the console does not admit it exists. Every change goes through
//! `g3-access`, which writes the audit log.

pub mod failures;

use askama::Template;
use axum::{
    Extension, Form,
    extract::{Path, Query, State},
    response::{Html, IntoResponse, Redirect, Response},
};
use g3_access::Cause;
use g3_appwrite::Query as Q;
use g3_core::{Email, plans::Plan};
use g3_store::{
    models::{AuditEntry, DiscordLink, Subscription, WebhookEvent, WebhookFailure},
    schema::{DATABASE_ID, TEAM_PAID, TEAM_STAFF},
};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::{
    AppState,
    error::AppError,
    security::CsrfToken,
    session::{Standing, Viewer, standing},
    templates::Layout,
};

/// The signed-in staff member, or a 404 for anyone else.
pub struct Staff(pub Viewer);

pub(super) async fn staff(
    state: &AppState,
    viewer: Result<Viewer, AppError>,
) -> Result<Staff, AppError> {
    let viewer = viewer.map_err(|_| AppError::NotFound)?;
    if standing(state, &viewer.user).await? == Standing::Staff {
        Ok(Staff(viewer))
    } else {
        Err(AppError::NotFound)
    }
}

pub(super) fn when(t: Option<OffsetDateTime>) -> String {
    t.map(|t| g3_appwrite::format_datetime(t)[..16].replace('T', " "))
        .unwrap_or_else(|| "-".into())
}

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// `target` as a path segment, for its link.
    pub target_href: String,
    pub detail: String,
}

impl From<&AuditEntry> for AuditRow {
    fn from(a: &AuditEntry) -> Self {
        Self {
            at: when(Some(a.at)),
            actor: a.actor.clone(),
            action: a.action.clone(),
            target: a.target.clone().unwrap_or_default(),
            target_href: urlencode(a.target.as_deref().unwrap_or_default()),
            detail: a.detail.clone().unwrap_or_default(),
        }
    }
}

pub struct FailureRow {
    pub id: String,
    pub state: String,
    pub attempts: i64,
    pub event: String,
    pub email: String,
    pub email_href: String,
    pub error: String,
}

impl FailureRow {
    pub(super) fn of(id: &str, f: &WebhookFailure) -> Self {
        Self {
            id: id.to_owned(),
            state: format!("{:?}", f.state).to_lowercase(),
            attempts: f.attempts.unwrap_or(0),
            event: f.event.clone().unwrap_or_default(),
            email: f.email.clone().unwrap_or_default(),
            email_href: urlencode(f.email.as_deref().unwrap_or_default()),
            error: f.error.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin_home.html")]
pub struct AdminHome {
    pub layout: Layout,
    pub active_subscriptions: u64,
    pub paid_members: u64,
    pub linked: u64,
    pub drift_repaired: u64,
    pub open_failures: u64,
    pub failing_roles: u64,
    pub failures: Vec<FailureRow>,
    pub activity: Vec<AuditRow>,
    pub query: String,
    /// (email, link segment)
    pub results: Vec<(String, String)>,
    pub searched: bool,
}

pub struct SubRow {
    pub plan: String,
    pub status: String,
    pub grants: bool,
    pub order: String,
    pub subscription: String,
    pub period_end: String,
    pub reason: String,
    pub history: Vec<(String, String, String)>,
}

pub struct RoleRow {
    pub role_id: String,
    pub desired: bool,
    /// "yes", "no" or "unknown" (not checked since the last change).
    pub applied: &'static str,
    pub applied_to: String,
    pub applied_at: String,
    pub attempts: i64,
    pub next_retry: String,
    pub error: String,
}

pub struct LinkView {
    pub discord_user_id: String,
    pub discord_username: String,
    pub linked_at: String,
}

pub struct EventRow {
    pub at: String,
    pub event: String,
    pub order: String,
    pub status: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "admin_customer.html")]
pub struct AdminCustomer {
    pub layout: Layout,
    pub email: String,
    pub email_href: String,
    pub notice: Option<String>,
    pub user_id: Option<String>,
    pub verified: bool,
    pub blocked: bool,
    pub paid: bool,
    pub staff: bool,
    pub discord: Option<LinkView>,
    /// Whether this service manages Discord roles (PLAN_ROLES set).
    pub roles_managed: bool,
    /// Why they should (not) hold the roles, as the bot sees it.
    pub roles_why: String,
    pub roles: Vec<RoleRow>,
    pub subscriptions: Vec<SubRow>,
    pub events: Vec<EventRow>,
    pub failures: Vec<FailureRow>,
    pub audit: Vec<AuditRow>,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// Dashboard and search: an email goes straight to the customer; an order id or Discord id
/// is resolved to the customers it belongs to.
pub async fn home(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Query(search): Query<SearchQuery>,
    viewer: Result<Viewer, AppError>,
) -> Result<Response, AppError> {
    staff(&state, viewer).await?;
    let q = search.q.trim().to_owned();
    if let Ok(email) = Email::parse(&q) {
        return Ok(
            Redirect::to(&format!("/admin/customers/{}", urlencode(email.as_str())))
                .into_response(),
        );
    }
    let client = state.appwrite();
    let mut results = Vec::new();
    if !q.is_empty() && q.len() <= 64 {
        let by_order = state
            .appwrite()
            .documents(DATABASE_ID, "subscriptions")
            .list::<Subscription>(&[Q::equal("sellapp_order_id", q.as_str()), Q::limit(25)])
            .await?;
        results.extend(by_order.documents.into_iter().map(|d| d.data.email));
        let links = client.documents(DATABASE_ID, "discord_links");
        let id_q = [Q::equal("discord_user_id", q.as_str()), Q::limit(5)];
        let name_q = [Q::equal("discord_username", q.as_str()), Q::limit(25)];
        let (by_id, by_name) = tokio::join!(
            links.list::<serde_json::Value>(&id_q),
            links.list::<serde_json::Value>(&name_q),
        );
        for link in by_id?.documents.into_iter().chain(by_name?.documents) {
            if let Ok(user) = client.users().get(&link.id).await {
                results.push(user.email);
            }
        }
        results.sort();
        results.dedup();
    }
    let subs = client.documents(DATABASE_ID, "subscriptions");
    let audit = client.documents(DATABASE_ID, "audit_log");
    let teams = client.teams();
    let links = client.documents(DATABASE_ID, "discord_links");
    let active_q = [Q::equal("status", "active"), Q::limit(1)];
    let audit_q = [Q::order_desc("at"), Q::limit(20)];
    let links_q = [Q::limit(1)];
    let day_ago = g3_appwrite::format_datetime(OffsetDateTime::now_utc() - time::Duration::DAY);
    let drift_q = [
        Q::equal("action", "role.drift_repaired"),
        Q::greater_than("at", day_ago.as_str()),
        Q::limit(1),
    ];
    let (active, paid, failures, activity, linked, drift, failing_roles) = tokio::join!(
        subs.list::<serde_json::Value>(&active_q),
        teams.get(TEAM_PAID),
        state.access().list_failures(false),
        audit.list::<AuditEntry>(&audit_q),
        links.list::<serde_json::Value>(&links_q),
        audit.list::<serde_json::Value>(&drift_q),
        state.access().failing_role_syncs(1),
    );
    let failures = failures?;
    let page = AdminHome {
        layout: Layout::new("Admin", &csrf.0, true),
        active_subscriptions: active?.total,
        paid_members: paid?.total,
        linked: linked?.total,
        drift_repaired: drift?.total,
        open_failures: failures.len() as u64,
        failing_roles: failing_roles?.0,
        failures: failures
            .iter()
            .take(20)
            .map(|d| FailureRow::of(&d.id, &d.data))
            .collect(),
        activity: activity?
            .documents
            .iter()
            .map(|d| AuditRow::from(&d.data))
            .collect(),
        searched: !q.is_empty(),
        query: q,
        results: results
            .into_iter()
            .map(|e| {
                let h = urlencode(&e);
                (e, h)
            })
            .collect(),
    };
    Ok(Html(page.render()?).into_response())
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    pub(super) notice: Option<String>,
}

pub async fn customer(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Path(raw_email): Path<String>,
    Query(notice): Query<NoticeQuery>,
    viewer: Result<Viewer, AppError>,
) -> Result<Response, AppError> {
    staff(&state, viewer).await?;
    let client = state.appwrite();
    let Ok(email) = Email::parse(&raw_email) else {
        // Audit entries name users by id: resolve those to their page.
        return match client.users().get(&raw_email).await {
            Ok(u) => Ok(
                Redirect::to(&format!("/admin/customers/{}", urlencode(&u.email))).into_response(),
            ),
            Err(e) if e.is_not_found() || e.status() == Some(400) => Err(AppError::NotFound),
            Err(e) => Err(e.into()),
        };
    };
    let user = client.users().find_by_email(email.as_str()).await?;
    let access = state.access();
    let subs = access.subscriptions_of(&email).await?;
    let (discord, roles, teams) = match &user {
        Some(u) => {
            let links = client.documents(DATABASE_ID, "discord_links");
            let users = client.users();
            let (link, roles, memberships) = tokio::join!(
                links.get_optional::<DiscordLink>(&u.id),
                access.role_states(&u.id),
                users.list_memberships(&u.id),
            );
            let teams: Vec<String> = memberships?
                .memberships
                .into_iter()
                .filter(|m| m.confirm)
                .map(|m| m.team_id)
                .collect();
            (link?.map(|d| d.data), roles?, teams)
        }
        None => (None, Vec::new(), Vec::new()),
    };
    // From what is already read here, exactly as g3-access decides it for the bot.
    let roles_why = match &user {
        Some(u) => {
            access
                .desired_from(
                    u.email_verification,
                    discord.as_ref().map(|l| l.discord_user_id.clone()),
                    subs.iter().map(|d| &d.data),
                )
                .why
        }
        None => "no account".into(),
    };
    let paid = teams.iter().any(|t| t == TEAM_PAID);
    let staff_member = teams.iter().any(|t| t == TEAM_STAFF);
    let now = OffsetDateTime::now_utc();
    let subscriptions = subs
        .iter()
        .map(|d| {
            let s = &d.data;
            SubRow {
                plan: s.plan.clone(),
                status: format!("{:?}", s.status).to_lowercase(),
                grants: s.grants_access(now),
                order: s.sellapp_order_id.clone().unwrap_or_default(),
                subscription: s.sellapp_subscription_id.clone().unwrap_or_default(),
                period_end: when(s.period_end),
                reason: s.reason.clone().unwrap_or_default(),
                history: s
                    .history()
                    .iter()
                    .rev()
                    .map(|h| {
                        (
                            when(Some(h.at)),
                            format!("{:?}", h.status).to_lowercase(),
                            format!("{} ({})", h.detail, h.cause),
                        )
                    })
                    .collect(),
            }
        })
        .collect();
    let (events_c, failures_c, audit_c) = (
        client.documents(DATABASE_ID, "webhook_events"),
        client.documents(DATABASE_ID, "webhook_failures"),
        client.documents(DATABASE_ID, "audit_log"),
    );
    let events_q = [
        Q::equal("email", email.as_str()),
        Q::order_desc("received_at"),
        Q::limit(20),
    ];
    let failures_q = [Q::equal("email", email.as_str()), Q::limit(20)];
    let mut targets = vec![email.to_string()];
    if let Some(u) = &user {
        targets.push(u.id.clone());
        if let Some(l) = &discord {
            targets.push(l.discord_user_id.clone());
        }
    }
    let audit_q = [
        Q::equal("target", targets),
        Q::order_desc("at"),
        Q::limit(30),
    ];
    let (events, failures, audit) = tokio::join!(
        events_c.list::<WebhookEvent>(&events_q),
        failures_c.list::<WebhookFailure>(&failures_q),
        audit_c.list::<AuditEntry>(&audit_q)
    );
    let page = AdminCustomer {
        layout: Layout::new(&format!("Admin · {email}"), &csrf.0, true),
        email: email.to_string(),
        email_href: urlencode(email.as_str()),
        notice: notice.notice.map(|n| n.chars().take(300).collect()),
        verified: user.as_ref().is_some_and(|u| u.email_verification),
        blocked: user.as_ref().is_some_and(|u| !u.status),
        user_id: user.map(|u| u.id),
        paid,
        staff: staff_member,
        discord: discord.map(|l| LinkView {
            discord_user_id: l.discord_user_id,
            discord_username: l.discord_username.unwrap_or_default(),
            linked_at: when(Some(l.linked_at)),
        }),
        roles_managed: !access.managed_roles().is_empty(),
        roles_why,
        roles: roles
            .iter()
            .map(|d| {
                let r = &d.data;
                RoleRow {
                    role_id: r.role_id.clone(),
                    desired: r.desired,
                    applied: match r.applied {
                        Some(true) => "yes",
                        Some(false) => "no",
                        None => "unknown",
                    },
                    applied_to: r.applied_discord_user_id.clone().unwrap_or_default(),
                    applied_at: when(r.applied_at),
                    attempts: r.attempts.unwrap_or(0),
                    next_retry: when(r.next_retry_at),
                    error: r.last_error.clone().unwrap_or_default(),
                }
            })
            .collect(),
        subscriptions,
        events: events?
            .documents
            .iter()
            .map(|d| EventRow {
                at: when(Some(d.data.received_at)),
                event: d.data.event.clone(),
                order: d.data.order_id.clone().unwrap_or_default(),
                status: format!("{:?}", d.data.status).to_lowercase(),
                detail: d.data.detail.clone().unwrap_or_default(),
            })
            .collect(),
        failures: failures?
            .documents
            .iter()
            .map(|d| FailureRow::of(&d.id, &d.data))
            .collect(),
        audit: audit?
            .documents
            .iter()
            .map(|d| AuditRow::from(&d.data))
            .collect(),
    };
    Ok(Html(page.render()?).into_response())
}

#[derive(Deserialize)]
pub struct ChangeForm {
    action: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    reason: String,
}

pub(super) fn back(email: &str, notice: &str) -> Response {
    Redirect::to(&format!(
        "/admin/customers/{}?notice={}",
        urlencode(email),
        urlencode(notice)
    ))
    .into_response()
}

/// Grant or revoke, with a reason (required: the audit log must say why).
pub async fn change(
    State(state): State<AppState>,
    Path(raw_email): Path<String>,
    viewer: Result<Viewer, AppError>,
    Form(form): Form<ChangeForm>,
) -> Result<Response, AppError> {
    let Staff(admin) = staff(&state, viewer).await?;
    let email = Email::parse(&raw_email).map_err(|_| AppError::NotFound)?;
    let reason = form.reason.trim();
    let reason = match (reason.is_empty(), form.action.as_str()) {
        (true, "resync") => "forced from /admin",
        _ => reason,
    };
    if reason.is_empty() {
        return Ok(back(
            email.as_str(),
            "Nothing changed: give a reason, it goes into the audit log.",
        ));
    }
    let cause = Cause::Admin {
        actor: format!("staff:{}", admin.user.email),
        reason: reason.chars().take(200).collect(),
    };
    let plan = form.plan.trim();
    let plan = if plan.is_empty() {
        None
    } else {
        match Plan::parse(plan) {
            Ok(p) => Some(p),
            Err(e) => return Ok(back(email.as_str(), &format!("Nothing changed: {e}"))),
        }
    };
    let notice = match form.action.as_str() {
        "resync" | "unlink" => {
            let Some(user) = state
                .appwrite()
                .users()
                .find_by_email(email.as_str())
                .await?
            else {
                return Ok(back(
                    email.as_str(),
                    "Nothing changed: they have no account.",
                ));
            };
            if form.action == "resync" {
                failures::resync_user(&state, &user.id, &admin.user.email, reason).await?
            } else {
                let actor = format!("staff:{}", admin.user.email);
                match state
                    .access()
                    .unlink_discord(&user.id, &actor, reason)
                    .await?
                {
                    Some(l) => format!(
                        "Unlinked Discord {}; the bot takes the managed roles back.",
                        l.discord_user_id
                    ),
                    None => "Nothing changed: no Discord account is linked.".into(),
                }
            }
        }
        "grant" => {
            let Some(plan) = plan else {
                return Ok(back(
                    email.as_str(),
                    "Nothing changed: a grant needs a plan.",
                ));
            };
            let until = match form.until.trim() {
                "" => None,
                raw => match time::Date::parse(
                    raw,
                    time::macros::format_description!("[year]-[month]-[day]"),
                ) {
                    Ok(d) if d > now_date() => {
                        Some(d.with_time(time::macros::time!(23:59:59)).assume_utc())
                    }
                    Ok(_) => {
                        return Ok(back(
                            email.as_str(),
                            "Nothing changed: the end date is in the past.",
                        ));
                    }
                    Err(_) => {
                        return Ok(back(
                            email.as_str(),
                            "Nothing changed: the end date must look like 2026-12-31.",
                        ));
                    }
                },
            };
            format!(
                "Granted: {}",
                state.access().grant(&email, &plan, until, &cause).await?
            )
        }
        "revoke" => {
            let ended = state.access().revoke(&email, plan.as_ref(), &cause).await?;
            if ended.is_empty() {
                "No active plan to revoke; membership checked.".into()
            } else {
                format!("Revoked: {}", ended.join("; "))
            }
        }
        _ => return Err(AppError::NotFound),
    };
    Ok(back(email.as_str(), &notice))
}

fn now_date() -> time::Date {
    OffsetDateTime::now_utc().date()
}

pub(super) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
