//! Databases, collections, attributes and indexes (server key only). Each collection gets its own
//! SQLite table (`doc_<seq>`) with one column per attribute and real SQLite indexes for declared
//! Appwrite indexes, plus a `<table>_readers` side table used to filter lists by read permission.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Body;
use crate::{
    auth::Caller,
    error::{ApiError, ApiResult},
    list_query::ListQuery,
    permissions,
    schema::{self, Attr, CollectionMeta, Kind, quote_ident},
    state::AppState,
    util,
};

/// What Appwrite lets a list of databases, collections, attributes or indexes be filtered and
/// ordered by (besides `$id`, `$createdAt`, `$updatedAt`).
const DATABASE_QUERY_ATTRS: &[&str] = &["name"];
const COLLECTION_QUERY_ATTRS: &[&str] = &["name", "enabled", "documentSecurity"];
const ATTRIBUTE_QUERY_ATTRS: &[&str] = &[
    "key", "type", "size", "required", "array", "status", "error",
];
const INDEX_QUERY_ATTRS: &[&str] = &["key", "type", "status", "attributes", "error"];

pub fn router() -> Router<AppState> {
    let col = "/databases/{db}/collections/{col}";
    Router::new()
        .route("/databases", post(create_database).get(list_databases))
        .route(
            "/databases/{db}",
            get(get_database)
                .put(update_database)
                .delete(delete_database),
        )
        .route(
            "/databases/{db}/collections",
            post(create_collection).get(list_collections),
        )
        .route(
            col,
            get(get_collection)
                .put(update_collection)
                .delete(delete_collection),
        )
        .route(&format!("{col}/attributes"), get(list_attributes))
        // One path for both: POST's last segment is the attribute type, GET's the key.
        .route(
            &format!("{col}/attributes/{{key}}"),
            post(create_attribute)
                .get(get_attribute)
                .delete(delete_attribute),
        )
        .route(
            &format!("{col}/indexes"),
            post(create_index).get(list_indexes),
        )
        .route(
            &format!("{col}/indexes/{{key}}"),
            get(get_index).delete(delete_index),
        )
}

fn required<T>(value: Option<T>, name: &str) -> ApiResult<T> {
    value.ok_or_else(|| ApiError::argument_invalid(format!("Param \"{name}\" is not optional.")))
}

