//! Linking a Discord account: OAuth2 authorization code flow with `state` and PKCE (S256),
//! scopes `identify guilds.join`.
//!
//! `POST /account/discord/link` (CSRF) remembers a random `state` with its PKCE verifier,
//! bound to the signed-in user and their session (in Appwrite, see `pending.rs`: single
//! use, 10 minutes, finished by whichever replica the callback reaches), and sends the browser
//! to Discord. `GET /account/discord/callback` checks that state, exchanges
//! the code, reads the Discord user, stores the link through `g3-access` (which recomputes the
//! roles), adds the user to the customer guild with the roles they should hold, and revokes the
//! access token: tokens live only for the length of the request and are never stored or logged.
//! `POST /account/discord/unlink` (CSRF) removes the link; the bot takes the roles back.

use std::time::Duration;

use askama::Template;
use axum::{
    Extension,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
};
use base64::Engine as _;
use g3_access::LinkOutcome;
use g3_core::Snowflake;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use url::Url;

use crate::{
    AppState, Secret, cookies,
    error::AppError,
    pending::Started,
    security::{CsrfToken, constant_time_eq, new_token},
    session::Viewer,
    templates::{Layout, LinkProblemPage},
};

/// What linking asks Discord for.
pub const SCOPES: &str = "identify guilds.join";
/// How long a started link may wait for Discord's answer (the default of `Settings::link_ttl`).
pub const STATE_TTL: Duration = Duration::from_secs(10 * 60);
/// Link and unlink requests allowed per user within [`LINK_WINDOW`].
pub const LINK_LIMIT: usize = 5;
pub const LINK_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Every call to Discord gives up after this long.
const DISCORD_TIMEOUT: Duration = Duration::from_secs(10);

/// The Discord application and guild (all from the environment; see `.env.example`).
#[derive(Clone, Debug)]
pub struct DiscordSettings {
    pub client_id: String,
    pub client_secret: Secret,
    /// Adds members to the guild (`Authorization: Bot …`).
    pub bot_token: Secret,
    /// The customer guild linked users join.
    pub guild_id: String,
    /// Discord's REST base, `https://discord.com/api`.
    pub api_url: Url,
    /// Where browsers authorize, `https://discord.com/oauth2/authorize`.
    pub authorize_url: Url,
}

impl DiscordSettings {
    pub const DEFAULT_API_URL: &str = "https://discord.com/api";
    pub const DEFAULT_AUTHORIZE_URL: &str = "https://discord.com/oauth2/authorize";
}

/// The configured Discord side: settings and one HTTP client.
pub(crate) struct Discord {
    settings: DiscordSettings,
    api: String,
    http: reqwest::Client,
}

impl Discord {
    pub(crate) fn new(settings: &DiscordSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(DISCORD_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            api: settings.api_url.as_str().trim_end_matches('/').to_owned(),
            settings: settings.clone(),
            http,
        })
    }

    /// The authorize page's origin: the link form's redirect leads there, so the page's
    /// `form-action` must allow it.
    pub(crate) fn authorize_origin(&self) -> String {
        self.settings.authorize_url.origin().ascii_serialization()
    }
}

fn session_hash(state: &AppState, headers: &HeaderMap) -> crate::authcache::Key {
    let name = cookies::session_name(state.secure_cookies());
    crate::authcache::key(cookies::get(headers, name).unwrap_or(""))
}

fn pkce_pair() -> (Secret, String) {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let verifier = b64.encode(rand::random::<[u8; 32]>());
    let challenge = b64.encode(Sha256::digest(verifier.as_bytes()));
    (Secret::new(verifier), challenge)
}

fn actor(viewer: &Viewer) -> String {
    format!("customer:{}", viewer.user.email.to_lowercase())
}

fn throttle(state: &AppState, user_id: &str) -> Result<(), AppError> {
    state
        .0
        .limiter
        .check(&format!("discord:{user_id}"), LINK_LIMIT, LINK_WINDOW)
        .map_err(AppError::LinkRateLimited)
}

