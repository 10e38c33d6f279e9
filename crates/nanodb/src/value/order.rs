//! The total order of values, across types: what sorting and range comparisons use.
//!
//! Types order as null < numbers < strings < objects < arrays < booleans < dates (the order
//! MongoDB uses for the types both have). Within a type:
//! - numbers compare by numeric value, exactly, whether `Int` or `Float` (`1 == 1.0`, and
//!   `2^53 + 1 > 2^53 as f64`); NaN equals NaN and sorts below every other number; `-0.0 == 0.0`;
//! - strings compare by their UTF-8 bytes (which is Unicode code point order);
//! - objects compare field by field in name order (name, then value), a prefix first;
//! - arrays compare element by element, a prefix first;
//! - `false < true`; dates by instant.
//!
//! A missing field sorts as null (callers pass `Value::Null` for it).
//!
//! Thread safety: pure functions.
//!
//! Invariant: `compare` is a total order, and `keycode::encode` preserves it byte-wise.

use super::Value;
use std::cmp::Ordering;

/// The rank of a value's type in the cross-type order.
pub fn type_rank(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::Int(_) | Value::Float(_) => 1,
        Value::String(_) => 2,
        Value::Object(_) => 3,
        Value::Array(_) => 4,
        Value::Bool(_) => 5,
        Value::Date(_) => 6,
    }
}

/// Compares two values in the total order the module describes.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => compare_floats(*x, *y),
        (Value::Int(x), Value::Float(y)) => compare_int_float(*x, *y),
        (Value::Float(x), Value::Int(y)) => compare_int_float(*y, *x).reverse(),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Object(x), Value::Object(y)) => {
            for ((name_x, value_x), (name_y, value_y)) in x.iter().zip(y) {
                let order = name_x
                    .as_bytes()
                    .cmp(name_y.as_bytes())
                    .then_with(|| compare(value_x, value_y));
                if order != Ordering::Equal {
                    return order;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Array(x), Value::Array(y)) => {
            for (item_x, item_y) in x.iter().zip(y) {
                let order = compare(item_x, item_y);
                if order != Ordering::Equal {
                    return order;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Date(x), Value::Date(y)) => x.cmp(y),
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

/// Floats in numeric order, NaN lowest and equal to itself, `-0.0 == 0.0`.
fn compare_floats(x: f64, y: f64) -> Ordering {
    match (x.is_nan(), y.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
    }
}

/// An integer against a float, exactly. Rounding `x` to `f64` is monotone, so when the rounded
/// value differs from `y` it orders the same way `x` does; when it equals `y`, `y` is a whole
/// number in `i128` range and the exact comparison decides.
fn compare_int_float(x: i64, y: f64) -> Ordering {
    if y.is_nan() {
        return Ordering::Greater;
    }
    let rounded = x as f64;
    match rounded.partial_cmp(&y) {
        Some(Ordering::Equal) | None => i128::from(x).cmp(&(y as i128)),
        Some(order) => order,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Date, Map};

    #[test]
    fn types_order_null_numbers_strings_objects_arrays_bools_dates() {
        let ordered = [
            Value::Null,
            Value::Float(f64::NAN),
            Value::Float(f64::NEG_INFINITY),
            Value::Int(i64::MIN),
            Value::Float(-1.5),
            Value::Int(0),
            Value::Float(0.5),
            Value::Int(1),
            Value::Int(i64::MAX),
            Value::Float(f64::INFINITY),
            Value::from(""),
            Value::from("a"),
            Value::from("a\u{0}"),
            Value::from("b"),
            Value::from("é"),
            Value::Object(Map::new()),
            Value::Object([("a".to_string(), Value::Int(1))].into()),
            Value::Object([("a".to_string(), Value::Int(2))].into()),
            Value::Object([("b".to_string(), Value::Int(0))].into()),
            Value::Array(vec![]),
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Int(1), Value::Null]),
            Value::Array(vec![Value::Int(2)]),
            Value::Bool(false),
            Value::Bool(true),
            Value::Date(Date::from_unix_ms(-5).unwrap()),
            Value::Date(Date::from_unix_ms(7).unwrap()),
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(compare(a, b), i.cmp(&j), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn numbers_compare_exactly_across_int_and_float() {
        assert_eq!(compare(&Value::Int(1), &Value::Float(1.0)), Ordering::Equal);
        assert_eq!(compare(&Value::Float(-0.0), &Value::Float(0.0)), Ordering::Equal);
        assert_eq!(compare(&Value::Float(f64::NAN), &Value::Float(f64::NAN)), Ordering::Equal);
        let two_53 = 1i64 << 53;
        // 2^53 + 1 rounds to 2^53 as a float, but is greater.
        assert_eq!(
            compare(&Value::Int(two_53 + 1), &Value::Float(two_53 as f64)),
            Ordering::Greater
        );
        assert_eq!(compare(&Value::Float(two_53 as f64), &Value::Int(two_53 + 1)), Ordering::Less);
        assert_eq!(compare(&Value::Int(i64::MAX), &Value::Float(2f64.powi(63))), Ordering::Less);
        assert_eq!(compare(&Value::Int(3), &Value::Float(2.5)), Ordering::Greater);
        assert_eq!(compare(&Value::Int(-3), &Value::Float(-2.5)), Ordering::Less);
    }
}
