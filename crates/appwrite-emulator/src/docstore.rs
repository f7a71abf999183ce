//! Documents in a collection's own table: validation against the attributes (Appwrite's
//! structure rules), reading rows into Appwrite's document JSON, writing rows together with the
//! `<table>_readers` side table that list queries filter on, and the events a change publishes.

use rusqlite::{Connection, OptionalExtension, Row, params, types::Value as SqlValue};
use serde::{Serialize, Serializer, ser::SerializeMap as _};
use serde_json::{Map, Value, json};

use crate::{
    error::{ApiError, ApiResult},
    permissions::{self, Action},
    query::{self, Compiled},
    schema::{Attr, CollectionMeta, Kind},
    state::RealtimeEvent,
    util,
};

pub fn structure_invalid(message: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        400,
        "document_invalid_structure",
        format!("Invalid document structure: {message}"),
    )
}

pub fn attribute_not_available() -> ApiError {
    ApiError::new(
        400,
        "attribute_not_available",
        "The requested attribute is not yet available. Please try again later.",
    )
}

pub fn document_not_found() -> ApiError {
    ApiError::new(
        404,
        "document_not_found",
        "Document with the requested ID could not be found.",
    )
}

pub fn document_exists() -> ApiError {
    ApiError::new(
        409,
        "document_already_exists",
        "Document with the requested ID already exists. Try again with a different ID or use ID.unique() to generate a unique ID.",
    )
}

/// Checks one value (a whole array for array attributes) and returns what the column stores.
pub fn validate_value(attr: &Attr, v: &Value) -> ApiResult<SqlValue> {
    if v.is_null() {
        return Ok(SqlValue::Null);
    }
    if attr.array {
        let items = v.as_array().ok_or_else(|| {
            structure_invalid(format!("Attribute \"{}\" must be an array", attr.key))
        })?;
        let mut stored = Vec::with_capacity(items.len());
        for item in items {
            let scalar = validate_scalar(attr, item)?;
            stored.push(sql_to_json_scalar(attr, scalar));
        }
        return Ok(SqlValue::Text(serde_json::to_string(&stored)?));
    }
    validate_scalar(attr, v)
}

fn validate_scalar(attr: &Attr, v: &Value) -> ApiResult<SqlValue> {
    let key = &attr.key;
    let invalid_type =
        |what: &str| structure_invalid(format!("Attribute \"{key}\" has invalid type. {what}"));
    let invalid_format =
        |what: String| structure_invalid(format!("Attribute \"{key}\" has invalid format. {what}"));
    Ok(match &attr.kind {
        Kind::String { size } => {
            let s = v
                .as_str()
                .filter(|s| s.chars().count() as i64 <= *size)
                .ok_or_else(|| {
                    invalid_type(&format!(
                        "Value must be a valid string and no longer than {size} chars"
                    ))
                })?;
            SqlValue::Text(s.to_owned())
        }
        Kind::Integer { min, max } => {
            let n = v
                .as_i64()
                .ok_or_else(|| invalid_type("Value must be a valid integer"))?;
            if n < *min || n > *max {
                return Err(invalid_format(format!(
                    "Value must be a valid range between {min} and {max}"
                )));
            }
            SqlValue::Integer(n)
        }
        Kind::Float { min, max } => {
            let n = v
                .as_f64()
                .ok_or_else(|| invalid_type("Value must be a valid float"))?;
            if n < *min || n > *max {
                return Err(invalid_format(format!(
                    "Value must be a valid range between {min} and {max}"
                )));
            }
            SqlValue::Real(n)
        }
        Kind::Boolean => SqlValue::Integer(i64::from(
            v.as_bool()
                .ok_or_else(|| invalid_type("Value must be a valid boolean"))?,
        )),
        Kind::Datetime => {
            SqlValue::Text(v.as_str().and_then(util::normalize_time).ok_or_else(|| {
                invalid_format(
                    "Value must be valid date between 0000-01-01 00:00:00 and 9999-12-31 23:59:59."
                        .to_owned(),
                )
            })?)
        }
        Kind::Enum { elements } => {
            let s = v
                .as_str()
                .filter(|s| elements.iter().any(|e| e == s))
                .ok_or_else(|| {
                    invalid_format(format!("Value must be one of ({})", elements.join(", ")))
                })?;
            SqlValue::Text(s.to_owned())
        }
    })
}