/// A clear page for a link that did not happen, with the way back to the account.
fn problem(
    csrf: &CsrfToken,
    status: StatusCode,
    heading: &str,
    message: &str,
) -> Result<Response, AppError> {
    let page = LinkProblemPage {
        layout: Layout::new(heading, &csrf.0, true),
        heading: heading.to_owned(),
        message: message.to_owned(),
    };
    Ok((status, Html(page.render()?)).into_response())
}

fn not_configured(csrf: &CsrfToken) -> Result<Response, AppError> {
    problem(
        csrf,
        StatusCode::NOT_FOUND,
        "Discord linking is off",
        "Linking a Discord account is not available on this site.",
    )
}

/// `POST /account/discord/link`: off to Discord's authorize page.
#[tracing::instrument(skip_all)]
pub async fn start(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    headers: HeaderMap,
    viewer: Viewer,
) -> Result<Response, AppError> {
    let Some(discord) = state.discord() else {
        return not_configured(&csrf);
    };
    throttle(&state, &viewer.user.id)?;
    let link_state = new_token();
    let (verifier, challenge) = pkce_pair();
    let started = Started {
        user_id: viewer.user.id.clone(),
        session: session_hash(&state, &headers),
        verifier,
    };
    state
        .0
        .pending_links
        .insert(&link_state, &started, OffsetDateTime::now_utc())
        .await?;
    let mut url = discord.settings.authorize_url.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &discord.settings.client_id)
        .append_pair("scope", SCOPES)
        .append_pair("state", &link_state)
        .append_pair("redirect_uri", &redirect_uri(&state))
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("prompt", "consent");
    Ok(Redirect::to(url.as_str()).into_response())
}

fn redirect_uri(state: &AppState) -> String {
    state.link("/account/discord/callback")
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// A failed call to Discord.
#[derive(Debug)]
enum CallError {
    /// No answer: refused connection, timeout, broken body.
    Unreachable(reqwest::Error),
    /// An answer with this status and, for OAuth errors, Discord's `error` code.
    Status(u16, Option<String>),
}

impl CallError {
    /// Discord itself is in trouble (as opposed to refusing our request).
    fn is_outage(&self) -> bool {
        match self {
            CallError::Unreachable(_) => true,
            CallError::Status(s, _) => *s >= 500 || *s == 429,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(e) => write!(f, "unreachable: {e}"),
            CallError::Status(s, Some(code)) => write!(f, "status {s} ({code})"),
            CallError::Status(s, None) => write!(f, "status {s}"),
        }
    }
}

/// A short OAuth `error` code, safe to log.
fn is_error_code(code: &str) -> bool {
    code.len() <= 64 && cookies::is_token(code)
}

async fn status_error(resp: reqwest::Response) -> CallError {
    let status = resp.status().as_u16();
    // Only Discord's fixed error code is kept: the body is not logged.
    let code = resp
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .filter(|c| is_error_code(c));
    CallError::Status(status, code)
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

#[derive(Deserialize)]
struct DiscordUser {
    id: String,
    username: String,
}

impl Discord {
    async fn exchange(
        &self,
        code: &str,
        verifier: &Secret,
        redirect_uri: &str,
    ) -> Result<Secret, CallError> {
        let resp = self
            .http
            .post(format!("{}/oauth2/token", self.api))
            .basic_auth(
                &self.settings.client_id,
                Some(self.settings.client_secret.expose()),
            )
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier.expose()),
            ])
            .send()
            .await
            .map_err(CallError::Unreachable)?;
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        let answer: TokenAnswer = resp.json().await.map_err(CallError::Unreachable)?;
        Ok(Secret::new(answer.access_token))
    }

    async fn me(&self, token: &Secret) -> Result<DiscordUser, CallError> {
        let resp = self
            .http
            .get(format!("{}/v10/users/@me", self.api))
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(CallError::Unreachable)?;
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        resp.json().await.map_err(CallError::Unreachable)
    }

    /// Adds the user to the customer guild with `roles` (201 new member, 204 already there).
    async fn join(
        &self,
        discord_user_id: &str,
        token: &Secret,
        roles: &[String],
    ) -> Result<(), CallError> {
        let resp = self
            .http
            .put(format!(
                "{}/v10/guilds/{}/members/{}",
                self.api, self.settings.guild_id, discord_user_id
            ))
            .header(
                reqwest::header::AUTHORIZATION,
                format!("Bot {}", self.settings.bot_token.expose()),
            )
            .json(&serde_json::json!({ "access_token": token.expose(), "roles": roles }))
            .send()
            .await
            .map_err(CallError::Unreachable)?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(status_error(resp).await)
        }
    }

    /// Revokes the grant behind `token`; failures are only logged (it expires on its own).
    async fn revoke(&self, token: &Secret) {
        let result = self
            .http
            .post(format!("{}/oauth2/token/revoke", self.api))
            .basic_auth(
                &self.settings.client_id,
                Some(self.settings.client_secret.expose()),
            )
            .form(&[
                ("token", token.expose()),
                ("token_type_hint", "access_token"),
            ])
            .send()
            .await;
        match result {
            Ok(resp) if resp.status().is_success() => {}
            Ok(resp) => tracing::warn!(
                status = resp.status().as_u16(),
                "Discord token revoke refused"
            ),
            Err(e) => tracing::warn!(error = %e, "Discord token revoke failed"),
        }
    }
}

