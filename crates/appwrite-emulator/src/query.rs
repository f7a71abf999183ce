//! Appwrite queries (`queries[]={"method":...}`): parsing, an in-memory evaluator for small
//! schema lists, and a compiler from document queries to parameterised SQL over a collection's
//! own table. Values are always bound as parameters; identifiers come from the schema, quoted.

use rusqlite::types::Value as SqlValue;
use serde_json::Value;

use crate::{
    error::{ApiError, ApiResult},
    schema::{Attr, CollectionMeta, Kind},
    util,
};

/// Appwrite caps `total` (and offsets) at this many documents.
pub const MAX_COUNT: i64 = 5000;
pub const DEFAULT_LIMIT: i64 = 25;
/// How Appwrite (PHP) prints its upper bound for limits and offsets.
const PHP_INT_MAX: &str = "9,223,372,036,854,775,807";

#[derive(Clone, Debug)]
pub struct Query {
    pub method: String,
    pub attribute: String,
    pub values: Vec<Value>,
}

fn invalid(message: impl std::fmt::Display) -> ApiError {
    ApiError::query_invalid(format!("Invalid query: {message}"))
}

impl Query {
    pub fn from_json(v: &Value) -> ApiResult<Query> {
        let obj = v.as_object().ok_or_else(|| invalid("Syntax error"))?;
        let method = obj
            .get("method")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("Syntax error"))?
            .to_owned();
        let attribute = match obj.get("attribute") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(invalid("Syntax error")),
        };
        let values = match obj.get("values") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(invalid("Syntax error")),
        };
        Ok(Query {
            method,
            attribute,
            values,
        })
    }

    fn one_value(&self) -> ApiResult<&Value> {
        match self.values.as_slice() {
            [v] => Ok(v),
            _ => Err(invalid(format!(
                "{} queries require exactly one value.",
                capitalized(&self.method)
            ))),
        }
    }

    fn int_value(&self) -> ApiResult<i64> {
        self.one_value()?.as_i64().ok_or_else(|| {
            invalid(format!(
                "Invalid {}: Value must be a valid integer",
                self.method
            ))
        })
    }

    fn string_value(&self) -> ApiResult<String> {
        self.one_value()?
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| {
                invalid(format!(
                    "Invalid {}: Value must be a valid string",
                    self.method
                ))
            })
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// Every `queries[]` / `queries[N]` parameter, each parsed from its JSON string.
pub fn parse_queries(params: &[(String, String)]) -> ApiResult<Vec<Query>> {
    params
        .iter()
        .filter(|(k, _)| {
            k == "queries"
                || k.strip_prefix("queries[")
                    .and_then(|r| r.strip_suffix(']'))
                    .is_some_and(|i| i.chars().all(|c| c.is_ascii_digit()))
        })
        .map(|(_, v)| {
            let json: Value = serde_json::from_str(v).map_err(|_| invalid("Syntax error"))?;
            Query::from_json(&json)
        })
        .collect()
}

/// `total=false` asks Appwrite to skip counting. Appwrite validates the parameter with a loose
/// boolean: `true`, `false`, `1` and `0` only (an empty value too is invalid), so Python's
/// `total=False` (how Appwrite's Python SDK puts a boolean in a query string) is 400
/// `general_argument_invalid` there, and here.
pub fn wants_total(params: &[(String, String)]) -> ApiResult<bool> {
    let mut want = true;
    for (_, v) in params.iter().filter(|(k, _)| k == "total") {
        want = match v.as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                return Err(ApiError::argument_invalid(
                    "Invalid `total` param: Value must be a valid boolean",
                ));
            }
        };
    }
    Ok(want)
}

/// A queryable column: an attribute or one of the `$` system fields.
#[derive(Clone, Copy)]
enum Target<'a> {
    Attr(&'a Attr),
    Id,
    Sequence,
    Time,
}

struct Column<'a> {
    sql: String,
    target: Target<'a>,
}

fn column<'a>(meta: &'a CollectionMeta, name: &str) -> ApiResult<Column<'a>> {
    let (sql, target) = match name {
        "$id" => ("_id".to_owned(), Target::Id),
        "$sequence" | "" => ("_seq".to_owned(), Target::Sequence),
        "$createdAt" => ("_created".to_owned(), Target::Time),
        "$updatedAt" => ("_updated".to_owned(), Target::Time),
        other => {
            let attr = meta
                .attr(other)
                .ok_or_else(|| invalid(format!("Attribute not found in schema: {other}")))?;
            if attr.status != "available" {
                return Err(invalid(format!("Attribute not available: {other}")));
            }
            (format!("t.{}", attr.column()), Target::Attr(attr))
        }
    };
    let sql = if sql.starts_with("t.") {
        sql
    } else {
        format!("t.{sql}")
    };
    Ok(Column { sql, target })
}