/// The JSON form of one stored scalar.
pub fn sql_to_json_scalar(attr: &Attr, v: SqlValue) -> Value {
    match (v, &attr.kind) {
        (SqlValue::Null, _) => Value::Null,
        (SqlValue::Integer(i), Kind::Boolean) => Value::Bool(i != 0),
        (SqlValue::Integer(i), Kind::Float { .. }) => json!(i as f64),
        (SqlValue::Integer(i), _) => json!(i),
        (SqlValue::Real(f), _) => json!(f),
        (SqlValue::Text(s), _) => Value::String(s),
        (SqlValue::Blob(_), _) => Value::Null,
    }
}

fn column_to_json(attr: &Attr, v: SqlValue) -> ApiResult<Value> {
    if attr.array {
        return Ok(match v {
            SqlValue::Text(s) => serde_json::from_str(&s)?,
            _ => Value::Null,
        });
    }
    Ok(sql_to_json_scalar(attr, v))
}

/// One stored document.
#[derive(Clone, Debug)]
pub struct Doc {
    pub seq: i64,
    pub id: String,
    pub created: String,
    pub updated: String,
    pub perms: Vec<String>,
    /// One JSON value per attribute, in `meta.attrs` order.
    pub values: Vec<Value>,
}

/// Which of a collection's attributes a `select` names, in `meta.attrs` order (`None`: all).
fn selected(meta: &CollectionMeta, select: Option<&[String]>) -> Option<Vec<bool>> {
    select.map(|s| {
        meta.attrs
            .iter()
            .map(|a| s.iter().any(|k| k == &a.key))
            .collect()
    })
}

impl Doc {
    /// The whole document as Appwrite answers it, as a JSON value (a Realtime payload).
    pub fn to_json(&self, meta: &CollectionMeta) -> Value {
        serde_json::to_value(self.shown(meta, None)).expect("a document's values are JSON already")
    }

    /// The document as Appwrite answers it, serialized straight into a response: no JSON map is
    /// built and no value copied (a list page's documents were most of its allocations).
    fn shown<'a>(&'a self, meta: &'a CollectionMeta, selected: Option<&'a [bool]>) -> Shown<'a> {
        Shown {
            doc: self,
            meta,
            selected,
        }
    }
}

/// See [`Doc::shown`].
struct Shown<'a> {
    doc: &'a Doc,
    meta: &'a CollectionMeta,
    /// From [`selected`]: `None` shows every attribute.
    selected: Option<&'a [bool]>,
}

impl Serialize for Shown<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (doc, meta) = (self.doc, self.meta);
        let mut out = s.serialize_map(None)?;
        out.serialize_entry("$id", &doc.id)?;
        out.serialize_entry("$sequence", &doc.seq)?;
        out.serialize_entry("$collectionId", &meta.id)?;
        out.serialize_entry("$databaseId", &meta.database_id)?;
        out.serialize_entry("$createdAt", &doc.created)?;
        out.serialize_entry("$updatedAt", &doc.updated)?;
        out.serialize_entry("$permissions", &doc.perms)?;
        for (i, (attr, value)) in meta.attrs.iter().zip(&doc.values).enumerate() {
            if self
                .selected
                .is_none_or(|s| s.get(i).copied().unwrap_or(false))
            {
                out.serialize_entry(&attr.key, value)?;
            }
        }
        out.end()
    }
}

/// One document's answer, owning what [`Doc::shown`] borrows.
pub struct ShownDoc {
    doc: Doc,
    meta: std::sync::Arc<CollectionMeta>,
    selected: Option<Vec<bool>>,
}