const UNREACHABLE: &str = "Discord is not answering right now, so nothing was changed. Please \
try again in a few minutes.";

/// The page for a callback that cannot be matched to a started link.
fn start_again(csrf: &CsrfToken) -> Result<Response, AppError> {
    problem(
        csrf,
        StatusCode::BAD_REQUEST,
        "Link not completed",
        "This link request has expired or was already used, so nothing was changed. Start \
         again from your account page.",
    )
}

/// `GET /account/discord/callback`: Discord sends the browser back here.
#[tracing::instrument(skip_all)]
pub async fn callback(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
    viewer: Viewer,
) -> Result<Response, AppError> {
    let Some(discord) = state.discord() else {
        return not_configured(&csrf);
    };
    // Taken (and so spent) before anything else is checked: a state tried by the wrong session
    // is gone too.
    let pending = match q
        .state
        .as_deref()
        .filter(|s| s.len() <= 128 && cookies::is_token(s))
    {
        Some(s) => {
            state
                .0
                .pending_links
                .take(s, OffsetDateTime::now_utc())
                .await?
        }
        None => None,
    };
    let Some(pending) = pending else {
        tracing::info!("Discord callback with a missing, unknown, used or expired state");
        return start_again(&csrf);
    };
    if pending.user_id != viewer.user.id
        || !constant_time_eq(&pending.session, &session_hash(&state, &headers))
    {
        tracing::warn!("Discord callback from another session than the one that started it");
        return start_again(&csrf);
    }
    if let Some(error) = q.error.as_deref() {
        if error == "access_denied" {
            return Ok(Redirect::to("/account?notice=discord-cancelled").into_response());
        }
        let error = if is_error_code(error) {
            error
        } else {
            "(malformed)"
        };
        tracing::warn!(error = %error, "Discord refused the authorization");
        return problem(
            &csrf,
            StatusCode::BAD_GATEWAY,
            "Link not completed",
            "Discord refused the request, so nothing was changed. Please try again later.",
        );
    }
    let Some(code) = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 512)
    else {
        return start_again(&csrf);
    };
    let token = match discord
        .exchange(code, &pending.verifier, &redirect_uri(&state))
        .await
    {
        Ok(t) => t,
        Err(e) if e.is_outage() => {
            tracing::warn!(error = %e, "Discord token exchange failed");
            return problem(
                &csrf,
                StatusCode::BAD_GATEWAY,
                "Discord unavailable",
                UNREACHABLE,
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "Discord refused the token exchange");
            return problem(
                &csrf,
                StatusCode::BAD_REQUEST,
                "Link not completed",
                "Discord did not accept this sign-in (it may have expired or been used \
                 already), so nothing was changed. Start again from your account page.",
            );
        }
    };
    let outcome = finish(&state, discord, &viewer, &token).await;
    discord.revoke(&token).await;
    match outcome? {
        Finished::Linked { joined: true } => {
            Ok(Redirect::to("/account?notice=discord-linked").into_response())
        }
        Finished::Linked { joined: false } => {
            Ok(Redirect::to("/account?notice=discord-linked-not-joined").into_response())
        }
        Finished::MeFailed(e) if e.is_outage() => {
            tracing::warn!(error = %e, "Discord users/@me failed");
            problem(
                &csrf,
                StatusCode::BAD_GATEWAY,
                "Discord unavailable",
                UNREACHABLE,
            )
        }
        Finished::MeFailed(e) => {
            tracing::warn!(error = %e, "Discord refused users/@me");
            problem(
                &csrf,
                StatusCode::BAD_GATEWAY,
                "Link not completed",
                "Discord did not tell us which account you chose, so nothing was changed. \
                 Start again from your account page.",
            )
        }
        Finished::Taken => problem(
            &csrf,
            StatusCode::CONFLICT,
            "Discord account already linked",
            "This Discord account is already linked to another G3netic Signals account, so it \
             was not linked here. Sign in to that account and unlink it there first, or link a \
             different Discord account.",
        ),
    }
}

