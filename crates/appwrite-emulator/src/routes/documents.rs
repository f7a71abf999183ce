//! Documents: create, list (with queries), get, update, upsert, delete, with Appwrite's
//! permission rules for sessions and guests. Every change publishes a Realtime event.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
    routing::get,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::Body;
use crate::{
    auth::Caller,
    docstore::{self, Doc, ShownDoc},
    error::{ApiError, ApiResult},
    indexes,
    permissions::{self, Action},
    query,
    schema::{self, CollectionMeta},
    state::AppState,
    util,
};

pub fn router() -> Router<AppState> {
    let base = "/databases/{db}/collections/{col}/documents";
    Router::new()
        .route(
            base,
            get(list_documents)
                .post(create_document)
                .put(bulk_not_implemented)
                .patch(bulk_not_implemented)
                .delete(bulk_not_implemented),
        )
        .route(
            &format!("{base}/{{id}}"),
            get(get_document)
                .patch(update_document)
                .put(upsert_document)
                .delete(delete_document),
        )
}

/// Query-string pairs, with malformed strings reported in Appwrite's error shape.
pub(super) type Params = Result<Query<Vec<(String, String)>>, QueryRejection>;

pub(super) fn query_params(params: Params) -> ApiResult<Vec<(String, String)>> {
    params
        .map(|Query(p)| p)
        .map_err(|e| ApiError::argument_invalid(e.body_text()))
}

/// The collection, if this caller may see it at all: disabled databases and collections are
/// hidden from everyone but the server key, as in Appwrite.
fn collection(
    state: &AppState,
    conn: &rusqlite::Connection,
    caller: &Caller,
    db: &str,
    col: &str,
) -> ApiResult<Arc<CollectionMeta>> {
    let meta = state.schema.get(conn, db, col)?;
    if !caller.is_key() {
        if !meta.database_enabled {
            return Err(schema::database_not_found());
        }
        if !meta.enabled {
            return Err(schema::collection_not_found());
        }
    }
    Ok(meta)
}

fn collection_grants(caller: &Caller, meta: &CollectionMeta, action: Action) -> bool {
    permissions::allowed(caller, action, &meta.permissions, false, &[])
}

/// Who may see what in a list: everything, or only documents naming one of the caller's roles.
fn read_filter(caller: &Caller, meta: &CollectionMeta) -> ApiResult<docstore::ReadFilter> {
    if collection_grants(caller, meta, Action::Read) {
        Ok(None)
    } else if meta.document_security {
        Ok(Some(caller.roles()))
    } else {
        Err(ApiError::user_unauthorized())
    }
}

fn can_read(caller: &Caller, meta: &CollectionMeta, doc: &Doc) -> bool {
    permissions::allowed(
        caller,
        Action::Read,
        &meta.permissions,
        meta.document_security,
        &doc.perms,
    )
}

fn require(caller: &Caller, meta: &CollectionMeta, doc: &Doc, action: Action) -> ApiResult<()> {
    if permissions::allowed(
        caller,
        action,
        &meta.permissions,
        meta.document_security,
        &doc.perms,
    ) {
        Ok(())
    } else {
        Err(ApiError::user_unauthorized())
    }
}

/// Document permissions as given: read, update, delete or write (which means update and
/// delete here; `create` only makes sense on the collection).
fn doc_perms(raw: &[String]) -> ApiResult<Vec<String>> {
    if let Some(bad) = raw.iter().find(|p| p.starts_with("create(")) {
        return Err(ApiError::argument_invalid(format!(
            "Invalid `permissions` param: Permission \"{bad}\" is not allowed. Must be one of: read, update, delete, write."
        )));
    }
    let perms: Vec<String> = permissions::normalize(raw)?
        .into_iter()
        .filter(|p| !p.starts_with("create("))
        .collect();
    Ok(perms)
}

/// Users may grant only roles they hold; checked once the collection is known, as Appwrite does.
fn check_given(caller: &Caller, given: Option<&Vec<String>>) -> ApiResult<()> {
    given.map_or(Ok(()), |p| permissions::check_grantable(caller, p))
}

/// Permissions for a new document: as given, or full access for the creating user.
fn new_doc_perms(caller: &Caller, given: Option<Vec<String>>) -> ApiResult<Vec<String>> {
    match given {
        Some(p) => Ok(p),
        None => match caller {
            Caller::User(u) => Ok(["read", "update", "delete"]
                .iter()
                .map(|a| format!("{a}(\"user:{}\")", u.user_id))
                .collect()),
            _ => Ok(Vec::new()),
        },
    }
}

