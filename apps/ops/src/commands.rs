//! The admin commands behind the CLI. Every change goes through `g3-access`, which writes the
//! audit log; lookups read only.

use std::fmt::Write as _;

use anyhow::Context as _;
use g3_access::{Access, Cause, Outcome, RetryOutcome, customer::CustomerView};
use g3_appwrite::Query;
use g3_core::{Email, Snowflake, plans::Plan};
use g3_store::{
    Collection,
    models::Route,
    schema::{TEAM_PAID, TEAM_STAFF},
};
use time::OffsetDateTime;

fn when(t: Option<OffsetDateTime>) -> String {
    t.map(g3_appwrite::format_datetime)
        .unwrap_or_else(|| "-".into())
}

/// `ops grant`; `until` comes from `g3_core::until::parse_until`, which refuses the past.
pub async fn grant(
    access: &Access,
    email: &Email,
    plan: &Plan,
    until: Option<OffsetDateTime>,
    cause: &Cause,
) -> anyhow::Result<String> {
    Ok(format!(
        "granted: {}",
        access.grant(email, plan, until, cause).await?
    ))
}

pub async fn revoke(
    access: &Access,
    email: &Email,
    plan: Option<&Plan>,
    cause: &Cause,
) -> anyhow::Result<String> {
    let ended = access.revoke(email, plan, cause).await?;
    Ok(if ended.is_empty() {
        format!("{email} had no active plan; paid membership checked")
    } else {
        ended
            .iter()
            .map(|l| format!("revoked: {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// Everything about one customer an admin needs to answer a support question.
pub async fn lookup(access: &Access, email: &Email) -> anyhow::Result<String> {
    Ok(render_customer(&access.customer(email).await?))
}

/// `ops lookup`'s text of one [`CustomerView`] (the admin console renders the same view).
pub fn render_customer(view: &CustomerView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "customer {}", view.email);
    match &view.account {
        None => {
            let _ = writeln!(out, "  account      none (never signed up or bought)");
        }
        Some(account) => {
            let _ = writeln!(
                out,
                "  account      {} ({}), email {}, {}",
                account.user_id,
                if account.name.is_empty() {
                    "no name"
                } else {
                    &account.name
                },
                if account.verified {
                    "verified"
                } else {
                    "NOT verified"
                },
                if account.active { "active" } else { "BLOCKED" }
            );
            for (team, member) in [(TEAM_PAID, account.paid), (TEAM_STAFF, account.staff)] {
                let _ = writeln!(
                    out,
                    "  team {team:<7} {}",
                    if member { "member" } else { "-" }
                );
            }
            if !account.labels.is_empty() {
                let _ = writeln!(out, "  labels       {}", account.labels.join(", "));
            }
            discord_section(view, &mut out);
        }
    }
    let sees = &view.entitlements.sees;
    let _ = writeln!(out, "  feed sees    {} ({})", sees.routes, sees.why());
    for (plan, unlocks) in &sees.by_plan {
        let _ = writeln!(out, "    plan {plan:<10} unlocks {unlocks}");
    }
    let _ = writeln!(out, "  subscriptions ({})", view.subscriptions.len());
    for s in &view.subscriptions {
        let _ = writeln!(
            out,
            "    {:<10} {:?}{} order {} subscription {} period end {}",
            s.plan,
            s.status,
            if s.grants_access(view.at) {
                " (grants access)"
            } else {
                ""
            },
            s.sellapp_order_id.as_deref().unwrap_or("-"),
            s.sellapp_subscription_id.as_deref().unwrap_or("-"),
            when(s.period_end)
        );
        if let Some(reason) = &s.reason {
            let _ = writeln!(out, "               reason: {reason}");
        }
        for h in s.history() {
            let _ = writeln!(
                out,
                "      {} {:?} {} ({})",
                g3_appwrite::format_datetime(h.at),
                h.status,
                h.detail,
                h.cause
            );
        }
    }
    let events = &view.events;
    let _ = writeln!(
        out,
        "  webhook events (latest {} of {})",
        events.items.len(),
        events.total
    );
    for e in &events.items {
        let _ = writeln!(
            out,
            "    {} {:<24} order {:<10} {:?} {}",
            g3_appwrite::format_datetime(e.received_at),
            e.event,
            e.order_id.as_deref().unwrap_or("-"),
            e.status,
            e.detail.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(out, "  webhook failures ({})", view.failures.total);
    for f in &view.failures.items {
        let _ = writeln!(
            out,
            "    {} {:?} {}",
            f.id,
            f.data.state,
            f.data.error.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(out, "  audit (latest {})", view.audit.len());
    for a in &view.audit {
        let _ = writeln!(
            out,
            "    {} {:<22} {:<24} {} {}",
            g3_appwrite::format_datetime(a.at),
            a.action,
            a.actor,
            a.target.as_deref().unwrap_or("-"),
            a.detail.as_deref().unwrap_or("")
        );
    }
    out
}

/// The Discord part of `lookup`: link, why they should (not) hold roles, desired vs applied.
fn discord_section(view: &CustomerView, out: &mut String) {
    match &view.link {
        Some(l) => {
            let _ = writeln!(
                out,
                "  discord      {} ({}), linked {}",
                l.discord_user_id,
                l.discord_username.as_deref().unwrap_or("no name"),
                g3_appwrite::format_datetime(l.linked_at)
            );
        }
        None => {
            let _ = writeln!(out, "  discord      not linked");
        }
    }
    if !view.roles_managed {
        let _ = writeln!(out, "  roles        not managed here (PLAN_ROLES is empty)");
        return;
    }
    let desired = &view.entitlements.roles;
    let _ = writeln!(
        out,
        "  roles        should hold [{}]: {}",
        desired.roles.join(", "),
        desired.why
    );
    for r in &view.roles {
        let applied = match r.applied {
            Some(true) => "held",
            Some(false) => "not held",
            None => "unchecked",
        };
        let _ = writeln!(
            out,
            "    role {:<20} desired {:<5} {applied:<9} on {} checked {} tries {}{}",
            r.role_id,
            r.desired,
            r.applied_discord_user_id.as_deref().unwrap_or("-"),
            when(r.applied_at),
            r.attempts.unwrap_or(0),
            r.last_error
                .as_deref()
                .map(|e| format!(" last error: {e}"))
                .unwrap_or_default()
        );
    }
}

/// The customer's Appwrite account, or a clear error.
async fn account(access: &Access, email: &Email) -> anyhow::Result<g3_appwrite::User> {
    access
        .client()
        .users()
        .find_by_email(email.as_str())
        .await?
        .with_context(|| format!("no account for {email}"))
}

/// `ops roles resync`: recompute desired roles and have the bot check Discord again, for one
/// customer or everyone linked, printing progress.
pub async fn roles_resync(
    access: &Access,
    email: Option<&Email>,
    actor: &str,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<String> {
    anyhow::ensure!(
        !access.managed_roles().is_empty(),
        "PLAN_ROLES is empty: no Discord roles are managed, nothing to resync"
    );
    let users: Vec<String> = match email {
        Some(email) => vec![account(access, email).await?.id],
        None => access
            .all_links()
            .await?
            .into_iter()
            .map(|l| l.id)
            .collect(),
    };
    let total = users.len();
    let mut failed = 0;
    for (i, user) in users.iter().enumerate() {
        match access.force_resync(user, actor, "ops roles resync").await {
            Ok(roles) => progress(&format!(
                "[{}/{total}] {user}: should hold [{}]",
                i + 1,
                roles.join(", ")
            )),
            Err(e) => {
                failed += 1;
                progress(&format!("[{}/{total}] {user}: FAILED: {e}", i + 1));
            }
        }
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} of {total} resync(s) failed (see above)"
    );
    Ok(format!(
        "{total} customer(s) queued for a role check; the bot applies the changes"
    ))
}

/// `ops link show`: the Discord link of a customer (by email) or the customer of a Discord id.
pub async fn link_show(
    access: &Access,
    email: Option<&Email>,
    discord_id: Option<&str>,
) -> anyhow::Result<String> {
    let client = access.client();
    let user = match (email, discord_id) {
        (Some(email), _) => client.users().find_by_email(email.as_str()).await?,
        (None, Some(id)) => match access.user_for_discord(id).await? {
            Some(user_id) => Some(client.users().get(&user_id).await?),
            None => return Ok(format!("Discord account {id} is not linked to anyone")),
        },
        (None, None) => anyhow::bail!("give --email or --discord-id"),
    };
    let Some(user) = user else {
        return Ok(format!(
            "no account for {}",
            email.map(Email::as_str).unwrap_or("-")
        ));
    };
    Ok(match access.discord_link(&user.id).await? {
        Some(l) => format!(
            "{} ({}) is linked to Discord {} ({}) since {}",
            user.email,
            user.id,
            l.discord_user_id,
            l.discord_username.as_deref().unwrap_or("no name"),
            g3_appwrite::format_datetime(l.linked_at)
        ),
        None => format!("{} ({}) has no Discord link", user.email, user.id),
    })
}

/// `ops link remove`: unlinks (audited); the bot then takes the managed roles back.
pub async fn link_remove(
    access: &Access,
    email: &Email,
    actor: &str,
    reason: &str,
) -> anyhow::Result<String> {
    let user = account(access, email).await?;
    Ok(
        match access.unlink_discord(&user.id, actor, reason).await? {
            Some(l) => format!(
                "unlinked {email} from Discord {}; the bot removes the managed roles",
                l.discord_user_id
            ),
            None => format!("{email} has no Discord link: nothing to do"),
        },
    )
}

pub async fn failures_list(access: &Access, include_resolved: bool) -> anyhow::Result<String> {
    let list = access.list_failures(include_resolved).await?;
    if list.is_empty() {
        return Ok(if include_resolved {
            "no failures recorded"
        } else {
            "no open failures"
        }
        .into());
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<32}  {:<9} {:>3}  {:<22} {:<28} error",
        "id", "state", "try", "event", "email"
    );
    for d in list {
        let f = &d.data;
        let _ = writeln!(
            out,
            "{:<32}  {:<9} {:>3}  {:<22} {:<28} {}",
            d.id,
            format!("{:?}", f.state).to_lowercase(),
            f.attempts.unwrap_or(0),
            f.event.as_deref().unwrap_or("-"),
            f.email.as_deref().unwrap_or("-"),
            f.error
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        );
    }
    Ok(out)
}

pub async fn failures_show(access: &Access, id: &str) -> anyhow::Result<String> {
    let doc = access
        .get_failure(id)
        .await?
        .with_context(|| format!("no failure with id {id}"))?;
    let f = doc.data;
    let mut out = String::new();
    let _ = writeln!(out, "failure {}", doc.id);
    let _ = writeln!(out, "  delivery     {}", f.event_id);
    let _ = writeln!(out, "  event        {}", f.event.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "  email        {}", f.email.as_deref().unwrap_or("-"));
    let _ = writeln!(
        out,
        "  state        {:?}, {} attempt(s), next retry {}",
        f.state,
        f.attempts.unwrap_or(0),
        when(f.next_retry_at)
    );
    let _ = writeln!(
        out,
        "  first seen   {}",
        g3_appwrite::format_datetime(doc.created_at)
    );
    let _ = writeln!(out, "  error        {}", f.error.as_deref().unwrap_or("-"));
    let _ = writeln!(
        out,
        "  headers      {}",
        f.headers.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        out,
        "  payload      {}",
        f.payload.as_deref().unwrap_or("-")
    );
    Ok(out)
}

/// Retries one failure, or every open one (`ids` empty and `all`), whatever its schedule.
pub async fn failures_retry(
    access: &Access,
    id: Option<&str>,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<String> {
    let ids: Vec<String> = match id {
        Some(id) => vec![id.to_owned()],
        None => access
            .list_failures(false)
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect(),
    };
    let (mut resolved, mut failed) = (0, 0);
    for (n, id) in ids.iter().enumerate() {
        match access.retry_failure(id).await? {
            RetryOutcome::Resolved(outcome) => {
                resolved += 1;
                let what = match outcome {
                    Outcome::Applied(d) => d,
                    Outcome::Ignored => "ignored".into(),
                    Outcome::Duplicate => "already applied".into(),
                };
                progress(&format!(
                    "[{}/{}] {id}: resolved ({what})",
                    n + 1,
                    ids.len()
                ));
            }
            RetryOutcome::FailedAgain(message) => {
                failed += 1;
                progress(&format!(
                    "[{}/{}] {id}: still failing: {message}",
                    n + 1,
                    ids.len()
                ));
            }
        }
    }
    Ok(format!("{resolved} resolved, {failed} still failing"))
}

/// Adds or replaces a route: which source channel feeds it, its display name and the customer
/// channels the bot mirrors it to.
pub async fn routes_add(
    client: &g3_appwrite::Client,
    key: &str,
    route: &Route,
) -> anyhow::Result<String> {
    g3_appwrite::Id::from(key)
        .validate()
        .with_context(|| format!("route key {key:?}"))?;
    for id in std::iter::once(&route.source_channel_id).chain(&route.customer_channel_ids) {
        anyhow::ensure!(
            Snowflake::is_valid(id),
            "`{id}` is not a Discord channel id (a snowflake: digits only)"
        );
    }
    Collection::<Route>::new(client)
        .upsert(key, route, None)
        .await
        .map_err(|e| {
            if e.is_conflict() {
                anyhow::anyhow!(
                    "channel {} already feeds another route",
                    route.source_channel_id
                )
            } else {
                e.into()
            }
        })?;
    Ok(format!(
        "route {key} ({}): source channel {} -> customer channels [{}]",
        route.name,
        route.source_channel_id,
        route.customer_channel_ids.join(", ")
    ))
}

pub async fn routes_list(client: &g3_appwrite::Client) -> anyhow::Result<String> {
    let routes = Collection::<Route>::new(client).list_all(&[], 100).await?;
    if routes.is_empty() {
        return Ok(
            "no routes: messages from every channel are dropped (add one with `ops routes add`)"
                .into(),
        );
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:<24} {:<21} {:<8} customer channels",
        "key", "name", "source channel", "enabled"
    );
    for r in routes {
        let _ = writeln!(
            out,
            "{:<20} {:<24} {:<21} {:<8} {}",
            r.id,
            r.data.name,
            r.data.source_channel_id,
            if r.data.enabled == Some(false) {
                "no"
            } else {
                "yes"
            },
            r.data.customer_channel_ids.join(", ")
        );
    }
    Ok(out)
}

pub async fn routes_remove(client: &g3_appwrite::Client, key: &str) -> anyhow::Result<String> {
    let removed = Collection::<Route>::new(client)
        .delete_if_exists(key)
        .await?;
    Ok(if removed {
        format!(
            "route {key} removed; its channel's messages are dropped from now on (stored signals stay)"
        )
    } else {
        format!("no route {key}")
    })
}

// ---- staff and service users ----------------------------------------------------------------

/// Puts an existing account in team `staff` (the admin console; audited). Customers make their
/// account by signing up on the dashboard; services get theirs from [`service_user_create`].
pub async fn staff_add(access: &Access, email: &Email, cause: &Cause) -> anyhow::Result<String> {
    let client = access.client();
    let user = client
        .users()
        .find_by_email(email.as_str())
        .await?
        .with_context(|| {
            format!(
                "no account for {email}: they sign up on the dashboard first \
                 (a service gets one with `ops service-user create`)"
            )
        })?;
    let added = client
        .teams()
        .add_member_if_absent(TEAM_STAFF, &user.id, &["admin"])
        .await?;
    if matches!(added, g3_appwrite::Upserted::Existed(_)) {
        return Ok(format!("{email} is already staff: nothing changed"));
    }
    access
        .audit(cause, "staff.added", email.as_str(), "joined team staff")
        .await?;
    Ok(format!("{email} is now staff (admin console at /admin)"))
}

/// Takes an account out of team `staff` (audited).
pub async fn staff_remove(access: &Access, email: &Email, cause: &Cause) -> anyhow::Result<String> {
    let client = access.client();
    let Some(user) = client.users().find_by_email(email.as_str()).await? else {
        anyhow::bail!("no account for {email}");
    };
    if !client
        .teams()
        .remove_member_if_present(TEAM_STAFF, &user.id)
        .await?
    {
        return Ok(format!("{email} is not staff: nothing changed"));
    }
    access
        .audit(cause, "staff.removed", email.as_str(), "left team staff")
        .await?;
    Ok(format!("{email} is no longer staff"))
}

/// Every member of team `staff`, with their roles (`service` marks service users).
pub async fn staff_list(client: &g3_appwrite::Client) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut cursor: Option<String> = None;
    let mut n = 0;
    loop {
        let mut queries = vec![Query::limit(100)];
        if let Some(c) = &cursor {
            queries.push(Query::cursor_after(c));
        }
        let page = client
            .teams()
            .list_memberships(TEAM_STAFF, &queries)
            .await?;
        for m in &page.memberships {
            let _ = writeln!(out, "{:<40} {}", m.user_email, m.roles.join(","));
            n += 1;
        }
        match page.memberships.last() {
            Some(last) if page.memberships.len() == 100 => cursor = Some(last.id.clone()),
            _ => break,
        }
    }
    let _ = write!(out, "{n} staff member(s)");
    Ok(out)
}

/// A service user (web's live feed and the bot sign in as one for Realtime, which takes no API
/// keys): the account is created if absent, its password set, its email marked verified, and
/// it joins teams `staff` and `paid` with role `service` (see [`g3_access::enlist_service_user`]). Re-running sets the password again (rotation).
pub async fn service_user_create(
    access: &Access,
    email: &Email,
    password: &str,
    cause: &Cause,
) -> anyhow::Result<String> {
    anyhow::ensure!(
        password.chars().count() >= 12,
        "a service user's password needs at least 12 characters"
    );
    let client = access.client();
    let users = client.users();
    let (user, created) = match users.find_by_email(email.as_str()).await? {
        Some(user) => (user, false),
        None => {
            let name = email.as_str().split('@').next().unwrap_or("service");
            match users
                .create(
                    g3_appwrite::Id::unique(),
                    email.as_str(),
                    Some(password),
                    Some(name),
                )
                .await
            {
                Ok(user) => (user, true),
                Err(e) if e.is_conflict() => (
                    users
                        .find_by_email(email.as_str())
                        .await?
                        .context("the account was created concurrently but cannot be read")?,
                    false,
                ),
                Err(e) => return Err(e.into()),
            }
        }
    };
    if !created {
        users.update_password(&user.id, password).await?;
    }
    if !user.email_verification {
        users.update_email_verification(&user.id, true).await?;
    }
    g3_access::enlist_service_user(client, &user.id).await?;
    let what = if created { "created" } else { "password set" };
    access
        .audit(cause, "service_user.saved", email.as_str(), what)
        .await?;
    Ok(format!(
        "service user {email}: {what}, email verified, member of teams staff and paid (role service)"
    ))
}

/// A random password for a service user: 32 letters and digits (about 190 bits).
pub fn generate_password() -> String {
    use rand::{Rng as _, distr::Alphanumeric};
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}
