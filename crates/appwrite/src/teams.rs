//! Teams and memberships (`paid`, `staff`). With the server key a membership is confirmed at
//! once and no email is sent; adding an existing member answers 409.

use reqwest::Method;
use serde_json::json;
use tracing::instrument;

use crate::client::{Client, Request};
use crate::error::Error;
use crate::models::{Id, Membership, MembershipList, Team, Upserted};
use crate::query::{Query, append_queries};

/// Handle on `/teams`.
#[derive(Debug, Clone)]
pub struct Teams {
    client: Client,
}

impl Client {
    pub fn teams(&self) -> Teams {
        Teams {
            client: self.clone(),
        }
    }
}

impl Teams {
    fn url(&self, segments: &[&str]) -> url::Url {
        let mut all = vec!["teams"];
        all.extend_from_slice(segments);
        self.client.url(&all)
    }

    /// `POST /teams` → 201; 409 `team_already_exists` for a taken id.
    #[instrument(skip_all, fields(team_id))]
    pub async fn create(&self, team_id: impl Into<Id>, name: &str) -> Result<Team, Error> {
        let id = team_id.into();
        id.validate()?;
        tracing::Span::current().record("team_id", id.as_wire());
        let req = Request::new(Method::POST, self.url(&[]))
            .json(&json!({ "teamId": id.as_wire(), "name": name }))?
            .idempotent(id.is_custom());
        self.client.json(req, "team").await
    }

    #[instrument(skip_all, fields(team_id = %id))]
    pub async fn get(&self, id: &str) -> Result<Team, Error> {
        self.client
            .json(Request::new(Method::GET, self.url(&[id])), "team")
            .await
    }

    #[instrument(skip_all, fields(team_id = %team_id, queries = queries.len()))]
    pub async fn list_memberships(
        &self,
        team_id: &str,
        queries: &[Query],
    ) -> Result<MembershipList, Error> {
        let mut url = self.url(&[team_id, "memberships"]);
        append_queries(&mut url, queries);
        self.client
            .json(Request::new(Method::GET, url), "membership list")
            .await
    }

    /// Adds a user with the server key: confirmed at once. A repeat answers 409, so the call is
    /// safe to retry.
    #[instrument(skip_all, fields(team_id = %team_id, user_id = %user_id))]
    pub async fn create_membership<S: AsRef<str>>(
        &self,
        team_id: &str,
        user_id: &str,
        roles: &[S],
    ) -> Result<Membership, Error> {
        let roles: Vec<&str> = roles.iter().map(AsRef::as_ref).collect();
        let req = Request::new(Method::POST, self.url(&[team_id, "memberships"]))
            .json(&json!({ "userId": user_id, "roles": roles }))?
            .idempotent(true);
        self.client.json(req, "membership").await
    }

    /// Adds the user with this email, whom Appwrite creates (unverified, with an id it picks)
    /// when no user has it: one call for a customer it has never seen. With the server key
    /// the membership is confirmed at once and no email is sent; 409
    /// `membership_already_confirmed` when already a member, so the call is safe to retry.
    #[instrument(skip_all, fields(team_id = %team_id))]
    pub async fn create_membership_by_email<S: AsRef<str>>(
        &self,
        team_id: &str,
        email: &str,
        name: Option<&str>,
        roles: &[S],
    ) -> Result<Membership, Error> {
        let roles: Vec<&str> = roles.iter().map(AsRef::as_ref).collect();
        let mut body = json!({ "email": email, "roles": roles });
        if let Some(name) = name {
            body["name"] = json!(name);
        }
        let req = Request::new(Method::POST, self.url(&[team_id, "memberships"]))
            .json(&body)?
            .idempotent(true);
        self.client.json(req, "membership").await
    }

    /// Adds the user unless already a member; returns the membership either way.
    pub async fn add_member_if_absent<S: AsRef<str>>(
        &self,
        team_id: &str,
        user_id: &str,
        roles: &[S],
    ) -> Result<Upserted<Membership>, Error> {
        match self.create_membership(team_id, user_id, roles).await {
            Ok(m) => Ok(Upserted::Created(m)),
            Err(conflict) if conflict.is_conflict() => {
                match self.find_membership(team_id, user_id).await? {
                    Some(m) => Ok(Upserted::Existed(m)),
                    None => Err(conflict),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// `PATCH /teams/{id}/memberships/{membership}`: replaces the membership's roles.
    #[instrument(skip_all, fields(team_id = %team_id, membership_id = %membership_id))]
    pub async fn update_membership_roles<S: AsRef<str>>(
        &self,
        team_id: &str,
        membership_id: &str,
        roles: &[S],
    ) -> Result<Membership, Error> {
        let roles: Vec<&str> = roles.iter().map(AsRef::as_ref).collect();
        let req = Request::new(
            Method::PATCH,
            self.url(&[team_id, "memberships", membership_id]),
        )
        .json(&json!({ "roles": roles }))?
        .idempotent(true);
        self.client.json(req, "membership").await
    }

    /// Makes the user a member holding exactly `roles` (in any order): added if absent, its
    /// roles replaced if they differ, left alone otherwise.
    pub async fn set_member_roles<S: AsRef<str>>(
        &self,
        team_id: &str,
        user_id: &str,
        roles: &[S],
    ) -> Result<Upserted<Membership>, Error> {
        let existing = match self.add_member_if_absent(team_id, user_id, roles).await? {
            Upserted::Created(m) => return Ok(Upserted::Created(m)),
            Upserted::Existed(m) => m,
        };
        let mut want: Vec<&str> = roles.iter().map(AsRef::as_ref).collect();
        let mut have: Vec<&str> = existing.roles.iter().map(String::as_str).collect();
        want.sort_unstable();
        want.dedup();
        have.sort_unstable();
        have.dedup();
        if want == have {
            return Ok(Upserted::Existed(existing));
        }
        self.update_membership_roles(team_id, &existing.id, &want)
            .await
            .map(Upserted::Existed)
    }

    /// The user's membership of the team, if any.
    pub async fn find_membership(
        &self,
        team_id: &str,
        user_id: &str,
    ) -> Result<Option<Membership>, Error> {
        let list = self
            .list_memberships(team_id, &[Query::equal("userId", user_id), Query::limit(1)])
            .await?;
        Ok(list.memberships.into_iter().next())
    }

    /// `DELETE /teams/{id}/memberships/{membership}` → 204.
    #[instrument(skip_all, fields(team_id = %team_id, membership_id = %membership_id))]
    pub async fn delete_membership(&self, team_id: &str, membership_id: &str) -> Result<(), Error> {
        self.client
            .execute(Request::new(
                Method::DELETE,
                self.url(&[team_id, "memberships", membership_id]),
            ))
            .await
            .map(drop)
    }

    /// Removes the user from the team if a member; returns whether they were.
    pub async fn remove_member_if_present(
        &self,
        team_id: &str,
        user_id: &str,
    ) -> Result<bool, Error> {
        let Some(m) = self.find_membership(team_id, user_id).await? else {
            return Ok(false);
        };
        match self.delete_membership(team_id, &m.id).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}