fn data_object(data: Option<Value>) -> ApiResult<Map<String, Value>> {
    match data {
        Some(Value::Object(m)) => Ok(m),
        None | Some(Value::Null) => Ok(Map::new()),
        Some(_) => Err(ApiError::argument_invalid(
            "Invalid `data` param: Value must be a valid object.",
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    document_id: Option<String>,
    data: Option<Value>,
    permissions: Option<Vec<String>>,
}

#[tracing::instrument(skip_all, fields(db = %db, col = %col))]
async fn create_document(
    caller: Caller,
    State(state): State<AppState>,
    Path((db, col)): Path<(String, String)>,
    Body(body): Body<CreateBody>,
) -> ApiResult<(StatusCode, Json<ShownDoc>)> {
    let id = body
        .document_id
        .filter(|id| !id.is_empty())
        .map(|raw| util::resolve_id("documentId", &raw))
        .transpose()?;
    let given = body.permissions.map(|p| doc_perms(&p)).transpose()?;
    let data = data_object(body.data)?;
    let missing_data = |message: &str| ApiError::new(400, "document_missing_data", message);
    if data.is_empty() {
        return Err(missing_data(
            "The document data is missing. Try again with document data populated",
        ));
    }
    let id =
        id.ok_or_else(|| missing_data("Document ID is required when creating a single document."))?;
    let st = state.clone();
    let (meta, doc) = state
        .store
        .transaction(move |tx| {
            let meta = collection(&st, tx, &caller, &db, &col)?;
            check_given(&caller, given.as_ref())?;
            let perms = new_doc_perms(&caller, given)?;
            if !collection_grants(&caller, &meta, Action::Create) {
                return Err(ApiError::user_unauthorized());
            }
            let row = docstore::validate_document(&meta, &data, None)?;
            let doc = docstore::insert(tx, &meta, &id, row, &perms, &util::now())?;
            Ok((meta, doc))
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(answer(&state, meta, doc, "create")),
    ))
}

async fn list_documents(
    caller: Caller,
    State(state): State<AppState>,
    Path((db, col)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Json<docstore::ShownList>> {
    let params = query_params(params)?;
    let queries = query::parse_queries(&params)?;
    let want_total = query::wants_total(&params)?;
    let st = state.clone();
    // The storage thread only reads the rows; they become JSON here, beside other requests.
    let (total, rows, meta, select) = state
        .store
        .call(move |conn| {
            let meta = collection(&st, conn, &caller, &db, &col)?;
            let filter = read_filter(&caller, &meta)?;
            let compiled = query::compile(&meta, &queries)?;
            if st.config.require_indexes {
                indexes::require(&meta, &queries)?;
            }
            let (total, rows) = docstore::list_raw(conn, &meta, &compiled, &filter, want_total)?;
            Ok((total, rows, meta, compiled.select))
        })
        .await?;
    let mut docs = Vec::with_capacity(rows.len());
    for row in rows {
        docs.push(row.finish(&meta)?);
    }
    Ok(Json(docstore::ShownList::new(
        total,
        docs,
        meta,
        select.as_deref(),
    )))
}

/// Appwrite validates a document id in the path before looking anything up (its UID
/// validator): a malformed id is 400, not 404.
fn check_path_id(id: &str) -> ApiResult<()> {
    if util::is_valid_custom_id(id) {
        Ok(())
    } else {
        Err(ApiError::argument_invalid(
            "Invalid `documentId` param: Parameter must contain at most 36 chars. Valid chars are a-z, A-Z, 0-9, period, hyphen, and underscore. Can't start with a special char",
        ))
    }
}

async fn get_document(
    caller: Caller,
    State(state): State<AppState>,
    Path((db, col, id)): Path<(String, String, String)>,
    params: Params,
) -> ApiResult<Json<ShownDoc>> {
    check_path_id(&id)?;
    let params = query_params(params)?;
    let queries = query::parse_queries(&params)?;
    let st = state.clone();
    let (doc, meta, select) = state
        .store
        .call(move |conn| {
            // Unlike lists, a single unreadable document is simply not found (Appwrite's
            // getDocument returns an empty document instead of throwing).
            let meta = collection(&st, conn, &caller, &db, &col)?;
            let compiled = query::compile(&meta, &queries)?;
            let doc = docstore::fetch(conn, &meta, &id)?
                .filter(|d| can_read(&caller, &meta, d))
                .ok_or_else(docstore::document_not_found)?;
            Ok((doc, meta, compiled.select))
        })
        .await?;
    // Turned into JSON here, off the storage thread.
    Ok(Json(ShownDoc::new(doc, meta, select.as_deref())))
}

fn missing_payload() -> ApiError {
    ApiError::new(
        400,
        "document_missing_payload",
        "The document data and permissions are missing. You must provide either document data or permissions to be updated.",
    )
}

#[derive(Deserialize)]
struct UpdateBody {
    data: Option<Value>,
    permissions: Option<Vec<String>>,
}

#[tracing::instrument(skip_all, fields(db = %db, col = %col, id = %id))]
async fn update_document(
    caller: Caller,
    State(state): State<AppState>,
    Path((db, col, id)): Path<(String, String, String)>,
    Body(body): Body<UpdateBody>,
) -> ApiResult<Json<ShownDoc>> {
    check_path_id(&id)?;
    let data = data_object(body.data)?;
    if data.is_empty() && body.permissions.is_none() {
        return Err(missing_payload());
    }
    let perms = body.permissions.map(|p| doc_perms(&p)).transpose()?;
    let st = state.clone();
    let (meta, doc) = state
        .store
        .transaction(move |tx| {
            let meta = collection(&st, tx, &caller, &db, &col)?;
            let old = docstore::fetch(tx, &meta, &id)?.ok_or_else(docstore::document_not_found)?;
            check_given(&caller, perms.as_ref())?;
            require(&caller, &meta, &old, Action::Update)?;
            let row = docstore::validate_document(&meta, &data, Some(&old))?;
            let perms = perms.unwrap_or_else(|| old.perms.clone());
            let doc = docstore::update(tx, &meta, &old, row, &perms, &util::now())?;
            Ok((meta, doc))
        })
        .await?;
    Ok(Json(answer(&state, meta, doc, "update")))
}

/// `PUT`: creates the document or updates it in place (given attributes over stored ones).
#[tracing::instrument(skip_all, fields(db = %db, col = %col, id = %id))]
async fn upsert_document(
    caller: Caller,
    State(state): State<AppState>,
    Path((db, col, id)): Path<(String, String, String)>,
    Body(body): Body<UpdateBody>,
) -> ApiResult<(StatusCode, Json<ShownDoc>)> {
    // The id is in the path here, so `unique()` makes no sense: only custom ids pass.
    check_path_id(&id)?;
    let data = data_object(body.data)?;
    if data.is_empty() && body.permissions.is_none() {
        return Err(missing_payload());
    }
    let given = body.permissions.map(|p| doc_perms(&p)).transpose()?;
    let st = state.clone();
    let (meta, doc) = state
        .store
        .transaction(move |tx| {
            let meta = collection(&st, tx, &caller, &db, &col)?;
            check_given(&caller, given.as_ref())?;
            let now = util::now();
            let doc = match docstore::fetch(tx, &meta, &id)? {
                Some(old) => {
                    require(&caller, &meta, &old, Action::Update)?;
                    let row = docstore::validate_document(&meta, &data, Some(&old))?;
                    let perms = given.unwrap_or_else(|| old.perms.clone());
                    docstore::update(tx, &meta, &old, row, &perms, &now)?
                }
                None => {
                    if !collection_grants(&caller, &meta, Action::Create) {
                        return Err(ApiError::user_unauthorized());
                    }
                    let perms = new_doc_perms(&caller, given)?;
                    let row = docstore::validate_document(&meta, &data, None)?;
                    docstore::insert(tx, &meta, &id, row, &perms, &now)?
                }
            };
            Ok((meta, doc))
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(answer(&state, meta, doc, "upsert")),
    ))
}

#[tracing::instrument(skip_all, fields(db = %db, col = %col, id = %id))]
async fn delete_document(
    caller: Caller,
    State(state): State<AppState>,
    Path((db, col, id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    check_path_id(&id)?;
    let st = state.clone();
    let (meta, doc) = state
        .store
        .transaction(move |tx| {
            let meta = collection(&st, tx, &caller, &db, &col)?;
            let doc = docstore::fetch(tx, &meta, &id)?.ok_or_else(docstore::document_not_found)?;
            require(&caller, &meta, &doc, Action::Delete)?;
            docstore::delete(tx, &meta, &doc)?;
            Ok((meta, doc))
        })
        .await?;
    state.publish_with(|| docstore::event(&meta, &doc, "delete"));
    Ok(StatusCode::NO_CONTENT)
}

/// A written document's JSON, and its Realtime event published; done once the write is
/// committed, off the storage thread.
fn answer(state: &AppState, meta: Arc<CollectionMeta>, doc: Doc, action: &str) -> ShownDoc {
    state.publish_with(|| docstore::event(&meta, &doc, action));
    ShownDoc::new(doc, meta, None)
}

/// Bulk writes (1.8) are not used by this product; say so in Appwrite's error shape.
async fn bulk_not_implemented() -> ApiError {
    ApiError::not_implemented("bulk document operations")
}
