//! Body keys with PocketBase's modifiers: `field+` (add to a number, append to a multiple
//! select or relation), `+field` (prepend), `field-` (subtract from a number, remove values).
//! On a single select or relation, `+` sets and `-` clears the value if it is the one
//! given. Modifiers on other types are ignored, as PocketBase ignores keys it does not know.
//!
//! Thread safety: pure functions.

use super::values::{cast, distinct, items, number_value};
use crate::error::FieldError;
use crate::schema::field::{Field, FieldKind};
use nanodb::Value;
use serde_json::Value as Json;
use std::collections::HashSet;

/// What a body key does to its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    /// `field`: set the value.
    Set,
    /// `field+`: add or append.
    Append,
    /// `+field`: prepend.
    Prepend,
    /// `field-`: subtract or remove.
    Remove,
}

/// The field name and modifier of a body key.
pub fn split_key(key: &str) -> (&str, Modifier) {
    if let Some(name) = key.strip_suffix('+') {
        (name, Modifier::Append)
    } else if let Some(name) = key.strip_prefix('+') {
        (name, Modifier::Prepend)
    } else if let Some(name) = key.strip_suffix('-') {
        (name, Modifier::Remove)
    } else {
        (key, Modifier::Set)
    }
}

/// The field's value after `modifier` with `json` is applied to `current` (`None`: empty).
pub fn apply(
    field: &Field,
    current: Option<&Value>,
    modifier: Modifier,
    json: &Json,
) -> Result<Option<Value>, FieldError> {
    if modifier == Modifier::Set {
        return cast(field, json);
    }
    match &field.kind {
        FieldKind::Number { .. } => {
            let Some(amount) = cast(field, json)?.and_then(|value| value.as_f64()) else {
                return Ok(current.cloned());
            };
            let base = current.and_then(Value::as_f64).unwrap_or(0.0);
            let result = match modifier {
                Modifier::Remove => base - amount,
                _ => base + amount,
            };
            Ok(Some(number_value(result)))
        }
        FieldKind::Select { .. } | FieldKind::Relation { .. } => {
            let given: Vec<String> = match json {
                Json::Array(list) => {
                    list.iter().filter_map(Json::as_str).map(str::to_string).collect()
                }
                Json::String(text) if !text.is_empty() => vec![text.clone()],
                _ => Vec::new(),
            };
            let existing: Vec<String> =
                current.map(items).unwrap_or_default().into_iter().map(str::to_string).collect();
            let combined: Vec<String> = match modifier {
                Modifier::Remove => {
                    let removed: HashSet<&String> = given.iter().collect();
                    existing.into_iter().filter(|item| !removed.contains(item)).collect()
                }
                Modifier::Prepend => given.iter().chain(&existing).cloned().collect(),
                _ => existing.iter().chain(&given).cloned().collect(),
            };
            if !field.kind.is_multiple() {
                return Ok(match modifier {
                    Modifier::Remove => combined.into_iter().next().map(Value::String),
                    _ => given.last().cloned().map(Value::String).or_else(|| current.cloned()),
                });
            }
            // Not capped here: a later modifier of the same body may take values out again
            // (`+tags` then `tags-`); the final value is checked against `maxSelect`.
            let values = distinct(combined.into_iter().map(Ok), usize::MAX)?;
            Ok(Some(Value::Array(values.into_iter().map(Value::String).collect())))
        }
        _ => Ok(current.cloned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn number() -> Field {
        Field::new("n", FieldKind::Number { min: None, max: None, only_int: false })
    }

    fn select(max_select: usize) -> Field {
        let values = ["a", "b", "c"].map(String::from).to_vec();
        Field::new("s", FieldKind::Select { values, max_select })
    }

    fn strings(value: Option<Value>) -> Vec<String> {
        value.as_ref().map(items).unwrap_or_default().into_iter().map(String::from).collect()
    }

    #[test]
    fn keys_split_into_name_and_modifier() {
        assert_eq!(split_key("views+"), ("views", Modifier::Append));
        assert_eq!(split_key("+tags"), ("tags", Modifier::Prepend));
        assert_eq!(split_key("tags-"), ("tags", Modifier::Remove));
        assert_eq!(split_key("title"), ("title", Modifier::Set));
    }

    #[test]
    fn numbers_add_and_subtract() {
        let one = Value::Int(1);
        assert_eq!(
            apply(&number(), Some(&one), Modifier::Append, &json!(2)),
            Ok(Some(Value::Int(3)))
        );
        assert_eq!(
            apply(&number(), Some(&one), Modifier::Remove, &json!(0.5)),
            Ok(Some(Value::Float(0.5)))
        );
        assert_eq!(apply(&number(), None, Modifier::Append, &json!("4")), Ok(Some(Value::Int(4))));
        assert!(apply(&number(), None, Modifier::Append, &json!("x")).is_err());
    }

    #[test]
    fn multiple_values_append_prepend_and_remove() {
        let multi = select(3);
        let current = Value::Array(vec![Value::from("a")]);
        let appended = apply(&multi, Some(&current), Modifier::Append, &json!(["b", "a"])).unwrap();
        assert_eq!(strings(appended), ["a", "b"]);
        let prepended = apply(&multi, Some(&current), Modifier::Prepend, &json!("c")).unwrap();
        assert_eq!(strings(prepended), ["c", "a"]);
        let full = apply(&select(2), Some(&current), Modifier::Append, &json!(["b", "c", "b"]));
        assert_eq!(strings(full.unwrap()), ["a", "b", "c"], "capped only when checked, at the end");
        let removed = apply(&multi, Some(&current), Modifier::Remove, &json!("a")).unwrap();
        assert_eq!(removed, Some(Value::Array(vec![])));
        let single = select(1);
        let a = Value::from("a");
        assert_eq!(
            apply(&single, Some(&a), Modifier::Append, &json!("b")),
            Ok(Some(Value::from("b")))
        );
        assert_eq!(apply(&single, Some(&a), Modifier::Remove, &json!("a")), Ok(None));
        assert_eq!(apply(&single, Some(&a), Modifier::Remove, &json!("b")), Ok(Some(a.clone())));
        let text = Field::new("t", FieldKind::Bool);
        assert_eq!(apply(&text, Some(&a), Modifier::Append, &json!(true)), Ok(Some(a)));
    }
}
