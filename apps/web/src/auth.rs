//! Accounts: sign up (finished with an emailed code), sign in with a password or an emailed
//! code, email verification and sign out. Sessions are created with the server key so Appwrite
//! hands us the secret, which goes into the HttpOnly session cookie; the browser never talks to
//! Appwrite itself.

use askama::Template;
use axum::{
    Extension, Form,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use g3_appwrite::{Id, Session, TokenSecret};
use g3_core::Email;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::{
    AppState,
    cookies::{self, SameSite},
    error::AppError,
    security::{ClientIp, CsrfToken, SignUpKey},
    session::{MaybeViewer, Viewer},
    templates::{
        CodeEnterPage, CodeRequestPage, Layout, RecoverConfirmPage, RecoverPage, SignInPage,
        SignUpPage, VerifyPage,
    },
};

/// User pref set when the account's password is one nobody knows (replaced at a claim): the
/// account page then lets the user choose one without giving the current password.
pub const PASSWORD_UNKNOWN: &str = "password_unknown";

/// Does this user have a password they know (and must give to change it)?
pub fn knows_password(user: &g3_appwrite::User) -> bool {
    user.password_update.is_some() && user.prefs.get(PASSWORD_UNKNOWN) != Some(&true.into())
}

/// Appwrite's minimum password length.
const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 256;

/// The sign-up answer, the same for a new email and one that has an account.
const SIGNUP_CODE_SENT: &str = "One step left: enter the code from the email to finish signing up.";

#[derive(Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
}

/// Fixed texts for `?notice=`: nothing from the query string is echoed.
pub(crate) fn notice_text(key: Option<&str>) -> Option<&'static str> {
    match key? {
        "session-ended" => Some("Your session has ended. Please sign in again."),
        "signed-out" => Some("You are signed out."),
        "signed-out-all" => Some("You are signed out on all devices."),
        "verification-sent" => Some("We sent you a new verification link."),
        "password-changed" => Some("Your password is changed. Sign in with it."),
        "address-confirmed" => Some(
            "Your email address is confirmed. For your safety any password set before is \
             removed and every other session is ended: choose a password below.",
        ),
        "password-set" => Some("Your password is set."),
        "discord-linked" => Some(
            "Your Discord account is linked and you are in our Discord server. Your roles \
             follow your plan and update within a few minutes.",
        ),
        "discord-linked-not-joined" => Some(
            "Your Discord account is linked, but we could not add you to our Discord server \
             just now. Link it again in a few minutes to retry.",
        ),
        "discord-cancelled" => Some("Linking was cancelled on Discord. Nothing was changed."),
        "discord-unlinked" => Some(
            "Your Discord account is unlinked. The roles it had from your plan are removed \
             shortly.",
        ),
        "discord-not-linked" => Some("No Discord account was linked."),
        "current-password-wrong" => Some("Your current password was missing or wrong."),
        "password-refused" => Some(
            "That password is not accepted: choose one of 8 to 256 characters, not a common one.",
        ),
        _ => None,
    }
}

fn page(status: StatusCode, template: &impl Template) -> Result<Response, AppError> {
    Ok((status, Html(template.render()?)).into_response())
}

/// Signed in: the session cookie, the CSRF token bound to this new session (nothing planted
/// before sign-in survives), and on to `to`.
fn signed_in(state: &AppState, session: &Session, to: &str) -> Response {
    let mut resp = Redirect::to(to).into_response();
    let max_age = session
        .expire
        .map(|e| (e - OffsetDateTime::now_utc()).whole_seconds().max(0));
    let secure = state.secure_cookies();
    let headers = resp.headers_mut();
    if let Some(v) = cookies::set(
        cookies::session_name(secure),
        session.secret.expose(),
        SameSite::Lax,
        secure,
        max_age,
    ) {
        headers.append(header::SET_COOKIE, v);
    }
    let csrf = state.csrf_key().token_for(session.secret.expose());
    if let Some(v) = cookies::set(
        cookies::csrf_name(secure),
        &csrf,
        SameSite::Strict,
        secure,
        None,
    ) {
        headers.append(header::SET_COOKIE, v);
    }
    resp
}