enum Finished {
    Linked { joined: bool },
    MeFailed(CallError),
    Taken,
}

/// With a live access token: who is it, store the link, join the guild.
async fn finish(
    state: &AppState,
    discord: &Discord,
    viewer: &Viewer,
    token: &Secret,
) -> Result<Finished, AppError> {
    let me = match discord.me(token).await {
        Ok(me) => me,
        Err(e) => return Ok(Finished::MeFailed(e)),
    };
    if !Snowflake::is_valid(&me.id) {
        return Ok(Finished::MeFailed(CallError::Status(200, None)));
    }
    let access = state.access();
    let actor = actor(viewer);
    match access
        .link_discord(&viewer.user.id, &me.id, Some(&me.username), &actor)
        .await?
    {
        LinkOutcome::TakenByOther { .. } => {
            tracing::info!(discord = %me.id, "Discord account already linked to another customer");
            return Ok(Finished::Taken);
        }
        LinkOutcome::Linked { .. } | LinkOutcome::Unchanged => {}
    }
    tracing::info!(discord = %me.id, "Discord linked by the customer");
    // `link_discord` has just synced the role state; only the roles themselves are needed.
    let roles = if access.managed_roles().is_empty() {
        Vec::new()
    } else {
        access.desired_roles(&viewer.user.id).await?.roles
    };
    let joined = match discord.join(&me.id, token, &roles).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, discord = %me.id, "joining the customer guild failed");
            false
        }
    };
    Ok(Finished::Linked { joined })
}

/// `POST /account/discord/unlink`.
#[tracing::instrument(skip_all)]
pub async fn unlink(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    throttle(&state, &viewer.user.id)?;
    let removed = state
        .access()
        .unlink_discord(&viewer.user.id, &actor(&viewer), "unlinked by the customer")
        .await?;
    Ok(Redirect::to(if removed.is_some() {
        "/account?notice=discord-unlinked"
    } else {
        "/account?notice=discord-not-linked"
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_s256_of_the_verifier() {
        let (verifier, challenge) = pkce_pair();
        assert_eq!(verifier.expose().len(), 43);
        let again = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.expose().as_bytes()));
        assert_eq!(challenge, again);
        assert_ne!(pkce_pair().1, challenge);
    }
}