fn check_name(name: &str) -> ApiResult<()> {
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ApiError::argument_invalid(
            "Invalid `name` param: Value must be a valid string and at least 1 chars and no longer than 128 chars",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Databases

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DatabaseBody {
    database_id: Option<String>,
    name: Option<String>,
    enabled: Option<bool>,
}

fn database_json(id: &str, name: &str, enabled: bool, created: &str, updated: &str) -> Value {
    json!({
        "$id": id, "name": name, "$createdAt": created, "$updatedAt": updated,
        "enabled": enabled, "type": "legacy",
    })
}

fn read_database(conn: &Connection, db: &str) -> ApiResult<Value> {
    conn.query_row(
        "SELECT id, name, enabled, created_at, updated_at FROM databases WHERE id = ?1",
        params![db],
        |r| {
            Ok(database_json(
                &r.get::<_, String>(0)?,
                &r.get::<_, String>(1)?,
                r.get(2)?,
                &r.get::<_, String>(3)?,
                &r.get::<_, String>(4)?,
            ))
        },
    )
    .optional()?
    .ok_or_else(schema::database_not_found)
}

async fn create_database(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<DatabaseBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require_key("databases.write")?;
    let id = util::resolve_id("databaseId", &required(body.database_id, "databaseId")?)?;
    let name = required(body.name, "name")?;
    check_name(&name)?;
    let enabled = body.enabled.unwrap_or(true);
    let out = state
        .store
        .call(move |conn| {
            let now = util::now();
            let inserted = conn.execute(
                "INSERT INTO databases (id, name, enabled, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (id) DO NOTHING",
                params![id, name, enabled, now],
            )?;
            if inserted == 0 {
                return Err(ApiError::new(
                    409,
                    "database_already_exists",
                    "Database already exists",
                ));
            }
            Ok(database_json(&id, &name, enabled, &now, &now))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

async fn list_databases(
    caller: Caller,
    State(state): State<AppState>,
    params: super::documents::Params,
) -> ApiResult<Json<Value>> {
    caller.require_key("databases.read")?;
    let list = ListQuery::from_params(
        &super::documents::query_params(params)?,
        DATABASE_QUERY_ATTRS,
    )?;
    let items = state
        .store
        .call(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, name, enabled, created_at, updated_at FROM databases ORDER BY seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(database_json(
                    &r.get::<_, String>(0)?,
                    &r.get::<_, String>(1)?,
                    r.get(2)?,
                    &r.get::<_, String>(3)?,
                    &r.get::<_, String>(4)?,
                ))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    let (total, page) = list.apply(items, &["name"])?;
    Ok(Json(json!({ "total": total, "databases": page })))
}

async fn get_database(
    caller: Caller,
    State(state): State<AppState>,
    Path(db): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require_key("databases.read")?;
    Ok(Json(
        state
            .store
            .call(move |conn| read_database(conn, &db))
            .await?,
    ))
}

async fn update_database(
    caller: Caller,
    State(state): State<AppState>,
    Path(db): Path<String>,
    Body(body): Body<DatabaseBody>,
) -> ApiResult<Json<Value>> {
    caller.require_key("databases.write")?;
    let name = required(body.name, "name")?;
    check_name(&name)?;
    let cache = state.schema.clone();
    let out = state
        .store
        .call(move |conn| {
            read_database(conn, &db)?;
            conn.execute(
                "UPDATE databases SET name = ?2, enabled = COALESCE(?3, enabled), updated_at = ?4 WHERE id = ?1",
                params![db, name, body.enabled, util::now()],
            )?;
            cache.clear();
            read_database(conn, &db)
        })
        .await?;
    Ok(Json(out))
}

#[tracing::instrument(skip_all, fields(db = %db))]
async fn delete_database(
    caller: Caller,
    State(state): State<AppState>,
    Path(db): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_key("databases.write")?;
    let cache = state.schema.clone();
    state
        .store
        .transaction(move |tx| {
            read_database(tx, &db)?;
            let tables: Vec<String> = tx
                .prepare("SELECT table_name FROM collections WHERE database_id = ?1")?
                .query_map(params![db], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for table in tables {
                drop_collection_tables(tx, &table)?;
            }
            tx.execute("DELETE FROM attributes WHERE database_id = ?1", params![db])?;
            tx.execute("DELETE FROM indexes WHERE database_id = ?1", params![db])?;
            tx.execute(
                "DELETE FROM collections WHERE database_id = ?1",
                params![db],
            )?;
            tx.execute("DELETE FROM databases WHERE id = ?1", params![db])?;
            cache.clear();
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Collections

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CollectionBody {
    collection_id: Option<String>,
    name: Option<String>,
    permissions: Option<Vec<String>>,
    document_security: Option<bool>,
    enabled: Option<bool>,
}

fn drop_collection_tables(conn: &Connection, table: &str) -> ApiResult<()> {
    // Cached statements may point at the table; drop them before the table goes.
    conn.flush_prepared_statement_cache();
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS {}; DROP TABLE IF EXISTS {};",
        quote_ident(table),
        quote_ident(&format!("{table}_readers"))
    ))?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(db = %db))]
async fn create_collection(
    caller: Caller,
    State(state): State<AppState>,
    Path(db): Path<String>,
    Body(body): Body<CollectionBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require_key("collections.write")?;
    let id = util::resolve_id(
        "collectionId",
        &required(body.collection_id, "collectionId")?,
    )?;
    let name = required(body.name, "name")?;
    check_name(&name)?;
    let perms = permissions::normalize(&body.permissions.unwrap_or_default())?;
    let document_security = body.document_security.unwrap_or(false);
    let enabled = body.enabled.unwrap_or(true);
    let cache = state.schema.clone();
    let out = state
        .store
        .transaction(move |tx| {
            schema::database_enabled(tx, &db)?;
            let now = util::now();
            let placeholder = format!("pending_{}", util::unique_id());
            let inserted = tx.execute(
                "INSERT INTO collections (database_id, id, name, permissions, document_security, enabled, table_name, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) ON CONFLICT (database_id, id) DO NOTHING",
                params![db, id, name, serde_json::to_string(&perms)?, document_security, enabled, placeholder, now],
            )?;
            if inserted == 0 {
                return Err(ApiError::new(
                    409,
                    "collection_already_exists",
                    "Collection with the requested ID already exists. Try again with a different ID or use ID.unique() to generate a unique ID.",
                ));
            }
            let seq = tx.last_insert_rowid();
            let table = format!("doc_{seq}");
            tx.execute(
                "UPDATE collections SET table_name = ?1 WHERE seq = ?2",
                params![table, seq],
            )?;
            let t = quote_ident(&table);
            let readers = quote_ident(&format!("{table}_readers"));
            tx.execute_batch(&format!(
                "CREATE TABLE {t} (
                    _seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    _id TEXT NOT NULL UNIQUE,
                    _created TEXT NOT NULL,
                    _updated TEXT NOT NULL,
                    _perms TEXT NOT NULL DEFAULT '[]'
                 );
                 CREATE INDEX {ci} ON {t}(_created);
                 CREATE INDEX {ui} ON {t}(_updated);
                 CREATE TABLE {readers} (doc INTEGER NOT NULL, role TEXT NOT NULL, PRIMARY KEY (doc, role)) WITHOUT ROWID;",
                ci = quote_ident(&format!("{table}_created")),
                ui = quote_ident(&format!("{table}_updated")),
            ))?;
            cache.clear();
            Ok(schema::load_collection(tx, &db, &id)?.to_json())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

async fn list_collections(
    caller: Caller,
    State(state): State<AppState>,
    Path(db): Path<String>,
    params: super::documents::Params,
) -> ApiResult<Json<Value>> {
    caller.require_key("collections.read")?;
    let list = ListQuery::from_params(
        &super::documents::query_params(params)?,
        COLLECTION_QUERY_ATTRS,
    )?;
    let items = state
        .store
        .call(move |conn| {
            schema::database_enabled(conn, &db)?;
            let ids: Vec<String> = conn
                .prepare_cached("SELECT id FROM collections WHERE database_id = ?1 ORDER BY seq")?
                .query_map(params![db], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            ids.iter()
                .map(|id| Ok(schema::load_collection(conn, &db, id)?.to_json()))
                .collect::<ApiResult<Vec<_>>>()
        })
        .await?;
    let (total, page) = list.apply(items, &["name"])?;
    Ok(Json(json!({ "total": total, "collections": page })))
}

async fn get_collection(
    caller: Caller,
    State(state): State<AppState>,
    Path((db, col)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require_key("collections.read")?;
    let out = state
        .store
        .call(move |conn| Ok(schema::load_collection(conn, &db, &col)?.to_json()))
        .await?;
    Ok(Json(out))
}

async fn update_collection(
    caller: Caller,
    State(state): State<AppState>,
    Path((db, col)): Path<(String, String)>,
    Body(body): Body<CollectionBody>,
) -> ApiResult<Json<Value>> {
    caller.require_key("collections.write")?;
    let name = required(body.name, "name")?;
    check_name(&name)?;
    let perms = body
        .permissions
        .map(|p| permissions::normalize(&p))
        .transpose()?;
    let cache = state.schema.clone();
    let out = state
        .store
        .call(move |conn| {
            let old = schema::load_collection(conn, &db, &col)?;
            let perms = perms.unwrap_or(old.permissions);
            conn.execute(
                "UPDATE collections SET name = ?3, permissions = ?4,
                    document_security = COALESCE(?5, document_security),
                    enabled = COALESCE(?6, enabled), updated_at = ?7
                 WHERE database_id = ?1 AND id = ?2",
                params![
                    db,
                    col,
                    name,
                    serde_json::to_string(&perms)?,
                    body.document_security,
                    body.enabled,
                    util::now()
                ],
            )?;
            cache.clear();
            Ok(schema::load_collection(conn, &db, &col)?.to_json())
        })
        .await?;
    Ok(Json(out))
}

#[tracing::instrument(skip_all, fields(db = %db, col = %col))]
async fn delete_collection(
    caller: Caller,
    State(state): State<AppState>,
    Path((db, col)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require_key("collections.write")?;
    let cache = state.schema.clone();
    state
        .store
        .transaction(move |tx| {
            let meta = schema::load_collection(tx, &db, &col)?;
            drop_collection_tables(tx, &meta.table)?;
            for table in ["attributes", "indexes"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE database_id = ?1 AND collection_id = ?2"),
                    params![db, col],
                )?;
            }
            tx.execute(
                "DELETE FROM collections WHERE database_id = ?1 AND id = ?2",
                params![db, col],
            )?;
            cache.clear();
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Attributes

#[derive(Deserialize)]
struct AttributeBody {
    key: Option<String>,
    required: Option<bool>,
    array: Option<bool>,
    size: Option<i64>,
    min: Option<Value>,
    max: Option<Value>,
    elements: Option<Vec<String>>,
    default: Option<Value>,
}

fn attribute_invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "attribute_value_invalid", message)
}

fn build_attr(kind: &str, body: AttributeBody) -> ApiResult<Attr> {
    let key = required(body.key, "key")?;
    if !util::is_valid_custom_id(&key) {
        return Err(ApiError::argument_invalid(
            "Invalid `key` param: Parameter must contain at most 36 chars. Valid chars are a-z, A-Z, 0-9, period, hyphen, and underscore. Can't start with a special char",
        ));
    }
    let required_flag = required(body.required, "required")?;
    let num_i = |v: &Option<Value>, name: &str, d: i64| -> ApiResult<i64> {
        match v {
            None | Some(Value::Null) => Ok(d),
            Some(v) => v.as_i64().ok_or_else(|| {
                ApiError::argument_invalid(format!(
                    "Invalid `{name}` param: Value must be a valid integer"
                ))
            }),
        }
    };
    let num_f = |v: &Option<Value>, name: &str, d: f64| -> ApiResult<f64> {
        match v {
            None | Some(Value::Null) => Ok(d),
            Some(v) => v.as_f64().ok_or_else(|| {
                ApiError::argument_invalid(format!(
                    "Invalid `{name}` param: Value must be a valid float"
                ))
            }),
        }
    };
    let kind = match kind {
        "string" => {
            let size = required(body.size, "size")?;
            if !(1..=1_073_741_824).contains(&size) {
                return Err(ApiError::argument_invalid(
                    "Invalid `size` param: Value must be a valid range between 1 and 1,073,741,824",
                ));
            }
            Kind::String { size }
        }
        "integer" => {
            let (min, max) = (
                num_i(&body.min, "min", i64::MIN)?,
                num_i(&body.max, "max", i64::MAX)?,
            );
            if min > max {
                return Err(attribute_invalid(
                    "Minimum value must be lesser than maximum value",
                ));
            }
            Kind::Integer { min, max }
        }
        "float" => {
            let (min, max) = (
                num_f(&body.min, "min", -f64::MAX)?,
                num_f(&body.max, "max", f64::MAX)?,
            );
            if min > max {
                return Err(attribute_invalid(
                    "Minimum value must be lesser than maximum value",
                ));
            }
            Kind::Float { min, max }
        }
        "boolean" => Kind::Boolean,
        "datetime" => Kind::Datetime,
        "enum" => {
            let elements = required(body.elements, "elements")?;
            if elements.is_empty()
                || elements
                    .iter()
                    .any(|e| e.is_empty() || e.chars().count() > 255)
            {
                return Err(ApiError::argument_invalid(
                    "Invalid `elements` param: Value must a valid array no longer than 100 items and Value must be a valid string and at least 1 chars and no longer than 255 chars",
                ));
            }
            Kind::Enum { elements }
        }
        other => {
            return Err(ApiError::not_implemented(&format!("{other} attributes")));
        }
    };
    let mut attr = Attr {
        key,
        kind,
        required: required_flag,
        array: body.array.unwrap_or(false),
        status: "available".to_owned(),
        default: Value::Null,
        created_at: String::new(),
        updated_at: String::new(),
    };
    if let Some(default) = body.default.filter(|d| !d.is_null()) {
        if attr.required {
            return Err(ApiError::new(
                400,
                "attribute_default_unsupported",
                "Cannot set default value for required attribute",
            ));
        }
        if attr.array {
            return Err(ApiError::new(
                400,
                "attribute_default_unsupported",
                "Cannot set default value for array attributes",
            ));
        }
        let stored = crate::docstore::validate_value(&attr, &default).map_err(|e| {
            attribute_invalid(e.message.replace("Invalid document structure: ", ""))
        })?;
        attr.default = crate::docstore::sql_to_json_scalar(&attr, stored);
    }
    Ok(attr)
}

#[tracing::instrument(skip_all, fields(db = %db, col = %col))]
async fn create_attribute(
    caller: Caller,
    State(state): State<AppState>,
    Path((db, col, kind)): Path<(String, String, String)>,
    Body(body): Body<AttributeBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require_key("collections.write")?;
    let mut attr = build_attr(&kind, body)?;
    let cache = state.schema.clone();
    let out = state
        .store
        .transaction(move |tx| {
            let meta = schema::load_collection(tx, &db, &col)?;
            if meta.attr(&attr.key).is_some() {
                return Err(ApiError::new(
                    409,
                    "attribute_already_exists",
                    "Attribute with the requested key already exists. Attribute keys must be unique, try again with a different key.",
                ));
            }
            let now = util::now();
            attr.created_at.clone_from(&now);
            attr.updated_at = now;
            tx.execute(
                "INSERT INTO attributes (database_id, collection_id, key, type, status, required, is_array, spec, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                params![
                    db, col, attr.key, attr.type_name(), attr.status, attr.required, attr.array,
                    serde_json::to_string(&attr.spec_json())?, attr.created_at
                ],
            )?;
            tx.execute_batch(&format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                meta.table_ident(),
                attr.column(),
                attr.sql_type()
            ))?;
            // Existing documents get the default, as Appwrite fills it in for them.
            if !attr.default.is_null() {
                let value = crate::docstore::validate_value(&attr, &attr.default)?;
                tx.execute(
                    &format!("UPDATE {} SET {} = ?1", meta.table_ident(), attr.column()),
                    params![value],
                )?;
            }
            cache.clear();
            Ok(attr.to_json())
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(out)))
}

async fn list_attributes(
    caller: Caller,
    State(state): State<AppState>,
    Path((db, col)): Path<(String, String)>,
    params: super::documents::Params,
) -> ApiResult<Json<Value>> {
    caller.require_key("collections.read")?;
    let list = ListQuery::from_params(
        &super::documents::query_params(params)?,
        ATTRIBUTE_QUERY_ATTRS,
    )?;
    let meta = state
        .store
        .call(move |conn| schema::load_collection(conn, &db, &col))
        .await?;
    let items: Vec<Value> = meta.attrs.iter().map(Attr::to_json).collect();
    let (total, page) = list.apply(items, &[])?;
    Ok(Json(json!({ "total": total, "attributes": page })))
}

fn attribute_not_found() -> ApiError {
    ApiError::new(
        404,
        "attribute_not_found",
        "Attribute with the requested ID could not be found.",
    )
}

async fn get_attribute(
    caller: Caller,
    State(state): State<AppState>,
    Path((db, col, key)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require_key("collections.read")?;
    let meta = state
        .store
        .call(move |conn| schema::load_collection(conn, &db, &col))
        .await?;
    let attr = meta.attr(&key).ok_or_else(attribute_not_found)?;
    Ok(Json(attr.to_json()))
}

async fn delete_attribute(
    caller: Caller,
    State(state): State<AppState>,
    Path((db, col, key)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    caller.require_key("collections.write")?;
    let cache = state.schema.clone();
    state
        .store
        .transaction(move |tx| {
            let meta = schema::load_collection(tx, &db, &col)?;
            let attr = meta.attr(&key).ok_or_else(attribute_not_found)?;
            // Appwrite drops indexes that use the attribute along with it; SQLite also refuses
            // to drop an indexed column.
            for index in meta.indexes.iter().filter(|i| i.attributes.contains(&key)) {
                drop_index(tx, &meta, &index.key)?;
            }
            tx.flush_prepared_statement_cache();
            tx.execute_batch(&format!(
                "ALTER TABLE {} DROP COLUMN {}",
                meta.table_ident(),
                attr.column()
            ))?;
            tx.execute(
                "DELETE FROM attributes WHERE database_id = ?1 AND collection_id = ?2 AND key = ?3",
                params![db, col, key],
            )?;
            cache.clear();
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Indexes

#[derive(Deserialize)]
struct IndexBody {
    key: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    attributes: Option<Vec<String>>,
    orders: Option<Vec<Option<String>>>,
    lengths: Option<Vec<Value>>,
}

fn index_sql_name(meta: &CollectionMeta, key: &str) -> String {
    quote_ident(&format!("{}_ix_{key}", meta.table))
}

fn index_not_found() -> ApiError {
    ApiError::new(
        404,
        "index_not_found",
        "Index with the requested ID could not be found.",
    )
}

fn drop_index(conn: &Connection, meta: &CollectionMeta, key: &str) -> ApiResult<()> {
    conn.execute_batch(&format!(
        "DROP INDEX IF EXISTS {}",
        index_sql_name(meta, key)
    ))?;
    conn.execute(
        "DELETE FROM indexes WHERE database_id = ?1 AND collection_id = ?2 AND key = ?3",
        params![meta.database_id, meta.id, key],
    )?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(db = %db, col = %col))]
async fn create_index(
    caller: Caller,
    State(state): State<AppState>,
    Path((db, col)): Path<(String, String)>,
    Body(body): Body<IndexBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require_key("collections.write")?;
    let key = required(body.key, "key")?;
    if !util::is_valid_custom_id(&key) {
        return Err(ApiError::argument_invalid(
            "Invalid `key` param: Parameter must contain at most 36 chars. Valid chars are a-z, A-Z, 0-9, period, hyphen, and underscore. Can't start with a special char",
        ));
    }
    let kind = required(body.kind, "type")?;
    if !matches!(kind.as_str(), "key" | "unique" | "fulltext") {
        return Err(ApiError::argument_invalid(
            "Invalid `type` param: Value must be one of (key, fulltext, unique, spatial)",
        ));
    }
    let attributes = required(body.attributes, "attributes")?;
    if attributes.is_empty() {
        return Err(ApiError::argument_invalid(
            "Invalid `attributes` param: Value must a valid array no longer than 100 items",
        ));
    }
    let orders: Vec<String> = body
        .orders
        .unwrap_or_default()
        .into_iter()
        .map(|o| o.unwrap_or_default().to_uppercase())
        .collect();
    if orders
        .iter()
        .any(|o| !matches!(o.as_str(), "ASC" | "DESC" | ""))
    {
        return Err(ApiError::argument_invalid(
            "Invalid `orders` param: Value must be one of (ASC, DESC)",
        ));
    }
    let lengths = body.lengths.unwrap_or_default();
    let cache = state.schema.clone();
    let out = state
        .store
        .transaction(move |tx| {
            let meta = schema::load_collection(tx, &db, &col)?;
            if meta.indexes.iter().any(|i| i.key == key) {
                return Err(ApiError::new(
                    409,
                    "index_already_exists",
                    "Index with the requested key already exists. Try again with a different key.",
                ));
            }
            let mut columns = Vec::new();
            for (i, name) in attributes.iter().enumerate() {
                let column = match name.as_str() {
                    "$id" => "_id".to_owned(),
                    "$createdAt" => "_created".to_owned(),
                    "$updatedAt" => "_updated".to_owned(),
                    "$sequence" => "_seq".to_owned(),
                    other => {
                        let attr = meta.attr(other).ok_or_else(|| {
                            ApiError::new(
                                400,
                                "attribute_unknown",
                                format!("The attribute '{other}' was not found in the collection. Verify the attribute name or create the attribute."),
                            )
                        })?;
                        if attr.status != "available" {
                            return Err(crate::docstore::attribute_not_available());
                        }
                        attr.column()
                    }
                };
                let dir = orders.get(i).filter(|o| !o.is_empty()).map_or("", |o| o.as_str());
                columns.push(format!("{column} {dir}"));
            }
            let now = util::now();
            let unique = if kind == "unique" { "UNIQUE " } else { "" };
            let status = match tx.execute_batch(&format!(
                "CREATE {unique}INDEX {} ON {}({})",
                index_sql_name(&meta, &key),
                meta.table_ident(),
                columns.join(", ")
            )) {
                Ok(()) => "available".to_owned(),
                // Existing duplicates make a unique index fail, as it does in Appwrite.
                Err(e) => format!("failed: {e}"),
            };
            tx.execute(
                "INSERT INTO indexes (database_id, collection_id, key, type, status, attributes, orders, lengths, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                params![
                    db, col, key, kind, status,
                    serde_json::to_string(&attributes)?,
                    serde_json::to_string(&orders)?,
                    serde_json::to_string(&lengths)?,
                    now
                ],
            )?;
            cache.clear();
            let meta = schema::load_collection(tx, &db, &col)?;
            meta.indexes
                .iter()
                .find(|i| i.key == key)
                .map(|i| i.to_json())
                .ok_or_else(index_not_found)
        })
        .await?;
    Ok((StatusCode::ACCEPTED, Json(out)))
}

async fn list_indexes(
    caller: Caller,
    State(state): State<AppState>,
    Path((db, col)): Path<(String, String)>,
    params: super::documents::Params,
) -> ApiResult<Json<Value>> {
    caller.require_key("collections.read")?;
    let list = ListQuery::from_params(&super::documents::query_params(params)?, INDEX_QUERY_ATTRS)?;
    let meta = state
        .store
        .call(move |conn| schema::load_collection(conn, &db, &col))
        .await?;
    let items: Vec<Value> = meta.indexes.iter().map(|i| i.to_json()).collect();
    let (total, page) = list.apply(items, &[])?;
    Ok(Json(json!({ "total": total, "indexes": page })))
}

async fn get_index(
    caller: Caller,
    State(state): State<AppState>,
    Path((db, col, key)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require_key("collections.read")?;
    let meta = state
        .store
        .call(move |conn| schema::load_collection(conn, &db, &col))
        .await?;
    let index = meta
        .indexes
        .iter()
        .find(|i| i.key == key)
        .ok_or_else(index_not_found)?;
    Ok(Json(index.to_json()))
}

async fn delete_index(
    caller: Caller,
    State(state): State<AppState>,
    Path((db, col, key)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    caller.require_key("collections.write")?;
    let cache = state.schema.clone();
    state
        .store
        .transaction(move |tx| {
            let meta = schema::load_collection(tx, &db, &col)?;
            if !meta.indexes.iter().any(|i| i.key == key) {
                return Err(index_not_found());
            }
            drop_index(tx, &meta, &key)?;
            cache.clear();
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
