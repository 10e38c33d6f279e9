//! `Value` to and from JSON (`serde_json::Value`), and `Value` through serde.
//!
//! JSON has no dates: a `Date` becomes an RFC 3339 string, and JSON text never becomes a
//! `Date` by itself (a string stays a string; schemas and the server decide which fields are
//! dates). JSON numbers become `Int` when they are whole and fit an `i64`, `Float` otherwise;
//! floats JSON cannot hold (NaN, infinities) become `null`.
//!
//! Thread safety: pure conversions.
//!
//! Invariant: `Value::from(json)` then `serde_json::Value::from(value)` gives back the same
//! JSON for every JSON value whose numbers fit an `i64` or an `f64`.

use super::{Map, Value};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

impl From<serde_json::Value> for Value {
    fn from(json: serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(number) => match number.as_i64() {
                Some(n) => Value::Int(n),
                None => Value::Float(number.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(text) => Value::String(text),
            serde_json::Value::Array(items) => {
                Value::Array(items.into_iter().map(Value::from).collect())
            }
            serde_json::Value::Object(map) => {
                Value::Object(map.into_iter().map(|(name, value)| (name, value.into())).collect())
            }
        }
    }
}

impl From<Value> for serde_json::Value {
    fn from(value: Value) -> serde_json::Value {
        match value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(b),
            Value::Int(n) => serde_json::Value::from(n),
            Value::Float(x) => {
                serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into)
            }
            Value::String(text) => serde_json::Value::String(text),
            Value::Date(date) => serde_json::Value::String(date.to_rfc3339()),
            Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(Into::into).collect())
            }
            Value::Object(map) => serde_json::Value::Object(
                map.into_iter().map(|(name, value)| (name, value.into())).collect(),
            ),
        }
    }
}

impl fmt::Display for Value {
    /// The value as compact JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(n) => serializer.serialize_i64(*n),
            Value::Float(x) if x.is_finite() => serializer.serialize_f64(*x),
            Value::Float(_) => serializer.serialize_unit(),
            Value::String(text) => serializer.serialize_str(text),
            Value::Date(date) => serializer.serialize_str(&date.to_rfc3339()),
            Value::Array(items) => serializer.collect_seq(items),
            Value::Object(map) => serializer.collect_map(map),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-like value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Int(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        Ok(i64::try_from(n).map_or(Value::Float(n as f64), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Value, E> {
        Ok(Value::Float(x))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Value, E> {
        Ok(Value::String(text.to_string()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Value, E> {
        Ok(Value::String(text))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some((name, value)) = access.next_entry::<String, Value>()? {
            map.insert(name, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Date;

    #[test]
    fn json_round_trips_and_dates_become_strings() {
        let json = serde_json::json!({
            "n": 5, "neg": -7, "x": 2.5, "big": 18446744073709551615u64, "s": "hé",
            "b": false, "z": null, "list": [1, "two", [3.0]], "o": {"k": {}}
        });
        let value = Value::from(json.clone());
        assert_eq!(value.get_path("n"), Some(&Value::Int(5)));
        assert!(matches!(value.get_path("big"), Some(Value::Float(_))));
        let back = serde_json::Value::from(value.clone());
        assert_eq!(back["list"], json["list"]);
        assert_eq!(back["o"], json["o"]);
        // Through serde too.
        let text = serde_json::to_string(&value).unwrap();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, value);

        let date = Date::parse("2024-05-01T10:20:30.123Z").unwrap();
        assert_eq!(serde_json::Value::from(Value::Date(date)), "2024-05-01T10:20:30.123Z");
        assert_eq!(serde_json::Value::from(Value::Float(f64::NAN)), serde_json::Value::Null);
        assert_eq!(Value::Array(vec![Value::Int(1), Value::Null]).to_string(), "[1,null]");
    }
}
