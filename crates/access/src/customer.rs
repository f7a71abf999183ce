//! One customer as staff see them. [`Access::customer`] reads, in one place, everything `/admin`
//! and `ops lookup` show about an email: account, subscriptions, what they are entitled to now,
//! what they can see in the feed and why, the Discord link, desired vs applied roles, webhook
//! events and failures, and the audit trail.
//! [`Access::find_customers`] turns what staff search by (the start of an email, order id,
//! Discord name or id) into the customers it names.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use g3_appwrite::{Document, DocumentList, Query, User};
use g3_core::{
    Email,
    entitlements::{Entitlement, Unlocks},
};
use g3_store::{
    models::{AuditEntry, DiscordLink, RoleState, Subscription, WebhookEvent, WebhookFailure},
    schema::{TEAM_PAID, TEAM_STAFF},
};
use time::OffsetDateTime;

use crate::{Access, AccessError, DesiredRoles, RolesWhy};

/// How many webhook events, failures and audit entries a view keeps (the newest).
const RECENT_EVENTS: u32 = 20;
const RECENT_FAILURES: u32 = 20;
const RECENT_AUDIT: u32 = 30;
/// How many rows each lookup of a staff search reads at most.
pub const SEARCH_LIMIT: u32 = 20;
/// The longest search text (longer finds nobody).
const SEARCH_MAX_CHARS: usize = 128;

/// What a staff search found: customers by email, and whether there were more to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    pub found: Vec<Found>,
    /// Some lookup had more than [`SEARCH_LIMIT`] matches: type more to narrow it.
    pub more: bool,
}

impl Search {
    /// The emails found, in order.
    pub fn emails(&self) -> Vec<&str> {
        self.found.iter().map(|f| f.email.as_str()).collect()
    }
}

/// One customer a search found, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub email: String,
    /// What matched, each once.
    pub by: Vec<Match>,
}

/// What of a customer a search matched.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Match {
    Email,
    /// A Sell.app order id of theirs.
    Order(String),
    /// Their linked Discord account's name.
    DiscordName(String),
    /// Their linked Discord account's id.
    DiscordId(String),
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Match::Email => f.write_str("email"),
            Match::Order(id) => write!(f, "order {id}"),
            Match::DiscordName(name) => write!(f, "Discord {name}"),
            Match::DiscordId(id) => write!(f, "Discord id {id}"),
        }
    }
}

/// Everything staff need to answer a support question about one customer, read at [`Self::at`].
#[derive(Debug, Clone)]
pub struct CustomerView {
    pub email: Email,
    /// When this was read: the moment "grants access now" refers to.
    pub at: OffsetDateTime,
    /// `None` when they never signed up or bought.
    pub account: Option<Account>,
    /// Every subscription, most recently changed first.
    pub subscriptions: Vec<Subscription>,
    pub entitlements: Entitlements,
    pub link: Option<DiscordLink>,
    /// Whether this service manages Discord roles (`PLAN_ROLES` set).
    pub roles_managed: bool,
    /// `role_state`: per role, what they should hold and what the bot last applied.
    pub roles: Vec<RoleState>,
    /// Deliveries that named this email, newest first.
    pub events: Recent<WebhookEvent>,
    /// Deliveries for this email that could not be applied (by failure id).
    pub failures: Recent<Document<WebhookFailure>>,
    /// Audit entries about the email, the account or the linked Discord account, newest first.
    pub audit: Vec<AuditEntry>,
}

/// The customer's Appwrite account.
#[derive(Debug, Clone)]
pub struct Account {
    pub user_id: String,
    pub name: String,
    pub verified: bool,
    /// `false` when the account is blocked.
    pub active: bool,
    pub created: Option<OffsetDateTime>,
    pub labels: Vec<String>,
    /// Member of team `paid` (what the feed checks).
    pub paid: bool,
    /// Member of team `staff`.
    pub staff: bool,
}

