//! Value intervals in `keycode` byte space: which encoded values a comparison can match, and
//! how such an interval on one index field becomes a key range of the index keyspace.
//!
//! An `Interval` is `[lo, hi)` over the ascending encodings of single values. Because the
//! evaluator compares within one type only, a range never leaves its type's bracket (the
//! encodings starting with that type's tag). A comparison with a string that parses as a date
//! also covers the date (and one with a date every string), as the evaluator's date coercion
//! requires: the intervals are a superset of what can match, never less.
//!
//! Thread safety: pure functions.
//!
//! Invariant: the intervals of one list are disjoint and sorted.

use super::ast::CompareOp;
use crate::value::{keycode, Date, Value};
use std::ops::Bound;

/// A key range of an index keyspace.
pub(crate) type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Encoded values `lo <= e < hi`; `point` when it holds exactly one value (encoded, and
/// itself).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Interval {
    pub lo: Vec<u8>,
    pub hi: Vec<u8>,
    pub point: Option<(Vec<u8>, Value)>,
}

impl Interval {
    fn point(value: &Value) -> Interval {
        let encoded = keycode::to_key(value);
        Interval { lo: encoded.clone(), hi: after(&encoded), point: Some((encoded, value.clone())) }
    }

    /// Every value of the type `tag` starts.
    fn bracket(tag: u8) -> Interval {
        Interval { lo: vec![tag], hi: vec![tag + 1], point: None }
    }

    pub fn is_empty(&self) -> bool {
        self.lo >= self.hi
    }
}

/// The smallest byte string after every string starting with `encoded`.
fn after(encoded: &[u8]) -> Vec<u8> {
    // Encodings start with a tag below 0xff, so this always exists.
    keycode::prefix_end(encoded).unwrap_or_else(|| vec![0xff; encoded.len() + 1])
}

/// The intervals of values `x` for which `x op value` can hold; `None` if the comparison is
/// not one an index can narrow (arrays compare as wholes, which index entries do not hold).
pub(crate) fn for_compare(op: CompareOp, value: &Value) -> Option<Vec<Interval>> {
    if matches!(value, Value::Array(_)) || op == CompareOp::Ne {
        return None;
    }
    let mut out = Vec::new();
    for variant in variants(value) {
        let Some(variant) = variant else {
            out.push(Interval::bracket(keycode::to_key(&Value::String(String::new()))[0]));
            continue;
        };
        let encoded = keycode::to_key(&variant);
        let tag = encoded[0];
        let interval = match op {
            CompareOp::Eq => Interval::point(&variant),
            CompareOp::Gt => Interval { lo: after(&encoded), hi: vec![tag + 1], point: None },
            CompareOp::Gte => Interval { lo: encoded, hi: vec![tag + 1], point: None },
            CompareOp::Lt => Interval { lo: vec![tag], hi: encoded, point: None },
            CompareOp::Lte => Interval { lo: vec![tag], hi: after(&encoded), point: None },
            CompareOp::Ne => return None,
        };
        out.push(interval);
    }
    Some(normalize(out))
}

/// The points of `values` (MongoDB's `$in`); `None` if one is an array.
pub(crate) fn for_in(values: &[Value]) -> Option<Vec<Interval>> {
    let mut out = Vec::new();
    for value in values {
        out.extend(for_compare(CompareOp::Eq, value)?);
    }
    Some(normalize(out))
}

/// The values PocketBase's `x = ""` matches: null (and missing), `""` and `[]`.
pub(crate) fn for_empty() -> Vec<Interval> {
    let empties = [Value::Null, Value::String(String::new()), Value::Array(Vec::new())];
    normalize(empties.iter().map(Interval::point).collect())
}

/// The values to look for: the value, and what the evaluator's date coercion adds (`None`
/// stands for every string).
fn variants(value: &Value) -> Vec<Option<Value>> {
    match value {
        Value::String(text) => {
            let date = Date::parse(text).map(|date| Some(Value::Date(date)));
            std::iter::once(Some(value.clone())).chain(date).collect()
        }
        Value::Date(_) => vec![Some(value.clone()), None],
        _ => vec![Some(value.clone())],
    }
}

/// Sorted, without empty intervals, overlapping ones merged.
fn normalize(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.retain(|interval| !interval.is_empty());
    intervals.sort_by(|a, b| a.lo.cmp(&b.lo));
    let mut out: Vec<Interval> = Vec::with_capacity(intervals.len());
    for interval in intervals {
        match out.last_mut() {
            Some(last) if interval.lo < last.hi => {
                if interval.hi > last.hi {
                    last.hi = interval.hi;
                }
                if last.point != interval.point {
                    last.point = None;
                }
            }
            _ => out.push(interval),
        }
    }
    out
}

