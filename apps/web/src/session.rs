//! Who is asking: the Appwrite session behind the session cookie, checked with Appwrite
//! (reused for a second or two on `GET`s only, see [`crate::authcache`]), and what that user
//! may see: their [`Standing`] and, for members, the routes their plans unlock ([`entitled`]).

use axum::{
    extract::FromRequestParts,
    http::{Method, request::Parts},
};
use g3_appwrite::{Client, SessionSecret, User};
use g3_core::{
    Email,
    entitlements::{Entitlement, plans_in_membership},
};
use g3_store::schema::{TEAM_PAID, TEAM_STAFF};

use crate::{AppState, cookies, error::AppError};

/// A signed-in user and a client acting as them.
pub struct Viewer {
    pub user: User,
    /// Calls as the user (`X-Appwrite-Session`): Appwrite's own permissions apply.
    pub client: Client,
}

/// `Some` when a session cookie is present and Appwrite accepts it.
pub struct MaybeViewer(pub Option<Viewer>);

impl FromRequestParts<AppState> for MaybeViewer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let name = cookies::session_name(state.secure_cookies());
        let Some(secret) = cookies::get(&parts.headers, name) else {
            return Ok(MaybeViewer(None));
        };
        let ended = AppError::SessionEnded {
            secure: state.secure_cookies(),
        };
        if !cookies::is_token(secret) {
            return Err(ended);
        }
        let client = state.appwrite().with_session(&SessionSecret::new(secret));
        let cache = state.auth_cache();
        let reads = parts.method == Method::GET || parts.method == Method::HEAD;
        if reads && let Some(user) = cache.user(secret) {
            return Ok(MaybeViewer(Some(Viewer { user, client })));
        }
        match client.account().get().await {
            Ok(user) => {
                if reads {
                    cache.remember_user(secret, &user);
                } else {
                    // A form post may change the user (password, verification): the next
                    // page of this session reads them afresh. Changes that concern every
                    // session of a user forget the user where they happen.
                    cache.forget_session(secret);
                }
                Ok(MaybeViewer(Some(Viewer { user, client })))
            }
            Err(e) if e.status() == Some(401) => {
                cache.forget_session(secret);
                Err(ended)
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        MaybeViewer::from_request_parts(parts, state)
            .await?
            .0
            .ok_or(AppError::SignInRequired)
    }
}

/// What a signed-in user may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Email not verified: no paid access whatever they bought.
    Unverified,
    /// Verified, but in neither `paid` nor `staff`.
    Unpaid,
    Paid,
    Staff,
}

impl Standing {
    pub fn has_feed(self) -> bool {
        matches!(self, Standing::Paid | Standing::Staff)
    }

    pub fn label(self) -> &'static str {
        match self {
            Standing::Unverified => "Verify your email to continue",
            Standing::Unpaid => "No active plan",
            Standing::Paid => "Member: the signal feed is open to you",
            Standing::Staff => "Staff: every route and the admin console",
        }
    }
}

/// A user's standing and the routes it lets them see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitled {
    pub standing: Standing,
    /// Everything for staff; for members the union of their active plans' routes; else nothing.
    pub sees: Entitlement,
}

impl Entitled {
    fn nothing(standing: Standing) -> Self {
        Self {
            standing,
            sees: Entitlement::nothing(),
        }
    }

    /// Whether the feed is open to them at all: staff, or a member whose plans unlock a route.
    pub fn has_feed(&self) -> bool {
        self.standing.has_feed() && !self.sees.is_nothing()
    }

    pub fn allows(&self, route: &str) -> bool {
        self.has_feed() && self.sees.allows(route)
    }
}

/// What a user may see now. Membership is read with the server key (a user cannot vouch for
/// themself), or taken from [`crate::access_cache`], which Realtime's membership events keep
/// current: a revoked plan closes the feed on the next request either way. The `paid`
/// membership's roles are the active plans (written with it by g3-access), so the one call that
/// decides membership also decides the routes.
pub async fn entitled(state: &AppState, user: &User) -> Result<Entitled, AppError> {
    if !user.email_verification {
        return Ok(Entitled::nothing(Standing::Unverified));
    }
    let cache = state.access_cache();
    if let Some(known) = cache.get(&user.id) {
        return Ok(known);
    }
    let epoch = cache.begin();
    let read = read_entitled(state, user).await?;
    cache.put(&user.id, epoch, &read);
    Ok(read)
}

/// [`entitled`] read from Appwrite, for a verified user.
async fn read_entitled(state: &AppState, user: &User) -> Result<Entitled, AppError> {
    // One call for every team of the user.
    let memberships = state.appwrite().users().list_memberships(&user.id).await?;
    let membership = |team: &str| {
        memberships
            .memberships
            .iter()
            .find(|m| m.team_id == team && m.confirm)
    };
    if membership(TEAM_STAFF).is_some() {
        return Ok(Entitled {
            standing: Standing::Staff,
            sees: Entitlement::Everything,
        });
    }
    let Some(paid) = membership(TEAM_PAID) else {
        return Ok(Entitled::nothing(Standing::Unpaid));
    };
    let plans = state.plans();
    let sees = if !plans.has_routes() {
        // Plans name no routes (no plans file): membership is access to everything.
        Entitlement::Everything
    } else {
        let held: Vec<&str> = plans_in_membership(&paid.roles).collect();
        if held.is_empty() {
            // A membership written before plans were recorded on it: ask the subscriptions.
            let active = active_plans(state, &user.email).await?;
            plans.entitlement(active.iter().map(String::as_str))
        } else {
            plans.entitlement(held)
        }
    };
    Ok(Entitled {
        standing: Standing::Paid,
        sees,
    })
}

/// The plans that grant access now, from the user's subscriptions.
async fn active_plans(state: &AppState, email: &str) -> Result<Vec<String>, AppError> {
    let Ok(email) = Email::parse(email) else {
        return Ok(Vec::new());
    };
    let now = time::OffsetDateTime::now_utc();
    Ok(state
        .access()
        .subscriptions_of(&email)
        .await?
        .into_iter()
        .filter(|d| d.data.grants_access(now))
        .map(|d| d.data.plan)
        .collect())
}

/// The user's standing alone (pages that show it but no signal).
pub async fn standing(state: &AppState, user: &User) -> Result<Standing, AppError> {
    Ok(entitled(state, user).await?.standing)
}