/// What the customer is entitled to at the moment of the view.
#[derive(Debug, Clone)]
pub struct Entitlements {
    /// The plans that give access now.
    pub active_plans: Vec<String>,
    /// The managed Discord roles those plans give them now, and why (as the bot sees it).
    pub roles: DesiredRoles,
    /// What the web feed shows them now, and why (as web decides it).
    pub sees: Visibility,
}

/// What a customer can see in the web feed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visibility {
    /// The routes the feed, the live stream and signal assets are open to them for.
    pub routes: Entitlement,
    /// Each active plan and the routes it unlocks (their union is `routes` for a member).
    pub by_plan: Vec<(String, Unlocks)>,
    /// Why: staff, not verified, not in `paid`, or the plans ([`Visibility::why`] in words).
    pub reason: SeesWhy,
}

/// Why a customer sees what [`Visibility`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeesWhy {
    NoAccount,
    EmailNotVerified,
    Staff,
    NotPaid,
    NoActivePlan,
    /// No plans file: every plan unlocks every route.
    PlansNameNoRoutes,
    /// What `by_plan` unlocks.
    Plans,
}

impl Visibility {
    /// Decided as web decides: staff see everything; a verified member of `paid` sees what
    /// their active plans unlock; anyone else sees nothing.
    fn of(access: &Access, account: Option<&Account>, active_plans: &[String]) -> Self {
        let config = access.plan_config();
        let by_plan: Vec<(String, Unlocks)> = active_plans
            .iter()
            .map(|p| (p.clone(), config.unlocks(p).clone()))
            .collect();
        let (routes, reason) = match account {
            None => (Entitlement::nothing(), SeesWhy::NoAccount),
            Some(a) if !a.verified => (Entitlement::nothing(), SeesWhy::EmailNotVerified),
            Some(a) if a.staff => (Entitlement::Everything, SeesWhy::Staff),
            Some(a) if !a.paid => (Entitlement::nothing(), SeesWhy::NotPaid),
            Some(_) if active_plans.is_empty() => (Entitlement::nothing(), SeesWhy::NoActivePlan),
            Some(_) => (
                config.entitlement(active_plans.iter().map(String::as_str)),
                if config.has_routes() {
                    SeesWhy::Plans
                } else {
                    SeesWhy::PlansNameNoRoutes
                },
            ),
        };
        Self {
            routes,
            by_plan,
            reason,
        }
    }

    /// Why, in one line, with plans by key ("vip unlocks vip-calls").
    pub fn why(&self) -> String {
        self.why_naming(str::to_owned)
    }

