//! Checks JSON responses against the schemas of Appwrite's official OpenAPI spec
//! (`shared/reference/appwrite/open-api3-1.8.1-server.json`), so the emulator is held to what
//! Appwrite documents rather than to what we believe. Covers the subset of JSON Schema the spec
//! uses: type, properties, required, items, $ref, anyOf, nullable, enum.

use std::path::Path;

use anyhow::Context as _;
use serde_json::Value;

pub struct Spec {
    doc: Value,
}

impl Spec {
    /// Loads Appwrite's 1.8.1 server spec from the shared reference folder.
    pub fn appwrite_server() -> anyhow::Result<Self> {
        Self::load(&crate::shared_dir().join("reference/appwrite/open-api3-1.8.1-server.json"))
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading OpenAPI spec {}", path.display()))?;
        let doc = serde_json::from_str(&text).context("parsing OpenAPI spec")?;
        Ok(Self { doc })
    }

    /// The named component schema (`document`, `user`, `membership`, ...).
    pub fn schema(&self, name: &str) -> Option<&Value> {
        self.doc.pointer(&format!("/components/schemas/{name}"))
    }

    /// The schema the spec gives for the JSON response of `method path_template` with `status`.
    pub fn response_schema(
        &self,
        method: &str,
        path_template: &str,
        status: u16,
    ) -> Option<&Value> {
        let op = self
            .doc
            .get("paths")?
            .get(path_template)?
            .get(method.to_ascii_lowercase())?;
        let response = op.get("responses")?.get(status.to_string())?;
        response.pointer("/content/application~1json/schema")
    }

    /// Validates `value` against the named component schema; errors list every mismatch with
    /// its JSON path.
    pub fn check(&self, schema_name: &str, value: &Value) -> Result<(), Vec<String>> {
        let schema = self
            .schema(schema_name)
            .ok_or_else(|| vec![format!("no schema named {schema_name} in the spec")])?;
        self.check_with(schema, value)
    }

    /// Validates `value` against the response schema of an operation.
    pub fn check_response(
        &self,
        method: &str,
        path_template: &str,
        status: u16,
        value: &Value,
    ) -> Result<(), Vec<String>> {
        let schema = self
            .response_schema(method, path_template, status)
            .ok_or_else(|| {
                vec![format!(
                    "the spec has no JSON response for {method} {path_template} {status}"
                )]
            })?;
        self.check_with(schema, value)
    }

    pub fn check_with(&self, schema: &Value, value: &Value) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        self.walk(schema, value, "$", &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => reference
                .strip_prefix('#')
                .and_then(|p| self.doc.pointer(p))
                .unwrap_or(&Value::Null),
            None => schema,
        }
    }

    fn walk(&self, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if schema.is_null() {
            errors.push(format!("{path}: unresolvable schema reference"));
            return;
        }
        if value.is_null() && schema.get("nullable").and_then(Value::as_bool) == Some(true) {
            return;
        }
        if let Some(options) = schema.get("anyOf").and_then(Value::as_array) {
            let fits = options.iter().any(|option| {
                let mut sub = Vec::new();
                self.walk(option, value, path, &mut sub);
                sub.is_empty()
            });
            if !fits {
                errors.push(format!(
                    "{path}: matches none of the anyOf schemas: {value}"
                ));
            }
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            errors.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
        let Some(ty) = schema.get("type").and_then(Value::as_str) else {
            return;
        };
        let ok = match ty {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{path}: expected {ty}, got {value}"));
            return;
        }
        match ty {
            "object" => {
                let Some(object) = value.as_object() else {
                    return;
                };
                for key in schema
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(key) = key.as_str()
                        && !object.contains_key(key)
                    {
                        errors.push(format!("{path}: missing required field `{key}`"));
                    }
                }
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    for (key, sub) in props {
                        if let Some(v) = object.get(key) {
                            self.walk(sub, v, &format!("{path}.{key}"), errors);
                        }
                    }
                }
            }
            "array" => {
                if let Some(items) = schema.get("items") {
                    for (i, v) in value.as_array().into_iter().flatten().enumerate() {
                        self.walk(items, v, &format!("{path}[{i}]"), errors);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec() -> Spec {
        Spec::appwrite_server().expect("the shared Appwrite spec is readable")
    }

    #[test]
    fn a_complete_document_passes_and_a_bare_one_fails() {
        let spec = spec();
        let good = json!({
            "$id": "a", "$sequence": 1, "$collectionId": "c", "$databaseId": "d",
            "$createdAt": "2020-10-15T06:38:00.000+00:00", "$updatedAt": "2020-10-15T06:38:00.000+00:00",
            "$permissions": [], "title": "extra attributes are allowed"
        });
        assert_eq!(spec.check("document", &good), Ok(()));

        let bad = json!({ "$id": "a", "$sequence": "1" });
        let errors = spec.check("document", &bad).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.contains("missing required field `$collectionId`"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("$.$sequence: expected integer"))
        );
    }

    #[test]
    fn response_schemas_are_found_by_operation() {
        let spec = spec();
        let schema = spec
            .response_schema(
                "POST",
                "/databases/{databaseId}/collections/{collectionId}/documents",
                201,
            )
            .expect("create document has a 201 schema");
        assert_eq!(
            schema.get("$ref").and_then(Value::as_str),
            Some("#/components/schemas/document")
        );
        let list = json!({ "total": 1, "documents": [{ "$id": "x" }] });
        let errors = spec
            .check_response(
                "GET",
                "/databases/{databaseId}/collections/{collectionId}/documents",
                200,
                &list,
            )
            .unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("$.documents[0]: missing required field"))
        );
    }
}
