//! Typed list queries. Each [`Query`] serialises to Appwrite's JSON string form
//! (`{"method":"equal","attribute":"email","values":["a@b.c"]}`) and is sent as `queries[]=`.

use serde::Serialize;
use serde_json::Value;

/// One query of a list call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Query {
    method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    attribute: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<Vec<Value>>,
}

/// Scalars (or lists of scalars) a query may compare with. A list means "any of these".
pub trait QueryValues {
    fn into_values(self) -> Vec<Value>;
}

/// A single query scalar.
pub trait QueryScalar {
    fn into_value(self) -> Value;
}

macro_rules! scalar {
    ($($t:ty),*) => {$(
        impl QueryScalar for $t {
            fn into_value(self) -> Value {
                Value::from(self)
            }
        }
        impl QueryValues for $t {
            fn into_values(self) -> Vec<Value> {
                vec![Value::from(self)]
            }
        }
    )*};
}
scalar!(
    &str, String, bool, i8, i16, i32, i64, u8, u16, u32, u64, isize, usize, f32, f64
);

impl QueryScalar for &String {
    fn into_value(self) -> Value {
        Value::from(self.as_str())
    }
}
impl QueryValues for &String {
    fn into_values(self) -> Vec<Value> {
        vec![self.into_value()]
    }
}

impl<T: QueryScalar> QueryValues for Vec<T> {
    fn into_values(self) -> Vec<Value> {
        self.into_iter().map(QueryScalar::into_value).collect()
    }
}

impl<T: QueryScalar, const N: usize> QueryValues for [T; N] {
    fn into_values(self) -> Vec<Value> {
        self.into_iter().map(QueryScalar::into_value).collect()
    }
}

impl<T: QueryScalar + Clone> QueryValues for &[T] {
    fn into_values(self) -> Vec<Value> {
        self.iter().cloned().map(QueryScalar::into_value).collect()
    }
}

impl Query {
    fn new(method: &'static str, attribute: Option<&str>, values: Option<Vec<Value>>) -> Self {
        Self {
            method,
            attribute: attribute.map(str::to_owned),
            values,
        }
    }

    fn compare(method: &'static str, attribute: &str, values: Vec<Value>) -> Self {
        Self::new(method, Some(attribute), Some(values))
    }

    pub fn equal(attribute: &str, values: impl QueryValues) -> Self {
        Self::compare("equal", attribute, values.into_values())
    }
    pub fn not_equal(attribute: &str, values: impl QueryValues) -> Self {
        Self::compare("notEqual", attribute, values.into_values())
    }
    pub fn less_than(attribute: &str, value: impl QueryScalar) -> Self {
        Self::compare("lessThan", attribute, vec![value.into_value()])
    }
    pub fn less_than_equal(attribute: &str, value: impl QueryScalar) -> Self {
        Self::compare("lessThanEqual", attribute, vec![value.into_value()])
    }
    pub fn greater_than(attribute: &str, value: impl QueryScalar) -> Self {
        Self::compare("greaterThan", attribute, vec![value.into_value()])
    }
    pub fn greater_than_equal(attribute: &str, value: impl QueryScalar) -> Self {
        Self::compare("greaterThanEqual", attribute, vec![value.into_value()])
    }
    pub fn between(attribute: &str, start: impl QueryScalar, end: impl QueryScalar) -> Self {
        Self::compare(
            "between",
            attribute,
            vec![start.into_value(), end.into_value()],
        )
    }
    pub fn is_null(attribute: &str) -> Self {
        Self::new("isNull", Some(attribute), None)
    }
    pub fn is_not_null(attribute: &str) -> Self {
        Self::new("isNotNull", Some(attribute), None)
    }
    pub fn starts_with(attribute: &str, value: impl QueryScalar) -> Self {
        Self::compare("startsWith", attribute, vec![value.into_value()])
    }
    pub fn contains(attribute: &str, values: impl QueryValues) -> Self {
        Self::compare("contains", attribute, values.into_values())
    }
    /// Full-text search; needs a fulltext index on `attribute`.
    pub fn search(attribute: &str, text: &str) -> Self {
        Self::compare("search", attribute, vec![Value::from(text)])
    }
    pub fn order_asc(attribute: &str) -> Self {
        Self::new("orderAsc", Some(attribute), None)
    }
    pub fn order_desc(attribute: &str) -> Self {
        Self::new("orderDesc", Some(attribute), None)
    }
    pub fn limit(limit: u32) -> Self {
        Self::new("limit", None, Some(vec![Value::from(limit)]))
    }
    pub fn offset(offset: u32) -> Self {
        Self::new("offset", None, Some(vec![Value::from(offset)]))
    }
    pub fn cursor_after(id: &str) -> Self {
        Self::new("cursorAfter", None, Some(vec![Value::from(id)]))
    }
    pub fn cursor_before(id: &str) -> Self {
        Self::new("cursorBefore", None, Some(vec![Value::from(id)]))
    }
    pub fn select<S: AsRef<str>>(attributes: impl IntoIterator<Item = S>) -> Self {
        let values = attributes
            .into_iter()
            .map(|a| Value::from(a.as_ref()))
            .collect();
        Self::new("select", None, Some(values))
    }