impl ShownDoc {
    /// `doc` with the attributes `select` names (all for `None`).
    pub fn new(doc: Doc, meta: std::sync::Arc<CollectionMeta>, select: Option<&[String]>) -> Self {
        let selected = selected(&meta, select);
        Self {
            doc,
            meta,
            selected,
        }
    }
}

impl Serialize for ShownDoc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.doc
            .shown(&self.meta, self.selected.as_deref())
            .serialize(s)
    }
}

/// A list's answer, `{"total": .., "documents": [..]}`, serialized as [`Doc::shown`] does.
pub struct ShownList {
    total: i64,
    docs: Vec<Doc>,
    meta: std::sync::Arc<CollectionMeta>,
    /// Worked out once for the whole page.
    selected: Option<Vec<bool>>,
}

impl ShownList {
    pub fn new(
        total: i64,
        docs: Vec<Doc>,
        meta: std::sync::Arc<CollectionMeta>,
        select: Option<&[String]>,
    ) -> Self {
        let selected = selected(&meta, select);
        Self {
            total,
            docs,
            meta,
            selected,
        }
    }
}

impl Serialize for ShownList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Documents<'a>(&'a ShownList);
        impl Serialize for Documents<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let list = self.0;
                s.collect_seq(
                    list.docs
                        .iter()
                        .map(|d| d.shown(&list.meta, list.selected.as_deref())),
                )
            }
        }
        let mut out = s.serialize_map(Some(2))?;
        out.serialize_entry("total", &self.total)?;
        out.serialize_entry("documents", &Documents(self))?;
        out.end()
    }
}

/// `_seq, _id, _created, _updated, _perms, <attribute columns>`; with a `select`, attributes it
/// does not name are read as `NULL` (same positions, so rows read the same way): their values
/// are not answered, and copying them out of SQLite (a signal's text, its embeds) was most of
/// a list page's work on the storage thread.
fn select_list(meta: &CollectionMeta, select: Option<&[String]>) -> String {
    let mut cols = String::from("t._seq, t._id, t._created, t._updated, t._perms");
    for a in &meta.attrs {
        if select.is_none_or(|s| s.iter().any(|k| k == &a.key)) {
            cols.push_str(", t.");
            cols.push_str(&a.column());
        } else {
            cols.push_str(", NULL");
        }
    }
    cols
}

/// The SQL of a collection's document statements, written once per loaded schema: every call
/// would otherwise format it again before the statement cache could even be asked.
#[derive(Debug)]
pub struct DocSql {
    fetch: String,
    insert: String,
    update: String,
    delete: String,
    readers_delete: String,
    readers_insert: String,
}

/// The collection's [`DocSql`].
fn sql(meta: &CollectionMeta) -> &DocSql {
    meta.sql.get_or_init(|| {
        let table = meta.table_ident();
        let readers = meta.readers_table_ident();
        let mut cols = String::from("_id, _created, _updated, _perms");
        let mut marks = String::from("?, ?, ?, ?");
        let mut sets = String::from("_updated = ?, _perms = ?");
        for a in &meta.attrs {
            let column = a.column();
            cols.push_str(", ");
            cols.push_str(&column);
            marks.push_str(", ?");
            sets.push_str(", ");
            sets.push_str(&column);
            sets.push_str(" = ?");
        }
        std::sync::Arc::new(DocSql {
            fetch: format!(
                "SELECT {} FROM {table} t WHERE t._id = ?1",
                select_list(meta, None)
            ),
            insert: format!("INSERT INTO {table} ({cols}) VALUES ({marks})"),
            update: format!("UPDATE {table} SET {sets} WHERE _seq = ?"),
            delete: format!("DELETE FROM {table} WHERE _seq = ?1"),
            readers_delete: format!("DELETE FROM {readers} WHERE doc = ?1"),
            readers_insert: format!("INSERT OR IGNORE INTO {readers} (role, doc) VALUES (?1, ?2)"),
        })
    })
}

