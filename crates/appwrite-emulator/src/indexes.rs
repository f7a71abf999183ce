//! Which index serves a document list query. Real Appwrite answers a query no index covers (by
//! scanning and sorting); with [`crate::Config::require_indexes`], a setting for tests, the
//! emulator refuses it instead, so a service issuing a query shape its schema has no index for
//! fails its tests rather than slowing down in production.
//!
//! The rule is MariaDB's and SQLite's leftmost prefix. An index covers a shape when its first
//! attributes are the shape's equality filters (`equal`, `isNull`; in any order), followed, for
//! an ordered shape, by the order attributes in the query's directions. Every index ends with
//! `$sequence` ascending (InnoDB appends the primary key, SQLite the rowid), which is Appwrite's
//! tie-breaker, so the order attributes must be the index's last ones and point the same way;
//! only an order that ends with `$id` or `$sequence`, which leaves no ties, may also read an
//! index backwards or one that goes on after it. An unordered shape (default order: `$sequence`)
//! needs its equality filters as the index's first attributes or, with none, some other filter
//! on its first attribute; with no filter at all it reads the primary key.
//!
//! Equality on `$id` or `$sequence` is always covered: those are the unique `_uid` index and the
//! primary key that Appwrite gives every collection, with `_created_at` and `_updated_at` (both
//! ascending) beside them.

use std::{collections::BTreeSet, fmt};

use serde_json::Value;

use crate::{
    error::{ApiError, ApiResult},
    query::Query,
    schema::CollectionMeta,
};

/// What a list query asks of an index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shape {
    /// Attributes compared for equality: `equal` (one value or several) and `isNull`.
    pub equal: Vec<String>,
    /// Every other filter as `(method, attribute)`: ranges, `notEqual`, `startsWith`, ...
    /// (the filters inside `and`/`or` too).
    pub other: Vec<(String, String)>,
    /// The explicit orders, `(attribute, descending)`.
    pub orders: Vec<(String, bool)>,
    /// `Some("cursorAfter")` or `Some("cursorBefore")`.
    pub cursor: Option<String>,
}

impl Shape {
    /// The shape of already validated document queries.
    pub fn of(queries: &[Query]) -> Shape {
        let mut shape = Shape::default();
        for q in queries {
            match q.method.as_str() {
                "limit" | "offset" | "select" => {}
                "cursorAfter" | "cursorBefore" => shape.cursor = Some(q.method.clone()),
                "orderAsc" | "orderDesc" => shape
                    .orders
                    .push((system_name(&q.attribute), q.method == "orderDesc")),
                _ => shape.add_filter(q, None),
            }
        }
        shape
    }

    /// Adds one filter; `within` names the `and`/`or` around it, whose filters an index can
    /// only check, not seek (they count as other filters, shown as `or(attribute)`).
    fn add_filter(&mut self, q: &Query, within: Option<&str>) {
        match (q.method.as_str(), within) {
            ("and" | "or", _) => {
                for v in &q.values {
                    let inner = match v {
                        Value::String(s) => serde_json::from_str(s).ok(),
                        other => Some(other.clone()),
                    };
                    if let Some(inner) = inner.and_then(|v| Query::from_json(&v).ok()) {
                        self.add_filter(&inner, Some(within.unwrap_or(&q.method)));
                    }
                }
            }
            ("equal" | "isNull", None) => {
                let attribute = system_name(&q.attribute);
                if !self.equal.contains(&attribute) {
                    self.equal.push(attribute);
                }
            }
            (method, within) => self.other.push((
                within.unwrap_or(method).to_owned(),
                system_name(&q.attribute),
            )),
        }
    }

    /// The index attributes that would cover this shape, as `attribute` or `attribute DESC`.
    fn wanted(&self) -> String {
        let mut wanted: Vec<String> = self.equal.clone();
        if self.orders.is_empty() {
            if self.equal.is_empty()
                && let Some((_, attribute)) = self.other.first()
            {
                wanted.push(attribute.clone());
            }
        } else {
            for (attribute, desc) in self.effective_orders() {
                wanted.push(if desc {
                    format!("{attribute} DESC")
                } else {
                    attribute
                });
            }
        }
        wanted.join(", ")
    }

    /// The orders that decide anything: none after `$id` or `$sequence` (they leave no ties),
    /// and none on an attribute that an equality filter already fixes.
    fn effective_orders(&self) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        for (attribute, desc) in &self.orders {
            if self.equal.contains(attribute) {
                continue;
            }
            out.push((attribute.clone(), *desc));
            if is_unique(attribute) {
                break;
            }
        }
        out
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.equal.iter().map(|a| format!("equal({a})")).collect();
        parts.extend(self.other.iter().map(|(m, a)| format!("{m}({a})")));
        parts.extend(self.orders.iter().map(|(a, desc)| {
            let method = if *desc { "orderDesc" } else { "orderAsc" };
            format!("{method}({a})")
        }));
        parts.extend(self.cursor.clone());
        if parts.is_empty() {
            f.write_str("(no queries)")
        } else {
            f.write_str(&parts.join(" + "))
        }
    }
}

