//! List queries for the account-side services (users, sessions, teams, memberships, buckets,
//! files): takes the `queries[]` parsed by [`crate::query::parse_queries`] (the one parser of
//! Appwrite's query JSON) and `search`, then filters, orders and pages the response objects in
//! memory, which is plenty for an emulator's handful of rows.

use std::cmp::Ordering;

use serde_json::Value;

use crate::{
    error::{ApiError, ApiResult},
    query::{self, Query},
};

/// Appwrite's default page size and the cap on `total`.
const DEFAULT_LIMIT: usize = 25;
const MAX_TOTAL: usize = 5000;

#[derive(Debug, Clone)]
enum Filter {
    Equal(String, Vec<Value>),
    NotEqual(String, Vec<Value>),
    Search(String, String),
    Contains(String, Vec<Value>),
    StartsWith(String, String),
    EndsWith(String, String),
    Compare(String, Ordering, bool, Value),
    Between(String, Value, Value),
    IsNull(String, bool),
}

#[derive(Debug, Clone)]
enum Cursor {
    After(String),
    Before(String),
}

/// A parsed list request: `queries[]` plus the `search` parameter.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    filters: Vec<Filter>,
    orders: Vec<(String, bool)>,
    limit: Option<usize>,
    offset: Option<usize>,
    cursor: Option<Cursor>,
    search: Option<String>,
    /// `total=false` asks Appwrite to skip counting; it then reports 0.
    skip_total: bool,
}

impl ListQuery {
    /// The one string value an `equal` filter on `attr` asks for, if there is such a filter.
    /// Callers use it to read only the matching rows (an indexed lookup) before [`apply`]
    /// runs every filter as usual, so the answer is the same, only cheaper.
    ///
    /// [`apply`]: ListQuery::apply
    pub fn single_equal(&self, attr: &str) -> Option<String> {
        self.filters.iter().find_map(|f| match f {
            Filter::Equal(a, values) if a == attr && values.len() == 1 => {
                values[0].as_str().map(str::to_owned)
            }
            _ => None,
        })
    }