fn read_row(meta: &CollectionMeta, row: &Row<'_>) -> rusqlite::Result<(Doc, Vec<SqlValue>)> {
    let perms: String = row.get(4)?;
    let mut raw = Vec::with_capacity(meta.attrs.len());
    for i in 0..meta.attrs.len() {
        raw.push(row.get::<_, SqlValue>(5 + i)?);
    }
    Ok((
        Doc {
            seq: row.get(0)?,
            id: row.get(1)?,
            created: row.get(2)?,
            updated: row.get(3)?,
            perms: serde_json::from_str(&perms).unwrap_or_default(),
            values: Vec::new(),
        },
        raw,
    ))
}

fn finish(meta: &CollectionMeta, (mut doc, raw): (Doc, Vec<SqlValue>)) -> ApiResult<Doc> {
    // A loop rather than `collect::<ApiResult<_>>()`, which cannot size the vector up front.
    let mut values = Vec::with_capacity(meta.attrs.len());
    for (a, v) in meta.attrs.iter().zip(raw) {
        values.push(column_to_json(a, v)?);
    }
    doc.values = values;
    Ok(doc)
}

pub fn fetch(conn: &Connection, meta: &CollectionMeta, id: &str) -> ApiResult<Option<Doc>> {
    let row = conn
        .prepare_cached(&sql(meta).fetch)?
        .query_row(params![id], |r| read_row(meta, r))
        .optional()?;
    row.map(|r| finish(meta, r)).transpose()
}

/// The document as stored from `row` (what [`validate_document`] made of it): the values a
/// read of the row gives back, without reading it.
fn stored(
    meta: &CollectionMeta,
    seq: i64,
    id: &str,
    created: &str,
    updated: &str,
    perms: &[String],
    row: Vec<SqlValue>,
) -> ApiResult<Doc> {
    finish(
        meta,
        (
            Doc {
                seq,
                id: id.to_owned(),
                created: created.to_owned(),
                updated: updated.to_owned(),
                perms: perms.to_vec(),
                values: Vec::new(),
            },
            row,
        ),
    )
}