impl Column<'_> {
    fn is_array(&self) -> bool {
        matches!(self.target, Target::Attr(a) if a.array)
    }

    fn is_text(&self) -> bool {
        match self.target {
            Target::Attr(a) => matches!(a.kind, Kind::String { .. } | Kind::Enum { .. }),
            Target::Id => true,
            _ => false,
        }
    }

    /// Converts a query value to the column's stored form, refusing the wrong type.
    fn bind(&self, name: &str, v: &Value) -> ApiResult<SqlValue> {
        let bad = || invalid(format!("Query value is invalid for attribute \"{name}\""));
        Ok(match self.target {
            Target::Id => SqlValue::Text(v.as_str().ok_or_else(bad)?.to_owned()),
            Target::Sequence => SqlValue::Integer(
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(bad)?,
            ),
            Target::Time => {
                SqlValue::Text(v.as_str().and_then(util::normalize_time).ok_or_else(bad)?)
            }
            Target::Attr(a) => match &a.kind {
                Kind::String { .. } | Kind::Enum { .. } => {
                    SqlValue::Text(v.as_str().ok_or_else(bad)?.to_owned())
                }
                Kind::Integer { .. } => SqlValue::Integer(v.as_i64().ok_or_else(bad)?),
                Kind::Float { .. } => SqlValue::Real(v.as_f64().ok_or_else(bad)?),
                Kind::Boolean => SqlValue::Integer(i64::from(v.as_bool().ok_or_else(bad)?)),
                Kind::Datetime => {
                    SqlValue::Text(v.as_str().and_then(util::normalize_time).ok_or_else(bad)?)
                }
            },
        })
    }
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A compiled document list query.
#[derive(Default)]
pub struct Compiled {
    /// Filter SQL (without `WHERE`); empty when nothing filters.
    pub filter: String,
    pub params: Vec<SqlValue>,
    /// `(column sql, descending)`, ending with the `_seq` tie-breaker (ascending, as Appwrite's).
    pub orders: Vec<(String, bool)>,
    /// The attribute each entry of `orders` came from, for error messages.
    pub order_names: Vec<String>,
    pub limit: i64,
    pub offset: i64,
    /// `(document id, after)`.
    pub cursor: Option<(String, bool)>,
    pub select: Option<Vec<String>>,
}

pub fn compile(meta: &CollectionMeta, queries: &[Query]) -> ApiResult<Compiled> {
    let mut out = Compiled {
        limit: DEFAULT_LIMIT,
        ..Compiled::default()
    };
    let mut filters = Vec::new();
    for q in queries {
        match q.method.as_str() {
            // Appwrite bounds these only by PHP_INT_MAX; `total` is what is capped.
            "limit" => {
                let limit = q.int_value()?;
                if limit < 1 {
                    return Err(invalid(format!(
                        "Invalid limit: Value must be a valid range between 1 and {PHP_INT_MAX}"
                    )));
                }
                out.limit = limit;
            }
            "offset" => {
                let offset = q.int_value()?;
                if offset < 0 {
                    return Err(invalid(format!(
                        "Invalid offset: Value must be a valid range between 0 and {PHP_INT_MAX}"
                    )));
                }
                out.offset = offset;
            }
            "cursorAfter" | "cursorBefore" => {
                if out.cursor.is_some() {
                    return Err(invalid("Cursor query already exists"));
                }
                out.cursor = Some((q.string_value()?, q.method == "cursorAfter"));
            }
            "orderAsc" | "orderDesc" => {
                let col = column(meta, &q.attribute)?;
                if col.is_array() {
                    return Err(invalid(format!(
                        "Cannot order by array attribute: {}",
                        q.attribute
                    )));
                }
                out.orders.push((col.sql, q.method == "orderDesc"));
                out.order_names.push(q.attribute.clone());
            }
            "select" => {
                let mut keys = Vec::new();
                for v in &q.values {
                    let key = v
                        .as_str()
                        .ok_or_else(|| invalid("Invalid select: Value must be a valid string"))?;
                    if key != "*" && !key.starts_with('$') && meta.attr(key).is_none() {
                        return Err(invalid(format!("Attribute not found in schema: {key}")));
                    }
                    keys.push(key.to_owned());
                }
                if !keys.iter().any(|k| k == "*") {
                    out.select.get_or_insert_with(Vec::new).extend(keys);
                }
            }
            _ => {
                let mut sql = String::new();
                filter(meta, q, &mut sql, &mut out.params)?;
                filters.push(sql);
            }
        }
    }
    out.filter = filters.join(" AND ");
    // Ties (and no order at all) fall back to `$sequence` ascending, whatever the direction of
    // the orders before it, as Appwrite 1.8 does (`Database::find` appends `$sequence` without
    // an order type and the adapter defaults it to ASC). It is also the direction of the rowid
    // every SQLite index ends with, so an index in the query's direction serves the whole
    // ORDER BY without a sort.
    if !out.orders.iter().any(|(c, _)| c == "t._seq") {
        out.orders.push(("t._seq".to_owned(), false));
        out.order_names.push("$sequence".to_owned());
    }
    Ok(out)
}

