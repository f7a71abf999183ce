//! Collection metadata (attributes, indexes, permissions) loaded from the schema tables and
//! cached in memory, so document requests never re-read the schema. Every schema change clears
//! the cache while it still holds the connection lock, so readers never see a stale schema.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};

/// The type-specific rules of one attribute.
#[derive(Clone, Debug)]
pub enum Kind {
    String { size: i64 },
    Integer { min: i64, max: i64 },
    Float { min: f64, max: f64 },
    Boolean,
    Datetime,
    Enum { elements: Vec<String> },
}

#[derive(Clone, Debug)]
pub struct Attr {
    pub key: String,
    pub kind: Kind,
    pub required: bool,
    pub array: bool,
    pub status: String,
    pub default: Value,
    pub created_at: String,
    pub updated_at: String,
}

impl Attr {
    /// The SQLite column holding this attribute; prefixed so keys never collide with `_id` etc.
    pub fn column(&self) -> String {
        column_for(&self.key)
    }

    /// The attribute as Appwrite's `attribute*` response models show it.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "key": self.key,
            "status": self.status,
            "error": "",
            "required": self.required,
            "array": self.array,
            "$createdAt": self.created_at,
            "$updatedAt": self.updated_at,
            "default": self.default,
        });
        let extra = match &self.kind {
            Kind::String { size } => json!({"type": "string", "size": size, "encrypt": false}),
            Kind::Integer { min, max } => json!({"type": "integer", "min": min, "max": max}),
            Kind::Float { min, max } => json!({"type": "double", "min": min, "max": max}),
            Kind::Boolean => json!({"type": "boolean"}),
            Kind::Datetime => json!({"type": "datetime", "format": "datetime"}),
            Kind::Enum { elements } => {
                json!({"type": "string", "format": "enum", "elements": elements})
            }
        };
        if let (Some(o), Value::Object(e)) = (out.as_object_mut(), extra) {
            o.extend(e);
        }
        out
    }

    /// The type name stored in the `attributes.type` column.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::String { .. } => "string",
            Kind::Integer { .. } => "integer",
            Kind::Float { .. } => "double",
            Kind::Boolean => "boolean",
            Kind::Datetime => "datetime",
            Kind::Enum { .. } => "enum",
        }
    }

    /// Type-specific fields kept in `attributes.spec`.
    pub fn spec_json(&self) -> Value {
        let mut spec = match &self.kind {
            Kind::String { size } => json!({ "size": size }),
            Kind::Integer { min, max } => json!({ "min": min, "max": max }),
            Kind::Float { min, max } => json!({ "min": min, "max": max }),
            Kind::Boolean | Kind::Datetime => json!({}),
            Kind::Enum { elements } => json!({ "elements": elements }),
        };
        spec["default"] = self.default.clone();
        spec
    }

    fn from_row(type_name: &str, spec: &Value) -> ApiResult<Kind> {
        let i = |k: &str, d: i64| spec.get(k).and_then(Value::as_i64).unwrap_or(d);
        let f = |k: &str, d: f64| spec.get(k).and_then(Value::as_f64).unwrap_or(d);
        Ok(match type_name {
            "string" => Kind::String {
                size: i("size", 255),
            },
            "integer" => Kind::Integer {
                min: i("min", i64::MIN),
                max: i("max", i64::MAX),
            },
            "double" => Kind::Float {
                min: f("min", -f64::MAX),
                max: f("max", f64::MAX),
            },
            "boolean" => Kind::Boolean,
            "datetime" => Kind::Datetime,
            "enum" => Kind::Enum {
                elements: serde_json::from_value(spec.get("elements").cloned().unwrap_or_default())
                    .unwrap_or_default(),
            },
            other => {
                return Err(ApiError::server_error(format!(
                    "unknown attribute type {other}"
                )));
            }
        })
    }

    /// SQLite column type for `ALTER TABLE ... ADD COLUMN`.
    pub fn sql_type(&self) -> &'static str {
        if self.array {
            return "TEXT";
        }
        match self.kind {
            Kind::Integer { .. } | Kind::Boolean => "INTEGER",
            Kind::Float { .. } => "REAL",
            _ => "TEXT",
        }
    }
}

pub fn column_for(key: &str) -> String {
    quote_ident(&format!("a_{key}"))
}

/// Quotes an SQL identifier. Keys are validated already; doubling quotes keeps this safe anyway.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[derive(Clone, Debug)]
pub struct IndexDef {
    pub key: String,
    pub kind: String,
    pub status: String,
    pub error: String,
    pub attributes: Vec<String>,
    pub orders: Vec<String>,
    pub lengths: Vec<Value>,
    pub created_at: String,
    pub updated_at: String,
}

impl IndexDef {
    pub fn to_json(&self) -> Value {
        json!({
            "$id": self.key,
            "$createdAt": self.created_at,
            "$updatedAt": self.updated_at,
            "key": self.key,
            "type": self.kind,
            "status": self.status,
            "error": self.error,
            "attributes": self.attributes,
            "lengths": self.lengths,
            "orders": self.orders,
        })
    }
}

