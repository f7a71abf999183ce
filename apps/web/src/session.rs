//! Who is asking: the Appwrite session behind the session cookie, checked with Appwrite
//! (reused for a second or two on `GET`s only, see [`crate::authcache`]), and what that user
//! may see.

use axum::{
    extract::FromRequestParts,
    http::{Method, request::Parts},
};
use g3_appwrite::{Client, SessionSecret, User};
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
            Standing::Unverified => "email not verified",
            Standing::Unpaid => "no active plan",
            Standing::Paid => "member",
            Standing::Staff => "staff",
        }
    }
}

/// Membership is read with the server key on every call (never remembered), so a revoked
/// plan closes the feed on the next request: a user cannot vouch for themself.
pub async fn standing(state: &AppState, user: &User) -> Result<Standing, AppError> {
    if !user.email_verification {
        return Ok(Standing::Unverified);
    }
    // One call for every team of the user (this runs on every feed request).
    let memberships = state.appwrite().users().list_memberships(&user.id).await?;
    let member_of = |team: &str| {
        memberships
            .memberships
            .iter()
            .any(|m| m.team_id == team && m.confirm)
    };
    if member_of(TEAM_STAFF) {
        Ok(Standing::Staff)
    } else if member_of(TEAM_PAID) {
        Ok(Standing::Paid)
    } else {
        Ok(Standing::Unpaid)
    }
}
