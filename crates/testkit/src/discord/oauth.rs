//! The fake as an OAuth2 provider, the way the web app's "Link Discord" uses Discord: the
//! authorize page (`GET /oauth2/authorize`, a small form where the sandbox user types a Discord
//! username), the token endpoint (`POST /api/oauth2/token`: authorization codes are single use,
//! bound to their client, `redirect_uri` and PKCE S256 challenge), `users/@me` with a Bearer
//! token, token revocation, and the access-token check of the guild join
//! (`PUT /guilds/{g}/members/{u}` with `{access_token}`).
//!
//! Tests drive it without HTML through [`FakeDiscord::approve`] and [`FakeDiscord::deny`], and
//! script failures with [`FakeDiscord::fail_oauth_next`] and [`FakeDiscord::set_down`]. Every
//! token issued is kept, with whether it was revoked ([`FakeDiscord::oauth_tokens`]).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use appwrite_emulator::util::escape_html as escape;
use axum::{
    Form, Json,
    extract::{Query, Request, State as AxState},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::{
    FakeDiscord,
    state::{FakeUser, Grant, IssuedToken, OAuthApp, OAuthRoute, Shared, State, lock, record},
};

/// How long an authorization code may wait for its exchange (Discord: about 10 minutes).
const CODE_TTL: Duration = Duration::from_secs(600);
/// What the token answer says about access-token lifetime (Discord: 7 days).
const TOKEN_EXPIRES_IN: u64 = 604_800;
/// Scopes the fake knows; others are refused at the authorize step.
const KNOWN_SCOPES: &[&str] = &["identify", "email", "guilds", "guilds.join", "connections"];

/// The query of an authorize URL.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeParams {
    #[serde(default)]
    pub response_type: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    pub state: Option<String>,
    #[serde(default)]
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
}

impl AuthorizeParams {
    /// Reads the query of a full authorize URL.
    pub fn from_url(url: &str) -> Result<AuthorizeParams, String> {
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        parse_authorize_query(query)
    }

