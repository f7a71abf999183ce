//! One typed handle per collection. A service names a collection by its document type,
//! `Collection::<Signal>::new(&client)`, never by a string: the id comes from `schema.rs` through
//! [`Model::COLLECTION`], and reads decode into the type that owns the attribute rules (nulls,
//! dates, arrays). Raw JSON stays possible through [`Collection::raw`] for the few callers that
//! read a projection (`Query::select`) or pass a document through untouched.

use std::marker::PhantomData;

use g3_appwrite::{
    Client, Document, DocumentList, Documents, Error, Id, Permission, Query, Upserted,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::schema::DATABASE_ID;

/// A document type stored in one collection of the schema.
pub trait Model: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The collection id, one of the constants in [`crate::schema`].
    const COLLECTION: &'static str;
}

/// The documents of `M`'s collection in the product database.
pub struct Collection<M> {
    docs: Documents,
    model: PhantomData<fn() -> M>,
}

impl<M> Clone for Collection<M> {
    fn clone(&self) -> Self {
        Self {
            docs: self.docs.clone(),
            model: PhantomData,
        }
    }
}

impl<M> std::fmt::Debug for Collection<M>
where
    M: Model,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Collection").field(&M::COLLECTION).finish()
    }
}

impl<M: Model> Collection<M> {
    pub fn new(client: &Client) -> Self {
        Self {
            docs: client.documents(DATABASE_ID, M::COLLECTION),
            model: PhantomData,
        }
    }

    /// The collection id (for messages and metrics).
    pub fn id(&self) -> &'static str {
        M::COLLECTION
    }

    /// The untyped handle, for projections and pass-through reads.
    pub fn raw(&self) -> &Documents {
        &self.docs
    }

    /// The Realtime channel of every document in this collection.
    pub fn channel() -> g3_appwrite::Channel {
        g3_appwrite::Channel::documents(DATABASE_ID, M::COLLECTION)
    }

    pub async fn get(&self, id: &str) -> Result<Document<M>, Error> {
        self.docs.get(id).await
    }

    pub async fn get_optional(&self, id: &str) -> Result<Option<Document<M>>, Error> {
        self.docs.get_optional(id).await
    }

    pub async fn create(
        &self,
        id: impl Into<Id>,
        data: &M,
        permissions: Option<&[Permission]>,
    ) -> Result<Document<M>, Error> {
        self.docs.create(id, data, permissions).await
    }

    pub async fn create_if_absent(
        &self,
        id: &str,
        data: &M,
        permissions: Option<&[Permission]>,
    ) -> Result<Upserted<Document<M>>, Error> {
        self.docs.create_if_absent(id, data, permissions).await
    }

    /// Changes the attributes in `patch` (a partial type or a JSON map).
    pub async fn update<P: Serialize + ?Sized>(
        &self,
        id: &str,
        patch: &P,
        permissions: Option<&[Permission]>,
    ) -> Result<Document<M>, Error> {
        self.docs.update(id, patch, permissions).await
    }

    pub async fn upsert(
        &self,
        id: &str,
        data: &M,
        permissions: Option<&[Permission]>,
    ) -> Result<Document<M>, Error> {
        self.docs.upsert(id, data, permissions).await
    }

    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        self.docs.delete(id).await
    }

    pub async fn delete_if_exists(&self, id: &str) -> Result<bool, Error> {
        self.docs.delete_if_exists(id).await
    }

    /// One page, with the total.
    pub async fn list(&self, queries: &[Query]) -> Result<DocumentList<M>, Error> {
        self.docs.list(queries).await
    }

    /// One page without counting every match (`total` is 0).
    pub async fn list_page(&self, queries: &[Query]) -> Result<DocumentList<M>, Error> {
        self.docs.list_page(queries).await
    }

    /// Every match, `page_size` at a time.
    pub async fn list_all(
        &self,
        queries: &[Query],
        page_size: u32,
    ) -> Result<Vec<Document<M>>, Error> {
        self.docs.list_all(queries, page_size).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{AuditEntry, PendingLink, Signal};
    use crate::schema;

    #[test]
    fn every_model_names_a_collection_of_the_schema() {
        let ids: Vec<&str> = schema::collections().iter().map(|c| c.id).collect();
        for id in [
            Signal::COLLECTION,
            AuditEntry::COLLECTION,
            PendingLink::COLLECTION,
        ] {
            assert!(ids.contains(&id), "{id} is not in schema.rs");
        }
    }

    #[test]
    fn the_channel_is_appwrites_documents_channel() {
        assert_eq!(
            Collection::<Signal>::channel().as_str(),
            "databases.g3.collections.signals.documents"
        );
    }
}