/// Builds the full attribute row for a write: `data` over `base` (the stored document on
/// update) or over the defaults (on create); checks every rule before anything is written.
pub fn validate_document(
    meta: &CollectionMeta,
    data: &Map<String, Value>,
    base: Option<&Doc>,
) -> ApiResult<Vec<SqlValue>> {
    for key in data.keys() {
        // `$id`, `$permissions` and friends are system fields Appwrite sets itself.
        if !key.starts_with('$') && meta.attr(key).is_none() {
            return Err(structure_invalid(format!("Unknown attribute: \"{key}\"")));
        }
    }
    let mut row = Vec::with_capacity(meta.attrs.len());
    for (i, attr) in meta.attrs.iter().enumerate() {
        let value = match (data.get(&attr.key), base) {
            (Some(v), _) => {
                if attr.status != "available" {
                    return Err(attribute_not_available());
                }
                v.clone()
            }
            (None, Some(doc)) => doc.values.get(i).cloned().unwrap_or(Value::Null),
            (None, None) => attr.default.clone(),
        };
        if value.is_null() && attr.required {
            return Err(structure_invalid(format!(
                "Missing required attribute \"{}\"",
                attr.key
            )));
        }
        row.push(validate_value(attr, &value)?);
    }
    Ok(row)
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Writes the document's read roles to the side table; `replace` clears the old ones first
/// (a new document has none: `$sequence` values are never reused).
fn write_readers(
    conn: &Connection,
    meta: &CollectionMeta,
    seq: i64,
    perms: &[String],
    replace: bool,
) -> ApiResult<()> {
    let sql = sql(meta);
    if replace {
        conn.prepare_cached(&sql.readers_delete)?
            .execute(params![seq])?;
    }
    let roles = permissions::roles_for(perms, Action::Read);
    if !roles.is_empty() {
        let mut insert = conn.prepare_cached(&sql.readers_insert)?;
        for role in roles {
            insert.execute(params![role, seq])?;
        }
    }
    Ok(())
}

/// Inserts a new document; `row` comes from [`validate_document`].
pub fn insert(
    conn: &Connection,
    meta: &CollectionMeta,
    id: &str,
    row: Vec<SqlValue>,
    perms: &[String],
    now: &str,
) -> ApiResult<Doc> {
    let mut stmt = conn.prepare_cached(&sql(meta).insert)?;
    let perms_text = serde_json::to_string(perms)?;
    let fixed = [
        SqlValue::Text(id.to_owned()),
        SqlValue::Text(now.to_owned()),
        SqlValue::Text(now.to_owned()),
        SqlValue::Text(perms_text),
    ];
    stmt.execute(rusqlite::params_from_iter(fixed.iter().chain(row.iter())))
        .map_err(|e| {
            if is_unique_violation(&e) {
                document_exists()
            } else {
                e.into()
            }
        })?;
    let seq = conn.last_insert_rowid();
    write_readers(conn, meta, seq, perms, false)?;
    stored(meta, seq, id, now, now, perms, row)
}

/// Rewrites a stored document's attributes and permissions.
pub fn update(
    conn: &Connection,
    meta: &CollectionMeta,
    old: &Doc,
    row: Vec<SqlValue>,
    perms: &[String],
    now: &str,
) -> ApiResult<Doc> {
    let mut stmt = conn.prepare_cached(&sql(meta).update)?;
    let fixed = [
        SqlValue::Text(now.to_owned()),
        SqlValue::Text(serde_json::to_string(perms)?),
    ];
    let seq = [SqlValue::Integer(old.seq)];
    stmt.execute(rusqlite::params_from_iter(
        fixed.iter().chain(row.iter()).chain(seq.iter()),
    ))
    .map_err(|e| {
        if is_unique_violation(&e) {
            document_exists()
        } else {
            e.into()
        }
    })?;
    if perms != old.perms.as_slice() {
        write_readers(conn, meta, old.seq, perms, true)?;
    }
    stored(meta, old.seq, &old.id, &old.created, now, perms, row)
}

pub fn delete(conn: &Connection, meta: &CollectionMeta, doc: &Doc) -> ApiResult<()> {
    let sql = sql(meta);
    conn.prepare_cached(&sql.delete)?
        .execute(params![doc.seq])?;
    conn.prepare_cached(&sql.readers_delete)?
        .execute(params![doc.seq])?;
    Ok(())
}

/// Who may list: `None` sees everything the filters match; `Some(roles)` only documents whose
/// own read permissions name one of `roles`.
pub type ReadFilter = Option<Vec<String>>;

/// A listed row as read from SQLite, its attribute values not yet turned into JSON: the
/// storage thread runs every call in turn, so a list leaves that work (most of a page's
/// allocations) to the request's own task ([`RawDoc::finish`]).
pub struct RawDoc((Doc, Vec<SqlValue>));

impl RawDoc {
    /// The document with its attribute values.
    pub fn finish(self, meta: &CollectionMeta) -> ApiResult<Doc> {
        finish(meta, self.0)
    }
}

/// Runs a compiled list query: `(total capped at 5000, page)`.
#[cfg(test)]
pub(crate) fn list(
    conn: &Connection,
    meta: &CollectionMeta,
    q: &Compiled,
    readers: &ReadFilter,
    want_total: bool,
) -> ApiResult<(i64, Vec<Doc>)> {
    let (total, rows) = list_raw(conn, meta, q, readers, want_total)?;
    let docs = rows
        .into_iter()
        .map(|r| r.finish(meta))
        .collect::<ApiResult<_>>()?;
    Ok((total, docs))
}

/// [`list`], the rows as read ([`RawDoc`]).
pub fn list_raw(
    conn: &Connection,
    meta: &CollectionMeta,
    q: &Compiled,
    readers: &ReadFilter,
    want_total: bool,
) -> ApiResult<(i64, Vec<RawDoc>)> {
    let (conditions, params) = conditions(meta, q, readers);
    let total = if want_total {
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM {} t {} LIMIT {})",
            meta.table_ident(),
            where_clause(&conditions),
            query::MAX_COUNT
        );
        conn.prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(params.iter()), |r| r.get(0))?
    } else {
        0
    };
    let page = page_statement(conn, meta, q, conditions, params)?;
    let mut stmt = conn.prepare_cached(&page.sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(page.params), |r| {
        read_row(meta, r)
    })?;
    let mut docs = Vec::with_capacity(usize::try_from(q.limit).unwrap_or(0).min(5_000));
    for row in rows {
        docs.push(RawDoc(row?));
    }
    if page.reversed {
        docs.reverse();
    }
    Ok((total, docs))
}

