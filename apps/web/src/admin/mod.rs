//! The admin console (`/admin`, staff only): find customers by the start of an email, Sell.app
//! order id, Discord name or id; see their whole state (account, subscriptions, Discord link,
//! desired vs applied roles, webhook events and failures, audit trail); grant or revoke with a
//! reason, force a role resync, unlink Discord, retry failures ([`failures`]). Everyone who is
//! not staff gets a plain 404: the console does not admit it exists. The customer page renders
//! `g3-access`'s `CustomerView` (as `ops lookup` does); every change goes through `g3-access`,
//! which writes the audit log. Plans and Discord roles are shown by the names the plan
//! configuration gives them ([`plan_name`], [`role_name`]); grants pick a configured plan
//! ([`plan_choices`]) and the server refuses any other.

pub mod failures;

use askama::Template;
use axum::{
    Extension, Form,
    extract::{Path, Query, State},
    response::{Html, IntoResponse, Redirect, Response},
};
use g3_access::{
    Cause, SERVICE_ROLE,
    customer::{CustomerView, Match, Search},
};
use g3_appwrite::Query as Q;
use g3_core::{
    Email,
    entitlements::PlanConfig,
    plans::Plan,
    until::{UntilError, parse_until},
};
use g3_store::{
    Collection,
    models::{AuditEntry, DiscordLink, Subscription, WebhookEvent, WebhookFailure},
    schema::{TEAM_PAID, TEAM_STAFF},
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

/// The display name of plan `key` (the key itself when the configuration names none).
pub(super) fn plan_name(config: &PlanConfig, key: &str) -> String {
    config.name_of(key).to_owned()
}

/// What staff call Discord role `role_id`: after the plan(s) whose roles include it, e.g.
/// "VIP role" ("VIP role 2" when the plan gives several); "Unknown role" when no configured
/// plan gives it (any more).
pub(super) fn role_name(config: &PlanConfig, role_id: &str) -> String {
    let roles = config.roles();
    let names: Vec<String> = roles
        .plans()
        .filter_map(|plan| {
            let given = roles.roles_for([plan.as_str()]);
            let i = given.iter().position(|r| *r == role_id)?;
            let name = config.name_of(plan.as_str());
            Some(if given.len() > 1 {
                format!("{name} role {}", i + 1)
            } else {
                format!("{name} role")
            })
        })
        .collect();
    if names.is_empty() {
        "Unknown role".into()
    } else {
        names.join(" / ")
    }
}

/// A plan staff can pick: its key (the form value) and display name.
pub struct PlanChoice {
    pub key: String,
    pub name: String,
}

/// The plans staff may grant: the described plans in file order, then any other plan the
/// Sell.app products or Discord roles name (without a plans file those are all there is).
pub(super) fn plan_choices(config: &PlanConfig) -> Vec<PlanChoice> {
    let mut keys: Vec<&str> = config.plans().iter().map(|p| p.plan.as_str()).collect();
    let mut others: Vec<&str> = config
        .catalog()
        .plans()
        .into_iter()
        .chain(config.roles().plans())
        .map(Plan::as_str)
        .filter(|k| !keys.contains(k))
        .collect();
    others.sort_unstable();
    others.dedup();
    keys.extend(others);
    keys.into_iter()
        .map(|key| PlanChoice {
            key: key.to_owned(),
            name: config.name_of(key).to_owned(),
        })
        .collect()
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
    pub results: Vec<ResultRow>,
    /// Some lookup had more matches than are listed.
    pub more: bool,
    /// The search is an email nobody has exactly, though others start with it: its own page
    /// (to grant a plan to a new customer), as (email, link segment).
    pub exact: Option<(String, String)>,
    pub searched: bool,
}

/// One customer a search found.
pub struct ResultRow {
    pub email: String,
    pub email_href: String,
    /// What matched, e.g. "order 777001 · Discord moon_trader" (empty for the email alone).
    pub matched: String,
}

impl ResultRow {
    fn rows(search: &Search) -> Vec<Self> {
        search
            .found
            .iter()
            .map(|f| Self {
                email_href: urlencode(&f.email),
                email: f.email.clone(),
                matched: f
                    .by
                    .iter()
                    .filter(|m| **m != Match::Email)
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" · "),
            })
            .collect()
    }
}

