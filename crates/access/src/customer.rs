//! One customer as staff see them. [`Access::customer`] reads, in one place, everything `/admin`
//! and `ops lookup` show about an email: account, subscriptions, what they are entitled to now,
//! what they can see in the feed and why, the Discord link, desired vs applied roles, webhook
//! events and failures, and the audit trail.
//! [`Access::find_customers`] turns what staff search by into the customers it names.

use g3_appwrite::{Document, DocumentList, Query, User};
use g3_core::{
    Email, Snowflake,
    entitlements::{Entitlement, Unlocks},
};
use g3_store::{
    models::{AuditEntry, DiscordLink, RoleState, Subscription, WebhookEvent, WebhookFailure},
    schema::{TEAM_PAID, TEAM_STAFF},
};
use time::OffsetDateTime;

use crate::{Access, AccessError, DesiredRoles};

/// How many webhook events, failures and audit entries a view keeps (the newest).
const RECENT_EVENTS: u32 = 20;
const RECENT_FAILURES: u32 = 20;
const RECENT_AUDIT: u32 = 30;

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
    /// Why, in one line: staff, not verified, not in `paid`, or the plans.
    pub why: String,
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
        let (routes, why) = match account {
            None => (Entitlement::nothing(), "no account".to_owned()),
            Some(a) if !a.verified => (Entitlement::nothing(), "email not verified".to_owned()),
            Some(a) if a.staff => (Entitlement::Everything, "staff".to_owned()),
            Some(a) if !a.paid => (
                Entitlement::nothing(),
                "not a member of team paid".to_owned(),
            ),
            Some(_) if active_plans.is_empty() => {
                (Entitlement::nothing(), "no active plan".to_owned())
            }
            Some(_) => {
                let plans: Vec<String> = by_plan
                    .iter()
                    .map(|(plan, unlocks)| format!("{plan} unlocks {unlocks}"))
                    .collect();
                let why = if config.has_routes() {
                    plans.join("; ")
                } else {
                    "plans name no routes (no PLANS_FILE): every plan unlocks every route".into()
                };
                (
                    config.entitlement(active_plans.iter().map(String::as_str)),
                    why,
                )
            }
        };
        Self {
            routes,
            by_plan,
            why,
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
                why: "no account".into(),
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

    /// The emails of the customers `q` names: as a Sell.app order id, a Discord id or a Discord
    /// name (an email needs no search). Sorted, each once; empty for an empty or overlong `q`.
    pub async fn find_customers(&self, q: &str) -> Result<Vec<String>, AccessError> {
        let q = q.trim();
        if q.is_empty() || q.len() > 64 {
            return Ok(Vec::new());
        }
        let subscriptions = self.collection::<Subscription>();
        let links = self.collection::<DiscordLink>();
        let order_q = [Query::equal("sellapp_order_id", q), Query::limit(25)];
        let id_q = [Query::equal("discord_user_id", q), Query::limit(5)];
        let name_q = [Query::equal("discord_username", q), Query::limit(25)];
        let by_id = async {
            if Snowflake::is_valid(q) {
                links.list(&id_q).await.map(|l| l.documents)
            } else {
                Ok(Vec::new())
            }
        };
        let (by_order, by_id, by_name) =
            tokio::join!(subscriptions.list(&order_q), by_id, links.list(&name_q));
        let mut emails: Vec<String> = by_order?
            .documents
            .into_iter()
            .map(|d| d.data.email)
            .collect();
        // A link's document id is its customer's user id.
        for link in by_id?.into_iter().chain(by_name?.documents) {
            if let Ok(user) = self.client().users().get(&link.id).await {
                emails.push(user.email);
            }
        }
        emails.sort();
        emails.dedup();
        Ok(emails)
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
