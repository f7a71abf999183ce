//! Request-parameter helpers for the account-side routes: Appwrite's wording for a missing
//! parameter, and the `queries[]` list-response envelope.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};

/// A parameter Appwrite marks required: missing or null is a 400 naming it.
pub fn required<T>(value: Option<T>, name: &str) -> ApiResult<T> {
    value.ok_or_else(|| ApiError::argument_invalid(format!("Param \"{name}\" is not optional.")))
}

/// Appwrite's list envelope: `{"total": n, "<key>": [...]}`.
pub fn list(key: &str, total: usize, items: Vec<Value>) -> Value {
    json!({ "total": total, key: items })
}