    /// Parses the raw query string. `allowed` names the attributes a client may filter and order
    /// on (besides `$id`, `$createdAt`, `$updatedAt`), as Appwrite rejects any other.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> ApiResult<Self> {
        let Some(raw) = raw else {
            return Ok(ListQuery::default());
        };
        let params: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
            .into_owned()
            .collect();
        Self::from_params(&params, allowed)
    }

    /// As [`ListQuery::parse`], from parameters already split into pairs.
    pub fn from_params(params: &[(String, String)], allowed: &[&str]) -> ApiResult<Self> {
        let mut out = ListQuery::default();
        if let Some((_, term)) = params.iter().find(|(k, _)| k == "search") {
            let term = term.trim();
            if !term.is_empty() {
                out.search = Some(term.to_lowercase());
            }
        }
        out.skip_total = !query::wants_total(params)?;
        for q in query::parse_queries(params)? {
            out.add(&q, allowed)?;
        }
        Ok(out)
    }

    fn add(&mut self, q: &Query, allowed: &[&str]) -> ApiResult<()> {
        let invalid = |why: &str| ApiError::query_invalid(format!("Invalid query: {why}"));
        let method = q.method.as_str();
        let values = &q.values;
        let attribute = q.attribute.clone();
        let check_attr = || -> ApiResult<String> {
            let system = ["$id", "$createdAt", "$updatedAt"];
            if system.contains(&attribute.as_str()) || allowed.contains(&attribute.as_str()) {
                Ok(attribute.clone())
            } else {
                Err(invalid(&format!(
                    "Attribute not found in schema: {attribute}"
                )))
            }
        };
        let first = || {
            values
                .first()
                .cloned()
                .ok_or_else(|| invalid(&format!("{method} queries require at least one value")))
        };
        let first_str = || -> ApiResult<String> {
            first()?
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| invalid(&format!("{method} queries take a string value")))
        };
        let count = |v: Value| -> ApiResult<usize> {
            v.as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| invalid(&format!("{method} must be a non-negative integer")))
        };
        match method {
            "equal" => {
                if values.is_empty() {
                    return Err(invalid("equal queries require at least one value"));
                }
                self.filters
                    .push(Filter::Equal(check_attr()?, values.clone()));
            }
            "notEqual" => self
                .filters
                .push(Filter::NotEqual(check_attr()?, values.clone())),
            "search" => self
                .filters
                .push(Filter::Search(check_attr()?, first_str()?.to_lowercase())),
            "contains" => self
                .filters
                .push(Filter::Contains(check_attr()?, values.clone())),
            "startsWith" => self
                .filters
                .push(Filter::StartsWith(check_attr()?, first_str()?)),
            "endsWith" => self
                .filters
                .push(Filter::EndsWith(check_attr()?, first_str()?)),
            "lessThan" | "lessThanEqual" | "greaterThan" | "greaterThanEqual" => {
                let ord = if method.starts_with("less") {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
                let inclusive = method.ends_with("Equal");
                self.filters
                    .push(Filter::Compare(check_attr()?, ord, inclusive, first()?));
            }
            "between" => {
                let (Some(a), Some(b)) = (values.first(), values.get(1)) else {
                    return Err(invalid("between queries require two values"));
                };
                self.filters
                    .push(Filter::Between(check_attr()?, a.clone(), b.clone()));
            }
            "isNull" => self.filters.push(Filter::IsNull(check_attr()?, true)),
            "isNotNull" => self.filters.push(Filter::IsNull(check_attr()?, false)),
            "orderAsc" => self.orders.push((check_attr()?, false)),
            "orderDesc" => self.orders.push((check_attr()?, true)),
            "limit" => {
                let n = count(first()?)?;
                if n > MAX_TOTAL {
                    return Err(invalid(&format!("limit must be at most {MAX_TOTAL}")));
                }
                self.limit = Some(n);
            }
            "offset" => self.offset = Some(count(first()?)?),
            "cursorAfter" => self.cursor = Some(Cursor::After(first_str()?)),
            "cursorBefore" => self.cursor = Some(Cursor::Before(first_str()?)),
            // Response field selection changes nothing an emulator client relies on.
            "select" => {}
            other => return Err(invalid(&format!("Query method not valid: {other}"))),
        }
        Ok(())
    }

    /// Filters, orders and pages `items` (already in creation order). `search_fields` are the
    /// fields the `search` parameter looks in. Returns Appwrite's capped `total` and the page.
    pub fn apply(
        &self,
        items: Vec<Value>,
        search_fields: &[&str],
    ) -> ApiResult<(usize, Vec<Value>)> {
        let mut rows: Vec<Value> = items
            .into_iter()
            .filter(|item| self.filters.iter().all(|f| matches(item, f)))
            .filter(|item| match &self.search {
                None => true,
                Some(term) => search_fields.iter().any(|field| {
                    text_of(item.get(*field)).is_some_and(|t| t.to_lowercase().contains(term))
                }),
            })
            .collect();
        // Stable sort: ties keep creation order, as Appwrite's default order is by sequence.
        if !self.orders.is_empty() {
            rows.sort_by(|a, b| {
                for (attr, desc) in &self.orders {
                    let ord = compare(a.get(attr), b.get(attr));
                    let ord = if *desc { ord.reverse() } else { ord };
                    if ord != Ordering::Equal {
                        return ord;
                    }
                }
                Ordering::Equal
            });
        }
        let total = if self.skip_total {
            0
        } else {
            rows.len().min(MAX_TOTAL)
        };
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        let offset = self.offset.unwrap_or(0);
        let page: Vec<Value> = match &self.cursor {
            None => rows.into_iter().skip(offset).take(limit).collect(),
            Some(cursor) => {
                let id = match cursor {
                    Cursor::After(id) | Cursor::Before(id) => id,
                };
                // Schema lists (attributes, indexes) name their items by `key`.
                let id_of = |r: &Value| r.get("$id").or_else(|| r.get("key")).cloned();
                let pos = rows
                    .iter()
                    .position(|r| id_of(r).as_ref().and_then(Value::as_str) == Some(id.as_str()))
                    .ok_or_else(|| {
                        ApiError::new(
                            400,
                            "general_cursor_not_found",
                            format!("Document '{id}' for the 'cursor' value not found."),
                        )
                    })?;
                match cursor {
                    Cursor::After(_) => rows
                        .into_iter()
                        .skip(pos + 1)
                        .skip(offset)
                        .take(limit)
                        .collect(),
                    Cursor::Before(_) => {
                        let before: Vec<Value> = rows.into_iter().take(pos).collect();
                        let end = before.len().saturating_sub(offset);
                        let start = end.saturating_sub(limit);
                        before[start..end].to_vec()
                    }
                }
            }
        };
        Ok((total, page))
    }
}

fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|i| i.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        other => Some(other.to_string()),
    }
}

/// Loose equality: numbers compare by value, so `1` matches `1.0`.
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Array attributes (labels, roles) match when any element does, as in Appwrite.
fn any_equal(field: Option<&Value>, values: &[Value]) -> bool {
    match field {
        Some(Value::Array(items)) => items.iter().any(|i| values.iter().any(|v| same(i, v))),
        Some(v) => values.iter().any(|x| same(v, x)),
        None => false,
    }
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p.partial_cmp(&q).unwrap_or(Ordering::Equal),
            _ => match (x, y) {
                (Value::String(p), Value::String(q)) => p.cmp(q),
                (Value::Bool(p), Value::Bool(q)) => p.cmp(q),
                _ => x.to_string().cmp(&y.to_string()),
            },
        },
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn matches(item: &Value, filter: &Filter) -> bool {
    match filter {
        Filter::Equal(attr, values) => any_equal(item.get(attr), values),
        Filter::NotEqual(attr, values) => !any_equal(item.get(attr), values),
        Filter::Search(attr, term) => text_of(item.get(attr)).is_some_and(|t| {
            let t = t.to_lowercase();
            term.split_whitespace().any(|w| t.contains(w))
        }),
        Filter::Contains(attr, values) => match item.get(attr) {
            Some(Value::Array(_)) => any_equal(item.get(attr), values),
            Some(Value::String(s)) => values
                .iter()
                .filter_map(Value::as_str)
                .any(|v| s.contains(v)),
            _ => false,
        },
        Filter::StartsWith(attr, p) => item
            .get(attr)
            .and_then(Value::as_str)
            .is_some_and(|s| s.starts_with(p.as_str())),
        Filter::EndsWith(attr, p) => item
            .get(attr)
            .and_then(Value::as_str)
            .is_some_and(|s| s.ends_with(p.as_str())),
        Filter::Compare(attr, want, inclusive, v) => {
            let Some(field) = item.get(attr) else {
                return false;
            };
            let ord = compare(Some(field), Some(v));
            ord == *want || (*inclusive && ord == Ordering::Equal)
        }
        Filter::Between(attr, lo, hi) => {
            let Some(field) = item.get(attr) else {
                return false;
            };
            compare(Some(field), Some(lo)) != Ordering::Less
                && compare(Some(field), Some(hi)) != Ordering::Greater
        }
        Filter::IsNull(attr, want_null) => {
            let is_null = matches!(item.get(attr), None | Some(Value::Null));
            is_null == *want_null
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn q(parts: &[&str]) -> String {
        parts
            .iter()
            .map(|p| {
                format!(
                    "queries[]={}",
                    url::form_urlencoded::byte_serialize(p.as_bytes()).collect::<String>()
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    fn items() -> Vec<Value> {
        (0..5)
            .map(|i| json!({"$id": format!("u{i}"), "email": format!("u{i}@x.io"), "labels": if i % 2 == 0 { json!(["even"]) } else { json!([]) }, "n": i}))
            .collect()
    }

    #[test]
    fn equal_on_arrays_limit_offset_and_cursor() {
        let lq = ListQuery::parse(
            Some(&q(&[
                r#"{"method":"equal","attribute":"labels","values":["even"]}"#,
            ])),
            &["labels"],
        )
        .unwrap();
        let (total, page) = lq.apply(items(), &[]).unwrap();
        assert_eq!(total, 3);
        assert_eq!(page.len(), 3);

        let lq = ListQuery::parse(
            Some(&q(&[
                r#"{"method":"orderDesc","attribute":"n"}"#,
                r#"{"method":"cursorAfter","values":["u3"]}"#,
                r#"{"method":"limit","values":[1]}"#,
            ])),
            &["n"],
        )
        .unwrap();
        let (total, page) = lq.apply(items(), &[]).unwrap();
        assert_eq!(total, 5);
        assert_eq!(page, vec![items()[2].clone()]);
    }

    #[test]
    fn bad_queries_are_rejected() {
        for bad in [
            "not json",
            r#"{"method":"fly","attribute":"email","values":[]}"#,
            r#"{"method":"equal","attribute":"password","values":["x"]}"#,
            r#"{"method":"limit","values":["ten"]}"#,
        ] {
            let err = ListQuery::parse(Some(&q(&[bad])), &["email"]).unwrap_err();
            assert_eq!(err.kind, "general_query_invalid", "{bad}");
        }
    }
}