    fn scopes(&self) -> Vec<String> {
        self.scope
            .split([' ', '+'])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

fn parse_authorize_query(query: &str) -> Result<AuthorizeParams, String> {
    let pairs: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    serde_json::from_value(json!(pairs)).map_err(|e| format!("bad authorize query: {e}"))
}

/// Why an authorization did not produce a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// Discord shows an error page and does not redirect (unknown client, unregistered
    /// `redirect_uri`).
    Refused(String),
    /// Discord redirects back with `error=<code>` (and the `state`).
    Redirect { error: String, description: String },
}

fn random_token(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// `BASE64URL(SHA256(verifier))`, PKCE's S256.
pub fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl State {
    fn new_user(&mut self, username: &str) -> FakeUser {
        if let Some(u) = self.oauth.users.iter().find(|u| u.username == username) {
            return u.clone();
        }
        let (id, _) = self.snowflake();
        self.push_user(id, username)
    }

    fn push_user(&mut self, id: u64, username: &str) -> FakeUser {
        let user = FakeUser {
            id,
            username: username.to_owned(),
            global_name: None,
        };
        self.oauth.users.push(user.clone());
        user
    }

    /// Checks an authorize request; `Ok` is the app it is for.
    fn check_authorize(&self, p: &AuthorizeParams) -> Result<OAuthApp, AuthorizeError> {
        let Some(app) = self
            .oauth
            .apps
            .iter()
            .find(|a| a.client_id == p.client_id)
            .cloned()
        else {
            return Err(AuthorizeError::Refused("Unknown client_id".into()));
        };
        if !app.redirect_uris.contains(&p.redirect_uri) {
            return Err(AuthorizeError::Refused(
                "Invalid OAuth2 redirect_uri".into(),
            ));
        }
        let redirect = |error: &str, description: &str| AuthorizeError::Redirect {
            error: error.into(),
            description: description.into(),
        };
        if p.response_type != "code" {
            return Err(redirect(
                "unsupported_response_type",
                "response_type must be code",
            ));
        }
        let scopes = p.scopes();
        if scopes.is_empty() || scopes.iter().any(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
            return Err(redirect("invalid_scope", "The requested scope is invalid"));
        }
        match (&p.code_challenge, p.code_challenge_method.as_deref()) {
            (None, None) => {}
            (Some(c), Some("S256")) if c.len() == 43 => {}
            _ => {
                return Err(redirect(
                    "invalid_request",
                    "code_challenge must be S256 of a verifier",
                ));
            }
        }
        Ok(app)
    }

    fn issue_code(&mut self, p: &AuthorizeParams, user_id: u64) -> String {
        let code = random_token(24);
        self.oauth.codes.insert(
            code.clone(),
            Grant {
                client_id: p.client_id.clone(),
                redirect_uri: p.redirect_uri.clone(),
                user_id,
                scopes: p.scopes(),
                challenge: p.code_challenge.clone(),
                expires: Instant::now() + CODE_TTL,
            },
        );
        code
    }

    fn issue_token(&mut self, client_id: &str, user_id: u64, scopes: Vec<String>) -> IssuedToken {
        let token = IssuedToken {
            access_token: random_token(24),
            refresh_token: random_token(24),
            client_id: client_id.to_owned(),
            user_id,
            scopes,
            revoked: false,
        };
        self.oauth.tokens.push(token.clone());
        token
    }

    /// The live token behind `Bearer <access_token>`.
    fn bearer(&self, access_token: &str) -> Option<&IssuedToken> {
        self.oauth
            .tokens
            .iter()
            .find(|t| t.access_token == access_token && !t.revoked)
    }

    fn take_fault(&mut self, route: OAuthRoute) -> Option<u16> {
        let at = self.oauth.faults.iter().position(|(r, _)| *r == route)?;
        self.oauth.faults.remove(at).map(|(_, status)| status)
    }
}

/// May `access_token` add `user` to a guild (`guilds.join`, issued for that user, live)?
pub(crate) fn join_allowed(s: &State, access_token: &str, user: u64) -> bool {
    s.bearer(access_token)
        .is_some_and(|t| t.user_id == user && t.scopes.iter().any(|x| x == "guilds.join"))
}

/// Where Discord sends the browser after the user's choice (or an error it redirects).
fn redirect_target(p: &AuthorizeParams, outcome: Result<String, (String, String)>) -> String {
    let mut pairs: Vec<(&str, String)> = match outcome {
        Ok(code) => vec![("code", code)],
        Err((error, description)) => vec![("error", error), ("error_description", description)],
    };
    if let Some(state) = &p.state {
        pairs.push(("state", state.clone()));
    }
    let mut url = url::Url::parse(&p.redirect_uri).expect("registered redirect URIs are URLs");
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

/// Where "Cancel" sends the browser: `error=access_denied` (and the `state`).
fn denied_target(p: &AuthorizeParams) -> String {
    redirect_target(
        p,
        Err((
            "access_denied".into(),
            "The resource owner or authorization server denied the request".into(),
        )),
    )
}

/// Discord usernames: 2 to 32 of lower-case letters, digits, `_` and `.`.
fn valid_username(name: &str) -> bool {
    (2..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

impl FakeDiscord {
    /// Registers an OAuth2 application with these exact redirect URIs.
    pub fn register_app(&self, name: &str, redirect_uris: &[&str]) -> OAuthApp {
        let mut s = self.lock();
        let (id, _) = s.snowflake();
        let app = OAuthApp {
            client_id: id.to_string(),
            client_secret: random_token(24),
            name: name.to_owned(),
            redirect_uris: redirect_uris.iter().map(|r| (*r).to_owned()).collect(),
        };
        s.oauth.apps.push(app.clone());
        app
    }

    /// Registers an OAuth2 application with chosen credentials (a standalone sandbox whose
    /// client id and secret are configured into web before it starts).
    pub fn register_app_with(&self, app: OAuthApp) -> OAuthApp {
        let mut s = self.lock();
        s.oauth.apps.retain(|a| a.client_id != app.client_id);
        s.oauth.apps.push(app.clone());
        app
    }

    /// The Discord account with this username, created on first use.
    pub fn discord_user(&self, username: &str) -> FakeUser {
        self.lock().new_user(username)
    }

    /// Registers a Discord account with a chosen id (a fixture, or an account kept from an
    /// earlier run). An account already known by that id, or by that username, is returned
    /// unchanged.
    pub fn add_discord_user(&self, id: u64, username: &str) -> FakeUser {
        let mut s = self.lock();
        if let Some(u) = s
            .oauth
            .users
            .iter()
            .find(|u| u.id == id || u.username == username)
        {
            return u.clone();
        }
        s.push_user(id, username)
    }

    /// Every Discord account the fake knows.
    pub fn discord_users(&self) -> Vec<FakeUser> {
        self.lock().oauth.users.clone()
    }

    /// What pressing "Authorize" as `user_id` does: checks the request as Discord would and
    /// returns a fresh authorization code.
    pub fn authorize(&self, p: &AuthorizeParams, user_id: u64) -> Result<String, AuthorizeError> {
        let mut s = self.lock();
        s.check_authorize(p)?;
        Ok(s.issue_code(p, user_id))
    }

    /// Opens `authorize_url` and approves as `username` (created if new): the URL the browser
    /// is then sent to (the `redirect_uri` with `code` and `state`, or with `error` when
    /// Discord would redirect one). `Err` when Discord would show an error page instead.
    pub fn approve(&self, authorize_url: &str, username: &str) -> Result<String, String> {
        let p = AuthorizeParams::from_url(authorize_url)?;
        let user = self.discord_user(username);
        match self.authorize(&p, user.id) {
            Ok(code) => Ok(redirect_target(&p, Ok(code))),
            Err(AuthorizeError::Redirect { error, description }) => {
                Ok(redirect_target(&p, Err((error, description))))
            }
            Err(AuthorizeError::Refused(why)) => Err(why),
        }
    }

    /// Opens `authorize_url` and presses "Cancel": the `redirect_uri` with
    /// `error=access_denied` and the `state`.
    pub fn deny(&self, authorize_url: &str) -> Result<String, String> {
        let p = AuthorizeParams::from_url(authorize_url)?;
        match self.lock().check_authorize(&p) {
            Err(AuthorizeError::Refused(why)) => Err(why),
            _ => Ok(denied_target(&p)),
        }
    }

    /// A live access token for `user_id` with `scopes`, as if an app had just exchanged a code.
    pub fn grant_token(&self, user_id: u64, scopes: &[&str]) -> String {
        self.lock()
            .issue_token(
                "testkit",
                user_id,
                scopes.iter().map(|s| (*s).to_owned()).collect(),
            )
            .access_token
    }

    /// Every token issued so far (revoked ones included), oldest first.
    pub fn oauth_tokens(&self) -> Vec<IssuedToken> {
        self.lock().oauth.tokens.clone()
    }

    /// Answers the next request to `route` with `status` and no effect (queued in order).
    pub fn fail_oauth_next(&self, route: OAuthRoute, status: u16) {
        self.lock().oauth.faults.push_back((route, status));
    }

    /// While `down`, every REST and OAuth route of the fake answers 503 (an outage at Discord's
    /// edge).
    pub fn set_down(&self, down: bool) {
        self.lock().oauth.down = down;
    }
}

/// Records an OAuth request (its body is not kept: it holds codes and secrets).
fn note(state: &Shared, method: Method, path: &str, status: StatusCode) {
    let mut rec = record(&method, path, None, 0);
    rec.channel_id = None;
    rec.status = status.as_u16();
    lock(state).requests.push(rec);
}

/// The outage switch, in front of every REST and OAuth route.
pub(crate) async fn outage(AxState(state): AxState<Shared>, req: Request, next: Next) -> Response {
    if lock(&state).oauth.down {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Html("<html><body>upstream connect error</body></html>"),
        )
            .into_response();
    }
    next.run(req).await
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

fn fault_response(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(json!({ "message": format!("{}: {}", status.as_u16(), status.canonical_reason().unwrap_or("Error")), "code": 0 })),
    )
        .into_response()
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · Discord \
         (fake)</title><style>body{{font-family:sans-serif;background:#313338;color:#dbdee1;\
         display:flex;justify-content:center;padding:3rem}}main{{background:#2b2d31;\
         padding:2rem;border-radius:8px;max-width:28rem}}input,button{{font-size:1rem;\
         padding:.4rem;margin:.3rem 0}}.muted{{color:#949ba4}}</style></head><body><main>{}\
         </main></body></html>",
        escape(title),
        body
    );
    (status, Html(html)).into_response()
}

fn refused_page(why: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Error",
        &format!("<h1>Something went wrong</h1><p>{}</p>", escape(why)),
    )
}

/// The consent page, with a field for the Discord username to act as.
fn consent_page(app: &OAuthApp, p: &AuthorizeParams, users: &[FakeUser], error: &str) -> Response {
    let hidden = [
        ("response_type", p.response_type.as_str()),
        ("client_id", p.client_id.as_str()),
        ("scope", p.scope.as_str()),
        ("state", p.state.as_deref().unwrap_or("")),
        ("redirect_uri", p.redirect_uri.as_str()),
        ("code_challenge", p.code_challenge.as_deref().unwrap_or("")),
        (
            "code_challenge_method",
            p.code_challenge_method.as_deref().unwrap_or(""),
        ),
    ]
    .iter()
    .map(|(k, v)| {
        format!(
            "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
            escape(v)
        )
    })
    .collect::<String>();
    let scopes = p
        .scopes()
        .iter()
        .map(|s| {
            let what = match s.as_str() {
                "identify" => "Access your username, avatar and banner",
                "guilds.join" => "Join servers for you",
                "guilds" => "Know what servers you're in",
                "email" => "Access your email address",
                _ => "Access your connections",
            };
            format!("<li>{}</li>", escape(what))
        })
        .collect::<String>();
    let options = users
        .iter()
        .map(|u| format!("<option value=\"{}\">", escape(&u.username)))
        .collect::<String>();
    let error = if error.is_empty() {
        String::new()
    } else {
        format!("<p role=\"alert\">{}</p>", escape(error))
    };
    let body = format!(
        "<h1>Authorize {name}</h1><p class=\"muted\">An external application wants to access \
         your Discord account. This is the testkit sandbox: type any Discord username to act \
         as that account (it is created if new).</p><p>This will allow {name} to:</p><ul>\
         {scopes}</ul>{error}<form method=\"post\" action=\"/oauth2/authorize\">{hidden}\
         <label for=\"username\">Discord username</label><br><input id=\"username\" \
         name=\"username\" list=\"known-users\" required minlength=\"2\" maxlength=\"32\" \
         pattern=\"[a-z0-9_.]+\" autocomplete=\"off\"><datalist id=\"known-users\">{options}\
         </datalist><br><button type=\"submit\" name=\"decision\" value=\"allow\">Authorize\
         </button> <button type=\"submit\" name=\"decision\" value=\"deny\" \
         formnovalidate>Cancel</button></form><p class=\"muted\">You will be sent to {target}\
         </p>",
        name = escape(&app.name),
        target = escape(&p.redirect_uri),
    );
    page(
        if error.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        },
        &format!("Authorize {}", app.name),
        &body,
    )
}

/// `GET /oauth2/authorize`: the consent page.
pub(crate) async fn authorize_page(
    AxState(state): AxState<Shared>,
    Query(p): Query<AuthorizeParams>,
) -> Response {
    let (checked, users) = {
        let s = lock(&state);
        (s.check_authorize(&p), s.oauth.users.clone())
    };
    let response = match checked {
        Ok(app) => consent_page(&app, &p, &users, ""),
        Err(AuthorizeError::Refused(why)) => refused_page(&why),
        Err(AuthorizeError::Redirect { error, description }) => {
            Redirect::to(&redirect_target(&p, Err((error, description)))).into_response()
        }
    };
    note(&state, Method::GET, "/oauth2/authorize", response.status());
    response
}

#[derive(Deserialize)]
pub(crate) struct ConsentForm {
    #[serde(flatten)]
    params: AuthorizeParams,
    #[serde(default)]
    username: String,
    #[serde(default)]
    decision: String,
}

/// `POST /oauth2/authorize`: the user's choice on the consent page.
pub(crate) async fn authorize_submit(
    AxState(state): AxState<Shared>,
    Form(form): Form<ConsentForm>,
) -> Response {
    let mut p = form.params;
    // Empty hidden fields stand for absent parameters.
    p.state = p.state.filter(|s| !s.is_empty());
    p.code_challenge = p.code_challenge.filter(|s| !s.is_empty());
    p.code_challenge_method = p.code_challenge_method.filter(|s| !s.is_empty());
    let response = {
        let mut s = lock(&state);
        match s.check_authorize(&p) {
            Err(AuthorizeError::Refused(why)) => refused_page(&why),
            Err(AuthorizeError::Redirect { error, description }) => {
                Redirect::to(&redirect_target(&p, Err((error, description)))).into_response()
            }
            Ok(_) if form.decision != "allow" => Redirect::to(&denied_target(&p)).into_response(),
            Ok(app) => {
                let username = form.username.trim().to_lowercase();
                if valid_username(&username) {
                    let user = s.new_user(&username);
                    let code = s.issue_code(&p, user.id);
                    Redirect::to(&redirect_target(&p, Ok(code))).into_response()
                } else {
                    let users = s.oauth.users.clone();
                    consent_page(
                        &app,
                        &p,
                        &users,
                        "Usernames are 2 to 32 lower-case letters, digits, _ or .",
                    )
                }
            }
        }
    };
    note(&state, Method::POST, "/oauth2/authorize", response.status());
    response
}

/// The client credentials of a token or revoke request: Basic auth, else the form's.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        return Some((id.to_owned(), secret.to_owned()));
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

fn client_ok(s: &State, creds: Option<&(String, String)>) -> bool {
    creds.is_some_and(|(id, secret)| {
        s.oauth
            .apps
            .iter()
            .any(|a| a.client_id == *id && a.client_secret == *secret)
    })
}

/// `POST /api/oauth2/token`: exchanges an authorization code.
pub(crate) async fn token(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let response = {
        let mut s = lock(&state);
        exchange(&mut s, &headers, &form)
    };
    note(&state, Method::POST, "/api/oauth2/token", response.status());
    response
}

fn exchange(s: &mut State, headers: &HeaderMap, form: &HashMap<String, String>) -> Response {
    if let Some(status) = s.take_fault(OAuthRoute::Token) {
        return fault_response(status);
    }
    let creds = client_credentials(headers, form);
    if !client_ok(s, creds.as_ref()) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Invalid client");
    }
    let client_id = creds.map(|c| c.0).unwrap_or_default();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if field("grant_type") != "authorization_code" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant type",
        );
    }
    // A code is spent by its first exchange, good or bad.
    let Some(grant) = s
        .oauth
        .codes
        .remove(field("code"))
        .filter(|g| g.expires >= Instant::now() && g.client_id == client_id)
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid \"code\" in request.",
        );
    };
    if grant.redirect_uri != field("redirect_uri") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid \"redirect_uri\" in request.",
        );
    }
    if let Some(challenge) = &grant.challenge {
        let verifier = field("code_verifier");
        if verifier.len() < 43 || verifier.len() > 128 || pkce_challenge(verifier) != *challenge {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Invalid \"code_verifier\" in request.",
            );
        }
    }
    let token = s.issue_token(&client_id, grant.user_id, grant.scopes);
    Json(json!({
        "token_type": "Bearer",
        "access_token": token.access_token,
        "expires_in": TOKEN_EXPIRES_IN,
        "refresh_token": token.refresh_token,
        "scope": token.scopes.join(" "),
    }))
    .into_response()
}

