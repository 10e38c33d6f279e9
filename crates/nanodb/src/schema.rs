//! Collection schemas: an optional list of typed top-level fields that every document written
//! to the collection must satisfy.
//!
//! A `FieldRule` names a top-level field, its `FieldType`, and whether it is required. A
//! required field must be present and not null; an optional one may be missing or null, and
//! otherwise has its type. `Schema::additional_fields` false refuses fields the schema does
//! not name. The reserved fields (`id`, `created`, `updated`) are the collection's and cannot
//! be in a schema. A schema is checked on every write (insert, replace, patch, upsert, in
//! transactions too) before anything is written; changing it (`Collection::set_schema`) does
//! not check the documents already stored.
//!
//! Thread safety: plain data; a write checks against the schema it saw when its transaction
//! first touched the collection.
//!
//! Invariant: a schema has at most `SCHEMA_FIELDS_MAX` rules, with distinct valid names.

use crate::collection::Collection;
use crate::document::{check_field_name, FIELD_CREATED, FIELD_ID, FIELD_UPDATED};
use crate::value::{Map, Value};
use crate::{Error, Result};

/// Most field rules in one schema.
pub const SCHEMA_FIELDS_MAX: usize = 256;

/// The type a schema field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// Any value.
    Any,
    /// A string.
    String,
    /// An integer or a float.
    Number,
    /// An integer.
    Int,
    /// `true` or `false`.
    Bool,
    /// A date.
    Date,
    /// An object.
    Object,
    /// An array.
    Array,
}

impl FieldType {
    /// The name used in the catalog and in errors.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Any => "any",
            FieldType::String => "string",
            FieldType::Number => "number",
            FieldType::Int => "int",
            FieldType::Bool => "bool",
            FieldType::Date => "date",
            FieldType::Object => "object",
            FieldType::Array => "array",
        }
    }

    fn parse(name: &str) -> Option<FieldType> {
        let all = [
            FieldType::Any,
            FieldType::String,
            FieldType::Number,
            FieldType::Int,
            FieldType::Bool,
            FieldType::Date,
            FieldType::Object,
            FieldType::Array,
        ];
        all.into_iter().find(|kind| kind.as_str() == name)
    }

    fn admits(self, value: &Value) -> bool {
        match self {
            FieldType::Any => true,
            FieldType::String => matches!(value, Value::String(_)),
            FieldType::Number => matches!(value, Value::Int(_) | Value::Float(_)),
            FieldType::Int => matches!(value, Value::Int(_)),
            FieldType::Bool => matches!(value, Value::Bool(_)),
            FieldType::Date => matches!(value, Value::Date(_)),
            FieldType::Object => matches!(value, Value::Object(_)),
            FieldType::Array => matches!(value, Value::Array(_)),
        }
    }
}

/// One field of a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRule {
    /// The top-level field name.
    pub name: String,
    /// Its type.
    pub kind: FieldType,
    /// Whether every document must have it (not null).
    pub required: bool,
}

impl FieldRule {
    /// An optional field of type `kind`.
    pub fn optional(name: &str, kind: FieldType) -> FieldRule {
        FieldRule { name: name.to_string(), kind, required: false }
    }

    /// A required field of type `kind`.
    pub fn required(name: &str, kind: FieldType) -> FieldRule {
        FieldRule { name: name.to_string(), kind, required: true }
    }
}

/// The fields documents of a collection must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// The field rules.
    pub fields: Vec<FieldRule>,
    /// Whether documents may have fields the rules do not name.
    pub additional_fields: bool,
}

impl Schema {
    /// A schema of `fields` that allows other fields too.
    pub fn new(fields: Vec<FieldRule>) -> Schema {
        Schema { fields, additional_fields: true }
    }

    /// The same schema, refusing fields it does not name.
    pub fn strict(mut self) -> Schema {
        self.additional_fields = false;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        Error::check_limit("fields in a schema", self.fields.len(), SCHEMA_FIELDS_MAX)?;
        let mut names = std::collections::HashSet::new();
        for rule in &self.fields {
            check_field_name(&rule.name)?;
            if [FIELD_ID, FIELD_CREATED, FIELD_UPDATED].contains(&rule.name.as_str()) {
                return Err(Error::invalid(format!(
                    "schema field {:?} is reserved: the collection sets it",
                    rule.name
                )));
            }
            if !names.insert(rule.name.as_str()) {
                return Err(Error::invalid(format!("schema field {:?} appears twice", rule.name)));
            }
        }
        Ok(())
    }

    /// Checks the caller's fields of a document (without the reserved ones).
    pub(crate) fn check(&self, fields: &Map) -> Result<()> {
        for rule in &self.fields {
            match fields.get(&rule.name) {
                None | Some(Value::Null) if rule.required => {
                    return Err(Error::invalid(format!("field {:?} is required", rule.name)))
                }
                None | Some(Value::Null) => {}
                Some(value) if !rule.kind.admits(value) => {
                    return Err(Error::invalid(format!(
                        "field {:?} must be {}, not {}",
                        rule.name,
                        rule.kind.as_str(),
                        value.type_name()
                    )))
                }
                Some(_) => {}
            }
        }
        if !self.additional_fields {
            let reserved = [FIELD_ID, FIELD_CREATED, FIELD_UPDATED];
            let unknown = fields.keys().find(|name| {
                !reserved.contains(&name.as_str())
                    && !self.fields.iter().any(|rule| &rule.name == *name)
            });
            if let Some(name) = unknown {
                return Err(Error::invalid(format!("field {name:?} is not in the schema")));
            }
        }
        Ok(())
    }

