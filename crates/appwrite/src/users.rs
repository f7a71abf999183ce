//! Server-side user management with the API key: create, find by email, prefs, labels,
//! verification flag, memberships and sessions of one user.

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tracing::instrument;

use crate::client::{Client, Request};
use crate::error::Error;
use crate::models::{Id, MembershipList, Session, SessionList, User, UserList};
use crate::query::{Query, append_queries};

/// Handle on `/users` (needs the server key).
#[derive(Debug, Clone)]
pub struct Users {
    client: Client,
}

impl Client {
    pub fn users(&self) -> Users {
        Users {
            client: self.clone(),
        }
    }
}

impl Users {
    fn url(&self, segments: &[&str]) -> url::Url {
        let mut all = vec!["users"];
        all.extend_from_slice(segments);
        self.client.url(&all)
    }

    /// `POST /users` → 201. Appwrite stores the email lower-cased; 409 `user_already_exists`
    /// or `user_email_already_exists` when taken.
    #[instrument(skip_all, fields(user_id))]
    pub async fn create(
        &self,
        user_id: impl Into<Id>,
        email: &str,
        password: Option<&str>,
        name: Option<&str>,
    ) -> Result<User, Error> {
        let id = user_id.into();
        id.validate()?;
        tracing::Span::current().record("user_id", id.as_wire());
        let mut body = Map::new();
        body.insert("userId".into(), json!(id.as_wire()));
        body.insert("email".into(), json!(email));
        if let Some(p) = password {
            body.insert("password".into(), json!(p));
        }
        if let Some(n) = name {
            body.insert("name".into(), json!(n));
        }
        let req = Request::new(Method::POST, self.url(&[]))
            .json(&Value::Object(body))?
            .idempotent(id.is_custom());
        self.client.json(req, "user").await
    }

    #[instrument(skip_all, fields(user_id = %id))]
    pub async fn get(&self, id: &str) -> Result<User, Error> {
        self.client
            .json(Request::new(Method::GET, self.url(&[id])), "user")
            .await
    }

    /// The user with this email (compared lower-cased, as Appwrite stores it), if any.
    #[instrument(skip_all)]
    pub async fn find_by_email(&self, email: &str) -> Result<Option<User>, Error> {
        let email = email.trim().to_lowercase();
        let list = self
            .list(&[Query::equal("email", email.as_str()), Query::limit(1)])
            .await?;
        Ok(list.users.into_iter().next())
    }

    #[instrument(skip_all, fields(queries = queries.len()))]
    pub async fn list(&self, queries: &[Query]) -> Result<UserList, Error> {
        let mut url = self.url(&[]);
        append_queries(&mut url, queries);
        self.client
            .json(Request::new(Method::GET, url), "user list")
            .await
    }

    #[instrument(skip_all, fields(user_id = %id))]
    pub async fn get_prefs<P: DeserializeOwned>(&self, id: &str) -> Result<P, Error> {
        self.client
            .json(Request::new(Method::GET, self.url(&[id, "prefs"])), "prefs")
            .await
    }

    /// Replaces the prefs object (Appwrite does not merge).
    #[instrument(skip_all, fields(user_id = %id))]
    pub async fn update_prefs<P: Serialize + DeserializeOwned>(
        &self,
        id: &str,
        prefs: &P,
    ) -> Result<P, Error> {
        let req = Request::new(Method::PATCH, self.url(&[id, "prefs"]))
            .json(&json!({ "prefs": prefs }))?;
        self.client.json(req, "prefs").await
    }

    /// Replaces the user's labels (`label:x` roles).
    #[instrument(skip_all, fields(user_id = %id))]
    pub async fn update_labels<S: AsRef<str>>(
        &self,
        id: &str,
        labels: &[S],
    ) -> Result<User, Error> {
        let labels: Vec<&str> = labels.iter().map(AsRef::as_ref).collect();
        let req = Request::new(Method::PUT, self.url(&[id, "labels"]))
            .json(&json!({ "labels": labels }))?;
        self.client.json(req, "user").await
    }

    #[instrument(skip_all, fields(user_id = %id, verified))]
    pub async fn update_email_verification(&self, id: &str, verified: bool) -> Result<User, Error> {
        let req = Request::new(Method::PATCH, self.url(&[id, "verification"]))
            .json(&json!({ "emailVerification": verified }))?;
        self.client.json(req, "user").await
    }

    #[instrument(skip_all, fields(user_id = %id))]
    pub async fn update_password(&self, id: &str, password: &str) -> Result<User, Error> {
        let req = Request::new(Method::PATCH, self.url(&[id, "password"]))
            .json(&json!({ "password": password }))?;
        self.client.json(req, "user").await
    }

    #[instrument(skip_all, fields(user_id = %id))]
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        self.client
            .execute(Request::new(Method::DELETE, self.url(&[id])))
            .await
            .map(drop)
    }

    #[instrument(skip_all, fields(user_id = %id))]
    pub async fn list_memberships(&self, id: &str) -> Result<MembershipList, Error> {
        self.client
            .json(
                Request::new(Method::GET, self.url(&[id, "memberships"])),
                "membership list",
            )
            .await
    }

    #[instrument(skip_all, fields(user_id = %id))]
    pub async fn list_sessions(&self, id: &str) -> Result<SessionList, Error> {
        self.client
            .json(
                Request::new(Method::GET, self.url(&[id, "sessions"])),
                "session list",
            )
            .await
    }

    /// `POST /users/{id}/sessions`: a session for the user without their password (service
    /// users, tests). The returned `secret` authenticates as that user.
    #[instrument(skip_all, fields(user_id = %id))]
    pub async fn create_session(&self, id: &str) -> Result<Session, Error> {
        self.client
            .json(
                Request::new(Method::POST, self.url(&[id, "sessions"])),
                "session",
            )
            .await
    }

    /// Signs the user out everywhere.
    #[instrument(skip_all, fields(user_id = %id))]
    pub async fn delete_sessions(&self, id: &str) -> Result<(), Error> {
        self.client
            .execute(Request::new(Method::DELETE, self.url(&[id, "sessions"])))
            .await
            .map(drop)
    }

    #[instrument(skip_all, fields(user_id = %id, session_id = %session_id))]
    pub async fn delete_session(&self, id: &str, session_id: &str) -> Result<(), Error> {
        self.client
            .execute(Request::new(
                Method::DELETE,
                self.url(&[id, "sessions", session_id]),
            ))
            .await
            .map(drop)
    }
}
