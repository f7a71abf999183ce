//! `/account`: signing up and in with the server key (server-side sessions whose secret the
//! web app keeps in a cookie), and the signed-in user's own calls with that session.

use reqwest::Method;
use serde_json::{Map, Value, json};
use tracing::instrument;

use crate::client::{Client, Request};
use crate::config::TokenSecret;
use crate::error::Error;
use crate::models::{Id, Session, SessionList, Token, User};

/// Handle on `/account`. Session-creating calls need a client with the key (the secret is only
/// returned then); the rest need a client from [`Client::with_session`].
#[derive(Debug, Clone)]
pub struct Account {
    client: Client,
}

impl Client {
    pub fn account(&self) -> Account {
        Account {
            client: self.clone(),
        }
    }
}

impl Account {
    fn url(&self, segments: &[&str]) -> url::Url {
        let mut all = vec!["account"];
        all.extend_from_slice(segments);
        self.client.url(&all)
    }

    /// Sign-up: `POST /account` → 201.
    #[instrument(skip_all, fields(user_id))]
    pub async fn create(
        &self,
        user_id: impl Into<Id>,
        email: &str,
        password: &str,
        name: Option<&str>,
    ) -> Result<User, Error> {
        let id = user_id.into();
        id.validate()?;
        tracing::Span::current().record("user_id", id.as_wire());
        let mut body = Map::new();
        body.insert("userId".into(), json!(id.as_wire()));
        body.insert("email".into(), json!(email));
        body.insert("password".into(), json!(password));
        if let Some(n) = name {
            body.insert("name".into(), json!(n));
        }
        let req = Request::new(Method::POST, self.url(&[]))
            .json(&Value::Object(body))?
            .idempotent(id.is_custom());
        self.client.json(req, "user").await
    }

    /// `POST /account/sessions/email` → 201 Session with `secret` (when called with the key).
    /// Wrong credentials: 401 `user_invalid_credentials`.
    #[instrument(skip_all)]
    pub async fn create_email_password_session(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Session, Error> {
        let req = Request::new(Method::POST, self.url(&["sessions", "email"]))
            .json(&json!({ "email": email, "password": password }))?;
        self.client.json(req, "session").await
    }

    /// Sends an email one-time code: `POST /account/tokens/email` → 201 Token. With
    /// [`Id::Unique`] Appwrite creates the user if the email is new.
    #[instrument(skip_all)]
    pub async fn create_email_token(
        &self,
        user_id: impl Into<Id>,
        email: &str,
    ) -> Result<Token, Error> {
        let id = user_id.into();
        id.validate()?;
        let req = Request::new(Method::POST, self.url(&["tokens", "email"]))
            .json(&json!({ "userId": id.as_wire(), "email": email }))?;
        self.client.json(req, "token").await
    }

    /// Exchanges a one-time code for a session: `POST /account/sessions/token` → 201.
    #[instrument(skip_all, fields(user_id = %user_id))]
    pub async fn create_session_from_token(
        &self,
        user_id: &str,
        secret: &TokenSecret,
    ) -> Result<Session, Error> {
        let req = Request::new(Method::POST, self.url(&["sessions", "token"]))
            .json(&json!({ "userId": user_id, "secret": secret.expose() }))?;
        self.client.json(req, "session").await
    }

    /// The signed-in user: `GET /account` (401 `user_unauthorized` without a valid session).
    #[instrument(skip_all)]
    pub async fn get(&self) -> Result<User, Error> {
        self.client
            .json(Request::new(Method::GET, self.url(&[])), "user")
            .await
    }

    #[instrument(skip_all)]
    pub async fn list_sessions(&self) -> Result<SessionList, Error> {
        self.client
            .json(
                Request::new(Method::GET, self.url(&["sessions"])),
                "session list",
            )
            .await
    }

    /// Sign-out of this session: `DELETE /account/sessions/current` → 204.
    #[instrument(skip_all)]
    pub async fn delete_current_session(&self) -> Result<(), Error> {
        self.client
            .execute(Request::new(
                Method::DELETE,
                self.url(&["sessions", "current"]),
            ))
            .await
            .map(drop)
    }

    /// Sign-out everywhere: `DELETE /account/sessions` → 204.
    #[instrument(skip_all)]
    pub async fn delete_sessions(&self) -> Result<(), Error> {
        self.client
            .execute(Request::new(Method::DELETE, self.url(&["sessions"])))
            .await
            .map(drop)
    }

    /// Emails a verification link to `url?userId=..&secret=..`: `POST /account/verification`.
    /// (1.8 also serves `/account/verifications/email`; this path works on 1.6 to 1.8.)
    #[instrument(skip_all)]
    pub async fn create_verification(&self, url: &str) -> Result<Token, Error> {
        let req =
            Request::new(Method::POST, self.url(&["verification"])).json(&json!({ "url": url }))?;
        self.client.json(req, "token").await
    }

    /// Completes verification: `PUT /account/verification`.
    #[instrument(skip_all, fields(user_id = %user_id))]
    pub async fn confirm_verification(
        &self,
        user_id: &str,
        secret: &TokenSecret,
    ) -> Result<Token, Error> {
        let req = Request::new(Method::PUT, self.url(&["verification"]))
            .json(&json!({ "userId": user_id, "secret": secret.expose() }))?;
        self.client.json(req, "token").await
    }

    /// Emails a password-recovery link: `POST /account/recovery`.
    #[instrument(skip_all)]
    pub async fn create_recovery(&self, email: &str, url: &str) -> Result<Token, Error> {
        let req = Request::new(Method::POST, self.url(&["recovery"]))
            .json(&json!({ "email": email, "url": url }))?;
        self.client.json(req, "token").await
    }

    /// Sets a new password from a recovery link: `PUT /account/recovery`.
    #[instrument(skip_all, fields(user_id = %user_id))]
    pub async fn confirm_recovery(
        &self,
        user_id: &str,
        secret: &TokenSecret,
        password: &str,
    ) -> Result<Token, Error> {
        let req = Request::new(Method::PUT, self.url(&["recovery"])).json(&json!({
            "userId": user_id,
            "secret": secret.expose(),
            "password": password,
        }))?;
        self.client.json(req, "token").await
    }

    /// `PATCH /account/password`; `old_password` is required when the user has one.
    #[instrument(skip_all)]
    pub async fn update_password(
        &self,
        password: &str,
        old_password: Option<&str>,
    ) -> Result<User, Error> {
        let mut body = json!({ "password": password });
        if let Some(old) = old_password {
            body["oldPassword"] = json!(old);
        }
        let req = Request::new(Method::PATCH, self.url(&["password"])).json(&body)?;
        self.client.json(req, "user").await
    }
}