/// `POST /api/oauth2/token/revoke`: revokes the grant behind an access or refresh token.
/// Unknown tokens are fine (RFC 7009).
pub(crate) async fn revoke(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let response = {
        let mut s = lock(&state);
        if let Some(status) = s.take_fault(OAuthRoute::Revoke) {
            fault_response(status)
        } else if !client_ok(&s, client_credentials(&headers, &form).as_ref()) {
            oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Invalid client")
        } else {
            let given = form.get("token").map(String::as_str).unwrap_or("");
            for t in s.oauth.tokens.iter_mut() {
                if !given.is_empty() && (t.access_token == given || t.refresh_token == given) {
                    t.revoked = true;
                }
            }
            Json(json!({})).into_response()
        }
    };
    note(
        &state,
        Method::POST,
        "/api/oauth2/token/revoke",
        response.status(),
    );
    response
}

/// `users/@me` with `Authorization: Bearer …`; `None` when the request is not a Bearer one
/// (the bot's own `Bot …` request is answered by the caller).
pub(crate) fn bearer_me(state: &Shared, headers: &HeaderMap, path: &str) -> Option<Response> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())?;
    let token = auth.strip_prefix("Bearer ")?.trim();
    let response = {
        let mut s = lock(state);
        if let Some(status) = s.take_fault(OAuthRoute::Me) {
            fault_response(status)
        } else {
            let user = s
                .bearer(token)
                .filter(|t| t.scopes.iter().any(|x| x == "identify"))
                .map(|t| {
                    s.oauth
                        .users
                        .iter()
                        .find(|u| u.id == t.user_id)
                        .cloned()
                        // A token from `grant_token` for an id the fake never named.
                        .unwrap_or_else(|| FakeUser {
                            id: t.user_id,
                            username: format!("user{}", t.user_id),
                            global_name: None,
                        })
                });
            match user {
                Some(u) => Json(user_json(&u)).into_response(),
                None => (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({ "message": "401: Unauthorized", "code": 0 })),
                )
                    .into_response(),
            }
        }
    };
    note(state, Method::GET, path, response.status());
    Some(response)
}