/// The keys of index entries that start with `prefix` and continue with a value of `interval`
/// (encoded ascending, or inverted when `descending`).
pub(crate) fn key_range(prefix: &[u8], interval: &Interval, descending: bool) -> KeyRange {
    let join = |bytes: &[u8]| [prefix, bytes].concat();
    if !descending {
        return (Bound::Included(join(&interval.lo)), Bound::Excluded(join(&interval.hi)));
    }
    // Inverting bytes reverses the order of encodings (none is a prefix of another), but a
    // bound that is a proper prefix of encodings stays a prefix: so the bounds are the ends of
    // everything starting with the inverted edges.
    let inverted = |bytes: &[u8]| join(&bytes.iter().map(|byte| !byte).collect::<Vec<u8>>());
    let lower = keycode::prefix_end(&inverted(&interval.hi));
    let upper = keycode::prefix_end(&inverted(&interval.lo));
    (
        lower.map_or(Bound::Unbounded, Bound::Included),
        upper.map_or(Bound::Unbounded, Bound::Excluded),
    )
}

/// Every key starting with `prefix`.
pub(crate) fn prefix_range(prefix: &[u8]) -> KeyRange {
    if prefix.is_empty() {
        return (Bound::Unbounded, Bound::Unbounded);
    }
    let end = keycode::prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
    (Bound::Included(prefix.to_vec()), end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(intervals: &[Interval], value: &Value) -> bool {
        let encoded = keycode::to_key(value);
        intervals.iter().any(|interval| interval.lo <= encoded && encoded < interval.hi)
    }

    fn samples() -> Vec<Value> {
        vec![
            Value::Null,
            Value::Int(-5),
            Value::Int(0),
            Value::Float(2.5),
            Value::Int(3),
            Value::Int(i64::MAX),
            Value::from(""),
            Value::from("abc"),
            Value::from("abd"),
            Value::from("2024-01-01"),
            Value::Bool(false),
            Value::Bool(true),
            Value::Date(Date::parse("2024-01-01T00:00:00Z").unwrap()),
            Value::Date(Date::parse("2025-01-01T00:00:00Z").unwrap()),
            Value::Object(Default::default()),
        ]
    }

    #[test]
    fn intervals_hold_every_value_a_comparison_accepts() {
        use crate::query::eval::holds;
        let ops = [CompareOp::Eq, CompareOp::Gt, CompareOp::Gte, CompareOp::Lt, CompareOp::Lte];
        for literal in samples() {
            for op in ops {
                let intervals = for_compare(op, &literal).unwrap();
                for value in samples() {
                    if holds(&value, op, &literal) {
                        assert!(contains(&intervals, &value), "{value:?} {op:?} {literal:?}");
                    }
                    let same_type =
                        crate::value::type_rank(&value) == crate::value::type_rank(&literal);
                    if same_type && !holds(&value, op, &literal) {
                        assert!(!contains(&intervals, &value), "{value:?} {op:?} {literal:?}");
                    }
                }
            }
        }
        assert!(for_compare(CompareOp::Eq, &Value::Array(vec![])).is_none());
        assert!(for_compare(CompareOp::Ne, &Value::Int(1)).is_none());
    }

    #[test]
    fn descending_ranges_hold_exactly_the_interval() {
        let mut both = for_compare(CompareOp::Gt, &Value::Int(1)).unwrap();
        both.extend(for_compare(CompareOp::Lte, &Value::from("abc")).unwrap());
        // Descending: the key range holds exactly the inverted encodings of the interval.
        let values = samples();
        for interval in &both {
            let (lower, upper) = key_range(b"P", interval, true);
            for value in &values {
                let mut key = b"P".to_vec();
                keycode::encode_descending(value, &mut key);
                key.extend_from_slice(b"id");
                let in_range = match &lower {
                    Bound::Included(low) => key >= *low,
                    Bound::Excluded(low) => key > *low,
                    Bound::Unbounded => true,
                } && match &upper {
                    Bound::Included(high) => key <= *high,
                    Bound::Excluded(high) => key < *high,
                    Bound::Unbounded => true,
                };
                let expected = contains(std::slice::from_ref(interval), value);
                assert_eq!(in_range, expected, "{value:?}");
            }
        }
    }
}
