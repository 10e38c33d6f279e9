//! `Patch`: a partial update of a document, as field operators applied in order.
//!
//! Operators: `set` (a field, creating the objects on its dotted path), `unset`, `increment`
//! (numbers; a missing field counts from zero; integer overflow is an error), `push` (append
//! to an array; a missing field becomes a one-element array) and `pull` (remove every element
//! equal to a value, by the value order's equality, so `1` pulls `1.0` too). `merge` sets every
//! field of a map. The reserved fields `id`, `created` and `updated` cannot be patched.
//!
//! Thread safety: plain data.
//!
//! Invariant: a patch that fails leaves the caller's document unchanged (it is applied to a
//! copy, and the collection writes nothing).

use crate::document::{check_field_name, FIELD_CREATED, FIELD_ID, FIELD_UPDATED};
use crate::value::{compare, Map, Value};
use crate::{Error, Result};
use std::cmp::Ordering;

/// One field operator.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchOp {
    /// Sets the field at the path.
    Set(String, Value),
    /// Removes the field at the path, if present.
    Unset(String),
    /// Adds a number to the field at the path.
    Increment(String, Value),
    /// Appends to the array at the path.
    Push(String, Value),
    /// Removes every element equal to the value from the array at the path.
    Pull(String, Value),
}

/// A list of field operators, applied in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patch {
    ops: Vec<PatchOp>,
}

impl Patch {
    /// An empty patch.
    pub fn new() -> Patch {
        Patch::default()
    }

    /// Sets `path` to `value`.
    pub fn set(mut self, path: impl Into<String>, value: impl Into<Value>) -> Patch {
        self.ops.push(PatchOp::Set(path.into(), value.into()));
        self
    }

    /// Removes `path`.
    pub fn unset(mut self, path: impl Into<String>) -> Patch {
        self.ops.push(PatchOp::Unset(path.into()));
        self
    }

    /// Adds `amount` (a number) to `path`.
    pub fn increment(mut self, path: impl Into<String>, amount: impl Into<Value>) -> Patch {
        self.ops.push(PatchOp::Increment(path.into(), amount.into()));
        self
    }

    /// Appends `value` to the array at `path`.
    pub fn push(mut self, path: impl Into<String>, value: impl Into<Value>) -> Patch {
        self.ops.push(PatchOp::Push(path.into(), value.into()));
        self
    }

    /// Removes every element equal to `value` from the array at `path`.
    pub fn pull(mut self, path: impl Into<String>, value: impl Into<Value>) -> Patch {
        self.ops.push(PatchOp::Pull(path.into(), value.into()));
        self
    }

    /// Sets every field of `fields` (a shallow merge).
    pub fn merge(mut self, fields: Map) -> Patch {
        self.ops.extend(fields.into_iter().map(|(name, value)| PatchOp::Set(name, value)));
        self
    }

    /// The operators, in order.
    pub fn ops(&self) -> &[PatchOp] {
        &self.ops
    }

    /// Applies the patch to `document`'s fields.
    pub(crate) fn apply(&self, document: &mut Map) -> Result<()> {
        for op in &self.ops {
            apply_op(op, document)?;
        }
        Ok(())
    }
}

fn split_path(path: &str) -> Result<Vec<&str>> {
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts {
        check_field_name(part)?;
    }
    if matches!(parts[0], FIELD_ID | FIELD_CREATED | FIELD_UPDATED) {
        return Err(Error::invalid(format!("the field {:?} cannot be changed", parts[0])));
    }
    Ok(parts)
}

/// The object holding the last part of `parts`, creating missing objects on the way when
/// `create` (else `None` if one is missing).
fn parent<'a>(document: &'a mut Map, parts: &[&str], create: bool) -> Result<Option<&'a mut Map>> {
    let mut map = document;
    for (depth, part) in parts[..parts.len() - 1].iter().enumerate() {
        if !map.contains_key(*part) {
            if !create {
                return Ok(None);
            }
            map.insert(part.to_string(), Value::Object(Map::new()));
        }
        map = match map.get_mut(*part) {
            Some(Value::Object(inner)) => inner,
            Some(other) => {
                return Err(Error::invalid(format!(
                    "{} is a {}, not an object",
                    parts[..=depth].join("."),
                    other.type_name()
                )))
            }
            None => return Ok(None),
        };
    }
    Ok(Some(map))
}