    /// The method name on the wire, e.g. `cursorAfter`.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The JSON string sent as one `queries[]` value.
    pub fn to_json(&self) -> String {
        // A struct of strings and JSON values always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_json())
    }
}

/// Appends `queries[]=<json>` pairs (percent-encoded by `url`) for each query.
pub(crate) fn append_queries(url: &mut url::Url, queries: &[Query]) {
    if queries.is_empty() {
        return;
    }
    let mut pairs = url.query_pairs_mut();
    for q in queries {
        pairs.append_pair("queries[]", &q.to_json());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_like_the_official_sdks() {
        let cases = [
            (
                Query::equal("email", "a@b.c"),
                r#"{"method":"equal","attribute":"email","values":["a@b.c"]}"#,
            ),
            (
                Query::equal("plan", ["monthly", "yearly"]),
                r#"{"method":"equal","attribute":"plan","values":["monthly","yearly"]}"#,
            ),
            (
                Query::not_equal("status", "deleted"),
                r#"{"method":"notEqual","attribute":"status","values":["deleted"]}"#,
            ),
            (
                Query::less_than("revision", 3),
                r#"{"method":"lessThan","attribute":"revision","values":[3]}"#,
            ),
            (
                Query::less_than_equal("price", 1.5),
                r#"{"method":"lessThanEqual","attribute":"price","values":[1.5]}"#,
            ),
            (
                Query::greater_than("$updatedAt", "2024-05-01T12:34:56.789+00:00"),
                r#"{"method":"greaterThan","attribute":"$updatedAt","values":["2024-05-01T12:34:56.789+00:00"]}"#,
            ),
            (
                Query::greater_than_equal("n", -2i64),
                r#"{"method":"greaterThanEqual","attribute":"n","values":[-2]}"#,
            ),
            (
                Query::between("n", 1, 10),
                r#"{"method":"between","attribute":"n","values":[1,10]}"#,
            ),
            (
                Query::is_null("userId"),
                r#"{"method":"isNull","attribute":"userId"}"#,
            ),
            (
                Query::is_not_null("userId"),
                r#"{"method":"isNotNull","attribute":"userId"}"#,
            ),
            (
                Query::starts_with("pair", "BTC"),
                r#"{"method":"startsWith","attribute":"pair","values":["BTC"]}"#,
            ),
            (
                Query::contains("labels", "admin"),
                r#"{"method":"contains","attribute":"labels","values":["admin"]}"#,
            ),
            (
                Query::search("content", "long btc"),
                r#"{"method":"search","attribute":"content","values":["long btc"]}"#,
            ),
            (
                Query::equal("verified", true),
                r#"{"method":"equal","attribute":"verified","values":[true]}"#,
            ),
            (
                Query::order_asc("$createdAt"),
                r#"{"method":"orderAsc","attribute":"$createdAt"}"#,
            ),
            (
                Query::order_desc("$sequence"),
                r#"{"method":"orderDesc","attribute":"$sequence"}"#,
            ),
            (Query::limit(25), r#"{"method":"limit","values":[25]}"#),
            (Query::offset(50), r#"{"method":"offset","values":[50]}"#),
            (
                Query::cursor_after("doc1"),
                r#"{"method":"cursorAfter","values":["doc1"]}"#,
            ),
            (
                Query::cursor_before("doc1"),
                r#"{"method":"cursorBefore","values":["doc1"]}"#,
            ),
            (
                Query::select(["$id", "email"]),
                r#"{"method":"select","values":["$id","email"]}"#,
            ),
        ];
        for (query, want) in cases {
            assert_eq!(query.to_json(), want);
        }
        let ids = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(
            Query::equal("$id", ids).to_json(),
            r#"{"method":"equal","attribute":"$id","values":["a","b"]}"#
        );
        let slice: &[i32] = &[1, 2];
        assert_eq!(
            Query::equal("n", slice).to_json(),
            r#"{"method":"equal","attribute":"n","values":[1,2]}"#
        );
    }

    #[test]
    fn encodes_as_repeated_query_parameters() {
        let mut url = url::Url::parse("http://h/v1/users").unwrap();
        append_queries(
            &mut url,
            &[Query::equal("email", "a+b@c.d"), Query::limit(1)],
        );
        assert_eq!(
            url.query(),
            Some(
                "queries%5B%5D=%7B%22method%22%3A%22equal%22%2C%22attribute%22%3A%22email%22%2C%22values%22%3A%5B%22a%2Bb%40c.d%22%5D%7D&queries%5B%5D=%7B%22method%22%3A%22limit%22%2C%22values%22%3A%5B1%5D%7D"
            )
        );
        let decoded: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(decoded[0].0, "queries[]");
        assert_eq!(
            decoded[0].1,
            r#"{"method":"equal","attribute":"email","values":["a+b@c.d"]}"#
        );
    }
}
