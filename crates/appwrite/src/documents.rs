//! Documents of one collection: get, create, create-if-absent, update, upsert, delete, list and
//! list-everything with `cursorAfter`. Data is the caller's own serde type.

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::instrument;
use url::Url;

use crate::client::{Client, Request};
use crate::error::Error;
use crate::models::{Document, DocumentList, Id, Upserted};
use crate::permission::{Permission, to_strings};
use crate::query::{Query, append_queries};

/// Handle on `databases/{db}/collections/{col}/documents`.
#[derive(Debug, Clone)]
pub struct Documents {
    client: Client,
    database_id: String,
    collection_id: String,
}

impl Client {
    pub fn documents(&self, database_id: &str, collection_id: &str) -> Documents {
        Documents {
            client: self.clone(),
            database_id: database_id.to_owned(),
            collection_id: collection_id.to_owned(),
        }
    }
}

impl Documents {
    fn collection_url(&self) -> Url {
        self.client.url(&[
            "databases",
            &self.database_id,
            "collections",
            &self.collection_id,
            "documents",
        ])
    }

    fn document_url(&self, id: &str) -> Url {
        self.client.url(&[
            "databases",
            &self.database_id,
            "collections",
            &self.collection_id,
            "documents",
            id,
        ])
    }

    #[instrument(skip_all, fields(db = %self.database_id, col = %self.collection_id, id))]
    pub async fn get<T: DeserializeOwned>(&self, id: &str) -> Result<Document<T>, Error> {
        self.client
            .json(Request::new(Method::GET, self.document_url(id)), "document")
            .await
    }

