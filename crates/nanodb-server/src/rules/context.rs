//! The values of `@request.*` that rules (and superusers' filters) may read, as the
//! `variables` map of nanodb's `FilterContext`:
//!
//! - `@request.method` (`GET`, ...), `@request.context` (`CONTEXT_*`: `default`, `batch`
//!   inside a batch, `realtime` for realtime events, `expand` for the view rules of expanded
//!   records, `password` for the `authRule` at a password login);
//! - `@request.query.<name>`, `@request.headers.<snake_case_name>` (text);
//! - `@request.body.<field>`, and `@request.body.<field>:changed` (true when the body sets
//!   the field to another value than the record has; on create, when the body sets it;
//!   false for every field of the collection the body does not set). A modifier key
//!   (`field+`, `+field`, `field-`) sets both for its field, to the value it leaves, unless
//!   the body also has the plain key: a modifier cannot change a field a rule protects;
//! - `@request.auth.<field>` for every stored field of the auth record (hidden ones too),
//!   and `@request.auth.collectionId`, `@request.auth.collectionName`.
//!
//! What is not here resolves to nanodb's defaults: `""` for `@request.auth.*` (a guest),
//! null for the rest, and `:isset` to whether the plain variable is here.
//!
//! Thread safety: pure functions.

use crate::auth::requester::Requester;
use crate::http::query::QueryParams;
use crate::records::modifiers::{apply, split_key, Modifier};
use crate::records::values::cast;
use crate::schema::CollectionDef;
use axum::http::HeaderMap;
use nanodb::{Map, Value};
use serde_json::{Map as JsonMap, Value as Json};

/// `@request.context` of an ordinary request.
pub const CONTEXT_DEFAULT: &str = "default";
/// `@request.context` of the requests of a batch.
pub const CONTEXT_BATCH: &str = "batch";
/// `@request.context` of realtime events (the rules checked for each subscriber).
pub const CONTEXT_REALTIME: &str = "realtime";
/// `@request.context` while the view rules of expanded records are checked.
pub const CONTEXT_EXPAND: &str = "expand";
/// `@request.context` while the `authRule` is checked at a password login.
pub const CONTEXT_PASSWORD: &str = "password";

/// What a request tells rules.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// PocketBase's request context (`CONTEXT_*`).
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
        // A modifier key (`owner+`, `+owner`, `n-`) writes its field as much as a plain key:
        // the field's variables get the value it leaves, so a rule on `owner` or
        // `owner:changed` sees the change whichever way the body makes it.
        let (name, modifier) = split_key(key);
        if modifier != Modifier::Set {
            if let Some(field) = def.field(name) {
                let current = existing.and_then(|existing| existing.get(name));
                let changed = match apply(field, current, modifier, json) {
                    Ok(after) => {
                        if !facts.body.contains_key(name) {
                            let value = after.clone().unwrap_or(Value::Null);
                            out.insert(format!("@request.body.{name}"), value);
                        }
                        after.as_ref() != current
                    }
                    Err(_) => true,
                };
                mark_changed(&mut out, name, changed);
            }
            continue;
        }
        let changed = match (def.field(key), existing) {
            (Some(field), Some(existing)) => match cast(field, json) {
                Ok(value) => value.as_ref() != existing.get(key),
                Err(_) => true,
            },
            _ => true,
        };
        mark_changed(&mut out, key, changed);
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

/// Sets `@request.body.<name>:changed`, or-ed with what an earlier key of the same field
/// found (a plain key and a modifier key may both name it, in either order).
fn mark_changed(out: &mut Map, name: &str, changed: bool) {
    let flag = out.entry(format!("@request.body.{name}:changed")).or_insert(Value::Bool(false));
    if changed {
        *flag = Value::Bool(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::requester::AuthRecord;
    use crate::schema::defaults;
    use crate::schema::field::Field;
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
            context: CONTEXT_DEFAULT,
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

    /// A modifier key changes its field for the rules as a plain key does: `owner+` cannot
    /// pass a rule that forbids changing `owner`.
    #[test]
    fn modifier_keys_count_as_changes_of_their_field() {
        let mut def = defaults::users();
        let mut errors = Default::default();
        let score = Field::from_json(&json!({"name": "score", "type": "number"}), "f", &mut errors);
        def.fields.push(score.expect("a number field"));
        let query = QueryParams::parse(None);
        let headers = HeaderMap::new();
        let requester = Requester::Guest;
        let existing: Map = [("score".to_string(), Value::Int(5))].into();
        for (body, after, changed) in [
            (json!({"score+": 2}), Value::Int(7), true),
            (json!({"score-": 0}), Value::Int(5), false),
            (json!({"score": 5, "score+": 1}), Value::from(5), true),
        ] {
            let body = body.as_object().unwrap().clone();
            let facts = RequestFacts {
                method: "PATCH",
                context: CONTEXT_DEFAULT,
                query: &query,
                headers: &headers,
                body: &body,
                requester: &requester,
            };
            let variables = variables(&facts, &def, Some(&existing));
            assert_eq!(variables.get("@request.body.score"), Some(&after), "{body:?}");
            assert_eq!(
                variables.get("@request.body.score:changed"),
                Some(&Value::Bool(changed)),
                "{body:?}"
            );
        }
    }
}