/// Everything a document request needs to know about its collection.
#[derive(Clone, Debug)]
pub struct CollectionMeta {
    pub seq: i64,
    pub database_id: String,
    pub database_enabled: bool,
    pub id: String,
    pub name: String,
    pub permissions: Vec<String>,
    pub document_security: bool,
    pub enabled: bool,
    pub table: String,
    pub created_at: String,
    pub updated_at: String,
    pub attrs: Vec<Attr>,
    pub indexes: Vec<IndexDef>,
    /// The document statements' SQL, written once per loaded schema (`docstore::sql`).
    pub sql: std::sync::OnceLock<Arc<crate::docstore::DocSql>>,
}

impl CollectionMeta {
    pub fn attr(&self, key: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.key == key)
    }

    /// The quoted document table name.
    pub fn table_ident(&self) -> String {
        quote_ident(&self.table)
    }

    /// The side table listing who may do what with each document (for SQL read filtering).
    pub fn readers_table_ident(&self) -> String {
        quote_ident(&format!("{}_readers", self.table))
    }

    pub fn to_json(&self) -> Value {
        json!({
            "$id": self.id,
            "$createdAt": self.created_at,
            "$updatedAt": self.updated_at,
            "$permissions": self.permissions,
            "databaseId": self.database_id,
            "name": self.name,
            "enabled": self.enabled,
            "documentSecurity": self.document_security,
            "attributes": self.attrs.iter().map(Attr::to_json).collect::<Vec<_>>(),
            "indexes": self.indexes.iter().map(IndexDef::to_json).collect::<Vec<_>>(),
        })
    }
}

/// Collection metadata by `(database, collection)`.
#[derive(Default)]
pub struct SchemaCache {
    map: Mutex<HashMap<(String, String), Arc<CollectionMeta>>>,
}

impl SchemaCache {
    /// The collection's metadata, from memory when possible. 404s name what is missing.
    pub fn get(&self, conn: &Connection, db: &str, col: &str) -> ApiResult<Arc<CollectionMeta>> {
        let key = (db.to_owned(), col.to_owned());
        if let Some(meta) = self.lock().get(&key) {
            return Ok(Arc::clone(meta));
        }
        let meta = Arc::new(load_collection(conn, db, col)?);
        self.lock().insert(key, Arc::clone(&meta));
        Ok(meta)
    }

    /// Forgets everything; called by every schema change.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<CollectionMeta>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub fn database_not_found() -> ApiError {
    ApiError::new(404, "database_not_found", "Database not found")
}

pub fn collection_not_found() -> ApiError {
    ApiError::new(
        404,
        "collection_not_found",
        "Collection with the requested ID could not be found.",
    )
}

/// `(enabled)` of a database, or 404.
pub fn database_enabled(conn: &Connection, db: &str) -> ApiResult<bool> {
    conn.prepare_cached("SELECT enabled FROM databases WHERE id = ?1")?
        .query_row(params![db], |r| r.get(0))
        .optional()?
        .ok_or_else(database_not_found)
}

/// Reads a collection and its attributes and indexes from the schema tables.
pub fn load_collection(conn: &Connection, db: &str, col: &str) -> ApiResult<CollectionMeta> {
    let database_enabled = database_enabled(conn, db)?;
    let row = conn
        .prepare_cached(
            "SELECT seq, name, permissions, document_security, enabled, table_name, created_at, updated_at
             FROM collections WHERE database_id = ?1 AND id = ?2",
        )?
        .query_row(params![db, col], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
            ))
        })
        .optional()?
        .ok_or_else(collection_not_found)?;
    let (seq, name, perms, document_security, enabled, table, created_at, updated_at) = row;

    let mut attrs = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT key, type, status, required, is_array, spec, created_at, updated_at
         FROM attributes WHERE database_id = ?1 AND collection_id = ?2 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![db, col], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, bool>(3)?,
            r.get::<_, bool>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, String>(7)?,
        ))
    })?;
    for row in rows {
        let (key, type_name, status, required, array, spec, created_at, updated_at) = row?;
        let spec: Value = serde_json::from_str(&spec)?;
        attrs.push(Attr {
            kind: Attr::from_row(&type_name, &spec)?,
            default: spec.get("default").cloned().unwrap_or(Value::Null),
            key,
            required,
            array,
            status,
            created_at,
            updated_at,
        });
    }

    let mut indexes = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT key, type, status, attributes, orders, lengths, created_at, updated_at
         FROM indexes WHERE database_id = ?1 AND collection_id = ?2 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![db, col], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, String>(7)?,
        ))
    })?;
    for row in rows {
        let (key, kind, status, attributes, orders, lengths, created_at, updated_at) = row?;
        // A failed index keeps its message in the status column as `failed: <why>`.
        let (status, error) = match status.split_once(": ") {
            Some((s, e)) => (s.to_owned(), e.to_owned()),
            None => (status, String::new()),
        };
        indexes.push(IndexDef {
            key,
            kind,
            status,
            error,
            attributes: serde_json::from_str(&attributes)?,
            orders: serde_json::from_str(&orders)?,
            lengths: serde_json::from_str(&lengths)?,
            created_at,
            updated_at,
        });
    }

    Ok(CollectionMeta {
        seq,
        database_id: db.to_owned(),
        database_enabled,
        id: col.to_owned(),
        name,
        permissions: serde_json::from_str(&perms)?,
        document_security,
        enabled,
        table,
        created_at,
        updated_at,
        attrs,
        indexes,
        sql: Default::default(),
    })
}
