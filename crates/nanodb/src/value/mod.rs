//! `Value`: the JSON-like data model of documents, with dates.
//!
//! A value is null, a boolean, a number (a 64-bit integer or a 64-bit float; the two compare
//! as numbers), a UTF-8 string, a date (`Date`, milliseconds in UTC), an array, or an object
//! (`Map`, fields sorted by name). Documents are objects. On disk a value is MessagePack
//! (`msgpack`); in indexes it is an order-preserving byte string (`keycode`); across types it
//! orders as `order` documents.
//!
//! Thread safety: plain owned data.
//!
//! Invariant: a `Value` built by this crate from outside input (MessagePack, JSON) is never
//! deeper than `NESTING_DEPTH_MAX` and has no field name longer than `FIELD_NAME_LEN_MAX`.

mod date;
pub(crate) mod deserialize;
mod json;
pub mod keycode;
pub mod msgpack;
mod order;
pub(crate) mod serialize;

pub(crate) use date::{civil_from_days, days_from_civil};
pub use date::{Date, DATE_MS_MAX, DATE_MS_MIN};
pub use order::{compare, type_rank};

use std::collections::BTreeMap;

/// An object's fields, by name.
pub type Map = BTreeMap<String, Value>;

/// Deepest nesting of arrays and objects in a value (a document is depth 1).
pub const NESTING_DEPTH_MAX: usize = 64;
/// Longest field name, in bytes.
pub const FIELD_NAME_LEN_MAX: usize = 1024;

/// A JSON-like value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// UTF-8 text.
    String(String),
    /// An instant in UTC.
    Date(Date),
    /// An ordered list.
    Array(Vec<Value>),
    /// Named fields.
    Object(Map),
}

impl Value {
    /// The field at dotted `path` (`"address.city"`; a numeric part indexes an array:
    /// `"tags.0"`), if present.
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        path.split('.').try_fold(self, |value, part| match value {
            Value::Object(map) => map.get(part),
            Value::Array(items) => part.parse::<usize>().ok().and_then(|index| items.get(index)),
            _ => None,
        })
    }

    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    /// The value as an `f64`, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(n) => Some(*n as f64),
            Value::Float(x) => Some(*x),
            _ => None,
        }
    }

    /// The value as an `i64`, if it is an integer (or a float with an integral value in range).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Float(x) if x.fract() == 0.0 && *x >= -(2f64.powi(63)) && *x < 2f64.powi(63) => {
                Some(*x as i64)
            }
            _ => None,
        }
    }

    /// The value as a bool, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value as an object, if it is one.
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    /// The value as an array, if it is one.
    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// True for `Value::Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The name of the value's type, for error messages: `"null"`, `"number"`, ...
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::Float(_) => "number",
            Value::String(_) => "string",
            Value::Date(_) => "date",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// How deeply arrays and objects nest in the value (a scalar is 0, `{}` is 1).
    pub fn depth(&self) -> usize {
        match self {
            Value::Array(items) => 1 + items.iter().map(Value::depth).max().unwrap_or(0),
            Value::Object(map) => 1 + map.values().map(Value::depth).max().unwrap_or(0),
            _ => 0,
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

impl From<i32> for Value {
    fn from(n: i32) -> Value {
        Value::Int(i64::from(n))
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float(x)
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::String(text.to_string())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::String(text)
    }
}

impl From<Date> for Value {
    fn from(date: Date) -> Value {
        Value::Date(date)
    }
}

impl From<Map> for Value {
    fn from(map: Map) -> Value {
        Value::Object(map)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Value {
        Value::Array(items.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(option: Option<T>) -> Value {
        option.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_reach_into_objects_and_arrays() {
        let value = Value::from(serde_json::json!({"a": {"b": [10, {"c": true}]}, "x": 1}));
        assert_eq!(value.get_path("a.b.0"), Some(&Value::Int(10)));
        assert_eq!(value.get_path("a.b.1.c"), Some(&Value::Bool(true)));
        assert_eq!(value.get_path("a.b.2"), None);
        assert_eq!(value.get_path("x.y"), None);
        assert_eq!(value.get_path("missing"), None);
        assert_eq!(value.depth(), 4);
        assert_eq!(Value::Float(3.0).as_i64(), Some(3));
        assert_eq!(Value::Float(3.5).as_i64(), None);
        assert_eq!(Value::Float(1e300).as_i64(), None);
    }
}