/// Appends one filter query (possibly `and`/`or` of others) as SQL.
fn filter(
    meta: &CollectionMeta,
    q: &Query,
    sql: &mut String,
    params: &mut Vec<SqlValue>,
) -> ApiResult<()> {
    let method = q.method.as_str();
    if matches!(method, "and" | "or") {
        if q.values.is_empty() {
            return Err(invalid(format!(
                "{} queries require at least one query",
                capitalized(method)
            )));
        }
        let mut parts = Vec::new();
        for v in &q.values {
            let inner = match v {
                Value::String(s) => serde_json::from_str(s).map_err(|_| invalid("Syntax error"))?,
                other => other.clone(),
            };
            let inner = Query::from_json(&inner)?;
            if !is_filter(&inner.method) {
                return Err(invalid(format!(
                    "{} queries may only hold filters",
                    capitalized(method)
                )));
            }
            let mut part = String::new();
            filter(meta, &inner, &mut part, params)?;
            parts.push(part);
        }
        sql.push('(');
        sql.push_str(&parts.join(if method == "and" { " AND " } else { " OR " }));
        sql.push(')');
        return Ok(());
    }
    if !is_filter(method) {
        return Err(invalid(format!("Invalid query method: {method}")));
    }
    let col = column(meta, &q.attribute)?;
    let c = &col.sql;
    let name = q.attribute.as_str();
    let array_ok = matches!(method, "contains" | "notContains" | "isNull" | "isNotNull");
    if col.is_array() && !array_ok {
        return Err(invalid(format!(
            "Cannot query {method} on attribute \"{name}\" because it is an array."
        )));
    }
    let need_values = |min: usize| -> ApiResult<()> {
        if q.values.len() < min {
            Err(invalid(format!(
                "{} queries require at least {min} value.",
                capitalized(method)
            )))
        } else {
            Ok(())
        }
    };
    let placeholders = |n: usize| vec!["?"; n].join(", ");
    match method {
        "equal" | "notEqual" => {
            need_values(1)?;
            for v in &q.values {
                params.push(col.bind(name, v)?);
            }
            let op = if method == "equal" { "IN" } else { "NOT IN" };
            if q.values.len() == 1 {
                let op = if method == "equal" { "=" } else { "!=" };
                sql.push_str(&format!("{c} {op} ?"));
            } else {
                sql.push_str(&format!("{c} {op} ({})", placeholders(q.values.len())));
            }
        }
        "lessThan" | "lessThanEqual" | "greaterThan" | "greaterThanEqual" => {
            let op = match method {
                "lessThan" => "<",
                "lessThanEqual" => "<=",
                "greaterThan" => ">",
                _ => ">=",
            };
            params.push(col.bind(name, q.one_value()?)?);
            sql.push_str(&format!("{c} {op} ?"));
        }
        "between" | "notBetween" => {
            let [lo, hi] = q.values.as_slice() else {
                return Err(invalid(format!(
                    "{} queries require exactly two values.",
                    capitalized(method)
                )));
            };
            params.push(col.bind(name, lo)?);
            params.push(col.bind(name, hi)?);
            let not = if method == "notBetween" { "NOT " } else { "" };
            sql.push_str(&format!("{c} {not}BETWEEN ? AND ?"));
        }
        "isNull" => sql.push_str(&format!("{c} IS NULL")),
        "isNotNull" => sql.push_str(&format!("{c} IS NOT NULL")),
        "startsWith" | "notStartsWith" | "endsWith" | "notEndsWith" => {
            if !col.is_text() {
                return Err(invalid(format!(
                    "Cannot query {method} on non-string attribute \"{name}\""
                )));
            }
            let v = q.string_value()?;
            let pattern = if method.ends_with("tartsWith") {
                format!("{}%", like_escape(&v))
            } else {
                format!("%{}", like_escape(&v))
            };
            params.push(SqlValue::Text(pattern));
            let not = if method.starts_with("not") {
                "NOT "
            } else {
                ""
            };
            sql.push_str(&format!("{c} {not}LIKE ? ESCAPE '\\'"));
        }
        "contains" | "notContains" => {
            need_values(1)?;
            let not = if method == "notContains" { "NOT " } else { "" };
            if col.is_array() {
                for v in &q.values {
                    params.push(col.bind(name, v)?);
                }
                sql.push_str(&format!(
                    "{not}EXISTS (SELECT 1 FROM json_each({c}) WHERE json_each.value IN ({}))",
                    placeholders(q.values.len())
                ));
            } else {
                if !col.is_text() {
                    return Err(invalid(format!(
                        "Cannot query contains on non-string attribute \"{name}\""
                    )));
                }
                let mut parts = Vec::new();
                for v in &q.values {
                    let s = v.as_str().ok_or_else(|| {
                        invalid(format!("Query value is invalid for attribute \"{name}\""))
                    })?;
                    params.push(SqlValue::Text(format!("%{}%", like_escape(s))));
                    parts.push(format!("{c} LIKE ? ESCAPE '\\'"));
                }
                sql.push_str(&format!("{not}({})", parts.join(" OR ")));
            }
        }
        "search" | "notSearch" => {
            let fulltext = meta.indexes.iter().any(|i| {
                i.kind == "fulltext" && i.attributes.len() == 1 && i.attributes[0] == name
            });
            if !fulltext {
                return Err(invalid(format!(
                    "Searching by attribute \"{name}\" requires a fulltext index."
                )));
            }
            let text = q.string_value()?;
            let words: Vec<&str> = text.split_whitespace().collect();
            let mut parts = Vec::new();
            for w in &words {
                params.push(SqlValue::Text(format!(
                    "%{}%",
                    like_escape(w.trim_matches('"'))
                )));
                parts.push(format!("{c} LIKE ? ESCAPE '\\'"));
            }
            let all = if parts.is_empty() {
                "1".to_owned()
            } else {
                parts.join(" AND ")
            };
            let not = if method == "notSearch" { "NOT " } else { "" };
            sql.push_str(&format!("{not}({all})"));
        }
        _ => return Err(invalid(format!("Invalid query method: {method}"))),
    }
    Ok(())
}