pub struct SubRow {
    pub plan: String,
    pub plan_name: String,
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
    pub role_name: String,
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
    /// What the feed shows them ("every route", the route keys, or "nothing"), and why.
    pub sees: String,
    pub sees_why: String,
    /// Each active plan (name, key) and the routes it unlocks.
    pub sees_by_plan: Vec<(String, String, String)>,
    pub roles: Vec<RoleRow>,
    pub subscriptions: Vec<SubRow>,
    pub events: Vec<EventRow>,
    pub failures: Vec<FailureRow>,
    pub audit: Vec<AuditRow>,
    /// The plans a grant may pick.
    pub plan_choices: Vec<PlanChoice>,
    /// The plans a revoke may pick: the active ones (and "every active plan").
    pub active_plans: Vec<PlanChoice>,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// Dashboard and search: the start of an email, order id, Discord name or id lists the
/// customers it matches. A whole email goes straight to that customer (a new one too, to grant
/// them a plan) unless only others start with it.
pub async fn home(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Query(search): Query<SearchQuery>,
    viewer: Result<Viewer, AppError>,
) -> Result<Response, AppError> {
    staff(&state, viewer).await?;
    let q = search.q.trim().to_owned();
    let client = state.appwrite();
    let access = state.access();
    let results = access.find_customers(&q).await?;
    let mut exact = None;
    if let Ok(email) = Email::parse(&q) {
        let href = urlencode(email.as_str());
        if results.found.is_empty() || results.found.iter().any(|f| f.email == email.as_str()) {
            return Ok(Redirect::to(&format!("/admin/customers/{href}")).into_response());
        }
        exact = Some((email.to_string(), href));
    }
    let subs = Collection::<Subscription>::new(client);
    let audit = Collection::<AuditEntry>::new(client);
    let links = Collection::<DiscordLink>::new(client);
    let teams = client.teams();
    let active_q = [Q::equal("status", "active"), Q::limit(1)];
    let audit_q = [Q::order_desc("at"), Q::limit(20)];
    let links_q = [Q::limit(1)];
    let day_ago = g3_appwrite::format_datetime(OffsetDateTime::now_utc() - time::Duration::DAY);
    let drift_q = [
        Q::equal("action", "role.drift_repaired"),
        Q::greater_than("at", day_ago.as_str()),
        Q::limit(1),
    ];
    let staff_q = [Q::limit(100)];
    let (active, paid, staff, failures, activity, linked, drift, failing_roles) = tokio::join!(
        subs.list(&active_q),
        teams.get(TEAM_PAID),
        // Service users are in `paid` too (to hear its membership changes): not customers.
        teams.list_memberships(TEAM_STAFF, &staff_q),
        access.list_failures(false),
        audit.list(&audit_q),
        links.list(&links_q),
        audit.list(&drift_q),
        access.failing_role_syncs(1),
    );
    let failures = failures?;
    let page = AdminHome {
        layout: Layout::new("Admin", &csrf.0, true).staff(true),
        active_subscriptions: active?.total,
        paid_members: paid?.total.saturating_sub(
            staff?
                .memberships
                .iter()
                .filter(|m| m.roles.iter().any(|r| r == SERVICE_ROLE))
                .count() as u64,
        ),
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
        results: ResultRow::rows(&results),
        more: results.more,
        exact,
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
    let access = state.access();
    let Ok(email) = Email::parse(&raw_email) else {
        // Audit entries name users by id: resolve those to their page.
        return match access.customer_email(&raw_email).await? {
            Some(email) => Ok(
                Redirect::to(&format!("/admin/customers/{}", urlencode(&email))).into_response(),
            ),
            None => Err(AppError::NotFound),
        };
    };
    let view = access.customer(&email).await?;
    let layout = Layout::new(&format!("Admin · {email}"), &csrf.0, true).staff(true);
    let notice = notice.notice.map(|n| n.chars().take(300).collect());
    let page = AdminCustomer::new(layout, notice, view, state.plans());
    Ok(Html(page.render()?).into_response())
}

impl AdminCustomer {
    /// The page of one customer, from their [`CustomerView`].
    fn new(
        layout: Layout,
        notice: Option<String>,
        view: CustomerView,
        config: &PlanConfig,
    ) -> Self {
        let CustomerView {
            email,
            at,
            account,
            subscriptions,
            entitlements,
            link,
            roles_managed,
            roles,
            events,
            failures,
            audit,
        } = view;
        Self {
            layout,
            email_href: urlencode(email.as_str()),
            email: email.to_string(),
            notice,
            user_id: account.as_ref().map(|a| a.user_id.clone()),
            verified: account.as_ref().is_some_and(|a| a.verified),
            blocked: account.as_ref().is_some_and(|a| !a.active),
            paid: account.as_ref().is_some_and(|a| a.paid),
            staff: account.as_ref().is_some_and(|a| a.staff),
            discord: link.map(|l| LinkView {
                discord_user_id: l.discord_user_id,
                discord_username: l.discord_username.unwrap_or_default(),
                linked_at: when(Some(l.linked_at)),
            }),
            roles_managed,
            roles_why: entitlements
                .roles
                .why
                .describe(|plan| plan_name(config, plan)),
            sees: entitlements.sees.routes.to_string(),
            sees_why: entitlements.sees.why_naming(|plan| plan_name(config, plan)),
            sees_by_plan: entitlements
                .sees
                .by_plan
                .iter()
                .map(|(plan, unlocks)| (plan_name(config, plan), plan.clone(), unlocks.to_string()))
                .collect(),
            active_plans: plan_keys_named(&entitlements.active_plans, config),
            plan_choices: plan_choices(config),
            roles: roles
                .iter()
                .map(|r| RoleRow {
                    role_id: r.role_id.clone(),
                    role_name: role_name(config, &r.role_id),
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
                })
                .collect(),
            subscriptions: subscriptions
                .iter()
                .map(|s| SubRow::of(s, at, config))
                .collect(),
            events: events.items.iter().map(EventRow::from).collect(),
            failures: failures
                .items
                .iter()
                .map(|d| FailureRow::of(&d.id, &d.data))
                .collect(),
            audit: audit.iter().map(AuditRow::from).collect(),
        }
    }
}

/// Plan keys with their names, each once, in the order given.
fn plan_keys_named(keys: &[String], config: &PlanConfig) -> Vec<PlanChoice> {
    let mut out: Vec<PlanChoice> = Vec::new();
    for key in keys {
        if !out.iter().any(|p| &p.key == key) {
            out.push(PlanChoice {
                key: key.clone(),
                name: plan_name(config, key),
            });
        }
    }
    out
}

impl SubRow {
    fn of(s: &Subscription, now: OffsetDateTime, config: &PlanConfig) -> Self {
        Self {
            plan: s.plan.clone(),
            plan_name: plan_name(config, &s.plan),
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
    }
}

impl From<&WebhookEvent> for EventRow {
    fn from(e: &WebhookEvent) -> Self {
        Self {
            at: when(Some(e.received_at)),
            event: e.event.clone(),
            order: e.order_id.clone().unwrap_or_default(),
            status: format!("{:?}", e.status).to_lowercase(),
            detail: e.detail.clone().unwrap_or_default(),
        }
    }
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
    // Only a configured plan may be granted; a revoke may also name a plan they hold.
    if let Some(p) = &plan
        && matches!(form.action.as_str(), "grant" | "revoke")
        && !plan_choices(state.plans())
            .iter()
            .any(|c| c.key == p.as_str())
    {
        let held = form.action == "revoke"
            && state
                .access()
                .subscriptions_of(&email)
                .await?
                .iter()
                .any(|s| s.data.plan == p.as_str());
        if !held {
            return Ok(back(
                email.as_str(),
                &format!(
                    "Nothing changed: there is no plan \"{}\" in the plan configuration; \
                     pick one of the listed plans.",
                    p.as_str().chars().take(64).collect::<String>()
                ),
            ));
        }
    }
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
                raw => match parse_until(raw, OffsetDateTime::now_utc()) {
                    Ok(end) => Some(end),
                    Err(UntilError::Past(_)) => {
                        return Ok(back(
                            email.as_str(),
                            "Nothing changed: the end date is in the past.",
                        ));
                    }
                    Err(UntilError::Malformed(_)) => {
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
    // This replica forgets what users may see at once (Realtime tells the others, and this
    // one again, a moment later).
    state.access_cache().forget_all();
    Ok(back(email.as_str(), &notice))
}

pub(super) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