/// Signed out: the session cookie is cleared and the CSRF cookie gets a fresh random token,
/// so nothing of the ended session's token is reused.
fn signed_out(state: &AppState, to: &str) -> Response {
    let mut resp = Redirect::to(to).into_response();
    let secure = state.secure_cookies();
    let cleared = cookies::set(
        cookies::session_name(secure),
        "",
        SameSite::Lax,
        secure,
        Some(0),
    );
    let fresh = cookies::set(
        cookies::csrf_name(secure),
        &crate::security::new_token(),
        SameSite::Strict,
        secure,
        None,
    );
    for v in [cleared, fresh].into_iter().flatten() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

pub async fn signup_page(
    Extension(csrf): Extension<CsrfToken>,
    MaybeViewer(viewer): MaybeViewer,
) -> Result<Response, AppError> {
    if viewer.is_some() {
        return Ok(Redirect::to("/feed").into_response());
    }
    page(
        StatusCode::OK,
        &SignUpPage {
            layout: Layout::new("Sign up", &csrf.0, false),
            email: String::new(),
            error: None,
        },
    )
}

#[derive(Deserialize)]
pub struct SignUpForm {
    email: String,
    password: String,
}

/// How long the sign-up proof cookie lets the emailed code keep the chosen password.
const SIGNUP_PROOF_TTL: time::Duration = time::Duration::minutes(30);

/// Sign-up answers the same whether or not the email has an account, so the form tells nobody
/// which addresses are customers: both make a create attempt and mail a code, both show the
/// code page and set a proof cookie (a decoy when the account existed). The code proves the
/// inbox; the proof cookie (see [`crate::security::SignUpKey`]) keeps the chosen password when
/// the code is entered in the browser that created the account.
#[tracing::instrument(skip_all)]
pub async fn signup(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
    Form(form): Form<SignUpForm>,
) -> Result<Response, AppError> {
    state.throttle(&ip.0, Some(&form.email))?;
    let refuse = |error: String| {
        page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &SignUpPage {
                layout: Layout::new("Sign up", &csrf.0, false),
                email: form.email.clone(),
                error: Some(error),
            },
        )
    };
    let email = match Email::parse(&form.email) {
        Ok(e) => e,
        Err(e) => return refuse(e.to_string()),
    };
    let len = form.password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&len) {
        return refuse(format!(
            "Choose a password of {MIN_PASSWORD} to {MAX_PASSWORD} characters."
        ));
    }
    let account = state.appwrite().account();
    let created = match account
        .create(Id::unique(), email.as_str(), &form.password, None)
        .await
    {
        Ok(user) => Some(user.id),
        // Bought before signing up, or signed up before: the same code page, and the emailed
        // code decides who gets in.
        Err(e) if e.is_conflict() => None,
        Err(e) if e.status() == Some(400) => {
            return refuse(
                "This password is not accepted. Choose a longer, less common one.".into(),
            );
        }
        Err(e) => return Err(e.into()),
    };
    let token = account
        .create_email_token(Id::unique(), email.as_str())
        .await?;
    let secure = state.secure_cookies();
    let expires = OffsetDateTime::now_utc() + SIGNUP_PROOF_TTL;
    let held = cookies::get(&headers, cookies::signup_name(secure));
    let proof = match (created, held) {
        (Some(user_id), _) => state.signup_key().proof(&user_id, email.as_str(), expires),
        // Sent twice from the browser that created the account: its proof stays good.
        (None, Some(held))
            if state.signup_key().verify(
                held,
                &token.user_id,
                email.as_str(),
                OffsetDateTime::now_utc(),
            ) =>
        {
            held.to_owned()
        }
        (None, _) => SignUpKey::decoy(expires),
    };
    let mut resp = code_page_for(&csrf, &email, token.user_id, Some(SIGNUP_CODE_SENT))?;
    if let Some(v) = cookies::set(
        cookies::signup_name(secure),
        &proof,
        SameSite::Strict,
        secure,
        Some(SIGNUP_PROOF_TTL.whole_seconds()),
    ) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

