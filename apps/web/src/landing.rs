//! The public home page `/`: what the product is, the plans on sale and the way in (sign up,
//! sign in, or the feed for who is signed in). Also owns the list of plans on sale
//! ([`offers`]) that the paywall shows too. The results headline comes from
//! [`crate::performance::headline`].

use askama::Template;
use axum::{
    Extension,
    extract::State,
    response::{Html, IntoResponse, Response},
};

use crate::{
    AppState,
    error::AppError,
    security::CsrfToken,
    session::{self, MaybeViewer, Standing},
    templates::{LandingPage, Layout, OfferView},
};

/// The configured plans on sale, in file order. Buy links carry `email` (URL-encoded) where the
/// store takes it; a plan without its own link points at the store. `route`: the channel the
/// viewer asked for, to mark the plans that include it.
pub fn offers(state: &AppState, email: Option<&str>, route: Option<&str>) -> Vec<OfferView> {
    let config = state.plans();
    config
        .plans()
        .iter()
        .filter(|p| p.buy_url.is_some() || p.price.is_some())
        .map(|p| OfferView {
            name: p.name.clone(),
            price: p.price.clone().unwrap_or_default(),
            benefits: p.benefits.clone(),
            buy_url: p
                .buy_url
                .as_ref()
                .map_or_else(|| state.store_url().to_owned(), |u| u.for_email(email)),
            includes_route: route.is_some_and(|r| config.entitlement([p.plan.as_str()]).allows(r)),
        })
        .collect()
}

/// `GET /`: the same page for everyone; a signed-in visitor's buy links carry their email and
/// the call to action opens the feed.
pub async fn home(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    MaybeViewer(viewer): MaybeViewer,
) -> Result<Response, AppError> {
    // Staff get their Admin link here too (usually decided by the access cache, no call).
    let staff = match &viewer {
        Some(v) => session::standing(&state, &v.user).await? == Standing::Staff,
        None => false,
    };
    let email = viewer.map(|v| v.user.email);
    let page = LandingPage {
        layout: Layout::new("Live trading signals", &csrf.0, email.is_some()).staff(staff),
        offers: offers(&state, email.as_deref(), None),
        store_url: state.store_url().to_owned(),
        email,
        results: crate::performance::headline(&state),
    };
    Ok(Html(page.render()?).into_response())
}