/// The filters and the read permission check, with their parameters.
fn conditions(
    meta: &CollectionMeta,
    q: &Compiled,
    readers: &ReadFilter,
) -> (Vec<String>, Vec<SqlValue>) {
    let mut conditions = Vec::new();
    let mut params: Vec<SqlValue> = Vec::new();
    if !q.filter.is_empty() {
        conditions.push(q.filter.clone());
        params.extend(q.params.iter().cloned());
    }
    if let Some(roles) = readers {
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM {} r WHERE r.doc = t._seq AND r.role IN ({}))",
            meta.readers_table_ident(),
            vec!["?"; roles.len().max(1)].join(", ")
        ));
        if roles.is_empty() {
            params.push(SqlValue::Null);
        }
        params.extend(roles.iter().cloned().map(SqlValue::Text));
    }
    (conditions, params)
}

fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    }
}

/// The statement that reads one page.
struct PageStatement {
    sql: String,
    params: Vec<SqlValue>,
    /// `cursorBefore` reads backwards from the cursor; the caller turns the page around.
    reversed: bool,
}

/// Builds the page statement: `conditions` plus the cursor's keyset, ordered as compiled.
fn page_statement(
    conn: &Connection,
    meta: &CollectionMeta,
    q: &Compiled,
    mut conditions: Vec<String>,
    mut params: Vec<SqlValue>,
) -> ApiResult<PageStatement> {
    let table = meta.table_ident();
    let mut orders = q.orders.clone();
    let reversed = matches!(q.cursor, Some((_, false)));
    if let Some((cursor_id, _)) = &q.cursor {
        if reversed {
            for o in &mut orders {
                o.1 = !o.1;
            }
        }
        let cols: Vec<&str> = orders.iter().map(|(c, _)| c.as_str()).collect();
        let sql = format!("SELECT {} FROM {table} t WHERE t._id = ?1", cols.join(", "));
        let values = conn
            .prepare_cached(&sql)?
            .query_row(params![cursor_id], |r| {
                (0..cols.len())
                    .map(|i| r.get::<_, SqlValue>(i))
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .optional()?
            .ok_or_else(|| {
                ApiError::new(
                    400,
                    "general_cursor_not_found",
                    format!("Document '{cursor_id}' for the 'cursor' value not found."),
                )
            })?;
        // Appwrite refuses to page from a cursor whose order values include a null.
        if let Some(i) = values.iter().position(|v| matches!(v, SqlValue::Null)) {
            let name = q.order_names.get(i).map_or("", String::as_str);
            return Err(ApiError::new(
                400,
                "database_query_order_null",
                format!(
                    "The order attribute '{name}' had a null value. Cursor pagination requires all documents order attribute values are non-null."
                ),
            ));
        }
        conditions.push(query::keyset(&orders, &values, &mut params));
    }
    let order_sql: Vec<String> = orders
        .iter()
        .map(|(c, d)| format!("{c} {}", if *d { "DESC" } else { "ASC" }))
        .collect();
    // The limit is written into the statement, not bound: SQLite plans with a bound LIMIT's
    // value and marks the statement to be planned again whenever that parameter is bound,
    // which is every time a cached statement runs (`sqlite3Reprepare`, measured at 4-8% of the
    // storage thread on feed pages). Limits are few (25, 100, ...), so the cache stays small;
    // the offset, which varies, stays a parameter (SQLite does not plan with it).
    let sql = format!(
        "SELECT {} FROM {table} t {} ORDER BY {} LIMIT {} OFFSET ?",
        select_list(meta, q.select.as_deref()),
        where_clause(&conditions),
        order_sql.join(", "),
        q.limit
    );
    params.push(SqlValue::Integer(q.offset));
    Ok(PageStatement {
        sql,
        params,
        reversed,
    })
}

/// SQLite's plan for the page statement of a list query (`EXPLAIN QUERY PLAN` details), for
/// tests that check which index serves a query shape.
#[cfg(test)]
pub(crate) fn explain_page(
    conn: &Connection,
    meta: &CollectionMeta,
    q: &Compiled,
    readers: &ReadFilter,
) -> ApiResult<Vec<String>> {
    let (conditions, params) = conditions(meta, q, readers);
    let page = page_statement(conn, meta, q, conditions, params)?;
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", page.sql))?;
    let rows = stmt.query_map(rusqlite::params_from_iter(page.params), |r| {
        r.get::<_, String>(3)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many times SQLite planned the cached page statement of `q`'s shape again since it was
/// prepared (`SQLITE_STMTSTATUS_REPREPARE`), for tests that check cached statements stay planned.
#[cfg(test)]
pub(crate) fn page_reprepares(
    conn: &Connection,
    meta: &CollectionMeta,
    q: &Compiled,
    readers: &ReadFilter,
) -> ApiResult<i32> {
    let (conditions, params) = conditions(meta, q, readers);
    let page = page_statement(conn, meta, q, conditions, params)?;
    let stmt = conn.prepare_cached(&page.sql)?;
    Ok(stmt.get_status(rusqlite::StatementStatus::RePrepare))
}

/// Roles that may read `doc`: the collection's readers, plus the document's own with document
/// security on. Realtime delivers only to subscribers holding one of them.
pub fn readers_of(meta: &CollectionMeta, perms: &[String]) -> Vec<String> {
    let mut roles = permissions::roles_for(&meta.permissions, Action::Read);
    if meta.document_security {
        for r in permissions::roles_for(perms, Action::Read) {
            if !roles.contains(&r) {
                roles.push(r);
            }
        }
    }
    roles
}

/// Appwrite's event names for a document change: the specific one first, then every wildcard
/// combination, each with and without the action suffix.
pub fn event_names(db: &str, col: &str, id: &str, action: &str) -> Vec<String> {
    let mut out = Vec::new();
    for with_action in [true, false] {
        for mask in 0..8u8 {
            let d = if mask & 4 != 0 { "*" } else { db };
            let c = if mask & 2 != 0 { "*" } else { col };
            let i = if mask & 1 != 0 { "*" } else { id };
            let base = format!("databases.{d}.collections.{c}.documents.{i}");
            out.push(if with_action {
                format!("{base}.{action}")
            } else {
                base
            });
        }
    }
    out
}

pub fn event(meta: &CollectionMeta, doc: &Doc, action: &str) -> RealtimeEvent {
    let (db, col) = (&meta.database_id, &meta.id);
    RealtimeEvent {
        events: event_names(db, col, &doc.id, action),
        // 1.8 also names collections "tables" and documents "rows"; subscribers of either
        // spelling hear the same change.
        channels: vec![
            "documents".to_owned(),
            format!("databases.{db}.collections.{col}.documents"),
            format!("databases.{db}.collections.{col}.documents.{}", doc.id),
            "rows".to_owned(),
            format!("databases.{db}.tables.{col}.rows"),
            format!("databases.{db}.tables.{col}.rows.{}", doc.id),
        ],
        readers: readers_of(meta, &doc.perms),
        timestamp: util::now(),
        payload: doc.to_json(meta),
    }
}