fn is_filter(method: &str) -> bool {
    matches!(
        method,
        "equal"
            | "notEqual"
            | "lessThan"
            | "lessThanEqual"
            | "greaterThan"
            | "greaterThanEqual"
            | "between"
            | "notBetween"
            | "isNull"
            | "isNotNull"
            | "startsWith"
            | "notStartsWith"
            | "endsWith"
            | "notEndsWith"
            | "contains"
            | "notContains"
            | "search"
            | "notSearch"
            | "and"
            | "or"
    )
}

/// The keyset condition "comes after the cursor row" for `orders` (already flipped for
/// `cursorBefore`), as Appwrite 1.8 builds it (utopia-php/database `SQL::find`): one alternative
/// per order column, with the columns before it equal to the cursor's and this one strictly
/// beyond it. `values` are the cursor row's values of the order columns, never null (a null is
/// refused before this, as Appwrite does). A NULL in another row compares false, as in MariaDB,
/// so such a row is never after a cursor. The first column's bound is repeated on its own
/// (`<=` descending, `>=` ascending) so SQLite starts reading the index at the cursor instead
/// of scanning up to it; it changes no result.
pub fn keyset(
    orders: &[(String, bool)],
    values: &[SqlValue],
    params: &mut Vec<SqlValue>,
) -> String {
    let (Some((first, first_desc)), Some(first_value)) = (orders.first(), values.first()) else {
        return "1".to_owned();
    };
    let bound = format!("{first} {} ?", if *first_desc { "<=" } else { ">=" });
    params.push(first_value.clone());
    let mut alternatives = Vec::new();
    for (i, ((c, desc), v)) in orders.iter().zip(values).enumerate() {
        let mut parts = Vec::new();
        for ((prev, _), prev_value) in orders.iter().zip(values).take(i) {
            parts.push(format!("{prev} = ?"));
            params.push(prev_value.clone());
        }
        parts.push(format!("{c} {} ?", if *desc { "<" } else { ">" }));
        params.push(v.clone());
        alternatives.push(format!("({})", parts.join(" AND ")));
    }
    format!("({bound} AND ({}))", alternatives.join(" OR "))
}