    /// The schema as a catalog value.
    pub(crate) fn to_value(&self) -> Value {
        let rules = self.fields.iter().map(|rule| {
            let mut map = Map::new();
            map.insert("name".into(), Value::String(rule.name.clone()));
            map.insert("type".into(), Value::from(rule.kind.as_str()));
            map.insert("required".into(), Value::Bool(rule.required));
            Value::Object(map)
        });
        let mut map = Map::new();
        map.insert("fields".into(), Value::Array(rules.collect()));
        map.insert("additional_fields".into(), Value::Bool(self.additional_fields));
        Value::Object(map)
    }

    /// A schema from its catalog value.
    pub(crate) fn from_value(value: &Value) -> Result<Schema> {
        let bad = |detail: &str| Error::corruption("catalog schema", detail);
        let map = value.as_object().ok_or_else(|| bad("not a map"))?;
        let rules = map.get("fields").and_then(Value::as_array).ok_or_else(|| bad("no fields"))?;
        let fields = rules
            .iter()
            .map(|rule| {
                let rule = rule.as_object().ok_or_else(|| bad("a field is not a map"))?;
                let text = |name: &str| rule.get(name).and_then(Value::as_str);
                Ok(FieldRule {
                    name: text("name").ok_or_else(|| bad("a field has no name"))?.to_string(),
                    kind: text("type").and_then(FieldType::parse).ok_or_else(|| bad("bad type"))?,
                    required: rule.get("required").and_then(Value::as_bool).unwrap_or(false),
                })
            })
            .collect::<Result<_>>()?;
        let additional = map.get("additional_fields").and_then(Value::as_bool).unwrap_or(true);
        let schema = Schema { fields, additional_fields: additional };
        schema.validate().map_err(|error| bad(&error.to_string()))?;
        Ok(schema)
    }
}

impl Collection {
    /// Sets (or, with `None`, removes) the collection's schema; later writes are checked
    /// against it, documents already stored are not. Waits for the writes in flight.
    pub fn set_schema(&self, schema: Option<Schema>) -> Result<()> {
        if let Some(schema) = &schema {
            schema.validate()?;
        }
        let (inner, state) = (&self.database().inner, self.state());
        let next_id = inner.catalog_lock.lock();
        state.check_live()?;
        let mut spec = state.spec.read().clone();
        spec.options.schema = schema;
        inner.write_spec(&spec, *next_id)?;
        let _no_writes = state.writers.write();
        *state.spec.write() = spec;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::doc;

    #[test]
    fn rules_check_presence_type_and_unknown_fields() {
        let schema = Schema::new(vec![
            FieldRule::required("name", FieldType::String),
            FieldRule::optional("age", FieldType::Int),
            FieldRule::optional("score", FieldType::Number),
        ]);
        schema.validate().unwrap();
        let ok = |json| schema.check(&doc(json)).is_ok();
        assert!(ok(serde_json::json!({"name": "a", "age": 3, "score": 1.5, "other": true})));
        assert!(ok(serde_json::json!({"name": "a", "age": null, "score": 2})));
        assert!(!ok(serde_json::json!({"age": 3})), "required missing");
        assert!(!ok(serde_json::json!({"name": null})), "required null");
        assert!(!ok(serde_json::json!({"name": "a", "age": 1.5})), "float for int");
        assert!(!ok(serde_json::json!({"name": 5})));
        let strict = schema.clone().strict();
        assert!(strict.check(&doc(serde_json::json!({"name": "a", "id": "x"}))).is_ok());
        let error = strict.check(&doc(serde_json::json!({"name": "a", "x": 1})));
        assert!(error.unwrap_err().to_string().contains("\"x\" is not in the schema"));
        assert_eq!(Schema::from_value(&strict.to_value()).unwrap(), strict);
    }

    #[test]
    fn bad_schemas_are_refused_at_their_limits() {
        let rule = |n: usize| FieldRule::optional(&format!("f{n}"), FieldType::Any);
        Schema::new((0..SCHEMA_FIELDS_MAX).map(rule).collect()).validate().unwrap();
        assert!(Schema::new((0..=SCHEMA_FIELDS_MAX).map(rule).collect()).validate().is_err());
        for bad in ["id", "created", "updated", "", "a.b", "$x"] {
            let schema = Schema::new(vec![FieldRule::optional(bad, FieldType::Any)]);
            assert!(schema.validate().is_err(), "{bad:?} accepted");
        }
        let twice = Schema::new(vec![rule(1), rule(1)]);
        assert!(twice.validate().is_err());
        assert!(Schema::from_value(&Value::Int(1)).is_err());
    }
}