    /// Like [`Documents::get`], with "not found" as `None`.
    pub async fn get_optional<T: DeserializeOwned>(
        &self,
        id: &str,
    ) -> Result<Option<Document<T>>, Error> {
        match self.get(id).await {
            Ok(doc) => Ok(Some(doc)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST .../documents` → 201. With our own id the call is retried on transient failures
    /// (a repeat after a lost success answers 409 `document_already_exists`); with
    /// [`Id::Unique`] it is never repeated blindly.
    #[instrument(skip_all, fields(db = %self.database_id, col = %self.collection_id, id))]
    pub async fn create<T: Serialize + DeserializeOwned>(
        &self,
        id: impl Into<Id>,
        data: &T,
        permissions: Option<&[Permission]>,
    ) -> Result<Document<T>, Error> {
        let id = id.into();
        id.validate()?;
        tracing::Span::current().record("id", id.as_wire());
        let mut body = json!({ "documentId": id.as_wire(), "data": data });
        if let Some(p) = permissions {
            body["permissions"] = json!(to_strings(p));
        }
        let req = Request::new(Method::POST, self.collection_url())
            .json(&body)?
            .idempotent(id.is_custom());
        self.client.json(req, "document").await
    }

    /// Creates the document unless one with this id exists; then returns the stored one.
    /// The stored one is not compared with `data`: the id decides.
    #[instrument(skip_all, fields(db = %self.database_id, col = %self.collection_id, id = %id))]
    pub async fn create_if_absent<T: Serialize + DeserializeOwned>(
        &self,
        id: &str,
        data: &T,
        permissions: Option<&[Permission]>,
    ) -> Result<Upserted<Document<T>>, Error> {
        if id == Id::Unique.as_wire() {
            return Err(Error::InvalidInput(
                "create_if_absent needs an explicit id".into(),
            ));
        }
        match self.create(id, data, permissions).await {
            Ok(doc) => Ok(Upserted::Created(doc)),
            Err(conflict) if conflict.is_conflict() => match self.get(id).await {
                Ok(doc) => Ok(Upserted::Existed(doc)),
                // 409 without a document of that id: a unique index said no, report that.
                Err(e) if e.is_not_found() => Err(conflict),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// `PATCH .../documents/{id}` with the attributes to change (a partial type or a JSON map).
    #[instrument(skip_all, fields(db = %self.database_id, col = %self.collection_id, id = %id))]
    pub async fn update<P: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        id: &str,
        patch: &P,
        permissions: Option<&[Permission]>,
    ) -> Result<Document<T>, Error> {
        let mut body = json!({ "data": patch });
        if let Some(p) = permissions {
            body["permissions"] = json!(to_strings(p));
        }
        let req = Request::new(Method::PATCH, self.document_url(id)).json(&body)?;
        self.client.json(req, "document").await
    }

    /// `PUT .../documents/{id}`: create or replace in one call (Appwrite 1.8).
    #[instrument(skip_all, fields(db = %self.database_id, col = %self.collection_id, id = %id))]
    pub async fn upsert<T: Serialize + DeserializeOwned>(
        &self,
        id: &str,
        data: &T,
        permissions: Option<&[Permission]>,
    ) -> Result<Document<T>, Error> {
        Id::from(id).validate()?;
        let mut body = json!({ "data": data });
        if let Some(p) = permissions {
            body["permissions"] = json!(to_strings(p));
        }
        let req = Request::new(Method::PUT, self.document_url(id)).json(&body)?;
        self.client.json(req, "document").await
    }

    /// `DELETE .../documents/{id}` → 204.
    #[instrument(skip_all, fields(db = %self.database_id, col = %self.collection_id, id = %id))]
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        self.client
            .execute(Request::new(Method::DELETE, self.document_url(id)))
            .await
            .map(drop)
    }

    /// Deletes; a document that is already gone counts as done. Returns whether it existed.
    pub async fn delete_if_exists(&self, id: &str) -> Result<bool, Error> {
        match self.delete(id).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One page. Without a `limit` query Appwrite returns 25.
    #[instrument(skip_all, fields(db = %self.database_id, col = %self.collection_id, queries = queries.len()))]
    pub async fn list<T: DeserializeOwned>(
        &self,
        queries: &[Query],
    ) -> Result<DocumentList<T>, Error> {
        self.list_counting(queries, true).await
    }

    /// One page without the total (`total=false`, Appwrite 1.8): `total` comes back as 0, and
    /// Appwrite skips counting every match, which on a big collection costs more than the page.
    #[instrument(skip_all, fields(db = %self.database_id, col = %self.collection_id, queries = queries.len()))]
    pub async fn list_page<T: DeserializeOwned>(
        &self,
        queries: &[Query],
    ) -> Result<DocumentList<T>, Error> {
        self.list_counting(queries, false).await
    }

    async fn list_counting<T: DeserializeOwned>(
        &self,
        queries: &[Query],
        total: bool,
    ) -> Result<DocumentList<T>, Error> {
        let mut url = self.collection_url();
        append_queries(&mut url, queries);
        if !total {
            url.query_pairs_mut().append_pair("total", "false");
        }
        self.client
            .json(Request::new(Method::GET, url), "document list")
            .await
    }

    #[instrument(skip_all, fields(db = %self.database_id, col = %self.collection_id, page_size))]
    /// Every matching document, fetched `page_size` at a time with `cursorAfter`. `queries`
    /// must not contain `limit`, `offset` or cursors; ordering queries are kept.
    pub async fn list_all<T: DeserializeOwned>(
        &self,
        queries: &[Query],
        page_size: u32,
    ) -> Result<Vec<Document<T>>, Error> {
        if page_size == 0 {
            return Err(Error::InvalidInput("page_size must be positive".into()));
        }
        if queries.iter().any(|q| {
            matches!(
                q.method(),
                "limit" | "offset" | "cursorAfter" | "cursorBefore"
            )
        }) {
            return Err(Error::InvalidInput(
                "list_all sets limit and cursor itself".into(),
            ));
        }
        let mut all: Vec<Document<T>> = Vec::new();
        loop {
            let mut page_queries = queries.to_vec();
            page_queries.push(Query::limit(page_size));
            if let Some(last) = all.last() {
                page_queries.push(Query::cursor_after(&last.id));
            }
            let page = self.list::<T>(&page_queries).await?;
            let len = page.documents.len();
            all.extend(page.documents);
            if len < page_size as usize {
                return Ok(all);
            }
        }
    }
}