fn apply_op(op: &PatchOp, document: &mut Map) -> Result<()> {
    match op {
        PatchOp::Set(path, value) => {
            let parts = split_path(path)?;
            let last = parts[parts.len() - 1];
            if let Some(map) = parent(document, &parts, true)? {
                map.insert(last.to_string(), value.clone());
            }
        }
        PatchOp::Unset(path) => {
            let parts = split_path(path)?;
            if let Some(map) = parent(document, &parts, false)? {
                map.remove(parts[parts.len() - 1]);
            }
        }
        PatchOp::Increment(path, amount) => {
            let parts = split_path(path)?;
            let last = parts[parts.len() - 1];
            if amount.as_f64().is_none() {
                return Err(Error::invalid(format!(
                    "increment of {path} by a {}",
                    amount.type_name()
                )));
            }
            let Some(map) = parent(document, &parts, true)? else { return Ok(()) };
            let current = map.get(last).cloned().unwrap_or(Value::Int(0));
            let sum = match (&current, amount) {
                (Value::Int(a), Value::Int(b)) => {
                    Value::Int(a.checked_add(*b).ok_or_else(|| {
                        Error::invalid(format!("increment of {path} overflows a 64-bit integer"))
                    })?)
                }
                (Value::Int(_) | Value::Float(_), _) => Value::Float(
                    current.as_f64().unwrap_or_default() + amount.as_f64().unwrap_or_default(),
                ),
                (other, _) => {
                    return Err(Error::invalid(format!(
                        "increment of {path}, which is a {}",
                        other.type_name()
                    )))
                }
            };
            map.insert(last.to_string(), sum);
        }
        PatchOp::Push(path, value) => {
            let parts = split_path(path)?;
            let last = parts[parts.len() - 1];
            let Some(map) = parent(document, &parts, true)? else { return Ok(()) };
            match map.entry(last.to_string()).or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(items) => items.push(value.clone()),
                other => {
                    return Err(Error::invalid(format!(
                        "push to {path}, which is a {}",
                        other.type_name()
                    )))
                }
            }
        }
        PatchOp::Pull(path, value) => {
            let parts = split_path(path)?;
            let last = parts[parts.len() - 1];
            let Some(map) = parent(document, &parts, false)? else { return Ok(()) };
            match map.get_mut(last) {
                None => {}
                Some(Value::Array(items)) => {
                    items.retain(|item| compare(item, value) != Ordering::Equal);
                }
                Some(other) => {
                    return Err(Error::invalid(format!(
                        "pull from {path}, which is a {}",
                        other.type_name()
                    )))
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::doc;

    #[test]
    fn operators_apply_in_order() {
        let mut document = doc(serde_json::json!({"n": 1, "tags": ["a", "b", "a"], "x": 1.5}));
        Patch::new()
            .set("address.city", "Oslo")
            .increment("n", 2)
            .increment("x", 1)
            .increment("fresh", 5)
            .push("tags", "c")
            .pull("tags", "a")
            .push("list", 1)
            .unset("nothing.here")
            .apply(&mut document)
            .unwrap();
        let expected = doc(serde_json::json!({
            "n": 3, "x": 2.5, "fresh": 5, "tags": ["b", "c"], "list": [1],
            "address": {"city": "Oslo"}
        }));
        assert_eq!(document, expected);
        Patch::new().unset("address.city").unset("n").apply(&mut document).unwrap();
        assert_eq!(document.get("address"), Some(&Value::Object(Map::new())));
        assert!(!document.contains_key("n"));
    }

    #[test]
    fn bad_patches_are_clear_errors() {
        let document = doc(serde_json::json!({"s": "text", "n": i64::MAX, "o": 1}));
        for patch in [
            Patch::new().increment("s", 1),
            Patch::new().increment("n", 1),
            Patch::new().increment("o", "one"),
            Patch::new().push("s", 1),
            Patch::new().pull("s", 1),
            Patch::new().set("o.inner", 1),
            Patch::new().set("id", "other"),
            Patch::new().set("created", 1),
            Patch::new().set("a..b", 1),
            Patch::new().set("$where", 1),
        ] {
            let mut copy = document.clone();
            assert!(patch.apply(&mut copy).is_err(), "{patch:?}");
        }
    }
}