    /// Why, in one line, with each plan called what `name` calls its key.
    pub fn why_naming(&self, name: impl Fn(&str) -> String) -> String {
        match self.reason {
            SeesWhy::NoAccount => "no account".into(),
            SeesWhy::EmailNotVerified => "email not verified".into(),
            SeesWhy::Staff => "staff".into(),
            SeesWhy::NotPaid => "not a member of team paid".into(),
            SeesWhy::NoActivePlan => "no active plan".into(),
            SeesWhy::PlansNameNoRoutes => {
                "plans name no routes (no PLANS_FILE): every plan unlocks every route".into()
            }
            SeesWhy::Plans => self
                .by_plan
                .iter()
                .map(|(plan, unlocks)| format!("{} unlocks {unlocks}", name(plan)))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

/// The newest entries of a longer list, and how many there are in all.
#[derive(Debug, Clone)]
pub struct Recent<T> {
    pub total: u64,
    pub items: Vec<T>,
}

impl<T> From<DocumentList<T>> for Recent<Document<T>> {
    fn from(list: DocumentList<T>) -> Self {
        Self {
            total: list.total,
            items: list.documents,
        }
    }
}

impl<T> Recent<Document<T>> {
    fn data(self) -> Recent<T> {
        Recent {
            total: self.total,
            items: self.items.into_iter().map(|d| d.data).collect(),
        }
    }
}

impl Access {
    /// Everything about one customer. A stranger is a view too: no account, nothing recorded.
    pub async fn customer(&self, email: &Email) -> Result<CustomerView, AccessError> {
        let client = self.client();
        let users = client.users();
        let events_q = [
            Query::equal("email", email.as_str()),
            Query::order_desc("received_at"),
            Query::limit(RECENT_EVENTS),
        ];
        let failures_q = [
            Query::equal("email", email.as_str()),
            Query::limit(RECENT_FAILURES),
        ];
        let events = self.collection::<WebhookEvent>();
        let failures = self.collection::<WebhookFailure>();
        let (user, subscriptions, events, failures) = tokio::join!(
            users.find_by_email(email.as_str()),
            self.subscriptions_of(email),
            events.list(&events_q),
            failures.list(&failures_q),
        );
        let (user, subscriptions) = (user?, subscriptions?);
        let subscriptions: Vec<Subscription> = subscriptions.into_iter().map(|d| d.data).collect();

        let (account, link, roles) = match user {
            Some(user) => {
                let (link, roles, memberships) = tokio::join!(
                    self.discord_link(&user.id),
                    self.role_states(&user.id),
                    users.list_memberships(&user.id),
                );
                let teams: Vec<String> = memberships?
                    .memberships
                    .into_iter()
                    .filter(|m| m.confirm)
                    .map(|m| m.team_id)
                    .collect();
                let roles = roles?.into_iter().map(|d| d.data).collect();
                (Some(account(user, &teams)), link?, roles)
            }
            None => (None, None, Vec::new()),
        };

        let at = self.clock.now();
        let active_plans: Vec<String> = subscriptions
            .iter()
            .filter(|s| s.grants_access(at))
            .map(|s| s.plan.clone())
            .collect();
        let roles_due = match &account {
            // From what is already read here, exactly as the bot's role sync decides it.
            Some(a) => self.desired_from(
                a.verified,
                link.as_ref().map(|l| l.discord_user_id.clone()),
                &subscriptions,
            ),
            None => DesiredRoles {
                roles: Vec::new(),
                discord_user_id: None,
                why: RolesWhy::NoAccount,
            },
        };

        let mut targets = vec![email.to_string()];
        if let Some(a) = &account {
            targets.push(a.user_id.clone());
        }
        if let Some(l) = &link {
            targets.push(l.discord_user_id.clone());
        }
        let audit = self
            .collection::<AuditEntry>()
            .list(&[
                Query::equal("target", targets),
                Query::order_desc("at"),
                Query::limit(RECENT_AUDIT),
            ])
            .await?;

        let sees = Visibility::of(self, account.as_ref(), &active_plans);
        Ok(CustomerView {
            email: email.clone(),
            at,
            account,
            subscriptions,
            entitlements: Entitlements {
                sees,
                active_plans,
                roles: roles_due,
            },
            link,
            roles_managed: !self.managed_roles().is_empty(),
            roles,
            events: Recent::from(events?).data(),
            failures: failures?.into(),
            audit: audit.documents.into_iter().map(|d| d.data).collect(),
        })
    }

    /// The customers `q` names, for staff search: every customer whose email, Sell.app order
    /// id, Discord name or Discord id starts with `q` (emails and Discord names compared
    /// lower-cased, as they are stored), each once, sorted by email, with what matched. An
    /// email needs no search; an empty or overlong `q` finds nobody.
    ///
    /// Each lookup is a `startsWith` on an indexed attribute (`subscriptions.email`,
    /// `subscriptions.sellapp_order_id`, `discord_links.discord_username` and `.discord_user_id`)
    /// plus one on the users' emails, [`SEARCH_LIMIT`] rows each; [`Search::more`] says when a
    /// lookup had more.
    pub async fn find_customers(&self, q: &str) -> Result<Search, AccessError> {
        let q = q.trim();
        if q.is_empty() || q.chars().count() > SEARCH_MAX_CHARS {
            return Ok(Search::default());
        }
        let lower = q.to_lowercase();
        let digits = q.bytes().all(|b| b.is_ascii_digit());
        let fetch = SEARCH_LIMIT + 1;
        let subscriptions = self.collection::<Subscription>();
        let links = self.collection::<DiscordLink>();
        let users = self.client().users();
        let email_q = [
            Query::starts_with("email", lower.as_str()),
            Query::limit(fetch),
        ];
        let user_q = [
            Query::starts_with("email", lower.as_str()),
            Query::limit(fetch),
        ];
        let order_q = [
            Query::starts_with("sellapp_order_id", q),
            Query::limit(fetch),
        ];
        let name_q = [
            Query::starts_with("discord_username", lower.as_str()),
            Query::limit(fetch),
        ];
        let id_q = [
            Query::starts_with("discord_user_id", q),
            Query::limit(fetch),
        ];
        let by_id = async {
            if digits {
                links.list_page(&id_q).await.map(|l| l.documents)
            } else {
                Ok(Vec::new())
            }
        };
        let (by_email, by_user, by_order, by_name, by_id) = tokio::join!(
            subscriptions.list_page(&email_q),
            users.list(&user_q),
            subscriptions.list_page(&order_q),
            links.list_page(&name_q),
            by_id,
        );
        let (by_email, by_user, by_order) =
            (by_email?.documents, by_user?.users, by_order?.documents);
        let (by_name, by_id) = (by_name?.documents, by_id?);
        let fetched = fetch as usize;
        let more = [
            by_email.len(),
            by_user.len(),
            by_order.len(),
            by_name.len(),
            by_id.len(),
        ]
        .iter()
        .any(|n| *n >= fetched);
        let limit = SEARCH_LIMIT as usize;

        let mut found: BTreeMap<String, BTreeSet<Match>> = BTreeMap::new();
        let mut add = |email: String, m: Match| {
            found.entry(email).or_default().insert(m);
        };
        for s in by_email.into_iter().take(limit) {
            add(s.data.email, Match::Email);
        }
        for u in by_user.into_iter().take(limit) {
            add(u.email.to_lowercase(), Match::Email);
        }
        for s in by_order.into_iter().take(limit) {
            let order = s.data.sellapp_order_id.unwrap_or_default();
            add(s.data.email, Match::Order(order));
        }
        // A link's document id is its customer's user id: one read names them all.
        let mut linked: Vec<(String, Match)> = Vec::new();
        for l in by_name.into_iter().take(limit) {
            let name = l.data.discord_username.unwrap_or_default();
            linked.push((l.id, Match::DiscordName(name)));
        }
        for l in by_id.into_iter().take(limit) {
            linked.push((l.id, Match::DiscordId(l.data.discord_user_id)));
        }
        if !linked.is_empty() {
            let mut ids: Vec<String> = linked.iter().map(|(id, _)| id.clone()).collect();
            ids.sort();
            ids.dedup();
            let count = ids.len() as u32;
            let owners = users
                .list(&[Query::equal("$id", ids), Query::limit(count)])
                .await?
                .users;
            for (user_id, m) in linked {
                if let Some(u) = owners.iter().find(|u| u.id == user_id) {
                    add(u.email.to_lowercase(), m);
                }
            }
        }
        Ok(Search {
            found: found
                .into_iter()
                .map(|(email, by)| Found {
                    email,
                    by: by.into_iter().collect(),
                })
                .collect(),
            more,
        })
    }

    /// The email of the account `user_id` names (audit entries name customers by user id);
    /// `None` when there is no such account or the id is malformed.
    pub async fn customer_email(&self, user_id: &str) -> Result<Option<String>, AccessError> {
        match self.client().users().get(user_id).await {
            Ok(user) => Ok(Some(user.email)),
            Err(e) if e.is_not_found() || e.status() == Some(400) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

fn account(user: User, teams: &[String]) -> Account {
    Account {
        paid: teams.iter().any(|t| t == TEAM_PAID),
        staff: teams.iter().any(|t| t == TEAM_STAFF),
        user_id: user.id,
        name: user.name,
        verified: user.email_verification,
        active: user.status,
        created: user.created_at,
        labels: user.labels,
    }
}
