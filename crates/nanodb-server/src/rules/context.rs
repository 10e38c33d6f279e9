//! The values of `@request.*` that rules (and superusers' filters) may read, as the
//! `variables` map of nanodb's `FilterContext`:
//!
//! - `@request.method` (`GET`, ...), `@request.context` (`default`, `batch` inside a batch,
//!   `realtime` for realtime events);
//! - `@request.query.<name>`, `@request.headers.<snake_case_name>` (text);
//! - `@request.body.<field>`, and `@request.body.<field>:changed` (true when the body sets
//!   the field to another value than the record has; on create, when the body sets it;
//!   false for every field of the collection the body does not set);
//! - `@request.auth.<field>` for every stored field of the auth record (hidden ones too),
//!   and `@request.auth.collectionId`, `@request.auth.collectionName`.
//!
//! What is not here resolves to nanodb's defaults: `""` for `@request.auth.*` (a guest),
//! null for the rest, and `:isset` to whether the plain variable is here.
//!
//! Thread safety: pure functions.

use crate::auth::requester::Requester;
use crate::http::query::QueryParams;
use crate::records::values::cast;
use crate::schema::CollectionDef;
use axum::http::HeaderMap;
use nanodb::{Map, Value};
use serde_json::{Map as JsonMap, Value as Json};

/// What a request tells rules.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// PocketBase's request context: `default`, `batch` or `realtime`.
    pub context: &'a str,
    /// The query parameters.
    pub query: &'a QueryParams,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The body, as one object (`{}` when there is none).
    pub body: &'a JsonMap<String, Json>,
    /// Who is asking.
    pub requester: &'a Requester,
}

/// The `@request.*` variables of `facts`, for a record of `def` whose stored fields are
/// `existing` (`None` on create and list).
pub fn variables(facts: &RequestFacts, def: &CollectionDef, existing: Option<&Map>) -> Map {
    let mut out = Map::new();
    out.insert("@request.method".into(), Value::from(facts.method));
    out.insert("@request.context".into(), Value::from(facts.context));
    for (name, value) in facts.query.pairs() {
        out.entry(format!("@request.query.{name}")).or_insert_with(|| Value::from(value.as_str()));
    }
    for (name, value) in facts.headers {
        let Ok(value) = value.to_str() else { continue };
        let snake = name.as_str().to_ascii_lowercase().replace('-', "_");
        out.entry(format!("@request.headers.{snake}")).or_insert_with(|| Value::from(value));
    }
    for (key, json) in facts.body {
        out.insert(format!("@request.body.{key}"), Value::from(json.clone()));
        let changed = match (def.field(key), existing) {
            (Some(field), Some(existing)) => match cast(field, json) {
                Ok(value) => value.as_ref() != existing.get(key),
                Err(_) => true,
            },
            _ => true,
        };
        out.insert(format!("@request.body.{key}:changed"), Value::Bool(changed));
    }
    for field in &def.fields {
        out.entry(format!("@request.body.{}:changed", field.name)).or_insert(Value::Bool(false));
    }
    if let Some(auth) = facts.requester.record() {
        for (name, value) in auth.document.fields() {
            out.insert(format!("@request.auth.{name}"), value.clone());
        }
        out.insert("@request.auth.collectionId".into(), Value::from(auth.collection.id.as_str()));
        out.insert(
            "@request.auth.collectionName".into(),
            Value::from(auth.collection.name.as_str()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::requester::AuthRecord;
    use crate::schema::defaults;
    use axum::http::HeaderValue;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn request_values_become_variables() {
        let users = defaults::users();
        let query = QueryParams::parse(Some("key=open&key=second&page=2"));
        let mut headers = HeaderMap::new();
        headers.insert("x-token", HeaderValue::from_static("abc"));
        let body = json!({"name": "new", "emailVisibility": true}).as_object().unwrap().clone();
        let document =
            crate::test_support::document(json!({"id": "u1", "name": "old", "verified": true}));
        let requester =
            Requester::Record(AuthRecord { collection: Arc::new(users.clone()), document });
        let facts = RequestFacts {
            method: "PATCH",
            context: "default",
            query: &query,
            headers: &headers,
            body: &body,
            requester: &requester,
        };
        let existing: Map = [
            ("name".to_string(), Value::from("old")),
            ("emailVisibility".to_string(), Value::Bool(true)),
        ]
        .into();
        let variables = variables(&facts, &users, Some(&existing));
        let expect =
            |name: &str, value: Value| assert_eq!(variables.get(name), Some(&value), "{name}");
        expect("@request.method", Value::from("PATCH"));
        expect("@request.context", Value::from("default"));
        expect("@request.query.key", Value::from("open"));
        expect("@request.headers.x_token", Value::from("abc"));
        expect("@request.body.name", Value::from("new"));
        expect("@request.body.name:changed", Value::Bool(true));
        expect("@request.body.emailVisibility:changed", Value::Bool(false));
        expect("@request.body.verified:changed", Value::Bool(false));
        expect("@request.auth.id", Value::from("u1"));
        expect("@request.auth.verified", Value::Bool(true));
        expect("@request.auth.collectionName", Value::from("users"));
        expect("@request.auth.collectionId", Value::from(defaults::USERS_ID));
        assert!(!variables.contains_key("@request.body.verified"), ":isset is false for it");
        let guest = Requester::Guest;
        let guest_facts = RequestFacts { requester: &guest, ..facts };
        let created = super::variables(&guest_facts, &users, None);
        assert_eq!(
            created.get("@request.body.name:changed"),
            Some(&Value::Bool(true)),
            "set on create"
        );
        assert!(!created.keys().any(|name| name.starts_with("@request.auth.")));
    }
}
