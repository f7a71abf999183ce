//! The one error type of the web service. Sign-in problems become redirects, refusals become
//! clear pages (403, 429), and everything unexpected is logged and shown as an opaque 500.
//! Error pages carry the navigation of whoever asked ([`viewer_nav`]).

use std::time::Duration;

use askama::Template;
use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
};

use crate::{
    AppState, cookies,
    templates::{ErrorPage, Layout},
};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No session: go and sign in.
    #[error("sign-in required")]
    SignInRequired,
    /// The cookie's session is no longer accepted by Appwrite (signed out elsewhere, expired).
    #[error("session ended")]
    SessionEnded { secure: bool },
    /// A state-changing request without a matching CSRF token (or from another origin).
    #[error("CSRF check failed")]
    Csrf,
    /// Too many sign-in attempts; try again after the given time.
    #[error("rate limited")]
    RateLimited(Duration),
    /// Too many Discord link or unlink requests by one user.
    #[error("Discord linking rate limited")]
    LinkRateLimited(Duration),
    #[error("page not found")]
    NotFound,
    /// A request body past [`crate::security::FORM_LIMIT`].
    #[error("request too large")]
    TooLarge,
    #[error("appwrite: {0}")]
    Backend(#[from] g3_appwrite::Error),
    #[error("access: {0}")]
    Access(#[from] g3_access::AccessError),
    #[error("template: {0}")]
    Render(#[from] askama::Error),
}

/// What an error page said, kept on its response: the error knows nothing of the viewer, so
/// [`viewer_nav`] renders the page again with a signed-in viewer's navigation.
#[derive(Clone)]
struct Shown {
    status: u16,
    heading: String,
    message: String,
}

impl Shown {
    fn render(&self, layout: Layout) -> askama::Result<String> {
        ErrorPage {
            layout,
            status: self.status,
            heading: self.heading.clone(),
            message: self.message.clone(),
        }
        .render()
    }
}

/// Error pages for a signed-in viewer show Feed, Account and Sign out, not Sign in. Signed in
/// means a session cookie, read as the CSRF check reads it (its token signs the sign-out form):
/// asking Appwrite for every 404 is not worth it, and a dead session's cookie is cleared by the
/// next page that needs it.
pub async fn viewer_nav(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let secure = state.secure_cookies();
    let token = cookies::get(req.headers(), cookies::session_name(secure))
        .filter(|v| cookies::is_token(v))
        .map(|secret| state.csrf_key().token_for(secret));
    let mut resp = next.run(req).await;
    let Some(token) = token else {
        return resp;
    };
    let Some(shown) = resp.extensions_mut().remove::<Shown>() else {
        return resp;
    };
    match shown.render(Layout::new(&shown.heading, &token, true)) {
        Ok(html) => {
            resp.headers_mut().remove(header::CONTENT_LENGTH);
            *resp.body_mut() = Body::from(html);
        }
        Err(e) => tracing::error!(error = %e, "error page failed to render"),
    }
    resp
}

impl AppError {
    fn page(status: StatusCode, heading: &str, message: String) -> Response {
        let shown = Shown {
            status: status.as_u16(),
            heading: heading.to_owned(),
            message,
        };
        match shown.render(Layout::bare(heading)) {
            Ok(html) => {
                let mut resp = (status, Html(html)).into_response();
                resp.extensions_mut().insert(shown);
                resp
            }
            Err(e) => {
                tracing::error!(error = %e, "error page failed to render");
                (status, heading.to_owned()).into_response()
            }
        }
    }

    /// 429 with `Retry-After` and when to try again.
    fn too_many(wait: Duration, what: &str) -> Response {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let mut resp = Self::page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            format!(
                "{what} Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::SignInRequired => Redirect::to("/signin").into_response(),
            AppError::SessionEnded { secure } => {
                let mut resp = Redirect::to("/signin?notice=session-ended").into_response();
                if let Some(v) = cookies::set(
                    cookies::session_name(secure),
                    "",
                    cookies::SameSite::Lax,
                    secure,
                    Some(0),
                ) {
                    resp.headers_mut().append(header::SET_COOKIE, v);
                }
                resp
            }
            AppError::Csrf => Self::page(
                StatusCode::FORBIDDEN,
                "Request refused",
                "This form was not sent from this site or has expired. Go back, reload the page \
                 and try again."
                    .into(),
            ),
            AppError::RateLimited(wait) => Self::too_many(
                wait,
                "Too many sign-in attempts from here or for this email.",
            ),
            AppError::LinkRateLimited(wait) => Self::too_many(
                wait,
                "Too many Discord link or unlink requests for this account.",
            ),
            AppError::TooLarge => Self::page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request too large",
                format!(
                    "This request was too large: forms here take at most {} KB. Go back and \
                     send less.",
                    crate::security::FORM_LIMIT / 1024
                ),
            ),
            AppError::NotFound => Self::page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no page at this address.".into(),
            ),
            AppError::Backend(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "request failed: backend unavailable");
                let mut resp = Self::page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "Our backend is not answering just now. This is usually over within a \
                     minute and nothing is lost: try again shortly."
                        .into(),
                );
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
                resp
            }
            other => {
                let mut chain = other.to_string();
                let mut source = std::error::Error::source(&other);
                while let Some(s) = source {
                    chain.push_str(": ");
                    chain.push_str(&s.to_string());
                    source = s.source();
                }
                tracing::error!(error = %chain, "request failed");
                Self::page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "We could not complete this request. Please try again in a moment.".into(),
                )
            }
        }
    }
}