fn user_json(u: &FakeUser) -> Value {
    json!({
        "id": u.id.to_string(),
        "username": u.username,
        "discriminator": "0",
        "global_name": u.global_name,
        "avatar": null,
        "public_flags": 0,
        "flags": 0,
        "mfa_enabled": false,
        "locale": "en-US",
        "premium_type": 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REDIRECT: &str = "http://127.0.0.1:1/account/discord/callback";

    fn authorize_url(fake: &FakeDiscord, app: &OAuthApp, challenge: Option<&str>) -> String {
        let mut url = url::Url::parse(&format!("{}/oauth2/authorize", fake.base_url())).unwrap();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &app.client_id)
                .append_pair("scope", "identify guilds.join")
                .append_pair("state", "st-1")
                .append_pair("redirect_uri", REDIRECT);
            if let Some(c) = challenge {
                q.append_pair("code_challenge", c)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        url.to_string()
    }

    fn query_of(url: &str) -> HashMap<String, String> {
        url::Url::parse(url)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect()
    }

    async fn exchange_code(
        fake: &FakeDiscord,
        app: &OAuthApp,
        code: &str,
        verifier: &str,
    ) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/api/oauth2/token", fake.base_url()))
            .basic_auth(&app.client_id, Some(&app.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .unwrap()
    }

    const VERIFIER: &str = "0123456789abcdefghijklmnopqrstuvwxyz0123456789";

    #[tokio::test]
    async fn a_code_is_exchanged_once_with_the_right_verifier() {
        let fake = FakeDiscord::spawn().await;
        let app = fake.register_app("G3", &[REDIRECT]);
        let url = authorize_url(&fake, &app, Some(&pkce_challenge(VERIFIER)));
        let back = query_of(&fake.approve(&url, "alice").unwrap());
        assert_eq!(back["state"], "st-1");
        let code = &back["code"];

        let wrong = exchange_code(&fake, &app, code, &"x".repeat(43)).await;
        assert_eq!(wrong.status(), 400);
        let body: Value = wrong.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant");
        // The failed attempt spent the code.
        let again = exchange_code(&fake, &app, code, VERIFIER).await;
        assert_eq!(again.status(), 400);

        let back = query_of(&fake.approve(&url, "alice").unwrap());
        let ok = exchange_code(&fake, &app, &back["code"], VERIFIER).await;
        assert_eq!(ok.status(), 200);
        let token: Value = ok.json().await.unwrap();
        let access = token["access_token"].as_str().unwrap().to_owned();
        assert_eq!(token["scope"], "identify guilds.join");
        let replay = exchange_code(&fake, &app, &back["code"], VERIFIER).await;
        assert_eq!(replay.status(), 400);

        let me = |path: &'static str| {
            reqwest::Client::new()
                .get(format!("{}{path}", fake.base_url()))
                .bearer_auth(&access)
                .send()
        };
        let user: Value = me("/api/v10/users/@me")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(user["username"], "alice");
        assert_eq!(user["id"], fake.discord_user("alice").id.to_string());
        assert_eq!(me("/api/users/@me").await.unwrap().status(), 200);
        // The bot's own token still gets the bot.
        let bot: Value = reqwest::Client::new()
            .get(format!("{}/api/v10/users/@me", fake.base_url()))
            .header("authorization", "Bot x")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(bot["bot"], true);

        let revoked = reqwest::Client::new()
            .post(format!("{}/api/oauth2/token/revoke", fake.base_url()))
            .form(&[
                ("token", access.as_str()),
                ("client_id", &app.client_id),
                ("client_secret", &app.client_secret),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), 200);
        assert_eq!(me("/api/v10/users/@me").await.unwrap().status(), 401);
        let tokens = fake.oauth_tokens();
        assert_eq!(tokens.len(), 1);
        assert!(tokens[0].revoked);
    }

    #[tokio::test]
    async fn the_redirect_uri_and_client_must_match() {
        let fake = FakeDiscord::spawn().await;
        let app = fake.register_app("G3", &[REDIRECT]);
        let url = authorize_url(&fake, &app, None).replace("127.0.0.1%3A1", "evil.example");
        assert_eq!(
            fake.approve(&url, "bob"),
            Err("Invalid OAuth2 redirect_uri".into())
        );
        let url = authorize_url(&fake, &app, None);
        let code = query_of(&fake.approve(&url, "bob").unwrap())["code"].clone();
        let bad_secret = reqwest::Client::new()
            .post(format!("{}/api/oauth2/token", fake.base_url()))
            .basic_auth(&app.client_id, Some("wrong"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(bad_secret.status(), 401);
        let other_redirect = reqwest::Client::new()
            .post(format!("{}/api/oauth2/token", fake.base_url()))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:2/cb"),
                ("client_id", &app.client_id),
                ("client_secret", &app.client_secret),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(other_redirect.status(), 400);
        let denied = query_of(&fake.deny(&url).unwrap());
        assert_eq!(denied["error"], "access_denied");
        assert_eq!(denied["state"], "st-1");
    }

    #[tokio::test]
    async fn the_consent_page_creates_the_user_and_redirects_with_the_state() {
        let fake = FakeDiscord::spawn().await;
        let app = fake.register_app("G3 <Signals>", &[REDIRECT]);
        let url = authorize_url(&fake, &app, Some(&pkce_challenge(VERIFIER)));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let page = http.get(&url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("Authorize G3 &lt;Signals&gt;"), "{html}");
        let mut form: Vec<(String, String)> = query_of(&url).into_iter().collect();
        form.push(("username".into(), "Carol_1".into()));
        form.push(("decision".into(), "allow".into()));
        let submitted = http
            .post(format!("{}/oauth2/authorize", fake.base_url()))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(submitted.status(), 303);
        let location = submitted.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(REDIRECT), "{location}");
        let back = query_of(&location);
        assert_eq!(back["state"], "st-1");
        assert_eq!(
            exchange_code(&fake, &app, &back["code"], VERIFIER)
                .await
                .status(),
            200
        );
        assert_eq!(fake.discord_users()[0].username, "carol_1");

        form.retain(|(k, _)| k != "decision");
        form.push(("decision".into(), "deny".into()));
        let cancelled = http
            .post(format!("{}/oauth2/authorize", fake.base_url()))
            .form(&form)
            .send()
            .await
            .unwrap();
        let back = query_of(cancelled.headers()["location"].to_str().unwrap());
        assert_eq!(back["error"], "access_denied");
        assert!(!back.contains_key("code"));
    }

    #[tokio::test]
    async fn scripted_failures_and_outages() {
        let fake = FakeDiscord::spawn().await;
        let app = fake.register_app("G3", &[REDIRECT]);
        let url = authorize_url(&fake, &app, Some(&pkce_challenge(VERIFIER)));
        let code = query_of(&fake.approve(&url, "dan").unwrap())["code"].clone();
        fake.fail_oauth_next(OAuthRoute::Token, 500);
        assert_eq!(
            exchange_code(&fake, &app, &code, VERIFIER).await.status(),
            500
        );
        // The fault had no effect: the code still works.
        assert_eq!(
            exchange_code(&fake, &app, &code, VERIFIER).await.status(),
            200
        );
        fake.set_down(true);
        assert_eq!(
            exchange_code(&fake, &app, "any", VERIFIER).await.status(),
            503
        );
        let down = reqwest::get(format!("{}/api/v10/users/@me", fake.base_url()))
            .await
            .unwrap();
        assert_eq!(down.status(), 503);
        fake.set_down(false);
        let up = reqwest::get(format!("{}/api/v10/users/@me", fake.base_url()))
            .await
            .unwrap();
        assert_eq!(up.status(), 200);
    }

    #[tokio::test]
    async fn joining_needs_the_users_own_live_token() {
        let fake = FakeDiscord::spawn().await;
        let erin = fake.discord_user("erin");
        let join = |user: u64, token: String| {
            reqwest::Client::new()
                .put(format!(
                    "{}/api/v10/guilds/5/members/{user}",
                    fake.base_url()
                ))
                .header("authorization", "Bot bot-token")
                .json(&json!({ "access_token": token, "roles": ["7"] }))
                .send()
        };
        let identify_only = fake.grant_token(erin.id, &["identify"]);
        assert_eq!(join(erin.id, identify_only).await.unwrap().status(), 403);
        let token = fake.grant_token(erin.id, &["identify", "guilds.join"]);
        assert_eq!(
            join(erin.id + 1, token.clone()).await.unwrap().status(),
            403
        );
        assert_eq!(join(erin.id, "made-up".into()).await.unwrap().status(), 403);
        assert_eq!(fake.member_roles(5, erin.id), None);
        let created = join(erin.id, token.clone()).await.unwrap();
        assert_eq!(created.status(), 201);
        let member: Value = created.json().await.unwrap();
        assert_eq!(member["roles"], json!(["7"]));
        assert_eq!(join(erin.id, token).await.unwrap().status(), 204);
        assert_eq!(fake.member_roles(5, erin.id), Some(vec![7]));
        let no_bot = reqwest::Client::new()
            .put(format!(
                "{}/api/v10/guilds/5/members/{}",
                fake.base_url(),
                erin.id
            ))
            .json(&json!({ "access_token": "x" }))
            .send()
            .await
            .unwrap();
        assert_eq!(no_bot.status(), 401);
    }
}