pub async fn signin_page(
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<NoticeQuery>,
    MaybeViewer(viewer): MaybeViewer,
) -> Result<Response, AppError> {
    if viewer.is_some() {
        return Ok(Redirect::to("/feed").into_response());
    }
    page(
        StatusCode::OK,
        &SignInPage {
            layout: Layout::new("Sign in", &csrf.0, false),
            email: String::new(),
            notice: notice_text(q.notice.as_deref()),
            error: None,
        },
    )
}

#[derive(Deserialize)]
pub struct SignInForm {
    email: String,
    password: String,
}

#[tracing::instrument(skip_all)]
pub async fn signin(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Extension(ip): Extension<ClientIp>,
    Form(form): Form<SignInForm>,
) -> Result<Response, AppError> {
    state.sign_in_gate(&ip.0, &form.email).await?;
    let refuse = |status: StatusCode, error: &str| {
        page(
            status,
            &SignInPage {
                layout: Layout::new("Sign in", &csrf.0, false),
                email: form.email.clone(),
                notice: None,
                error: Some(error.to_owned()),
            },
        )
    };
    let Ok(email) = Email::parse(&form.email) else {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "That is not an email address.",
        );
    };
    match state
        .appwrite()
        .account()
        .create_email_password_session(email.as_str(), &form.password)
        .await
    {
        Ok(session) => Ok(signed_in(&state, &session, "/feed")),
        Err(e) if e.status() == Some(401) => {
            state.sign_in_failed(&ip.0, &form.email);
            refuse(
                StatusCode::UNAUTHORIZED,
                "Wrong email or password. If you bought a plan before creating an account you have \
             no password yet: sign in with an emailed code.",
            )
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn code_page(
    Extension(csrf): Extension<CsrfToken>,
    MaybeViewer(viewer): MaybeViewer,
) -> Result<Response, AppError> {
    if viewer.is_some() {
        return Ok(Redirect::to("/feed").into_response());
    }
    page(
        StatusCode::OK,
        &CodeRequestPage {
            layout: Layout::new("Sign in with a code", &csrf.0, false),
            email: String::new(),
            error: None,
        },
    )
}

#[derive(Deserialize)]
pub struct CodeRequestForm {
    email: String,
}

#[tracing::instrument(skip_all)]
pub async fn code_send(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Extension(ip): Extension<ClientIp>,
    Form(form): Form<CodeRequestForm>,
) -> Result<Response, AppError> {
    state.throttle(&ip.0, Some(&form.email))?;
    match Email::parse(&form.email) {
        Ok(email) => send_code(&state, &csrf, &email, None).await,
        Err(e) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &CodeRequestPage {
                layout: Layout::new("Sign in with a code", &csrf.0, false),
                email: form.email.clone(),
                error: Some(e.to_string()),
            },
        ),
    }
}

/// Mails a one-time code (Appwrite creates the user if the address is new) and asks for it.
async fn send_code(
    state: &AppState,
    csrf: &CsrfToken,
    email: &Email,
    notice: Option<&'static str>,
) -> Result<Response, AppError> {
    let token = state
        .appwrite()
        .account()
        .create_email_token(Id::unique(), email.as_str())
        .await?;
    code_page_for(csrf, email, token.user_id, notice)
}

/// The page asking for the code just mailed to `email`.
fn code_page_for(
    csrf: &CsrfToken,
    email: &Email,
    user_id: String,
    notice: Option<&'static str>,
) -> Result<Response, AppError> {
    page(
        StatusCode::OK,
        &CodeEnterPage {
            layout: Layout::new("Enter your code", &csrf.0, false),
            email: email.to_string(),
            user_id,
            notice,
            error: None,
        },
    )
}

#[derive(Deserialize)]
pub struct CodeForm {
    email: String,
    user_id: String,
    code: String,
}

/// Signs in with an emailed code. On an unverified account the code proves the inbox for the
/// first time: in the browser that created the account at sign-up (its proof cookie) the chosen
/// password stays; anywhere else the account is claimed ([`claim`]).
#[tracing::instrument(skip_all)]
pub async fn code_verify(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Result<Response, AppError> {
    state.sign_in_gate(&ip.0, &form.email).await?;
    let user_id_ok = form.user_id.len() <= 36 && cookies::is_token(&form.user_id);
    let code = form.code.trim();
    if user_id_ok && !code.is_empty() && code.len() <= 64 {
        // Read before the code is spent (spending it verifies the address): was it unproven?
        let user = match state.appwrite().users().get(&form.user_id).await {
            Ok(user) => Some(user),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        match state
            .appwrite()
            .account()
            .create_session_from_token(&form.user_id, &TokenSecret::new(code))
            .await
        {
            Ok(session) => {
                if user.as_ref().is_some_and(|u| u.email_verification) {
                    return Ok(signed_in(&state, &session, "/feed"));
                }
                let secure = state.secure_cookies();
                let signed_up_here = user.as_ref().is_some_and(|u| {
                    cookies::get(&headers, cookies::signup_name(secure)).is_some_and(|proof| {
                        state
                            .signup_key()
                            .verify(proof, &u.id, &u.email, OffsetDateTime::now_utc())
                    })
                });
                if signed_up_here {
                    mark_verified(&state, &form.user_id).await?;
                    let mut resp = signed_in(&state, &session, "/feed");
                    if let Some(v) = cookies::set(
                        cookies::signup_name(secure),
                        "",
                        SameSite::Strict,
                        secure,
                        Some(0),
                    ) {
                        resp.headers_mut().append(header::SET_COOKIE, v);
                    }
                    tracing::info!("sign-up finished by code: password kept");
                    return Ok(resp);
                }
                let session = claim(&state, &form.user_id).await?;
                return Ok(signed_in(
                    &state,
                    &session,
                    "/account?notice=address-confirmed",
                ));
            }
            Err(e) if matches!(e.status(), Some(400 | 401 | 404)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    state.sign_in_failed(&ip.0, &form.email);
    page(
        StatusCode::UNAUTHORIZED,
        &CodeEnterPage {
            layout: Layout::new("Enter your code", &csrf.0, false),
            email: form.email.clone(),
            user_id: form.user_id.clone(),
            notice: None,
            error: Some("That code is wrong or has expired. Ask for a new one below.".into()),
        },
    )
}

/// The code just proved the inbox. Appwrite marks the address verified when an email-token
/// session is created; this makes sure of it rather than trusting that it always will.
async fn mark_verified(state: &AppState, user_id: &str) -> Result<(), AppError> {
    let users = state.appwrite().users();
    if !users.get(user_id).await?.email_verification {
        users.update_email_verification(user_id, true).await?;
    }
    state.auth_cache().forget_user(user_id);
    Ok(())
}

/// The inbox of an unverified account has just been proven with an emailed code. Whoever
/// signed up with this address before may not own it (account pre-hijacking): their password
/// is replaced by a random one and all sessions end; the owner gets one fresh session and is
/// asked to choose a password.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
async fn claim(state: &AppState, user_id: &str) -> Result<Session, AppError> {
    let users = state.appwrite().users();
    let random = hex::encode(rand::random::<[u8; 32]>());
    users.update_password(user_id, &random).await?;
    let mut prefs: serde_json::Value = users.get_prefs(user_id).await?;
    if !prefs.is_object() {
        prefs = serde_json::json!({});
    }
    prefs[PASSWORD_UNKNOWN] = true.into();
    users.update_prefs(user_id, &prefs).await?;
    users.delete_sessions(user_id).await?;
    state.auth_cache().forget_user(user_id);
    mark_verified(state, user_id).await?;
    let session = users.create_session(user_id).await?;
    tracing::info!("address proven by code: password reset, other sessions ended");
    Ok(session)
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    #[serde(rename = "userId")]
    user_id: Option<String>,
    secret: Option<String>,
}

/// The link from the verification mail. Honoured only in a browser signed in as that same
/// user: whoever signed up holds that session, while a link opened anywhere else might confirm
/// an address for an account somebody else created with it. Elsewhere the page asks for a
/// sign-in with an emailed code instead, which proves the inbox and claims the account.
#[tracing::instrument(skip_all)]
pub async fn verify(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    viewer: Result<MaybeViewer, AppError>,
    Query(q): Query<VerifyQuery>,
) -> Result<Response, AppError> {
    let viewer = viewer.ok().and_then(|v| v.0);
    let signed_in = viewer.is_some();
    let link = match (q.user_id.as_deref(), q.secret.as_deref()) {
        (Some(user_id), Some(secret))
            if user_id.len() <= 36 && cookies::is_token(user_id) && cookies::is_token(secret) =>
        {
            Some((user_id, secret))
        }
        _ => None,
    };
    let outcome = match (link, &viewer) {
        (None, _) => VerifyOutcome::Failed,
        (Some((user_id, secret)), Some(viewer)) if viewer.user.id == user_id => {
            match viewer
                .client
                .account()
                .confirm_verification(user_id, &TokenSecret::new(secret))
                .await
            {
                Ok(_) => {
                    state.auth_cache().forget_user(user_id);
                    VerifyOutcome::Verified
                }
                Err(e) if matches!(e.status(), Some(400 | 401 | 404)) => VerifyOutcome::Failed,
                Err(e) => return Err(e.into()),
            }
        }
        (Some(_), _) => VerifyOutcome::NeedsCode,
    };
    let status = match outcome {
        VerifyOutcome::Verified | VerifyOutcome::NeedsCode => StatusCode::OK,
        VerifyOutcome::Failed => StatusCode::BAD_REQUEST,
    };
    page(
        status,
        &VerifyPage {
            layout: Layout::new("Email verification", &csrf.0, signed_in),
            ok: outcome == VerifyOutcome::Verified,
            needs_code: outcome == VerifyOutcome::NeedsCode,
        },
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VerifyOutcome {
    Verified,
    Failed,
    /// A good-looking link opened without the account's session.
    NeedsCode,
}

#[tracing::instrument(skip_all)]
pub async fn resend_verification(
    State(state): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    viewer: Viewer,
) -> Result<Response, AppError> {
    state.throttle(&ip.0, Some(&viewer.user.email))?;
    if !viewer.user.email_verification {
        viewer
            .client
            .account()
            .create_verification(&state.link("/verify"))
            .await?;
    }
    Ok(Redirect::to("/account?notice=verification-sent").into_response())
}

#[tracing::instrument(skip_all)]
pub async fn signout(
    State(state): State<AppState>,
    MaybeViewer(viewer): MaybeViewer,
) -> Result<Response, AppError> {
    if let Some(viewer) = viewer {
        match viewer.client.account().delete_current_session().await {
            Ok(()) => {}
            Err(e) if e.status() == Some(401) || e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        state.auth_cache().forget_user(&viewer.user.id);
    }
    Ok(signed_out(&state, "/signin?notice=signed-out"))
}

#[tracing::instrument(skip_all)]
pub async fn signout_all(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, AppError> {
    viewer.client.account().delete_sessions().await?;
    state.auth_cache().forget_user(&viewer.user.id);
    Ok(signed_out(&state, "/signin?notice=signed-out-all"))
}

pub async fn recover_page(Extension(csrf): Extension<CsrfToken>) -> Result<Response, AppError> {
    page(
        StatusCode::OK,
        &RecoverPage {
            layout: Layout::new("Reset password", &csrf.0, false),
            email: String::new(),
            sent: false,
            error: None,
        },
    )
}

#[derive(Deserialize)]
pub struct RecoverForm {
    email: String,
}

/// Mails a reset link. The answer is the same whether or not the account exists.
#[tracing::instrument(skip_all)]
pub async fn recover(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Extension(ip): Extension<ClientIp>,
    Form(form): Form<RecoverForm>,
) -> Result<Response, AppError> {
    state.throttle(&ip.0, Some(&form.email))?;
    let layout = Layout::new("Reset password", &csrf.0, false);
    let email = match Email::parse(&form.email) {
        Ok(e) => e,
        Err(e) => {
            return page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &RecoverPage {
                    layout,
                    email: form.email.clone(),
                    sent: false,
                    error: Some(e.to_string()),
                },
            );
        }
    };
    match state
        .appwrite()
        .account()
        .create_recovery(email.as_str(), &state.link("/recover/confirm"))
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    page(
        StatusCode::OK,
        &RecoverPage {
            layout,
            email: email.to_string(),
            sent: true,
            error: None,
        },
    )
}

pub async fn recover_confirm_page(
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<VerifyQuery>,
) -> Result<Response, AppError> {
    page(
        StatusCode::OK,
        &RecoverConfirmPage {
            layout: Layout::new("Choose a new password", &csrf.0, false),
            user_id: q.user_id.unwrap_or_default(),
            secret: q.secret.unwrap_or_default(),
            error: None,
        },
    )
}

#[derive(Deserialize)]
pub struct RecoverConfirmForm {
    user_id: String,
    secret: String,
    password: String,
}

/// Sets the new password, then ends every session of the account: whoever knew the old
/// password is out.
#[tracing::instrument(skip_all)]
pub async fn recover_confirm(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    Extension(ip): Extension<ClientIp>,
    Form(form): Form<RecoverConfirmForm>,
) -> Result<Response, AppError> {
    state.throttle(&ip.0, None)?;
    let refuse = |error: &str| {
        page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &RecoverConfirmPage {
                layout: Layout::new("Choose a new password", &csrf.0, false),
                user_id: form.user_id.clone(),
                secret: form.secret.clone(),
                error: Some(error.to_owned()),
            },
        )
    };
    let len = form.password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&len) {
        return refuse("Choose a password of 8 to 256 characters.");
    }
    let valid_link = form.user_id.len() <= 36
        && cookies::is_token(&form.user_id)
        && cookies::is_token(&form.secret);
    if !valid_link {
        return refuse("This reset link is invalid or has expired. Ask for a new one.");
    }
    match state
        .appwrite()
        .anonymous()
        .account()
        .confirm_recovery(
            &form.user_id,
            &TokenSecret::new(&form.secret),
            &form.password,
        )
        .await
    {
        Ok(_) => {}
        Err(e) if matches!(e.status(), Some(400 | 401 | 404)) => {
            return refuse(
                "This reset link is invalid or has expired, or the password is not accepted. \
                 Ask for a new link.",
            );
        }
        Err(e) => return Err(e.into()),
    }
    state
        .appwrite()
        .users()
        .delete_sessions(&form.user_id)
        .await?;
    state.auth_cache().forget_user(&form.user_id);
    Ok(signed_out(&state, "/signin?notice=password-changed"))
}

#[derive(Deserialize)]
pub struct SetPasswordForm {
    password: String,
    #[serde(default)]
    current: String,
}

/// Sets the signed-in user's password. Someone with a password they know gives it (so a stolen
/// session alone cannot lock the owner out); an account whose password nobody knows (a buyer
/// without one, or one just claimed with an emailed code) sets it with the server key.
#[tracing::instrument(skip_all)]
pub async fn set_password(
    State(state): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    viewer: Viewer,
    Form(form): Form<SetPasswordForm>,
) -> Result<Response, AppError> {
    state.throttle(&ip.0, Some(&viewer.user.email))?;
    let refused = || Ok(Redirect::to("/account?notice=password-refused").into_response());
    let len = form.password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&len) {
        return refused();
    }
    if knows_password(&viewer.user) {
        if form.current.is_empty() || form.current.len() > MAX_PASSWORD {
            return Ok(Redirect::to("/account?notice=current-password-wrong").into_response());
        }
        return match viewer
            .client
            .account()
            .update_password(&form.password, Some(&form.current))
            .await
        {
            Ok(_) => Ok(Redirect::to("/account?notice=password-set").into_response()),
            Err(e) if e.status() == Some(401) => {
                Ok(Redirect::to("/account?notice=current-password-wrong").into_response())
            }
            Err(e) if e.status() == Some(400) => refused(),
            Err(e) => Err(e.into()),
        };
    }
    let users = state.appwrite().users();
    match users.update_password(&viewer.user.id, &form.password).await {
        Ok(_) => {}
        Err(e) if e.status() == Some(400) => return refused(),
        Err(e) => return Err(e.into()),
    }
    let mut prefs = viewer.user.prefs.clone();
    if let Some(map) = prefs.as_object_mut()
        && map.remove(PASSWORD_UNKNOWN).is_some()
    {
        users.update_prefs(&viewer.user.id, &prefs).await?;
    }
    Ok(Redirect::to("/account?notice=password-set").into_response())
}