/// `""` is how an order without attribute names `$sequence`.
fn system_name(attribute: &str) -> String {
    if attribute.is_empty() {
        "$sequence".to_owned()
    } else {
        attribute.to_owned()
    }
}

fn is_unique(attribute: &str) -> bool {
    matches!(attribute, "$id" | "$sequence")
}

/// One index as the rule sees it: `(attribute, descending)` ending with `$sequence` ascending.
struct Candidate {
    name: String,
    columns: Vec<(String, bool)>,
}

/// Appwrite's own indexes of every collection, then the collection's available key and unique
/// indexes.
fn candidates(meta: &CollectionMeta) -> Vec<Candidate> {
    let builtin = |name: &str, attribute: &str| Candidate {
        name: name.to_owned(),
        columns: vec![(attribute.to_owned(), false)],
    };
    let mut out = vec![
        builtin("primary key", "$sequence"),
        builtin("_uid", "$id"),
        builtin("_created_at", "$createdAt"),
        builtin("_updated_at", "$updatedAt"),
    ];
    for index in &meta.indexes {
        if index.status != "available" || !matches!(index.kind.as_str(), "key" | "unique") {
            continue;
        }
        let columns = index
            .attributes
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let desc = index.orders.get(i).is_some_and(|o| o == "DESC");
                (a.clone(), desc)
            })
            .collect();
        out.push(Candidate {
            name: index.key.clone(),
            columns,
        });
    }
    for c in &mut out {
        if c.columns.last().is_none_or(|(a, _)| a != "$sequence") {
            c.columns.push(("$sequence".to_owned(), false));
        }
    }
    out
}

/// The name of an index that covers `shape`, if there is one.
pub fn covering_index(meta: &CollectionMeta, shape: &Shape) -> Option<String> {
    if shape.equal.iter().any(|a| is_unique(a)) {
        return Some(if shape.equal.iter().any(|a| a == "$id") {
            "_uid".to_owned()
        } else {
            "primary key".to_owned()
        });
    }
    let equal: BTreeSet<&str> = shape.equal.iter().map(String::as_str).collect();
    let mut order = shape.effective_orders();
    let no_ties = order.last().is_some_and(|(a, _)| is_unique(a));
    if !no_ties {
        order.push(("$sequence".to_owned(), false));
    }
    candidates(meta)
        .into_iter()
        .find(|index| {
            let Some((leading, rest)) = index.columns.split_at_checked(equal.len()) else {
                return false;
            };
            let leading: BTreeSet<&str> = leading.iter().map(|(a, _)| a.as_str()).collect();
            if leading != equal {
                return false;
            }
            if !shape.orders.is_empty() {
                return serves_order(rest, &order, no_ties);
            }
            // Unordered: the rows are found through the index, then put in `$sequence` order.
            if !equal.is_empty() {
                return true;
            }
            match rest.first() {
                Some((first, _)) if shape.other.is_empty() => first == "$sequence",
                Some((first, _)) => shape.other.iter().any(|(_, a)| a == first),
                None => false,
            }
        })
        .map(|index| index.name)
}

/// Whether index columns `rest` (after the equality ones) yield `order` as they are read.
/// `order` ends with the `$sequence` tie-breaker unless `no_ties` (it ends with `$id` or
/// `$sequence`): then the index may also be read backwards and may go on after it.
fn serves_order(rest: &[(String, bool)], order: &[(String, bool)], no_ties: bool) -> bool {
    if rest.len() < order.len() || (rest.len() > order.len() && !no_ties) {
        return false;
    }
    let same_attributes = rest.iter().zip(order).all(|((a, _), (b, _))| a == b);
    let forwards = rest.iter().zip(order).all(|((_, x), (_, y))| x == y);
    let backwards = rest.iter().zip(order).all(|((_, x), (_, y))| x != y);
    same_attributes && (forwards || (backwards && no_ties))
}

/// Refuses `queries` on `meta` unless an index covers their shape (the `require_indexes`
/// setting).
pub fn require(meta: &CollectionMeta, queries: &[Query]) -> ApiResult<()> {
    let shape = Shape::of(queries);
    if covering_index(meta, &shape).is_some() {
        return Ok(());
    }
    let message = format!(
        "No index of collection '{}' covers the query shape {shape} (an index on ({}) would): \
         add an index to crates/store/src/schema.rs. The emulator refuses unindexed queries \
         because its require_indexes setting is on.",
        meta.id,
        shape.wanted()
    );
    // Logged too: a background job may swallow the error its test never sees.
    tracing::error!(collection = %meta.id, %shape, "{message}");
    Err(ApiError::query_invalid(message))
}

#[cfg(test)]
mod tests;
