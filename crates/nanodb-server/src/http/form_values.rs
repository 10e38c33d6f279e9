//! Plain form values (multipart fields, url-encoded pairs) to JSON, the way PocketBase infers
//! their types: `"true"`/`"false"` are booleans, a number is a number only if it prints back
//! to exactly the same text (`"2"` is 2, `"007"` and `"0.0"` stay text), everything else is
//! text; a name given several times becomes an array of its values.
//!
//! Thread safety: pure functions.

use serde_json::{Map as JsonMap, Value as Json};

/// The JSON value of one form value.
pub fn infer(text: &str) -> Json {
    match text {
        "true" => return Json::Bool(true),
        "false" => return Json::Bool(false),
        _ => {}
    }
    if let Ok(number) = text.parse::<f64>() {
        if number.is_finite() && format!("{number}") == text {
            let is_whole = number.fract() == 0.0 && number.abs() < 9.0e15;
            return if is_whole {
                Json::from(number as i64)
            } else {
                serde_json::Number::from_f64(number).map_or(Json::Null, Json::Number)
            };
        }
    }
    Json::String(text.to_string())
}

/// Adds `name = value` to `fields`; a name seen before collects its values in an array.
pub fn add(fields: &mut JsonMap<String, Json>, name: &str, value: Json) {
    match fields.get_mut(name) {
        None => {
            fields.insert(name.to_string(), value);
        }
        Some(Json::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Json::Array(vec![first, value]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_inferred_like_pocketbase() {
        let cases = [
            ("", json!("")),
            ("true", json!(true)),
            ("false", json!(false)),
            ("True", json!("True")),
            ("2", json!(2)),
            ("-17", json!(-17)),
            ("2.5", json!(2.5)),
            ("0.0", json!("0.0")),
            ("007", json!("007")),
            ("+1", json!("+1")),
            ("1e5", json!("1e5")),
            ("NaN", json!("NaN")),
            ("inf", json!("inf")),
            ("hello", json!("hello")),
        ];
        for (text, expected) in cases {
            assert_eq!(infer(text), expected, "{text:?}");
        }
    }

    #[test]
    fn repeated_names_collect_arrays() {
        let mut fields = JsonMap::new();
        add(&mut fields, "tags", json!("a"));
        add(&mut fields, "tags", json!("b"));
        add(&mut fields, "tags", json!("c"));
        add(&mut fields, "one", json!(1));
        assert_eq!(Json::Object(fields), json!({"tags": ["a", "b", "c"], "one": 1}));
    }
}
